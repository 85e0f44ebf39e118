//! The status of a tenant's sync read from the store, the record of each run's end, the
//! health watch that tells observers about changes, and the description of every metric.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use tracing::warn;

use sync_core::TenantId;
use sync_core::ports::{CredentialsCheck, FailedFilter, LastRun, RunMode, RunOutcome, RunRecord};
use sync_core::status::{
    Connection, FailureRecord, Health, OutboxDepth, Schedule, StatusObserver, SyncStatus,
    WebhookWindows, assess, group_failures,
};
use sync_core::{RemoteError, RemoteErrorKind};

use crate::{Error, RunReport, SyncEngine};

/// The most failed items read to group the failures of a status.
pub const FAILURE_SCAN: usize = 1000;

/// Whether a remote error means the CRM refused the credentials (invalid, expired, or not
/// allowed to do the work).
pub(crate) fn refuses_credentials(e: &RemoteError) -> bool {
    matches!(e.kind, RemoteErrorKind::Auth | RemoteErrorKind::Forbidden)
}

/// The record of a run that returned a report.
fn record_of(mode: RunMode, report: &RunReport) -> RunRecord {
    let outcome = if report.stopped.is_some() {
        RunOutcome::Stopped
    } else {
        RunOutcome::Ok
    };
    let mut run = RunRecord::new(mode, report.started_at, report.finished_at, outcome);
    run.reason = report.stopped.clone();
    run.resume_after = report.resume_after;
    run.read = report.read;
    run.applied = report.applied.clone();
    run.failed = report.failed;
    run.retrying = report.retrying;
    run.checkpoint = report.checkpoint.clone();
    run.lag_ms = report.lag_ms;
    run.conflicts = report.conflict_samples.clone();
    run.credentials_rejected = report.credentials_rejected;
    run.backlog = report.backlog.map(|b| b.outstanding() + b.retry_later);
    run
}

impl SyncEngine {
    /// Records how a run ended as the last run of its mode, counts it in
    /// `cativa_sync_runs_total` (a run that ended in an error counts as failed), and keeps
    /// the connection state: a pull that ended ok proves the credentials, a run stopped on
    /// them records a failed check. A store error here is logged, never returned: the
    /// run's own result matters more.
    pub(crate) async fn record_run_end(
        &self,
        tenant: &TenantId,
        mode: RunMode,
        started: DateTime<Utc>,
        result: Result<&RunReport, &Error>,
    ) {
        let now = self.clock.now();
        let run = match result {
            Ok(report) => record_of(mode, report),
            Err(e) => {
                let mut run = RunRecord::new(mode, started, now, RunOutcome::Failed);
                run.reason = Some(e.to_string());
                run.credentials_rejected = e.as_remote().is_some_and(refuses_credentials);
                run
            }
        };
        let outcome = match run.outcome {
            RunOutcome::Ok => "ok",
            RunOutcome::Stopped => "stopped",
            _ => "failed",
        };
        metrics::counter!("cativa_sync_runs_total", "kind" => mode.as_str(), "outcome" => outcome)
            .increment(1);
        let check = if run.credentials_rejected {
            let why = run.reason.clone().unwrap_or_default();
            Some(CredentialsCheck::failed(now, why))
        } else if run.outcome == RunOutcome::Ok
            && matches!(mode, RunMode::Delta | RunMode::FullReconcile)
        {
            Some(CredentialsCheck::ok(now, None))
        } else {
            None
        };
        if let Some(check) = check
            && let Err(e) = self.store.record_credentials_check(tenant, &check).await
        {
            warn!(error = %e, "could not record the credentials state");
        }
        if mode == RunMode::Event {
            // One write for the deliveries finishing together (latest wins).
            self.event_runs
                .record(self.store.as_ref(), tenant, run)
                .await;
        } else if let Err(e) = self.store.record_run(tenant, &run).await {
            warn!(error = %e, mode = mode.as_str(), "could not record the end of the run");
        }
    }

    /// The status of `tenant`'s sync, read from the store: connection, account, the last
    /// run of each mode, timing, outbox depth, failures grouped by kind and reason, open
    /// conflicts, webhook deliveries over the last hour and day, the `schedule` the caller
    /// gives (the engine does not schedule), and the health assessed with
    /// [`EngineOptions::health`](crate::EngineOptions::health).
    ///
    /// Sets the gauges `cativa_sync_outbox_items` (by state) and `cativa_sync_health` (by
    /// tenant).
    pub async fn status(
        &self,
        tenant: &TenantId,
        schedule: &Schedule,
    ) -> Result<SyncStatus, Error> {
        let this = &self.scoped(tenant).await?;
        let now = this.clock.now();
        let mut status = SyncStatus::new(tenant.clone(), now);
        if let Some(check) = this.store.credentials_check(tenant).await? {
            status.connection = connection(&check);
            status.account_id = check.account_id;
        }
        status.last_runs = this.store.last_runs(tenant).await?;
        status.timing.last_success_at = status
            .last_runs
            .iter()
            .filter(|l| is_pull(l))
            .filter_map(|l| l.last_ok_at)
            .max();
        status.timing.lag_ms = latest_pull(&status.last_runs).and_then(|l| l.run.lag_ms);
        status.timing.checkpoint = this
            .store
            .checkpoint(tenant, &this.source_name(), &this.options.stream)
            .await?;
        status.outbox = this.depth(tenant, now).await?;
        status.failures = this.failure_groups(tenant).await?;
        status.conflicts = open_conflicts(&status.last_runs);
        let hour = this
            .store
            .webhook_counts(tenant, now - chrono::Duration::hours(1))
            .await?;
        let day = this
            .store
            .webhook_counts(tenant, now - chrono::Duration::hours(24))
            .await?;
        status.webhooks = WebhookWindows::new(hour, day);
        status.schedule = schedule.clone();
        status.health = assess(&status, now, &this.options.health);
        set_gauges(&status);
        Ok(status)
    }

    async fn depth(&self, tenant: &TenantId, now: DateTime<Utc>) -> Result<OutboxDepth, Error> {
        let counts = self.store.outbox_counts(tenant).await?;
        let backlog = self.store.outbox_backlog(tenant, now).await?;
        let mut depth = OutboxDepth::default();
        depth.pending = backlog.pending;
        depth.retrying = backlog.retry_later;
        depth.in_flight = counts.in_flight;
        depth.failed = counts.failed;
        depth.dismissed = counts.dismissed;
        Ok(depth)
    }

    async fn failure_groups(
        &self,
        tenant: &TenantId,
    ) -> Result<Vec<sync_core::status::FailureGroup>, Error> {
        let failed = self
            .store
            .list_failed(tenant, &FailedFilter::new(FAILURE_SCAN))
            .await?;
        let records = failed
            .into_iter()
            .map(|f| {
                let action = &f.item.action;
                let record = FailureRecord::new(
                    action.key.to_string(),
                    action.kind.email().to_string(),
                    f.failed_at,
                    f.item.last_error.clone().unwrap_or_default(),
                );
                (action.kind.name().to_owned(), record)
            })
            .collect();
        Ok(group_failures(records))
    }
}

fn connection(check: &CredentialsCheck) -> Connection {
    let mut c = Connection::default();
    c.checked_at = Some(check.at);
    c.ok = Some(check.error.is_none());
    c.error = check.error.clone();
    c
}

fn is_pull(last: &LastRun) -> bool {
    matches!(last.run.mode, RunMode::Delta | RunMode::FullReconcile)
}

fn latest_pull(runs: &[LastRun]) -> Option<&LastRun> {
    runs.iter()
        .filter(|l| is_pull(l))
        .max_by_key(|l| l.run.finished_at)
}

/// The conflicts of the last runs, each once.
fn open_conflicts(runs: &[LastRun]) -> Vec<sync_core::Conflict> {
    let mut out: Vec<sync_core::Conflict> = Vec::new();
    for c in runs.iter().flat_map(|l| &l.run.conflicts) {
        if !out.contains(c) {
            out.push(c.clone());
        }
    }
    out
}

fn set_gauges(status: &SyncStatus) {
    let tenant = status.tenant.to_string();
    let o = &status.outbox;
    for (state, n) in [
        ("pending", o.pending),
        ("in_flight", o.in_flight),
        ("retrying", o.retrying),
        ("failed", o.failed),
        ("dismissed", o.dismissed),
    ] {
        metrics::gauge!("cativa_sync_outbox_items", "tenant" => tenant.clone(), "state" => state)
            .set(n as f64);
    }
    metrics::gauge!("cativa_sync_health", "tenant" => tenant)
        .set(f64::from(status.health.state.level()));
}

/// Remembers the last health of each tenant and tells every observer once per change: on
/// failing (green to amber or red, amber to red) and on recovery. A tenant seen for the
/// first time counts as coming from green, so a tenant that starts red is reported.
///
/// Only the state counts as a change, not the wording of the reasons, so an alert does
/// not repeat while a red tenant's failure count moves.
#[derive(Default)]
pub struct HealthWatch {
    last: Mutex<HashMap<TenantId, Health>>,
    observers: Vec<Arc<dyn StatusObserver>>,
}

impl std::fmt::Debug for HealthWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthWatch")
            .field("observers", &self.observers.len())
            .finish_non_exhaustive()
    }
}

impl HealthWatch {
    /// A watch with no observers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an observer.
    pub fn observer(mut self, observer: Arc<dyn StatusObserver>) -> Self {
        self.observers.push(observer);
        self
    }

    /// The last health seen for `tenant`.
    pub fn last(&self, tenant: &TenantId) -> Option<Health> {
        self.last
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(tenant)
            .cloned()
    }

    /// Takes in a freshly computed status; when its health state differs from the last one
    /// seen for its tenant, calls every observer (in order) and returns `true`.
    pub async fn update(&self, status: &SyncStatus) -> bool {
        let old = {
            let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
            last.insert(status.tenant.clone(), status.health.clone())
                .unwrap_or_else(Health::green)
        };
        if old.state == status.health.state {
            return false;
        }
        if status.health.state > old.state {
            warn!(tenant = %status.tenant, from = old.state.as_str(), to = status.health.state.as_str(), reasons = ?status.health.reasons, "sync health worse");
        } else {
            tracing::info!(tenant = %status.tenant, from = old.state.as_str(), to = status.health.state.as_str(), "sync health better");
        }
        for observer in &self.observers {
            observer
                .on_health_change(&status.tenant, &old, &status.health, status)
                .await;
        }
        true
    }
}

/// Describes every metric the engine emits, with its unit, to the installed `metrics`
/// recorder (an exporter shows the descriptions as `# HELP` lines). Call it once, after
/// installing the recorder.
pub fn describe_metrics() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "cativa_sync_records_read_total",
        Unit::Count,
        "CRM records read by runs, by source."
    );
    describe_counter!(
        "cativa_sync_actions_applied_total",
        Unit::Count,
        "Outbox actions applied, by source."
    );
    describe_counter!(
        "cativa_sync_actions_failed_total",
        Unit::Count,
        "Outbox actions failed for good, by source."
    );
    describe_counter!(
        "cativa_sync_actions_retrying_total",
        Unit::Count,
        "Outbox action attempts failed and scheduled for a retry, by source."
    );
    describe_counter!(
        "cativa_sync_runs_total",
        Unit::Count,
        "Runs ended, by kind (delta, full_reconcile, drain, event) and outcome (ok, stopped, failed: a run that ended in an error)."
    );
    describe_histogram!(
        "cativa_sync_run_duration_seconds",
        Unit::Seconds,
        "Duration of runs that returned a report, by kind."
    );
    describe_gauge!(
        "cativa_sync_lag_seconds",
        Unit::Seconds,
        "From the newest CRM change read to the end of the last run, by source."
    );
    describe_gauge!(
        "cativa_sync_last_success_timestamp_seconds",
        Unit::Seconds,
        "Unix time of the end of the last run that did not stop early, by tenant and source."
    );
    describe_counter!(
        "cativa_sync_deliveries_accepted_total",
        Unit::Count,
        "Webhook deliveries processed, by source (cativa, crm)."
    );
    describe_counter!(
        "cativa_sync_deliveries_duplicate_total",
        Unit::Count,
        "Webhook deliveries already processed (retries, duplicates), by source."
    );
    describe_counter!(
        "cativa_sync_deliveries_in_progress_total",
        Unit::Count,
        "Webhook deliveries answered while another copy was being processed, by source."
    );
    describe_counter!(
        "cativa_sync_retention_purged_total",
        Unit::Count,
        "Rows deleted by retention purges, by table."
    );
    describe_gauge!(
        "cativa_sync_outbox_items",
        Unit::Count,
        "Outbox items by tenant and state (pending, in_flight, retrying, failed, dismissed), set when a status is read."
    );
    describe_gauge!(
        "cativa_sync_health",
        Unit::Count,
        "Health by tenant: 0 green, 1 amber, 2 red, set when a status is read."
    );
}
