//! Status ports: what the store keeps so that a person can be told how a tenant's sync is
//! doing (the last run of each mode, the last credentials check, webhook delivery counts)
//! and can act on failed work (list, requeue, dismiss), every action audited.
//!
//! Implemented by `MemoryStore` and by the SQLite and PostgreSQL stores of `sync-store`,
//! which all pass the same conformance cases.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::{Cursor, TenantId};
use crate::error::Error;
use crate::plan::{Conflict, IdempotencyKey};
use crate::ports::OutboxItem;

/// Which failed outbox items to list (or to requeue "all matching").
///
/// Every set field narrows the selection; the default selects every failed item that is not
/// dismissed, at most 100.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FailedFilter {
    /// Only this action kind (its name, e.g. `grant_badge`).
    pub kind: Option<String>,
    /// Only items whose last error starts with this text (case-sensitive): a reason or an
    /// error class such as `rejected`.
    pub reason_prefix: Option<String>,
    /// Only items failed at or after this time.
    pub failed_after: Option<DateTime<Utc>>,
    /// Only items failed before this time.
    pub failed_before: Option<DateTime<Utc>>,
    /// Also list dismissed items (never requeued by a filter, whatever this says).
    pub include_dismissed: bool,
    /// The most items returned.
    pub limit: usize,
}

impl Default for FailedFilter {
    fn default() -> Self {
        Self {
            kind: None,
            reason_prefix: None,
            failed_after: None,
            failed_before: None,
            include_dismissed: false,
            limit: 100,
        }
    }
}

impl FailedFilter {
    /// Every failed item not dismissed, at most `limit`.
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            ..Self::default()
        }
    }

    /// Only this action kind.
    pub fn kind(mut self, kind: impl Into<String>) -> Self {
        self.kind = Some(kind.into());
        self
    }

    /// Only errors starting with `prefix`.
    pub fn reason_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.reason_prefix = Some(prefix.into());
        self
    }

    /// Only items failed in `[after, before)` (either bound optional).
    pub fn failed_between(
        mut self,
        after: Option<DateTime<Utc>>,
        before: Option<DateTime<Utc>>,
    ) -> Self {
        self.failed_after = after;
        self.failed_before = before;
        self
    }

    /// Lists dismissed items too.
    pub fn with_dismissed(mut self) -> Self {
        self.include_dismissed = true;
        self
    }

    /// Whether an item failed at `failed_at` with this kind and error passes the filter
    /// (the same test every store applies).
    pub fn matches(
        &self,
        kind: &str,
        error: Option<&str>,
        failed_at: DateTime<Utc>,
        dismissed: bool,
    ) -> bool {
        (self.include_dismissed || !dismissed)
            && self.kind.as_deref().is_none_or(|k| k == kind)
            && self
                .reason_prefix
                .as_deref()
                .is_none_or(|p| error.is_some_and(|e| e.starts_with(p)))
            && self.failed_after.is_none_or(|t| failed_at >= t)
            && self.failed_before.is_none_or(|t| failed_at < t)
    }
}

/// A person's decision to leave a failed item alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Dismissal {
    /// When.
    pub at: DateTime<Utc>,
    /// Who (an operator name or token label).
    pub by: String,
    /// Why.
    pub note: String,
}

impl Dismissal {
    /// A dismissal by `by` at `at` with a note.
    pub fn new(at: DateTime<Utc>, by: impl Into<String>, note: impl Into<String>) -> Self {
        Self {
            at,
            by: by.into(),
            note: note.into(),
        }
    }
}

/// A failed outbox item, with when it failed and whether it was dismissed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FailedItem {
    /// The item (status failed; its action key is its id).
    pub item: OutboxItem,
    /// When it was failed for good (for items failed before this was recorded: when they
    /// were enqueued).
    pub failed_at: DateTime<Utc>,
    /// Set when a person dismissed it.
    pub dismissed: Option<Dismissal>,
}

impl FailedItem {
    /// A failed item, not dismissed (set `dismissed` after).
    pub fn new(item: OutboxItem, failed_at: DateTime<Utc>) -> Self {
        Self {
            item,
            failed_at,
            dismissed: None,
        }
    }
}

/// Which failed items [`StatusStore::requeue_failed`] puts back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Requeue {
    /// These items (dismissed ones included: naming an item is a decision).
    Keys(Vec<IdempotencyKey>),
    /// Every failed item matching the filter (its limit ignored), never a dismissed one.
    Matching(FailedFilter),
}

/// One operator action, as the audit keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct OperatorAction {
    /// When.
    pub at: DateTime<Utc>,
    /// Who.
    pub actor: String,
    /// What: `requeue` or `dismiss`.
    pub action: String,
    /// The items it changed.
    pub keys: Vec<String>,
    /// The note given, if any.
    pub note: Option<String>,
}

impl OperatorAction {
    /// An action by `actor` at `at` on these items.
    pub fn new(
        at: DateTime<Utc>,
        actor: impl Into<String>,
        action: impl Into<String>,
        keys: Vec<String>,
        note: Option<String>,
    ) -> Self {
        Self {
            at,
            actor: actor.into(),
            action: action.into(),
            keys,
            note,
        }
    }
}

/// The kind of a run, as its last run is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RunMode {
    /// A delta since the checkpoint.
    Delta,
    /// A full reconcile.
    FullReconcile,
    /// An outbox drain.
    Drain,
    /// A webhook event (community event or CRM contacts).
    Event,
}

impl RunMode {
    /// The stored name (the snake_case of the variant).
    pub fn as_str(self) -> &'static str {
        match self {
            RunMode::Delta => "delta",
            RunMode::FullReconcile => "full_reconcile",
            RunMode::Drain => "drain",
            RunMode::Event => "event",
        }
    }

    /// Every mode.
    pub const ALL: [RunMode; 4] = [
        RunMode::Delta,
        RunMode::FullReconcile,
        RunMode::Drain,
        RunMode::Event,
    ];
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RunOutcome {
    /// It finished its work (some items may have failed or wait for a retry).
    Ok,
    /// It stopped early and cleanly (a quota, rejected credentials, a stop request).
    Stopped,
    /// It ended in an error.
    Failed,
}

/// The record of one run, kept per tenant and mode (the last one only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RunRecord {
    /// The mode.
    pub mode: RunMode,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: DateTime<Utc>,
    /// How it ended.
    pub outcome: RunOutcome,
    /// Why it stopped or failed.
    pub reason: Option<String>,
    /// When a stopped run may resume (a quota reset).
    pub resume_after: Option<DateTime<Utc>>,
    /// Records read.
    pub read: u64,
    /// Actions applied, by kind.
    pub applied: BTreeMap<String, u64>,
    /// Actions failed for good.
    pub failed: u64,
    /// Actions waiting for a retry.
    pub retrying: u64,
    /// The checkpoint after the run.
    pub checkpoint: Option<Cursor>,
    /// How far behind the newest change the run saw was.
    pub lag_ms: Option<i64>,
    /// The conflicts the run found (a sample).
    pub conflicts: Vec<Conflict>,
    /// The run stopped because the CRM refused its credentials.
    #[serde(default)]
    pub credentials_rejected: bool,
    /// Outbox items left to do when the run ended (pending, retrying, held).
    #[serde(default)]
    pub backlog: Option<u64>,
}

impl RunRecord {
    /// A run of `mode` that started and ended at these times with this outcome, counts
    /// empty (set them after).
    pub fn new(
        mode: RunMode,
        started_at: DateTime<Utc>,
        finished_at: DateTime<Utc>,
        outcome: RunOutcome,
    ) -> Self {
        Self {
            mode,
            started_at,
            finished_at,
            outcome,
            reason: None,
            resume_after: None,
            read: 0,
            applied: BTreeMap::new(),
            failed: 0,
            retrying: 0,
            checkpoint: None,
            lag_ms: None,
            conflicts: Vec::new(),
            credentials_rejected: false,
            backlog: None,
        }
    }
}

/// The last run of one mode and when a run of that mode last ended ok.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LastRun {
    /// The last run.
    pub run: RunRecord,
    /// When the last run with outcome ok ended (this one or an earlier one).
    pub last_ok_at: Option<DateTime<Utc>>,
}

impl LastRun {
    /// The last run and the end of the last ok one.
    pub fn new(run: RunRecord, last_ok_at: Option<DateTime<Utc>>) -> Self {
        Self { run, last_ok_at }
    }
}

/// The result of the last check of a tenant's credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CredentialsCheck {
    /// When.
    pub at: DateTime<Utc>,
    /// The error, when the credentials were refused or could not be checked.
    pub error: Option<String>,
    /// The CRM account id (HubSpot portal id, Salesforce org id) when known. A check
    /// without one keeps the account id recorded before.
    pub account_id: Option<String>,
}

impl CredentialsCheck {
    /// A successful check.
    pub fn ok(at: DateTime<Utc>, account_id: Option<String>) -> Self {
        Self {
            at,
            error: None,
            account_id,
        }
    }

    /// A failed check.
    pub fn failed(at: DateTime<Utc>, error: impl Into<String>) -> Self {
        Self {
            at,
            error: Some(error.into()),
            account_id: None,
        }
    }
}

/// What happened to one webhook delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum WebhookOutcome {
    /// Accepted and handled.
    Accepted,
    /// A delivery already handled.
    Duplicate,
    /// Refused (bad signature, too old, malformed...): the reason says which.
    Refused,
}

impl WebhookOutcome {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookOutcome::Accepted => "accepted",
            WebhookOutcome::Duplicate => "duplicate",
            WebhookOutcome::Refused => "refused",
        }
    }
}

/// Webhook deliveries counted over a window.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct WebhookCounts {
    /// Accepted.
    pub accepted: u64,
    /// Duplicates.
    pub duplicate: u64,
    /// Refused, by reason.
    pub refused: BTreeMap<String, u64>,
}

impl WebhookCounts {
    /// Adds `n` deliveries of an outcome (a refusal under `reason`, `unknown` if none).
    pub fn add(&mut self, outcome: WebhookOutcome, reason: &str, n: u64) {
        match outcome {
            WebhookOutcome::Accepted => self.accepted += n,
            WebhookOutcome::Duplicate => self.duplicate += n,
            WebhookOutcome::Refused => {
                let reason = if reason.is_empty() { "unknown" } else { reason };
                *self.refused.entry(reason.to_owned()).or_insert(0) += n;
            }
        }
    }
}

/// The start of the hour bucket holding `at`: webhook deliveries are counted per hour.
pub fn hour_bucket(at: DateTime<Utc>) -> DateTime<Utc> {
    let secs = at.timestamp().div_euclid(3600) * 3600;
    DateTime::<Utc>::from_timestamp(secs, 0).unwrap_or(at)
}

/// What the status of a sync is read from, and the operator's actions on failed work.
#[async_trait]
pub trait StatusStore: Send + Sync {
    /// Failed items matching `filter`, the earliest failed first.
    async fn list_failed(
        &self,
        tenant: &TenantId,
        filter: &FailedFilter,
    ) -> Result<Vec<FailedItem>, Error>;

    /// Puts failed items back to pending, attempts reset and claimable at once, and appends
    /// one [`OperatorAction`] (`requeue`) naming them, in one transaction. Items that are not
    /// failed (unknown keys, pending, done) are left as they are. Returns how many moved.
    async fn requeue_failed(
        &self,
        tenant: &TenantId,
        which: &Requeue,
        actor: &str,
        note: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<u64, Error>;

    /// Dismisses a failed item with a note: it stays failed (never claimed), is counted as
    /// dismissed, is listed only when asked, and is never requeued by a filter. Appends one
    /// [`OperatorAction`] (`dismiss`). Returns `false` (and audits nothing) when the key is
    /// not a failed item.
    async fn dismiss_failed(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
        actor: &str,
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, Error>;

    /// The newest operator actions first, at most `limit`.
    async fn operator_actions(
        &self,
        tenant: &TenantId,
        limit: usize,
    ) -> Result<Vec<OperatorAction>, Error>;

    /// Records the run as the last of its mode (and, if ok, as the last success).
    async fn record_run(&self, tenant: &TenantId, run: &RunRecord) -> Result<(), Error>;

    /// The last run of each mode that ran, in [`RunMode`] order.
    async fn last_runs(&self, tenant: &TenantId) -> Result<Vec<LastRun>, Error>;

    /// Records a credentials check (keeping the account id known before when it has none).
    async fn record_credentials_check(
        &self,
        tenant: &TenantId,
        check: &CredentialsCheck,
    ) -> Result<(), Error>;

    /// The last credentials check.
    async fn credentials_check(&self, tenant: &TenantId)
    -> Result<Option<CredentialsCheck>, Error>;

    /// Counts one webhook delivery in the hour bucket of `at` (`reason` for refusals).
    async fn record_delivery_outcome(
        &self,
        tenant: &TenantId,
        outcome: WebhookOutcome,
        reason: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<(), Error>;

    /// The deliveries counted in the hour buckets starting at or after
    /// `hour_bucket(since)`.
    async fn webhook_counts(
        &self,
        tenant: &TenantId,
        since: DateTime<Utc>,
    ) -> Result<WebhookCounts, Error>;

    /// Deletes at most `limit` webhook counters (one per hour bucket, outcome and reason)
    /// of hour buckets that ended by `older_than` (starting before `hour_bucket(older_than)`),
    /// the oldest buckets first; returns how many it deleted.
    ///
    /// A bucket is deleted whole or not at all by the window, so
    /// [`StatusStore::webhook_counts`] since `older_than` or later answers the same after a
    /// purge. One call is one bounded batch: a caller purging everything loops until a call
    /// returns less than `limit`.
    async fn purge_webhook_counts(
        &self,
        tenant: &TenantId,
        older_than: DateTime<Utc>,
        limit: usize,
    ) -> Result<u64, Error>;

    /// Deletes at most `limit` operator actions (requeues and dismissals) taken before
    /// `older_than`, the oldest first; returns how many it deleted. The items they named are
    /// not touched. One call is one bounded batch, as [`StatusStore::purge_webhook_counts`].
    async fn purge_operator_actions(
        &self,
        tenant: &TenantId,
        older_than: DateTime<Utc>,
        limit: usize,
    ) -> Result<u64, Error>;
}
