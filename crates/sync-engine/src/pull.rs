//! Pull: delta since a durable checkpoint, full reconcile, and dry runs.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use tracing::{Instrument, info, info_span, warn};

use crate::Error;
use crate::report::ReportExt;
use crate::{RunReport, SyncEngine, diff_calls};
use sync_core::plan::{Plan, PlanMode};
use sync_core::planner::{PlanInput, StateView, apply_to_view, plan, plan_absences};
use sync_core::ports::{CrmSource, PageToken, RunMode};
use sync_core::{CrmContact, CrmKind, CrmRecordId, Cursor, Email, TenantId, next_checkpoint};

/// What a run does with its plans.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Effect {
    /// Only plan (dry run): nothing is written.
    DryRun,
    /// Enqueue, checkpoint, and apply per the options.
    Write,
}

impl SyncEngine {
    /// The store's view of the rows a batch of contacts touches: by record id (merge winners
    /// included) and by email (alternate emails included).
    pub(super) async fn view_for(
        &self,
        tenant: &TenantId,
        contacts: &[CrmContact],
    ) -> Result<StateView, Error> {
        let ids: Vec<_> = contacts
            .iter()
            .flat_map(|c| std::iter::once(c.id.clone()).chain(c.merged_into.clone()))
            .collect();
        let emails: Vec<Email> = contacts
            .iter()
            .flat_map(|c| c.email.clone().into_iter().chain(c.alternate_email.clone()))
            .collect();
        Ok(self.store.load_view(tenant, &ids, &emails).await?)
    }

    /// Plans what a run of `mode` would do, reading the CRM and the store but writing
    /// nothing: a dry run. A delta plan starts at the stored checkpoint.
    pub async fn plan(&self, tenant: &TenantId, mode: PlanMode) -> Result<Plan, Error> {
        let this = &self.scoped(tenant).await?;
        let mut report = RunReport::new("dry_run", tenant, this.clock.now());
        let plan = match mode {
            PlanMode::Delta => this.delta(tenant, Effect::DryRun, &mut report).await?,
            PlanMode::FullReconcile { .. } => {
                this.full(tenant, Effect::DryRun, &mut report).await?
            }
            other => {
                return Err(Error::Unsupported(format!("a {other:?} run")));
            }
        };
        Ok(plan)
    }

    /// Runs one delta: reads the contacts changed since the checkpoint (minus the overlap),
    /// page by page; plans each page, writes it to the outbox, advances the checkpoint, and
    /// applies. The records a page competes with but did not change (a merge survivor, the
    /// record linked to a row a contact matches by email) are read by id, so a delta decides
    /// as a full reconcile would. Per-record failures are recorded and retried later; a quota
    /// or credential error stops the run cleanly with the checkpoint at the last durable page.
    pub async fn run_delta(&self, tenant: &TenantId) -> Result<RunReport, Error> {
        let this = &self.scoped(tenant).await?;
        let span = info_span!("sync.run", kind = "delta", tenant = %tenant);
        let started = this.clock.now();
        let result = async {
            let before = this.api_calls();
            let mut report = RunReport::new("delta", tenant, started);
            this.delta(tenant, Effect::Write, &mut report).await?;
            this.finish_report(&mut report, &before);
            Ok(report)
        }
        .instrument(span)
        .await;
        this.record_run_end(tenant, RunMode::Delta, started, result.as_ref())
            .await;
        result
    }

    /// Runs a full reconcile: scans every contact, plans against the whole mapping table,
    /// and, only if the scan was complete, removes the badges this sync granted to users
    /// whose contact is gone and sets the delta checkpoint to the scan's start minus the
    /// overlap (never moving it back), once the plan is in the outbox.
    pub async fn run_full_reconcile(&self, tenant: &TenantId) -> Result<RunReport, Error> {
        let this = &self.scoped(tenant).await?;
        let span = info_span!("sync.run", kind = "full_reconcile", tenant = %tenant);
        let started = this.clock.now();
        let result = async {
            let before = this.api_calls();
            let mut report = RunReport::new("full_reconcile", tenant, started);
            this.full(tenant, Effect::Write, &mut report).await?;
            this.finish_report(&mut report, &before);
            Ok(report)
        }
        .instrument(span)
        .await;
        this.record_run_end(tenant, RunMode::FullReconcile, started, result.as_ref())
            .await;
        result
    }

    pub(super) fn finish_report(
        &self,
        report: &mut RunReport,
        calls_before: &std::collections::BTreeMap<String, u64>,
    ) {
        let now = self.clock.now();
        report.api_calls = diff_calls(self.api_calls(), calls_before);
        report.finish(now);
        self.report_progress(report, None, true);
        let source = self.source_name();
        metrics::counter!("cativa_sync_records_read_total", "source" => source.clone())
            .increment(report.read);
        metrics::counter!("cativa_sync_actions_applied_total", "source" => source.clone())
            .increment(report.applied_total());
        metrics::counter!("cativa_sync_actions_failed_total", "source" => source.clone())
            .increment(report.failed);
        metrics::counter!("cativa_sync_actions_retrying_total", "source" => source.clone())
            .increment(report.retrying);
        metrics::histogram!("cativa_sync_run_duration_seconds", "kind" => report.kind.clone())
            .record(report.duration_ms as f64 / 1000.0);
        if let Some(lag) = report.lag_ms {
            metrics::gauge!("cativa_sync_lag_seconds", "source" => source.clone())
                .set(lag as f64 / 1000.0);
        }
        if report.stopped.is_none() {
            metrics::gauge!("cativa_sync_last_success_timestamp_seconds", "tenant" => report.tenant.to_string(), "source" => source)
                .set(now.timestamp() as f64);
        }
        info!(
            read = report.read,
            planned = report.planned_total(),
            applied = report.applied_total(),
            failed = report.failed,
            "run finished"
        );
    }

    async fn delta(
        &self,
        tenant: &TenantId,
        effect: Effect,
        report: &mut RunReport,
    ) -> Result<Plan, Error> {
        let source = self.source()?.clone();
        let (name, stream) = (self.source_name(), self.options.stream.clone());
        let started = self.clock.now();
        let stored = self.store.checkpoint(tenant, &name, &stream).await?;
        let mut checkpoint = DeltaCheckpoint {
            current: stored.clone().unwrap_or_else(Cursor::beginning),
            expected: stored,
            name,
            stream,
        };
        let mut newest = None;
        let mut token: Option<PageToken> = None;
        let mut whole = Plan::empty(tenant.clone(), PlanMode::Delta, started);
        let since = checkpoint.current.clone();
        loop {
            if self.stop_requested() {
                report.interrupt();
                break;
            }
            let page = match source.changed_since(tenant, &since, token.as_ref()).await {
                Ok(page) => page,
                Err(e) => {
                    warn!(error = %e, "delta page failed; checkpoint stays at the last durable page");
                    stop(report, &e);
                    break;
                }
            };
            report.read += page.contacts.len() as u64;
            report.full_reconcile_advised |= page.full_reconcile_advised;
            let page_newest = page.contacts.iter().map(|c| c.updated_at).max();
            let page_len = page.contacts.len() as u64;
            let Some((contacts, view)) = self
                .with_competitors(tenant, source.as_ref(), page.contacts, report)
                .await?
            else {
                break;
            };
            newest = newest.max(page_newest);
            let now = self.clock.now();
            let mut p = plan(
                &PlanInput::new(tenant, &self.config, &view, now),
                &contacts,
                PlanMode::Delta,
            );
            // Re-read competitors are not part of this page's count.
            p.counts.contacts = page_len;
            report.absorb_plan(&p);
            self.report_progress(report, None, false);
            if effect == Effect::Write {
                report.enqueued += self.store.enqueue(tenant, &p.actions, now).await?;
                // The plan is durable: the checkpoint may move past this page.
                let next =
                    next_checkpoint(&checkpoint.current, started, newest, self.options.overlap);
                self.advance_checkpoint(tenant, &mut checkpoint, next)
                    .await?;
                if self.options.apply {
                    let drained = self.drain_outbox_inner(tenant, Some(report)).await?;
                    report.absorb_drain(drained);
                    if report.stopped.is_some() {
                        break;
                    }
                }
            }
            whole.merge(p);
            match page.next {
                Some(next) => token = Some(next),
                None => break,
            }
        }
        report.checkpoint = Some(checkpoint.current);
        self.record_lag(report, newest);
        Ok(whole)
    }

    /// A page's contacts with the records they compete with (a merge survivor, the record
    /// linked to a row a contact matches by email, the records holding the new email of a
    /// contact that renames its row) that did not change themselves, so that a delta decides
    /// as a full reconcile would; and the store's view of them all. `None` when those records
    /// cannot be read: the run stops there.
    pub(crate) async fn with_competitors(
        &self,
        tenant: &TenantId,
        source: &dyn CrmSource,
        mut contacts: Vec<CrmContact>,
        report: &mut RunReport,
    ) -> Result<Option<(Vec<CrmContact>, StateView)>, Error> {
        let mut view = self.view_for(tenant, &contacts).await?;
        let mut searched = HashSet::new();
        // A record read this way may bring its own (a tombstone's survivor): a few rounds.
        for _ in 0..3 {
            match read_competitors(source, tenant, &mut contacts, &view, &mut searched).await {
                Ok(0) => break,
                Ok(_) => view = self.view_for(tenant, &contacts).await?,
                Err(e) => {
                    warn!(error = %e, "could not read the records this page competes with; checkpoint stays at the last durable page");
                    stop(report, &e);
                    return Ok(None);
                }
            }
        }
        Ok(Some((contacts, view)))
    }

    /// Moves the delta checkpoint to `next`, unless another worker moved it meanwhile
    /// (compare-and-set on what this run last stored).
    async fn advance_checkpoint(
        &self,
        tenant: &TenantId,
        checkpoint: &mut DeltaCheckpoint,
        next: Cursor,
    ) -> Result<(), Error> {
        if next == checkpoint.current {
            return Ok(());
        }
        let DeltaCheckpoint {
            name,
            stream,
            expected,
            ..
        } = &*checkpoint;
        if self
            .store
            .advance_checkpoint(tenant, name, stream, expected.as_ref(), &next)
            .await?
        {
            checkpoint.current = next.clone();
            checkpoint.expected = Some(next);
        } else {
            warn!("checkpoint moved by another worker; this run keeps its own position");
        }
        Ok(())
    }

    /// The run's lag: from the newest change read to now.
    fn record_lag(&self, report: &mut RunReport, newest: Option<DateTime<Utc>>) {
        if let Some(newest) = newest {
            report.lag_ms = Some((self.clock.now() - newest).num_milliseconds().max(0));
        }
    }

    /// A full reconcile: scans every page, plans each against the view the earlier pages
    /// left, then (after a complete scan only) plans removals by absence and moves the
    /// checkpoint.
    async fn full(
        &self,
        tenant: &TenantId,
        effect: Effect,
        report: &mut RunReport,
    ) -> Result<Plan, Error> {
        let source = self.source()?.clone();
        let started = self.clock.now();
        let groups = self.group_members(tenant, report).await;
        let mut scan = FullScan {
            view: self.store.load_full_view(tenant).await?,
            seen: HashSet::new(),
            first_seen: HashMap::new(),
            complete: true,
            newest: None,
            groups,
            whole: Plan::empty(
                tenant.clone(),
                PlanMode::FullReconcile {
                    scan_complete: false,
                },
                started,
            ),
        };
        self.scan_pages(tenant, source.as_ref(), effect, &mut scan, report)
            .await?;
        report.scan_complete = Some(scan.complete);
        if scan.complete {
            self.after_complete_scan(tenant, source.crm(), effect, started, &mut scan, report)
                .await?;
        }
        if effect == Effect::Write && self.options.apply {
            let drained = self.drain_outbox_inner(tenant, Some(report)).await?;
            report.absorb_drain(drained);
        }
        self.record_lag(report, scan.newest);
        Ok(scan.whole)
    }

    /// Reads and plans every page of the scan. A page that cannot be read ends the scan as
    /// incomplete (nothing is then removed by absence) and stops the run.
    async fn scan_pages(
        &self,
        tenant: &TenantId,
        source: &dyn CrmSource,
        effect: Effect,
        scan: &mut FullScan,
        report: &mut RunReport,
    ) -> Result<(), Error> {
        let mut token: Option<PageToken> = None;
        loop {
            if self.stop_requested() {
                // A scan cut short removes nothing by absence.
                scan.complete = false;
                report.interrupt();
                return Ok(());
            }
            let page = match source.scan(tenant, token.as_ref()).await {
                Ok(page) => page,
                Err(e) => {
                    warn!(error = %e, "full scan page failed; nothing will be removed by absence");
                    scan.complete = false;
                    stop(report, &e);
                    return Ok(());
                }
            };
            report.read += page.contacts.len() as u64;
            let page_len = page.contacts.len() as u64;
            scan.note_page(&page.contacts);
            let earlier = scan.earlier_duplicates(&page.contacts);
            let mut contacts = page.contacts;
            // A contact renaming its row competes with the records that hold its new email,
            // later pages' included: the rename is refused while another contact has it.
            let read = async {
                if !earlier.is_empty() {
                    contacts.extend(source.get_by_ids(tenant, &earlier).await?);
                }
                add_rename_rivals(
                    source,
                    tenant,
                    &mut contacts,
                    &scan.view,
                    &mut HashSet::new(),
                )
                .await
            };
            if let Err(e) = read.await {
                warn!(error = %e, "could not re-read earlier duplicates or the rivals of a rename; nothing will be removed by absence");
                scan.complete = false;
                stop(report, &e);
                return Ok(());
            }
            self.plan_page(tenant, effect, &contacts, page_len, scan, report)
                .await?;
            match page.next {
                Some(next) => token = Some(next),
                None => return Ok(()),
            }
        }
    }

    /// Plans one page against the view the earlier pages left, and enqueues the plan.
    async fn plan_page(
        &self,
        tenant: &TenantId,
        effect: Effect,
        contacts: &[CrmContact],
        page_len: u64,
        scan: &mut FullScan,
        report: &mut RunReport,
    ) -> Result<(), Error> {
        let now = self.clock.now();
        let mut p = plan(
            &PlanInput::new(tenant, &self.config, &scan.view, now),
            contacts,
            PlanMode::FullReconcile {
                scan_complete: false,
            },
        );
        // Re-read duplicates were counted on their own page already.
        p.counts.contacts = page_len;
        if !scan.groups.is_empty() {
            p.merge(self.plan_page_groups(tenant, &scan.view, contacts, &scan.groups));
        }
        // Later pages must see this page's links and grants (the outbox applies them).
        apply_to_view(&p, &mut scan.view, now);
        report.absorb_plan(&p);
        self.report_progress(report, None, false);
        if effect == Effect::Write {
            report.enqueued += self.store.enqueue(tenant, &p.actions, now).await?;
        }
        scan.whole.merge(p);
        Ok(())
    }

    /// After a complete scan: plans removals by absence and moves the checkpoint.
    async fn after_complete_scan(
        &self,
        tenant: &TenantId,
        crm: CrmKind,
        effect: Effect,
        started: DateTime<Utc>,
        scan: &mut FullScan,
        report: &mut RunReport,
    ) -> Result<(), Error> {
        let now = self.clock.now();
        let p = plan_absences(
            &PlanInput::new(tenant, &self.config, &scan.view, now),
            &crm,
            &|id| scan.seen.contains(id),
            true,
        );
        report.absorb_plan(&p);
        if effect == Effect::Write {
            report.enqueued += self.store.enqueue(tenant, &p.actions, now).await?;
        }
        scan.whole.merge(p);
        scan.whole.mode = PlanMode::FullReconcile {
            scan_complete: true,
        };
        if effect == Effect::Write {
            // Every contact modified before the scan started was read and its plan is in the
            // outbox: the next delta need only read from there (less the overlap).
            report.checkpoint = self.checkpoint_after_full(tenant, started).await?;
        }
        Ok(())
    }
}

/// The delta checkpoint as a run holds it.
struct DeltaCheckpoint {
    /// Where this run reads from now.
    current: Cursor,
    /// What the store holds, as this run last read or wrote it.
    expected: Option<Cursor>,
    /// The source's name.
    name: String,
    /// The stream (`EngineOptions::stream`).
    stream: String,
}

/// What a full scan has learned so far.
struct FullScan {
    /// The store's view, with the plans of the pages read so far applied.
    view: StateView,
    /// The records seen (not archived): the others are absent after a complete scan.
    seen: HashSet<CrmRecordId>,
    /// The record each email was first seen on: the duplicate policy must hold across
    /// pages, so an earlier record is brought back into a page that repeats its email.
    first_seen: HashMap<Email, CrmRecordId>,
    /// Whether every page was read.
    complete: bool,
    /// Each `[groups]` group's members, read once at the start (`None`: unknown).
    groups: sync_core::planner::GroupMembers,
    /// The newest change read.
    newest: Option<DateTime<Utc>>,
    /// The plan of the whole run.
    whole: Plan,
}

impl FullScan {
    /// Records a page's newest change and the records it shows.
    fn note_page(&mut self, contacts: &[CrmContact]) {
        self.newest = self.newest.max(contacts.iter().map(|c| c.updated_at).max());
        self.seen.extend(
            contacts
                .iter()
                .filter(|c| !c.archived)
                .map(|c| c.id.clone()),
        );
    }

    /// The records of earlier pages that share an email with a record of this page.
    fn earlier_duplicates(&mut self, contacts: &[CrmContact]) -> Vec<CrmRecordId> {
        let earlier: HashSet<CrmRecordId> = contacts
            .iter()
            .filter(|c| !c.archived)
            .filter_map(|c| {
                let email = c.email.as_ref()?;
                match self.first_seen.get(email) {
                    Some(id) if *id != c.id => Some(id.clone()),
                    Some(_) => None,
                    None => {
                        self.first_seen.insert(email.clone(), c.id.clone());
                        None
                    }
                }
            })
            .collect();
        earlier.into_iter().collect()
    }
}

impl SyncEngine {
    /// Moves the delta checkpoint to `started - overlap` after a complete full scan whose plan
    /// is durable, unless it is already there or later (a delta that ran meanwhile). Returns
    /// the checkpoint in force.
    async fn checkpoint_after_full(
        &self,
        tenant: &TenantId,
        started: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<Cursor>, Error> {
        let name = self.source_name();
        let stream = self.options.stream.clone();
        let stored = self.store.checkpoint(tenant, &name, &stream).await?;
        let next = Cursor::at(started - self.options.overlap);
        if stored
            .as_ref()
            .is_some_and(|s| s.modified_at >= next.modified_at)
        {
            return Ok(stored);
        }
        if self
            .store
            .advance_checkpoint(tenant, &name, &stream, stored.as_ref(), &next)
            .await?
        {
            Ok(Some(next))
        } else {
            warn!("checkpoint moved by another worker during the full reconcile; it is kept");
            Ok(self.store.checkpoint(tenant, &name, &stream).await?)
        }
    }
}

/// Records a delta page does not hold but must plan with: the survivors of its merges, and
/// the records linked to the rows its live contacts match by email or alternate email.
fn unread_competitors(contacts: &[CrmContact], view: &StateView) -> Vec<CrmRecordId> {
    let Some(crm) = contacts.first().map(|c| &c.id.crm) else {
        return Vec::new();
    };
    let read: HashSet<&CrmRecordId> = contacts.iter().map(|c| &c.id).collect();
    let mut others: Vec<CrmRecordId> = Vec::new();
    let mut want = |id: &CrmRecordId| {
        if id.crm == *crm && !read.contains(id) && !others.contains(id) {
            others.push(id.clone());
        }
    };
    for c in contacts {
        if c.archived {
            if let Some(w) = &c.merged_into {
                want(w);
            }
            continue;
        }
        for e in c.email.iter().chain(c.alternate_email.iter()) {
            if let Some(linked) = view.by_email(e).and_then(|row| row.crm_id.as_ref())
                && *linked != c.id
            {
                want(linked);
            }
        }
    }
    others.sort();
    others
}

/// One round of [`SyncEngine::with_competitors`]: reads the unread competitors by id, then the
/// rivals of the batch's renames. Returns how many records were added.
async fn read_competitors(
    source: &dyn CrmSource,
    tenant: &TenantId,
    contacts: &mut Vec<CrmContact>,
    view: &StateView,
    searched: &mut HashSet<Email>,
) -> Result<usize, sync_core::Error> {
    let others = unread_competitors(contacts, view);
    let mut added = 0;
    if !others.is_empty() {
        let again = source.get_by_ids(tenant, &others).await?;
        added += again.len();
        contacts.extend(again);
    }
    Ok(added + add_rename_rivals(source, tenant, contacts, view, searched).await?)
}

/// The new emails of the live contacts that rename their row: linked by record id to a row of
/// another email that is not their alternate email (as the planner decides a rename).
fn rename_targets(contacts: &[CrmContact], view: &StateView) -> Vec<Email> {
    let mut emails: Vec<Email> = contacts
        .iter()
        .filter(|c| !c.archived)
        .filter_map(|c| {
            let email = c.email.as_ref()?;
            let row = view.by_crm_id(&c.id)?;
            (row.email != *email && c.alternate_email.as_ref() != Some(&row.email))
                .then(|| email.clone())
        })
        .collect();
    emails.sort();
    emails.dedup();
    emails
}

/// Adds to the batch the live records, not in it yet, whose email is the new email of a
/// contact renaming its row: the planner refuses a rename while another contact of the batch
/// has that email, and that contact may be on another page or unchanged. One search per email
/// not in `searched`; renames are rare, so this costs few calls. Returns how many were added.
async fn add_rename_rivals(
    source: &dyn CrmSource,
    tenant: &TenantId,
    contacts: &mut Vec<CrmContact>,
    view: &StateView,
    searched: &mut HashSet<Email>,
) -> Result<usize, sync_core::Error> {
    let mut added = 0;
    for email in rename_targets(contacts, view) {
        if !searched.insert(email.clone()) {
            continue;
        }
        for c in source.find_by_email(tenant, &email).await? {
            // A record found by its alternate email does not contest the rename.
            if !c.archived
                && c.email.as_ref() == Some(&email)
                && !contacts.iter().any(|o| o.id == c.id)
            {
                contacts.push(c);
                added += 1;
            }
        }
    }
    Ok(added)
}

fn stop(report: &mut RunReport, e: &sync_core::Error) {
    report.stopped = Some(e.to_string());
    if let Some(r) = e.as_remote() {
        report.resume_after = r.resets_at;
        report.credentials_rejected = crate::status::refuses_credentials(r);
    }
}
