//! `X-Cativa-Signature: t=<unix seconds>,v1=<hex>`: parsing, verification and signing.
//!
//! The scheme is Stripe's: the signed payload is `"{t}.{raw body}"`, the signature is the
//! lowercase hex HMAC-SHA256 of it keyed with the whole secret string as UTF-8 (prefix
//! included, nothing base64-decoded). A header may carry several `v1` values (rotation on
//! the sender's side) and a receiver may hold several secrets (rotation on ours): any `v1`
//! matching any secret verifies. Comparisons are constant-time ([`subtle`]). The timestamp
//! must lie within the tolerance on **both** sides of `now` (Stripe's libraries only check
//! the past; a far-future timestamp is as suspicious as a stale one).

use std::fmt;
use std::time::Duration;

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::WebhookError;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "X-Cativa-Signature";

/// The default timestamp tolerance: 300 s either way.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

/// Headers with more `v1` values than this are refused (bounds the work per request).
pub const MAX_SIGNATURES: usize = 16;

/// A parsed signature header.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SignatureHeader {
    /// `t`: Unix seconds.
    pub timestamp: i64,
    /// Every `v1` value, decoded from hex (values that are not 32 bytes of hex are kept
    /// out: they can match nothing).
    pub signatures: Vec<[u8; 32]>,
}

impl fmt::Debug for SignatureHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignatureHeader")
            .field("timestamp", &self.timestamp)
            .field("signatures", &self.signatures.len())
            .finish()
    }
}

impl SignatureHeader {
    /// Parses `t=<unix>,v1=<hex>[,v1=<hex>...]`. Elements are split on `,`, then on the
    /// first `=`; unknown schemes (`v0`) are ignored.
    ///
    /// # Errors
    /// [`WebhookError::MalformedHeader`] when there is no single integer `t`, or too many
    /// `v1` values; [`WebhookError::NoV1`] when there is no `v1` at all.
    pub fn parse(header: &str) -> Result<Self, WebhookError> {
        let mut timestamp = None;
        let mut v1_count = 0usize;
        let mut signatures = Vec::new();
        for element in header.split(',') {
            let Some((key, value)) = element.trim().split_once('=') else {
                continue;
            };
            match key.trim() {
                "t" => {
                    if timestamp.is_some() {
                        return Err(WebhookError::MalformedHeader("more than one `t` element"));
                    }
                    let value = value.trim();
                    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                        return Err(WebhookError::MalformedHeader(
                            "`t` is not a Unix timestamp in seconds",
                        ));
                    }
                    timestamp = Some(
                        value
                            .parse::<i64>()
                            .map_err(|_| WebhookError::MalformedHeader("`t` is out of range"))?,
                    );
                }
                "v1" => {
                    v1_count += 1;
                    if v1_count > MAX_SIGNATURES {
                        return Err(WebhookError::MalformedHeader("too many `v1` signatures"));
                    }
                    let mut sig = [0u8; 32];
                    if hex::decode_to_slice(value.trim(), &mut sig).is_ok() {
                        signatures.push(sig);
                    }
                }
                _ => {}
            }
        }
        let timestamp = timestamp.ok_or(WebhookError::MalformedHeader(
            "unable to extract the timestamp (`t=`) and signatures",
        ))?;
        if v1_count == 0 {
            return Err(WebhookError::NoV1);
        }
        Ok(Self {
            timestamp,
            signatures,
        })
    }
}

fn mac(secret: &SecretString, timestamp: i64, body: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length, so `new_from_slice` cannot fail here; an empty key is
    // refused when a verifier is built.
    let mut m = match <Hmac<Sha256> as Mac>::new_from_slice(secret.expose_secret().as_bytes()) {
        Ok(m) => m,
        Err(_) => return [0u8; 32],
    };
    m.update(timestamp.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    m.finalize().into_bytes().into()
}

/// Computes the signature header value for `body` sent at `timestamp` (Unix seconds):
/// `t=<timestamp>,v1=<hex>`. For tests, the sandbox and load generators.
///
/// ```
/// use secrecy::SecretString;
///
/// let header = cativa_client::webhook::sign(
///     &SecretString::from("whsec_test_secret"),
///     1_700_000_000,
///     br#"{"id":"evt_test_webhook","object":"event"}"#,
/// );
/// assert_eq!(
///     header,
///     "t=1700000000,v1=d95c6b7477fbd7e9f90b1b0ef5f9c7ac25abca5382460e0d988c2b2a5b71b990"
/// );
/// ```
pub fn sign(secret: &SecretString, timestamp: i64, body: &[u8]) -> String {
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac(secret, timestamp, body))
    )
}

/// Verifies Cativa signatures against one or more secrets.
///
/// ```
/// use secrecy::SecretString;
/// use cativa_client::webhook::{sign, SignatureVerifier};
///
/// let secret = SecretString::from("whsec_new");
/// let verifier = SignatureVerifier::new(secret.clone())?
///     .with_secret(SecretString::from("whsec_old"))?; // during rotation
/// let body = br#"{"CustomerId":"c1"}"#;
/// let header = sign(&secret, 1_700_000_000, body);
/// verifier.verify(Some(&header), body, 1_700_000_100)?;
/// # Ok::<(), cativa_client::webhook::WebhookError>(())
/// ```
#[derive(Clone)]
pub struct SignatureVerifier {
    secrets: Vec<SecretString>,
    tolerance: Option<Duration>,
}

impl fmt::Debug for SignatureVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignatureVerifier")
            .field(
                "secrets",
                &format_args!("[{} redacted]", self.secrets.len()),
            )
            .field("tolerance", &self.tolerance)
            .finish()
    }
}

impl SignatureVerifier {
    /// A verifier for one secret, with the default 300 s tolerance.
    ///
    /// # Errors
    /// [`WebhookError::EmptySecret`] for an empty secret.
    pub fn new(secret: SecretString) -> Result<Self, WebhookError> {
        Self {
            secrets: Vec::new(),
            tolerance: Some(DEFAULT_TOLERANCE),
        }
        .with_secret(secret)
    }

    /// Also accepts signatures made with `secret` (keep the old secret during rotation).
    ///
    /// # Errors
    /// [`WebhookError::EmptySecret`] for an empty secret.
    pub fn with_secret(mut self, secret: SecretString) -> Result<Self, WebhookError> {
        if secret.expose_secret().is_empty() {
            return Err(WebhookError::EmptySecret);
        }
        self.secrets.push(secret);
        Ok(self)
    }

    /// Sets the timestamp tolerance, applied both ways: `|now - t| <= tolerance`.
    #[must_use]
    pub fn with_tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance = Some(tolerance);
        self
    }

    /// Disables the timestamp check. Only for re-verifying stored deliveries: without it a
    /// captured delivery can be replayed forever (the delivery ledger still dedupes it).
    #[must_use]
    pub fn without_tolerance(mut self) -> Self {
        self.tolerance = None;
        self
    }

    /// The tolerance, if the check is on.
    pub fn tolerance(&self) -> Option<Duration> {
        self.tolerance
    }

    /// Verifies `header` (the `X-Cativa-Signature` value, `None` when absent) over the raw
    /// `body` at `now` (Unix seconds), returning the parsed header.
    ///
    /// Order: parse, then signature (any `v1` against any secret, constant-time), then
    /// timestamp, so a stale or future error is only reported for an authentic delivery.
    ///
    /// # Errors
    /// `MissingHeader`, `MalformedHeader`, `NoV1`, `BadSignature`, `StaleTimestamp`,
    /// `FutureTimestamp`.
    pub fn verify(
        &self,
        header: Option<&str>,
        body: &[u8],
        now: i64,
    ) -> Result<SignatureHeader, WebhookError> {
        let header = header.ok_or(WebhookError::MissingHeader(SIGNATURE_HEADER))?;
        let parsed = SignatureHeader::parse(header)?;
        let mut matched = subtle::Choice::from(0u8);
        for secret in &self.secrets {
            let expected = mac(secret, parsed.timestamp, body);
            for candidate in &parsed.signatures {
                matched |= expected.ct_eq(candidate);
            }
        }
        if !bool::from(matched) {
            return Err(WebhookError::BadSignature);
        }
        if let Some(tol) = self.tolerance {
            let tol = i64::try_from(tol.as_secs()).unwrap_or(i64::MAX);
            let age = now.saturating_sub(parsed.timestamp);
            if age > tol {
                return Err(WebhookError::StaleTimestamp {
                    age_secs: age,
                    tolerance_secs: tol,
                });
            }
            if -age > tol {
                return Err(WebhookError::FutureTimestamp {
                    ahead_secs: -age,
                    tolerance_secs: tol,
                });
            }
        }
        Ok(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"id":"evt_test_webhook","object":"event"}"#;
    const T: i64 = 1_700_000_000;
    const V_TEST: &str = "d95c6b7477fbd7e9f90b1b0ef5f9c7ac25abca5382460e0d988c2b2a5b71b990";
    const V_OLD: &str = "e016b64cc4263f90e0336f3975e8d4ac9cc185935edc3ebdd405db64ad0bb1c5";

    fn secret(s: &str) -> SecretString {
        SecretString::from(s)
    }

    fn verifier() -> SignatureVerifier {
        SignatureVerifier::new(secret("whsec_test_secret")).unwrap()
    }

    #[test]
    fn api_facts_vectors() {
        let s = secret("whsec_test_secret");
        assert_eq!(sign(&s, T, BODY), format!("t={T},v1={V_TEST}"));
        assert_eq!(
            sign(&secret("whsec_old_secret"), T, BODY),
            format!("t={T},v1={V_OLD}")
        );
        assert_eq!(
            sign(&s, T, b""),
            format!("t={T},v1=316b9ab98c15bfa039d243f3196acee619cf29749a91a634e6a8154e2f7b6727")
        );
        let utf8 = r#"{"name":"Zoë – café"}"#.as_bytes();
        assert_eq!(utf8.len(), 25);
        assert_eq!(
            sign(&s, T, utf8),
            format!("t={T},v1=32e777160d59f94a5a5cfad8ac030d09b600a35adbe648dcc35634743b65d0c5")
        );
        for (sec, body, sig) in [
            ("whsec_test_secret", BODY, V_TEST),
            ("whsec_old_secret", BODY, V_OLD),
            (
                "whsec_test_secret",
                b"".as_slice(),
                "316b9ab98c15bfa039d243f3196acee619cf29749a91a634e6a8154e2f7b6727",
            ),
            (
                "whsec_test_secret",
                utf8,
                "32e777160d59f94a5a5cfad8ac030d09b600a35adbe648dcc35634743b65d0c5",
            ),
        ] {
            let v = SignatureVerifier::new(secret(sec)).unwrap();
            v.verify(Some(&format!("t={T},v1={sig}")), body, T).unwrap();
        }
    }

    #[test]
    fn valid_signature_verifies_within_tolerance_both_ways() {
        let h = format!("t={T},v1={V_TEST}");
        let parsed = verifier().verify(Some(&h), BODY, T + 300).unwrap();
        assert_eq!(parsed.timestamp, T);
        verifier().verify(Some(&h), BODY, T - 300).unwrap();
    }

    #[test]
    fn rotation_header_with_two_v1_values() {
        // Secret rotation: an old-secret signature first, then the valid one.
        let h = format!("t={T},v1={V_OLD},v1={V_TEST}");
        verifier().verify(Some(&h), BODY, T).unwrap();
        let h = format!("t={T},v1={V_TEST},v1={}", "0".repeat(64));
        verifier().verify(Some(&h), BODY, T).unwrap();
    }

    #[test]
    fn rotation_with_two_secrets() {
        let v = SignatureVerifier::new(secret("whsec_new_secret"))
            .unwrap()
            .with_secret(secret("whsec_old_secret"))
            .unwrap();
        v.verify(Some(&format!("t={T},v1={V_OLD}")), BODY, T)
            .unwrap();
        let only_new = SignatureVerifier::new(secret("whsec_new_secret")).unwrap();
        assert!(matches!(
            only_new.verify(Some(&format!("t={T},v1={V_OLD}")), BODY, T),
            Err(WebhookError::BadSignature)
        ));
    }

    #[test]
    fn tampered_body_and_wrong_secret_fail() {
        let h = format!("t={T},v1={V_TEST}");
        let tampered = br#"{"id":"evt_test_webhook","object":"evenT"}"#;
        assert!(matches!(
            verifier().verify(Some(&h), tampered, T),
            Err(WebhookError::BadSignature)
        ));
        let wrong = SignatureVerifier::new(secret("whsec_other")).unwrap();
        assert!(matches!(
            wrong.verify(Some(&h), BODY, T),
            Err(WebhookError::BadSignature)
        ));
        // A changed timestamp invalidates the signature too.
        let h = format!("t={},v1={V_TEST}", T + 1);
        assert!(matches!(
            verifier().verify(Some(&h), BODY, T),
            Err(WebhookError::BadSignature)
        ));
    }

    #[test]
    fn stale_and_future_timestamps_fail() {
        let h = format!("t={T},v1={V_TEST}");
        assert!(matches!(
            verifier().verify(Some(&h), BODY, T + 301),
            Err(WebhookError::StaleTimestamp {
                age_secs: 301,
                tolerance_secs: 300
            })
        ));
        assert!(matches!(
            verifier().verify(Some(&h), BODY, T - 301),
            Err(WebhookError::FutureTimestamp {
                ahead_secs: 301,
                tolerance_secs: 300
            })
        ));
        // stripe-python's case: t = now - 15 with tolerance 10.
        let v = verifier().with_tolerance(Duration::from_secs(10));
        assert!(matches!(
            v.verify(Some(&h), BODY, T + 15),
            Err(WebhookError::StaleTimestamp { .. })
        ));
        verifier()
            .without_tolerance()
            .verify(Some(&h), BODY, T + 1_000_000)
            .unwrap();
    }

    #[test]
    fn missing_and_garbage_headers() {
        assert!(matches!(
            verifier().verify(None, BODY, T),
            Err(WebhookError::MissingHeader(SIGNATURE_HEADER))
        ));
        for garbage in [
            "",
            "garbage",
            "t=,v1=abc",
            "t=abc,v1=00",
            "v1=00",
            "t=1,t=2,v1=00",
            "t=-5,v1=00",
            "t=99999999999999999999,v1=00",
        ] {
            assert!(
                matches!(
                    verifier().verify(Some(garbage), BODY, T),
                    Err(WebhookError::MalformedHeader(_))
                ),
                "{garbage:?}"
            );
        }
        assert!(matches!(
            verifier().verify(Some(&format!("t={T},v0={V_TEST}")), BODY, T),
            Err(WebhookError::NoV1)
        ));
        assert!(matches!(
            verifier().verify(Some(&format!("t={T}")), BODY, T),
            Err(WebhookError::NoV1)
        ));
        // A v1 that is not hex is no match.
        assert!(matches!(
            verifier().verify(Some(&format!("t={T},v1=zz")), BODY, T),
            Err(WebhookError::BadSignature)
        ));
        let many = format!("t={T}{}", ",v1=00".repeat(MAX_SIGNATURES + 1));
        assert!(matches!(
            verifier().verify(Some(&many), BODY, T),
            Err(WebhookError::MalformedHeader(_))
        ));
    }

    #[test]
    fn header_parsing_is_lenient_about_spaces_and_order_and_case() {
        let h = format!(" v1={} , t={T} ,x=y", V_TEST.to_uppercase());
        verifier().verify(Some(&h), BODY, T).unwrap();
    }

    proptest::proptest! {
        #[test]
        fn sign_then_verify_and_any_change_breaks_it(
            secret_text in "[ -~]{1,40}",
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
            t in 0i64..4_000_000_000,
            flip in proptest::prelude::any::<proptest::sample::Index>(),
        ) {
            let s = secret(&secret_text);
            let v = SignatureVerifier::new(s.clone()).unwrap();
            let header = sign(&s, t, &body);
            proptest::prop_assert!(v.verify(Some(&header), &body, t).is_ok());
            if !body.is_empty() {
                let mut tampered = body.clone();
                let i = flip.index(tampered.len());
                tampered[i] ^= 0x01;
                proptest::prop_assert_eq!(v.verify(Some(&header), &tampered, t), Err(WebhookError::BadSignature));
            }
            let other = SignatureVerifier::new(secret(&format!("{secret_text}x"))).unwrap();
            proptest::prop_assert_eq!(other.verify(Some(&header), &body, t), Err(WebhookError::BadSignature));
        }

        #[test]
        fn header_parsing_never_panics(header in "\\PC{0,200}") {
            let _ = SignatureHeader::parse(&header);
        }
    }

    #[test]
    fn empty_secret_is_refused_and_debug_hides_secrets() {
        assert!(matches!(
            SignatureVerifier::new(secret("")),
            Err(WebhookError::EmptySecret)
        ));
        let v = verifier().with_secret(secret("whsec_second")).unwrap();
        let d = format!("{v:?}");
        assert!(!d.contains("whsec"), "{d}");
        assert!(d.contains("2 redacted"), "{d}");
    }
}
