//! The connector conformance suite: the contracts the engine relies on, checked against any
//! [`CrmSource`] + [`CrmSink`] pair, and any [`BadgeSink`] / [`Inviter`] (feature
//! `conformance`).
//!
//! A connector author implements [`CrmHarness`] (how to reach the CRM under test and how to
//! seed and change it) and generates one test per contract:
//!
//! ```no_run
//! use std::sync::Arc;
//! use sync_core::conformance::CrmHarness;
//!
//! async fn fresh_crm() -> Option<Arc<dyn CrmHarness>> {
//!     // Start (or connect to) an empty CRM and build your source and sink over it.
//!     None // `None` skips every case: say why before returning it.
//! }
//! sync_core::connector_conformance_tests!(fresh_crm); // one #[tokio::test] per contract
//! # fn main() {}
//! ```
//!
//! Each case panics with the contract it found broken and why the engine needs it. A case
//! that needs something the harness cannot do (merges, injected faults, per-record
//! rejections) prints that it was skipped and passes. The guide `docs/writing-a-connector.md`
//! explains each contract.

mod community;
mod crm;

use std::cmp::Ordering;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};

use crate::domain::{CativaUserId, CrmRecordId, Email, TenantId};
use crate::ports::{BadgeSink, CrmSink, CrmSource, Inviter};

pub use community::*;
pub use crm::*;

/// A fault the harness makes the CRM answer with, for the error-classification contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InjectedFault {
    /// The CRM fails (HTTP 5xx): the connector must say "retryable".
    Server,
    /// The CRM throttles (HTTP 429 with a wait): "rate limited", retryable, with the wait.
    RateLimited,
    /// The CRM refuses the credentials or the request for good (HTTP 401/403/400):
    /// not retryable.
    Permanent,
}

/// How the suite reaches a CRM under test and changes it behind the connector's back.
///
/// Every method acts on the CRM directly (its admin API, a test endpoint, or an in-memory
/// model), never through the source or sink under test. The CRM starts empty for each case.
#[async_trait]
pub trait CrmHarness: Send + Sync {
    /// The tenant the source and sink serve.
    fn tenant(&self) -> TenantId;

    /// The source under test.
    fn source(&self) -> Arc<dyn CrmSource>;

    /// The sink under test.
    fn sink(&self) -> Arc<dyn CrmSink>;

    /// The page size the source was built with (small, e.g. 5 to 10, so the cases cross
    /// several pages with a few dozen records).
    fn page_size(&self) -> usize;

    /// The CRM's current time: records created or changed now carry it as their
    /// modification time (at the CRM's precision; the suite moves in whole seconds).
    fn now(&self) -> DateTime<Utc>;

    /// Moves the CRM's clock forward.
    async fn advance(&self, by: Duration);

    /// Creates a live contact with this email (kept exactly as written, case included) at
    /// the current time, directly in the CRM.
    async fn create(&self, email: &str) -> Result<CrmRecordId, String>;

    /// Changes a contact (any property) so its modification time becomes the current time.
    async fn touch(&self, id: &CrmRecordId) -> Result<(), String>;

    /// Deletes (archives) a contact at the current time.
    async fn delete(&self, id: &CrmRecordId) -> Result<(), String>;

    /// Merges `loser` into `winner` at the current time. `Ok(false)`: the CRM has no merges.
    async fn merge(&self, winner: &CrmRecordId, loser: &CrmRecordId) -> Result<bool, String>;

    /// Makes every following source call fail with `fault` until [`CrmHarness::clear_faults`].
    /// Returns `false` when the harness cannot inject this fault (the case is skipped for it).
    async fn inject(&self, fault: InjectedFault) -> bool;

    /// Stops injected faults.
    async fn clear_faults(&self);

    /// A property and value the CRM rejects on one record of a batch while accepting the
    /// rest, to check per-record failures. `None`: the case is skipped.
    fn rejected_property(&self) -> Option<(String, String)> {
        None
    }

    /// The order of record ids on equal modification times. The default compares ids as
    /// numbers when both are numeric (HubSpot), else as text (Salesforce).
    fn tie_order(&self, a: &CrmRecordId, b: &CrmRecordId) -> Ordering {
        default_tie_order(a, b)
    }
}

/// Numeric when both ids are numbers, else textual.
pub fn default_tie_order(a: &CrmRecordId, b: &CrmRecordId) -> Ordering {
    let (a, b) = (a.id.as_str(), b.id.as_str());
    match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        _ => a.cmp(b),
    }
}

/// How the suite reaches a community (badge sink and inviter) under test.
#[async_trait]
pub trait CommunityHarness: Send + Sync {
    /// The tenant.
    fn tenant(&self) -> TenantId;

    /// The badge sink under test.
    fn badge_sink(&self) -> Arc<dyn BadgeSink>;

    /// The inviter under test, if there is one.
    fn inviter(&self) -> Option<Arc<dyn Inviter>>;

    /// At least two existing community users, with their emails.
    fn users(&self) -> Vec<(CativaUserId, Email)>;

    /// A badge the sink may assign and remove.
    fn badge(&self) -> crate::domain::BadgeId;

    /// A user id that does not exist in the community, to check per-record failures.
    fn unknown_user(&self) -> CativaUserId;

    /// The badges a user holds, read from the community directly.
    async fn badges_of(&self, user: &CativaUserId) -> Vec<crate::domain::BadgeId>;

    /// How many times the community was asked to grant `badge` to `user` with effect
    /// (a repeated grant under the same key must not count twice).
    async fn grant_effects(&self, user: &CativaUserId, badge: &crate::domain::BadgeId) -> u64;

    /// Invites produced for `email` so far.
    async fn invites_for(&self, email: &Email) -> u64;
}

/// The future a case returns.
pub type CaseFuture = Pin<Box<dyn Future<Output = ()> + Send>>;
/// A CRM case.
pub type CrmCase = fn(Arc<dyn CrmHarness>) -> CaseFuture;
/// A community case.
pub type CommunityCase = fn(Arc<dyn CommunityHarness>) -> CaseFuture;

#[doc(hidden)]
#[macro_export]
macro_rules! __with_crm_cases {
    ($callback:ident ! ($($args:tt)*)) => {
        $crate::$callback! { $($args)*;
            delta_pages_come_in_modification_order_ties_by_id,
            cursor_includes_records_changed_at_the_checkpoint_instant,
            deletions_are_reported_by_delta,
            merges_are_reported_by_delta,
            scan_covers_every_live_record_exactly_once,
            find_by_email_is_case_insensitive_and_returns_every_duplicate,
            get_by_ids_leaves_missing_ids_out,
            upsert_is_idempotent_by_email_and_never_duplicates,
            upsert_reports_per_record_failures_without_failing_the_batch,
            errors_are_classified,
            api_call_counts_are_monotonic,
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __with_community_cases {
    ($callback:ident ! ($($args:tt)*)) => {
        $crate::$callback! { $($args)*;
            badge_changes_are_idempotent_by_key,
            badge_sink_reports_per_record_results,
            invites_are_idempotent_by_key,
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_case_tests {
    ($make:expr, $ty:ident; $($case:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let make = $make;
                if let Some(harness) = make().await {
                    $crate::conformance::$case(harness).await;
                }
            }
        )*
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_case_table {
    ($ty:ty; $($case:ident),* $(,)?) => {
        vec![$((
            stringify!($case),
            (|h| -> $crate::conformance::CaseFuture { Box::pin($crate::conformance::$case(h)) }) as $ty,
        )),*]
    };
}

/// Generates one `#[tokio::test]` per CRM connector contract.
///
/// The argument is an async function of no arguments returning
/// `Option<Arc<dyn CrmHarness>>`, called once per case with a fresh, empty CRM; `None` skips
/// the case. The calling crate needs `tokio` (features `macros`, `rt-multi-thread`).
#[macro_export]
macro_rules! connector_conformance_tests {
    ($make:expr) => {
        $crate::__with_crm_cases!(__conformance_case_tests!($make, crm));
    };
}

/// Generates one `#[tokio::test]` per badge-sink and inviter contract, like
/// [`connector_conformance_tests!`](crate::connector_conformance_tests) for
/// `Option<Arc<dyn CommunityHarness>>`.
#[macro_export]
macro_rules! community_conformance_tests {
    ($make:expr) => {
        $crate::__with_community_cases!(__conformance_case_tests!($make, community));
    };
}

/// Every CRM case with its name, in a stable order (to run them by hand, e.g. against a
/// deliberately broken connector).
pub fn crm_cases() -> Vec<(&'static str, CrmCase)> {
    crate::__with_crm_cases!(__conformance_case_table!(CrmCase))
}

/// Every community case with its name.
pub fn community_cases() -> Vec<(&'static str, CommunityCase)> {
    crate::__with_community_cases!(__conformance_case_table!(CommunityCase))
}
