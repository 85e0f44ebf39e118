//! Shared HTTP plumbing for the cativa-crm-sync API clients (Cativa, HubSpot, Salesforce).
//!
//! One place for HTTP behaviour, so the three clients share it instead of writing it three
//! times:
//!
//! - [`HttpTransport`]: an object-safe transport trait with a default
//!   [`ReqwestTransport`] (rustls, no redirects), so you can inject your own client or
//!   middleware.
//! - [`HttpClient`] / [`HttpClientBuilder`]: base URL (point it at `127.0.0.1` for tests
//!   and the sandbox), timeouts, a user agent naming the crate and version, bearer auth
//!   from a [`SecretString`](secrecy::SecretString) or a [`TokenProvider`] for OAuth
//!   (a 401 refreshes the token once, single-flight with [`RefreshingToken`]).
//! - Retries: [`RetryPolicy`] is plain data; a pure function of it says
//!   retry or give up (429/502/503/504, connection errors and timeouts; `Retry-After` in
//!   seconds or as an HTTP date and reset headers honoured on 429/503; never other 4xx;
//!   POST/PATCH only when marked idempotent; a wait longer than the cap gives up with
//!   [`ErrorKind::RateLimited`] carrying `retry_after`, so a run can end cleanly). The
//!   verdict is executed with [`backon`], sleeping on tokio's clock. (We use `backon`, not
//!   `backoff`: the latter is unmaintained, RUSTSEC-2025-0012.)
//! - Client-side rate limiting: [`RateLimiter`] (a `governor` token bucket on tokio's
//!   clock), shared across clones of a client; a request can add its own extra limiter.
//! - Request counts for run reports: [`HttpClient::request_counts`] by `"METHOD <path
//!   template>"` (every attempt sent, retries included), shared across clones;
//!   [`HttpClient::with_own_request_counts`] gives a component counts of its own.
//! - Errors: [`HttpError`] keeps the status, the API's code, category, message and
//!   correlation id, the response headers and body, and an [`ErrorKind`] with
//!   [`HttpError::is_retryable`]. Each API crate decodes its own error body shape with an
//!   [`ErrorDecoder`].
//! - Secrets never reach `Debug` or logs, and bearer tokens found in API messages are
//!   redacted ([`redact_secrets`]). Every request is a `tracing` span `http.request` with
//!   `method`, `path` (no query string), `status`, `attempt` and `latency_ms`.
//!
//! # Example
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use secrecy::SecretString;
//! use sync_http::{HttpClient, RateLimit, RateLimiter, RetryPolicy};
//!
//! # async fn demo() -> Result<(), sync_http::HttpError> {
//! let client = HttpClient::builder("https://api.hubapi.com")
//!     .bearer(SecretString::from(std::env::var("HUBSPOT_TOKEN").unwrap_or_default()))
//!     .user_agent("crm-hubspot", "0.1.0")
//!     .rate_limit(RateLimit::new(100, Duration::from_secs(10)))
//!     .retry_policy(RetryPolicy::default().with_max_attempts(4))
//!     .build()?;
//!
//! // Search has its own budget on top of the client's.
//! let search_budget = Arc::new(RateLimiter::new(RateLimit::new(5, Duration::from_secs(1))).unwrap());
//! let page: serde_json::Value = client
//!     .post("/crm/v3/objects/contacts/search")
//!     .json(&serde_json::json!({"limit": 100}))
//!     .idempotent(true) // a read: safe to retry
//!     .limiter(search_budget)
//!     .send_json()
//!     .await?;
//! # let _ = page; Ok(()) }
//! ```
//!
//! # Testing with tokio's paused clock
//!
//! Retry waits and rate limiting run on tokio's clock, so `#[tokio::test(start_paused =
//! true)]` tests can assert that a `Retry-After: 30` wait happened without waiting 30 s.
//! Build such clients with [`HttpClientBuilder::without_timeouts`]: a paused runtime that
//! waits on a socket jumps to its next timer, which would otherwise be the request timeout.

// Functions stay short enough to read: long ones are split into named steps.
#![warn(clippy::too_many_lines)]

mod auth;
mod client;
mod decode;
mod error;
mod oauth_state;
pub mod random;
mod rate_limit;
mod redact;
mod retry;
#[cfg(test)]
mod retry_properties;
pub mod tls;
mod transport;

pub use auth::{AccessToken, Auth, RefreshingToken, TokenProvider, TokenSource};
pub use client::{
    DEFAULT_USER_AGENT, HttpClient, HttpClientBuilder, LimitHeaders, RequestBuilder,
    RequestOptions, Response,
};
pub use decode::{ApiErrorInfo, ErrorDecoder, JsonErrorDecoder, correlation_from_headers};
pub use error::{ErrorKind, HttpError};
pub use oauth_state::{MIN_STATE_SECRET_LEN, OAuthStateKey, StateError};
pub use rate_limit::{AnnouncedLimit, RateLimit, RateLimiter};
pub use redact::redact_secrets;
pub use retry::{Decision, Failure, GiveUpReason, Outcome, RetryPolicy, is_retryable_status};
pub use transport::{
    ConfigureReqwest, HttpOptions, HttpTransport, ReqwestSettings, ReqwestTransport,
    TransportError, TransportErrorKind, TransportRequest, TransportResponse,
};

/// Re-exported so API crates and partners name the same versions.
pub use http;
pub use reqwest;
pub use secrecy;
pub use url;

// The README's code blocks compile and run as doc-tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
