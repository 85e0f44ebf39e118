//! The keys that seal CRM credentials at rest, and the sealing itself: ChaCha20-Poly1305
//! (`ring`, already in every build for TLS), a random 12-byte nonce per row, and the tenant
//! and CRM as associated data, so a sealed row copied to another tenant does not open.
//!
//! Random 96-bit nonces stay safe well past 2^32 seals under one key; a row is sealed when
//! an account connects and at each token renewal, so 10,000 tenants renewing every 30
//! minutes seal about 2^27 rows a year. Rotate yearly and the margin is large.
//!
//! Rotation: make the new key [`CredentialKeys::current`], list the previous ones with
//! [`CredentialKeys::with_old`] so existing rows still open, call `rotate_credentials` on the
//! credential store to re-seal every row under the new key, then drop the old keys.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use secrecy::zeroize::Zeroizing;
use secrecy::{ExposeSecret, SecretBox, SecretString};
use serde::Deserialize;
use sync_core::{CrmKind, Error, TenantId};

/// The key size: 32 bytes (256 bits).
pub const KEY_LEN: usize = 32;
/// The nonce size of ChaCha20-Poly1305: 12 bytes.
pub(crate) const NONCE_LEN: usize = ring::aead::NONCE_LEN;
/// The nonce size of the XChaCha20-Poly1305 rows written by pre-release builds.
const PRE_RELEASE_NONCE_LEN: usize = 24;

/// One credential key and its id (stored with each row it seals). `Debug` never shows the
/// key.
pub struct CredentialKey {
    id: String,
    key: SecretBox<[u8; KEY_LEN]>,
}

impl fmt::Debug for CredentialKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialKey")
            .field("id", &self.id)
            .field("key", &"[redacted]")
            .finish()
    }
}

impl Clone for CredentialKey {
    fn clone(&self) -> Self {
        Self {
            id: self.id.clone(),
            key: SecretBox::new(Box::new(*self.key.expose_secret())),
        }
    }
}

fn config_error(detail: String) -> Error {
    Error::ConfigParse {
        format: "credential key",
        message: detail,
    }
}

impl CredentialKey {
    /// A key from 32 raw bytes. `id` names it in each row (e.g. `"2026-12"`); it must not
    /// be empty.
    ///
    /// # Errors
    /// [`Error::ConfigParse`] for an empty id.
    pub fn new(id: impl Into<String>, key: SecretBox<[u8; KEY_LEN]>) -> Result<Self, Error> {
        let id = id.into();
        if id.trim().is_empty() {
            return Err(config_error("a credential key needs a non-empty id".into()));
        }
        Ok(Self { id, key })
    }

    /// A key from its standard base64 form (44 characters; generate one with
    /// `openssl rand -base64 32`).
    ///
    /// # Errors
    /// [`Error::ConfigParse`] when it is not base64 or not 32 bytes (the message never
    /// contains the key).
    pub fn from_base64(id: impl Into<String>, encoded: &SecretString) -> Result<Self, Error> {
        let id = id.into();
        let raw = Zeroizing::new(
            STANDARD
                .decode(encoded.expose_secret().trim())
                .map_err(|_| config_error(format!("credential key {id:?} is not valid base64")))?,
        );
        let bytes: [u8; KEY_LEN] = raw.as_slice().try_into().map_err(|_| {
            config_error(format!(
                "credential key {id:?} is {} bytes; it must be {KEY_LEN} (base64 of 32 random bytes)",
                raw.len()
            ))
        })?;
        Self::new(id, SecretBox::new(Box::new(bytes)))
    }

    /// The key's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The cipher; ring refuses only keys of the wrong length, which the type rules out.
    fn cipher(&self) -> Result<LessSafeKey, ring::error::Unspecified> {
        UnboundKey::new(&CHACHA20_POLY1305, self.key.expose_secret()).map(LessSafeKey::new)
    }
}

/// A key as written in configuration: `{ id = "2026-12", key = "<base64>" }`.
#[derive(Deserialize)]
struct KeyConfig {
    id: String,
    key: SecretString,
}

/// The configuration form of [`CredentialKeys`].
#[derive(Deserialize)]
struct KeysConfig {
    current: KeyConfig,
    #[serde(default)]
    old: Vec<KeyConfig>,
}

/// The key that seals new rows and the older keys that still open existing ones.
///
/// Deserializes from `{ current = { id, key }, old = [{ id, key }, ...] }` with base64 keys.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "KeysConfig")]
pub struct CredentialKeys {
    current: CredentialKey,
    old: Vec<CredentialKey>,
}

impl TryFrom<KeysConfig> for CredentialKeys {
    type Error = Error;

    fn try_from(c: KeysConfig) -> Result<Self, Error> {
        let mut keys = Self::new(CredentialKey::from_base64(c.current.id, &c.current.key)?);
        for k in c.old {
            keys = keys.with_old(CredentialKey::from_base64(k.id, &k.key)?);
        }
        Ok(keys)
    }
}

/// What [`CredentialKeys::seal`] produces: the key id, the nonce and the ciphertext.
pub(crate) struct Sealed {
    pub(crate) key_id: String,
    pub(crate) nonce: Vec<u8>,
    pub(crate) ciphertext: Vec<u8>,
}

fn associated_data(tenant: &TenantId, crm: &CrmKind) -> Vec<u8> {
    let mut aad = Vec::with_capacity(tenant.as_str().len() + crm.as_str().len() + 16);
    aad.extend_from_slice(b"cativa-credentials-v1\0");
    aad.extend_from_slice(tenant.as_str().as_bytes());
    aad.push(0);
    aad.extend_from_slice(crm.as_str().as_bytes());
    aad
}

impl CredentialKeys {
    /// Seals with `current`.
    pub fn new(current: CredentialKey) -> Self {
        Self {
            current,
            old: Vec::new(),
        }
    }

    /// Adds a key that still opens rows sealed before a rotation.
    #[must_use]
    pub fn with_old(mut self, key: CredentialKey) -> Self {
        self.old.push(key);
        self
    }

    /// The key new rows are sealed with.
    pub fn current(&self) -> &CredentialKey {
        &self.current
    }

    pub(crate) fn seal(
        &self,
        tenant: &TenantId,
        crm: &CrmKind,
        plaintext: &[u8],
    ) -> Result<Sealed, Error> {
        let mut nonce = [0u8; NONCE_LEN];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut nonce).map_err(
            |_| Error::Credentials {
                tenant: tenant.clone(),
                detail: "the operating system's random number generator failed".into(),
            },
        )?;
        let aad = associated_data(tenant, crm);
        let mut ciphertext = plaintext.to_vec();
        self.current
            .cipher()
            .and_then(|c| {
                c.seal_in_place_append_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(&aad),
                    &mut ciphertext,
                )
            })
            .map_err(|_| Error::Credentials {
                tenant: tenant.clone(),
                detail: "encryption failed".into(),
            })?;
        Ok(Sealed {
            key_id: self.current.id.clone(),
            nonce: nonce.to_vec(),
            ciphertext,
        })
    }

    pub(crate) fn open(
        &self,
        tenant: &TenantId,
        crm: &CrmKind,
        sealed: &Sealed,
    ) -> Result<Zeroizing<Vec<u8>>, Error> {
        let fail = |detail: String| Error::Credentials {
            tenant: tenant.clone(),
            detail,
        };
        let key = std::iter::once(&self.current)
            .chain(&self.old)
            .find(|k| k.id == sealed.key_id)
            .ok_or_else(|| {
                fail(format!(
                    "they are sealed with key id {:?}, which is not configured: add that key to the old credential keys",
                    sealed.key_id
                ))
            })?;
        if sealed.nonce.len() == PRE_RELEASE_NONCE_LEN {
            return Err(fail(
                "they were sealed by a pre-release build (XChaCha20-Poly1305), which this one cannot open: connect the account again".to_owned(),
            ));
        }
        let nonce: [u8; NONCE_LEN] = sealed
            .nonce
            .as_slice()
            .try_into()
            .map_err(|_| fail(format!("the stored nonce is {} bytes, not {NONCE_LEN}: the row is damaged; connect the account again", sealed.nonce.len())))?;
        let mut buf = Zeroizing::new(sealed.ciphertext.clone());
        let len = key
            .cipher()
            .and_then(|c| {
                c.open_in_place(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(associated_data(tenant, crm)),
                    &mut buf,
                )
                .map(|plain| plain.len())
            })
            .map_err(|_| {
                fail(format!(
                    "the configured key {:?} does not open them (a different key under the same id, or a damaged row): configure the key they were sealed with, or connect the account again",
                    sealed.key_id
                ))
            })?;
        buf.truncate(len);
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str, byte: u8) -> CredentialKey {
        CredentialKey::new(id, SecretBox::new(Box::new([byte; KEY_LEN]))).unwrap()
    }

    #[test]
    fn sealed_rows_open_only_for_their_tenant_and_key() {
        let keys = CredentialKeys::new(key("k1", 1));
        let (a, b, hs) = (TenantId::new("a"), TenantId::new("b"), CrmKind::Hubspot);
        let sealed = keys.seal(&a, &hs, b"secret-token").unwrap();
        assert_eq!(sealed.nonce.len(), NONCE_LEN);
        assert!(!sealed.ciphertext.windows(12).any(|w| w == b"secret-token"));
        assert_eq!(
            keys.open(&a, &hs, &sealed).unwrap().as_slice(),
            b"secret-token"
        );
        assert!(keys.open(&b, &hs, &sealed).is_err());
        assert!(keys.open(&a, &CrmKind::Salesforce, &sealed).is_err());
        let other = CredentialKeys::new(key("k1", 2));
        let err = other.open(&a, &hs, &sealed).unwrap_err().to_string();
        assert!(err.contains("does not open"), "{err}");
        let rotated = CredentialKeys::new(key("k2", 2));
        let err = rotated.open(&a, &hs, &sealed).unwrap_err().to_string();
        assert!(err.contains("\"k1\", which is not configured"), "{err}");
        let rotated = rotated.with_old(key("k1", 1));
        assert_eq!(
            rotated.open(&a, &hs, &sealed).unwrap().as_slice(),
            b"secret-token"
        );
        // A fresh nonce each time.
        assert_ne!(
            keys.seal(&a, &hs, b"x").unwrap().nonce,
            keys.seal(&a, &hs, b"x").unwrap().nonce
        );
    }

    #[test]
    fn damaged_and_pre_release_rows_are_refused_with_what_to_do() {
        let keys = CredentialKeys::new(key("k1", 1));
        let (a, hs) = (TenantId::new("a"), CrmKind::Hubspot);
        let mut sealed = keys.seal(&a, &hs, b"secret-token").unwrap();
        // The Poly1305 tag covers every byte.
        sealed.ciphertext[0] ^= 1;
        let err = keys.open(&a, &hs, &sealed).unwrap_err().to_string();
        assert!(err.contains("does not open"), "{err}");
        sealed.nonce = vec![0; 24];
        let err = keys.open(&a, &hs, &sealed).unwrap_err().to_string();
        assert!(
            err.contains("pre-release") && err.contains("connect the account again"),
            "{err}"
        );
        sealed.nonce = vec![0; 5];
        let err = keys.open(&a, &hs, &sealed).unwrap_err().to_string();
        assert!(err.contains("5 bytes, not 12"), "{err}");
    }

    #[test]
    fn keys_parse_from_base64_config_and_never_print() {
        let b64 = STANDARD.encode([7u8; KEY_LEN]);
        let toml_like = serde_json::json!({
            "current": {"id": "k2", "key": b64},
            "old": [{"id": "k1", "key": STANDARD.encode([6u8; KEY_LEN])}],
        });
        let keys: CredentialKeys = serde_json::from_value(toml_like).unwrap();
        assert_eq!(keys.current().id(), "k2");
        assert!(!format!("{keys:?}").contains(&b64));
        let short =
            CredentialKey::from_base64("k", &SecretString::from(STANDARD.encode([1u8; 16])));
        assert!(short.unwrap_err().to_string().contains("16 bytes"));
        assert!(CredentialKey::from_base64("k", &SecretString::from("not base64!")).is_err());
        assert!(CredentialKey::from_base64(" ", &SecretString::from(b64)).is_err());
    }
}
