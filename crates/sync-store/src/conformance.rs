//! The store conformance suite: one set of behavioural checks that every implementation of
//! [`Store`] must pass. It runs against `sync_core::MemoryStore`, [`crate::SqliteStore`] and
//! [`crate::PostgresStore`] in this crate's tests, and partners can run it against their own
//! store.
//!
//! Each case is a public `async fn(Arc<dyn Store>)` that panics on a violation. Give each
//! case a fresh, empty store. Two ways to run them:
//!
//! - [`conformance_tests!`](crate::conformance_tests) generates one `#[tokio::test]` per case
//!   from an async factory returning `Option<Arc<dyn Store>>` (`None` skips the case, e.g.
//!   when no database is configured);
//! - [`run_all`] runs every case in turn, each on a store from the factory.
//!
//! ```no_run
//! use std::sync::Arc;
//! use sync_core::ports::Store;
//!
//! async fn fresh_store() -> Option<Arc<dyn Store>> {
//!     Some(Arc::new(sync_core::MemoryStore::new()))
//! }
//!
//! sync_store::conformance_tests!(fresh_store);
//! # fn main() {}
//! ```
//!
//! The cases never read the clock: every time is derived from a fixed instant with
//! nanosecond precision, so a store that rounds timestamps fails.

// This module is a test suite shipped as library code: a failed expectation must panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use futures::future::BoxFuture;
use sync_core::ports::{
    AuditEntry, AuditOutcome, CredentialsCheck, FailedFilter, LeaseHolder, OutboxItem,
    OutboxStatus, PURGE_ACTION, PurgeCounts, PurgeMode, Requeue, RunMode, RunOutcome, RunRecord,
    Store, WebhookOutcome, hour_bucket,
};
use sync_core::{
    Action, ActionKind, BadgeGrant, BadgeId, CativaUserId, CommunityProfile, CrmRecordId, Cursor,
    Email, Error, IdempotencyKey, Mapping, Provenance, Reason, RuleId, TenantId,
};
use tokio::sync::Barrier;

mod commit;
pub mod credentials;

pub use commit::{
    atomic_delivery_commit_is_all_or_nothing, delivery_commit_writes_rows_items_and_ledger,
    delivery_commits_racing_record_once,
};

/// The future a [`Case`] returns.
pub type CaseFuture = BoxFuture<'static, ()>;

/// A conformance case: takes a fresh store, panics on a violation.
pub type Case = fn(Arc<dyn Store>) -> CaseFuture;

/// Calls `$callback!($($args)*; case, case, ...)` with the name of every case.
#[doc(hidden)]
#[macro_export]
macro_rules! __with_conformance_cases {
    ($callback:ident ! ($($args:tt)*)) => {
        $crate::$callback! { $($args)*;
            mapping_round_trip,
            mapping_generation_is_kept_by_updates_and_views,
            put_mapping_replaces_the_row_with_the_same_email,
            put_mapping_moves_email_by_crm_id_or_user,
            put_mapping_refuses_keys_of_different_rows,
            put_mappings_is_all_or_nothing,
            put_mappings_applies_rows_in_order,
            cancelled_batches_are_all_or_nothing,
            delete_mapping_removes_row_and_grants,
            list_mappings_pages_in_email_order,
            load_view_returns_rows_matching_crm_ids_or_emails,
            checkpoint_compare_and_set,
            checkpoint_cas_has_one_winner_under_contention,
            delivery_ledger_records_once,
            delivery_recording_is_idempotent_under_16_tasks,
            delivery_commit_writes_rows_items_and_ledger,
            atomic_delivery_commit_is_all_or_nothing,
            delivery_commits_racing_record_once,
            purge_deliveries_respects_the_window,
            purge_deliveries_is_bounded_oldest_first,
            outbox_enqueue_is_idempotent_by_key,
            outbox_claim_leases_and_counts_attempts,
            outbox_fail_retries_later_or_gives_up,
            outbox_eight_workers_process_each_item_once,
            outbox_huge_lease_does_not_panic,
            outbox_restart_takes_back_its_own_claims_at_once,
            outbox_superseded_incarnation_owns_nothing,
            outbox_same_id_racing_starts_never_share_a_claim,
            outbox_renewed_lease_keeps_the_claim,
            outbox_release_frees_claims_at_once_without_an_attempt,
            outbox_backlog_counts_each_state,
            outbox_purge_done_respects_window_limit_and_status,
            audit_log_appends_and_reads_newest_first,
            audit_purge_is_bounded_and_keeps_newer_rows,
            purges_touch_only_their_tenant,
            leader_lease_is_exclusive,
            leader_lease_has_one_winner_under_contention,
            tenant_isolation,
            empty_tenant_is_rejected,
            status_failed_items_are_listed_and_filtered,
            status_requeue_and_dismiss_are_audited,
            status_last_runs_credentials_and_webhook_counts,
            status_webhook_count_purge_deletes_whole_old_buckets,
            status_operator_action_purge_is_bounded_oldest_first,
            status_purges_reject_the_empty_tenant,
            purge_tenant_deletes_only_its_tenant_and_audits_itself,
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_table {
    ($(;)? $($case:ident),* $(,)?) => {
        vec![$((
            stringify!($case),
            (|s| -> $crate::conformance::CaseFuture { Box::pin($crate::conformance::$case(s)) }) as $crate::conformance::Case,
        )),*]
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_tests {
    ($make:expr; $($case:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let make = $make;
                if let Some(store) = make().await {
                    $crate::conformance::$case(store).await;
                }
            }
        )*
    };
}

/// Generates one `#[tokio::test]` per conformance case, named after the case.
///
/// The argument is a path to (or expression giving) an async function of no arguments
/// returning `Option<Arc<dyn Store>>`, called once per case; `None` skips the case (print why
/// before returning it). The calling crate needs `tokio` (features `macros`,
/// `rt-multi-thread`) as a dev-dependency.
#[macro_export]
macro_rules! conformance_tests {
    ($make:expr) => {
        $crate::__with_conformance_cases!(__conformance_tests!($make));
    };
}

/// Every case with its name, in a stable order.
pub fn cases() -> Vec<(&'static str, Case)> {
    crate::__with_conformance_cases!(__conformance_table!())
}

/// Runs every case, each on a fresh store from `make`, stopping at the first failure (which
/// panics with the case's message).
pub async fn run_all<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn Store>>,
{
    for (name, case) in cases() {
        tracing::info!(case = name, "store conformance case");
        case(make().await).await;
    }
}

// ---------------------------------------------------------------------------------------
// Fixtures

/// The fixed instant every case counts from (with nanoseconds, to catch rounding).
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 14, 15, 9, 26).unwrap()
        + chrono::Duration::nanoseconds(535_897_932)
}

fn secs(n: i64) -> DateTime<Utc> {
    t0() + chrono::Duration::seconds(n)
}

/// A holder that never registered (its claims only expire).
fn h(worker: &str) -> LeaseHolder {
    LeaseHolder::unregistered(worker)
}

fn tenant(name: &str) -> TenantId {
    TenantId::new(name)
}

fn email(s: &str) -> Email {
    Email::parse(s).unwrap()
}

fn hs(id: &str) -> CrmRecordId {
    CrmRecordId::hubspot(id)
}

fn user(id: &str) -> CativaUserId {
    CativaUserId::new(id)
}

/// A row with every field set: user, CRM record, three grants (sync and external) in a
/// non-sorted order, a profile and an invite time.
fn full_mapping(address: &str, crm: &str, uid: &str) -> Mapping {
    let mut m = Mapping::new(email(address), secs(5))
        .with_user(user(uid))
        .with_crm(hs(crm))
        .with_badge(BadgeGrant::new(
            "Premium",
            Provenance::sync("rule-premium"),
            secs(1),
        ))
        .with_badge(BadgeGrant::new(
            "Alumni",
            Provenance::external("paywall"),
            secs(2),
        ))
        .with_badge(BadgeGrant::new(
            "Annual",
            Provenance::sync(RuleId::new("rule-annual")),
            secs(3),
        ))
        .with_profile(
            CommunityProfile::new()
                .with_field("firstName", "Mary Jane")
                .with_field("phone", "+14155550100")
                .updated(secs(4)),
        );
    m.invited_at = Some(secs(-60));
    m.generation = 3;
    m
}

fn action(n: usize) -> Action {
    let mut properties = BTreeMap::new();
    properties.insert("cativa_badges".to_owned(), format!("Premium;Level {n}"));
    let kind = if n.is_multiple_of(2) {
        ActionKind::AssignBadge {
            user: user(&format!("u{n}")),
            email: email(&format!("user{n}@example.com")),
            badge: BadgeId::new("Premium"),
            rule: RuleId::new("rule-premium"),
        }
    } else {
        ActionKind::UpdateCrmProperties {
            crm_id: hs(&n.to_string()),
            email: email(&format!("user{n}@example.com")),
            properties,
        }
    };
    Action::new(
        IdempotencyKey::derive(&["conformance", &n.to_string()]),
        kind,
        Reason::RuleHolds {
            rule: RuleId::new("rule-premium"),
            condition: "tag \"Pago Anual\"".to_owned(),
        },
    )
}

fn actions(range: std::ops::Range<usize>) -> Vec<Action> {
    range.map(action).collect()
}

fn keys(items: &[OutboxItem]) -> Vec<IdempotencyKey> {
    items.iter().map(|i| i.action.key.clone()).collect()
}

fn is_unique_violation(r: &Result<(), Error>) -> bool {
    matches!(r, Err(Error::UniqueViolation { .. }))
}

async fn all_rows(store: &Arc<dyn Store>, t: &TenantId) -> Vec<Mapping> {
    store.list_mappings(t, None, usize::MAX).await.unwrap()
}

// ---------------------------------------------------------------------------------------
// Mappings

/// A row reads back identically by email, CRM record and user; absent keys give `None`.
pub async fn mapping_round_trip(store: Arc<dyn Store>) {
    let t = tenant("acme");
    let full = full_mapping("Jane.Doe@Example.com", "101", "u-1");
    let bare = Mapping::new(email("bare@example.com"), secs(9));
    store.put_mapping(&t, &full).await.expect("put full row");
    store.put_mapping(&t, &bare).await.expect("put bare row");

    assert_eq!(
        store
            .mapping_by_email(&t, &full.email)
            .await
            .unwrap()
            .as_ref(),
        Some(&full)
    );
    assert_eq!(
        store
            .mapping_by_crm_id(&t, &hs("101"))
            .await
            .unwrap()
            .as_ref(),
        Some(&full)
    );
    assert_eq!(
        store
            .mapping_by_user(&t, &user("u-1"))
            .await
            .unwrap()
            .as_ref(),
        Some(&full)
    );
    assert_eq!(
        store
            .mapping_by_email(&t, &bare.email)
            .await
            .unwrap()
            .as_ref(),
        Some(&bare)
    );
    assert_eq!(store.count_mappings(&t).await.unwrap(), 2);

    assert_eq!(
        store
            .mapping_by_email(&t, &email("nobody@example.com"))
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.mapping_by_crm_id(&t, &hs("999")).await.unwrap(), None);
    assert_eq!(
        store
            .mapping_by_crm_id(&t, &CrmRecordId::salesforce("101"))
            .await
            .unwrap(),
        None,
        "the CRM kind is part of the key"
    );
    assert_eq!(
        store.mapping_by_user(&t, &user("u-404")).await.unwrap(),
        None
    );
}

/// A row's generation (how many times it moved between CRM records) is written by inserts
/// and updates and read back by every lookup, views included: the planner keys actions by it.
pub async fn mapping_generation_is_kept_by_updates_and_views(store: Arc<dyn Store>) {
    let t = tenant("acme");
    let mut row = Mapping::new(email("gen@example.com"), secs(1))
        .with_user(user("u-gen"))
        .with_crm(hs("1"));
    store.put_mapping(&t, &row).await.unwrap();
    assert_eq!(
        store.mapping_by_email(&t, &row.email).await.unwrap(),
        Some(row.clone()),
        "a new row starts at generation 0"
    );
    // Taken over by record 2: the same row, moved, one generation later.
    row.crm_id = Some(hs("2"));
    row.generation = 1;
    row.updated_at = secs(2);
    store.put_mapping(&t, &row).await.unwrap();
    row.generation = 2;
    store
        .put_mappings(&t, std::slice::from_ref(&row))
        .await
        .unwrap();
    for found in [
        store.mapping_by_email(&t, &row.email).await.unwrap(),
        store.mapping_by_crm_id(&t, &hs("2")).await.unwrap(),
        store.mapping_by_user(&t, &user("u-gen")).await.unwrap(),
    ] {
        assert_eq!(found.map(|m| m.generation), Some(2));
    }
    let view = store
        .load_view(&t, &[hs("2")], std::slice::from_ref(&row.email))
        .await
        .unwrap();
    assert_eq!(view.by_crm_id(&hs("2")).map(|m| m.generation), Some(2));
    let full = store.load_full_view(&t).await.unwrap();
    assert_eq!(full.by_email(&row.email).map(|m| m.generation), Some(2));
    assert_eq!(all_rows(&store, &t).await, vec![row]);
}

/// Putting a row with an existing email replaces that row whole (keys, badges, profile).
pub async fn put_mapping_replaces_the_row_with_the_same_email(store: Arc<dyn Store>) {
    let t = tenant("acme");
    store
        .put_mapping(&t, &full_mapping("a@example.com", "1", "u1"))
        .await
        .unwrap();
    let replacement = Mapping::new(email("a@example.com"), secs(10))
        .with_crm(hs("2"))
        .with_user(user("u9"));
    store.put_mapping(&t, &replacement).await.unwrap();

    assert_eq!(store.count_mappings(&t).await.unwrap(), 1);
    assert_eq!(
        store
            .mapping_by_email(&t, &email("a@example.com"))
            .await
            .unwrap(),
        Some(replacement.clone())
    );
    assert_eq!(
        store.mapping_by_crm_id(&t, &hs("1")).await.unwrap(),
        None,
        "the old CRM key is released"
    );
    assert_eq!(
        store.mapping_by_user(&t, &user("u1")).await.unwrap(),
        None,
        "the old user key is released"
    );
    assert_eq!(
        store.mapping_by_crm_id(&t, &hs("2")).await.unwrap(),
        Some(replacement)
    );
    // The released keys can be used by another row.
    store
        .put_mapping(
            &t,
            &Mapping::new(email("b@example.com"), secs(11))
                .with_crm(hs("1"))
                .with_user(user("u1")),
        )
        .await
        .unwrap();
    assert_eq!(store.count_mappings(&t).await.unwrap(), 2);
}

/// A new email with a known CRM record (or user) updates that row in place.
pub async fn put_mapping_moves_email_by_crm_id_or_user(store: Arc<dyn Store>) {
    let t = tenant("acme");
    store
        .put_mapping(&t, &full_mapping("old@example.com", "1", "u1"))
        .await
        .unwrap();
    let moved = Mapping::new(email("new@example.com"), secs(20)).with_crm(hs("1"));
    store.put_mapping(&t, &moved).await.unwrap();
    assert_eq!(store.count_mappings(&t).await.unwrap(), 1);
    assert_eq!(
        store
            .mapping_by_email(&t, &email("old@example.com"))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.mapping_by_crm_id(&t, &hs("1")).await.unwrap(),
        Some(moved.clone())
    );
    assert_eq!(
        store.mapping_by_user(&t, &user("u1")).await.unwrap(),
        None,
        "the replacement has no user"
    );

    store
        .put_mapping(
            &t,
            &Mapping::new(email("c@example.com"), secs(21)).with_user(user("u7")),
        )
        .await
        .unwrap();
    let by_user = Mapping::new(email("d@example.com"), secs(22)).with_user(user("u7"));
    store.put_mapping(&t, &by_user).await.unwrap();
    assert_eq!(store.count_mappings(&t).await.unwrap(), 2);
    assert_eq!(
        store
            .mapping_by_email(&t, &email("c@example.com"))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.mapping_by_user(&t, &user("u7")).await.unwrap(),
        Some(by_user)
    );
}

/// Keys that identify different rows are a `UniqueViolation` and change nothing.
pub async fn put_mapping_refuses_keys_of_different_rows(store: Arc<dyn Store>) {
    let t = tenant("acme");
    let a = full_mapping("a@example.com", "1", "ua");
    let b = Mapping::new(email("b@example.com"), secs(1))
        .with_user(user("ub"))
        .with_crm(hs("2"));
    store
        .put_mappings(&t, &[a.clone(), b.clone()])
        .await
        .unwrap();

    let cases = [
        Mapping::new(email("a@example.com"), secs(2)).with_user(user("ub")),
        Mapping::new(email("b@example.com"), secs(2)).with_crm(hs("1")),
        Mapping::new(email("c@example.com"), secs(2))
            .with_crm(hs("1"))
            .with_user(user("ub")),
        Mapping::new(email("a@example.com"), secs(2)).with_crm(hs("2")),
    ];
    for bad in &cases {
        let r = store.put_mapping(&t, bad).await;
        assert!(
            is_unique_violation(&r),
            "expected UniqueViolation for {bad:?}, got {r:?}"
        );
    }
    assert_eq!(
        all_rows(&store, &t).await,
        vec![a, b],
        "a refused put changes nothing"
    );
}

/// A batch with one bad row writes nothing.
pub async fn put_mappings_is_all_or_nothing(store: Arc<dyn Store>) {
    let t = tenant("acme");
    let a = Mapping::new(email("a@example.com"), secs(1)).with_crm(hs("1"));
    let b = Mapping::new(email("b@example.com"), secs(1)).with_user(user("ub"));
    store
        .put_mappings(&t, &[a.clone(), b.clone()])
        .await
        .unwrap();

    let batch = [
        full_mapping("c@example.com", "3", "uc"),
        Mapping::new(email("a@example.com"), secs(2))
            .with_crm(hs("1"))
            .with_user(user("new")),
        Mapping::new(email("a@example.com"), secs(3)).with_user(user("ub")),
    ];
    let r = store.put_mappings(&t, &batch).await;
    assert!(
        is_unique_violation(&r),
        "expected UniqueViolation, got {r:?}"
    );
    assert_eq!(all_rows(&store, &t).await, vec![a, b]);
    assert_eq!(store.mapping_by_crm_id(&t, &hs("3")).await.unwrap(), None);
    store
        .put_mappings(&t, &[])
        .await
        .expect("an empty batch is fine");
}

/// Rows of a batch apply one after the other: a later row sees the earlier ones, and rows may
/// trade keys within one batch.
pub async fn put_mappings_applies_rows_in_order(store: Arc<dyn Store>) {
    let t = tenant("acme");
    let a = full_mapping("a@example.com", "1", "ua");
    let b = Mapping::new(email("b@example.com"), secs(1)).with_crm(hs("2"));
    store.put_mappings(&t, &[a, b]).await.unwrap();

    let batch = [
        // Row of CRM 1 moves from a@ to x@, freeing a@ ...
        Mapping::new(email("x@example.com"), secs(5))
            .with_crm(hs("1"))
            .with_user(user("ua")),
        // ... which the row of CRM 2 takes.
        Mapping::new(email("a@example.com"), secs(5)).with_crm(hs("2")),
        // Two puts of one new row by user: the second replaces the first.
        Mapping::new(email("y@example.com"), secs(6)).with_user(user("uy")),
        full_mapping("z@example.com", "9", "uy"),
    ];
    store
        .put_mappings(&t, &batch)
        .await
        .expect("in-order batch");
    assert_eq!(store.count_mappings(&t).await.unwrap(), 3);
    assert_eq!(
        store.mapping_by_crm_id(&t, &hs("1")).await.unwrap(),
        Some(batch[0].clone())
    );
    assert_eq!(
        store.mapping_by_crm_id(&t, &hs("2")).await.unwrap(),
        Some(batch[1].clone())
    );
    assert_eq!(
        store
            .mapping_by_email(&t, &email("b@example.com"))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .mapping_by_email(&t, &email("y@example.com"))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.mapping_by_user(&t, &user("uy")).await.unwrap(),
        Some(batch[3].clone())
    );
}

/// Batches whose caller gives up mid-write (a cancelled request, a timed-out handler) are
/// written whole or not at all, and the store keeps working afterwards.
pub async fn cancelled_batches_are_all_or_nothing(store: Arc<dyn Store>) {
    let t = tenant("acme");
    let batch_rows = |batch: usize| -> Vec<Mapping> {
        (batch * 100..(batch + 1) * 100)
            .map(|n| {
                full_mapping(
                    &format!("c{n}@example.com"),
                    &n.to_string(),
                    &format!("u{n}"),
                )
            })
            .collect()
    };
    for batch in 0..30usize {
        let (writer, t2, rows) = (store.clone(), t.clone(), batch_rows(batch));
        let task = tokio::spawn(async move { writer.put_mappings(&t2, &rows).await });
        // Cancel at varying points: before, during and after the write.
        tokio::time::sleep(Duration::from_micros(200 * (batch % 10) as u64)).await;
        task.abort();
        let _ = task.await;
    }
    let view = store.load_full_view(&t).await.unwrap();
    for batch in 0..30usize {
        let rows = batch_rows(batch);
        let present = rows
            .iter()
            .filter(|m| view.by_email(&m.email) == Some(*m))
            .count();
        assert!(
            present == 0 || present == rows.len(),
            "batch {batch}: {present} of {} rows",
            rows.len()
        );
    }
    let after = Mapping::new(email("after@example.com"), secs(1));
    store
        .put_mapping(&t, &after)
        .await
        .expect("the store works after cancellations");
    assert!(store.delete_mapping(&t, &after.email).await.unwrap());
    assert!(
        store
            .record_delivery(&t, "after-cancel", secs(1))
            .await
            .unwrap()
    );
}

/// Deleting removes the row and its grants; deleting again reports nothing deleted.
pub async fn delete_mapping_removes_row_and_grants(store: Arc<dyn Store>) {
    let t = tenant("acme");
    let a = full_mapping("a@example.com", "1", "ua");
    let b = Mapping::new(email("b@example.com"), secs(1));
    store
        .put_mappings(&t, &[a.clone(), b.clone()])
        .await
        .unwrap();

    assert!(store.delete_mapping(&t, &a.email).await.unwrap());
    assert!(
        !store.delete_mapping(&t, &a.email).await.unwrap(),
        "second delete finds nothing"
    );
    assert!(
        !store
            .delete_mapping(&t, &email("never@example.com"))
            .await
            .unwrap()
    );
    assert_eq!(store.mapping_by_email(&t, &a.email).await.unwrap(), None);
    assert_eq!(store.mapping_by_crm_id(&t, &hs("1")).await.unwrap(), None);
    assert_eq!(store.mapping_by_user(&t, &user("ua")).await.unwrap(), None);
    assert_eq!(store.count_mappings(&t).await.unwrap(), 1);

    let again = Mapping::new(a.email.clone(), secs(30)).with_crm(hs("1"));
    store.put_mapping(&t, &again).await.unwrap();
    assert_eq!(
        store.mapping_by_email(&t, &a.email).await.unwrap(),
        Some(again),
        "no grants survive a delete"
    );
    assert_eq!(store.mapping_by_email(&t, &b.email).await.unwrap(), Some(b));
}

/// Paging returns rows in email (byte) order after the given email, `limit` at a time.
pub async fn list_mappings_pages_in_email_order(store: Arc<dyn Store>) {
    let t = tenant("acme");
    // Written out of order; includes characters whose order differs between byte order
    // and locale collations ('_' vs letters, digits, '.').
    let names = [
        "zed", "a_b", "ab", "a.c", "b9", "b10", "aa", "Mike", "x_1", "x1", "x-1", "0day", "q", "p",
        "o", "n", "m2", "l", "k", "j", "i", "h", "g", "f", "e",
    ];
    let mut expected = Vec::new();
    for (i, n) in names.iter().enumerate() {
        let mut m = Mapping::new(email(&format!("{n}@example.com")), secs(i as i64));
        if i % 3 == 0 {
            m = full_mapping(
                &format!("{n}@example.com"),
                &i.to_string(),
                &format!("u{i}"),
            );
        }
        store.put_mapping(&t, &m).await.unwrap();
        expected.push(m);
    }
    expected.sort_by(|a, b| a.email.cmp(&b.email));

    let mut seen = Vec::new();
    let mut after: Option<Email> = None;
    loop {
        let page = store.list_mappings(&t, after.as_ref(), 10).await.unwrap();
        assert!(page.len() <= 10);
        let Some(last) = page.last() else { break };
        after = Some(last.email.clone());
        seen.extend(page);
    }
    assert_eq!(seen, expected);
    assert_eq!(store.count_mappings(&t).await.unwrap(), names.len() as u64);
    assert!(store.list_mappings(&t, None, 0).await.unwrap().is_empty());
    let tail = store
        .list_mappings(&t, Some(&email("zed@example.com")), 100)
        .await
        .unwrap();
    assert!(
        tail.is_empty(),
        "nothing sorts after the last email: {tail:?}"
    );
}

/// `load_view` returns exactly the rows matching a CRM id or an email; `load_full_view`
/// returns every row; both with full content.
pub async fn load_view_returns_rows_matching_crm_ids_or_emails(store: Arc<dyn Store>) {
    let t = tenant("acme");
    let rows: Vec<Mapping> = (0..12)
        .map(|i| {
            if i % 2 == 0 {
                full_mapping(
                    &format!("p{i}@example.com"),
                    &i.to_string(),
                    &format!("u{i}"),
                )
            } else {
                Mapping::new(email(&format!("p{i}@example.com")), secs(i))
                    .with_crm(hs(&i.to_string()))
            }
        })
        .collect();
    store.put_mappings(&t, &rows).await.unwrap();

    let view = store
        .load_view(
            &t,
            &[hs("0"), hs("3"), hs("404"), CrmRecordId::salesforce("5")],
            &[
                email("p3@example.com"),
                email("p6@example.com"),
                email("ghost@example.com"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(view.len(), 3, "rows 0, 3 and 6, each once");
    for i in [0usize, 3, 6] {
        assert_eq!(view.by_email(&rows[i].email), Some(&rows[i]));
        assert_eq!(view.by_crm_id(&hs(&i.to_string())), Some(&rows[i]));
    }
    assert_eq!(view.by_user(&user("u0")), Some(&rows[0]));
    assert!(view.by_email(&rows[5].email).is_none());
    assert!(store.load_view(&t, &[], &[]).await.unwrap().is_empty());

    let full = store.load_full_view(&t).await.unwrap();
    assert_eq!(full.len(), rows.len());
    for row in &rows {
        assert_eq!(full.by_email(&row.email), Some(row));
    }
}

// ---------------------------------------------------------------------------------------
// Checkpoints

/// Compare-and-set: stores only over the expected cursor, never backwards.
pub async fn checkpoint_compare_and_set(store: Arc<dyn Store>) {
    let t = tenant("acme");
    let (src, stream) = ("hubspot", "contacts");
    let c1 = Cursor::at(secs(100));
    let c2 = Cursor {
        modified_at: secs(200),
        last_id: Some("42".to_owned()),
    };
    assert_eq!(store.checkpoint(&t, src, stream).await.unwrap(), None);
    assert!(
        store
            .advance_checkpoint(&t, src, stream, None, &c1)
            .await
            .unwrap(),
        "first write"
    );
    assert!(
        !store
            .advance_checkpoint(&t, src, stream, None, &c2)
            .await
            .unwrap(),
        "expected None but one is stored"
    );
    assert_eq!(
        store.checkpoint(&t, src, stream).await.unwrap(),
        Some(c1.clone())
    );

    assert!(
        store
            .advance_checkpoint(&t, src, stream, Some(&c1), &c2)
            .await
            .unwrap()
    );
    assert!(
        !store
            .advance_checkpoint(&t, src, stream, Some(&c1), &Cursor::at(secs(300)))
            .await
            .unwrap(),
        "stale expectation"
    );
    assert!(
        !store
            .advance_checkpoint(&t, src, stream, Some(&c2), &c1)
            .await
            .unwrap(),
        "never backwards"
    );
    let same_time_lower_id = Cursor {
        modified_at: secs(200),
        last_id: Some("41".to_owned()),
    };
    assert!(
        !store
            .advance_checkpoint(&t, src, stream, Some(&c2), &same_time_lower_id)
            .await
            .unwrap(),
        "tie-break id counts"
    );
    assert!(
        store
            .advance_checkpoint(&t, src, stream, Some(&c2), &c2)
            .await
            .unwrap(),
        "equal is not backwards"
    );
    let c3 = Cursor {
        modified_at: secs(200),
        last_id: Some("43".to_owned()),
    };
    assert!(
        store
            .advance_checkpoint(&t, src, stream, Some(&c2), &c3)
            .await
            .unwrap()
    );
    assert_eq!(store.checkpoint(&t, src, stream).await.unwrap(), Some(c3));

    assert_eq!(
        store.checkpoint(&t, src, "deals").await.unwrap(),
        None,
        "streams are independent"
    );
    assert_eq!(
        store.checkpoint(&t, "salesforce", stream).await.unwrap(),
        None,
        "sources are independent"
    );
}

/// Of 16 concurrent advances from the same expected cursor, exactly one wins.
pub async fn checkpoint_cas_has_one_winner_under_contention(store: Arc<dyn Store>) {
    let t = tenant("acme");
    let start = Cursor::at(secs(0));
    assert!(
        store
            .advance_checkpoint(&t, "hubspot", "contacts", None, &start)
            .await
            .unwrap()
    );
    let barrier = Arc::new(Barrier::new(16));
    let mut tasks = Vec::new();
    for i in 0..16i64 {
        let (store, t, start, barrier) = (store.clone(), t.clone(), start.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let next = Cursor::at(secs(10 + i));
            store
                .advance_checkpoint(&t, "hubspot", "contacts", Some(&start), &next)
                .await
                .unwrap()
                .then_some(next)
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        winners.extend(task.await.unwrap());
    }
    assert_eq!(winners.len(), 1, "exactly one advance wins: {winners:?}");
    assert_eq!(
        store.checkpoint(&t, "hubspot", "contacts").await.unwrap(),
        winners.pop()
    );
}

// ---------------------------------------------------------------------------------------
// Delivery ledger

/// Recording is insert-if-absent.
pub async fn delivery_ledger_records_once(store: Arc<dyn Store>) {
    let t = tenant("acme");
    assert!(!store.has_delivery(&t, "exec-1").await.unwrap());
    assert!(
        store.record_delivery(&t, "exec-1", secs(0)).await.unwrap(),
        "new"
    );
    assert!(
        !store.record_delivery(&t, "exec-1", secs(5)).await.unwrap(),
        "duplicate"
    );
    assert!(store.has_delivery(&t, "exec-1").await.unwrap());
    assert!(!store.has_delivery(&t, "exec-2").await.unwrap());
}

/// Sixteen receivers racing on the same delivery: exactly one is told it is new.
pub async fn delivery_recording_is_idempotent_under_16_tasks(store: Arc<dyn Store>) {
    let t = tenant("acme");
    for round in 0..5 {
        let id = format!("exec-race-{round}");
        let barrier = Arc::new(Barrier::new(16));
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let (store, t, id, barrier) = (store.clone(), t.clone(), id.clone(), barrier.clone());
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                store.record_delivery(&t, &id, secs(round)).await.unwrap()
            }));
        }
        let mut new = 0;
        for task in tasks {
            new += usize::from(task.await.unwrap());
        }
        assert_eq!(new, 1, "round {round}: exactly one receiver proceeds");
    }
}

/// Purging deletes deliveries received before the cutoff, and only those.
pub async fn purge_deliveries_respects_the_window(store: Arc<dyn Store>) {
    let t = tenant("acme");
    store.record_delivery(&t, "old", secs(0)).await.unwrap();
    store.record_delivery(&t, "edge", secs(3600)).await.unwrap();
    store.record_delivery(&t, "new", secs(7200)).await.unwrap();
    assert_eq!(
        store.purge_deliveries(&t, secs(3600), 100).await.unwrap(),
        1
    );
    assert!(!store.has_delivery(&t, "old").await.unwrap());
    assert!(
        store.has_delivery(&t, "edge").await.unwrap(),
        "received exactly at the cutoff: kept"
    );
    assert!(store.has_delivery(&t, "new").await.unwrap());
    assert_eq!(
        store.purge_deliveries(&t, secs(3600), 100).await.unwrap(),
        0
    );
    assert!(
        store.record_delivery(&t, "old", secs(8000)).await.unwrap(),
        "a purged id is new again"
    );
    assert_eq!(
        store
            .purge_deliveries(&t, secs(100_000), 100)
            .await
            .unwrap(),
        3
    );
}

/// A purge deletes at most `limit` deliveries per call, the oldest first, whatever the
/// order of their ids; a caller loops until a call returns less than `limit`.
pub async fn purge_deliveries_is_bounded_oldest_first(store: Arc<dyn Store>) {
    let t = tenant("acme");
    // Ids sort in the opposite order of their times.
    for (id, at) in [("e", 10), ("d", 20), ("c", 30), ("b", 40), ("a", 50)] {
        store.record_delivery(&t, id, secs(at)).await.unwrap();
    }
    assert_eq!(store.purge_deliveries(&t, secs(45), 0).await.unwrap(), 0);
    assert_eq!(store.purge_deliveries(&t, secs(45), 2).await.unwrap(), 2);
    for (id, kept) in [
        ("e", false),
        ("d", false),
        ("c", true),
        ("b", true),
        ("a", true),
    ] {
        assert_eq!(
            store.has_delivery(&t, id).await.unwrap(),
            kept,
            "{id}: the two oldest go first"
        );
    }
    assert_eq!(
        store.purge_deliveries(&t, secs(45), 2).await.unwrap(),
        2,
        "c and b"
    );
    assert_eq!(store.purge_deliveries(&t, secs(45), 2).await.unwrap(), 0);
    assert!(
        store.has_delivery(&t, "a").await.unwrap(),
        "after the cutoff: kept"
    );
}

// ---------------------------------------------------------------------------------------
// Outbox

/// Enqueueing skips keys already present (any status) and reports how many were new.
pub async fn outbox_enqueue_is_idempotent_by_key(store: Arc<dyn Store>) {
    let t = tenant("acme");
    assert_eq!(store.enqueue(&t, &actions(0..3), secs(0)).await.unwrap(), 3);
    assert_eq!(
        store
            .enqueue(&t, &[action(1), action(3)], secs(1))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .enqueue(&t, &[action(4), action(4)], secs(2))
            .await
            .unwrap(),
        1,
        "duplicates within a call"
    );
    assert_eq!(store.enqueue(&t, &[], secs(3)).await.unwrap(), 0);

    let pending = store
        .list_outbox(&t, OutboxStatus::Pending, 100)
        .await
        .unwrap();
    assert_eq!(keys(&pending), keys_of(&actions(0..5)), "oldest first");
    let first = &pending[0];
    assert_eq!(first.action, action(0), "the action round-trips");
    assert_eq!(
        (first.status, first.attempts, first.enqueued_at),
        (OutboxStatus::Pending, 0, secs(0))
    );
    assert_eq!(
        (
            &first.last_error,
            &first.leased_by,
            first.lease_until,
            first.not_before
        ),
        (&None, &None, None, None)
    );
    assert_eq!(pending[3].enqueued_at, secs(1));
    assert_eq!(
        store
            .list_outbox(&t, OutboxStatus::Pending, 2)
            .await
            .unwrap()
            .len(),
        2
    );

    // A done item's key stays taken.
    let claimed = store
        .claim(&t, &h("w"), 1, Duration::from_secs(60), secs(5))
        .await
        .unwrap();
    store
        .complete(&t, &claimed[0].action.key, &h("w"), secs(6))
        .await
        .unwrap();
    assert_eq!(store.enqueue(&t, &[action(0)], secs(7)).await.unwrap(), 0);
    let counts = store.outbox_counts(&t).await.unwrap();
    assert_eq!(
        (counts.pending, counts.in_flight, counts.done, counts.failed),
        (4, 0, 1, 0)
    );
}

fn keys_of(actions: &[Action]) -> Vec<IdempotencyKey> {
    actions.iter().map(|a| a.key.clone()).collect()
}

/// Claims lease items oldest first and count attempts; expired leases are claimable again;
/// only the current holder can complete.
pub async fn outbox_claim_leases_and_counts_attempts(store: Arc<dyn Store>) {
    let t = tenant("acme");
    let lease = Duration::from_secs(60);
    store.enqueue(&t, &actions(0..5), secs(0)).await.unwrap();

    let w1 = store.claim(&t, &h("w1"), 2, lease, secs(0)).await.unwrap();
    assert_eq!(keys(&w1), keys_of(&actions(0..2)));
    for item in &w1 {
        assert_eq!(item.status, OutboxStatus::InFlight);
        assert_eq!(item.leased_by.as_deref(), Some("w1"));
        assert_eq!(item.lease_until, Some(secs(60)));
        assert_eq!(item.attempts, 1);
    }
    let w2 = store
        .claim(&t, &h("w2"), 10, lease, secs(10))
        .await
        .unwrap();
    assert_eq!(keys(&w2), keys_of(&actions(2..5)));
    assert!(
        store
            .claim(&t, &h("w3"), 10, lease, secs(59))
            .await
            .unwrap()
            .is_empty(),
        "every lease is live"
    );
    assert!(
        store
            .claim(&t, &h("w3"), 0, lease, secs(100))
            .await
            .unwrap()
            .is_empty(),
        "limit 0"
    );
    let counts = store.outbox_counts(&t).await.unwrap();
    assert_eq!((counts.pending, counts.in_flight), (0, 5));
    assert_eq!(
        store
            .list_outbox(&t, OutboxStatus::InFlight, 10)
            .await
            .unwrap()
            .len(),
        5
    );

    // w1's lease expires at 60: w3 takes its items over, w2's (until 70) stay.
    let w3 = store
        .claim(&t, &h("w3"), 10, lease, secs(60))
        .await
        .unwrap();
    assert_eq!(keys(&w3), keys_of(&actions(0..2)));
    assert!(
        w3.iter()
            .all(|i| i.attempts == 2 && i.leased_by.as_deref() == Some("w3"))
    );
    let lost = store.complete(&t, &action(0).key, &h("w1"), secs(61)).await;
    assert!(matches!(lost, Err(Error::LeaseLost { .. })), "{lost:?}");
    store
        .complete(&t, &action(0).key, &h("w3"), secs(61))
        .await
        .expect("holder completes");
    let again = store.complete(&t, &action(0).key, &h("w3"), secs(62)).await;
    assert!(
        matches!(again, Err(Error::LeaseLost { .. })),
        "a done item cannot be completed twice: {again:?}"
    );
    let unknown = store
        .complete(&t, &IdempotencyKey::from_raw("nope"), &h("w3"), secs(62))
        .await;
    assert!(
        matches!(unknown, Err(Error::LeaseLost { .. })),
        "{unknown:?}"
    );

    // A holder may complete after its lease expired, as long as nobody took the item over.
    store
        .complete(&t, &action(2).key, &h("w2"), secs(500))
        .await
        .expect("expired but not re-claimed");
    let done = store.list_outbox(&t, OutboxStatus::Done, 10).await.unwrap();
    assert_eq!(keys(&done), vec![action(0).key, action(2).key]);
    assert!(
        done.iter()
            .all(|i| i.leased_by.is_none() && i.lease_until.is_none())
    );
    let counts = store.outbox_counts(&t).await.unwrap();
    assert_eq!(
        (counts.pending, counts.in_flight, counts.done, counts.failed),
        (0, 3, 2, 0)
    );
}

/// A failure with a retry time goes back to pending, not claimable before then; without one
/// it fails for good.
pub async fn outbox_fail_retries_later_or_gives_up(store: Arc<dyn Store>) {
    let t = tenant("acme");
    let lease = Duration::from_secs(1000);
    store.enqueue(&t, &actions(0..2), secs(0)).await.unwrap();
    store.claim(&t, &h("w"), 2, lease, secs(0)).await.unwrap();

    let wrong = store
        .fail(&t, &action(0).key, &h("intruder"), "boom", None, secs(1))
        .await;
    assert!(matches!(wrong, Err(Error::LeaseLost { .. })), "{wrong:?}");
    store
        .fail(
            &t,
            &action(0).key,
            &h("w"),
            "HTTP 503",
            Some(secs(100)),
            secs(1),
        )
        .await
        .unwrap();
    let pending = store
        .list_outbox(&t, OutboxStatus::Pending, 10)
        .await
        .unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].last_error.as_deref(), Some("HTTP 503"));
    assert_eq!(pending[0].not_before, Some(secs(100)));
    assert_eq!(
        (pending[0].leased_by.as_deref(), pending[0].lease_until),
        (None, None)
    );
    let twice = store
        .fail(&t, &action(0).key, &h("w"), "again", None, secs(2))
        .await;
    assert!(
        matches!(twice, Err(Error::LeaseLost { .. })),
        "a pending item is not held: {twice:?}"
    );
    let complete_pending = store.complete(&t, &action(0).key, &h("w"), secs(2)).await;
    assert!(
        matches!(complete_pending, Err(Error::LeaseLost { .. })),
        "{complete_pending:?}"
    );

    assert!(
        store
            .claim(&t, &h("w"), 10, lease, secs(99))
            .await
            .unwrap()
            .is_empty(),
        "not before its retry time"
    );
    let retry = store
        .claim(&t, &h("w2"), 10, lease, secs(100))
        .await
        .unwrap();
    assert_eq!(keys(&retry), vec![action(0).key]);
    assert_eq!(retry[0].attempts, 2);
    assert_eq!(
        retry[0].last_error.as_deref(),
        Some("HTTP 503"),
        "the last error is kept until the next one"
    );

    store
        .fail(
            &t,
            &action(0).key,
            &h("w2"),
            "HTTP 400: invalid",
            None,
            secs(101),
        )
        .await
        .unwrap();
    store
        .fail(&t, &action(1).key, &h("w"), "permanent", None, secs(200))
        .await
        .unwrap();
    let failed = store
        .list_outbox(&t, OutboxStatus::Failed, 10)
        .await
        .unwrap();
    assert_eq!(keys(&failed), keys_of(&actions(0..2)));
    assert_eq!(failed[0].last_error.as_deref(), Some("HTTP 400: invalid"));
    assert!(
        store
            .claim(&t, &h("w"), 10, lease, secs(10_000))
            .await
            .unwrap()
            .is_empty(),
        "failed items are never claimed"
    );
    let counts = store.outbox_counts(&t).await.unwrap();
    assert_eq!(
        (counts.pending, counts.in_flight, counts.done, counts.failed),
        (0, 0, 0, 2)
    );
}

/// Eight concurrent workers drain the outbox: every item is processed exactly once; the
/// items of a worker that crashed are re-claimed once their lease expires, and the crashed
/// worker can no longer complete them.
pub async fn outbox_eight_workers_process_each_item_once(store: Arc<dyn Store>) {
    let t = tenant("acme");
    let lease = Duration::from_secs(60);
    let total = 240;
    store
        .enqueue(&t, &actions(0..total), secs(0))
        .await
        .unwrap();

    // A worker claims 10 items, then "crashes" without completing them.
    let crashed = store
        .claim(&t, &h("crashed"), 10, lease, secs(0))
        .await
        .unwrap();
    assert_eq!(crashed.len(), 10);

    let processed: Arc<Mutex<HashMap<IdempotencyKey, usize>>> = Arc::default();
    let drain = |now: DateTime<Utc>, round: &'static str| {
        let barrier = Arc::new(Barrier::new(8));
        let tasks: Vec<_> = (0..8)
            .map(|w| {
                let (store, t, processed, barrier) =
                    (store.clone(), t.clone(), processed.clone(), barrier.clone());
                tokio::spawn(async move {
                    let worker = format!("{round}-worker-{w}");
                    barrier.wait().await;
                    loop {
                        let batch = store.claim(&t, &h(&worker), 7, lease, now).await.unwrap();
                        if batch.is_empty() {
                            break;
                        }
                        for item in batch {
                            assert_eq!(item.leased_by.as_deref(), Some(worker.as_str()));
                            *processed
                                .lock()
                                .unwrap()
                                .entry(item.action.key.clone())
                                .or_default() += 1;
                            tokio::task::yield_now().await;
                            store
                                .complete(&t, &item.action.key, &h(&worker), now)
                                .await
                                .unwrap();
                        }
                    }
                })
            })
            .collect();
        async move {
            for task in tasks {
                task.await.unwrap();
            }
        }
    };

    drain(secs(1), "live").await;
    assert_eq!(
        processed.lock().unwrap().len(),
        total - 10,
        "live leases are not taken over"
    );
    let counts = store.outbox_counts(&t).await.unwrap();
    assert_eq!((counts.in_flight, counts.done), (10, (total - 10) as u64));

    drain(secs(60), "after-expiry").await;
    let processed = processed.lock().unwrap().clone();
    assert_eq!(processed.len(), total, "every item processed");
    assert!(processed.values().all(|&n| n == 1), "exactly once each");
    for item in &crashed {
        let r = store
            .complete(&t, &item.action.key, &h("crashed"), secs(61))
            .await;
        assert!(matches!(r, Err(Error::LeaseLost { .. })), "{r:?}");
    }
    let done = store
        .list_outbox(&t, OutboxStatus::Done, total)
        .await
        .unwrap();
    assert_eq!(done.len(), total);
    let reclaimed: Vec<u32> = done
        .iter()
        .filter(|i| crashed.iter().any(|c| c.action.key == i.action.key))
        .map(|i| i.attempts)
        .collect();
    assert_eq!(
        reclaimed,
        vec![2; 10],
        "re-claimed items count their second attempt"
    );
    let counts = store.outbox_counts(&t).await.unwrap();
    assert_eq!(
        (counts.pending, counts.in_flight, counts.done, counts.failed),
        (0, 0, total as u64, 0)
    );
}

/// An absurdly long lease is accepted (capped, never an overflow panic) and holds.
pub async fn outbox_huge_lease_does_not_panic(store: Arc<dyn Store>) {
    let t = tenant("acme");
    store.enqueue(&t, &actions(0..1), secs(0)).await.unwrap();
    let claimed = store
        .claim(&t, &h("w"), 1, Duration::MAX, secs(0))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let century = secs(100 * 365 * 24 * 3600);
    assert!(
        store
            .claim(&t, &h("w2"), 1, Duration::from_secs(1), century)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .try_acquire_lease(&t, "pull", "a", Duration::MAX, secs(0))
            .await
            .unwrap()
    );
    assert!(
        !store
            .try_acquire_lease(&t, "pull", "b", Duration::from_secs(1), century)
            .await
            .unwrap()
    );
}

/// A restarted worker (same instance id, new incarnation) takes back at once every claim
/// its previous incarnation held: no lease to wait out. Other instances' claims stay.
pub async fn outbox_restart_takes_back_its_own_claims_at_once(store: Arc<dyn Store>) {
    let t = tenant("acme");
    let lease = Duration::from_secs(30);
    store.enqueue(&t, &actions(0..6), secs(0)).await.unwrap();
    let first = store.register_worker(&t, "pod-a", secs(0)).await.unwrap();
    assert_eq!(first.taken_back, 0);
    let other = store.register_worker(&t, "pod-b", secs(0)).await.unwrap();
    let held = store
        .claim(&t, &first.holder, 4, lease, secs(0))
        .await
        .unwrap();
    assert_eq!(held.len(), 4);
    assert_eq!(held[0].leased_by.as_deref(), Some("pod-a"));
    assert_eq!(held[0].lease_incarnation, Some(first.holder.incarnation));
    let others = store
        .claim(&t, &other.holder, 1, lease, secs(0))
        .await
        .unwrap();
    assert_eq!(keys(&others), keys_of(&[action(4)]));

    // pod-a is killed and restarts one second later, long before its lease ends.
    let second = store.register_worker(&t, "pod-a", secs(1)).await.unwrap();
    assert!(second.holder.incarnation > first.holder.incarnation);
    assert_eq!(second.taken_back, 4, "its own four claims, not pod-b's");
    let again = store
        .claim(&t, &second.holder, 10, lease, secs(1))
        .await
        .unwrap();
    assert_eq!(
        keys(&again),
        keys_of(&[action(0), action(1), action(2), action(3), action(5)]),
        "the taken-back items are claimable at once"
    );
    assert_eq!(again[0].attempts, 1, "a take-back does not burn an attempt");
    let b = store
        .list_outbox(&t, OutboxStatus::InFlight, 10)
        .await
        .unwrap();
    assert!(
        b.iter()
            .any(|i| i.action.key == action(4).key && i.leased_by.as_deref() == Some("pod-b")),
        "pod-b keeps its claim"
    );
}

/// Two live processes with one instance id: the older incarnation can claim nothing more
/// and can settle nothing it held; only the newer owns the work.
pub async fn outbox_superseded_incarnation_owns_nothing(store: Arc<dyn Store>) {
    let t = tenant("acme");
    let lease = Duration::from_secs(30);
    store.enqueue(&t, &actions(0..4), secs(0)).await.unwrap();
    let old = store
        .register_worker(&t, "pod", secs(0))
        .await
        .unwrap()
        .holder;
    let held = store.claim(&t, &old, 2, lease, secs(0)).await.unwrap();
    let new = store
        .register_worker(&t, "pod", secs(1))
        .await
        .unwrap()
        .holder;

    let refused = store.claim(&t, &old, 10, lease, secs(2)).await;
    assert!(
        matches!(refused, Err(Error::Superseded { .. })),
        "{refused:?}"
    );
    let mine = store.claim(&t, &new, 10, lease, secs(2)).await.unwrap();
    assert_eq!(mine.len(), 4);
    let key = &held[0].action.key;
    let lost = store.complete(&t, key, &old, secs(3)).await;
    assert!(matches!(lost, Err(Error::LeaseLost { .. })), "{lost:?}");
    let lost = store.fail(&t, key, &old, "x", None, secs(3)).await;
    assert!(matches!(lost, Err(Error::LeaseLost { .. })), "{lost:?}");
    assert_eq!(
        store
            .renew(&t, &old, std::slice::from_ref(key), lease, secs(3))
            .await
            .unwrap(),
        0
    );
    assert_eq!(store.release(&t, &old, None, secs(3)).await.unwrap(), 0);
    store.complete(&t, key, &new, secs(3)).await.unwrap();
    let counts = store.outbox_counts(&t).await.unwrap();
    assert_eq!((counts.done, counts.in_flight), (1, 3));
}

/// Eight processes start with one instance id at once and claim as fast as they can:
/// every in-flight item has exactly one owner, and each item completes exactly once.
pub async fn outbox_same_id_racing_starts_never_share_a_claim(store: Arc<dyn Store>) {
    let t = tenant("acme");
    let lease = Duration::from_secs(600);
    store.enqueue(&t, &actions(0..40), secs(0)).await.unwrap();
    let completed = Arc::new(Mutex::new(Vec::new()));
    let barrier = Arc::new(Barrier::new(8));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (store, t, completed, barrier) =
            (store.clone(), t.clone(), completed.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let Ok(reg) = store.register_worker(&t, "pod", secs(1)).await else {
                return;
            };
            for _ in 0..20 {
                let Ok(batch) = store.claim(&t, &reg.holder, 3, lease, secs(2)).await else {
                    return;
                };
                if batch.is_empty() {
                    tokio::task::yield_now().await;
                }
                for item in batch {
                    if store
                        .complete(&t, &item.action.key, &reg.holder, secs(3))
                        .await
                        .is_ok()
                    {
                        completed.lock().unwrap().push(item.action.key.clone());
                    }
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let done = completed.lock().unwrap().clone();
    let unique: std::collections::BTreeSet<_> = done.iter().collect();
    assert_eq!(
        unique.len(),
        done.len(),
        "an item completed twice: {done:?}"
    );
    // Whatever is still in flight belongs to one holder each, and the last start can take
    // all of it back.
    let last = store.register_worker(&t, "pod", secs(4)).await.unwrap();
    let counts = store.outbox_counts(&t).await.unwrap();
    assert_eq!(counts.in_flight, 0, "{counts:?}");
    let rest = store
        .claim(&t, &last.holder, 100, lease, secs(4))
        .await
        .unwrap();
    assert_eq!(rest.len() + done.len(), 40);
}

/// A renewed lease is not taken by another worker when the first lease would have ended;
/// renewing only touches what the holder still holds.
pub async fn outbox_renewed_lease_keeps_the_claim(store: Arc<dyn Store>) {
    let t = tenant("acme");
    let lease = Duration::from_secs(10);
    store.enqueue(&t, &actions(0..2), secs(0)).await.unwrap();
    let a = store
        .register_worker(&t, "a", secs(0))
        .await
        .unwrap()
        .holder;
    let b = store
        .register_worker(&t, "b", secs(0))
        .await
        .unwrap()
        .holder;
    let held = store.claim(&t, &a, 2, lease, secs(0)).await.unwrap();
    let ks: Vec<IdempotencyKey> = held.iter().map(|i| i.action.key.clone()).collect();
    store.complete(&t, &ks[1], &a, secs(1)).await.unwrap();
    assert_eq!(store.renew(&t, &a, &ks, lease, secs(8)).await.unwrap(), 1);
    assert_eq!(store.renew(&t, &b, &ks, lease, secs(8)).await.unwrap(), 0);
    assert!(
        store
            .claim(&t, &b, 10, lease, secs(12))
            .await
            .unwrap()
            .is_empty(),
        "renewed until 18 s"
    );
    let taken = store.claim(&t, &b, 10, lease, secs(18)).await.unwrap();
    assert_eq!(
        keys(&taken),
        vec![ks[0].clone()],
        "free once the renewed lease ends"
    );
    let lost = store.complete(&t, &ks[0], &a, secs(19)).await;
    assert!(matches!(lost, Err(Error::LeaseLost { .. })), "{lost:?}");
}

/// Released claims are claimable by anyone at once, and the claim is not an attempt.
pub async fn outbox_release_frees_claims_at_once_without_an_attempt(store: Arc<dyn Store>) {
    let t = tenant("acme");
    let lease = Duration::from_secs(30);
    store.enqueue(&t, &actions(0..4), secs(0)).await.unwrap();
    let a = store
        .register_worker(&t, "a", secs(0))
        .await
        .unwrap()
        .holder;
    let b = store
        .register_worker(&t, "b", secs(0))
        .await
        .unwrap()
        .holder;
    let held = store.claim(&t, &a, 4, lease, secs(0)).await.unwrap();
    let one = [held[0].action.key.clone()];
    assert_eq!(store.release(&t, &b, None, secs(1)).await.unwrap(), 0);
    assert_eq!(store.release(&t, &a, Some(&one), secs(1)).await.unwrap(), 1);
    let got = store.claim(&t, &b, 10, lease, secs(1)).await.unwrap();
    assert_eq!(keys(&got), one.to_vec());
    assert_eq!(got[0].attempts, 1, "the released claim was not counted");
    assert_eq!(store.release(&t, &a, None, secs(2)).await.unwrap(), 3);
    let rest = store.claim(&t, &b, 10, lease, secs(2)).await.unwrap();
    assert_eq!(rest.len(), 3);
    assert!(rest.iter().all(|i| i.attempts == 1));
}

/// The backlog splits unfinished work by state: due, retrying later, held under a live
/// lease (with its end), held under an expired lease.
pub async fn outbox_backlog_counts_each_state(store: Arc<dyn Store>) {
    let t = tenant("acme");
    store.enqueue(&t, &actions(0..6), secs(0)).await.unwrap();
    let empty = store
        .outbox_backlog(&tenant("other"), secs(0))
        .await
        .unwrap();
    assert_eq!(empty.outstanding() + empty.retry_later, 0);
    let a = store
        .register_worker(&t, "a", secs(0))
        .await
        .unwrap()
        .holder;
    let b = store
        .register_worker(&t, "b", secs(0))
        .await
        .unwrap()
        .holder;
    store
        .claim(&t, &a, 1, Duration::from_secs(5), secs(0))
        .await
        .unwrap();
    store
        .claim(&t, &b, 2, Duration::from_secs(50), secs(0))
        .await
        .unwrap();
    let retry = store
        .claim(&t, &b, 1, Duration::from_secs(50), secs(0))
        .await
        .unwrap();
    store
        .fail(
            &t,
            &retry[0].action.key,
            &b,
            "503",
            Some(secs(100)),
            secs(1),
        )
        .await
        .unwrap();
    let done = store
        .claim(&t, &b, 1, Duration::from_secs(50), secs(1))
        .await
        .unwrap();
    store
        .complete(&t, &done[0].action.key, &b, secs(1))
        .await
        .unwrap();
    let backlog = store.outbox_backlog(&t, secs(10)).await.unwrap();
    assert_eq!(backlog.pending, 1, "{backlog:?}");
    assert_eq!(backlog.retry_later, 1, "{backlog:?}");
    assert_eq!(backlog.held_live, 2, "{backlog:?}");
    assert_eq!(backlog.held_expired, 1, "{backlog:?}");
    assert_eq!(backlog.held_until, Some(secs(50)));
    assert_eq!(backlog.next_retry_at, Some(secs(100)));
    assert_eq!(backlog.outstanding(), 4);
}

// ---------------------------------------------------------------------------------------
// Audit log

/// Purging done items deletes, at most `limit` per call and the earliest completed first,
/// items completed before the cutoff; never pending, in-flight or failed items.
pub async fn outbox_purge_done_respects_window_limit_and_status(store: Arc<dyn Store>) {
    let t = tenant("acme");
    let lease = Duration::from_secs(600);
    store.enqueue(&t, &actions(0..7), secs(0)).await.unwrap();
    let claimed = store.claim(&t, &h("w"), 6, lease, secs(0)).await.unwrap();
    assert_eq!(claimed.len(), 6);
    // Completed out of enqueue order: the completion time counts, not the enqueue time.
    for (n, at) in [(2, 10), (0, 20), (1, 30)] {
        store
            .complete(&t, &action(n).key, &h("w"), secs(at))
            .await
            .unwrap();
    }
    let w = h("w");
    store
        .fail(&t, &action(3).key, &w, "gone", None, secs(1))
        .await
        .unwrap();
    store
        .fail(&t, &action(4).key, &w, "busy", Some(secs(2)), secs(1))
        .await
        .unwrap();
    // Item 5 stays in flight, item 6 pending and never claimed.

    assert_eq!(store.purge_done(&t, secs(30), 0).await.unwrap(), 0);
    assert_eq!(store.purge_done(&t, secs(30), 1).await.unwrap(), 1);
    let done = store.list_outbox(&t, OutboxStatus::Done, 10).await.unwrap();
    assert_eq!(
        keys(&done),
        vec![action(0).key, action(1).key],
        "the earliest completed (2) went first"
    );
    assert_eq!(store.purge_done(&t, secs(30), 5).await.unwrap(), 1);
    assert_eq!(
        store.purge_done(&t, secs(30), 5).await.unwrap(),
        0,
        "completed exactly at the cutoff: kept"
    );
    assert_eq!(store.purge_done(&t, secs(1_000_000), 5).await.unwrap(), 1);
    assert_eq!(
        store.purge_done(&t, secs(1_000_000), 5).await.unwrap(),
        0,
        "nothing but done items is ever purged"
    );
    let counts = store.outbox_counts(&t).await.unwrap();
    assert_eq!(
        (counts.pending, counts.in_flight, counts.done, counts.failed),
        (2, 1, 0, 1)
    );
    let failed = store
        .list_outbox(&t, OutboxStatus::Failed, 10)
        .await
        .unwrap();
    assert_eq!(keys(&failed), vec![action(3).key], "failed items stay");
    assert_eq!(
        store.enqueue(&t, &actions(0..1), secs(2)).await.unwrap(),
        1,
        "a purged key is new again"
    );
}

/// Entries read back newest first, whole.
pub async fn audit_log_appends_and_reads_newest_first(store: Arc<dyn Store>) {
    let t = tenant("acme");
    let mut first = AuditEntry::new(
        secs(1),
        "assign_badge",
        "jane@example.com",
        AuditOutcome::Applied,
        action(0).key,
    );
    first.before = Some(serde_json::json!({"badges": []}));
    first.after =
        Some(serde_json::json!({"badges": ["Premium"], "n": 1, "nested": {"ok": true, "x": null}}));
    let mut second = AuditEntry::new(
        secs(2),
        "update_crm_properties",
        "hubspot:1",
        AuditOutcome::Rejected,
        action(1).key,
    );
    second.detail = Some("PROPERTY_DOESNT_EXIST".to_owned());
    let third = AuditEntry::new(
        secs(2),
        "remove_badge",
        "u-1",
        AuditOutcome::Failed,
        action(2).key,
    );
    let fourth = AuditEntry::new(
        secs(3),
        "invite",
        "new@example.com",
        AuditOutcome::Skipped,
        action(3).key,
    );

    store
        .append_audit(&t, &[first.clone(), second.clone()])
        .await
        .unwrap();
    store.append_audit(&t, &[]).await.unwrap();
    store
        .append_audit(&t, &[third.clone(), fourth.clone()])
        .await
        .unwrap();

    assert_eq!(
        store.recent_audit(&t, 10).await.unwrap(),
        vec![fourth.clone(), third, second, first]
    );
    assert_eq!(store.recent_audit(&t, 1).await.unwrap(), vec![fourth]);
    assert!(store.recent_audit(&t, 0).await.unwrap().is_empty());
}

fn audit_at(at: i64, target: &str) -> AuditEntry {
    AuditEntry::new(
        secs(at),
        "assign_badge",
        target,
        AuditOutcome::Applied,
        action(0).key,
    )
}

/// Purging the audit log deletes, at most `limit` per call, the entries older than the
/// cutoff, the oldest first (in append order among equal times); newer entries stay.
pub async fn audit_purge_is_bounded_and_keeps_newer_rows(store: Arc<dyn Store>) {
    let t = tenant("acme");
    let entries: Vec<AuditEntry> = [(5, "a"), (1, "b"), (3, "c"), (9, "d"), (3, "e")]
        .into_iter()
        .map(|(at, target)| audit_at(at, target))
        .collect();
    store.append_audit(&t, &entries).await.unwrap();
    let targets = |entries: Vec<AuditEntry>| -> Vec<String> {
        entries.into_iter().map(|e| e.target).collect()
    };

    assert_eq!(store.purge_audit(&t, secs(5), 0).await.unwrap(), 0);
    assert_eq!(store.purge_audit(&t, secs(5), 2).await.unwrap(), 2);
    assert_eq!(
        targets(store.recent_audit(&t, 10).await.unwrap()),
        vec!["e", "d", "a"],
        "b (1 s) then c (3 s, appended before e) went first"
    );
    assert_eq!(store.purge_audit(&t, secs(5), 2).await.unwrap(), 1);
    assert_eq!(
        store.purge_audit(&t, secs(5), 2).await.unwrap(),
        0,
        "at the cutoff or after: kept"
    );
    assert_eq!(
        targets(store.recent_audit(&t, 10).await.unwrap()),
        vec!["d", "a"]
    );
    store.append_audit(&t, &[audit_at(0, "f")]).await.unwrap();
    assert_eq!(
        targets(store.recent_audit(&t, 10).await.unwrap()),
        vec!["f", "d", "a"],
        "appending after a purge still reads newest first"
    );
}

/// Each purge deletes only its own tenant's rows.
pub async fn purges_touch_only_their_tenant(store: Arc<dyn Store>) {
    let (a, b) = (tenant("a"), tenant("b"));
    let lease = Duration::from_secs(60);
    for t in [&a, &b] {
        store.record_delivery(t, "d-1", secs(0)).await.unwrap();
        store.enqueue(t, &actions(0..1), secs(0)).await.unwrap();
        store.claim(t, &h("w"), 1, lease, secs(0)).await.unwrap();
        store
            .complete(t, &action(0).key, &h("w"), secs(1))
            .await
            .unwrap();
        store.append_audit(t, &[audit_at(1, "x")]).await.unwrap();
    }
    let later = secs(1_000);
    assert_eq!(store.purge_deliveries(&b, later, 10).await.unwrap(), 1);
    assert_eq!(store.purge_done(&b, later, 10).await.unwrap(), 1);
    assert_eq!(store.purge_audit(&b, later, 10).await.unwrap(), 1);

    assert!(store.has_delivery(&a, "d-1").await.unwrap());
    assert_eq!(store.outbox_counts(&a).await.unwrap().done, 1);
    assert_eq!(store.recent_audit(&a, 10).await.unwrap().len(), 1);
    assert!(!store.has_delivery(&b, "d-1").await.unwrap());
    assert_eq!(store.outbox_counts(&b).await.unwrap().done, 0);
    assert!(store.recent_audit(&b, 10).await.unwrap().is_empty());
}

// ---------------------------------------------------------------------------------------
// Leader lease

/// One holder at a time; renewal by the holder; takeover after expiry; release by the
/// holder only.
pub async fn leader_lease_is_exclusive(store: Arc<dyn Store>) {
    let t = tenant("acme");
    let ttl = Duration::from_secs(30);
    assert!(
        store
            .try_acquire_lease(&t, "pull", "a", ttl, secs(0))
            .await
            .unwrap()
    );
    assert!(
        !store
            .try_acquire_lease(&t, "pull", "b", ttl, secs(10))
            .await
            .unwrap()
    );
    assert!(
        store
            .try_acquire_lease(&t, "pull", "a", ttl, secs(10))
            .await
            .unwrap(),
        "renewal"
    );
    assert!(
        !store
            .try_acquire_lease(&t, "pull", "b", ttl, secs(39))
            .await
            .unwrap(),
        "renewed until 40"
    );
    assert!(
        store
            .try_acquire_lease(&t, "push", "b", ttl, secs(39))
            .await
            .unwrap(),
        "names are independent"
    );
    assert!(
        store
            .try_acquire_lease(&t, "pull", "b", ttl, secs(40))
            .await
            .unwrap(),
        "expired: taken over"
    );
    assert!(
        !store
            .try_acquire_lease(&t, "pull", "a", ttl, secs(41))
            .await
            .unwrap()
    );

    store.release_lease(&t, "pull", "a").await.unwrap();
    assert!(
        !store
            .try_acquire_lease(&t, "pull", "a", ttl, secs(42))
            .await
            .unwrap(),
        "a non-holder cannot release"
    );
    store.release_lease(&t, "pull", "b").await.unwrap();
    assert!(
        store
            .try_acquire_lease(&t, "pull", "a", ttl, secs(43))
            .await
            .unwrap(),
        "released"
    );
    store
        .release_lease(&t, "never-taken", "a")
        .await
        .expect("releasing nothing is fine");
}

/// Sixteen instances racing for the same lease: exactly one gets it.
pub async fn leader_lease_has_one_winner_under_contention(store: Arc<dyn Store>) {
    let t = tenant("acme");
    for round in 0..3i64 {
        let name = format!("pull-{round}");
        let barrier = Arc::new(Barrier::new(16));
        let mut tasks = Vec::new();
        for i in 0..16 {
            let (store, t, name, barrier) =
                (store.clone(), t.clone(), name.clone(), barrier.clone());
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                store
                    .try_acquire_lease(
                        &t,
                        &name,
                        &format!("instance-{i}"),
                        Duration::from_secs(30),
                        secs(round),
                    )
                    .await
                    .unwrap()
            }));
        }
        let mut winners = 0;
        for task in tasks {
            winners += usize::from(task.await.unwrap());
        }
        assert_eq!(winners, 1, "round {round}");
    }
}

// ---------------------------------------------------------------------------------------
// Tenants

/// Tenant B never sees nor changes tenant A's rows, through any method.
pub async fn tenant_isolation(store: Arc<dyn Store>) {
    let a = tenant("tenant-a");
    let b = tenant("tenant-b");
    let ttl = Duration::from_secs(30);
    let row = full_mapping("shared@example.com", "1", "u1");
    let cursor = Cursor::at(secs(100));
    let mut audit = AuditEntry::new(
        secs(1),
        "assign_badge",
        "shared@example.com",
        AuditOutcome::Applied,
        action(0).key,
    );
    audit.detail = Some("a's".to_owned());

    store.put_mapping(&a, &row).await.unwrap();
    assert!(
        store
            .advance_checkpoint(&a, "hubspot", "contacts", None, &cursor)
            .await
            .unwrap()
    );
    assert!(store.record_delivery(&a, "exec-1", secs(0)).await.unwrap());
    assert_eq!(store.enqueue(&a, &actions(0..3), secs(0)).await.unwrap(), 3);
    store
        .append_audit(&a, std::slice::from_ref(&audit))
        .await
        .unwrap();
    assert!(
        store
            .try_acquire_lease(&a, "pull", "a-instance", ttl, secs(0))
            .await
            .unwrap()
    );

    sees_nothing_of(&*store, &b, &row).await;

    // B cannot change A's rows.
    assert!(!store.delete_mapping(&b, &row.email).await.unwrap());
    assert_eq!(
        store
            .purge_deliveries(&b, secs(1_000_000), 100)
            .await
            .unwrap(),
        0
    );
    let a_claim = store
        .claim(&a, &h("a-worker"), 1, ttl, secs(0))
        .await
        .unwrap();
    let stolen = store
        .complete(&b, &a_claim[0].action.key, &h("a-worker"), secs(1))
        .await;
    assert!(matches!(stolen, Err(Error::LeaseLost { .. })), "{stolen:?}");
    let stolen = store
        .fail(
            &b,
            &a_claim[0].action.key,
            &h("a-worker"),
            "x",
            None,
            secs(1),
        )
        .await;
    assert!(matches!(stolen, Err(Error::LeaseLost { .. })), "{stolen:?}");
    store.release_lease(&b, "pull", "a-instance").await.unwrap();

    own_rows_beside(&*store, &b, &row).await;

    // A is untouched.
    assert_eq!(
        store.mapping_by_email(&a, &row.email).await.unwrap(),
        Some(row.clone())
    );
    assert_eq!(
        store.mapping_by_crm_id(&a, &hs("1")).await.unwrap(),
        Some(row.clone())
    );
    assert_eq!(store.load_full_view(&a).await.unwrap().len(), 1);
    assert_eq!(
        store.checkpoint(&a, "hubspot", "contacts").await.unwrap(),
        Some(cursor)
    );
    assert!(store.has_delivery(&a, "exec-1").await.unwrap());
    let counts = store.outbox_counts(&a).await.unwrap();
    assert_eq!((counts.pending, counts.in_flight, counts.done), (2, 1, 0));
    store
        .complete(&a, &a_claim[0].action.key, &h("a-worker"), secs(3))
        .await
        .expect("A's lease survived B's attempts");
    assert_eq!(store.recent_audit(&a, 10).await.unwrap(), vec![audit]);
    assert!(
        !store
            .try_acquire_lease(&a, "pull", "someone-else", ttl, secs(2))
            .await
            .unwrap(),
        "A's lease still held"
    );
}

/// Tenant `b` reads nothing of another tenant's `row`, nor its checkpoint, delivery, outbox
/// and audit (see [`tenant_isolation`]).
async fn sees_nothing_of(store: &dyn Store, b: &TenantId, row: &Mapping) {
    let ttl = Duration::from_secs(30);
    assert_eq!(store.mapping_by_email(b, &row.email).await.unwrap(), None);
    assert_eq!(store.mapping_by_crm_id(b, &hs("1")).await.unwrap(), None);
    assert_eq!(store.mapping_by_user(b, &user("u1")).await.unwrap(), None);
    assert!(store.list_mappings(b, None, 100).await.unwrap().is_empty());
    assert_eq!(store.count_mappings(b).await.unwrap(), 0);
    assert!(
        store
            .load_view(b, &[hs("1")], std::slice::from_ref(&row.email))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.load_full_view(b).await.unwrap().is_empty());
    assert_eq!(
        store.checkpoint(b, "hubspot", "contacts").await.unwrap(),
        None
    );
    assert!(!store.has_delivery(b, "exec-1").await.unwrap());
    assert_eq!(store.outbox_counts(b).await.unwrap(), Default::default());
    assert!(
        store
            .list_outbox(b, OutboxStatus::Pending, 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .claim(b, &h("b-worker"), 100, ttl, secs(0))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.recent_audit(b, 100).await.unwrap().is_empty());
}

/// Tenant `b` keeps rows with the same keys as another tenant's, and changes only its own
/// (see [`tenant_isolation`]).
async fn own_rows_beside(store: &dyn Store, b: &TenantId, row: &Mapping) {
    let ttl = Duration::from_secs(30);
    let b_row = Mapping::new(row.email.clone(), secs(7))
        .with_crm(hs("1"))
        .with_user(user("u1"));
    store
        .put_mapping(b, &b_row)
        .await
        .expect("same keys in another tenant");
    assert!(
        store
            .advance_checkpoint(b, "hubspot", "contacts", None, &Cursor::at(secs(5)))
            .await
            .unwrap()
    );
    assert!(
        store.record_delivery(b, "exec-1", secs(0)).await.unwrap(),
        "the same delivery id is new for B"
    );
    assert_eq!(
        store.enqueue(b, &actions(0..1), secs(0)).await.unwrap(),
        1,
        "the same key is new for B"
    );
    assert!(
        store
            .try_acquire_lease(b, "pull", "b-instance", ttl, secs(1))
            .await
            .unwrap()
    );
    let b_claim = store
        .claim(b, &h("b-worker"), 100, ttl, secs(1))
        .await
        .unwrap();
    assert_eq!(keys(&b_claim), vec![action(0).key]);
    store
        .complete(b, &action(0).key, &h("b-worker"), secs(2))
        .await
        .unwrap();
    assert!(store.delete_mapping(b, &row.email).await.unwrap());
    assert_eq!(
        store
            .purge_deliveries(b, secs(1_000_000), 100)
            .await
            .unwrap(),
        1
    );
}

/// The empty tenant id is refused by every method with `UnknownTenant`.
pub async fn empty_tenant_is_rejected(store: Arc<dyn Store>) {
    let t = TenantId::new("");
    let e = email("a@example.com");
    let m = Mapping::new(e.clone(), secs(0));
    let key = action(0).key;
    let d = Duration::from_secs(1);
    let unknown = |name: &str, r: Result<(), Error>| {
        assert!(
            matches!(r, Err(Error::UnknownTenant(_))),
            "{name}: expected UnknownTenant, got {r:?}"
        );
    };
    unknown(
        "mapping_by_email",
        store.mapping_by_email(&t, &e).await.map(drop),
    );
    unknown(
        "mapping_by_crm_id",
        store.mapping_by_crm_id(&t, &hs("1")).await.map(drop),
    );
    unknown(
        "mapping_by_user",
        store.mapping_by_user(&t, &user("u")).await.map(drop),
    );
    unknown("put_mapping", store.put_mapping(&t, &m).await);
    unknown(
        "put_mappings",
        store.put_mappings(&t, std::slice::from_ref(&m)).await,
    );
    unknown(
        "delete_mapping",
        store.delete_mapping(&t, &e).await.map(drop),
    );
    unknown(
        "list_mappings",
        store.list_mappings(&t, None, 10).await.map(drop),
    );
    unknown("count_mappings", store.count_mappings(&t).await.map(drop));
    unknown(
        "load_view",
        store.load_view(&t, &[hs("1")], &[]).await.map(drop),
    );
    unknown("load_full_view", store.load_full_view(&t).await.map(drop));
    unknown("checkpoint", store.checkpoint(&t, "s", "x").await.map(drop));
    unknown(
        "advance_checkpoint",
        store
            .advance_checkpoint(&t, "s", "x", None, &Cursor::at(secs(0)))
            .await
            .map(drop),
    );
    unknown(
        "record_delivery",
        store.record_delivery(&t, "d", secs(0)).await.map(drop),
    );
    unknown("has_delivery", store.has_delivery(&t, "d").await.map(drop));
    unknown(
        "purge_deliveries",
        store.purge_deliveries(&t, secs(0), 1).await.map(drop),
    );
    unknown(
        "purge_done",
        store.purge_done(&t, secs(0), 1).await.map(drop),
    );
    unknown(
        "purge_audit",
        store.purge_audit(&t, secs(0), 1).await.map(drop),
    );
    unknown(
        "enqueue",
        store.enqueue(&t, &actions(0..1), secs(0)).await.map(drop),
    );
    unknown(
        "claim",
        store.claim(&t, &h("w"), 1, d, secs(0)).await.map(drop),
    );
    unknown("complete", store.complete(&t, &key, &h("w"), secs(0)).await);
    unknown(
        "fail",
        store.fail(&t, &key, &h("w"), "e", None, secs(0)).await,
    );
    unknown("outbox_counts", store.outbox_counts(&t).await.map(drop));
    unknown(
        "list_outbox",
        store
            .list_outbox(&t, OutboxStatus::Pending, 1)
            .await
            .map(drop),
    );
    unknown("append_audit", store.append_audit(&t, &[]).await);
    unknown("recent_audit", store.recent_audit(&t, 1).await.map(drop));
    unknown(
        "try_acquire_lease",
        store
            .try_acquire_lease(&t, "l", "h", d, secs(0))
            .await
            .map(drop),
    );
    unknown("release_lease", store.release_lease(&t, "l", "h").await);
}

/// The status tables' purges refuse the empty tenant id with `UnknownTenant`, as every
/// other method does.
pub async fn status_purges_reject_the_empty_tenant(store: Arc<dyn Store>) {
    let t = TenantId::new("");
    for (name, r) in [
        (
            "purge_webhook_counts",
            store.purge_webhook_counts(&t, secs(0), 1).await,
        ),
        (
            "purge_operator_actions",
            store.purge_operator_actions(&t, secs(0), 1).await,
        ),
    ] {
        assert!(
            matches!(r, Err(Error::UnknownTenant(_))),
            "{name}: expected UnknownTenant, got {r:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Status

/// Six items: 0 to 3 failed for good at 10 to 13 s, 4 done, 5 waiting for a retry.
async fn failed_fixture(store: &Arc<dyn Store>, t: &TenantId) {
    let lease = Duration::from_secs(1000);
    store.enqueue(t, &actions(0..6), secs(0)).await.unwrap();
    store.claim(t, &h("w"), 6, lease, secs(1)).await.unwrap();
    let errors = ["rejected: a", "rejected: b", "timeout: c", "rejected: d"];
    for (n, error) in errors.iter().enumerate() {
        let at = secs(10 + n as i64);
        store
            .fail(t, &action(n).key, &h("w"), error, None, at)
            .await
            .unwrap();
    }
    store
        .complete(t, &action(4).key, &h("w"), secs(5))
        .await
        .unwrap();
    let later = Some(secs(1000));
    store
        .fail(t, &action(5).key, &h("w"), "HTTP 503", later, secs(5))
        .await
        .unwrap();
}

fn failed_keys(items: &[sync_core::ports::FailedItem]) -> Vec<IdempotencyKey> {
    items.iter().map(|f| f.item.action.key.clone()).collect()
}

/// Failed items are listed with their failure time, the earliest failed first, and filtered
/// by kind, error prefix, time window and limit.
pub async fn status_failed_items_are_listed_and_filtered(store: Arc<dyn Store>) {
    let t = tenant("acme");
    failed_fixture(&store, &t).await;
    let all = store
        .list_failed(&t, &FailedFilter::default())
        .await
        .unwrap();
    assert_eq!(failed_keys(&all), keys_of(&actions(0..4)));
    assert_eq!(all[2].failed_at, secs(12));
    assert_eq!(all[2].item.last_error.as_deref(), Some("timeout: c"));
    let kind = action(0).kind.name();
    let by_kind = store
        .list_failed(&t, &FailedFilter::new(10).kind(kind))
        .await
        .unwrap();
    assert_eq!(failed_keys(&by_kind), vec![action(0).key, action(2).key]);
    let rejected = FailedFilter::new(10).reason_prefix("rejected");
    let by_reason = store.list_failed(&t, &rejected).await.unwrap();
    assert_eq!(
        failed_keys(&by_reason),
        vec![action(0).key, action(1).key, action(3).key]
    );
    let window = FailedFilter::new(10).failed_between(Some(secs(11)), Some(secs(13)));
    let by_time = store.list_failed(&t, &window).await.unwrap();
    assert_eq!(failed_keys(&by_time), vec![action(1).key, action(2).key]);
    assert_eq!(
        store
            .list_failed(&t, &FailedFilter::new(2))
            .await
            .unwrap()
            .len(),
        2
    );
}

/// A dismissed item is counted apart, listed only when asked and never requeued by a
/// filter; requeued items are pending with no attempts and claimable at once; every
/// operator action is audited.
pub async fn status_requeue_and_dismiss_are_audited(store: Arc<dyn Store>) {
    let t = tenant("acme");
    failed_fixture(&store, &t).await;
    let rejected = FailedFilter::new(10).reason_prefix("rejected");
    assert!(
        store
            .dismiss_failed(&t, &action(1).key, "ops", "known bad email", secs(20))
            .await
            .unwrap()
    );
    assert!(
        !store
            .dismiss_failed(&t, &action(4).key, "ops", "done", secs(20))
            .await
            .unwrap()
    );
    let counts = store.outbox_counts(&t).await.unwrap();
    assert_eq!(
        (counts.pending, counts.done, counts.failed, counts.dismissed),
        (1, 1, 3, 1)
    );
    let listed = store
        .list_failed(&t, &FailedFilter::default())
        .await
        .unwrap();
    assert!(
        !failed_keys(&listed).contains(&action(1).key),
        "dismissed items are hidden"
    );
    let with = store
        .list_failed(&t, &FailedFilter::default().with_dismissed())
        .await
        .unwrap();
    let dismissed = with
        .iter()
        .find(|f| f.item.action.key == action(1).key)
        .unwrap();
    let note = dismissed.dismissed.as_ref().unwrap();
    assert_eq!(
        (note.at, note.by.as_str(), note.note.as_str()),
        (secs(20), "ops", "known bad email")
    );

    let moved = store
        .requeue_failed(
            &t,
            &Requeue::Matching(rejected.with_dismissed()),
            "ops",
            Some("fixed"),
            secs(30),
        )
        .await
        .unwrap();
    assert_eq!(moved, 2, "the dismissed item is never requeued by a filter");
    let claimed = store
        .claim(&t, &h("w2"), 10, Duration::from_secs(60), secs(30))
        .await
        .unwrap();
    let mut claimed_keys = keys(&claimed);
    claimed_keys.sort();
    let mut expected = vec![action(0).key, action(3).key];
    expected.sort();
    assert_eq!(
        claimed_keys, expected,
        "requeued items are claimable at once"
    );
    assert!(
        claimed.iter().all(|i| i.attempts == 1),
        "attempts start again from zero"
    );
    assert!(
        claimed.iter().all(|i| i.requeues == 1),
        "a requeue is counted, so the item goes out under a new key"
    );

    let by_key = Requeue::Keys(vec![action(1).key, action(4).key]);
    assert_eq!(
        store
            .requeue_failed(&t, &by_key, "lead", None, secs(40))
            .await
            .unwrap(),
        1
    );
    assert_operator_log(&store, &t).await;
    let other = tenant("other");
    assert!(
        store
            .list_failed(&other, &FailedFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.operator_actions(&other, 10).await.unwrap().is_empty());
}

/// The operator log of [`status_requeue_and_dismiss_are_audited`], newest first.
async fn assert_operator_log(store: &Arc<dyn Store>, t: &TenantId) {
    let t = t.clone();
    let log = store.operator_actions(&t, 10).await.unwrap();
    let summary: Vec<(&str, &str, usize, Option<&str>)> = log
        .iter()
        .map(|a| {
            (
                a.actor.as_str(),
                a.action.as_str(),
                a.keys.len(),
                a.note.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("lead", "requeue", 1, None),
            ("ops", "requeue", 2, Some("fixed")),
            ("ops", "dismiss", 1, Some("known bad email")),
        ]
    );
    assert_eq!(
        (log[0].at, log[0].keys.clone()),
        (secs(40), vec![action(1).key.to_string()])
    );
}

/// The last run of each mode round-trips and keeps the last success across a failed run;
/// a credentials check keeps the account id known before; webhook deliveries are counted
/// per hour bucket, refusals by reason.
pub async fn status_last_runs_credentials_and_webhook_counts(store: Arc<dyn Store>) {
    let t = tenant("acme");
    assert!(store.last_runs(&t).await.unwrap().is_empty());
    let mut ok = RunRecord::new(RunMode::Delta, secs(0), secs(10), RunOutcome::Ok);
    ok.applied.insert("assign_badge".to_owned(), 3);
    ok.read = 7;
    ok.checkpoint = Some(Cursor::at(secs(-300)));
    ok.lag_ms = Some(1500);
    store.record_run(&t, &ok).await.unwrap();
    let mut failed = RunRecord::new(RunMode::Delta, secs(20), secs(21), RunOutcome::Failed);
    failed.reason = Some("store unavailable".to_owned());
    store.record_run(&t, &failed).await.unwrap();
    let drain = RunRecord::new(RunMode::Drain, secs(30), secs(31), RunOutcome::Ok);
    store.record_run(&t, &drain).await.unwrap();
    let runs = store.last_runs(&t).await.unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(
        (&runs[0].run, runs[0].last_ok_at),
        (&failed, Some(secs(10)))
    );
    assert_eq!((&runs[1].run, runs[1].last_ok_at), (&drain, Some(secs(31))));
    store.record_run(&t, &ok).await.unwrap();
    assert_eq!(store.last_runs(&t).await.unwrap()[0].run, ok);

    assert_eq!(store.credentials_check(&t).await.unwrap(), None);
    let good = CredentialsCheck::ok(secs(1), Some("portal-123".to_owned()));
    store.record_credentials_check(&t, &good).await.unwrap();
    let bad = CredentialsCheck::failed(secs(2), "401: token revoked");
    store.record_credentials_check(&t, &bad).await.unwrap();
    let check = store.credentials_check(&t).await.unwrap().unwrap();
    assert_eq!(check.at, secs(2));
    assert_eq!(check.error.as_deref(), Some("401: token revoked"));
    assert_eq!(check.account_id.as_deref(), Some("portal-123"));

    let hour = hour_bucket(secs(0));
    let at = hour + chrono::Duration::minutes(10);
    let old = hour - chrono::Duration::hours(2);
    for (outcome, reason, when) in [
        (WebhookOutcome::Accepted, None, at),
        (WebhookOutcome::Accepted, None, at),
        (WebhookOutcome::Duplicate, None, at),
        (WebhookOutcome::Refused, Some("bad_signature"), at),
        (WebhookOutcome::Refused, Some("bad_signature"), at),
        (WebhookOutcome::Refused, Some("stale"), old),
    ] {
        store
            .record_delivery_outcome(&t, outcome, reason, when)
            .await
            .unwrap();
    }
    let recent = store
        .webhook_counts(&t, hour + chrono::Duration::minutes(30))
        .await
        .unwrap();
    assert_eq!((recent.accepted, recent.duplicate), (2, 1));
    assert_eq!(
        recent.refused.into_iter().collect::<Vec<_>>(),
        vec![("bad_signature".to_owned(), 2)]
    );
    let day = store
        .webhook_counts(&t, hour - chrono::Duration::hours(23))
        .await
        .unwrap();
    assert_eq!(day.refused.get("stale"), Some(&1));
    assert_eq!(day.accepted, 2);

    let other = tenant("other");
    assert!(store.last_runs(&other).await.unwrap().is_empty());
    assert_eq!(store.credentials_check(&other).await.unwrap(), None);
    assert_eq!(store.webhook_counts(&other, old).await.unwrap().accepted, 0);
}

/// Webhook counters are purged by whole hour buckets that ended by the cutoff, oldest
/// first, at most `limit` a call, for one tenant only: counts since the cutoff answer the
/// same after the purge.
pub async fn status_webhook_count_purge_deletes_whole_old_buckets(store: Arc<dyn Store>) {
    let (t, other) = (tenant("acme"), tenant("other"));
    let hour = hour_bucket(secs(0));
    let at = |h: i64, m: i64| hour + chrono::Duration::hours(h) + chrono::Duration::minutes(m);
    for (outcome, reason, when) in [
        (WebhookOutcome::Refused, Some("stale"), at(-3, 5)),
        (WebhookOutcome::Accepted, None, at(-2, 10)),
        (WebhookOutcome::Refused, Some("bad_signature"), at(-2, 20)),
        (WebhookOutcome::Duplicate, None, at(-1, 5)),
        (WebhookOutcome::Accepted, None, at(0, 1)),
    ] {
        store
            .record_delivery_outcome(&t, outcome, reason, when)
            .await
            .unwrap();
    }
    store
        .record_delivery_outcome(&other, WebhookOutcome::Accepted, None, at(-3, 0))
        .await
        .unwrap();
    // The cutoff falls inside the bucket of -1 h: that bucket has not ended, so it stays.
    let cutoff = at(-1, 30);
    let since_cutoff = store.webhook_counts(&t, cutoff).await.unwrap();
    assert_eq!(store.purge_webhook_counts(&t, cutoff, 0).await.unwrap(), 0);
    assert_eq!(store.purge_webhook_counts(&t, cutoff, 2).await.unwrap(), 2);
    let left = store.webhook_counts(&t, at(-5, 0)).await.unwrap();
    assert_eq!(
        left.refused.get("stale"),
        None,
        "the oldest bucket went first"
    );
    assert_eq!(left.accepted, 1, "of -2 h, at most the limit went");
    assert_eq!(store.purge_webhook_counts(&t, cutoff, 2).await.unwrap(), 1);
    assert_eq!(store.purge_webhook_counts(&t, cutoff, 2).await.unwrap(), 0);
    assert_eq!(
        store.webhook_counts(&t, cutoff).await.unwrap(),
        since_cutoff
    );
    assert_eq!(
        store.webhook_counts(&t, at(-5, 0)).await.unwrap(),
        since_cutoff,
        "nothing before the cutoff's bucket is left"
    );
    assert_eq!((since_cutoff.accepted, since_cutoff.duplicate), (1, 1));
    let theirs = store.webhook_counts(&other, at(-5, 0)).await.unwrap();
    assert_eq!(theirs.accepted, 1, "another tenant's counters are kept");
}

/// Operator actions are purged oldest first, at most `limit` a call, for one tenant only;
/// the items they named are not touched.
pub async fn status_operator_action_purge_is_bounded_oldest_first(store: Arc<dyn Store>) {
    let (t, other) = (tenant("acme"), tenant("other"));
    failed_fixture(&store, &t).await;
    failed_fixture(&store, &other).await;
    for (n, at) in [(0, 40), (1, 20), (2, 30)] {
        assert!(
            store
                .dismiss_failed(&t, &action(n).key, "ops", "note", secs(at))
                .await
                .unwrap()
        );
    }
    assert!(
        store
            .dismiss_failed(&other, &action(0).key, "ops", "note", secs(1))
            .await
            .unwrap()
    );
    let one = Requeue::Keys(vec![action(3).key.clone()]);
    assert_eq!(
        store
            .requeue_failed(&t, &one, "ops", None, secs(50))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store.purge_operator_actions(&t, secs(45), 0).await.unwrap(),
        0
    );
    assert_eq!(
        store.purge_operator_actions(&t, secs(45), 2).await.unwrap(),
        2
    );
    let left = store.operator_actions(&t, 10).await.unwrap();
    let times: Vec<_> = left.iter().map(|a| a.at).collect();
    assert_eq!(times, vec![secs(50), secs(40)], "the two oldest went");
    assert_eq!(
        store.purge_operator_actions(&t, secs(45), 2).await.unwrap(),
        1
    );
    assert_eq!(
        store.purge_operator_actions(&t, secs(45), 2).await.unwrap(),
        0
    );
    assert_eq!(store.operator_actions(&t, 10).await.unwrap().len(), 1);
    assert_eq!(store.operator_actions(&other, 10).await.unwrap().len(), 1);
    let counts = store.outbox_counts(&t).await.unwrap();
    assert_eq!(
        (counts.failed, counts.dismissed),
        (0, 3),
        "the dismissals stand"
    );
}

// ---------------------------------------------------------------------------------------
// Tenant purge

/// Gives `t` one row of every kind a purge counts (credentials excepted: they live in the
/// credential store, see `tests/credentials.rs`).
async fn fill_tenant(store: &Arc<dyn Store>, t: &TenantId) {
    let ttl = Duration::from_secs(30);
    store
        .put_mapping(t, &full_mapping("person@example.com", "1", "u1"))
        .await
        .unwrap();
    assert!(
        store
            .advance_checkpoint(t, "hubspot", "contacts", None, &Cursor::at(secs(100)))
            .await
            .unwrap()
    );
    assert!(store.record_delivery(t, "exec-1", secs(0)).await.unwrap());
    assert_eq!(store.enqueue(t, &actions(0..3), secs(0)).await.unwrap(), 3);
    let holder = store
        .register_worker(t, "worker", secs(0))
        .await
        .unwrap()
        .holder;
    let claimed = store.claim(t, &holder, 1, ttl, secs(1)).await.unwrap();
    store
        .fail(t, &claimed[0].action.key, &holder, "400", None, secs(2))
        .await
        .unwrap();
    assert!(
        store
            .dismiss_failed(t, &claimed[0].action.key, "ops", "known", secs(3))
            .await
            .unwrap()
    );
    let entry = AuditEntry::new(
        secs(1),
        "assign_badge",
        "person@example.com",
        AuditOutcome::Applied,
        action(0).key,
    );
    store.append_audit(t, &[entry]).await.unwrap();
    assert!(
        store
            .try_acquire_lease(t, "pull", "instance", ttl, secs(0))
            .await
            .unwrap()
    );
    let run = RunRecord::new(RunMode::Delta, secs(0), secs(1), RunOutcome::Ok);
    store.record_run(t, &run).await.unwrap();
    store
        .record_credentials_check(t, &CredentialsCheck::ok(secs(1), Some("62515".into())))
        .await
        .unwrap();
    store
        .record_delivery_outcome(t, WebhookOutcome::Accepted, None, secs(1))
        .await
        .unwrap();
}

/// A dry run counts every row of the tenant and changes nothing; the purge deletes them in
/// one go, then records itself as the tenant's only row (counts only, no personal data);
/// another tenant's rows are untouched.
pub async fn purge_tenant_deletes_only_its_tenant_and_audits_itself(store: Arc<dyn Store>) {
    let (a, b) = (tenant("leaving"), tenant("staying"));
    fill_tenant(&store, &a).await;
    fill_tenant(&store, &b).await;
    // `PurgeCounts` is non-exhaustive: built field by field.
    let mut expected = PurgeCounts::default();
    for n in [
        &mut expected.mappings,
        &mut expected.workers,
        &mut expected.deliveries,
        &mut expected.audit,
        &mut expected.checkpoints,
        &mut expected.leases,
        &mut expected.operator_actions,
        &mut expected.runs,
        &mut expected.credentials_checks,
        &mut expected.webhook_counts,
    ] {
        *n = 1;
    }
    expected.outbox = 3;
    let dry = |t: TenantId| {
        let store = store.clone();
        async move {
            store
                .purge_tenant(&t, PurgeMode::DryRun, "ops", secs(50))
                .await
                .unwrap()
        }
    };
    assert_eq!(dry(a.clone()).await, expected);
    assert_eq!(dry(a.clone()).await, expected, "a dry run changes nothing");
    assert_eq!(store.count_mappings(&a).await.unwrap(), 1);

    let purged = store
        .purge_tenant(&a, PurgeMode::Delete, "ops@partner", secs(60))
        .await
        .unwrap();
    assert_eq!(purged, expected);
    assert_eq!(purged.total(), 13);
    let left = dry(a.clone()).await;
    let mut only_the_record = PurgeCounts::default();
    only_the_record.operator_actions = 1;
    assert_eq!(left, only_the_record);
    let log = store.operator_actions(&a, 10).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(
        (log[0].at, log[0].actor.as_str(), log[0].action.as_str()),
        (secs(60), "ops@partner", PURGE_ACTION)
    );
    assert!(log[0].keys.is_empty());
    assert_eq!(log[0].note.as_deref(), Some(expected.note().as_str()));
    assert!(!expected.note().contains("example.com"));
    assert!(
        store
            .mapping_by_user(&a, &user("u1"))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.outbox_counts(&a).await.unwrap(), Default::default());
    assert!(store.recent_audit(&a, 10).await.unwrap().is_empty());
    assert!(!store.has_delivery(&a, "exec-1").await.unwrap());
    assert_eq!(
        store.checkpoint(&a, "hubspot", "contacts").await.unwrap(),
        None
    );
    assert!(
        store
            .try_acquire_lease(
                &a,
                "pull",
                "new-instance",
                Duration::from_secs(30),
                secs(61)
            )
            .await
            .unwrap(),
        "the purged lease is free"
    );

    assert_eq!(
        dry(b.clone()).await,
        expected,
        "the other tenant is untouched"
    );
    assert_eq!(
        store.mapping_by_user(&b, &user("u1")).await.unwrap(),
        Some(full_mapping("person@example.com", "1", "u1"))
    );
}
