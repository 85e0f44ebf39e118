//! The JWT bearer assertion (RFC 7523) Salesforce's JWT bearer flow signs with the app's
//! private key.
//!
//! The assertion is signed RS256 with `ring` (already in every build for TLS): the flow only
//! mints tokens, never reads them, so a JWT library would add a second crypto stack (with a
//! C build) for a base64 header, claims and one signature.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// The longest lifetime Salesforce accepts for an assertion: `exp` within 3 minutes.
pub const MAX_ASSERTION_LIFETIME: Duration = Duration::from_secs(180);

/// The claims of a Salesforce JWT bearer assertion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct JwtClaims {
    /// The app's consumer key (client id).
    pub iss: String,
    /// The Salesforce username the token is issued for.
    pub sub: String,
    /// `https://login.salesforce.com`, `https://test.salesforce.com` or an Experience Cloud
    /// site URL.
    pub aud: String,
    /// Expiry, in seconds since the epoch.
    pub exp: i64,
}

/// Everything needed to mint assertions. `Debug` never shows the key.
#[derive(Clone)]
pub struct JwtBearer {
    consumer_key: String,
    username: String,
    audience: Option<String>,
    key: Arc<RsaKeyPair>,
    lifetime: Duration,
}

impl fmt::Debug for JwtBearer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtBearer")
            .field("consumer_key", &self.consumer_key)
            .field("username", &self.username)
            .field("audience", &self.audience)
            .field("key", &"[redacted]")
            .field("lifetime", &self.lifetime)
            .finish()
    }
}

impl JwtBearer {
    /// Loads the RSA private key (PKCS#1 `RSA PRIVATE KEY` or PKCS#8 `PRIVATE KEY` PEM)
    /// whose certificate is uploaded to the app. Unless [`JwtBearer::audience`] sets it, the
    /// audience follows the client's login URL (`https://test.salesforce.com` for sandboxes,
    /// otherwise `https://login.salesforce.com`).
    pub fn from_pem(
        consumer_key: impl Into<String>,
        username: impl Into<String>,
        private_key_pem: &[u8],
    ) -> Result<Self, Error> {
        let der = PrivateKeyDer::from_pem_slice(private_key_pem)
            .map_err(|e| Error::Jwt(format!("no private key PEM block found ({e})")))?;
        let key = match &der {
            PrivateKeyDer::Pkcs1(k) => RsaKeyPair::from_der(k.secret_pkcs1_der()),
            PrivateKeyDer::Pkcs8(k) => RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()),
            _ => {
                return Err(Error::Jwt(
                    "the PEM holds an EC key, not an RSA key".to_owned(),
                ));
            }
        }
        .map_err(|e| Error::Jwt(format!("the RSA key was rejected ({e})")))?;
        Ok(Self {
            consumer_key: consumer_key.into(),
            username: username.into(),
            audience: None,
            key: Arc::new(key),
            lifetime: MAX_ASSERTION_LIFETIME,
        })
    }

    /// Sets the `aud` claim (`https://test.salesforce.com` for sandboxes).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// Sets the audience unless one was set explicitly.
    pub(crate) fn with_default_audience(mut self, audience: &str) -> Self {
        if self.audience.is_none() {
            self.audience = Some(audience.to_owned());
        }
        self
    }

    /// Sets how long each assertion is valid, capped at [`MAX_ASSERTION_LIFETIME`].
    pub fn lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime.min(MAX_ASSERTION_LIFETIME);
        self
    }

    /// The audience the assertions carry.
    pub fn audience_value(&self) -> &str {
        self.audience
            .as_deref()
            .unwrap_or("https://login.salesforce.com")
    }

    /// The claims of an assertion minted at `now`.
    pub(crate) fn claims(&self, now: DateTime<Utc>) -> JwtClaims {
        let lifetime = i64::try_from(self.lifetime.as_secs()).unwrap_or(180);
        JwtClaims {
            iss: self.consumer_key.clone(),
            sub: self.username.clone(),
            aud: self.audience_value().to_owned(),
            exp: now.timestamp() + lifetime,
        }
    }

    /// Signs a fresh assertion (RS256) valid from `now`. Salesforce issues no refresh token
    /// in this flow, so every renewal mints a new one.
    pub fn assertion(&self, now: DateTime<Utc>) -> Result<SecretString, Error> {
        let claims = serde_json::to_vec(&self.claims(now))
            .map_err(|e| Error::Jwt(format!("the claims did not serialize ({e})")))?;
        let mut token = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"RS256"}"#);
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(claims));
        let mut signature = vec![0u8; self.key.public().modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                token.as_bytes(),
                &mut signature,
            )
            .map_err(|_| Error::Jwt("signing failed".to_owned()))?;
        token.push('.');
        token.push_str(&URL_SAFE_NO_PAD.encode(signature));
        Ok(SecretString::from(token))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_a_key_that_is_not_rsa_pem() {
        let err = JwtBearer::from_pem(
            "ck",
            "user@example.com",
            b"-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n",
        );
        assert!(matches!(err, Err(Error::Jwt(_))));
        let err = JwtBearer::from_pem("ck", "user@example.com", b"not pem at all");
        assert!(matches!(err, Err(Error::Jwt(_))));
    }
}
