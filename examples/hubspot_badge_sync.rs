//! Pull worker, HubSpot -> Cativa badges: contacts tagged per the badge rules get their
//! badges, and lose them (only badges the sync granted) when the tag goes.
//!
//! ```text
//! cargo run --example hubspot_badge_sync                  # deltas on an interval, nightly full reconcile
//! cargo run --example hubspot_badge_sync -- --once        # one delta, then exit
//! cargo run --example hubspot_badge_sync -- --once --full # one full reconcile, then exit
//! ```
//!
//! Environment: `HUBSPOT_BASE_URL`, `HUBSPOT_TOKEN`, `HUBSPOT_TAGS_PROPERTY`,
//! `CATIVA_BASE_URL`, `CATIVA_API_KEY`, `SYNC_DATABASE_URL`, `SYNC_TENANT`, `SYNC_CONFIG`,
//! `SYNC_INSTANCE_ID`, `SYNC_PULL_INTERVAL_SECS`, `SYNC_FULL_RECONCILE_HOUR` (the
//! sync-service README lists every setting). A `--once` run prints its report and, last, the
//! report as one JSON line, and shows its progress (a bar on a terminal, log lines
//! otherwise); its exit code is 0 (done, or stopped by SIGTERM with its claims
//! released), 2 (stopped early: quota or credentials) or 3 (work still held by another
//! worker after `--once-wait-secs`).

use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

use cativa_crm_sync::engine::Progress;
use cativa_crm_sync::indicatif::{ProgressBar, ProgressStyle};
use cativa_crm_sync::service::config::Crm;
use cativa_crm_sync::service::jobs::{Pull, exit_code, run_once};
use cativa_crm_sync::service::shutdown_signal;
use cativa_crm_sync::service::{Error, ServiceArgs, ServiceConfig, check, connect, start};
use clap::Parser;

/// Sync HubSpot tags to Cativa badges.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    service: ServiceArgs,
    /// Run one pull, finish its outbox work, print the report and exit.
    #[arg(long)]
    once: bool,
    /// With --once: a full reconcile instead of a delta.
    #[arg(long, requires = "once")]
    full: bool,
    /// With --once: how long to wait for outbox work held by another worker.
    #[arg(long, env = "SYNC_ONCE_WAIT_SECS", default_value_t = 30)]
    once_wait_secs: u64,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    match run(Args::parse()).await {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<u8, Error> {
    let mut config = ServiceConfig::load(&args.service)?;
    config.crm = Some(Crm::HubSpot);
    if !args.once {
        // The service's background work: deltas, the nightly reconcile, the drainer.
        let service = start(&config).await?;
        let background = service.spawn_background();
        shutdown_signal().await;
        background.shutdown().await;
        return Ok(0);
    }
    let connected = connect(&config).await?;
    check(&connected, &config).await?;
    let stop = connected.engine.stop_signal().clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        stop.stop();
    });
    let pull = if args.full {
        Pull::FullReconcile
    } else {
        Pull::Delta
    };
    let wait = Duration::from_secs(args.once_wait_secs);
    let engine = connected.engine.clone().with_progress(progress());
    let report = run_once(&engine, &connected.tenant, pull, wait).await?;
    println!("{report}");
    println!("{}", report.to_json_line());
    Ok(u8::try_from(exit_code(&report)).unwrap_or(1))
}

/// A spinner with the counts when stderr is a terminal, else one log line per update.
fn progress() -> impl Fn(&Progress) + Send + Sync {
    let bar = std::io::stderr().is_terminal().then(|| {
        let style = ProgressStyle::with_template("{spinner} {elapsed} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        let bar = ProgressBar::new_spinner().with_style(style);
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    });
    move |p: &Progress| {
        let line = format!(
            "{}: read {} planned {} applied {} failed {} retrying {}",
            p.kind, p.read, p.planned, p.applied, p.failed, p.retrying
        );
        match &bar {
            Some(bar) if p.done => bar.finish_with_message(line),
            Some(bar) => bar.set_message(line),
            None => eprintln!("{line}"),
        }
    }
}
