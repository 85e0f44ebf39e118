//! CRM contacts as the planner sees them, whatever CRM they came from.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{CrmRecordId, Email};

/// A CRM contact (HubSpot contact, Salesforce Contact or Lead, ...) in CRM-neutral form.
///
/// Connectors fill it from their API: `tags` from a multi-select property, list memberships
/// or property predicates; `alternate_email` from the configured alternate lookup property
/// (e.g. `community_email`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CrmContact {
    /// The record id in the CRM.
    pub id: CrmRecordId,
    /// The primary email, normalized. `None` when the CRM has none or it is invalid; such a
    /// contact cannot be matched and is reported as skipped.
    pub email: Option<Email>,
    /// The address from the configured alternate lookup property, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alternate_email: Option<Email>,
    /// Raw property values by internal property name (`firstname`, `phone`, ...).
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// Tags (e.g. `Pago Anual`), exact values as the CRM stores them.
    #[serde(default)]
    pub tags: BTreeSet<String>,
    /// Lifecycle stage (`lead`, `customer`, ...), if the CRM has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle_stage: Option<String>,
    /// When the CRM last modified the record.
    pub updated_at: DateTime<Utc>,
    /// The record is archived or deleted in the CRM.
    #[serde(default)]
    pub archived: bool,
    /// For a record merged away: the surviving record. Its badges move there and the loser's
    /// deletion must not remove them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<CrmRecordId>,
}

impl CrmContact {
    /// A live contact with no properties or tags.
    pub fn new(id: CrmRecordId, email: Option<Email>, updated_at: DateTime<Utc>) -> Self {
        Self {
            id,
            email,
            alternate_email: None,
            properties: BTreeMap::new(),
            tags: BTreeSet::new(),
            lifecycle_stage: None,
            updated_at,
            archived: false,
            merged_into: None,
        }
    }

    /// Adds a tag (builder style).
    pub fn with_tag(mut self, tag: impl Into<String>) -> Self {
        self.tags.insert(tag.into());
        self
    }

    /// Sets a property (builder style).
    pub fn with_property(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.properties.insert(name.into(), value.into());
        self
    }

    /// Sets the lifecycle stage (builder style).
    pub fn with_lifecycle_stage(mut self, stage: impl Into<String>) -> Self {
        self.lifecycle_stage = Some(stage.into());
        self
    }

    /// Sets the alternate email (builder style).
    pub fn with_alternate_email(mut self, email: Email) -> Self {
        self.alternate_email = Some(email);
        self
    }

    /// Marks the contact archived (builder style).
    pub fn archived(mut self) -> Self {
        self.archived = true;
        self
    }

    /// Marks the contact merged into `winner` (builder style). A merged contact is archived.
    pub fn merged_into(mut self, winner: CrmRecordId) -> Self {
        self.archived = true;
        self.merged_into = Some(winner);
        self
    }

    /// A property value, treating a blank (empty or whitespace) value as absent.
    pub fn property(&self, name: &str) -> Option<&str> {
        self.properties
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }
}
