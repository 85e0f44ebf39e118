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
/// answer lists them, with the outbox backlog of every tenant served, summed, and how many
/// tenants that is.
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
    match backlog(&shared).await {
        Ok((tenants, backlog)) => (
            StatusCode::OK,
            axum::Json(json!({
                "status": "ready",
                "request_id": id.0,
                "store": "ok",
                "checks": shared.checks,
                "tenants": tenants,
                "outbox": {
                    "pending": backlog.pending,
                    "retry_later": backlog.retry_later,
                    "held": backlog.held,
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

/// The outbox backlog summed over the served tenants.
#[derive(Default)]
struct Backlog {
    pending: u64,
    retry_later: u64,
    held: u64,
}

/// How many tenants are served, and their summed backlog.
async fn backlog(shared: &Shared) -> Result<(usize, Backlog), sync_engine::Error> {
    let tenants = shared.tenants();
    let mut sum = Backlog::default();
    for tenant in &tenants {
        let b = shared.engine.backlog(tenant).await?;
        sum.pending += b.pending;
        sum.retry_later += b.retry_later;
        sum.held += b.held_live + b.held_expired;
    }
    Ok((tenants.len(), sum))
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
