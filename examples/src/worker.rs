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
//! (`RunReport::to_json_line`), for cron and CI logs. SIGTERM or Ctrl-C stops the loop
//! between runs (a run in progress finishes first).

use std::io::Write;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Timelike, Utc};
use sync_core::{RunReport, SyncEngine, TenantId};

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
        Ok(Self {
            once,
            full,
            interval,
            full_reconcile_hour: u32::try_from(hour).unwrap_or(3),
        })
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

/// Runs the worker: once (returning the report) or in a loop until a shutdown signal
/// (returning the last report).
///
/// # Errors
/// The engine failed in a way a retry will not fix (store unreachable, bad configuration).
pub async fn run_worker(
    engine: &SyncEngine,
    tenant: &TenantId,
    args: &WorkerArgs,
    out: &mut (dyn Write + Send),
) -> Result<Option<RunReport>, ExampleError> {
    if args.once {
        let report = if args.full {
            engine.run_full_reconcile(tenant).await?
        } else {
            engine.run_delta(tenant).await?
        };
        print(out, &report)?;
        return Ok(Some(report));
    }
    let mut last_full: Option<NaiveDate> = None;
    let stop = shutdown_signal();
    tokio::pin!(stop);
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
        // A stop with a known reset time (daily quota) waits for it instead of the interval.
        let wait = report
            .resume_after
            .and_then(|at| (at - Utc::now()).to_std().ok())
            .map_or(args.interval, |d| d.max(args.interval));
        tokio::select! {
            () = &mut stop => return Ok(Some(report)),
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
