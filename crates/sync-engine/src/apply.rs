//! Apply: drain the outbox through the sinks, with batching, bounded parallelism, retries and
//! an audit row per action.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::{self, Either};
use futures::stream::{self, StreamExt};
use tracing::{Instrument, debug, info_span, warn};

use crate::Error;
use crate::report::ReportExt;
use crate::{FailureSample, RunReport, SyncEngine};
use sync_core::plan::{Action, ActionKind, IdempotencyKey};
use sync_core::planner::{RowKey, apply_to_mapping, row_keys};
use sync_core::ports::{
    Activity, AuditEntry, AuditOutcome, BadgeChange, CompanyLink, ContactDraft, FieldUpdate,
    Invite, ItemResult, LeaseHolder, ListMembership, OutboxItem, PropertyUpdate,
};
use sync_core::{CrmRecordId, Mapping, TenantId};

/// Which sink an action goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Lane {
    Store,
    Provision,
    Badges,
    Invites,
    CommunityFields,
    CrmProperties,
    Activities,
    /// Company associations: the whole claim in one sink call, so each domain of it is
    /// looked up and created once (the sink batches its own calls).
    Companies,
    /// List removals (before additions), the whole claim per sink call: the sink resolves
    /// each list once and makes one membership call per list.
    ListRemovals,
    /// List additions, likewise.
    ListAdditions,
    /// An action kind added to sync-core after this engine: it fails (and is retried), so
    /// an upgraded engine applies it.
    Unsupported,
}

fn lane(kind: &ActionKind) -> Lane {
    match kind {
        ActionKind::LinkMapping { .. } => Lane::Store,
        ActionKind::ProvisionCrmContact { .. } => Lane::Provision,
        ActionKind::AssignBadge { .. } | ActionKind::RemoveBadge { .. } => Lane::Badges,
        ActionKind::Invite { .. } => Lane::Invites,
        ActionKind::UpdateCommunityFields { .. } => Lane::CommunityFields,
        ActionKind::UpdateCrmProperties { .. } => Lane::CrmProperties,
        ActionKind::LogActivity { .. } => Lane::Activities,
        ActionKind::AssociateCompany { .. } => Lane::Companies,
        ActionKind::RemoveFromList { .. } => Lane::ListRemovals,
        ActionKind::AddToList { .. } => Lane::ListAdditions,
        _ => Lane::Unsupported,
    }
}

/// The result of one item, with what a successful provision learned. The error is shared:
/// one failed call fails every item of its batch.
type Outcome = (
    OutboxItem,
    Result<Option<sync_core::CrmRecordId>, Arc<Error>>,
);

impl SyncEngine {
    /// Applies every due item of the outbox (pending, or leased by a worker whose lease
    /// expired), then returns what happened. Safe to run from several workers at once.
    pub async fn drain_outbox(&self, tenant: &TenantId) -> Result<RunReport, Error> {
        let this = &self.scoped(tenant).await?;
        let span = info_span!("sync.run", kind = "drain", tenant = %tenant);
        let started = this.clock.now();
        let result = async {
            let before = this.api_calls();
            let mut report = this.drain_outbox_inner(tenant, None).await?;
            this.finish_report(&mut report, &before);
            Ok(report)
        }
        .instrument(span)
        .await;
        this.record_run_end(
            tenant,
            sync_core::ports::RunMode::Drain,
            started,
            result.as_ref(),
        )
        .await;
        result
    }

    /// The drain itself; `outer` is the run it is part of, for progress counts.
    pub(super) async fn drain_outbox_inner(
        &self,
        tenant: &TenantId,
        outer: Option<&RunReport>,
    ) -> Result<RunReport, Error> {
        let mut report = RunReport::new("drain", tenant, self.clock.now());
        let holder = self.holder(tenant).await?;
        loop {
            if self.stop_requested() {
                report.interrupt();
                break;
            }
            let now = self.clock.now();
            let items = self
                .store
                .claim(tenant, &holder, self.claim_limit(), self.options.lease, now)
                .await?;
            if items.is_empty() {
                break;
            }
            let stop = self
                .apply_with_heartbeat(tenant, &holder, items, &mut report)
                .await?;
            self.report_progress(&report, outer, false);
            if stop {
                break;
            }
        }
        report.backlog = Some(self.store.outbox_backlog(tenant, self.clock.now()).await?);
        Ok(report)
    }

    /// Items claimed per round: what the sinks apply at once (a batch per parallel call),
    /// capped by `claim_batch`. A claim never covers work that waits behind other work.
    fn claim_limit(&self) -> usize {
        let batch = [
            self.parts.badge_sink.as_ref().map(|s| s.max_batch()),
            self.parts.crm_sink.as_ref().map(|s| s.max_batch()),
        ]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(100)
        .max(1);
        self.options
            .claim_batch
            .min(batch.saturating_mul(self.options.parallelism.max(1)))
            .max(1)
    }

    /// Applies one claimed round while renewing its leases every third of a lease, so a
    /// slow batch is never taken over by another worker while this one is alive.
    async fn apply_with_heartbeat(
        &self,
        tenant: &TenantId,
        holder: &LeaseHolder,
        items: Vec<OutboxItem>,
        report: &mut RunReport,
    ) -> Result<bool, Error> {
        let keys: Vec<IdempotencyKey> = items.iter().map(|i| i.action.key.clone()).collect();
        let work = self.apply_items(tenant, holder, items, report);
        let beat = self.heartbeat(tenant, holder, &keys);
        futures::pin_mut!(work);
        futures::pin_mut!(beat);
        match future::select(work, beat).await {
            Either::Left((result, _)) => result,
            Either::Right((never, _)) => match never {},
        }
    }

    async fn heartbeat(
        &self,
        tenant: &TenantId,
        holder: &LeaseHolder,
        keys: &[IdempotencyKey],
    ) -> std::convert::Infallible {
        let every = (self.options.lease / 3).max(Duration::from_millis(10));
        loop {
            futures_timer::Delay::new(every).await;
            match self
                .store
                .renew(tenant, holder, keys, self.options.lease, self.clock.now())
                .await
            {
                Ok(held) => debug!(held, "outbox leases renewed"),
                // The next beat tries again; a lease that runs out meanwhile is taken over,
                // and the settle of its item then reports the lease lost.
                Err(e) => warn!(error = %e, "could not renew outbox leases"),
            }
        }
    }

    /// Applies one claimed round. Returns whether the run must stop (quota, credentials).
    async fn apply_items(
        &self,
        tenant: &TenantId,
        holder: &LeaseHolder,
        items: Vec<OutboxItem>,
        report: &mut RunReport,
    ) -> Result<bool, Error> {
        let mut lanes: BTreeMap<Lane, Vec<OutboxItem>> = BTreeMap::new();
        for item in items {
            lanes.entry(lane(&item.action.kind)).or_default().push(item);
        }
        let mut stopped = false;
        // Mapping links first (later actions look rows up by what they set), then the sinks.
        for (lane, items) in lanes {
            if !stopped && self.stop_requested() {
                // Asked to stop: what is not started goes back, claimable at once.
                let keys: Vec<IdempotencyKey> =
                    items.iter().map(|i| i.action.key.clone()).collect();
                let released = self
                    .store
                    .release(tenant, holder, Some(&keys), self.clock.now())
                    .await?;
                report.released += released;
                report.interrupt();
                continue;
            }
            let outcomes = if stopped {
                // Give the rest back untouched: a stopped run must not burn attempts.
                let e = Arc::new(Error::RunStopped(
                    report.stopped.clone().unwrap_or_default(),
                ));
                items
                    .into_iter()
                    .map(|i| (i, Err(Arc::clone(&e))))
                    .collect()
            } else {
                self.run_lane(tenant, lane, items).await
            };
            for (item, result) in outcomes {
                stopped |= self
                    .settle(tenant, holder, item, result, stopped, report)
                    .await?;
            }
        }
        Ok(stopped)
    }

    async fn run_lane(
        &self,
        tenant: &TenantId,
        lane: Lane,
        items: Vec<OutboxItem>,
    ) -> Vec<Outcome> {
        let max = match lane {
            Lane::Badges => self
                .parts
                .badge_sink
                .as_ref()
                .map_or(100, |s| s.max_batch()),
            Lane::Provision | Lane::CrmProperties | Lane::Activities => {
                self.parts.crm_sink.as_ref().map_or(100, |s| s.max_batch())
            }
            Lane::Companies | Lane::ListRemovals | Lane::ListAdditions => items.len(),
            _ => 100,
        }
        .max(1);
        let chunks: Vec<Vec<OutboxItem>> = items.chunks(max).map(<[OutboxItem]>::to_vec).collect();
        let results: Vec<Vec<Outcome>> = stream::iter(chunks)
            .map(|chunk| self.run_chunk(tenant, lane, chunk))
            .buffer_unordered(self.options.parallelism.max(1))
            .collect()
            .await;
        results.into_iter().flatten().collect()
    }

    /// Applies one batch of one lane through its sink; one outcome per item.
    async fn run_chunk(
        &self,
        tenant: &TenantId,
        lane: Lane,
        chunk: Vec<OutboxItem>,
    ) -> Vec<Outcome> {
        let results = self.call_sink(tenant, lane, &chunk).await;
        pair_results(chunk, results)
    }

    /// Converts a batch to its sink's inputs and makes the one call that applies it.
    async fn call_sink(
        &self,
        tenant: &TenantId,
        lane: Lane,
        chunk: &[OutboxItem],
    ) -> Result<Vec<ItemResult<Option<CrmRecordId>>>, Error> {
        match lane {
            // Links touch only the store: nothing to call.
            Lane::Store => Ok(chunk.iter().map(|_| Ok(None)).collect()),
            Lane::Unsupported => Err(Error::Unsupported(
                "an action kind of the outbox".to_owned(),
            )),
            Lane::Badges => {
                let sink = configured(&self.parts.badge_sink, "badge sink")?;
                unit(
                    sink.apply_badges(tenant, &inputs::<BadgeChange>(chunk))
                        .await,
                )
            }
            Lane::Invites => {
                let inviter = configured(&self.parts.inviter, "inviter")?;
                unit(inviter.invite(tenant, &inputs::<Invite>(chunk)).await)
            }
            Lane::CommunityFields => {
                let sink = configured(&self.parts.community_sink, "community sink")?;
                unit(
                    sink.update_fields(tenant, &inputs::<FieldUpdate>(chunk))
                        .await,
                )
            }
            Lane::CrmProperties => {
                let sink = configured(&self.parts.crm_sink, "CRM sink")?;
                unit(
                    sink.update_properties(tenant, &inputs::<PropertyUpdate>(chunk))
                        .await,
                )
            }
            Lane::Activities => {
                let sink = configured(&self.parts.crm_sink, "CRM sink")?;
                unit(
                    sink.log_activities(tenant, &inputs::<Activity>(chunk))
                        .await,
                )
            }
            Lane::Companies => {
                let sink = configured(&self.parts.crm_sink, "CRM sink")?;
                unit(
                    sink.associate_companies(tenant, &inputs::<CompanyLink>(chunk))
                        .await,
                )
            }
            Lane::ListRemovals => {
                let sink = configured(&self.parts.crm_sink, "CRM sink")?;
                unit(
                    sink.remove_from_lists(tenant, &inputs::<ListMembership>(chunk))
                        .await,
                )
            }
            Lane::ListAdditions => {
                let sink = configured(&self.parts.crm_sink, "CRM sink")?;
                unit(
                    sink.add_to_lists(tenant, &inputs::<ListMembership>(chunk))
                        .await,
                )
            }
            Lane::Provision => {
                let sink = configured(&self.parts.crm_sink, "CRM sink")?;
                let provisioned = sink
                    .upsert_contacts(tenant, &inputs::<ContactDraft>(chunk))
                    .await?;
                Ok(provisioned
                    .into_iter()
                    .map(|r| r.map(|p| Some(p.id)))
                    .collect())
            }
        }
    }

    /// Records the outcome of one item: store effect, audit row, outbox status. Returns
    /// whether the error stops the run.
    async fn settle(
        &self,
        tenant: &TenantId,
        worker: &LeaseHolder,
        item: OutboxItem,
        result: Result<Option<CrmRecordId>, Arc<Error>>,
        already_stopped: bool,
        report: &mut RunReport,
    ) -> Result<bool, Error> {
        match result {
            Ok(provisioned) => {
                self.settle_applied(tenant, worker, &item, provisioned, report)
                    .await?;
                Ok(false)
            }
            Err(e) => {
                self.settle_failed(tenant, worker, &item, &e, already_stopped, report)
                    .await
            }
        }
    }

    /// An applied item: its effect on the mapping table, its audit row, and done.
    async fn settle_applied(
        &self,
        tenant: &TenantId,
        worker: &LeaseHolder,
        item: &OutboxItem,
        provisioned: Option<CrmRecordId>,
        report: &mut RunReport,
    ) -> Result<(), Error> {
        let now = self.clock.now();
        let action = &item.action;
        let target = action.kind.email().to_string();
        // Badges are shown by name where the configuration names them.
        let badge = action.badge().map(|b| self.config.badge_label(b));
        let (before, after) = self.apply_effect(tenant, action, provisioned, now).await?;
        self.follow_badges(tenant, action, after.as_ref(), now)
            .await?;
        let mut entry = AuditEntry::new(
            now,
            action.kind.name(),
            target,
            AuditOutcome::Applied,
            action.key.clone(),
        );
        entry.detail = badge;
        entry.before = before.and_then(|m| serde_json::to_value(m).ok());
        entry.after = after.and_then(|m| serde_json::to_value(m).ok());
        self.store.append_audit(tenant, &[entry]).await?;
        match self.store.complete(tenant, &action.key, worker, now).await {
            Ok(()) => {
                *report
                    .applied
                    .entry(action.kind.name().to_owned())
                    .or_insert(0) += 1;
            }
            // Another worker took the item after our lease expired: its apply is
            // idempotent by key, so this is only worth a log line.
            Err(sync_core::Error::LeaseLost { .. }) => {
                debug!(key = %action.key, "lease lost after apply")
            }
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }

    /// After this sync granted or removed a badge, or provisioned a contact for a user who
    /// holds badges, queues the write that brings the badge mirror property in line (the
    /// drain that applies this item claims it next).
    async fn follow_badges(
        &self,
        tenant: &TenantId,
        action: &Action,
        after: Option<&Mapping>,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        let Some(row) = after else { return Ok(()) };
        let event = match &action.kind {
            ActionKind::AssignBadge { .. } => "assign_badge",
            ActionKind::RemoveBadge { .. } => "remove_badge",
            ActionKind::ProvisionCrmContact { .. } if !row.badges.is_empty() => {
                "provision_crm_contact"
            }
            _ => return Ok(()),
        };
        if let Some(mirror) = self.badges_mirror(tenant, row, event) {
            self.store.enqueue(tenant, &[mirror], now).await?;
        }
        Ok(())
    }

    /// A failed item: retried later (with backoff, or when the quota resets) or failed for
    /// good, with its audit row and a sample in the report. Returns whether the error stops
    /// the run.
    async fn settle_failed(
        &self,
        tenant: &TenantId,
        worker: &LeaseHolder,
        item: &OutboxItem,
        e: &Error,
        already_stopped: bool,
        report: &mut RunReport,
    ) -> Result<bool, Error> {
        let now = self.clock.now();
        let action = &item.action;
        let target = action.kind.email().to_string();
        let badge = action.badge().map(|b| self.config.badge_label(b));
        let stops = e.stops_run() || already_stopped;
        let retry_at = self.retry_at(e, item, stops, now);
        let message = e.to_string();
        if !already_stopped {
            warn!(key = %action.key, action = action.kind.name(), error = %message, retry = retry_at.is_some(), "action failed");
        }
        let outcome = if retry_at.is_some() {
            AuditOutcome::Failed
        } else {
            AuditOutcome::Rejected
        };
        let mut entry = AuditEntry::new(
            now,
            action.kind.name(),
            target.clone(),
            outcome,
            action.key.clone(),
        );
        entry.detail = Some(match &badge {
            Some(label) => format!("{label}: {message}"),
            None => message.clone(),
        });
        self.store.append_audit(tenant, &[entry]).await?;
        match self
            .store
            .fail(tenant, &action.key, worker, &message, retry_at, now)
            .await
        {
            Ok(()) | Err(sync_core::Error::LeaseLost { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        report.failure(
            FailureSample::new(
                action.key.to_string(),
                action.kind.name(),
                target,
                message.clone(),
                retry_at.is_some(),
            )
            .with_badge(badge),
        );
        if stops && report.stopped.is_none() {
            report.stopped = Some(message);
            if let Some(r) = e.as_remote() {
                report.resume_after = r.resets_at;
                report.credentials_rejected = crate::status::refuses_credentials(r);
            }
        }
        Ok(stops)
    }

    /// When a failed item is tried again: when the quota resets or the server said, else
    /// after the backoff; `None` when it fails for good (not retryable, or out of attempts).
    fn retry_at(
        &self,
        e: &Error,
        item: &OutboxItem,
        stops: bool,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let retryable = stops
            || e.is_retryable()
            || matches!(
                e.as_core(),
                Some(sync_core::Error::Store {
                    retryable: true,
                    ..
                })
            );
        if !retryable || item.attempts >= self.options.max_attempts {
            return None;
        }
        let resets = e.as_remote().and_then(|r| {
            r.resets_at.or_else(|| {
                r.retry_after
                    .and_then(|d| chrono::Duration::from_std(d).ok())
                    .map(|d| now + d)
            })
        });
        let backoff = chrono::Duration::from_std(self.options.retry_delay(item.attempts))
            .unwrap_or(chrono::Duration::hours(1));
        Some(resets.unwrap_or(now + backoff))
    }

    /// Writes what an applied action changes in the mapping table. Returns the row before and
    /// after, for the audit log.
    async fn apply_effect(
        &self,
        tenant: &TenantId,
        action: &Action,
        provisioned: Option<sync_core::CrmRecordId>,
        now: DateTime<Utc>,
    ) -> Result<(Option<Mapping>, Option<Mapping>), Error> {
        let before = self.row_for(tenant, action).await?;
        let after = match (&action.kind, provisioned) {
            (ActionKind::ProvisionCrmContact { user, email, .. }, Some(id)) => {
                let mut row = before
                    .clone()
                    .unwrap_or_else(|| Mapping::new(email.clone(), now).with_user(user.clone()));
                row.crm_id = Some(id);
                row.cativa_user_id = Some(user.clone());
                row.updated_at = now;
                Some(row)
            }
            _ => apply_to_mapping(action, before.as_ref(), now),
        };
        let Some(after) = after else {
            return Ok((before, None));
        };
        match self.store.put_mapping(tenant, &after).await {
            Ok(()) => {}
            // The row changes both its email and its CRM record (a merge that renames): the
            // replacement rule cannot find it, so replace it explicitly.
            Err(sync_core::Error::UniqueViolation { .. })
                if before.as_ref().is_some_and(|b| b.email != after.email) =>
            {
                if let Some(b) = &before {
                    self.store.delete_mapping(tenant, &b.email).await?;
                }
                self.store.put_mapping(tenant, &after).await?;
            }
            Err(e) => return Err(e.into()),
        }
        Ok((before, Some(after)))
    }

    async fn row_for(&self, tenant: &TenantId, action: &Action) -> Result<Option<Mapping>, Error> {
        for key in row_keys(action) {
            let found = match key {
                RowKey::User(u) => self.store.mapping_by_user(tenant, u).await?,
                RowKey::Email(e) => self.store.mapping_by_email(tenant, e).await?,
                RowKey::Crm(c) => self.store.mapping_by_crm_id(tenant, c).await?,
            };
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }
}

/// The sink inputs of a batch. Every item of a lane converts (lanes are chosen by kind); one
/// that did not would leave the results short, which [`pair_results`] refuses.
fn inputs<T>(chunk: &[OutboxItem]) -> Vec<T>
where
    T: for<'a> TryFrom<&'a Action>,
{
    chunk
        .iter()
        .filter_map(|i| {
            if i.requeues == 0 {
                return T::try_from(&i.action).ok();
            }
            // A requeued item goes out under a new key (the store keeps the original).
            let mut wire = i.action.clone();
            wire.key = i.action.key.requeued(i.requeues);
            T::try_from(&wire).ok()
        })
        .collect()
}

/// The configured piece, or why the action cannot be applied.
fn configured<'a, T: ?Sized>(piece: &'a Option<Arc<T>>, what: &str) -> Result<&'a Arc<T>, Error> {
    piece
        .as_ref()
        .ok_or_else(|| Error::NotConfigured(format!("no {what}: the action cannot be applied")))
}

/// Pairs each item with its result; a call that failed as a whole fails every item with the
/// same (shared) error.
fn pair_results(
    chunk: Vec<OutboxItem>,
    results: Result<Vec<ItemResult<Option<CrmRecordId>>>, Error>,
) -> Vec<Outcome> {
    let e = match results {
        Ok(results) if results.len() == chunk.len() => {
            return chunk
                .into_iter()
                .zip(results)
                .map(|(i, r)| (i, r.map_err(|e| Arc::new(Error::from(e)))))
                .collect();
        }
        // A sink that breaks the one-result-per-input contract: nothing can be said about any
        // item, so none is treated as applied.
        Ok(results) => Error::from(sync_core::RemoteError::new(
            "sink",
            sync_core::RemoteErrorKind::Decode,
            format!(
                "sink returned {} results for {} items",
                results.len(),
                chunk.len()
            ),
        )),
        Err(e) => e,
    };
    let e = Arc::new(e);
    chunk
        .into_iter()
        .map(|i| (i, Err(Arc::clone(&e))))
        .collect()
}

/// The results of a sink call that learns nothing per item.
fn unit(
    r: Result<Vec<ItemResult<()>>, sync_core::Error>,
) -> Result<Vec<ItemResult<Option<CrmRecordId>>>, Error> {
    r.map(|rs| rs.into_iter().map(|x| x.map(|()| None)).collect())
        .map_err(Error::from)
}
