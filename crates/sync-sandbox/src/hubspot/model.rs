//! HubSpot state: contacts, the contact property catalogue, notes and lists, with the
//! validation rules the real API applies on writes.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Value, json};

use super::errors::{ApiError, PropertyError};

/// Properties returned when a request names none.
pub(crate) const DEFAULT_PROPERTIES: [&str; 3] = ["firstname", "lastname", "email"];

pub(crate) fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A contact as stored by the sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct HubSpotContact {
    /// Record id (HubSpot sends it as a string).
    pub id: u64,
    /// Property values, `;`-joined for multi-checkbox properties. Includes
    /// `hs_object_id`, `createdate` and `lastmodifieddate`.
    pub properties: BTreeMap<String, String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last write time (mirrors `lastmodifieddate`).
    pub updated_at: DateTime<Utc>,
    /// Whether the contact is archived (deleted, restorable).
    pub archived: bool,
    /// When it was archived.
    pub archived_at: Option<DateTime<Utc>>,
    /// The contact this one was merged into (it is then archived).
    pub merged_into: Option<u64>,
}

impl HubSpotContact {
    /// The `email` property, if set.
    pub fn email(&self) -> Option<&str> {
        self.properties
            .get("email")
            .map(String::as_str)
            .filter(|e| !e.is_empty())
    }

    /// A property value, if set and not blank.
    pub fn property(&self, name: &str) -> Option<&str> {
        self.properties
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// The options of a multi-checkbox property (`a;b;c` split on `;`).
    pub fn tags(&self, property: &str) -> Vec<String> {
        self.property(property)
            .map(|v| {
                v.split(';')
                    .filter(|t| !t.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    pub(crate) fn to_json(&self, requested: &[String], url_base: Option<&str>) -> Value {
        let mut props = serde_json::Map::new();
        let names: Vec<&str> = if requested.is_empty() {
            DEFAULT_PROPERTIES.to_vec()
        } else {
            requested.iter().map(String::as_str).collect()
        };
        for name in names
            .into_iter()
            .chain(["hs_object_id", "createdate", "lastmodifieddate"])
        {
            let v = self
                .properties
                .get(name)
                .map_or(Value::Null, |v| Value::String(v.clone()));
            props.insert(name.to_owned(), v);
        }
        let mut obj = json!({
            "id": self.id.to_string(),
            "properties": props,
            "createdAt": iso(self.created_at),
            "updatedAt": iso(self.updated_at),
            "archived": self.archived,
        });
        if let Some(at) = self.archived_at {
            obj["archivedAt"] = json!(iso(at));
        }
        if let Some(base) = url_base {
            obj["url"] = json!(format!("{base}/record/0-1/{}", self.id));
        }
        obj
    }
}

/// One option of an enumeration property. Writes use `value`, never `label`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct PropertyOption {
    /// Display label.
    pub label: String,
    /// Internal value.
    pub value: String,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// Position in the UI.
    #[serde(default)]
    pub display_order: i64,
    /// Hidden in forms.
    #[serde(default)]
    pub hidden: bool,
}

impl PropertyOption {
    /// An option whose label and value are both `value`.
    pub fn new(value: impl Into<String>) -> Self {
        let value = value.into();
        Self {
            label: value.clone(),
            value,
            description: String::new(),
            display_order: -1,
            hidden: false,
        }
    }
}

/// A contact property definition (Properties API).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct PropertyDef {
    /// Internal name.
    pub name: String,
    /// Label.
    pub label: String,
    /// `string`, `number`, `date`, `datetime`, `enumeration`, `bool`, `phone_number`.
    pub kind: String,
    /// `text`, `checkbox` (multi-select), `select`, `radio`, `booleancheckbox`, ...
    pub field_type: String,
    /// Property group.
    pub group_name: String,
    /// Description.
    pub description: String,
    /// Options of an enumeration.
    pub options: Vec<PropertyOption>,
    /// Whether values are unique across contacts (usable as upsert `idProperty`).
    pub has_unique_value: bool,
    /// Whether HubSpot owns the value (writes refused).
    pub read_only: bool,
    /// Whether HubSpot defined it.
    pub hubspot_defined: bool,
}

impl PropertyDef {
    pub(crate) fn new(name: &str, label: &str, kind: &str, field_type: &str) -> Self {
        Self {
            name: name.into(),
            label: label.into(),
            kind: kind.into(),
            field_type: field_type.into(),
            group_name: "contactinformation".into(),
            description: String::new(),
            options: Vec::new(),
            has_unique_value: false,
            read_only: false,
            hubspot_defined: true,
        }
    }

    fn with_options(mut self, values: &[&str]) -> Self {
        self.options = values
            .iter()
            .enumerate()
            .map(|(i, v)| PropertyOption {
                display_order: i64::try_from(i).unwrap_or(0),
                ..PropertyOption::new(*v)
            })
            .collect();
        self
    }

    /// Whether this is a multi-checkbox ("tags") property.
    pub fn is_multi_checkbox(&self) -> bool {
        self.kind == "enumeration" && self.field_type == "checkbox"
    }

    pub(crate) fn to_json(&self, at: DateTime<Utc>) -> Value {
        json!({
            "name": self.name,
            "label": self.label,
            "type": self.kind,
            "fieldType": self.field_type,
            "groupName": self.group_name,
            "description": self.description,
            "options": self.options,
            "displayOrder": -1,
            "hidden": false,
            "hasUniqueValue": self.has_unique_value,
            "formField": !self.read_only,
            "calculated": false,
            "externalOptions": false,
            "hubspotDefined": self.hubspot_defined,
            "archived": false,
            "createdAt": iso(at),
            "updatedAt": iso(at),
            "modificationMetadata": {
                "archivable": !self.hubspot_defined,
                "readOnlyDefinition": self.hubspot_defined,
                "readOnlyValue": self.read_only,
            },
        })
    }
}

/// HubSpot's lifecycle stages, in order.
pub const LIFECYCLE_STAGES: [&str; 8] = [
    "subscriber",
    "lead",
    "marketingqualifiedlead",
    "salesqualifiedlead",
    "opportunity",
    "customer",
    "evangelist",
    "other",
];

pub(crate) fn default_catalogue(
    tags_property: &str,
    tag_options: &[String],
) -> BTreeMap<String, PropertyDef> {
    let ro = |name: &str, label: &str, kind: &str, ft: &str| {
        let mut p = PropertyDef::new(name, label, kind, ft);
        p.read_only = true;
        p
    };
    let mut defs = vec![
        ro("hs_object_id", "Record ID", "number", "number"),
        ro("createdate", "Create Date", "datetime", "date"),
        ro("lastmodifieddate", "Last Modified Date", "datetime", "date"),
        ro(
            "hs_merged_object_ids",
            "Merged Contact IDs",
            "enumeration",
            "checkbox",
        ),
        ro(
            "hs_additional_emails",
            "Additional email addresses",
            "enumeration",
            "checkbox",
        ),
        PropertyDef::new("email", "Email", "string", "text"),
        PropertyDef::new("firstname", "First Name", "string", "text"),
        PropertyDef::new("lastname", "Last Name", "string", "text"),
        PropertyDef::new("phone", "Phone Number", "string", "phonenumber"),
        PropertyDef::new(
            "mobilephone",
            "Mobile Phone Number",
            "string",
            "phonenumber",
        ),
        PropertyDef::new("jobtitle", "Job Title", "string", "text"),
        PropertyDef::new("company", "Company Name", "string", "text"),
        ro(
            "associatedcompanyid",
            "Primary Associated Company ID",
            "number",
            "number",
        ),
        PropertyDef::new("city", "City", "string", "text"),
        PropertyDef::new("country", "Country/Region", "string", "text"),
        PropertyDef::new("lifecyclestage", "Lifecycle Stage", "enumeration", "radio")
            .with_options(&LIFECYCLE_STAGES),
    ];
    let custom = |name: &str, label: &str, kind: &str, ft: &str| {
        let mut p = PropertyDef::new(name, label, kind, ft);
        p.hubspot_defined = false;
        p.group_name = "cativa".into();
        p
    };
    let mut tags = custom(tags_property, "Cativa tags", "enumeration", "checkbox");
    tags.options = tag_options
        .iter()
        .enumerate()
        .map(|(i, v)| PropertyOption {
            display_order: i64::try_from(i).unwrap_or(0),
            ..PropertyOption::new(v.clone())
        })
        .collect();
    defs.push(tags);
    defs.push(custom(
        "community_email",
        "Community email",
        "string",
        "text",
    ));
    defs.into_iter().map(|p| (p.name.clone(), p)).collect()
}

/// A change as HubSpot would deliver it to a webhook subscription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct HubSpotEvent {
    /// `eventId` (HubSpot does not promise it is unique; here it is).
    pub event_id: u64,
    /// `contact.creation`, `contact.propertyChange`, `contact.deletion`, `contact.merge`.
    pub subscription_type: String,
    /// The contact.
    pub object_id: u64,
    /// When it happened (`occurredAt`, epoch ms on the wire).
    pub occurred_at: DateTime<Utc>,
    /// `API` for writes through the API, `CRM` for changes a person made.
    pub change_source: String,
    /// propertyChange only.
    pub property_name: Option<String>,
    /// propertyChange only: the new value.
    pub property_value: Option<String>,
    /// merge only.
    pub primary_object_id: Option<u64>,
    /// merge only: the ids that were merged (the primary included).
    pub merged_object_ids: Vec<u64>,
}

impl HubSpotEvent {
    /// The JSON element of a webhook batch.
    pub fn to_json(&self, portal_id: u64, app_id: u64) -> Value {
        let mut v = json!({
            "eventId": self.event_id,
            "subscriptionId": match self.subscription_type.as_str() {
                "contact.creation" => 1001,
                "contact.propertyChange" => 1002,
                "contact.deletion" => 1003,
                _ => 1004,
            },
            "portalId": portal_id,
            "appId": app_id,
            "occurredAt": self.occurred_at.timestamp_millis(),
            "subscriptionType": self.subscription_type,
            "attemptNumber": 0,
            "objectId": self.object_id,
            "changeSource": self.change_source,
        });
        if self.subscription_type == "contact.creation" {
            v["changeFlag"] = json!("NEW");
        }
        if let Some(p) = &self.property_name {
            v["propertyName"] = json!(p);
            v["propertyValue"] = json!(self.property_value.clone().unwrap_or_default());
        }
        if let Some(p) = self.primary_object_id {
            v["primaryObjectId"] = json!(p);
            v["mergedObjectIds"] = json!(self.merged_object_ids);
            v["newObjectId"] = json!(p);
            v["numberOfPropertiesMoved"] = json!(0);
        }
        v
    }
}

/// A note (engagement) logged against contacts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct HubSpotNote {
    /// Note id.
    pub id: u64,
    /// Properties (`hs_timestamp`, `hs_note_body`, ...).
    pub properties: BTreeMap<String, String>,
    /// Associated records: (record id, association type id), e.g. (contact, 202).
    pub associations: Vec<(u64, u32)>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// A list (Lists v3) and its members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct HubSpotList {
    /// ILS list id.
    pub list_id: u64,
    /// Name.
    pub name: String,
    /// `MANUAL`, `SNAPSHOT` or `DYNAMIC` (memberships only editable on the first two).
    pub processing_type: String,
    /// Members and when they were added.
    pub members: BTreeMap<u64, DateTime<Utc>>,
}

impl HubSpotList {
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "listId": self.list_id.to_string(),
            "name": self.name,
            "objectTypeId": "0-1",
            "processingType": self.processing_type,
            "processingStatus": "COMPLETE",
            "listVersion": 1,
            "size": self.members.len(),
        })
    }
}

/// Everything a HubSpot sandbox holds.
#[derive(Debug)]
pub(crate) struct HubSpotState {
    pub(crate) portal_id: u64,
    pub(crate) contacts: BTreeMap<u64, HubSpotContact>,
    next_id: u64,
    pub(crate) properties: BTreeMap<String, PropertyDef>,
    pub(crate) notes: Vec<HubSpotNote>,
    next_note_id: u64,
    pub(crate) lists: BTreeMap<u64, HubSpotList>,
    next_list_id: u64,
    /// Companies and their associations with contacts.
    pub(crate) companies: super::companies::Companies,
    /// Live contacts by trimmed, lowercased email (several when seeded duplicates).
    emails: HashMap<String, BTreeSet<u64>>,
    /// Change log for webhook deliveries.
    pub(crate) events: Vec<HubSpotEvent>,
    next_event_id: u64,
    /// `changeSource` of the writes being made (`API` for requests, `CRM` for changes
    /// made "in the UI" by tests, `None` while seeding: no events).
    pub(crate) source: Option<&'static str>,
}

/// How a write treats the email uniqueness rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Uniqueness {
    /// As the API does: refuse a value another live contact holds.
    Enforce,
    /// Seeding legacy data: allow duplicates.
    Ignore,
}

impl HubSpotState {
    pub(crate) fn new(portal_id: u64, tags_property: &str, tag_options: &[String]) -> Self {
        Self {
            portal_id,
            contacts: BTreeMap::new(),
            next_id: 1001,
            properties: default_catalogue(tags_property, tag_options),
            notes: Vec::new(),
            next_note_id: 9_000_001,
            lists: BTreeMap::new(),
            next_list_id: 1,
            companies: super::companies::Companies::default(),
            emails: HashMap::new(),
            events: Vec::new(),
            next_event_id: 1,
            source: Some("API"),
        }
    }

    /// Live (non-archived) contact holding `value` in `property` (email: case-insensitive).
    pub(crate) fn find_by(&self, property: &str, value: &str) -> Option<u64> {
        let value = value.trim();
        if property == "email" {
            return self
                .emails
                .get(&value.to_lowercase())
                .and_then(|ids| ids.first().copied());
        }
        self.contacts
            .values()
            .filter(|c| !c.archived)
            .find(|c| {
                c.properties.get(property).is_some_and(|v| {
                    if property == "email" {
                        v.trim().eq_ignore_ascii_case(value)
                    } else {
                        v == value
                    }
                })
            })
            .map(|c| c.id)
    }

    /// Resolves an id the way `idProperty` does: absent means the record id.
    pub(crate) fn resolve(
        &self,
        id: &str,
        id_property: Option<&str>,
        archived: bool,
    ) -> Option<u64> {
        match id_property {
            None | Some("hs_object_id") => {
                let n = id.parse::<u64>().ok()?;
                // A merged-away id answers with the contact it was merged into.
                let n = self
                    .contacts
                    .get(&n)
                    .and_then(|c| c.merged_into)
                    .unwrap_or(n);
                self.contacts
                    .get(&n)
                    .filter(|c| c.archived == archived)
                    .map(|c| c.id)
            }
            Some(prop) if !archived => self.find_by(prop, id),
            Some(_) => None,
        }
    }

    /// Whether `property` may be used as an `idProperty`.
    pub(crate) fn is_id_property(&self, property: &str) -> bool {
        property == "email"
            || self
                .properties
                .get(property)
                .is_some_and(|p| p.has_unique_value)
    }

    /// Checks a set of property writes against the catalogue. `current` is the
    /// contact being updated (for `;append` writes), `None` on create.
    pub(crate) fn validate(
        &self,
        props: &BTreeMap<String, String>,
        current: Option<&HubSpotContact>,
    ) -> Result<BTreeMap<String, String>, Vec<PropertyError>> {
        let mut errors = Vec::new();
        let mut out = BTreeMap::new();
        for (name, value) in props {
            let Some(def) = self.properties.get(name) else {
                errors.push(PropertyError::doesnt_exist(name));
                continue;
            };
            if def.read_only {
                errors.push(PropertyError::read_only(name));
                continue;
            }
            let mut value = value.clone();
            if def.kind == "enumeration" && !value.is_empty() {
                let allowed: Vec<String> = def.options.iter().map(|o| o.value.clone()).collect();
                let append = def.is_multi_checkbox() && value.starts_with(';');
                let tokens: Vec<&str> = if def.is_multi_checkbox() {
                    value.split(';').filter(|t| !t.is_empty()).collect()
                } else {
                    vec![value.as_str()]
                };
                let bad: Vec<&str> = tokens
                    .iter()
                    .copied()
                    .filter(|t| !allowed.iter().any(|a| a == t))
                    .collect();
                if let Some(b) = bad.first() {
                    errors.push(PropertyError::invalid_option(name, b, &allowed));
                    continue;
                }
                if append {
                    // ";newtag" appends to the current selection.
                    let mut set: Vec<String> = current.map(|c| c.tags(name)).unwrap_or_default();
                    for t in tokens {
                        if !set.iter().any(|s| s == t) {
                            set.push(t.to_owned());
                        }
                    }
                    value = set.join(";");
                }
            }
            if def.kind == "number" && !value.is_empty() && value.parse::<f64>().is_err() {
                errors.push(PropertyError::invalid(
                    name,
                    "INVALID_NUMBER",
                    format!("{value} is not a valid number"),
                ));
                continue;
            }
            if name == "email" && !value.is_empty() && !looks_like_email(&value) {
                errors.push(PropertyError::invalid(
                    name,
                    "INVALID_EMAIL",
                    format!("Email address {value} is invalid"),
                ));
                continue;
            }
            out.insert(name.clone(), value);
        }
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(errors)
        }
    }

    /// Unique-value check for a write of `props` to `target` (None on create).
    pub(crate) fn check_unique(
        &self,
        props: &BTreeMap<String, String>,
        target: Option<u64>,
    ) -> Result<(), ApiError> {
        for (name, value) in props {
            if value.is_empty() {
                continue;
            }
            let unique = name == "email"
                || self
                    .properties
                    .get(name)
                    .is_some_and(|p| p.has_unique_value);
            if !unique {
                continue;
            }
            if let Some(holder) = self.find_by(name, value)
                && Some(holder) != target
            {
                return Err(if name == "email" && target.is_none() {
                    ApiError::duplicate_contact(holder)
                } else {
                    ApiError::unique_collision(self.portal_id, name, value, target, holder)
                });
            }
        }
        Ok(())
    }

    /// Creates a contact from validated properties.
    pub(crate) fn insert(&mut self, props: BTreeMap<String, String>, now: DateTime<Utc>) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let mut properties = props;
        properties.insert("hs_object_id".into(), id.to_string());
        properties.insert("createdate".into(), iso(now));
        properties.insert("lastmodifieddate".into(), iso(now));
        if let Some(e) = properties.get_mut("email") {
            *e = e.trim().to_owned();
            if !e.is_empty() {
                self.emails.entry(e.to_lowercase()).or_default().insert(id);
            }
        }
        self.contacts.insert(
            id,
            HubSpotContact {
                id,
                properties,
                created_at: now,
                updated_at: now,
                archived: false,
                archived_at: None,
                merged_into: None,
            },
        );
        self.event("contact.creation", id, now, |_| {});
        id
    }

    /// Runs `f` with writes attributed to `source` (`None`: record no events).
    pub(crate) fn with_source<T>(
        &mut self,
        source: Option<&'static str>,
        f: impl FnOnce(&mut Self) -> T,
    ) -> T {
        let before = std::mem::replace(&mut self.source, source);
        let out = f(self);
        self.source = before;
        out
    }

    fn event(
        &mut self,
        kind: &str,
        object_id: u64,
        at: DateTime<Utc>,
        fill: impl FnOnce(&mut HubSpotEvent),
    ) {
        let Some(source) = self.source else { return };
        let mut e = HubSpotEvent {
            event_id: self.next_event_id,
            subscription_type: kind.to_owned(),
            object_id,
            occurred_at: at,
            change_source: source.to_owned(),
            property_name: None,
            property_value: None,
            primary_object_id: None,
            merged_object_ids: Vec::new(),
        };
        self.next_event_id += 1;
        fill(&mut e);
        self.events.push(e);
    }

    /// Applies validated properties to an existing contact.
    pub(crate) fn apply(&mut self, id: u64, props: BTreeMap<String, String>, now: DateTime<Utc>) {
        let mut changed = Vec::new();
        if let Some(c) = self.contacts.get_mut(&id) {
            for (k, v) in props {
                let v = if k == "email" { v.trim().to_owned() } else { v };
                if c.properties.get(&k) != Some(&v) {
                    changed.push((k.clone(), v.clone()));
                    if k == "email" && !c.archived {
                        let old = c.properties.get(&k).map(|o| o.to_lowercase());
                        if let Some(set) = old.and_then(|o| self.emails.get_mut(&o)) {
                            set.remove(&id);
                        }
                        if !v.is_empty() {
                            self.emails.entry(v.to_lowercase()).or_default().insert(id);
                        }
                    }
                }
                c.properties.insert(k, v);
            }
            c.properties.insert("lastmodifieddate".into(), iso(now));
            c.updated_at = now;
        }
        for (name, value) in changed {
            self.event("contact.propertyChange", id, now, |e| {
                e.property_name = Some(name);
                e.property_value = Some(value);
            });
        }
    }

    /// Validates then creates, as `POST /contacts` does.
    pub(crate) fn create(
        &mut self,
        props: &BTreeMap<String, String>,
        uniqueness: Uniqueness,
        now: DateTime<Utc>,
    ) -> Result<u64, ApiError> {
        let valid = self
            .validate(props, None)
            .map_err(|e| ApiError::invalid_properties(&e))?;
        if uniqueness == Uniqueness::Enforce {
            self.check_unique(&valid, None)?;
        }
        Ok(self.insert(valid, now))
    }

    /// Validates then updates, as `PATCH /contacts/{id}` does.
    pub(crate) fn update(
        &mut self,
        id: u64,
        props: &BTreeMap<String, String>,
        now: DateTime<Utc>,
    ) -> Result<(), ApiError> {
        let valid = {
            let current = self
                .contacts
                .get(&id)
                .ok_or_else(|| ApiError::not_found(&id.to_string()))?;
            self.validate(props, Some(current))
                .map_err(|e| ApiError::invalid_properties(&e))?
        };
        self.check_unique(&valid, Some(id))?;
        self.apply(id, valid, now);
        Ok(())
    }

    pub(crate) fn archive(&mut self, id: u64, now: DateTime<Utc>) -> bool {
        let done = self.archive_quietly(id, now);
        if done {
            self.event("contact.deletion", id, now, |_| {});
        }
        done
    }

    fn archive_quietly(&mut self, id: u64, now: DateTime<Utc>) -> bool {
        match self.contacts.get_mut(&id) {
            Some(c) if !c.archived => {
                c.archived = true;
                c.archived_at = Some(now);
                c.updated_at = now;
                if let Some(set) = c
                    .email()
                    .and_then(|e| self.emails.get_mut(&e.to_lowercase()))
                {
                    set.remove(&id);
                }
                for list in self.lists.values_mut() {
                    list.members.remove(&id);
                }
                true
            }
            _ => false,
        }
    }

    /// Merges `secondary` into `primary`: the primary keeps its values and takes the
    /// secondary's where it has none; the secondary's email becomes an additional
    /// email; the secondary is archived and points at the primary.
    pub(crate) fn merge(
        &mut self,
        primary: u64,
        secondary: u64,
        now: DateTime<Utc>,
    ) -> Result<(), ApiError> {
        if primary == secondary {
            return Err(ApiError::validation("Cannot merge a contact with itself"));
        }
        let live = |id: u64| self.contacts.get(&id).filter(|c| !c.archived).cloned();
        let p = live(primary).ok_or_else(|| ApiError::not_found(&primary.to_string()))?;
        let s = live(secondary).ok_or_else(|| ApiError::not_found(&secondary.to_string()))?;
        let mut props = BTreeMap::new();
        for (k, v) in &s.properties {
            let system = matches!(
                k.as_str(),
                "hs_object_id" | "createdate" | "lastmodifieddate" | "email"
            );
            if !system && !v.is_empty() && p.property(k).is_none() {
                props.insert(k.clone(), v.clone());
            }
        }
        let mut merged_ids: Vec<String> = p
            .property("hs_merged_object_ids")
            .map(|v| v.split(';').map(str::to_owned).collect())
            .unwrap_or_default();
        merged_ids.push(secondary.to_string());
        props.insert("hs_merged_object_ids".into(), merged_ids.join(";"));
        if let Some(e) = s.email() {
            let mut extra: Vec<String> = p
                .property("hs_additional_emails")
                .map(|v| v.split(';').map(str::to_owned).collect())
                .unwrap_or_default();
            extra.push(e.to_owned());
            props.insert("hs_additional_emails".into(), extra.join(";"));
        }
        self.archive_quietly(secondary, now);
        if let Some(c) = self.contacts.get_mut(&secondary) {
            c.merged_into = Some(primary);
        }
        self.apply(primary, props, now);
        self.event("contact.merge", primary, now, |e| {
            e.primary_object_id = Some(primary);
            e.merged_object_ids = vec![primary, secondary];
        });
        Ok(())
    }

    pub(crate) fn add_note(
        &mut self,
        properties: BTreeMap<String, String>,
        associations: Vec<(u64, u32)>,
        now: DateTime<Utc>,
    ) -> HubSpotNote {
        let id = self.next_note_id;
        self.next_note_id += 1;
        let mut properties = properties;
        properties.insert("hs_object_id".into(), id.to_string());
        properties.insert("hs_createdate".into(), iso(now));
        properties.insert("hs_lastmodifieddate".into(), iso(now));
        let note = HubSpotNote {
            id,
            properties,
            associations,
            created_at: now,
        };
        self.notes.push(note.clone());
        note
    }

    pub(crate) fn create_list(&mut self, name: &str, processing_type: &str) -> u64 {
        let id = self.next_list_id;
        self.next_list_id += 1;
        self.lists.insert(
            id,
            HubSpotList {
                list_id: id,
                name: name.to_owned(),
                processing_type: processing_type.to_owned(),
                members: BTreeMap::new(),
            },
        );
        id
    }

    /// Adds `tag` to a multi-checkbox property, adding the option if the property lacks it.
    pub(crate) fn add_tag(
        &mut self,
        id: u64,
        property: &str,
        tag: &str,
        now: DateTime<Utc>,
    ) -> bool {
        if let Some(def) = self.properties.get_mut(property)
            && !def.options.iter().any(|o| o.value == tag)
        {
            def.options.push(PropertyOption::new(tag));
        }
        let Some(c) = self.contacts.get(&id) else {
            return false;
        };
        let mut tags = c.tags(property);
        if !tags.iter().any(|t| t == tag) {
            tags.push(tag.to_owned());
        }
        let props = BTreeMap::from([(property.to_owned(), tags.join(";"))]);
        self.apply(id, props, now);
        true
    }

    pub(crate) fn remove_tag(
        &mut self,
        id: u64,
        property: &str,
        tag: &str,
        now: DateTime<Utc>,
    ) -> bool {
        let Some(c) = self.contacts.get(&id) else {
            return false;
        };
        let tags: Vec<String> = c.tags(property).into_iter().filter(|t| t != tag).collect();
        let props = BTreeMap::from([(property.to_owned(), tags.join(";"))]);
        self.apply(id, props, now);
        true
    }
}

fn looks_like_email(v: &str) -> bool {
    let v = v.trim();
    match v.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty() && domain.contains('.') && !v.contains(char::is_whitespace)
        }
        None => false,
    }
}

/// Turns a JSON property map (values may be strings, numbers, booleans or null) into
/// strings as HubSpot stores them; null clears.
pub(crate) fn string_props(v: &serde_json::Map<String, Value>) -> BTreeMap<String, String> {
    v.iter()
        .map(|(k, v)| {
            let s = match v {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                Value::Bool(b) => b.to_string(),
                other => other.to_string(),
            };
            (k.clone(), s)
        })
        .collect()
}

/// Property names requested through a query (`properties=a,b&properties=c`).
pub(crate) fn requested(names: &[String]) -> Vec<String> {
    let mut seen = BTreeSet::new();
    names
        .iter()
        .flat_map(|n| n.split(','))
        .map(str::trim)
        .filter(|n| !n.is_empty() && seen.insert(n.to_owned()))
        .map(str::to_owned)
        .collect()
}
