//! Retention: purges old delivery-ledger entries, applied outbox items and audit rows in
//! bounded batches, every retention interval, on every instance (purges are idempotent).

use std::sync::Arc;

use tokio::sync::watch;

use crate::service::Shared;

pub(super) async fn run(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let retention = shared.options.retention.clone();
    loop {
        let now = chrono::Utc::now();
        let older_than = now
            - chrono::Duration::from_std(retention.deliveries)
                .unwrap_or_else(|_| chrono::Duration::days(30));
        match shared
            .engine
            .store()
            .purge_deliveries(&shared.tenant, older_than)
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(deliveries = n, "retention: purged"),
            Err(e) => tracing::warn!(error = %e, "retention purge failed; the next round retries"),
        }
        if super::pause(&mut stop, retention.interval).await {
            return;
        }
    }
}
