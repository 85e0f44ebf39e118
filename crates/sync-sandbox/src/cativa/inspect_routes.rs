//! `/__sandbox/...` endpoints of the Cativa sandbox: state, sign-ups, badges granted
//! elsewhere, and emitting webhooks (for manual runs with the binary).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;

use super::Api;
use super::model::BadgeSource;
use super::webhook::SignatureMode;
use crate::lock;

pub(crate) fn routes() -> Router<Arc<Api>> {
    Router::new()
        .route("/__sandbox/state", get(state))
        .route("/__sandbox/users", post(sign_up))
        .route(
            "/__sandbox/users/{user_id}/badges/{badge_id}",
            post(grant_elsewhere),
        )
        .route("/__sandbox/webhooks/emit", post(emit))
}

fn bad(msg: String) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": msg}))).into_response()
}

async fn state(State(api): State<Arc<Api>>) -> Response {
    let state = lock(&api.state);
    Json(json!({
        "users": state.users.values().collect::<Vec<_>>(),
        "effects": state.effects,
        "idempotencyKeysSeen": state.keys_seen,
        "deliveries": *lock(&api.deliveries),
    }))
    .into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SignUp {
    email: String,
    #[serde(default)]
    first_name: String,
    #[serde(default)]
    last_name: String,
}

async fn sign_up(State(api): State<Arc<Api>>, body: Bytes) -> Response {
    let b: SignUp = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return bad(e.to_string()),
    };
    let now = api.now();
    let user = lock(&api.state).add_user(&b.email, &b.first_name, &b.last_name, None, false, now);
    (StatusCode::CREATED, Json(user.to_json(None))).into_response()
}

async fn grant_elsewhere(
    State(api): State<Arc<Api>>,
    Path(path): Path<HashMap<String, String>>,
) -> Response {
    let user = path.get("user_id").cloned().unwrap_or_default();
    let badge = path.get("badge_id").cloned().unwrap_or_default();
    let now = api.now();
    match lock(&api.state).grant(&user, &badge, BadgeSource::Elsewhere, now) {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "user not found"})),
        )
            .into_response(),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Emit {
    url: String,
    event: String,
    user_id: String,
    #[serde(default)]
    badge_id: Option<String>,
    /// `valid` (default), `wrong_secret`, `tampered`, `missing`, `garbage`.
    #[serde(default)]
    signature: Option<String>,
}

async fn emit(State(api): State<Arc<Api>>, body: Bytes) -> Response {
    let b: Emit = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return bad(e.to_string()),
    };
    let mode = match b.signature.as_deref().unwrap_or("valid") {
        "valid" => SignatureMode::Valid,
        "wrong_secret" => SignatureMode::WrongSecret,
        "tampered" => SignatureMode::TamperedBody,
        "missing" => SignatureMode::Missing,
        "garbage" => SignatureMode::Garbage,
        other => return bad(format!("unknown signature mode {other}")),
    };
    let delivery = match (b.event.as_str(), b.badge_id) {
        ("user_created", _) => api.user_created_delivery(&b.user_id),
        ("user_received_badge", Some(badge)) => {
            api.user_received_badge_delivery(&b.user_id, &badge)
        }
        ("user_received_badge", None) => return bad("user_received_badge needs badgeId".into()),
        (other, _) => return bad(format!("unknown event {other}")),
    };
    let delivery = match delivery {
        Ok(d) => d,
        Err(e) => return bad(e.to_string()),
    };
    match api.send(&b.url, &delivery, &mode).await {
        Ok(outcome) => Json(json!({"executionId": delivery.execution_id, "status": outcome.status, "body": outcome.body})).into_response(),
        Err(e) => (StatusCode::BAD_GATEWAY, Json(json!({"error": e.to_string()}))).into_response(),
    }
}
