//! HubSpot request signatures: v1, v2 and v3, exactly as HubSpot computes them.
//!
//! - v1: `hex(SHA-256(client_secret + body))` in `X-HubSpot-Signature` (webhook deliveries).
//! - v2: `hex(SHA-256(client_secret + METHOD + URI + body))` (workflow actions, CRM cards).
//! - v3: `base64(HMAC-SHA256(client_secret, METHOD + decoded URI + body + timestamp))` in
//!   `X-HubSpot-Signature-v3`, with `X-HubSpot-Request-Timestamp` in epoch milliseconds and
//!   a five-minute window (either way: far-future timestamps are refused too).
//!
//! HubSpot signs the public URL it called (`https://host/path?query`), not the path a proxy
//! forwards, so the verifier is configured with that URL.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use hmac::Mac;
use http::HeaderMap;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::WebhookError;

type HmacSha256 = hmac::Hmac<Sha256>;

/// `X-HubSpot-Signature` (v1 and v2).
pub const SIGNATURE_HEADER: &str = "x-hubspot-signature";
/// `X-HubSpot-Signature-Version` (`v1` or `v2`).
pub const SIGNATURE_VERSION_HEADER: &str = "x-hubspot-signature-version";
/// `X-HubSpot-Signature-v3` (header names are case-insensitive; HubSpot also sends `-V3`).
pub const SIGNATURE_V3_HEADER: &str = "x-hubspot-signature-v3";
/// `X-HubSpot-Request-Timestamp` (epoch milliseconds, v3 only).
pub const TIMESTAMP_HEADER: &str = "x-hubspot-request-timestamp";

/// The v3 window: a request signed more than five minutes ago is refused.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

/// Which signature scheme a request was verified with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignatureVersion {
    /// SHA-256 of secret + body.
    V1,
    /// SHA-256 of secret + method + URI + body.
    V2,
    /// HMAC-SHA256 over method + decoded URI + body + timestamp, timestamp-bounded.
    V3,
}

/// The escapes HubSpot decodes in the URI before signing v3 (and only these).
const DECODE_TABLE: [(&str, char); 12] = [
    ("%3A", ':'),
    ("%2F", '/'),
    ("%3F", '?'),
    ("%40", '@'),
    ("%21", '!'),
    ("%24", '$'),
    ("%27", '\''),
    ("%28", '('),
    ("%29", ')'),
    ("%2A", '*'),
    ("%2C", ','),
    ("%3B", ';'),
];

/// Decodes the URI as HubSpot does before computing a v3 signature: only the twelve escapes of
/// its table (`%3A %2F %3F %40 %21 %24 %27 %28 %29 %2A %2C %3B`, either hex case); every
/// other escape (`%20`, `%26`, ...) stays as it is.
///
/// ```
/// use crm_hubspot::webhook::decode_uri_for_v3;
/// assert_eq!(
///     decode_uri_for_v3("https://x.io/h?portal%3Aid=1&tags=a%2Cb&q=a%20b"),
///     "https://x.io/h?portal:id=1&tags=a,b&q=a%20b"
/// );
/// ```
pub fn decode_uri_for_v3(uri: &str) -> Cow<'_, str> {
    if !uri.contains('%') {
        return Cow::Borrowed(uri);
    }
    let bytes = uri.as_bytes();
    let mut out = String::with_capacity(uri.len());
    let mut i = 0;
    let mut copied_to = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 3 <= bytes.len() {
            // Compare bytes, not a str slice: the two bytes after `%` may be part of a
            // multi-byte character.
            let escape = &bytes[i..i + 3];
            if let Some((_, c)) = DECODE_TABLE
                .iter()
                .find(|(e, _)| e.as_bytes().eq_ignore_ascii_case(escape))
            {
                out.push_str(&uri[copied_to..i]);
                out.push(*c);
                i += 3;
                copied_to = i;
                continue;
            }
        }
        i += 1;
    }
    out.push_str(&uri[copied_to..]);
    Cow::Owned(out)
}

/// The v1 signature: lowercase hex of `SHA-256(client_secret + body)`.
pub fn v1_signature(client_secret: &str, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(client_secret.as_bytes());
    h.update(body);
    hex::encode(h.finalize())
}

/// The v2 signature: lowercase hex of `SHA-256(client_secret + METHOD + URI + body)`. The URI
/// is used exactly as HubSpot called it (protocol included, query order kept).
pub fn v2_signature(client_secret: &str, method: &str, uri: &str, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(client_secret.as_bytes());
    h.update(method.as_bytes());
    h.update(uri.as_bytes());
    h.update(body);
    hex::encode(h.finalize())
}

/// The v3 signature: standard padded base64 of
/// `HMAC-SHA256(client_secret, METHOD + decoded URI + body + timestamp)`. The URI is decoded
/// here with [`decode_uri_for_v3`]; `timestamp` is the header's string as received.
pub fn v3_signature(
    client_secret: &str,
    method: &str,
    uri: &str,
    body: &[u8],
    timestamp: &str,
) -> String {
    base64::engine::general_purpose::STANDARD.encode(v3_mac(
        client_secret.as_bytes(),
        method,
        uri,
        body,
        timestamp,
    ))
}

fn v3_mac(secret: &[u8], method: &str, uri: &str, body: &[u8], timestamp: &str) -> Vec<u8> {
    // HMAC accepts keys of any length, so this cannot fail; an empty MAC would never match.
    let Ok(mut mac) = HmacSha256::new_from_slice(secret) else {
        return Vec::new();
    };
    mac.update(method.as_bytes());
    mac.update(decode_uri_for_v3(uri).as_bytes());
    mac.update(body);
    mac.update(timestamp.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// Constant-time equality of two byte strings (length is not secret).
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Verifies HubSpot's signature headers on incoming requests.
///
/// ```
/// use crm_hubspot::webhook::{SignatureVerifier, v3_signature};
/// use secrecy::SecretString;
///
/// let verifier = SignatureVerifier::new(SecretString::from("my-client-secret"))
///     .with_public_url("https://hooks.example.com/webhooks/hubspot");
/// let body = br#"[{"eventId":1}]"#;
/// let ts = "1700000000000";
/// let sig = v3_signature("my-client-secret", "POST", "https://hooks.example.com/webhooks/hubspot", body, ts);
/// let mut headers = http::HeaderMap::new();
/// headers.insert("x-hubspot-signature-v3", sig.parse()?);
/// headers.insert("x-hubspot-request-timestamp", ts.parse()?);
/// let version = verifier.verify("POST", None, &headers, body, 1_700_000_060_000)?;
/// assert_eq!(version, crm_hubspot::webhook::SignatureVersion::V3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct SignatureVerifier {
    secrets: Vec<SecretString>,
    public_url: Option<String>,
    tolerance: Duration,
    allow_legacy: bool,
}

impl fmt::Debug for SignatureVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignatureVerifier")
            .field(
                "secrets",
                &format_args!("[{} redacted]", self.secrets.len()),
            )
            .field("public_url", &self.public_url)
            .field("tolerance", &self.tolerance)
            .field("allow_legacy", &self.allow_legacy)
            .finish()
    }
}

impl SignatureVerifier {
    /// A verifier for the app's client secret. v1/v2 are accepted too (older apps and
    /// webhook deliveries use v1); see [`SignatureVerifier::v3_only`].
    pub fn new(client_secret: SecretString) -> Self {
        Self {
            secrets: vec![client_secret],
            public_url: None,
            tolerance: DEFAULT_TOLERANCE,
            allow_legacy: true,
        }
    }

    /// Also accepts signatures made with another secret (during a client-secret rotation).
    #[must_use]
    pub fn with_additional_secret(mut self, secret: SecretString) -> Self {
        self.secrets.push(secret);
        self
    }

    /// The public URL HubSpot calls (the target URL configured in the app, e.g.
    /// `https://hooks.example.com/webhooks/hubspot`). v2 and v3 sign this URL, so it must be
    /// the one HubSpot used, not an internal address behind a proxy. A query string on the
    /// incoming request is appended to it.
    #[must_use]
    pub fn with_public_url(mut self, url: impl Into<String>) -> Self {
        self.public_url = Some(url.into());
        self
    }

    /// The v3 timestamp window (default five minutes, as HubSpot documents).
    #[must_use]
    pub fn with_tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// Refuses v1 and v2 signatures (they carry no timestamp, so a captured request can be
    /// replayed; deduplicate deliveries if you accept them).
    #[must_use]
    pub fn v3_only(mut self) -> Self {
        self.allow_legacy = false;
        self
    }

    /// The full URI HubSpot signed: the configured public URL plus the incoming query.
    fn signed_uri(&self, query: Option<&str>) -> Result<String, WebhookError> {
        let base = self.public_url.as_deref().ok_or_else(|| {
            WebhookError::NotConfigured("webhook public URL not configured: set it to the target URL HubSpot calls (v2/v3 signatures cover it)".into())
        })?;
        Ok(match query.filter(|q| !q.is_empty()) {
            Some(q) if !base.contains('?') => format!("{base}?{q}"),
            _ => base.to_owned(),
        })
    }

    /// Verifies a request from its method, its query string (without `?`, if any), headers
    /// and raw body. `now_ms` is the current time in epoch milliseconds (inject it in tests).
    ///
    /// v3 is used when its header is present; otherwise v1/v2 by `X-HubSpot-Signature-Version`.
    pub fn verify(
        &self,
        method: &str,
        query: Option<&str>,
        headers: &HeaderMap,
        body: &[u8],
        now_ms: i64,
    ) -> Result<SignatureVersion, WebhookError> {
        if let Some(sig) = header(headers, SIGNATURE_V3_HEADER)? {
            let ts = header(headers, TIMESTAMP_HEADER)?.ok_or(WebhookError::MissingSignature {
                header: "X-HubSpot-Request-Timestamp",
            })?;
            let uri = self.signed_uri(query)?;
            self.verify_v3(method, &uri, body, sig, ts, now_ms)?;
            return Ok(SignatureVersion::V3);
        }
        let sig = header(headers, SIGNATURE_HEADER)?.ok_or(WebhookError::MissingSignature {
            header: "X-HubSpot-Signature-v3",
        })?;
        if !self.allow_legacy {
            return Err(WebhookError::MissingSignature {
                header: "X-HubSpot-Signature-v3",
            });
        }
        match header(headers, SIGNATURE_VERSION_HEADER)?.unwrap_or("v1") {
            v if v.eq_ignore_ascii_case("v1") => {
                self.verify_v1(body, sig)?;
                Ok(SignatureVersion::V1)
            }
            v if v.eq_ignore_ascii_case("v2") => {
                let uri = self.signed_uri(query)?;
                self.verify_v2(method, &uri, body, sig)?;
                Ok(SignatureVersion::V2)
            }
            other => Err(WebhookError::MalformedSignature(format!(
                "unknown X-HubSpot-Signature-Version {other:?}"
            ))),
        }
    }

    /// Checks a v1 signature (hex) against the body.
    pub fn verify_v1(&self, body: &[u8], signature: &str) -> Result<(), WebhookError> {
        let given = decode_hex(signature)?;
        let ok = self.secrets.iter().fold(false, |acc, s| {
            let expected = v1_signature(s.expose_secret(), body);
            acc | ct_eq(expected.as_bytes(), hex::encode(&given).as_bytes())
        });
        if ok {
            Ok(())
        } else {
            Err(WebhookError::BadSignature)
        }
    }

    /// Checks a v2 signature (hex) against method, full URI and body.
    pub fn verify_v2(
        &self,
        method: &str,
        uri: &str,
        body: &[u8],
        signature: &str,
    ) -> Result<(), WebhookError> {
        let given = hex::encode(decode_hex(signature)?);
        let ok = self.secrets.iter().fold(false, |acc, s| {
            let expected = v2_signature(s.expose_secret(), method, uri, body);
            acc | ct_eq(expected.as_bytes(), given.as_bytes())
        });
        if ok {
            Ok(())
        } else {
            Err(WebhookError::BadSignature)
        }
    }

    /// Checks a v3 signature (base64) against method, full URI (decoded here), body and the
    /// timestamp header, refusing timestamps older than the tolerance.
    pub fn verify_v3(
        &self,
        method: &str,
        uri: &str,
        body: &[u8],
        signature: &str,
        timestamp: &str,
        now_ms: i64,
    ) -> Result<(), WebhookError> {
        let ts: i64 = timestamp.trim().parse().map_err(|_| {
            WebhookError::MalformedSignature(format!(
                "X-HubSpot-Request-Timestamp {timestamp:?} is not epoch milliseconds"
            ))
        })?;
        let tolerance_ms = i64::try_from(self.tolerance.as_millis()).unwrap_or(i64::MAX);
        let age_ms = now_ms.saturating_sub(ts);
        if age_ms > tolerance_ms {
            return Err(WebhookError::StaleTimestamp {
                age: Duration::from_millis(u64::try_from(age_ms).unwrap_or(u64::MAX)),
                tolerance: self.tolerance,
            });
        }
        // HubSpot's SDKs accept any future timestamp; a far-future one would make a captured
        // request replayable for that long, so beyond the same window it is refused too.
        if age_ms < -tolerance_ms {
            return Err(WebhookError::FutureTimestamp {
                ahead: Duration::from_millis(age_ms.unsigned_abs()),
                tolerance: self.tolerance,
            });
        }
        let given = base64::engine::general_purpose::STANDARD
            .decode(signature.trim())
            .map_err(|_| {
                WebhookError::MalformedSignature("X-HubSpot-Signature-v3 is not base64".into())
            })?;
        let ok = self.secrets.iter().fold(false, |acc, s| {
            let expected = v3_mac(s.expose_secret().as_bytes(), method, uri, body, timestamp);
            acc | ct_eq(&expected, &given)
        });
        if ok {
            Ok(())
        } else {
            Err(WebhookError::BadSignature)
        }
    }
}

fn header<'h>(headers: &'h HeaderMap, name: &'static str) -> Result<Option<&'h str>, WebhookError> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => v.to_str().map(Some).map_err(|_| {
            WebhookError::MalformedSignature(format!("header {name} is not visible ASCII"))
        }),
    }
}

fn decode_hex(signature: &str) -> Result<Vec<u8>, WebhookError> {
    hex::decode(signature.trim())
        .map_err(|_| WebhookError::MalformedSignature("X-HubSpot-Signature is not hex".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy";
    const URL: &str = "https://www.example.com/webhook_uri";
    const V1_BODY: &str = r#"[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,"changeSource":"CRM","changeFlag":"NEW","appId":54321}]"#;
    const SQ_BODY: &str = "{'example_field':'example_value'}";

    fn verifier() -> SignatureVerifier {
        SignatureVerifier::new(SecretString::from(SECRET)).with_public_url(URL)
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn official_v1_docs_vector() {
        let expected = "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de";
        assert_eq!(v1_signature(SECRET, V1_BODY.as_bytes()), expected);
        let h = headers(&[
            (SIGNATURE_HEADER, expected),
            (SIGNATURE_VERSION_HEADER, "v1"),
        ]);
        assert_eq!(
            verifier()
                .verify("POST", None, &h, V1_BODY.as_bytes(), 0)
                .unwrap(),
            SignatureVersion::V1
        );
    }

    #[test]
    fn official_v1_python_vector() {
        assert_eq!(
            v1_signature(SECRET, SQ_BODY.as_bytes()),
            "69fc6631a867edd4f9e9e627fc5c1148e3fbdd8b21837b6d2b8901c1fa57f750"
        );
    }

    #[test]
    fn official_v2_get_empty_body_vector() {
        let expected = "eee2dddcc73c94d699f5e395f4b9d454a069a6855fbfa152e91e88823087200e";
        assert_eq!(v2_signature(SECRET, "GET", URL, b""), expected);
        let h = headers(&[
            (SIGNATURE_HEADER, expected),
            (SIGNATURE_VERSION_HEADER, "v2"),
        ]);
        assert_eq!(
            verifier().verify("GET", None, &h, b"", 0).unwrap(),
            SignatureVersion::V2
        );
    }

    #[test]
    fn official_v2_post_node_vector() {
        assert_eq!(
            v2_signature(SECRET, "POST", URL, br#"{"example_field":"example_value"}"#),
            "9569219f8ba981ffa6f6f16aa0f48637d35d728c7e4d93d0d52efaa512af7900"
        );
    }

    #[test]
    fn official_v2_post_python_vector() {
        assert_eq!(
            v2_signature(SECRET, "POST", URL, SQ_BODY.as_bytes()),
            "4fe4e3a7d3cf09db53be39d0a58130e2aaba074ec123a9e355b876a689a1c383"
        );
    }

    #[test]
    fn official_v3_python_vector_with_fixed_clock() {
        let expected = "K36dawei4A+QBNolUOqo7s91KQDWQ5MXZ/QufNYuk/Y=";
        assert_eq!(
            v3_signature(SECRET, "POST", URL, SQ_BODY.as_bytes(), "1693657560000"),
            expected
        );
        let h = headers(&[
            (SIGNATURE_V3_HEADER, expected),
            (TIMESTAMP_HEADER, "1693657560000"),
        ]);
        let now = 1_693_657_560_000 + 299_000;
        assert_eq!(
            verifier()
                .verify("POST", None, &h, SQ_BODY.as_bytes(), now)
                .unwrap(),
            SignatureVersion::V3
        );
    }

    #[test]
    fn v3_uri_decoding_pair() {
        let raw = "https://www.example.com/webhook_uri?portal%3Aid=62515&tags=a%2Cb";
        assert_eq!(
            decode_uri_for_v3(raw),
            "https://www.example.com/webhook_uri?portal:id=62515&tags=a,b"
        );
        let body = br#"[{"eventId":1}]"#;
        let good = "+89bCSRecERCvjMsyFZTdq5z4JA5XRgqI8Ybv4sE49o=";
        assert_eq!(
            v3_signature(SECRET, "POST", raw, body, "1700000000000"),
            good
        );
        // A signer that forgot to decode produces this; it must fail verification.
        let undecoded = "yxrkusqGFMWgSMdCjreeGsjZD8YKkVN81m+PyZ3QT1Y=";
        let v = SignatureVerifier::new(SecretString::from(SECRET))
            .with_public_url("https://www.example.com/webhook_uri");
        let q = Some("portal%3Aid=62515&tags=a%2Cb");
        let ok = headers(&[
            (SIGNATURE_V3_HEADER, good),
            (TIMESTAMP_HEADER, "1700000000000"),
        ]);
        assert_eq!(
            v.verify("POST", q, &ok, body, 1_700_000_000_000).unwrap(),
            SignatureVersion::V3
        );
        let bad = headers(&[
            (SIGNATURE_V3_HEADER, undecoded),
            (TIMESTAMP_HEADER, "1700000000000"),
        ]);
        assert!(matches!(
            v.verify("POST", q, &bad, body, 1_700_000_000_000),
            Err(WebhookError::BadSignature)
        ));
    }

    #[test]
    fn v3_get_empty_body_vector() {
        assert_eq!(
            v3_signature(SECRET, "GET", URL, b"", "1700000000000"),
            "r3KKZGKCAis7hc/eM/k4wr0D0ZRQhbee2UGU0SAPfxM="
        );
    }

    #[test]
    fn decode_table_is_exact_and_case_insensitive() {
        assert_eq!(
            decode_uri_for_v3("/a%3a%2f%3F%40%21%24%27%28%29%2a%2C%3b%20%26%25%"),
            "/a:/?@!$'()*,;%20%26%25%"
        );
        assert!(matches!(
            decode_uri_for_v3("/plain"),
            Cow::Borrowed("/plain")
        ));
    }

    #[test]
    fn v3_stale_and_far_future_timestamps_refused() {
        let ts = "1693657560000";
        let sig = v3_signature(SECRET, "POST", URL, SQ_BODY.as_bytes(), ts);
        let h = headers(&[(SIGNATURE_V3_HEADER, &sig), (TIMESTAMP_HEADER, ts)]);
        let stale = verifier().verify(
            "POST",
            None,
            &h,
            SQ_BODY.as_bytes(),
            1_693_657_560_000 + 300_001,
        );
        assert!(
            matches!(stale, Err(WebhookError::StaleTimestamp { .. })),
            "{stale:?}"
        );
        // Clock skew within the window is fine; a far-future timestamp is refused.
        assert!(
            verifier()
                .verify(
                    "POST",
                    None,
                    &h,
                    SQ_BODY.as_bytes(),
                    1_693_657_560_000 - 299_000
                )
                .is_ok()
        );
        let future = verifier().verify("POST", None, &h, SQ_BODY.as_bytes(), 1_693_657_000_000);
        assert!(
            matches!(future, Err(WebhookError::FutureTimestamp { .. })),
            "{future:?}"
        );
    }

    #[test]
    fn tampered_body_method_url_or_timestamp_fail() {
        let ts = "1693657560000";
        let now = 1_693_657_560_000;
        let sig = v3_signature(SECRET, "POST", URL, SQ_BODY.as_bytes(), ts);
        let h = headers(&[(SIGNATURE_V3_HEADER, &sig), (TIMESTAMP_HEADER, ts)]);
        assert!(matches!(
            verifier().verify("POST", None, &h, b"{'example_field':'x'}", now),
            Err(WebhookError::BadSignature)
        ));
        assert!(matches!(
            verifier().verify("PUT", None, &h, SQ_BODY.as_bytes(), now),
            Err(WebhookError::BadSignature)
        ));
        assert!(matches!(
            verifier().verify("POST", Some("a=1"), &h, SQ_BODY.as_bytes(), now),
            Err(WebhookError::BadSignature)
        ));
        let h2 = headers(&[
            (SIGNATURE_V3_HEADER, &sig),
            (TIMESTAMP_HEADER, "1693657560001"),
        ]);
        assert!(matches!(
            verifier().verify("POST", None, &h2, SQ_BODY.as_bytes(), now),
            Err(WebhookError::BadSignature)
        ));
        let v1 = headers(&[(
            SIGNATURE_HEADER,
            "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de",
        )]);
        assert!(matches!(
            verifier().verify("POST", None, &v1, b"[]", now),
            Err(WebhookError::BadSignature)
        ));
    }

    #[test]
    fn wrong_secret_fails_and_rotation_accepts_either() {
        let ts = "1693657560000";
        let now = 1_693_657_560_000;
        let sig = v3_signature("old-secret", "POST", URL, b"[]", ts);
        let h = headers(&[(SIGNATURE_V3_HEADER, &sig), (TIMESTAMP_HEADER, ts)]);
        assert!(matches!(
            verifier().verify("POST", None, &h, b"[]", now),
            Err(WebhookError::BadSignature)
        ));
        let rotating = verifier().with_additional_secret(SecretString::from("old-secret"));
        assert!(rotating.verify("POST", None, &h, b"[]", now).is_ok());
    }

    #[test]
    fn missing_and_malformed_headers_are_typed() {
        let v = verifier();
        assert!(matches!(
            v.verify("POST", None, &HeaderMap::new(), b"[]", 0),
            Err(WebhookError::MissingSignature { .. })
        ));
        let no_ts = headers(&[(SIGNATURE_V3_HEADER, "abc=")]);
        assert!(matches!(
            v.verify("POST", None, &no_ts, b"[]", 0),
            Err(WebhookError::MissingSignature { .. })
        ));
        let bad_ts = headers(&[
            (SIGNATURE_V3_HEADER, "abc="),
            (TIMESTAMP_HEADER, "yesterday"),
        ]);
        assert!(matches!(
            v.verify("POST", None, &bad_ts, b"[]", 0),
            Err(WebhookError::MalformedSignature(_))
        ));
        let bad_b64 = headers(&[(SIGNATURE_V3_HEADER, "!!!"), (TIMESTAMP_HEADER, "0")]);
        assert!(matches!(
            v.verify("POST", None, &bad_b64, b"[]", 0),
            Err(WebhookError::MalformedSignature(_))
        ));
        let bad_hex = headers(&[(SIGNATURE_HEADER, "zz")]);
        assert!(matches!(
            v.verify("POST", None, &bad_hex, b"[]", 0),
            Err(WebhookError::MalformedSignature(_))
        ));
        let bad_ver = headers(&[(SIGNATURE_HEADER, "00"), (SIGNATURE_VERSION_HEADER, "v9")]);
        assert!(matches!(
            v.verify("POST", None, &bad_ver, b"[]", 0),
            Err(WebhookError::MalformedSignature(_))
        ));
    }

    #[test]
    fn v3_only_refuses_legacy_and_missing_public_url_is_config_error() {
        let v1 = headers(&[(
            SIGNATURE_HEADER,
            "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de",
        )]);
        assert!(
            verifier()
                .v3_only()
                .verify("POST", None, &v1, V1_BODY.as_bytes(), 0)
                .is_err()
        );
        let no_url = SignatureVerifier::new(SecretString::from(SECRET));
        let h = headers(&[(SIGNATURE_V3_HEADER, "abc="), (TIMESTAMP_HEADER, "0")]);
        assert!(matches!(
            no_url.verify("POST", None, &h, b"", 0),
            Err(WebhookError::NotConfigured(_))
        ));
    }

    #[test]
    fn capitalized_v3_header_is_found() {
        let ts = "1693657560000";
        let sig = v3_signature(SECRET, "POST", URL, b"[]", ts);
        let mut h = HeaderMap::new();
        h.insert(
            http::HeaderName::from_static("x-hubspot-signature-v3"),
            sig.parse().unwrap(),
        );
        h.insert("X-HubSpot-Request-Timestamp", ts.parse().unwrap());
        assert!(
            verifier()
                .verify("POST", None, &h, b"[]", 1_693_657_560_000)
                .is_ok()
        );
    }

    #[test]
    fn debug_hides_secret() {
        let s = format!("{:?}", verifier());
        assert!(!s.contains("yyyy"), "{s}");
    }
}
