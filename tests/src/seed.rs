//! Recording community users in the store the way production does: from signed
//! `user_created` webhooks, verified like a live receiver verifies them.

use cativa_client::webhook::{
    AUTOMATION_ID_HEADER, EXECUTION_ID_HEADER, SIGNATURE_HEADER, SignatureVerifier, WebhookReceiver,
};
use futures::StreamExt;
use http::{HeaderMap, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use sync_core::{DeliveryOutcome, TenantId};
use sync_engine::SyncEngine;
use sync_sandbox::SandboxServer;
use sync_sandbox::cativa::{SignatureMode, WebhookDelivery};

use crate::BoxError;

/// What became of a set of webhook deliveries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryTally {
    /// Verified and processed.
    pub accepted: u64,
    /// Verified, but already processed (a retry).
    pub duplicate: u64,
    /// Refused by signature verification.
    pub rejected: u64,
}

/// The headers Cativa sends with `delivery`, signed with `secret` per `mode`, and the body
/// to send with them.
pub fn cativa_headers(
    delivery: &WebhookDelivery,
    secret: &SecretString,
    mode: &SignatureMode,
) -> (HeaderMap, String) {
    let (signature, body) = delivery.signed(secret.expose_secret(), mode);
    let mut headers = HeaderMap::new();
    let mut put = |name: &'static str, value: &str| {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(name, v);
        }
    };
    if let Some(sig) = &signature {
        put(SIGNATURE_HEADER, sig);
    }
    put(EXECUTION_ID_HEADER, &delivery.execution_id);
    put(AUTOMATION_ID_HEADER, &delivery.automation_id);
    (headers, body)
}

/// Delivers a signed `user_created` webhook from the Cativa sandbox's emitter for every
/// Cativa user there, through the verification a receiver does
/// ([`WebhookReceiver::receive_now`]) and into [`SyncEngine::handle_community_event`]: the
/// store learns each user exactly as a live receiver would. `concurrency` deliveries are in
/// flight at once.
///
/// Give it an engine without a CRM source when a full reconcile follows: the reconcile
/// links every contact by email, so per-user CRM lookups would only spend API budget.
///
/// # Errors
/// A delivery failed verification (the secret is wrong) or the engine failed.
pub async fn deliver_user_created(
    sandbox: &SandboxServer,
    engine: &SyncEngine,
    tenant: &TenantId,
    secret: &SecretString,
    concurrency: usize,
) -> Result<DeliveryTally, BoxError> {
    let receiver = WebhookReceiver::new(SignatureVerifier::new(secret.clone())?)
        .with_event_type(cativa_client::webhook::EventType::UserCreated);
    let mut users = sandbox.cativa().users();
    users.sort_by(|a, b| a.id.cmp(&b.id));
    let results: Vec<Result<bool, BoxError>> = futures::stream::iter(users)
        .map(|user| {
            let receiver = &receiver;
            async move {
                let delivery = sandbox.cativa().user_created_delivery(&user.id)?;
                let (headers, body) = cativa_headers(&delivery, secret, &SignatureMode::Valid);
                let (mut parts, ()) = http::Request::new(()).into_parts();
                parts.headers = headers;
                let verified = receiver.receive_now(&parts, body.as_bytes())?;
                let Some(event) = verified.to_community_event() else {
                    return Ok(false);
                };
                let outcome = engine
                    .handle_community_event(tenant, verified.execution_id.as_str(), event)
                    .await?;
                Ok(matches!(outcome, DeliveryOutcome::Accepted { .. }))
            }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let mut tally = DeliveryTally::default();
    for r in results {
        if r? {
            tally.accepted += 1;
        } else {
            tally.duplicate += 1;
        }
    }
    Ok(tally)
}
