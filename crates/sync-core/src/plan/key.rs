//! Deterministic idempotency keys.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A deterministic key for one action: derived from what the action does and the change that
/// caused it, so planning the same change twice yields the same key and applying it twice has
/// one effect (stores and sinks deduplicate on it). 32 lowercase hex characters, safe in an
/// `Idempotency-Key` header.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Derives a key from ordered parts (SHA-256 of the parts joined by an unambiguous
    /// separator, truncated to 128 bits).
    pub fn derive(parts: &[&str]) -> Self {
        let mut hasher = Sha256::new();
        for part in parts {
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part.as_bytes());
        }
        let digest = hasher.finalize();
        Self(hex::encode(&digest[..16]))
    }

    /// [`IdempotencyKey::derive`] of `first` followed by `rest`, without building a slice
    /// (the planner derives one key per action, in its hot loop).
    pub fn derive_with(first: &str, rest: &[&str]) -> Self {
        let mut hasher = Sha256::new();
        for part in std::iter::once(&first).chain(rest) {
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part.as_bytes());
        }
        let digest = hasher.finalize();
        Self(hex::encode(&digest[..16]))
    }

    /// Wraps a key read back from storage or a header.
    pub fn from_raw(raw: impl Into<String>) -> Self {
        Self(raw.into())
    }

    /// The key as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key sent to the API after the item's `requeues`-th operator requeue: itself before
    /// any. An operator requeues a failed item to get a new attempt; an API that replays its
    /// stored answer per key would answer the same failure again, so each requeue is a new
    /// key. Retries inside one attempt keep the key, and so stay exactly once.
    pub fn requeued(&self, requeues: u32) -> IdempotencyKey {
        if requeues == 0 {
            return self.clone();
        }
        Self::derive_with(self.as_str(), &["requeue", &requeues.to_string()])
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // SHA-256 of (1u64 little-endian, "x"), first 16 bytes, computed independently.
    const FIXED_X: &str = "f91b14e7bbea4c5bfa0e1a7040177166";

    #[test]
    fn keys_are_stable_and_unambiguous() {
        let a = IdempotencyKey::derive(&["t1", "assign", "u1", "Premium"]);
        assert_eq!(
            a,
            IdempotencyKey::derive(&["t1", "assign", "u1", "Premium"])
        );
        assert_eq!(a.as_str().len(), 32);
        assert_ne!(
            IdempotencyKey::derive(&["ab", "c"]),
            IdempotencyKey::derive(&["a", "bc"])
        );
        // A fixed vector: keys must never change across releases, or deduplication breaks.
        assert_eq!(IdempotencyKey::derive(&["x"]).as_str(), FIXED_X);
        assert_eq!(
            IdempotencyKey::derive_with("t1", &["assign", "u1", "Premium"]),
            a
        );
    }
}
