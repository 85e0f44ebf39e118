//! `/__sandbox/...` endpoints of the HubSpot sandbox: state, and mutations behind the
//! client's back (tags, archive, property values, token expiry, seeding).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;

use super::Api;
use super::model::Uniqueness;
use crate::lock;

pub(crate) fn routes() -> Router<Arc<Api>> {
    Router::new()
        .route("/__sandbox/state", get(state))
        .route("/__sandbox/contacts", get(contacts))
        .route("/__sandbox/tokens/expire", post(expire_tokens))
        .route("/__sandbox/seed", post(seed))
        .route("/__sandbox/contacts/{id}/archive", post(archive))
        .route(
            "/__sandbox/contacts/{id}/tags/{tag}",
            post(add_tag).delete(remove_tag),
        )
        .route(
            "/__sandbox/contacts/{id}/properties/{name}",
            put(set_property),
        )
}

fn id_of(path: &HashMap<String, String>) -> u64 {
    path.get("id").and_then(|s| s.parse().ok()).unwrap_or(0)
}

fn outcome(ok: bool, what: &str) -> Response {
    if ok {
        StatusCode::NO_CONTENT.into_response()
    } else {
        (
            StatusCode::NOT_FOUND,
            Json(json!({"error": format!("{what} not found")})),
        )
            .into_response()
    }
}

async fn state(State(api): State<Arc<Api>>) -> Response {
    let state = lock(&api.state);
    let tokens = lock(&api.tokens).issued_count();
    Json(json!({
        "contacts": state.contacts.values().collect::<Vec<_>>(),
        "notes": state.notes,
        "lists": state.lists.values().collect::<Vec<_>>(),
        "properties": state.properties.keys().collect::<Vec<_>>(),
        "tokensIssued": tokens,
    }))
    .into_response()
}

async fn contacts(State(api): State<Arc<Api>>) -> Response {
    let state = lock(&api.state);
    Json(state.contacts.values().collect::<Vec<_>>()).into_response()
}

async fn expire_tokens(State(api): State<Arc<Api>>) -> StatusCode {
    let now = api.core.clock.elapsed();
    lock(&api.tokens).expire_all(now);
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct SeedBody {
    contacts: usize,
    #[serde(default)]
    seed: u64,
}

async fn seed(State(api): State<Arc<Api>>, body: Bytes) -> Response {
    let b: SeedBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": e.to_string()})),
            )
                .into_response();
        }
    };
    let generated = crate::datagen::generate(
        &crate::datagen::DataGenConfig::default()
            .with_contacts(b.contacts)
            .with_seed(b.seed),
    );
    let now = api.now();
    let prop = api.config.tags_property.clone();
    let mut state = lock(&api.state);
    let mut ids = Vec::new();
    for c in &generated {
        if let Some(def) = state.properties.get_mut(&prop) {
            for t in &c.tags {
                if !def.options.iter().any(|o| &o.value == t) {
                    def.options.push(super::PropertyOption::new(t.clone()));
                }
            }
        }
        match state.with_source(None, |s| {
            s.create(&c.hubspot_properties(&prop), Uniqueness::Ignore, now)
        }) {
            Ok(id) => ids.push(id),
            Err(e) => {
                return (StatusCode::BAD_REQUEST, Json(json!({"error": e.message})))
                    .into_response();
            }
        }
    }
    Json(json!({ "ids": ids })).into_response()
}

async fn archive(
    State(api): State<Arc<Api>>,
    Path(path): Path<HashMap<String, String>>,
) -> Response {
    let now = api.now();
    let ok = lock(&api.state).with_source(Some("CRM"), |s| s.archive(id_of(&path), now));
    outcome(ok, "live contact")
}

async fn add_tag(
    State(api): State<Arc<Api>>,
    Path(path): Path<HashMap<String, String>>,
) -> Response {
    let now = api.now();
    let tag = path.get("tag").cloned().unwrap_or_default();
    let ok = lock(&api.state).with_source(Some("CRM"), |s| {
        s.add_tag(id_of(&path), &api.config.tags_property, &tag, now)
    });
    outcome(ok, "contact")
}

async fn remove_tag(
    State(api): State<Arc<Api>>,
    Path(path): Path<HashMap<String, String>>,
) -> Response {
    let now = api.now();
    let tag = path.get("tag").cloned().unwrap_or_default();
    let ok = lock(&api.state).with_source(Some("CRM"), |s| {
        s.remove_tag(id_of(&path), &api.config.tags_property, &tag, now)
    });
    outcome(ok, "contact")
}

async fn set_property(
    State(api): State<Arc<Api>>,
    Path(path): Path<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let name = path.get("name").cloned().unwrap_or_default();
    let value = String::from_utf8_lossy(&body).into_owned();
    let now = api.now();
    let props = BTreeMap::from([(name, value)]);
    let result = lock(&api.state).with_source(Some("CRM"), |s| s.update(id_of(&path), &props, now));
    match result {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => (e.status, Json(json!({"error": e.message}))).into_response(),
    }
}
