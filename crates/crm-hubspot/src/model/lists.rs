//! Lists v3: list definitions and memberships.

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

/// A list definition (`PublicObjectList` of the lists v3 API): what creating a list and
/// looking one up by name return, under `list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ObjectList {
    /// The list id (ILS id): what membership calls take.
    pub list_id: String,
    /// The name (unique per object type, compared case-insensitively by HubSpot).
    pub name: String,
    /// `0-1` for contacts.
    #[serde(default)]
    pub object_type_id: String,
    /// `MANUAL`, `SNAPSHOT` or `DYNAMIC`: memberships can be edited on the first two only.
    #[serde(default)]
    pub processing_type: String,
    /// The list's version.
    #[serde(default)]
    pub list_version: Option<u64>,
    /// Members, when HubSpot says.
    #[serde(default)]
    pub size: Option<u64>,
}

impl ObjectList {
    /// Whether its memberships can be edited through the API (MANUAL and SNAPSHOT lists).
    pub fn is_manual(&self) -> bool {
        matches!(self.processing_type.as_str(), "MANUAL" | "SNAPSHOT")
    }
}

/// The body of `POST /crm/v3/lists` and of the look-up by name: `{"list": {...}}`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ListEnvelope {
    pub(crate) list: ObjectList,
}
