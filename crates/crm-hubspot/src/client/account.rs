//! `GET /account-info/v3/details`: the account (portal) a token reaches and its time zone.

use http::Method;
use serde::Deserialize;

use super::{HubSpotClient, Req};
use crate::error::Error;

/// The account details HubSpot reports.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct AccountDetails {
    /// The portal (account) id.
    pub portal_id: u64,
    /// The account's time zone (the daily quota resets at its midnight).
    #[serde(default)]
    pub time_zone: Option<String>,
}

impl HubSpotClient {
    /// The account this client's token reaches (`GET /account-info/v3/details`).
    ///
    /// # Errors
    /// [`Error::Api`] with status 401 for a token HubSpot does not accept; other failures
    /// as for any request.
    pub async fn account_details(&self) -> Result<AccountDetails, Error> {
        let req = Req::new(Method::GET, "/account-info/v3/details", &[]).idempotent();
        self.send_json(&req).await
    }
}
