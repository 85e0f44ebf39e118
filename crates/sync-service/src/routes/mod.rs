//! The routes: webhooks (Cativa, HubSpot), health and metrics, and what their handlers share
//! (reading the body, answering an engine outcome or error).

mod cativa;
mod health;
mod hubspot;
mod status;
mod status_auth;
mod tenants;

pub(crate) use status_auth::StatusAuth;

use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use axum::response::Response;
use axum::routing::{get, post};
use bytes::Bytes;
use sync_core::ports::WebhookOutcome;
use sync_core::{DeliveryOutcome, TenantId};

use crate::response::{ApiError, RequestId, status};
use crate::service::Shared;

/// The routes without the hardening layers (those are added by [`crate::router`]).
pub(crate) fn routes(shared: Arc<Shared>) -> Router {
    let router = Router::new()
        .route("/webhooks/cativa", post(cativa::shared_route))
        .route("/webhooks/cativa/{event}", post(cativa::event_route))
        .route("/webhooks/hubspot", post(hubspot::route))
        .route("/connect/{crm}", get(crate::install::connect))
        .route("/oauth/{crm}/callback", get(crate::install::callback))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz));
    #[cfg(feature = "prometheus")]
    let router = router.route("/metrics", get(health::metrics));
    let router = if shared.status_auth.is_some() {
        router.merge(status_routes(&shared))
    } else {
        router
    };
    router.with_state(shared)
}

/// The status routes (see [`status`]): all behind the token, but the page and its sign-in
/// answer without it (with the sign-in form).
fn status_routes(shared: &Arc<Shared>) -> Router<Arc<Shared>> {
    let protected = Router::new()
        .route("/status", get(status::all))
        .route("/status/{tenant}", get(status::one))
        .route("/status/{tenant}/failures", get(status::failures))
        .route("/status/{tenant}/requeue", post(status::requeue))
        .route("/status/{tenant}/dismiss", post(status::dismiss))
        .route_layer(from_fn_with_state(Arc::clone(shared), status_auth::require));
    Router::new()
        .route("/status/page", get(status::page))
        .route("/status/login", post(status::login))
        .merge(protected)
}

/// Counts a webhook delivery for the status (accepted, duplicate, refused by code) under the
/// service's own tenant (a refused delivery has no other). Cheap, and never fails the
/// delivery: a store error is only logged.
pub(crate) async fn count_delivery(shared: &Shared, outcome: WebhookOutcome, reason: Option<&str>) {
    count_for(shared, &shared.tenant, outcome, reason).await;
}

/// [`count_delivery`] under `tenant`.
async fn count_for(
    shared: &Shared,
    tenant: &TenantId,
    outcome: WebhookOutcome,
    reason: Option<&str>,
) {
    if let Err(e) = shared
        .engine
        .store()
        .record_delivery_outcome(tenant, outcome, reason, shared.engine.now())
        .await
    {
        tracing::warn!(error = %e, outcome = outcome.as_str(), "could not count the webhook delivery");
    }
}

/// The body, or the answer for a body that could not be read: over the limit (413), too slow
/// between chunks (408), or cut off (400).
// The error is the answer itself, returned at once by the handler: boxing it gains nothing.
#[allow(clippy::result_large_err)]
pub(crate) fn body_or_error(
    body: Result<Bytes, BytesRejection>,
    limit: usize,
    id: &RequestId,
) -> Result<Bytes, Response> {
    body.map_err(|e| {
        let error = if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("the body exceeds the {limit}-byte limit"),
            )
        } else if timed_out(&e) {
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                "the body was not received in time",
            )
        } else {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "body_unreadable",
                "the body could not be read completely",
            )
        };
        tracing::info!(request_id = %id.0, error = %e, "body not read");
        error.into_response(id)
    })
}

fn timed_out(e: &BytesRejection) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        source = s.source();
    }
    false
}

/// The answer for an engine outcome of a delivery for `tenants` (counted for each one's
/// status); wakes the drainer for them, since work may be left in their outboxes.
pub(crate) async fn outcome(
    shared: &Shared,
    tenants: &[TenantId],
    outcome: &DeliveryOutcome,
    id: &RequestId,
) -> Response {
    for tenant in tenants {
        shared.wake(tenant);
        match outcome {
            DeliveryOutcome::InProgress => {}
            DeliveryOutcome::Duplicate => {
                count_for(shared, tenant, WebhookOutcome::Duplicate, None).await;
            }
            _ => count_for(shared, tenant, WebhookOutcome::Accepted, None).await,
        }
    }
    match outcome {
        DeliveryOutcome::Duplicate => status(StatusCode::OK, "duplicate", id),
        DeliveryOutcome::InProgress => {
            // Another copy holds the delivery: the sender must retry (if that copy fails,
            // the retry processes it; if not, the retry is answered `duplicate`).
            ApiError::new(
                StatusCode::CONFLICT,
                "in_progress",
                "this delivery is being processed by another request; retry later",
            )
            .retry_after(shared.options.http.retry_after_secs)
            .into_response(id)
        }
        _ => status(StatusCode::OK, "accepted", id),
    }
}

/// The answer for a failure of the engine or a CRM read: the detail goes to the log under
/// the request id; the sender is told to retry, never that the delivery was taken.
pub(crate) fn engine_error(shared: &Shared, e: &sync_engine::Error, id: &RequestId) -> Response {
    tracing::warn!(request_id = %id.0, error = %e, retryable = e.is_retryable(), "delivery failed; the sender will retry");
    let retry = shared.options.http.retry_after_secs;
    if e.is_retryable() {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "a system this delivery needs is unavailable; retry later",
        )
        .retry_after(retry)
        .into_response(id)
    } else {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "processing failed; the log has the detail under this request id",
        )
        .into_response(id)
    }
}
