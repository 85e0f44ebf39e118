//! Configuration as data: badge rules, field mappings and identity policies.
//!
//! Load a [`SyncConfig`] from TOML or JSON, then [`SyncConfig::validate`] it into a
//! [`ValidatedConfig`], which is what the planner takes. Validation reports every problem at
//! once, each naming the key (`badge_rules[1].grant`, `fields[0].owner`).
//!
//! ```
//! use sync_core::config::SyncConfig;
//! let config = SyncConfig::from_toml_str(r#"
//!     missing_user = "invite"
//!     alternate_email_property = "community_email"
//!
//!     [badges]
//!     Premium = "b0000000-0000-4000-8000-000000000001"
//!
//!     [[badge_rules]]
//!     id = "annual"
//!     grant = "Premium"
//!     when = { tag = "Pago Anual" }
//!
//!     [[fields]]
//!     community = "name"
//!     crm = ["firstname", "lastname"]
//!     rule = "from_crm"
//!     owner = "crm"
//!     transforms = ["trim", "name"]
//! "#)?.validate()?;
//! let premium = "b0000000-0000-4000-8000-000000000001".into();
//! assert!(config.is_managed(&premium));
//! assert_eq!(config.badge_label(&premium), "Premium (b0000000-0000-4000-8000-000000000001)");
//! # Ok::<(), sync_core::Error>(())
//! ```

mod companies;
mod fields;
mod groups;
mod policy;
mod rules;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

pub use companies::{CompanyConfig, CompanySource, builtin_free_mail, normalize_domain};
pub use fields::{CrmProperties, FieldMapping, FieldOwner, FieldRule, NullGuard};
pub use groups::{
    DEFAULT_GROUPS_PROPERTY, GroupList, GroupsConfig, edit_group_provenance, parse_group_provenance,
};
pub use policy::{DuplicatePolicy, MissingUserPolicy};
pub use rules::{BadgeRule, Condition};

use crate::domain::BadgeId;
use crate::error::Error;
use crate::transform::{PhoneRegion, Transform, TransformContext, has_name, parse_region};

/// The whole sync configuration of one tenant, as written by a person.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SyncConfig {
    /// Badges by name: `Premium = "b0000000-0000-4000-8000-000000000001"` (a `[badges]`
    /// table). Rules then say `grant = "Premium"`, and plans, reports and audit rows show
    /// `Premium (b0000000-...)`. When the table is present, every rule's `grant` must be one of
    /// its names (or ids); without it, `grant` is taken as a Cativa badge id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub badges: BTreeMap<String, BadgeId>,
    /// Badge rules, evaluated in order (the first rule that grants a badge is its provenance).
    #[serde(default)]
    pub badge_rules: Vec<BadgeRule>,
    /// Field mappings.
    #[serde(default)]
    pub fields: Vec<FieldMapping>,
    /// Which contact wins when several share an email.
    #[serde(default)]
    pub duplicates: DuplicatePolicy,
    /// What to do with a qualifying contact that has no community user.
    #[serde(default)]
    pub missing_user: MissingUserPolicy,
    /// A CRM property holding the address the person uses in the community, for people who
    /// use different emails on each side (e.g. `community_email`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alternate_email_property: Option<String>,
    /// Region (ISO 3166-1 alpha-2, e.g. `BR`) for phone numbers written without a country code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_phone_region: Option<String>,
    /// Companies and accounts (off unless present): see [`CompanyConfig`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub companies: Option<CompanyConfig>,
    /// Groups as lists (off unless present): see [`GroupsConfig`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<GroupsConfig>,
}

/// One validation problem: the key and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigIssue {
    /// The offending key, as a path (`fields[2].owner`).
    pub key: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl ConfigIssue {
    pub(crate) fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

impl SyncConfig {
    /// Parses TOML. Unknown keys are errors (a typo must not silently disable a rule).
    pub fn from_toml_str(text: &str) -> Result<Self, Error> {
        toml::from_str(text).map_err(|e| Error::ConfigParse {
            format: "TOML",
            message: e.to_string(),
        })
    }

    /// Parses JSON. Unknown keys are errors.
    pub fn from_json_str(text: &str) -> Result<Self, Error> {
        serde_json::from_str(text).map_err(|e| Error::ConfigParse {
            format: "JSON",
            message: e.to_string(),
        })
    }

    /// Reads a `.toml` or `.json` file.
    pub fn from_path(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| Error::ConfigParse {
            format: "file",
            message: format!("cannot read {}: {e}", path.display()),
        })?;
        match path.extension().and_then(|e| e.to_str()) {
            Some("json") => Self::from_json_str(&text),
            _ => Self::from_toml_str(&text),
        }
    }

    /// Checks the configuration and compiles it for the planner.
    ///
    /// Rules that name a badge of the `[badges]` table are resolved to its id here, so the
    /// planner, the outbox and the sinks only ever see badge ids.
    pub fn validate(mut self) -> Result<ValidatedConfig, Error> {
        let mut issues = Vec::new();
        let names = validate_badge_names(&self.badges, &mut issues);
        for (i, rule) in self.badge_rules.iter_mut().enumerate() {
            if let Some(resolved) = resolve_grant(&self.badges, &names, &rule.grant, i, &mut issues)
            {
                rule.grant = resolved;
            }
        }
        validate_rules(&self.badge_rules, &mut issues);
        let default_region = validate_region(self.default_phone_region.as_deref(), &mut issues);
        validate_fields(&self.fields, &mut issues);
        validate_policies(&self, &mut issues);
        if let Some(companies) = &self.companies {
            companies.validate(&mut issues);
        }
        if let Some(groups) = &self.groups {
            groups.validate(&mut issues);
        }

        if !issues.is_empty() {
            return Err(Error::InvalidConfig(issues));
        }
        Ok(ValidatedConfig::compile(
            self,
            TransformContext { default_region },
        ))
    }
}

/// Rule ids unique and non-empty, badges non-empty, conditions well formed.
fn validate_rules(rules: &[BadgeRule], issues: &mut Vec<ConfigIssue>) {
    let mut rule_ids = HashMap::new();
    for (i, rule) in rules.iter().enumerate() {
        let key = format!("badge_rules[{i}]");
        if rule.id.as_str().is_empty() {
            issues.push(ConfigIssue::new(
                format!("{key}.id"),
                "rule id must not be empty",
            ));
        } else if let Some(first) = rule_ids.insert(rule.id.clone(), i) {
            issues.push(ConfigIssue::new(
                format!("{key}.id"),
                format!(
                    "rule id {:?} is already used by badge_rules[{first}]",
                    rule.id.as_str()
                ),
            ));
        }
        if rule.grant.as_str().is_empty() {
            issues.push(ConfigIssue::new(
                format!("{key}.grant"),
                "badge must not be empty",
            ));
        }
        rule.when.validate(&format!("{key}.when"), issues);
    }
}

/// The default phone region, parsed; an unknown code is an issue.
fn validate_region(code: Option<&str>, issues: &mut Vec<ConfigIssue>) -> Option<PhoneRegion> {
    match code {
        Some(code) => {
            let region = parse_region(code);
            if region.is_none() {
                issues.push(ConfigIssue::new(
                    "default_phone_region",
                    format!("{code:?} is not an ISO 3166-1 alpha-2 region code such as BR or US"),
                ));
            }
            region
        }
        None => None,
    }
}

/// Each field mapping well formed, and one writer per CRM property and per community field.
fn validate_fields(fields: &[FieldMapping], issues: &mut Vec<ConfigIssue>) {
    let mut crm_writers: HashMap<&str, usize> = HashMap::new();
    let mut community_writers: HashMap<&str, usize> = HashMap::new();
    for (i, field) in fields.iter().enumerate() {
        validate_field(i, field, issues);
        if !cfg!(feature = "phone") && field.transforms.contains(&Transform::PhoneE164) {
            issues.push(ConfigIssue::new(
                format!("fields[{i}].transforms"),
                "phone_e164 needs the `phone` feature (cativa-crm-sync features = [\"phone\"], \
                 or sync-core's `phone`): this build cannot normalize phone numbers",
            ));
        }
        if field.writes_crm() {
            for prop in field.crm.names() {
                if let Some(first) = crm_writers.insert(prop, i) {
                    issues.push(ConfigIssue::new(
                        format!("fields[{i}].crm"),
                        format!("CRM property {prop:?} is already written by fields[{first}]"),
                    ));
                }
            }
        }
        if field.writes_community()
            && let Some(first) = community_writers.insert(&field.community, i)
        {
            issues.push(ConfigIssue::new(
                format!("fields[{i}].community"),
                format!(
                    "community field {:?} is already written by fields[{first}]",
                    field.community
                ),
            ));
        }
    }
}

/// The identity policies.
fn validate_policies(config: &SyncConfig, issues: &mut Vec<ConfigIssue>) {
    if let DuplicatePolicy::MostAdvancedLifecycleStage(order) = &config.duplicates
        && order.is_empty()
    {
        issues.push(ConfigIssue::new(
            "duplicates.most_advanced_lifecycle_stage",
            "list the lifecycle stages from least to most advanced",
        ));
    }
    if let Some(prop) = &config.alternate_email_property
        && prop.trim().is_empty()
    {
        issues.push(ConfigIssue::new(
            "alternate_email_property",
            "must name a CRM property, or be left out",
        ));
    }
}

/// Checks the `[badges]` table and returns its reverse map, id -> name.
fn validate_badge_names(
    badges: &BTreeMap<String, BadgeId>,
    issues: &mut Vec<ConfigIssue>,
) -> BTreeMap<BadgeId, String> {
    let mut names: BTreeMap<BadgeId, String> = BTreeMap::new();
    for (name, id) in badges {
        let key = format!("badges.{name}");
        if name.trim().is_empty() || name.trim() != name {
            issues.push(ConfigIssue::new(
                key.clone(),
                "a badge name must not be blank or start or end with spaces",
            ));
        }
        if id.as_str().trim().is_empty() {
            issues.push(ConfigIssue::new(
                key,
                "give the badge's Cativa id (from the Console or GET /social/v1/badges)",
            ));
            continue;
        }
        if let Some(first) = names.insert(id.clone(), name.clone()) {
            issues.push(ConfigIssue::new(
                key,
                format!("badge id {:?} is already named {first:?}", id.as_str()),
            ));
        }
    }
    names
}

/// The badge id a rule's `grant` stands for: a name of the `[badges]` table, one of its ids,
/// or (without a table) the id as written. `None` when the grant is left as is or is wrong.
fn resolve_grant(
    badges: &BTreeMap<String, BadgeId>,
    ids: &BTreeMap<BadgeId, String>,
    grant: &BadgeId,
    index: usize,
    issues: &mut Vec<ConfigIssue>,
) -> Option<BadgeId> {
    if badges.is_empty() || grant.as_str().is_empty() || ids.contains_key(grant) {
        return None;
    }
    if let Some(id) = badges.get(grant.as_str()) {
        return Some(id.clone());
    }
    let known: Vec<&str> = badges.keys().map(String::as_str).collect();
    issues.push(ConfigIssue::new(
        format!("badge_rules[{index}].grant"),
        format!(
            "unknown badge {:?}: name one of [badges] ({}), or add `{} = \"<badge id>\"` under [badges]",
            grant.as_str(),
            known.join(", "),
            toml_key(grant.as_str()),
        ),
    ));
    None
}

/// A TOML key as a person would write it: bare when it can be, quoted otherwise.
fn toml_key(name: &str) -> String {
    if !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        name.to_owned()
    } else {
        format!("{name:?}")
    }
}

fn validate_field(i: usize, field: &FieldMapping, issues: &mut Vec<ConfigIssue>) {
    let key = format!("fields[{i}]");
    if field.community.trim().is_empty() {
        issues.push(ConfigIssue::new(
            format!("{key}.community"),
            "community field must not be empty",
        ));
    }
    let names = field.crm.names();
    if names.is_empty() || names.iter().any(|n| n.trim().is_empty()) {
        issues.push(ConfigIssue::new(
            format!("{key}.crm"),
            "CRM property names must not be empty",
        ));
    }
    let expected = if has_name(&field.transforms) { 2 } else { 1 };
    if names.len() != expected {
        let why = if expected == 2 {
            "the name transform needs two CRM properties: [first, last]"
        } else {
            "map one CRM property (several need the name transform)"
        };
        issues.push(ConfigIssue::new(format!("{key}.crm"), why));
    }
    if field
        .transforms
        .iter()
        .filter(|t| matches!(t, Transform::Name))
        .count()
        > 1
    {
        issues.push(ConfigIssue::new(
            format!("{key}.transforms"),
            "use the name transform once",
        ));
    }
    for (j, t) in field.transforms.iter().enumerate() {
        if let Transform::ValueMap(map) = t {
            let mut seen = BTreeSet::new();
            if field.rule.may_write_community() && map.values().any(|v| !seen.insert(v)) {
                issues.push(ConfigIssue::new(
                    format!("{key}.transforms[{j}].value_map"),
                    "two community values map to the same CRM value, so it cannot be read back: make the map one-to-one or use rule = \"to_crm\"",
                ));
            }
        }
    }
    let Some(owner) = &field.owner else {
        issues.push(ConfigIssue::new(
            format!("{key}.owner"),
            "every mapping needs an owner (crm, community, shared, or { external = \"system\" }): a writer writes only fields it owns",
        ));
        return;
    };
    let conflict = match field.rule {
        FieldRule::Never => None,
        FieldRule::ToCrm if !owner.allows_crm_write() => {
            Some("rule to_crm writes the CRM, so the owner must be community or shared")
        }
        FieldRule::FromCrm if !owner.allows_community_write() => {
            Some("rule from_crm writes the community, so the owner must be crm or shared")
        }
        FieldRule::Bidirectional
        | FieldRule::PreferCrmUnlessBlank
        | FieldRule::PreferCommunityUnlessBlank
            if *owner != FieldOwner::Shared =>
        {
            Some("this rule writes both sides, so the owner must be shared")
        }
        _ => None,
    };
    if let Some(message) = conflict {
        issues.push(ConfigIssue::new(format!("{key}.owner"), message));
    }
}

/// A checked configuration, compiled for the planner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ValidatedConfig {
    raw: SyncConfig,
    managed: BTreeSet<BadgeId>,
    /// Distinct badges in rule order, each with the indices of the rules granting it.
    badges: Vec<(BadgeId, Vec<usize>)>,
    /// Each rule's condition, described once (plans quote it on every grant).
    descriptions: Vec<String>,
    /// Badge id -> the name the `[badges]` table gives it.
    badge_names: BTreeMap<BadgeId, String>,
    #[serde(skip)]
    transform_ctx: TransformContext,
}

impl ValidatedConfig {
    fn compile(raw: SyncConfig, transform_ctx: TransformContext) -> Self {
        let mut badges: Vec<(BadgeId, Vec<usize>)> = Vec::new();
        for (i, rule) in raw.badge_rules.iter().enumerate() {
            match badges.iter_mut().find(|(b, _)| *b == rule.grant) {
                Some((_, rules)) => rules.push(i),
                None => badges.push((rule.grant.clone(), vec![i])),
            }
        }
        let managed = badges.iter().map(|(b, _)| b.clone()).collect();
        let descriptions = raw.badge_rules.iter().map(|r| r.when.describe()).collect();
        let badge_names = raw
            .badges
            .iter()
            .map(|(name, id)| (id.clone(), name.clone()))
            .collect();
        Self {
            raw,
            managed,
            badges,
            descriptions,
            badge_names,
            transform_ctx,
        }
    }

    /// The configuration as written.
    pub fn raw(&self) -> &SyncConfig {
        &self.raw
    }

    /// The badge rules.
    pub fn rules(&self) -> &[BadgeRule] {
        &self.raw.badge_rules
    }

    /// The description of rule `index`'s condition (`tag "Pago Anual"`).
    pub fn rule_description(&self, index: usize) -> &str {
        self.descriptions.get(index).map_or("", String::as_str)
    }

    /// The field mappings.
    pub fn fields(&self) -> &[FieldMapping] {
        &self.raw.fields
    }

    /// The managed-badge set: every badge some rule grants. The sync assigns and removes
    /// only these, and removes only those it granted itself.
    pub fn managed_badges(&self) -> &BTreeSet<BadgeId> {
        &self.managed
    }

    /// The name the `[badges]` table gives a badge id, if any.
    pub fn badge_name(&self, badge: &BadgeId) -> Option<&str> {
        self.badge_names.get(badge).map(String::as_str)
    }

    /// Every named badge: id -> name.
    pub fn badge_names(&self) -> &BTreeMap<BadgeId, String> {
        &self.badge_names
    }

    /// How people see a badge: `Premium (b0000000-...)` when it is named, else its id.
    pub fn badge_label(&self, badge: &BadgeId) -> String {
        crate::plan::badge_label(badge, self.badge_name(badge))
    }

    /// Whether a badge is managed by the sync.
    pub fn is_managed(&self, badge: &BadgeId) -> bool {
        self.managed.contains(badge)
    }

    /// Distinct managed badges in rule order, with the indices of the rules granting each.
    pub fn badge_rules_by_badge(&self) -> &[(BadgeId, Vec<usize>)] {
        &self.badges
    }

    /// The duplicate-email policy.
    pub fn duplicates(&self) -> &DuplicatePolicy {
        &self.raw.duplicates
    }

    /// The missing-user policy.
    pub fn missing_user(&self) -> MissingUserPolicy {
        self.raw.missing_user
    }

    /// The alternate email property, if configured.
    pub fn alternate_email_property(&self) -> Option<&str> {
        self.raw.alternate_email_property.as_deref()
    }

    /// The companies configuration, when companies are on.
    pub fn companies(&self) -> Option<&CompanyConfig> {
        self.raw.companies.as_ref()
    }

    /// The groups configuration, when groups as lists are on.
    pub fn groups(&self) -> Option<&GroupsConfig> {
        self.raw.groups.as_ref()
    }

    /// The context transforms run with.
    pub fn transform_context(&self) -> &TransformContext {
        &self.transform_ctx
    }

    /// Every CRM property the configuration reads (rules, fields, alternate email), sorted:
    /// what a connector must request from the CRM.
    pub fn crm_properties(&self) -> BTreeSet<String> {
        fn walk(c: &Condition, out: &mut BTreeSet<String>) {
            match c {
                Condition::PropertyEquals { property, .. }
                | Condition::PropertyOneOf { property, .. } => {
                    out.insert(property.clone());
                }
                Condition::All(inner) | Condition::Any(inner) => {
                    inner.iter().for_each(|c| walk(c, out))
                }
                _ => {}
            }
        }
        let mut out = BTreeSet::new();
        for rule in &self.raw.badge_rules {
            walk(&rule.when, &mut out);
        }
        for field in &self.raw.fields {
            out.extend(field.crm.names().iter().cloned());
        }
        if let Some(p) = &self.raw.alternate_email_property {
            out.insert(p.clone());
        }
        if let Some(companies) = &self.raw.companies {
            out.extend(companies.crm_properties());
        }
        if let Some(groups) = &self.raw.groups {
            out.insert(groups.provenance_property.clone());
        }
        out
    }
}

#[cfg(test)]
mod tests;
