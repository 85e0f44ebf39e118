//! The webhook emitter: builds `user_created` / `user_received_badge` payloads as Cativa
//! documents them (PascalCase; `user_created` with its top-level fields plus the nested
//! `User`, `user_received_badge` with the nested `User`; no field names the event: the
//! listener's target URL and automation id do), signs them with `X-Cativa-Signature: t=<unix>,v1=<hex>` where
//! `v1 = hex(HMAC-SHA256(secret, "<t>.<raw body>"))`, and POSTs them.
//!
//! The HMAC is computed here with `hmac`/`sha2`, independently of the SDK's verifier.

use std::time::Duration;

use hmac::Mac;
use serde::Serialize;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// `hex(HMAC-SHA256(secret, "<timestamp>.<body>"))`, lowercase.
///
/// ```
/// // A fixed test vector (secret, timestamp and body as below).
/// let v1 = sync_sandbox::cativa::sign("whsec_test_secret", 1_700_000_000, br#"{"id":"evt_test_webhook","object":"event"}"#);
/// assert_eq!(v1, "d95c6b7477fbd7e9f90b1b0ef5f9c7ac25abca5382460e0d988c2b2a5b71b990");
/// ```
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match HmacSha256::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// How to sign a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignatureMode {
    /// Correctly, with the configured secret.
    Valid,
    /// With another secret (a forgery, or a receiver configured with an old secret).
    WrongSecret,
    /// Correctly, but the body is altered after signing.
    TamperedBody,
    /// Correctly, with a timestamp this far in the past.
    Stale(Duration),
    /// Without the `X-Cativa-Signature` header.
    Missing,
    /// With a header that is not `t=...,v1=...`.
    Garbage,
}

/// A delivery ready to send (and to send again: a retry keeps the execution id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct WebhookDelivery {
    /// `user_created`, `user_received_badge`, ...
    pub event: String,
    /// Raw JSON body, exactly as sent.
    pub body: String,
    /// `X-Cativa-Execution-Id`: the idempotency key, stable across retries.
    pub execution_id: String,
    /// `X-Cativa-Automation-Id`: the listener.
    pub automation_id: String,
    /// Unix seconds put in the signature when the delivery was built.
    pub timestamp: i64,
}

impl WebhookDelivery {
    /// The `X-Cativa-Signature` header value under `mode`, and the body to send.
    pub fn signed(&self, secret: &str, mode: &SignatureMode) -> (Option<String>, String) {
        let header = |t: i64, key: &str| format!("t={t},v1={}", sign(key, t, self.body.as_bytes()));
        match mode {
            SignatureMode::Valid => (Some(header(self.timestamp, secret)), self.body.clone()),
            SignatureMode::WrongSecret => (
                Some(header(self.timestamp, &format!("{secret}_wrong"))),
                self.body.clone(),
            ),
            SignatureMode::TamperedBody => {
                let tampered = self.body.replacen('@', "+evil@", 1);
                let tampered = if tampered == self.body {
                    format!("{} ", self.body)
                } else {
                    tampered
                };
                (Some(header(self.timestamp, secret)), tampered)
            }
            SignatureMode::Stale(age) => {
                let t = self.timestamp - i64::try_from(age.as_secs()).unwrap_or(i64::MAX / 2);
                (Some(header(t, secret)), self.body.clone())
            }
            SignatureMode::Missing => (None, self.body.clone()),
            SignatureMode::Garbage => (Some("sha256=deadbeef".to_owned()), self.body.clone()),
        }
    }
}

/// What the receiver answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct DeliveryOutcome {
    /// HTTP status.
    pub status: u16,
    /// Response body.
    pub body: String,
}

/// A delivery attempt, as recorded by the emitter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct DeliveryRecord {
    /// Target URL.
    pub url: String,
    /// Event type.
    pub event: String,
    /// Execution id.
    pub execution_id: String,
    /// Whether the signature was valid.
    pub validly_signed: bool,
    /// Receiver's status, `None` when the request failed.
    pub status: Option<u16>,
}

pub(crate) async fn post(
    client: &reqwest::Client,
    url: &str,
    delivery: &WebhookDelivery,
    secret: &str,
    mode: &SignatureMode,
) -> Result<DeliveryOutcome, reqwest::Error> {
    let (signature, body) = delivery.signed(secret, mode);
    let mut req = client
        .post(url)
        .header("Content-Type", "application/json")
        .header("X-Cativa-Execution-Id", &delivery.execution_id)
        .header("X-Cativa-Automation-Id", &delivery.automation_id)
        .body(body);
    if let Some(sig) = signature {
        req = req.header("X-Cativa-Signature", sig);
    }
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    let body = resp.text().await.unwrap_or_default();
    Ok(DeliveryOutcome { status, body })
}
