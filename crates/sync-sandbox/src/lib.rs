//! Local fake HubSpot, Salesforce and Cativa HTTP servers for testing
//! cativa-crm-sync and your own integration, with no accounts and no network.
//!
//! The servers answer the endpoints the SDK uses with the payloads and error bodies
//! of the real APIs, enforce rate limits, inject faults reproducibly, generate
//! realistic seed data, and let tests inspect what happened (request counts per
//! endpoint, resulting state) and change state behind the client's back.
//!
//! | What | Where |
//! |---|---|
//! | HubSpot contacts, search, batch, properties, notes, lists, OAuth | [`hubspot`] |
//! | Salesforce OAuth, SOQL query/queryAll, updated/deleted, collections, upsert, Task | [`salesforce`] |
//! | Cativa auth/me, admin lookup, preview badge/user writes, signed webhooks | [`cativa`] |
//! | All three at once, one clock | [`SandboxServer`] |
//! | Rolling-window and daily limits | [`ratelimit`] |
//! | Seeded 429/5xx/slow/dropped/truncated faults | [`faults`] |
//! | Realistic seed data | [`datagen`] |
//! | Request counts per endpoint | [`inspect`] |
//! | The SOQL subset | [`soql`] |
//! | Moving time by hand | [`ManualClock`] |
//!
//! Every server listens on 127.0.0.1 only (port 0 by default), counts requests per
//! `"<METHOD> <route template>"`, and serves `GET /__sandbox/requests`,
//! `POST /__sandbox/requests/reset` and `GET /__sandbox/state` (never counted, limited
//! or faulted). Run `cargo run -p sync-sandbox --bin sync-sandbox -- --contacts 1000`
//! to get all three on your machine.
//!
//! This crate depends on no other crate of the workspace: it speaks HTTP only, so it
//! cannot share a bug with the clients it tests. It even signs webhooks with its own
//! HMAC code.
//!
//! ```no_run
//! # async fn demo() -> Result<(), sync_sandbox::SandboxError> {
//! use sync_sandbox::datagen::DataGenConfig;
//! use sync_sandbox::hubspot::{HubSpotConfig, HubSpotSandbox};
//!
//! let hubspot = HubSpotSandbox::start(HubSpotConfig::default()).await?;
//! hubspot.seed_generated(&DataGenConfig::default().with_contacts(1_000))?;
//! println!("HubSpot at {}", hubspot.base_url());
//! // ... point a client at the URL, run it, then assert on effects:
//! let list_calls = hubspot.requests().count("GET /crm/v3/objects/contacts");
//! # let _ = list_calls;
//! hubspot.shutdown().await;
//! # Ok(()) }
//! ```

// Functions stay short enough to read: long ones are split into named steps.
#![warn(clippy::too_many_lines)]

mod clock;
mod error;
mod http;
mod sandbox;
mod server;

pub mod cativa;
pub mod datagen;
pub mod faults;
pub mod hubspot;
pub mod inspect;
pub mod ratelimit;
pub mod salesforce;
pub mod soql;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::SandboxError;
pub use sandbox::{SandboxConfig, SandboxServer};

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks a mutex, recovering from poisoning: sandbox state stays usable after a
/// panicking test thread, which is what a test double should do.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

// The README's code blocks compile and run as doc-tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
