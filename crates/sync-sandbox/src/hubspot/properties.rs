//! Properties API for contacts: list, get, create, update (options replace the list).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use super::Api;
use super::auth::Authed;
use super::errors::ApiError;
use super::model::{PropertyDef, PropertyOption};
use crate::lock;

fn name(path: &HashMap<String, String>) -> String {
    path.get("propertyName").cloned().unwrap_or_default()
}

/// `GET /crm/v3/properties/contacts` -> `{"results":[...]}` (no paging).
pub(crate) async fn list(_: Authed, State(api): State<Arc<Api>>) -> Response {
    let now = api.now();
    let state = lock(&api.state);
    let results: Vec<Value> = state.properties.values().map(|p| p.to_json(now)).collect();
    Json(json!({ "results": results })).into_response()
}

/// `GET /crm/v3/properties/contacts/{propertyName}`
pub(crate) async fn get_one(
    _: Authed,
    State(api): State<Arc<Api>>,
    Path(path): Path<HashMap<String, String>>,
) -> Response {
    let n = name(&path);
    let now = api.now();
    let found = lock(&api.state).properties.get(&n).map(|p| p.to_json(now));
    match found {
        Some(p) => Json(p).into_response(),
        None => api.error(ApiError::not_found(&n)),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PropertyBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    label: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    field_type: Option<String>,
    #[serde(default)]
    group_name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    options: Option<Vec<PropertyOption>>,
    #[serde(default)]
    has_unique_value: Option<bool>,
}

const TYPES: [&str; 7] = [
    "bool",
    "date",
    "datetime",
    "enumeration",
    "number",
    "phone_number",
    "string",
];

/// `POST /crm/v3/properties/contacts` -> 201, 409 when the name exists.
pub(crate) async fn create(_: Authed, State(api): State<Arc<Api>>, body: Bytes) -> Response {
    const SCHEMA_WRITE: &str = "crm.schemas.contacts.write";
    if !api.config.scopes.iter().any(|s| s == SCHEMA_WRITE) {
        return api.error(ApiError::missing_scope(SCHEMA_WRITE));
    }
    let b: PropertyBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return api.bad_json(&e),
    };
    let (Some(name), Some(label), Some(kind), Some(field_type)) =
        (b.name, b.label, b.kind, b.field_type)
    else {
        return api.error(ApiError::validation(
            "name, label, type and fieldType are required",
        ));
    };
    if !TYPES.contains(&kind.as_str()) {
        return api.error(ApiError::validation(format!(
            "type {kind} is not one of {}",
            TYPES.join(", ")
        )));
    }
    let now = api.now();
    let mut state = lock(&api.state);
    if state.properties.contains_key(&name) {
        drop(state);
        return api.error(ApiError::new(
            StatusCode::CONFLICT,
            "OBJECT_ALREADY_EXISTS",
            format!("A property named '{name}' already exists."),
        ));
    }
    let mut def = PropertyDef::new(&name, &label, &kind, &field_type);
    def.hubspot_defined = false;
    def.group_name = b.group_name.unwrap_or_else(|| "contactinformation".into());
    def.description = b.description.unwrap_or_default();
    def.options = b.options.unwrap_or_default();
    def.has_unique_value = b.has_unique_value.unwrap_or(false);
    let json = def.to_json(now);
    state.properties.insert(name, def);
    (StatusCode::CREATED, Json(json)).into_response()
}

/// `PATCH /crm/v3/properties/contacts/{propertyName}`; `options` replaces the list.
pub(crate) async fn update(
    _: Authed,
    State(api): State<Arc<Api>>,
    Path(path): Path<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    let n = name(&path);
    let b: PropertyBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return api.bad_json(&e),
    };
    let now = api.now();
    let mut state = lock(&api.state);
    let Some(def) = state.properties.get_mut(&n) else {
        drop(state);
        return api.error(ApiError::not_found(&n));
    };
    if def.hubspot_defined && def.read_only {
        drop(state);
        return api.error(ApiError::validation(format!(
            "{n} is a read-only HubSpot property"
        )));
    }
    if let Some(l) = b.label {
        def.label = l;
    }
    if let Some(d) = b.description {
        def.description = d;
    }
    if let Some(g) = b.group_name {
        def.group_name = g;
    }
    if let Some(o) = b.options {
        def.options = o;
    }
    Json(def.to_json(now)).into_response()
}
