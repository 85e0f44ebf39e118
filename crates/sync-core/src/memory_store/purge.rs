//! [`TenantPurge`] for the in-memory store: the tenant's state is counted, then replaced by
//! an empty one holding only the purge's own operator action.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{MemoryStore, TenantState};
use crate::domain::TenantId;
use crate::error::Error;
use crate::ports::{OperatorAction, PURGE_ACTION, PurgeCounts, PurgeMode, TenantPurge};

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

fn counts(t: &TenantState) -> PurgeCounts {
    PurgeCounts {
        mappings: count(t.mappings.len()),
        outbox: count(t.outbox.len()),
        workers: count(t.workers.len()),
        deliveries: count(t.deliveries.len()),
        audit: count(t.audit.len()),
        checkpoints: count(t.checkpoints.len()),
        leases: count(t.leases.len()),
        operator_actions: count(t.operator.len()),
        runs: count(t.runs.len()),
        credentials_checks: u64::from(t.credentials.is_some()),
        webhook_counts: count(t.webhooks.len()),
        credentials: count(t.crm_credentials.len()),
    }
}

#[async_trait]
impl TenantPurge for MemoryStore {
    async fn purge_tenant(
        &self,
        tenant: &TenantId,
        mode: PurgeMode,
        actor: &str,
        now: DateTime<Utc>,
    ) -> Result<PurgeCounts, Error> {
        if tenant.as_str().is_empty() {
            return Err(Error::UnknownTenant(tenant.clone()));
        }
        let mut guard = self.lock();
        let found = guard.get(tenant).map(counts).unwrap_or_default();
        if mode == PurgeMode::DryRun {
            return Ok(found);
        }
        let mut fresh = TenantState::default();
        fresh.operator.push(OperatorAction::new(
            now,
            actor,
            PURGE_ACTION,
            Vec::new(),
            Some(found.note()),
        ));
        guard.insert(tenant.clone(), fresh);
        Ok(found)
    }
}
