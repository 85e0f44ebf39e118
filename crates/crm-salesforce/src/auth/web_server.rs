//! The web-server (authorization code) flow with PKCE, as library calls a service wires to
//! its routes:
//!
//! 1. [`WebServerFlow::begin`]: the consent-page URL (`/services/oauth2/authorize`) with a
//!    `state` bound to the tenant and an `S256` PKCE challenge; keep the returned
//!    [`Authorization::verifier`] until the callback (e.g. keyed by the state);
//! 2. [`WebServerFlow::complete`]: checks the `state` and exchanges the code with the
//!    verifier at `/services/oauth2/token`; the response names the instance URL and, in its
//!    identity URL, the org id ([`identity_org_id`]);
//! 3. [`WebServerFlow::refresh`]: the `refresh_token` grant;
//! 4. [`WebServerFlow::revoke`] (`/services/oauth2/revoke`) on disconnect.

use std::fmt;
use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use secrecy::{ExposeSecret, SecretString};
use sha2::Digest;
use sync_core::ports::{Revoked, TenantCredentials, TokenRefresher, TokenRevoker};
use sync_core::{CrmKind, RemoteError, RemoteErrorKind, TenantId};
use sync_http::{HttpClient, OAuthStateKey};
use url::Url;

use super::{TOKEN_PATH, TokenResponse, oauth_error, parse_instance_url};
use crate::error::Error;

/// How long a `state` from [`WebServerFlow::begin`] stays valid.
pub const STATE_TTL: Duration = Duration::from_secs(600);

/// A PKCE pair (RFC 7636): a random verifier kept by the service and its `S256` challenge
/// sent with the user. `Debug` never shows the verifier.
#[derive(Clone)]
pub struct Pkce {
    /// The verifier: 32 random bytes, base64url (43 characters).
    pub verifier: SecretString,
    /// `BASE64URL(SHA256(verifier))`.
    pub challenge: String,
}

impl fmt::Debug for Pkce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkce")
            .field("verifier", &"[redacted]")
            .field("challenge", &self.challenge)
            .finish()
    }
}

impl Pkce {
    /// A fresh pair.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        sync_http::random::fill(&mut bytes);
        Self::from_verifier(SecretString::from(URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// The pair of a verifier kept from before.
    pub fn from_verifier(verifier: SecretString) -> Self {
        let challenge =
            URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.expose_secret().as_bytes()));
        Self {
            verifier,
            challenge,
        }
    }
}

/// A connected app's (or External Client App's) web-server flow settings.
#[derive(Clone)]
#[non_exhaustive]
pub struct WebServerConfig {
    /// The consumer key.
    pub client_id: String,
    /// The consumer secret, when the app requires it on the token endpoint.
    pub client_secret: Option<SecretString>,
    /// Where Salesforce sends the user back (must match the app's callback URL).
    pub redirect_uri: String,
    /// Scopes to ask for (default `api refresh_token`).
    pub scopes: Vec<String>,
    /// The login host (default `https://login.salesforce.com`; `https://test.salesforce.com`
    /// for sandboxes, or a My Domain URL).
    pub login_url: String,
}

impl fmt::Debug for WebServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebServerConfig")
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[redacted]"),
            )
            .field("redirect_uri", &self.redirect_uri)
            .field("scopes", &self.scopes)
            .field("login_url", &self.login_url)
            .finish()
    }
}

impl WebServerConfig {
    /// Settings for the app `client_id`.
    pub fn new(
        client_id: impl Into<String>,
        client_secret: Option<SecretString>,
        redirect_uri: impl Into<String>,
    ) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret,
            redirect_uri: redirect_uri.into(),
            scopes: vec!["api".into(), "refresh_token".into()],
            login_url: crate::DEFAULT_LOGIN_URL.into(),
        }
    }

    /// Sets the login host.
    #[must_use]
    pub fn with_login_url(mut self, login_url: impl Into<String>) -> Self {
        self.login_url = login_url.into();
        self
    }

    /// Replaces the scopes.
    #[must_use]
    pub fn with_scopes<I: IntoIterator<Item = S>, S: Into<String>>(mut self, scopes: I) -> Self {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }
}

/// A started authorization: send the user to `url`, keep `verifier` for the callback.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Authorization {
    /// The consent-page URL.
    pub url: String,
    /// The `state` in `url`.
    pub state: String,
    /// The PKCE verifier to pass to [`WebServerFlow::complete`].
    pub verifier: SecretString,
}

/// A finished install: the tenant its `state` named, the tokens, the org.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Installed {
    /// The tenant that started the install.
    pub tenant: TenantId,
    /// The token response (with the refresh token).
    pub tokens: TokenResponse,
    /// The org id, from the identity URL.
    pub org_id: Option<String>,
}

/// The org id (`00D...`) in an identity URL (`https://login.salesforce.com/id/00D.../005...`).
pub fn identity_org_id(identity: &str) -> Option<String> {
    let mut parts = identity.trim_end_matches('/').rsplit('/');
    let _user = parts.next()?;
    let org = parts.next()?;
    (org.starts_with("00D")
        && (org.len() == 15 || org.len() == 18)
        && org.bytes().all(|b| b.is_ascii_alphanumeric()))
    .then(|| org.to_owned())
}

/// The web-server flow. Cheap to clone.
#[derive(Clone)]
pub struct WebServerFlow {
    config: WebServerConfig,
    login: HttpClient,
}

impl fmt::Debug for WebServerFlow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebServerFlow")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

impl WebServerFlow {
    /// The flow for `config`.
    ///
    /// # Errors
    /// [`Error::Config`] for a login URL that is not a URL.
    pub fn new(config: WebServerConfig) -> Result<Self, Error> {
        Url::parse(&config.login_url)
            .map_err(|e| Error::Config(format!("login URL {:?}: {e}", config.login_url)))?;
        let login = HttpClient::builder(config.login_url.clone())
            .user_agent(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"))
            .build()
            .map_err(|e| Error::Config(e.to_string()))?;
        Ok(Self { config, login })
    }

    /// The consent-page URL for a `state` and PKCE challenge you made yourself.
    pub fn authorize_url(&self, state: &str, pkce: &Pkce) -> String {
        let c = &self.config;
        format!(
            "{}/services/oauth2/authorize?response_type=code&client_id={}&redirect_uri={}\
             &scope={}&state={}&code_challenge={}&code_challenge_method=S256",
            c.login_url.trim_end_matches('/'),
            encode(&c.client_id),
            encode(&c.redirect_uri),
            encode(&c.scopes.join(" ")),
            encode(state),
            encode(&pkce.challenge)
        )
    }

    /// Starts an install for `tenant`: a `state` signed by `key`, valid for [`STATE_TTL`]
    /// from `now`, and a fresh PKCE pair.
    pub fn begin(&self, key: &OAuthStateKey, tenant: &TenantId, now: SystemTime) -> Authorization {
        let state = key.issue(tenant.as_str(), now, STATE_TTL);
        let pkce = Pkce::generate();
        Authorization {
            url: self.authorize_url(&state, &pkce),
            state,
            verifier: pkce.verifier,
        }
    }

    /// Finishes an install on the redirect back: checks `state`, then exchanges `code`
    /// with the `verifier` [`begin`](Self::begin) returned.
    ///
    /// # Errors
    /// [`Error::OAuthState`] for a forged, altered or expired state (no call is made);
    /// [`Error::OAuth`] when Salesforce refuses the code or the verifier.
    pub async fn complete(
        &self,
        key: &OAuthStateKey,
        state: &str,
        code: &str,
        verifier: &SecretString,
        now: SystemTime,
    ) -> Result<Installed, Error> {
        let tenant = TenantId::new(key.verify(state, now)?);
        let tokens = self.exchange_code(code, verifier).await?;
        let org_id = tokens.id.as_deref().and_then(identity_org_id);
        Ok(Installed {
            tenant,
            tokens,
            org_id,
        })
    }

    async fn token_call(&self, mut form: Vec<(&str, String)>) -> Result<TokenResponse, Error> {
        form.push(("client_id", self.config.client_id.clone()));
        if let Some(s) = &self.config.client_secret {
            form.push(("client_secret", s.expose_secret().to_owned()));
        }
        let resp = self
            .login
            .post(TOKEN_PATH)
            .form(&form)
            .idempotent(true)
            .send()
            .await
            .map_err(oauth_error)?;
        let tokens: TokenResponse = resp.json().map_err(|e| Error::Decode {
            what: "token response",
            message: e.message().to_owned(),
        })?;
        parse_instance_url(&tokens.instance_url)?;
        Ok(tokens)
    }

    /// Exchanges an authorization code (`authorization_code` grant with `code_verifier`).
    ///
    /// # Errors
    /// [`Error::OAuth`] when Salesforce refuses it (used code, wrong verifier, another
    /// redirect URI).
    pub async fn exchange_code(
        &self,
        code: &str,
        verifier: &SecretString,
    ) -> Result<TokenResponse, Error> {
        self.token_call(vec![
            ("grant_type", "authorization_code".into()),
            ("code", code.to_owned()),
            ("redirect_uri", self.config.redirect_uri.clone()),
            ("code_verifier", verifier.expose_secret().to_owned()),
        ])
        .await
    }

    /// A new access token for a refresh token (`refresh_token` grant).
    ///
    /// # Errors
    /// [`Error::OAuth`] when Salesforce refuses the refresh token (revoked, expired).
    pub async fn refresh(&self, refresh_token: &SecretString) -> Result<TokenResponse, Error> {
        self.token_call(vec![
            ("grant_type", "refresh_token".into()),
            ("refresh_token", refresh_token.expose_secret().to_owned()),
        ])
        .await
    }

    /// Revokes a token (`POST /services/oauth2/revoke`): a refresh token takes the access
    /// tokens issued with it along.
    ///
    /// # Errors
    /// [`Error::OAuth`] when Salesforce refuses (e.g. a token it does not know).
    pub async fn revoke(&self, token: &SecretString) -> Result<(), Error> {
        self.login
            .post("services/oauth2/revoke")
            .form(&[("token", token.expose_secret())])
            .idempotent(true)
            .send()
            .await
            .map_err(oauth_error)?;
        Ok(())
    }
}

impl TokenResponse {
    /// The response as a tenant's stored credentials: the instance URL, and the org id
    /// from the identity URL as the account id. Salesforce gives no expiry (a 401 is the
    /// signal), and a refresh response no refresh token (the stored one stays).
    pub fn into_credentials(self) -> TenantCredentials {
        let org = self.id.as_deref().and_then(identity_org_id);
        TenantCredentials::new(Some(self.access_token), self.refresh_token)
            .with_instance_url(Some(self.instance_url))
            .with_account_id(org)
    }
}

/// Renews a tenant's access token with the refresh-token grant.
#[async_trait::async_trait]
impl TokenRefresher for WebServerFlow {
    fn crm(&self) -> CrmKind {
        CrmKind::Salesforce
    }

    async fn refresh(
        &self,
        tenant: &TenantId,
        current: &TenantCredentials,
        _now: chrono::DateTime<chrono::Utc>,
    ) -> Result<TenantCredentials, sync_core::Error> {
        let Some(refresh_token) = &current.refresh_token else {
            return Err(RemoteError::new(
                "salesforce",
                RemoteErrorKind::Auth,
                format!(
                    "tenant {tenant} has no Salesforce refresh token saved: connect the account again"
                ),
            )
            .into());
        };
        let tokens = WebServerFlow::refresh(self, refresh_token).await?;
        Ok(tokens.into_credentials())
    }
}

/// Revokes a tenant's tokens on disconnect (`POST /services/oauth2/revoke`): the refresh
/// token when there is one (its access tokens go with it), else the access token. A token
/// Salesforce refuses as unknown (`invalid_token`, `unsupported_token_type`) counts as
/// revoked, so a disconnect can be retried.
#[async_trait::async_trait]
impl TokenRevoker for WebServerFlow {
    fn crm(&self) -> CrmKind {
        CrmKind::Salesforce
    }

    async fn revoke(
        &self,
        _tenant: &TenantId,
        credentials: &TenantCredentials,
    ) -> Result<Revoked, sync_core::Error> {
        let Some(token) = credentials
            .refresh_token
            .as_ref()
            .or(credentials.access_token.as_ref())
        else {
            return Ok(Revoked::NothingToRevoke);
        };
        match WebServerFlow::revoke(self, token).await {
            Ok(()) => Ok(Revoked::Revoked),
            Err(Error::OAuth { code, .. })
                if code == "invalid_token" || code == "unsupported_token_type" =>
            {
                Ok(Revoked::Revoked)
            }
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_challenge_is_the_rfc_7636_s256_of_the_verifier() {
        // RFC 7636, appendix B.
        let p = Pkce::from_verifier(SecretString::from(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
        ));
        assert_eq!(p.challenge, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        let fresh = Pkce::generate();
        assert_eq!(fresh.verifier.expose_secret().len(), 43);
        assert!(!format!("{fresh:?}").contains(fresh.verifier.expose_secret()));
    }

    #[test]
    fn org_id_comes_from_the_identity_url() {
        assert_eq!(
            identity_org_id(
                "https://login.salesforce.com/id/00Dxx0000001gPLEAY/005xx000001SwiUAAS"
            )
            .as_deref(),
            Some("00Dxx0000001gPLEAY")
        );
        assert_eq!(
            identity_org_id("https://login.salesforce.com/id/nope/005x"),
            None
        );
        assert_eq!(identity_org_id(""), None);
    }
}
