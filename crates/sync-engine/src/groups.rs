//! Groups as lists in the engine: a `user_joined_group` delivery for a `[groups]` group adds
//! the user's linked contact to the group's list, and a full reconcile compares each group's
//! members (the `CommunityGroups` part) with the memberships the sync added (see
//! crates/sync-core/src/planner/groups.rs).

use sync_core::plan::{Action, ActionKind, IdempotencyKey, PlanMode, Reason};
use sync_core::planner::{GroupMembers, PlanInput, StateView, plan_groups};
use sync_core::{CativaUserId, CrmContact, Email, Plan, RunReport, TenantId};
use tracing::warn;

use crate::{Error, SyncEngine};

impl SyncEngine {
    /// The `add_to_list` action for a user who joined `group`, keyed by the delivery: none
    /// when the group has no list, no CRM sink is configured, or the user has no linked
    /// contact (then the report says so; the next full reconcile adds the contact once it
    /// is linked, when the group's members are known).
    pub(crate) async fn joined_group_list(
        &self,
        tenant: &TenantId,
        delivery_id: &str,
        user: &CativaUserId,
        email: Option<&Email>,
        group: &str,
        report: &mut RunReport,
    ) -> Result<Vec<Action>, Error> {
        let Some(config) = self.config.groups() else {
            return Ok(Vec::new());
        };
        let Some(list) = config.list_for(group) else {
            return Ok(Vec::new());
        };
        if self.parts.crm_sink.is_none() {
            return Ok(Vec::new());
        }
        let row = match self.store.mapping_by_user(tenant, user).await? {
            Some(m) => Some(m),
            None => match email {
                Some(e) => self.store.mapping_by_email(tenant, e).await?,
                None => None,
            },
        };
        let Some((crm_id, row_email)) = row.and_then(|r| r.crm_id.clone().map(|c| (c, r.email)))
        else {
            report.notes.push(format!(
                "user {user} joined group {group} but has no linked CRM contact: not added to list {list:?} (a full reconcile adds it once the contact is linked)"
            ));
            return Ok(Vec::new());
        };
        let key = IdempotencyKey::derive(&[
            tenant.as_str(),
            "add_to_list",
            delivery_id,
            &crm_id.to_string(),
            group,
        ]);
        Ok(vec![Action::new(
            key,
            ActionKind::AddToList {
                crm_id,
                email: row_email,
                group: group.to_owned(),
                list: list.to_owned(),
                provenance_property: config.provenance_property.clone(),
                create_list: config.create_lists,
            },
            Reason::CommunityEvent {
                event: "user_joined_group".to_owned(),
            },
        )])
    }

    /// Each configured group's members for a full reconcile, read once per run. A group
    /// whose members cannot be read (no `CommunityGroups` part, the source does not know,
    /// or the read failed) is `None`, and the report says why nothing is removed from it.
    pub(crate) async fn group_members(
        &self,
        tenant: &TenantId,
        report: &mut RunReport,
    ) -> GroupMembers {
        let mut out = GroupMembers::new();
        let Some(config) = self.config.groups() else {
            return out;
        };
        for entry in &config.lists {
            let members = match &self.parts.community_groups {
                None => Err("no community groups source is configured".to_owned()),
                Some(source) => match source.members(tenant, &entry.group).await {
                    Ok(Some(m)) => Ok(m),
                    Ok(None) => Err("its members are unknown".to_owned()),
                    Err(e) => {
                        warn!(error = %e, group = %entry.group, "could not read a group's members");
                        Err(format!("its members could not be read: {e}"))
                    }
                },
            };
            match members {
                Ok(m) => {
                    out.insert(entry.group.clone(), Some(m));
                }
                Err(why) => {
                    report.notes.push(format!(
                        "group {}: {why}, so list {:?} was not reconciled (nothing removed)",
                        entry.group, entry.list
                    ));
                    out.insert(entry.group.clone(), None);
                }
            }
        }
        out
    }

    /// The group pass of one page of a full reconcile.
    pub(crate) fn plan_page_groups(
        &self,
        tenant: &TenantId,
        view: &StateView,
        contacts: &[CrmContact],
        members: &GroupMembers,
    ) -> Plan {
        let now = self.clock.now();
        plan_groups(
            &PlanInput::new(tenant, &self.config, view, now),
            contacts,
            members,
            PlanMode::FullReconcile {
                scan_complete: false,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::{TimeZone, Utc};
    use sync_core::config::{GroupsConfig, SyncConfig};
    use sync_core::ports::{Outbox, OutboxStatus};
    use sync_core::testkit::MemoryCrm;
    use sync_core::{
        CommunityEvent, CommunityUser, CrmContact, CrmKind, CrmRecordId, DeliveryOutcome,
        MemoryStore,
    };

    use super::*;
    use crate::EngineOptions;

    fn joined(group: Option<&str>) -> CommunityEvent {
        CommunityEvent::JoinedGroup {
            user: "u-1".into(),
            email: Some("jane@example.com".parse().unwrap()),
            group: group.map(str::to_owned),
            at: Utc.timestamp_opt(1_700_000_000, 0).unwrap(),
        }
    }

    fn planned(outcome: &DeliveryOutcome) -> Option<u64> {
        let DeliveryOutcome::Accepted { report } = outcome else {
            panic!("not accepted: {outcome:?}");
        };
        report.planned.get("add_to_list").copied()
    }

    #[tokio::test]
    async fn a_configured_groups_join_queues_one_add_to_list_for_the_linked_contact() {
        let mut raw = SyncConfig::default();
        raw.groups = Some(GroupsConfig::default().with_list("VIP", "Cativa: VIP"));
        let store = Arc::new(MemoryStore::new());
        let crm = Arc::new(MemoryCrm::new(CrmKind::Hubspot, 10));
        let email: Email = "jane@example.com".parse().unwrap();
        crm.put(CrmContact::new(
            CrmRecordId::hubspot("7"),
            Some(email.clone()),
            Utc.timestamp_opt(1_600_000_000, 0).unwrap(),
        ));
        let options = EngineOptions {
            apply: false,
            ..EngineOptions::default()
        };
        let engine = SyncEngine::builder(raw.validate().unwrap(), store.clone())
            .source(crm.clone())
            .crm_sink(crm.clone())
            .options(options)
            .build();
        let tenant = TenantId::new("t");
        let user = CommunityUser::new("u-1".into(), email);
        engine
            .handle_community_event(&tenant, "created", CommunityEvent::UserCreated { user })
            .await
            .unwrap();
        // The link is applied by a drain (apply is off here).
        engine.drain_outbox(&tenant).await.unwrap();

        let first = engine
            .handle_community_event(&tenant, "join-1", joined(Some("VIP")))
            .await
            .unwrap();
        assert_eq!(planned(&first), Some(1));
        let again = engine
            .handle_community_event(&tenant, "join-1", joined(Some("VIP")))
            .await
            .unwrap();
        assert_eq!(again, DeliveryOutcome::Duplicate);
        // An unconfigured group, or none: the activity only.
        for (id, group) in [("join-2", Some("Other")), ("join-3", None)] {
            let o = engine
                .handle_community_event(&tenant, id, joined(group))
                .await
                .unwrap();
            assert_eq!(planned(&o), None);
        }
        let pending = store
            .list_outbox(&tenant, OutboxStatus::Pending, 100)
            .await
            .unwrap();
        let adds: Vec<_> = pending
            .iter()
            .filter(|i| i.action.kind.name() == "add_to_list")
            .collect();
        assert_eq!(adds.len(), 1, "{pending:?}");
        let sync_core::plan::ActionKind::AddToList {
            crm_id,
            list,
            create_list,
            ..
        } = &adds[0].action.kind
        else {
            panic!("not an add_to_list");
        };
        assert_eq!(
            (crm_id, list.as_str(), *create_list),
            (&CrmRecordId::hubspot("7"), "Cativa: VIP", true)
        );
    }
}
