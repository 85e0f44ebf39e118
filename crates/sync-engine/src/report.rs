//! How a run fills its [`RunReport`]: the report itself is plain data in sync-core, so that
//! connector crates and callers can read it without the engine.

use chrono::{DateTime, Utc};
use sync_core::Plan;
use sync_core::report::{FailureSample, MAX_SAMPLES, RunReport, STOP_REQUESTED};

/// The engine's bookkeeping on a [`RunReport`].
pub(crate) trait ReportExt {
    /// Marks the run as interrupted by a stop request.
    fn interrupt(&mut self);
    /// Counts what a plan planned, skipped and found in conflict.
    fn absorb_plan(&mut self, plan: &Plan);
    /// Counts one failed action and keeps it as a sample while there is room.
    fn failure(&mut self, sample: FailureSample);
    /// Sets the end time and the duration.
    fn finish(&mut self, at: DateTime<Utc>);
}

impl ReportExt for RunReport {
    fn interrupt(&mut self) {
        self.interrupted = true;
        if self.stopped.is_none() {
            self.stopped = Some(STOP_REQUESTED.to_owned());
        }
    }

    fn absorb_plan(&mut self, plan: &Plan) {
        for (kind, n) in &plan.counts.actions {
            *self.planned.entry(kind.clone()).or_insert(0) += n;
        }
        self.skipped += plan.counts.skipped_no_user
            + plan.counts.skipped_duplicate
            + plan.counts.skipped_no_email;
        self.conflicts += plan.conflicts.len() as u64;
        for c in &plan.conflicts {
            if self.conflict_samples.len() >= MAX_SAMPLES {
                break;
            }
            self.conflict_samples.push(c.clone());
        }
    }

    fn failure(&mut self, sample: FailureSample) {
        if sample.retryable {
            self.retrying += 1;
        } else {
            self.failed += 1;
        }
        if self.failures.len() < MAX_SAMPLES {
            self.failures.push(sample);
        }
    }

    fn finish(&mut self, at: DateTime<Utc>) {
        self.finished_at = at;
        self.duration_ms = (at - self.started_at).num_milliseconds();
    }
}
