//! Mapping helpers: suggest field mappings from the two schemas, and preview what a mapping
//! would write for one record. Deterministic, explainable, no network.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::{FieldMapping, FieldOwner, FieldRule, NullGuard, SyncConfig};
use crate::transform::{TransformContext, from_crm, parse_region, to_crm};

/// The type of a field, as far as mapping compatibility goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FieldKind {
    /// Free text.
    Text,
    /// An email address.
    Email,
    /// A phone number.
    Phone,
    /// A number.
    Number,
    /// A date or date-time.
    Date,
    /// A boolean.
    Bool,
    /// One of a set of options.
    Enumeration,
}

impl FieldKind {
    fn compatible(self, other: FieldKind) -> bool {
        self == other
            || matches!(
                (self, other),
                (FieldKind::Text, FieldKind::Enumeration)
                    | (FieldKind::Enumeration, FieldKind::Text)
                    | (FieldKind::Text, FieldKind::Phone)
                    | (FieldKind::Phone, FieldKind::Text)
                    | (FieldKind::Text, FieldKind::Email)
                    | (FieldKind::Email, FieldKind::Text)
            )
    }
}

/// A community profile field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CommunityField {
    /// Field name (`jobTitle`).
    pub name: String,
    /// Type.
    pub kind: FieldKind,
}

impl CommunityField {
    /// Builds a descriptor.
    pub fn new(name: impl Into<String>, kind: FieldKind) -> Self {
        Self {
            name: name.into(),
            kind,
        }
    }
}

/// A CRM property, as the CRM describes it (HubSpot properties API, Salesforce describe).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CrmProperty {
    /// Internal name (`jobtitle`).
    pub name: String,
    /// Label (`Job Title`).
    pub label: String,
    /// Type.
    pub kind: FieldKind,
    /// Allowed option values, for enumerations.
    #[serde(default)]
    pub options: Vec<String>,
}

impl CrmProperty {
    /// Builds a descriptor.
    pub fn new(name: impl Into<String>, label: impl Into<String>, kind: FieldKind) -> Self {
        Self {
            name: name.into(),
            label: label.into(),
            kind,
            options: Vec::new(),
        }
    }

    /// Sets the options (builder style).
    pub fn with_options(mut self, options: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.options = options.into_iter().map(Into::into).collect();
        self
    }
}

/// A suggested mapping, with its confidence in `0..=1` and the reasons behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Suggestion {
    /// The mapping proposed (rule `from_crm`, owner `crm`: review before use).
    pub mapping: FieldMapping,
    /// Confidence in `0..=1`.
    pub confidence: f64,
    /// Why, one reason per line.
    pub reasons: Vec<String>,
}

/// Lowercase alphanumerics only: `jobTitle`, `job_title` and `Job Title` all become `jobtitle`.
fn normalize(name: &str) -> String {
    name.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Groups of names that mean the same field, normalized.
const SYNONYMS: &[&[&str]] = &[
    &[
        "phone",
        "phonenumber",
        "mobilephone",
        "mobile",
        "telephone",
        "cellphone",
    ],
    &["jobtitle", "title", "position", "role"],
    &[
        "company",
        "companyname",
        "organization",
        "organisation",
        "employer",
    ],
    &["firstname", "givenname", "forename"],
    &["lastname", "surname", "familyname"],
    &["city", "location", "town"],
    &["email", "emailaddress", "mail"],
    &["country", "countryname"],
    &["website", "url", "homepage"],
];

fn synonyms(a: &str, b: &str) -> bool {
    SYNONYMS
        .iter()
        .any(|group| group.contains(&a) && group.contains(&b))
}

fn score(field: &CommunityField, prop: &CrmProperty) -> Option<(f64, Vec<String>)> {
    let (f, n, l) = (
        normalize(&field.name),
        normalize(&prop.name),
        normalize(&prop.label),
    );
    let (mut confidence, mut reasons) = if f == n {
        (
            0.9,
            vec![format!(
                "name {:?} matches {:?} after normalization",
                field.name, prop.name
            )],
        )
    } else if f == l {
        (
            0.8,
            vec![format!(
                "name {:?} matches the label {:?}",
                field.name, prop.label
            )],
        )
    } else if synonyms(&f, &n) || synonyms(&f, &l) {
        (
            0.7,
            vec![format!(
                "{:?} and {:?} are known synonyms",
                field.name, prop.name
            )],
        )
    } else {
        return None;
    };
    if field.kind.compatible(prop.kind) {
        confidence += 0.1;
        reasons.push(format!(
            "types compatible ({:?} / {:?})",
            field.kind, prop.kind
        ));
    } else {
        confidence -= 0.4;
        reasons.push(format!(
            "types differ ({:?} / {:?}): check a transform",
            field.kind, prop.kind
        ));
    }
    Some((f64::min(confidence, 1.0), reasons))
}

/// Suggests one mapping per community field that has a plausible CRM property, best first
/// per field, sorted by community field name. A community field `name` is suggested onto
/// `firstname` + `lastname` with the name transform when both exist. Suggestions under 0.5
/// confidence are left out.
///
/// ```
/// use sync_core::suggest::{CommunityField, CrmProperty, FieldKind, suggest_mappings};
/// let community = [CommunityField::new("jobTitle", FieldKind::Text), CommunityField::new("phone", FieldKind::Phone)];
/// let crm = [CrmProperty::new("jobtitle", "Job Title", FieldKind::Text), CrmProperty::new("phone_number", "Phone", FieldKind::Phone)];
/// let s = suggest_mappings(&community, &crm);
/// assert_eq!(s.len(), 2);
/// assert!(s[0].confidence >= 0.9);
/// ```
pub fn suggest_mappings(community: &[CommunityField], crm: &[CrmProperty]) -> Vec<Suggestion> {
    let mut out = Vec::new();
    for field in community {
        if normalize(&field.name) == "name" || normalize(&field.name) == "fullname" {
            let first = crm.iter().find(|p| normalize(&p.name) == "firstname");
            let last = crm.iter().find(|p| normalize(&p.name) == "lastname");
            if let (Some(first), Some(last)) = (first, last) {
                out.push(Suggestion {
                    mapping: FieldMapping::name(field.name.clone(), first.name.clone(), last.name.clone(), FieldRule::FromCrm, FieldOwner::Crm),
                    confidence: 0.85,
                    reasons: vec![format!(
                        "a full name maps onto {:?} + {:?} with the name transform (last word is the last name)",
                        first.name, last.name
                    )],
                });
                continue;
            }
        }
        let best = crm
            .iter()
            .filter_map(|p| score(field, p).map(|(c, r)| (c, r, p)))
            .filter(|(c, ..)| *c >= 0.5)
            .max_by(|a, b| a.0.total_cmp(&b.0).then_with(|| b.2.name.cmp(&a.2.name)));
        if let Some((confidence, reasons, prop)) = best {
            out.push(Suggestion {
                mapping: FieldMapping::new(
                    field.name.clone(),
                    prop.name.clone(),
                    FieldRule::FromCrm,
                    FieldOwner::Crm,
                ),
                confidence,
                reasons,
            });
        }
    }
    out.sort_by(|a, b| a.mapping.community.cmp(&b.mapping.community));
    out
}

/// One record's values on both sides, for a preview.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PreviewRecord {
    /// Community field values.
    #[serde(default)]
    pub community: BTreeMap<String, String>,
    /// CRM property values.
    #[serde(default)]
    pub crm: BTreeMap<String, String>,
}

impl PreviewRecord {
    /// Sets a community value (builder style).
    pub fn community(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.community.insert(k.into(), v.into());
        self
    }

    /// Sets a CRM value (builder style).
    pub fn crm(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.crm.insert(k.into(), v.into());
        self
    }
}

/// What each side would receive, with warnings and errors. Nothing is written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MappingPreview {
    /// CRM property -> value the CRM would receive.
    pub to_crm: BTreeMap<String, String>,
    /// Community field -> value the community would receive.
    pub to_community: BTreeMap<String, String>,
    /// Values dropped by a null guard, values a transform changed.
    pub warnings: Vec<String>,
    /// Mappings that cannot work: no owner, rule against owner, type mismatch, bad value.
    pub errors: Vec<String>,
}

fn check_type(prop: &CrmProperty, value: &str) -> Option<String> {
    match prop.kind {
        FieldKind::Enumeration
            if !prop.options.is_empty()
                && !value
                    .split(';')
                    .all(|v| prop.options.iter().any(|o| o == v)) =>
        {
            Some(format!(
                "{value:?} is not one of the options of {} ({:?})",
                prop.name, prop.options
            ))
        }
        FieldKind::Number if value.trim().parse::<f64>().is_err() => Some(format!(
            "{value:?} is not a number, but {} is numeric",
            prop.name
        )),
        FieldKind::Bool if !matches!(value.trim(), "true" | "false") => Some(format!(
            "{value:?} is not true/false, but {} is a boolean",
            prop.name
        )),
        _ => None,
    }
}

/// Previews every field mapping of `config` on one record: the values each side would
/// receive, plus warnings (dropped by a null guard, changed by a transform) and errors (no
/// owner, rule against owner, type mismatch against `schema` when given). Writes nothing and
/// does not need the configuration to be valid.
pub fn preview_mapping(
    config: &SyncConfig,
    record: &PreviewRecord,
    schema: Option<&[CrmProperty]>,
) -> MappingPreview {
    let ctx = TransformContext {
        default_region: config
            .default_phone_region
            .as_deref()
            .and_then(parse_region),
    };
    let mut out = MappingPreview::default();
    for (i, field) in config.fields.iter().enumerate() {
        let key = format!("fields[{i}] ({})", field.community);
        let Some(owner) = &field.owner else {
            out.errors
                .push(format!("{key}: no owner, so nothing is written; set owner"));
            continue;
        };
        if field.rule.may_write_crm() && !owner.allows_crm_write() && field.rule == FieldRule::ToCrm
            || field.rule.may_write_community()
                && !owner.allows_community_write()
                && field.rule == FieldRule::FromCrm
        {
            out.errors.push(format!(
                "{key}: rule {:?} writes a side owner {owner:?} does not allow",
                field.rule
            ));
            continue;
        }
        let names = field.crm.names();
        if field.writes_crm() {
            match record.community.get(&field.community).filter(|v| !v.trim().is_empty()) {
                None => out.warnings.push(format!("{key}: community value is blank, dropped by the null guard (never clears the CRM)")),
                Some(value) => match to_crm(&field.transforms, value, &ctx) {
                    Err(e) => out.errors.push(format!("{key}: {e}")),
                    Ok(values) => {
                        for (name, v) in names.iter().zip(values) {
                            if v.trim().is_empty() {
                                out.warnings.push(format!("{key}: {name} would be blank, dropped by the null guard"));
                                continue;
                            }
                            let current = record.crm.get(name).map_or("", String::as_str);
                            if field.null_guard == NullGuard::SetOnlyIfEmpty && !current.trim().is_empty() {
                                out.warnings.push(format!("{key}: {name} already set, kept by set_only_if_empty"));
                                continue;
                            }
                            if names.len() == 1 && v != *value {
                                out.warnings.push(format!("{key}: transform changed {value:?} to {v:?}"));
                            }
                            if let Some(err) = schema.and_then(|s| s.iter().find(|p| p.name == *name)).and_then(|p| check_type(p, &v)) {
                                out.errors.push(format!("{key}: {err}"));
                                continue;
                            }
                            out.to_crm.insert(name.clone(), v);
                        }
                    }
                },
            }
        }
        if field.writes_community() {
            let raw: Vec<&str> = names
                .iter()
                .map(|n| record.crm.get(n).map_or("", String::as_str))
                .collect();
            if raw.iter().all(|v| v.trim().is_empty()) {
                out.warnings.push(format!("{key}: CRM value is blank, dropped by the null guard (never clears the community)"));
            } else {
                match from_crm(&field.transforms, &raw, &ctx) {
                    Err(e) => out.errors.push(format!("{key}: {e}")),
                    Ok(v) => {
                        if names.len() == 1 && v != raw[0] {
                            out.warnings
                                .push(format!("{key}: transform changed {:?} to {v:?}", raw[0]));
                        }
                        let current = record
                            .community
                            .get(&field.community)
                            .map_or("", String::as_str);
                        if field.null_guard == NullGuard::SetOnlyIfEmpty
                            && !current.trim().is_empty()
                        {
                            out.warnings.push(format!(
                                "{key}: community value already set, kept by set_only_if_empty"
                            ));
                        } else {
                            out.to_community.insert(field.community.clone(), v);
                        }
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::field_reassign_with_default)]
mod tests {
    use super::*;
    use crate::transform::Transform;

    fn crm_schema() -> Vec<CrmProperty> {
        vec![
            CrmProperty::new("firstname", "First Name", FieldKind::Text),
            CrmProperty::new("lastname", "Last Name", FieldKind::Text),
            CrmProperty::new("jobtitle", "Job Title", FieldKind::Text),
            CrmProperty::new("phone_number", "Phone Number", FieldKind::Phone),
            CrmProperty::new("company", "Company Name", FieldKind::Text),
            CrmProperty::new("numberofemployees", "Employees", FieldKind::Number),
            CrmProperty::new("tier", "Tier", FieldKind::Enumeration)
                .with_options(["gold", "silver"]),
        ]
    }

    #[test]
    fn suggests_by_name_label_synonym_and_type() {
        let community = [
            CommunityField::new("jobTitle", FieldKind::Text),
            CommunityField::new("phone", FieldKind::Phone),
            CommunityField::new("name", FieldKind::Text),
            CommunityField::new("organization", FieldKind::Text),
            CommunityField::new("favouriteColour", FieldKind::Text),
            CommunityField::new("employees", FieldKind::Bool),
        ];
        let s = suggest_mappings(&community, &crm_schema());
        let by: BTreeMap<_, _> = s
            .iter()
            .map(|x| (x.mapping.community.as_str(), x))
            .collect();
        assert_eq!(by["jobTitle"].mapping.crm.names(), ["jobtitle"]);
        assert!(
            (by["jobTitle"].confidence - 1.0).abs() < 1e-9,
            "name match + types"
        );
        assert_eq!(by["phone"].mapping.crm.names(), ["phone_number"]);
        assert!(by["phone"].reasons[0].contains("synonyms"));
        assert_eq!(by["name"].mapping.crm.names(), ["firstname", "lastname"]);
        assert!(by["name"].mapping.transforms.contains(&Transform::Name));
        assert_eq!(by["organization"].mapping.crm.names(), ["company"]);
        assert!(!by.contains_key("favouriteColour"));
        // Label match, but the types differ: 0.8 + ... - 0.4 = 0.4 < 0.5, left out.
        assert!(!by.contains_key("employees"));
        // Deterministic.
        assert_eq!(s, suggest_mappings(&community, &crm_schema()));
    }

    #[cfg(feature = "phone")]
    #[test]
    fn preview_reports_values_warnings_and_errors() {
        let mut config = SyncConfig::default();
        config.default_phone_region = Some("US".into());
        config.fields = vec![
            FieldMapping::new(
                "phone",
                "phone_number",
                FieldRule::ToCrm,
                FieldOwner::Community,
            )
            .with_transform(Transform::PhoneE164),
            FieldMapping::name(
                "name",
                "firstname",
                "lastname",
                FieldRule::FromCrm,
                FieldOwner::Crm,
            ),
            FieldMapping::new(
                "company",
                "company",
                FieldRule::ToCrm,
                FieldOwner::Community,
            ),
            FieldMapping::new("tier", "tier", FieldRule::ToCrm, FieldOwner::Community),
            FieldMapping::new(
                "size",
                "numberofemployees",
                FieldRule::ToCrm,
                FieldOwner::Community,
            ),
            FieldMapping::new("x", "x", FieldRule::FromCrm, FieldOwner::Community),
        ];
        let mut unowned = FieldMapping::new("y", "y", FieldRule::FromCrm, FieldOwner::Crm);
        unowned.owner = None;
        config.fields.push(unowned);
        let record = PreviewRecord::default()
            .community("phone", "(415) 555-2671")
            .community("company", "  ")
            .community("tier", "platinum")
            .community("size", "lots")
            .crm("firstname", "Mary Jane")
            .crm("lastname", "Watson");
        let schema = crm_schema();
        let p = preview_mapping(&config, &record, Some(&schema));
        assert_eq!(
            p.to_crm.get("phone_number").map(String::as_str),
            Some("+14155552671")
        );
        assert_eq!(
            p.to_community.get("name").map(String::as_str),
            Some("Mary Jane Watson")
        );
        assert!(
            p.warnings.iter().any(|w| w.contains("transform changed")),
            "{:?}",
            p.warnings
        );
        assert!(
            p.warnings
                .iter()
                .any(|w| w.contains("company") && w.contains("null guard"))
        );
        assert!(
            p.errors
                .iter()
                .any(|e| e.contains("platinum") && e.contains("options")),
            "{:?}",
            p.errors
        );
        assert!(p.errors.iter().any(|e| e.contains("not a number")));
        assert!(
            p.errors
                .iter()
                .any(|e| e.contains("(x)") && e.contains("does not allow"))
        );
        assert!(
            p.errors
                .iter()
                .any(|e| e.contains("(y)") && e.contains("no owner"))
        );
        assert!(!p.to_crm.contains_key("tier") && !p.to_crm.contains_key("company"));
    }
}
