//! Shared helpers for the runnable examples of cativa-crm-sync (the examples themselves are
//! `examples/*.rs`; run one with `cargo run --example quickstart`).
//!
//! - [`settings`]: the environment every example reads, with the same names everywhere
//!   (`HUBSPOT_BASE_URL`, `HUBSPOT_TOKEN`, `SALESFORCE_LOGIN_URL`, `CATIVA_BASE_URL`,
//!   `CATIVA_API_KEY`, `SYNC_DATABASE_URL`, ...).
//! - [`setup`]: API clients for the endpoints that are set, the in-process sandbox for those
//!   that are not ([`setup::Endpoints::notice`] says which, on the first line of output),
//!   and the store.
//! - [`seed`]: sandbox people, and community users recorded from signed `user_created`
//!   webhooks, as production records them.
//! - [`receiver`]: the axum webhook routes of the `webhook_receiver` example.
//! - [`worker`]: the pull loop of `hubspot_badge_sync` and `salesforce_delta_sync`
//!   (`--once`, `--once --full`, interval deltas plus a nightly full reconcile).
//! - [`quickstart`]: the quickstart as a function, so CI runs it too.
//! - [`output`]: plans cut to a readable length.

mod error;
pub mod output;
pub mod quickstart;
pub mod receiver;
pub mod seed;
pub mod settings;
pub mod setup;
pub mod worker;

pub use error::ExampleError;

/// Logs to stderr, filtered by `RUST_LOG` (default `warn`), so stdout stays for results.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
