//! The conformance suite against SQLite, on a temporary file and in memory, plus
//! SQLite-specific behaviour: persistence across reopen, corrupted rows, concurrent handles.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use sync_core::ports::Store;
use sync_store::SqliteStore;

/// A store on a fresh file in a temporary directory that lives as long as the process (the
/// directory is leaked on purpose: the store outlives this function).
async fn fresh_file() -> Option<Arc<dyn Store>> {
    let dir = tempfile::tempdir().unwrap().keep();
    Some(Arc::new(
        SqliteStore::open(dir.join("sync.db")).await.unwrap(),
    ))
}

async fn fresh_memory() -> Option<Arc<dyn Store>> {
    Some(Arc::new(SqliteStore::open_in_memory().await.unwrap()))
}

mod file {
    use super::*;
    sync_store::conformance_tests!(fresh_file);
}

mod memory {
    use super::*;
    sync_store::conformance_tests!(fresh_memory);
}

mod behaviour {
    use std::path::Path;
    use std::sync::Arc;
    use std::time::Duration;

    use chrono::{DateTime, TimeZone, Utc};
    use sqlx::Connection;
    use sync_core::ports::{
        AuditEntry, AuditLog, AuditOutcome, CheckpointStore, DeliveryLedger, MappingStore, Outbox,
        OutboxStatus, Store,
    };
    use sync_core::{
        Action, ActionKind, BadgeGrant, CrmRecordId, Cursor, Email, Error, IdempotencyKey, Mapping,
        Provenance, Reason, TenantId,
    };
    use sync_store::{Durability, SqliteOptions, SqliteStore};

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap()
    }

    fn row(n: usize) -> Mapping {
        Mapping::new(Email::parse(&format!("p{n}@example.com")).unwrap(), t0())
            .with_crm(CrmRecordId::hubspot(n.to_string()))
            .with_badge(BadgeGrant::new("Premium", Provenance::sync("annual"), t0()))
    }

    fn action(n: usize) -> Action {
        Action::new(
            IdempotencyKey::derive(&["sqlite-test", &n.to_string()]),
            ActionKind::Invite {
                email: Email::parse(&format!("p{n}@example.com")).unwrap(),
                crm_id: CrmRecordId::hubspot(n.to_string()),
                badges: vec!["Premium".into()],
            },
            Reason::NoCommunityUser,
        )
    }

    async fn raw(path: &Path, sql: &str) {
        let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        sqlx::query(sql).execute(&mut conn).await.unwrap();
        conn.close().await.unwrap();
    }

    #[tokio::test]
    async fn data_survives_reopening_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sync.db");
        let t = TenantId::new("acme");
        {
            let store =
                SqliteStore::connect(SqliteOptions::file(&path).durability(Durability::Full))
                    .await
                    .unwrap();
            store.put_mappings(&t, &[row(1), row(2)]).await.unwrap();
            store.enqueue(&t, &[action(1)], t0()).await.unwrap();
            assert!(
                store
                    .advance_checkpoint(&t, "hubspot", "contacts", None, &Cursor::at(t0()))
                    .await
                    .unwrap()
            );
            assert!(store.record_delivery(&t, "exec-1", t0()).await.unwrap());
            store.close().await;
        }
        let store = SqliteStore::open(&path).await.unwrap();
        assert_eq!(
            store.mapping_by_email(&t, &row(2).email).await.unwrap(),
            Some(row(2))
        );
        assert_eq!(
            store
                .list_outbox(&t, OutboxStatus::Pending, 10)
                .await
                .unwrap()[0]
                .action,
            action(1)
        );
        assert_eq!(
            store.checkpoint(&t, "hubspot", "contacts").await.unwrap(),
            Some(Cursor::at(t0()))
        );
        assert!(
            !store.record_delivery(&t, "exec-1", t0()).await.unwrap(),
            "the ledger survived"
        );
    }

    #[tokio::test]
    async fn file_databases_use_wal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sync.db");
        let _store = SqliteStore::open(&path).await.unwrap();
        let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(mode, "wal");
    }

    #[tokio::test]
    async fn corrupted_rows_are_typed_errors_not_panics() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sync.db");
        let t = TenantId::new("acme");
        let store = SqliteStore::open(&path).await.unwrap();
        store
            .put_mappings(&t, &[row(1), row(2), row(3), row(4)])
            .await
            .unwrap();
        store.enqueue(&t, &[action(1)], t0()).await.unwrap();
        store
            .append_audit(
                &t,
                &[AuditEntry::new(
                    t0(),
                    "invite",
                    "p1",
                    AuditOutcome::Applied,
                    action(1).key,
                )],
            )
            .await
            .unwrap();

        raw(
            &path,
            "UPDATE mappings SET email = 'Not An Email' WHERE crm_id = '1'",
        )
        .await;
        raw(
            &path,
            "UPDATE mappings SET email = 'UPPER@EXAMPLE.COM' WHERE crm_id = '2'",
        )
        .await;
        raw(
            &path,
            "UPDATE mappings SET profile = '{not json' WHERE crm_id = '3'",
        )
        .await;
        raw(
            &path,
            "UPDATE mappings SET updated_at_ns = 'yesterday' WHERE crm_id = '4'",
        )
        .await;
        raw(&path, "UPDATE outbox SET action = '{\"key\": 1}'").await;
        raw(&path, "UPDATE audit_log SET outcome = 'exploded'").await;

        for id in ["1", "2", "3", "4"] {
            let r = store.mapping_by_crm_id(&t, &CrmRecordId::hubspot(id)).await;
            assert!(
                matches!(r, Err(Error::CorruptRow { .. })),
                "row {id}: {r:?}"
            );
        }
        let r = store.load_full_view(&t).await;
        assert!(matches!(r, Err(Error::CorruptRow { .. })), "{r:?}");
        let r = store.list_outbox(&t, OutboxStatus::Pending, 10).await;
        assert!(matches!(r, Err(Error::CorruptRow { .. })), "{r:?}");
        let r = store
            .claim(
                &t,
                &sync_core::ports::LeaseHolder::unregistered("w"),
                10,
                Duration::from_secs(1),
                t0(),
            )
            .await;
        assert!(matches!(r, Err(Error::CorruptRow { .. })), "{r:?}");
        let r = store.recent_audit(&t, 10).await;
        assert!(matches!(r, Err(Error::CorruptRow { .. })), "{r:?}");
        let shown = store.recent_audit(&t, 10).await.unwrap_err().to_string();
        assert!(
            shown.contains("audit_log") && shown.contains("exploded"),
            "the error names the table and value: {shown}"
        );
    }

    #[tokio::test]
    async fn timestamps_outside_the_storable_range_are_refused() {
        let store = SqliteStore::open_in_memory().await.unwrap();
        let t = TenantId::new("acme");
        let far = Utc.with_ymd_and_hms(3000, 1, 1, 0, 0, 0).unwrap();
        let r = store
            .put_mapping(
                &t,
                &Mapping::new(Email::parse("a@example.com").unwrap(), far),
            )
            .await;
        assert!(
            matches!(
                &r,
                Err(Error::Store {
                    retryable: false,
                    ..
                })
            ),
            "{r:?}"
        );
        assert_eq!(store.count_mappings(&t).await.unwrap(), 0);
        let nanos = t0() + chrono::Duration::nanoseconds(123_456_789);
        store
            .put_mapping(
                &t,
                &Mapping::new(Email::parse("b@example.com").unwrap(), nanos),
            )
            .await
            .unwrap();
        let back = store
            .mapping_by_email(&t, &Email::parse("b@example.com").unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(back.updated_at, nanos, "nanoseconds round-trip");
    }

    /// Two stores on one file stand for two processes: writes from both interleave without
    /// deadlock (BEGIN IMMEDIATE + busy timeout), and insert-if-absent holds across them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn two_handles_on_one_file_share_it_safely() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sync.db");
        let a: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).await.unwrap());
        let b: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).await.unwrap());
        let t = TenantId::new("acme");
        let mut tasks = Vec::new();
        for i in 0..16usize {
            let store = if i % 2 == 0 { a.clone() } else { b.clone() };
            let t = t.clone();
            tasks.push(tokio::spawn(async move {
                let rows: Vec<Mapping> = (i * 50..(i + 1) * 50).map(row).collect();
                store.put_mappings(&t, &rows).await.unwrap();
                store
                    .record_delivery(&t, "same-delivery", t0())
                    .await
                    .unwrap()
            }));
        }
        let mut new = 0;
        for task in tasks {
            new += usize::from(task.await.unwrap());
        }
        assert_eq!(new, 1);
        assert_eq!(a.count_mappings(&t).await.unwrap(), 800);
        assert_eq!(b.load_full_view(&t).await.unwrap().len(), 800);
    }

    #[tokio::test]
    async fn in_memory_stores_are_private() {
        let t = TenantId::new("acme");
        let a = SqliteStore::open_in_memory().await.unwrap();
        let b = SqliteStore::open_in_memory().await.unwrap();
        a.put_mapping(&t, &row(1)).await.unwrap();
        assert_eq!(b.count_mappings(&t).await.unwrap(), 0);
        assert_eq!(a.count_mappings(&t).await.unwrap(), 1);
    }

    #[tokio::test]
    async fn connect_chooses_the_store_from_the_url() {
        let t = TenantId::new("acme");
        let dir = tempfile::tempdir().unwrap();
        for url in [
            "sqlite::memory:".to_owned(),
            ":memory:".to_owned(),
            dir.path().join("plain.db").display().to_string(),
            format!("sqlite://{}", dir.path().join("url.db").display()),
        ] {
            let store = sync_store::connect(&url)
                .await
                .unwrap_or_else(|e| panic!("{url}: {e}"));
            store.put_mapping(&t, &row(1)).await.unwrap();
            assert_eq!(store.count_mappings(&t).await.unwrap(), 1, "{url}");
        }
        assert!(dir.path().join("plain.db").exists() && dir.path().join("url.db").exists());
        let err = sync_store::connect("  ").await.err().expect("empty URL");
        assert!(!err.is_retryable(), "{err}");
    }

    #[tokio::test]
    async fn debug_shows_the_location() {
        let store = SqliteStore::open_in_memory().await.unwrap();
        assert!(format!("{store:?}").contains(":memory:"));
    }

    /// Another process holding the write lock past the busy timeout gives a retryable store
    /// error, and the next attempt after it lets go succeeds.
    #[tokio::test]
    async fn a_locked_database_is_a_retryable_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sync.db");
        let store = SqliteStore::connect(
            SqliteOptions::file(&path).busy_timeout(Duration::from_millis(50)),
        )
        .await
        .unwrap();
        let t = TenantId::new("acme");
        let mut other = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut other)
            .await
            .unwrap();

        let err = store.record_delivery(&t, "exec-1", t0()).await.unwrap_err();
        assert!(
            matches!(
                err,
                Error::Store {
                    retryable: true,
                    ..
                }
            ),
            "{err:?}"
        );
        let err = store.put_mapping(&t, &row(1)).await.unwrap_err();
        assert!(err.is_retryable(), "{err:?}");

        sqlx::query("COMMIT").execute(&mut other).await.unwrap();
        assert!(store.record_delivery(&t, "exec-1", t0()).await.unwrap());
        store.put_mapping(&t, &row(1)).await.unwrap();
    }

    /// Items done before migration 0003 (which added the completion time) count as
    /// completed at the upgrade: none is purged before a full window has passed since.
    #[tokio::test]
    async fn items_done_before_the_upgrade_count_as_completed_at_the_upgrade() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("migrations");
        std::fs::create_dir(&old).unwrap();
        let ours = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
        for name in ["0001_initial.sql", "0002_worker_incarnations.sql"] {
            std::fs::copy(ours.join(name), old.join(name)).unwrap();
        }
        let path = dir.path().join("sync.db");
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        let before = sqlx::migrate::Migrator::new(old.as_path()).await.unwrap();
        before.run(&mut conn).await.unwrap();
        sqlx::query(
            "INSERT INTO outbox (tenant, key, kind, action, status, attempts, enqueued_at_ns) \
             VALUES ('acme', 'k-done', 'invite', '{}', 'done', 1, 0), \
                    ('acme', 'k-failed', 'invite', '{}', 'failed', 1, 0)",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        conn.close().await.unwrap();

        let store = SqliteStore::open(&path).await.unwrap();
        let t = TenantId::new("acme");
        // Enqueued at the epoch, but only an hour's margin either side of the upgrade
        // decides whether the done item goes.
        let hour = chrono::Duration::hours(1);
        assert_eq!(
            store.purge_done(&t, Utc::now() - hour, 10).await.unwrap(),
            0
        );
        assert_eq!(
            store.purge_done(&t, Utc::now() + hour, 10).await.unwrap(),
            1
        );
        let counts = store.outbox_counts(&t).await.unwrap();
        assert_eq!((counts.done, counts.failed), (0, 1));
    }

    /// Rows written before migration 0005 (which added the generation) read back at
    /// generation 0, which keys their actions exactly as before: outbox items enqueued
    /// before the upgrade keep matching what the planner plans after it.
    #[tokio::test]
    async fn rows_written_before_the_generation_existed_read_back_at_generation_0() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("migrations");
        std::fs::create_dir(&old).unwrap();
        let ours = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
        for name in [
            "0001_initial.sql",
            "0002_worker_incarnations.sql",
            "0003_retention.sql",
            "0004_status.sql",
        ] {
            std::fs::copy(ours.join(name), old.join(name)).unwrap();
        }
        let path = dir.path().join("sync.db");
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        let before = sqlx::migrate::Migrator::new(old.as_path()).await.unwrap();
        before.run(&mut conn).await.unwrap();
        sqlx::query(
            "INSERT INTO mappings (tenant, email, cativa_user_id, crm_kind, crm_id, updated_at_ns) \
             VALUES ('acme', 'old@example.com', 'u-old', 'hubspot', '7', 0)",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        conn.close().await.unwrap();

        let store = SqliteStore::open(&path).await.unwrap();
        let t = TenantId::new("acme");
        let row = store
            .mapping_by_crm_id(&t, &sync_core::CrmRecordId::hubspot("7"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.generation, 0);
        assert_eq!(
            row.cativa_user_id.as_ref().map(|u| u.as_str()),
            Some("u-old")
        );
    }
}
