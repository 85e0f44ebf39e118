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
