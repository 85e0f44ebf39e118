//! # crm-salesforce
//!
//! The Salesforce connector of cativa-crm-sync: a typed REST client and the sync-core ports
//! ([`CrmSource`](sync_core::ports::CrmSource), [`CrmSink`](sync_core::ports::CrmSink)) for
//! `Contact` or `Lead`.
//!
//! ```no_run
//! use crm_salesforce::{ContactSchema, JwtBearer, OAuthFlow, SalesforceClient, SalesforceSink, SalesforceSource, TagSource};
//! use sync_core::ports::CrmSource;
//! use sync_core::{Cursor, TenantId};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let key = std::fs::read("salesforce-jwt.key")?;
//! let client = SalesforceClient::builder()
//!     .login_url("https://acme.my.salesforce.com")
//!     .flow(OAuthFlow::JwtBearer(JwtBearer::from_pem("3MVG9...", "cativa-sync@acme.com", &key)?))
//!     .call_client("cativa-sync") // Sforce-Call-Options: client=cativa-sync where documented
//!     .build()?;
//! let schema = ContactSchema::contact()
//!     .with_external_id_field("Cativa_Member_Id__c")
//!     .with_property("Title")
//!     .with_tags(TagSource::MultiSelect { field: "Community_Tags__c".into() });
//! let source = SalesforceSource::new(client.clone(), schema.clone())?;
//! let sink = SalesforceSink::new(client.clone(), schema)?;
//!
//! let tenant = TenantId::new("acme");
//! let mut page = source.changed_since(&tenant, &Cursor::beginning(), None).await?;
//! loop {
//!     for contact in &page.contacts {
//!         println!("{} {:?} archived={} merged_into={:?}", contact.id, contact.email, contact.archived, contact.merged_into);
//!     }
//!     let Some(next) = page.next.take() else { break };
//!     page = source.changed_since(&tenant, &Cursor::beginning(), Some(&next)).await?;
//! }
//! println!("API usage: {:?}", client.last_api_usage());
//! # let _ = sink; Ok(()) }
//! ```
//!
//! What is where:
//!
//! - [`SalesforceClient`] (`client`): OAuth 2.0 ([`OAuthFlow`]: JWT bearer, client
//!   credentials on a My Domain host, refresh token, or a static token), the instance URL
//!   learned from the token response, a 401 `INVALID_SESSION_ID` renewed once
//!   (single-flight, however many requests were rejected) and retried, and
//!   `Sforce-Limit-Info` recorded on every response ([`SalesforceClient::last_api_usage`];
//!   a warning is logged when usage passes 90%).
//! - [`soql`]: a SOQL builder whose string literals cannot be escaped out of; datetime
//!   literals unquoted in UTC.
//! - Reads: `query` / `queryAll` paged by `nextRecordsUrl` to `done`; the `updated`
//!   (30 days) and `deleted` (15 days) change windows, refused outside their range.
//! - Writes: sObject Collections create / update / upsert by external ID, 200 records per
//!   call, per-record results in input order, records failing with `UNABLE_TO_LOCK_ROW`
//!   resent alone with backoff ([`LockRetry`]); single upsert by external ID (201 / 200 /
//!   204, and 300 as [`Error::MultipleMatches`]: a conflict, never retried);
//!   a value that is not plain ASCII letters, digits, `-` or `_` (`.`, `a/b`, emails,
//!   non-ASCII) goes in the body of a one-record collections upsert instead of the path.
//!   `Sforce-Call-Options: client=<id>` is sent where the guide lists it (query,
//!   queryAll, sObject basic information, rows, rows by external ID), not on collections.
//!   Lookup queries are split so their encoded URI stays under 16,384 bytes. API versions
//!   below [`MIN_API_VERSION`] (v46.0, collections upsert) are refused at build time.
//! - Echoes: the source skips, in deltas, records whose last change is the sink's own
//!   write: `LastModifiedById` is the integration user (from the token's identity URL)
//!   and every field read holds what that write left ([`SalesforceSource::echoes_skipped`]).
//! - [`error`]: Salesforce error bodies (`errorCode` and per-record `statusCode`)
//!   classified by [`ApiErrorKind`], and mapped into [`sync_core::RemoteError`] at the port
//!   boundary: `REQUEST_LIMIT_EXCEEDED` (daily) is `QuotaExhausted`, so the engine stops
//!   the run cleanly with its checkpoint saved, and carries when to resume
//!   ([`limits::resume_estimate`], from `Sforce-Limit-Info`); the concurrent-request
//!   variant of the same code is a short `RateLimited`. HTTP 420 (Salesforce Edge has no
//!   route for the host) is a configuration error, never retried.
//! - [`SalesforceSource`] (`source`): delta on `SystemModstamp` with an `Id` tie-break,
//!   deletions and merges from `queryAll` (`merged_into` from `MasterRecordId`), a full
//!   reconcile advised when the delete log no longer covers the cursor; tags from a
//!   multi-select picklist, a checkbox or a SOQL predicate ([`TagSource`]). Properties may
//!   be relationship paths (`Account.Name`), read from the nested record; the sink refuses
//!   writes to them.
//! - [`SalesforceSink`] (`sink`): find-or-create by email (query first, then update by id,
//!   upsert on the Cativa member External ID, or create), property updates in collections
//!   of 200, activities as completed `Task` records.
//!
//! One client, source and sink talk to one org: build one set per tenant.

// Functions stay short enough to read: long ones are split into named steps.
#![warn(clippy::too_many_lines)]

mod auth;
mod client;
mod connection;
mod contact;
pub mod describe;
mod echo;
pub mod error;
pub mod limits;
pub mod models;
mod sink;
pub mod soql;
mod source;

pub use auth::{
    Authorization, Clock, Installed, JwtBearer, MAX_ASSERTION_LIFETIME, OAuthFlow, Pkce, STATE_TTL,
    SalesforceTokenSource, TokenResponse, WebServerConfig, WebServerFlow, identity_org_id,
};
pub use client::{
    DEFAULT_API_VERSION, DEFAULT_CALL_CLIENT, DEFAULT_LOGIN_URL, DELETED_WINDOW_DAYS, LockRetry,
    MAX_COLLECTION_RECORDS, MIN_API_VERSION, SalesforceClient, SalesforceClientBuilder,
    UPDATED_WINDOW_DAYS,
};
pub use contact::{
    ContactSchema, MODSTAMP_FIELD, TagSource, decode_contact, decode_record, is_relationship,
};
pub use error::{ApiError, ApiErrorKind, Error};

pub use limits::ApiUsage;
pub use sink::SalesforceSink;
pub use source::SalesforceSource;

// The README's code blocks compile and run as doc-tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
