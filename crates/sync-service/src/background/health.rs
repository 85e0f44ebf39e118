//! The health job: computes each served tenant's status every health interval (which also sets the
//! outbox and health gauges) and hands it to the [`sync_engine::HealthWatch`], which tells
//! the observers once per change.

use std::sync::Arc;

use tokio::sync::watch;

use crate::service::Shared;

pub(super) async fn run(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let interval = shared.options.health_interval;
    // The first look right away, so a tenant that starts red is reported at start.
    let mut wait = std::time::Duration::ZERO;
    loop {
        if super::pause(&mut stop, wait).await {
            return;
        }
        wait = interval;
        for tenant in shared.tenants() {
            match shared.status(&tenant).await {
                Ok(status) => {
                    shared.health.update(&status).await;
                }
                Err(e) => {
                    tracing::warn!(tenant = %tenant, error = %e, "could not read the sync status for the health job")
                }
            }
        }
    }
}
