//! `POST /services/oauth2/token` (JWT bearer, client credentials, refresh token) and
//! session checks (401 `INVALID_SESSION_ID`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use hmac::Mac;
use serde::Deserialize;
use serde_json::json;

use super::errors::{invalid_session, oauth};
use super::{Api, SalesforceConfig};
use crate::lock;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// The JWT bearer grant type.
pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

pub(crate) struct Sessions {
    static_tokens: BTreeSet<String>,
    /// Issued token -> still valid.
    issued: BTreeMap<String, bool>,
    /// Live refresh token -> the access tokens issued with it (revoked with it).
    pub(crate) refresh_tokens: BTreeMap<String, Vec<String>>,
    /// Authorization codes not yet exchanged (see `oauth.rs`).
    pub(crate) codes: BTreeMap<String, super::oauth::PendingCode>,
    counter: u64,
}

impl Sessions {
    pub(crate) fn new(config: &SalesforceConfig) -> Self {
        Self {
            static_tokens: config.access_tokens.iter().cloned().collect(),
            issued: BTreeMap::new(),
            refresh_tokens: config
                .refresh_tokens
                .iter()
                .map(|t| (t.clone(), Vec::new()))
                .collect(),
            codes: BTreeMap::new(),
            counter: 0,
        }
    }

    fn valid(&self, token: &str) -> bool {
        self.static_tokens.contains(token) || self.issued.get(token).copied().unwrap_or(false)
    }

    pub(crate) fn issue(&mut self) -> String {
        self.counter += 1;
        let token = format!("00DSB0000000001AAA!AQsandbox.session.{:08}", self.counter);
        self.issued.insert(token.clone(), true);
        token
    }

    /// A fresh refresh token.
    pub(crate) fn new_refresh_token(&mut self) -> String {
        self.counter += 1;
        let token = format!("5Aep861sandbox.refresh.{:08}", self.counter);
        self.refresh_tokens.insert(token.clone(), Vec::new());
        token
    }

    /// Revokes a refresh token (and the access tokens issued with it) or one access token;
    /// false when the token is neither.
    pub(crate) fn revoke(&mut self, token: &str) -> bool {
        if let Some(accesses) = self.refresh_tokens.remove(token) {
            for a in accesses {
                self.issued.insert(a, false);
            }
            return true;
        }
        match self.issued.get_mut(token) {
            Some(valid) if *valid => {
                *valid = false;
                true
            }
            _ => false,
        }
    }

    /// The next code number.
    pub(crate) fn next_code(&mut self) -> u64 {
        self.counter += 1;
        self.counter
    }

    pub(crate) fn expire_all(&mut self) {
        for valid in self.issued.values_mut() {
            *valid = false;
        }
    }

    pub(crate) fn issued_count(&self) -> u64 {
        self.counter
    }
}

/// Extractor admitting only requests with a live session.
pub(crate) struct Session;

impl FromRequestParts<Arc<Api>> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, api: &Arc<Api>) -> Result<Self, Response> {
        match crate::http::bearer(&parts.headers) {
            Some(t) if lock(&api.sessions).valid(t) => Ok(Self),
            _ => Err(invalid_session()),
        }
    }
}

#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    iss: String,
    #[serde(default)]
    sub: String,
    #[serde(default)]
    aud: serde_json::Value,
    #[serde(default)]
    exp: i64,
}

pub(crate) fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let v = crate::http::header_str(headers, "authorization")?;
    let (scheme, b64) = v.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = STANDARD.decode(b64.trim()).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

fn check_jwt(api: &Api, assertion: &str) -> Result<(), &'static str> {
    let mut parts = assertion.split('.');
    let (Some(header), Some(payload), Some(_sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("invalid assertion: not a JWT");
    };
    let header: serde_json::Value = URL_SAFE_NO_PAD
        .decode(header)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or("invalid assertion: bad JWT header")?;
    if header["alg"] != "RS256" {
        return Err("invalid assertion: alg must be RS256");
    }
    let claims: Claims = URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or("invalid assertion: bad JWT claims")?;
    let cfg = &api.config;
    if claims.iss != cfg.client_id {
        return Err("invalid client credentials");
    }
    if claims.sub.is_empty() || (!cfg.username.is_empty() && claims.sub != cfg.username) {
        return Err("user hasn't approved this consumer");
    }
    let aud_ok = |a: &str| {
        let a = a.trim_end_matches('/');
        a == "https://login.salesforce.com"
            || a == "https://test.salesforce.com"
            || a == api.base_url
    };
    let aud_valid = match &claims.aud {
        serde_json::Value::String(a) => aud_ok(a),
        serde_json::Value::Array(v) => v.iter().filter_map(|x| x.as_str()).any(aud_ok),
        _ => false,
    };
    if !aud_valid {
        return Err("audience is invalid");
    }
    let now = api.now().timestamp();
    if claims.exp <= now {
        return Err("expired authorization code");
    }
    if claims.exp > now + 180 + 30 {
        // Salesforce wants exp within 3 minutes (a little clock-skew leeway here).
        return Err("invalid assertion: exp is more than 3 minutes ahead");
    }
    if let Some(pem) = &cfg.jwt_public_key_pem {
        let key = jsonwebtoken::DecodingKey::from_rsa_pem(pem.as_bytes())
            .map_err(|_| "sandbox: bad public key")?;
        let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        v.validate_exp = false;
        v.validate_aud = false;
        v.required_spec_claims.clear();
        jsonwebtoken::decode::<serde_json::Value>(assertion, &key, &v)
            .map_err(|_| "invalid assertion: bad signature")?;
    }
    Ok(())
}

/// The handler.
pub(crate) async fn token(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form: BTreeMap<String, String> = url::form_urlencoded::parse(&body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let get = |k: &str| form.get(k).cloned().unwrap_or_default();
    let cfg = &api.config;
    let grant = get("grant_type");
    match grant.as_str() {
        JWT_BEARER_GRANT => {
            if let Err(why) = check_jwt(&api, &get("assertion")) {
                return oauth(StatusCode::BAD_REQUEST, "invalid_grant", why);
            }
        }
        "client_credentials" => {
            let (id, secret) = basic_credentials(&headers)
                .unwrap_or_else(|| (get("client_id"), get("client_secret")));
            if id != cfg.client_id || secret != cfg.client_secret {
                return oauth(
                    StatusCode::BAD_REQUEST,
                    "invalid_client",
                    "invalid client credentials",
                );
            }
        }
        "refresh_token" => {
            let (id, secret) = basic_credentials(&headers)
                .map(|(i, s)| (i, Some(s)))
                .unwrap_or_else(|| (get("client_id"), form.get("client_secret").cloned()));
            if id != cfg.client_id || secret.is_some_and(|s| s != cfg.client_secret) {
                return oauth(
                    StatusCode::BAD_REQUEST,
                    "invalid_client_id",
                    "client identifier invalid",
                );
            }
            if !lock(&api.sessions)
                .refresh_tokens
                .contains_key(&get("refresh_token"))
            {
                return oauth(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "expired access/refresh token",
                );
            }
        }
        "authorization_code" => {
            return match super::oauth::exchange_code(&api, &headers, &form) {
                Ok(refresh) => token_body(&api, Some(&refresh)),
                Err(refused) => *refused,
            };
        }
        "" => {
            return oauth(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "grant type not supported",
            );
        }
        _ => {
            return oauth(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "grant type not supported",
            );
        }
    }
    // No grant here returns a refresh token: JWT and client credentials have none,
    // and a refresh keeps the one the client holds.
    let refresh = get("refresh_token");
    if grant == "refresh_token" {
        return token_body_for(&api, None, Some(&refresh));
    }
    token_body(&api, None)
}

/// A token response with a new access token, and `refresh` when the grant issues one.
pub(crate) fn token_body(api: &Api, refresh: Option<&str>) -> Response {
    token_body_for(api, refresh, refresh)
}

/// A token response; the access token is revoked with the refresh token `parent`.
fn token_body_for(api: &Api, refresh: Option<&str>, parent: Option<&str>) -> Response {
    let cfg = &api.config;
    let access = {
        let mut sessions = lock(&api.sessions);
        let access = sessions.issue();
        if let Some(list) = parent.and_then(|p| sessions.refresh_tokens.get_mut(p)) {
            list.push(access.clone());
        }
        access
    };
    let issued_at = api.now().timestamp_millis().to_string();
    let id = format!(
        "{}/id/00DSB0000000001AAA/{}",
        api.base_url,
        super::model::INTEGRATION_USER_ID
    );
    let signature = HmacSha256::new_from_slice(cfg.client_secret.as_bytes())
        .map(|mut mac| {
            mac.update(id.as_bytes());
            mac.update(issued_at.as_bytes());
            STANDARD.encode(mac.finalize().into_bytes())
        })
        .unwrap_or_default();
    let mut body = json!({
        "access_token": access,
        "signature": signature,
        "scope": "api refresh_token",
        "instance_url": api.base_url,
        "id": id,
        "token_type": "Bearer",
        "issued_at": issued_at,
    });
    if let Some(r) = refresh {
        body["refresh_token"] = json!(r);
    }
    Json(body).into_response()
}
