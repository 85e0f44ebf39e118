//! `GET /healthz` (the process is alive), `GET /readyz` (it can take deliveries) and
//! `GET /metrics`.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::response::{ApiError, RequestId, status};
use crate::service::Shared;

pub(super) async fn healthz(Extension(id): Extension<RequestId>) -> Response {
    status(StatusCode::OK, "alive", &id)
}

/// Ready when the store answers and the service is not shutting down. The start-up checks
/// (credentials, scopes, CRM properties) passed before the first request was accepted; the
/// answer lists them.
pub(super) async fn readyz(
    State(shared): State<Arc<Shared>>,
    Extension(id): Extension<RequestId>,
) -> Response {
    if shared.shutting_down.load(Ordering::SeqCst) {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "this instance is shutting down",
        )
        .into_response(&id);
    }
    match shared.engine.backlog(&shared.tenant).await {
        Ok(backlog) => (
            StatusCode::OK,
            axum::Json(json!({
                "status": "ready",
                "request_id": id.0,
                "store": "ok",
                "checks": shared.checks,
                "outbox": {
                    "pending": backlog.pending,
                    "retry_later": backlog.retry_later,
                    "held": backlog.held_live + backlog.held_expired,
                },
            })),
        )
            .into_response(),
        Err(e) => {
            tracing::warn!(request_id = %id.0, error = %e, "readiness: the store did not answer");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                "the store did not answer",
            )
            .into_response(&id)
        }
    }
}

#[cfg(feature = "prometheus")]
pub(super) async fn metrics(
    State(shared): State<Arc<Shared>>,
    Extension(id): Extension<RequestId>,
) -> Response {
    match &shared.metrics {
        Some(handle) => (
            [(
                axum::http::header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            handle.render(),
        )
            .into_response(),
        None => ApiError::new(
            StatusCode::NOT_FOUND,
            "metrics_disabled",
            "no Prometheus recorder is installed",
        )
        .into_response(&id),
    }
}
