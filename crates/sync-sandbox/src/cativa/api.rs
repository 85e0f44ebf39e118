//! Cativa API handlers: `auth/me`, the admin lookup by email, and the preview writes
//! (badge assign / remove, user creation) honouring `Idempotency-Key`.
//!
//! Errors are RFC 7807 problem details (`application/problem+json`), the ASP.NET
//! default: `{"type","title","status","detail","traceId"}`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::model::{BadgeSource, CativaState, Stored, iso};
use super::{Api, Event};
use crate::lock;

/// An RFC 7807 problem response.
pub(crate) fn problem(status: StatusCode, detail: &str, trace_id: &str) -> Response {
    let body = json!({
        "type": format!("https://httpstatuses.io/{}", status.as_u16()),
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "detail": detail,
        "traceId": trace_id,
    });
    let mut r = (status, Json(body)).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    r
}

/// The API key of a request: `Authorization: Bearer <key>` or `X-Api-Key: <key>`.
fn api_key(headers: &HeaderMap) -> Option<&str> {
    crate::http::bearer(headers).or_else(|| crate::http::header_str(headers, "x-api-key"))
}

/// Extractor admitting only requests with a known API key.
pub(crate) struct Keyed;

impl FromRequestParts<Arc<Api>> for Keyed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, api: &Arc<Api>) -> Result<Self, Response> {
        match api_key(&parts.headers) {
            Some(k) if api.config.api_keys.iter().any(|known| known == k) => Ok(Self),
            Some(_) => Err(problem(
                StatusCode::UNAUTHORIZED,
                "The API key is invalid or revoked.",
                &api.core.correlation_id(),
            )),
            None => Err(problem(
                StatusCode::UNAUTHORIZED,
                "Missing API key: send it as `Authorization: Bearer <key>` (or `X-Api-Key`).",
                &api.core.correlation_id(),
            )),
        }
    }
}

/// `GET /social/v1/auth/me`: the user owning the key and its tenant.
pub(crate) async fn me(_: Keyed, State(api): State<Arc<Api>>) -> Response {
    let c = &api.config;
    Json(json!({
        "Id": c.key_owner_id,
        "Email": c.key_owner_email,
        "DisplayName": "Sandbox integration",
        "CustomerId": c.customer_id,
        "Roles": ["Partner"],
    }))
    .into_response()
}

/// `GET /social/v1/admin/users/email/{email}`: 403 for partner keys unless allowed.
pub(crate) async fn admin_lookup(
    _: Keyed,
    State(api): State<Arc<Api>>,
    Path(path): Path<HashMap<String, String>>,
) -> Response {
    let trace = api.core.correlation_id();
    if !*lock(&api.admin_lookup_allowed) {
        return problem(
            StatusCode::FORBIDDEN,
            "Partner API keys cannot use the admin user lookup yet. Ask dev@cativa.digital to enable it, or build your email -> user id mapping from user_created webhooks.",
            &trace,
        );
    }
    let email = path.get("email").cloned().unwrap_or_default();
    let state = lock(&api.state);
    match state.find_by_email(&email) {
        Some(u) => {
            let mut v = u.to_json(None);
            v["CustomerId"] = json!(api.config.customer_id);
            Json(v).into_response()
        }
        None => problem(
            StatusCode::NOT_FOUND,
            &format!("No user with email {email}."),
            &trace,
        ),
    }
}

fn fingerprint(method: &Method, path: &str, body: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(method.as_str());
    h.update([0]);
    h.update(path);
    h.update([0]);
    h.update(body);
    h.finalize().into()
}

fn render(status: u16, body: Option<&str>, replayed: bool) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let mut r = match body {
        Some(b) => (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            b.to_owned(),
        )
            .into_response(),
        None => status.into_response(),
    };
    if replayed {
        r.headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    r
}

/// Runs `effect` once per `Idempotency-Key`: a repeat with the same request replays
/// the stored response; the same key on a different request is a 422.
fn idempotent<F>(
    api: &Api,
    headers: &HeaderMap,
    method: &Method,
    path: &str,
    body: &[u8],
    effect: F,
) -> Response
where
    F: FnOnce(&mut CativaState, &str) -> (StatusCode, Option<Value>),
{
    let trace = api.core.correlation_id();
    let key = crate::http::header_str(headers, "idempotency-key").map(str::to_owned);
    let mut state = lock(&api.state);
    let Some(key) = key else {
        let (status, body) = effect(&mut state, &trace);
        return render(
            status.as_u16(),
            body.map(|b| b.to_string()).as_deref(),
            false,
        );
    };
    state.keys_seen.push(key.clone());
    let fp = fingerprint(method, path, body);
    if let Some(stored) = state.idempotency.get(&key) {
        if stored.fingerprint != fp {
            drop(state);
            return problem(
                StatusCode::UNPROCESSABLE_ENTITY,
                "This Idempotency-Key was already used with a different request. Use a new key for a new operation.",
                &trace,
            );
        }
        return render(stored.status, stored.body.as_deref(), true);
    }
    let (status, body) = effect(&mut state, &trace);
    let body = body.map(|b| b.to_string());
    // Server errors are not remembered, so a retry can succeed.
    if !status.is_server_error() {
        state.idempotency.insert(
            key,
            Stored {
                fingerprint: fp,
                status: status.as_u16(),
                body: body.clone(),
            },
        );
    }
    render(status.as_u16(), body.as_deref(), false)
}

fn problem_value(status: StatusCode, detail: &str, trace: &str) -> (StatusCode, Option<Value>) {
    (
        status,
        Some(
            json!({"type": format!("https://httpstatuses.io/{}", status.as_u16()),
                    "title": status.canonical_reason().unwrap_or("Error"),
                    "status": status.as_u16(), "detail": detail, "traceId": trace}),
        ),
    )
}

/// `POST /social/v1/users/{user_id}/badges/{badge_id}`: 201 when granted, 200 when
/// already held.
pub(crate) async fn grant_badge(
    _: Keyed,
    State(api): State<Arc<Api>>,
    Path(path): Path<HashMap<String, String>>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let user = path.get("user_id").cloned().unwrap_or_default();
    let badge = path.get("badge_id").cloned().unwrap_or_default();
    let now = api.now();
    let p = format!("/social/v1/users/{user}/badges/{badge}");
    let mut granted = false;
    let resp = idempotent(
        &api,
        &headers,
        &method,
        &p,
        &body,
        |state, trace| match state.grant(&user, &badge, BadgeSource::Api, now) {
            None => problem_value(
                StatusCode::NOT_FOUND,
                &format!("User {user} not found."),
                trace,
            ),
            Some(new) => {
                granted = new;
                (
                    if new {
                        StatusCode::CREATED
                    } else {
                        StatusCode::OK
                    },
                    Some(
                        json!({"UserId": user, "BadgeId": badge, "GrantedAt": iso(now), "Created": new}),
                    ),
                )
            }
        },
    );
    if granted {
        api.emit(Event::UserReceivedBadge {
            user_id: user,
            badge_id: badge,
        });
    }
    resp
}

/// `DELETE /social/v1/users/{user_id}/badges/{badge_id}` -> 204 (also when not held).
pub(crate) async fn remove_badge(
    _: Keyed,
    State(api): State<Arc<Api>>,
    Path(path): Path<HashMap<String, String>>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let user = path.get("user_id").cloned().unwrap_or_default();
    let badge = path.get("badge_id").cloned().unwrap_or_default();
    let p = format!("/social/v1/users/{user}/badges/{badge}");
    idempotent(&api, &headers, &method, &p, b"", |state, trace| match state
        .revoke(&user, &badge, true)
    {
        None => problem_value(
            StatusCode::NOT_FOUND,
            &format!("User {user} not found."),
            trace,
        ),
        Some(_) => (StatusCode::NO_CONTENT, None),
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct NewUser {
    #[serde(default)]
    email: String,
    #[serde(default)]
    first_name: String,
    #[serde(default)]
    last_name: String,
    #[serde(default)]
    phone_number: Option<String>,
}

/// `POST /social/v1/users` -> 201 with the user; 409 when the email exists.
pub(crate) async fn create_user(
    _: Keyed,
    State(api): State<Arc<Api>>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = api.now();
    let parsed: Result<NewUser, _> = serde_json::from_slice(&body);
    let customer = api.config.customer_id.clone();
    let mut created: Option<String> = None;
    let resp = idempotent(
        &api,
        &headers,
        &method,
        "/social/v1/users",
        &body,
        |state, trace| {
            let nu = match parsed {
                Ok(n) => n,
                Err(e) => {
                    return problem_value(
                        StatusCode::BAD_REQUEST,
                        &format!("The request body is not valid JSON: {e}"),
                        trace,
                    );
                }
            };
            let email = nu.email.trim();
            if email.is_empty() || !email.contains('@') || email.contains(char::is_whitespace) {
                let (s, mut v) = problem_value(
                    StatusCode::BAD_REQUEST,
                    "One or more validation errors occurred.",
                    trace,
                );
                if let Some(v) = v.as_mut() {
                    v["errors"] =
                        json!({"Email": ["The Email field is not a valid e-mail address."]});
                }
                return (s, v);
            }
            if let Some(existing) = state.find_by_email(email) {
                return problem_value(
                    StatusCode::CONFLICT,
                    &format!("A user with email {email} already exists: {}.", existing.id),
                    trace,
                );
            }
            let user = state.add_user(
                email,
                &nu.first_name,
                &nu.last_name,
                nu.phone_number,
                true,
                now,
            );
            created = Some(user.id.clone());
            let mut v = user.to_json(None);
            v["CustomerId"] = json!(customer);
            (StatusCode::CREATED, Some(v))
        },
    );
    // A user created through the API fires user_created like any other channel.
    if let Some(user_id) = created {
        api.emit(Event::UserCreated { user_id });
    }
    resp
}
