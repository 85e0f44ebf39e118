//! The work a service does besides answering requests, for every tenant it serves: the
//! outbox drainer (every instance), scheduled pulls (the holder of the tenant's leader lease
//! only), the health job and retention purges. Each task watches
//! one stop channel; [`Background::shutdown`] stops them, lets the drainer finish its batch
//! and releases what this instance holds.

mod drainer;
mod health;
mod pulls;
mod retention;

pub(crate) use pulls::schedule;

use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::Service;
use crate::service::Shared;

/// The name of the leader lease scheduled pulls run under.
pub const PULL_LEASE: &str = "scheduled-pulls";

/// The running background tasks of a [`Service`]. Dropping it does not stop them: call
/// [`Background::shutdown`].
pub struct Background {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Background {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Background")
            .field("tasks", &self.tasks.len())
            .finish_non_exhaustive()
    }
}

impl Service {
    /// Starts the background work: the drainer (unless disabled), scheduled pulls (when the
    /// engine has a source and an interval is set), the health job and retention. [`Service::serve`] does this
    /// itself; call it when you serve [`crate::router`] from your own server.
    pub fn spawn_background(&self) -> Background {
        let (stop, watch) = watch::channel(false);
        let shared = &self.shared;
        let mut tasks = Vec::new();
        if shared.options.drain.enabled {
            tasks.push(tokio::spawn(drainer::run(
                Arc::clone(shared),
                watch.clone(),
            )));
        }
        if shared.options.schedule.delta_interval.is_some() && shared.engine.has_source() {
            tasks.push(tokio::spawn(pulls::run(Arc::clone(shared), watch.clone())));
        }
        tasks.push(tokio::spawn(health::run(Arc::clone(shared), watch.clone())));
        tasks.push(tokio::spawn(retention::run(Arc::clone(shared), watch)));
        Background {
            shared: Arc::clone(shared),
            stop,
            tasks,
        }
    }
}

impl Background {
    /// Stops the background work: runs take no new work (the batch in flight finishes),
    /// then this instance's unapplied outbox claims and its leader lease are released, so
    /// another instance (or the next start) takes them at once.
    pub async fn shutdown(self) {
        self.shared.engine.stop_signal().stop();
        let _ = self.stop.send(true);
        for task in self.tasks {
            if let Err(e) = task.await {
                tracing::warn!(error = %e, "a background task ended abnormally");
            }
        }
        for tenant in self.shared.tenants() {
            release(&self.shared, &tenant).await;
        }
    }
}

/// Releases this instance's unapplied outbox claims and leader lease of `tenant`.
async fn release(shared: &Shared, tenant: &sync_core::TenantId) {
    match shared.engine.release_claims(tenant).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(tenant = %tenant, released = n, "outbox claims released"),
        Err(e) => {
            tracing::warn!(tenant = %tenant, error = %e, "could not release outbox claims; they free up after one lease");
        }
    }
    if let Err(e) = shared
        .engine
        .store()
        .release_lease(tenant, PULL_LEASE, &shared.instance)
        .await
    {
        tracing::warn!(tenant = %tenant, error = %e, "could not release the leader lease; it expires by itself");
    }
}

/// Waits `wait`, or less if `stop` is raised. Returns whether to stop.
pub(crate) async fn pause(stop: &mut watch::Receiver<bool>, wait: std::time::Duration) -> bool {
    if *stop.borrow() {
        return true;
    }
    tokio::select! {
        changed = stop.changed() => changed.is_err() || *stop.borrow(),
        () = tokio::time::sleep(wait) => false,
    }
}
