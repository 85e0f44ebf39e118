//! # crm-salesforce
//!
//! The Salesforce connector of cativa-crm-sync.
//!
//! - [`SalesforceClient`]: OAuth 2.0 ([`OAuthFlow`]: JWT bearer, client credentials, refresh
//!   token), the instance URL learned from the token response, a 401 `INVALID_SESSION_ID`
//!   renewed once (single-flight) and retried, `Sforce-Limit-Info` recorded on every
//!   response ([`SalesforceClient::last_api_usage`]).
//! - [`soql`]: a SOQL builder whose literals cannot be escaped out of.
//! - Reads: `query` / `queryAll` paged to `done`, the `updated` (30 days) and `deleted`
//!   (15 days) change windows.
//! - Writes: sObject Collections create / update / upsert by external ID, 200 records per
//!   call, per-record results in input order, `UNABLE_TO_LOCK_ROW` resent with backoff;
//!   single upsert by external ID (201 / 200 / 204, and 300 as
//!   [`SalesforceError::MultipleMatches`]). Every write carries `Sforce-Call-Options:
//!   client=<id>` so the sync can recognise its own changes.
//! - [`SalesforceSource`] and [`SalesforceSink`]: the sync-core ports for Contact or Lead.

mod auth;
mod client;
mod contact;
pub mod error;
pub mod limits;
pub mod models;
mod sink;
pub mod soql;
mod source;

pub use auth::{
    Clock, JwtBearer, JwtClaims, MAX_ASSERTION_LIFETIME, OAuthFlow, SalesforceTokenSource,
    TOKEN_PATH, TokenResponse, default_audience,
};
pub use client::{
    DEFAULT_API_VERSION, DEFAULT_CALL_CLIENT, DEFAULT_LOGIN_URL, DELETED_WINDOW_DAYS, LockRetry,
    MAX_COLLECTION_RECORDS, SalesforceClient, SalesforceClientBuilder, UPDATED_WINDOW_DAYS,
};
pub use contact::{ContactSchema, MODSTAMP_FIELD, TagSource, decode_contact, value_text};
pub use error::{ApiError, ApiErrorKind, SalesforceError};
pub use limits::ApiUsage;
pub use sink::SalesforceSink;
pub use source::SalesforceSource;
