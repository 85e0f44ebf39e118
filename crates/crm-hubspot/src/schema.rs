//! Checking values against the live property schema before sending, so an invalid record
//! costs no API call and is reported as invalid (not as rejected by HubSpot).

use std::collections::HashMap;

use crate::convert::{join_multi, parse_time, split_multi};
use crate::model::Property;

/// Why a value cannot be written.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ValueIssue {
    /// The property does not exist in the account: create it or fix the mapping.
    UnknownProperty,
    /// The property is read-only or calculated.
    ReadOnly,
    /// Enumeration values that are not options of the property.
    NotAnOption {
        /// The values missing from the options.
        missing: Vec<String>,
    },
    /// Not a number.
    NotANumber,
    /// Not `true` or `false`.
    NotABool,
    /// Not a date (ISO 8601 or epoch milliseconds).
    NotADate,
}

impl std::fmt::Display for ValueIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::UnknownProperty => f.write_str("the property does not exist in this HubSpot account: create it or fix the field mapping"),
            Self::ReadOnly => f.write_str("the property is read-only"),
            Self::NotAnOption { missing } => write!(
                f,
                "{} not among the property's options: add the options in HubSpot (or enable adding them) or map the value",
                missing.join(", ")
            ),
            Self::NotANumber => f.write_str("the value is not a number"),
            Self::NotABool => f.write_str("the value is not true or false"),
            Self::NotADate => f.write_str("the value is not a date (ISO 8601 or epoch milliseconds)"),
        }
    }
}

/// The contact properties of an account, by name.
#[derive(Debug, Clone, Default)]
pub struct Schema {
    props: HashMap<String, Property>,
}

impl Schema {
    /// A schema from described properties.
    pub fn new(properties: Vec<Property>) -> Self {
        Self {
            props: properties
                .into_iter()
                .map(|p| (p.name.clone(), p))
                .collect(),
        }
    }

    /// A property.
    pub fn get(&self, name: &str) -> Option<&Property> {
        self.props.get(name)
    }

    /// Replaces one property (after adding options).
    pub fn update(&mut self, property: Property) {
        self.props.insert(property.name.clone(), property);
    }

    /// Normalizes a value for writing: multiple-checkbox values are joined with `;` and no
    /// spaces (a leading `;`, HubSpot's append form, is kept).
    pub fn normalize(&self, name: &str, value: &str) -> String {
        match self.props.get(name) {
            Some(p) if p.is_multi_checkbox() && !value.is_empty() => {
                let joined = join_multi(split_multi(value));
                if value.starts_with(';') {
                    format!(";{joined}")
                } else {
                    joined
                }
            }
            _ => value.to_owned(),
        }
    }

    /// Checks one value. An empty string (which clears the property) is always valid for a
    /// writable property.
    pub fn check(&self, name: &str, value: &str) -> Result<(), ValueIssue> {
        let p = self.props.get(name).ok_or(ValueIssue::UnknownProperty)?;
        if !p.is_writable() {
            return Err(ValueIssue::ReadOnly);
        }
        let v = value.trim();
        if v.is_empty() {
            return Ok(());
        }
        match (p.kind.as_str(), p.field_type.as_str()) {
            ("bool", _) | (_, "booleancheckbox") => match v {
                "true" | "false" => Ok(()),
                _ => Err(ValueIssue::NotABool),
            },
            ("enumeration", "checkbox") => {
                let missing: Vec<String> = split_multi(v)
                    .filter(|x| !p.has_option(x))
                    .map(str::to_owned)
                    .collect();
                if missing.is_empty() {
                    Ok(())
                } else {
                    Err(ValueIssue::NotAnOption { missing })
                }
            }
            ("enumeration", _) => {
                if p.has_option(v) {
                    Ok(())
                } else {
                    Err(ValueIssue::NotAnOption {
                        missing: vec![v.to_owned()],
                    })
                }
            }
            ("number", _) => v
                .parse::<f64>()
                .map(|_| ())
                .map_err(|_| ValueIssue::NotANumber),
            ("date" | "datetime", _) => {
                let is_day =
                    v.len() == 10 && chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d").is_ok();
                if is_day || parse_time(v).is_some() {
                    Ok(())
                } else {
                    Err(ValueIssue::NotADate)
                }
            }
            _ => Ok(()),
        }
    }
}

/// A property as `sync_core::suggest::suggest_mappings` input: its name, label, kind
/// (`phone` and `email` by field type or name) and option values.
pub fn crm_property(p: &Property) -> sync_core::suggest::CrmProperty {
    use sync_core::suggest::{CrmProperty, FieldKind};
    let kind = match (p.kind.as_str(), p.field_type.as_str()) {
        ("bool", _) | (_, "booleancheckbox") => FieldKind::Bool,
        ("enumeration", _) => FieldKind::Enumeration,
        ("number", _) => FieldKind::Number,
        ("date" | "datetime", _) => FieldKind::Date,
        (_, "phonenumber") => FieldKind::Phone,
        _ if p.name == "email" || p.name.ends_with("_email") => FieldKind::Email,
        _ => FieldKind::Text,
    };
    CrmProperty::new(&p.name, &p.label, kind)
        .with_options(p.options.iter().map(|o| o.value.clone()))
}

impl Schema {
    /// The writable properties as `suggest_mappings` input, sorted by name.
    pub fn crm_properties(&self) -> Vec<sync_core::suggest::CrmProperty> {
        let mut props: Vec<_> = self
            .props
            .values()
            .filter(|p| p.is_writable())
            .map(crm_property)
            .collect();
        props.sort_by(|a, b| a.name.cmp(&b.name));
        props
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Schema {
        let props: Vec<Property> = serde_json::from_str(
            r#"[
            {"name":"email","label":"Email","type":"string","fieldType":"text","groupName":"contactinformation","description":"","options":[]},
            {"name":"cativa_badges","label":"B","type":"enumeration","fieldType":"checkbox","groupName":"g","description":"","options":[{"label":"VIP","value":"vip"},{"label":"Speaker","value":"speaker"}]},
            {"name":"plan","label":"P","type":"enumeration","fieldType":"select","groupName":"g","description":"","options":[{"label":"A","value":"annual"}]},
            {"name":"score","label":"S","type":"number","fieldType":"number","groupName":"g","description":"","options":[]},
            {"name":"optin","label":"O","type":"bool","fieldType":"booleancheckbox","groupName":"g","description":"","options":[]},
            {"name":"since","label":"D","type":"date","fieldType":"date","groupName":"g","description":"","options":[]},
            {"name":"createdate","label":"C","type":"datetime","fieldType":"date","groupName":"g","description":"","options":[],"modificationMetadata":{"archivable":false,"readOnlyDefinition":true,"readOnlyValue":true}}
        ]"#,
        )
        .unwrap();
        Schema::new(props)
    }

    #[test]
    fn checks_each_type() {
        let s = schema();
        assert_eq!(s.check("nope", "x"), Err(ValueIssue::UnknownProperty));
        assert_eq!(
            s.check("createdate", "2020-01-01"),
            Err(ValueIssue::ReadOnly)
        );
        assert!(s.check("cativa_badges", "vip;speaker").is_ok());
        assert_eq!(
            s.check("cativa_badges", "vip;gold;x"),
            Err(ValueIssue::NotAnOption {
                missing: vec!["gold".into(), "x".into()]
            })
        );
        assert!(s.check("cativa_badges", "").is_ok(), "empty clears");
        assert!(s.check("plan", "annual").is_ok());
        assert!(
            s.check("plan", "Annual").is_err(),
            "enumerations are case-sensitive"
        );
        assert_eq!(s.check("score", "1.5e3"), Ok(()));
        assert_eq!(s.check("score", "lots"), Err(ValueIssue::NotANumber));
        assert_eq!(s.check("optin", "yes"), Err(ValueIssue::NotABool));
        assert!(
            s.check("since", "2026-05-01").is_ok() && s.check("since", "1767225600000").is_ok()
        );
        assert_eq!(s.check("since", "May 1st"), Err(ValueIssue::NotADate));
        assert!(s.check("email", "anything").is_ok());
    }

    #[test]
    fn writable_properties_become_suggestion_input() {
        use sync_core::suggest::FieldKind;
        let props = schema().crm_properties();
        let names: Vec<&str> = props.iter().map(|p| p.name.as_str()).collect();
        assert!(!names.contains(&"createdate"), "read-only left out");
        let badges = props.iter().find(|p| p.name == "cativa_badges").unwrap();
        assert_eq!(badges.kind, FieldKind::Enumeration);
        assert_eq!(badges.options, ["vip", "speaker"]);
        let email = props.iter().find(|p| p.name == "email").unwrap();
        assert_eq!(email.kind, FieldKind::Email);
    }

    #[test]
    fn normalizes_checkbox_values() {
        let s = schema();
        assert_eq!(s.normalize("cativa_badges", "vip; speaker"), "vip;speaker");
        assert_eq!(s.normalize("cativa_badges", ";speaker"), ";speaker");
        assert_eq!(s.normalize("plan", " annual "), " annual ");
    }
}
