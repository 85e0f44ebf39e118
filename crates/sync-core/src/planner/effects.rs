//! What applying an action does to the mapping table. The engine uses it after a sink
//! confirms an action; tests and dry-run tools use it to simulate a plan.

use chrono::{DateTime, Utc};

use super::StateView;
use crate::domain::{
    BadgeGrant, CativaUserId, CommunityProfile, CrmRecordId, Email, Mapping, Provenance,
};
use crate::plan::{Action, ActionKind, Plan};

/// The mapping row after `action` was applied, given the row before (if any). `None` when
/// the action does not touch the mapping table.
pub fn apply_to_mapping(
    action: &Action,
    before: Option<&Mapping>,
    now: DateTime<Utc>,
) -> Option<Mapping> {
    match &action.kind {
        ActionKind::AssignBadge {
            user,
            email,
            badge,
            rule,
        } => {
            let mut row = before
                .cloned()
                .unwrap_or_else(|| Mapping::new(email.clone(), now).with_user(user.clone()));
            row.put_grant(BadgeGrant::new(
                badge.clone(),
                Provenance::sync(rule.clone()),
                now,
            ));
            row.updated_at = now;
            Some(row)
        }
        ActionKind::RemoveBadge { badge, .. } => {
            let mut row = before?.clone();
            // Only a grant this sync made is ever dropped, whatever the action says.
            if row.grant(badge).is_some_and(|g| g.provenance.is_sync()) {
                row.drop_grant(badge);
                row.updated_at = now;
            }
            Some(row)
        }
        ActionKind::Invite { email, crm_id, .. } => {
            let mut row = before
                .cloned()
                .unwrap_or_else(|| Mapping::new(email.clone(), now));
            row.crm_id = Some(crm_id.clone());
            row.invited_at = Some(now);
            row.updated_at = now;
            Some(row)
        }
        ActionKind::LinkMapping {
            email,
            crm_id,
            user,
            ..
        } => {
            let mut row = before
                .cloned()
                .unwrap_or_else(|| Mapping::new(email.clone(), now));
            if row.moves_to_other_record(crm_id) {
                row.generation += 1;
            }
            row.email = email.clone();
            row.crm_id = Some(crm_id.clone());
            if user.is_some() {
                row.cativa_user_id = user.clone();
            }
            row.updated_at = now;
            Some(row)
        }
        ActionKind::UpdateCommunityFields { fields, .. } => {
            let mut row = before?.clone();
            let mut profile = row.profile.take().unwrap_or_else(CommunityProfile::new);
            profile
                .fields
                .extend(fields.iter().map(|(k, v)| (k.clone(), v.clone())));
            profile.updated_at = Some(now);
            row.profile = Some(profile);
            row.updated_at = now;
            Some(row)
        }
        ActionKind::UpdateCrmProperties { .. }
        | ActionKind::ProvisionCrmContact { .. }
        | ActionKind::LogActivity { .. }
        | ActionKind::AssociateCompany { .. }
        | ActionKind::AddToList { .. }
        | ActionKind::RemoveFromList { .. } => None,
    }
}

/// A key that finds the mapping row an action applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowKey<'a> {
    /// By community user.
    User(&'a CativaUserId),
    /// By email.
    Email(&'a Email),
    /// By CRM record.
    Crm(&'a CrmRecordId),
}

/// The keys that find an action's row, to try in order. One list for the planner's view
/// and the engine's store, so both apply an action to the same row.
pub fn row_keys(action: &Action) -> Vec<RowKey<'_>> {
    match &action.kind {
        ActionKind::AssignBadge { user, email, .. }
        | ActionKind::RemoveBadge { user, email, .. }
        | ActionKind::UpdateCommunityFields { user, email, .. }
        | ActionKind::ProvisionCrmContact { user, email, .. } => {
            vec![RowKey::User(user), RowKey::Email(email)]
        }
        ActionKind::Invite { email, crm_id, .. } => vec![RowKey::Email(email), RowKey::Crm(crm_id)],
        ActionKind::LinkMapping {
            email,
            crm_id,
            previous_email,
            previous_crm_id,
            ..
        } => previous_crm_id
            .iter()
            .map(RowKey::Crm)
            .chain(previous_email.iter().map(RowKey::Email))
            .chain([RowKey::Email(email), RowKey::Crm(crm_id)])
            .collect(),
        ActionKind::UpdateCrmProperties { .. }
        | ActionKind::LogActivity { .. }
        | ActionKind::AssociateCompany { .. }
        | ActionKind::AddToList { .. }
        | ActionKind::RemoveFromList { .. } => Vec::new(),
    }
}

/// The row an action applies to, looked up in a view.
pub(crate) fn row_for<'v>(action: &Action, view: &'v StateView) -> Option<&'v Mapping> {
    row_keys(action).into_iter().find_map(|key| match key {
        RowKey::User(u) => view.by_user(u),
        RowKey::Email(e) => view.by_email(e),
        RowKey::Crm(c) => view.by_crm_id(c),
    })
}

/// Applies every mapping-table effect of a plan to a view, in plan order (a simulation of a
/// fully successful apply). Returns how many actions could not be applied because their
/// row would break a uniqueness rule.
pub fn apply_to_view(plan: &Plan, view: &mut StateView, now: DateTime<Utc>) -> usize {
    let mut refused = 0;
    for action in &plan.actions {
        let before = row_for(action, view).cloned();
        if let Some(after) = apply_to_mapping(action, before.as_ref(), now)
            && !view.replace(before.as_ref().map(|b| &b.email), after)
        {
            refused += 1;
        }
    }
    refused
}
