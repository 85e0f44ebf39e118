//! Disconnecting a tenant end to end on the sandboxes, for HubSpot and Salesforce: two
//! tenants install through the OAuth flows and have rows in a SQLite store (tokens sealed in
//! its credential table); a dry run counts and changes nothing; the disconnect revokes the
//! tenant's tokens (the sandbox refuses them from then on), deletes its credentials and
//! purges its rows, recording the purge by its counts; the other tenant is untouched.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::SystemTime;

use crm_hubspot::oauth::{HubSpotOAuthApp, HubSpotOAuthConfig};
use crm_hubspot::{HubSpotClient, ListOptions};
use crm_salesforce::{OAuthFlow, SalesforceClient, WebServerConfig, WebServerFlow};
use secrecy::{ExposeSecret, SecretBox, SecretSlice, SecretString};
use sync_core::ports::{
    AuditEntry, AuditOutcome, CredentialStore, PURGE_ACTION, PurgeCounts, Store, TokenRevoker,
};
use sync_core::{CrmKind, Cursor, Email, IdempotencyKey, Mapping, TenantId};
use sync_engine::{DisconnectOptions, DisconnectReport, RevokeOutcome, SyncEngine};
use sync_http::OAuthStateKey;
use sync_sandbox::hubspot::{HubSpotConfig, HubSpotSandbox};
use sync_sandbox::salesforce::{SalesforceConfig, SalesforceSandbox};
use sync_store::{CredentialKey, CredentialKeys, SqliteStore};

const REDIRECT: &str = "https://partner.example/oauth/callback";

struct World {
    store: Arc<dyn Store>,
    vault: Arc<dyn CredentialStore>,
    engine: SyncEngine,
}

async fn world() -> World {
    let db = SqliteStore::open_in_memory().await.unwrap();
    let key = CredentialKey::new("k1", SecretBox::new(Box::new([9u8; 32]))).unwrap();
    let vault: Arc<dyn CredentialStore> = Arc::new(db.credential_store(CredentialKeys::new(key)));
    let store: Arc<dyn Store> = Arc::new(db);
    let engine =
        SyncEngine::builder(cativa_crm_sync_tests::config().unwrap(), store.clone()).build();
    World {
        store,
        vault,
        engine,
    }
}

fn state_key() -> OAuthStateKey {
    OAuthStateKey::new(SecretSlice::from(vec![5u8; 32])).unwrap()
}

/// Follows a consent page as the user's browser would: the (code, state) sent back.
async fn consent(url: &str) -> (String, String) {
    let browser = sync_http::reqwest::Client::builder()
        .redirect(sync_http::reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = browser.get(url).send().await.unwrap();
    assert!(resp.status().is_redirection(), "{}", resp.status());
    let back = url::Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap();
    let get = |n: &str| {
        back.query_pairs()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    (get("code"), get("state"))
}

/// One row of each kind a tenant's sync writes.
async fn seed(store: &Arc<dyn Store>, t: &TenantId) {
    let email = Email::parse("person@example.com").unwrap();
    let now = chrono::Utc::now();
    store
        .put_mapping(t, &Mapping::new(email, now))
        .await
        .unwrap();
    store
        .advance_checkpoint(t, "crm", "contacts", None, &Cursor::at(now))
        .await
        .unwrap();
    store.record_delivery(t, "delivery-1", now).await.unwrap();
    let key = IdempotencyKey::derive(&["disconnect-test"]);
    let entry = AuditEntry::new(
        now,
        "assign_badge",
        "person@example.com",
        AuditOutcome::Applied,
        key,
    );
    store.append_audit(t, &[entry]).await.unwrap();
}

fn seeded_counts() -> PurgeCounts {
    let mut c = PurgeCounts::default();
    c.mappings = 1;
    c.checkpoints = 1;
    c.deliveries = 1;
    c.audit = 1;
    // The credential store shares the database: its row is purged with the rest.
    c.credentials = 1;
    c
}

fn options(w: &World, revoker: Arc<dyn TokenRevoker>) -> DisconnectOptions {
    DisconnectOptions::new("ops@partner.example").with_credentials(w.vault.clone(), vec![revoker])
}

/// The store side after `a` was disconnected: its rows gone, the purge recorded by its
/// counts only, `b` untouched.
async fn assert_purged(
    w: &World,
    a: &TenantId,
    b: &TenantId,
    crm: CrmKind,
    report: &DisconnectReport,
) {
    assert_eq!(report.counts, seeded_counts());
    assert_eq!(report.revocations.len(), 1);
    assert_eq!(report.revocations[0].outcome, RevokeOutcome::Revoked);
    assert!(report.revocations[0].credentials_deleted);
    assert!(w.vault.load_credentials(a, &crm).await.unwrap().is_none());
    assert!(w.vault.load_credentials(b, &crm).await.unwrap().is_some());
    assert_eq!(w.store.count_mappings(a).await.unwrap(), 0);
    assert!(w.store.recent_audit(a, 10).await.unwrap().is_empty());
    let log = w.store.operator_actions(a, 10).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].action, PURGE_ACTION);
    let note = log[0].note.clone().unwrap_or_default();
    assert!(note.contains("mappings=1") && !note.contains('@'), "{note}");
    assert_eq!(w.store.count_mappings(b).await.unwrap(), 1);
    assert_eq!(w.store.recent_audit(b, 10).await.unwrap().len(), 1);
}

/// A second disconnect finds nothing to revoke and counts only the first one's record.
async fn assert_second_disconnect_is_empty(
    w: &World,
    a: &TenantId,
    revoker: Arc<dyn TokenRevoker>,
) {
    let again = w.engine.disconnect(a, &options(w, revoker)).await.unwrap();
    assert_eq!(again.revocations[0].outcome, RevokeOutcome::NotConnected);
    let mut only_the_record = PurgeCounts::default();
    only_the_record.operator_actions = 1;
    assert_eq!(again.counts, only_the_record);
}

async fn hubspot_install(
    app: &HubSpotOAuthApp,
    w: &World,
    t: &TenantId,
) -> crm_hubspot::oauth::HubSpotTokens {
    let key = state_key();
    let (code, state) = consent(&app.begin(&key, t, SystemTime::now())).await;
    let installed = app
        .complete(&key, &state, &code, SystemTime::now())
        .await
        .unwrap();
    assert_eq!(&installed.tenant, t);
    let creds = installed
        .tokens
        .clone()
        .into_credentials(chrono::Utc::now());
    w.vault
        .save_credentials(t, &CrmKind::Hubspot, &creds)
        .await
        .unwrap();
    installed.tokens
}

async fn hubspot_call(hs: &HubSpotSandbox, token: &SecretString) -> Result<(), crm_hubspot::Error> {
    let client = HubSpotClient::builder()
        .base_url(hs.base_url())
        .access_token(token.clone())
        .build()?;
    client
        .list_contacts(&ListOptions::default())
        .await
        .map(|_| ())
}

#[tokio::test]
async fn hubspot_disconnect_revokes_deletes_and_purges_one_tenant() {
    let hs = HubSpotSandbox::start(HubSpotConfig::default())
        .await
        .unwrap();
    let base = hs.base_url().to_owned();
    let app = HubSpotOAuthApp::new(
        HubSpotOAuthConfig::new(
            sync_sandbox::hubspot::DEFAULT_CLIENT_ID,
            SecretString::from(sync_sandbox::hubspot::DEFAULT_CLIENT_SECRET),
            REDIRECT,
        )
        .with_hosts(format!("{base}/oauth/authorize"), base.clone()),
    )
    .unwrap();
    let w = world().await;
    let (a, b) = (TenantId::new("leaving"), TenantId::new("staying"));
    let a_tokens = hubspot_install(&app, &w, &a).await;
    let b_tokens = hubspot_install(&app, &w, &b).await;
    seed(&w.store, &a).await;
    seed(&w.store, &b).await;
    let revoker: Arc<dyn TokenRevoker> = Arc::new(app.clone());

    let dry = w
        .engine
        .disconnect(&a, &options(&w, revoker.clone()).dry_run(true))
        .await
        .unwrap();
    assert!(dry.dry_run);
    assert_eq!(dry.revocations[0].outcome, RevokeOutcome::WouldRevoke);
    assert_eq!(dry.counts, seeded_counts());
    hubspot_call(&hs, &a_tokens.access_token)
        .await
        .expect("a dry run revokes nothing");
    assert!(
        w.vault
            .load_credentials(&a, &CrmKind::Hubspot)
            .await
            .unwrap()
            .is_some()
    );

    let report = w
        .engine
        .disconnect(&a, &options(&w, revoker.clone()))
        .await
        .unwrap();
    assert!(report.all_revoked());
    assert_purged(&w, &a, &b, CrmKind::Hubspot, &report).await;
    let refused = hubspot_call(&hs, &a_tokens.access_token).await.unwrap_err();
    assert!(
        !refused
            .to_string()
            .contains(a_tokens.access_token.expose_secret())
    );
    assert!(app.refresh(&a_tokens.refresh_token).await.is_err());
    hubspot_call(&hs, &b_tokens.access_token)
        .await
        .expect("b still connected");
    app.refresh(&b_tokens.refresh_token)
        .await
        .expect("b's refresh token still good");

    assert_second_disconnect_is_empty(&w, &a, revoker).await;
}

async fn salesforce_install(
    flow: &WebServerFlow,
    w: &World,
    t: &TenantId,
) -> crm_salesforce::TokenResponse {
    let key = state_key();
    let auth = flow.begin(&key, t, SystemTime::now());
    let (code, state) = consent(&auth.url).await;
    let installed = flow
        .complete(&key, &state, &code, &auth.verifier, SystemTime::now())
        .await
        .unwrap();
    assert_eq!(&installed.tenant, t);
    let creds = installed.tokens.clone().into_credentials();
    w.vault
        .save_credentials(t, &CrmKind::Salesforce, &creds)
        .await
        .unwrap();
    installed.tokens
}

async fn salesforce_call(
    token: &SecretString,
    instance: &str,
) -> Result<(), crm_salesforce::Error> {
    let client = SalesforceClient::builder()
        .flow(OAuthFlow::AccessToken(token.clone()))
        .instance_url(instance)
        .build()?;
    client.limits().await.map(|_| ())
}

#[tokio::test]
async fn salesforce_disconnect_revokes_deletes_and_purges_one_tenant() {
    let sf = SalesforceSandbox::start(SalesforceConfig::default())
        .await
        .unwrap();
    let flow = WebServerFlow::new(
        WebServerConfig::new(
            sync_sandbox::salesforce::DEFAULT_CLIENT_ID,
            Some(SecretString::from(
                sync_sandbox::salesforce::DEFAULT_CLIENT_SECRET,
            )),
            REDIRECT,
        )
        .with_login_url(sf.base_url()),
    )
    .unwrap();
    let w = world().await;
    let (a, b) = (TenantId::new("leaving"), TenantId::new("staying"));
    let a_tokens = salesforce_install(&flow, &w, &a).await;
    let b_tokens = salesforce_install(&flow, &w, &b).await;
    seed(&w.store, &a).await;
    seed(&w.store, &b).await;
    let revoker: Arc<dyn TokenRevoker> = Arc::new(flow.clone());

    let dry = w
        .engine
        .disconnect(&a, &options(&w, revoker.clone()).dry_run(true))
        .await
        .unwrap();
    assert_eq!(dry.revocations[0].outcome, RevokeOutcome::WouldRevoke);
    assert_eq!(dry.counts, seeded_counts());
    salesforce_call(&a_tokens.access_token, &a_tokens.instance_url)
        .await
        .expect("a dry run revokes nothing");

    let report = w
        .engine
        .disconnect(&a, &options(&w, revoker.clone()))
        .await
        .unwrap();
    assert_purged(&w, &a, &b, CrmKind::Salesforce, &report).await;
    let refused = salesforce_call(&a_tokens.access_token, &a_tokens.instance_url)
        .await
        .unwrap_err();
    assert!(refused.stops_run(), "{refused}");
    let refresh = a_tokens.refresh_token.clone().unwrap();
    assert!(flow.refresh(&refresh).await.is_err());
    salesforce_call(&b_tokens.access_token, &b_tokens.instance_url)
        .await
        .expect("b still connected");

    assert_second_disconnect_is_empty(&w, &a, revoker).await;
}

/// A revocation that fails (the CRM unreachable) stops the disconnect before anything is
/// deleted, unless forced.
#[tokio::test]
async fn a_failed_revocation_deletes_nothing_unless_forced() {
    let hs = HubSpotSandbox::start(HubSpotConfig::default())
        .await
        .unwrap();
    let base = hs.base_url().to_owned();
    let config = |api: String| {
        HubSpotOAuthConfig::new(
            sync_sandbox::hubspot::DEFAULT_CLIENT_ID,
            SecretString::from(sync_sandbox::hubspot::DEFAULT_CLIENT_SECRET),
            REDIRECT,
        )
        .with_hosts(format!("{base}/oauth/authorize"), api)
    };
    let app = HubSpotOAuthApp::new(config(base.clone())).unwrap();
    let w = world().await;
    let a = TenantId::new("leaving");
    hubspot_install(&app, &w, &a).await;
    seed(&w.store, &a).await;
    // Nothing listens on port 9 of 127.0.0.1 (discard): the revocation cannot reach HubSpot.
    let unreachable: Arc<dyn TokenRevoker> =
        Arc::new(HubSpotOAuthApp::new(config("http://127.0.0.1:9".into())).unwrap());

    let err = w
        .engine
        .disconnect(&a, &options(&w, unreachable.clone()))
        .await
        .unwrap_err();
    assert!(!err.to_string().is_empty());
    assert!(
        w.vault
            .load_credentials(&a, &CrmKind::Hubspot)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(w.store.count_mappings(&a).await.unwrap(), 1);

    let forced = w
        .engine
        .disconnect(&a, &options(&w, unreachable).force(true))
        .await
        .unwrap();
    assert!(matches!(
        forced.revocations[0].outcome,
        RevokeOutcome::Failed(_)
    ));
    assert!(!forced.all_revoked());
    assert!(
        w.vault
            .load_credentials(&a, &CrmKind::Hubspot)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(forced.counts, seeded_counts());
}
