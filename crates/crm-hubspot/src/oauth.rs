//! The OAuth install flow of a public HubSpot app, as library calls a service wires to its
//! routes:
//!
//! 1. [`HubSpotOAuthApp::begin`]: the consent-page URL to send the user to, with a `state`
//!    bound to the tenant (see [`OAuthStateKey`]);
//! 2. [`HubSpotOAuthApp::complete`]: on the redirect back, checks the `state` and exchanges
//!    the code at `POST /oauth/v1/token` (`authorization_code` grant);
//! 3. [`HubSpotOAuthApp::access_token_info`] (`GET /oauth/v1/access-tokens/{token}`): the
//!    portal the install belongs to and the scopes granted;
//! 4. [`HubSpotOAuthApp::refresh`]: the `refresh_token` grant; HubSpot may rotate the
//!    refresh token, so keep the one returned;
//! 5. [`HubSpotOAuthApp::revoke`] (`DELETE /oauth/v1/refresh-tokens/{token}`) on disconnect.
//!
//! Tokens never appear in `Debug`, logs (paths that carry a token are logged as templates)
//! or this module's errors.

use std::fmt;
use std::time::{Duration, SystemTime};

use http::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sync_core::ports::{Revoked, TenantCredentials, TokenRefresher, TokenRevoker};
use sync_core::{CrmKind, RemoteError, RemoteErrorKind, TenantId};
use sync_http::{HttpClient, OAuthStateKey};

use crate::error::Error;

/// HubSpot's consent page.
pub const DEFAULT_AUTHORIZE_URL: &str = "https://app.hubspot.com/oauth/authorize";
/// How long a `state` from [`HubSpotOAuthApp::begin`] stays valid.
pub const STATE_TTL: Duration = Duration::from_secs(600);

/// A public app's OAuth settings.
#[derive(Clone)]
#[non_exhaustive]
pub struct HubSpotOAuthConfig {
    /// The app's client id.
    pub client_id: String,
    /// The app's client secret.
    pub client_secret: SecretString,
    /// Where HubSpot sends the user back (must match the app's settings exactly).
    pub redirect_uri: String,
    /// Scopes the install must grant.
    pub scopes: Vec<String>,
    /// Scopes granted when the account offers them.
    pub optional_scopes: Vec<String>,
    /// The consent page (default [`DEFAULT_AUTHORIZE_URL`]).
    pub authorize_url: String,
    /// The API host of the token endpoints (default [`crate::DEFAULT_BASE_URL`]).
    pub api_base_url: String,
}

impl fmt::Debug for HubSpotOAuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HubSpotOAuthConfig")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("redirect_uri", &self.redirect_uri)
            .field("scopes", &self.scopes)
            .field("optional_scopes", &self.optional_scopes)
            .field("authorize_url", &self.authorize_url)
            .field("api_base_url", &self.api_base_url)
            .finish()
    }
}

impl HubSpotOAuthConfig {
    /// Settings for the app `client_id`, asking for the contact scopes the sync needs
    /// (`crm.objects.contacts.read`, `crm.objects.contacts.write`, `oauth`).
    pub fn new(
        client_id: impl Into<String>,
        client_secret: SecretString,
        redirect_uri: impl Into<String>,
    ) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret,
            redirect_uri: redirect_uri.into(),
            scopes: [
                "crm.objects.contacts.read",
                "crm.objects.contacts.write",
                "oauth",
            ]
            .map(String::from)
            .to_vec(),
            optional_scopes: Vec::new(),
            authorize_url: DEFAULT_AUTHORIZE_URL.into(),
            api_base_url: crate::DEFAULT_BASE_URL.into(),
        }
    }

    /// Replaces the required scopes.
    #[must_use]
    pub fn with_scopes<I: IntoIterator<Item = S>, S: Into<String>>(mut self, scopes: I) -> Self {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the optional scopes.
    #[must_use]
    pub fn with_optional_scopes<I: IntoIterator<Item = S>, S: Into<String>>(
        mut self,
        scopes: I,
    ) -> Self {
        self.optional_scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Points the consent page and the API at other hosts (the sandbox in tests).
    #[must_use]
    pub fn with_hosts(
        mut self,
        authorize_url: impl Into<String>,
        api_base_url: impl Into<String>,
    ) -> Self {
        self.authorize_url = authorize_url.into();
        self.api_base_url = api_base_url.into();
        self
    }
}

/// Tokens from the token endpoint. `Debug` never shows them.
#[derive(Clone, Deserialize)]
#[non_exhaustive]
pub struct HubSpotTokens {
    /// The access token (30 minutes).
    pub access_token: SecretString,
    /// The refresh token: the one to keep from now on (HubSpot may rotate it).
    pub refresh_token: SecretString,
    /// Seconds the access token lives.
    #[serde(default)]
    pub expires_in: Option<u64>,
    /// The portal (account) id, when HubSpot says.
    #[serde(default)]
    pub hub_id: Option<u64>,
    /// The scopes granted, when HubSpot says.
    #[serde(default)]
    pub scopes: Vec<String>,
}

impl fmt::Debug for HubSpotTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HubSpotTokens")
            .field("access_token", &"[redacted]")
            .field("refresh_token", &"[redacted]")
            .field("expires_in", &self.expires_in)
            .field("hub_id", &self.hub_id)
            .field("scopes", &self.scopes)
            .finish()
    }
}

/// What HubSpot says about an OAuth access token (`GET /oauth/v1/access-tokens/{token}`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct AccessTokenInfo {
    /// The portal (account) id.
    pub hub_id: u64,
    /// The app.
    #[serde(default)]
    pub app_id: Option<u64>,
    /// The user who installed the app.
    #[serde(default)]
    pub user_id: Option<u64>,
    /// The scopes granted.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Seconds left.
    #[serde(default)]
    pub expires_in: Option<u64>,
    /// The account's domain.
    #[serde(default)]
    pub hub_domain: Option<String>,
}

/// A finished install: the tenant its `state` named and the tokens.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Installed {
    /// The tenant that started the install.
    pub tenant: TenantId,
    /// The tokens.
    pub tokens: HubSpotTokens,
}

/// A public HubSpot app's install flow. Cheap to clone.
#[derive(Clone)]
pub struct HubSpotOAuthApp {
    config: HubSpotOAuthConfig,
    http: HttpClient,
}

impl fmt::Debug for HubSpotOAuthApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HubSpotOAuthApp")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Percent-encodes a query value, spaces as `%20` (HubSpot's own SDK joins scopes so).
fn encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

impl HubSpotOAuthApp {
    /// The flow for `config`.
    ///
    /// # Errors
    /// [`Error::Config`] for a bad API base URL.
    pub fn new(config: HubSpotOAuthConfig) -> Result<Self, Error> {
        let http = HttpClient::builder(config.api_base_url.clone())
            .user_agent(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"))
            .build()
            .map_err(|e| Error::Config(e.to_string()))?;
        Ok(Self { config, http })
    }

    /// The settings.
    pub fn config(&self) -> &HubSpotOAuthConfig {
        &self.config
    }

    /// The consent-page URL for a `state` you made yourself.
    pub fn authorize_url(&self, state: &str) -> String {
        let c = &self.config;
        let mut url = format!(
            "{}?client_id={}&redirect_uri={}&scope={}",
            c.authorize_url,
            encode(&c.client_id),
            encode(&c.redirect_uri),
            encode(&c.scopes.join(" "))
        );
        if !c.optional_scopes.is_empty() {
            url.push_str("&optional_scope=");
            url.push_str(&encode(&c.optional_scopes.join(" ")));
        }
        url.push_str("&state=");
        url.push_str(&encode(state));
        url
    }

    /// Starts an install for `tenant`: the consent-page URL, with a `state` signed by `key`
    /// and valid for [`STATE_TTL`] from `now`.
    pub fn begin(&self, key: &OAuthStateKey, tenant: &TenantId, now: SystemTime) -> String {
        self.authorize_url(&key.issue(tenant.as_str(), now, STATE_TTL))
    }

    /// Finishes an install on the redirect back: checks `state` (it must come from
    /// [`begin`](Self::begin) with the same key, unexpired) and exchanges `code`.
    ///
    /// # Errors
    /// [`Error::OAuthState`] for a forged, altered or expired state (no call is made);
    /// otherwise as [`exchange_code`](Self::exchange_code).
    pub async fn complete(
        &self,
        key: &OAuthStateKey,
        state: &str,
        code: &str,
        now: SystemTime,
    ) -> Result<Installed, Error> {
        let tenant = TenantId::new(key.verify(state, now)?);
        let tokens = self.exchange_code(code).await?;
        Ok(Installed { tenant, tokens })
    }

    async fn token_call(&self, form: &[(&str, &str)]) -> Result<HubSpotTokens, Error> {
        self.http
            .post("/oauth/v1/token")
            .form(form)
            // A grant that failed on the way is refused the second time at worst.
            .idempotent(true)
            .send_json()
            .await
            .map_err(Error::Http)
    }

    /// Exchanges an authorization code (`POST /oauth/v1/token`, `authorization_code`).
    ///
    /// # Errors
    /// [`Error::Http`] when HubSpot refuses the code (used, unknown, another redirect URI)
    /// or cannot be reached.
    pub async fn exchange_code(&self, code: &str) -> Result<HubSpotTokens, Error> {
        let c = &self.config;
        self.token_call(&[
            ("grant_type", "authorization_code"),
            ("client_id", c.client_id.as_str()),
            ("client_secret", c.client_secret.expose_secret()),
            ("redirect_uri", c.redirect_uri.as_str()),
            ("code", code),
        ])
        .await
    }

    /// New tokens for a refresh token (`POST /oauth/v1/token`, `refresh_token`). Keep the
    /// returned [`HubSpotTokens::refresh_token`]: it is the old one unless HubSpot rotated it.
    ///
    /// # Errors
    /// [`Error::Http`] when HubSpot refuses the refresh token (revoked, unknown).
    pub async fn refresh(&self, refresh_token: &SecretString) -> Result<HubSpotTokens, Error> {
        let c = &self.config;
        self.token_call(&[
            ("grant_type", "refresh_token"),
            ("client_id", c.client_id.as_str()),
            ("client_secret", c.client_secret.expose_secret()),
            ("refresh_token", refresh_token.expose_secret()),
        ])
        .await
    }

    /// The portal and scopes of an access token (`GET /oauth/v1/access-tokens/{token}`).
    ///
    /// # Errors
    /// [`Error::Http`] for a token HubSpot does not know (expired, revoked).
    pub async fn access_token_info(
        &self,
        access_token: &SecretString,
    ) -> Result<AccessTokenInfo, Error> {
        self.http
            .request_segments(
                Method::GET,
                &["oauth", "v1", "access-tokens", access_token.expose_secret()],
            )
            .log_path("/oauth/v1/access-tokens/{token}")
            .idempotent(true)
            .send_json()
            .await
            .map_err(Error::Http)
    }

    /// Revokes a refresh token (`DELETE /oauth/v1/refresh-tokens/{token}`), e.g. on
    /// disconnect. A token HubSpot no longer knows (404) counts as revoked.
    ///
    /// # Errors
    /// [`Error::Http`] when HubSpot cannot be reached or refuses otherwise.
    pub async fn revoke(&self, refresh_token: &SecretString) -> Result<(), Error> {
        let sent = self
            .http
            .request_segments(
                Method::DELETE,
                &[
                    "oauth",
                    "v1",
                    "refresh-tokens",
                    refresh_token.expose_secret(),
                ],
            )
            .log_path("/oauth/v1/refresh-tokens/{token}")
            .idempotent(true)
            .send()
            .await;
        match sent {
            Ok(_) => Ok(()),
            Err(e) if e.status().is_some_and(|s| s.as_u16() == 404) => Ok(()),
            Err(e) => Err(Error::Http(e)),
        }
    }
}

impl HubSpotTokens {
    /// The tokens as a tenant's stored credentials, the expiry counted from `now` and the
    /// portal id as the account id.
    pub fn into_credentials(self, now: chrono::DateTime<chrono::Utc>) -> TenantCredentials {
        let expires_at = self
            .expires_in
            .and_then(|s| i64::try_from(s).ok())
            .map(|s| now + chrono::Duration::seconds(s));
        TenantCredentials::new(Some(self.access_token), Some(self.refresh_token))
            .with_expires_at(expires_at)
            .with_account_id(self.hub_id.map(|h| h.to_string()))
    }
}

/// Renews a tenant's tokens with the refresh-token grant; a rotated refresh token comes
/// back in the result (and `TenantTokens` saves it).
#[async_trait::async_trait]
impl TokenRefresher for HubSpotOAuthApp {
    fn crm(&self) -> CrmKind {
        CrmKind::Hubspot
    }

    async fn refresh(
        &self,
        tenant: &TenantId,
        current: &TenantCredentials,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<TenantCredentials, sync_core::Error> {
        let Some(refresh_token) = &current.refresh_token else {
            return Err(RemoteError::new(
                "hubspot",
                RemoteErrorKind::Auth,
                format!(
                    "tenant {tenant} has no HubSpot refresh token saved: connect the account again"
                ),
            )
            .into());
        };
        let tokens = HubSpotOAuthApp::refresh(self, refresh_token).await?;
        Ok(tokens.into_credentials(now))
    }
}

/// Revokes a tenant's refresh token on disconnect (`DELETE /oauth/v1/refresh-tokens/{token}`),
/// which takes its access tokens along. Without a refresh token there is nothing to revoke:
/// HubSpot's access tokens expire on their own.
#[async_trait::async_trait]
impl TokenRevoker for HubSpotOAuthApp {
    fn crm(&self) -> CrmKind {
        CrmKind::Hubspot
    }

    async fn revoke(
        &self,
        _tenant: &TenantId,
        credentials: &TenantCredentials,
    ) -> Result<Revoked, sync_core::Error> {
        let Some(refresh_token) = &credentials.refresh_token else {
            return Ok(Revoked::NothingToRevoke);
        };
        HubSpotOAuthApp::revoke(self, refresh_token).await?;
        Ok(Revoked::Revoked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorize_url_joins_scopes_with_encoded_spaces() {
        let app = HubSpotOAuthApp::new(
            HubSpotOAuthConfig::new(
                "cid",
                SecretString::from("cs"),
                "https://svc.example/cb?x=1",
            )
            .with_optional_scopes(["crm.lists.read", "crm.lists.write"]),
        )
        .unwrap();
        assert_eq!(
            app.authorize_url("s.t"),
            "https://app.hubspot.com/oauth/authorize?client_id=cid\
             &redirect_uri=https%3A%2F%2Fsvc.example%2Fcb%3Fx%3D1\
             &scope=crm.objects.contacts.read%20crm.objects.contacts.write%20oauth\
             &optional_scope=crm.lists.read%20crm.lists.write&state=s.t"
        );
    }

    #[test]
    fn debug_never_shows_secrets() {
        let cfg =
            HubSpotOAuthConfig::new("cid", SecretString::from("cs-very-secret"), "https://x/cb");
        assert!(!format!("{cfg:?}").contains("very-secret"));
        let t: HubSpotTokens = serde_json::from_str(
            r#"{"access_token":"at-very-secret","refresh_token":"rt-very-secret","expires_in":1800,"hub_id":7}"#,
        )
        .unwrap();
        let d = format!("{t:?}");
        assert!(
            !d.contains("very-secret") && d.contains("hub_id: Some(7)"),
            "{d}"
        );
    }
}
