//! `POST /webhooks/cativa/{event}` and `POST /webhooks/cativa`.
//!
//! Cativa bodies do not name their event: each Console listener is subscribed to one event.
//! Point each listener at its event's route (`/webhooks/cativa/user_created`, ...), or point
//! them all at `/webhooks/cativa` and map each listener's `X-Cativa-Automation-Id` to its
//! event. A delivery whose event cannot be determined is refused with 422, never accepted.

use std::sync::Arc;

use axum::Extension;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::Response;
use bytes::Bytes;
use cativa_client::webhook::{Delivery, EventType, WebhookError};

use sync_core::ports::WebhookOutcome;

use super::{body_or_error, engine_error, outcome};
use crate::response::{ApiError, RequestId};
use crate::service::Shared;

pub(super) async fn shared_route(
    State(shared): State<Arc<Shared>>,
    Extension(id): Extension<RequestId>,
    parts: Parts,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Some(receiver) = &shared.cativa else {
        return not_configured(&id);
    };
    let body = match body_or_error(body, shared.options.http.max_body_bytes, &id) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let delivery = receiver.receive_now(&parts, &body);
    handle(&shared, delivery, &id).await
}

pub(super) async fn event_route(
    State(shared): State<Arc<Shared>>,
    Extension(id): Extension<RequestId>,
    Path(event): Path<String>,
    parts: Parts,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Some(receiver) = &shared.cativa else {
        return not_configured(&id);
    };
    let Ok(kind) = event.parse::<EventType>() else {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_event",
            "no such event route; the routes are /webhooks/cativa/user_created, /webhooks/cativa/user_received_badge and /webhooks/cativa/user_joined_group",
        )
        .into_response(&id);
    };
    let body = match body_or_error(body, shared.options.http.max_body_bytes, &id) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let delivery = receiver.receive_event(kind, &parts, &body, std::time::SystemTime::now());
    handle(&shared, delivery, &id).await
}

fn not_configured(id: &RequestId) -> Response {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_configured",
        "Cativa webhooks are not configured on this service",
    )
    .into_response(id)
}

async fn handle(
    shared: &Shared,
    delivery: Result<Delivery, WebhookError>,
    id: &RequestId,
) -> Response {
    let delivery = match delivery {
        Ok(d) => d,
        Err(e) => {
            super::count_delivery(shared, WebhookOutcome::Refused, Some(e.code())).await;
            return refused(&e, id);
        }
    };
    let Some(event) = delivery.to_community_event() else {
        // Only for an event type added to the client after this service was built: refused
        // so that it is retried once the service handles it.
        return ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unsupported_event",
            format!(
                "event {} is not handled by this service",
                delivery.event.event_type()
            ),
        )
        .into_response(id);
    };
    let customer = delivery.customer_id();
    let tenant = match super::tenants::cativa_tenant(
        shared,
        customer.as_ref().map(|c| c.as_str()),
        id,
    )
    .await
    {
        Ok(t) => t,
        Err(r) => return r,
    };
    match shared
        .engine
        .handle_community_event(&tenant, delivery.execution_id.as_str(), event)
        .await
    {
        Ok(o) => outcome(shared, std::slice::from_ref(&tenant), &o, id).await,
        Err(e) => engine_error(shared, &e, id),
    }
}

/// A refused delivery: the connector's status and stable code, with a message that names
/// the field or header at fault but never a parser's internals.
fn refused(e: &WebhookError, id: &RequestId) -> Response {
    tracing::info!(request_id = %id.0, code = e.code(), error = %e, "Cativa delivery refused");
    let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    ApiError::new(status, e.code(), safe_message(e)).into_response(id)
}

fn safe_message(e: &WebhookError) -> String {
    match e {
        WebhookError::MalformedBody { field, .. } if field == "(body)" => {
            "the body is not a JSON object".to_owned()
        }
        WebhookError::MalformedBody { field, .. } => {
            format!("malformed event body: field {field} is missing or has the wrong type")
        }
        WebhookError::DuplicateKey { .. } => {
            "malformed event body: a key appears more than once; a signed body must hold each key once"
                .to_owned()
        }
        other => other.to_string(),
    }
}
