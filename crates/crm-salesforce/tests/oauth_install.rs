#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The web-server flow with PKCE end to end against the Salesforce sandbox (127.0.0.1):
//! consent, code exchange, a REST call with the token, refresh, revoke.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crm_salesforce::{Error, OAuthFlow, SalesforceClient, WebServerConfig, WebServerFlow};
use secrecy::{ExposeSecret, SecretSlice, SecretString};
use sync_core::TenantId;
use sync_http::{OAuthStateKey, StateError};
use sync_sandbox::salesforce::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, SANDBOX_ORG_ID, SalesforceConfig, SalesforceSandbox,
};

const REDIRECT: &str = "https://partner.example/oauth/salesforce/callback";

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

fn flow(sf: &SalesforceSandbox) -> WebServerFlow {
    WebServerFlow::new(
        WebServerConfig::new(
            DEFAULT_CLIENT_ID,
            Some(SecretString::from(DEFAULT_CLIENT_SECRET)),
            REDIRECT,
        )
        .with_login_url(sf.base_url()),
    )
    .unwrap()
}

fn key() -> OAuthStateKey {
    OAuthStateKey::new(SecretSlice::from(vec![3u8; 32])).unwrap()
}

/// Follows the consent page as the user's browser would, up to the redirect back.
async fn consent(url: &str) -> (String, String) {
    let browser = sync_http::tls::client_builder()
        .redirect(sync_http::reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = browser.get(url).send().await.unwrap();
    assert!(resp.status().is_redirection(), "{}", resp.status());
    let back = url::Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap();
    assert!(back.as_str().starts_with(REDIRECT), "{back}");
    let get = |n: &str| {
        back.query_pairs()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    (get("code"), get("state"))
}

async fn rest_call(access: &SecretString, instance: &str) -> Result<(), Error> {
    let client = SalesforceClient::builder()
        .flow(OAuthFlow::AccessToken(access.clone()))
        .instance_url(instance)
        .build()?;
    client.limits().await.map(|_| ())
}

#[tokio::test]
async fn install_with_pkce_call_refresh_revoke() {
    let sf = SalesforceSandbox::start(SalesforceConfig::default())
        .await
        .unwrap();
    let flow = flow(&sf);
    let tenant = TenantId::new("tenant-sf");
    let auth = flow.begin(&key(), &tenant, at(1_000));
    assert!(
        auth.url.contains("code_challenge_method=S256"),
        "{}",
        auth.url
    );
    let (code, state) = consent(&auth.url).await;
    assert_eq!(state, auth.state);

    let installed = flow
        .complete(&key(), &state, &code, &auth.verifier, at(1_005))
        .await
        .unwrap();
    assert_eq!(installed.tenant, tenant);
    assert_eq!(installed.org_id.as_deref(), Some(SANDBOX_ORG_ID));
    let tokens = installed.tokens;
    assert_eq!(tokens.instance_url, sf.base_url());
    let refresh = tokens
        .refresh_token
        .clone()
        .expect("the web-server flow returns a refresh token");
    rest_call(&tokens.access_token, &tokens.instance_url)
        .await
        .unwrap();
    let stored = tokens.clone().into_credentials();
    assert_eq!(stored.account_id.as_deref(), Some(SANDBOX_ORG_ID));
    assert_eq!(stored.instance_url.as_deref(), Some(sf.base_url()));
    assert!(!format!("{stored:?}").contains(refresh.expose_secret()));

    let renewed = flow.refresh(&refresh).await.unwrap();
    assert_ne!(
        renewed.access_token.expose_secret(),
        tokens.access_token.expose_secret()
    );
    rest_call(&renewed.access_token, &renewed.instance_url)
        .await
        .unwrap();

    flow.revoke(&refresh).await.unwrap();
    let err = flow.refresh(&refresh).await.unwrap_err();
    assert!(
        matches!(err, Error::OAuth { ref code, .. } if code == "invalid_grant"),
        "{err}"
    );
    assert!(!err.to_string().contains(refresh.expose_secret()));
    // Revoking the refresh token took its access tokens along.
    let refused = rest_call(&renewed.access_token, &renewed.instance_url)
        .await
        .unwrap_err();
    assert!(refused.stops_run(), "{refused}");
}

#[tokio::test]
async fn a_wrong_verifier_or_forged_state_exchanges_nothing() {
    let sf = SalesforceSandbox::start(SalesforceConfig::default())
        .await
        .unwrap();
    let flow = flow(&sf);
    let auth = flow.begin(&key(), &TenantId::new("t"), at(1_000));
    let (code, state) = consent(&auth.url).await;

    let other = OAuthStateKey::new(SecretSlice::from(vec![9u8; 32])).unwrap();
    let err = flow
        .complete(&other, &state, &code, &auth.verifier, at(1_001))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::OAuthState(StateError::BadSignature)),
        "{err}"
    );

    let wrong = SecretString::from("x".repeat(43));
    let err = flow
        .complete(&key(), &state, &code, &wrong, at(1_001))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::OAuth { ref code, .. } if code == "invalid_grant"),
        "{err}"
    );
    // The code was spent on the failed attempt, as a real authorization server does.
    let err = flow
        .complete(&key(), &state, &code, &auth.verifier, at(1_001))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::OAuth { .. }), "{err}");
}
