//! Retention: purging what a long-running service no longer needs, in bounded batches.
//!
//! Five things grow without end while a service runs: the delivery ledger (one row per
//! webhook delivery), the outbox's done items, the audit log, the webhook delivery counters
//! (one row per hour, outcome and reason) and the operator actions (requeues, dismissals).
//! [`SyncEngine::purge_expired`] deletes, for one tenant, what is older than each window of a
//! [`RetentionPolicy`], one bounded batch at a time (see `DeliveryLedger::purge_deliveries`,
//! `Outbox::purge_done`, `AuditLog::purge_audit`, `StatusStore::purge_webhook_counts` and
//! `StatusStore::purge_operator_actions` in `sync_core::ports`), so no call holds the store
//! for long and a stop request is obeyed between batches. Failed outbox items are never
//! purged: they wait for a person to requeue them.
//!
//! Each purged row counts in the `cativa_sync_retention_purged_total` counter, labelled by
//! `table` (`deliveries`, `outbox`, `audit`, `webhook_counts`, `operator_actions`).

use std::time::Duration;

use chrono::{DateTime, Utc};
use sync_core::TenantId;

use crate::{Error, SyncEngine};

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// How long each kind of row is kept, and how many rows one purge batch deletes.
///
/// The defaults: delivery ledger 30 days, done outbox items 7 days, audit rows 90 days,
/// webhook delivery counters 7 days, operator actions 90 days, batches of 1000. The
/// counters window should cover the longest window the status reads them over (a day). The
/// ledger window must outlast the longest time a webhook sender retries
/// a delivery: a delivery id purged is new again, so a retry after the window is applied a
/// second time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetentionPolicy {
    /// Keep delivery ledger entries this long after they were received.
    pub deliveries: Duration,
    /// Keep done outbox items this long after they were completed.
    pub done_outbox: Duration,
    /// Keep audit rows this long after their time.
    pub audit: Duration,
    /// Keep webhook delivery counters this long after their hour ended.
    pub webhook_counts: Duration,
    /// Keep operator actions (requeues, dismissals) this long after they were taken.
    pub operator_actions: Duration,
    /// Rows deleted per batch (a store call). 0 counts as 1.
    pub batch: usize,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        Self {
            deliveries: 30 * DAY,
            done_outbox: 7 * DAY,
            audit: 90 * DAY,
            webhook_counts: 7 * DAY,
            operator_actions: 90 * DAY,
            batch: 1000,
        }
    }
}

impl RetentionPolicy {
    /// Sets how long delivery ledger entries are kept.
    pub fn with_deliveries(mut self, keep: Duration) -> Self {
        self.deliveries = keep;
        self
    }

    /// Sets how long done outbox items are kept.
    pub fn with_done_outbox(mut self, keep: Duration) -> Self {
        self.done_outbox = keep;
        self
    }

    /// Sets how long audit rows are kept.
    pub fn with_audit(mut self, keep: Duration) -> Self {
        self.audit = keep;
        self
    }

    /// Sets how long webhook delivery counters are kept.
    pub fn with_webhook_counts(mut self, keep: Duration) -> Self {
        self.webhook_counts = keep;
        self
    }

    /// Sets how long operator actions are kept.
    pub fn with_operator_actions(mut self, keep: Duration) -> Self {
        self.operator_actions = keep;
        self
    }

    /// Sets how many rows one batch deletes (0 counts as 1).
    pub fn with_batch(mut self, batch: usize) -> Self {
        self.batch = batch;
        self
    }
}

/// What one [`SyncEngine::purge_expired`] call deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PurgeReport {
    /// Delivery ledger entries deleted.
    pub deliveries: u64,
    /// Done outbox items deleted.
    pub outbox: u64,
    /// Audit rows deleted.
    pub audit: u64,
    /// Webhook delivery counters deleted (one per hour, outcome and reason).
    pub webhook_counts: u64,
    /// Operator actions deleted.
    pub operator_actions: u64,
    /// Whether a stop request ended the purge before everything expired was deleted (the
    /// next call carries on).
    pub interrupted: bool,
}

impl PurgeReport {
    /// Rows deleted in all.
    pub fn total(&self) -> u64 {
        self.deliveries + self.outbox + self.audit + self.webhook_counts + self.operator_actions
    }
}

/// The kinds of rows purged, in the order they are purged.
#[derive(Debug, Clone, Copy)]
enum Table {
    Deliveries,
    DoneOutbox,
    Audit,
    WebhookCounts,
    OperatorActions,
}

impl Table {
    /// Every kind, in the order they are purged.
    const ALL: [Table; 5] = [
        Table::Deliveries,
        Table::DoneOutbox,
        Table::Audit,
        Table::WebhookCounts,
        Table::OperatorActions,
    ];
}

impl Table {
    fn label(self) -> &'static str {
        match self {
            Table::Deliveries => "deliveries",
            Table::DoneOutbox => "outbox",
            Table::Audit => "audit",
            Table::WebhookCounts => "webhook_counts",
            Table::OperatorActions => "operator_actions",
        }
    }

    fn window(self, policy: &RetentionPolicy) -> Duration {
        match self {
            Table::Deliveries => policy.deliveries,
            Table::DoneOutbox => policy.done_outbox,
            Table::Audit => policy.audit,
            Table::WebhookCounts => policy.webhook_counts,
            Table::OperatorActions => policy.operator_actions,
        }
    }
}

/// `now - keep`, or `None` when that is before the Unix epoch: no stored row is that old,
/// and stores refuse times far outside their range, so such a window purges nothing.
fn cutoff(now: DateTime<Utc>, keep: Duration) -> Option<DateTime<Utc>> {
    let keep = chrono::Duration::from_std(keep).ok()?;
    now.checked_sub_signed(keep)
        .filter(|at| *at >= DateTime::<Utc>::UNIX_EPOCH)
}

impl SyncEngine {
    /// Deletes `tenant`'s delivery ledger entries, done outbox items, audit rows, webhook
    /// delivery counters and operator actions older than the windows of `policy`, measured
    /// back from the engine's clock.
    ///
    /// Each kind is purged in batches of `policy.batch` rows until a batch deletes fewer,
    /// so the store is never held for long; the engine's [`StopSignal`](crate::StopSignal)
    /// is checked before every batch, and a stop ends the purge with `interrupted` set (what
    /// is left is purged by the next call). Pending, in-flight and failed outbox items are
    /// never deleted. Run it periodically (e.g. hourly) from a background task.
    ///
    /// # Errors
    ///
    /// The first store error, as [`Error::Core`]; rows deleted by earlier batches stay
    /// deleted, and calling again carries on.
    pub async fn purge_expired(
        &self,
        tenant: &TenantId,
        policy: RetentionPolicy,
    ) -> Result<PurgeReport, Error> {
        let now = self.clock.now();
        let batch = policy.batch.max(1);
        let mut report = PurgeReport::default();
        for table in Table::ALL {
            let Some(older_than) = cutoff(now, table.window(&policy)) else {
                continue;
            };
            let (purged, stopped) = self.purge_table(tenant, table, older_than, batch).await?;
            match table {
                Table::Deliveries => report.deliveries = purged,
                Table::DoneOutbox => report.outbox = purged,
                Table::Audit => report.audit = purged,
                Table::WebhookCounts => report.webhook_counts = purged,
                Table::OperatorActions => report.operator_actions = purged,
            }
            if stopped {
                report.interrupted = true;
                break;
            }
        }
        tracing::debug!(
            tenant = %tenant,
            deliveries = report.deliveries,
            outbox = report.outbox,
            audit = report.audit,
            webhook_counts = report.webhook_counts,
            operator_actions = report.operator_actions,
            interrupted = report.interrupted,
            "purged expired rows"
        );
        Ok(report)
    }

    /// Purges one kind of row batch by batch; returns how many and whether a stop request
    /// ended it early.
    async fn purge_table(
        &self,
        tenant: &TenantId,
        table: Table,
        older_than: DateTime<Utc>,
        batch: usize,
    ) -> Result<(u64, bool), Error> {
        let full = u64::try_from(batch).unwrap_or(u64::MAX);
        let mut total = 0;
        loop {
            if self.stop_requested() {
                return Ok((total, true));
            }
            let store = &self.store;
            let purged = match table {
                Table::Deliveries => store.purge_deliveries(tenant, older_than, batch).await?,
                Table::DoneOutbox => store.purge_done(tenant, older_than, batch).await?,
                Table::Audit => store.purge_audit(tenant, older_than, batch).await?,
                Table::WebhookCounts => {
                    store
                        .purge_webhook_counts(tenant, older_than, batch)
                        .await?
                }
                Table::OperatorActions => {
                    store
                        .purge_operator_actions(tenant, older_than, batch)
                        .await?
                }
            };
            metrics::counter!("cativa_sync_retention_purged_total", "table" => table.label())
                .increment(purged);
            total += purged;
            if purged < full {
                return Ok((total, false));
            }
        }
    }
}

#[cfg(test)]
#[path = "retention_tests.rs"]
mod tests;
