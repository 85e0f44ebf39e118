//! The status routes, mounted only when a status token is configured:
//!
//! - `GET /status`: the status of every tenant this service serves (a JSON array: its own
//!   tenant first, then each tenant its routing lists);
//! - `GET /status/{tenant}`: one tenant's status (404 for a tenant this service does not
//!   serve);
//! - `GET /status/{tenant}/failures?kind=&reason=&after=&before=&limit=`: failed items;
//! - `POST /status/{tenant}/requeue`: `{"ids": [..]}` or `{"all": true, "kind", "reason"}`,
//!   plus `by`/`note`; answers the count and wakes the drainer;
//! - `POST /status/{tenant}/dismiss`: `{"id", "note", "by"}`;
//! - `GET /status/page` and `POST /status/login`: the status page and its sign-in.
//!
//! The `POST` routes take JSON or an HTML form (`application/x-www-form-urlencoded`); a form
//! post is answered with 303 back to the page.

use std::sync::Arc;

use axum::Extension;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use sync_core::IdempotencyKey;
use sync_core::ports::{FailedFilter, Requeue};
use sync_core::status::SyncStatus;

use super::status_auth::{Caller, caller, cross_site, session_cookie};
use crate::response::{ApiError, RequestId};
use crate::service::Shared;
use crate::status_page;

/// The most failed items one `failures` answer lists.
const MAX_LIST: usize = 1000;
/// The longest note or actor name kept in the audit.
const MAX_NOTE: usize = 1000;

pub(super) async fn all(
    State(shared): State<Arc<Shared>>,
    Extension(id): Extension<RequestId>,
) -> Response {
    match statuses(&shared).await {
        Ok(all) => axum::Json(all).into_response(),
        Err(e) => store_error(&e, &id),
    }
}

/// The status of every tenant the service serves, its own first.
async fn statuses(shared: &Shared) -> Result<Vec<SyncStatus>, sync_engine::Error> {
    let mut all = Vec::new();
    for tenant in shared.tenants() {
        all.push(shared.status(&tenant).await?);
    }
    Ok(all)
}

pub(super) async fn one(
    State(shared): State<Arc<Shared>>,
    Extension(id): Extension<RequestId>,
    Path(tenant): Path<String>,
) -> Response {
    let Some(tenant) = shared.served(&tenant) else {
        return unknown_tenant(&id);
    };
    match shared.status(&tenant).await {
        Ok(status) => axum::Json(status).into_response(),
        Err(e) => store_error(&e, &id),
    }
}

/// The filter of `GET /status/{tenant}/failures`.
#[derive(Debug, Deserialize)]
pub(super) struct FailuresQuery {
    kind: Option<String>,
    reason: Option<String>,
    after: Option<DateTime<Utc>>,
    before: Option<DateTime<Utc>>,
    limit: Option<usize>,
    #[serde(default)]
    dismissed: bool,
}

pub(super) async fn failures(
    State(shared): State<Arc<Shared>>,
    Extension(id): Extension<RequestId>,
    Path(tenant): Path<String>,
    query: Result<Query<FailuresQuery>, QueryRejection>,
) -> Response {
    let Some(tenant) = shared.served(&tenant) else {
        return unknown_tenant(&id);
    };
    let Ok(Query(q)) = query else {
        return bad_request(
            "the query takes kind, reason, after and before (RFC 3339 times), limit (a number) and dismissed (true or false)",
            &id,
        );
    };
    let mut filter = FailedFilter::new(q.limit.unwrap_or(100).clamp(1, MAX_LIST));
    filter = filter_by(filter, q.kind, q.reason);
    filter = filter.failed_between(q.after, q.before);
    if q.dismissed {
        filter = filter.with_dismissed();
    }
    match shared.engine.store().list_failed(&tenant, &filter).await {
        Ok(items) => axum::Json(items).into_response(),
        Err(e) => store_error(&sync_engine::Error::from(e), &id),
    }
}

fn filter_by(
    mut filter: FailedFilter,
    kind: Option<String>,
    reason: Option<String>,
) -> FailedFilter {
    if let Some(kind) = kind.filter(|k| !k.is_empty()) {
        filter = filter.kind(kind);
    }
    if let Some(reason) = reason.filter(|r| !r.is_empty()) {
        filter = filter.reason_prefix(reason);
    }
    filter
}

/// The body of `requeue` and `dismiss`, as JSON or as a form.
#[derive(Debug, Default, Deserialize)]
pub(super) struct ActionBody {
    ids: Option<Vec<String>>,
    id: Option<String>,
    all: Option<bool>,
    kind: Option<String>,
    reason: Option<String>,
    by: Option<String>,
    note: Option<String>,
}

/// Whether the body is a form (else JSON).
fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
}

// The error is the answer itself, returned at once by the handler.
#[allow(clippy::result_large_err)]
fn parse_body(headers: &HeaderMap, body: &Bytes, id: &RequestId) -> Result<ActionBody, Response> {
    let parsed = if is_form(headers) {
        serde_urlencoded::from_bytes::<ActionBody>(body).map_err(|e| e.to_string())
    } else {
        serde_json::from_slice::<ActionBody>(body).map_err(|e| e.to_string())
    };
    parsed.map_err(|e| {
        tracing::info!(request_id = %id.0, error = %e, "status action body refused");
        bad_request(
            "the body is JSON (or a form) with ids or id, all, kind, reason, by and note",
            id,
        )
    })
}

fn clip(text: Option<String>) -> Option<String> {
    text.map(|t| t.trim().chars().take(MAX_NOTE).collect::<String>())
        .filter(|t| !t.is_empty())
}

pub(super) async fn requeue(
    State(shared): State<Arc<Shared>>,
    Extension(id): Extension<RequestId>,
    Extension(who): Extension<Caller>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(tenant) = shared.served(&tenant) else {
        return unknown_tenant(&id);
    };
    let b = match parse_body(&headers, &body, &id) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let mut keys: Vec<IdempotencyKey> = b
        .ids
        .unwrap_or_default()
        .into_iter()
        .map(IdempotencyKey::from_raw)
        .collect();
    keys.extend(b.id.filter(|k| !k.is_empty()).map(IdempotencyKey::from_raw));
    let which = if !keys.is_empty() {
        Requeue::Keys(keys)
    } else if b.all == Some(true) {
        Requeue::Matching(filter_by(FailedFilter::new(MAX_LIST), b.kind, b.reason))
    } else {
        return bad_request(
            "name the items to requeue: ids, or all (with kind and reason to narrow it)",
            &id,
        );
    };
    let actor = clip(b.by).unwrap_or_else(|| who.default_actor().to_owned());
    let note = clip(b.note);
    let moved = shared
        .engine
        .store()
        .requeue_failed(
            &tenant,
            &which,
            &actor,
            note.as_deref(),
            shared.engine.now(),
        )
        .await;
    match moved {
        Ok(n) => {
            tracing::info!(request_id = %id.0, requeued = n, actor = %actor, "failed items requeued");
            if n > 0 {
                shared.wake(&tenant);
            }
            if is_form(&headers) {
                return back_to_page();
            }
            axum::Json(json!({ "requeued": n, "request_id": id.0 })).into_response()
        }
        Err(e) => store_error(&sync_engine::Error::from(e), &id),
    }
}

pub(super) async fn dismiss(
    State(shared): State<Arc<Shared>>,
    Extension(id): Extension<RequestId>,
    Extension(who): Extension<Caller>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(tenant) = shared.served(&tenant) else {
        return unknown_tenant(&id);
    };
    let b = match parse_body(&headers, &body, &id) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(key) = b.id.filter(|k| !k.is_empty()) else {
        return bad_request("name the item to dismiss: id (and a note)", &id);
    };
    let actor = clip(b.by).unwrap_or_else(|| who.default_actor().to_owned());
    let note = clip(b.note).unwrap_or_default();
    let dismissed = shared
        .engine
        .store()
        .dismiss_failed(
            &tenant,
            &IdempotencyKey::from_raw(key),
            &actor,
            &note,
            shared.engine.now(),
        )
        .await;
    match dismissed {
        Ok(true) if is_form(&headers) => back_to_page(),
        Ok(true) => axum::Json(json!({ "dismissed": true, "request_id": id.0 })).into_response(),
        Ok(false) => ApiError::new(
            StatusCode::NOT_FOUND,
            "not_failed",
            "no failed item has this id (it may have been requeued or applied)",
        )
        .into_response(&id),
        Err(e) => store_error(&sync_engine::Error::from(e), &id),
    }
}

/// `GET /status/page`: the page when signed in (cookie or bearer), else the sign-in form.
pub(super) async fn page(
    State(shared): State<Arc<Shared>>,
    Extension(id): Extension<RequestId>,
    headers: HeaderMap,
) -> Response {
    let Some(auth) = &shared.status_auth else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if caller(auth, &headers).is_none() {
        return html(StatusCode::OK, status_page::login(None));
    }
    match statuses(&shared).await {
        Ok(all) => html(StatusCode::OK, status_page::page(&all)),
        Err(e) => store_error(&e, &id),
    }
}

/// The sign-in form's body.
#[derive(Debug, Deserialize)]
pub(super) struct LoginForm {
    #[serde(default)]
    token: String,
}

/// `POST /status/login`: the right token sets the session cookie and goes to the page; a
/// wrong one shows the form again with 401.
pub(super) async fn login(
    State(shared): State<Arc<Shared>>,
    Extension(id): Extension<RequestId>,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(auth) = &shared.status_auth else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if cross_site(&headers) {
        return super::status_auth::cross_site_refused(&id);
    }
    let token = serde_urlencoded::from_bytes::<LoginForm>(&body)
        .map(|f| f.token)
        .unwrap_or_default();
    if !auth.token_ok(token.trim()) {
        tracing::info!(request_id = %id.0, "status page sign-in refused");
        return html(
            StatusCode::UNAUTHORIZED,
            status_page::login(Some("That token is not right. Try again.")),
        );
    }
    // The cookie goes back to the status routes wherever this router is nested.
    let path = uri.path().strip_suffix("/login").unwrap_or("/status");
    let path = if path.is_empty() { "/status" } else { path };
    let secure = headers
        .get("x-forwarded-proto")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));
    let mut response = see_other("page");
    if let Ok(cookie) = HeaderValue::from_str(&session_cookie(auth, path, secure)) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

/// 303 to `location` (relative, so it works when the router is nested).
fn see_other(location: &'static str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, HeaderValue::from_static(location))],
    )
        .into_response()
}

/// From `/status/{tenant}/requeue` (or `dismiss`) back to `/status/page`.
fn back_to_page() -> Response {
    see_other("../page")
}

fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

fn unknown_tenant(id: &RequestId) -> Response {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "unknown_tenant",
        "this service does not serve that tenant",
    )
    .into_response(id)
}

fn bad_request(message: &'static str, id: &RequestId) -> Response {
    ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message).into_response(id)
}

fn store_error(e: &sync_engine::Error, id: &RequestId) -> Response {
    tracing::warn!(request_id = %id.0, error = %e, "the status could not be read from the store");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "store_unavailable",
        "the store did not answer; retry later",
    )
    .into_response(id)
}
