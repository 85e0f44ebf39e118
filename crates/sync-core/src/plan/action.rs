//! Planned actions: what the sync will do, why, and under which idempotency key.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::IdempotencyKey;
use crate::config::FieldRule;
use crate::domain::{BadgeId, CativaUserId, CrmRecordId, Email, RuleId};

/// One planned change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Action {
    /// The deterministic idempotency key.
    pub key: IdempotencyKey,
    /// What to do.
    pub kind: ActionKind,
    /// Why.
    pub reason: Reason,
}

impl Action {
    /// Builds an action.
    pub fn new(key: IdempotencyKey, kind: ActionKind, reason: Reason) -> Self {
        Self { key, kind, reason }
    }
}

/// What an action does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ActionKind {
    /// Grant a managed badge to a community user.
    AssignBadge {
        /// The user.
        user: CativaUserId,
        /// The user's email (for sinks keyed by email and for people reading the plan).
        email: Email,
        /// The badge.
        badge: BadgeId,
        /// The rule recorded as provenance.
        rule: RuleId,
    },
    /// Take away a badge this sync granted.
    RemoveBadge {
        /// The user.
        user: CativaUserId,
        /// The user's email.
        email: Email,
        /// The badge.
        badge: BadgeId,
        /// The rule that had granted it.
        rule: RuleId,
    },
    /// Invite a qualifying contact that has no community user yet.
    Invite {
        /// Who to invite.
        email: Email,
        /// The CRM record (the invite is linked to it).
        crm_id: CrmRecordId,
        /// Badges they will receive once they join.
        badges: Vec<BadgeId>,
    },
    /// Create or update a mapping row (link a CRM record, record a new email, re-point after
    /// a merge).
    LinkMapping {
        /// The email the row will have.
        email: Email,
        /// The CRM record it will point to.
        crm_id: CrmRecordId,
        /// The community user, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user: Option<CativaUserId>,
        /// The row's email before, when it changes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        previous_email: Option<Email>,
        /// The row's CRM record before, when it changes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        previous_crm_id: Option<CrmRecordId>,
    },
    /// Write CRM properties.
    UpdateCrmProperties {
        /// The record.
        crm_id: CrmRecordId,
        /// The contact's email.
        email: Email,
        /// Property name -> new value (never a blank value).
        properties: BTreeMap<String, String>,
    },
    /// Write community profile fields.
    UpdateCommunityFields {
        /// The user.
        user: CativaUserId,
        /// The user's email.
        email: Email,
        /// Field name -> new value (never a blank value).
        fields: BTreeMap<String, String>,
    },
    /// Find or create the CRM contact for a community user (never a duplicate).
    ProvisionCrmContact {
        /// The user.
        user: CativaUserId,
        /// The email to find or create by.
        email: Email,
        /// Properties to set on the contact.
        properties: BTreeMap<String, String>,
    },
    /// Log a community activity on the CRM record (a HubSpot note, a Salesforce task).
    LogActivity {
        /// The record.
        crm_id: CrmRecordId,
        /// The user's email.
        email: Email,
        /// A short subject.
        subject: String,
        /// The body.
        body: String,
        /// When it happened in the community.
        occurred_at: DateTime<Utc>,
    },
    /// Find or create the company (HubSpot) or account (Salesforce) with this domain and
    /// associate the contact with it.
    AssociateCompany {
        /// The contact.
        crm_id: CrmRecordId,
        /// The contact's email.
        email: Email,
        /// The company's domain (lower case): what the company is found or created by.
        domain: String,
        /// The company the sync had set and moves the contact away from, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replaces: Option<String>,
        /// The contact property where the sink records the company it set
        /// (`<company id>|<domain>`), the provenance the next plan reads.
        provenance_property: String,
    },
    /// Add the contact to the list (HubSpot MANUAL list, Salesforce campaign) a community
    /// group maps to, and record the group in the provenance property.
    AddToList {
        /// The contact.
        crm_id: CrmRecordId,
        /// The contact's email.
        email: Email,
        /// The community group.
        group: String,
        /// The HubSpot list or Salesforce campaign name.
        list: String,
        /// The contact property where the sink records the groups whose membership it added.
        provenance_property: String,
        /// Create the list when it is missing (`[groups] create_lists`).
        #[serde(default)]
        create_list: bool,
    },
    /// Remove the contact from a group's list: only a membership the provenance property
    /// shows the sync added.
    RemoveFromList {
        /// The contact.
        crm_id: CrmRecordId,
        /// The contact's email.
        email: Email,
        /// The community group.
        group: String,
        /// The HubSpot list or Salesforce campaign name.
        list: String,
        /// The contact property where the sink records the groups whose membership it added.
        provenance_property: String,
    },
}

/// The type of an [`ActionKind`], without its data: what [`Plan::count_of`](super::Plan::count_of)
/// counts, so a misspelt kind is a compile error rather than a count of 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ActionType {
    /// [`ActionKind::AssignBadge`].
    AssignBadge,
    /// [`ActionKind::RemoveBadge`].
    RemoveBadge,
    /// [`ActionKind::Invite`].
    Invite,
    /// [`ActionKind::LinkMapping`].
    LinkMapping,
    /// [`ActionKind::UpdateCrmProperties`].
    UpdateCrmProperties,
    /// [`ActionKind::UpdateCommunityFields`].
    UpdateCommunityFields,
    /// [`ActionKind::ProvisionCrmContact`].
    ProvisionCrmContact,
    /// [`ActionKind::LogActivity`].
    LogActivity,
    /// [`ActionKind::AssociateCompany`].
    AssociateCompany,
    /// [`ActionKind::AddToList`].
    AddToList,
    /// [`ActionKind::RemoveFromList`].
    RemoveFromList,
}

impl ActionType {
    /// Every type, in declaration order.
    pub const ALL: [ActionType; 11] = [
        ActionType::AssignBadge,
        ActionType::RemoveBadge,
        ActionType::Invite,
        ActionType::LinkMapping,
        ActionType::UpdateCrmProperties,
        ActionType::UpdateCommunityFields,
        ActionType::ProvisionCrmContact,
        ActionType::LogActivity,
        ActionType::AssociateCompany,
        ActionType::AddToList,
        ActionType::RemoveFromList,
    ];

    /// The stable name (`assign_badge`, ...): the `type` tag of the plan's JSON, the key of
    /// [`PlanCounts::actions`](super::PlanCounts::actions), and the name in reports and metrics.
    pub fn name(self) -> &'static str {
        match self {
            ActionType::AssignBadge => "assign_badge",
            ActionType::RemoveBadge => "remove_badge",
            ActionType::Invite => "invite",
            ActionType::LinkMapping => "link_mapping",
            ActionType::UpdateCrmProperties => "update_crm_properties",
            ActionType::UpdateCommunityFields => "update_community_fields",
            ActionType::ProvisionCrmContact => "provision_crm_contact",
            ActionType::LogActivity => "log_activity",
            ActionType::AssociateCompany => "associate_company",
            ActionType::AddToList => "add_to_list",
            ActionType::RemoveFromList => "remove_from_list",
        }
    }
}

impl fmt::Display for ActionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl ActionKind {
    /// The type of this action, without its data.
    pub fn action_type(&self) -> ActionType {
        match self {
            ActionKind::AssignBadge { .. } => ActionType::AssignBadge,
            ActionKind::RemoveBadge { .. } => ActionType::RemoveBadge,
            ActionKind::Invite { .. } => ActionType::Invite,
            ActionKind::LinkMapping { .. } => ActionType::LinkMapping,
            ActionKind::UpdateCrmProperties { .. } => ActionType::UpdateCrmProperties,
            ActionKind::UpdateCommunityFields { .. } => ActionType::UpdateCommunityFields,
            ActionKind::ProvisionCrmContact { .. } => ActionType::ProvisionCrmContact,
            ActionKind::LogActivity { .. } => ActionType::LogActivity,
            ActionKind::AssociateCompany { .. } => ActionType::AssociateCompany,
            ActionKind::AddToList { .. } => ActionType::AddToList,
            ActionKind::RemoveFromList { .. } => ActionType::RemoveFromList,
        }
    }

    /// A short stable name of the kind (`assign_badge`, ...), used in reports and metrics:
    /// [`ActionType::name`] of [`action_type`](Self::action_type).
    pub fn name(&self) -> &'static str {
        self.action_type().name()
    }

    /// The email the action concerns.
    pub fn email(&self) -> &Email {
        match self {
            ActionKind::AssignBadge { email, .. }
            | ActionKind::RemoveBadge { email, .. }
            | ActionKind::Invite { email, .. }
            | ActionKind::LinkMapping { email, .. }
            | ActionKind::UpdateCrmProperties { email, .. }
            | ActionKind::UpdateCommunityFields { email, .. }
            | ActionKind::ProvisionCrmContact { email, .. }
            | ActionKind::LogActivity { email, .. }
            | ActionKind::AssociateCompany { email, .. }
            | ActionKind::AddToList { email, .. }
            | ActionKind::RemoveFromList { email, .. } => email,
        }
    }

    /// Ordering rank: mapping changes first (later actions rely on them), then removals
    /// before grants, then writes.
    pub(crate) fn rank(&self) -> u8 {
        match self {
            ActionKind::LinkMapping { .. } => 0,
            ActionKind::ProvisionCrmContact { .. } => 1,
            ActionKind::RemoveBadge { .. } => 2,
            ActionKind::AssignBadge { .. } => 3,
            ActionKind::Invite { .. } => 4,
            ActionKind::UpdateCommunityFields { .. } => 5,
            ActionKind::UpdateCrmProperties { .. } => 6,
            ActionKind::LogActivity { .. } => 7,
            ActionKind::AssociateCompany { .. } => 8,
            // Removals before additions, as for badges.
            ActionKind::RemoveFromList { .. } => 9,
            ActionKind::AddToList { .. } => 10,
        }
    }
}

/// Why an action was planned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "why", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Reason {
    /// A badge rule holds for the contact.
    RuleHolds {
        /// The rule.
        rule: RuleId,
        /// Its condition, described.
        condition: String,
    },
    /// No rule granting the badge holds any more (tag removed, churn).
    RuleNoLongerHolds {
        /// The rule that had granted it.
        rule: RuleId,
    },
    /// The contact was archived or deleted in the CRM.
    ContactArchived,
    /// The contact was merged into another record.
    ContactMerged {
        /// The surviving record.
        into: CrmRecordId,
    },
    /// A complete full scan did not find the contact any more.
    ContactVanished,
    /// The contact qualifies for badges but has no community user.
    NoCommunityUser,
    /// The contact's email changed in the CRM.
    EmailChanged {
        /// The email before.
        from: Email,
    },
    /// The contact was matched to a mapping for the first time.
    FirstMatch {
        /// How: `email`, `alternate_email`.
        by: String,
    },
    /// Duplicate contacts share the email and this one is canonical now.
    CanonicalDuplicate,
    /// A field mapping produced a new value.
    Field {
        /// The community field.
        field: String,
        /// The mapping's rule.
        rule: FieldRule,
        /// Which side won and why (`crm newer`, `community blank`).
        detail: String,
    },
    /// A community event (webhook) asked for it.
    CommunityEvent {
        /// The event type.
        event: String,
    },
    /// The contact's company, derived by the `[companies]` configuration.
    Company {
        /// Where the domain came from (`email domain`, `profile field company_site`).
        from: String,
        /// Why the contact is (re)associated (`no company set`, `the sync's company changed`).
        detail: String,
    },
    /// A full reconcile compared a group's members with the memberships the sync added.
    Group {
        /// Why (`member of group VIP`, `no longer a member of group VIP`).
        detail: String,
    },
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::RuleHolds { condition, .. } => f.write_str(condition),
            Reason::RuleNoLongerHolds { rule } => write!(f, "rule {rule} no longer holds"),
            Reason::ContactArchived => f.write_str("contact archived or deleted in the CRM"),
            Reason::ContactMerged { into } => write!(f, "contact merged into {into}"),
            Reason::ContactVanished => f.write_str("contact not found by a complete scan"),
            Reason::NoCommunityUser => f.write_str("qualifies but has no community user"),
            Reason::EmailChanged { from } => write!(f, "email changed in the CRM (was {from})"),
            Reason::FirstMatch { by } => write!(f, "first match by {by}"),
            Reason::CanonicalDuplicate => f.write_str("canonical among contacts sharing the email"),
            Reason::Field {
                field,
                rule,
                detail,
            } => write!(f, "{field}: {rule:?}, {detail}"),
            Reason::CommunityEvent { event } => write!(f, "community event {event}"),
            Reason::Company { from, detail } => write!(f, "company from {from}, {detail}"),
            Reason::Group { detail } => f.write_str(detail),
        }
    }
}

fn fmt_map(map: &BTreeMap<String, String>) -> String {
    map.iter()
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for Action {
    /// One line a person can review: `+ badge Premium -> jane@example.com (tag "Pago Anual")`.
    /// Badges show as ids here; [`Plan::describe`](super::Plan::describe) shows their names.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe_with(&BTreeMap::new()))
    }
}

impl Action {
    /// One line a person can review, badges shown as `Premium (b0000000-...)` when `names`
    /// (badge id -> name) has them.
    pub fn describe_with(&self, names: &BTreeMap<BadgeId, String>) -> String {
        let label = |b: &BadgeId| super::badge_label(b, names.get(b).map(String::as_str));
        let what = match &self.kind {
            ActionKind::AssignBadge { email, badge, .. } => {
                format!("+ badge {} -> {email}", label(badge))
            }
            ActionKind::RemoveBadge { email, badge, .. } => {
                format!("- badge {} -> {email}", label(badge))
            }
            ActionKind::Invite { email, badges, .. } => format!(
                "+ invite {email} (for {})",
                badges.iter().map(label).collect::<Vec<_>>().join(", ")
            ),
            ActionKind::LinkMapping { email, crm_id, .. } => format!("~ link {email} <-> {crm_id}"),
            ActionKind::UpdateCrmProperties {
                email, properties, ..
            } => format!("~ crm {email}: {}", fmt_map(properties)),
            ActionKind::UpdateCommunityFields { email, fields, .. } => {
                format!("~ community {email}: {}", fmt_map(fields))
            }
            ActionKind::ProvisionCrmContact { email, .. } => format!("+ crm contact {email}"),
            ActionKind::LogActivity { email, subject, .. } => {
                format!("+ activity {email}: {subject}")
            }
            ActionKind::AssociateCompany {
                email,
                domain,
                replaces,
                ..
            } => match replaces {
                Some(old) => format!("~ company {email} -> {domain} (was {old})"),
                None => format!("+ company {email} -> {domain}"),
            },
            ActionKind::AddToList {
                email, group, list, ..
            } => format!("+ list {list:?} <- {email} (group {group})"),
            ActionKind::RemoveFromList {
                email, group, list, ..
            } => format!("- list {list:?} <- {email} (group {group})"),
        };
        format!("{what} ({})", self.reason)
    }

    /// The badge the action concerns, for badge grants and removals.
    pub fn badge(&self) -> Option<&BadgeId> {
        match &self.kind {
            ActionKind::AssignBadge { badge, .. } | ActionKind::RemoveBadge { badge, .. } => {
                Some(badge)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_type_names_are_the_snake_case_of_their_variant() {
        for t in ActionType::ALL {
            let mut snake = String::new();
            for (i, c) in format!("{t:?}").chars().enumerate() {
                if c.is_ascii_uppercase() && i > 0 {
                    snake.push('_');
                }
                snake.push(c.to_ascii_lowercase());
            }
            assert_eq!(t.name(), snake);
            assert_eq!(t.to_string(), snake);
        }
    }

    #[test]
    fn an_action_names_its_type_as_its_json_tag() {
        let kind = ActionKind::Invite {
            email: "a@example.com".parse().unwrap(),
            crm_id: CrmRecordId::hubspot("1"),
            badges: Vec::new(),
        };
        let json = serde_json::to_value(&kind).unwrap();
        assert_eq!(kind.action_type(), ActionType::Invite);
        assert_eq!(json["type"], kind.action_type().name());
    }
}
