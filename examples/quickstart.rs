//! Quickstart: a full sync HubSpot -> Cativa badges, on sandbox servers, with a SQLite store.
//!
//! ```text
//! cargo run --example quickstart [-- --serve]
//! ```
//!
//! Starts fake HubSpot and Cativa servers on 127.0.0.1 and seeds 1,000 people. Community
//! users reach the store as in production: signed `user_created` webhooks posted to the
//! service's route. Then it prints the plan of a full sync (tag `Pago Anual` grants Premium),
//! runs it and prints the report, last as one JSON line. No account, nothing left behind.
//! With `--serve` it then keeps serving the status page (URL and sign-in token printed;
//! `STATUS_TOKEN` sets the token) and the status JSON until Ctrl-C.

use std::sync::Arc;

use cativa_crm_sync::cativa::webhook::{SignatureVerifier, WebhookReceiver};
use cativa_crm_sync::hubspot::{ContactMapping, SinkConfig, SourceConfig, TagSource};
use cativa_crm_sync::prelude::*;
use cativa_crm_sync::sandbox::cativa::{BadgeGrant, DEFAULT_API_KEY, SignatureMode};
use cativa_crm_sync::sandbox::datagen::DataGenConfig;
use cativa_crm_sync::sandbox::hubspot::DEFAULT_ACCESS_TOKEN;
use cativa_crm_sync::sandbox::{SandboxConfig, SandboxServer};

/// The tag `Pago Anual` grants the sandbox's Premium badge (Cativa takes badge ids).
const RULES: &str = r#"badges = { Premium = "b0000000-0000-4000-8000-000000000001" }
badge_rules = [{ id = "annual-plan", grant = "Premium", when = { tag = "Pago Anual" } }]"#;
const PREMIUM: &str = "b0000000-0000-4000-8000-000000000001";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!(
        "Sandbox mode: the quickstart runs on fake HubSpot and Cativa servers on 127.0.0.1 (no account is touched)."
    );
    let sandbox = SandboxServer::start(SandboxConfig::default()).await?;
    let seed = DataGenConfig::default().with_contacts(1_000).with_seed(42);
    let (contacts, users) = (sandbox.seed_people(&seed)?.len(), sandbox.cativa().users());
    let n = users.len();
    println!("Seeded {contacts} HubSpot contacts and {n} Cativa users.");
    let dir = tempfile::tempdir()?;
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path().join("sync.db")).await?);
    let tenant = TenantId::new("quickstart");
    let config = SyncConfig::from_toml_str(RULES)?.validate()?;

    // 1. Community users arrive as signed user_created webhooks at the service's route.
    let emitter = sandbox.cativa();
    let verifier = SignatureVerifier::new(emitter.webhook_secret().clone())?;
    let recorder = SyncEngine::builder(config.clone(), store.clone()).build();
    let service = Service::builder(recorder, tenant.clone())
        .cativa(WebhookReceiver::new(verifier))
        .build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let url = format!("http://{addr}/webhooks/cativa/user_created");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(service.serve(listener, async {
        let _ = stopped.await;
    }));
    let mut accepted = 0;
    for user in &users {
        let delivery = emitter.user_created_delivery(&user.id)?;
        let answer = emitter
            .deliver(&url, &delivery, SignatureMode::Valid)
            .await?;
        accepted += usize::from(answer.status == 200 && answer.body.contains("accepted"));
    }
    let _ = stop.send(());
    server.await??;
    println!(
        "Recorded {accepted} community users from {} signed user_created webhooks (verified, deduplicated by execution id).",
        users.len()
    );
    // 2. The full sync: plan first (a dry run), then apply.
    let hubspot = HubSpotClient::builder()
        .base_url(sandbox.hubspot().base_url())
        .access_token(SecretString::from(DEFAULT_ACCESS_TOKEN))
        .build()?;
    let tags = TagSource::CheckboxProperty("cativa_tags".into());
    let mapping = ContactMapping::default().with_tags(tags);
    let source = HubSpotSource::new(hubspot.clone(), SourceConfig::new(mapping));
    let cativa = CativaClient::builder(SecretString::from(DEFAULT_API_KEY))
        .base_url(sandbox.cativa().base_url())
        .build()?;
    let engine = SyncEngine::builder(config, store)
        .source(Arc::new(source))
        .crm_sink(Arc::new(HubSpotSink::new(hubspot, SinkConfig::default())))
        .badge_sink(Arc::new(ApiBadgeSink::new(tenant.clone(), cativa)))
        .build();
    let mode = PlanMode::FullReconcile {
        scan_complete: false,
    };
    let plan = engine.plan(&tenant, mode).await?.to_string();
    let lines: Vec<&str> = plan.lines().collect();
    let shown = lines.len().min(25);
    let head = lines[..shown].join("\n");
    println!("\nPlan (dry run, nothing written):\n{head}");
    if let (true, Some(summary)) = (lines.len() > shown, lines.last()) {
        println!("... {} more lines\n{summary}", lines.len() - shown - 1);
    }
    let report = engine.run_full_reconcile(&tenant).await?;
    println!("\nFull sync HubSpot -> Cativa badges:\n{report}");
    let badges = sandbox.cativa().badges_by_user();
    let holds = |grants: &&Vec<_>| grants.iter().any(|g: &BadgeGrant| g.badge_id == PREMIUM);
    let premium = badges.values().filter(holds).count();
    println!("Cativa now shows {premium} users holding Premium (badge {PREMIUM}).");
    println!("{}", report.to_json_line());
    if std::env::args().any(|a| a == "--serve") {
        let token = std::env::var("STATUS_TOKEN").unwrap_or_else(|_| "quickstart".into());
        let service = Service::builder(engine, tenant).status_token(token.clone().into());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        println!(
            "Status page: http://{addr}/status/page (sign in with the token {token}); JSON: curl -H 'Authorization: Bearer {token}' http://{addr}/status ; Ctrl-C stops."
        );
        let stop = cativa_crm_sync::service::shutdown_signal();
        service.build().serve(listener, stop).await?;
    }
    sandbox.shutdown().await;
    Ok(())
}
