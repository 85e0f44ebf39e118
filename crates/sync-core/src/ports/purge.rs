//! Deleting everything a store holds for one tenant (disconnect, or a customer leaving), with
//! a dry run that only counts. The engine's `SyncEngine::disconnect`
//! (crates/sync-engine/src/disconnect.rs) revokes the tenant's tokens and then calls it.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::TenantId;
use crate::error::Error;

/// The operator action a purge records (see [`crate::ports::OperatorAction`]).
pub const PURGE_ACTION: &str = "purge_tenant";

/// Whether a purge deletes or only counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum PurgeMode {
    /// Count the rows a purge would delete; change nothing and record nothing.
    DryRun,
    /// Delete the rows, then record the purge.
    Delete,
}

/// Rows of one tenant per kind: what a purge deleted (or, dry, would delete).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PurgeCounts {
    /// Identity mapping rows (their badge grants go with them).
    pub mappings: u64,
    /// Outbox items, whatever their status.
    pub outbox: u64,
    /// Outbox worker registrations.
    pub workers: u64,
    /// Processed webhook deliveries (the ledger).
    pub deliveries: u64,
    /// Audit log entries.
    pub audit: u64,
    /// Delta checkpoints.
    pub checkpoints: u64,
    /// Leader leases.
    pub leases: u64,
    /// Operator actions (requeues, dismissals, earlier purges).
    pub operator_actions: u64,
    /// Last-run records, one per run mode.
    pub runs: u64,
    /// The last credentials check.
    pub credentials_checks: u64,
    /// Webhook counters (one per hour, outcome and reason).
    pub webhook_counts: u64,
    /// Saved CRM credentials (one per CRM).
    pub credentials: u64,
}

impl PurgeCounts {
    /// Rows in all.
    pub fn total(&self) -> u64 {
        self.per_table().iter().map(|(_, n)| n).sum()
    }

    /// The counts by name, in a fixed order (for logs, reports and the purge's own record).
    pub fn per_table(&self) -> [(&'static str, u64); 12] {
        [
            ("mappings", self.mappings),
            ("outbox", self.outbox),
            ("workers", self.workers),
            ("deliveries", self.deliveries),
            ("audit", self.audit),
            ("checkpoints", self.checkpoints),
            ("leases", self.leases),
            ("operator_actions", self.operator_actions),
            ("runs", self.runs),
            ("credentials_checks", self.credentials_checks),
            ("webhook_counts", self.webhook_counts),
            ("credentials", self.credentials),
        ]
    }

    /// The note of the purge's operator action: `mappings=3 outbox=2 ...`, counts only, so
    /// the record of a purge keeps no personal data.
    pub fn note(&self) -> String {
        self.per_table()
            .iter()
            .map(|(name, n)| format!("{name}={n}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Deletes every row of one tenant.
#[async_trait]
pub trait TenantPurge: Send + Sync {
    /// Deletes (or, with [`PurgeMode::DryRun`], only counts) every row `tenant` has in the
    /// store: mappings and their badge grants, outbox items and worker registrations, the
    /// delivery ledger, audit entries, checkpoints, leases, operator actions, run records,
    /// the credentials check, webhook counters and saved CRM credentials. Other tenants'
    /// rows are untouched.
    ///
    /// A real purge runs in one transaction and ends by recording one operator action
    /// ([`PURGE_ACTION`], by `actor`, no keys, the counts as its note: no personal data),
    /// which is then the tenant's only row. A dry run changes nothing.
    async fn purge_tenant(
        &self,
        tenant: &TenantId,
        mode: PurgeMode,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<PurgeCounts, Error>;
}
