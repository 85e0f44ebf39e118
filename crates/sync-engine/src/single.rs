//! Single-record sync: read one contact, plan it as a reconcile would, apply or only show.

use tracing::{Instrument, info_span};

use crate::Error;
use crate::report::ReportExt;
use crate::{RunReport, SyncEngine};
use sync_core::plan::{Plan, PlanMode};
use sync_core::planner::{PlanInput, plan};
use sync_core::ports::ContactRef;
use sync_core::{CrmContact, TenantId};

/// Whether [`SyncEngine::sync_contact`] applies what it plans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SyncMode {
    /// Write the plan to the outbox and apply it ("sync now").
    Apply,
    /// Only plan: nothing is written anywhere ("test mapping").
    DryRun,
}

/// What [`SyncEngine::sync_contact`] found, planned and did.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ContactSync {
    /// The contact read from the CRM; `None` when there is no such contact (the plan is
    /// then empty).
    pub contact: Option<CrmContact>,
    /// The plan for that contact: its actions with their reasons, skips and conflicts.
    pub plan: Plan,
    /// The run's counts: read, planned, applied (empty for a dry run), failures.
    pub report: RunReport,
}

impl SyncEngine {
    /// Syncs one contact: reads it from the CRM source by email or record id, plans it
    /// with the records it competes with (a merge survivor, the record linked to its
    /// email) exactly as a reconcile plans it, and, with [`SyncMode::Apply`], writes the
    /// plan to the outbox and applies it. A missing contact is not an error: the result
    /// says `contact: None`. When the records it competes with cannot be read, the plan is
    /// empty and the report's `stopped` says why. Nothing is removed because a contact is absent: that needs a
    /// complete scan (see ARCHITECTURE.md).
    pub async fn sync_contact(
        &self,
        tenant: &TenantId,
        contact: ContactRef,
        mode: SyncMode,
    ) -> Result<ContactSync, Error> {
        let this = &self.scoped(tenant).await?;
        let span = info_span!("sync.run", kind = "single", tenant = %tenant, contact = %contact);
        async {
            let before = this.api_calls();
            let kind = match mode {
                SyncMode::Apply => "single",
                SyncMode::DryRun => "single_dry_run",
            };
            let mut report = RunReport::new(kind, tenant, this.clock.now());
            let result = this.sync_one(tenant, &contact, mode, &mut report).await?;
            this.finish_report(&mut report, &before);
            Ok(ContactSync {
                contact: result.0,
                plan: result.1,
                report,
            })
        }
        .instrument(span)
        .await
    }

    async fn sync_one(
        &self,
        tenant: &TenantId,
        contact: &ContactRef,
        mode: SyncMode,
        report: &mut RunReport,
    ) -> Result<(Option<CrmContact>, Plan), Error> {
        let source = self.source()?.clone();
        let now = self.clock.now();
        let Some(found) = source.get_contact(tenant, contact).await? else {
            return Ok((None, Plan::empty(tenant.clone(), PlanMode::Delta, now)));
        };
        report.read += 1;
        let Some((contacts, view)) = self
            .with_competitors(tenant, source.as_ref(), vec![found.clone()], report)
            .await?
        else {
            // The report says why (`stopped`): nothing is planned on a partial picture.
            return Ok((
                Some(found),
                Plan::empty(tenant.clone(), PlanMode::Delta, now),
            ));
        };
        let mut p = plan(
            &PlanInput::new(tenant, &self.config, &view, now),
            &contacts,
            PlanMode::Delta,
        );
        p.counts.contacts = 1;
        report.absorb_plan(&p);
        if mode == SyncMode::Apply && !p.actions.is_empty() {
            report.enqueued += self.store.enqueue(tenant, &p.actions, now).await?;
            let drained = self.drain_outbox_inner(tenant, Some(report)).await?;
            report.absorb_drain(drained);
        }
        Ok((Some(found), p))
    }
}
