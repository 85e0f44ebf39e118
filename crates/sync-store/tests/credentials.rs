//! The credential store on SQLite (file and memory) and the in-memory store: conformance,
//! encryption at rest (the raw database files never contain a token), wrong keys, rotation,
//! and `Debug` without secrets.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretBox, SecretString};
use sync_core::ports::{CredentialStore, TenantCredentials};
use sync_core::{CrmKind, Error, MemoryStore, TenantId};
use sync_store::{CredentialKey, CredentialKeys, SqliteStore};

fn key(id: &str, byte: u8) -> CredentialKey {
    CredentialKey::new(id, SecretBox::new(Box::new([byte; 32]))).unwrap()
}

async fn fresh_file() -> Option<Arc<dyn CredentialStore>> {
    let dir = tempfile::tempdir().unwrap().keep();
    let db = SqliteStore::open(dir.join("sync.db")).await.unwrap();
    Some(Arc::new(
        db.credential_store(CredentialKeys::new(key("k1", 1))),
    ))
}

async fn fresh_memory() -> Option<Arc<dyn CredentialStore>> {
    let db = SqliteStore::open_in_memory().await.unwrap();
    Some(Arc::new(
        db.credential_store(CredentialKeys::new(key("k1", 1))),
    ))
}

async fn fresh_memory_store() -> Option<Arc<dyn CredentialStore>> {
    Some(Arc::new(MemoryStore::new()))
}

mod sqlite_file {
    use super::*;
    sync_store::credential_conformance_tests!(fresh_file);
}

mod sqlite_memory {
    use super::*;
    sync_store::credential_conformance_tests!(fresh_memory);
}

mod memory_store {
    use super::*;
    sync_store::credential_conformance_tests!(fresh_memory_store);
}

const ACCESS: &str = "CKS-access-token-7f3a9c1e5b";
const REFRESH: &str = "refresh-token-4d2b8e6f0a";

fn creds() -> TenantCredentials {
    TenantCredentials::new(
        Some(SecretString::from(ACCESS)),
        Some(SecretString::from(REFRESH)),
    )
    .with_account_id(Some("portal-62515".into()))
}

/// Every byte of every file in `dir` (the database, its WAL and shared-memory files).
fn raw_bytes(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        all.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    all
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn the_raw_database_files_never_contain_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let db = SqliteStore::open(dir.path().join("sync.db")).await.unwrap();
    let vault = db.credential_store(CredentialKeys::new(key("k1", 1)));
    let t = TenantId::new("acme");
    vault
        .save_credentials(&t, &CrmKind::Hubspot, &creds())
        .await
        .unwrap();
    let loaded = vault
        .load_credentials(&t, &CrmKind::Hubspot)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(loaded.access_token.unwrap().expose_secret(), ACCESS);
    drop(vault);
    drop(db);
    let raw = raw_bytes(dir.path());
    // The account id is stored in the clear: it proves the row is in these bytes.
    assert!(
        contains(&raw, "portal-62515"),
        "the row is not in the files read"
    );
    assert!(
        !contains(&raw, ACCESS),
        "the access token is stored in the clear"
    );
    assert!(
        !contains(&raw, REFRESH),
        "the refresh token is stored in the clear"
    );
}

#[tokio::test]
async fn a_wrong_or_missing_key_is_a_clear_error_without_secrets() {
    let db = SqliteStore::open_in_memory().await.unwrap();
    let t = TenantId::new("acme");
    db.credential_store(CredentialKeys::new(key("k1", 1)))
        .save_credentials(&t, &CrmKind::Hubspot, &creds())
        .await
        .unwrap();

    let wrong = db.credential_store(CredentialKeys::new(key("k1", 9)));
    let err = wrong
        .load_credentials(&t, &CrmKind::Hubspot)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Credentials { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("acme") && text.contains("does not open"),
        "{text}"
    );
    assert!(!text.contains(ACCESS) && !text.contains(REFRESH));

    let missing = db.credential_store(CredentialKeys::new(key("k2", 2)));
    let text = missing
        .load_credentials(&t, &CrmKind::Hubspot)
        .await
        .unwrap_err()
        .to_string();
    assert!(text.contains("\"k1\", which is not configured"), "{text}");
}

#[tokio::test]
async fn rotation_reseals_every_row_under_the_new_key() {
    let db = SqliteStore::open_in_memory().await.unwrap();
    let old = db.credential_store(CredentialKeys::new(key("k1", 1)));
    for t in ["a", "b"] {
        old.save_credentials(&TenantId::new(t), &CrmKind::Hubspot, &creds())
            .await
            .unwrap();
    }
    let rotating = db.credential_store(CredentialKeys::new(key("k2", 2)).with_old(key("k1", 1)));
    // Old rows open during the rotation window.
    assert!(
        rotating
            .load_credentials(&TenantId::new("a"), &CrmKind::Hubspot)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(rotating.rotate_credentials().await.unwrap(), 2);
    assert_eq!(
        rotating.rotate_credentials().await.unwrap(),
        0,
        "nothing left to rotate"
    );
    let new_only = db.credential_store(CredentialKeys::new(key("k2", 2)));
    for t in ["a", "b"] {
        let got = new_only
            .load_credentials(&TenantId::new(t), &CrmKind::Hubspot)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.refresh_token.unwrap().expose_secret(), REFRESH);
    }
    assert!(
        old.load_credentials(&TenantId::new("a"), &CrmKind::Hubspot)
            .await
            .is_err()
    );
}

#[test]
fn debug_output_never_shows_tokens_or_keys() {
    let text = format!("{:?} {:?}", creds(), key("k1", 0x41));
    assert!(!text.contains(ACCESS) && !text.contains(REFRESH), "{text}");
    assert!(
        text.contains("[redacted]") && text.contains("portal-62515"),
        "{text}"
    );
}

#[tokio::test]
async fn a_tenant_purge_deletes_its_credentials_and_no_one_elses() {
    use sync_core::ports::{PurgeMode, TenantPurge};
    let db = SqliteStore::open_in_memory().await.unwrap();
    let vault = db.credential_store(CredentialKeys::new(key("k1", 1)));
    let (a, b) = (TenantId::new("leaving"), TenantId::new("staying"));
    for t in [&a, &b] {
        for crm in [CrmKind::Hubspot, CrmKind::Salesforce] {
            vault.save_credentials(t, &crm, &creds()).await.unwrap();
        }
    }
    let now = chrono::Utc::now();
    let dry = db
        .purge_tenant(&a, PurgeMode::DryRun, "ops", now)
        .await
        .unwrap();
    assert_eq!(dry.credentials, 2);
    assert!(
        vault
            .load_credentials(&a, &CrmKind::Hubspot)
            .await
            .unwrap()
            .is_some()
    );
    let done = db
        .purge_tenant(&a, PurgeMode::Delete, "ops", now)
        .await
        .unwrap();
    assert_eq!(done, dry);
    for crm in [CrmKind::Hubspot, CrmKind::Salesforce] {
        assert!(vault.load_credentials(&a, &crm).await.unwrap().is_none());
        assert!(vault.load_credentials(&b, &crm).await.unwrap().is_some());
    }
}
