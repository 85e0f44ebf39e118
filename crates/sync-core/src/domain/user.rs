//! Community users and their profile fields.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{BadgeId, CativaUserId, Email};

/// The community side of a person: profile field values and when they last changed.
///
/// Field names are the community's (`firstName`, `lastName`, `displayName`, `phone`, ...);
/// field mappings connect them to CRM properties.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CommunityProfile {
    /// Field values by community field name.
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    /// When the community last changed any of these fields (used by newest-wins rules).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<DateTime<Utc>>,
}

impl CommunityProfile {
    /// An empty profile.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets a field (builder style).
    pub fn with_field(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.fields.insert(name.into(), value.into());
        self
    }

    /// Sets the modification time (builder style).
    pub fn updated(mut self, at: DateTime<Utc>) -> Self {
        self.updated_at = Some(at);
        self
    }

    /// A field value, treating a blank value as absent.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }
}

/// A community user as Cativa reports it (webhooks, admin lookup).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CommunityUser {
    /// The Cativa user id.
    pub id: CativaUserId,
    /// The user's email, normalized.
    pub email: Email,
    /// Profile fields.
    #[serde(default)]
    pub profile: CommunityProfile,
    /// Badges the user holds, whatever granted them.
    #[serde(default)]
    pub badges: BTreeSet<BadgeId>,
    /// Groups the user belongs to.
    #[serde(default)]
    pub groups: BTreeSet<String>,
    /// When the user was created in the tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
}

impl CommunityUser {
    /// A user with an empty profile and no badges.
    pub fn new(id: CativaUserId, email: Email) -> Self {
        Self {
            id,
            email,
            profile: CommunityProfile::default(),
            badges: BTreeSet::new(),
            groups: BTreeSet::new(),
            created_at: None,
        }
    }
}
