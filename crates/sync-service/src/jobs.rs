//! One-shot pulls for cron jobs and CI: one delta or one full reconcile, then the outbox
//! work it left is finished before returning, and [`exit_code`] turns the report into a
//! process exit code.
//!
//! A run whose work is still outstanding when it ends (held by another worker, or by one that
//! died less than a lease ago) waits up to `max_wait` for those claims to free up and applies
//! them: a one-shot run never reports "nothing to do" over stranded work.

use std::time::Duration;

use chrono::Utc;
use sync_core::{RunReport, TenantId};
use sync_engine::SyncEngine;

use crate::Error;

/// Exit code of a run stopped early by a quota or credential error (see the report's
/// `stopped` and `resume_after`).
pub const EXIT_STOPPED: i32 = 2;
/// Exit code of a run that ends with work still held by another live worker (see the report's
/// `backlog`: run again after `backlog.held_until`).
pub const EXIT_WORK_HELD: i32 = 3;

/// Which pull a one-shot run does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Pull {
    /// Changes since the checkpoint.
    Delta,
    /// Every contact, with removals for what is gone.
    FullReconcile,
}

/// The exit code for a one-shot run's report: 0 when done or stopped by a signal (claims
/// released), [`EXIT_STOPPED`] when stopped early by an error, [`EXIT_WORK_HELD`] when work
/// is still outstanding.
pub fn exit_code(report: &RunReport) -> i32 {
    if report.interrupted {
        0
    } else if report.stopped.is_some() {
        EXIT_STOPPED
    } else if report.backlog.is_some_and(|b| b.outstanding() > 0) {
        EXIT_WORK_HELD
    } else {
        0
    }
}

/// Runs one pull for `tenant`, then finishes the outbox work outstanding (waiting up to
/// `max_wait` for claims held elsewhere), and releases whatever this run still holds. Raise
/// the engine's [`sync_engine::StopSignal`] (e.g. on SIGTERM) to stop early: the batch in
/// flight finishes and the report says `interrupted`.
///
/// It registers the engine's instance id first, taking back the claims a killed previous
/// run with the same id held.
///
/// # Errors
/// The engine failed in a way a retry will not fix (store unreachable, bad configuration).
pub async fn run_once(
    engine: &SyncEngine,
    tenant: &TenantId,
    pull: Pull,
    max_wait: Duration,
) -> Result<RunReport, Error> {
    let result = async {
        engine.register(tenant).await?;
        let mut report = match pull {
            Pull::FullReconcile => engine.run_full_reconcile(tenant).await?,
            _ => engine.run_delta(tenant).await?,
        };
        finish_outstanding(engine, tenant, &mut report, max_wait).await?;
        Ok(report)
    }
    .await;
    // Whatever a failed or interrupted run still holds goes back at once.
    match engine.release_claims(tenant).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(released = n, "outbox claims released"),
        Err(e) => {
            tracing::warn!(error = %e, "could not release outbox claims; they free up after one lease");
        }
    }
    result
}

/// While work is outstanding, applies what is claimable and waits for live claims to run
/// out, up to `max_wait`.
async fn finish_outstanding(
    engine: &SyncEngine,
    tenant: &TenantId,
    report: &mut RunReport,
    max_wait: Duration,
) -> Result<(), Error> {
    let stop = engine.stop_signal().clone();
    let deadline = tokio::time::Instant::now() + max_wait;
    let mut drained = false;
    loop {
        let backlog = match report.backlog {
            Some(b) => b,
            None => engine.backlog(tenant).await?,
        };
        report.backlog = Some(backlog);
        if backlog.outstanding() == 0 || report.stopped.is_some() || stop.is_stopped() {
            return Ok(());
        }
        let now = tokio::time::Instant::now();
        if backlog.pending + backlog.held_expired > 0 && (!drained || now < deadline) {
            drained = true;
            let drain = engine.drain_outbox(tenant).await?;
            report.absorb_drain(drain);
            continue;
        }
        if now >= deadline {
            return Ok(());
        }
        // Held by a live lease: wait until it runs out (a dead holder stops renewing), polling
        // the stop signal meanwhile.
        let until_free = backlog
            .held_until
            .and_then(|at| (at - Utc::now()).to_std().ok())
            .unwrap_or(Duration::from_millis(100));
        let wait = until_free
            .saturating_add(Duration::from_millis(50))
            .min(deadline - now)
            .min(Duration::from_millis(250));
        tokio::time::sleep(wait).await;
        report.backlog = Some(engine.backlog(tenant).await?);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_report() {
        let t = TenantId::new("t");
        let mut r = RunReport::new("delta", &t, Utc::now());
        assert_eq!(exit_code(&r), 0);
        let mut backlog = sync_core::ports::OutboxBacklog::default();
        backlog.held_live = 1;
        r.backlog = Some(backlog);
        assert_eq!(exit_code(&r), EXIT_WORK_HELD);
        r.stopped = Some("quota".to_owned());
        assert_eq!(exit_code(&r), EXIT_STOPPED);
        r.interrupted = true;
        assert_eq!(exit_code(&r), 0, "a signal stop released its claims");
    }
}
