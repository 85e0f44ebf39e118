//! Store ports: the durable state of the sync, every call scoped by tenant.
//!
//! Small focused traits, and one [`Store`] bound the engine takes. Implementations: the
//! in-memory `MemoryStore` here (feature `test-util`), SQLite and PostgreSQL in the
//! `sync-store` crate. All of them pass the same conformance suite.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::{CativaUserId, CrmRecordId, Cursor, Email, Mapping, TenantId};
use crate::error::Error;
use crate::plan::{Action, IdempotencyKey};
use crate::planner::StateView;
use crate::ports::{DeliveryCommitter, StatusStore, TenantPurge};

/// The identity mapping table and badge provenance.
#[async_trait]
pub trait MappingStore: Send + Sync {
    /// The row with this email.
    async fn mapping_by_email(
        &self,
        tenant: &TenantId,
        email: &Email,
    ) -> Result<Option<Mapping>, Error>;

    /// The row linked to this CRM record.
    async fn mapping_by_crm_id(
        &self,
        tenant: &TenantId,
        crm_id: &CrmRecordId,
    ) -> Result<Option<Mapping>, Error>;

    /// The row of this community user.
    async fn mapping_by_user(
        &self,
        tenant: &TenantId,
        user: &CativaUserId,
    ) -> Result<Option<Mapping>, Error>;

    /// Inserts or replaces one row, badges and profile included.
    ///
    /// The row replaced is the one with the same email, else the same CRM record, else the
    /// same user (so an email change updates the row in place). If those keys identify
    /// different rows, nothing is written and [`Error::UniqueViolation`] is returned.
    async fn put_mapping(&self, tenant: &TenantId, mapping: &Mapping) -> Result<(), Error>;

    /// [`MappingStore::put_mapping`] for many rows in one transaction (all or nothing).
    async fn put_mappings(&self, tenant: &TenantId, mappings: &[Mapping]) -> Result<(), Error>;

    /// Deletes the row with this email; returns whether there was one.
    async fn delete_mapping(&self, tenant: &TenantId, email: &Email) -> Result<bool, Error>;

    /// Rows ordered by email, after `after`, at most `limit`: for paging through the table.
    async fn list_mappings(
        &self,
        tenant: &TenantId,
        after: Option<&Email>,
        limit: usize,
    ) -> Result<Vec<Mapping>, Error>;

    /// Number of rows.
    async fn count_mappings(&self, tenant: &TenantId) -> Result<u64, Error>;

    /// The planner's view of the rows matching any of these CRM records or emails.
    async fn load_view(
        &self,
        tenant: &TenantId,
        crm_ids: &[CrmRecordId],
        emails: &[Email],
    ) -> Result<StateView, Error> {
        let mut rows = Vec::new();
        for id in crm_ids {
            if let Some(m) = self.mapping_by_crm_id(tenant, id).await? {
                rows.push(m);
            }
        }
        for email in emails {
            if let Some(m) = self.mapping_by_email(tenant, email).await? {
                rows.push(m);
            }
        }
        Ok(StateView::new(rows))
    }

    /// The planner's view of every row (for a full reconcile).
    async fn load_full_view(&self, tenant: &TenantId) -> Result<StateView, Error> {
        let mut rows = Vec::new();
        let mut after: Option<Email> = None;
        loop {
            let page = self.list_mappings(tenant, after.as_ref(), 1000).await?;
            let Some(last) = page.last() else { break };
            after = Some(last.email.clone());
            let done = page.len() < 1000;
            rows.extend(page);
            if done {
                break;
            }
        }
        Ok(StateView::new(rows))
    }
}

/// Durable delta checkpoints per (tenant, source, stream).
#[async_trait]
pub trait CheckpointStore: Send + Sync {
    /// The stored cursor.
    async fn checkpoint(
        &self,
        tenant: &TenantId,
        source: &str,
        stream: &str,
    ) -> Result<Option<Cursor>, Error>;

    /// Compare-and-set: stores `next` only if the stored cursor equals `expected` and `next`
    /// is not before it. Returns whether it was stored. A checkpoint never moves backwards.
    async fn advance_checkpoint(
        &self,
        tenant: &TenantId,
        source: &str,
        stream: &str,
        expected: Option<&Cursor>,
        next: &Cursor,
    ) -> Result<bool, Error>;
}

/// The processed-delivery ledger that makes webhook handling idempotent.
#[async_trait]
pub trait DeliveryLedger: Send + Sync {
    /// Records a delivery id; returns `true` if it was new. Insert-if-absent: of two
    /// receivers racing on the same retry, exactly one gets `true`.
    async fn record_delivery(
        &self,
        tenant: &TenantId,
        delivery_id: &str,
        received_at: DateTime<Utc>,
    ) -> Result<bool, Error>;

    /// Whether a delivery id is recorded.
    async fn has_delivery(&self, tenant: &TenantId, delivery_id: &str) -> Result<bool, Error>;

    /// Deletes at most `limit` deliveries received before `older_than` (the end of the
    /// retention window), the oldest first; returns how many it deleted.
    ///
    /// One call is one bounded batch, so it never holds the store for long: a caller purging
    /// everything loops until a call returns less than `limit`. A delivery id purged is new
    /// again to [`DeliveryLedger::record_delivery`], so the window must outlast the senders'
    /// retries.
    async fn purge_deliveries(
        &self,
        tenant: &TenantId,
        older_than: DateTime<Utc>,
        limit: usize,
    ) -> Result<u64, Error>;
}

/// Where an outbox item stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OutboxStatus {
    /// Waiting to be claimed (possibly not before a retry time).
    Pending,
    /// Claimed by a worker under a lease.
    InFlight,
    /// Applied.
    Done,
    /// Given up on: attempts exhausted or a permanent error.
    Failed,
}

impl OutboxStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxStatus::Pending => "pending",
            OutboxStatus::InFlight => "in_flight",
            OutboxStatus::Done => "done",
            OutboxStatus::Failed => "failed",
        }
    }

    /// Parses a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "pending" => OutboxStatus::Pending,
            "in_flight" => OutboxStatus::InFlight,
            "done" => OutboxStatus::Done,
            "failed" => OutboxStatus::Failed,
            _ => return None,
        })
    }
}

/// One planned action in the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct OutboxItem {
    /// The action (its key identifies the item).
    pub action: Action,
    /// Status.
    pub status: OutboxStatus,
    /// Attempts made so far.
    pub attempts: u32,
    /// The last error, if any.
    pub last_error: Option<String>,
    /// The worker (instance id) holding the lease.
    pub leased_by: Option<String>,
    /// The incarnation of that worker holding the lease (its fencing token).
    pub lease_incarnation: Option<u64>,
    /// When the lease expires.
    pub lease_until: Option<DateTime<Utc>>,
    /// Not to be claimed before this time (retry backoff).
    pub not_before: Option<DateTime<Utc>>,
    /// When it was enqueued.
    pub enqueued_at: DateTime<Utc>,
    /// How many times an operator requeued it after it failed: the sinks see
    /// [`IdempotencyKey::requeued`](crate::plan::IdempotencyKey::requeued) of its key.
    #[serde(default)]
    pub requeues: u32,
}

impl OutboxItem {
    /// A freshly enqueued item: pending, no attempts, no lease. Stores set the other fields
    /// as the item moves through its life.
    pub fn new(action: Action, enqueued_at: DateTime<Utc>) -> Self {
        Self {
            action,
            status: OutboxStatus::Pending,
            attempts: 0,
            last_error: None,
            leased_by: None,
            lease_incarnation: None,
            lease_until: None,
            not_before: None,
            enqueued_at,
            requeues: 0,
        }
    }
}

/// Who holds an outbox claim: a worker's instance id and the incarnation (fencing token) of
/// that instance id the store handed out when the worker registered.
///
/// Two processes started with the same instance id get different incarnations, and every
/// claim records the incarnation that took it, so at most one of them owns a given claim.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LeaseHolder {
    /// The instance id (stable across restarts when configured).
    pub worker: String,
    /// The incarnation from [`Outbox::register_worker`]; 0 for a holder that never
    /// registered (it is never fenced, and never takes anything back).
    pub incarnation: u64,
}

impl LeaseHolder {
    /// A holder with an incarnation from [`Outbox::register_worker`].
    pub fn new(worker: impl Into<String>, incarnation: u64) -> Self {
        Self {
            worker: worker.into(),
            incarnation,
        }
    }

    /// A holder that never registered (incarnation 0): claims by it only expire.
    pub fn unregistered(worker: impl Into<String>) -> Self {
        Self::new(worker, 0)
    }
}

impl std::fmt::Display for LeaseHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}#{}", self.worker, self.incarnation)
    }
}

/// The result of [`Outbox::register_worker`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Registration {
    /// The holder to claim with from now on.
    pub holder: LeaseHolder,
    /// Claims of earlier incarnations of the same instance id, made pending again at once.
    pub taken_back: u64,
}

impl Registration {
    /// A registration that took nothing back (set `taken_back` after).
    pub fn new(holder: LeaseHolder) -> Self {
        Self {
            holder,
            taken_back: 0,
        }
    }
}

/// Where the unfinished work of a tenant's outbox stands at one instant: what a run
/// reports so that work held elsewhere is never mistaken for "nothing to do".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct OutboxBacklog {
    /// Pending and due now: any worker may claim them.
    pub pending: u64,
    /// Pending but waiting for a retry time (backoff or a quota reset).
    pub retry_later: u64,
    /// Claimed by a worker whose lease is still running (alive, or dead less than one
    /// lease period ago).
    pub held_live: u64,
    /// Claimed by a worker whose lease has expired (it died or stalled): claimable now.
    pub held_expired: u64,
    /// When the last live lease runs out (held items are claimable by then at the latest).
    pub held_until: Option<DateTime<Utc>>,
    /// The earliest retry time of `retry_later` items.
    pub next_retry_at: Option<DateTime<Utc>>,
}

impl OutboxBacklog {
    /// Items that are not done and not waiting for a retry time: work that is stranded if
    /// nobody is applying it.
    pub fn outstanding(&self) -> u64 {
        self.pending + self.held_live + self.held_expired
    }
}

/// Items per status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct OutboxCounts {
    /// Pending.
    pub pending: u64,
    /// In flight.
    pub in_flight: u64,
    /// Done.
    pub done: u64,
    /// Failed (not dismissed).
    pub failed: u64,
    /// Failed, then dismissed by a person.
    pub dismissed: u64,
}

/// The durable outbox: a plan is written here before it is applied, so a crash loses nothing.
#[async_trait]
pub trait Outbox: Send + Sync {
    /// Enqueues actions; an action whose key is already in the outbox (any status) is left
    /// as it is. Returns how many were new.
    async fn enqueue(
        &self,
        tenant: &TenantId,
        actions: &[Action],
        now: DateTime<Utc>,
    ) -> Result<u64, Error>;

    /// Starts a new incarnation of the instance id `worker`: returns the holder to claim
    /// with, and makes every item held by an earlier incarnation of `worker` pending again
    /// at once (a restarted worker takes back its own claims without waiting out a lease).
    /// An earlier incarnation still running can then claim nothing more
    /// ([`Error::Superseded`]) and can settle none of the items taken back.
    async fn register_worker(
        &self,
        tenant: &TenantId,
        worker: &str,
        now: DateTime<Utc>,
    ) -> Result<Registration, Error>;

    /// Atomically claims up to `limit` items that are pending (and due) or in flight with an
    /// expired lease, oldest first, leasing them to `holder` until `now + lease`.
    ///
    /// Fails with [`Error::Superseded`] when a newer incarnation of `holder.worker` has
    /// registered.
    async fn claim(
        &self,
        tenant: &TenantId,
        holder: &LeaseHolder,
        limit: usize,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<Vec<OutboxItem>, Error>;

    /// Extends to `now + lease` the leases `holder` still holds among `keys` (the heartbeat
    /// of a batch in flight). Returns how many it holds.
    async fn renew(
        &self,
        tenant: &TenantId,
        holder: &LeaseHolder,
        keys: &[IdempotencyKey],
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<u64, Error>;

    /// Gives back unapplied claims: the items `holder` holds among `keys` (every item it
    /// holds when `keys` is `None`) become pending and claimable at once, and the claim does
    /// not count as an attempt. Returns how many.
    async fn release(
        &self,
        tenant: &TenantId,
        holder: &LeaseHolder,
        keys: Option<&[IdempotencyKey]>,
        now: DateTime<Utc>,
    ) -> Result<u64, Error>;

    /// Marks a claimed item done. Fails with [`Error::LeaseLost`] if `holder` no longer holds it.
    async fn complete(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
        holder: &LeaseHolder,
        now: DateTime<Utc>,
    ) -> Result<(), Error>;

    /// Records a failed attempt. With `retry_at`, the item goes back to pending, not to be
    /// claimed before then; without, it is failed for good.
    async fn fail(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
        holder: &LeaseHolder,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<(), Error>;

    /// Items per status.
    async fn outbox_counts(&self, tenant: &TenantId) -> Result<OutboxCounts, Error>;

    /// Where the unfinished items stand at `now`: pending, waiting to retry, held under a
    /// live lease, held under an expired one.
    async fn outbox_backlog(
        &self,
        tenant: &TenantId,
        now: DateTime<Utc>,
    ) -> Result<OutboxBacklog, Error>;

    /// Deletes at most `limit` items in status done that were completed (by
    /// [`Outbox::complete`]) before `older_than`, the earliest completed first; returns how
    /// many it deleted.
    ///
    /// Pending, in-flight and failed items are never deleted: failed ones stay for a person
    /// to look at and requeue. One call is one bounded batch: a caller purging everything
    /// loops until a call returns less than `limit`. Once an item is purged its key is no
    /// longer in the outbox, so the same action enqueued again is new.
    async fn purge_done(
        &self,
        tenant: &TenantId,
        older_than: DateTime<Utc>,
        limit: usize,
    ) -> Result<u64, Error>;

    /// Items with a status, oldest first.
    async fn list_outbox(
        &self,
        tenant: &TenantId,
        status: OutboxStatus,
        limit: usize,
    ) -> Result<Vec<OutboxItem>, Error>;
}

/// How an applied action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuditOutcome {
    /// Applied.
    Applied,
    /// Rejected by the target as invalid (not retried).
    Rejected,
    /// Failed; will be retried.
    Failed,
    /// Not applied (already in effect, or superseded).
    Skipped,
}

/// One audit row: one per applied (or attempted) action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AuditEntry {
    /// When.
    pub at: DateTime<Utc>,
    /// The action kind name.
    pub action: String,
    /// The target (an email, user or record id).
    pub target: String,
    /// State before, if known.
    pub before: Option<serde_json::Value>,
    /// State after, if known.
    pub after: Option<serde_json::Value>,
    /// How it ended.
    pub outcome: AuditOutcome,
    /// The action's idempotency key.
    pub key: IdempotencyKey,
    /// Error or note.
    pub detail: Option<String>,
}

impl AuditEntry {
    /// Builds an entry.
    pub fn new(
        at: DateTime<Utc>,
        action: impl Into<String>,
        target: impl Into<String>,
        outcome: AuditOutcome,
        key: IdempotencyKey,
    ) -> Self {
        Self {
            at,
            action: action.into(),
            target: target.into(),
            before: None,
            after: None,
            outcome,
            key,
            detail: None,
        }
    }
}

/// The append-only audit log.
#[async_trait]
pub trait AuditLog: Send + Sync {
    /// Appends entries.
    async fn append_audit(&self, tenant: &TenantId, entries: &[AuditEntry]) -> Result<(), Error>;

    /// The newest entries first, at most `limit`.
    async fn recent_audit(&self, tenant: &TenantId, limit: usize)
    -> Result<Vec<AuditEntry>, Error>;

    /// Deletes at most `limit` entries whose time ([`AuditEntry::at`]) is before
    /// `older_than`, the oldest first; returns how many it deleted. Newer entries are kept.
    ///
    /// One call is one bounded batch: a caller purging everything loops until a call
    /// returns less than `limit`.
    async fn purge_audit(
        &self,
        tenant: &TenantId,
        older_than: DateTime<Utc>,
        limit: usize,
    ) -> Result<u64, Error>;
}

/// A leader lease, so only one instance runs the scheduled pull worker of a tenant.
#[async_trait]
pub trait LeaderLease: Send + Sync {
    /// Takes or renews the lease `name` for `holder` until `now + ttl`. Returns `false` if
    /// another holder has an unexpired lease.
    async fn try_acquire_lease(
        &self,
        tenant: &TenantId,
        name: &str,
        holder: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<bool, Error>;

    /// Gives the lease up (only if `holder` holds it).
    async fn release_lease(&self, tenant: &TenantId, name: &str, holder: &str)
    -> Result<(), Error>;
}

/// Everything the engine needs from a store.
pub trait Store:
    MappingStore
    + CheckpointStore
    + DeliveryLedger
    + DeliveryCommitter
    + Outbox
    + AuditLog
    + LeaderLease
    + StatusStore
    + TenantPurge
{
}

impl<T> Store for T where
    T: MappingStore
        + CheckpointStore
        + DeliveryLedger
        + DeliveryCommitter
        + Outbox
        + AuditLog
        + LeaderLease
        + StatusStore
        + TenantPurge
{
}
