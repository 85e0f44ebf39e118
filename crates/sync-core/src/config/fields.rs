//! Field mappings: which community field meets which CRM property, in which direction, with
//! which transforms, and who owns it.

use serde::{Deserialize, Serialize};

use crate::transform::Transform;

/// How a mapped field flows. A superset of HubSpot's own sync rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FieldRule {
    /// Both ways; when the values differ the side modified most recently wins.
    Bidirectional,
    /// Community -> CRM only.
    ToCrm,
    /// CRM -> community only.
    FromCrm,
    /// The CRM value wins unless it is blank, then the community value fills the CRM.
    PreferCrmUnlessBlank,
    /// The community value wins unless it is blank, then the CRM value fills the community.
    PreferCommunityUnlessBlank,
    /// Never synced (documents a field deliberately left alone).
    Never,
}

impl FieldRule {
    /// Whether this rule may ever write the CRM.
    pub fn may_write_crm(self) -> bool {
        !matches!(self, FieldRule::FromCrm | FieldRule::Never)
    }

    /// Whether this rule may ever write the community.
    pub fn may_write_community(self) -> bool {
        !matches!(self, FieldRule::ToCrm | FieldRule::Never)
    }
}

/// Which system owns a field: only an owner's side is ever written from the other.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FieldOwner {
    /// The CRM is authoritative: the sync may write the community from it, never the CRM.
    Crm,
    /// The community is authoritative: the sync may write the CRM from it, never the community.
    Community,
    /// Both sides may be written (needed by bidirectional and prefer-unless-blank rules).
    Shared,
    /// A third system owns it (billing, commerce, an ESP): the sync writes neither side.
    /// TOML: `owner = { external = "billing" }`.
    External(String),
}

impl FieldOwner {
    /// Whether the sync may write the CRM side of a field with this owner.
    pub fn allows_crm_write(&self) -> bool {
        matches!(self, FieldOwner::Community | FieldOwner::Shared)
    }

    /// Whether the sync may write the community side of a field with this owner.
    pub fn allows_community_write(&self) -> bool {
        matches!(self, FieldOwner::Crm | FieldOwner::Shared)
    }
}

/// What to do with blank values. Whatever the guard, a blank source never clears the
/// destination: a CRM that does not know a value must not erase it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum NullGuard {
    /// Skip blank source values (the default).
    #[default]
    SkipNulls,
    /// Write only when the destination is blank: fill gaps, never overwrite.
    SetOnlyIfEmpty,
}

/// One or several CRM property names (`"phone"` or `["firstname", "lastname"]`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CrmProperties {
    /// One property.
    One(String),
    /// Several properties (the `name` transform uses two).
    Many(Vec<String>),
}

impl CrmProperties {
    /// The property names, in order.
    pub fn names(&self) -> &[String] {
        match self {
            CrmProperties::One(one) => std::slice::from_ref(one),
            CrmProperties::Many(many) => many,
        }
    }
}

/// A field mapping.
///
/// ```toml
/// [[fields]]
/// community = "phone"
/// crm = "phone"
/// rule = "bidirectional"
/// owner = "shared"
/// transforms = ["phone_e164"]
///
/// [[fields]]
/// community = "name"
/// crm = ["firstname", "lastname"]
/// rule = "from_crm"
/// owner = "crm"
/// transforms = ["trim", "name"]
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct FieldMapping {
    /// The community field name.
    pub community: String,
    /// The CRM property (or properties).
    pub crm: CrmProperties,
    /// Direction and conflict rule.
    pub rule: FieldRule,
    /// Transforms, written community -> CRM.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transforms: Vec<Transform>,
    /// Who owns the field. Required: a mapping without an owner is rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<FieldOwner>,
    /// Blank-value handling.
    #[serde(default)]
    pub null_guard: NullGuard,
}

impl FieldMapping {
    /// A mapping of one community field to one CRM property.
    pub fn new(
        community: impl Into<String>,
        crm: impl Into<String>,
        rule: FieldRule,
        owner: FieldOwner,
    ) -> Self {
        Self {
            community: community.into(),
            crm: CrmProperties::One(crm.into()),
            rule,
            transforms: Vec::new(),
            owner: Some(owner),
            null_guard: NullGuard::default(),
        }
    }

    /// A full-name mapping onto two CRM properties with the `name` transform.
    pub fn name(
        community: impl Into<String>,
        first: impl Into<String>,
        last: impl Into<String>,
        rule: FieldRule,
        owner: FieldOwner,
    ) -> Self {
        Self {
            community: community.into(),
            crm: CrmProperties::Many(vec![first.into(), last.into()]),
            rule,
            transforms: vec![Transform::Trim, Transform::Name],
            owner: Some(owner),
            null_guard: NullGuard::default(),
        }
    }

    /// Adds a transform (builder style).
    pub fn with_transform(mut self, t: Transform) -> Self {
        self.transforms.push(t);
        self
    }

    /// Sets the null guard (builder style).
    pub fn with_null_guard(mut self, guard: NullGuard) -> Self {
        self.null_guard = guard;
        self
    }

    /// Whether the sync may write the CRM for this mapping: the rule allows it and the
    /// owner allows it.
    pub fn writes_crm(&self) -> bool {
        self.rule.may_write_crm()
            && self
                .owner
                .as_ref()
                .is_some_and(FieldOwner::allows_crm_write)
    }

    /// Whether the sync may write the community for this mapping.
    pub fn writes_community(&self) -> bool {
        self.rule.may_write_community()
            && self
                .owner
                .as_ref()
                .is_some_and(FieldOwner::allows_community_write)
    }
}
