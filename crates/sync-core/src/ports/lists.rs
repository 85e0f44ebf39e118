//! Groups as lists: the membership a CRM sink applies ([`ListMembership`], from an
//! `add_to_list` or `remove_from_list` action) and the community port that says who is in a
//! group ([`CommunityGroups`]), which a full reconcile needs before it removes anything.

use std::collections::BTreeSet;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::from_action::WrongAction;
use crate::domain::{CrmRecordId, Email, TenantId};
use crate::error::Error;
use crate::plan::{Action, ActionKind, IdempotencyKey};

/// Add contact `id` to (or remove it from) the list or campaign `list` of community group
/// `group`, and record the change in the contact's provenance property.
///
/// A sink resolves each list once per batch (creating it when `create_list` allows), makes one
/// membership call per list, then reads each contact's provenance value, adds or removes
/// the group ([`edit_group_provenance`](crate::config::edit_group_provenance)) and writes it
/// back in one batch update. A removal is only ever planned for a membership the provenance
/// shows the sync added.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ListMembership {
    /// The contact.
    pub id: CrmRecordId,
    /// The community group.
    pub group: String,
    /// The HubSpot list or Salesforce campaign name.
    pub list: String,
    /// Add (true) or remove (false).
    pub add: bool,
    /// Create the list when it is missing (additions only); otherwise a missing list fails
    /// the item with an error saying to create it.
    pub create_list: bool,
    /// The contact property where the sink records the groups whose membership it added.
    pub provenance_property: String,
    /// The action's idempotency key.
    pub key: IdempotencyKey,
}

impl ListMembership {
    /// An addition of `id` to `list` for `group`.
    pub fn add(
        id: CrmRecordId,
        group: impl Into<String>,
        list: impl Into<String>,
        provenance_property: impl Into<String>,
        key: IdempotencyKey,
    ) -> Self {
        Self {
            id,
            group: group.into(),
            list: list.into(),
            add: true,
            create_list: false,
            provenance_property: provenance_property.into(),
            key,
        }
    }

    /// Allows the sink to create a missing list (builder style).
    #[must_use]
    pub fn creating_list(mut self, create: bool) -> Self {
        self.create_list = create;
        self
    }

    /// The same membership, as a removal (builder style).
    #[must_use]
    pub fn removing(mut self) -> Self {
        self.add = false;
        self
    }
}

impl TryFrom<&Action> for ListMembership {
    type Error = WrongAction;

    /// An `add_to_list` or `remove_from_list` action.
    fn try_from(action: &Action) -> Result<Self, WrongAction> {
        let (crm_id, group, list, provenance_property, add, create_list) = match &action.kind {
            ActionKind::AddToList {
                crm_id,
                group,
                list,
                provenance_property,
                create_list,
                ..
            } => (crm_id, group, list, provenance_property, true, *create_list),
            ActionKind::RemoveFromList {
                crm_id,
                group,
                list,
                provenance_property,
                ..
            } => (crm_id, group, list, provenance_property, false, false),
            _ => return Err(WrongAction::new(action, "list membership")),
        };
        Ok(Self {
            id: crm_id.clone(),
            group: group.clone(),
            list: list.clone(),
            add,
            create_list,
            provenance_property: provenance_property.clone(),
            key: action.key.clone(),
        })
    }
}

/// Who is in a community group, for the full reconcile's removals: Cativa sends
/// `user_joined_group` but no leave event, so a membership the sync added is removed only
/// when this port knows the group's members and the user is not among them.
#[async_trait]
pub trait CommunityGroups: Send + Sync {
    /// The emails of `group`'s members; `Ok(None)` when the members cannot be known (no
    /// source configured for them): then nothing is removed from the group's list.
    async fn members(
        &self,
        tenant: &TenantId,
        group: &str,
    ) -> Result<Option<BTreeSet<Email>>, Error>;
}
