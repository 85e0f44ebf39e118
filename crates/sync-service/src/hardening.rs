//! The hardened router: the routes behind a global concurrency limit that sheds load, a
//! request timeout, a body read timeout, the body limit (checked before any parsing), header
//! limits, request ids and JSON error bodies. All of it is tower and tower-http layers; the
//! header read timeout is a connection setting, applied by [`crate::Service::serve`].

use std::sync::Arc;

use axum::error_handling::HandleErrorLayer;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::Response;
use axum::{BoxError, Extension, Router};
use tower::ServiceBuilder;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::RequestBodyTimeoutLayer;

use crate::Service;
use crate::response::{ApiError, RequestId, header_limits, request_id_and_json_errors};

/// The service's routes with every hardening layer, ready to serve or to `nest` into your own
/// axum app (behind your own middleware):
///
/// ```no_run
/// # fn app(service: &sync_service::Service) -> axum::Router {
/// axum::Router::new().nest("/sync", sync_service::router(service))
/// # }
/// ```
///
/// Nested, the header read timeout is yours to set on your server (it is a connection
/// setting; [`Service::serve`] sets it); everything else comes with the router. The background
/// work runs only under [`Service::serve`], or once you call [`Service::spawn_background`].
pub fn router(service: &Service) -> Router {
    let limits = &service.shared.options.http;
    let retry = limits.retry_after_secs;
    let overload = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(
            move |id: Extension<RequestId>, e: BoxError| overloaded(id, e, retry),
        ))
        .load_shed()
        // Global: one budget for every route, not one per route.
        .layer(GlobalConcurrencyLimitLayer::new(
            limits.max_concurrency.max(1),
        ))
        .timeout(limits.request_timeout);
    crate::routes::routes(Arc::clone(&service.shared))
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        // A declared length over the limit is refused before the body is read; a chunked
        // body is cut off at the limit while it is read.
        .layer(RequestBodyLimitLayer::new(limits.max_body_bytes))
        .layer(RequestBodyTimeoutLayer::new(limits.body_read_timeout))
        .layer(overload)
        .layer(from_fn_with_state(
            (limits.max_headers, limits.max_header_bytes),
            header_limits,
        ))
        .layer(from_fn(request_id_and_json_errors))
}

async fn overloaded(Extension(id): Extension<RequestId>, e: BoxError, retry: u64) -> Response {
    let error = if e.is::<tower::load_shed::error::Overloaded>() {
        metrics::counter!("cativa_sync_http_shed_total").increment(1);
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "too many requests in flight; retry later",
        )
    } else if e.is::<tower::timeout::error::Elapsed>() {
        tracing::warn!(request_id = %id.0, "request timed out");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            "the request took too long; retry later",
        )
    } else {
        tracing::warn!(request_id = %id.0, error = %e, "request failed in a layer");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the request failed; retry later",
        )
    };
    error.retry_after(retry).into_response(&id)
}
