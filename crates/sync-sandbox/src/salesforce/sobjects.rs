//! Writes: sObject Collections create / update / upsert (at most 200 records, results
//! in request order, `allOrNone`), single-record create / read / update / delete, and
//! upsert by external ID (201 / 200 / 300).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::Api;
use super::auth::Session;
use super::errors::{SfError, not_found};
use super::model::{INTEGRATION_USER_ID, Origin, SfState, WriteResult};
use crate::lock;

/// Records per collections call.
pub const COLLECTION_MAX: usize = 200;

/// The oldest API version serving sObject Collections upsert (`created` in its results).
pub const COLLECTION_UPSERT_MIN_VERSION: (u32, u32) = (46, 0);

/// `vNN.N` as numbers.
fn version(path: &HashMap<String, String>) -> Option<(u32, u32)> {
    let (major, minor) = path.get("version")?.strip_prefix('v')?.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

fn version_ok(path: &HashMap<String, String>) -> bool {
    version(path).is_some()
}

/// `client=<id>` of `Sforce-Call-Options`.
///
/// Salesforce documents the header for query, queryAll, search, sObject basic information,
/// rows and rows by external ID. There it is recorded and stamped on the records written
/// (what CDC reports as `changeOrigin`). Elsewhere (collections) it has no documented
/// effect: it is ignored and the endpoint is listed as a misplaced use.
pub(crate) fn call_client(
    api: &Api,
    headers: &HeaderMap,
    documented: bool,
    endpoint: &str,
) -> Option<String> {
    let raw = crate::http::header_str(headers, "sforce-call-options")?;
    let client = raw
        .split(',')
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("client"))
        .map(|(_, v)| v.trim().to_owned())?;
    let mut state = lock(&api.state);
    if !documented {
        state.misplaced_call_options.push(endpoint.to_owned());
        return None;
    }
    state.call_options.push(client.clone());
    Some(client)
}

/// Whether Salesforce can route an external ID value in a URL path. A `/` (sent as
/// `%2F`), `.` or `..` lands on another resource, and the guide warns that email-like
/// values ending in some domains (`.inc`) answer 404.
fn path_value_routable(value: &str) -> bool {
    !(value.is_empty()
        || value == "."
        || value == ".."
        || value.contains('/')
        || (value.contains('@') && value.to_ascii_lowercase().ends_with(".inc")))
}

fn api_origin(client: Option<&str>) -> Origin<'_> {
    Origin {
        user: INTEGRATION_USER_ID,
        client,
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CollectionBody {
    #[serde(default)]
    all_or_none: bool,
    #[serde(default)]
    records: Vec<Map<String, Value>>,
}

fn record_type(r: &Map<String, Value>) -> Option<String> {
    r.get("attributes")
        .and_then(|a| a.get("type"))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

fn parse_collection(body: &[u8]) -> Result<CollectionBody, Box<Response>> {
    let parsed: CollectionBody = serde_json::from_slice(body).map_err(|e| {
        SfError::new(
            "JSON_PARSER_ERROR",
            format!("Cannot parse the request body: {e}"),
        )
        .respond(StatusCode::BAD_REQUEST)
    })?;
    if parsed.records.len() > COLLECTION_MAX {
        return Err(Box::new(
            SfError::new(
                "EXCEEDED_ID_LIMIT",
                format!(
                    "record limit exceeded: {} records sent, at most {COLLECTION_MAX} allowed",
                    parsed.records.len()
                ),
            )
            .respond(StatusCode::BAD_REQUEST),
        ));
    }
    Ok(parsed)
}

/// Per-record results in request order; under `allOrNone` a failure rolls back the rest.
fn results_json(outcomes: &[(WriteResult, Option<bool>)], all_or_none: bool) -> Value {
    let failed = outcomes.iter().any(|(o, _)| o.is_err());
    let rows: Vec<Value> = outcomes
        .iter()
        .map(|(o, created)| match o {
            Ok(_) if all_or_none && failed => {
                json!({"success": false, "errors": [SfError::new("ALL_OR_NONE_OPERATION_ROLLED_BACK", "Record rolled back because not all records were valid and the request was using AllOrNone header").record()]})
            }
            Ok(id) => {
                let mut v = json!({"id": id, "success": true, "errors": []});
                if let Some(c) = created {
                    v["created"] = json!(c);
                }
                v
            }
            Err(e) => json!({"success": false, "errors": [e.record()]}),
        })
        .collect();
    Value::Array(rows)
}

/// Applies `write` to each record on a scratch copy of the state; commits the copy
/// unless `allOrNone` and something failed.
fn apply_all<F>(api: &Api, body: &CollectionBody, mut write: F) -> Value
where
    F: FnMut(&mut SfState, &Map<String, Value>) -> (WriteResult, Option<bool>),
{
    let mut state = lock(&api.state);
    let mut scratch = SfState::clone_for_write(&state);
    let outcomes: Vec<(WriteResult, Option<bool>)> = body
        .records
        .iter()
        .map(|r| write(&mut scratch, r))
        .collect();
    let failed = outcomes.iter().any(|(o, _)| o.is_err());
    if !(body.all_or_none && failed) {
        state.commit(scratch);
    }
    results_json(&outcomes, body.all_or_none)
}

/// `POST /composite/sobjects`
pub(crate) async fn collection_create(
    _: Session,
    State(api): State<Arc<Api>>,
    Path(path): Path<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !version_ok(&path) {
        return not_found();
    }
    call_client(&api, &headers, false, "POST composite/sobjects");
    let body = match parse_collection(&body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let now = api.now();
    let out = apply_all(&api, &body, |state, r| {
        let Some(t) = record_type(r) else {
            return (
                Err(SfError::new(
                    "INVALID_TYPE",
                    "Must send a concrete entity type.",
                )),
                None,
            );
        };
        (state.create(&t, r, api_origin(None), now), None)
    });
    Json(out).into_response()
}

/// `PATCH /composite/sobjects` (records carry `id`).
pub(crate) async fn collection_update(
    _: Session,
    State(api): State<Arc<Api>>,
    Path(path): Path<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !version_ok(&path) {
        return not_found();
    }
    call_client(&api, &headers, false, "PATCH composite/sobjects");
    let body = match parse_collection(&body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let now = api.now();
    let out = apply_all(&api, &body, |state, r| {
        let id = r
            .get("id")
            .or_else(|| r.get("Id"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        if id.is_empty() {
            return (
                Err(
                    SfError::new("MISSING_ARGUMENT", "Id not specified in an update call")
                        .with_fields(vec!["Id".into()]),
                ),
                None,
            );
        }
        let mut fields = r.clone();
        fields.remove("id");
        fields.remove("Id");
        (state.update(&id, &fields, api_origin(None), now), None)
    });
    Json(out).into_response()
}

/// Upsert of one record by external id on `state`; `Ok` carries whether it was created.
fn upsert_one(
    state: &mut SfState,
    object: &str,
    ext_field: &str,
    value: &str,
    fields: &Map<String, Value>,
    origin: Origin<'_>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(String, bool), (SfError, Vec<String>)> {
    let matches = state.matching(object, ext_field, value);
    match matches.as_slice() {
        [] => {
            let mut with_key = fields.clone();
            with_key.insert(ext_field.to_owned(), Value::String(value.to_owned()));
            state
                .create(object, &with_key, origin, now)
                .map(|id| (id, true))
                .map_err(|e| (e, Vec::new()))
        }
        [one] => state
            .update(one, fields, origin, now)
            .map(|id| (id, false))
            .map_err(|e| (e, Vec::new())),
        many => Err((
            SfError::new(
                "DUPLICATE_EXTERNAL_ID",
                format!(
                    "{ext_field}: more than one record found for external id field: {}",
                    many.join(", ")
                ),
            ),
            many.to_vec(),
        )),
    }
}

fn key_field(api: &Api, object: &str, field: &str) -> Result<(String, String), Box<Response>> {
    let state = lock(&api.state);
    let schema = state.schema(object).ok_or_else(not_found)?;
    let def = schema
        .field(field)
        .filter(|d| d.external_id || d.id_lookup)
        .ok_or_else(not_found)?;
    Ok((schema.name.clone(), def.name.clone()))
}

/// `PATCH /composite/sobjects/{object}/{field}` (upsert by external id; results carry `created`).
pub(crate) async fn collection_upsert(
    _: Session,
    State(api): State<Arc<Api>>,
    Path(path): Path<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // Collections upsert does not exist before its minimum version.
    if version(&path).is_none_or(|v| v < COLLECTION_UPSERT_MIN_VERSION) {
        return not_found();
    }
    let (object, field) = match key_field(
        &api,
        path.get("object").map_or("", String::as_str),
        path.get("field").map_or("", String::as_str),
    ) {
        Ok(k) => k,
        Err(r) => return *r,
    };
    call_client(
        &api,
        &headers,
        false,
        "PATCH composite/sobjects/{object}/{field}",
    );
    let body = match parse_collection(&body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let now = api.now();
    let out = apply_all(&api, &body, |state, r| {
        if record_type(r).is_some_and(|t| !t.eq_ignore_ascii_case(&object)) {
            return (
                Err(SfError::new(
                    "INVALID_TYPE",
                    format!("Only {object} records can be upserted in this call"),
                )),
                None,
            );
        }
        let key = r
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(&field))
            .and_then(|(_, v)| v.as_str())
            .unwrap_or("")
            .to_owned();
        if key.is_empty() {
            return (
                Err(
                    SfError::new("MISSING_ARGUMENT", format!("{field} not specified"))
                        .with_fields(vec![field.clone()]),
                ),
                None,
            );
        }
        let mut fields = r.clone();
        fields.retain(|k, _| !k.eq_ignore_ascii_case(&field));
        match upsert_one(state, &object, &field, &key, &fields, api_origin(None), now) {
            Ok((id, created)) => (Ok(id), Some(created)),
            Err((e, _)) => (Err(e), None),
        }
    });
    Json(out).into_response()
}

/// `PATCH /sobjects/{object}/{field}/{value}`: 201 created, 200 updated, 300 when
/// several records match (nothing written).
pub(crate) async fn upsert(
    _: Session,
    State(api): State<Arc<Api>>,
    Path(path): Path<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !version_ok(&path) {
        return not_found();
    }
    let version = path.get("version").cloned().unwrap_or_default();
    let (object, field) = match key_field(
        &api,
        path.get("object").map_or("", String::as_str),
        path.get("field").map_or("", String::as_str),
    ) {
        Ok(k) => k,
        Err(r) => return *r,
    };
    let value = path.get("value").cloned().unwrap_or_default();
    if !path_value_routable(&value) {
        return not_found();
    }
    let client = call_client(
        &api,
        &headers,
        true,
        "PATCH sobjects/{object}/{field}/{value}",
    );
    let fields: Map<String, Value> = match serde_json::from_slice(&body) {
        Ok(f) => f,
        Err(e) => {
            return SfError::new(
                "JSON_PARSER_ERROR",
                format!("Cannot parse the request body: {e}"),
            )
            .respond(StatusCode::BAD_REQUEST);
        }
    };
    if let Some(k) = fields
        .keys()
        .find(|k| k.eq_ignore_ascii_case("Id") || k.eq_ignore_ascii_case(&field))
    {
        return SfError::new("INVALID_FIELD", format!("Unable to create/update fields: {k}. The record id and the external id field belong in the URL, not the body."))
            .with_fields(vec![k.clone()])
            .respond(StatusCode::BAD_REQUEST);
    }
    let now = api.now();
    let mut state = lock(&api.state);
    match upsert_one(
        &mut state,
        &object,
        &field,
        &value,
        &fields,
        api_origin(client.as_deref()),
        now,
    ) {
        Ok((id, created)) => {
            let status = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            (
                status,
                Json(json!({"id": id, "success": true, "errors": [], "created": created})),
            )
                .into_response()
        }
        Err((_, many)) if !many.is_empty() => {
            let urls: Vec<String> = many
                .iter()
                .map(|id| format!("/services/data/{version}/sobjects/{object}/{id}"))
                .collect();
            (StatusCode::MULTIPLE_CHOICES, Json(json!(urls))).into_response()
        }
        Err((e, _)) => e.respond(StatusCode::BAD_REQUEST),
    }
}

/// `POST /sobjects/{object}` -> 201 `{"id","success","errors"}` (Task activity goes here).
pub(crate) async fn create(
    _: Session,
    State(api): State<Arc<Api>>,
    Path(path): Path<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !version_ok(&path) {
        return not_found();
    }
    let object = path.get("object").cloned().unwrap_or_default();
    let client = call_client(&api, &headers, true, "POST sobjects/{object}");
    let fields: Map<String, Value> = match serde_json::from_slice(&body) {
        Ok(f) => f,
        Err(e) => {
            return SfError::new(
                "JSON_PARSER_ERROR",
                format!("Cannot parse the request body: {e}"),
            )
            .respond(StatusCode::BAD_REQUEST);
        }
    };
    let now = api.now();
    let result = lock(&api.state).create(&object, &fields, api_origin(client.as_deref()), now);
    match result {
        Ok(id) => (
            StatusCode::CREATED,
            Json(json!({"id": id, "success": true, "errors": []})),
        )
            .into_response(),
        Err(e) if e.code == "INVALID_TYPE" => not_found(),
        Err(e) => e.respond(StatusCode::BAD_REQUEST),
    }
}

/// `GET /sobjects/{object}/{id}`
pub(crate) async fn get_one(
    _: Session,
    State(api): State<Arc<Api>>,
    Path(path): Path<HashMap<String, String>>,
) -> Response {
    if !version_ok(&path) {
        return not_found();
    }
    let version = path.get("version").cloned().unwrap_or_default();
    let id = path.get("id").cloned().unwrap_or_default();
    let state = lock(&api.state);
    let Some(r) = state.records.get(&id).filter(|r| r.deleted.is_none()) else {
        drop(state);
        return not_found();
    };
    let Some(schema) = state.schema(&r.object) else {
        drop(state);
        return not_found();
    };
    let fields: Vec<String> = schema.fields.keys().cloned().collect();
    Json(r.to_json(schema, &fields, &version)).into_response()
}

/// `PATCH /sobjects/{object}/{id}` -> 204.
pub(crate) async fn update(
    _: Session,
    State(api): State<Arc<Api>>,
    Path(path): Path<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !version_ok(&path) {
        return not_found();
    }
    let id = path.get("id").cloned().unwrap_or_default();
    let client = call_client(&api, &headers, true, "PATCH sobjects/{object}/{id}");
    let fields: Map<String, Value> = match serde_json::from_slice(&body) {
        Ok(f) => f,
        Err(e) => {
            return SfError::new(
                "JSON_PARSER_ERROR",
                format!("Cannot parse the request body: {e}"),
            )
            .respond(StatusCode::BAD_REQUEST);
        }
    };
    let now = api.now();
    let result = lock(&api.state).update(&id, &fields, api_origin(client.as_deref()), now);
    match result {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) if e.code == "INVALID_CROSS_REFERENCE_KEY" => not_found(),
        Err(e) => e.respond(StatusCode::BAD_REQUEST),
    }
}

/// `DELETE /sobjects/{object}/{id}` -> 204 (the record goes to the recycle bin and
/// shows up in `deleted/` and `queryAll`).
pub(crate) async fn delete(
    _: Session,
    State(api): State<Arc<Api>>,
    Path(path): Path<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if !version_ok(&path) {
        return not_found();
    }
    let id = path.get("id").cloned().unwrap_or_default();
    let _ = call_client(&api, &headers, true, "DELETE sobjects/{object}/{id}");
    let now = api.now();
    if lock(&api.state).delete(&id, now) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        not_found()
    }
}

/// `DELETE /composite/sobjects?ids=a,b&allOrNone=false`: one result per id, in order.
pub(crate) async fn collection_delete(
    _: Session,
    State(api): State<Arc<Api>>,
    Path(path): Path<HashMap<String, String>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if !version_ok(&path) {
        return not_found();
    }
    call_client(&api, &headers, false, "DELETE composite/sobjects");
    let ids: Vec<String> = query
        .get("ids")
        .map(|s| {
            s.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let all_or_none = query.get("allOrNone").is_some_and(|v| v == "true");
    let now = api.now();
    let mut state = lock(&api.state);
    let mut scratch = SfState::clone_for_write(&state);
    let outcomes: Vec<(WriteResult, Option<bool>)> = ids
        .iter()
        .map(|id| {
            let r = if scratch.delete(id, now) {
                Ok(id.clone())
            } else {
                Err(SfError::new(
                    "ENTITY_IS_DELETED",
                    "entity is deleted or does not exist",
                ))
            };
            (r, None)
        })
        .collect();
    let failed = outcomes.iter().any(|(o, _)| o.is_err());
    if !(all_or_none && failed) {
        state.commit(scratch);
    }
    Json(results_json(&outcomes, all_or_none)).into_response()
}
