//! The Properties API: property definitions and their options.

use serde::{Deserialize, Serialize};

/// An enumeration option. Always write `value`, never `label`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct PropertyOption {
    /// Shown in HubSpot.
    pub label: String,
    /// Stored and written through the API.
    pub value: String,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_order: Option<i32>,
    /// Hidden in forms.
    #[serde(default)]
    pub hidden: bool,
}

impl PropertyOption {
    /// An option whose label is its value.
    pub fn new(value: impl Into<String>) -> Self {
        let value = value.into();
        Self {
            label: value.clone(),
            value,
            description: None,
            display_order: None,
            hidden: false,
        }
    }
}

/// Which parts of a property the API may change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[non_exhaustive]
pub struct ModificationMetadata {
    /// Whether the property may be archived.
    pub archivable: bool,
    /// Whether its definition is read-only.
    pub read_only_definition: bool,
    /// Whether its value is read-only (e.g. `createdate`).
    pub read_only_value: bool,
    /// Whether its options are read-only.
    pub read_only_options: Option<bool>,
}

/// A property definition (`GET /crm/v3/properties/contacts`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Property {
    /// Internal name (used in the API).
    pub name: String,
    /// Label.
    #[serde(default)]
    pub label: String,
    /// `bool`, `date`, `datetime`, `enumeration`, `number`, `phone_number`, `string`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `checkbox` (multi-select), `select`, `radio`, `booleancheckbox`, `text`, ...
    #[serde(default)]
    pub field_type: String,
    /// Property group.
    #[serde(default)]
    pub group_name: String,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// Options of an enumeration.
    #[serde(default)]
    pub options: Vec<PropertyOption>,
    /// Unique values (usable as `idProperty`).
    #[serde(default)]
    pub has_unique_value: bool,
    /// Hidden.
    #[serde(default)]
    pub hidden: bool,
    /// Calculated (read-only).
    #[serde(default)]
    pub calculated: bool,
    /// Defined by HubSpot.
    #[serde(default)]
    pub hubspot_defined: Option<bool>,
    /// What may be modified.
    #[serde(default)]
    pub modification_metadata: Option<ModificationMetadata>,
    /// Archived.
    #[serde(default)]
    pub archived: bool,
}

impl Property {
    /// Whether this is a multiple-checkboxes property (`;`-separated values).
    pub fn is_multi_checkbox(&self) -> bool {
        self.kind == "enumeration" && self.field_type == "checkbox"
    }

    /// Whether values can be written through the API.
    pub fn is_writable(&self) -> bool {
        !self.calculated
            && !self
                .modification_metadata
                .as_ref()
                .is_some_and(|m| m.read_only_value)
    }

    /// Whether `value` is one of the options (enumerations only; always true otherwise).
    pub fn has_option(&self, value: &str) -> bool {
        self.kind != "enumeration" || self.options.iter().any(|o| o.value == value)
    }
}

/// `POST /crm/v3/properties/contacts` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct PropertyCreate {
    /// Internal name.
    pub name: String,
    /// Label.
    pub label: String,
    /// Type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Field type.
    pub field_type: String,
    /// Group (`contactinformation` exists in every account).
    pub group_name: String,
    /// Description.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Options (enumerations).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<PropertyOption>,
    /// Unique values.
    #[serde(default)]
    pub has_unique_value: bool,
    /// Show in forms.
    #[serde(default)]
    pub form_field: bool,
}

impl PropertyCreate {
    /// `cativa_user_id`: the Cativa user linked to the contact (text).
    pub fn cativa_user_id(group: &str) -> Self {
        Self::text(
            "cativa_user_id",
            "Cativa user id",
            group,
            "The Cativa community user linked to this contact (written by cativa-crm-sync).",
            false,
        )
    }

    /// `cativa_member_id`: a unique text id, used as the batch-upsert key.
    pub fn cativa_member_id(group: &str) -> Self {
        Self::text(
            "cativa_member_id",
            "Cativa member id",
            group,
            "Unique community member id; cativa-crm-sync upserts contacts by it.",
            true,
        )
    }

    /// `name` (e.g. `cativa_customer_id`): the Cativa tenant (`CustomerId`) the contact
    /// signed up in (text), for segmenting contacts by community.
    pub fn cativa_customer_id(group: &str, name: &str) -> Self {
        Self::text(
            name,
            "Cativa customer id",
            group,
            "The Cativa community (CustomerId) this contact signed up in (written by cativa-crm-sync).",
            false,
        )
    }

    /// `name` (e.g. `cativa_company`): where the sync records the company it associated the
    /// contact with (`<company id>|<domain>`), so it never moves a contact the owner placed.
    pub fn cativa_company(group: &str, name: &str) -> Self {
        Self::text(
            name,
            "Cativa company",
            group,
            "The company cativa-crm-sync associated this contact with (id|domain); do not edit.",
            false,
        )
    }

    /// `name` (e.g. `cativa_groups`): where the sync records the community groups whose list
    /// membership it added (`VIP;Speakers`), so it never removes a member added by hand.
    pub fn cativa_groups(group: &str, name: &str) -> Self {
        Self::text(
            name,
            "Cativa groups",
            group,
            "The community groups whose list membership cativa-crm-sync added (;-separated); do not edit.",
            false,
        )
    }

    /// `cativa_badges`: a multiple-checkboxes property with one option per badge.
    pub fn cativa_badges(group: &str, badges: &[String]) -> Self {
        Self::multi_checkbox(
            "cativa_badges",
            "Cativa badges",
            group,
            "Badges the member holds in the Cativa community (written by cativa-crm-sync).",
            badges,
        )
    }

    /// The properties the SDK writes: `cativa_user_id`, the unique `cativa_member_id` and
    /// `cativa_badges` (with these badges as options). Create them with
    /// [`HubSpotClient::ensure_contact_properties`](crate::HubSpotClient::ensure_contact_properties).
    pub fn sdk_properties(group: &str, badges: &[String]) -> Vec<Self> {
        vec![
            Self::cativa_user_id(group),
            Self::cativa_member_id(group),
            Self::cativa_badges(group, badges),
        ]
    }

    /// A multiple-checkboxes property (e.g. `cativa_tags` for tags); values are written
    /// `;`-joined.
    pub fn multi_checkbox(
        name: &str,
        label: &str,
        group: &str,
        description: &str,
        values: &[String],
    ) -> Self {
        Self {
            name: name.into(),
            label: label.into(),
            kind: "enumeration".into(),
            field_type: "checkbox".into(),
            group_name: group.into(),
            description: description.into(),
            options: values.iter().map(PropertyOption::new).collect(),
            has_unique_value: false,
            form_field: false,
        }
    }

    fn text(name: &str, label: &str, group: &str, description: &str, unique: bool) -> Self {
        Self {
            name: name.into(),
            label: label.into(),
            kind: "string".into(),
            field_type: "text".into(),
            group_name: group.into(),
            description: description.into(),
            options: Vec::new(),
            has_unique_value: unique,
            form_field: false,
        }
    }
}

/// `PATCH /crm/v3/properties/contacts/{name}` body to set the full option list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PropertyOptionsUpdate {
    /// The full list (HubSpot does not document whether PATCH merges, so send all).
    pub options: Vec<PropertyOption>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdk_properties_shapes() {
        let p = PropertyCreate::sdk_properties("contactinformation", &["vip".into()]);
        let names: Vec<&str> = p.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            vec!["cativa_user_id", "cativa_member_id", "cativa_badges"]
        );
        assert!(p[1].has_unique_value && !p[0].has_unique_value);
        let json = serde_json::to_value(&p[2]).unwrap();
        assert_eq!(json["type"], "enumeration");
        assert_eq!(json["fieldType"], "checkbox");
        assert_eq!(json["options"][0]["value"], "vip");
    }
}
