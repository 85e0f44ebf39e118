//! Authentication: a static token (private app, service key) or OAuth with refresh through
//! `POST /oauth/v1/token`.

use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sync_http::{AccessToken, HttpClient, HttpError, TokenSource};

/// OAuth app credentials plus the installing account's refresh token.
#[derive(Clone)]
#[non_exhaustive]
pub struct OAuthCredentials {
    /// The app's client id.
    pub client_id: String,
    /// The app's client secret.
    pub client_secret: SecretString,
    /// The refresh token from the install.
    pub refresh_token: SecretString,
}

impl OAuthCredentials {
    /// Credentials for the refresh-token grant.
    pub fn new(
        client_id: impl Into<String>,
        client_secret: SecretString,
        refresh_token: SecretString,
    ) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret,
            refresh_token,
        }
    }
}

impl fmt::Debug for OAuthCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthCredentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("refresh_token", &"[redacted]")
            .finish()
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: SecretString,
    #[serde(default)]
    refresh_token: Option<SecretString>,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// Fetches access tokens with the refresh-token grant. HubSpot may return a new refresh
/// token; the newest one is used from then on.
pub(crate) struct OAuthTokenSource {
    http: HttpClient,
    path: String,
    client_id: String,
    client_secret: SecretString,
    refresh_token: Mutex<SecretString>,
}

impl fmt::Debug for OAuthTokenSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthTokenSource")
            .field("path", &self.path)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl OAuthTokenSource {
    pub(crate) fn new(http: HttpClient, path: String, creds: OAuthCredentials) -> Self {
        Self {
            http,
            path,
            client_id: creds.client_id,
            client_secret: creds.client_secret,
            refresh_token: Mutex::new(creds.refresh_token),
        }
    }
}

#[async_trait]
impl TokenSource for OAuthTokenSource {
    async fn fetch_token(&self) -> Result<AccessToken, HttpError> {
        let refresh = self
            .refresh_token
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let resp: TokenResponse = self
            .http
            .post(&self.path)
            .form(&[
                ("grant_type", "refresh_token"),
                ("client_id", self.client_id.as_str()),
                ("client_secret", self.client_secret.expose_secret()),
                ("refresh_token", refresh.expose_secret()),
            ])
            // Refreshing twice is harmless: the grant is repeatable.
            .idempotent(true)
            .send_json()
            .await?;
        if let Some(new_refresh) = resp.refresh_token {
            *self
                .refresh_token
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = new_refresh;
        }
        // HubSpot access tokens last 30 minutes; assume so when it does not say.
        let ttl = Duration::from_secs(resp.expires_in.unwrap_or(1800));
        Ok(AccessToken::new(resp.access_token, Some(ttl)))
    }
}
