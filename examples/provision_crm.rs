//! Provisioning inside your own axum app: every Cativa `user_created` webhook becomes a CRM
//! contact (found by email and linked when it exists, created otherwise: never a duplicate),
//! with the Cativa user id written to `cativa_user_id`.
//!
//! ```text
//! cargo run --example provision_crm -- --listen 0.0.0.0:8080 --create-properties
//! ```
//!
//! The sync service's router is nested under `/sync` of an app that has its own routes and
//! middleware; point the Cativa Console's `user_created` listener at
//! `<public URL>/sync/webhooks/cativa/user_created`. The background work (the drainer that
//! retries provisioning a CRM outage delayed) runs alongside. Environment: `CATIVA_BASE_URL`,
//! `CATIVA_API_KEY`, `CATIVA_WEBHOOK_SECRET`, `HUBSPOT_BASE_URL`, `HUBSPOT_TOKEN` (scopes
//! `crm.objects.contacts.read` and `.write`, plus `crm.schemas.contacts.write` with
//! `--create-properties`), `SYNC_DATABASE_URL`, `SYNC_TENANT`.

use std::process::ExitCode;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use cativa_crm_sync::service::{Error, ServiceArgs, ServiceConfig, router, shutdown_signal, start};
use clap::Parser;

/// Your app, with CRM provisioning from Cativa webhooks under /sync.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[command(flatten)]
    service: ServiceArgs,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
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
    let mut config = ServiceConfig::load(&args.service)?;
    // Provisioning only: the CRM is read when a user arrives, never polled.
    config.pull.interval_secs = 0;
    let service = start(&config).await?;
    let app = Router::new()
        .route("/", get(|| async { "your app" }))
        .nest("/sync", router(&service));
    let background = service.spawn_background();
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    println!("Listening on http://{addr} : POST /sync/webhooks/cativa/user_created.");
    // Your server, your settings: give it a header read timeout in production (the
    // standalone `Service::serve` sets one), e.g. behind a proxy that enforces it.
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    // In-flight requests are done: stop the drainer after its batch, release claims.
    tokio::time::timeout(Duration::from_secs(30), background.shutdown())
        .await
        .ok();
    println!("Stopped.");
    Ok(())
}
