//! A webhook receiver: `POST /webhooks/cativa/{event}` (one route per Console listener's
//! event), `POST /webhooks/cativa` (listeners told apart by `CATIVA_AUTOMATION_EVENTS`) and
//! `POST /webhooks/hubspot`, each verified on the raw body, deduplicated through the
//! store's delivery ledger, planned and applied.
//!
//! ```text
//! cargo run --example webhook_receiver -- --listen 0.0.0.0:8080
//! ```
//!
//! Environment: `LISTEN_ADDR` (when `--listen` is not given; default `127.0.0.1:8080`),
//! `CATIVA_WEBHOOK_SECRET` (the listener's secret in the Cativa Console),
//! `CATIVA_AUTOMATION_EVENTS` (`<automation id>=<event>,...`, for listeners posting to
//! `/webhooks/cativa`),
//! `HUBSPOT_CLIENT_SECRET` (your HubSpot app's client secret), `WEBHOOK_PUBLIC_URL` (the
//! URL HubSpot calls, e.g. `https://hooks.example.com`: v3 signatures cover it, so it
//! must be the public one, not the address behind your proxy), plus `HUBSPOT_BASE_URL`,
//! `HUBSPOT_TOKEN`, `CATIVA_BASE_URL`, `CATIVA_API_KEY`, `SYNC_DATABASE_URL` (default
//! `cativa-sync.db`), `SYNC_TENANT`, `SYNC_CONFIG`.
//!
//! Answers 200 `{"status":"accepted"}` or `{"status":"duplicate"}`, 409
//! `{"status":"in_progress"}` while another copy of the delivery is processed, 401 for a
//! bad or stale signature, 400 for a malformed body or hostile headers, 422 for a delivery
//! whose event is undetermined or lacks what its event requires, 413 for one over 1 MiB,
//! each error as `{"error":"..."}`. SIGTERM (or Ctrl-C) stops accepting connections and lets in-flight
//! deliveries finish before exiting.
//!
//! In sandbox mode the Cativa sandbox is pointed at this receiver (its listeners' automation
//! ids mapped to their events), so users created through its API arrive here as signed
//! `user_created` deliveries.

use std::path::PathBuf;
use std::sync::Arc;

use cativa_client::sink::ApiBadgeSink;
use cativa_crm_sync_examples::receiver::{ReceiverState, listen_addr, router, serve_until};
use cativa_crm_sync_examples::settings::Settings;
use cativa_crm_sync_examples::setup::{Crm, Endpoints, StoreFallback, hubspot_source, open_store};
use cativa_crm_sync_examples::worker::shutdown_signal;
use cativa_crm_sync_examples::{ExampleError, init_tracing};
use crm_hubspot::webhook::{EchoFilter, SignatureVerifier as HubSpotVerifier, WebhookReceiver};
use crm_hubspot::{HubSpotSink, SinkConfig};
use sync_core::TenantId;
use sync_engine::SyncEngine;

#[tokio::main]
async fn main() -> Result<(), ExampleError> {
    init_tracing();
    let addr = listen_addr(
        std::env::args().skip(1),
        |v| std::env::var(v).ok(),
        "127.0.0.1:8080",
    )?;
    let settings = Settings::from_env()?;
    let endpoints = Endpoints::connect(&settings, Crm::HubSpot).await?;
    println!("{}", endpoints.notice);

    let fallback = if endpoints.sandbox.is_some() {
        StoreFallback::TempDir
    } else {
        StoreFallback::File(PathBuf::from("cativa-sync.db"))
    };
    let store = open_store(&settings, fallback).await?;
    println!("Store: {}.", store.description);
    let tenant = TenantId::new(settings.tenant.clone());

    let hubspot = endpoints.hubspot()?.clone();
    // The sink records its own property writes so their webhook echoes are dropped.
    let echo = Arc::new(EchoFilter::new());
    let source = Arc::new(hubspot_source(
        hubspot.clone(),
        &settings.hubspot_tags_property,
    ));
    let engine = SyncEngine::builder(settings.sync_config()?, store.store.clone())
        .source(source.clone())
        .crm_sink(Arc::new(
            HubSpotSink::new(hubspot, SinkConfig::default()).with_echo_filter(echo.clone()),
        ))
        .badge_sink(Arc::new(ApiBadgeSink::new(
            tenant.clone(),
            endpoints.cativa.clone(),
        )))
        .build();

    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let public_url = std::env::var("WEBHOOK_PUBLIC_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .map_or_else(
            || format!("http://{local}/webhooks/hubspot"),
            |u| format!("{}/webhooks/hubspot", u.trim_end_matches('/')),
        );
    // In sandbox mode its listeners post to /webhooks/cativa, told apart by automation id.
    let sandbox_listeners: Vec<(String, cativa_client::webhook::EventType)> = endpoints
        .sandbox
        .iter()
        .flat_map(|s| s.cativa().automation_events())
        .filter_map(|(event, id)| event.parse().ok().map(|e| (id, e)))
        .collect();
    let state = ReceiverState {
        engine,
        tenant,
        cativa: settings
            .cativa_webhook_receiver(endpoints.cativa_webhook_secret.clone(), sandbox_listeners)?,
        hubspot: Some((
            WebhookReceiver::new(
                HubSpotVerifier::new(endpoints.hubspot_client_secret.clone())
                    .with_public_url(&public_url),
            )
            .with_echo_filter(echo),
            source,
        )),
    };
    if let Some(sandbox) = &endpoints.sandbox {
        sandbox
            .cativa()
            .set_webhook_target(Some(format!("http://{local}/webhooks/cativa")));
    }
    println!(
        "Listening on http://{local}: POST /webhooks/cativa/{{event}}, POST /webhooks/cativa, POST /webhooks/hubspot (HubSpot signs {public_url})."
    );
    serve_until(listener, router(Arc::new(state)), shutdown_signal()).await?;
    println!("Stopped: in-flight deliveries finished.");
    endpoints.shutdown().await;
    Ok(())
}
