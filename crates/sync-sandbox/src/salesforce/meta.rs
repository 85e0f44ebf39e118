//! `GET /services/data/` (API versions) and `GET /services/data/{version}/limits`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::Api;
use super::auth::Session;

/// Versions the sandbox answers for (any `vNN.N` works; these are listed).
const VERSIONS: [(&str, &str); 3] = [
    ("64.0", "Summer '25"),
    ("65.0", "Winter '26"),
    ("66.0", "Spring '26"),
];

/// `GET /services/data/`: no auth needed, no `Sforce-Limit-Info`.
pub(crate) async fn versions() -> Response {
    let list: Vec<_> = VERSIONS
        .iter()
        .map(|(v, label)| json!({"label": label, "url": format!("/services/data/v{v}"), "version": v}))
        .collect();
    Json(list).into_response()
}

/// `GET /services/data/{version}/limits`: the daily API budget.
pub(crate) async fn limits(_: Session, State(api): State<Arc<Api>>) -> Response {
    let (used, daily) = api.core.api_usage();
    let max = daily.unwrap_or(100_000);
    Json(json!({"DailyApiRequests": {"Max": max, "Remaining": max.saturating_sub(used)}}))
        .into_response()
}
