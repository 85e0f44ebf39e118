//! The group pass of a full reconcile: for each `[groups]` list whose members are known
//! (the `CommunityGroups` port), a member whose contact's provenance lacks the group is
//! added, and a contact whose provenance shows the group (the sync added it) but whose user
//! is no longer a member is removed. A membership the provenance does not show, a hand-made
//! one, is never removed; a group whose members are unknown removes nothing.

use std::collections::{BTreeMap, BTreeSet};

use super::{Builder, PlanInput, millis};
use crate::config::{GroupsConfig, parse_group_provenance};
use crate::domain::{CrmContact, Email};
use crate::plan::{ActionKind, Plan, PlanMode, Reason};

/// Each configured group's members, by group name: `None` when they cannot be known.
pub type GroupMembers = BTreeMap<String, Option<BTreeSet<Email>>>;

/// Plans the list memberships of `contacts` (a page of a full scan) against the groups'
/// members. Groups missing from `members`, or known as `None`, are skipped entirely.
pub fn plan_groups(
    input: &PlanInput<'_>,
    contacts: &[CrmContact],
    members: &GroupMembers,
    mode: PlanMode,
) -> Plan {
    let mut builder = Builder::new(input, mode);
    if let Some(config) = input.config.groups() {
        builder.pass_groups(config, contacts, members);
    }
    builder.finish()
}

impl Builder<'_, '_> {
    fn pass_groups(
        &mut self,
        config: &GroupsConfig,
        contacts: &[CrmContact],
        members: &GroupMembers,
    ) {
        for entry in &config.lists {
            let Some(Some(known)) = members.get(&entry.group) else {
                continue;
            };
            for c in contacts {
                if c.archived || c.merged_into.is_some() {
                    continue;
                }
                let Some(email) = &c.email else { continue };
                let row_email = self.input.view.by_crm_id(&c.id).map(|r| &r.email);
                let member = [Some(email), c.alternate_email.as_ref(), row_email]
                    .into_iter()
                    .flatten()
                    .any(|e| known.contains(e));
                let ours = c
                    .property(&config.provenance_property)
                    .map(parse_group_provenance)
                    .unwrap_or_default()
                    .iter()
                    .any(|g| g.eq_ignore_ascii_case(entry.group.trim()));
                let (verb, detail) = match (member, ours) {
                    (true, false) => ("add_to_list", "member of group"),
                    (false, true) => ("remove_from_list", "no longer a member of group"),
                    _ => continue,
                };
                let at = millis(c.updated_at);
                let id = c.id.to_string();
                let (crm_id, email, group, list, provenance_property) = (
                    c.id.clone(),
                    email.clone(),
                    entry.group.clone(),
                    entry.list.clone(),
                    config.provenance_property.clone(),
                );
                let kind = if member {
                    ActionKind::AddToList {
                        crm_id,
                        email,
                        group,
                        list,
                        provenance_property,
                        create_list: config.create_lists,
                    }
                } else {
                    ActionKind::RemoveFromList {
                        crm_id,
                        email,
                        group,
                        list,
                        provenance_property,
                    }
                };
                let reason = Reason::Group {
                    detail: format!("{detail} {}", entry.group),
                };
                self.push(kind, reason, &[verb, &id, &entry.group, &at]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::config::{GroupsConfig, SyncConfig, ValidatedConfig};
    use crate::domain::{CrmRecordId, TenantId};
    use crate::plan::ActionType;
    use crate::planner::StateView;

    fn config() -> ValidatedConfig {
        SyncConfig {
            groups: Some(GroupsConfig::default().with_list("VIP", "Cativa: VIP")),
            ..SyncConfig::default()
        }
        .validate()
        .unwrap()
    }

    fn contact(id: &str, email: &str, provenance: Option<&str>) -> CrmContact {
        let at = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let c = CrmContact::new(CrmRecordId::hubspot(id), Some(email.parse().unwrap()), at);
        match provenance {
            Some(p) => c.with_property("cativa_groups", p),
            None => c,
        }
    }

    fn run(contacts: &[CrmContact], members: Option<&[&str]>) -> Plan {
        let config = config();
        let tenant = TenantId::new("t");
        let view = StateView::default();
        let now = Utc.with_ymd_and_hms(2026, 1, 2, 0, 0, 0).unwrap();
        let members: GroupMembers = BTreeMap::from([(
            "VIP".to_owned(),
            members.map(|m| m.iter().map(|e| e.parse().unwrap()).collect()),
        )]);
        plan_groups(
            &PlanInput::new(&tenant, &config, &view, now),
            contacts,
            &members,
            PlanMode::FullReconcile {
                scan_complete: true,
            },
        )
    }

    #[test]
    fn members_are_added_and_those_who_left_removed_only_when_the_sync_added_them() {
        let contacts = [
            contact("1", "joined@example.com", None),
            contact("2", "left@example.com", Some("Speakers;VIP")),
            contact("3", "manual@example.com", Some("Speakers")),
            contact("4", "settled@example.com", Some("VIP")),
        ];
        let p = run(
            &contacts,
            Some(&["joined@example.com", "settled@example.com"]),
        );
        assert_eq!(p.count_of(ActionType::AddToList), 1, "{p}");
        assert_eq!(p.count_of(ActionType::RemoveFromList), 1, "{p}");
        let lines: Vec<String> = p.actions.iter().map(|a| p.describe(a)).collect();
        assert!(
            lines.contains(
                &"+ list \"Cativa: VIP\" <- joined@example.com (group VIP) (member of group VIP)"
                    .to_owned()
            ),
            "{lines:?}"
        );
        assert!(
            lines.contains(
                &"- list \"Cativa: VIP\" <- left@example.com (group VIP) (no longer a member of group VIP)"
                    .to_owned()
            ),
            "{lines:?}"
        );
        // The hand-made member (provenance without VIP) is never removed.
        assert!(!lines.iter().any(|l| l.contains("manual@")), "{lines:?}");
    }

    #[test]
    fn unknown_members_remove_nothing_and_add_nothing() {
        let contacts = [contact("2", "left@example.com", Some("VIP"))];
        assert!(run(&contacts, None).is_empty());
    }

    #[test]
    fn keys_repeat_for_the_same_input() {
        let contacts = [contact("1", "joined@example.com", None)];
        let members = Some(&["joined@example.com"][..]);
        assert_eq!(
            run(&contacts, members).actions[0].key,
            run(&contacts, members).actions[0].key
        );
    }
}
