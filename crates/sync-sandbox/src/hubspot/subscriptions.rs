//! The webhook subscription management API of a public app (webhooks v3), authenticated with
//! the developer API key in the `hapikey` query parameter: the app's settings (target URL,
//! throttling) at `/webhooks/v3/{appId}/settings` and its subscriptions at
//! `/webhooks/v3/{appId}/subscriptions` (new ones start paused unless `active` is sent).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value, json};

use super::errors::ApiError;
use super::{Api, HUBSPOT_APP_ID};
use crate::lock;

/// The developer API key the sandbox's subscription endpoints accept (`hapikey`).
pub const DEFAULT_DEVELOPER_API_KEY: &str = "sandbox-developer-hapikey";

/// The app's webhook settings and subscriptions.
#[derive(Default)]
pub(crate) struct Subscriptions {
    settings: Option<Value>,
    /// Subscription id -> the subscription as answered.
    items: BTreeMap<u64, Value>,
    next_id: u64,
}

pub(crate) fn routes() -> Router<Arc<Api>> {
    Router::new()
        .route(
            "/webhooks/v3/{app_id}/settings",
            get(get_settings).put(put_settings).delete(delete_settings),
        )
        .route(
            "/webhooks/v3/{app_id}/subscriptions",
            get(list).post(create),
        )
        .route(
            "/webhooks/v3/{app_id}/subscriptions/{id}",
            get(get_one).patch(update).delete(delete_one),
        )
}

/// The refusal of a request without the developer API key (401) or for another app (404).
fn check(api: &Api, app_id: &str, q: &BTreeMap<String, String>) -> Option<Response> {
    if q.get("hapikey").map(String::as_str) != Some(DEFAULT_DEVELOPER_API_KEY) {
        let e = ApiError::new(
            StatusCode::UNAUTHORIZED,
            "INVALID_AUTHENTICATION",
            "The developer API key provided is invalid.",
        );
        return Some(api.error(e));
    }
    if app_id != HUBSPOT_APP_ID.to_string() {
        return Some(api.error(ApiError::not_found(app_id)));
    }
    None
}

type Args = (
    State<Arc<Api>>,
    Path<BTreeMap<String, String>>,
    Query<BTreeMap<String, String>>,
);

fn app_id(path: &BTreeMap<String, String>) -> &str {
    path.get("app_id").map_or("", String::as_str)
}

async fn get_settings((State(api), Path(p), Query(q)): Args) -> Response {
    if let Some(r) = check(&api, app_id(&p), &q) {
        return r;
    }
    match lock(&api.subscriptions).settings.clone() {
        Some(s) => Json(s).into_response(),
        None => api.error(ApiError::not_found("settings")),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SettingsIn {
    target_url: String,
    #[serde(default)]
    throttling: Option<Value>,
}

async fn put_settings((State(api), Path(p), Query(q)): Args, body: String) -> Response {
    if let Some(r) = check(&api, app_id(&p), &q) {
        return r;
    }
    let input: SettingsIn = match serde_json::from_str(&body) {
        Ok(i) => i,
        Err(e) => return api.bad_json(&e),
    };
    if !input.target_url.starts_with("https://") && !input.target_url.starts_with("http://") {
        return api.error(ApiError::validation("targetUrl must be an http(s) URL"));
    }
    let now = api.now().to_rfc3339();
    let throttling = input
        .throttling
        .unwrap_or_else(|| json!({"maxConcurrentRequests": 10, "period": "SECONDLY"}));
    let mut subs = lock(&api.subscriptions);
    let created = subs
        .settings
        .as_ref()
        .and_then(|s| s.get("createdAt").cloned())
        .unwrap_or_else(|| json!(now));
    let settings = json!({
        "targetUrl": input.target_url,
        "throttling": throttling,
        "createdAt": created,
        "updatedAt": now,
    });
    subs.settings = Some(settings.clone());
    drop(subs);
    Json(settings).into_response()
}

async fn delete_settings((State(api), Path(p), Query(q)): Args) -> Response {
    if let Some(r) = check(&api, app_id(&p), &q) {
        return r;
    }
    lock(&api.subscriptions).settings = None;
    StatusCode::NO_CONTENT.into_response()
}

async fn list((State(api), Path(p), Query(q)): Args) -> Response {
    if let Some(r) = check(&api, app_id(&p), &q) {
        return r;
    }
    let results: Vec<Value> = lock(&api.subscriptions).items.values().cloned().collect();
    Json(json!({ "results": results })).into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubscriptionIn {
    event_type: String,
    #[serde(default)]
    property_name: Option<String>,
    #[serde(default)]
    active: bool,
}

async fn create((State(api), Path(p), Query(q)): Args, body: String) -> Response {
    if let Some(r) = check(&api, app_id(&p), &q) {
        return r;
    }
    let input: SubscriptionIn = match serde_json::from_str(&body) {
        Ok(i) => i,
        Err(e) => return api.bad_json(&e),
    };
    let Some((object, _)) = input.event_type.split_once('.') else {
        return api.error(ApiError::validation(format!(
            "unknown eventType {}",
            input.event_type
        )));
    };
    let needs_property = input.event_type.ends_with(".propertyChange");
    if object.is_empty() || needs_property != input.property_name.is_some() {
        return api.error(ApiError::validation(
            "propertyName is required for propertyChange subscriptions and only for them",
        ));
    }
    let now = api.now().to_rfc3339();
    let mut subs = lock(&api.subscriptions);
    let duplicate = subs.items.values().any(|s| {
        s["eventType"] == json!(input.event_type)
            && s.get("propertyName").cloned().unwrap_or(Value::Null) == json!(input.property_name)
    });
    if duplicate {
        drop(subs);
        return api.error(ApiError::new(
            StatusCode::CONFLICT,
            "CONFLICT",
            "a subscription for this event type and property already exists",
        ));
    }
    subs.next_id += 1;
    let id = subs.next_id;
    let mut item = json!({
        "id": id.to_string(),
        "eventType": input.event_type,
        "active": input.active,
        "createdAt": now,
        "updatedAt": now,
    });
    if let Some(p) = input.property_name {
        item["propertyName"] = json!(p);
    }
    subs.items.insert(id, item.clone());
    drop(subs);
    (StatusCode::CREATED, Json(item)).into_response()
}

fn sub_id(api: &Api, p: &BTreeMap<String, String>) -> Result<u64, Box<Response>> {
    let raw = p.get("id").map_or("", String::as_str);
    raw.parse()
        .map_err(|_| Box::new(api.error(ApiError::not_found(raw))))
}

async fn get_one((State(api), Path(p), Query(q)): Args) -> Response {
    if let Some(r) = check(&api, app_id(&p), &q) {
        return r;
    }
    let id = match sub_id(&api, &p) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    let found = lock(&api.subscriptions).items.get(&id).cloned();
    match found {
        Some(s) => Json(s).into_response(),
        None => api.error(ApiError::not_found(&id.to_string())),
    }
}

#[derive(Deserialize)]
struct UpdateIn {
    active: bool,
}

async fn update((State(api), Path(p), Query(q)): Args, body: String) -> Response {
    if let Some(r) = check(&api, app_id(&p), &q) {
        return r;
    }
    let id = match sub_id(&api, &p) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    let input: UpdateIn = match serde_json::from_str(&body) {
        Ok(i) => i,
        Err(e) => return api.bad_json(&e),
    };
    let now = api.now().to_rfc3339();
    let mut subs = lock(&api.subscriptions);
    let Some(item) = subs.items.get_mut(&id) else {
        drop(subs);
        return api.error(ApiError::not_found(&id.to_string()));
    };
    item["active"] = json!(input.active);
    item["updatedAt"] = json!(now);
    let item = item.clone();
    drop(subs);
    Json(item).into_response()
}

async fn delete_one((State(api), Path(p), Query(q)): Args) -> Response {
    if let Some(r) = check(&api, app_id(&p), &q) {
        return r;
    }
    let id = match sub_id(&api, &p) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    if lock(&api.subscriptions).items.remove(&id).is_none() {
        return api.error(ApiError::not_found(&id.to_string()));
    }
    StatusCode::NO_CONTENT.into_response()
}
