//! Engine tests over `MemoryStore` and the in-memory fakes of `testkit`.
#![allow(clippy::field_reassign_with_default)]

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, TimeZone, Utc};

use super::*;
use crate::report::ReportExt;
use sync_core::MemoryStore;
use sync_core::RemoteErrorKind;
use sync_core::config::{BadgeRule, Condition, MissingUserPolicy, SyncConfig};
use sync_core::plan::PlanMode;
use sync_core::ports::{CheckpointStore, LeaseHolder, MappingStore, Outbox};
use sync_core::testkit::{MemoryCrm, RecordingBadgeSink, RecordingInviter};
use sync_core::{
    BadgeGrant, CativaUserId, CommunityUser, CrmContact, CrmKind, CrmRecordId, Email, Mapping,
    Provenance, TenantId,
};

struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    fn advance(&self, d: Duration) {
        let mut t = self.0.lock().unwrap();
        *t += d;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

fn t(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + secs, 0).single().unwrap()
}

struct World {
    tenant: TenantId,
    store: Arc<MemoryStore>,
    crm: Arc<MemoryCrm>,
    badges: Arc<RecordingBadgeSink>,
    inviter: Arc<RecordingInviter>,
    clock: Arc<ManualClock>,
    engine: SyncEngine,
}

fn email(i: usize) -> Email {
    Email::parse(&format!("user{i}@example.com")).unwrap()
}

fn user(i: usize) -> CativaUserId {
    format!("u{i}").into()
}

fn world(n: usize, policy: MissingUserPolicy) -> World {
    let mut raw = SyncConfig::default();
    raw.badge_rules = vec![BadgeRule::new(
        "annual",
        "Premium",
        Condition::Tag("Pago Anual".into()),
    )];
    raw.missing_user = policy;
    let config = raw.validate().unwrap();
    let store = Arc::new(MemoryStore::new());
    let crm = Arc::new(MemoryCrm::new(CrmKind::Hubspot, 7));
    let badges = Arc::new(RecordingBadgeSink::new());
    let inviter = Arc::new(RecordingInviter::new());
    let clock = Arc::new(ManualClock(Mutex::new(t(10_000))));
    for i in 0..n {
        let mut c = CrmContact::new(
            CrmRecordId::hubspot(format!("{i}")),
            Some(email(i)),
            t(i as i64),
        );
        if i % 2 == 0 {
            c = c.with_tag("Pago Anual");
        }
        crm.put(c);
    }
    let mut options = EngineOptions::default();
    options.claim_batch = 5;
    options.overlap = Duration::seconds(1);
    let engine = SyncEngine::builder(config, store.clone())
        .source(crm.clone())
        .crm_sink(crm.clone())
        .badge_sink(badges.clone())
        .inviter(inviter.clone())
        .clock(clock.clone())
        .options(options)
        .build();
    World {
        tenant: TenantId::new("acme"),
        store,
        crm,
        badges,
        inviter,
        clock,
        engine,
    }
}

async fn add_users(w: &World, range: std::ops::Range<usize>) {
    for i in range {
        w.store
            .put_mapping(&w.tenant, &Mapping::new(email(i), t(0)).with_user(user(i)))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn delta_grants_badges_then_a_second_run_writes_nothing() {
    let w = world(20, MissingUserPolicy::Skip);
    add_users(&w, 0..20).await;
    let report = w.engine.run_delta(&w.tenant).await.unwrap();
    assert_eq!(report.read, 20);
    assert_eq!(report.applied.get("assign_badge"), Some(&10));
    assert_eq!(report.applied.get("link_mapping"), Some(&20));
    assert_eq!(report.failed + report.retrying, 0);
    assert!(report.stopped.is_none());
    for i in 0..20 {
        assert_eq!(
            w.badges.badges_of(&user(i)).contains(&"Premium".into()),
            i % 2 == 0,
            "user {i}"
        );
    }
    let row = w
        .store
        .mapping_by_user(&w.tenant, &user(0))
        .await
        .unwrap()
        .unwrap();
    assert!(row.grant(&"Premium".into()).unwrap().provenance.is_sync());
    assert_eq!(row.crm_id, Some(CrmRecordId::hubspot("0")));
    let cp = report.checkpoint.clone().unwrap();
    assert_eq!(
        cp.modified_at,
        t(19) - Duration::seconds(1),
        "newest seen minus overlap"
    );
    assert!(
        report
            .api_calls
            .get("read:changed_since")
            .is_some_and(|&n| n == 3),
        "{:?}",
        report.api_calls
    );

    let effects = w.badges.effects();
    w.clock.advance(Duration::minutes(1));
    let again = w.engine.run_delta(&w.tenant).await.unwrap();
    assert_eq!(again.applied_total(), 0, "{again}");
    assert_eq!(w.badges.effects(), effects);
    assert_eq!(again.read, 2, "only the overlap is re-read");
}

#[tokio::test]
async fn tag_removal_removes_only_sync_granted_badges() {
    let w = world(4, MissingUserPolicy::Skip);
    add_users(&w, 0..4).await;
    w.engine.run_delta(&w.tenant).await.unwrap();
    // User 2 also got Premium from a paywall (recorded as external): simulate by rewriting
    // its grant's provenance.
    let mut row = w
        .store
        .mapping_by_user(&w.tenant, &user(2))
        .await
        .unwrap()
        .unwrap();
    row.put_grant(BadgeGrant::new(
        "Premium",
        Provenance::external("paywall"),
        t(50),
    ));
    w.store.put_mapping(&w.tenant, &row).await.unwrap();
    for i in [0, 2] {
        w.crm.update(&CrmRecordId::hubspot(format!("{i}")), |c| {
            c.tags.remove("Pago Anual");
            c.updated_at = t(20_000);
        });
    }
    w.clock.advance(Duration::hours(3));
    let report = w.engine.run_delta(&w.tenant).await.unwrap();
    assert_eq!(report.applied.get("remove_badge"), Some(&1), "{report}");
    assert!(!w.badges.badges_of(&user(0)).contains(&"Premium".into()));
    assert!(
        w.badges.badges_of(&user(2)).contains(&"Premium".into()),
        "external grant kept"
    );
}

#[tokio::test]
async fn full_reconcile_removes_by_absence_only_after_a_complete_scan() {
    let w = world(6, MissingUserPolicy::Skip);
    add_users(&w, 0..6).await;
    w.engine.run_full_reconcile(&w.tenant).await.unwrap();
    assert!(w.badges.badges_of(&user(4)).contains(&"Premium".into()));
    // Contact 4 disappears from the CRM (hard-deleted, no archived record).
    w.crm
        .update(&CrmRecordId::hubspot("4"), |c| c.archived = true);

    w.crm.fail_next_reads(1);
    let partial = w.engine.run_full_reconcile(&w.tenant).await.unwrap();
    assert_eq!(partial.scan_complete, Some(false));
    assert!(partial.stopped.is_some());
    assert!(
        w.badges.badges_of(&user(4)).contains(&"Premium".into()),
        "a failed scan removes nothing"
    );

    let complete = w.engine.run_full_reconcile(&w.tenant).await.unwrap();
    assert_eq!(complete.scan_complete, Some(true));
    assert_eq!(complete.applied.get("remove_badge"), Some(&1), "{complete}");
    assert!(!w.badges.badges_of(&user(4)).contains(&"Premium".into()));
}

#[tokio::test]
async fn retryable_failures_are_retried_later_and_permanent_ones_reported() {
    let w = world(6, MissingUserPolicy::Skip);
    add_users(&w, 0..6).await;
    w.badges.fail_user(user(0), RemoteErrorKind::Server, 1);
    w.badges.fail_user(user(2), RemoteErrorKind::Invalid, 1);
    let report = w.engine.run_delta(&w.tenant).await.unwrap();
    assert_eq!(report.applied.get("assign_badge"), Some(&1), "{report}");
    assert_eq!(report.retrying, 1);
    assert_eq!(report.failed, 1);
    assert!(
        report
            .failures
            .iter()
            .any(|f| f.target == "user2@example.com" && !f.retryable)
    );
    assert!(
        report.stopped.is_none(),
        "per-record failures never stop the run"
    );

    // Not due yet.
    let early = w.engine.drain_outbox(&w.tenant).await.unwrap();
    assert_eq!(early.applied_total(), 0);
    w.clock.advance(Duration::minutes(5));
    let later = w.engine.drain_outbox(&w.tenant).await.unwrap();
    assert_eq!(later.applied.get("assign_badge"), Some(&1));
    assert!(w.badges.badges_of(&user(0)).contains(&"Premium".into()));
    assert!(!w.badges.badges_of(&user(2)).contains(&"Premium".into()));
    let counts = w.store.outbox_counts(&w.tenant).await.unwrap();
    assert_eq!((counts.pending, counts.in_flight, counts.failed), (0, 0, 1));
}

#[tokio::test]
async fn an_exhausted_quota_stops_the_run_and_keeps_the_work() {
    let w = world(6, MissingUserPolicy::Skip);
    add_users(&w, 0..6).await;
    w.badges.fail_calls(RemoteErrorKind::QuotaExhausted, 1);
    let report = w.engine.run_delta(&w.tenant).await.unwrap();
    assert!(
        report
            .stopped
            .as_deref()
            .is_some_and(|s| s.contains("QuotaExhausted")),
        "{report}"
    );
    assert_eq!(report.applied.get("assign_badge"), None);
    let counts = w.store.outbox_counts(&w.tenant).await.unwrap();
    assert!(counts.pending > 0, "nothing lost: {counts:?}");
    w.clock.advance(Duration::hours(2));
    let resumed = w.engine.drain_outbox(&w.tenant).await.unwrap();
    assert!(resumed.stopped.is_none());
    // The first page was durable before the stop: its badges are applied now.
    assert!(
        resumed.applied.get("assign_badge").is_some_and(|&n| n >= 1),
        "{resumed}"
    );
}

#[tokio::test]
async fn dry_run_writes_nothing() {
    let w = world(10, MissingUserPolicy::Invite);
    add_users(&w, 0..5).await;
    let plan = w.engine.plan(&w.tenant, PlanMode::Delta).await.unwrap();
    assert_eq!(plan.count_of(sync_core::plan::ActionType::AssignBadge), 3);
    assert_eq!(
        plan.count_of(sync_core::plan::ActionType::Invite),
        2,
        "contacts 6 and 8 qualify but have no user"
    );
    assert_eq!(
        w.store.outbox_counts(&w.tenant).await.unwrap(),
        Default::default()
    );
    assert_eq!(w.badges.calls(), 0);
    assert!(
        w.store
            .checkpoint(&w.tenant, "hubspot", "contacts")
            .await
            .unwrap()
            .is_none()
    );
    assert!(w.inviter.invites().is_empty());
}

#[tokio::test]
async fn invites_then_user_created_grants_the_badge() {
    let w = world(4, MissingUserPolicy::Invite);
    let report = w.engine.run_delta(&w.tenant).await.unwrap();
    assert_eq!(report.applied.get("invite"), Some(&2));
    assert_eq!(w.inviter.invites().len(), 2);
    // The invited person signs up: user_created arrives.
    let joined = CommunityUser::new(user(2), email(2));
    let out = w
        .engine
        .handle_community_event(
            &w.tenant,
            "exec-1",
            CommunityEvent::UserCreated {
                user: joined.clone(),
            },
        )
        .await
        .unwrap();
    let DeliveryOutcome::Accepted { report } = out else {
        panic!("expected accepted")
    };
    assert_eq!(report.applied.get("assign_badge"), Some(&1), "{report}");
    assert!(w.badges.badges_of(&user(2)).contains(&"Premium".into()));
    // Both sides hold both ids: the existing contact got the user id.
    let contact = w.crm.get(&CrmRecordId::hubspot("2")).unwrap();
    assert_eq!(
        contact.properties.get("cativa_user_id").map(String::as_str),
        Some("u2")
    );
    // The same delivery again is a duplicate.
    let again = w
        .engine
        .handle_community_event(
            &w.tenant,
            "exec-1",
            CommunityEvent::UserCreated { user: joined },
        )
        .await
        .unwrap();
    assert_eq!(again, DeliveryOutcome::Duplicate);
}

#[tokio::test]
async fn a_failed_delivery_is_not_recorded_so_its_retry_is_processed() {
    let w = world(4, MissingUserPolicy::Skip);
    let joined = CommunityUser::new(user(2), email(2));
    w.crm.fail_next_reads(1);
    let first = w
        .engine
        .handle_community_event(
            &w.tenant,
            "exec-x",
            CommunityEvent::UserCreated {
                user: joined.clone(),
            },
        )
        .await;
    assert!(first.is_err(), "the CRM lookup failed");
    let retry = w
        .engine
        .handle_community_event(
            &w.tenant,
            "exec-x",
            CommunityEvent::UserCreated {
                user: joined.clone(),
            },
        )
        .await
        .unwrap();
    assert!(
        matches!(retry, DeliveryOutcome::Accepted { .. }),
        "{retry:?}"
    );
    assert!(w.badges.badges_of(&user(2)).contains(&"Premium".into()));
    let third = w
        .engine
        .handle_community_event(
            &w.tenant,
            "exec-x",
            CommunityEvent::UserCreated { user: joined },
        )
        .await
        .unwrap();
    assert_eq!(third, DeliveryOutcome::Duplicate);
}

#[tokio::test]
async fn user_created_without_a_contact_provisions_one_without_duplicates() {
    let w = world(0, MissingUserPolicy::Skip);
    let mut newcomer = CommunityUser::new(user(7), email(7));
    newcomer.profile = sync_core::CommunityProfile::new().with_field("firstName", "Ana");
    w.engine
        .handle_community_event(
            &w.tenant,
            "exec-7",
            CommunityEvent::UserCreated {
                user: newcomer.clone(),
            },
        )
        .await
        .unwrap();
    let contacts = w.crm.all();
    assert_eq!(contacts.len(), 1);
    assert_eq!(
        contacts[0].properties.get("firstname").map(String::as_str),
        Some("Ana")
    );
    let row = w
        .store
        .mapping_by_user(&w.tenant, &user(7))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.crm_id.as_ref(), Some(&contacts[0].id));
    // A redelivery under another id finds the linked contact: still one contact.
    w.engine
        .handle_community_event(
            &w.tenant,
            "exec-8",
            CommunityEvent::UserCreated { user: newcomer },
        )
        .await
        .unwrap();
    assert_eq!(w.crm.all().len(), 1);
}

#[tokio::test]
async fn badge_events_record_external_provenance_and_log_activities() {
    let w = world(1, MissingUserPolicy::Skip);
    add_users(&w, 0..1).await;
    w.engine.run_delta(&w.tenant).await.unwrap();
    let at = t(30_000);
    let ev = CommunityEvent::BadgeReceived {
        user: user(0),
        email: None,
        badge: "Course Graduate".into(),
        at,
    };
    w.engine
        .handle_community_event(&w.tenant, "exec-b", ev)
        .await
        .unwrap();
    let row = w
        .store
        .mapping_by_user(&w.tenant, &user(0))
        .await
        .unwrap()
        .unwrap();
    assert!(
        !row.grant(&"Course Graduate".into())
            .unwrap()
            .provenance
            .is_sync()
    );
    assert!(
        row.grant(&"Premium".into()).unwrap().provenance.is_sync(),
        "the echo of our own grant keeps Sync"
    );
    assert_eq!(w.crm.activities().len(), 1);
    assert_eq!(
        w.crm.activities()[0].subject,
        "Received badge Course Graduate"
    );
}

#[tokio::test]
async fn a_crashed_worker_loses_nothing() {
    let w = world(10, MissingUserPolicy::Skip);
    add_users(&w, 0..10).await;
    // Plan and enqueue without applying (as if the process died right after the outbox write).
    let mut options = w.engine.options().clone();
    options.apply = false;
    let enqueue_only = SyncEngine {
        options,
        ..w.engine.clone()
    };
    enqueue_only.run_delta(&w.tenant).await.unwrap();
    assert_eq!(w.badges.effects(), 0);
    // Another worker claims a batch and dies holding the lease.
    let claimed = w
        .store
        .claim(
            &w.tenant,
            &sync_core::ports::LeaseHolder::unregistered("dead-worker"),
            3,
            std::time::Duration::from_secs(60),
            w.clock.now(),
        )
        .await
        .unwrap();
    assert_eq!(claimed.len(), 3);
    let report = w.engine.drain_outbox(&w.tenant).await.unwrap();
    assert!(report.applied_total() >= 1);
    w.clock.advance(Duration::minutes(2));
    w.engine.drain_outbox(&w.tenant).await.unwrap();
    for i in (0..10).step_by(2) {
        assert!(
            w.badges.badges_of(&user(i)).contains(&"Premium".into()),
            "user {i}"
        );
    }
    let counts = w.store.outbox_counts(&w.tenant).await.unwrap();
    assert_eq!((counts.pending, counts.in_flight), (0, 0));
}

#[tokio::test]
async fn full_reconcile_applies_the_duplicate_policy_across_pages() {
    let w = world(20, MissingUserPolicy::Skip);
    add_users(&w, 0..20).await;
    // A newer contact, on a later page, shares user 0's email and has no tag: it is canonical
    // (most recently updated), so user 0 must not get Premium from the older tagged contact.
    w.crm.put(CrmContact::new(
        CrmRecordId::hubspot("dup"),
        Some(email(0)),
        t(5_000),
    ));
    let report = w.engine.run_full_reconcile(&w.tenant).await.unwrap();
    assert!(
        !w.badges.badges_of(&user(0)).contains(&"Premium".into()),
        "{report}"
    );
    assert!(w.badges.badges_of(&user(2)).contains(&"Premium".into()));
    let row = w
        .store
        .mapping_by_user(&w.tenant, &user(0))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.crm_id, Some(CrmRecordId::hubspot("dup")));
    assert!(report.conflicts >= 1);
    // And it is stable: a second reconcile changes nothing.
    let again = w.engine.run_full_reconcile(&w.tenant).await.unwrap();
    assert_eq!(again.applied_total(), 0, "{again}");
}

#[tokio::test]
async fn missing_pieces_are_reported_as_not_configured() {
    let w = world(2, MissingUserPolicy::Invite);
    let bare = SyncEngine::builder(w.engine.config().clone(), w.store.clone())
        .clock(w.clock.clone())
        .build();
    assert!(matches!(
        bare.run_delta(&w.tenant).await,
        Err(crate::Error::NotConfigured(_))
    ));
    // Invites planned without an inviter fail for good, with the reason in the report.
    let no_inviter = SyncEngine::builder(w.engine.config().clone(), w.store.clone())
        .source(w.crm.clone())
        .clock(w.clock.clone())
        .build();
    let report = no_inviter.run_delta(&w.tenant).await.unwrap();
    assert_eq!(report.failed, 1, "{report}");
    assert!(
        report.failures[0]
            .error
            .contains("not configured: no inviter"),
        "{report}"
    );
}

#[test]
fn retry_delay_doubles_and_caps() {
    let o = EngineOptions::default();
    assert_eq!(o.retry_delay(1), std::time::Duration::from_secs(30));
    assert_eq!(o.retry_delay(2), std::time::Duration::from_secs(60));
    assert_eq!(o.retry_delay(30), o.retry_max);
}

#[test]
fn report_renders_and_serializes() {
    let mut r = RunReport::new("delta", &TenantId::new("acme"), t(0));
    r.read = 3;
    r.applied.insert("assign_badge".into(), 2);
    r.finish(t(2));
    let text = r.to_string();
    assert!(
        text.contains("delta run for tenant acme in 2000 ms")
            && text.contains("applied   2 (assign_badge 2)"),
        "{text}"
    );
    let back: RunReport = serde_json::from_str(&r.to_json_line()).unwrap();
    assert_eq!(back, r);
}

/// A fresh process over the same store: same sinks, the given instance id, nothing
/// registered yet.
fn restarted(w: &World, worker_id: &str) -> SyncEngine {
    let mut options = w.engine.options().clone();
    options.worker_id = worker_id.to_owned();
    SyncEngine {
        options,
        holders: Arc::new(Mutex::new(std::collections::HashMap::new())),
        ..w.engine.clone()
    }
}

async fn enqueue_only(w: &World) {
    let mut options = w.engine.options().clone();
    options.apply = false;
    let engine = SyncEngine {
        options,
        ..restarted(w, "planner")
    };
    engine.run_delta(&w.tenant).await.unwrap();
}

#[tokio::test]
async fn a_restart_with_the_same_instance_id_applies_its_dead_claims_at_once() {
    let w = world(10, MissingUserPolicy::Skip);
    add_users(&w, 0..10).await;
    enqueue_only(&w).await;
    // The first incarnation of "pod" claims everything and is killed mid-apply.
    let dead = restarted(&w, "pod");
    let holder = dead.holder(&w.tenant).await.unwrap();
    let claimed = w
        .store
        .claim(
            &w.tenant,
            &holder,
            100,
            std::time::Duration::from_secs(300),
            w.clock.now(),
        )
        .await
        .unwrap();
    assert!(!claimed.is_empty());
    // Restarted at once (the clock does not move): no lease to wait out.
    let report = restarted(&w, "pod").drain_outbox(&w.tenant).await.unwrap();
    assert_eq!(report.applied.get("assign_badge"), Some(&5), "{report}");
    let backlog = report.backlog.unwrap();
    assert_eq!(backlog.outstanding(), 0, "{backlog:?}");
    for i in (0..10).step_by(2) {
        assert!(w.badges.badges_of(&user(i)).contains(&"Premium".into()));
    }
    // The killed incarnation, were it still alive, can take nothing more.
    let late = w
        .store
        .claim(
            &w.tenant,
            &holder,
            100,
            std::time::Duration::from_secs(300),
            w.clock.now(),
        )
        .await;
    assert!(
        matches!(late, Err(sync_core::Error::Superseded { .. })),
        "{late:?}"
    );
}

#[tokio::test]
async fn a_run_reports_work_held_by_another_live_worker_instead_of_nothing_to_do() {
    let w = world(10, MissingUserPolicy::Skip);
    add_users(&w, 0..10).await;
    enqueue_only(&w).await;
    let other = restarted(&w, "other-pod");
    let holder = other.holder(&w.tenant).await.unwrap();
    let claimed = w
        .store
        .claim(
            &w.tenant,
            &holder,
            4,
            std::time::Duration::from_secs(20),
            w.clock.now(),
        )
        .await
        .unwrap();
    assert_eq!(claimed.len(), 4);
    // This run plans the same actions again: already queued, so nothing new is enqueued.
    let report = w.engine.run_delta(&w.tenant).await.unwrap();
    assert_eq!(report.enqueued, 0);
    let backlog = report.backlog.unwrap();
    assert_eq!(backlog.held_live, 4, "{report}");
    assert_eq!(
        backlog.held_until,
        Some(w.clock.now() + Duration::seconds(20))
    );
    assert!(
        report.to_string().contains("4 held by a live worker"),
        "{report}"
    );
    let json: serde_json::Value = serde_json::from_str(&report.to_json_line()).unwrap();
    assert_eq!(json["backlog"]["held_live"], 4);
    // Once that lease has run out the same work shows as held by an expired owner, and
    // the next drain applies it.
    w.clock.advance(Duration::seconds(21));
    let later = w.engine.drain_outbox(&w.tenant).await.unwrap();
    assert_eq!(later.backlog.unwrap().outstanding(), 0);
    for i in (0..10).step_by(2) {
        assert!(w.badges.badges_of(&user(i)).contains(&"Premium".into()));
    }
}

#[tokio::test]
async fn a_stop_request_takes_no_work_and_the_next_run_applies_everything() {
    let w = world(10, MissingUserPolicy::Skip);
    add_users(&w, 0..10).await;
    enqueue_only(&w).await;
    let stop = StopSignal::new();
    let stopping = SyncEngine {
        stop: stop.clone(),
        ..restarted(&w, "pod")
    };
    stop.stop();
    let report = stopping.run_delta(&w.tenant).await.unwrap();
    assert!(report.interrupted, "{report}");
    assert_eq!(report.stopped.as_deref(), Some(STOP_REQUESTED));
    assert_eq!(report.read, 0, "no page read after the stop");
    assert_eq!(w.badges.effects(), 0);
    let counts = w.store.outbox_counts(&w.tenant).await.unwrap();
    assert_eq!(counts.in_flight, 0, "nothing left claimed");
    let next = restarted(&w, "other")
        .drain_outbox(&w.tenant)
        .await
        .unwrap();
    assert_eq!(next.applied.get("assign_badge"), Some(&5));
}

/// A badge sink whose calls take a while, and that raises a stop signal on its first call.
struct SlowSink {
    inner: Arc<RecordingBadgeSink>,
    delay: std::time::Duration,
    stop_on_call: Option<StopSignal>,
    batch: usize,
}

#[async_trait::async_trait]
impl sync_core::ports::BadgeSink for SlowSink {
    fn max_batch(&self) -> usize {
        self.batch
    }
    async fn apply_badges(
        &self,
        tenant: &TenantId,
        changes: &[sync_core::ports::BadgeChange],
    ) -> Result<Vec<sync_core::ports::ItemResult<()>>, sync_core::Error> {
        if let Some(stop) = &self.stop_on_call {
            stop.stop();
        }
        futures_timer::Delay::new(self.delay).await;
        self.inner.apply_badges(tenant, changes).await
    }
}

#[tokio::test]
async fn a_stop_mid_batch_finishes_it_and_releases_the_unstarted_claims() {
    let w = world(10, MissingUserPolicy::Skip);
    add_users(&w, 0..10).await;
    enqueue_only(&w).await;
    let stop = StopSignal::new();
    let mut options = w.engine.options().clone();
    options.parallelism = 1;
    options.worker_id = "pod".to_owned();
    let engine = SyncEngine::builder(w.engine.config().clone(), w.store.clone())
        .source(w.crm.clone())
        .badge_sink(Arc::new(SlowSink {
            inner: w.badges.clone(),
            delay: std::time::Duration::from_millis(1),
            stop_on_call: Some(stop.clone()),
            batch: 2,
        }))
        .clock(w.clock.clone())
        .options(options)
        .stop_signal(stop)
        .build();
    let report = engine.drain_outbox(&w.tenant).await.unwrap();
    assert!(report.interrupted, "{report}");
    // The first round (links, then the badge batch in flight) finished; nothing after it
    // was claimed, and nothing stays claimed.
    assert!(
        report.applied.get("assign_badge").is_some_and(|n| *n >= 1),
        "{report}"
    );
    let counts = w.store.outbox_counts(&w.tenant).await.unwrap();
    assert_eq!(counts.in_flight, 0, "{counts:?}");
    let rest = restarted(&w, "next").drain_outbox(&w.tenant).await.unwrap();
    assert_eq!(
        report.applied.get("assign_badge").copied().unwrap_or(0)
            + rest.applied.get("assign_badge").copied().unwrap_or(0),
        5,
        "every grant exactly once"
    );
    assert_eq!(w.badges.effects(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_slower_than_its_lease_keeps_its_claims_through_the_heartbeat() {
    let w = world(4, MissingUserPolicy::Skip);
    add_users(&w, 0..4).await;
    enqueue_only(&w).await;
    // Real time here: the heartbeat runs on a timer.
    let mut options = w.engine.options().clone();
    options.worker_id = "slow".to_owned();
    options.lease = std::time::Duration::from_millis(150);
    options.parallelism = 1;
    options.claim_batch = 100;
    let slow = SyncEngine::builder(w.engine.config().clone(), w.store.clone())
        .source(w.crm.clone())
        .badge_sink(Arc::new(SlowSink {
            inner: w.badges.clone(),
            delay: std::time::Duration::from_millis(600),
            stop_on_call: None,
            batch: 100,
        }))
        .options(options)
        .build();
    let rival = LeaseHolder::new("rival", 1);
    let store = w.store.clone();
    let tenant = w.tenant.clone();
    let run = tokio::spawn(async move { slow.drain_outbox(&tenant).await });
    // The slow worker claims the whole outbox in its first round.
    while store.outbox_counts(&w.tenant).await.unwrap().in_flight == 0 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let mut stolen = 0;
    while !run.is_finished() {
        stolen += store
            .claim(
                &w.tenant,
                &rival,
                100,
                std::time::Duration::from_secs(60),
                Utc::now(),
            )
            .await
            .unwrap()
            .len();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let report = run.await.unwrap().unwrap();
    assert_eq!(stolen, 0, "a live worker's claims were taken over");
    assert_eq!(report.applied.get("assign_badge"), Some(&2), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_runs_of_one_engine_share_one_incarnation() {
    let w = world(10, MissingUserPolicy::Skip);
    add_users(&w, 0..10).await;
    enqueue_only(&w).await;
    let engine = restarted(&w, "receiver");
    let runs: Vec<_> = (0..8)
        .map(|_| {
            let (engine, tenant) = (engine.clone(), w.tenant.clone());
            tokio::spawn(async move { engine.drain_outbox(&tenant).await })
        })
        .collect();
    for run in runs {
        let report = run.await.unwrap();
        assert!(
            report.is_ok(),
            "a run was fenced by its own engine: {report:?}"
        );
    }
    let holder = engine.holder(&w.tenant).await.unwrap();
    assert_eq!(holder.incarnation, 1, "registered once");
}

#[path = "status_tests.rs"]
mod status_tests;

#[tokio::test]
async fn progress_moves_through_a_run_and_ends_with_its_totals() {
    let w = world(40, MissingUserPolicy::Skip);
    add_users(&w, 0..40).await;
    let seen: Arc<Mutex<Vec<Progress>>> = Arc::default();
    let sink = seen.clone();
    let engine = SyncEngineBuilder {
        engine: w.engine.clone(),
    }
    .with_progress(move |p: &Progress| sink.lock().unwrap().push(p.clone()))
    .build();
    let report = engine.run_full_reconcile(&w.tenant).await.unwrap();
    let seen = seen.lock().unwrap().clone();
    assert!(seen.len() > 2, "several updates: {seen:?}");
    // Counts only grow, the run's kind throughout, and one final update with the totals.
    for pair in seen.windows(2) {
        assert!(
            pair[1].read >= pair[0].read && pair[1].applied >= pair[0].applied,
            "{pair:?}"
        );
    }
    assert!(seen.iter().all(|p| p.kind == "full_reconcile"), "{seen:?}");
    let total = report.applied_total();
    assert!(
        seen.iter()
            .any(|p| !p.done && p.applied > 0 && p.applied < total),
        "applied batch by batch: {seen:?}"
    );
    let last = seen.last().unwrap();
    assert!(last.done);
    assert_eq!(seen.iter().filter(|p| p.done).count(), 1);
    assert_eq!(
        (last.read, last.planned, last.applied, last.failed),
        (40, report.planned_total(), total, 0)
    );
    assert_eq!(report.applied.get("assign_badge"), Some(&20));
}
