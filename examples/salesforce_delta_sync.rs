//! Salesforce -> Cativa badges, as a pull worker: a delta (SystemModstamp, deletions and
//! merges from the delete log) on an interval plus a nightly full reconcile.
//!
//! ```text
//! cargo run --example salesforce_delta_sync                  # loop until SIGTERM / Ctrl-C
//! cargo run --example salesforce_delta_sync -- --once         # one delta, then exit
//! cargo run --example salesforce_delta_sync -- --once --full  # one full reconcile, then exit
//! ```
//!
//! Environment: `SALESFORCE_LOGIN_URL`, `SALESFORCE_CLIENT_ID` and one of
//! `SALESFORCE_USERNAME` + `SALESFORCE_PRIVATE_KEY_PATH` (JWT bearer),
//! `SALESFORCE_REFRESH_TOKEN` (+ `SALESFORCE_CLIENT_SECRET` if the app needs it), or
//! `SALESFORCE_CLIENT_SECRET` alone (client credentials, My Domain login URL);
//! `SALESFORCE_TAGS_FIELD` (default `Cativa_Tags__c`), `CATIVA_BASE_URL`, `CATIVA_API_KEY`,
//! `SYNC_DATABASE_URL` (default `cativa-sync.db`; a temporary file in sandbox mode), `SYNC_TENANT`, `SYNC_CONFIG`,
//! `SYNC_INTERVAL_SECS`, `SYNC_FULL_RECONCILE_HOUR`. Unset endpoints are served by the
//! in-process sandbox, seeded with 1,000 people.
//!
//! `SYNC_INSTANCE_ID`, `SYNC_LEASE_SECS`, `SYNC_ONCE_WAIT_SECS` (see `hubspot_badge_sync`).
//!
//! The last line of output is the run report as one JSON line; `--once` exits 0 when done
//! or stopped by a signal, 2 when stopped early, 3 when work is still held by another
//! worker. When Salesforce's delete log no longer covers the checkpoint the
//! report says `full_reconcile_advised`: run `--once --full`.

use std::path::PathBuf;
use std::sync::Arc;

use cativa_client::sink::ApiBadgeSink;
use cativa_crm_sync_examples::seed::{deliver_user_created, seed_people};
use cativa_crm_sync_examples::settings::Settings;
use cativa_crm_sync_examples::setup::{
    Crm, Endpoints, StoreFallback, open_store, salesforce_schema,
};
use cativa_crm_sync_examples::worker::{WorkerArgs, exit_code, run_worker};
use cativa_crm_sync_examples::{ExampleError, init_tracing};
use crm_salesforce::SalesforceSource;
use sync_core::TenantId;
use sync_engine::{EngineOptions, SyncEngine};

#[tokio::main]
async fn main() -> Result<(), ExampleError> {
    init_tracing();
    let args = WorkerArgs::parse(std::env::args().skip(1), |v| std::env::var(v).ok())?;
    let settings = Settings::from_env()?;
    let endpoints = Endpoints::connect(&settings, Crm::Salesforce).await?;
    println!("{}", endpoints.notice);

    // Against the sandbox (fresh data each start) a temporary store; against real
    // accounts a file that keeps the checkpoint between runs.
    let fallback = if endpoints.sandbox.is_some() {
        StoreFallback::TempDir
    } else {
        StoreFallback::File(PathBuf::from("cativa-sync.db"))
    };
    let store = open_store(&settings, fallback).await?;
    println!("Store: {}.", store.description);
    let tenant = TenantId::new(settings.tenant.clone());
    let config = settings.sync_config()?;

    if let Some(sandbox) = &endpoints.sandbox {
        let people = seed_people(sandbox, 1_000)?;
        let community = SyncEngine::builder(config.clone(), store.store.clone()).build();
        let users = deliver_user_created(
            sandbox,
            &community,
            &tenant,
            &endpoints.cativa_webhook_secret,
            8,
        )
        .await?;
        println!(
            "Sandbox seeded with {} contacts; {} community users recorded from signed user_created webhooks ({} already known).",
            people.len(),
            users.accepted,
            users.duplicate
        );
    }

    let source = SalesforceSource::new(
        endpoints.salesforce()?.clone(),
        salesforce_schema(&settings.salesforce_tags_field),
    )?;
    let mut options = EngineOptions::default();
    args.apply_to(&mut options);
    let engine = SyncEngine::builder(config, store.store.clone())
        .source(Arc::new(source))
        .badge_sink(Arc::new(ApiBadgeSink::new(
            tenant.clone(),
            endpoints.cativa.clone(),
        )))
        .options(options)
        .build();

    let mut out = std::io::stdout();
    let report = run_worker(&engine, &tenant, &args, &mut out).await?;
    endpoints.shutdown().await;
    if let (true, Some(report)) = (args.once, &report) {
        std::process::exit(exit_code(report));
    }
    Ok(())
}
