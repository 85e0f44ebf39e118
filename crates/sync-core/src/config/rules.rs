//! Badge rules: which CRM condition grants which community badge.

use serde::{Deserialize, Serialize};

use crate::domain::{BadgeId, CrmContact, RuleId};

/// One badge rule: when `when` holds for a CRM contact, the contact's community user should
/// hold badge `grant`.
///
/// ```toml
/// [[badge_rules]]
/// id = "annual-plan"
/// grant = "Premium"
/// when = { tag = "Pago Anual" }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct BadgeRule {
    /// A stable id, recorded as the provenance of every badge this rule grants. Changing it
    /// orphans earlier grants (they are then kept, never removed), so treat it as permanent.
    pub id: RuleId,
    /// The badge granted.
    pub grant: BadgeId,
    /// The condition on the CRM contact.
    pub when: Condition,
}

impl BadgeRule {
    /// A rule granting `grant` when `when` holds.
    pub fn new(id: impl Into<RuleId>, grant: impl Into<BadgeId>, when: Condition) -> Self {
        Self {
            id: id.into(),
            grant: grant.into(),
            when,
        }
    }
}

/// A condition on a CRM contact. Values are compared exactly after trimming: CRM enumeration
/// values (HubSpot checkbox options, Salesforce picklists) are case-sensitive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Condition {
    /// The contact carries this tag. TOML: `{ tag = "Pago Anual" }`.
    Tag(String),
    /// A property equals a value. TOML: `{ property_equals = { property = "plan", value = "annual" } }`.
    PropertyEquals {
        /// The CRM property name.
        property: String,
        /// The value it must equal.
        value: String,
    },
    /// A property is one of several values. TOML: `{ property_one_of = { property = "plan", values = ["a", "b"] } }`.
    PropertyOneOf {
        /// The CRM property name.
        property: String,
        /// The accepted values.
        values: Vec<String>,
    },
    /// The lifecycle stage is in a set. TOML: `{ lifecycle_stage_in = ["customer", "evangelist"] }`.
    LifecycleStageIn(Vec<String>),
    /// Every inner condition holds.
    All(Vec<Condition>),
    /// At least one inner condition holds.
    Any(Vec<Condition>),
}

impl Condition {
    /// Evaluates the condition. An archived contact satisfies nothing: that is how a deleted
    /// or churned contact loses its badges.
    pub fn holds(&self, contact: &CrmContact) -> bool {
        if contact.archived {
            return false;
        }
        self.eval(contact)
    }

    fn eval(&self, contact: &CrmContact) -> bool {
        match self {
            Condition::Tag(tag) => contact.tags.contains(tag.trim()),
            Condition::PropertyEquals { property, value } => contact
                .property(property)
                .is_some_and(|v| v.trim() == value.trim()),
            Condition::PropertyOneOf { property, values } => contact
                .property(property)
                .is_some_and(|v| values.iter().any(|x| x.trim() == v.trim())),
            Condition::LifecycleStageIn(stages) => contact
                .lifecycle_stage
                .as_deref()
                .is_some_and(|s| stages.iter().any(|x| x.trim() == s.trim())),
            Condition::All(inner) => inner.iter().all(|c| c.eval(contact)),
            Condition::Any(inner) => inner.iter().any(|c| c.eval(contact)),
        }
    }

    /// A short human description, used in plan output (`tag "Pago Anual"`).
    pub fn describe(&self) -> String {
        match self {
            Condition::Tag(tag) => format!("tag {tag:?}"),
            Condition::PropertyEquals { property, value } => format!("{property} = {value:?}"),
            Condition::PropertyOneOf { property, values } => format!("{property} in {values:?}"),
            Condition::LifecycleStageIn(stages) => format!("lifecycle stage in {stages:?}"),
            Condition::All(inner) => inner
                .iter()
                .map(Condition::describe)
                .collect::<Vec<_>>()
                .join(" and "),
            Condition::Any(inner) => format!(
                "({})",
                inner
                    .iter()
                    .map(Condition::describe)
                    .collect::<Vec<_>>()
                    .join(" or ")
            ),
        }
    }

    pub(crate) fn validate(&self, key: &str, issues: &mut Vec<super::ConfigIssue>) {
        let blank = |s: &str| s.trim().is_empty();
        match self {
            Condition::Tag(tag) if blank(tag) => issues.push(super::ConfigIssue::new(
                format!("{key}.tag"),
                "tag must not be empty",
            )),
            Condition::PropertyEquals { property, .. } if blank(property) => {
                issues.push(super::ConfigIssue::new(
                    format!("{key}.property_equals.property"),
                    "property name must not be empty",
                ))
            }
            Condition::PropertyOneOf { property, values } => {
                if blank(property) {
                    issues.push(super::ConfigIssue::new(
                        format!("{key}.property_one_of.property"),
                        "property name must not be empty",
                    ));
                }
                if values.is_empty() {
                    issues.push(super::ConfigIssue::new(
                        format!("{key}.property_one_of.values"),
                        "list at least one value",
                    ));
                }
            }
            Condition::LifecycleStageIn(stages)
                if stages.is_empty() || stages.iter().any(|s| blank(s)) =>
            {
                issues.push(super::ConfigIssue::new(
                    format!("{key}.lifecycle_stage_in"),
                    "list at least one non-empty stage",
                ))
            }
            Condition::All(inner) | Condition::Any(inner) => {
                let name = if matches!(self, Condition::All(_)) {
                    "all"
                } else {
                    "any"
                };
                if inner.is_empty() {
                    issues.push(super::ConfigIssue::new(
                        format!("{key}.{name}"),
                        "list at least one condition",
                    ));
                }
                for (i, c) in inner.iter().enumerate() {
                    c.validate(&format!("{key}.{name}[{i}]"), issues);
                }
            }
            _ => {}
        }
    }
}
