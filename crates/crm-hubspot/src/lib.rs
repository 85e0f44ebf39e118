//! # crm-hubspot
//!
//! The HubSpot connector of cativa-crm-sync: keep HubSpot contacts and a Cativa community in
//! sync, within HubSpot's limits and around its well-known traps.
//!
//! - [`HubSpotClient`]: a typed client for the CRM APIs the sync uses (contacts list, get,
//!   search, batch read/create/update/upsert/archive, merge, properties, Lists v3
//!   memberships, notes). It keeps under the account's burst tier and the separate search
//!   budget, waits out 429s by `policyName` (and stops on `DAILY`), and refreshes OAuth
//!   tokens before they expire, once for any number of concurrent requests.
//! - [`HubSpotSource`] and [`HubSpotSink`]: the engine's
//!   [`CrmSource`](sync_core::ports::CrmSource) and [`CrmSink`](sync_core::ports::CrmSink)
//!   for contacts: deltas by search with window restarts under the 10,000-result cap,
//!   archived contacts, tags from a checkbox property, lists or predicates; find-or-create
//!   without duplicates, schema validation before sending, bad inputs isolated.
//! - [`webhook`]: signature verification (v1, v2, v3), batch parsing, deduplication,
//!   per-object ordering, echo detection and the signals the engine acts on.
//! - [`api_error`]: HubSpot's error bodies decoded into an [`api_error::Problem`].
//!
//! # Example
//!
//! ```no_run
//! use std::sync::Arc;
//!
//! use crm_hubspot::webhook::EchoFilter;
//! use crm_hubspot::{ContactMapping, HubSpotClient, HubSpotSink, HubSpotSource, RateLimitTier, SinkConfig, SourceConfig, TagSource};
//! use secrecy::SecretString;
//! use sync_core::ports::CrmSource;
//! use sync_core::{Cursor, TenantId};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let client = HubSpotClient::builder()
//!     .base_url(std::env::var("HUBSPOT_BASE_URL").unwrap_or_else(|_| crm_hubspot::DEFAULT_BASE_URL.into()))
//!     .access_token(SecretString::from(std::env::var("HUBSPOT_TOKEN")?))
//!     .tier(RateLimitTier::ProfessionalEnterprise)
//!     .build()?;
//!
//! // Tags come from the multiple-checkboxes property `cativa_tags`.
//! let mapping = ContactMapping::default().with_tags(TagSource::CheckboxProperty("cativa_tags".into()));
//! let source = HubSpotSource::new(client.clone(), SourceConfig::new(mapping));
//! let echo = Arc::new(EchoFilter::new());
//! let _sink = HubSpotSink::new(client, SinkConfig::default().with_member_id_property("cativa_member_id"))
//!     .with_echo_filter(echo);
//!
//! let page = source.changed_since(&TenantId::new("acme"), &Cursor::beginning(), None).await?;
//! println!("{} contacts changed", page.contacts.len());
//! # Ok(()) }
//! ```

// Functions stay short enough to read: long ones are split into named steps.
#![warn(clippy::too_many_lines)]

pub mod api_error;
mod client;
pub mod connection;
pub mod convert;
mod error;
pub mod model;
pub mod oauth;
mod schema;
mod sink;
mod source;
pub mod subscriptions;
pub mod webhook;

pub use client::{
    AccountDetails, ApiPaths, AssociationBatchOutcome, AssociationInput, AssociationSpec,
    BatchItemError, BatchOutcome, CONTACT_TO_PRIMARY_COMPANY, DEFAULT_BASE_URL, HubSpotClient,
    HubSpotClientBuilder, ListOptions, OAuthCredentials, ObjectRef, RateLimitTier, TokenInfo,
    V3_OBJECTS_PREFIX, search_rate_limit, window_safe,
};
pub use convert::{ContactMapping, TagMatch, TagSource};
pub use error::Error;
pub use schema::{Schema, ValueIssue, crm_property};
pub use sink::{HubSpotSink, SinkConfig};
pub use source::{HubSpotSource, SourceConfig};

// The README's code blocks compile and run as doc-tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
