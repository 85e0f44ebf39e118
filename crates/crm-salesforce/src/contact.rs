//! Which Salesforce object and fields make a contact, and turning a SOQL record into a
//! CRM-neutral [`CrmContact`].

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sync_core::ports::ProvisioningFields;
use sync_core::{CrmContact, CrmRecordId, Email};

use crate::error::Error;
use crate::models::{FieldValue, Record, RecordRef, sf_datetime};
use crate::soql::is_identifier;

/// The field every delta is ordered by. It changes on every write, including system writes
/// and deletions, unlike `LastModifiedDate`.
pub const MODSTAMP_FIELD: &str = "SystemModstamp";

/// Where a contact's tags come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum TagSource {
    /// A multi-select picklist: each selected value is a tag (values are `;`-separated).
    MultiSelect {
        /// The field's API name (`Community_Tags__c`).
        field: String,
    },
    /// A checkbox: when checked, the contact carries `tag`.
    Checkbox {
        /// The field's API name (`Annual_Plan__c`).
        field: String,
        /// The tag it stands for (`Pago Anual`).
        tag: String,
    },
    /// A SOQL predicate: contacts matching it carry `tag` (one extra query per page).
    /// Configuration only: the text is inserted in the query as written.
    Predicate {
        /// The tag.
        tag: String,
        /// The condition, e.g. `Account.Type = 'Customer - Annual'`.
        soql: String,
    },
}

/// Which object holds contacts and which of its fields the sync reads and writes.
///
/// ```
/// use crm_salesforce::{ContactSchema, TagSource};
/// let schema = ContactSchema::contact()
///     .with_external_id_field("Cativa_Member_Id__c")
///     .with_property("Title")
///     .with_tags(TagSource::MultiSelect { field: "Community_Tags__c".into() });
/// assert!(schema.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ContactSchema {
    /// `Contact` or `Lead` (any object with an email field works).
    pub object: String,
    /// The email field (`Email`).
    pub email_field: String,
    /// The alternate lookup email field (e.g. `Community_Email__c`).
    #[serde(default)]
    pub alternate_email_field: Option<String>,
    /// A field read as the lifecycle stage (e.g. Lead `Status`, or a custom field).
    #[serde(default)]
    pub lifecycle_field: Option<String>,
    /// Fields read into [`CrmContact::properties`] by API name. A relationship path such
    /// as `Account.Name` reads the related record's field (empty when there is none); such
    /// a field is read-only through the contact, and the sink refuses writes to it.
    #[serde(default)]
    pub properties: Vec<String>,
    /// Where tags come from.
    #[serde(default)]
    pub tags: Vec<TagSource>,
    /// A unique External ID field holding the Cativa user id (`Cativa_Member_Id__c`): when
    /// set, new contacts are upserted on it, so a retried create never duplicates.
    #[serde(default)]
    pub external_id_field: Option<String>,
    /// A Task External ID field holding the activity's idempotency key: when set, activities
    /// are upserted on it and logging the same activity twice creates one Task.
    #[serde(default)]
    pub task_key_field: Option<String>,
    /// A trusted SOQL predicate every read adds (e.g. `IsConverted = false` for leads).
    #[serde(default)]
    pub filter: Option<String>,
    /// Values set on create when the draft has none (Salesforce requires `LastName`, and
    /// `Company` on leads).
    #[serde(default)]
    pub create_defaults: BTreeMap<String, String>,
    /// Community profile field -> field written when a contact is provisioned for a new
    /// community user (default `firstName` -> `FirstName`, `lastName` -> `LastName`,
    /// `phone` -> `Phone`).
    #[serde(default = "default_profile_fields")]
    pub profile_fields: BTreeMap<String, String>,
    /// The field the tenant's `CustomerId` is written to on provisioned contacts (e.g.
    /// `Cativa_Customer_Id__c`; default `None`: not written).
    #[serde(default)]
    pub customer_id_field: Option<String>,
}

fn default_profile_fields() -> BTreeMap<String, String> {
    ProvisioningFields::salesforce().profile
}

impl ContactSchema {
    /// The `Contact` object, `Email`, `LastName` defaulting to `[not provided]`.
    pub fn contact() -> Self {
        Self::for_object("Contact").with_create_default("LastName", "[not provided]")
    }

    /// The `Lead` object, skipping converted leads; `LastName` and `Company` default to
    /// `[not provided]`.
    pub fn lead() -> Self {
        let mut s = Self::for_object("Lead")
            .with_create_default("LastName", "[not provided]")
            .with_create_default("Company", "[not provided]");
        s.filter = Some("IsConverted = false".into());
        s
    }

    /// Any object with an `Email` field, with no defaults.
    pub fn for_object(object: impl Into<String>) -> Self {
        Self {
            object: object.into(),
            email_field: "Email".into(),
            alternate_email_field: None,
            lifecycle_field: None,
            properties: Vec::new(),
            tags: Vec::new(),
            external_id_field: None,
            task_key_field: None,
            filter: None,
            create_defaults: BTreeMap::new(),
            profile_fields: default_profile_fields(),
            customer_id_field: None,
        }
    }

    /// Writes community profile field `community` to `field` when a contact is
    /// provisioned (builder style).
    pub fn with_profile_field(
        mut self,
        community: impl Into<String>,
        field: impl Into<String>,
    ) -> Self {
        self.profile_fields.insert(community.into(), field.into());
        self
    }

    /// Writes the tenant's `CustomerId` to `field` on provisioned contacts (builder style).
    pub fn with_customer_id_field(mut self, field: impl Into<String>) -> Self {
        self.customer_id_field = Some(field.into());
        self
    }

    /// The provisioning field names of this schema: its profile fields, the `CustomerId`
    /// field, and the External ID field as the user id.
    pub fn provisioning_fields(&self) -> ProvisioningFields {
        let mut fields = ProvisioningFields::none();
        fields.profile = self.profile_fields.clone();
        fields.user_id = self.external_id_field.clone();
        match &self.customer_id_field {
            Some(f) => fields.with_customer_id(f.clone()),
            None => fields,
        }
    }

    /// Reads `field` into the contact's properties (builder style).
    pub fn with_property(mut self, field: impl Into<String>) -> Self {
        self.properties.push(field.into());
        self
    }

    /// Adds a tag source (builder style).
    pub fn with_tags(mut self, source: TagSource) -> Self {
        self.tags.push(source);
        self
    }

    /// Sets the Cativa member External ID field (builder style).
    pub fn with_external_id_field(mut self, field: impl Into<String>) -> Self {
        self.external_id_field = Some(field.into());
        self
    }

    /// Sets the Task External ID field for idempotent activities (builder style).
    pub fn with_task_key_field(mut self, field: impl Into<String>) -> Self {
        self.task_key_field = Some(field.into());
        self
    }

    /// Sets the alternate email field (builder style).
    pub fn with_alternate_email_field(mut self, field: impl Into<String>) -> Self {
        self.alternate_email_field = Some(field.into());
        self
    }

    /// Sets the lifecycle field (builder style).
    pub fn with_lifecycle_field(mut self, field: impl Into<String>) -> Self {
        self.lifecycle_field = Some(field.into());
        self
    }

    /// Sets the trusted read filter (builder style).
    pub fn with_filter(mut self, soql: impl Into<String>) -> Self {
        self.filter = Some(soql.into());
        self
    }

    /// Sets a create default (builder style).
    pub fn with_create_default(
        mut self,
        field: impl Into<String>,
        value: impl Into<String>,
    ) -> Self {
        self.create_defaults.insert(field.into(), value.into());
        self
    }

    /// Checks every name is an API name, and that the fields the sink writes or keys on
    /// are the object's own (not relationship paths such as `Account.Name`).
    pub fn validate(&self) -> Result<(), Error> {
        let mut own: Vec<(&str, &str)> =
            vec![("object", &self.object), ("email_field", &self.email_field)];
        own.extend(
            [
                ("external_id_field", &self.external_id_field),
                ("task_key_field", &self.task_key_field),
            ]
            .into_iter()
            .filter_map(|(k, v)| v.as_deref().map(|v| (k, v))),
        );
        own.extend(
            self.create_defaults
                .keys()
                .map(|p| ("create_defaults", p.as_str())),
        );
        own.extend(
            self.profile_fields
                .values()
                .map(|p| ("profile_fields", p.as_str())),
        );
        if let Some(f) = &self.customer_id_field {
            own.push(("customer_id_field", f));
        }
        if let Some((key, name)) = own.into_iter().find(|(_, n)| is_relationship(n)) {
            return Err(Error::Config(format!(
                "{key}: {name:?} is a field of a related record; the sync writes or keys on {key}, so it must be a field of the object itself"
            )));
        }
        let mut names: Vec<(&str, &str)> =
            vec![("object", &self.object), ("email_field", &self.email_field)];
        for (key, v) in [
            ("alternate_email_field", &self.alternate_email_field),
            ("lifecycle_field", &self.lifecycle_field),
            ("external_id_field", &self.external_id_field),
            ("task_key_field", &self.task_key_field),
        ] {
            if let Some(v) = v {
                names.push((key, v));
            }
        }
        names.extend(self.properties.iter().map(|p| ("properties", p.as_str())));
        names.extend(
            self.profile_fields
                .values()
                .map(|p| ("profile_fields", p.as_str())),
        );
        if let Some(f) = &self.customer_id_field {
            names.push(("customer_id_field", f));
        }
        names.extend(
            self.create_defaults
                .keys()
                .map(|p| ("create_defaults", p.as_str())),
        );
        for t in &self.tags {
            match t {
                TagSource::MultiSelect { field } | TagSource::Checkbox { field, .. } => {
                    names.push(("tags.field", field))
                }
                TagSource::Predicate { soql, tag } => {
                    if soql.trim().is_empty() || tag.is_empty() {
                        return Err(Error::Config(
                            "tags: a predicate needs a tag and a SOQL condition".into(),
                        ));
                    }
                }
            }
        }
        for (key, name) in names {
            if !is_identifier(name) {
                return Err(Error::Config(format!(
                    "{key}: {name:?} is not a Salesforce API name"
                )));
            }
        }
        Ok(())
    }

    /// The fields a read selects: `Id`, the modstamp, `IsDeleted`, `MasterRecordId`, email
    /// fields, lifecycle, properties, tag fields, the external ID.
    pub fn select_fields(&self) -> Vec<String> {
        let mut f: Vec<String> = vec![
            "Id".into(),
            MODSTAMP_FIELD.into(),
            "IsDeleted".into(),
            "MasterRecordId".into(),
        ];
        f.push(self.email_field.clone());
        f.extend(self.alternate_email_field.iter().cloned());
        f.extend(self.lifecycle_field.iter().cloned());
        f.extend(self.external_id_field.iter().cloned());
        f.extend(self.properties.iter().cloned());
        for t in &self.tags {
            if let TagSource::MultiSelect { field } | TagSource::Checkbox { field, .. } = t {
                f.push(field.clone());
            }
        }
        f
    }

    /// The fields the source reads that can differ between the SDK's write and a person's:
    /// compared to recognise the echo of a write (see `echo`).
    pub(crate) fn echo_fields(&self) -> impl Iterator<Item = String> + '_ {
        std::iter::once(self.email_field.clone())
            .chain(self.alternate_email_field.iter().cloned())
            .chain(self.lifecycle_field.iter().cloned())
            .chain(self.external_id_field.iter().cloned())
            .chain(self.properties.iter().cloned())
            .chain(self.tags.iter().filter_map(|t| match t {
                TagSource::MultiSelect { field } | TagSource::Checkbox { field, .. } => {
                    Some(field.clone())
                }
                TagSource::Predicate { .. } => None,
            }))
    }

    /// The predicate tags, as (tag, SOQL) pairs.
    pub(crate) fn predicates(&self) -> impl Iterator<Item = (&str, &str)> {
        self.tags.iter().filter_map(|t| match t {
            TagSource::Predicate { tag, soql } => Some((tag.as_str(), soql.as_str())),
            _ => None,
        })
    }
}

/// A field value as text: strings as is, numbers and booleans printed, `null` as `None`.
pub(crate) fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        // Compound fields (addresses) are kept as JSON text.
        other => Some(other.to_string()),
    }
}

/// Whether `name` is a relationship path (`Account.Name`): a field of a related record.
pub fn is_relationship(name: &str) -> bool {
    name.contains('.')
}

/// A field of a query record. A relationship path (`Account.Name`) walks the nested
/// records Salesforce returns (`{"Account": {"attributes": ..., "Name": "Acme"}}`); a null
/// relationship gives `None`.
pub(crate) fn field_value<'a>(record: &'a Record, name: &str) -> Option<&'a Value> {
    let mut parts = name.split('.');
    let first = parts.next()?;
    let mut v = record.get(first)?;
    for part in parts {
        v = v.as_object()?.get(part)?;
    }
    Some(v)
}

/// Read access to a record's fields, whichever way the record was decoded: a
/// [`Record`] map or a [`RecordRef`] borrowed from the page. Names may be relationship
/// paths (`Account.Name`).
pub(crate) trait Fields {
    /// The value as text (see [`value_text`]).
    fn text(&self, name: &str) -> Option<Cow<'_, str>>;
    /// A non-empty string value.
    fn str_field(&self, name: &str) -> Option<&str>;
    /// A checkbox value.
    fn bool_field(&self, name: &str) -> Option<bool>;
}

impl Fields for Record {
    fn text(&self, name: &str) -> Option<Cow<'_, str>> {
        field_value(self, name).and_then(value_text).map(Cow::Owned)
    }

    fn str_field(&self, name: &str) -> Option<&str> {
        field_value(self, name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    }

    fn bool_field(&self, name: &str) -> Option<bool> {
        field_value(self, name).and_then(Value::as_bool)
    }
}

/// A field of a [`RecordRef`]: a top-level value, or a value inside a nested record.
enum Resolved<'r, 'a> {
    Top(&'r FieldValue<'a>),
    Nested(&'r Value),
}

fn resolve<'r, 'a>(record: &'r RecordRef<'a>, name: &str) -> Option<Resolved<'r, 'a>> {
    // Most names are the object's own fields: one lookup, no path walk.
    let Some((first, rest)) = name.split_once('.') else {
        return record.get(name).map(Resolved::Top);
    };
    let FieldValue::Json(nested) = record.get(first)? else {
        return None;
    };
    let mut parts = rest.split('.');
    let mut v = nested.as_object()?.get(parts.next()?)?;
    for part in parts {
        v = v.as_object()?.get(part)?;
    }
    Some(Resolved::Nested(v))
}

impl Fields for RecordRef<'_> {
    fn text(&self, name: &str) -> Option<Cow<'_, str>> {
        match resolve(self, name)? {
            Resolved::Top(v) => v.text(),
            Resolved::Nested(v) => value_text(v).map(Cow::Owned),
        }
    }

    fn str_field(&self, name: &str) -> Option<&str> {
        match resolve(self, name)? {
            Resolved::Top(v) => v.as_str(),
            Resolved::Nested(v) => v.as_str(),
        }
        .filter(|s| !s.is_empty())
    }

    fn bool_field(&self, name: &str) -> Option<bool> {
        match resolve(self, name)? {
            Resolved::Top(v) => v.as_bool(),
            Resolved::Nested(v) => v.as_bool(),
        }
    }
}

/// Turns a SOQL record into a [`CrmContact`] (predicate tags are added by the source).
///
/// Deleted rows (`IsDeleted = true`, from `queryAll`) are archived; a row with a
/// `MasterRecordId` was merged away and points to the surviving record.
pub fn decode_contact(schema: &ContactSchema, record: &Record) -> Result<CrmContact, Error> {
    decode_fields(schema, record)
}

/// [`decode_contact`] for a record borrowed from its page ([`RecordRef`]): the same
/// contact, without building a map per record first.
pub fn decode_record(schema: &ContactSchema, record: &RecordRef<'_>) -> Result<CrmContact, Error> {
    decode_fields(schema, record)
}

pub(crate) fn decode_fields<F: Fields + ?Sized>(
    schema: &ContactSchema,
    record: &F,
) -> Result<CrmContact, Error> {
    let id = record.str_field("Id").ok_or_else(|| Error::Decode {
        what: "record",
        message: "a record has no Id".into(),
    })?;
    let stamp = record
        .str_field(MODSTAMP_FIELD)
        .ok_or_else(|| Error::Decode {
            what: "record",
            message: format!("record {id} has no {MODSTAMP_FIELD}"),
        })?;
    let updated_at = sf_datetime::parse(stamp).ok_or_else(|| Error::Decode {
        what: "record",
        message: format!("record {id} has an invalid {MODSTAMP_FIELD} {stamp:?}"),
    })?;
    let email = record
        .str_field(&schema.email_field)
        .and_then(|e| Email::parse(e).ok());
    let mut c = CrmContact::new(CrmRecordId::salesforce(id), email, updated_at);
    if let Some(alt) = schema
        .alternate_email_field
        .as_deref()
        .and_then(|f| record.str_field(f))
        .and_then(|e| Email::parse(e).ok())
    {
        c.alternate_email = Some(alt);
    }
    if let Some(stage) = schema
        .lifecycle_field
        .as_deref()
        .and_then(|f| record.str_field(f))
    {
        c.lifecycle_stage = Some(stage.to_owned());
    }
    for name in schema
        .properties
        .iter()
        .chain(schema.external_id_field.iter())
    {
        if let Some(v) = record.text(name) {
            c.properties.insert(name.clone(), v.into_owned());
        }
    }
    for t in &schema.tags {
        match t {
            TagSource::MultiSelect { field } => {
                if let Some(values) = record.str_field(field) {
                    c.tags.extend(
                        values
                            .split(';')
                            .map(str::trim)
                            .filter(|v| !v.is_empty())
                            .map(str::to_owned),
                    );
                }
            }
            TagSource::Checkbox { field, tag } => {
                if record.bool_field(field) == Some(true) {
                    c.tags.insert(tag.clone());
                }
            }
            TagSource::Predicate { .. } => {}
        }
    }
    if record.bool_field("IsDeleted") == Some(true) {
        c.archived = true;
        if let Some(master) = record.str_field("MasterRecordId") {
            c = c.merged_into(CrmRecordId::salesforce(master));
        }
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use serde_json::json;

    use super::*;

    fn rec(v: Value) -> Record {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    fn schema() -> ContactSchema {
        ContactSchema::contact()
            .with_property("Title")
            .with_property("NumberOfEmployees__c")
            .with_alternate_email_field("Community_Email__c")
            .with_lifecycle_field("Stage__c")
            .with_external_id_field("Cativa_Member_Id__c")
            .with_tags(TagSource::MultiSelect {
                field: "Community_Tags__c".into(),
            })
            .with_tags(TagSource::Checkbox {
                field: "Annual__c".into(),
                tag: "Pago Anual".into(),
            })
    }

    /// Records of every shape the two decoders must agree on: escapes, numbers (integer,
    /// float, exponent), nested relationship records, compound fields, nulls, repeated
    /// keys, deleted and merged rows, missing and blank fields.
    const SHAPES: &str = r#"{"totalSize": 6, "done": true, "records": [
        {"attributes": {"type": "Contact"}, "Id": "003A", "SystemModstamp": "2026-01-02T03:04:05.000+0000",
         "IsDeleted": false, "Email": " Jane@Example.com ", "Community_Email__c": "jane.alt@example.com",
         "Stage__c": "customer", "Cativa_Member_Id__c": "u-1", "Title": "C\u00e9O \"Chief\"\n",
         "NumberOfEmployees__c": 42, "Community_Tags__c": "Gold; Pago Mensual;;VIP", "Annual__c": true,
         "Account": {"attributes": {"type": "Account"}, "Name": "Acme \u00c9", "Size": 1.50}},
        {"Id": "003B", "SystemModstamp": "2026-01-02T03:04:05Z", "IsDeleted": true,
         "MasterRecordId": "003A", "Email": null, "Title": {"street": "Rua 1", "city": "SP", "a": [1, 2.5e3]},
         "NumberOfEmployees__c": -7.25, "Community_Tags__c": "", "Annual__c": false, "Account": null},
        {"Id": "003C", "SystemModstamp": "2026-01-02T03:04:05.000+0000", "Email": "first@example.com",
         "Email": "second@example.com", "NumberOfEmployees__c": 12345678901234567890, "Title": ["x", null]},
        {"Id": "003D", "SystemModstamp": "2026-01-02T03:04:05.000+0000", "IsDeleted": true, "MasterRecordId": null,
         "Annual__c": "true", "Stage__c": "", "Cativa_Member_Id__c": 5, "Title": false},
        {"Id": "", "SystemModstamp": "2026-01-02T03:04:05.000+0000"},
        {"Id": "003F", "SystemModstamp": "last tuesday"}
    ]}"#;

    #[test]
    fn borrowed_records_decode_exactly_as_maps_do() {
        let schema = schema()
            .with_property("Account.Name")
            .with_property("Account.Size")
            .with_property("Account.Missing");
        let maps: crate::models::QueryPage<Record> = serde_json::from_str(SHAPES).unwrap();
        let raw = crate::models::RawQueryPage::new(SHAPES.as_bytes().to_vec().into());
        let borrowed = raw.records().unwrap();
        assert_eq!(maps.records.len(), borrowed.records.len());
        for (m, b) in maps.records.iter().zip(&borrowed.records) {
            let want = decode_contact(&schema, m).map_err(|e| e.to_string());
            let got = decode_record(&schema, b).map_err(|e| e.to_string());
            assert_eq!(got, want, "{m:?}");
            assert_eq!(
                crate::echo::snapshot(&schema, b),
                crate::echo::snapshot(&schema, m),
                "{m:?}"
            );
        }
        // Strings without escapes are not copied.
        let first = &borrowed.records[0];
        assert!(matches!(
            first.get("Email"),
            Some(FieldValue::Str(Cow::Borrowed(_)))
        ));
        assert!(first.get("attributes").is_none());
    }

    #[test]
    fn decodes_a_live_contact() {
        let r = rec(json!({
            "attributes": {"type": "Contact", "url": "/services/data/v66.0/sobjects/Contact/003A"},
            "Id": "003A", "SystemModstamp": "2026-01-02T03:04:05.000+0000", "IsDeleted": false, "MasterRecordId": null,
            "Email": " Jane@Example.com ", "Community_Email__c": "jane.alt@example.com", "Stage__c": "customer",
            "Cativa_Member_Id__c": "u-1", "Title": "CTO", "NumberOfEmployees__c": 42,
            "Community_Tags__c": "Gold; Pago Mensual;;VIP", "Annual__c": true
        }));
        let c = decode_contact(&schema(), &r).unwrap();
        assert_eq!(c.id, CrmRecordId::salesforce("003A"));
        assert_eq!(
            c.email.as_ref().map(Email::as_str),
            Some("jane@example.com")
        );
        assert_eq!(
            c.alternate_email.as_ref().map(Email::as_str),
            Some("jane.alt@example.com")
        );
        assert_eq!(c.lifecycle_stage.as_deref(), Some("customer"));
        assert_eq!(
            c.updated_at,
            Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap()
        );
        assert_eq!(c.property("Title"), Some("CTO"));
        assert_eq!(c.property("NumberOfEmployees__c"), Some("42"));
        assert_eq!(c.property("Cativa_Member_Id__c"), Some("u-1"));
        let tags: Vec<_> = c.tags.iter().map(String::as_str).collect();
        assert_eq!(tags, vec!["Gold", "Pago Anual", "Pago Mensual", "VIP"]);
        assert!(!c.archived && c.merged_into.is_none());
    }

    #[test]
    fn deleted_and_merged_rows() {
        let deleted = rec(
            json!({"Id": "003B", "SystemModstamp": "2026-01-02T03:04:05.000+0000", "IsDeleted": true, "Email": "x@y.com"}),
        );
        let c = decode_contact(&schema(), &deleted).unwrap();
        assert!(c.archived && c.merged_into.is_none());
        let merged = rec(
            json!({"Id": "003C", "SystemModstamp": "2026-01-02T03:04:05.000+0000", "IsDeleted": true, "MasterRecordId": "003W"}),
        );
        let c = decode_contact(&schema(), &merged).unwrap();
        assert!(c.archived);
        assert_eq!(c.merged_into, Some(CrmRecordId::salesforce("003W")));
        assert!(c.email.is_none());
    }

    #[test]
    fn bad_records_are_decode_errors_and_bad_emails_are_none() {
        assert!(
            decode_contact(
                &schema(),
                &rec(json!({"SystemModstamp": "2026-01-02T03:04:05.000+0000"}))
            )
            .is_err()
        );
        assert!(decode_contact(&schema(), &rec(json!({"Id": "003A"}))).is_err());
        assert!(
            decode_contact(
                &schema(),
                &rec(json!({"Id": "003A", "SystemModstamp": "soon"}))
            )
            .is_err()
        );
        let c = decode_contact(&schema(), &rec(json!({"Id": "003A", "SystemModstamp": "2026-01-02T03:04:05Z", "Email": "not-an-email"}))).unwrap();
        assert!(c.email.is_none());
    }

    #[test]
    fn validation_and_fields() {
        assert!(schema().validate().is_ok());
        let bad = ContactSchema::contact().with_property("Title; DROP");
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("properties")
        );
        let bad_pred = ContactSchema::contact().with_tags(TagSource::Predicate {
            tag: "".into(),
            soql: "x".into(),
        });
        assert!(bad_pred.validate().is_err());
        let f = schema().select_fields();
        assert_eq!(
            &f[..5],
            [
                "Id",
                "SystemModstamp",
                "IsDeleted",
                "MasterRecordId",
                "Email"
            ]
        );
        assert!(f.contains(&"Community_Tags__c".to_owned()) && f.contains(&"Annual__c".to_owned()));
        let lead = ContactSchema::lead();
        assert_eq!(lead.object, "Lead");
        assert_eq!(
            lead.create_defaults.get("Company").map(String::as_str),
            Some("[not provided]")
        );
    }

    #[test]
    fn relationship_fields_are_read_from_the_nested_record() {
        let s = ContactSchema::contact()
            .with_property("Account.Name")
            .with_property("Account.Owner.Email");
        assert!(s.validate().is_ok());
        assert!(s.select_fields().contains(&"Account.Name".to_owned()));
        let r = rec(json!({
            "Id": "003A", "SystemModstamp": "2026-01-02T03:04:05.000+0000",
            "Account": {"attributes": {"type": "Account", "url": "/services/data/v66.0/sobjects/Account/001A"},
                        "Name": "Acme", "Owner": {"attributes": {"type": "User"}, "Email": "o@acme.com"}}
        }));
        let c = decode_contact(&s, &r).unwrap();
        assert_eq!(c.property("Account.Name"), Some("Acme"));
        assert_eq!(c.property("Account.Owner.Email"), Some("o@acme.com"));
        // No related record: the relationship is null and the property absent.
        let none = rec(
            json!({"Id": "003B", "SystemModstamp": "2026-01-02T03:04:05.000+0000", "Account": null}),
        );
        assert_eq!(
            decode_contact(&s, &none).unwrap().property("Account.Name"),
            None
        );
    }

    #[test]
    fn relationship_paths_are_refused_where_the_sync_writes_or_keys() {
        for bad in [
            ContactSchema::contact().with_external_id_field("Account.Ext__c"),
            ContactSchema::contact().with_create_default("Account.Name", "x"),
            ContactSchema::contact().with_task_key_field("What.Key__c"),
        ] {
            let err = bad.validate().unwrap_err().to_string();
            assert!(err.contains("related record"), "{err}");
        }
    }

    #[test]
    fn schema_loads_from_json() {
        let s: ContactSchema = serde_json::from_value(json!({
            "object": "Lead", "email_field": "Email",
            "tags": [{"kind": "predicate", "tag": "Hot", "soql": "Rating = 'Hot'"}]
        }))
        .unwrap();
        assert_eq!(
            s.predicates().collect::<Vec<_>>(),
            vec![("Hot", "Rating = 'Hot'")]
        );
    }
}
