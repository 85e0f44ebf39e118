//! The background work of a service, over the in-memory CRM and store: the drainer applies
//! what deliveries only enqueued, scheduled pulls run under the leader lease, retention
//! purges expired rows, and shutdown releases the lease.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use sync_core::config::{BadgeRule, Condition, SyncConfig};
use sync_core::ports::{CheckpointStore, DeliveryLedger, LeaderLease, StatusStore, WebhookOutcome};
use sync_core::testkit::{MemoryCrm, RecordingBadgeSink};
use sync_core::{
    CativaUserId, CommunityEvent, CommunityUser, CrmKind, Email, MemoryStore, TenantId,
};
use sync_engine::{EngineOptions, SyncEngine};
use sync_service::{PULL_LEASE, Service, ServiceOptions};

struct World {
    store: Arc<MemoryStore>,
    crm: Arc<MemoryCrm>,
    tenant: TenantId,
}

fn world() -> World {
    World {
        store: Arc::new(MemoryStore::new()),
        crm: Arc::new(MemoryCrm::new(CrmKind::Hubspot, 50)),
        tenant: TenantId::new("acme"),
    }
}

fn engine(w: &World, instance: &str, apply_inline: bool) -> SyncEngine {
    let mut raw = SyncConfig::default();
    raw.badge_rules = vec![BadgeRule::new(
        "annual",
        "Premium",
        Condition::Tag("Pago Anual".into()),
    )];
    let mut options = EngineOptions::default();
    options.worker_id = instance.to_owned();
    options.apply = apply_inline;
    SyncEngine::builder(raw.validate().unwrap(), w.store.clone())
        .source(w.crm.clone())
        .crm_sink(w.crm.clone())
        .badge_sink(Arc::new(RecordingBadgeSink::new()))
        .options(options)
        .build()
}

async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..200 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{what} did not happen within 5 s");
}

fn push_only() -> ServiceOptions {
    let mut options = ServiceOptions::default();
    options.schedule.delta_interval = None;
    options
}

#[tokio::test]
async fn the_drainer_applies_what_a_delivery_only_enqueued() {
    let w = world();
    // The engine only enqueues; the drainer is what applies.
    let service = Service::builder(engine(&w, "a", false), w.tenant.clone())
        .options(push_only())
        .build();
    let user = CommunityUser::new(
        CativaUserId::from("u1"),
        Email::parse("ana@example.com").unwrap(),
    );
    service
        .engine()
        .handle_community_event(&w.tenant, "exec-1", CommunityEvent::UserCreated { user })
        .await
        .unwrap();
    assert!(w.crm.all().is_empty(), "nothing applied inline");
    let background = service.spawn_background();
    eventually("the provisioning", async || {
        w.crm.all().iter().any(|c| {
            c.email
                .as_ref()
                .is_some_and(|e| e.as_str() == "ana@example.com")
        })
    })
    .await;
    background.shutdown().await;
}

#[tokio::test]
async fn scheduled_pulls_run_under_the_leader_lease_which_shutdown_releases() {
    let w = world();
    let mut options = ServiceOptions::default();
    options.schedule.delta_interval = Some(Duration::from_millis(100));
    options.schedule.jitter = Duration::ZERO;
    let service = Service::builder(engine(&w, "leader", true), w.tenant.clone())
        .options(options)
        .build();
    let background = service.spawn_background();
    eventually("a scheduled pull", async || {
        w.store
            .checkpoint(&w.tenant, CrmKind::Hubspot.as_str(), "contacts")
            .await
            .unwrap()
            .is_some()
    })
    .await;
    let ttl = Duration::from_secs(60);
    assert!(
        !w.store
            .try_acquire_lease(&w.tenant, PULL_LEASE, "other", ttl, Utc::now())
            .await
            .unwrap(),
        "another instance does not pull while the leader lives"
    );
    background.shutdown().await;
    assert!(
        w.store
            .try_acquire_lease(&w.tenant, PULL_LEASE, "other", ttl, Utc::now())
            .await
            .unwrap(),
        "the lease is released at shutdown"
    );
}

#[tokio::test]
async fn retention_purges_expired_ledger_entries_and_keeps_recent_ones() {
    let w = world();
    let now = Utc::now();
    w.store
        .record_delivery(&w.tenant, "old", now - chrono::Duration::days(40))
        .await
        .unwrap();
    w.store
        .record_delivery(&w.tenant, "recent", now - chrono::Duration::days(1))
        .await
        .unwrap();
    // A webhook delivery counter out of its 7-day window goes too.
    w.store
        .record_delivery_outcome(
            &w.tenant,
            WebhookOutcome::Accepted,
            None,
            now - chrono::Duration::days(10),
        )
        .await
        .unwrap();
    let service = Service::builder(engine(&w, "a", true), w.tenant.clone())
        .options(push_only())
        .build();
    let background = service.spawn_background();
    eventually("the purge", async || {
        !w.store.has_delivery(&w.tenant, "old").await.unwrap()
    })
    .await;
    assert!(w.store.has_delivery(&w.tenant, "recent").await.unwrap());
    eventually("the counters' purge", async || {
        let since = now - chrono::Duration::days(30);
        w.store
            .webhook_counts(&w.tenant, since)
            .await
            .unwrap()
            .accepted
            == 0
    })
    .await;
    background.shutdown().await;
}
