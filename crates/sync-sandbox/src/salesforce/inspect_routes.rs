//! `/__sandbox/...` endpoints of the Salesforce sandbox.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use super::Api;
use crate::lock;

pub(crate) fn routes() -> Router<Arc<Api>> {
    Router::new()
        .route("/__sandbox/state", get(state))
        .route("/__sandbox/sessions/expire", post(expire))
        .route("/__sandbox/records/{id}/delete", post(delete))
}

async fn state(State(api): State<Arc<Api>>) -> Response {
    let state = lock(&api.state);
    let (used, daily) = api.core.api_usage();
    Json(json!({
        "records": state.records.values().collect::<Vec<_>>(),
        "callClients": state.call_options,
        "misplacedCallOptions": state.misplaced_call_options,
        "apiUsage": {"used": used, "limit": daily},
        "tokensIssued": lock(&api.sessions).issued_count(),
    }))
    .into_response()
}

async fn expire(State(api): State<Arc<Api>>) -> StatusCode {
    lock(&api.sessions).expire_all();
    StatusCode::NO_CONTENT
}

async fn delete(
    State(api): State<Arc<Api>>,
    Path(path): Path<HashMap<String, String>>,
) -> StatusCode {
    let now = api.now();
    let id = path.get("id").cloned().unwrap_or_default();
    if lock(&api.state).delete(&id, now) {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::NOT_FOUND
    }
}
