//! The install side of HubSpot OAuth: the consent page (`GET /oauth/authorize`, which here
//! consents at once and redirects back with a code), the `authorization_code` grant, token
//! info (`GET /oauth/v1/access-tokens/{token}`, `GET /oauth/v1/refresh-tokens/{token}`),
//! refresh-token revocation (`DELETE /oauth/v1/refresh-tokens/{token}`) and the account
//! details (`GET /account-info/v3/details`).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde_json::json;

use super::auth::{Authed, oauth_error, token_response};
use super::{Api, HUBSPOT_APP_ID};
use crate::lock;

/// The time zone the sandbox account reports.
pub const SANDBOX_TIME_ZONE: &str = "US/Eastern";

/// A code the consent page issued, waiting for its exchange.
pub(crate) struct PendingCode {
    redirect_uri: String,
    scopes: Vec<String>,
}

pub(crate) fn routes() -> Router<Arc<Api>> {
    Router::new()
        .route("/oauth/authorize", get(authorize))
        .route("/oauth/v1/access-tokens/{token}", get(access_token_info))
        .route(
            "/oauth/v1/refresh-tokens/{token}",
            get(refresh_token_info).delete(revoke_refresh_token),
        )
        .route("/account-info/v3/details", get(account_details))
}

/// `GET /oauth/authorize?client_id&redirect_uri&scope&optional_scope&state`: the user
/// consents at once. Required scopes the account does not offer (the sandbox's configured
/// scopes) refuse the install; optional ones are granted when offered.
async fn authorize(
    State(api): State<Arc<Api>>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or("");
    if get("client_id") != api.config.client_id {
        return (StatusCode::BAD_REQUEST, "unknown client_id").into_response();
    }
    let redirect = get("redirect_uri");
    let Ok(mut target) = url::Url::parse(redirect) else {
        return (StatusCode::BAD_REQUEST, "redirect_uri is not a URL").into_response();
    };
    let offered = &api.config.scopes;
    let required: Vec<String> = get("scope").split_whitespace().map(str::to_owned).collect();
    if let Some(missing) = required.iter().find(|s| !offered.contains(s)) {
        target
            .query_pairs_mut()
            .append_pair("error", "invalid_scope")
            .append_pair(
                "error_description",
                &format!("scope {missing} is not available"),
            )
            .append_pair("state", get("state"));
        return Redirect::to(target.as_str()).into_response();
    }
    let mut scopes = required;
    scopes.extend(
        get("optional_scope")
            .split_whitespace()
            .filter(|s| offered.iter().any(|o| o == s))
            .map(str::to_owned),
    );
    scopes.sort();
    scopes.dedup();
    let code = {
        let mut tokens = lock(&api.tokens);
        let code = format!("sandbox-code-{:06}", tokens.next_code());
        tokens.codes.insert(
            code.clone(),
            PendingCode {
                redirect_uri: redirect.to_owned(),
                scopes,
            },
        );
        code
    };
    target
        .query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", get("state"));
    Redirect::to(target.as_str()).into_response()
}

/// The `authorization_code` grant of `POST /oauth/v1/token`: a code is good once, with the
/// redirect URI it was issued for.
pub(crate) fn exchange_code(api: &Api, form: &BTreeMap<String, String>) -> Response {
    let get = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    if get("client_id") != api.config.client_id {
        return oauth_error(api, "BAD_CLIENT_ID", "missing or unknown client id");
    }
    if get("client_secret") != api.config.client_secret {
        return oauth_error(api, "BAD_CLIENT_SECRET", "missing or invalid client secret");
    }
    let now = api.core.clock.elapsed();
    let mut tokens = lock(&api.tokens);
    let Some(pending) = tokens.codes.remove(get("code")) else {
        drop(tokens);
        return oauth_error(api, "BAD_AUTH_CODE", "missing or unknown auth code");
    };
    if pending.redirect_uri != get("redirect_uri") {
        drop(tokens);
        return oauth_error(api, "BAD_REDIRECT_URI", "redirect URI does not match");
    }
    let refresh = tokens.new_refresh_token(pending.scopes.clone());
    let access = tokens.issue(
        now,
        api.config.access_token_ttl,
        pending.scopes.clone(),
        &refresh,
    );
    drop(tokens);
    token_response(api, &access, &refresh, &pending.scopes)
}

fn not_found(api: &Api, what: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(
            json!({"status": "error", "message": format!("{what} not found"),
                    "correlationId": api.core.correlation_id()}),
        ),
    )
        .into_response()
}

/// `GET /oauth/v1/access-tokens/{token}`.
async fn access_token_info(State(api): State<Arc<Api>>, Path(token): Path<String>) -> Response {
    let now = api.core.clock.elapsed();
    let tokens = lock(&api.tokens);
    let (Some(left), Some(scopes)) = (
        tokens.remaining(&token, now),
        tokens.issued_scopes.get(&token),
    ) else {
        drop(tokens);
        return not_found(&api, "access token");
    };
    let body = json!({
        "token": token,
        "hub_id": api.config.portal_id,
        "app_id": HUBSPOT_APP_ID,
        "user_id": 1,
        "scopes": scopes,
        "expires_in": left.as_secs(),
        "token_type": "access",
        "hub_domain": format!("sandbox-{}.hubspot.test", api.config.portal_id),
        "is_private_distribution": false,
    });
    drop(tokens);
    Json(body).into_response()
}

/// `GET /oauth/v1/refresh-tokens/{token}`.
async fn refresh_token_info(State(api): State<Arc<Api>>, Path(token): Path<String>) -> Response {
    let Some(scopes) = lock(&api.tokens).refresh_tokens.get(&token).cloned() else {
        return not_found(&api, "refresh token");
    };
    Json(json!({
        "token": token,
        "hub_id": api.config.portal_id,
        "client_id": api.config.client_id,
        "user_id": 1,
        "scopes": scopes,
        "token_type": "refresh",
        "hub_domain": format!("sandbox-{}.hubspot.test", api.config.portal_id),
    }))
    .into_response()
}

/// `DELETE /oauth/v1/refresh-tokens/{token}`: 204, after which the token refreshes nothing
/// and the access tokens issued with it are refused.
async fn revoke_refresh_token(State(api): State<Arc<Api>>, Path(token): Path<String>) -> Response {
    if !lock(&api.tokens).revoke_refresh_token(&token) {
        return not_found(&api, "refresh token");
    }
    StatusCode::NO_CONTENT.into_response()
}

/// `GET /account-info/v3/details`.
async fn account_details(State(api): State<Arc<Api>>, _auth: Authed) -> Response {
    Json(json!({
        "portalId": api.config.portal_id,
        "timeZone": SANDBOX_TIME_ZONE,
        "uiDomain": "app.hubspot.com",
    }))
    .into_response()
}
