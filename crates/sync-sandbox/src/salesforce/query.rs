//! Queries (`query`, `queryAll`, `nextRecordsUrl` paging) and change polling
//! (`sobjects/{Object}/updated/` and `/deleted/`).

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, DurationRound, Utc};
use serde_json::{Value, json};

use super::Api;
use super::auth::Session;
use super::errors::{SfError, malformed_query, not_found};
use super::model::{FieldType, ObjectSchema, SfRecord, sf_datetime};
use crate::http::QueryPairs;
use crate::lock;
use crate::soql::{self, CmpOp, Expr, Literal};

/// A value of a record field, typed for comparison.
#[derive(Debug, PartialEq, PartialOrd)]
enum V {
    Null,
    Bool(bool),
    Num(f64),
    Time(i64),
    Text(String),
}

fn field_value(schema: &ObjectSchema, r: &SfRecord, field: &str) -> V {
    let kind = schema.field(field).map(|d| d.kind);
    let raw = r.value(schema, field);
    match (kind, raw) {
        (_, Value::Null) => V::Null,
        (_, Value::Bool(b)) => V::Bool(b),
        (_, Value::Number(n)) => V::Num(n.as_f64().unwrap_or(0.0)),
        (Some(FieldType::DateTime), Value::String(s)) => parse_time(&s).map_or(V::Null, V::Time),
        (Some(FieldType::Date), Value::String(s)) => {
            chrono::NaiveDate::parse_from_str(&s, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map_or(V::Null, |d| V::Time(d.and_utc().timestamp_millis()))
        }
        (_, Value::String(s)) if s.is_empty() => V::Null,
        (_, Value::String(s)) => V::Text(s.to_lowercase()),
        (_, other) => V::Text(other.to_string()),
    }
}

fn parse_time(s: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(s)
        .or_else(|_| DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .ok()
        .map(|d| d.timestamp_millis())
}

fn literal_value(l: &Literal) -> V {
    match l {
        Literal::Null => V::Null,
        Literal::Bool(b) => V::Bool(*b),
        Literal::Number(n) => V::Num(*n),
        Literal::DateTime(d) => V::Time(d.timestamp_millis()),
        Literal::Date(d) => d
            .and_hms_opt(0, 0, 0)
            .map_or(V::Null, |d| V::Time(d.and_utc().timestamp_millis())),
        Literal::String(s) => V::Text(s.to_lowercase()),
    }
}

fn eval(schema: &ObjectSchema, r: &SfRecord, e: &Expr) -> bool {
    match e {
        Expr::And(a, b) => eval(schema, r, a) && eval(schema, r, b),
        Expr::Or(a, b) => eval(schema, r, a) || eval(schema, r, b),
        Expr::Not(a) => !eval(schema, r, a),
        Expr::Compare { field, op, value } => {
            let left = field_value(schema, r, field);
            let right = literal_value(value);
            match op {
                CmpOp::Eq => left == right,
                CmpOp::Ne => left != right,
                _ if left == V::Null || right == V::Null => false,
                CmpOp::Lt => left.partial_cmp(&right) == Some(Ordering::Less),
                CmpOp::Le => matches!(
                    left.partial_cmp(&right),
                    Some(Ordering::Less | Ordering::Equal)
                ),
                CmpOp::Gt => left.partial_cmp(&right) == Some(Ordering::Greater),
                CmpOp::Ge => matches!(
                    left.partial_cmp(&right),
                    Some(Ordering::Greater | Ordering::Equal)
                ),
            }
        }
        Expr::In {
            field,
            values,
            negated,
        } => {
            let left = field_value(schema, r, field);
            values.iter().any(|v| literal_value(v) == left) != *negated
        }
        Expr::Includes {
            field,
            values,
            negated,
        } => {
            let have: Vec<String> = r
                .value(schema, field)
                .as_str()
                .map(|s| s.split(';').map(|t| t.trim().to_lowercase()).collect())
                .unwrap_or_default();
            // Each value may be 'a;b': all of those must be present.
            let hit = values.iter().any(|v| {
                v.split(';')
                    .all(|t| have.iter().any(|h| h == &t.trim().to_lowercase()))
            });
            hit != *negated
        }
        Expr::Like { field, pattern } => match r.value(schema, field) {
            Value::String(s) => soql::like(pattern, &s),
            _ => false,
        },
    }
}

fn fields_in(e: &Expr, out: &mut Vec<String>) {
    match e {
        Expr::And(a, b) | Expr::Or(a, b) => {
            fields_in(a, out);
            fields_in(b, out);
        }
        Expr::Not(a) => fields_in(a, out),
        Expr::Compare { field, .. }
        | Expr::In { field, .. }
        | Expr::Includes { field, .. }
        | Expr::Like { field, .. } => {
            out.push(field.clone());
        }
    }
}

fn batch_size(api: &Api, headers: &HeaderMap) -> usize {
    crate::http::header_str(headers, "sforce-query-options")
        .and_then(|v| {
            v.split(',')
                .filter_map(|kv| kv.trim().split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("batchSize"))
                .and_then(|(_, n)| n.trim().parse::<usize>().ok())
        })
        .map_or(api.config.query_batch_size, |n| n.clamp(200, 2000))
}

fn valid_version(path: &HashMap<String, String>) -> Option<String> {
    let v = path.get("version")?;
    let digits = v.strip_prefix('v')?;
    digits.parse::<f32>().ok().map(|_| v.clone())
}

fn run_query(
    api: &Api,
    q: &str,
    include_deleted: bool,
    version: &str,
    page: usize,
) -> Result<Value, Box<Response>> {
    let parsed = soql::parse(q).map_err(|e| {
        malformed_query(&format!(
            "\n{q}\n{}^\nERROR at Row:1:Column:{}\n{}",
            " ".repeat(e.position),
            e.position + 1,
            e.message
        ))
    })?;
    let mut state = lock(&api.state);
    let Some(schema) = state.schema(&parsed.object).cloned() else {
        return Err(Box::new(
            SfError::new(
                "INVALID_TYPE",
                format!("\n{q}\nsObject type '{}' is not supported.", parsed.object),
            )
            .respond(StatusCode::BAD_REQUEST),
        ));
    };
    let mut referenced = parsed.fields.clone();
    if let Some(f) = &parsed.filter {
        fields_in(f, &mut referenced);
    }
    referenced.extend(parsed.order_by.iter().map(|o| o.field.clone()));
    if let Some(bad) = referenced.iter().find(|f| schema.field(f).is_none()) {
        return Err(Box::new(SfError::new(
            "INVALID_FIELD",
            format!("\n{q}\nNo such column '{bad}' on entity '{}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name.", schema.name),
        )
        .respond(StatusCode::BAD_REQUEST)));
    }
    let mut rows: Vec<&SfRecord> = state
        .records
        .values()
        .filter(|r| r.object == schema.name && (include_deleted || r.deleted.is_none()))
        .filter(|r| parsed.filter.as_ref().is_none_or(|f| eval(&schema, r, f)))
        .collect();
    rows.sort_by(|a, b| {
        for o in &parsed.order_by {
            let (x, y) = (
                field_value(&schema, a, &o.field),
                field_value(&schema, b, &o.field),
            );
            let ord = match (&x, &y) {
                (V::Null, V::Null) => Ordering::Equal,
                (V::Null, _) => {
                    if o.nulls_last {
                        Ordering::Greater
                    } else {
                        Ordering::Less
                    }
                }
                (_, V::Null) => {
                    if o.nulls_last {
                        Ordering::Less
                    } else {
                        Ordering::Greater
                    }
                }
                _ => {
                    let c = x.partial_cmp(&y).unwrap_or(Ordering::Equal);
                    if o.descending { c.reverse() } else { c }
                }
            };
            if ord != Ordering::Equal {
                return ord;
            }
        }
        Ordering::Equal
    });
    let offset = parsed.offset.unwrap_or(0);
    let limit = parsed.limit.unwrap_or(usize::MAX);
    let rendered: Vec<Value> = rows
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(|r| r.to_json(&schema, &parsed.fields, version))
        .collect();
    let total = rendered.len();
    if total <= page {
        return Ok(json!({"totalSize": total, "done": true, "records": rendered}));
    }
    let first: Vec<Value> = rendered[..page].to_vec();
    let cursor = state.next_cursor();
    state.cursors.insert(cursor.clone(), rendered);
    Ok(json!({
        "totalSize": total,
        "done": false,
        "nextRecordsUrl": format!("/services/data/{version}/query/{cursor}-{page}"),
        "records": first,
    }))
}

async fn query_common(
    api: Arc<Api>,
    path: HashMap<String, String>,
    q: Option<String>,
    headers: HeaderMap,
    all: bool,
) -> Response {
    let Some(version) = valid_version(&path) else {
        return not_found();
    };
    let params = QueryPairs::parse(q.as_deref());
    let Some(q) = params.first("q").filter(|q| !q.trim().is_empty()) else {
        return malformed_query("A query string is required: add ?q=SELECT ...");
    };
    let page = batch_size(&api, &headers);
    match run_query(&api, q, all, &version, page) {
        Ok(v) => Json(v).into_response(),
        Err(r) => *r,
    }
}

/// `GET /services/data/{version}/query?q=`
pub(crate) async fn query(
    _: Session,
    State(api): State<Arc<Api>>,
    Path(path): Path<HashMap<String, String>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    super::sobjects::call_client(&api, &headers, true, "GET query");
    query_common(api, path, q, headers, false).await
}

/// `GET /services/data/{version}/queryAll?q=` (deleted and merged rows included).
pub(crate) async fn query_all(
    _: Session,
    State(api): State<Arc<Api>>,
    Path(path): Path<HashMap<String, String>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    super::sobjects::call_client(&api, &headers, true, "GET queryAll");
    query_common(api, path, q, headers, true).await
}

/// `GET /services/data/{version}/query/{locator}-{offset}` (the `nextRecordsUrl`).
pub(crate) async fn query_more(
    _: Session,
    State(api): State<Arc<Api>>,
    Path(path): Path<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let Some(version) = valid_version(&path) else {
        return not_found();
    };
    let locator = path.get("locator").cloned().unwrap_or_default();
    let Some((cursor, offset)) = locator
        .rsplit_once('-')
        .and_then(|(c, o)| o.parse::<usize>().ok().map(|o| (c.to_owned(), o)))
    else {
        return SfError::new("INVALID_QUERY_LOCATOR", "invalid query locator")
            .respond(StatusCode::BAD_REQUEST);
    };
    let page = batch_size(&api, &headers);
    let mut state = lock(&api.state);
    let Some(rows) = state.cursors.get(&cursor) else {
        drop(state);
        return SfError::new("INVALID_QUERY_LOCATOR", "invalid query locator")
            .respond(StatusCode::BAD_REQUEST);
    };
    if offset > rows.len() {
        drop(state);
        return SfError::new("INVALID_QUERY_LOCATOR", "invalid query locator")
            .respond(StatusCode::BAD_REQUEST);
    }
    let end = (offset + page).min(rows.len());
    let records: Vec<Value> = rows[offset..end].to_vec();
    let total = rows.len();
    let mut body = json!({"totalSize": total, "done": end >= total, "records": records});
    if end < total {
        body["nextRecordsUrl"] = json!(format!("/services/data/{version}/query/{cursor}-{end}"));
    } else {
        state.cursors.remove(&cursor);
    }
    Json(body).into_response()
}

fn window(
    api: &Api,
    q: &QueryPairs,
    max_days: i64,
) -> Result<(DateTime<Utc>, DateTime<Utc>), Box<Response>> {
    let parse = |k: &str| {
        q.first(k)
            .and_then(|v| {
                DateTime::parse_from_rfc3339(v)
                    .ok()
                    .or_else(|| DateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%S%.f%z").ok())
            })
            .map(|d| d.with_timezone(&Utc))
    };
    let (Some(start), Some(end)) = (parse("start"), parse("end")) else {
        return Err(Box::new(
            SfError::new(
                "MALFORMED_QUERY",
                "start and end must be ISO 8601 dateTimes, e.g. 2026-05-06T00:00:00+00:00",
            )
            .respond(StatusCode::BAD_REQUEST),
        ));
    };
    if end <= start {
        return Err(Box::new(
            SfError::new(
                "INVALID_REPLICATION_DATE",
                "end date must be after start date",
            )
            .respond(StatusCode::BAD_REQUEST),
        ));
    }
    let now = api.now();
    if start < now - Duration::days(max_days) {
        return Err(Box::new(
            SfError::new(
                "INVALID_REPLICATION_DATE",
                format!("start date cannot be more than {max_days} days ago"),
            )
            .respond(StatusCode::BAD_REQUEST),
        ));
    }
    Ok((start, end))
}

fn minute(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(Duration::minutes(1)).unwrap_or(t)
}

/// `GET .../sobjects/{object}/updated/?start&end`
pub(crate) async fn updated(
    _: Session,
    State(api): State<Arc<Api>>,
    Path(path): Path<HashMap<String, String>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    if valid_version(&path).is_none() {
        return not_found();
    }
    super::sobjects::call_client(
        &api,
        &headers,
        false,
        "GET sobjects/{object}/updated|deleted",
    );
    let q = QueryPairs::parse(q.as_deref());
    let (start, end) = match window(&api, &q, 30) {
        Ok(w) => w,
        Err(r) => return *r,
    };
    let object = path.get("object").cloned().unwrap_or_default();
    let state = lock(&api.state);
    let Some(schema) = state.schema(&object) else {
        drop(state);
        return not_found();
    };
    let latest = minute(end.min(api.now()));
    let ids: Vec<&str> = state
        .records
        .values()
        .filter(|r| {
            r.object == schema.name
                && r.deleted.is_none()
                && r.modified >= start
                && r.modified < latest
        })
        .map(|r| r.id.as_str())
        .collect();
    Json(json!({"ids": ids, "latestDateCovered": sf_datetime(latest)})).into_response()
}

/// `GET .../sobjects/{object}/deleted/?start&end`
pub(crate) async fn deleted(
    _: Session,
    State(api): State<Arc<Api>>,
    Path(path): Path<HashMap<String, String>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    if valid_version(&path).is_none() {
        return not_found();
    }
    super::sobjects::call_client(
        &api,
        &headers,
        false,
        "GET sobjects/{object}/updated|deleted",
    );
    let q = QueryPairs::parse(q.as_deref());
    let (start, end) = match window(&api, &q, 30) {
        Ok(w) => w,
        Err(r) => return *r,
    };
    let object = path.get("object").cloned().unwrap_or_default();
    let state = lock(&api.state);
    let Some(schema) = state.schema(&object) else {
        drop(state);
        return not_found();
    };
    let latest = minute(end.min(api.now()));
    let from = start.max(state.earliest_deleted);
    let deleted: Vec<Value> = state
        .records
        .values()
        .filter(|r| r.object == schema.name)
        .filter_map(|r| r.deleted.map(|d| (r, d)))
        .filter(|(_, d)| *d >= from && *d < latest)
        .map(|(r, d)| json!({"id": r.id, "deletedDate": sf_datetime(d)}))
        .collect();
    Json(json!({
        "deletedRecords": deleted,
        "earliestDateAvailable": sf_datetime(minute(state.earliest_deleted)),
        "latestDateCovered": sf_datetime(latest),
    }))
    .into_response()
}
