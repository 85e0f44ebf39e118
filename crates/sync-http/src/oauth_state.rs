//! The OAuth `state` parameter, bound to a tenant: an install flow sends it with the user to
//! the CRM's consent page and checks it when the CRM redirects back, so a callback forged by
//! another site (CSRF) or replayed after it expired is refused, and the code is credited to
//! the tenant that started the flow.
//!
//! A state reads `tenant.nonce.expiry.mac` (base64url, base64url, Unix seconds, base64url):
//! the MAC is HMAC-SHA256 under a secret only the service knows, over the other three parts,
//! and is compared in constant time.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::Mac;
use secrecy::{ExposeSecret, SecretSlice};

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// The shortest secret accepted: 32 bytes, the size of the MAC.
pub const MIN_STATE_SECRET_LEN: usize = 32;

/// Why a `state` was refused. Never carries the state itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// Not a state this SDK issued (wrong shape or encoding).
    #[error("the OAuth state is malformed: restart the install from the connect link")]
    Malformed,
    /// The MAC does not match: forged, altered, or issued under another secret.
    #[error(
        "the OAuth state was not issued by this service (forged or signed with another secret): restart the install"
    )]
    BadSignature,
    /// Issued by this service, but too long ago.
    #[error("the OAuth state expired: restart the install from the connect link")]
    Expired,
}

/// The secret that signs and checks OAuth `state` values. `Debug` never shows it.
#[derive(Clone)]
pub struct OAuthStateKey {
    secret: SecretSlice<u8>,
}

impl fmt::Debug for OAuthStateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OAuthStateKey([redacted])")
    }
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl OAuthStateKey {
    /// A key over `secret`, which must be at least [`MIN_STATE_SECRET_LEN`] bytes (generate
    /// it randomly and keep it with the service's other secrets). `None` when it is shorter.
    pub fn new(secret: SecretSlice<u8>) -> Option<Self> {
        (secret.expose_secret().len() >= MIN_STATE_SECRET_LEN).then_some(Self { secret })
    }

    fn mac(&self, signed: &str) -> HmacSha256 {
        // HMAC takes keys of any length, so this cannot fail.
        let mut mac = <HmacSha256 as Mac>::new_from_slice(self.secret.expose_secret())
            .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
        mac.update(b"cativa-oauth-state-v1\n");
        mac.update(signed.as_bytes());
        mac
    }

    /// A fresh state for `tenant`, valid for `ttl` from `now`, with a random nonce.
    pub fn issue(&self, tenant: &str, now: SystemTime, ttl: Duration) -> String {
        let mut nonce = [0u8; 16];
        crate::random::fill(&mut nonce);
        let expiry = unix_secs(now).saturating_add(ttl.as_secs());
        let signed = format!(
            "{}.{}.{expiry}",
            URL_SAFE_NO_PAD.encode(tenant.as_bytes()),
            URL_SAFE_NO_PAD.encode(nonce)
        );
        let tag = URL_SAFE_NO_PAD.encode(self.mac(&signed).finalize().into_bytes());
        format!("{signed}.{tag}")
    }

    /// Checks `state` at `now` and returns the tenant it was issued for.
    ///
    /// # Errors
    /// [`StateError`] when it is malformed, not signed with this key, or expired.
    pub fn verify(&self, state: &str, now: SystemTime) -> Result<String, StateError> {
        let (signed, tag) = state.rsplit_once('.').ok_or(StateError::Malformed)?;
        let mut parts = signed.split('.');
        let (Some(tenant), Some(_nonce), Some(expiry), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(StateError::Malformed);
        };
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| StateError::Malformed)?;
        // `verify_slice` compares in constant time.
        self.mac(signed)
            .verify_slice(&tag)
            .map_err(|_| StateError::BadSignature)?;
        let expiry: u64 = expiry.parse().map_err(|_| StateError::Malformed)?;
        if unix_secs(now) >= expiry {
            return Err(StateError::Expired);
        }
        let tenant = URL_SAFE_NO_PAD
            .decode(tenant)
            .map_err(|_| StateError::Malformed)?;
        String::from_utf8(tenant).map_err(|_| StateError::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> OAuthStateKey {
        OAuthStateKey::new(SecretSlice::from(vec![byte; 32])).unwrap()
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn a_state_names_its_tenant_until_it_expires() {
        let k = key(7);
        let s = k.issue("acme.tenant/1", at(1_000), Duration::from_secs(600));
        assert_eq!(k.verify(&s, at(1_599)).unwrap(), "acme.tenant/1");
        assert_eq!(k.verify(&s, at(1_600)), Err(StateError::Expired));
        assert_ne!(
            s,
            k.issue("acme.tenant/1", at(1_000), Duration::from_secs(600))
        );
    }

    #[test]
    fn forged_altered_and_foreign_states_are_refused() {
        let k = key(7);
        let s = k.issue("acme", at(1_000), Duration::from_secs(600));
        assert_eq!(key(8).verify(&s, at(1_001)), Err(StateError::BadSignature));
        // Another tenant spliced into a valid state.
        let mut parts: Vec<&str> = s.split('.').collect();
        let other = URL_SAFE_NO_PAD.encode("globex");
        parts[0] = &other;
        assert_eq!(
            k.verify(&parts.join("."), at(1_001)),
            Err(StateError::BadSignature)
        );
        for bad in ["", "abc", "a.b.c", "a.b.c.!!", "a.b.c.d.e"] {
            assert!(k.verify(bad, at(1_001)).is_err(), "{bad}");
        }
    }

    #[test]
    fn short_secrets_are_refused_and_debug_is_redacted() {
        assert!(OAuthStateKey::new(SecretSlice::from(vec![1u8; 31])).is_none());
        assert_eq!(format!("{:?}", key(9)), "OAuthStateKey([redacted])");
        let e = StateError::BadSignature.to_string();
        assert!(e.contains("restart"), "{e}");
    }
}
