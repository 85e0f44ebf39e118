//! # crm-hubspot
//!
//! The HubSpot connector of cativa-crm-sync.
//!
//! - [`HubSpotClient`]: a typed client for the CRM APIs the sync uses (contacts list, get,
//!   search, batch read/create/update/upsert/archive, merge, properties, Lists v3
//!   memberships, notes), with HubSpot's rate limits (burst tier plus the separate search
//!   budget), its 429 policies and OAuth refresh.
//! - [`HubSpotSource`] and [`HubSpotSink`]: the sync engine's [`sync_core::CrmSource`] and
//!   [`sync_core::CrmSink`] for HubSpot contacts.
//! - [`webhook`]: signature verification (v1, v2, v3), batch parsing, deduplication,
//!   per-object ordering and echo detection.
//! - [`api_error`]: HubSpot's error bodies decoded into a [`api_error::Problem`].

pub mod api_error;
mod error;
pub mod model;
pub mod webhook;

pub use error::Error;
mod client;
pub mod convert;

pub use client::{
    ApiPaths, BatchItemError, BatchOutcome, DEFAULT_BASE_URL, HubSpotClient, HubSpotClientBuilder,
    ListOptions, OAuthCredentials, RateLimitTier, V3_OBJECTS_PREFIX, search_rate_limit,
    window_safe,
};
pub use convert::{ContactMapping, TagMatch, TagSource};
mod schema;
pub use schema::{Schema, ValueIssue};
mod sink;
mod source;

pub use sink::{HubSpotSink, SinkConfig};
pub use source::{HubSpotSource, SourceConfig};
