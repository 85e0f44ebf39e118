//! The HubSpot source's connection check: the portal from `/account-info/v3/details`, the
//! scopes of a private-app token, and the contact properties the source reads.

use sync_core::ports::ConnectionFacts;

use crate::client::HubSpotClient;
use crate::error::Error;

/// The scopes the sync needs: read and write contacts, read their schema.
pub const REQUIRED_SCOPES: [&str; 3] = [
    "crm.objects.contacts.read",
    "crm.objects.contacts.write",
    "crm.schemas.contacts.read",
];

/// The facts for a source reading `properties` through `client`.
pub(crate) async fn facts(
    client: &HubSpotClient,
    properties: &[String],
) -> Result<ConnectionFacts, Error> {
    // The account call comes first: it proves the credentials or fails with the refusal.
    let account = client.account_details().await?;
    let mut facts = ConnectionFacts::account(Some(account.portal_id.to_string()));
    facts.scopes_needed = REQUIRED_SCOPES.map(str::to_owned).to_vec();
    match client.private_app_token_info().await {
        Ok(Some(info)) => facts.scopes_granted = Some(info.scopes),
        Ok(None) => facts.unchecked.push(
            "HubSpot scopes: the token info endpoint cannot tell them for this token (OAuth or not a private-app token)".to_owned(),
        ),
        Err(e) => facts
            .unchecked
            .push(format!("HubSpot scopes: the token info call failed: {e}")),
    }
    match client.list_contact_properties().await {
        Ok(listed) => {
            let missing = properties
                .iter()
                .filter(|p| !listed.iter().any(|l| &l.name == *p))
                .cloned()
                .collect();
            facts.missing_fields = Some(missing);
        }
        Err(e) => facts.unchecked.push(format!(
            "HubSpot contact properties: cannot list them ({e}): the token needs the scope crm.schemas.contacts.read"
        )),
    }
    Ok(facts)
}
