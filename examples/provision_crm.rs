//! Provisioning: every Cativa `user_created` webhook becomes a HubSpot contact (found by
//! email and linked when it exists, created otherwise: never a duplicate), with the Cativa
//! user id written to `cativa_user_id`.
//!
//! ```text
//! cargo run --example provision_crm -- --listen 0.0.0.0:8080
//! ```
//!
//! Environment: `LISTEN_ADDR` (when `--listen` is not given), `CATIVA_WEBHOOK_SECRET`,
//! `HUBSPOT_BASE_URL`, `HUBSPOT_TOKEN` (scopes `crm.objects.contacts.read/write`, plus
//! `crm.schemas.contacts.write` the first time, to create `cativa_user_id`),
//! `CATIVA_BASE_URL`, `CATIVA_API_KEY`, `SYNC_DATABASE_URL`, `SYNC_TENANT`, `SYNC_CONFIG`.
//! Point the Cativa Console's `user_created` listener at `<public URL>/webhooks/cativa`.
//!
//! In sandbox mode it demonstrates itself: the Cativa sandbox is pointed at the receiver,
//! five users are created through the Cativa API, their signed `user_created` webhooks
//! arrive, and the program prints the HubSpot contacts they became, then exits.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use cativa_client::NewUser;
use cativa_crm_sync_examples::receiver::{ReceiverState, listen_addr, router, serve_until};
use cativa_crm_sync_examples::settings::Settings;
use cativa_crm_sync_examples::setup::{Crm, Endpoints, StoreFallback, hubspot_source, open_store};
use cativa_crm_sync_examples::worker::shutdown_signal;
use cativa_crm_sync_examples::{ExampleError, init_tracing};
use crm_hubspot::model::PropertyCreate;
use crm_hubspot::{HubSpotSink, SinkConfig};
use sync_core::{Email, TenantId};
use sync_engine::SyncEngine;
use tokio::sync::Notify;

#[tokio::main]
async fn main() -> Result<(), ExampleError> {
    init_tracing();
    let settings = Settings::from_env()?;
    let endpoints = Endpoints::connect(&settings, Crm::HubSpot).await?;
    println!("{}", endpoints.notice);
    let sandbox_mode = endpoints.sandbox.is_some();
    let addr = listen_addr(
        std::env::args().skip(1),
        |v| std::env::var(v).ok(),
        if sandbox_mode {
            "127.0.0.1:0"
        } else {
            "127.0.0.1:8080"
        },
    )?;
    let fallback = if sandbox_mode {
        StoreFallback::TempDir
    } else {
        StoreFallback::File(PathBuf::from("cativa-sync.db"))
    };
    let store = open_store(&settings, fallback).await?;
    println!("Store: {}.", store.description);
    let tenant = TenantId::new(settings.tenant.clone());

    let hubspot = endpoints.hubspot()?.clone();
    let created = hubspot
        .ensure_contact_properties(&[PropertyCreate::cativa_user_id("contactinformation")])
        .await?;
    if !created.is_empty() {
        println!(
            "Created HubSpot contact properties: {}.",
            created.join(", ")
        );
    }
    let engine = SyncEngine::builder(settings.sync_config()?, store.store.clone())
        .source(Arc::new(hubspot_source(
            hubspot.clone(),
            &settings.hubspot_tags_property,
        )))
        .crm_sink(Arc::new(HubSpotSink::new(hubspot, SinkConfig::default())))
        .build();
    let state = ReceiverState {
        engine,
        tenant,
        // Cativa bodies do not name their event: the sandbox's listeners are told apart by
        // automation id (with a real tenant, CATIVA_AUTOMATION_EVENTS).
        cativa: settings.cativa_webhook_receiver(
            endpoints.cativa_webhook_secret.clone(),
            endpoints
                .sandbox
                .iter()
                .flat_map(|s| s.cativa().automation_events())
                .filter_map(|(event, id)| event.parse().ok().map(|e| (id, e))),
        )?,
        hubspot: None,
    };

    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    println!("Listening on http://{local}: POST /webhooks/cativa.");
    let done = Arc::new(Notify::new());
    let stop = {
        let done = done.clone();
        async move {
            tokio::select! {
                () = shutdown_signal() => {}
                () = done.notified() => {}
            }
        }
    };
    let server = tokio::spawn(serve_until(listener, router(Arc::new(state)), stop));

    if let Some(sandbox) = &endpoints.sandbox {
        sandbox
            .cativa()
            .set_webhook_target(Some(format!("http://{local}/webhooks/cativa")));
        let mut emails = Vec::new();
        for (i, (first, last)) in [
            ("Ana", "Souza"),
            ("João", "Silva"),
            ("Mary Jane", "Watson"),
            ("Zoë", "Müller"),
            ("Otávio", "Araújo"),
        ]
        .into_iter()
        .enumerate()
        {
            let email: Email = format!("provisioned.{i}@example.com")
                .parse()
                .map_err(sync_core::Error::from)?;
            let mut user = NewUser::new(email.clone());
            user.first_name = Some(first.to_owned());
            user.last_name = Some(last.to_owned());
            endpoints
                .cativa
                .create_user(&user, &format!("provision-demo-{i}"))
                .await?;
            emails.push(email);
        }
        println!(
            "Created {} users through the Cativa API; waiting for their user_created webhooks...",
            emails.len()
        );
        for email in &emails {
            let mut found = None;
            for _ in 0..100 {
                found = sandbox.hubspot().contacts_by_email(email.as_str()).pop();
                if found.is_some() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            match found {
                Some(c) => println!(
                    "  {email} -> HubSpot contact {} ({} {}, cativa_user_id {})",
                    c.id,
                    c.property("firstname").unwrap_or("-"),
                    c.property("lastname").unwrap_or("-"),
                    c.property("cativa_user_id").unwrap_or("-")
                ),
                None => println!("  {email} -> no HubSpot contact after 10 s (see the log)"),
            }
        }
        done.notify_one();
    }
    match server.await {
        Ok(result) => result?,
        Err(e) => return Err(ExampleError::Io(std::io::Error::other(e))),
    }
    println!("Stopped: in-flight deliveries finished.");
    endpoints.shutdown().await;
    Ok(())
}
