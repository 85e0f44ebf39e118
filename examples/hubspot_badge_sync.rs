//! HubSpot -> Cativa badges, as a pull worker: a delta on an interval plus a nightly full
//! reconcile.
//!
//! ```text
//! cargo run --example hubspot_badge_sync                  # loop until SIGTERM / Ctrl-C
//! cargo run --example hubspot_badge_sync -- --once         # one delta, then exit
//! cargo run --example hubspot_badge_sync -- --once --full  # one full reconcile, then exit
//! ```
//!
//! Environment: `HUBSPOT_BASE_URL`, `HUBSPOT_TOKEN`, `HUBSPOT_TAGS_PROPERTY` (default
//! `cativa_tags`), `CATIVA_BASE_URL`, `CATIVA_API_KEY`, `SYNC_DATABASE_URL` (default
//! `cativa-sync.db` in the working directory; a temporary file in sandbox mode), `SYNC_TENANT`, `SYNC_CONFIG` (badge rules;
//! default: tag `Pago Anual` -> the sandbox's Premium badge), `SYNC_INTERVAL_SECS`,
//! `SYNC_FULL_RECONCILE_HOUR`. Unset endpoints are served by the in-process sandbox, seeded
//! with 1,000 people whose community users are recorded from signed `user_created` webhooks.
//!
//! `SYNC_INSTANCE_ID` (a stable id per worker: a restart takes back its claims at once),
//! `SYNC_LEASE_SECS` (default 15), `SYNC_ONCE_WAIT_SECS` (default two leases).
//!
//! The last line of output is the run report as one JSON line. Exit codes of `--once`: 0
//! done, or stopped by SIGTERM / Ctrl-C with its claims released; 2 stopped early (quota
//! exhausted, credentials rejected: see `stopped`); 3 work still held by another live
//! worker (see `backlog`; run again after `backlog.held_until`).

use std::path::PathBuf;
use std::sync::Arc;

use cativa_client::sink::ApiBadgeSink;
use cativa_crm_sync_examples::seed::{deliver_user_created, seed_people};
use cativa_crm_sync_examples::settings::Settings;
use cativa_crm_sync_examples::setup::{Crm, Endpoints, StoreFallback, hubspot_source, open_store};
use cativa_crm_sync_examples::worker::{WorkerArgs, exit_code, run_worker};
use cativa_crm_sync_examples::{ExampleError, init_tracing};
use sync_core::TenantId;
use sync_engine::{EngineOptions, SyncEngine};

#[tokio::main]
async fn main() -> Result<(), ExampleError> {
    init_tracing();
    let args = WorkerArgs::parse(std::env::args().skip(1), |v| std::env::var(v).ok())?;
    let settings = Settings::from_env()?;
    let endpoints = Endpoints::connect(&settings, Crm::HubSpot).await?;
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

    let mut options = EngineOptions::default();
    args.apply_to(&mut options);
    let engine = SyncEngine::builder(config, store.store.clone())
        .source(Arc::new(hubspot_source(
            endpoints.hubspot()?.clone(),
            &settings.hubspot_tags_property,
        )))
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
