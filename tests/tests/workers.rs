//! The pull worker of `hubspot_badge_sync` and `salesforce_delta_sync` (`run_worker`):
//! `--once` runs a delta, `--once --full` a full reconcile, and the last line printed is
//! the run report as one JSON line, equal to the report returned.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use cativa_client::sink::ApiBadgeSink;
use cativa_crm_sync_examples::setup::salesforce_schema;
use cativa_crm_sync_examples::worker::{WorkerArgs, run_worker};
use cativa_crm_sync_tests::{World, assert_same_users, config, fast_options, unlimited_sandbox};
use crm_salesforce::{OAuthFlow, SalesforceClient, SalesforceSource};
use secrecy::SecretString;
use sync_core::RunReport;
use sync_engine::SyncEngine;
use sync_sandbox::datagen::DataGenConfig;

fn args(list: &[&str]) -> WorkerArgs {
    WorkerArgs::parse(list.iter().map(|s| (*s).to_owned()), |_| None).unwrap()
}

async fn once(engine: &SyncEngine, world: &World, flags: &[&str]) -> RunReport {
    let mut out = Vec::new();
    let report = run_worker(engine, &world.tenant, &args(flags), &mut out)
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8(out).unwrap();
    let last = text.lines().last().unwrap();
    let parsed: RunReport = serde_json::from_str(last).unwrap();
    assert_eq!(parsed, report, "the last line is the report as JSON");
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
    let delta = once(&engine, &world, &["--once"]).await;
    assert_eq!(delta.kind, "delta");
    assert_eq!(delta.read, 600);
    assert!(delta.checkpoint.is_some());
    assert_same_users(
        "after --once",
        &world.premium_holders(),
        &world.expected_premium(),
    );
    let full = once(&engine, &world, &["--once", "--full"]).await;
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
    let full = once(&engine, &world, &["--once", "--full"]).await;
    assert_eq!((full.read, full.failed), (600, 0), "{full}");
    // The same people are seeded in both CRMs, so the HubSpot-derived expectation holds.
    assert_same_users(
        "after --once --full",
        &world.premium_holders(),
        &world.expected_premium(),
    );
    let delta = once(&engine, &world, &["--once"]).await;
    assert_eq!(delta.kind, "delta");
    assert_eq!(delta.applied_total(), 0, "{delta}");
    world.shutdown().await;
}
