//! OAuth 2.0: the flows Salesforce offers a server-side integration, and the token source
//! that renews the access token and learns the org's instance URL from the token response.
//!
//! | Flow | Use it when | Renewal |
//! |---|---|---|
//! | [`OAuthFlow::JwtBearer`] | a server integration with a certificate uploaded to the app (recommended) | a fresh signed assertion each time |
//! | [`OAuthFlow::ClientCredentials`] | an External Client App with a run-as user; **My Domain login URL required** | a new client-credentials grant |
//! | [`OAuthFlow::RefreshToken`] | a user authorized the app once (web-server flow) and you kept the refresh token | the refresh-token grant |
//! | [`OAuthFlow::AccessToken`] | you obtain tokens elsewhere | none: a 401 is final |
//!
//! Salesforce's token response has no `expires_in` (the lifetime follows the org's session
//! timeout), so tokens are kept until a request is rejected with 401 `INVALID_SESSION_ID`;
//! the client then renews once, single-flight, and retries.

mod jwt;
mod web_server;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sync_http::{AccessToken, ErrorKind, HttpClient, HttpError, TokenSource};
use url::Url;

pub use jwt::{JwtBearer, MAX_ASSERTION_LIFETIME};
pub use web_server::{
    Authorization, Installed, Pkce, STATE_TTL, WebServerConfig, WebServerFlow, identity_org_id,
};

use crate::error::Error;

/// The path of the token endpoint, relative to the login URL.
pub(crate) const TOKEN_PATH: &str = "services/oauth2/token";

/// How the client obtains access tokens. `Debug` never shows a secret.
#[derive(Clone)]
#[non_exhaustive]
pub enum OAuthFlow {
    /// JWT bearer: an RS256 assertion signed with the app's private key, for a
    /// pre-authorized user.
    JwtBearer(JwtBearer),
    /// Client credentials, run as the app's configured integration user. Salesforce only
    /// serves this flow on the org's My Domain host.
    ClientCredentials {
        /// The consumer key.
        client_id: String,
        /// The consumer secret.
        client_secret: SecretString,
    },
    /// The refresh-token grant of the web-server (authorization code) flow.
    RefreshToken {
        /// The consumer key.
        client_id: String,
        /// The consumer secret, when the app requires it for refresh.
        client_secret: Option<SecretString>,
        /// The refresh token.
        refresh_token: SecretString,
    },
    /// A token obtained elsewhere, used as is (no renewal). Set the instance URL on the
    /// builder.
    AccessToken(SecretString),
}

impl fmt::Debug for OAuthFlow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::JwtBearer(j) => f.debug_tuple("JwtBearer").field(j).finish(),
            Self::ClientCredentials { client_id, .. } => f
                .debug_struct("ClientCredentials")
                .field("client_id", client_id)
                .field("client_secret", &"[redacted]")
                .finish(),
            Self::RefreshToken { client_id, .. } => f
                .debug_struct("RefreshToken")
                .field("client_id", client_id)
                .field("client_secret", &"[redacted]")
                .field("refresh_token", &"[redacted]")
                .finish(),
            Self::AccessToken(_) => f.write_str("AccessToken([redacted])"),
        }
    }
}

impl OAuthFlow {
    /// The client-credentials flow.
    pub fn client_credentials(client_id: impl Into<String>, client_secret: SecretString) -> Self {
        Self::ClientCredentials {
            client_id: client_id.into(),
            client_secret,
        }
    }

    /// The refresh-token flow.
    pub fn refresh_token(
        client_id: impl Into<String>,
        client_secret: Option<SecretString>,
        refresh_token: SecretString,
    ) -> Self {
        Self::RefreshToken {
            client_id: client_id.into(),
            client_secret,
            refresh_token,
        }
    }

    /// Checks the flow against the login URL: client credentials need a My Domain host.
    pub fn check_login_url(&self, login_url: &Url) -> Result<(), Error> {
        if let Self::ClientCredentials { .. } = self {
            let host = login_url
                .host_str()
                .unwrap_or_default()
                .to_ascii_lowercase();
            if host == "login.salesforce.com" || host == "test.salesforce.com" {
                return Err(Error::MyDomainRequired { host });
            }
        }
        Ok(())
    }
}

/// The audience a JWT assertion needs for a login URL: `https://test.salesforce.com` for
/// sandboxes (`test.salesforce.com`, `*.sandbox.my.salesforce.com`), otherwise
/// `https://login.salesforce.com`.
pub(crate) fn default_audience(login_url: &Url) -> &'static str {
    let host = login_url
        .host_str()
        .unwrap_or_default()
        .to_ascii_lowercase();
    if host == "test.salesforce.com" || host.ends_with(".sandbox.my.salesforce.com") {
        "https://test.salesforce.com"
    } else {
        "https://login.salesforce.com"
    }
}

/// The token endpoint's answer.
#[derive(Clone, Deserialize)]
#[non_exhaustive]
pub struct TokenResponse {
    /// The access token.
    pub access_token: SecretString,
    /// The org's API host; every REST call goes there.
    pub instance_url: String,
    /// The identity URL (`https://login.salesforce.com/id/00D.../005...`).
    #[serde(default)]
    pub id: Option<String>,
    /// `Bearer`.
    #[serde(default)]
    pub token_type: Option<String>,
    /// Granted scopes.
    #[serde(default)]
    pub scope: Option<String>,
    /// Issue time as a string (documented as seconds, observed as milliseconds: not relied on).
    #[serde(default)]
    pub issued_at: Option<String>,
    /// A refresh token (web-server flow only).
    #[serde(default)]
    pub refresh_token: Option<SecretString>,
}

impl fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"[redacted]")
            .field("instance_url", &self.instance_url)
            .field("id", &self.id)
            .field("token_type", &self.token_type)
            .field("scope", &self.scope)
            .field("issued_at", &self.issued_at)
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

/// A clock, injectable for tests.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// Fetches tokens from the login host for one [`OAuthFlow`] and records the instance URL
/// each response names. Wrap it in [`sync_http::RefreshingToken`] for caching and
/// single-flight renewal (the [`SalesforceClient`](crate::SalesforceClient) does).
pub struct SalesforceTokenSource {
    login: HttpClient,
    flow: OAuthFlow,
    clock: Clock,
    instance_url: Mutex<Option<Url>>,
    user_id: Mutex<Option<String>>,
    org_id: Mutex<Option<String>>,
    fetches: AtomicU64,
}

impl fmt::Debug for SalesforceTokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SalesforceTokenSource")
            .field("login", &self.login.base_url().as_str())
            .field("flow", &self.flow)
            .field("fetches", &self.fetches.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl SalesforceTokenSource {
    /// A source that posts to `login`'s token endpoint (`services/oauth2/token`).
    pub fn new(login: HttpClient, flow: OAuthFlow, clock: Clock) -> Self {
        Self {
            login,
            flow,
            clock,
            instance_url: Mutex::new(None),
            user_id: Mutex::new(None),
            org_id: Mutex::new(None),
            fetches: AtomicU64::new(0),
        }
    }

    /// The instance URL of the latest token response.
    pub fn instance_url(&self) -> Option<Url> {
        self.instance_url.lock().ok().and_then(|g| g.clone())
    }

    /// The id of the user the tokens act for: the last segment of the latest token
    /// response's identity URL (`https://login.salesforce.com/id/00D.../005...`).
    pub fn user_id(&self) -> Option<String> {
        self.user_id.lock().ok().and_then(|g| g.clone())
    }

    /// The org id (`00D...`) in the latest token response's identity URL.
    pub fn org_id(&self) -> Option<String> {
        self.org_id.lock().ok().and_then(|g| g.clone())
    }

    /// How many tokens were fetched so far.
    pub fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::SeqCst)
    }

    /// Requests a token from the login host.
    pub async fn request_token(&self) -> Result<TokenResponse, Error> {
        let form: Vec<(&str, String)> = match &self.flow {
            OAuthFlow::JwtBearer(jwt) => vec![
                (
                    "grant_type",
                    "urn:ietf:params:oauth:grant-type:jwt-bearer".into(),
                ),
                (
                    "assertion",
                    jwt.assertion((self.clock)())?.expose_secret().to_owned(),
                ),
            ],
            OAuthFlow::ClientCredentials {
                client_id,
                client_secret,
            } => vec![
                ("grant_type", "client_credentials".into()),
                ("client_id", client_id.clone()),
                ("client_secret", client_secret.expose_secret().to_owned()),
            ],
            OAuthFlow::RefreshToken {
                client_id,
                client_secret,
                refresh_token,
            } => {
                let mut f = vec![
                    ("grant_type", "refresh_token".to_owned()),
                    ("refresh_token", refresh_token.expose_secret().to_owned()),
                    ("client_id", client_id.clone()),
                ];
                if let Some(s) = client_secret {
                    f.push(("client_secret", s.expose_secret().to_owned()));
                }
                f
            }
            OAuthFlow::AccessToken(_) => {
                return Err(Error::Config(
                    "a static access token cannot be renewed: configure a JWT bearer, client credentials or refresh token flow".into(),
                ));
            }
        };
        self.fetches.fetch_add(1, Ordering::SeqCst);
        let resp = self
            .login
            .post(TOKEN_PATH)
            .form(&form)
            // A token grant has no side effect worth protecting: safe to resend.
            .idempotent(true)
            .send()
            .await
            .map_err(oauth_error)?;
        let token: TokenResponse = resp.json().map_err(|e| Error::Decode {
            what: "token response",
            message: e.message().to_owned(),
        })?;
        let url = parse_instance_url(&token.instance_url)?;
        if let Ok(mut slot) = self.instance_url.lock() {
            *slot = Some(url);
        }
        if let Some(user) = token.id.as_deref().and_then(identity_user_id)
            && let Ok(mut slot) = self.user_id.lock()
        {
            *slot = Some(user);
        }
        if let Some(org) = token.id.as_deref().and_then(identity_org_id)
            && let Ok(mut slot) = self.org_id.lock()
        {
            *slot = Some(org);
        }
        Ok(token)
    }
}

/// The user id (`005...`) at the end of an identity URL (`.../id/00D.../005...`).
pub(crate) fn identity_user_id(identity: &str) -> Option<String> {
    let user = identity.trim_end_matches('/').rsplit('/').next()?;
    (user.starts_with("005")
        && (user.len() == 15 || user.len() == 18)
        && user.bytes().all(|b| b.is_ascii_alphanumeric()))
    .then(|| user.to_owned())
}

/// Parses an instance URL and gives it the trailing slash URL joining needs.
pub(crate) fn parse_instance_url(raw: &str) -> Result<Url, Error> {
    let mut url = Url::parse(raw).map_err(|e| Error::Decode {
        what: "instance_url",
        message: format!("{raw:?}: {e}"),
    })?;
    if !url.path().ends_with('/') {
        let p = format!("{}/", url.path());
        url.set_path(&p);
    }
    Ok(url)
}

fn oauth_error(e: HttpError) -> Error {
    let Some(status) = e.status() else {
        return Error::Http(e);
    };
    let first = e
        .body()
        .map(crate::error::decode_error_body)
        .unwrap_or_default()
        .into_iter()
        .next();
    let (code, message) = match first {
        Some(f) => (f.code, f.message),
        None => (
            e.code().unwrap_or("unknown_error").to_owned(),
            e.message().to_owned(),
        ),
    };
    Error::OAuth {
        status: status.as_u16(),
        code,
        message,
    }
}

#[async_trait]
impl TokenSource for SalesforceTokenSource {
    async fn fetch_token(&self) -> Result<AccessToken, HttpError> {
        match self.request_token().await {
            Ok(t) => Ok(AccessToken::new(t.access_token, None)),
            Err(Error::Http(e)) => Err(e),
            Err(other) => {
                let kind = match other {
                    Error::Decode { .. } => ErrorKind::Decode,
                    _ => ErrorKind::Auth,
                };
                let mut e = HttpError::new(kind, other.to_string());
                if let Error::OAuth { code, .. } = &other {
                    e = e.with_code(code.clone());
                }
                Err(e.with_source(other))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_credentials_need_my_domain() {
        let flow = OAuthFlow::client_credentials("ck", SecretString::from("cs"));
        for bad in [
            "https://login.salesforce.com",
            "https://TEST.salesforce.com/",
        ] {
            let err = flow.check_login_url(&Url::parse(bad).unwrap()).unwrap_err();
            assert!(matches!(err, Error::MyDomainRequired { .. }), "{bad}");
            assert!(err.to_string().contains("My Domain"));
        }
        assert!(
            flow.check_login_url(&Url::parse("https://acme.my.salesforce.com").unwrap())
                .is_ok()
        );
        let rt = OAuthFlow::refresh_token("ck", None, SecretString::from("rt"));
        assert!(
            rt.check_login_url(&Url::parse("https://login.salesforce.com").unwrap())
                .is_ok()
        );
    }

    #[test]
    fn audience_follows_the_login_host() {
        let aud = |u: &str| default_audience(&Url::parse(u).unwrap());
        assert_eq!(
            aud("https://login.salesforce.com"),
            "https://login.salesforce.com"
        );
        assert_eq!(
            aud("https://test.salesforce.com"),
            "https://test.salesforce.com"
        );
        assert_eq!(
            aud("https://acme--uat.sandbox.my.salesforce.com"),
            "https://test.salesforce.com"
        );
        assert_eq!(
            aud("https://acme.my.salesforce.com"),
            "https://login.salesforce.com"
        );
    }

    #[test]
    fn debug_never_shows_secrets() {
        let flows = [
            OAuthFlow::client_credentials("ck", SecretString::from("cs-very-secret")),
            OAuthFlow::refresh_token(
                "ck",
                Some(SecretString::from("cs-very-secret")),
                SecretString::from("rt-very-secret"),
            ),
            OAuthFlow::AccessToken(SecretString::from("at-very-secret")),
        ];
        for f in flows {
            assert!(!format!("{f:?}").contains("very-secret"), "{f:?}");
        }
        let t: TokenResponse = serde_json::from_str(
            r#"{"access_token":"00D!tok-very-secret","instance_url":"https://x.my.salesforce.com","refresh_token":"rt-very-secret"}"#,
        )
        .unwrap();
        assert!(!format!("{t:?}").contains("very-secret"));
    }

    #[test]
    fn instance_url_gets_a_trailing_slash() {
        assert_eq!(
            parse_instance_url("https://x.my.salesforce.com")
                .unwrap()
                .as_str(),
            "https://x.my.salesforce.com/"
        );
        assert!(parse_instance_url("not a url").is_err());
    }
}
