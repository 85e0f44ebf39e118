//! The pull jobs of `sync-service`: `jobs::run_once` with `Pull::Delta` runs a delta,
//! with `Pull::FullReconcile` a full reconcile, each finishing the outbox work it left; the
//! report's JSON line (what a cron job prints) reads back as the same report, and
//! `jobs::exit_code` says 0. The loop mode is `Service::spawn_background`: scheduled pulls
//! that converge on the rule's state and stop cleanly at `Background::shutdown`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use cativa_client::sink::ApiBadgeSink;
use cativa_crm_sync_tests::{
    World, assert_same_users, config, fast_options, salesforce_schema, unlimited_sandbox,
};
use crm_salesforce::{OAuthFlow, SalesforceClient, SalesforceSource};
use secrecy::SecretString;
use sync_core::RunReport;
use sync_engine::SyncEngine;
use sync_sandbox::datagen::DataGenConfig;
use sync_service::jobs::{Pull, exit_code, run_once};
use sync_service::options::FullReconcile;
use sync_service::{Service, ServiceOptions};

async fn once(engine: &SyncEngine, world: &World, pull: Pull) -> RunReport {
    let report = run_once(engine, &world.tenant, pull, Duration::from_secs(30))
        .await
        .unwrap();
    let parsed: RunReport = serde_json::from_str(&report.to_json_line()).unwrap();
    assert_eq!(parsed, report, "the JSON line is the report");
    assert_eq!(exit_code(&report), 0, "{report}");
    report
}

fn data() -> DataGenConfig {
    DataGenConfig::default()
        .with_contacts(600)
        .with_seed(70)
        .with_duplicate_email_share(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hubspot_worker_once_and_once_full() {
    let world = World::start_with(unlimited_sandbox(), data())
        .await
        .unwrap();
    world.record_users().await.unwrap();
    let engine = world.engine().unwrap();
    let delta = once(&engine, &world, Pull::Delta).await;
    assert_eq!(delta.kind, "delta");
    assert_eq!(delta.read, 600);
    assert!(delta.checkpoint.is_some());
    assert_same_users(
        "after a delta",
        &world.premium_holders(),
        &world.expected_premium(),
    );
    let full = once(&engine, &world, Pull::FullReconcile).await;
    assert_eq!(full.kind, "full_reconcile");
    assert_eq!(full.scan_complete, Some(true));
    assert_eq!(full.applied_total(), 0, "nothing left to do: {full}");
    world.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn salesforce_worker_once_full_then_once() {
    let world = World::start_with(unlimited_sandbox(), data())
        .await
        .unwrap();
    world.record_users().await.unwrap();
    let client = SalesforceClient::builder()
        .login_url(world.sandbox.salesforce().base_url())
        .flow(OAuthFlow::refresh_token(
            sync_sandbox::salesforce::DEFAULT_CLIENT_ID,
            None,
            SecretString::from(sync_sandbox::salesforce::DEFAULT_REFRESH_TOKEN),
        ))
        .build()
        .unwrap();
    let source = SalesforceSource::new(
        client,
        salesforce_schema(world.sandbox.salesforce().tags_field()),
    )
    .unwrap();
    let engine = SyncEngine::builder(config().unwrap(), world.store.clone())
        .source(Arc::new(source))
        .badge_sink(Arc::new(ApiBadgeSink::new(
            world.tenant.clone(),
            world.cativa.clone(),
        )))
        .options(fast_options())
        .build();
    let full = once(&engine, &world, Pull::FullReconcile).await;
    assert_eq!((full.read, full.failed), (600, 0), "{full}");
    // The same people are seeded in both CRMs, so the HubSpot-derived expectation holds.
    assert_same_users(
        "after a full reconcile",
        &world.premium_holders(),
        &world.expected_premium(),
    );
    let delta = once(&engine, &world, Pull::Delta).await;
    assert_eq!(delta.kind, "delta");
    assert_eq!(delta.applied_total(), 0, "{delta}");
    world.shutdown().await;
}

/// The loop mode: with a delta every 100 ms (no jitter, no scheduled full reconcile), the
/// background pulls alone bring Cativa to the rule's state; `shutdown` stops them and
/// leaves nothing claimed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_pulls_in_the_background_converge_and_stop_cleanly() {
    let world = World::start_with(unlimited_sandbox(), data())
        .await
        .unwrap();
    world.record_users().await.unwrap();
    let mut options = ServiceOptions::default();
    options.schedule.delta_interval = Some(Duration::from_millis(100));
    options.schedule.jitter = Duration::ZERO;
    options.schedule.full_reconcile = FullReconcile::Never;
    options.drain.idle_interval = Duration::from_millis(50);
    let service = Service::builder(world.engine().unwrap(), world.tenant.clone())
        .options(options)
        .build();
    let background = service.spawn_background();
    let expected = world.expected_premium();
    assert!(!expected.is_empty(), "the world has grants to make");
    // Bounded: the pulls run on their own; the test only waits for their effect.
    for _ in 0..600 {
        if world.premium_holders() == expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    background.shutdown().await;
    assert_same_users(
        "after the scheduled pulls",
        &world.premium_holders(),
        &expected,
    );
    let counts = world.store.outbox_counts(&world.tenant).await.unwrap();
    assert_eq!(
        (counts.in_flight, counts.failed),
        (0, 0),
        "nothing held or failed after shutdown: {counts:?}"
    );
    world.shutdown().await;
}
