//! Local fake HubSpot, Salesforce and Cativa HTTP servers for testing
//! cativa-crm-sync and your own integration, with no accounts and no network.
//!
//! The servers answer the endpoints the SDK uses with the payloads and error bodies
//! of the real APIs, enforce rate limits, inject faults reproducibly, generate
//! realistic seed data, and let tests inspect what happened (request counts per
//! endpoint, resulting state) and change state behind the client's back.
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

// Handlers return ready-made error responses; boxing them would buy nothing.
#![allow(clippy::result_large_err)]

mod clock;
mod error;
mod http;
mod server;

pub mod datagen;
pub mod faults;
pub mod hubspot;
pub mod inspect;
pub mod ratelimit;
pub mod salesforce;
pub mod soql;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::SandboxError;

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks a mutex, recovering from poisoning: sandbox state stays usable after a
/// panicking test thread, which is what a test double should do.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
