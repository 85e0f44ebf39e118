//! The drainer: applies pending outbox items, items coming due after a retry delay, and items
//! whose lease expired, continuously, for every tenant the service serves. A delivery that
//! leaves work in a tenant's outbox wakes it for that tenant at once; otherwise it looks at
//! every tenant again each idle interval.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sync_core::TenantId;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::service::Shared;

/// The longest pause after repeated failures (a store or network outage).
const MAX_ERROR_BACKOFF: Duration = Duration::from_secs(30);

pub(super) async fn run(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let idle = shared.options.drain.idle_interval;
    let mut backoff = idle;
    // A tenant stopped on its quota waits for the reset, even when woken for new work.
    let mut quota: HashMap<TenantId, DateTime<Utc>> = HashMap::new();
    // Every tenant is looked at once per idle interval, however busy the woken ones keep
    // it (their retries come due without a wake).
    let mut last_everyone: Option<Instant> = None;
    loop {
        if *stop.borrow() {
            return;
        }
        let woken = std::mem::take(&mut *shared.woken.lock().unwrap_or_else(|e| e.into_inner()));
        let tenants = if last_everyone.is_none_or(|at| at.elapsed() >= idle) {
            last_everyone = Some(Instant::now());
            shared.tenants()
        } else {
            woken.into_iter().collect()
        };
        let failed = drain(&shared, &tenants, &mut quota, &stop).await;
        if failed {
            // After a failure only the backoff wakes it: a burst of deliveries must not
            // hammer a store or CRM that is down.
            let wait = backoff;
            backoff = (backoff * 2).min(MAX_ERROR_BACKOFF);
            if super::pause(&mut stop, wait).await {
                return;
            }
            continue;
        }
        backoff = idle;
        let stopped = tokio::select! {
            () = shared.work.notified() => false,
            s = super::pause(&mut stop, idle) => s,
        };
        if stopped {
            return;
        }
    }
}

/// Drains each of `tenants` in turn, skipping those waiting for their quota to reset.
/// Whether any failed.
async fn drain(
    shared: &Shared,
    tenants: &[TenantId],
    quota: &mut HashMap<TenantId, DateTime<Utc>>,
    stop: &watch::Receiver<bool>,
) -> bool {
    let mut failed = false;
    for tenant in tenants {
        if *stop.borrow() {
            break;
        }
        let now = Utc::now();
        if quota.get(tenant).is_some_and(|reset| *reset > now) {
            continue;
        }
        quota.remove(tenant);
        match shared.engine.drain_outbox(tenant).await {
            Ok(report) => {
                if !report.applied.is_empty() || report.failed > 0 {
                    tracing::debug!(tenant = %tenant, applied = ?report.applied, failed = report.failed, "drained the outbox");
                }
                // A quota stop says when it resets: the tenant's new work waits for it too.
                if let Some(reset) = report.resume_after.filter(|at| *at > now) {
                    quota.insert(tenant.clone(), reset);
                }
            }
            Err(e) => {
                tracing::warn!(tenant = %tenant, error = %e, "draining the outbox failed; retrying after a pause");
                failed = true;
            }
        }
    }
    failed
}
