//! Companies (`/crm/v3/objects/companies`): search (`domain` with `EQ` or `IN`, sorted,
//! paged by offset like contacts), batch create (at most 100 inputs, each needing `domain`
//! or `name`, trace ids echoed) and get by id, with HubSpot's payloads. Companies have no
//! unique key: two companies may share a domain, as in HubSpot.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Api;
use super::auth::Authed;
use super::errors::ApiError;
use super::model::{iso, string_props};
use crate::lock;

/// Properties a company search returns when none are asked for (HubSpot's defaults).
const DEFAULT_PROPERTIES: [&str; 5] = [
    "name",
    "domain",
    "createdate",
    "hs_lastmodifieddate",
    "hs_object_id",
];

/// A company of the sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HubSpotCompany {
    /// The record id.
    pub id: u64,
    /// Property values (`domain`, `name`, ...).
    pub properties: BTreeMap<String, String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

impl HubSpotCompany {
    /// The company's domain, if set.
    pub fn domain(&self) -> Option<&str> {
        self.properties.get("domain").map(String::as_str)
    }

    fn to_json(&self, requested: &[String]) -> Value {
        let mut props = serde_json::Map::new();
        for name in requested {
            let value = match name.as_str() {
                "hs_object_id" => Some(self.id.to_string()),
                "createdate" => Some(iso(self.created_at)),
                "hs_lastmodifieddate" => Some(iso(self.created_at)),
                other => self.properties.get(other).cloned(),
            };
            props.insert(name.clone(), value.map_or(Value::Null, Value::String));
        }
        json!({
            "id": self.id.to_string(),
            "properties": props,
            "createdAt": iso(self.created_at),
            "updatedAt": iso(self.created_at),
            "archived": false,
        })
    }
}

/// Companies and contact-company associations.
#[derive(Debug, Clone, Default)]
pub(crate) struct Companies {
    pub(crate) companies: BTreeMap<u64, HubSpotCompany>,
    next_id: u64,
    /// (contact id, company id, association type id).
    pub(crate) associations: BTreeSet<(u64, u64, u32)>,
}

impl Companies {
    pub(crate) fn insert(
        &mut self,
        properties: BTreeMap<String, String>,
        now: DateTime<Utc>,
    ) -> u64 {
        if self.next_id == 0 {
            self.next_id = 5_000_001;
        }
        let id = self.next_id;
        self.next_id += 1;
        self.companies.insert(
            id,
            HubSpotCompany {
                id,
                properties,
                created_at: now,
            },
        );
        id
    }
}

#[derive(Deserialize)]
struct Filter {
    #[serde(rename = "propertyName")]
    property_name: String,
    operator: String,
    #[serde(default)]
    value: Option<Value>,
    #[serde(default)]
    values: Vec<Value>,
}

#[derive(Deserialize)]
struct Group {
    #[serde(default)]
    filters: Vec<Filter>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SearchBody {
    #[serde(default)]
    filter_groups: Vec<Group>,
    #[serde(default)]
    properties: Vec<String>,
    #[serde(default)]
    limit: Option<u64>,
    #[serde(default)]
    after: Option<String>,
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn matches(c: &HubSpotCompany, f: &Filter) -> Result<bool, ApiError> {
    let have = match f.property_name.as_str() {
        "hs_object_id" => Some(c.id.to_string()),
        p => c.properties.get(p).cloned(),
    };
    // HubSpot compares string values of a search case-insensitively.
    let eq = |v: &Value| {
        have.as_deref()
            .is_some_and(|h| h.eq_ignore_ascii_case(&text(v)))
    };
    match f.operator.as_str() {
        "EQ" => Ok(f.value.as_ref().is_some_and(eq)),
        "IN" => Ok(f.values.iter().any(eq)),
        "HAS_PROPERTY" => Ok(have.is_some()),
        other => Err(ApiError::validation(format!(
            "the sandbox's company search supports EQ, IN and HAS_PROPERTY, not {other}"
        ))),
    }
}

/// `POST …/companies/search`.
pub(crate) async fn search(_: Authed, State(api): State<Arc<Api>>, body: Bytes) -> Response {
    let req: SearchBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return api.bad_json(&e),
    };
    let limit = req.limit.unwrap_or(10);
    if limit == 0 || limit > 200 {
        return api.error(ApiError::validation(format!(
            "limit {limit} is outside 1..=200"
        )));
    }
    let after: usize = match req.after.as_deref().map(str::parse).transpose() {
        Ok(a) => a.unwrap_or(0),
        Err(_) => return api.error(ApiError::validation("after must be an integer offset")),
    };
    if req
        .filter_groups
        .iter()
        .any(|g| g.filters.iter().any(|f| f.values.len() > 100))
    {
        return api.error(ApiError::validation(
            "an IN filter takes at most 100 values",
        ));
    }
    let state = lock(&api.state);
    let mut hits = Vec::new();
    for c in state.companies.companies.values() {
        let mut any = req.filter_groups.is_empty();
        for g in &req.filter_groups {
            let mut all = true;
            for f in &g.filters {
                match matches(c, f) {
                    Ok(m) => all &= m,
                    Err(e) => return api.error(e),
                }
            }
            any |= all;
        }
        if any {
            hits.push(c);
        }
    }
    let props: Vec<String> = if req.properties.is_empty() {
        DEFAULT_PROPERTIES.iter().map(|s| (*s).to_owned()).collect()
    } else {
        req.properties.clone()
    };
    let total = hits.len();
    let end = (after + usize::try_from(limit).unwrap_or(200)).min(total);
    let results: Vec<Value> = hits
        .get(after..end)
        .unwrap_or_default()
        .iter()
        .map(|c| c.to_json(&props))
        .collect();
    let mut out = json!({ "total": total, "results": results });
    if end < total {
        out["paging"] = json!({ "next": { "after": end.to_string() } });
    }
    Json(out).into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateInput {
    #[serde(default)]
    properties: serde_json::Map<String, Value>,
    #[serde(default)]
    object_write_trace_id: Option<String>,
}

#[derive(Deserialize)]
struct Inputs<T> {
    inputs: Vec<T>,
}

/// `POST …/companies/batch/create`.
pub(crate) async fn batch_create(_: Authed, State(api): State<Arc<Api>>, body: Bytes) -> Response {
    let batch: Inputs<CreateInput> = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return api.bad_json(&e),
    };
    if batch.inputs.len() > 100 {
        return api.error(ApiError::validation(format!(
            "{} inputs; a batch takes at most 100",
            batch.inputs.len()
        )));
    }
    let now = api.now();
    let mut state = lock(&api.state);
    let mut results = Vec::new();
    let mut errors = Vec::new();
    for input in &batch.inputs {
        let props = string_props(&input.properties);
        let named = ["domain", "name"]
            .iter()
            .any(|k| props.get(*k).is_some_and(|v| !v.trim().is_empty()));
        if !named {
            let e = ApiError::validation("A company needs a domain or a name");
            let ctx = json!({ "objectWriteTraceId": [input.object_write_trace_id] });
            if input.object_write_trace_id.is_none() {
                return api.error(e);
            }
            errors.push(e.batch_entry(ctx));
            continue;
        }
        let id = state.companies.insert(props, now);
        let company = &state.companies.companies[&id];
        let mut v = company.to_json(&company.properties.keys().cloned().collect::<Vec<_>>());
        if let Some(t) = &input.object_write_trace_id {
            v["objectWriteTraceId"] = json!(t);
        }
        results.push(v);
    }
    super::batch::respond(now, StatusCode::CREATED, results, errors)
}

/// `GET …/companies/{companyId}`.
pub(crate) async fn get_one(
    _: Authed,
    State(api): State<Arc<Api>>,
    Path(params): Path<BTreeMap<String, String>>,
) -> Response {
    let id = params.get("companyId").cloned().unwrap_or_default();
    let state = lock(&api.state);
    match id
        .parse()
        .ok()
        .and_then(|n: u64| state.companies.companies.get(&n))
    {
        Some(c) => Json(c.to_json(&DEFAULT_PROPERTIES.map(str::to_owned))).into_response(),
        None => api.error(ApiError::not_found(&id)),
    }
}
