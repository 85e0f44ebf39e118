//! The web-server (authorization code) flow: the consent page
//! (`GET /services/oauth2/authorize`, which here consents at once and redirects back with a
//! code), the `authorization_code` grant with PKCE (RFC 7636, `S256`), and revocation
//! (`POST /services/oauth2/revoke`).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use sha2::Digest;

use super::Api;
use super::auth::basic_credentials;
use super::errors::oauth;
use crate::lock;

/// The org id of the sandbox org (in the identity URL of every token response).
pub const SANDBOX_ORG_ID: &str = "00DSB0000000001AAA";

/// A code the consent page issued, waiting for its exchange.
pub(crate) struct PendingCode {
    redirect_uri: String,
    /// The PKCE challenge (`S256`), when the authorize request sent one.
    challenge: Option<String>,
}

pub(crate) fn routes() -> Router<Arc<Api>> {
    Router::new()
        .route("/services/oauth2/authorize", get(authorize))
        .route("/services/oauth2/revoke", post(revoke))
}

/// `GET /services/oauth2/authorize?response_type=code&client_id&redirect_uri&state
/// [&code_challenge&code_challenge_method=S256]`.
async fn authorize(
    State(api): State<Arc<Api>>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or("");
    if get("response_type") != "code" {
        return oauth(
            StatusCode::BAD_REQUEST,
            "unsupported_response_type",
            "response type not supported",
        );
    }
    if get("client_id") != api.config.client_id {
        return oauth(
            StatusCode::BAD_REQUEST,
            "invalid_client_id",
            "client identifier invalid",
        );
    }
    let redirect = get("redirect_uri");
    let Ok(mut target) = url::Url::parse(redirect) else {
        return oauth(
            StatusCode::BAD_REQUEST,
            "redirect_uri_mismatch",
            "redirect_uri must match configuration",
        );
    };
    let challenge = q.get("code_challenge").cloned();
    if challenge.is_some() && !matches!(get("code_challenge_method"), "" | "S256") {
        return oauth(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "code_challenge_method must be S256",
        );
    }
    let code = {
        let mut sessions = lock(&api.sessions);
        let code = format!("aPrx.sandbox.code.{:08}", sessions.next_code());
        sessions.codes.insert(
            code.clone(),
            PendingCode {
                redirect_uri: redirect.to_owned(),
                challenge,
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

/// The `authorization_code` grant: the client, the code (good once), its redirect URI and,
/// when the code was issued with a challenge, a `code_verifier` whose SHA-256 matches it.
/// Returns the new refresh token.
pub(crate) fn exchange_code(
    api: &Api,
    headers: &HeaderMap,
    form: &BTreeMap<String, String>,
) -> Result<String, Box<Response>> {
    let get = |k: &str| form.get(k).cloned().unwrap_or_default();
    let (id, secret) = basic_credentials(headers)
        .map(|(i, s)| (i, Some(s)))
        .unwrap_or_else(|| (get("client_id"), form.get("client_secret").cloned()));
    if id != api.config.client_id || secret.is_some_and(|s| s != api.config.client_secret) {
        return Err(Box::new(oauth(
            StatusCode::BAD_REQUEST,
            "invalid_client_id",
            "client identifier invalid",
        )));
    }
    let mut sessions = lock(&api.sessions);
    let invalid = || {
        oauth(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "invalid authorization code",
        )
    };
    let pending = sessions.codes.remove(&get("code")).ok_or_else(invalid)?;
    if pending.redirect_uri != get("redirect_uri") {
        return Err(Box::new(oauth(
            StatusCode::BAD_REQUEST,
            "redirect_uri_mismatch",
            "redirect_uri must match configuration",
        )));
    }
    if let Some(challenge) = pending.challenge {
        let verifier = get("code_verifier");
        let computed = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
        if verifier.is_empty() || computed != challenge {
            return Err(Box::new(oauth(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                "invalid code verifier",
            )));
        }
    }
    Ok(sessions.new_refresh_token())
}

/// `POST /services/oauth2/revoke` (form `token=`): a refresh token takes its access tokens
/// with it; an access token goes alone.
async fn revoke(State(api): State<Arc<Api>>, body: Bytes) -> Response {
    let token = url::form_urlencoded::parse(&body)
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    if lock(&api.sessions).revoke(&token) {
        StatusCode::OK.into_response()
    } else {
        oauth(
            StatusCode::BAD_REQUEST,
            "unsupported_token_type",
            "this token type is not supported",
        )
    }
}
