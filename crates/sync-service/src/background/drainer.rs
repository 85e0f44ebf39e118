//! The drainer: applies pending outbox items, items coming due after a retry delay, and items
//! whose lease expired, continuously. A delivery that leaves work in the outbox wakes it at
//! once; otherwise it looks again every idle interval.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::service::Shared;

/// The longest pause after repeated failures (a store or network outage).
const MAX_ERROR_BACKOFF: Duration = Duration::from_secs(30);

pub(super) async fn run(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let idle = shared.options.drain.idle_interval;
    let mut backoff = idle;
    loop {
        if *stop.borrow() {
            return;
        }
        let (wait, wake_on_work) = match shared.engine.drain_outbox(&shared.tenant).await {
            Ok(report) => {
                backoff = idle;
                if !report.applied.is_empty() || report.failed > 0 {
                    tracing::debug!(applied = ?report.applied, failed = report.failed, "drained the outbox");
                }
                // A quota stop says when it resets: new work waits for it too.
                match report
                    .resume_after
                    .and_then(|at| (at - chrono::Utc::now()).to_std().ok())
                {
                    Some(until_reset) => (until_reset.max(idle), false),
                    None => (idle, true),
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = backoff.as_millis(), "draining the outbox failed");
                let wait = backoff;
                backoff = (backoff * 2).min(MAX_ERROR_BACKOFF);
                (wait, false)
            }
        };
        let stopped = if wake_on_work {
            tokio::select! {
                () = shared.work.notified() => false,
                s = super::pause(&mut stop, wait) => s,
            }
        } else {
            super::pause(&mut stop, wait).await
        };
        if stopped {
            return;
        }
    }
}
