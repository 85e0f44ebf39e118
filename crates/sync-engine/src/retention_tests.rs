//! `SyncEngine::purge_expired` over `MemoryStore` and a manual clock.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use sync_core::config::SyncConfig;
use sync_core::ports::{
    AuditEntry, AuditLog, DeliveryLedger, LeaseHolder, Outbox, OutboxStatus, StatusStore,
    WebhookOutcome,
};
use sync_core::{
    Action, ActionKind, CrmRecordId, Email, IdempotencyKey, MemoryStore, Reason, TenantId,
};

use super::{PurgeReport, RetentionPolicy};
use crate::{Clock, StopSignal, SyncEngine};

struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    fn advance_days(&self, days: i64) {
        *self.0.lock().unwrap() += chrono::Duration::days(days);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).unwrap()
}

fn days_ago(days: i64) -> DateTime<Utc> {
    start() - chrono::Duration::days(days)
}

struct World {
    tenant: TenantId,
    store: Arc<MemoryStore>,
    clock: Arc<ManualClock>,
    stop: StopSignal,
    engine: SyncEngine,
}

fn world() -> World {
    let store = Arc::new(MemoryStore::new());
    let clock = Arc::new(ManualClock(Mutex::new(start())));
    let stop = StopSignal::new();
    let engine = SyncEngine::builder(SyncConfig::default().validate().unwrap(), store.clone())
        .clock(clock.clone())
        .stop_signal(stop.clone())
        .build();
    World {
        tenant: TenantId::new("acme"),
        store,
        clock,
        stop,
        engine,
    }
}

fn action(n: usize) -> Action {
    let mut properties = std::collections::BTreeMap::new();
    properties.insert("level".to_owned(), n.to_string());
    Action::new(
        IdempotencyKey::derive(&["retention", &n.to_string()]),
        ActionKind::UpdateCrmProperties {
            crm_id: CrmRecordId::hubspot(n.to_string()),
            email: Email::parse(&format!("user{n}@example.com")).unwrap(),
            properties,
        },
        Reason::ContactArchived,
    )
}

/// Enqueues `outcomes.len()` items, claims them all, then settles item `i` as `outcomes[i]`
/// says: `Some(days)` completed that many days ago, `None` failed for good.
async fn settle(w: &World, outcomes: &[Option<i64>]) {
    let actions: Vec<Action> = (0..outcomes.len()).map(action).collect();
    let holder = LeaseHolder::unregistered("w");
    let lease = Duration::from_secs(60 * 60 * 24 * 365);
    w.store
        .enqueue(&w.tenant, &actions, days_ago(400))
        .await
        .unwrap();
    let claimed = w
        .store
        .claim(&w.tenant, &holder, actions.len(), lease, days_ago(400))
        .await
        .unwrap();
    assert_eq!(claimed.len(), actions.len());
    for (a, outcome) in actions.iter().zip(outcomes) {
        match outcome {
            Some(days) => w
                .store
                .complete(&w.tenant, &a.key, &holder, days_ago(*days))
                .await
                .unwrap(),
            None => w
                .store
                .fail(&w.tenant, &a.key, &holder, "gone", None, days_ago(300))
                .await
                .unwrap(),
        }
    }
}

async fn audit_at(w: &World, days: &[i64]) {
    let entries: Vec<AuditEntry> = days
        .iter()
        .enumerate()
        .map(|(i, d)| {
            AuditEntry::new(
                days_ago(*d),
                "update_crm_properties",
                format!("hubspot:{i}"),
                sync_core::ports::AuditOutcome::Applied,
                action(i).key,
            )
        })
        .collect();
    w.store.append_audit(&w.tenant, &entries).await.unwrap();
}

fn counts(r: &PurgeReport) -> (u64, u64, u64) {
    (r.deliveries, r.outbox, r.audit)
}

#[test]
fn the_default_policy_keeps_webhook_counters_7_days_and_operator_actions_90() {
    let p = RetentionPolicy::default();
    let day = Duration::from_secs(86_400);
    assert_eq!((p.webhook_counts, p.operator_actions), (7 * day, 90 * day));
    let p = p.with_webhook_counts(day).with_operator_actions(2 * day);
    assert_eq!((p.webhook_counts, p.operator_actions), (day, 2 * day));
}

#[test]
fn the_default_policy_keeps_30_7_and_90_days_in_batches_of_1000() {
    let p = RetentionPolicy::default();
    let day = Duration::from_secs(86_400);
    assert_eq!(
        (p.deliveries, p.done_outbox, p.audit, p.batch),
        (30 * day, 7 * day, 90 * day, 1000)
    );
    let p = p
        .with_deliveries(day)
        .with_done_outbox(2 * day)
        .with_audit(3 * day)
        .with_batch(5);
    assert_eq!(
        (p.deliveries, p.done_outbox, p.audit, p.batch),
        (day, 2 * day, 3 * day, 5)
    );
}

#[tokio::test]
async fn purges_what_each_window_expired_by_the_engine_clock() {
    let w = world();
    for (id, days) in [("d-40", 40), ("d-10", 10)] {
        w.store
            .record_delivery(&w.tenant, id, days_ago(days))
            .await
            .unwrap();
    }
    // Done 8 and 1 days ago, and one failed item (never purged).
    settle(&w, &[Some(8), Some(1), None]).await;
    audit_at(&w, &[100, 50]).await;

    let report = w
        .engine
        .purge_expired(&w.tenant, RetentionPolicy::default())
        .await
        .unwrap();
    assert_eq!(counts(&report), (1, 1, 1));
    assert!(!report.interrupted);
    assert!(!w.store.has_delivery(&w.tenant, "d-40").await.unwrap());
    assert!(w.store.has_delivery(&w.tenant, "d-10").await.unwrap());

    // 30 days later: the 10-day delivery and the 1-day item are out of their windows, the
    // 50-day audit row (now 80 days old) is not.
    w.clock.advance_days(30);
    let report = w
        .engine
        .purge_expired(&w.tenant, RetentionPolicy::default())
        .await
        .unwrap();
    assert_eq!(counts(&report), (1, 1, 0));
    let c = w.store.outbox_counts(&w.tenant).await.unwrap();
    assert_eq!((c.done, c.failed), (0, 1), "failed items are kept");
    assert_eq!(w.store.recent_audit(&w.tenant, 10).await.unwrap().len(), 1);
    assert_eq!(
        w.store
            .list_outbox(&w.tenant, OutboxStatus::Failed, 10)
            .await
            .unwrap()[0]
            .action
            .key,
        action(2).key
    );
}

#[tokio::test]
async fn loops_over_full_batches_until_a_short_one() {
    let w = world();
    for i in 0..25 {
        w.store
            .record_delivery(&w.tenant, &format!("d-{i}"), days_ago(31))
            .await
            .unwrap();
    }
    // Exactly two full batches: the third (empty) batch ends the loop.
    settle(&w, &[Some(8); 20]).await;
    audit_at(&w, &[91; 3]).await;
    let policy = RetentionPolicy::default().with_batch(10);
    let report = w.engine.purge_expired(&w.tenant, policy).await.unwrap();
    assert_eq!(counts(&report), (25, 20, 3));
    assert_eq!(report.total(), 48);
    let report = w.engine.purge_expired(&w.tenant, policy).await.unwrap();
    assert_eq!(report, PurgeReport::default(), "nothing is left");
}

#[tokio::test]
async fn a_zero_batch_counts_as_one() {
    let w = world();
    for i in 0..3 {
        w.store
            .record_delivery(&w.tenant, &format!("d-{i}"), days_ago(31))
            .await
            .unwrap();
    }
    let policy = RetentionPolicy::default().with_batch(0);
    let report = w.engine.purge_expired(&w.tenant, policy).await.unwrap();
    assert_eq!(counts(&report), (3, 0, 0));
}

#[tokio::test]
async fn a_stop_request_purges_nothing_more() {
    let w = world();
    w.store
        .record_delivery(&w.tenant, "d-old", days_ago(31))
        .await
        .unwrap();
    audit_at(&w, &[91]).await;
    w.stop.stop();
    let report = w
        .engine
        .purge_expired(&w.tenant, RetentionPolicy::default())
        .await
        .unwrap();
    assert!(report.interrupted);
    assert_eq!(report.total(), 0);
    assert!(w.store.has_delivery(&w.tenant, "d-old").await.unwrap());
    assert_eq!(w.store.recent_audit(&w.tenant, 10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_window_longer_than_the_epoch_purges_nothing() {
    let w = world();
    w.store
        .record_delivery(&w.tenant, "d-old", days_ago(31))
        .await
        .unwrap();
    let forever = Duration::from_secs(u64::MAX / 2);
    let policy = RetentionPolicy::default()
        .with_deliveries(forever)
        .with_audit(Duration::from_secs(200 * 365 * 86_400));
    let report = w.engine.purge_expired(&w.tenant, policy).await.unwrap();
    assert_eq!(counts(&report), (0, 0, 0));
    assert!(w.store.has_delivery(&w.tenant, "d-old").await.unwrap());
}

/// Counts deliveries at these many days ago (one accepted delivery each).
async fn deliveries_counted_at(w: &World, days: &[i64]) {
    for d in days {
        w.store
            .record_delivery_outcome(&w.tenant, WebhookOutcome::Accepted, None, days_ago(*d))
            .await
            .unwrap();
    }
}

/// Dismisses failed items at these many days ago (one operator action each).
async fn operator_actions_at(w: &World, days: &[i64]) {
    settle(w, &vec![None; days.len()]).await;
    for (i, d) in days.iter().enumerate() {
        assert!(
            w.store
                .dismiss_failed(&w.tenant, &action(i).key, "ops", "known", days_ago(*d))
                .await
                .unwrap()
        );
    }
}

#[tokio::test]
async fn purges_webhook_counters_and_operator_actions_out_of_their_windows() {
    let w = world();
    deliveries_counted_at(&w, &[10, 8, 6, 1]).await;
    operator_actions_at(&w, &[120, 91, 30]).await;
    let report = w
        .engine
        .purge_expired(&w.tenant, RetentionPolicy::default())
        .await
        .unwrap();
    assert_eq!((report.webhook_counts, report.operator_actions), (2, 2));
    assert_eq!(report.total(), 4);
    let counted = w
        .store
        .webhook_counts(&w.tenant, days_ago(30))
        .await
        .unwrap();
    assert_eq!(
        counted.accepted, 2,
        "the counters of 6 and 1 days ago are kept"
    );
    let kept = w.store.operator_actions(&w.tenant, 10).await.unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].at, days_ago(30));
    let c = w.store.outbox_counts(&w.tenant).await.unwrap();
    assert_eq!(c.dismissed, 3, "the items an action named are not touched");

    // Shorter windows purge more, in batches, and a second call finds nothing left. The
    // counter of exactly a day ago stays: its hour had not ended a day ago.
    let day = Duration::from_secs(86_400);
    let policy = RetentionPolicy::default()
        .with_webhook_counts(day)
        .with_operator_actions(day)
        .with_batch(1);
    let report = w.engine.purge_expired(&w.tenant, policy).await.unwrap();
    assert_eq!((report.webhook_counts, report.operator_actions), (1, 1));
    let report = w.engine.purge_expired(&w.tenant, policy).await.unwrap();
    assert_eq!(report, PurgeReport::default());
}

#[tokio::test]
async fn a_stop_request_keeps_webhook_counters_and_operator_actions() {
    let w = world();
    deliveries_counted_at(&w, &[10]).await;
    operator_actions_at(&w, &[120]).await;
    w.stop.stop();
    let report = w
        .engine
        .purge_expired(&w.tenant, RetentionPolicy::default())
        .await
        .unwrap();
    assert!(report.interrupted);
    assert_eq!(report.total(), 0);
    assert_eq!(
        w.store.operator_actions(&w.tenant, 10).await.unwrap().len(),
        1
    );
    let counted = w
        .store
        .webhook_counts(&w.tenant, days_ago(30))
        .await
        .unwrap();
    assert_eq!(counted.accepted, 1);
}
