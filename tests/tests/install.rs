//! Connecting an account over HTTP, for both CRMs, against the sandbox's OAuth endpoints:
//! `GET /connect/{crm}?tenant=...` redirects to the consent page, the consent page redirects
//! back to `GET /oauth/{crm}/callback`, and the service saves the tenant's credentials
//! (sealed in the SQLite file: the raw bytes never hold the token), registers the tenant for
//! routing, and a sync of that tenant then runs on that tenant's own token. A forged or
//! expired state is refused with 400 and saves nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cativa_crm_sync_tests::{answer_code, config, fast_options, hubspot_source, salesforce_schema};
use crm_hubspot::HubSpotClient;
use crm_hubspot::oauth::{HubSpotOAuthApp, HubSpotOAuthConfig};
use crm_salesforce::{
    OAuthFlow, SalesforceClient, SalesforceSource, WebServerConfig, WebServerFlow,
};
use secrecy::{ExposeSecret, SecretBox, SecretSlice, SecretString};
use sync_core::ports::{
    CredentialStore, MemoryConnections, TenantConnections, TenantCredentials, TenantParts,
};
use sync_core::{CrmKind, TenantId};
use sync_engine::{SyncEngine, TenantTokens};
use sync_http::OAuthStateKey;
use sync_sandbox::datagen::DataGenConfig;
use sync_sandbox::{SandboxConfig, SandboxServer};
use sync_service::{
    CredentialConnections, HubSpotTenants, InstallHook, Installs, SalesforceTenants, Service,
};
use sync_store::{CredentialKey, CredentialKeys, SqliteStore};

fn state_key() -> OAuthStateKey {
    OAuthStateKey::new(SecretSlice::from(vec![7u8; 32])).unwrap()
}

/// Registers each connected tenant: its source built from the saved token, its account for
/// routing.
struct Register {
    registry: Arc<MemoryConnections>,
    hubspot_base: String,
    tags_property: String,
    tags_field: String,
}

impl InstallHook for Register {
    fn connected(
        &self,
        tenant: &TenantId,
        crm: &CrmKind,
        credentials: &TenantCredentials,
    ) -> Result<(), sync_core::Error> {
        let token = credentials.access_token.clone().unwrap();
        let parts = match crm {
            CrmKind::Hubspot => {
                let client = HubSpotClient::builder()
                    .base_url(&self.hubspot_base)
                    .access_token(token)
                    .build()
                    .unwrap();
                TenantParts::new()
                    .with_source(Arc::new(hubspot_source(client, &self.tags_property)))
            }
            _ => {
                let client = SalesforceClient::builder()
                    .flow(OAuthFlow::AccessToken(token))
                    .instance_url(credentials.instance_url.clone().unwrap())
                    .build()
                    .unwrap();
                let schema = salesforce_schema(&self.tags_field);
                TenantParts::new()
                    .with_source(Arc::new(SalesforceSource::new(client, schema).unwrap()))
            }
        };
        self.registry.insert(tenant.clone(), parts);
        if let Some(account) = &credentials.account_id {
            self.registry
                .link_account(tenant.clone(), crm.clone(), account.clone());
        }
        Ok(())
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

fn raw_bytes(dir: &std::path::Path) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        all.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    all
}

/// A browser that does not follow redirects: each hop is checked.
fn browser() -> sync_http::reqwest::Client {
    sync_http::reqwest::Client::builder()
        .redirect(sync_http::reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn location(url: &str) -> String {
    let resp = browser().get(url).send().await.unwrap();
    assert!(resp.status().is_redirection(), "{url}: {}", resp.status());
    resp.headers()["location"].to_str().unwrap().to_owned()
}

/// connect -> consent page -> callback; the callback's status and body.
async fn install(base: &str, crm: &str, tenant: &str) -> (u16, String) {
    let connect = format!("{base}/connect/{crm}?tenant={tenant}");
    let resp = browser().get(&connect).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 302, "{connect}");
    let consent = resp.headers()["location"].to_str().unwrap().to_owned();
    assert!(!consent.starts_with(base), "{consent}");
    let back = location(&consent).await;
    assert!(
        back.starts_with(&format!("{base}/oauth/{crm}/callback")),
        "{back}"
    );
    let resp = browser().get(&back).send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// The sandbox, the SQLite file's directory, the credential vault, and the OAuth apps of
/// both CRMs pointed back at `base`.
struct Setup {
    sandbox: SandboxServer,
    dir: tempfile::TempDir,
    db: SqliteStore,
    vault: Arc<dyn CredentialStore>,
    listener: tokio::net::TcpListener,
    base: String,
    hubspot: HubSpotOAuthApp,
    salesforce: WebServerFlow,
}

async fn setup() -> Setup {
    let sandbox = SandboxServer::start(SandboxConfig::default())
        .await
        .unwrap();
    sandbox
        .seed_people(&DataGenConfig::default().with_contacts(12).with_seed(5))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = SqliteStore::open(dir.path().join("sync.db")).await.unwrap();
    let key = CredentialKey::new("k1", SecretBox::new(Box::new([9u8; 32]))).unwrap();
    let vault: Arc<dyn CredentialStore> = Arc::new(db.credential_store(CredentialKeys::new(key)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let hs = sandbox.hubspot().base_url().to_owned();
    let hubspot = HubSpotOAuthApp::new(
        HubSpotOAuthConfig::new(
            sync_sandbox::hubspot::DEFAULT_CLIENT_ID,
            SecretString::from(sync_sandbox::hubspot::DEFAULT_CLIENT_SECRET),
            format!("{base}/oauth/hubspot/callback"),
        )
        .with_hosts(format!("{hs}/oauth/authorize"), hs.clone()),
    )
    .unwrap();
    let salesforce = WebServerFlow::new(
        WebServerConfig::new(
            sync_sandbox::salesforce::DEFAULT_CLIENT_ID,
            Some(SecretString::from(
                sync_sandbox::salesforce::DEFAULT_CLIENT_SECRET,
            )),
            format!("{base}/oauth/salesforce/callback"),
        )
        .with_login_url(sandbox.salesforce().base_url()),
    )
    .unwrap();
    Setup {
        sandbox,
        dir,
        db,
        vault,
        listener,
        base,
        hubspot,
        salesforce,
    }
}

/// Serves `service` on the setup's listener.
fn serve(listener: tokio::net::TcpListener, service: &Service) -> tokio::task::JoinHandle<()> {
    let app = sync_service::router(service);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_crms_connect_over_http_and_a_sync_runs_on_the_saved_token() {
    let Setup {
        sandbox,
        dir,
        db,
        vault,
        listener,
        base,
        hubspot,
        salesforce,
    } = setup().await;
    let registry = Arc::new(MemoryConnections::new());
    let engine = SyncEngine::builder(config().unwrap(), Arc::new(db.clone()))
        .connections(registry.clone())
        .options(fast_options())
        .build();
    let hs = sandbox.hubspot().base_url().to_owned();
    let hook = Register {
        registry: registry.clone(),
        hubspot_base: hs,
        tags_property: sandbox.hubspot().tags_property().to_owned(),
        tags_field: sandbox.salesforce().tags_field().to_owned(),
    };
    let installs = Installs::new(state_key(), vault.clone())
        .hubspot(hubspot)
        .salesforce(salesforce)
        .on_connected(Arc::new(hook));
    let service = Service::multi_tenant_builder(engine.clone(), TenantId::new("home"))
        .installs(installs)
        .build();
    let server = serve(listener, &service);

    for (crm, kind, tenant) in [
        ("hubspot", CrmKind::Hubspot, TenantId::new("acme")),
        ("salesforce", CrmKind::Salesforce, TenantId::new("globex")),
    ] {
        let (status, body) = install(&base, crm, tenant.as_str()).await;
        assert_eq!(status, 200, "{crm}: {body}");
        assert_eq!(answer_code(&body).as_deref(), Some("connected"), "{body}");
        let saved = vault
            .load_credentials(&tenant, &kind)
            .await
            .unwrap()
            .unwrap();
        let account = saved.account_id.clone().unwrap();
        let expected = match kind {
            CrmKind::Hubspot => sandbox.hubspot().portal_id().to_string(),
            _ => sync_sandbox::salesforce::SANDBOX_ORG_ID.to_owned(),
        };
        assert_eq!(account, expected, "{crm}: the account learned");
        assert!(body.contains(&expected), "{body}");
        if kind == CrmKind::Salesforce {
            assert_eq!(
                saved.instance_url.as_deref(),
                Some(sandbox.salesforce().base_url())
            );
        }
        // Routing finds the tenant by its account.
        assert_eq!(
            registry.tenant_for_account(&kind, &account).await.unwrap(),
            Some(tenant.clone())
        );
        // A sync of that tenant runs on the token the install saved.
        let token = saved.access_token.unwrap().expose_secret().to_owned();
        assert_ne!(token, sync_sandbox::hubspot::DEFAULT_ACCESS_TOKEN);
        let report = engine.run_full_reconcile(&tenant).await.unwrap();
        assert!(report.stopped.is_none(), "{crm}: {report}");
        assert!(report.read > 0, "{crm}: {report}");
        // Sealed at rest: the raw database never holds the token.
        assert!(
            !contains(&raw_bytes(dir.path()), &token),
            "{crm}: token in the file"
        );
    }

    // Forged, expired and replayed states: 400, nothing saved.
    let expired = state_key().issue(
        "mallory",
        UNIX_EPOCH + Duration::from_secs(1_000),
        Duration::from_secs(600),
    );
    let forged = OAuthStateKey::new(SecretSlice::from(vec![1u8; 32]))
        .unwrap()
        .issue("mallory", SystemTime::now(), Duration::from_secs(600));
    for crm in ["hubspot", "salesforce"] {
        for state in [&expired, &forged, &"not-a-state".to_owned()] {
            let url = format!("{base}/oauth/{crm}/callback?code=anything&state={state}");
            let resp = browser().get(&url).send().await.unwrap();
            let status = resp.status().as_u16();
            let body = resp.text().await.unwrap();
            assert_eq!(status, 400, "{crm}: {body}");
            assert_eq!(
                answer_code(&body).as_deref(),
                Some("invalid_state"),
                "{body}"
            );
        }
    }
    for kind in [CrmKind::Hubspot, CrmKind::Salesforce] {
        assert!(
            vault
                .load_credentials(&TenantId::new("mallory"), &kind)
                .await
                .unwrap()
                .is_none()
        );
    }
    // Without a tenant, /connect refuses.
    let resp = browser()
        .get(format!("{base}/connect/hubspot"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    server.abort();
}

/// The store-backed connections: installs register the tenant, each tenant's parts are
/// built from its saved credentials (HubSpot through `TenantTokens`, which renews an expired
/// token and saves the new one), cached, and found again after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credential_connections_serve_each_tenant_from_its_saved_credentials() {
    let Setup {
        sandbox,
        dir: _dir,
        db,
        vault,
        listener,
        base,
        hubspot,
        salesforce,
    } = setup().await;
    let connections = || {
        let tokens = TenantTokens::new(
            vault.clone(),
            Arc::new(hubspot.clone()),
            Arc::new(sync_engine::SystemClock),
        );
        let mapping = crm_hubspot::ContactMapping::default().with_tags(
            crm_hubspot::TagSource::CheckboxProperty(sandbox.hubspot().tags_property().to_owned()),
        );
        Arc::new(
            CredentialConnections::new(vault.clone())
                .hubspot(
                    HubSpotTenants::new(
                        Arc::new(tokens),
                        crm_hubspot::SourceConfig::new(mapping),
                        crm_hubspot::SinkConfig::default(),
                    )
                    .with_base_url(sandbox.hubspot().base_url()),
                )
                .salesforce(SalesforceTenants::new(
                    sync_sandbox::salesforce::DEFAULT_CLIENT_ID,
                    Some(SecretString::from(
                        sync_sandbox::salesforce::DEFAULT_CLIENT_SECRET,
                    )),
                    sandbox.salesforce().base_url(),
                    salesforce_schema(sandbox.salesforce().tags_field()),
                )),
        )
    };
    let registry = connections();
    let engine = SyncEngine::builder(config().unwrap(), Arc::new(db.clone()))
        .connections(registry.clone())
        .options(fast_options())
        .build();
    let installs = Installs::new(state_key(), vault.clone())
        .hubspot(hubspot.clone())
        .salesforce(salesforce)
        .on_connected(registry.clone());
    let service = Service::multi_tenant_builder(engine.clone(), TenantId::new("home"))
        .installs(installs)
        .build();
    let server = serve(listener, &service);

    let (acme, globex) = (TenantId::new("acme"), TenantId::new("globex"));
    for (crm, tenant) in [("hubspot", &acme), ("salesforce", &globex)] {
        let (status, body) = install(&base, crm, tenant.as_str()).await;
        assert_eq!(status, 200, "{crm}: {body}");
    }
    let portal = sandbox.hubspot().portal_id().to_string();
    let org = sync_sandbox::salesforce::SANDBOX_ORG_ID;
    assert_eq!(
        registry
            .tenant_for_account(&CrmKind::Hubspot, &portal)
            .await
            .unwrap(),
        Some(acme.clone())
    );
    assert_eq!(
        registry
            .tenant_for_account(&CrmKind::Salesforce, org)
            .await
            .unwrap(),
        Some(globex.clone())
    );
    for tenant in [&acme, &globex] {
        let report = engine.run_full_reconcile(tenant).await.unwrap();
        assert!(
            report.stopped.is_none() && report.read > 0,
            "{tenant}: {report}"
        );
    }
    // Built once, then cached.
    let (a, b) = (
        registry.parts(&acme).await.unwrap(),
        registry.parts(&acme).await.unwrap(),
    );
    assert!(Arc::ptr_eq(
        a.source.as_ref().unwrap(),
        b.source.as_ref().unwrap()
    ));
    assert!(matches!(
        registry.parts(&TenantId::new("nobody")).await,
        Err(sync_core::Error::UnknownTenant(_))
    ));

    // A restart: new connections know the tenants once loaded; HubSpot's expired token is
    // renewed through the saved refresh token and the new one saved.
    let before = vault
        .load_credentials(&acme, &CrmKind::Hubspot)
        .await
        .unwrap()
        .unwrap();
    sandbox.hubspot().expire_tokens();
    let restarted = connections();
    assert_eq!(
        restarted
            .tenant_for_account(&CrmKind::Hubspot, &portal)
            .await
            .unwrap(),
        None,
        "not indexed before load"
    );
    assert_eq!(
        restarted
            .load(&[acme.clone(), globex.clone()])
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        restarted
            .tenant_for_account(&CrmKind::Hubspot, &portal)
            .await
            .unwrap(),
        Some(acme.clone())
    );
    let engine = SyncEngine::builder(config().unwrap(), Arc::new(db.clone()))
        .connections(restarted.clone())
        .options(fast_options())
        .build();
    let report = engine.run_full_reconcile(&acme).await.unwrap();
    assert!(report.stopped.is_none() && report.read > 0, "{report}");
    let after = vault
        .load_credentials(&acme, &CrmKind::Hubspot)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(
        before.access_token.unwrap().expose_secret(),
        after.access_token.unwrap().expose_secret(),
        "the renewed token is saved"
    );
    // The disconnect hook: a forgotten tenant is no longer routed.
    assert!(restarted.forget(&acme).await.unwrap());
    assert_eq!(
        restarted
            .tenant_for_account(&CrmKind::Hubspot, &portal)
            .await
            .unwrap(),
        None
    );
    server.abort();
}
