//! Dry run: what a sync would do, as a reviewable diff and as JSON. Reads the CRM and the
//! store; writes nothing anywhere (no outbox, no checkpoint, no API write).
//!
//! ```text
//! cargo run --example dry_run            # the next delta (from the stored checkpoint)
//! cargo run --example dry_run -- --full  # a full reconcile
//! ```
//!
//! Environment: the CRM's (`HUBSPOT_BASE_URL` and `HUBSPOT_TOKEN`, or `SALESFORCE_LOGIN_URL`
//! and its flow), `CATIVA_BASE_URL`, `CATIVA_API_KEY`, `SYNC_DATABASE_URL` (the store your
//! service uses: the plan is against what it knows), `SYNC_TENANT`, `SYNC_CONFIG` (try a rule
//! change here before deploying it). Output: the plan as text (cut to 40 lines), then a line
//! `JSON:` and the whole plan as pretty JSON (`Plan::to_json`), stable for diffing in CI.

use std::process::ExitCode;

use cativa_crm_sync::core::PlanMode;
use cativa_crm_sync::service::{Error, ServiceArgs, ServiceConfig, connect};
use clap::Parser;

/// Print what the next sync would do, without doing it.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    service: ServiceArgs,
    /// Plan a full reconcile instead of the next delta.
    #[arg(long)]
    full: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Error> {
    let config = ServiceConfig::load(&args.service)?;
    let connected = connect(&config).await?;
    let mode = if args.full {
        PlanMode::FullReconcile {
            scan_complete: false,
        }
    } else {
        PlanMode::Delta
    };
    // Planning is pure: it reads the CRM and the store and returns data.
    let plan = connected.engine.plan(&connected.tenant, mode).await?;
    let text = plan.to_string();
    let lines: Vec<&str> = text.lines().collect();
    for line in lines.iter().take(40) {
        println!("{line}");
    }
    if lines.len() > 41 {
        println!("... {} more lines", lines.len() - 41);
        println!("{}", lines[lines.len() - 1]);
    }
    println!("\nJSON:\n{}", plan.to_json());
    Ok(())
}
