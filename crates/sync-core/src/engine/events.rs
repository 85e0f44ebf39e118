//! Push: community events (Cativa webhooks) and CRM changes (HubSpot webhooks), verified by
//! the receiving crate, deduplicated here by delivery id, then planned and applied like any
//! other change.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tracing::{Instrument, info_span};

use super::{RunReport, SyncEngine};
use crate::domain::{
    BadgeGrant, BadgeId, CativaUserId, CommunityUser, CrmContact, Email, Mapping, Provenance,
    TenantId,
};
use crate::error::Error;
use crate::plan::{Action, ActionKind, IdempotencyKey, PlanMode, Reason};
use crate::planner::{PlanInput, plan};

/// A community event, in CRM-neutral terms. `cativa-client` turns its typed webhook events
/// into these.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum CommunityEvent {
    /// A user joined the community.
    UserCreated {
        /// The new user.
        user: CommunityUser,
    },
    /// A user received a badge (from anything: paywall, course, admin, or this sync).
    BadgeReceived {
        /// The user.
        user: CativaUserId,
        /// The user's email, when the payload has it.
        email: Option<Email>,
        /// The badge.
        badge: BadgeId,
        /// When.
        at: DateTime<Utc>,
    },
    /// A user joined a group.
    JoinedGroup {
        /// The user.
        user: CativaUserId,
        /// The user's email, when the payload has it.
        email: Option<Email>,
        /// The group (id or name).
        group: String,
        /// When.
        at: DateTime<Utc>,
    },
}

/// What became of a delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
#[non_exhaustive]
pub enum DeliveryOutcome {
    /// New: processed.
    Accepted {
        /// The run report.
        report: Box<RunReport>,
    },
    /// Already processed (a retry or a duplicate): nothing done.
    Duplicate,
}

impl SyncEngine {
    /// Handles one community event delivery: a delivery id already in the ledger is
    /// acknowledged and ignored; otherwise the mapping table is updated, what follows is
    /// planned (find or create the CRM contact, grant the badges the CRM implies, log
    /// activities) and written to the outbox, the delivery id is recorded, and the outbox is
    /// applied. An error before the outbox write leaves the delivery unrecorded, so the
    /// sender's retry is processed.
    pub async fn handle_community_event(
        &self,
        tenant: &TenantId,
        delivery_id: &str,
        event: CommunityEvent,
    ) -> Result<DeliveryOutcome, Error> {
        let span = info_span!("sync.delivery", source = "cativa", tenant = %tenant, delivery_id);
        async {
            let now = self.clock.now();
            if self.store.has_delivery(tenant, delivery_id).await? {
                metrics::counter!("cativa_sync_deliveries_duplicate_total", "source" => "cativa")
                    .increment(1);
                return Ok(DeliveryOutcome::Duplicate);
            }
            let before = self.api_calls();
            let mut report = RunReport::new("community_event", tenant, now);
            let actions = match event {
                CommunityEvent::UserCreated { user } => {
                    self.user_created(tenant, user, &mut report).await?
                }
                CommunityEvent::BadgeReceived {
                    user,
                    email,
                    badge,
                    at,
                } => self.badge_received(tenant, &user, email, badge, at).await?,
                CommunityEvent::JoinedGroup {
                    user,
                    email,
                    group,
                    at,
                } => {
                    self.activity(
                        tenant,
                        &user,
                        email,
                        format!("Joined group {group}"),
                        format!("Joined the community group {group}."),
                        at,
                        &["joined_group", &group],
                    )
                    .await?
                }
            };
            if !actions.is_empty() {
                report.enqueued += self.store.enqueue(tenant, &actions, now).await?;
            }
            for a in &actions {
                *report.planned.entry(a.kind.name().to_owned()).or_insert(0) += 1;
            }
            // Recorded only once the work is durable in the outbox: a failure before this
            // point leaves the delivery unrecorded, so the sender's retry processes it. Two
            // receivers racing on one retry both get here with the same idempotency keys
            // (one effect); the ledger tells exactly one of them the delivery was new.
            if !self.store.record_delivery(tenant, delivery_id, now).await? {
                metrics::counter!("cativa_sync_deliveries_duplicate_total", "source" => "cativa")
                    .increment(1);
                return Ok(DeliveryOutcome::Duplicate);
            }
            // Nothing new for the outbox: earlier items are applied by whoever enqueued them
            // (or the next drain), so this delivery spares the store a claim round.
            if self.options.apply && report.enqueued > 0 {
                let drained = self.drain_outbox_inner(tenant).await?;
                report.absorb_drain(drained);
            }
            self.finish_report(&mut report, &before);
            metrics::counter!("cativa_sync_deliveries_accepted_total", "source" => "cativa")
                .increment(1);
            Ok(DeliveryOutcome::Accepted {
                report: Box::new(report),
            })
        }
        .instrument(span)
        .await
    }

    /// Handles CRM changes pushed by a webhook (after the receiving crate verified it and
    /// fetched the contacts it names; deleted contacts come as archived contacts). Each
    /// delivery id is recorded in the ledger; if all of them were seen before, nothing is done.
    pub async fn handle_crm_contacts(
        &self,
        tenant: &TenantId,
        delivery_ids: &[String],
        contacts: Vec<CrmContact>,
    ) -> Result<DeliveryOutcome, Error> {
        let span = info_span!("sync.delivery", source = "crm", tenant = %tenant, deliveries = delivery_ids.len());
        async {
            let now = self.clock.now();
            let mut seen_all = !delivery_ids.is_empty();
            for id in delivery_ids {
                seen_all &= self.store.has_delivery(tenant, id).await?;
            }
            if seen_all {
                metrics::counter!("cativa_sync_deliveries_duplicate_total", "source" => "crm")
                    .increment(1);
                return Ok(DeliveryOutcome::Duplicate);
            }
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
                let drained = self.drain_outbox_inner(tenant).await?;
                report.absorb_drain(drained);
            }
            if let Some(newest) = contacts.iter().map(|c| c.updated_at).max() {
                report.lag_ms = Some((self.clock.now() - newest).num_milliseconds().max(0));
            }
            self.finish_report(&mut report, &before);
            metrics::counter!("cativa_sync_deliveries_accepted_total", "source" => "crm")
                .increment(1);
            Ok(DeliveryOutcome::Accepted {
                report: Box::new(report),
            })
        }
        .instrument(span)
        .await
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

    async fn user_created(
        &self,
        tenant: &TenantId,
        user: CommunityUser,
        report: &mut RunReport,
    ) -> Result<Vec<Action>, Error> {
        let now = self.clock.now();
        // Record the user: a row invited earlier (same email) or created by a reconcile
        // gains the user id; badges the user already holds are recorded as external.
        let existing = match self.store.mapping_by_user(tenant, &user.id).await? {
            Some(m) => Some(m),
            None => self.store.mapping_by_email(tenant, &user.email).await?,
        };
        let mut row = existing
            .clone()
            .unwrap_or_else(|| Mapping::new(user.email.clone(), now));
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

        let mut actions = Vec::new();
        // The CRM side: grant what the CRM implies right away, or provision the contact.
        let mut contacts = Vec::new();
        if let Some(source) = &self.source {
            contacts = match &row.crm_id {
                Some(id) => source.get_by_ids(tenant, std::slice::from_ref(id)).await?,
                None => source.find_by_email(tenant, &user.email).await?,
            };
            report.read += contacts.len() as u64;
        }
        if contacts.is_empty() && row.crm_id.is_none() && self.crm_sink.is_some() {
            let mut properties = BTreeMap::new();
            properties.insert("email".to_owned(), user.email.to_string());
            for (community, crm) in [
                ("firstName", "firstname"),
                ("lastName", "lastname"),
                ("phone", "phone"),
            ] {
                if let Some(v) = user.profile.field(community) {
                    properties.insert(crm.to_owned(), v.to_owned());
                }
            }
            let key = IdempotencyKey::derive(&[tenant.as_str(), "provision", user.id.as_str()]);
            actions.push(Action::new(
                key,
                ActionKind::ProvisionCrmContact {
                    user: user.id.clone(),
                    email: user.email.clone(),
                    properties,
                },
                Reason::CommunityEvent {
                    event: "user_created".to_owned(),
                },
            ));
        } else {
            self.plan_and_enqueue(tenant, &contacts, report).await?;
            // Both sides hold both ids: stamp the user id on the contact, when it is the one
            // live contact with this email (duplicates are reported by the planner instead).
            let live: Vec<&CrmContact> = contacts.iter().filter(|c| !c.archived).collect();
            if let (Some(prop), [contact], true) = (
                &self.options.crm_user_id_property,
                live.as_slice(),
                self.crm_sink.is_some(),
            ) && contact.properties.get(prop).map(String::as_str) != Some(user.id.as_str())
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

    async fn badge_received(
        &self,
        tenant: &TenantId,
        user: &CativaUserId,
        email: Option<Email>,
        badge: BadgeId,
        at: DateTime<Utc>,
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
        // The echo of this sync's own assignment keeps its Sync provenance; anything else
        // granted it, and the sync must never remove it.
        if row.grant(&badge).is_none() {
            row.put_grant(BadgeGrant::new(
                badge.clone(),
                Provenance::external("cativa"),
                now,
            ));
            row.updated_at = now;
            self.store.put_mapping(tenant, &row).await?;
        }
        let mut actions = self
            .activity(
                tenant,
                user,
                Some(row.email.clone()),
                format!("Received badge {badge}"),
                format!("Received the community badge {badge}."),
                at,
                &["received_badge", badge.as_str()],
            )
            .await?;
        if let (Some(prop), Some(crm_id)) = (&self.options.crm_badges_property, &row.crm_id) {
            let mut badges: Vec<&str> = row.badges.iter().map(|g| g.badge.as_str()).collect();
            badges.sort_unstable();
            let value = badges.join(";");
            let key = IdempotencyKey::derive(&[
                tenant.as_str(),
                "badges_property",
                crm_id.to_string().as_str(),
                &value,
            ]);
            let mut properties = BTreeMap::new();
            properties.insert(prop.clone(), value);
            actions.push(Action::new(
                key,
                ActionKind::UpdateCrmProperties {
                    crm_id: crm_id.clone(),
                    email: row.email.clone(),
                    properties,
                },
                Reason::CommunityEvent {
                    event: "user_received_badge".to_owned(),
                },
            ));
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
        if !self.options.log_activities || self.crm_sink.is_none() {
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
