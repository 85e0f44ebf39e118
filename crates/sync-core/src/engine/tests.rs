//! Engine tests over `MemoryStore` and the in-memory fakes of `testkit`.
#![allow(clippy::field_reassign_with_default)]

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, TimeZone, Utc};

use super::*;
use crate::config::{BadgeRule, Condition, MissingUserPolicy, SyncConfig};
use crate::domain::{
    BadgeGrant, CativaUserId, CommunityUser, CrmContact, CrmKind, CrmRecordId, Email, Mapping,
    Provenance, TenantId,
};
use crate::error::RemoteErrorKind;
use crate::memory_store::MemoryStore;
use crate::plan::PlanMode;
use crate::ports::{CheckpointStore, MappingStore, Outbox};
use crate::testkit::{MemoryCrm, RecordingBadgeSink, RecordingInviter};

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
    assert_eq!(plan.count_of("assign_badge"), 3);
    assert_eq!(
        plan.count_of("invite"),
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
    newcomer.profile = crate::domain::CommunityProfile::new().with_field("firstName", "Ana");
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
            "dead-worker",
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
