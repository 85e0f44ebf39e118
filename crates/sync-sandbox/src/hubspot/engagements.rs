//! Notes (activity logging, association type 202 to contacts) and Lists v3 memberships.

use std::collections::{BTreeMap, HashMap};
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
use super::model::{HubSpotNote, HubSpotState, iso, string_props};
use crate::http::QueryPairs;
use crate::lock;

#[derive(Deserialize)]
struct NoteBody {
    #[serde(default)]
    properties: serde_json::Map<String, Value>,
    #[serde(default)]
    associations: Vec<Association>,
}

#[derive(Deserialize)]
struct Association {
    to: AssociationTo,
    #[serde(default)]
    types: Vec<AssociationType>,
}

#[derive(Deserialize)]
struct AssociationTo {
    id: Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AssociationType {
    #[serde(default)]
    association_type_id: u32,
}

/// A note's properties and its (contact id, association type id) pairs.
type CheckedNote = (BTreeMap<String, String>, Vec<(u64, u32)>);

/// Checks a note and resolves its contact associations.
fn check_note(state: &HubSpotState, b: &NoteBody) -> Result<CheckedNote, ApiError> {
    let props: BTreeMap<String, String> = string_props(&b.properties);
    if props.get("hs_timestamp").is_none_or(|t| t.is_empty()) {
        return Err(ApiError::invalid_properties(&[
            super::errors::PropertyError::invalid(
                "hs_timestamp",
                "REQUIRED_PROPERTY",
                "hs_timestamp is required".into(),
            ),
        ]));
    }
    let mut assoc = Vec::new();
    for a in &b.associations {
        let id = match &a.to.id {
            Value::String(s) => s.parse::<u64>().ok(),
            Value::Number(n) => n.as_u64(),
            _ => None,
        };
        let Some(id) = id.filter(|id| state.contacts.get(id).is_some_and(|c| !c.archived)) else {
            return Err(ApiError::validation(format!(
                "One or more associations are invalid: object {} does not exist",
                a.to.id
            )));
        };
        for t in &a.types {
            assoc.push((id, t.association_type_id));
        }
    }
    Ok((props, assoc))
}

fn note_json(note: &HubSpotNote) -> Value {
    json!({
        "id": note.id.to_string(),
        "properties": note.properties,
        "createdAt": iso(note.created_at),
        "updatedAt": iso(note.created_at),
        "archived": false,
    })
}

/// `POST /crm/v3/objects/notes` -> 201; `hs_timestamp` is required.
pub(crate) async fn create_note(_: Authed, State(api): State<Arc<Api>>, body: Bytes) -> Response {
    let b: NoteBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return api.bad_json(&e),
    };
    let now = api.now();
    let mut state = lock(&api.state);
    match check_note(&state, &b) {
        Ok((props, assoc)) => {
            let note = state.add_note(props, assoc, now);
            (StatusCode::CREATED, Json(note_json(&note))).into_response()
        }
        Err(e) => {
            drop(state);
            api.error(e)
        }
    }
}

#[derive(Deserialize)]
struct NoteInputs {
    inputs: Vec<NoteBody>,
}

/// `POST /crm/v3/objects/notes/batch/create` (at most 100): all or nothing.
pub(crate) async fn batch_create_notes(
    _: Authed,
    State(api): State<Arc<Api>>,
    body: Bytes,
) -> Response {
    let b: NoteInputs = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return api.bad_json(&e),
    };
    if b.inputs.len() > super::batch::BATCH_MAX {
        return api.error(ApiError::validation(format!(
            "Too many inputs: {}. The maximum number of inputs in a batch request is {}.",
            b.inputs.len(),
            super::batch::BATCH_MAX
        )));
    }
    let now = api.now();
    let mut state = lock(&api.state);
    let checked: Result<Vec<_>, ApiError> =
        b.inputs.iter().map(|n| check_note(&state, n)).collect();
    let checked = match checked {
        Ok(c) => c,
        Err(e) => {
            drop(state);
            return api.error(e);
        }
    };
    let results: Vec<Value> = checked
        .into_iter()
        .map(|(props, assoc)| note_json(&state.add_note(props, assoc, now)))
        .collect();
    let body = json!({
        "status": "COMPLETE",
        "results": results,
        "requestedAt": iso(now),
        "startedAt": iso(now),
        "completedAt": iso(now),
    });
    (StatusCode::CREATED, Json(body)).into_response()
}

/// `GET /crm/v3/lists/records/{objectTypeId}/{recordId}/memberships`: the lists a
/// record is in (a bare array, as the spec shows).
pub(crate) async fn record_memberships(
    _: Authed,
    State(api): State<Arc<Api>>,
    Path(path): Path<HashMap<String, String>>,
) -> Response {
    let record = path
        .get("recordId")
        .and_then(|r| r.parse::<u64>().ok())
        .unwrap_or(0);
    let state = lock(&api.state);
    let lists: Vec<Value> = state
        .lists
        .values()
        .filter_map(|l| {
            l.members.get(&record).map(|at| {
                json!({
                    "listId": l.list_id.to_string(),
                    "listVersion": 1,
                    "firstAddedTimestamp": iso(*at),
                    "lastAddedTimestamp": iso(*at),
                    "isPublicList": false,
                })
            })
        })
        .collect();
    Json(lists).into_response()
}

fn list_id(api: &Api, path: &HashMap<String, String>) -> Result<u64, Box<Response>> {
    let raw = path.get("listId").cloned().unwrap_or_default();
    raw.parse::<u64>()
        .ok()
        .filter(|id| lock(&api.state).lists.contains_key(id))
        .ok_or_else(|| Box::new(api.error(ApiError::not_found(&raw))))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateList {
    name: String,
    #[serde(default)]
    processing_type: Option<String>,
}

/// `POST /crm/v3/lists`
pub(crate) async fn create_list(_: Authed, State(api): State<Arc<Api>>, body: Bytes) -> Response {
    let b: CreateList = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return api.bad_json(&e),
    };
    let mut state = lock(&api.state);
    if state
        .lists
        .values()
        .any(|l| l.name.to_lowercase() == b.name.to_lowercase())
    {
        drop(state);
        return api.error(ApiError::new(
            StatusCode::CONFLICT,
            "OBJECT_ALREADY_EXISTS",
            format!("A list named '{}' already exists.", b.name),
        ));
    }
    let id = state.create_list(&b.name, b.processing_type.as_deref().unwrap_or("MANUAL"));
    let list = state.lists.get(&id).map(super::model::HubSpotList::to_json);
    Json(json!({ "list": list })).into_response()
}

/// `GET /crm/v3/lists/object-type-id/{objectTypeId}/name/{listName}`
pub(crate) async fn list_by_name(
    _: Authed,
    State(api): State<Arc<Api>>,
    Path(path): Path<HashMap<String, String>>,
) -> Response {
    let name = path.get("listName").cloned().unwrap_or_default();
    let found = lock(&api.state)
        .lists
        .values()
        // The spec: the name is not case sensitive.
        .find(|l| l.name.to_lowercase() == name.to_lowercase())
        .map(super::model::HubSpotList::to_json);
    match found {
        Some(l) => Json(json!({ "list": l })).into_response(),
        None => api.error(ApiError::not_found(&name)),
    }
}

/// `GET /crm/v3/lists/{listId}/memberships?limit&after` (limit at most 250).
pub(crate) async fn memberships(
    _: Authed,
    State(api): State<Arc<Api>>,
    Path(path): Path<HashMap<String, String>>,
    RawQuery(q): RawQuery,
) -> Response {
    let id = match list_id(&api, &path) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    let q = QueryPairs::parse(q.as_deref());
    let limit = match q.first("limit").map(str::parse::<usize>) {
        None => 100,
        Some(Ok(n)) if (1..=250).contains(&n) => n,
        Some(_) => return api.error(ApiError::validation("limit must be between 1 and 250")),
    };
    let after = q
        .first("after")
        .and_then(|a| a.parse::<u64>().ok())
        .unwrap_or(0);
    let state = lock(&api.state);
    let Some(list) = state.lists.get(&id) else {
        drop(state);
        return api.error(ApiError::not_found(&id.to_string()));
    };
    let mut iter = list.members.range(after..);
    let results: Vec<Value> = iter
        .by_ref()
        .take(limit)
        .map(|(rid, at)| json!({"recordId": rid.to_string(), "membershipTimestamp": iso(*at)}))
        .collect();
    let mut body = json!({ "results": results, "total": list.members.len() });
    if let Some((next, _)) = iter.next() {
        body["paging"] = json!({"next": {"after": next.to_string()}});
    }
    Json(body).into_response()
}

async fn change_members(
    api: Arc<Api>,
    path: HashMap<String, String>,
    body: Bytes,
    add: bool,
) -> Response {
    let id = match list_id(&api, &path) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    let ids: Vec<String> = match serde_json::from_slice::<Vec<Value>>(&body) {
        Ok(v) => v
            .into_iter()
            .map(|x| match x {
                Value::String(s) => s,
                other => other.to_string(),
            })
            .collect(),
        Err(e) => return api.bad_json(&e),
    };
    let now = api.now();
    let mut state = lock(&api.state);
    let live: Vec<Option<u64>> = ids
        .iter()
        .map(|s| {
            s.parse::<u64>()
                .ok()
                .filter(|n| state.contacts.get(n).is_some_and(|c| !c.archived))
        })
        .collect();
    let Some(list) = state.lists.get_mut(&id) else {
        drop(state);
        return api.error(ApiError::not_found(&id.to_string()));
    };
    if list.processing_type == "DYNAMIC" {
        drop(state);
        return api.error(ApiError::validation(
            "Memberships of DYNAMIC lists cannot be edited",
        ));
    }
    let (mut changed, mut missing) = (Vec::new(), Vec::new());
    for (raw, n) in ids.iter().zip(live) {
        match n {
            None => missing.push(raw.clone()),
            Some(n) if add => {
                if list.members.insert(n, now).is_none() {
                    changed.push(raw.clone());
                }
            }
            Some(n) => {
                if list.members.remove(&n).is_some() {
                    changed.push(raw.clone());
                }
            }
        }
    }
    let (added, removed) = if add {
        (changed, Vec::new())
    } else {
        (Vec::new(), changed)
    };
    // "recordsIdsAdded" is spelled so in the spec.
    Json(
        json!({"recordsIdsAdded": added, "recordIdsRemoved": removed, "recordIdsMissing": missing}),
    )
    .into_response()
}

/// `PUT /crm/v3/lists/{listId}/memberships/add` with a JSON array of record ids.
pub(crate) async fn add_members(
    _: Authed,
    State(api): State<Arc<Api>>,
    Path(path): Path<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    change_members(api, path, body, true).await
}

/// `PUT /crm/v3/lists/{listId}/memberships/remove`
pub(crate) async fn remove_members(
    _: Authed,
    State(api): State<Arc<Api>>,
    Path(path): Path<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    change_members(api, path, body, false).await
}
