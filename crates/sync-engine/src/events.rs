//! Push: community events (Cativa webhooks) and CRM changes (HubSpot webhooks), verified by
//! the receiving crate, deduplicated here by delivery id, then planned and applied like any
//! other change.

use std::collections::BTreeMap;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use tracing::{Instrument, info_span};

use crate::Error;
use crate::crm_fields::provision_action;
use crate::report::ReportExt;
use crate::{CommunityEvent, DeliveryOutcome, RunReport, SyncEngine};
use sync_core::plan::{Action, ActionKind, IdempotencyKey, PlanMode, Reason};
use sync_core::planner::{PlanInput, plan};
use sync_core::ports::{DeliveryCommit, DeliveryWrite};
use sync_core::{
    BadgeGrant, BadgeId, CativaUserId, CommunityUser, CrmContact, Email, Mapping, Provenance,
    TenantId,
};

/// The deliveries one engine is handling now, by (tenant, lease name).
#[derive(Debug, Clone, Default)]
pub(crate) struct InFlight(Arc<Mutex<HashSet<(TenantId, String)>>>);

impl InFlight {
    /// Marks a delivery as being handled; `None` when this engine already handles it.
    fn enter(&self, tenant: &TenantId, name: &str) -> Option<InFlightGuard> {
        let key = (tenant.clone(), name.to_owned());
        let mut set = self.0.lock().unwrap_or_else(|e| e.into_inner());
        set.insert(key.clone()).then(|| InFlightGuard {
            set: self.clone(),
            key,
        })
    }
}

/// Unmarks the delivery when dropped, on every path (a cancelled request included).
pub(crate) struct InFlightGuard {
    set: InFlight,
    key: (TenantId, String),
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        let mut set = self.set.0.lock().unwrap_or_else(|e| e.into_inner());
        set.remove(&self.key);
    }
}

/// The result of trying to take a delivery's lease.
enum Claim {
    /// Taken: the store lease's holder (none when the delivery needs no store lease), and
    /// this engine's in-flight mark.
    Won(Option<String>, InFlightGuard),
    /// Not taken: answer this.
    Lost(DeliveryOutcome),
}

impl SyncEngine {
    /// Handles one community event delivery: a delivery id already in the ledger is
    /// acknowledged and ignored; otherwise the mapping table is updated, what follows is
    /// planned (find or create the CRM contact, grant the badges the CRM implies, log
    /// activities) and written to the outbox, the delivery id is recorded, and the outbox is
    /// applied. An error before the outbox write leaves the delivery unrecorded, so the
    /// sender's retry is processed.
    ///
    /// Copies of one delivery racing each other (a retry overlapping the original, or two
    /// receivers) are serialized by a per-delivery lease in the store: only its holder
    /// touches the mapping table and the outbox. The others write nothing and get
    /// [`DeliveryOutcome::Duplicate`] (already recorded) or [`DeliveryOutcome::InProgress`]
    /// (being processed right now: answer so that the sender retries).
    pub async fn handle_community_event(
        &self,
        tenant: &TenantId,
        delivery_id: &str,
        event: CommunityEvent,
    ) -> Result<DeliveryOutcome, Error> {
        let this = &self.scoped(tenant).await?;
        let span = info_span!("sync.delivery", source = "cativa", tenant = %tenant, delivery_id);
        async {
            let ids = [delivery_id.to_owned()];
            // An event that only touches the store is committed in one transaction whose
            // ledger insert decides whether it writes anything (on a store that says so):
            // two copies racing write it once without a store lease. Provisioning reads
            // the CRM first, so a new user keeps the lease.
            let store_lease = matches!(event, CommunityEvent::UserCreated { .. })
                || !this.store.atomic_delivery_commits();
            let claim = this
                .claim_delivery(tenant, &ids, "cativa", store_lease)
                .await?;
            let (holder, _in_flight) = match claim {
                Claim::Won(holder, guard) => (holder, guard),
                Claim::Lost(outcome) => return Ok(outcome),
            };
            let result = this
                .community_event_claimed(tenant, delivery_id, event)
                .await;
            if let Some(holder) = holder {
                this.release_delivery(tenant, &ids, &holder).await;
            }
            result
        }
        .instrument(span)
        .await
    }

    /// [`Self::community_event_work`], recorded as the last event run.
    async fn community_event_claimed(
        &self,
        tenant: &TenantId,
        delivery_id: &str,
        event: CommunityEvent,
    ) -> Result<DeliveryOutcome, Error> {
        let started = self.clock.now();
        let result = self.community_event_work(tenant, delivery_id, event).await;
        self.record_event_end(tenant, started, &result).await;
        result
    }

    /// [`Self::crm_contacts_work`], recorded as the last event run.
    async fn crm_contacts_claimed(
        &self,
        tenant: &TenantId,
        delivery_ids: &[String],
        contacts: Vec<CrmContact>,
    ) -> Result<DeliveryOutcome, Error> {
        let started = self.clock.now();
        let result = self.crm_contacts_work(tenant, delivery_ids, contacts).await;
        self.record_event_end(tenant, started, &result).await;
        result
    }

    /// Records a processed delivery as the last event run (duplicates are not runs).
    async fn record_event_end(
        &self,
        tenant: &TenantId,
        started: chrono::DateTime<chrono::Utc>,
        result: &Result<DeliveryOutcome, Error>,
    ) {
        let mode = sync_core::ports::RunMode::Event;
        match result {
            Ok(DeliveryOutcome::Accepted { report }) => {
                self.record_run_end(tenant, mode, started, Ok(report)).await;
            }
            Ok(_) => {}
            Err(e) => self.record_run_end(tenant, mode, started, Err(e)).await,
        }
    }

    /// The work of [`handle_community_event`](Self::handle_community_event), under the
    /// delivery's lease.
    async fn community_event_work(
        &self,
        tenant: &TenantId,
        delivery_id: &str,
        event: CommunityEvent,
    ) -> Result<DeliveryOutcome, Error> {
        let now = self.clock.now();
        let before = self.api_calls();
        let mut report = RunReport::new("community_event", tenant, now);
        let mut write = DeliveryWrite::new(tenant.clone(), delivery_id, now);
        write.actions = match event {
            CommunityEvent::UserCreated { user } => {
                self.user_created(tenant, user, &mut report).await?
            }
            CommunityEvent::BadgeReceived {
                user,
                email,
                badge,
                at,
            } => {
                let badges = std::slice::from_ref(&badge);
                self.badges_received(tenant, &user, email, badges, true, at, &mut write)
                    .await?
            }
            CommunityEvent::BadgesHeld {
                user,
                email,
                badges,
                at,
            } => {
                self.badges_received(tenant, &user, email, &badges, false, at, &mut write)
                    .await?
            }
            CommunityEvent::JoinedGroup {
                user,
                email,
                group,
                at,
            } => {
                let (subject, body, key) = match &group {
                    Some(g) => (
                        format!("Joined group {g}"),
                        format!("Joined the community group {g}."),
                        g.as_str(),
                    ),
                    None => (
                        "Joined a group".to_owned(),
                        "Joined a community group.".to_owned(),
                        "",
                    ),
                };
                let mut actions = match &group {
                    Some(g) => {
                        self.joined_group_list(
                            tenant,
                            delivery_id,
                            &user,
                            email.as_ref(),
                            g,
                            &mut report,
                        )
                        .await?
                    }
                    None => Vec::new(),
                };
                actions.extend(
                    self.activity(
                        tenant,
                        &user,
                        email,
                        subject,
                        body,
                        at,
                        &["joined_group", key],
                    )
                    .await?,
                );
                actions
            }
            // A kind added to sync-core after this engine: refused before the ledger
            // records it, so the sender's retry is processed by an upgraded engine.
            other => {
                return Err(Error::Unsupported(format!("the community event {other:?}")));
            }
        };
        for a in &write.actions {
            *report.planned.entry(a.kind.name().to_owned()).or_insert(0) += 1;
        }
        // The mapping rows, the outbox items and the ledger row in one store call (grouped
        // with concurrent deliveries): a failure before it leaves the delivery unrecorded,
        // so the sender's retry processes it. The ledger decides: a copy recorded
        // meanwhile (the lease expired mid-way, or no lease was needed) writes nothing.
        match self.group_commit.commit(&self.store, write).await? {
            DeliveryCommit::Recorded { enqueued } => report.enqueued += enqueued,
            _ => {
                metrics::counter!("cativa_sync_deliveries_duplicate_total", "source" => "cativa")
                    .increment(1);
                return Ok(DeliveryOutcome::Duplicate);
            }
        }
        // Nothing new for the outbox: earlier items are applied by whoever enqueued them
        // (or the next drain), so this delivery spares the store a claim round.
        if self.options.apply && report.enqueued > 0 {
            let drained = self.drain_outbox_inner(tenant, Some(&report)).await?;
            report.absorb_drain(drained);
        }
        self.finish_report(&mut report, &before);
        metrics::counter!("cativa_sync_deliveries_accepted_total", "source" => "cativa")
            .increment(1);
        Ok(DeliveryOutcome::Accepted {
            report: Box::new(report),
        })
    }

    /// Handles CRM changes pushed by a webhook (after the receiving crate verified it and
    /// fetched the contacts it names; deleted contacts come as archived contacts). Each
    /// delivery id is recorded in the ledger; if all of them were seen before, nothing is done.
    /// Identical deliveries racing each other are serialized like community events.
    pub async fn handle_crm_contacts(
        &self,
        tenant: &TenantId,
        delivery_ids: &[String],
        contacts: Vec<CrmContact>,
    ) -> Result<DeliveryOutcome, Error> {
        let this = &self.scoped(tenant).await?;
        let span = info_span!("sync.delivery", source = "crm", tenant = %tenant, deliveries = delivery_ids.len());
        async {
            // Without ids there is nothing to deduplicate, so nothing to serialize either.
            if delivery_ids.is_empty() {
                return this
                    .crm_contacts_claimed(tenant, delivery_ids, contacts)
                    .await;
            }
            let (holder, _in_flight) = match this
                .claim_delivery(tenant, delivery_ids, "crm", true)
                .await?
            {
                Claim::Won(holder, guard) => (holder, guard),
                Claim::Lost(outcome) => return Ok(outcome),
            };
            let result = this
                .crm_contacts_claimed(tenant, delivery_ids, contacts)
                .await;
            if let Some(holder) = holder {
                this.release_delivery(tenant, delivery_ids, &holder).await;
            }
            result
        }
        .instrument(span)
        .await
    }

    async fn crm_contacts_work(
        &self,
        tenant: &TenantId,
        delivery_ids: &[String],
        contacts: Vec<CrmContact>,
    ) -> Result<DeliveryOutcome, Error> {
        let now = self.clock.now();
        let before = self.api_calls();
        let mut report = RunReport::new("crm_event", tenant, now);
        report.read = contacts.len() as u64;
        self.plan_and_enqueue(tenant, &contacts, &mut report)
            .await?;
        // As for community events: recorded once the plan is durable.
        let mut fresh = delivery_ids.is_empty();
        for id in delivery_ids {
            fresh |= self.store.record_delivery(tenant, id, now).await?;
        }
        if !fresh {
            metrics::counter!("cativa_sync_deliveries_duplicate_total", "source" => "crm")
                .increment(1);
            return Ok(DeliveryOutcome::Duplicate);
        }
        if self.options.apply {
            let drained = self.drain_outbox_inner(tenant, Some(&report)).await?;
            report.absorb_drain(drained);
        }
        if let Some(newest) = contacts.iter().map(|c| c.updated_at).max() {
            report.lag_ms = Some((self.clock.now() - newest).num_milliseconds().max(0));
        }
        self.finish_report(&mut report, &before);
        metrics::counter!("cativa_sync_deliveries_accepted_total", "source" => "crm").increment(1);
        Ok(DeliveryOutcome::Accepted {
            report: Box::new(report),
        })
    }

    /// Whether every id is already in the ledger (an empty list never is).
    async fn all_seen(&self, tenant: &TenantId, ids: &[String]) -> Result<bool, Error> {
        if ids.is_empty() {
            return Ok(false);
        }
        for id in ids {
            if !self.store.has_delivery(tenant, id).await? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The lease serializing copies of one delivery. A digest, so that any delivery id
    /// (or list of them) makes a short, fixed-size lease name.
    fn delivery_lease(ids: &[String]) -> String {
        let mut sorted: Vec<&str> = ids.iter().map(String::as_str).collect();
        sorted.sort_unstable();
        sorted.dedup();
        format!(
            "delivery:{}",
            IdempotencyKey::derive_with("delivery", &sorted)
        )
    }

    /// Takes the delivery's lease, or says why not: already recorded (`Duplicate`) or
    /// held by another copy being processed now (`InProgress`). A copy that loses writes
    /// nothing: the checks are reads and a refused lease changes no row. Without
    /// `store_lease`, only this engine's in-flight mark is taken.
    async fn claim_delivery(
        &self,
        tenant: &TenantId,
        ids: &[String],
        source: &'static str,
        store_lease: bool,
    ) -> Result<Claim, Error> {
        if self.all_seen(tenant, ids).await? {
            metrics::counter!("cativa_sync_deliveries_duplicate_total", "source" => source)
                .increment(1);
            return Ok(Claim::Lost(DeliveryOutcome::Duplicate));
        }
        let now = self.clock.now();
        let name = Self::delivery_lease(ids);
        // Copies racing inside this engine are turned away here; the store's lease then
        // serializes engines. Its holder is the instance id, so an instance restarted under
        // the same id (after a crash mid-delivery) takes the lease back at once, while
        // another instance waits for it to expire.
        let Some(guard) = self.deliveries_in_flight.enter(tenant, &name) else {
            metrics::counter!("cativa_sync_deliveries_in_progress_total", "source" => source)
                .increment(1);
            return Ok(Claim::Lost(DeliveryOutcome::InProgress));
        };
        if !store_lease {
            return Ok(Claim::Won(None, guard));
        }
        let holder = format!("{}/deliveries", self.options.worker_id);
        if !self
            .store
            .try_acquire_lease(tenant, &name, &holder, self.options.lease, now)
            .await?
        {
            let outcome = if self.all_seen(tenant, ids).await? {
                metrics::counter!("cativa_sync_deliveries_duplicate_total", "source" => source)
                    .increment(1);
                DeliveryOutcome::Duplicate
            } else {
                metrics::counter!("cativa_sync_deliveries_in_progress_total", "source" => source)
                    .increment(1);
                DeliveryOutcome::InProgress
            };
            return Ok(Claim::Lost(outcome));
        }
        // The previous holder may have recorded it between the first check and the lease.
        if self.all_seen(tenant, ids).await? {
            self.release_delivery(tenant, ids, &holder).await;
            metrics::counter!("cativa_sync_deliveries_duplicate_total", "source" => source)
                .increment(1);
            return Ok(Claim::Lost(DeliveryOutcome::Duplicate));
        }
        Ok(Claim::Won(Some(holder), guard))
    }

    /// Gives the delivery's lease up. A failure only delays the sender's next retry until
    /// the lease expires, so it is logged rather than turned into an error.
    async fn release_delivery(&self, tenant: &TenantId, ids: &[String], holder: &str) {
        let name = Self::delivery_lease(ids);
        if let Err(e) = self.store.release_lease(tenant, &name, holder).await {
            tracing::warn!(error = %e, lease = %name, "could not release a delivery lease; it expires by itself");
        }
    }

    async fn plan_and_enqueue(
        &self,
        tenant: &TenantId,
        contacts: &[CrmContact],
        report: &mut RunReport,
    ) -> Result<(), Error> {
        if contacts.is_empty() {
            return Ok(());
        }
        let view = self.view_for(tenant, contacts).await?;
        let now = self.clock.now();
        let p = plan(
            &PlanInput::new(tenant, &self.config, &view, now),
            contacts,
            PlanMode::Delta,
        );
        report.absorb_plan(&p);
        if !p.actions.is_empty() {
            report.enqueued += self.store.enqueue(tenant, &p.actions, now).await?;
        }
        Ok(())
    }

    /// Records a new community user: a row invited earlier (same email) or created by a
    /// reconcile gains the user id; badges the user already holds are recorded as external.
    async fn record_user(&self, tenant: &TenantId, user: &CommunityUser) -> Result<Mapping, Error> {
        let now = self.clock.now();
        let existing = match self.store.mapping_by_user(tenant, &user.id).await? {
            Some(m) => Some(m),
            None => self.store.mapping_by_email(tenant, &user.email).await?,
        };
        let mut row = existing.unwrap_or_else(|| Mapping::new(user.email.clone(), now));
        row.cativa_user_id = Some(user.id.clone());
        let mut profile = row.profile.take().unwrap_or_default();
        profile.fields.extend(user.profile.fields.clone());
        profile.updated_at = user.profile.updated_at.or(user.created_at).or(Some(now));
        row.profile = Some(profile);
        for badge in &user.badges {
            if row.grant(badge).is_none() {
                row.put_grant(BadgeGrant::new(
                    badge.clone(),
                    Provenance::external("cativa"),
                    now,
                ));
            }
        }
        row.updated_at = now;
        self.store.put_mapping(tenant, &row).await?;
        Ok(row)
    }

    async fn user_created(
        &self,
        tenant: &TenantId,
        user: CommunityUser,
        report: &mut RunReport,
    ) -> Result<Vec<Action>, Error> {
        let row = self.record_user(tenant, &user).await?;
        let mut actions = Vec::new();
        // The CRM side: grant what the CRM implies right away, or provision the contact.
        let mut contacts = Vec::new();
        if let Some(source) = &self.parts.source {
            contacts = match &row.crm_id {
                Some(id) => source.get_by_ids(tenant, std::slice::from_ref(id)).await?,
                None => source.find_by_email(tenant, &user.email).await?,
            };
            report.read += contacts.len() as u64;
        }
        if let (true, None, Some(sink)) = (contacts.is_empty(), &row.crm_id, &self.parts.crm_sink) {
            let fields = sink.provisioning_fields();
            actions.push(provision_action(tenant, &user, &fields, &self.config));
        } else {
            self.plan_and_enqueue(tenant, &contacts, report).await?;
            // Both sides hold both ids: stamp the user id on the contact, when it is the one
            // live contact with this email (duplicates are reported by the planner instead).
            let live: Vec<&CrmContact> = contacts.iter().filter(|c| !c.archived).collect();
            if let (Some(prop), [contact]) = (self.user_id_property(), live.as_slice())
                && contact.properties.get(&prop).map(String::as_str) != Some(user.id.as_str())
            {
                let key = IdempotencyKey::derive(&[
                    tenant.as_str(),
                    "stamp_user",
                    &contact.id.to_string(),
                    user.id.as_str(),
                ]);
                let mut properties = BTreeMap::new();
                properties.insert(prop.clone(), user.id.to_string());
                actions.push(Action::new(
                    key,
                    ActionKind::UpdateCrmProperties {
                        crm_id: contact.id.clone(),
                        email: user.email.clone(),
                        properties,
                    },
                    Reason::CommunityEvent {
                        event: "user_created".to_owned(),
                    },
                ));
            }
        }
        Ok(actions)
    }

    /// Records `badges` on the user's row (those not yet there as granted elsewhere: the
    /// echo of this sync's own assignment keeps its Sync provenance), and logs an activity
    /// for each badge received: every one of `badges` when `all_received`, else only those
    /// new to the row. The row is written by the delivery's commit (`write`).
    #[allow(clippy::too_many_arguments)]
    async fn badges_received(
        &self,
        tenant: &TenantId,
        user: &CativaUserId,
        email: Option<Email>,
        badges: &[BadgeId],
        all_received: bool,
        at: DateTime<Utc>,
        write: &mut DeliveryWrite,
    ) -> Result<Vec<Action>, Error> {
        let now = self.clock.now();
        let existing = match self.store.mapping_by_user(tenant, user).await? {
            Some(m) => Some(m),
            None => match &email {
                Some(e) => self.store.mapping_by_email(tenant, e).await?,
                None => None,
            },
        };
        let Some(mut row) = existing.or_else(|| {
            email
                .as_ref()
                .map(|e| Mapping::new(e.clone(), now).with_user(user.clone()))
        }) else {
            return Ok(Vec::new());
        };
        let mut received = Vec::new();
        let mut changed = false;
        for badge in badges {
            if row.grant(badge).is_none() {
                row.put_grant(BadgeGrant::new(
                    badge.clone(),
                    Provenance::external("cativa"),
                    now,
                ));
                changed = true;
                received.push(badge);
            } else if all_received {
                received.push(badge);
            }
        }
        if changed {
            row.updated_at = now;
            write.mappings.push(row.clone());
        }
        let mut actions = Vec::new();
        for badge in received {
            actions.extend(
                self.activity(
                    tenant,
                    user,
                    Some(row.email.clone()),
                    format!("Received badge {badge}"),
                    format!("Received the community badge {badge}."),
                    at,
                    &["received_badge", badge.as_str()],
                )
                .await?,
            );
        }
        // The mirror follows the row: written when this event recorded something new.
        if changed {
            actions.extend(self.badges_mirror(tenant, &row, "user_received_badge"));
        }
        Ok(actions)
    }

    #[allow(clippy::too_many_arguments)]
    async fn activity(
        &self,
        tenant: &TenantId,
        user: &CativaUserId,
        email: Option<Email>,
        subject: String,
        body: String,
        at: DateTime<Utc>,
        key_parts: &[&str],
    ) -> Result<Vec<Action>, Error> {
        if !self.options.log_activities || self.parts.crm_sink.is_none() {
            return Ok(Vec::new());
        }
        let row = match self.store.mapping_by_user(tenant, user).await? {
            Some(m) => Some(m),
            None => match &email {
                Some(e) => self.store.mapping_by_email(tenant, e).await?,
                None => None,
            },
        };
        let Some(row) = row else {
            return Ok(Vec::new());
        };
        let Some(crm_id) = row.crm_id.clone() else {
            return Ok(Vec::new());
        };
        let at_ms = at.timestamp_millis().to_string();
        let mut parts = vec![tenant.as_str(), "activity", user.as_str(), at_ms.as_str()];
        parts.extend_from_slice(key_parts);
        Ok(vec![Action::new(
            IdempotencyKey::derive(&parts),
            ActionKind::LogActivity {
                crm_id,
                email: row.email.clone(),
                subject,
                body,
                occurred_at: at,
            },
            Reason::CommunityEvent {
                event: key_parts.first().copied().unwrap_or("event").to_owned(),
            },
        )])
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use async_trait::async_trait;

    use super::*;
    use sync_core::MemoryStore;
    use sync_core::config::SyncConfig;
    use sync_core::ports::{ContactPage, CrmSource, Outbox, PageToken};
    use sync_core::testkit::MemoryCrm;
    use sync_core::{CrmKind, CrmRecordId, Cursor};

    /// A CRM source that yields before every read, so that concurrent deliveries
    /// interleave, and that does not read the user-id property back (as a source
    /// configured without it), so a copy finding the freshly provisioned contact would
    /// plan to stamp the id on it.
    struct Interleaving(Arc<MemoryCrm>);

    #[async_trait]
    impl CrmSource for Interleaving {
        fn crm(&self) -> CrmKind {
            CrmKind::Hubspot
        }

        async fn changed_since(
            &self,
            tenant: &TenantId,
            since: &Cursor,
            page: Option<&PageToken>,
        ) -> Result<ContactPage, sync_core::Error> {
            tokio::task::yield_now().await;
            self.0.changed_since(tenant, since, page).await
        }

        async fn scan(
            &self,
            tenant: &TenantId,
            page: Option<&PageToken>,
        ) -> Result<ContactPage, sync_core::Error> {
            tokio::task::yield_now().await;
            self.0.scan(tenant, page).await
        }

        async fn get_by_ids(
            &self,
            tenant: &TenantId,
            ids: &[CrmRecordId],
        ) -> Result<Vec<CrmContact>, sync_core::Error> {
            tokio::task::yield_now().await;
            self.0.get_by_ids(tenant, ids).await
        }

        async fn find_by_email(
            &self,
            tenant: &TenantId,
            email: &Email,
        ) -> Result<Vec<CrmContact>, sync_core::Error> {
            tokio::task::yield_now().await;
            let mut found = self.0.find_by_email(tenant, email).await?;
            for c in &mut found {
                c.properties.remove("cativa_user_id");
            }
            Ok(found)
        }
    }

    #[tokio::test]
    async fn concurrent_duplicate_deliveries_queue_exactly_one_effect() {
        let store = Arc::new(MemoryStore::new());
        let crm = Arc::new(MemoryCrm::new(CrmKind::Hubspot, 10));
        let engine = SyncEngine::builder(SyncConfig::default().validate().unwrap(), store.clone())
            .source(Arc::new(Interleaving(crm.clone())))
            .crm_sink(crm.clone())
            .build();
        let tenant = TenantId::new("t");
        let email = Email::parse("race@example.com").unwrap();
        let user = CommunityUser::new(CativaUserId::from("u-race"), email.clone());

        let outcomes = futures::future::join_all((0..50).map(|_| {
            engine.handle_community_event(
                &tenant,
                "exec-race",
                CommunityEvent::UserCreated { user: user.clone() },
            )
        }))
        .await;
        let outcomes: Vec<DeliveryOutcome> = outcomes.into_iter().map(Result::unwrap).collect();
        let accepted = outcomes
            .iter()
            .filter(|o| matches!(o, DeliveryOutcome::Accepted { .. }))
            .count();
        assert_eq!(accepted, 1, "{outcomes:?}");
        assert!(
            outcomes.iter().all(|o| matches!(
                o,
                DeliveryOutcome::Accepted { .. }
                    | DeliveryOutcome::Duplicate
                    | DeliveryOutcome::InProgress
            )),
            "{outcomes:?}"
        );

        let counts = store.outbox_counts(&tenant).await.unwrap();
        assert_eq!(
            counts.pending + counts.in_flight + counts.done + counts.failed,
            1,
            "one delivery, one outbox item: {counts:?}"
        );
        assert_eq!(crm.api_calls().get("write:update_properties"), None);
        assert_eq!(crm.find_by_email(&tenant, &email).await.unwrap().len(), 1);

        // A retry after the fact is a duplicate and queues nothing either.
        let again = engine
            .handle_community_event(&tenant, "exec-race", CommunityEvent::UserCreated { user })
            .await
            .unwrap();
        assert_eq!(again, DeliveryOutcome::Duplicate);
        let after = store.outbox_counts(&tenant).await.unwrap();
        assert_eq!(after, counts);
    }
}
