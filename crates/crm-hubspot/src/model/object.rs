//! CRM objects as HubSpot returns them, and cursor pages of them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A CRM object (`SimplePublicObject`): a contact, note, ... Property values are strings or
/// null, as HubSpot sends them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct HubSpotObject {
    /// The record id (a numeric string).
    pub id: String,
    /// Internal property name -> value.
    #[serde(default)]
    pub properties: BTreeMap<String, Option<String>>,
    /// ISO 8601 creation time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// ISO 8601 last update time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    /// Whether the record is archived.
    #[serde(default)]
    pub archived: bool,
    /// When it was archived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archived_at: Option<String>,
    /// Echo of the input's trace id (batch writes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_write_trace_id: Option<String>,
    /// Batch upsert: whether the record was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new: Option<bool>,
}

impl HubSpotObject {
    /// A property value, `None` when absent or null.
    pub fn property(&self, name: &str) -> Option<&str> {
        self.properties.get(name).and_then(Option::as_deref)
    }
}

/// The `after` cursor of the next page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct NextPage {
    /// Pass it as `after` to get the next page.
    pub after: String,
    /// HubSpot's link to the next page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

/// Paging information; `next` is absent on the last page.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Paging {
    /// The next page, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<NextPage>,
}

/// A page of results (list, search, memberships).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Page<T> {
    /// The results.
    #[serde(default = "Vec::new")]
    pub results: Vec<T>,
    /// Paging.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paging: Option<Paging>,
    /// Total matches (search).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
}

impl<T> Page<T> {
    /// The cursor of the next page; `None` on the last page.
    pub fn next_after(&self) -> Option<&str> {
        self.paging
            .as_ref()?
            .next
            .as_ref()
            .map(|n| n.after.as_str())
    }
}
