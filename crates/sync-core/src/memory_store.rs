//! An in-memory implementation of every store trait: for tests, examples and small
//! single-process deployments that can afford to lose state on restart. Behind the
//! `test-util` feature.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::{CativaUserId, CrmRecordId, Cursor, Email, Mapping, TenantId};
use crate::error::Error;
use crate::plan::{Action, IdempotencyKey};
use crate::planner::StateView;
use crate::ports::{
    AuditEntry, AuditLog, CheckpointStore, CredentialsCheck, DeliveryLedger, Dismissal,
    FailedFilter, FailedItem, LastRun, LeaderLease, LeaseHolder, MappingStore, OperatorAction,
    Outbox, OutboxBacklog, OutboxCounts, OutboxItem, OutboxStatus, Registration, Requeue, RunMode,
    RunOutcome, RunRecord, StatusStore, WebhookCounts, WebhookOutcome, hour_bucket,
};

mod credentials;
mod purge;

#[derive(Debug, Default)]
struct TenantState {
    mappings: StateView,
    checkpoints: HashMap<(String, String), Cursor>,
    deliveries: HashMap<String, DateTime<Utc>>,
    outbox: BTreeMap<u64, OutboxItem>,
    outbox_keys: HashMap<IdempotencyKey, u64>,
    /// When each done item (by seq) was completed: what [`Outbox::purge_done`] compares.
    done_at: HashMap<u64, DateTime<Utc>>,
    next_seq: u64,
    audit: Vec<AuditEntry>,
    leases: HashMap<String, (String, DateTime<Utc>)>,
    /// The latest incarnation of each instance id.
    workers: HashMap<String, u64>,
    /// When each failed item (by seq) was failed for good.
    failed_at: HashMap<u64, DateTime<Utc>>,
    /// Dismissed failed items (by seq).
    dismissed: HashMap<u64, Dismissal>,
    /// Operator actions, oldest first.
    operator: Vec<OperatorAction>,
    /// The last run of each mode.
    runs: BTreeMap<RunMode, LastRun>,
    /// The last credentials check.
    credentials: Option<CredentialsCheck>,
    /// Webhook deliveries per (hour bucket, outcome, refusal reason).
    webhooks: BTreeMap<(DateTime<Utc>, &'static str, String), u64>,
    /// CRM credentials by CRM name (see `memory_store/credentials.rs`).
    crm_credentials: BTreeMap<String, crate::ports::TenantCredentials>,
}

impl TenantState {
    /// Whether a newer incarnation of the holder's instance id registered.
    fn superseded(&self, holder: &LeaseHolder) -> bool {
        self.workers
            .get(&holder.worker)
            .is_some_and(|latest| *latest > holder.incarnation)
    }
}

fn held_by(item: &OutboxItem, holder: &LeaseHolder) -> bool {
    item.status == OutboxStatus::InFlight
        && item.leased_by.as_deref() == Some(holder.worker.as_str())
        && item.lease_incarnation == Some(holder.incarnation)
}

/// Back to pending, claimable at once; the claim does not count as an attempt.
fn give_back(item: &mut OutboxItem) {
    item.status = OutboxStatus::Pending;
    item.leased_by = None;
    item.lease_incarnation = None;
    item.lease_until = None;
    item.attempts = item.attempts.saturating_sub(1);
}

/// Every store trait over in-process maps behind one mutex (never held across an await).
///
/// It has exactly the semantics of the durable stores (the same conformance suite runs
/// against it), without the durability.
#[derive(Debug, Default)]
pub struct MemoryStore {
    tenants: Mutex<HashMap<TenantId, TenantState>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<TenantId, TenantState>> {
        // A panic in another thread while holding the lock leaves consistent maps (every
        // mutation below is a single insert or replace), so poisoning is safe to ignore.
        self.tenants.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn with<R>(
        &self,
        tenant: &TenantId,
        f: impl FnOnce(&mut TenantState) -> R,
    ) -> Result<R, Error> {
        if tenant.as_str().is_empty() {
            return Err(Error::UnknownTenant(tenant.clone()));
        }
        let mut guard = self.lock();
        Ok(f(guard.entry(tenant.clone()).or_default()))
    }
}

fn lease_expired(item: &OutboxItem, now: DateTime<Utc>) -> bool {
    item.lease_until.is_none_or(|until| until <= now)
}

/// `now + d`, saturating at the latest representable time (a lease "forever" must not
/// overflow).
fn deadline(now: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

#[async_trait]
impl MappingStore for MemoryStore {
    async fn mapping_by_email(
        &self,
        tenant: &TenantId,
        email: &Email,
    ) -> Result<Option<Mapping>, Error> {
        self.with(tenant, |t| t.mappings.by_email(email).cloned())
    }

    async fn mapping_by_crm_id(
        &self,
        tenant: &TenantId,
        crm_id: &CrmRecordId,
    ) -> Result<Option<Mapping>, Error> {
        self.with(tenant, |t| t.mappings.by_crm_id(crm_id).cloned())
    }

    async fn mapping_by_user(
        &self,
        tenant: &TenantId,
        user: &CativaUserId,
    ) -> Result<Option<Mapping>, Error> {
        self.with(tenant, |t| t.mappings.by_user(user).cloned())
    }

    async fn put_mapping(&self, tenant: &TenantId, mapping: &Mapping) -> Result<(), Error> {
        self.put_mappings(tenant, std::slice::from_ref(mapping))
            .await
    }

    async fn put_mappings(&self, tenant: &TenantId, mappings: &[Mapping]) -> Result<(), Error> {
        self.with(tenant, |t| {
            // All or nothing: apply to a copy, swap in on success.
            let mut next = t.mappings.clone();
            for m in mappings {
                if !next.put(m.clone()) {
                    return Err(Error::UniqueViolation {
                        tenant: tenant.clone(),
                        detail: format!(
                            "email {}, crm id {:?} and user {:?} belong to different mapping rows",
                            m.email,
                            m.crm_id.as_ref().map(ToString::to_string),
                            m.cativa_user_id.as_ref().map(ToString::to_string)
                        ),
                    });
                }
            }
            t.mappings = next;
            Ok(())
        })?
    }

    async fn delete_mapping(&self, tenant: &TenantId, email: &Email) -> Result<bool, Error> {
        self.with(tenant, |t| {
            let had = t.mappings.by_email(email).is_some();
            if had {
                let rows: Vec<Mapping> = t
                    .mappings
                    .rows()
                    .filter(|m| m.email != *email)
                    .cloned()
                    .collect();
                t.mappings = StateView::new(rows);
            }
            had
        })
    }

    async fn list_mappings(
        &self,
        tenant: &TenantId,
        after: Option<&Email>,
        limit: usize,
    ) -> Result<Vec<Mapping>, Error> {
        self.with(tenant, |t| {
            let mut rows: Vec<&Mapping> = t
                .mappings
                .rows()
                .filter(|m| after.is_none_or(|a| m.email > *a))
                .collect();
            rows.sort_by(|a, b| a.email.cmp(&b.email));
            rows.into_iter().take(limit).cloned().collect()
        })
    }

    async fn count_mappings(&self, tenant: &TenantId) -> Result<u64, Error> {
        self.with(tenant, |t| t.mappings.len() as u64)
    }

    async fn load_full_view(&self, tenant: &TenantId) -> Result<StateView, Error> {
        self.with(tenant, |t| t.mappings.clone())
    }
}

#[async_trait]
impl CheckpointStore for MemoryStore {
    async fn checkpoint(
        &self,
        tenant: &TenantId,
        source: &str,
        stream: &str,
    ) -> Result<Option<Cursor>, Error> {
        self.with(tenant, |t| {
            t.checkpoints
                .get(&(source.to_owned(), stream.to_owned()))
                .cloned()
        })
    }

    async fn advance_checkpoint(
        &self,
        tenant: &TenantId,
        source: &str,
        stream: &str,
        expected: Option<&Cursor>,
        next: &Cursor,
    ) -> Result<bool, Error> {
        self.with(tenant, |t| {
            let key = (source.to_owned(), stream.to_owned());
            let current = t.checkpoints.get(&key);
            if current != expected || current.is_some_and(|c| next < c) {
                return false;
            }
            t.checkpoints.insert(key, next.clone());
            true
        })
    }
}

// Deliveries are committed with the default calls, under the engine's delivery lease.
impl crate::ports::DeliveryCommitter for MemoryStore {}

#[async_trait]
impl DeliveryLedger for MemoryStore {
    async fn record_delivery(
        &self,
        tenant: &TenantId,
        delivery_id: &str,
        received_at: DateTime<Utc>,
    ) -> Result<bool, Error> {
        self.with(tenant, |t| {
            if t.deliveries.contains_key(delivery_id) {
                false
            } else {
                t.deliveries.insert(delivery_id.to_owned(), received_at);
                true
            }
        })
    }

    async fn has_delivery(&self, tenant: &TenantId, delivery_id: &str) -> Result<bool, Error> {
        self.with(tenant, |t| t.deliveries.contains_key(delivery_id))
    }

    async fn purge_deliveries(
        &self,
        tenant: &TenantId,
        older_than: DateTime<Utc>,
        limit: usize,
    ) -> Result<u64, Error> {
        self.with(tenant, |t| {
            let mut expired: Vec<(DateTime<Utc>, String)> = t
                .deliveries
                .iter()
                .filter(|(_, at)| **at < older_than)
                .map(|(id, at)| (*at, id.clone()))
                .collect();
            expired.sort_unstable();
            expired.truncate(limit);
            for (_, id) in &expired {
                t.deliveries.remove(id);
            }
            expired.len() as u64
        })
    }
}

#[async_trait]
impl Outbox for MemoryStore {
    async fn enqueue(
        &self,
        tenant: &TenantId,
        actions: &[Action],
        now: DateTime<Utc>,
    ) -> Result<u64, Error> {
        self.with(tenant, |t| {
            let mut added = 0;
            for action in actions {
                if t.outbox_keys.contains_key(&action.key) {
                    continue;
                }
                let seq = t.next_seq;
                t.next_seq += 1;
                t.outbox_keys.insert(action.key.clone(), seq);
                t.outbox.insert(seq, OutboxItem::new(action.clone(), now));
                added += 1;
            }
            added
        })
    }

    async fn register_worker(
        &self,
        tenant: &TenantId,
        worker: &str,
        _now: DateTime<Utc>,
    ) -> Result<Registration, Error> {
        self.with(tenant, |t| {
            let incarnation = t.workers.get(worker).copied().unwrap_or(0) + 1;
            t.workers.insert(worker.to_owned(), incarnation);
            let mut taken_back = 0;
            for item in t.outbox.values_mut() {
                if item.status == OutboxStatus::InFlight
                    && item.leased_by.as_deref() == Some(worker)
                    && item.lease_incarnation.is_some_and(|n| n < incarnation)
                {
                    give_back(item);
                    taken_back += 1;
                }
            }
            Registration {
                holder: LeaseHolder::new(worker, incarnation),
                taken_back,
            }
        })
    }

    async fn claim(
        &self,
        tenant: &TenantId,
        holder: &LeaseHolder,
        limit: usize,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<Vec<OutboxItem>, Error> {
        let until = deadline(now, lease);
        self.with(tenant, |t| {
            if t.superseded(holder) {
                return Err(Error::Superseded {
                    worker: holder.worker.clone(),
                    incarnation: holder.incarnation,
                });
            }
            let mut claimed = Vec::new();
            for item in t.outbox.values_mut() {
                if claimed.len() >= limit {
                    break;
                }
                let due = match item.status {
                    OutboxStatus::Pending => item.not_before.is_none_or(|nb| nb <= now),
                    OutboxStatus::InFlight => lease_expired(item, now),
                    OutboxStatus::Done | OutboxStatus::Failed => false,
                };
                if due {
                    item.status = OutboxStatus::InFlight;
                    item.leased_by = Some(holder.worker.clone());
                    item.lease_incarnation = Some(holder.incarnation);
                    item.lease_until = Some(until);
                    item.attempts += 1;
                    claimed.push(item.clone());
                }
            }
            Ok(claimed)
        })?
    }

    async fn renew(
        &self,
        tenant: &TenantId,
        holder: &LeaseHolder,
        keys: &[IdempotencyKey],
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<u64, Error> {
        let until = deadline(now, lease);
        self.with(tenant, |t| {
            let mut renewed = 0;
            for key in keys {
                if let Some(item) = t.outbox_keys.get(key).and_then(|seq| t.outbox.get_mut(seq))
                    && held_by(item, holder)
                {
                    item.lease_until = Some(until);
                    renewed += 1;
                }
            }
            renewed
        })
    }

    async fn release(
        &self,
        tenant: &TenantId,
        holder: &LeaseHolder,
        keys: Option<&[IdempotencyKey]>,
        _now: DateTime<Utc>,
    ) -> Result<u64, Error> {
        self.with(tenant, |t| {
            let mut released = 0;
            match keys {
                Some(keys) => {
                    for key in keys {
                        if let Some(item) =
                            t.outbox_keys.get(key).and_then(|seq| t.outbox.get_mut(seq))
                            && held_by(item, holder)
                        {
                            give_back(item);
                            released += 1;
                        }
                    }
                }
                None => {
                    for item in t.outbox.values_mut() {
                        if held_by(item, holder) {
                            give_back(item);
                            released += 1;
                        }
                    }
                }
            }
            released
        })
    }

    async fn complete(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
        holder: &LeaseHolder,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        self.with(tenant, |t| {
            let seq = t.outbox_keys.get(key).copied();
            let item = seq.and_then(|seq| t.outbox.get_mut(&seq).map(|item| (seq, item)));
            match item {
                Some((seq, item)) if held_by(item, holder) => {
                    t.done_at.insert(seq, now);
                    item.status = OutboxStatus::Done;
                    item.leased_by = None;
                    item.lease_incarnation = None;
                    item.lease_until = None;
                    Ok(())
                }
                _ => Err(Error::LeaseLost {
                    key: key.to_string(),
                    worker: holder.to_string(),
                }),
            }
        })?
    }

    async fn fail(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
        holder: &LeaseHolder,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        self.with(tenant, |t| {
            let seq = t.outbox_keys.get(key).copied();
            if retry_at.is_none()
                && seq.is_some_and(|s| t.outbox.get(&s).is_some_and(|i| held_by(i, holder)))
            {
                t.failed_at.extend(seq.map(|s| (s, now)));
            }
            let item = seq.and_then(|seq| t.outbox.get_mut(&seq));
            match item {
                Some(item) if held_by(item, holder) => {
                    item.last_error = Some(error.to_owned());
                    item.leased_by = None;
                    item.lease_incarnation = None;
                    item.lease_until = None;
                    match retry_at {
                        Some(at) => {
                            item.status = OutboxStatus::Pending;
                            item.not_before = Some(at);
                        }
                        None => item.status = OutboxStatus::Failed,
                    }
                    Ok(())
                }
                _ => Err(Error::LeaseLost {
                    key: key.to_string(),
                    worker: holder.to_string(),
                }),
            }
        })?
    }

    async fn outbox_counts(&self, tenant: &TenantId) -> Result<OutboxCounts, Error> {
        self.with(tenant, |t| {
            let mut counts = OutboxCounts::default();
            for (seq, item) in &t.outbox {
                match item.status {
                    OutboxStatus::Pending => counts.pending += 1,
                    OutboxStatus::InFlight => counts.in_flight += 1,
                    OutboxStatus::Done => counts.done += 1,
                    OutboxStatus::Failed if t.dismissed.contains_key(seq) => counts.dismissed += 1,
                    OutboxStatus::Failed => counts.failed += 1,
                }
            }
            counts
        })
    }

    async fn outbox_backlog(
        &self,
        tenant: &TenantId,
        now: DateTime<Utc>,
    ) -> Result<OutboxBacklog, Error> {
        self.with(tenant, |t| {
            let mut b = OutboxBacklog::default();
            for item in t.outbox.values() {
                match item.status {
                    OutboxStatus::Pending => match item.not_before {
                        Some(at) if at > now => {
                            b.retry_later += 1;
                            b.next_retry_at = Some(b.next_retry_at.map_or(at, |n| n.min(at)));
                        }
                        _ => b.pending += 1,
                    },
                    OutboxStatus::InFlight => match item.lease_until {
                        Some(until) if until > now => {
                            b.held_live += 1;
                            b.held_until = Some(b.held_until.map_or(until, |h| h.max(until)));
                        }
                        _ => b.held_expired += 1,
                    },
                    OutboxStatus::Done | OutboxStatus::Failed => {}
                }
            }
            b
        })
    }

    async fn purge_done(
        &self,
        tenant: &TenantId,
        older_than: DateTime<Utc>,
        limit: usize,
    ) -> Result<u64, Error> {
        self.with(tenant, |t| {
            let mut expired: Vec<(DateTime<Utc>, u64)> = t
                .outbox
                .iter()
                .filter(|(_, item)| item.status == OutboxStatus::Done)
                .filter_map(|(seq, _)| t.done_at.get(seq).map(|at| (*at, *seq)))
                .filter(|(at, _)| *at < older_than)
                .collect();
            expired.sort_unstable();
            expired.truncate(limit);
            for (_, seq) in &expired {
                t.done_at.remove(seq);
                if let Some(item) = t.outbox.remove(seq) {
                    t.outbox_keys.remove(&item.action.key);
                }
            }
            expired.len() as u64
        })
    }

    async fn list_outbox(
        &self,
        tenant: &TenantId,
        status: OutboxStatus,
        limit: usize,
    ) -> Result<Vec<OutboxItem>, Error> {
        self.with(tenant, |t| {
            t.outbox
                .values()
                .filter(|i| i.status == status)
                .take(limit)
                .cloned()
                .collect()
        })
    }
}

#[async_trait]
impl AuditLog for MemoryStore {
    async fn append_audit(&self, tenant: &TenantId, entries: &[AuditEntry]) -> Result<(), Error> {
        self.with(tenant, |t| t.audit.extend_from_slice(entries))
    }

    async fn recent_audit(
        &self,
        tenant: &TenantId,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, Error> {
        self.with(tenant, |t| {
            t.audit.iter().rev().take(limit).cloned().collect()
        })
    }

    async fn purge_audit(
        &self,
        tenant: &TenantId,
        older_than: DateTime<Utc>,
        limit: usize,
    ) -> Result<u64, Error> {
        self.with(tenant, |t| {
            // Oldest first by time, then by append order (as the SQL stores' seq).
            let mut expired: Vec<(DateTime<Utc>, usize)> = t
                .audit
                .iter()
                .enumerate()
                .filter(|(_, e)| e.at < older_than)
                .map(|(i, e)| (e.at, i))
                .collect();
            expired.sort_unstable();
            expired.truncate(limit);
            let doomed: std::collections::HashSet<usize> =
                expired.iter().map(|(_, i)| *i).collect();
            let mut index = 0;
            t.audit.retain(|_| {
                let keep = !doomed.contains(&index);
                index += 1;
                keep
            });
            doomed.len() as u64
        })
    }
}

#[async_trait]
impl LeaderLease for MemoryStore {
    async fn try_acquire_lease(
        &self,
        tenant: &TenantId,
        name: &str,
        holder: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<bool, Error> {
        let until = deadline(now, ttl);
        self.with(tenant, |t| match t.leases.get(name) {
            Some((current, expires)) if current != holder && *expires > now => false,
            _ => {
                t.leases.insert(name.to_owned(), (holder.to_owned(), until));
                true
            }
        })
    }

    async fn release_lease(
        &self,
        tenant: &TenantId,
        name: &str,
        holder: &str,
    ) -> Result<(), Error> {
        self.with(tenant, |t| {
            if t.leases.get(name).is_some_and(|(h, _)| h == holder) {
                t.leases.remove(name);
            }
        })
    }
}

impl TenantState {
    /// The failed items matching `filter` (its limit ignored), the earliest failed first.
    fn failed_matching(&self, filter: &FailedFilter) -> Vec<(DateTime<Utc>, u64)> {
        let mut hits: Vec<(DateTime<Utc>, u64)> = self
            .outbox
            .iter()
            .filter(|(_, item)| item.status == OutboxStatus::Failed)
            .map(|(seq, item)| {
                (
                    self.failed_at.get(seq).copied().unwrap_or(item.enqueued_at),
                    *seq,
                    item,
                )
            })
            .filter(|(at, seq, item)| {
                filter.matches(
                    item.action.kind.name(),
                    item.last_error.as_deref(),
                    *at,
                    self.dismissed.contains_key(seq),
                )
            })
            .map(|(at, seq, _)| (at, seq))
            .collect();
        hits.sort_unstable();
        hits
    }

    /// Back to pending, attempts reset, claimable at once; returns its key if it was failed.
    fn requeue(&mut self, seq: u64) -> Option<String> {
        let item = self.outbox.get_mut(&seq)?;
        if item.status != OutboxStatus::Failed {
            return None;
        }
        item.status = OutboxStatus::Pending;
        item.attempts = 0;
        item.requeues += 1;
        item.not_before = None;
        self.failed_at.remove(&seq);
        self.dismissed.remove(&seq);
        Some(item.action.key.to_string())
    }
}

#[async_trait]
impl StatusStore for MemoryStore {
    async fn list_failed(
        &self,
        tenant: &TenantId,
        filter: &FailedFilter,
    ) -> Result<Vec<FailedItem>, Error> {
        self.with(tenant, |t| {
            t.failed_matching(filter)
                .into_iter()
                .take(filter.limit)
                .filter_map(|(at, seq)| {
                    let mut failed = FailedItem {
                        item: t.outbox.get(&seq)?.clone(),
                        failed_at: at,
                        dismissed: None,
                    };
                    failed.dismissed = t.dismissed.get(&seq).cloned();
                    Some(failed)
                })
                .collect()
        })
    }

    async fn requeue_failed(
        &self,
        tenant: &TenantId,
        which: &Requeue,
        actor: &str,
        note: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<u64, Error> {
        self.with(tenant, |t| {
            let seqs: Vec<u64> = match which {
                Requeue::Keys(keys) => keys
                    .iter()
                    .filter_map(|k| t.outbox_keys.get(k).copied())
                    .collect(),
                Requeue::Matching(filter) => {
                    let mut filter = filter.clone();
                    filter.include_dismissed = false;
                    t.failed_matching(&filter)
                        .into_iter()
                        .map(|(_, seq)| seq)
                        .collect()
                }
            };
            let mut keys: Vec<String> = seqs.into_iter().filter_map(|seq| t.requeue(seq)).collect();
            keys.sort();
            let moved = keys.len() as u64;
            t.operator.push(OperatorAction {
                at: now,
                actor: actor.to_owned(),
                action: "requeue".to_owned(),
                keys,
                note: note.map(str::to_owned),
            });
            moved
        })
    }

    async fn dismiss_failed(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
        actor: &str,
        note: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, Error> {
        self.with(tenant, |t| {
            let Some(seq) = t.outbox_keys.get(key).copied() else {
                return false;
            };
            if t.outbox
                .get(&seq)
                .is_none_or(|i| i.status != OutboxStatus::Failed)
            {
                return false;
            }
            t.dismissed.insert(
                seq,
                Dismissal {
                    at: now,
                    by: actor.to_owned(),
                    note: note.to_owned(),
                },
            );
            t.operator.push(OperatorAction {
                at: now,
                actor: actor.to_owned(),
                action: "dismiss".to_owned(),
                keys: vec![key.to_string()],
                note: Some(note.to_owned()),
            });
            true
        })
    }

    async fn operator_actions(
        &self,
        tenant: &TenantId,
        limit: usize,
    ) -> Result<Vec<OperatorAction>, Error> {
        self.with(tenant, |t| {
            t.operator.iter().rev().take(limit).cloned().collect()
        })
    }

    async fn record_run(&self, tenant: &TenantId, run: &RunRecord) -> Result<(), Error> {
        self.with(tenant, |t| {
            let before = t.runs.get(&run.mode).and_then(|r| r.last_ok_at);
            let last_ok_at = if run.outcome == RunOutcome::Ok {
                Some(run.finished_at)
            } else {
                before
            };
            t.runs.insert(
                run.mode,
                LastRun {
                    run: run.clone(),
                    last_ok_at,
                },
            );
        })
    }

    async fn last_runs(&self, tenant: &TenantId) -> Result<Vec<LastRun>, Error> {
        self.with(tenant, |t| t.runs.values().cloned().collect())
    }

    async fn record_credentials_check(
        &self,
        tenant: &TenantId,
        check: &CredentialsCheck,
    ) -> Result<(), Error> {
        self.with(tenant, |t| {
            let known = t.credentials.as_ref().and_then(|c| c.account_id.clone());
            let mut check = check.clone();
            check.account_id = check.account_id.or(known);
            t.credentials = Some(check);
        })
    }

    async fn credentials_check(
        &self,
        tenant: &TenantId,
    ) -> Result<Option<CredentialsCheck>, Error> {
        self.with(tenant, |t| t.credentials.clone())
    }

    async fn record_delivery_outcome(
        &self,
        tenant: &TenantId,
        outcome: WebhookOutcome,
        reason: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<(), Error> {
        self.with(tenant, |t| {
            let key = (
                hour_bucket(at),
                outcome.as_str(),
                reason.unwrap_or_default().to_owned(),
            );
            *t.webhooks.entry(key).or_insert(0) += 1;
        })
    }

    async fn webhook_counts(
        &self,
        tenant: &TenantId,
        since: DateTime<Utc>,
    ) -> Result<WebhookCounts, Error> {
        let from = hour_bucket(since);
        self.with(tenant, |t| {
            let mut counts = WebhookCounts::default();
            for ((bucket, outcome, reason), n) in &t.webhooks {
                if *bucket < from {
                    continue;
                }
                let outcome = match *outcome {
                    "accepted" => WebhookOutcome::Accepted,
                    "duplicate" => WebhookOutcome::Duplicate,
                    _ => WebhookOutcome::Refused,
                };
                counts.add(outcome, reason, *n);
            }
            counts
        })
    }

    async fn purge_webhook_counts(
        &self,
        tenant: &TenantId,
        older_than: DateTime<Utc>,
        limit: usize,
    ) -> Result<u64, Error> {
        let before = hour_bucket(older_than);
        self.with(tenant, |t| {
            // The map is ordered by bucket first: the oldest buckets come first.
            let doomed: Vec<_> = t
                .webhooks
                .keys()
                .take_while(|(bucket, _, _)| *bucket < before)
                .take(limit)
                .cloned()
                .collect();
            for key in &doomed {
                t.webhooks.remove(key);
            }
            doomed.len() as u64
        })
    }

    async fn purge_operator_actions(
        &self,
        tenant: &TenantId,
        older_than: DateTime<Utc>,
        limit: usize,
    ) -> Result<u64, Error> {
        self.with(tenant, |t| {
            // Oldest first by time, then by append order (as the SQL stores' seq).
            let mut expired: Vec<(DateTime<Utc>, usize)> = t
                .operator
                .iter()
                .enumerate()
                .filter(|(_, a)| a.at < older_than)
                .map(|(i, a)| (a.at, i))
                .collect();
            expired.sort_unstable();
            expired.truncate(limit);
            let doomed: std::collections::HashSet<usize> =
                expired.iter().map(|(_, i)| *i).collect();
            let mut index = 0;
            t.operator.retain(|_| {
                let keep = !doomed.contains(&index);
                index += 1;
                keep
            });
            doomed.len() as u64
        })
    }
}
