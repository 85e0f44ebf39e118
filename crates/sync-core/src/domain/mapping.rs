//! The identity mapping `email <-> Cativa user id <-> CRM record id`, and badge provenance.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{BadgeId, CativaUserId, CommunityProfile, CrmRecordId, Email, RuleId};

/// Who granted a badge a user holds.
///
/// The sync removes a badge only when it granted the badge itself: a badge from a paywall,
/// a course or an admin is never touched, even when it is in the managed set.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Provenance {
    /// Granted by this sync because the named badge rule held.
    Sync {
        /// The rule that granted it.
        rule: RuleId,
    },
    /// Granted by anything else (paywall purchase, course completion, admin, import), or
    /// seen on the user without a record of the sync granting it.
    External {
        /// A free-form source label (`paywall`, `admin`, `webhook`, ...).
        source: String,
    },
}

impl Provenance {
    /// `true` when this sync granted the badge.
    pub fn is_sync(&self) -> bool {
        matches!(self, Provenance::Sync { .. })
    }

    /// A badge granted elsewhere, with a source label.
    pub fn external(source: impl Into<String>) -> Self {
        Provenance::External {
            source: source.into(),
        }
    }

    /// A badge granted by this sync under `rule`.
    pub fn sync(rule: impl Into<RuleId>) -> Self {
        Provenance::Sync { rule: rule.into() }
    }
}

/// A badge a user holds, with its provenance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BadgeGrant {
    /// The badge.
    pub badge: BadgeId,
    /// Who granted it.
    pub provenance: Provenance,
    /// When the grant was recorded.
    pub granted_at: DateTime<Utc>,
}

impl BadgeGrant {
    /// A grant recorded at `granted_at`.
    pub fn new(
        badge: impl Into<BadgeId>,
        provenance: Provenance,
        granted_at: DateTime<Utc>,
    ) -> Self {
        Self {
            badge: badge.into(),
            provenance,
            granted_at,
        }
    }
}

/// One row of the mapping table: a person known by email on at least one side.
///
/// A row may know only the community side (from a `user_created` webhook), only the CRM side
/// (an invited contact), or both (linked).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Mapping {
    /// The normalized email (unique per tenant).
    pub email: Email,
    /// The community user, once known (unique per tenant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cativa_user_id: Option<CativaUserId>,
    /// The CRM record, once linked (unique per tenant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crm_id: Option<CrmRecordId>,
    /// Badges the user holds, with provenance.
    #[serde(default)]
    pub badges: Vec<BadgeGrant>,
    /// The community profile last seen (for field mappings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<CommunityProfile>,
    /// When the sync sent an invite to this email, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invited_at: Option<DateTime<Utc>>,
    /// When the row last changed.
    pub updated_at: DateTime<Utc>,
    /// How many times the row moved from one CRM record to another (taken over by another
    /// contact, or following a merge). The planner puts it in the keys of the links and
    /// badge grants it plans for the row, so a link or grant planned again after the row was
    /// taken away and given back is a new action rather than a repeat of one already applied
    /// (see ARCHITECTURE.md, "At most once per key"). 0 leaves the keys as they were before
    /// this counter existed.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub generation: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Mapping {
    /// A row that knows only the email.
    pub fn new(email: Email, updated_at: DateTime<Utc>) -> Self {
        Self {
            email,
            cativa_user_id: None,
            crm_id: None,
            badges: Vec::new(),
            profile: None,
            invited_at: None,
            updated_at,
            generation: 0,
        }
    }

    /// Sets the community user (builder style).
    pub fn with_user(mut self, user: CativaUserId) -> Self {
        self.cativa_user_id = Some(user);
        self
    }

    /// Sets the CRM record (builder style).
    pub fn with_crm(mut self, crm: CrmRecordId) -> Self {
        self.crm_id = Some(crm);
        self
    }

    /// Adds a badge grant (builder style).
    pub fn with_badge(mut self, grant: BadgeGrant) -> Self {
        self.badges.push(grant);
        self
    }

    /// Sets the community profile (builder style).
    pub fn with_profile(mut self, profile: CommunityProfile) -> Self {
        self.profile = Some(profile);
        self
    }

    /// Whether linking the row to `crm_id` moves it away from the CRM record it is linked to
    /// (which bumps [`Mapping::generation`] once the link is applied).
    pub fn moves_to_other_record(&self, crm_id: &CrmRecordId) -> bool {
        self.crm_id.as_ref().is_some_and(|old| old != crm_id)
    }

    /// The grant of `badge`, if the user holds it.
    pub fn grant(&self, badge: &BadgeId) -> Option<&BadgeGrant> {
        self.badges.iter().find(|g| &g.badge == badge)
    }

    /// Records a grant, replacing any earlier grant of the same badge.
    pub fn put_grant(&mut self, grant: BadgeGrant) {
        self.badges.retain(|g| g.badge != grant.badge);
        self.badges.push(grant);
    }

    /// Drops the grant of `badge`; returns whether there was one.
    pub fn drop_grant(&mut self, badge: &BadgeId) -> bool {
        let before = self.badges.len();
        self.badges.retain(|g| &g.badge != badge);
        before != self.badges.len()
    }
}
