#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The OAuth install flow end to end against the HubSpot sandbox (127.0.0.1): consent,
//! code exchange, token info, a CRM call with the token, refresh, revoke.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crm_hubspot::oauth::{HubSpotOAuthApp, HubSpotOAuthConfig};
use crm_hubspot::{Error, HubSpotClient, ListOptions};
use secrecy::{ExposeSecret, SecretSlice, SecretString};
use sync_core::TenantId;
use sync_http::{OAuthStateKey, StateError};
use sync_sandbox::hubspot::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, HubSpotConfig, HubSpotSandbox,
};

const REDIRECT: &str = "https://partner.example/oauth/hubspot/callback";

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn app(hs: &HubSpotSandbox) -> HubSpotOAuthApp {
    let base = hs.base_url();
    HubSpotOAuthApp::new(
        HubSpotOAuthConfig::new(
            DEFAULT_CLIENT_ID,
            SecretString::from(DEFAULT_CLIENT_SECRET),
            REDIRECT,
        )
        .with_optional_scopes(["crm.lists.read", "not.offered.scope"])
        .with_hosts(format!("{base}/oauth/authorize"), base.to_owned()),
    )
    .unwrap()
}

/// Follows the consent page as the user's browser would, up to the redirect back.
async fn consent(url: &str) -> url::Url {
    let browser = sync_http::tls::client_builder()
        .redirect(sync_http::reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = browser.get(url).send().await.unwrap();
    assert!(resp.status().is_redirection(), "{}", resp.status());
    let location = resp.headers()["location"].to_str().unwrap();
    let back = url::Url::parse(location).unwrap();
    assert!(back.as_str().starts_with(REDIRECT), "{back}");
    back
}

fn param(url: &url::Url, name: &str) -> String {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

fn api_client(hs: &HubSpotSandbox, token: &SecretString) -> HubSpotClient {
    HubSpotClient::builder()
        .base_url(hs.base_url())
        .access_token(token.clone())
        .build()
        .unwrap()
}

#[tokio::test]
async fn install_exchange_call_refresh_revoke() {
    let hs = HubSpotSandbox::start(HubSpotConfig::default())
        .await
        .unwrap();
    let app = app(&hs);
    let key = OAuthStateKey::new(SecretSlice::from(vec![42u8; 32])).unwrap();
    let tenant = TenantId::new("tenant-a");

    let back = consent(&app.begin(&key, &tenant, at(1_000))).await;
    let (code, state) = (param(&back, "code"), param(&back, "state"));
    let installed = app.complete(&key, &state, &code, at(1_010)).await.unwrap();
    assert_eq!(installed.tenant, tenant);
    let tokens = installed.tokens;
    assert_eq!(tokens.hub_id, Some(hs.portal_id()));
    assert!(tokens.scopes.contains(&"crm.lists.read".to_owned()));
    assert!(!tokens.scopes.contains(&"not.offered.scope".to_owned()));

    // The code is good once.
    assert!(app.exchange_code(&code).await.is_err());

    let info = app.access_token_info(&tokens.access_token).await.unwrap();
    assert_eq!(info.hub_id, hs.portal_id());
    assert!(
        info.scopes
            .contains(&"crm.objects.contacts.write".to_owned())
    );

    let client = api_client(&hs, &tokens.access_token);
    client.list_contacts(&ListOptions::default()).await.unwrap();

    let refreshed = app.refresh(&tokens.refresh_token).await.unwrap();
    assert_ne!(
        refreshed.access_token.expose_secret(),
        tokens.access_token.expose_secret()
    );
    api_client(&hs, &refreshed.access_token)
        .list_contacts(&ListOptions::default())
        .await
        .unwrap();

    app.revoke(&refreshed.refresh_token).await.unwrap();
    // The access tokens issued with the revoked refresh token go with it.
    for access in [&tokens.access_token, &refreshed.access_token] {
        let err = api_client(&hs, access)
            .list_contacts(&ListOptions::default())
            .await
            .unwrap_err();
        assert!(!err.to_string().contains(access.expose_secret()), "{err}");
        assert!(app.access_token_info(access).await.is_err());
    }
    let refused = app.refresh(&refreshed.refresh_token).await.unwrap_err();
    let text = refused.to_string();
    assert!(
        !text.contains(refreshed.refresh_token.expose_secret()),
        "{text}"
    );
    // Revoking twice is not an error: disconnect can be retried.
    app.revoke(&refreshed.refresh_token).await.unwrap();
}

#[tokio::test]
async fn a_forged_or_expired_state_exchanges_nothing() {
    let hs = HubSpotSandbox::start(HubSpotConfig::default())
        .await
        .unwrap();
    let app = app(&hs);
    let key = OAuthStateKey::new(SecretSlice::from(vec![42u8; 32])).unwrap();
    let other = OAuthStateKey::new(SecretSlice::from(vec![7u8; 32])).unwrap();
    let back = consent(&app.begin(&other, &TenantId::new("victim"), at(1_000))).await;
    let (code, state) = (param(&back, "code"), param(&back, "state"));
    let err = app
        .complete(&key, &state, &code, at(1_001))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::OAuthState(StateError::BadSignature)),
        "{err}"
    );
    let back = consent(&app.begin(&key, &TenantId::new("t"), at(1_000))).await;
    let err = app
        .complete(
            &key,
            &param(&back, "state"),
            &param(&back, "code"),
            at(5_000),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::OAuthState(StateError::Expired)),
        "{err}"
    );
    // The refused callbacks left their codes unused: the right state still works.
    app.complete(
        &key,
        &param(&back, "state"),
        &param(&back, "code"),
        at(1_100),
    )
    .await
    .unwrap();
}

struct At(chrono::DateTime<chrono::Utc>);
impl sync_engine::Clock for At {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.0
    }
}

/// An installed tenant's tokens in a credential store: two concurrent callers after the
/// access token expired make one token call, and the refresh token stays usable.
#[tokio::test]
async fn stored_tokens_renew_once_for_concurrent_callers() {
    use std::sync::Arc;

    use chrono::TimeZone;
    use sync_core::ports::CredentialStore;
    use sync_core::{CrmKind, MemoryStore};

    let hs = HubSpotSandbox::start(HubSpotConfig::default())
        .await
        .unwrap();
    let app = app(&hs);
    let key = OAuthStateKey::new(SecretSlice::from(vec![42u8; 32])).unwrap();
    let tenant = TenantId::new("tenant-a");
    let back = consent(&app.begin(&key, &tenant, at(1_000))).await;
    let installed = app
        .complete(
            &key,
            &param(&back, "state"),
            &param(&back, "code"),
            at(1_001),
        )
        .await
        .unwrap();
    let t0 = chrono::Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap();
    let store = Arc::new(MemoryStore::new());
    let creds = installed.tokens.into_credentials(t0);
    assert_eq!(creds.account_id, Some(hs.portal_id().to_string()));
    store
        .save_credentials(&tenant, &CrmKind::Hubspot, &creds)
        .await
        .unwrap();

    // An hour later the 30-minute token has expired.
    let later = Arc::new(At(t0 + chrono::Duration::hours(1)));
    let tokens = sync_engine::TenantTokens::new(store.clone(), Arc::new(app.clone()), later);
    let issued_before = hs.tokens_issued();
    let (a, b) = futures::join!(tokens.access_token(&tenant), tokens.access_token(&tenant));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.expose_secret(), b.expose_secret());
    assert_eq!(
        hs.tokens_issued(),
        issued_before + 1,
        "one token call for two callers"
    );
    api_client(&hs, &a)
        .list_contacts(&ListOptions::default())
        .await
        .unwrap();
    let saved = store
        .load_credentials(&tenant, &CrmKind::Hubspot)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        saved.access_token.unwrap().expose_secret(),
        a.expose_secret()
    );
    app.refresh(&saved.refresh_token.unwrap()).await.unwrap();
}
