//! The Cativa side of cativa-crm-sync.
//!
//! - [`CativaClient`]: the Cativa REST API with a partner API key (`Authorization: Bearer`):
//!   [`me`](CativaClient::me) (`GET /social/v1/auth/me`, the key's user and tenant),
//!   [`user_by_email`](CativaClient::user_by_email) (the admin lookup, which partner keys
//!   cannot use yet: a clear [`Error::AdminLookupForbidden`] says what to do), and
//!   the **preview** writes (assign/remove badge, create/update user) at configurable
//!   [`PreviewPaths`], each sent with an `Idempotency-Key`.
//! - [`webhook`]: `X-Cativa-Signature` verification (HMAC-SHA256 over `t.body`, several
//!   `v1` values and several secrets for rotation, ±300 s tolerance, constant-time), the
//!   execution id as the idempotency key, and typed events (`user_created`,
//!   `user_received_badge`, `user_joined_group`) parsed for the event type the receiver is
//!   configured with (its route, or the listener's automation id): Cativa bodies do not
//!   name their event.
//! - [`sink`]: sync-core port implementations: [`ApiBadgeSink`](sink::ApiBadgeSink) (preview
//!   endpoints, bounded parallelism), [`CsvBadgeSink`](sink::CsvBadgeSink) (the bulk-import
//!   spreadsheet, today's workaround), [`ApiCommunitySink`](sink::ApiCommunitySink), and
//!   [`SignupInviter`](sink::SignupInviter) (sign-up link plus email, for the CRM to send).
//!
//! HTTP behaviour (retries honouring `Retry-After`, rate limiting, error classification,
//! secret redaction, tracing) comes from [`sync_http`].

// Functions stay short enough to read: long ones are split into named steps.
#![warn(clippy::too_many_lines)]

mod client;
mod error;
mod model;
pub mod sink;
mod status_webhook;
pub mod webhook;

pub use client::{CativaClient, CativaClientBuilder, DEFAULT_BASE_URL, PreviewPaths};
pub use error::Error;
pub use status_webhook::WebhookObserver;

pub use model::{CativaUser, Me, NewUser, UserFields};

// The README's code blocks compile and run as doc-tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
