//! Retention: purges old delivery-ledger entries, applied outbox items, audit rows, webhook
//! delivery counters and operator actions of every served tenant in bounded batches, every
//! retention interval, on every instance (purges are idempotent, so
//! instances sharing a store need no coordination).

use std::sync::Arc;

use sync_engine::RetentionPolicy;
use tokio::sync::watch;

use crate::service::Shared;

pub(super) async fn run(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let retention = shared.options.retention.clone();
    let policy = RetentionPolicy::default()
        .with_deliveries(retention.deliveries)
        .with_done_outbox(retention.done_outbox)
        .with_audit(retention.audit)
        .with_webhook_counts(retention.webhook_counts)
        .with_operator_actions(retention.operator_actions)
        .with_batch(retention.batch);
    loop {
        for tenant in shared.tenants() {
            purge(&shared, &tenant, policy).await;
        }
        if super::pause(&mut stop, retention.interval).await {
            return;
        }
    }
}

async fn purge(shared: &Shared, tenant: &sync_core::TenantId, policy: RetentionPolicy) {
    match shared.engine.purge_expired(tenant, policy).await {
        Ok(report) if report.total() > 0 => tracing::info!(
            tenant = %tenant,
            deliveries = report.deliveries,
            outbox = report.outbox,
            audit = report.audit,
            webhook_counts = report.webhook_counts,
            operator_actions = report.operator_actions,
            "retention: purged expired rows"
        ),
        Ok(_) => {}
        Err(e) => {
            tracing::warn!(tenant = %tenant, error = %e, "retention purge failed; the next round retries")
        }
    }
}
