//! # sync-service
//!
//! The production service of cativa-crm-sync, as a library: a partner's whole binary is a
//! short `main` that reads a [`ServiceConfig`], connects, checks and serves.
//!
//! - **Routes** ([`router`]): `POST /webhooks/cativa/{event}`, `POST /webhooks/cativa`
//!   (listeners told apart by automation id), `POST /webhooks/hubspot`, `GET /healthz`,
//!   `GET /readyz` and, with the `prometheus` feature, `GET /metrics`. Nest the router into
//!   your own axum app behind your middleware, or run [`Service::serve`] standalone.
//! - **Many tenants** ([`Service::multi_tenant_builder`]): webhooks routed to their tenant by
//!   HubSpot `portalId` and Cativa `CustomerId` (unknown tenants refused with 422), and the
//!   install routes `GET /connect/{crm}?tenant=...` and `GET /oauth/{crm}/callback`
//!   ([`ServiceBuilder::installs`]); [`CredentialConnections`] builds each tenant's parts from
//!   its saved credentials. The background work, `/readyz` and the status routes serve every
//!   tenant the connections list (`TenantConnections::tenants`), not only the home tenant.
//! - **Status** (with a status token, [`ServiceBuilder::status_token`]): `GET /status`,
//!   `GET /status/{tenant}`, failed work listed, requeued and dismissed, and a status page
//!   at `GET /status/page`, all behind a bearer token; a health job tells observers
//!   ([`ServiceBuilder::observer`]) of each change of health.
//! - **Hardening**: header, body and request timeouts; a concurrency limit that sheds load
//!   with 503 and `Retry-After`; the body limit enforced before any parsing; header size and
//!   count limits; every answer JSON (`{"error", "message", "request_id"}`), with internal
//!   detail only in the log under the same request id.
//! - **Background work**: a continuous outbox drainer, delta pulls on an interval with
//!   jitter and a daily full reconcile (only the leader-lease holder pulls), and retention
//!   purges in bounded batches.
//! - **Start-up checks** and **graceful shutdown**: see the crate README.

// Functions stay short enough to read: long ones are split into named steps.
#![warn(clippy::too_many_lines)]

mod background;
mod checks;
pub mod config;
mod connect;
mod error;
mod hardening;
mod install;
pub mod jobs;
pub mod options;
mod response;
mod routes;
mod server;
mod service;
mod signal;
mod status_page;
mod tenants;

pub use background::{Background, PULL_LEASE};
pub use checks::{CheckReport, HUBSPOT_REQUIRED_SCOPES, HUBSPOT_SCHEMA_WRITE_SCOPE, check, start};
pub use config::{ServiceArgs, ServiceConfig};
pub use connect::{Connected, HUBSPOT_BADGES_PROPERTY, HUBSPOT_USER_ID_PROPERTY, connect};
pub use error::{Error, Problem};
pub use hardening::router;
pub use install::{InstallHook, Installs};
pub use options::ServiceOptions;
pub use response::{REQUEST_ID_HEADER, RequestId};
pub use service::{Service, ServiceBuilder};
pub use signal::shutdown_signal;
pub use tenants::{CredentialConnections, HubSpotTenants, SalesforceTenants};

// The README's code blocks compile as doc-tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
