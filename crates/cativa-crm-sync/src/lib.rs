//! # cativa-crm-sync
//!
//! Keep a [Cativa](https://cativa.digital) community (users, badges, groups) in sync with the
//! CRM a partner already runs. This is the one dependency to add:
//!
//! ```sh
//! cargo add cativa-crm-sync --features hubspot,sqlite
//! ```
//!
//! Every crate of the SDK is re-exported under a short module name, on one version:
//!
//! | module | crate | feature |
//! |---|---|---|
//! | [`core`] | `sync-core`: domain, configuration, ports, the pure planner | always |
//! | [`engine`] | `sync-engine`: pull, push, apply through the outbox, reports | always |
//! | [`http`] | `sync-http`: retries, rate limits, typed HTTP errors | always |
//! | [`cativa`] | `cativa-client`: Cativa API, webhooks, badge sinks | always |
//! | `hubspot` | `crm-hubspot` | `hubspot` |
//! | `salesforce` | `crm-salesforce` | `salesforce` |
//! | `store` | `sync-store`: SQLite and PostgreSQL | `sqlite` (default), `postgres` |
//! | `sandbox` | `sync-sandbox`: fake HubSpot, Salesforce and Cativa servers | `sandbox` |
//! | `service` | `sync-service`: the production service (routes, drainer, schedules, checks) | `service` |
//! | `indicatif` | progress bars over the engine's `with_progress` updates | `progress` |
//!
//! [`secrecy`] is re-exported too, so credentials are wrapped in the same `SecretString` the
//! clients take, and [`chrono`], whose timestamps the domain model uses. The [`prelude`] holds what a service needs.
//!
//! The repository's `ARCHITECTURE.md` describes how the parts fit; the README walks through
//! a first sync.

// Functions stay short enough to read: long ones are split into named steps.
#![warn(clippy::too_many_lines)]

pub mod prelude;

pub use cativa_client as cativa;
pub use chrono;
pub use secrecy;
pub use sync_core as core;
pub use sync_engine as engine;
pub use sync_http as http;

#[cfg(feature = "hubspot")]
pub use crm_hubspot as hubspot;
#[cfg(feature = "salesforce")]
pub use crm_salesforce as salesforce;
#[cfg(feature = "progress")]
pub use indicatif;
#[cfg(feature = "sandbox")]
pub use sync_sandbox as sandbox;
#[cfg(feature = "service")]
pub use sync_service as service;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use sync_store as store;

// The README's code blocks compile as doc-tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
