//! The status of a tenant's sync, as a person (or a status page, or an alert) reads it, and
//! its health: green, amber or red with the reasons, computed by the pure [`assess`].
//!
//! [`SyncStatus`] serializes to a stable JSON form with snake_case fields: new fields may
//! be added, existing ones keep their name and meaning. `sync_engine::SyncEngine::status`
//! fills it from the store; the engine's README shows an example.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::{Cursor, TenantId};
use crate::plan::Conflict;
use crate::ports::{LastRun, RunMode, RunOutcome, WebhookCounts};

/// The most sample records kept per failure group.
pub const FAILURE_SAMPLES: usize = 5;

/// Everything known about how a tenant's sync is doing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SyncStatus {
    /// The tenant.
    pub tenant: TenantId,
    /// When this status was read.
    pub generated_at: DateTime<Utc>,
    /// The last credentials check.
    pub connection: Connection,
    /// The CRM account (HubSpot portal id, Salesforce org id), when known.
    pub account_id: Option<String>,
    /// The last run of each mode that ran.
    pub last_runs: Vec<LastRun>,
    /// Last success, lag and checkpoint.
    pub timing: Timing,
    /// Outbox items by state.
    pub outbox: OutboxDepth,
    /// Failed items grouped by action kind and reason, the largest group first.
    pub failures: Vec<FailureGroup>,
    /// Conflicts the last runs found and could not resolve.
    pub conflicts: Vec<Conflict>,
    /// Webhook deliveries over the last hour and the last day.
    pub webhooks: WebhookWindows,
    /// The next scheduled runs, as the caller (the scheduler) said.
    pub schedule: Schedule,
    /// Green, amber or red, with the reasons.
    pub health: Health,
}

/// The last credentials check.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Connection {
    /// When the credentials were last checked (never: `null`).
    pub checked_at: Option<DateTime<Utc>>,
    /// Whether that check (or the last run) found them working; `null` when never checked.
    pub ok: Option<bool>,
    /// The error of a failed check.
    pub error: Option<String>,
}

/// Last success, lag and checkpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Timing {
    /// When a pull (delta or full reconcile) last ended ok.
    pub last_success_at: Option<DateTime<Utc>>,
    /// The lag the last pull measured (newest change read to the end of the run).
    pub lag_ms: Option<i64>,
    /// The delta checkpoint after the last pull.
    pub checkpoint: Option<Cursor>,
}

/// Outbox items by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct OutboxDepth {
    /// Pending and due now.
    pub pending: u64,
    /// Claimed by a worker.
    pub in_flight: u64,
    /// Pending, waiting for a retry time.
    pub retrying: u64,
    /// Failed for good, waiting for a person.
    pub failed: u64,
    /// Failed, then dismissed by a person.
    pub dismissed: u64,
}

impl OutboxDepth {
    /// Work not finished and not failed: pending, in flight and retrying.
    pub fn outstanding(&self) -> u64 {
        self.pending + self.in_flight + self.retrying
    }
}

/// Failed items of one action kind and reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FailureGroup {
    /// The action kind (e.g. `assign_badge`).
    pub kind: String,
    /// The reason: the error's class (its text before the first `:`).
    pub reason: String,
    /// How many failed items (among those read) have this kind and reason.
    pub count: u64,
    /// The error text of the latest failure, with the advice it carries.
    pub advice: String,
    /// Up to [`FAILURE_SAMPLES`] records, the latest first.
    pub samples: Vec<FailureRecord>,
}

/// One failed record in a [`FailureGroup`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FailureRecord {
    /// The outbox item's key (what requeue and dismiss take).
    pub key: String,
    /// The target (an email).
    pub target: String,
    /// When it failed.
    pub failed_at: DateTime<Utc>,
    /// The error.
    pub error: String,
}

impl FailureRecord {
    /// A failed record.
    pub fn new(
        key: impl Into<String>,
        target: impl Into<String>,
        failed_at: DateTime<Utc>,
        error: impl Into<String>,
    ) -> Self {
        Self {
            key: key.into(),
            target: target.into(),
            failed_at,
            error: error.into(),
        }
    }
}

/// The reason class of an error text: what comes before the first `:` (at most 120
/// characters), or the whole text.
pub fn failure_reason(error: &str) -> String {
    let head = error.split(':').next().unwrap_or(error).trim();
    head.chars().take(120).collect()
}

/// Groups failed records by (kind, reason): the largest group first, then by kind and
/// reason; samples the latest first.
pub fn group_failures(records: Vec<(String, FailureRecord)>) -> Vec<FailureGroup> {
    let mut groups: BTreeMap<(String, String), Vec<FailureRecord>> = BTreeMap::new();
    for (kind, record) in records {
        let reason = failure_reason(&record.error);
        groups.entry((kind, reason)).or_default().push(record);
    }
    let mut out: Vec<FailureGroup> = groups
        .into_iter()
        .map(|((kind, reason), mut records)| {
            records.sort_by(|a, b| b.failed_at.cmp(&a.failed_at).then(a.key.cmp(&b.key)));
            let count = records.len() as u64;
            let advice = records.first().map(|r| r.error.clone()).unwrap_or_default();
            records.truncate(FAILURE_SAMPLES);
            FailureGroup {
                kind,
                reason,
                count,
                advice,
                samples: records,
            }
        })
        .collect();
    out.sort_by_key(|g| std::cmp::Reverse(g.count));
    out
}

/// Webhook deliveries over two windows. Deliveries are counted per hour, so "the last
/// hour" is the current hour bucket and the one before it (one to two hours), and "the
/// last day" the last 24 buckets and the current one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct WebhookWindows {
    /// The last hour.
    pub last_hour: WebhookCounts,
    /// The last day.
    pub last_day: WebhookCounts,
}

impl WebhookWindows {
    /// Both windows.
    pub fn new(last_hour: WebhookCounts, last_day: WebhookCounts) -> Self {
        Self {
            last_hour,
            last_day,
        }
    }
}

/// The schedule, as the scheduler knows it (the engine does not schedule runs).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Schedule {
    /// The interval between delta runs, in seconds: "no successful run within two
    /// intervals" is red. `None`: not scheduled, that rule is off.
    pub interval_secs: Option<u64>,
    /// The next delta run.
    pub next_delta: Option<DateTime<Utc>>,
    /// The next full reconcile.
    pub next_full_reconcile: Option<DateTime<Utc>>,
    /// The next outbox drain.
    pub next_drain: Option<DateTime<Utc>>,
}

impl Schedule {
    /// Delta runs every `interval_secs` seconds, next times unknown.
    pub fn every(interval_secs: u64) -> Self {
        Self {
            interval_secs: Some(interval_secs),
            ..Self::default()
        }
    }
}

/// How a tenant's sync is doing, at a glance.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum HealthState {
    /// Working.
    #[default]
    Green,
    /// Working, with signs to look at.
    Amber,
    /// Not working: a person must act.
    Red,
}

impl HealthState {
    /// The name (`green`, `amber`, `red`).
    pub fn as_str(self) -> &'static str {
        match self {
            HealthState::Green => "green",
            HealthState::Amber => "amber",
            HealthState::Red => "red",
        }
    }

    /// 0 green, 1 amber, 2 red (the health gauge's value).
    pub fn level(self) -> u8 {
        match self {
            HealthState::Green => 0,
            HealthState::Amber => 1,
            HealthState::Red => 2,
        }
    }
}

/// A health state with the reasons for it (empty when green).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Health {
    /// The state.
    pub state: HealthState,
    /// Why, red reasons first.
    pub reasons: Vec<String>,
}

impl Health {
    /// Green, no reasons.
    pub fn green() -> Self {
        Self::default()
    }
}

/// The thresholds of [`assess`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct HealthThresholds {
    /// Failed items (not dismissed) at or above which the health is red (default 25); any
    /// failed item below it is amber.
    pub failed_red: u64,
    /// Outstanding outbox items (pending, in flight, retrying) at or above which the
    /// backlog is amber (default 1000).
    pub backlog_amber: u64,
    /// Growth of the outstanding items since the end of the last run at or above which
    /// the backlog is amber (default 100).
    pub backlog_growth_amber: u64,
    /// How many intervals without a successful pull make the health red (default 2).
    pub missed_intervals_red: u32,
}

impl Default for HealthThresholds {
    fn default() -> Self {
        Self {
            failed_red: 25,
            backlog_amber: 1000,
            backlog_growth_amber: 100,
            missed_intervals_red: 2,
        }
    }
}

/// The health of a status at `now`: a pure function of its inputs.
///
/// Red: the credentials were rejected (the last check failed, or the last run stopped on
/// them); a quota is exhausted (a stopped run whose `resume_after` is still ahead); no
/// pull ended ok within `missed_intervals_red` intervals of the schedule; failed items at
/// or above `failed_red`. Amber: failed items below that; a backlog at or above
/// `backlog_amber` or grown by `backlog_growth_amber` since the last run; open conflicts;
/// a last run that ended in an error; no successful pull yet.
pub fn assess(status: &SyncStatus, now: DateTime<Utc>, thresholds: &HealthThresholds) -> Health {
    let mut red = Vec::new();
    let mut amber = Vec::new();
    credentials_rule(status, &mut red);
    for last in &status.last_runs {
        let run = &last.run;
        if run.outcome == RunOutcome::Stopped && run.resume_after.is_some_and(|at| at > now) {
            let until = run
                .resume_after
                .map(|at| at.to_rfc3339())
                .unwrap_or_default();
            red.push(format!(
                "quota exhausted: the {} run stopped until {until}",
                run.mode.as_str()
            ));
        }
        if run.outcome == RunOutcome::Failed {
            let why = run.reason.as_deref().unwrap_or("no reason recorded");
            amber.push(format!("the last {} run failed: {why}", run.mode.as_str()));
        }
    }
    success_rule(status, now, thresholds, &mut red, &mut amber);
    let failed = status.outbox.failed;
    if failed >= thresholds.failed_red && failed > 0 {
        red.push(format!(
            "{failed} failed items (red at {}): fix the cause, then requeue",
            thresholds.failed_red
        ));
    } else if failed > 0 {
        amber.push(format!(
            "{failed} failed items: fix the cause, then requeue"
        ));
    }
    backlog_rule(status, thresholds, &mut amber);
    if !status.conflicts.is_empty() {
        amber.push(format!("{} open conflicts", status.conflicts.len()));
    }
    let state = if !red.is_empty() {
        HealthState::Red
    } else if !amber.is_empty() {
        HealthState::Amber
    } else {
        HealthState::Green
    };
    red.extend(amber);
    Health {
        state,
        reasons: red,
    }
}

fn credentials_rule(status: &SyncStatus, red: &mut Vec<String>) {
    if status.connection.ok == Some(false) {
        let error = status.connection.error.as_deref().unwrap_or("no detail");
        red.push(format!("credentials rejected: {error}"));
        return;
    }
    let stopped_on_credentials = status
        .last_runs
        .iter()
        .filter(|l| l.run.credentials_rejected)
        .max_by_key(|l| l.run.finished_at);
    if let Some(last) = stopped_on_credentials {
        // A later check that passed clears it.
        let checked_after = status
            .connection
            .checked_at
            .is_some_and(|at| at > last.run.finished_at);
        if !checked_after {
            let why = last.run.reason.as_deref().unwrap_or("no detail");
            red.push(format!("credentials rejected: {why}"));
        }
    }
}

/// The pulls (delta and full reconcile): when one last ended ok.
fn last_pull_success(status: &SyncStatus) -> Option<DateTime<Utc>> {
    status
        .last_runs
        .iter()
        .filter(|l| matches!(l.run.mode, RunMode::Delta | RunMode::FullReconcile))
        .filter_map(|l| l.last_ok_at)
        .max()
}

fn success_rule(
    status: &SyncStatus,
    now: DateTime<Utc>,
    thresholds: &HealthThresholds,
    red: &mut Vec<String>,
    amber: &mut Vec<String>,
) {
    let Some(interval) = status.schedule.interval_secs else {
        return;
    };
    let window = chrono::Duration::seconds(
        i64::try_from(interval.saturating_mul(u64::from(thresholds.missed_intervals_red)))
            .unwrap_or(i64::MAX / 1000),
    );
    match last_pull_success(status) {
        Some(at) if now - at > window => red.push(format!(
            "no successful run since {} ({} intervals of {interval}s)",
            at.to_rfc3339(),
            thresholds.missed_intervals_red
        )),
        Some(_) => {}
        None => {
            let first = status
                .last_runs
                .iter()
                .filter(|l| matches!(l.run.mode, RunMode::Delta | RunMode::FullReconcile))
                .map(|l| l.run.started_at)
                .min();
            match first {
                Some(started) if now - started > window => red.push(format!(
                    "no successful run yet ({} intervals of {interval}s have passed)",
                    thresholds.missed_intervals_red
                )),
                _ => amber.push("no successful run yet".to_owned()),
            }
        }
    }
}

fn backlog_rule(status: &SyncStatus, thresholds: &HealthThresholds, amber: &mut Vec<String>) {
    let outstanding = status.outbox.outstanding();
    if outstanding >= thresholds.backlog_amber {
        amber.push(format!(
            "backlog of {outstanding} items (amber at {})",
            thresholds.backlog_amber
        ));
        return;
    }
    let last_backlog = status
        .last_runs
        .iter()
        .max_by_key(|l| l.run.finished_at)
        .and_then(|l| l.run.backlog);
    if let Some(before) = last_backlog {
        let growth = outstanding.saturating_sub(before);
        if growth >= thresholds.backlog_growth_amber && growth > 0 {
            amber.push(format!(
                "backlog growing: {outstanding} items, {growth} more than after the last run"
            ));
        }
    }
}

impl SyncStatus {
    /// An empty status of `tenant` read at `generated_at` (green, nothing recorded): the
    /// engine fills the fields.
    pub fn new(tenant: TenantId, generated_at: DateTime<Utc>) -> Self {
        Self {
            tenant,
            generated_at,
            connection: Connection::default(),
            account_id: None,
            last_runs: Vec::new(),
            timing: Timing::default(),
            outbox: OutboxDepth::default(),
            failures: Vec::new(),
            conflicts: Vec::new(),
            webhooks: WebhookWindows::default(),
            schedule: Schedule::default(),
            health: Health::green(),
        }
    }
}

/// Told when a tenant's health changes (see `sync_engine::HealthWatch`): wire it to Slack,
/// PagerDuty or a webhook. Called once per change, on failing and on recovery.
#[async_trait::async_trait]
pub trait StatusObserver: Send + Sync {
    /// The health of `tenant` went from `old` to `new`; `status` is the status that showed
    /// it. Errors are the observer's to log: the watch does not retry.
    async fn on_health_change(
        &self,
        tenant: &TenantId,
        old: &Health,
        new: &Health,
        status: &SyncStatus,
    );
}

#[cfg(test)]
#[path = "status_tests.rs"]
mod tests;
