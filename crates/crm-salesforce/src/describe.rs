//! The live schema of an sObject (`GET /services/data/vXX.X/sobjects/{object}/describe`):
//! its fields with their type, picklist values and whether they can be created and updated.
//! It feeds `sync_core::suggest::suggest_mappings` ([`SObjectDescribe::crm_properties`]) and
//! checks field mappings and values before anything is sent
//! ([`SObjectDescribe::check_mappings`], [`SObjectDescribe::check_value`]), as HubSpot's
//! `Schema` does for its properties.

use serde::Deserialize;
use sync_core::config::FieldMapping;
use sync_core::suggest::{CrmProperty, FieldKind};

/// A described sObject.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct SObjectDescribe {
    /// API name (`Contact`).
    pub name: String,
    /// Label.
    #[serde(default)]
    pub label: String,
    /// The fields.
    pub fields: Vec<DescribeField>,
}

/// One field of a describe.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct DescribeField {
    /// API name (`Email`, `Cativa_Tags__c`).
    pub name: String,
    /// Label.
    #[serde(default)]
    pub label: String,
    /// Salesforce type: `string`, `email`, `phone`, `picklist`, `multipicklist`, `boolean`,
    /// `double`, `date`, `datetime`, `reference`, `id`, ...
    #[serde(rename = "type")]
    pub field_type: String,
    /// Whether it can be set on create.
    #[serde(default)]
    pub createable: bool,
    /// Whether it can be changed on update.
    #[serde(default)]
    pub updateable: bool,
    /// Whether it can be blank.
    #[serde(default)]
    pub nillable: bool,
    /// Whether it is a custom field (`__c`).
    #[serde(default)]
    pub custom: bool,
    /// The allowed values of a picklist.
    #[serde(default)]
    pub picklist_values: Vec<PicklistValue>,
}

/// One picklist value.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct PicklistValue {
    /// The API value.
    pub value: String,
    /// Label.
    #[serde(default)]
    pub label: Option<String>,
    /// Whether it can be chosen.
    #[serde(default)]
    pub active: bool,
}

/// Why a field mapping or a value does not fit the live schema.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FieldIssue {
    /// No such field on the object: create it or fix the mapping.
    UnknownField,
    /// The field cannot be written (system, formula, or not updateable).
    NotUpdateable,
    /// Picklist values that are not active values of the field.
    NotAPicklistValue {
        /// The values missing.
        missing: Vec<String>,
    },
    /// The value does not have the field's type.
    WrongType {
        /// The field's Salesforce type.
        expected: String,
    },
}

impl std::fmt::Display for FieldIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::UnknownField => f.write_str(
                "the field does not exist on this object in the org: create it or fix the field mapping",
            ),
            Self::NotUpdateable => f.write_str(
                "the field is not updateable: map it from the CRM only (rule from_crm) or pick another field",
            ),
            Self::NotAPicklistValue { missing } => write!(
                f,
                "{} not among the field's active picklist values: add them in Setup or map the value",
                missing.join(", ")
            ),
            Self::WrongType { expected } => write!(
                f,
                "the value is not a valid {expected}: fix the value or add a transform"
            ),
        }
    }
}

/// One mapping that does not fit, from [`SObjectDescribe::check_mappings`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MappingIssue {
    /// Where: `fields[2] (jobTitle) -> Title`.
    pub at: String,
    /// What.
    pub issue: FieldIssue,
}

impl DescribeField {
    fn is_picklist(&self) -> bool {
        matches!(self.field_type.as_str(), "picklist" | "multipicklist")
    }

    fn allows(&self, value: &str) -> bool {
        self.picklist_values
            .iter()
            .any(|p| p.active && p.value == value)
    }

    /// The mapping-compatibility kind of the field.
    pub fn kind(&self) -> FieldKind {
        match self.field_type.as_str() {
            "email" => FieldKind::Email,
            "phone" => FieldKind::Phone,
            "double" | "int" | "long" | "currency" | "percent" => FieldKind::Number,
            "date" | "datetime" => FieldKind::Date,
            "boolean" => FieldKind::Bool,
            "picklist" | "multipicklist" => FieldKind::Enumeration,
            _ => FieldKind::Text,
        }
    }

    /// The field as `suggest_mappings` input (active picklist values as options).
    pub fn crm_property(&self) -> CrmProperty {
        let label = if self.label.is_empty() {
            &self.name
        } else {
            &self.label
        };
        CrmProperty::new(&self.name, label, self.kind()).with_options(
            self.picklist_values
                .iter()
                .filter(|p| p.active)
                .map(|p| p.value.clone()),
        )
    }
}

impl SObjectDescribe {
    /// A field by API name (Salesforce names are case-insensitive).
    pub fn field(&self, name: &str) -> Option<&DescribeField> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
    }

    /// The fields a sync can write (updateable) as `suggest_mappings` input, ids and
    /// references left out.
    pub fn crm_properties(&self) -> Vec<CrmProperty> {
        self.fields
            .iter()
            .filter(|f| f.updateable && !matches!(f.field_type.as_str(), "id" | "reference"))
            .map(DescribeField::crm_property)
            .collect()
    }

    /// Checks every field mapping against the live schema: each CRM field must exist, and a
    /// mapping that may write the CRM needs an updateable field.
    pub fn check_mappings(&self, fields: &[FieldMapping]) -> Vec<MappingIssue> {
        let mut out = Vec::new();
        for (i, m) in fields.iter().enumerate() {
            for name in m.crm.names() {
                let at = format!("fields[{i}] ({}) -> {name}", m.community);
                let issue = match self.field(name) {
                    None => Some(FieldIssue::UnknownField),
                    Some(f) if m.rule.may_write_crm() && !f.updateable => {
                        Some(FieldIssue::NotUpdateable)
                    }
                    Some(_) => None,
                };
                if let Some(issue) = issue {
                    out.push(MappingIssue { at, issue });
                }
            }
        }
        out
    }

    /// Checks one value to be written to `name`. An empty value (which clears the field) is
    /// valid for an updateable field.
    pub fn check_value(&self, name: &str, value: &str) -> Result<(), FieldIssue> {
        let f = self.field(name).ok_or(FieldIssue::UnknownField)?;
        if !f.updateable {
            return Err(FieldIssue::NotUpdateable);
        }
        let v = value.trim();
        if v.is_empty() {
            return Ok(());
        }
        if f.is_picklist() {
            let values: Vec<&str> = if f.field_type == "multipicklist" {
                v.split(';')
                    .map(str::trim)
                    .filter(|x| !x.is_empty())
                    .collect()
            } else {
                vec![v]
            };
            let missing: Vec<String> = values
                .into_iter()
                .filter(|x| !f.allows(x))
                .map(str::to_owned)
                .collect();
            return if missing.is_empty() {
                Ok(())
            } else {
                Err(FieldIssue::NotAPicklistValue { missing })
            };
        }
        let ok = match f.kind() {
            FieldKind::Number => v.parse::<f64>().is_ok(),
            FieldKind::Bool => matches!(v, "true" | "false"),
            FieldKind::Date => {
                chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d").is_ok()
                    || chrono::DateTime::parse_from_rfc3339(v).is_ok()
                    || chrono::DateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%S%.f%z").is_ok()
            }
            FieldKind::Email => v.contains('@') && !v.contains(char::is_whitespace),
            _ => true,
        };
        if ok {
            Ok(())
        } else {
            Err(FieldIssue::WrongType {
                expected: f.field_type.clone(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sync_core::config::{FieldOwner, FieldRule};

    fn describe() -> SObjectDescribe {
        serde_json::from_str(
            r#"{"name":"Contact","label":"Contact","fields":[
            {"name":"Id","label":"Contact ID","type":"id","createable":false,"updateable":false,"picklistValues":[]},
            {"name":"Email","label":"Email","type":"email","createable":true,"updateable":true,"picklistValues":[]},
            {"name":"Title","label":"Title","type":"string","createable":true,"updateable":true,"picklistValues":[]},
            {"name":"CreatedDate","label":"Created","type":"datetime","createable":false,"updateable":false,"picklistValues":[]},
            {"name":"Score__c","label":"Score","type":"double","createable":true,"updateable":true,"custom":true,"picklistValues":[]},
            {"name":"LeadSource","label":"Lead Source","type":"picklist","createable":true,"updateable":true,"picklistValues":[
                {"active":true,"defaultValue":false,"label":"Web","validFor":null,"value":"Web"},
                {"active":false,"defaultValue":false,"label":"Old","validFor":null,"value":"Old"}]},
            {"name":"Tags__c","label":"Tags","type":"multipicklist","createable":true,"updateable":true,"picklistValues":[
                {"active":true,"label":"VIP","value":"VIP"},{"active":true,"label":"Annual","value":"Annual"}]}
            ]}"#,
        )
        .unwrap()
    }

    #[test]
    fn values_are_checked_against_type_picklist_and_updateability() {
        let d = describe();
        assert_eq!(d.check_value("Nope__c", "x"), Err(FieldIssue::UnknownField));
        assert_eq!(
            d.check_value("CreatedDate", "2026-01-01"),
            Err(FieldIssue::NotUpdateable)
        );
        assert!(d.check_value("leadsource", "Web").is_ok());
        assert_eq!(
            d.check_value("LeadSource", "Old"),
            Err(FieldIssue::NotAPicklistValue {
                missing: vec!["Old".into()]
            })
        );
        assert!(d.check_value("Tags__c", "VIP;Annual").is_ok());
        assert_eq!(
            d.check_value("Tags__c", "VIP;Gold"),
            Err(FieldIssue::NotAPicklistValue {
                missing: vec!["Gold".into()]
            })
        );
        assert!(d.check_value("Score__c", "12.5").is_ok());
        assert!(matches!(
            d.check_value("Score__c", "lots"),
            Err(FieldIssue::WrongType { .. })
        ));
        assert!(d.check_value("Email", "a@b.example").is_ok());
        assert!(d.check_value("Email", "not an email").is_err());
        assert!(d.check_value("Title", "").is_ok());
    }

    #[test]
    fn mappings_need_existing_and_updateable_fields_to_write() {
        let d = describe();
        let fields = vec![
            FieldMapping::new("jobTitle", "Title", FieldRule::ToCrm, FieldOwner::Community),
            FieldMapping::new("joined", "CreatedDate", FieldRule::FromCrm, FieldOwner::Crm),
            FieldMapping::new(
                "joined2",
                "CreatedDate",
                FieldRule::ToCrm,
                FieldOwner::Community,
            ),
            FieldMapping::new("x", "Missing__c", FieldRule::FromCrm, FieldOwner::Crm),
        ];
        let issues = d.check_mappings(&fields);
        assert_eq!(issues.len(), 2, "{issues:?}");
        assert_eq!(issues[0].issue, FieldIssue::NotUpdateable);
        assert!(issues[0].at.contains("joined2"));
        assert_eq!(issues[1].issue, FieldIssue::UnknownField);
    }

    #[test]
    fn writable_fields_become_suggestion_input() {
        let props = describe().crm_properties();
        let names: Vec<&str> = props.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            ["Email", "Title", "Score__c", "LeadSource", "Tags__c"]
        );
        assert_eq!(props[0].kind, FieldKind::Email);
        assert_eq!(props[3].options, ["Web"], "inactive values are not options");
    }
}
