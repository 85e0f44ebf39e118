//! `POST /crm/v3/objects/contacts/search`: filter groups (ORed) of filters (ANDed),
//! one sort, integer-offset paging, at most 200 per page and 10,000 results per query.

use std::cmp::Ordering;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chrono::DateTime;
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::Authed;
use super::errors::ApiError;
use super::model::{HubSpotContact, PropertyDef};
use super::{Api, HubSpotState};
use crate::lock;

/// Largest page.
pub(crate) const SEARCH_PAGE_MAX: usize = 200;
/// Results reachable through one query.
pub const SEARCH_RESULT_CAP: usize = 10_000;
const MAX_GROUPS: usize = 5;
const MAX_FILTERS_PER_GROUP: usize = 6;
const MAX_FILTERS: usize = 18;
const MAX_BODY_CHARS: usize = 3_000;
const DEFAULT_SEARCH_PROPERTIES: [&str; 3] = ["firstname", "lastname", "email"];

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SearchBody {
    #[serde(default)]
    filter_groups: Vec<FilterGroup>,
    #[serde(default)]
    sorts: Vec<Sort>,
    #[serde(default)]
    properties: Vec<String>,
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    after: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct FilterGroup {
    #[serde(default)]
    filters: Vec<Filter>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Filter {
    property_name: String,
    operator: String,
    #[serde(default)]
    value: Option<Value>,
    #[serde(default)]
    high_value: Option<Value>,
    #[serde(default)]
    values: Option<Vec<Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Sort {
    property_name: String,
    #[serde(default)]
    direction: Option<String>,
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A comparable form of a property value given its type.
#[derive(Debug, PartialEq, PartialOrd)]
enum Key {
    Num(f64),
    Text(String),
}

fn is_numeric(def: Option<&PropertyDef>, name: &str) -> bool {
    name == "hs_object_id"
        || def.is_some_and(|d| matches!(d.kind.as_str(), "number" | "datetime" | "date"))
}

fn numeric(raw: &str) -> Option<f64> {
    if let Ok(n) = raw.trim().parse::<f64>() {
        return Some(n);
    }
    DateTime::parse_from_rfc3339(raw.trim())
        .ok()
        .map(|d| d.timestamp_millis() as f64)
}

fn key(def: Option<&PropertyDef>, name: &str, raw: &str) -> Option<Key> {
    if is_numeric(def, name) {
        numeric(raw).map(Key::Num)
    } else if def.is_some_and(|d| d.kind == "enumeration") {
        Some(Key::Text(raw.to_owned()))
    } else {
        Some(Key::Text(raw.to_lowercase()))
    }
}

fn wildcard_match(pattern: &str, value: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == value;
    }
    let mut rest = value;
    for (i, part) in parts.iter().enumerate() {
        if part.is_empty() {
            continue;
        }
        if i == 0 {
            match rest.strip_prefix(part) {
                Some(r) => rest = r,
                None => return false,
            }
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            match rest.find(part) {
                Some(pos) => rest = &rest[pos + part.len()..],
                None => return false,
            }
        }
    }
    true
}

/// A contact's sort/compare key for `name`; system timestamps and ids come from the
/// record itself instead of being parsed back from text.
fn contact_key(def: Option<&PropertyDef>, name: &str, c: &HubSpotContact) -> Option<Key> {
    match name {
        "lastmodifieddate" => Some(Key::Num(c.updated_at.timestamp_millis() as f64)),
        "createdate" => Some(Key::Num(c.created_at.timestamp_millis() as f64)),
        "hs_object_id" | "id" => Some(Key::Num(c.id as f64)),
        _ => c
            .properties
            .get(name)
            .filter(|v| !v.is_empty())
            .and_then(|v| key(def, name, v)),
    }
}

/// The contact's values for a filter's property (`None` when it has none); a multi-checkbox
/// value matches per option.
fn filter_values(
    def: Option<&PropertyDef>,
    name: &str,
    contact: &HubSpotContact,
) -> Option<Vec<String>> {
    let raw = if name == "id" {
        Some(contact.id.to_string())
    } else {
        contact
            .properties
            .get(name)
            .filter(|v| !v.is_empty())
            .cloned()
    }?;
    if def.is_some_and(PropertyDef::is_multi_checkbox) {
        Some(
            raw.split(';')
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect(),
        )
    } else {
        Some(vec![raw])
    }
}

/// Whether `contact` passes one filter.
pub(crate) fn matches(
    filter: &Filter,
    def: Option<&PropertyDef>,
    contact: &HubSpotContact,
) -> Result<bool, ApiError> {
    let name = filter.property_name.as_str();
    let op = filter.operator.as_str();
    let candidates = match (op, filter_values(def, name, contact)) {
        ("HAS_PROPERTY", values) => return Ok(values.is_some()),
        ("NOT_HAS_PROPERTY", values) => return Ok(values.is_none()),
        (_, values) => values.unwrap_or_default(),
    };
    let one = |want: &Value| -> Option<Key> { key(def, name, &text(want)) };
    let value = || {
        filter.value.as_ref().ok_or_else(|| {
            ApiError::validation(format!("Filter on {name} with operator {op} needs a value"))
        })
    };
    let system = matches!(
        name,
        "lastmodifieddate" | "createdate" | "hs_object_id" | "id"
    );
    let any = |pred: &dyn Fn(&Key) -> bool| {
        if system {
            return contact_key(def, name, contact).is_some_and(|k| pred(&k));
        }
        candidates
            .iter()
            .filter_map(|c| key(def, name, c))
            .any(|k| pred(&k))
    };
    let result = match op {
        "EQ" => {
            let want = one(value()?);
            any(&|k| Some(k) == want.as_ref())
        }
        "NEQ" => {
            let want = one(value()?);
            !any(&|k| Some(k) == want.as_ref())
        }
        "LT" | "LTE" | "GT" | "GTE" => {
            let Some(want) = one(value()?) else {
                return Ok(false);
            };
            any(&|k| match k.partial_cmp(&want) {
                Some(Ordering::Less) => matches!(op, "LT" | "LTE"),
                Some(Ordering::Equal) => matches!(op, "LTE" | "GTE"),
                Some(Ordering::Greater) => matches!(op, "GT" | "GTE"),
                None => false,
            })
        }
        "BETWEEN" => {
            let low = one(value()?);
            let high = filter.high_value.as_ref().and_then(one);
            let (Some(low), Some(high)) = (low, high) else {
                return Err(ApiError::validation(format!(
                    "BETWEEN on {name} needs value and highValue"
                )));
            };
            any(&|k| k >= &low && k <= &high)
        }
        "IN" | "NOT_IN" => {
            let Some(values) = &filter.values else {
                return Err(ApiError::validation(format!(
                    "{op} on {name} needs a values array"
                )));
            };
            let wanted: Vec<Key> = values.iter().filter_map(one).collect();
            let hit = any(&|k| wanted.contains(k));
            if op == "IN" { hit } else { !hit }
        }
        "CONTAINS_TOKEN" | "NOT_CONTAINS_TOKEN" => {
            let pattern = text(value()?).to_lowercase();
            let hit = candidates.iter().any(|c| {
                let c = c.to_lowercase();
                wildcard_match(&pattern, &c)
                    || c.split(|ch: char| !ch.is_alphanumeric())
                        .any(|t| wildcard_match(&pattern, t))
            });
            if op == "CONTAINS_TOKEN" { hit } else { !hit }
        }
        other => {
            return Err(ApiError::validation(format!(
                "Invalid operator {other}. Allowed: EQ, NEQ, LT, LTE, GT, GTE, BETWEEN, IN, NOT_IN, HAS_PROPERTY, NOT_HAS_PROPERTY, CONTAINS_TOKEN, NOT_CONTAINS_TOKEN"
            )));
        }
    };
    Ok(result)
}

/// The handler.
pub(crate) async fn search(_: Authed, State(api): State<Arc<Api>>, body: Bytes) -> Response {
    if body.len() > MAX_BODY_CHARS {
        return api.error(ApiError::validation(format!(
            "Search request body is {} characters; the maximum is {MAX_BODY_CHARS}",
            body.len()
        )));
    }
    let req: SearchBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return api.bad_json(&e),
    };
    match run(&api, &req) {
        Ok(v) => Json(v).into_response(),
        Err(e) => api.error(e),
    }
}

fn run(api: &Api, req: &SearchBody) -> Result<Value, ApiError> {
    let (limit, after) = check_request(req)?;
    let state = lock(&api.state);
    for f in req.filter_groups.iter().flat_map(|g| &g.filters) {
        if f.property_name != "id" && !state.properties.contains_key(&f.property_name) {
            return Err(ApiError::invalid_properties(&[
                super::errors::PropertyError::doesnt_exist(&f.property_name),
            ]));
        }
    }
    let mut hits: Vec<&HubSpotContact> = Vec::new();
    for c in state.contacts.values().filter(|c| !c.archived) {
        if passes(&state, req, c)? {
            hits.push(c);
        }
    }
    if let Some(sort) = req.sorts.first() {
        hits = sorted(&state, sort, hits);
    }
    let total = hits.len();
    let props: Vec<String> = if req.properties.is_empty() {
        DEFAULT_SEARCH_PROPERTIES
            .iter()
            .map(|s| (*s).to_owned())
            .collect()
    } else {
        req.properties.clone()
    };
    let results: Vec<Value> = hits
        .iter()
        .skip(after)
        .take(limit)
        .map(|c| c.to_json(&props, None))
        .collect();
    let mut body = json!({ "total": total, "results": results });
    let next = after + limit;
    if next < total {
        body["paging"] = json!({ "next": { "after": next.to_string() } });
    }
    Ok(body)
}

/// The request's page size and offset, after HubSpot's limits on pages, filters and sorts.
fn check_request(req: &SearchBody) -> Result<(usize, usize), ApiError> {
    let limit = req.limit.unwrap_or(10);
    if limit == 0 || limit > SEARCH_PAGE_MAX {
        return Err(ApiError::validation(format!(
            "limit must be between 1 and {SEARCH_PAGE_MAX}"
        )));
    }
    let after = match &req.after {
        None => 0,
        Some(v) => text(v)
            .parse::<usize>()
            .map_err(|_| ApiError::validation("after must be formatted as an integer"))?,
    };
    if after >= SEARCH_RESULT_CAP {
        return Err(ApiError::validation(format!(
            "Cannot page past {SEARCH_RESULT_CAP} results (after={after}). Narrow the query and start again."
        )));
    }
    let groups = &req.filter_groups;
    if groups.len() > MAX_GROUPS
        || groups
            .iter()
            .any(|g| g.filters.len() > MAX_FILTERS_PER_GROUP)
        || groups.iter().map(|g| g.filters.len()).sum::<usize>() > MAX_FILTERS
    {
        return Err(ApiError::validation(format!(
            "Too many filters: at most {MAX_GROUPS} filterGroups, {MAX_FILTERS_PER_GROUP} filters per group and {MAX_FILTERS} filters in total"
        )));
    }
    if req.sorts.len() > 1 {
        return Err(ApiError::validation("Only one sort is allowed per search"));
    }
    Ok((limit, after))
}

/// Whether a contact passes the filter groups: any group whose filters all pass (no group:
/// every contact).
fn passes(state: &HubSpotState, req: &SearchBody, c: &HubSpotContact) -> Result<bool, ApiError> {
    if req.filter_groups.is_empty() {
        return Ok(true);
    }
    for g in &req.filter_groups {
        let mut all = true;
        for f in &g.filters {
            if !matches(f, state.properties.get(&f.property_name), c)? {
                all = false;
                break;
            }
        }
        if all {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The hits in the sort's order, ties by id, contacts without the property last.
fn sorted<'a>(
    state: &HubSpotState,
    sort: &Sort,
    hits: Vec<&'a HubSpotContact>,
) -> Vec<&'a HubSpotContact> {
    let name = sort.property_name.as_str();
    let def = state.properties.get(name);
    let desc = sort
        .direction
        .as_deref()
        .is_some_and(|d| d.eq_ignore_ascii_case("DESCENDING"));
    // Keys computed once per contact, not once per comparison.
    let mut keyed: Vec<(Option<Key>, &HubSpotContact)> = hits
        .into_iter()
        .map(|c| (contact_key(def, name, c), c))
        .collect();
    keyed.sort_by(|(ka, a), (kb, b)| {
        let ord = match (ka, kb) {
            (Some(x), Some(y)) => {
                let o = x.partial_cmp(y).unwrap_or(Ordering::Equal);
                if desc { o.reverse() } else { o }
            }
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        };
        ord.then(a.id.cmp(&b.id))
    });
    keyed.into_iter().map(|(_, c)| c).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard_match("*@hubspot.com", "a@hubspot.com"));
        assert!(!wildcard_match("*@hubspot.com", "a@example.com"));
        assert!(wildcard_match("jo*", "john"));
        assert!(wildcard_match("*oh*", "john"));
        assert!(wildcard_match("john", "john"));
    }
}
