//! The sync service, standalone: Cativa and HubSpot webhooks, a continuous outbox drainer,
//! scheduled pulls and retention, with health routes, hardened against hostile clients.
//!
//! ```text
//! cargo run --example webhook_receiver -- --listen 127.0.0.1:8080 --create-properties
//! ```
//!
//! Point it at real endpoints or at the `sync-sandbox` binary's. Environment (a TOML file
//! given with `--config` works too; `--help` lists the flags): `CATIVA_BASE_URL`,
//! `CATIVA_API_KEY`, `CATIVA_WEBHOOK_SECRET` (the Console listener's secret),
//! `HUBSPOT_BASE_URL`, `HUBSPOT_TOKEN`, `HUBSPOT_CLIENT_SECRET` (your app's, it signs HubSpot
//! webhooks), `WEBHOOK_PUBLIC_URL` (the URL HubSpot calls: v3 signatures cover it),
//! `SYNC_DATABASE_URL` (SQLite path or `postgres://` URL), `SYNC_TENANT`, `SYNC_CONFIG` (badge
//! rules). The sync-service README lists every setting.
//!
//! Routes: `POST /webhooks/cativa/{event}` (one per Console listener's event), `POST
//! /webhooks/cativa` (listeners told apart by `CATIVA_AUTOMATION_EVENTS`), `POST
//! /webhooks/hubspot`, `GET /healthz`, `GET /readyz`. Every answer is JSON.
//!
//! With `STATUS_TOKEN` set it also serves the sync's health: `GET /status` and
//! `GET /status/{tenant}` (JSON, `Authorization: Bearer <STATUS_TOKEN>`), requeue and dismiss
//! of failed work, and the status page at `/status/page` (sign in with the token). Without
//! it those routes answer 404. `SYNC_ALERT_WEBHOOK_URL` is told of every health change.
//!
//! Before it listens it checks the Cativa and CRM credentials, the granted scopes, the CRM
//! properties the sync writes (`--create-properties` creates missing ones) and the store;
//! any problem is printed, all at once, and it exits with status 1. SIGTERM or Ctrl-C stops
//! accepting, finishes in-flight deliveries and releases this instance's claims. A restart
//! (same `SYNC_INSTANCE_ID`) takes back what a killed predecessor held, at once.

use std::process::ExitCode;

use cativa_crm_sync::service::{Error, ServiceArgs, ServiceConfig, shutdown_signal, start};
use clap::Parser;

/// The cativa-crm-sync service: webhooks in, CRM and community kept in sync.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    service: ServiceArgs,
}

#[tokio::main]
async fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
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
    // Connects and runs every start-up check; nothing is served if one fails.
    let service = start(&config).await?;
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    println!(
        "Listening on http://{addr} : POST /webhooks/cativa/{{event}}, POST /webhooks/cativa, POST /webhooks/hubspot, GET /healthz, GET /readyz."
    );
    if config.status_token.is_some() {
        println!(
            "Status page: http://{addr}/status/page (sign in with STATUS_TOKEN); JSON: GET /status"
        );
    }
    service.serve(listener, shutdown_signal()).await?;
    println!("Stopped: in-flight deliveries finished, outbox claims released.");
    Ok(())
}
