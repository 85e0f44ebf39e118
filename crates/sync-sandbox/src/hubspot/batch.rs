//! Batch endpoints: read, create, update, upsert, archive (at most 100 inputs), with
//! HubSpot's all-or-nothing vs 207 multi-status rules.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::Api;
use super::auth::Authed;
use super::contacts::portal_url;
use super::errors::ApiError;
use super::model::{HubSpotState, iso, string_props};
use crate::http::QueryPairs;
use crate::lock;

type Props = BTreeMap<String, String>;
/// Outcome of one update input; the flag marks "not found" (always a per-input error). The
/// error is boxed: it is large and most inputs succeed.
type UpdateOutcome = Result<(u64, Props), (Box<ApiError>, bool)>;
/// Outcome of one upsert input: the existing record (if any) and validated values.
type UpsertOutcome = Result<(Option<u64>, Props), ApiError>;

/// HubSpot's limit on inputs per batch request.
pub(crate) const BATCH_MAX: usize = 100;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BatchBody<T> {
    inputs: Vec<T>,
    #[serde(default)]
    properties: Vec<String>,
    #[serde(default)]
    id_property: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WriteInput {
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    id_property: Option<String>,
    #[serde(default)]
    properties: serde_json::Map<String, Value>,
    #[serde(default)]
    object_write_trace_id: Option<String>,
}

impl WriteInput {
    fn id_string(&self) -> String {
        match &self.id {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => String::new(),
        }
    }
}

fn parse<T: DeserializeOwned>(api: &Api, body: &[u8]) -> Result<BatchBody<T>, Box<Response>> {
    let parsed: BatchBody<T> = serde_json::from_slice(body).map_err(|e| api.bad_json(&e))?;
    if parsed.inputs.len() > BATCH_MAX {
        return Err(Box::new(api.error(ApiError::validation(format!(
            "Too many inputs: {}. The maximum number of inputs in a batch request is {BATCH_MAX}.",
            parsed.inputs.len()
        )))));
    }
    Ok(parsed)
}

/// A batch answer: `ok` when every input succeeded, else 207 with the errors (HubSpot's
/// shape for every batch endpoint).
pub(super) fn respond(
    now: DateTime<Utc>,
    ok: StatusCode,
    results: Vec<Value>,
    errors: Vec<Value>,
) -> Response {
    let mut body = json!({
        "status": "COMPLETE",
        "results": results,
        "requestedAt": iso(now),
        "startedAt": iso(now),
        "completedAt": iso(now),
    });
    if errors.is_empty() {
        (ok, Json(body)).into_response()
    } else {
        body["numErrors"] = json!(errors.len());
        body["errors"] = Value::Array(errors);
        (StatusCode::MULTI_STATUS, Json(body)).into_response()
    }
}

fn trace_context(input: &WriteInput) -> Value {
    match &input.object_write_trace_id {
        Some(t) => json!({ "objectWriteTraceId": [t] }),
        None => json!({}),
    }
}

fn duplicate_ids(ids: &[String], case_insensitive: bool) -> Option<Vec<String>> {
    let mut seen = BTreeSet::new();
    let dups: Vec<String> = ids
        .iter()
        .filter(|id| {
            let key = if case_insensitive {
                id.to_lowercase()
            } else {
                (*id).clone()
            };
            !seen.insert(key)
        })
        .cloned()
        .collect();
    (!dups.is_empty()).then_some(dups)
}

/// `POST .../batch/read[?archived=]`
pub(crate) async fn read(
    _: Authed,
    State(api): State<Arc<Api>>,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    #[derive(Deserialize)]
    struct ReadInput {
        id: Value,
    }
    let q = QueryPairs::parse(q.as_deref());
    let batch: BatchBody<ReadInput> = match parse(&api, &body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let archived = q.flag("archived");
    let now = api.now();
    let url = portal_url(&api);
    let state = lock(&api.state);
    let mut results = Vec::new();
    let mut missing = Vec::new();
    for input in &batch.inputs {
        let id = match &input.id {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        match state.resolve(&id, batch.id_property.as_deref(), archived) {
            Some(n) => {
                if let Some(c) = state.contacts.get(&n) {
                    results.push(c.to_json(&batch.properties, Some(&url)));
                }
            }
            None => missing.push(id),
        }
    }
    let errors = if missing.is_empty() {
        Vec::new()
    } else {
        vec![json!({
            "status": "error",
            "category": "OBJECT_NOT_FOUND",
            "message": "Could not get some CONTACT objects, they may be deleted or not exist. Check that ids are valid.",
            "context": { "ids": missing },
        })]
    };
    respond(now, StatusCode::OK, results, errors)
}

/// `POST .../batch/create` -> 201, or 207 when every input carries an
/// `objectWriteTraceId` and some fail; otherwise one bad input fails the batch.
pub(crate) async fn create(_: Authed, State(api): State<Arc<Api>>, body: Bytes) -> Response {
    let batch: BatchBody<WriteInput> = match parse(&api, &body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let now = api.now();
    let url = portal_url(&api);
    let traced = batch
        .inputs
        .iter()
        .all(|i| i.object_write_trace_id.is_some());
    let mut state = lock(&api.state);
    let mut emails_in_batch = BTreeSet::new();
    let outcomes: Vec<Result<BTreeMap<String, String>, ApiError>> = batch
        .inputs
        .iter()
        .map(|input| {
            let props = string_props(&input.properties);
            let valid = state
                .validate(&props, None)
                .map_err(|e| ApiError::invalid_properties(&e))?;
            state.check_unique(&valid, None)?;
            if let Some(email) = valid.get("email").filter(|e| !e.is_empty())
                && !emails_in_batch.insert(email.trim().to_lowercase())
            {
                return Err(ApiError::validation(format!(
                    "Duplicate IDs found in batch input: [{email}]"
                )));
            }
            Ok(valid)
        })
        .collect();
    if !traced && let Some(Err(e)) = outcomes.iter().find(|o| o.is_err()) {
        let e = ApiError::clone(e);
        drop(state);
        return api.error(e);
    }
    let mut results = Vec::new();
    let mut errors = Vec::new();
    for (input, outcome) in batch.inputs.iter().zip(outcomes) {
        match outcome {
            Ok(props) => {
                let names: Vec<String> = props.keys().cloned().collect();
                let id = state.insert(props, now);
                if let Some(c) = state.contacts.get(&id) {
                    let mut v = c.to_json(&names, Some(&url));
                    if let Some(t) = &input.object_write_trace_id {
                        v["objectWriteTraceId"] = json!(t);
                    }
                    results.push(v);
                }
            }
            Err(e) => errors.push(e.batch_entry(trace_context(input))),
        }
    }
    respond(now, StatusCode::CREATED, results, errors)
}

/// `POST .../batch/update`: unknown ids are per-input `OBJECT_NOT_FOUND` errors (207).
pub(crate) async fn update(_: Authed, State(api): State<Arc<Api>>, body: Bytes) -> Response {
    let batch: BatchBody<WriteInput> = match parse(&api, &body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let ids: Vec<String> = batch.inputs.iter().map(WriteInput::id_string).collect();
    if let Some(d) = duplicate_ids(&ids, false) {
        return api.error(ApiError::validation(format!(
            "Duplicate IDs found in batch input: [{}]. IDs must be unique",
            d.join(", ")
        )));
    }
    let now = api.now();
    let url = portal_url(&api);
    let traced = batch
        .inputs
        .iter()
        .all(|i| i.object_write_trace_id.is_some());
    let mut state = lock(&api.state);
    let outcomes: Vec<UpdateOutcome> = batch
        .inputs
        .iter()
        .map(|input| {
            let id = input.id_string();
            let id_prop = input
                .id_property
                .as_deref()
                .or(batch.id_property.as_deref());
            let target = state
                .resolve(&id, id_prop, false)
                .ok_or_else(|| (Box::new(ApiError::not_found(&id)), true))?;
            let current = state.contacts.get(&target);
            let props = string_props(&input.properties);
            let valid = state
                .validate(&props, current)
                .map_err(|e| (Box::new(ApiError::invalid_properties(&e)), false))?;
            state
                .check_unique(&valid, Some(target))
                .map_err(|e| (Box::new(e), false))?;
            Ok((target, valid))
        })
        .collect();
    if !traced && let Some(Err((e, false))) = outcomes.iter().find(|o| matches!(o, Err((_, false))))
    {
        let e = ApiError::clone(e);
        drop(state);
        return api.error(e);
    }
    let mut results = Vec::new();
    let mut errors = Vec::new();
    for (input, outcome) in batch.inputs.iter().zip(outcomes) {
        match outcome {
            Ok((id, props)) => {
                let names: Vec<String> = props.keys().cloned().collect();
                state.apply(id, props, now);
                if let Some(c) = state.contacts.get(&id) {
                    results.push(c.to_json(&names, Some(&url)));
                }
            }
            Err((e, true)) => errors.push(e.batch_entry(json!({ "ids": [input.id_string()] }))),
            Err((e, false)) => errors.push(e.batch_entry(trace_context(input))),
        }
    }
    respond(now, StatusCode::OK, results, errors)
}

/// `POST .../batch/upsert` with `idProperty` `email` or a unique property; results
/// carry `"new": true|false`.
pub(crate) async fn upsert(_: Authed, State(api): State<Arc<Api>>, body: Bytes) -> Response {
    let batch: BatchBody<WriteInput> = match parse(&api, &body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let now = api.now();
    let url = portal_url(&api);
    let mut state = lock(&api.state);
    let mut id_props = BTreeSet::new();
    for input in &batch.inputs {
        let Some(prop) = input
            .id_property
            .clone()
            .or_else(|| batch.id_property.clone())
        else {
            drop(state);
            return api.error(ApiError::validation("idProperty is required for upsert"));
        };
        if !state.is_id_property(&prop) {
            drop(state);
            return api.error(ApiError::validation(format!(
                "{prop} is not a unique property and can't be used as idProperty"
            )));
        }
        id_props.insert(prop);
    }
    let by_email = id_props.contains("email");
    let ids: Vec<String> = batch.inputs.iter().map(WriteInput::id_string).collect();
    if let Some(d) = duplicate_ids(&ids, by_email) {
        drop(state);
        return api.error(ApiError::validation(format!(
            "Duplicate IDs found in batch input: [{}]. IDs must be unique",
            d.join(", ")
        )));
    }
    let traced = batch
        .inputs
        .iter()
        .all(|i| i.object_write_trace_id.is_some());
    let outcomes: Vec<UpsertOutcome> = batch
        .inputs
        .iter()
        .map(|input| upsert_one(&state, input, batch.id_property.as_deref()))
        .collect();
    // Partial upserts are not supported by email: one bad input fails the batch.
    if (by_email || !traced)
        && let Some(Err(e)) = outcomes.iter().find(|o| o.is_err())
    {
        let e = ApiError::clone(e);
        drop(state);
        return api.error(e);
    }
    let mut results = Vec::new();
    let mut errors = Vec::new();
    for (input, outcome) in batch.inputs.iter().zip(outcomes) {
        match outcome {
            Ok((target, props)) => {
                let names: Vec<String> = props.keys().cloned().collect();
                let (id, new) = match target {
                    Some(id) => {
                        state.apply(id, props, now);
                        (id, false)
                    }
                    None => (state.insert(props, now), true),
                };
                if let Some(c) = state.contacts.get(&id) {
                    let mut v = c.to_json(&names, Some(&url));
                    v["new"] = json!(new);
                    results.push(v);
                }
            }
            Err(e) => errors.push(e.batch_entry(trace_context(input))),
        }
    }
    respond(now, StatusCode::OK, results, errors)
}

fn upsert_one(
    state: &HubSpotState,
    input: &WriteInput,
    default_prop: Option<&str>,
) -> UpsertOutcome {
    let id = input.id_string();
    let prop = input
        .id_property
        .as_deref()
        .or(default_prop)
        .unwrap_or("email");
    let target = state.find_by(prop, &id);
    let current = target.and_then(|t| state.contacts.get(&t));
    let mut props = string_props(&input.properties);
    if target.is_none() {
        props.entry(prop.to_owned()).or_insert_with(|| id.clone());
    }
    let valid = state
        .validate(&props, current)
        .map_err(|e| ApiError::invalid_properties(&e))?;
    state.check_unique(&valid, target)?;
    Ok((target, valid))
}

/// `POST .../batch/archive` -> 204.
pub(crate) async fn archive(_: Authed, State(api): State<Arc<Api>>, body: Bytes) -> Response {
    #[derive(Deserialize)]
    struct ArchiveInput {
        id: Value,
    }
    let batch: BatchBody<ArchiveInput> = match parse(&api, &body) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    let now = api.now();
    let mut state = lock(&api.state);
    for input in &batch.inputs {
        let id = match &input.id {
            Value::String(s) => s.parse::<u64>().ok(),
            Value::Number(n) => n.as_u64(),
            _ => None,
        };
        if let Some(id) = id {
            state.archive(id, now);
        }
    }
    StatusCode::NO_CONTENT.into_response()
}
