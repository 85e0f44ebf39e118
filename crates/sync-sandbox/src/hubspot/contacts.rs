//! Single-record contact endpoints: list (cursor paging), get (by id or `idProperty`),
//! create, update, archive.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};

use super::Api;
use super::auth::Authed;
use super::errors::ApiError;
use super::model::{requested, string_props};
use crate::http::QueryPairs;
use crate::lock;

const LIST_MAX: usize = 100;
const LIST_DEFAULT: usize = 10;

fn contact_id(path: &HashMap<String, String>) -> String {
    path.get("contactId").cloned().unwrap_or_default()
}

pub(crate) fn portal_url(api: &Api) -> String {
    format!("https://app.hubspot.com/contacts/{}", api.config.portal_id)
}

/// `GET /crm/v3/objects/contacts?limit&after&properties&archived`
pub(crate) async fn list(
    _: Authed,
    State(api): State<Arc<Api>>,
    RawQuery(q): RawQuery,
) -> Response {
    let q = QueryPairs::parse(q.as_deref());
    let limit = match q.first("limit").map(str::parse::<usize>) {
        None => LIST_DEFAULT,
        Some(Ok(n)) if (1..=LIST_MAX).contains(&n) => n,
        Some(_) => {
            return api.error(ApiError::validation(format!(
                "limit must be an integer between 1 and {LIST_MAX}"
            )));
        }
    };
    let after = match q.first("after").map(str::parse::<u64>) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => return api.error(ApiError::validation("after must be a valid cursor")),
    };
    let archived = q.flag("archived");
    let props = requested(&q.all("properties"));
    let url = portal_url(&api);
    let state = lock(&api.state);
    let mut page = state
        .contacts
        .range(after..)
        .map(|(_, c)| c)
        .filter(|c| c.archived == archived);
    let results: Vec<Value> = page
        .by_ref()
        .take(limit)
        .map(|c| c.to_json(&props, Some(&url)))
        .collect();
    let mut body = json!({ "results": results });
    if let Some(next) = page.next() {
        let mut link = format!(
            "{}/crm/v3/objects/contacts?limit={limit}&after={}",
            api.base_url, next.id
        );
        if archived {
            link.push_str("&archived=true");
        }
        body["paging"] = json!({"next": {"after": next.id.to_string(), "link": link}});
    }
    Json(body).into_response()
}

/// `GET /crm/v3/objects/contacts/{contactId}[?idProperty=email]`
pub(crate) async fn get_one(
    _: Authed,
    State(api): State<Arc<Api>>,
    Path(path): Path<HashMap<String, String>>,
    RawQuery(q): RawQuery,
) -> Response {
    let q = QueryPairs::parse(q.as_deref());
    let id = contact_id(&path);
    let props = requested(&q.all("properties"));
    let state = lock(&api.state);
    match state.resolve(&id, q.first("idProperty"), q.flag("archived")) {
        Some(n) => match state.contacts.get(&n) {
            Some(c) => Json(c.to_json(&props, Some(&portal_url(&api)))).into_response(),
            None => api.error(ApiError::not_found(&id)),
        },
        None => api.error(ApiError::not_found(&id)),
    }
}

#[derive(Deserialize)]
struct WriteBody {
    #[serde(default)]
    properties: serde_json::Map<String, Value>,
}

/// `POST /crm/v3/objects/contacts` -> 201, or 409 on a duplicate email.
pub(crate) async fn create(_: Authed, State(api): State<Arc<Api>>, body: Bytes) -> Response {
    let body: WriteBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return api.bad_json(&e),
    };
    let now = api.now();
    let props = string_props(&body.properties);
    let mut state = lock(&api.state);
    match state.create(&props, super::model::Uniqueness::Enforce, now) {
        Ok(id) => {
            let requested: Vec<String> = props.keys().cloned().collect();
            let c = state
                .contacts
                .get(&id)
                .map(|c| c.to_json(&requested, Some(&portal_url(&api))));
            (StatusCode::CREATED, Json(c.unwrap_or(Value::Null))).into_response()
        }
        Err(e) => {
            drop(state);
            api.error(e)
        }
    }
}

/// `PATCH /crm/v3/objects/contacts/{contactId}[?idProperty=email]`
pub(crate) async fn update(
    _: Authed,
    State(api): State<Arc<Api>>,
    Path(path): Path<HashMap<String, String>>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    let q = QueryPairs::parse(q.as_deref());
    let id = contact_id(&path);
    let body: WriteBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return api.bad_json(&e),
    };
    let props = string_props(&body.properties);
    let now = api.now();
    let mut state = lock(&api.state);
    let Some(n) = state.resolve(&id, q.first("idProperty"), false) else {
        drop(state);
        return api.error(ApiError::not_found(&id));
    };
    match state.update(n, &props, now) {
        Ok(()) => {
            let requested: Vec<String> = props.keys().cloned().collect();
            let c = state
                .contacts
                .get(&n)
                .map(|c| c.to_json(&requested, Some(&portal_url(&api))));
            Json(c.unwrap_or(Value::Null)).into_response()
        }
        Err(e) => {
            drop(state);
            api.error(e)
        }
    }
}

/// `DELETE /crm/v3/objects/contacts/{contactId}` -> 204 (archives; idempotent).
pub(crate) async fn archive(
    _: Authed,
    State(api): State<Arc<Api>>,
    Path(path): Path<HashMap<String, String>>,
) -> Response {
    let now = api.now();
    if let Ok(n) = contact_id(&path).parse::<u64>() {
        lock(&api.state).archive(n, now);
    }
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MergeBody {
    primary_object_id: Value,
    object_id_to_merge: Value,
}

fn as_id(v: &Value) -> Option<u64> {
    match v {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

/// `POST /crm/v3/objects/contacts/merge` -> 200 with the surviving contact.
pub(crate) async fn merge(_: Authed, State(api): State<Arc<Api>>, body: Bytes) -> Response {
    let b: MergeBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return api.bad_json(&e),
    };
    let (Some(primary), Some(secondary)) =
        (as_id(&b.primary_object_id), as_id(&b.object_id_to_merge))
    else {
        return api.error(ApiError::validation(
            "primaryObjectId and objectIdToMerge must be record ids",
        ));
    };
    let now = api.now();
    let mut state = lock(&api.state);
    match state.merge(primary, secondary, now) {
        Ok(()) => {
            let c = state
                .contacts
                .get(&primary)
                .map(|c| c.to_json(&[], Some(&portal_url(&api))));
            Json(c.unwrap_or(Value::Null)).into_response()
        }
        Err(e) => {
            drop(state);
            api.error(e)
        }
    }
}
