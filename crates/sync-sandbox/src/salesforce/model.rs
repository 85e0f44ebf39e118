//! Salesforce state: sObject schemas (Contact, Lead, Task), records, deletes and
//! merges, with the write validation the REST API applies.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::errors::SfError;

/// Field types the sandbox distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub enum FieldType {
    /// Record id.
    Id,
    /// Text (also email, phone, picklist).
    Text,
    /// Multi-select picklist: `a;b;c`.
    MultiPicklist,
    /// Boolean.
    Boolean,
    /// dateTime.
    DateTime,
    /// date.
    Date,
    /// Lookup to another record.
    Reference,
    /// Number (also currency, percent).
    Number,
}

/// A field definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct FieldDef {
    /// API name.
    pub name: String,
    /// Type.
    pub kind: FieldType,
    /// System-maintained (writes refused).
    pub read_only: bool,
    /// Required on create.
    pub required: bool,
    /// Unique and an External ID (usable for upsert).
    pub external_id: bool,
    /// Usable as an upsert key although not unique (Email is an idLookup field).
    pub id_lookup: bool,
}

fn f(name: &str, kind: FieldType) -> FieldDef {
    FieldDef {
        name: name.into(),
        kind,
        read_only: false,
        required: false,
        external_id: false,
        id_lookup: false,
    }
}

/// An sObject schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ObjectSchema {
    /// API name (`Contact`).
    pub name: String,
    /// Three-character id prefix (`003`).
    pub key_prefix: String,
    /// Fields by API name.
    pub fields: BTreeMap<String, FieldDef>,
}

impl ObjectSchema {
    /// The canonical name of a field, looked up case-insensitively.
    pub fn field(&self, name: &str) -> Option<&FieldDef> {
        self.fields
            .values()
            .find(|d| d.name.eq_ignore_ascii_case(name))
    }
}

fn schema(name: &str, prefix: &str, extra: Vec<FieldDef>) -> ObjectSchema {
    let ro = |n: &str, k| FieldDef {
        read_only: true,
        ..f(n, k)
    };
    let mut fields = vec![
        ro("Id", FieldType::Id),
        ro("IsDeleted", FieldType::Boolean),
        ro("CreatedDate", FieldType::DateTime),
        ro("LastModifiedDate", FieldType::DateTime),
        ro("SystemModstamp", FieldType::DateTime),
        ro("CreatedById", FieldType::Reference),
        ro("LastModifiedById", FieldType::Reference),
    ];
    fields.extend(extra);
    ObjectSchema {
        name: name.into(),
        key_prefix: prefix.into(),
        fields: fields.into_iter().map(|d| (d.name.clone(), d)).collect(),
    }
}

fn person_fields(tags_field: &str) -> Vec<FieldDef> {
    vec![
        f("FirstName", FieldType::Text),
        FieldDef {
            required: true,
            ..f("LastName", FieldType::Text)
        },
        FieldDef {
            id_lookup: true,
            ..f("Email", FieldType::Text)
        },
        f("Phone", FieldType::Text),
        f("MobilePhone", FieldType::Text),
        f("Title", FieldType::Text),
        f("LeadSource", FieldType::Text),
        f(tags_field, FieldType::MultiPicklist),
        FieldDef {
            external_id: true,
            ..f("Cativa_Member_Id__c", FieldType::Text)
        },
        f("Cativa_User_Id__c", FieldType::Text),
        f("Community_Email__c", FieldType::Text),
        FieldDef {
            read_only: true,
            ..f("MasterRecordId", FieldType::Reference)
        },
    ]
}

pub(crate) fn default_schemas(tags_field: &str) -> BTreeMap<String, ObjectSchema> {
    let mut contact = person_fields(tags_field);
    contact.push(f("AccountId", FieldType::Reference));
    let mut lead = person_fields(tags_field);
    lead.push(FieldDef {
        required: true,
        ..f("Company", FieldType::Text)
    });
    lead.push(f("Status", FieldType::Text));
    let task = vec![
        f("WhoId", FieldType::Reference),
        f("WhatId", FieldType::Reference),
        f("Subject", FieldType::Text),
        f("Description", FieldType::Text),
        f("ActivityDate", FieldType::Date),
        f("Status", FieldType::Text),
        f("Priority", FieldType::Text),
        f("TaskSubtype", FieldType::Text),
    ];
    // Accounts: what a contact's AccountId points to. `Name` is required, as in Salesforce;
    // a partner's key field (`Cativa_Domain__c`) is added with `with_field("Account", ...)`.
    let account = vec![
        FieldDef {
            required: true,
            ..f("Name", FieldType::Text)
        },
        f("Website", FieldType::Text),
    ];
    // Campaigns and their members: a contact is in a campaign at most once
    // (DUPLICATE_VALUE otherwise, see `SfState::create`).
    let campaign = vec![
        FieldDef {
            required: true,
            ..f("Name", FieldType::Text)
        },
        f("IsActive", FieldType::Boolean),
    ];
    let campaign_member = vec![
        FieldDef {
            required: true,
            ..f("CampaignId", FieldType::Reference)
        },
        f("ContactId", FieldType::Reference),
        f("LeadId", FieldType::Reference),
        f("Status", FieldType::Text),
    ];
    [
        schema("Campaign", "701", campaign),
        schema("CampaignMember", "00v", campaign_member),
        schema("Account", "001", account),
        schema("Contact", "003", contact),
        schema("Lead", "00Q", lead),
        schema("Task", "00T", task),
    ]
    .into_iter()
    .map(|s| (s.name.clone(), s))
    .collect()
}

/// The REST datetime format: `2026-01-01T00:00:00.000+0000`.
pub(crate) fn sf_datetime(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
        .trim_end_matches('Z')
        .to_owned()
        + "+0000"
}

/// A stored record.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct SfRecord {
    /// 18-character id.
    pub id: String,
    /// sObject type.
    pub object: String,
    /// Writable field values by API name (`Value::Null` for cleared).
    pub fields: BTreeMap<String, Value>,
    /// CreatedDate.
    pub created: DateTime<Utc>,
    /// SystemModstamp / LastModifiedDate.
    pub modified: DateTime<Utc>,
    /// Deleted (in the recycle bin).
    pub deleted: Option<DateTime<Utc>>,
    /// Surviving record when merged away.
    pub master_record_id: Option<String>,
    /// `client=` of the `Sforce-Call-Options` of the last API write, if any (only where
    /// Salesforce honours the header: rows, rows by external ID, basic information).
    pub last_write_client: Option<String>,
    /// `CreatedById`: the user who created the record.
    pub created_by: String,
    /// `LastModifiedById`: the user of the last write ([`INTEGRATION_USER_ID`] for API
    /// writes, [`ADMIN_USER_ID`] for edits made through the sandbox's own methods).
    pub last_modified_by: String,
}

/// The user every API session acts as (the token response's identity URL names it).
pub const INTEGRATION_USER_ID: &str = "005SB0000000001AAA";
/// The user of edits made directly through the sandbox (a person in the Salesforce UI).
pub const ADMIN_USER_ID: &str = "005SB0000000002AAA";

/// Who made a write: the acting user and the `client=` of `Sforce-Call-Options` when the
/// resource honours it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Origin<'a> {
    pub(crate) user: &'a str,
    pub(crate) client: Option<&'a str>,
}

impl Origin<'static> {
    /// An edit made through the sandbox's methods, as a person would in the UI.
    pub(crate) const ADMIN: Self = Self {
        user: ADMIN_USER_ID,
        client: None,
    };
}

impl SfRecord {
    /// A field value as text (`None` when unset, null or blank).
    pub fn text(&self, field: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(field))
            .and_then(|(_, v)| v.as_str())
            .filter(|s| !s.is_empty())
    }

    /// Whether the record is deleted.
    pub fn is_deleted(&self) -> bool {
        self.deleted.is_some()
    }

    /// Value of any field, system fields included, in REST form.
    pub(crate) fn value(&self, schema: &ObjectSchema, field: &str) -> Value {
        let Some(def) = schema.field(field) else {
            return Value::Null;
        };
        match def.name.as_str() {
            "Id" => json!(self.id),
            "IsDeleted" => json!(self.deleted.is_some()),
            "CreatedDate" => json!(sf_datetime(self.created)),
            "LastModifiedDate" | "SystemModstamp" => json!(sf_datetime(self.modified)),
            "CreatedById" => json!(self.created_by),
            "LastModifiedById" => json!(self.last_modified_by),
            "MasterRecordId" => self
                .master_record_id
                .clone()
                .map_or(Value::Null, Value::String),
            name => self.fields.get(name).cloned().unwrap_or(Value::Null),
        }
    }

    /// The record as a query returns it: `attributes` then the selected fields.
    pub(crate) fn to_json(&self, schema: &ObjectSchema, fields: &[String], version: &str) -> Value {
        let mut m = Map::new();
        m.insert(
            "attributes".into(),
            json!({"type": self.object, "url": format!("/services/data/{version}/sobjects/{}/{}", self.object, self.id)}),
        );
        for name in fields {
            let canonical = schema.field(name).map_or(name.clone(), |d| d.name.clone());
            m.insert(canonical, self.value(schema, name));
        }
        Value::Object(m)
    }
}

/// Everything a Salesforce sandbox holds.
#[derive(Debug)]
pub(crate) struct SfState {
    pub(crate) schemas: BTreeMap<String, ObjectSchema>,
    pub(crate) records: BTreeMap<String, SfRecord>,
    counter: u64,
    /// Query locators: rendered rows of a query still being paged.
    pub(crate) cursors: BTreeMap<String, Vec<Value>>,
    cursor_counter: u64,
    pub(crate) earliest_deleted: DateTime<Utc>,
    pub(crate) call_options: Vec<String>,
    /// Endpoints that received `Sforce-Call-Options` where it is not documented.
    pub(crate) misplaced_call_options: Vec<String>,
}

/// Why a write to one record failed.
pub(crate) type WriteResult = Result<String, SfError>;

impl SfState {
    pub(crate) fn new(
        tags_field: &str,
        extra: &[(String, String, FieldType)],
        now: DateTime<Utc>,
    ) -> Self {
        let mut schemas = default_schemas(tags_field);
        for (object, name, kind) in extra {
            if let Some(schema) = schemas
                .values_mut()
                .find(|s| s.name.eq_ignore_ascii_case(object))
            {
                schema.fields.insert(name.clone(), f(name, *kind));
            }
        }
        Self {
            schemas,
            records: BTreeMap::new(),
            counter: 0,
            cursors: BTreeMap::new(),
            cursor_counter: 0,
            earliest_deleted: now - chrono::Duration::days(15),
            call_options: Vec::new(),
            misplaced_call_options: Vec::new(),
        }
    }

    /// A copy to apply a collection to, so `allOrNone` can discard it.
    pub(crate) fn clone_for_write(&self) -> Self {
        Self {
            schemas: self.schemas.clone(),
            records: self.records.clone(),
            counter: self.counter,
            cursors: BTreeMap::new(),
            cursor_counter: self.cursor_counter,
            earliest_deleted: self.earliest_deleted,
            call_options: Vec::new(),
            misplaced_call_options: Vec::new(),
        }
    }

    /// Keeps the records written to a copy made by [`Self::clone_for_write`].
    pub(crate) fn commit(&mut self, scratch: Self) {
        self.records = scratch.records;
        self.counter = scratch.counter;
    }

    pub(crate) fn schema(&self, object: &str) -> Option<&ObjectSchema> {
        self.schemas
            .values()
            .find(|s| s.name.eq_ignore_ascii_case(object))
    }

    fn next_id(&mut self, prefix: &str) -> String {
        self.counter += 1;
        format!("{prefix}SB{:010}AAA", self.counter)
    }

    pub(crate) fn next_cursor(&mut self) -> String {
        self.cursor_counter += 1;
        format!("01gSB{:010}AAA", self.cursor_counter)
    }

    /// Validates writable fields: unknown, read-only, type.
    pub(crate) fn validate(
        &self,
        object: &str,
        fields: &Map<String, Value>,
        creating: bool,
    ) -> Result<BTreeMap<String, Value>, SfError> {
        let schema = self.schema(object).ok_or_else(|| {
            SfError::new(
                "INVALID_TYPE",
                format!("sObject type '{object}' is not supported."),
            )
        })?;
        let mut out = BTreeMap::new();
        for (name, value) in fields {
            if name == "attributes" {
                continue;
            }
            let Some(def) = schema.field(name) else {
                return Err(SfError::new(
                    "INVALID_FIELD",
                    format!("No such column '{name}' on sobject of type {}", schema.name),
                )
                .with_fields(vec![name.clone()]));
            };
            if def.read_only {
                return Err(SfError::new(
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    format!("Unable to create/update fields: {}. Please check the security settings of this field and verify that it is read/write for your profile or permission set.", def.name),
                )
                .with_fields(vec![def.name.clone()]));
            }
            let ok = match (def.kind, value) {
                (_, Value::Null) => true,
                (FieldType::Boolean, v) => v.is_boolean(),
                (FieldType::DateTime | FieldType::Date, Value::String(s)) => {
                    DateTime::parse_from_rfc3339(s).is_ok()
                        || chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok()
                        || DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z").is_ok()
                }
                (_, Value::String(_)) => true,
                (FieldType::Text | FieldType::Number, Value::Number(_)) => true,
                _ => false,
            };
            if !ok {
                return Err(SfError::new(
                    "JSON_PARSER_ERROR",
                    format!(
                        "Cannot deserialize instance of {:?} from {value} for field {}",
                        def.kind, def.name
                    ),
                )
                .with_fields(vec![def.name.clone()]));
            }
            out.insert(def.name.clone(), value.clone());
        }
        if creating {
            let missing: Vec<String> = schema
                .fields
                .values()
                .filter(|d| {
                    d.required
                        && out
                            .get(&d.name)
                            .is_none_or(|v| v.is_null() || v.as_str() == Some(""))
                })
                .map(|d| d.name.clone())
                .collect();
            if !missing.is_empty() {
                return Err(SfError::new(
                    "REQUIRED_FIELD_MISSING",
                    format!("Required fields are missing: [{}]", missing.join(", ")),
                )
                .with_fields(missing));
            }
        }
        Ok(out)
    }

    /// Live records of `object` whose `field` equals `value` (Email: case-insensitive).
    pub(crate) fn matching(&self, object: &str, field: &str, value: &str) -> Vec<String> {
        self.records
            .values()
            .filter(|r| r.object.eq_ignore_ascii_case(object) && r.deleted.is_none())
            .filter(|r| {
                r.text(field).is_some_and(|v| {
                    if field.eq_ignore_ascii_case("Email") {
                        v.trim().eq_ignore_ascii_case(value.trim())
                    } else {
                        v == value
                    }
                })
            })
            .map(|r| r.id.clone())
            .collect()
    }

    /// Unique External ID fields must not repeat across live records.
    /// A contact (or lead) is a member of a campaign at most once.
    fn check_campaign_member(&self, fields: &BTreeMap<String, Value>) -> Result<(), SfError> {
        let get = |f: &BTreeMap<String, Value>, k: &str| {
            f.get(k).and_then(Value::as_str).map(str::to_owned)
        };
        let campaign = get(fields, "CampaignId");
        let who = get(fields, "ContactId").or_else(|| get(fields, "LeadId"));
        let taken = self.records.values().any(|r| {
            r.object == "CampaignMember"
                && r.deleted.is_none()
                && get(&r.fields, "CampaignId") == campaign
                && get(&r.fields, "ContactId").or_else(|| get(&r.fields, "LeadId")) == who
        });
        if taken {
            return Err(SfError::new(
                "DUPLICATE_VALUE",
                "Already a campaign member.",
            ));
        }
        Ok(())
    }

    fn check_unique(
        &self,
        object: &str,
        fields: &BTreeMap<String, Value>,
        target: Option<&str>,
    ) -> Result<(), SfError> {
        let Some(schema) = self.schema(object) else {
            return Ok(());
        };
        for (name, value) in fields {
            let Some(v) = value.as_str().filter(|v| !v.is_empty()) else {
                continue;
            };
            if !schema.field(name).is_some_and(|d| d.external_id) {
                continue;
            }
            if let Some(holder) = self
                .matching(object, name, v)
                .into_iter()
                .find(|id| Some(id.as_str()) != target)
            {
                return Err(SfError::new(
                    "DUPLICATE_VALUE",
                    format!(
                        "duplicate value found: {name} duplicates value on record with id: {holder}"
                    ),
                )
                .with_fields(vec![name.clone()]));
            }
        }
        Ok(())
    }

    pub(crate) fn create(
        &mut self,
        object: &str,
        fields: &Map<String, Value>,
        origin: Origin<'_>,
        now: DateTime<Utc>,
    ) -> WriteResult {
        let valid = self.validate(object, fields, true)?;
        let schema_name = self
            .schema(object)
            .map(|s| (s.name.clone(), s.key_prefix.clone()));
        let Some((name, prefix)) = schema_name else {
            return Err(SfError::new(
                "INVALID_TYPE",
                format!("sObject type '{object}' is not supported."),
            ));
        };
        self.check_unique(&name, &valid, None)?;
        if name == "CampaignMember" {
            self.check_campaign_member(&valid)?;
        }
        let id = self.next_id(&prefix);
        self.records.insert(
            id.clone(),
            SfRecord {
                id: id.clone(),
                object: name,
                fields: valid,
                created: now,
                modified: now,
                deleted: None,
                master_record_id: None,
                last_write_client: origin.client.map(str::to_owned),
                created_by: origin.user.to_owned(),
                last_modified_by: origin.user.to_owned(),
            },
        );
        Ok(id)
    }

    /// Inserts without validation of required fields or uniqueness (seeding legacy data).
    pub(crate) fn insert_raw(
        &mut self,
        object: &str,
        fields: BTreeMap<String, Value>,
        now: DateTime<Utc>,
    ) -> Option<String> {
        let (name, prefix) = self
            .schema(object)
            .map(|s| (s.name.clone(), s.key_prefix.clone()))?;
        let id = self.next_id(&prefix);
        self.records.insert(
            id.clone(),
            SfRecord {
                id: id.clone(),
                object: name,
                fields,
                created: now,
                modified: now,
                deleted: None,
                master_record_id: None,
                last_write_client: None,
                created_by: ADMIN_USER_ID.to_owned(),
                last_modified_by: ADMIN_USER_ID.to_owned(),
            },
        );
        Some(id)
    }

    pub(crate) fn update(
        &mut self,
        id: &str,
        fields: &Map<String, Value>,
        origin: Origin<'_>,
        now: DateTime<Utc>,
    ) -> WriteResult {
        if id.len() != 15 && id.len() != 18 {
            return Err(
                SfError::new("MALFORMED_ID", format!("id value of incorrect type: {id}"))
                    .with_fields(vec!["Id".into()]),
            );
        }
        let object = match self.records.get(id) {
            None => {
                return Err(SfError::new(
                    "INVALID_CROSS_REFERENCE_KEY",
                    "invalid cross reference id",
                ));
            }
            Some(r) if r.deleted.is_some() => {
                return Err(SfError::new("ENTITY_IS_DELETED", "entity is deleted"));
            }
            Some(r) => r.object.clone(),
        };
        let valid = self.validate(&object, fields, false)?;
        self.check_unique(&object, &valid, Some(id))?;
        if let Some(r) = self.records.get_mut(id) {
            r.fields.extend(valid);
            r.modified = now;
            r.last_write_client = origin.client.map(str::to_owned);
            r.last_modified_by = origin.user.to_owned();
        }
        Ok(id.to_owned())
    }

    pub(crate) fn delete(&mut self, id: &str, now: DateTime<Utc>) -> bool {
        match self.records.get_mut(id) {
            Some(r) if r.deleted.is_none() => {
                r.deleted = Some(now);
                r.modified = now;
                true
            }
            _ => false,
        }
    }
}
