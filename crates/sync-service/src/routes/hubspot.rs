//! `POST /webhooks/hubspot`: verified (v3 signature over the public URL), echoes of the SDK's
//! own writes dropped, the contacts named read and handed to the engine.

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::Response;
use bytes::Bytes;
use crm_hubspot::webhook::{WebhookError, WebhookEvent};
use sync_core::DeliveryOutcome;

use sync_core::ports::WebhookOutcome;

use super::{body_or_error, engine_error, outcome};
use crate::response::{ApiError, RequestId, status};
use crate::service::Shared;

pub(super) async fn route(
    State(shared): State<Arc<Shared>>,
    Extension(id): Extension<RequestId>,
    parts: Parts,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Some((receiver, _)) = &shared.hubspot else {
        return ApiError::new(
            StatusCode::NOT_FOUND,
            "not_configured",
            "HubSpot webhooks are not configured on this service",
        )
        .into_response(&id);
    };
    let body = match body_or_error(body, shared.options.http.max_body_bytes, &id) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let delivery = match receiver.receive_now(&parts, &body) {
        Ok(d) => d,
        Err(e) => {
            super::count_delivery(&shared, WebhookOutcome::Refused, Some(e.code())).await;
            return refused(&e, &id);
        }
    };
    if delivery.events.is_empty() {
        // Only echoes of the SDK's own writes, or nothing at all.
        super::count_delivery(&shared, WebhookOutcome::Accepted, None).await;
        return status(StatusCode::OK, "accepted", &id);
    }
    let groups = match super::tenants::hubspot_tenants(&shared, delivery.events, &id).await {
        Ok(g) => g,
        Err(r) => return r,
    };
    // One engine call per tenant; the answer asks for a retry if any part needs one.
    let mut answer = DeliveryOutcome::Duplicate;
    let tenants: Vec<_> = groups.iter().map(|(t, _)| t.clone()).collect();
    for (tenant, events) in groups {
        let contacts = match super::tenants::hubspot_contacts(&shared, &tenant, &events).await {
            Ok(c) => c,
            Err(e) => return engine_error(&shared, &e, &id),
        };
        let ledger: Vec<String> = events.iter().map(WebhookEvent::dedupe_string).collect();
        match shared
            .engine
            .handle_crm_contacts(&tenant, &ledger, contacts)
            .await
        {
            Ok(DeliveryOutcome::Duplicate) => {}
            Ok(DeliveryOutcome::InProgress) => answer = DeliveryOutcome::InProgress,
            Ok(o) if answer != DeliveryOutcome::InProgress => answer = o,
            Ok(_) => {}
            Err(e) => return engine_error(&shared, &e, &id),
        }
    }
    outcome(&shared, &tenants, &answer, &id).await
}

fn refused(e: &WebhookError, id: &RequestId) -> Response {
    tracing::info!(request_id = %id.0, code = e.code(), error = %e, "HubSpot delivery refused");
    let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    let message = match e {
        WebhookError::MalformedBatch(_) => {
            "the body is not a JSON array of HubSpot webhook events".to_owned()
        }
        WebhookError::MalformedEvent { index, .. } => {
            format!("HubSpot webhook event #{index} is malformed")
        }
        other => other.to_string(),
    };
    ApiError::new(status, e.code(), message).into_response(id)
}
