//! The conformance suite against PostgreSQL, when `SYNC_TEST_POSTGRES_URL` is set (run under
//! `scripts/with-postgres.sh`). Each case gets its own fresh schema, so runs never collide.
//! Without the variable every case prints that it was skipped and passes, unless
//! `SYNC_TEST_POSTGRES_REQUIRED=1` (set by CI), which turns a skip into a failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use sync_core::ports::Store;
use sync_store::{PostgresOptions, PostgresStore};

fn database_url() -> Option<String> {
    match std::env::var("SYNC_TEST_POSTGRES_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("SYNC_TEST_POSTGRES_REQUIRED").as_deref() != Ok("1"),
                "SYNC_TEST_POSTGRES_REQUIRED=1 but SYNC_TEST_POSTGRES_URL is not set: run under scripts/with-postgres.sh"
            );
            println!("skipped: SYNC_TEST_POSTGRES_URL not set");
            None
        }
    }
}

/// A schema name unique to this process and call.
fn fresh_schema() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!(
        "sync_test_{}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        nanos
    )
}

async fn fresh() -> Option<Arc<dyn Store>> {
    let url = database_url()?;
    let options = PostgresOptions::new(url)
        .schema(fresh_schema())
        .max_connections(20);
    Some(Arc::new(
        PostgresStore::connect(options)
            .await
            .expect("connect to SYNC_TEST_POSTGRES_URL"),
    ))
}

sync_store::conformance_tests!(fresh);

/// Two stores on one schema (two service instances) see each other's writes, and migrating
/// again is a no-op.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_one_schema() {
    let Some(url) = database_url() else { return };
    let schema = fresh_schema();
    let (a, b) = tokio::join!(
        PostgresStore::connect(PostgresOptions::new(url.clone()).schema(schema.clone())),
        PostgresStore::connect(PostgresOptions::new(url).schema(schema)),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    b.migrate().await.unwrap();
    let t = sync_core::TenantId::new("t");
    use sync_core::ports::DeliveryLedger;
    assert!(
        a.record_delivery(&t, "exec-1", chrono::DateTime::UNIX_EPOCH)
            .await
            .unwrap()
    );
    assert!(
        !b.record_delivery(&t, "exec-1", chrono::DateTime::UNIX_EPOCH)
            .await
            .unwrap()
    );
}

/// A URL that does not parse is a typed error that does not echo the URL (password).
#[tokio::test]
async fn bad_url_is_a_typed_error_without_the_password() {
    let err = PostgresStore::connect(PostgresOptions::new("postgres://u:s3cret-pw@[bad"))
        .await
        .unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("s3cret-pw"), "{shown}");
    assert!(!err.is_retryable());
}

/// A database that does not answer is a retryable error (runs without PostgreSQL: nothing
/// listens on the port).
#[tokio::test]
async fn unreachable_database_is_a_retryable_error() {
    let options = PostgresOptions::new("postgres://sync:pw@127.0.0.1:1/sync")
        .acquire_timeout(std::time::Duration::from_secs(2));
    let err = PostgresStore::connect(options).await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert!(!format!("{err:?}").contains("pw@"), "{err:?}");
}

/// The credential store on PostgreSQL: the conformance cases, and a rotation.
mod credentials {
    use super::*;
    use secrecy::{ExposeSecret, SecretBox, SecretString};
    use sync_core::ports::{CredentialStore, TenantCredentials};
    use sync_core::{CrmKind, TenantId};
    use sync_store::{CredentialKey, CredentialKeys, PostgresCredentialStore};

    fn keys(id: &str, byte: u8) -> CredentialKeys {
        CredentialKeys::new(CredentialKey::new(id, SecretBox::new(Box::new([byte; 32]))).unwrap())
    }

    async fn store() -> Option<PostgresStore> {
        let url = database_url()?;
        Some(
            PostgresStore::connect(PostgresOptions::new(url).schema(fresh_schema()))
                .await
                .expect("connect to SYNC_TEST_POSTGRES_URL"),
        )
    }

    async fn fresh_vault() -> Option<Arc<dyn CredentialStore>> {
        let vault: PostgresCredentialStore = store().await?.credential_store(keys("k1", 1));
        Some(Arc::new(vault))
    }

    sync_store::credential_conformance_tests!(fresh_vault);

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rotation_reseals_under_the_new_key() {
        let Some(db) = store().await else { return };
        let t = TenantId::new("rot");
        let creds = TenantCredentials::new(
            Some(SecretString::from("at")),
            Some(SecretString::from("rt")),
        );
        db.credential_store(keys("k1", 1))
            .save_credentials(&t, &CrmKind::Hubspot, &creds)
            .await
            .unwrap();
        let rotating = db.credential_store(
            keys("k2", 2)
                .with_old(CredentialKey::new("k1", SecretBox::new(Box::new([1; 32]))).unwrap()),
        );
        assert_eq!(rotating.rotate_credentials().await.unwrap(), 1);
        let got = db
            .credential_store(keys("k2", 2))
            .load_credentials(&t, &CrmKind::Hubspot)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.refresh_token.unwrap().expose_secret(), "rt");
        assert!(
            db.credential_store(keys("k1", 1))
                .load_credentials(&t, &CrmKind::Hubspot)
                .await
                .is_err()
        );
    }
}
