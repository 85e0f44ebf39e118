//! Bearer-token checks and the OAuth token endpoint (`POST /oauth/v1/token`,
//! refresh_token grant), with tokens that expire on the sandbox clock or on demand.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::json;

use super::{Api, HubSpotConfig, errors};
use crate::lock;

pub(crate) struct TokenStore {
    static_tokens: BTreeSet<String>,
    /// Live refresh token -> the scopes it grants.
    pub(crate) refresh_tokens: BTreeMap<String, Vec<String>>,
    /// Issued access token -> monotonic expiry.
    issued: BTreeMap<String, Duration>,
    /// Issued access token -> the scopes it grants.
    pub(crate) issued_scopes: BTreeMap<String, Vec<String>>,
    /// Issued access token -> the refresh token it was issued with (revoked with it).
    issued_by: BTreeMap<String, String>,
    /// Authorization codes not yet exchanged (see `oauth.rs`).
    pub(crate) codes: BTreeMap<String, super::oauth::PendingCode>,
    counter: u64,
    /// Refresh tokens and codes issued (numbered apart from access tokens, which
    /// `issued_count` counts).
    other_counter: u64,
}

pub(crate) enum TokenCheck {
    Valid,
    Expired { ago: Duration },
    Unknown,
}

impl TokenStore {
    pub(crate) fn new(config: &HubSpotConfig) -> Self {
        Self {
            static_tokens: config.access_tokens.iter().cloned().collect(),
            refresh_tokens: config
                .refresh_tokens
                .iter()
                .map(|t| (t.clone(), config.scopes.clone()))
                .collect(),
            issued: BTreeMap::new(),
            issued_scopes: BTreeMap::new(),
            issued_by: BTreeMap::new(),
            codes: BTreeMap::new(),
            counter: 0,
            other_counter: 0,
        }
    }

    pub(crate) fn check(&self, token: &str, now: Duration) -> TokenCheck {
        if self.static_tokens.contains(token) {
            return TokenCheck::Valid;
        }
        match self.issued.get(token) {
            Some(&exp) if now < exp => TokenCheck::Valid,
            Some(&exp) => TokenCheck::Expired { ago: now - exp },
            None => TokenCheck::Unknown,
        }
    }

    /// A fresh access token granting `scopes`, issued with the refresh token `parent`.
    pub(crate) fn issue(
        &mut self,
        now: Duration,
        ttl: Duration,
        scopes: Vec<String>,
        parent: &str,
    ) -> String {
        self.counter += 1;
        let token = format!("CKS-sandbox-oauth-{:06}", self.counter);
        self.issued.insert(token.clone(), now + ttl);
        self.issued_scopes.insert(token.clone(), scopes);
        self.issued_by.insert(token.clone(), parent.to_owned());
        token
    }

    /// Revokes a refresh token and every access token issued with it (they are unknown from
    /// then on); whether the refresh token was live.
    pub(crate) fn revoke_refresh_token(&mut self, refresh: &str) -> bool {
        if self.refresh_tokens.remove(refresh).is_none() {
            return false;
        }
        let children: Vec<String> = self
            .issued_by
            .iter()
            .filter(|(_, parent)| parent.as_str() == refresh)
            .map(|(access, _)| access.clone())
            .collect();
        for access in children {
            self.issued.remove(&access);
            self.issued_scopes.remove(&access);
            self.issued_by.remove(&access);
        }
        true
    }

    /// Seconds left on an issued access token; `None` for an unknown or expired one.
    pub(crate) fn remaining(&self, token: &str, now: Duration) -> Option<Duration> {
        self.issued
            .get(token)
            .and_then(|&exp| exp.checked_sub(now))
            .filter(|d| !d.is_zero())
    }

    /// A fresh code number.
    pub(crate) fn next_code(&mut self) -> u64 {
        self.other_counter += 1;
        self.other_counter
    }

    /// A fresh refresh token granting `scopes`.
    pub(crate) fn new_refresh_token(&mut self, scopes: Vec<String>) -> String {
        self.other_counter += 1;
        let token = format!("sandbox-refresh-{:06}", self.other_counter);
        self.refresh_tokens.insert(token.clone(), scopes);
        token
    }

    pub(crate) fn expire_all(&mut self, now: Duration) {
        for exp in self.issued.values_mut() {
            *exp = (*exp).min(now);
        }
    }

    pub(crate) fn issued_count(&self) -> u64 {
        self.counter
    }
}

/// Extractor that admits only requests with a valid bearer token.
pub(crate) struct Authed;

impl FromRequestParts<Arc<Api>> for Authed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, api: &Arc<Api>) -> Result<Self, Response> {
        let Some(token) = crate::http::bearer(&parts.headers) else {
            return Err(errors::unauthorized(&api.core.correlation_id()));
        };
        let now = api.core.clock.elapsed();
        let check = lock(&api.tokens).check(token, now);
        match check {
            TokenCheck::Valid => Ok(Self),
            TokenCheck::Expired { ago } => {
                Err(errors::expired(&api.core.correlation_id(), ago.as_secs()))
            }
            TokenCheck::Unknown => Err(errors::unauthorized(&api.core.correlation_id())),
        }
    }
}

pub(crate) fn oauth_error(api: &Api, status: &str, message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"status": status, "message": message, "correlationId": api.core.correlation_id()})),
    )
        .into_response()
}

/// `POST /oauth/v1/token` (form-encoded).
pub(crate) async fn token(State(api): State<Arc<Api>>, body: Bytes) -> Response {
    let form: BTreeMap<String, String> = url::form_urlencoded::parse(&body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let get = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    match get("grant_type") {
        "refresh_token" => {}
        "authorization_code" => return super::oauth::exchange_code(&api, &form),
        "" => return oauth_error(&api, "BAD_GRANT_TYPE", "missing grant_type"),
        other => {
            return oauth_error(
                &api,
                "BAD_GRANT_TYPE",
                &format!("unsupported grant_type {other}"),
            );
        }
    }
    if get("client_id") != api.config.client_id {
        return oauth_error(&api, "BAD_CLIENT_ID", "missing or unknown client id");
    }
    if get("client_secret") != api.config.client_secret {
        return oauth_error(
            &api,
            "BAD_CLIENT_SECRET",
            "missing or invalid client secret",
        );
    }
    let refresh = get("refresh_token").to_owned();
    let now = api.core.clock.elapsed();
    let ttl = api.config.access_token_ttl;
    let (access, scopes) = {
        let mut tokens = lock(&api.tokens);
        let Some(scopes) = tokens.refresh_tokens.get(&refresh).cloned() else {
            drop(tokens);
            return oauth_error(
                &api,
                "BAD_REFRESH_TOKEN",
                "missing or unknown refresh token",
            );
        };
        (tokens.issue(now, ttl, scopes.clone(), &refresh), scopes)
    };
    token_response(&api, &access, &refresh, &scopes)
}

/// The token endpoint's answer.
pub(crate) fn token_response(
    api: &Api,
    access: &str,
    refresh: &str,
    scopes: &[String],
) -> Response {
    Json(json!({
        "access_token": access,
        "refresh_token": refresh,
        "expires_in": api.config.access_token_ttl.as_secs(),
        "token_type": "bearer",
        "token_use": "access_token",
        "hub_id": api.config.portal_id,
        "user_id": 1,
        "scopes": scopes,
    }))
    .into_response()
}

/// `POST /oauth/v2/private-apps/get/access-token-info` `{"tokenKey": "pat-..."}` ->
/// `{userId, hubId, appId, scopes}` for a static token the sandbox accepts, 401 otherwise.
pub(crate) async fn token_info(State(api): State<Arc<Api>>, body: Bytes) -> Response {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Body {
        token_key: String,
    }
    let b: Body = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return api.bad_json(&e),
    };
    if !lock(&api.tokens).static_tokens.contains(&b.token_key) {
        return errors::unauthorized(&api.core.correlation_id());
    }
    Json(json!({
        "userId": 1,
        "hubId": api.config.portal_id,
        "appId": super::HUBSPOT_APP_ID,
        "scopes": api.config.scopes,
    }))
    .into_response()
}
