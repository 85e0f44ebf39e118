//! The run report: what a run read, planned, applied, skipped and failed, and why.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::{Cursor, TenantId};
use crate::plan::Conflict;
use crate::ports::OutboxBacklog;

/// The `stopped` reason of a run interrupted by its stop signal (`sync_engine::StopSignal`).
pub const STOP_REQUESTED: &str = "stop requested: no new work taken, unapplied claims released";

/// How many failure and conflict samples a report keeps.
pub const MAX_SAMPLES: usize = 20;

/// One failed action, kept as a sample in the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FailureSample {
    /// The action's idempotency key.
    pub key: String,
    /// The action kind.
    pub action: String,
    /// Its target (email).
    pub target: String,
    /// The badge of a badge action, as `Premium (b0000000-...)` when the configuration names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub badge: Option<String>,
    /// The error.
    pub error: String,
    /// Whether it will be retried.
    pub retryable: bool,
}

impl FailureSample {
    /// A sample of the failed action `key` (of kind `action`, on `target`) with its error
    /// message, and whether it will be retried; no badge.
    pub fn new(
        key: impl Into<String>,
        action: impl Into<String>,
        target: impl Into<String>,
        error: impl Into<String>,
        retryable: bool,
    ) -> Self {
        Self {
            key: key.into(),
            action: action.into(),
            target: target.into(),
            badge: None,
            error: error.into(),
            retryable,
        }
    }

    /// Sets the badge of a badge action (builder style).
    pub fn with_badge(mut self, badge: Option<String>) -> Self {
        self.badge = badge;
        self
    }
}

/// The report of one run (delta, full reconcile, drain, or one webhook delivery).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RunReport {
    /// `delta`, `full_reconcile`, `drain`, `dry_run`, `community_event`, `crm_event`.
    pub kind: String,
    /// The tenant.
    pub tenant: TenantId,
    /// When the run started.
    pub started_at: DateTime<Utc>,
    /// When it finished.
    pub finished_at: DateTime<Utc>,
    /// Duration in milliseconds.
    pub duration_ms: i64,
    /// Contacts read from the CRM.
    pub read: u64,
    /// Actions planned, by kind.
    pub planned: BTreeMap<String, u64>,
    /// Actions newly written to the outbox (an action already there is not counted).
    pub enqueued: u64,
    /// Actions applied, by kind.
    pub applied: BTreeMap<String, u64>,
    /// Contacts skipped (no user under a skip policy, duplicates, no email).
    pub skipped: u64,
    /// Actions that failed and will be retried.
    pub retrying: u64,
    /// Actions that failed for good (rejected as invalid, or out of attempts).
    pub failed: u64,
    /// Samples of failures.
    pub failures: Vec<FailureSample>,
    /// Conflicts reported by the planner.
    pub conflicts: u64,
    /// Samples of conflicts.
    pub conflict_samples: Vec<Conflict>,
    /// API calls by endpoint, as counted by the connectors.
    pub api_calls: BTreeMap<String, u64>,
    /// Milliseconds from the newest CRM change read to the end of the run.
    pub lag_ms: Option<i64>,
    /// For a full reconcile: whether every page was read.
    pub scan_complete: Option<bool>,
    /// A delta source could not vouch for every deletion since the checkpoint: run a full
    /// reconcile.
    pub full_reconcile_advised: bool,
    /// Why the run stopped early, if it did (quota exhausted, credentials rejected, a page
    /// that could not be read). The checkpoint covers only durable work.
    pub stopped: Option<String>,
    /// When to run again, when the stop reason says (a quota reset).
    pub resume_after: Option<DateTime<Utc>>,
    /// The checkpoint after the run.
    pub checkpoint: Option<Cursor>,
    /// The run was interrupted by a stop request (SIGTERM, Ctrl-C): it took no new work,
    /// finished the batch in flight and released the rest. `stopped` says so too.
    #[serde(default)]
    pub interrupted: bool,
    /// Claims given back unapplied on a stop request (claimable at once by the next run).
    #[serde(default)]
    pub released: u64,
    /// The tenant's unfinished outbox work when the run ended: pending, waiting to retry,
    /// held by another worker under a live lease, or held under an expired lease. Work
    /// this run planned that was already queued shows here, never as "nothing to do".
    #[serde(default)]
    pub backlog: Option<OutboxBacklog>,
    /// The run stopped because the CRM refused its credentials (invalid, expired or
    /// lacking a scope): nothing will work until they are fixed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub credentials_rejected: bool,
    /// What the run left undone on purpose and why (a group whose members are unknown has
    /// nothing removed from its list).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl RunReport {
    /// An empty report.
    pub fn new(kind: &str, tenant: &TenantId, started_at: DateTime<Utc>) -> Self {
        Self {
            kind: kind.to_owned(),
            tenant: tenant.clone(),
            started_at,
            finished_at: started_at,
            duration_ms: 0,
            read: 0,
            planned: BTreeMap::new(),
            enqueued: 0,
            applied: BTreeMap::new(),
            skipped: 0,
            retrying: 0,
            failed: 0,
            failures: Vec::new(),
            conflicts: 0,
            conflict_samples: Vec::new(),
            api_calls: BTreeMap::new(),
            lag_ms: None,
            scan_complete: None,
            full_reconcile_advised: false,
            stopped: None,
            resume_after: None,
            checkpoint: None,
            interrupted: false,
            released: 0,
            backlog: None,
            credentials_rejected: false,
            notes: Vec::new(),
        }
    }

    /// Total actions applied.
    pub fn applied_total(&self) -> u64 {
        self.applied.values().sum()
    }

    /// Total actions planned.
    pub fn planned_total(&self) -> u64 {
        self.planned.values().sum()
    }

    /// Adds what a drain of the outbox (run after this report's run) applied, failed and
    /// left behind to this report.
    pub fn absorb_drain(&mut self, drain: RunReport) {
        self.interrupted |= drain.interrupted;
        self.released += drain.released;
        if drain.backlog.is_some() {
            self.backlog = drain.backlog;
        }
        for (kind, n) in drain.applied {
            *self.applied.entry(kind).or_insert(0) += n;
        }
        self.retrying += drain.retrying;
        self.failed += drain.failed;
        for f in drain.failures {
            if self.failures.len() < MAX_SAMPLES {
                self.failures.push(f);
            }
        }
        if self.stopped.is_none() {
            self.stopped = drain.stopped;
            self.resume_after = drain.resume_after;
            self.credentials_rejected = drain.credentials_rejected;
        }
    }

    /// The report as one line of JSON (for cron and CI logs).
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

impl fmt::Display for RunReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kinds = |m: &BTreeMap<String, u64>| {
            if m.is_empty() {
                "none".to_owned()
            } else {
                m.iter()
                    .map(|(k, n)| format!("{k} {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        writeln!(
            f,
            "{} run for tenant {} in {} ms",
            self.kind, self.tenant, self.duration_ms
        )?;
        writeln!(f, "  read      {}", self.read)?;
        writeln!(
            f,
            "  planned   {} ({})",
            self.planned_total(),
            kinds(&self.planned)
        )?;
        writeln!(
            f,
            "  applied   {} ({})",
            self.applied_total(),
            kinds(&self.applied)
        )?;
        writeln!(f, "  skipped   {}", self.skipped)?;
        writeln!(f, "  retrying  {}", self.retrying)?;
        writeln!(f, "  failed    {}", self.failed)?;
        writeln!(f, "  conflicts {}", self.conflicts)?;
        writeln!(f, "  api calls {}", kinds(&self.api_calls))?;
        if let Some(lag) = self.lag_ms {
            writeln!(f, "  lag       {lag} ms")?;
        }
        if let Some(complete) = self.scan_complete {
            writeln!(
                f,
                "  scan      {}",
                if complete {
                    "complete"
                } else {
                    "partial: nothing removed by absence"
                }
            )?;
        }
        if self.full_reconcile_advised {
            writeln!(
                f,
                "  advice    run a full reconcile: the CRM may have dropped deletions"
            )?;
        }
        for sample in &self.failures {
            let badge = sample
                .badge
                .as_ref()
                .map(|b| format!(" {b} ->"))
                .unwrap_or_default();
            writeln!(
                f,
                "  ! {}{badge} {} ({}): {}",
                sample.action,
                sample.target,
                if sample.retryable {
                    "will retry"
                } else {
                    "gave up"
                },
                sample.error
            )?;
        }
        if let Some(b) = &self.backlog {
            writeln!(
                f,
                "  outbox    {} pending, {} retrying later, {} held by a live worker, {} held by an expired worker",
                b.pending, b.retry_later, b.held_live, b.held_expired
            )?;
            if let (true, Some(until)) = (b.held_live > 0, b.held_until) {
                writeln!(f, "  held      elsewhere until {until} at the latest")?;
            }
        }
        if self.released > 0 {
            writeln!(f, "  released  {} claims given back", self.released)?;
        }
        if let Some(reason) = &self.stopped {
            write!(f, "  stopped: {reason}")?;
            if let Some(at) = self.resume_after {
                write!(f, " (run again after {at})")?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}
