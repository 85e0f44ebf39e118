//! # sync-store
//!
//! Durable implementations of the store ports of [`sync_core`] ([`sync_core::ports::Store`]:
//! mappings with badge provenance, delta checkpoints, the processed-delivery ledger, the
//! outbox, the audit log and leader leases):
//!
//! - [`SqliteStore`] (feature `sqlite`, on by default): one file, nothing to install. For a
//!   service running as one process.
//! - [`PostgresStore`] (feature `postgres`): for several webhook receivers and workers
//!   behind a load balancer sharing one database.
//!
//! Both behave exactly like `sync_core::MemoryStore` (sync-core's feature `test-util`): the
//! same conformance suite ([`conformance`], feature `conformance`) runs against all three.
//! Schemas are created and upgraded by embedded sqlx migrations when a store connects.
//!
//! ```no_run
//! use std::sync::Arc;
//! use sync_core::ports::Store;
//! # async fn run() -> Result<(), sync_core::Error> {
//! // A SQLite path, `sqlite::memory:`, or a `postgres://` URL (from SYNC_DATABASE_URL, say).
//! let store: Arc<dyn Store> = sync_store::connect("sync.db").await?;
//! # Ok(()) }
//! ```
//!
//! Every error is a [`sync_core::Error`]: `Store { retryable: true }` for a busy database or
//! a lost connection, `UniqueViolation` for conflicting mapping keys, `CorruptRow` for a row
//! that does not decode, `UnknownTenant` for an empty tenant id.

// Functions stay short enough to read: long ones are split into named steps.
#![warn(clippy::too_many_lines)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "conformance")]
pub mod conformance;
mod connect;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod crypto;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod db_error;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod from_row;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod migrations;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod rows;
#[cfg(feature = "sqlite")]
mod sqlite;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod tables;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod time;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod upsert;

pub use connect::connect;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub use crypto::{CredentialKey, CredentialKeys, KEY_LEN};
#[cfg(feature = "postgres")]
pub use postgres::{PostgresCredentialStore, PostgresOptions, PostgresStore};
#[cfg(feature = "sqlite")]
pub use sqlite::{Durability, SqliteCredentialStore, SqliteOptions, SqliteStore};

// The README's code blocks compile and run as doc-tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
