//! HubSpot webhook deliveries: the change log of the sandbox sent as JSON arrays of at
//! most 100 events, signed the way HubSpot signs them (v1 and v3 headers), so a
//! receiver can be tested end to end.
//!
//! The signatures are computed here, independently of the SDK's verifier.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::Mac;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::model::HubSpotEvent;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// Events per delivery, as HubSpot batches them.
pub const EVENTS_PER_DELIVERY: usize = 100;

/// v1: `hex(SHA256(client_secret + body))`.
///
/// ```
/// let body = r#"[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,"changeSource":"CRM","changeFlag":"NEW","appId":54321}]"#;
/// assert_eq!(
///     sync_sandbox::hubspot::sign_v1("yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy", body.as_bytes()),
///     "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de"
/// );
/// ```
pub fn sign_v1(client_secret: &str, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(client_secret.as_bytes());
    h.update(body);
    hex::encode(h.finalize())
}

/// HubSpot decodes only these escapes of the URI before signing (HubSpot's v3 signature documentation).
const DECODED: [(&str, &str); 12] = [
    ("%3A", ":"),
    ("%2F", "/"),
    ("%3F", "?"),
    ("%40", "@"),
    ("%21", "!"),
    ("%24", "$"),
    ("%27", "'"),
    ("%28", "("),
    ("%29", ")"),
    ("%2A", "*"),
    ("%2C", ","),
    ("%3B", ";"),
];

fn decode_uri(uri: &str) -> String {
    let mut out = String::with_capacity(uri.len());
    let mut rest = uri;
    while let Some(pos) = rest.find('%') {
        out.push_str(&rest[..pos]);
        let escape = rest.get(pos..pos + 3).unwrap_or(&rest[pos..]);
        match DECODED.iter().find(|(e, _)| e.eq_ignore_ascii_case(escape)) {
            Some((_, plain)) => out.push_str(plain),
            None => out.push_str(escape),
        }
        rest = &rest[pos + escape.len()..];
    }
    out.push_str(rest);
    out
}

/// v3: `base64(HMAC-SHA256(client_secret, METHOD + decoded URI + body + timestamp_ms))`.
///
/// ```
/// // The official Python SDK test vector.
/// let v3 = sync_sandbox::hubspot::sign_v3(
///     "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy",
///     "POST",
///     "https://www.example.com/webhook_uri",
///     b"{'example_field':'example_value'}",
///     1_693_657_560_000,
/// );
/// assert_eq!(v3, "K36dawei4A+QBNolUOqo7s91KQDWQ5MXZ/QufNYuk/Y=");
/// ```
pub fn sign_v3(
    client_secret: &str,
    method: &str,
    uri: &str,
    body: &[u8],
    timestamp_ms: i64,
) -> String {
    let Ok(mut mac) = HmacSha256::new_from_slice(client_secret.as_bytes()) else {
        return String::new();
    };
    mac.update(method.as_bytes());
    mac.update(decode_uri(uri).as_bytes());
    mac.update(body);
    mac.update(timestamp_ms.to_string().as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

/// What a receiver answered to one delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct WebhookResponse {
    /// Events in the delivery.
    pub events: usize,
    /// HTTP status.
    pub status: u16,
    /// Response body.
    pub body: String,
}

pub(crate) struct Batch {
    pub(crate) body: String,
    pub(crate) count: usize,
}

pub(crate) fn batches(events: &[HubSpotEvent], portal_id: u64, app_id: u64) -> Vec<Batch> {
    events
        .chunks(EVENTS_PER_DELIVERY)
        .map(|chunk| Batch {
            body: serde_json::Value::Array(
                chunk.iter().map(|e| e.to_json(portal_id, app_id)).collect(),
            )
            .to_string(),
            count: chunk.len(),
        })
        .collect()
}

pub(crate) async fn post(
    client: &reqwest::Client,
    url: &str,
    client_secret: &str,
    batch: &Batch,
    timestamp_ms: i64,
    valid: bool,
) -> Result<WebhookResponse, reqwest::Error> {
    let secret = if valid {
        client_secret.to_owned()
    } else {
        format!("{client_secret}-wrong")
    };
    let resp = client
        .post(url)
        .header("Content-Type", "application/json")
        .header(
            "X-HubSpot-Signature",
            sign_v1(&secret, batch.body.as_bytes()),
        )
        .header("X-HubSpot-Signature-Version", "v1")
        .header(
            "X-HubSpot-Signature-v3",
            sign_v3(&secret, "POST", url, batch.body.as_bytes(), timestamp_ms),
        )
        .header("X-HubSpot-Request-Timestamp", timestamp_ms.to_string())
        .body(batch.body.clone())
        .send()
        .await?;
    let status = resp.status().as_u16();
    let body = resp.text().await.unwrap_or_default();
    Ok(WebhookResponse {
        events: batch.count,
        status,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_decoding_matches_the_extra_vectors() {
        let secret = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy";
        let raw = "https://www.example.com/webhook_uri?portal%3Aid=62515&tags=a%2Cb";
        assert_eq!(
            decode_uri(raw),
            "https://www.example.com/webhook_uri?portal:id=62515&tags=a,b"
        );
        assert_eq!(
            sign_v3(
                secret,
                "POST",
                raw,
                br#"[{"eventId":1}]"#,
                1_700_000_000_000
            ),
            "+89bCSRecERCvjMsyFZTdq5z4JA5XRgqI8Ybv4sE49o="
        );
        assert_eq!(
            sign_v3(
                secret,
                "GET",
                "https://www.example.com/webhook_uri",
                b"",
                1_700_000_000_000
            ),
            "r3KKZGKCAis7hc/eM/k4wr0D0ZRQhbee2UGU0SAPfxM="
        );
        assert_eq!(decode_uri("a%20b%26c%"), "a%20b%26c%");
    }
}
