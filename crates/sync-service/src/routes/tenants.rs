//! Which tenant a webhook delivery belongs to. A single-tenant service hands every delivery
//! to its one tenant; a service routing many tenants ([`crate::ServiceBuilder::route_tenants`])
//! asks its `TenantConnections`: HubSpot events by `portalId`, Cativa deliveries by
//! `CustomerId`. A delivery naming no known tenant is refused with 422 before anything is
//! read or written, so it never runs on another tenant's credentials and is never answered
//! `accepted`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use crm_hubspot::webhook::{WebhookEvent, contact_signals};
use sync_core::ports::{CrmSource, WebhookOutcome};
use sync_core::{CrmContact, CrmKind, TenantId};

use crate::response::{ApiError, RequestId};
use crate::service::Shared;

/// The tenant of a Cativa delivery that carries `customer_id`.
pub(super) async fn cativa_tenant(
    shared: &Shared,
    customer_id: Option<&str>,
    id: &RequestId,
) -> Result<TenantId, Response> {
    let Some(routing) = &shared.routing else {
        return Ok(shared.tenant.clone());
    };
    let Some(customer) = customer_id else {
        return Err(refuse(
            shared,
            "missing_customer_id",
            "the delivery names no CustomerId; this service serves many tenants and routes Cativa deliveries by it".to_owned(),
            id,
        )
        .await);
    };
    match routing.tenant_for_customer(customer).await {
        Ok(Some(tenant)) => Ok(tenant),
        Ok(None) => Err(refuse(
            shared,
            "unknown_tenant",
            format!("no tenant is connected to Cativa customer {customer}"),
            id,
        )
        .await),
        Err(e) => Err(super::engine_error(shared, &e.into(), id)),
    }
}

/// A delivery's events grouped by tenant (one group per portal), in portal order.
pub(super) type TenantEvents = Vec<(TenantId, Vec<WebhookEvent>)>;

/// The tenants of a HubSpot delivery's events: every portal named must be connected,
/// else the whole delivery is refused (nothing of it is processed).
pub(super) async fn hubspot_tenants(
    shared: &Shared,
    events: Vec<WebhookEvent>,
    id: &RequestId,
) -> Result<TenantEvents, Response> {
    let Some(routing) = &shared.routing else {
        return Ok(vec![(shared.tenant.clone(), events)]);
    };
    let mut by_portal: BTreeMap<u64, Vec<WebhookEvent>> = BTreeMap::new();
    for e in events {
        by_portal.entry(e.portal_id).or_default().push(e);
    }
    let mut out = Vec::with_capacity(by_portal.len());
    for (portal, events) in by_portal {
        match routing
            .tenant_for_account(&CrmKind::Hubspot, &portal.to_string())
            .await
        {
            Ok(Some(tenant)) => out.push((tenant, events)),
            Ok(None) => {
                return Err(refuse(
                    shared,
                    "unknown_tenant",
                    format!("no tenant is connected to HubSpot portal {portal}"),
                    id,
                )
                .await);
            }
            Err(e) => return Err(super::engine_error(shared, &e.into(), id)),
        }
    }
    Ok(out)
}

/// The contacts `events` name, read through `tenant`'s own source (the service's HubSpot
/// source when it serves one tenant).
pub(super) async fn hubspot_contacts(
    shared: &Shared,
    tenant: &TenantId,
    events: &[WebhookEvent],
) -> Result<Vec<CrmContact>, sync_engine::Error> {
    let signals = contact_signals(events);
    let source: Arc<dyn CrmSource> = match (&shared.routing, &shared.hubspot) {
        (None, Some((_, Some(source)))) => source.clone(),
        _ => shared
            .engine
            .connections()
            .parts(tenant)
            .await?
            .source
            .ok_or_else(|| {
                sync_engine::Error::NotConfigured(format!("no CRM source for tenant {tenant}"))
            })?,
    };
    let mut contacts = if signals.refetch.is_empty() {
        Vec::new()
    } else {
        source.get_by_ids(tenant, &signals.refetch).await?
    };
    contacts.extend(signals.tombstones.iter().cloned());
    Ok(contacts)
}

async fn refuse(shared: &Shared, code: &'static str, message: String, id: &RequestId) -> Response {
    tracing::info!(request_id = %id.0, code, %message, "delivery refused: no such tenant");
    super::count_delivery(shared, WebhookOutcome::Refused, Some(code)).await;
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message).into_response(id)
}
