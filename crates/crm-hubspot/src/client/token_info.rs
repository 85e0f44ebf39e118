//! The private-app token info endpoint: which account a token belongs to and the scopes it
//! was granted, for start-up checks.

use http::Method;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

use super::{HubSpotClient, Req};
use crate::error::Error;

/// The private-app token info path.
const TOKEN_INFO_PATH: &str = "/oauth/v2/private-apps/get/access-token-info";

/// What HubSpot says about a private-app access token.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct TokenInfo {
    /// The user who created the private app.
    #[serde(default)]
    pub user_id: Option<u64>,
    /// The account (portal) the token belongs to.
    #[serde(default)]
    pub hub_id: Option<u64>,
    /// The private app.
    #[serde(default)]
    pub app_id: Option<u64>,
    /// The scopes granted, e.g. `crm.objects.contacts.write`.
    #[serde(default)]
    pub scopes: Vec<String>,
}

impl TokenInfo {
    /// Whether `scope` was granted.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TokenInfoRequest<'a> {
    token_key: &'a str,
}

impl HubSpotClient {
    /// The account and scopes of this client's private-app token (`POST
    /// /oauth/v2/private-apps/get/access-token-info`). `Ok(None)` when it cannot be told:
    /// the client does not use a static token (OAuth, a token provider), or the endpoint
    /// answers 404.
    ///
    /// # Errors
    /// [`Error::Api`] with status 401 for a token HubSpot does not accept; other failures
    /// as for any request.
    pub async fn private_app_token_info(&self) -> Result<Option<TokenInfo>, Error> {
        let Some(token) = &self.static_token else {
            return Ok(None);
        };
        let req = Req::new(Method::POST, TOKEN_INFO_PATH, &[])
            .json(&TokenInfoRequest {
                token_key: token.expose_secret(),
            })?
            .idempotent();
        match self.send_json(&req).await {
            Ok(info) => Ok(Some(info)),
            Err(Error::Api(e)) if e.status == 404 => Ok(None),
            Err(e) => Err(e),
        }
    }
}
