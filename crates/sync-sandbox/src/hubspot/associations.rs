//! Associations v4 between contacts and companies: batch create
//! (`POST /crm/v4/associations/contacts/companies/batch/create`), list
//! (`GET /crm/v4/objects/contacts/{id}/associations/companies`) and remove
//! (`DELETE /crm/v4/objects/contacts/{id}/associations/companies/{companyId}`). The
//! primary type (`HUBSPOT_DEFINED` 1) sets the contact's `associatedcompanyid`, as
//! HubSpot shows the primary company there.

use std::collections::BTreeMap;
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
use crate::lock;

/// Contact to company, primary.
const PRIMARY: u32 = 1;
/// The most inputs a v4 create batch takes here (HubSpot's figure is not documented).
const MAX_INPUTS: usize = 2000;

#[derive(Deserialize)]
struct Ref {
    id: Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Spec {
    #[serde(default)]
    association_category: String,
    association_type_id: u32,
}

#[derive(Deserialize)]
struct Input {
    from: Ref,
    to: Ref,
    #[serde(default)]
    types: Vec<Spec>,
}

#[derive(Deserialize)]
struct Inputs {
    inputs: Vec<Input>,
}

fn id_of(v: &Value) -> Option<u64> {
    match v {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

fn pair(params: &BTreeMap<String, String>) -> (String, String) {
    let get = |k: &str| params.get(k).cloned().unwrap_or_default();
    (get("fromObjectType"), get("toObjectType"))
}

/// `POST /crm/v4/associations/{from}/{to}/batch/create` (contacts to companies only).
pub(crate) async fn batch_create(
    _: Authed,
    State(api): State<Arc<Api>>,
    Path(params): Path<BTreeMap<String, String>>,
    body: Bytes,
) -> Response {
    if pair(&params) != ("contacts".to_owned(), "companies".to_owned()) {
        return api.error(ApiError::validation(
            "the sandbox associates contacts to companies only",
        ));
    }
    let batch: Inputs = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return api.bad_json(&e),
    };
    if batch.inputs.len() > MAX_INPUTS {
        return api.error(ApiError::validation(format!(
            "{} inputs; at most {MAX_INPUTS}",
            batch.inputs.len()
        )));
    }
    let now = api.now();
    let mut state = lock(&api.state);
    let mut results = Vec::new();
    let mut errors = Vec::new();
    for input in &batch.inputs {
        let (from, to) = (id_of(&input.from.id), id_of(&input.to.id));
        let known = from.filter(|f| state.contacts.get(f).is_some_and(|c| !c.archived));
        let company = to.filter(|t| state.companies.companies.contains_key(t));
        let (Some(contact), Some(company)) = (known, company) else {
            let missing = if known.is_none() {
                &input.from.id
            } else {
                &input.to.id
            };
            let e = ApiError::validation(format!("No object found for id {missing}"));
            errors.push(e.batch_entry(
                json!({ "fromObjectId": [input.from.id], "toObjectId": [input.to.id] }),
            ));
            continue;
        };
        let mut labels = Vec::new();
        for spec in &input.types {
            if spec.association_category != "HUBSPOT_DEFINED" && spec.association_type_id == PRIMARY
            {
                return api.error(ApiError::validation("type 1 is HUBSPOT_DEFINED"));
            }
            state
                .companies
                .associations
                .insert((contact, company, spec.association_type_id));
            if spec.association_type_id == PRIMARY {
                labels.push(json!("Primary"));
                // The previous primary company stays associated, no longer primary.
                let others: Vec<_> = state
                    .companies
                    .associations
                    .iter()
                    .filter(|(c, o, t)| *c == contact && *o != company && *t == PRIMARY)
                    .copied()
                    .collect();
                for old in others {
                    state.companies.associations.remove(&old);
                    state.companies.associations.insert((old.0, old.1, 279));
                }
                let props =
                    BTreeMap::from([("associatedcompanyid".to_owned(), company.to_string())]);
                state.apply(contact, props, now);
            }
        }
        results.push(json!({
            "fromObjectTypeId": "0-1",
            "fromObjectId": contact,
            "toObjectTypeId": "0-2",
            "toObjectId": company,
            "labels": labels,
        }));
    }
    super::batch::respond(now, StatusCode::CREATED, results, errors)
}

fn object_params(params: &BTreeMap<String, String>) -> Option<(u64, Option<u64>)> {
    if params.get("objectType").map(String::as_str) != Some("contacts")
        || params.get("toObjectType").map(String::as_str) != Some("companies")
    {
        return None;
    }
    let contact = params.get("objectId")?.parse().ok()?;
    let company = params.get("toObjectId").and_then(|c| c.parse().ok());
    Some((contact, company))
}

/// `GET /crm/v4/objects/contacts/{id}/associations/companies`.
pub(crate) async fn list(
    _: Authed,
    State(api): State<Arc<Api>>,
    Path(params): Path<BTreeMap<String, String>>,
) -> Response {
    let Some((contact, _)) = object_params(&params) else {
        return api.error(ApiError::validation("contacts to companies only"));
    };
    let state = lock(&api.state);
    let mut by_company: BTreeMap<u64, Vec<Value>> = BTreeMap::new();
    for (c, company, t) in &state.companies.associations {
        if *c == contact {
            let label = if *t == PRIMARY {
                json!("Primary")
            } else {
                Value::Null
            };
            by_company
                .entry(*company)
                .or_default()
                .push(json!({ "category": "HUBSPOT_DEFINED", "typeId": t, "label": label }));
        }
    }
    let results: Vec<Value> = by_company
        .into_iter()
        .map(|(id, types)| json!({ "toObjectId": id, "associationTypes": types }))
        .collect();
    Json(json!({ "results": results })).into_response()
}

/// `DELETE /crm/v4/objects/contacts/{id}/associations/companies/{companyId}`.
pub(crate) async fn remove(
    _: Authed,
    State(api): State<Arc<Api>>,
    Path(params): Path<BTreeMap<String, String>>,
) -> Response {
    let Some((contact, Some(company))) = object_params(&params) else {
        return api.error(ApiError::validation("contacts to companies only"));
    };
    let now = api.now();
    let mut state = lock(&api.state);
    state
        .companies
        .associations
        .retain(|(c, o, _)| !(*c == contact && *o == company));
    let primary = state
        .contacts
        .get(&contact)
        .and_then(|c| c.property("associatedcompanyid"))
        == Some(company.to_string().as_str());
    if primary {
        let props = BTreeMap::from([("associatedcompanyid".to_owned(), String::new())]);
        state.apply(contact, props, now);
    }
    StatusCode::NO_CONTENT.into_response()
}
