//! # sync-core
//!
//! The heart of cativa-crm-sync: the domain model, the configuration, the ports (traits that
//! CRM connectors, badge sinks and stores implement), the pure planner and the run report.
//! It does no I/O and needs no async runtime: the `sync-engine` crate drives the ports.
//!
//! The flow is **plan, then apply**: the [`planner`] turns CRM contacts plus the store's view
//! of the mapping table into a [`Plan`] of actions, each with a reason and a deterministic
//! [`IdempotencyKey`]. A plan prints as a reviewable diff and serializes to JSON, so a dry
//! run is free; the engine (`sync-engine`) applies it through the sinks.
//!
//! Three rules run through everything:
//! - a badge is removed only when this sync manages it **and** granted it itself
//!   ([`Provenance::Sync`]);
//! - a writer writes only the fields it owns, and a blank value never clears the other side;
//! - removal by absence only after a complete full scan.

// Functions stay short enough to read: long ones are split into named steps.
#![warn(clippy::too_many_lines)]

pub mod config;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod csv_source;
mod domain;
mod error;
#[cfg(any(test, feature = "test-util"))]
mod memory_store;
pub mod plan;
pub mod planner;
pub mod ports;
pub mod report;
pub mod status;
pub mod suggest;
#[cfg(any(test, feature = "test-util"))]
pub mod testkit;
pub mod transform;

pub use config::{SyncConfig, ValidatedConfig};
pub use domain::{
    BadgeGrant, BadgeId, CativaUserId, CommunityProfile, CommunityUser, CrmContact, CrmKind,
    CrmRecordId, Cursor, Email, EmailError, MAX_EMAIL_LEN, Mapping, Provenance, RuleId, TenantId,
    next_checkpoint,
};
pub use error::{Error, RemoteError, RemoteErrorKind};
#[cfg(any(test, feature = "test-util"))]
pub use memory_store::MemoryStore;
pub use plan::{
    Action, ActionKind, ActionType, Conflict, ConflictKind, IdempotencyKey, Plan, PlanCounts,
    PlanMode, Reason,
};
pub use ports::{CommunityEvent, DeliveryOutcome};
pub use report::RunReport;

// The README's code blocks compile and run as doc-tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
