//! `SyncEngine::status`, the run records behind it, and `HealthWatch`.

use sync_core::ports::{Requeue, RunMode, RunOutcome, StatusStore};
use sync_core::status::{Health, StatusObserver};

use super::*;

fn schedule() -> Schedule {
    Schedule::every(900)
}

#[tokio::test]
async fn status_groups_a_permanent_failure_and_clears_after_a_requeue() {
    let w = world(6, MissingUserPolicy::Skip);
    add_users(&w, 0..6).await;
    w.badges.fail_user(user(2), RemoteErrorKind::Invalid, 1);
    w.engine.run_delta(&w.tenant).await.unwrap();

    let status = w.engine.status(&w.tenant, &schedule()).await.unwrap();
    assert_eq!(status.last_runs.len(), 1);
    assert_eq!(status.last_runs[0].run.mode, RunMode::Delta);
    assert_eq!(status.last_runs[0].run.outcome, RunOutcome::Ok);
    assert_eq!(
        status.last_runs[0].run.applied.get("assign_badge"),
        Some(&2)
    );
    assert_eq!(status.timing.last_success_at, Some(t(10_000)));
    assert!(status.timing.checkpoint.is_some());
    assert_eq!(
        status.connection.ok,
        Some(true),
        "a pull that ended ok proves the credentials"
    );
    assert_eq!((status.outbox.failed, status.outbox.pending), (1, 0));
    assert_eq!(status.failures.len(), 1);
    let group = &status.failures[0];
    assert_eq!((group.kind.as_str(), group.count), ("assign_badge", 1));
    assert_eq!(group.samples[0].target, "user2@example.com");
    assert!(!group.advice.is_empty());
    assert_eq!(
        status.health.state,
        HealthState::Amber,
        "{:?}",
        status.health
    );
    assert_eq!(status.schedule, schedule());

    let key = sync_core::IdempotencyKey::from_raw(group.samples[0].key.clone());
    let moved = w
        .store
        .requeue_failed(
            &w.tenant,
            &Requeue::Keys(vec![key.clone()]),
            "ops",
            Some("badge fixed"),
            t(10_001),
        )
        .await
        .unwrap();
    assert_eq!(moved, 1);
    let drain = w.engine.drain_outbox(&w.tenant).await.unwrap();
    assert_eq!(drain.applied.get("assign_badge"), Some(&1));
    // The requeued attempt went out under a new key: an API replaying its stored answer per
    // key (as Cativa's sandbox does) would otherwise answer the old failure again.
    assert!(w.badges.applied_key(key.requeued(1).as_str()));
    assert!(!w.badges.applied_key(key.as_str()));
    let status = w.engine.status(&w.tenant, &schedule()).await.unwrap();
    assert_eq!(status.outbox.failed, 0);
    assert!(status.failures.is_empty());
    assert_eq!(status.health, Health::green());
    let modes: Vec<RunMode> = status.last_runs.iter().map(|l| l.run.mode).collect();
    assert_eq!(modes, vec![RunMode::Delta, RunMode::Drain]);
}

#[tokio::test]
async fn a_run_that_ends_in_an_error_is_recorded_as_failed() {
    let store = Arc::new(MemoryStore::new());
    let engine = SyncEngine::builder(SyncConfig::default().validate().unwrap(), store.clone())
        .clock(Arc::new(ManualClock(Mutex::new(t(0)))))
        .build();
    let tenant = TenantId::new("acme");
    let err = engine.run_delta(&tenant).await.unwrap_err();
    let runs = store.last_runs(&tenant).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].run.outcome, RunOutcome::Failed);
    assert_eq!(
        runs[0].run.reason.as_deref(),
        Some(err.to_string().as_str())
    );
    assert_eq!(runs[0].last_ok_at, None);
    let status = engine.status(&tenant, &Schedule::default()).await.unwrap();
    assert_eq!(status.health.state, HealthState::Amber);
    assert!(
        status
            .health
            .reasons
            .iter()
            .any(|r| r.starts_with("the last delta run failed"))
    );
}

#[derive(Default)]
struct Recorder(Mutex<Vec<(String, HealthState, HealthState)>>);

#[async_trait::async_trait]
impl StatusObserver for Recorder {
    async fn on_health_change(
        &self,
        tenant: &TenantId,
        old: &Health,
        new: &Health,
        _status: &SyncStatus,
    ) {
        self.0
            .lock()
            .unwrap()
            .push((tenant.to_string(), old.state, new.state));
    }
}

#[tokio::test]
async fn rejected_credentials_turn_the_tenant_red_and_the_watch_fires_once_each_way() {
    let w = world(6, MissingUserPolicy::Skip);
    add_users(&w, 0..6).await;
    w.badges.fail_calls(RemoteErrorKind::Auth, 1);
    let report = w.engine.run_delta(&w.tenant).await.unwrap();
    assert!(report.credentials_rejected, "{report}");
    let recorder = Arc::new(Recorder::default());
    let watch = HealthWatch::new().observer(recorder.clone());

    let red = w.engine.status(&w.tenant, &schedule()).await.unwrap();
    assert_eq!(red.health.state, HealthState::Red, "{:?}", red.health);
    assert!(red.health.reasons[0].starts_with("credentials rejected"));
    assert_eq!(red.connection.ok, Some(false));
    assert!(watch.update(&red).await);
    assert!(!watch.update(&red).await, "no change, no call");

    w.clock.advance(Duration::minutes(1));
    w.engine.run_delta(&w.tenant).await.unwrap();
    let green = w.engine.status(&w.tenant, &schedule()).await.unwrap();
    assert_eq!(green.health.state, HealthState::Green, "{:?}", green.health);
    assert!(watch.update(&green).await);
    assert!(!watch.update(&green).await);
    let calls = recorder.0.lock().unwrap().clone();
    assert_eq!(
        calls,
        vec![
            ("acme".to_owned(), HealthState::Green, HealthState::Red),
            ("acme".to_owned(), HealthState::Red, HealthState::Green),
        ]
    );
    assert_eq!(
        watch.last(&w.tenant).map(|h| h.state),
        Some(HealthState::Green)
    );
}

#[tokio::test]
async fn the_watch_tells_each_observer_once_per_change_per_tenant() {
    let recorder = Arc::new(Recorder::default());
    let second = Arc::new(Recorder::default());
    let watch = HealthWatch::new()
        .observer(recorder.clone())
        .observer(second.clone());
    let at = |tenant: &str, state: HealthState| {
        let mut s = SyncStatus::new(TenantId::new(tenant), t(0));
        s.health.state = state;
        s
    };
    for (tenant, state) in [
        ("a", HealthState::Green),
        ("a", HealthState::Amber),
        ("b", HealthState::Amber),
        ("a", HealthState::Amber),
        ("a", HealthState::Red),
        ("b", HealthState::Amber),
        ("a", HealthState::Green),
    ] {
        watch.update(&at(tenant, state)).await;
    }
    let calls = recorder.0.lock().unwrap().clone();
    let expected: Vec<(String, HealthState, HealthState)> = [
        ("a", HealthState::Green, HealthState::Amber),
        ("b", HealthState::Green, HealthState::Amber),
        ("a", HealthState::Amber, HealthState::Red),
        ("a", HealthState::Red, HealthState::Green),
    ]
    .into_iter()
    .map(|(t, o, n)| (t.to_owned(), o, n))
    .collect();
    assert_eq!(calls, expected);
    assert_eq!(second.0.lock().unwrap().clone(), expected);
}

#[tokio::test]
async fn describing_the_metrics_needs_no_recorder() {
    // Without a recorder installed the descriptions go nowhere; the call must not panic.
    describe_metrics();
}
