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
    Activity, AuditEntry, AuditOutcome, BadgeChange, BadgeOp, ContactDraft, FieldUpdate, Invite,
    ItemResult, LeaseHolder, OutboxItem, PropertyUpdate,
};
use sync_core::{Mapping, TenantId};

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
        let span = info_span!("sync.run", kind = "drain", tenant = %tenant);
        async {
            let before = self.api_calls();
            let mut report = self.drain_outbox_inner(tenant).await?;
            self.finish_report(&mut report, &before);
            Ok(report)
        }
        .instrument(span)
        .await
    }

    pub(super) async fn drain_outbox_inner(&self, tenant: &TenantId) -> Result<RunReport, Error> {
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
            self.badge_sink.as_ref().map(|s| s.max_batch()),
            self.crm_sink.as_ref().map(|s| s.max_batch()),
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
            Lane::Badges => self.badge_sink.as_ref().map_or(100, |s| s.max_batch()),
            Lane::Provision | Lane::CrmProperties | Lane::Activities => {
                self.crm_sink.as_ref().map_or(100, |s| s.max_batch())
            }
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

    async fn run_chunk(
        &self,
        tenant: &TenantId,
        lane: Lane,
        chunk: Vec<OutboxItem>,
    ) -> Vec<Outcome> {
        let missing =
            |what: &str| Error::NotConfigured(format!("no {what}: the action cannot be applied"));
        let results: Result<Vec<ItemResult<Option<sync_core::CrmRecordId>>>, Error> = match lane {
            // Links touch only the store: nothing to call.
            Lane::Store => Ok(chunk.iter().map(|_| Ok(None)).collect()),
            Lane::Unsupported => Err(Error::Unsupported(
                "an action kind of the outbox".to_owned(),
            )),
            Lane::Badges => match &self.badge_sink {
                None => Err(missing("badge sink")),
                Some(sink) => {
                    let changes: Vec<BadgeChange> = chunk
                        .iter()
                        .filter_map(|i| badge_change(&i.action))
                        .collect();
                    unit(sink.apply_badges(tenant, &changes).await)
                }
            },
            Lane::Invites => match &self.inviter {
                None => Err(missing("inviter")),
                Some(inviter) => {
                    let invites: Vec<Invite> = chunk
                        .iter()
                        .filter_map(|i| match &i.action.kind {
                            ActionKind::Invite {
                                email,
                                crm_id,
                                badges,
                            } => Some(Invite::new(
                                email.clone(),
                                crm_id.clone(),
                                badges.clone(),
                                i.action.key.clone(),
                            )),
                            _ => None,
                        })
                        .collect();
                    unit(inviter.invite(tenant, &invites).await)
                }
            },
            Lane::CommunityFields => match &self.community_sink {
                None => Err(missing("community sink")),
                Some(sink) => {
                    let updates: Vec<FieldUpdate> = chunk
                        .iter()
                        .filter_map(|i| match &i.action.kind {
                            ActionKind::UpdateCommunityFields {
                                user,
                                email,
                                fields,
                            } => Some(FieldUpdate::new(
                                user.clone(),
                                email.clone(),
                                fields.clone(),
                                i.action.key.clone(),
                            )),
                            _ => None,
                        })
                        .collect();
                    unit(sink.update_fields(tenant, &updates).await)
                }
            },
            Lane::CrmProperties => match &self.crm_sink {
                None => Err(missing("CRM sink")),
                Some(sink) => {
                    let updates: Vec<PropertyUpdate> = chunk
                        .iter()
                        .filter_map(|i| match &i.action.kind {
                            ActionKind::UpdateCrmProperties {
                                crm_id, properties, ..
                            } => Some(PropertyUpdate::new(
                                crm_id.clone(),
                                properties.clone(),
                                i.action.key.clone(),
                            )),
                            _ => None,
                        })
                        .collect();
                    unit(sink.update_properties(tenant, &updates).await)
                }
            },
            Lane::Activities => match &self.crm_sink {
                None => Err(missing("CRM sink")),
                Some(sink) => {
                    let activities: Vec<Activity> = chunk
                        .iter()
                        .filter_map(|i| match &i.action.kind {
                            ActionKind::LogActivity {
                                crm_id,
                                subject,
                                body,
                                occurred_at,
                                ..
                            } => Some(Activity::new(
                                crm_id.clone(),
                                subject.clone(),
                                body.clone(),
                                *occurred_at,
                                i.action.key.clone(),
                            )),
                            _ => None,
                        })
                        .collect();
                    unit(sink.log_activities(tenant, &activities).await)
                }
            },
            Lane::Provision => match &self.crm_sink {
                None => Err(missing("CRM sink")),
                Some(sink) => {
                    let drafts: Vec<ContactDraft> = chunk
                        .iter()
                        .filter_map(|i| match &i.action.kind {
                            ActionKind::ProvisionCrmContact {
                                user,
                                email,
                                properties,
                            } => Some(ContactDraft::new(
                                email.clone(),
                                Some(user.clone()),
                                properties.clone(),
                                i.action.key.clone(),
                            )),
                            _ => None,
                        })
                        .collect();
                    sink.upsert_contacts(tenant, &drafts)
                        .await
                        .map(|rs| rs.into_iter().map(|r| r.map(|p| Some(p.id))).collect())
                        .map_err(Error::from)
                }
            },
        };
        match results {
            Ok(results) if results.len() == chunk.len() => chunk
                .into_iter()
                .zip(results)
                .map(|(i, r)| (i, r.map_err(|e| Arc::new(Error::from(e)))))
                .collect(),
            Ok(results) => {
                // A sink that breaks the one-result-per-input contract: nothing can be said
                // about any item, so none is treated as applied.
                let e = Error::from(sync_core::RemoteError::new(
                    "sink",
                    sync_core::RemoteErrorKind::Decode,
                    format!(
                        "sink returned {} results for {} items",
                        results.len(),
                        chunk.len()
                    ),
                ));
                let e = Arc::new(e);
                chunk
                    .into_iter()
                    .map(|i| (i, Err(Arc::clone(&e))))
                    .collect()
            }
            Err(e) => {
                let e = Arc::new(e);
                chunk
                    .into_iter()
                    .map(|i| (i, Err(Arc::clone(&e))))
                    .collect()
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
        result: Result<Option<sync_core::CrmRecordId>, Arc<Error>>,
        already_stopped: bool,
        report: &mut RunReport,
    ) -> Result<bool, Error> {
        let now = self.clock.now();
        let action = &item.action;
        let target = action.kind.email().to_string();
        // Badges are shown by name where the configuration names them.
        let badge = action.badge().map(|b| self.config.badge_label(b));
        match result {
            Ok(provisioned) => {
                let (before, after) = self.apply_effect(tenant, action, provisioned, now).await?;
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
                Ok(false)
            }
            Err(e) => {
                let stops = e.stops_run() || already_stopped;
                let retryable = stops
                    || e.is_retryable()
                    || matches!(
                        e.as_core(),
                        Some(sync_core::Error::Store {
                            retryable: true,
                            ..
                        })
                    );
                let out_of_attempts = item.attempts >= self.options.max_attempts;
                let retry_at: Option<DateTime<Utc>> = if retryable && !out_of_attempts {
                    let resets = e.as_remote().and_then(|r| {
                        r.resets_at.or_else(|| {
                            r.retry_after
                                .and_then(|d| chrono::Duration::from_std(d).ok())
                                .map(|d| now + d)
                        })
                    });
                    let backoff =
                        chrono::Duration::from_std(self.options.retry_delay(item.attempts))
                            .unwrap_or(chrono::Duration::hours(1));
                    Some(resets.unwrap_or(now + backoff))
                } else {
                    None
                };
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
                    }
                }
                Ok(stops)
            }
        }
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

fn badge_change(action: &Action) -> Option<BadgeChange> {
    match &action.kind {
        ActionKind::AssignBadge {
            user, email, badge, ..
        } => Some(BadgeChange::new(
            user.clone(),
            email.clone(),
            badge.clone(),
            BadgeOp::Assign,
            action.key.clone(),
        )),
        ActionKind::RemoveBadge {
            user, email, badge, ..
        } => Some(BadgeChange::new(
            user.clone(),
            email.clone(),
            badge.clone(),
            BadgeOp::Remove,
            action.key.clone(),
        )),
        _ => None,
    }
}

fn unit(
    r: Result<Vec<ItemResult<()>>, sync_core::Error>,
) -> Result<Vec<ItemResult<Option<sync_core::CrmRecordId>>>, Error> {
    r.map(|rs| rs.into_iter().map(|x| x.map(|()| None)).collect())
        .map_err(Error::from)
}
