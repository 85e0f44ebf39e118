//! Lists v3 memberships.

use serde::{Deserialize, Serialize};

/// Response of `PUT /crm/v3/lists/{listId}/memberships/add|remove`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[non_exhaustive]
pub struct MembershipChange {
    /// Records added (HubSpot spells it `recordsIdsAdded`).
    #[serde(alias = "recordsIdsAdded")]
    pub record_ids_added: Vec<String>,
    /// Records removed.
    pub record_ids_removed: Vec<String>,
    /// Records that do not exist.
    pub record_ids_missing: Vec<String>,
}

/// A member of a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ListMember {
    /// The record.
    pub record_id: String,
    /// When it was added.
    #[serde(default)]
    pub membership_timestamp: Option<String>,
}

/// A list a record belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct RecordMembership {
    /// The list (ILS id).
    pub list_id: String,
    /// Version.
    #[serde(default)]
    pub list_version: Option<u64>,
    /// First added.
    #[serde(default)]
    pub first_added_timestamp: Option<String>,
    /// Last added.
    #[serde(default)]
    pub last_added_timestamp: Option<String>,
    /// Public list.
    #[serde(default)]
    pub is_public_list: Option<bool>,
}
