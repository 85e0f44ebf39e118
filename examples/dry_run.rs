//! Dry run: what a sync would do, as a reviewable diff and as JSON. Reads the CRM and the
//! store; writes nothing anywhere (no outbox, no checkpoint, no API write).
//!
//! ```text
//! cargo run --example dry_run            # the next delta (from the stored checkpoint)
//! cargo run --example dry_run -- --full  # a full reconcile
//! ```
//!
//! Environment: `HUBSPOT_BASE_URL`, `HUBSPOT_TOKEN`, `HUBSPOT_TAGS_PROPERTY`,
//! `SYNC_DATABASE_URL` (the store your worker uses: the plan is against what it knows),
//! `SYNC_TENANT`, `SYNC_CONFIG` (try a rule change here before deploying it). Unset, the
//! in-process sandbox serves HubSpot, seeded with 1,000 people whose community users are
//! recorded from signed `user_created` webhooks into a temporary store.
//!
//! Output: the plan as text (effects first, cut to 40 lines), then a line `JSON:` and the
//! whole plan as pretty JSON (`Plan::to_json`), which is stable for diffing in CI.

use std::path::PathBuf;
use std::sync::Arc;

use cativa_crm_sync_examples::output::truncated_plan;
use cativa_crm_sync_examples::seed::{deliver_user_created, seed_people};
use cativa_crm_sync_examples::settings::Settings;
use cativa_crm_sync_examples::setup::{Crm, Endpoints, StoreFallback, hubspot_source, open_store};
use cativa_crm_sync_examples::{ExampleError, init_tracing};
use sync_core::{PlanMode, TenantId};
use sync_engine::SyncEngine;

#[tokio::main]
async fn main() -> Result<(), ExampleError> {
    init_tracing();
    let mut full = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--full" => full = true,
            other => {
                return Err(ExampleError::Usage(format!(
                    "unknown argument {other:?} (expected --full)"
                )));
            }
        }
    }
    let settings = Settings::from_env()?;
    let endpoints = Endpoints::connect(&settings, Crm::HubSpot).await?;
    println!("{}", endpoints.notice);
    let fallback = if endpoints.sandbox.is_some() {
        StoreFallback::TempDir
    } else {
        StoreFallback::File(PathBuf::from("cativa-sync.db"))
    };
    let store = open_store(&settings, fallback).await?;
    println!("Store: {} (read only for this run).", store.description);
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
            "Sandbox seeded with {} contacts; {} community users recorded from signed user_created webhooks.",
            people.len(),
            users.accepted
        );
    }

    // No sinks: even a bug could not write anywhere.
    let engine = SyncEngine::builder(config, store.store.clone())
        .source(Arc::new(hubspot_source(
            endpoints.hubspot()?.clone(),
            &settings.hubspot_tags_property,
        )))
        .build();
    let mode = if full {
        PlanMode::FullReconcile {
            scan_complete: false,
        }
    } else {
        PlanMode::Delta
    };
    let plan = engine.plan(&tenant, mode).await?;
    println!("\n{}", truncated_plan(&plan, 40));
    println!("\nJSON:\n{}", plan.to_json());
    endpoints.shutdown().await;
    Ok(())
}
