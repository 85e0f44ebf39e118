//! Progress of long runs: counts handed to an observer as they move, for a progress bar or
//! log lines (see `examples/hubspot_badge_sync.rs`).

use std::sync::Arc;

use crate::{RunReport, SyncEngine, SyncEngineBuilder};

/// Where a run stands. Counts are cumulative over the run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Progress {
    /// The run's kind (`delta`, `full_reconcile`, `drain`, `community_event`, `single`).
    pub kind: String,
    /// Contacts read from the CRM.
    pub read: u64,
    /// Actions planned.
    pub planned: u64,
    /// Actions applied.
    pub applied: u64,
    /// Actions failed for good.
    pub failed: u64,
    /// Actions failed that will be retried.
    pub retrying: u64,
    /// Whether the run has finished (the last call of a run).
    pub done: bool,
}

impl Progress {
    fn of(report: &RunReport) -> Self {
        Self {
            kind: report.kind.clone(),
            read: report.read,
            planned: report.planned_total(),
            applied: report.applied_total(),
            failed: report.failed,
            retrying: report.retrying,
            done: false,
        }
    }

    fn add(&mut self, other: &RunReport) {
        self.read += other.read;
        self.planned += other.planned_total();
        self.applied += other.applied_total();
        self.failed += other.failed;
        self.retrying += other.retrying;
    }
}

/// Receives [`Progress`] while runs move: after each page read and planned, after each
/// outbox batch applied, and once when a run finishes (`done`). Called on the run's task:
/// keep it quick (update a bar, log a line, send on a channel).
pub trait ProgressObserver: Send + Sync {
    /// One update.
    fn on_progress(&self, progress: &Progress);
}

impl<F: Fn(&Progress) + Send + Sync> ProgressObserver for F {
    fn on_progress(&self, progress: &Progress) {
        self(progress);
    }
}

impl SyncEngineBuilder {
    /// Reports the progress of every run to `observer` (a closure `|p: &Progress| ...` or a
    /// [`ProgressObserver`]).
    pub fn with_progress(mut self, observer: impl ProgressObserver + 'static) -> Self {
        self.engine.progress = Some(Arc::new(observer));
        self
    }
}

impl SyncEngine {
    /// This engine reporting the progress of its runs to `observer` (for an engine built
    /// elsewhere, e.g. by the service's `connect`). Clones share the rest of the engine.
    #[must_use]
    pub fn with_progress(mut self, observer: impl ProgressObserver + 'static) -> Self {
        self.progress = Some(Arc::new(observer));
        self
    }

    /// Tells the observer where `report` stands; a drain inside a larger run adds the
    /// counts of the run around it (`outer`).
    pub(crate) fn report_progress(
        &self,
        report: &RunReport,
        outer: Option<&RunReport>,
        done: bool,
    ) {
        let Some(observer) = &self.progress else {
            return;
        };
        let mut progress = Progress::of(report);
        if let Some(outer) = outer {
            progress.add(outer);
            progress.kind.clone_from(&outer.kind);
        }
        progress.done = done;
        observer.on_progress(&progress);
    }
}
