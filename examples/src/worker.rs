//! The pull worker shared by `hubspot_badge_sync` and `salesforce_delta_sync`.
//!
//! ```text
//! <example>                  a delta every SYNC_INTERVAL_SECS (default 300), plus a full
//!                            reconcile once a day from SYNC_FULL_RECONCILE_HOUR (UTC, default 3)
//! <example> --once           one delta, then exit
//! <example> --once --full    one full reconcile, then exit
//! ```
//!
//! Every run prints its report; the last line of output is the report as one JSON line
//! (`RunReport::to_json_line`), for cron and CI logs.
//!
//! Crash safety and stops:
//! - `SYNC_INSTANCE_ID` names this worker. Give each worker a stable id of its own: a
//!   restart with the same id takes back at once the outbox claims its killed predecessor
//!   held. Unset, the id is unique per process and a killed worker's claims are free again
//!   after one lease.
//! - `SYNC_LEASE_SECS` (default 15, at most 30 recommended) is the outbox lease; it is renewed
//!   while a batch is in flight.
//! - A `--once` run whose work is still outstanding when it ends (held by another worker, or
//!   by one that died less than a lease ago) waits up to `SYNC_ONCE_WAIT_SECS` (default two
//!   leases) for those claims to free up and applies them.
//! - SIGTERM or Ctrl-C, in `--once` or the loop: no new work is taken, the batch in flight is
//!   finished, unapplied claims are released (claimable at once), the report is printed.
//!
//! Exit codes of a `--once` run ([`exit_code`]): 0 done (or stopped by a signal, claims
//! released); 2 stopped early (quota exhausted, credentials rejected: see `stopped` and
//! `resume_after`); 3 work is still held by another live worker after the wait (see `backlog`
//! in the report: run again after `backlog.held_until`).

use std::io::Write;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Timelike, Utc};
use sync_core::{RunReport, TenantId};
use sync_engine::{EngineOptions, StopSignal, SyncEngine};

use crate::error::ExampleError;

/// What the worker does.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerArgs {
    /// Run once and exit.
    pub once: bool,
    /// With `once`: a full reconcile instead of a delta.
    pub full: bool,
    /// Time between deltas.
    pub interval: Duration,
    /// The UTC hour from which the daily full reconcile is due.
    pub full_reconcile_hour: u32,
    /// `SYNC_INSTANCE_ID`: this worker's stable instance id, if configured.
    pub instance_id: Option<String>,
    /// `SYNC_LEASE_SECS`: the outbox lease.
    pub lease: Duration,
    /// `SYNC_ONCE_WAIT_SECS`: how long a `--once` run waits for work held elsewhere.
    pub once_wait: Duration,
}

/// Exit code of a `--once` run stopped early by a quota or credential error.
pub const EXIT_STOPPED: i32 = 2;
/// Exit code of a `--once` run that ends with work still held by another live worker.
pub const EXIT_WORK_HELD: i32 = 3;

/// The exit code for a `--once` run's report: 0 when done or stopped by a signal (claims
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

impl WorkerArgs {
    /// Parses `--once` and `--full` from `args` (without the program name) and
    /// `SYNC_INTERVAL_SECS` / `SYNC_FULL_RECONCILE_HOUR` through `lookup`.
    ///
    /// # Errors
    /// [`ExampleError::Usage`] for an unknown flag or `--full` without `--once`;
    /// [`ExampleError::Env`] for a bad number.
    pub fn parse(
        args: impl IntoIterator<Item = String>,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ExampleError> {
        let mut once = false;
        let mut full = false;
        for arg in args {
            match arg.as_str() {
                "--once" => once = true,
                "--full" => full = true,
                other => {
                    return Err(ExampleError::Usage(format!(
                        "unknown argument {other:?} (expected --once, --once --full)"
                    )));
                }
            }
        }
        if full && !once {
            return Err(ExampleError::Usage(
                "--full goes with --once (the loop runs its full reconcile nightly)".to_owned(),
            ));
        }
        let number = |var: &'static str, default: u64| -> Result<u64, ExampleError> {
            match lookup(var).filter(|v| !v.trim().is_empty()) {
                None => Ok(default),
                Some(v) => v.trim().parse().map_err(|_| ExampleError::Env {
                    var,
                    message: format!("must be a whole number, not {v:?}"),
                }),
            }
        };
        let interval = Duration::from_secs(number("SYNC_INTERVAL_SECS", 300)?.max(1));
        let hour = number("SYNC_FULL_RECONCILE_HOUR", 3)?;
        if hour > 23 {
            return Err(ExampleError::Env {
                var: "SYNC_FULL_RECONCILE_HOUR",
                message: format!("must be an hour 0..=23, not {hour}"),
            });
        }
        let lease_secs = number("SYNC_LEASE_SECS", 15)?;
        if !(1..=3600).contains(&lease_secs) {
            return Err(ExampleError::Env {
                var: "SYNC_LEASE_SECS",
                message: format!("must be 1..=3600 seconds (15 to 30 advised), not {lease_secs}"),
            });
        }
        let lease = Duration::from_secs(lease_secs);
        let once_wait = Duration::from_secs(number("SYNC_ONCE_WAIT_SECS", 2 * lease_secs)?);
        let instance_id = lookup("SYNC_INSTANCE_ID")
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty());
        Ok(Self {
            once,
            full,
            interval,
            full_reconcile_hour: u32::try_from(hour).unwrap_or(3),
            instance_id,
            lease,
            once_wait,
        })
    }

    /// Sets the instance id and lease on engine options.
    pub fn apply_to(&self, options: &mut EngineOptions) {
        if let Some(id) = &self.instance_id {
            options.worker_id.clone_from(id);
        }
        options.lease = self.lease;
    }
}

/// Whether the daily full reconcile is due at `now`: from `hour` (UTC) on, once per day.
pub fn full_reconcile_due(last_full: Option<NaiveDate>, now: DateTime<Utc>, hour: u32) -> bool {
    now.hour() >= hour && last_full != Some(now.date_naive())
}

/// Resolves when the process gets Ctrl-C or (on Unix) SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

fn print(out: &mut (dyn Write + Send), report: &RunReport) -> Result<(), ExampleError> {
    write!(out, "{report}")?;
    writeln!(out, "{}", report.to_json_line())?;
    out.flush()?;
    Ok(())
}

/// Raises the engine's stop signal on SIGTERM or Ctrl-C.
fn stop_on_signal(stop: StopSignal) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutdown requested: finishing the batch in flight, releasing the rest");
        stop.stop();
    })
}

/// Resolves once `stop` is raised.
async fn stopped(stop: &StopSignal) {
    while !stop.is_stopped() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// After a `--once` run: while work is outstanding (pending, or claimed by a worker that
/// may be dead), applies what is claimable and waits for live claims to run out, up to
/// `max_wait`. A `--once` run never reports "nothing to do" over stranded work.
async fn finish_outstanding(
    engine: &SyncEngine,
    tenant: &TenantId,
    report: &mut RunReport,
    max_wait: Duration,
) -> Result<(), ExampleError> {
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
        // Held by a live lease: wait until it runs out (a dead holder stops renewing).
        let until_free = backlog
            .held_until
            .and_then(|at| (at - Utc::now()).to_std().ok())
            .unwrap_or(Duration::from_millis(100));
        let wait = until_free
            .saturating_add(Duration::from_millis(50))
            .min(deadline - now);
        tokio::select! {
            () = stopped(&stop) => return Ok(()),
            () = tokio::time::sleep(wait) => {}
        }
        report.backlog = Some(engine.backlog(tenant).await?);
    }
}

/// Runs the worker: once (returning the report) or in a loop until a shutdown signal
/// (returning the last report). SIGTERM or Ctrl-C stops taking work, finishes the batch in
/// flight, releases unapplied claims and returns the report of the interrupted run.
///
/// # Errors
/// The engine failed in a way a retry will not fix (store unreachable, bad configuration).
pub async fn run_worker(
    engine: &SyncEngine,
    tenant: &TenantId,
    args: &WorkerArgs,
    out: &mut (dyn Write + Send),
) -> Result<Option<RunReport>, ExampleError> {
    let stop = engine.stop_signal().clone();
    let listener = stop_on_signal(stop.clone());
    let result = work(engine, tenant, args, out, &stop).await;
    listener.abort();
    // Whatever a failed or interrupted run still holds goes back at once.
    match engine.release_claims(tenant).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(released = n, "outbox claims released"),
        Err(e) => {
            tracing::warn!(error = %e, "could not release outbox claims; they free up after one lease")
        }
    }
    result
}

async fn work(
    engine: &SyncEngine,
    tenant: &TenantId,
    args: &WorkerArgs,
    out: &mut (dyn Write + Send),
    stop: &StopSignal,
) -> Result<Option<RunReport>, ExampleError> {
    let registration = engine.register(tenant).await?;
    if registration.taken_back > 0 {
        writeln!(
            out,
            "Took back {} outbox claims of this instance's previous run ({}).",
            registration.taken_back, registration.holder
        )?;
    }
    if args.once {
        let mut report = if args.full {
            engine.run_full_reconcile(tenant).await?
        } else {
            engine.run_delta(tenant).await?
        };
        finish_outstanding(engine, tenant, &mut report, args.once_wait).await?;
        print(out, &report)?;
        return Ok(Some(report));
    }
    let mut last_full: Option<NaiveDate> = None;
    loop {
        let now = Utc::now();
        let report = if full_reconcile_due(last_full, now, args.full_reconcile_hour) {
            let r = engine.run_full_reconcile(tenant).await?;
            if r.scan_complete == Some(true) {
                last_full = Some(now.date_naive());
            }
            r
        } else {
            engine.run_delta(tenant).await?
        };
        print(out, &report)?;
        if report.interrupted || stop.is_stopped() {
            return Ok(Some(report));
        }
        // A stop with a known reset time (daily quota) waits for it instead of the interval.
        let wait = report
            .resume_after
            .and_then(|at| (at - Utc::now()).to_std().ok())
            .map_or(args.interval, |d| d.max(args.interval));
        tokio::select! {
            () = stopped(stop) => return Ok(Some(report)),
            () = tokio::time::sleep(wait) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn args(list: &[&str]) -> Result<WorkerArgs, ExampleError> {
        WorkerArgs::parse(list.iter().map(|s| (*s).to_owned()), |_| None)
    }

    #[test]
    fn flags() {
        let a = args(&["--once", "--full"]).unwrap();
        assert!(a.once && a.full);
        assert_eq!(a.interval, Duration::from_secs(300));
        assert!(!args(&[]).unwrap().once);
        assert!(args(&["--full"]).is_err());
        assert!(args(&["--fast"]).is_err());
        let e = WorkerArgs::parse(Vec::new(), |v| {
            (v == "SYNC_INTERVAL_SECS").then(|| "soon".to_owned())
        })
        .unwrap_err();
        assert!(e.to_string().contains("SYNC_INTERVAL_SECS"), "{e}");
    }

    #[test]
    fn the_full_reconcile_is_due_once_a_day_from_its_hour() {
        let at = |d: u32, h: u32| Utc.with_ymd_and_hms(2026, 3, d, h, 0, 0).unwrap();
        assert!(!full_reconcile_due(None, at(1, 2), 3));
        assert!(full_reconcile_due(None, at(1, 3), 3));
        let day1 = at(1, 3).date_naive();
        assert!(!full_reconcile_due(Some(day1), at(1, 23), 3));
        assert!(!full_reconcile_due(Some(day1), at(2, 1), 3));
        assert!(full_reconcile_due(Some(day1), at(2, 4), 3));
    }
}
