//! From HubSpot objects to [`CrmContact`]: email normalization, tags, lifecycle stage,
//! modification time.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use sync_core::{CrmContact, CrmRecordId, Email};

use crate::model::HubSpotObject;

/// How a tag is derived from a contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TagSource {
    /// Every option set on a multiple-checkboxes property (`"vip;speaker"` -> `vip`, `speaker`).
    CheckboxProperty(String),
    /// Membership of lists: list id -> tag. Joining or leaving a list does not change a
    /// contact's `lastmodifieddate`, so deltas see list changes only when the contact also
    /// changed: run full reconciles to pick them up.
    Lists(BTreeMap<String, String>),
    /// A tag set when a property matches.
    Predicate {
        /// The tag.
        tag: String,
        /// The property.
        property: String,
        /// The test.
        matches: TagMatch,
    },
}

/// A test on a property value (exact, after trimming: HubSpot enumerations are
/// case-sensitive).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TagMatch {
    /// Equals the value.
    Equals(String),
    /// Is one of the values.
    OneOf(Vec<String>),
    /// Has any non-blank value.
    HasValue,
    /// For `;`-separated values: one of them equals the value.
    Contains(String),
}

impl TagMatch {
    fn test(&self, value: Option<&str>) -> bool {
        let v = value.map(str::trim).filter(|v| !v.is_empty());
        match (self, v) {
            (Self::HasValue, v) => v.is_some(),
            (_, None) => false,
            (Self::Equals(x), Some(v)) => v == x,
            (Self::OneOf(xs), Some(v)) => xs.iter().any(|x| x == v),
            (Self::Contains(x), Some(v)) => split_multi(v).any(|p| p == x),
        }
    }
}

/// Splits a multiple-checkboxes value on `;`, trimming and dropping empty parts.
pub fn split_multi(value: &str) -> impl Iterator<Item = &str> {
    value.split(';').map(str::trim).filter(|s| !s.is_empty())
}

/// Joins option values as HubSpot expects for a multiple-checkboxes write (`a;b`, no spaces).
pub fn join_multi<'a>(values: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = String::new();
    for v in values {
        let v = v.trim();
        if v.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(';');
        }
        out.push_str(v);
    }
    out
}

/// Parses a HubSpot time: ISO 8601 (`2025-12-22T18:16:33.376Z`) or epoch milliseconds.
pub fn parse_time(raw: &str) -> Option<DateTime<Utc>> {
    let raw = raw.trim();
    if !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit()) {
        return raw
            .parse::<i64>()
            .ok()
            .and_then(|ms| Utc.timestamp_millis_opt(ms).single());
    }
    DateTime::parse_from_rfc3339(raw)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Record id -> tags, from list memberships.
pub type ListTags = HashMap<String, BTreeSet<String>>;

/// How HubSpot contact properties become a [`CrmContact`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct ContactMapping {
    /// The primary email property (`email`).
    pub email_property: String,
    /// An alternate lookup email property (e.g. `community_email`).
    pub alternate_email_property: Option<String>,
    /// The lifecycle stage property (`lifecyclestage`).
    pub lifecycle_property: String,
    /// The last-modified property (`lastmodifieddate` for contacts).
    pub modified_property: String,
    /// Where tags come from.
    pub tags: Vec<TagSource>,
    /// Other properties to read (mapped fields, badge-rule properties).
    pub properties: Vec<String>,
}

impl Default for ContactMapping {
    fn default() -> Self {
        Self {
            email_property: "email".into(),
            alternate_email_property: None,
            lifecycle_property: "lifecyclestage".into(),
            modified_property: "lastmodifieddate".into(),
            tags: Vec::new(),
            properties: Vec::new(),
        }
    }
}

/// `hs_merged_object_ids`: the ids merged into a contact (`;`-separated).
pub const MERGED_IDS_PROPERTY: &str = "hs_merged_object_ids";

impl ContactMapping {
    /// Adds a tag source (builder style).
    #[must_use]
    pub fn with_tags(mut self, source: TagSource) -> Self {
        self.tags.push(source);
        self
    }

    /// Reads these properties too (builder style).
    #[must_use]
    pub fn with_properties<I: IntoIterator<Item = S>, S: Into<String>>(mut self, props: I) -> Self {
        self.properties.extend(props.into_iter().map(Into::into));
        self
    }

    /// Sets the alternate email property (builder style).
    #[must_use]
    pub fn with_alternate_email(mut self, property: impl Into<String>) -> Self {
        self.alternate_email_property = Some(property.into());
        self
    }

    /// Every property to request, deduplicated and sorted.
    pub fn properties_to_request(&self) -> Vec<String> {
        let mut set: BTreeSet<String> = self.properties.iter().cloned().collect();
        set.insert(self.email_property.clone());
        set.insert(self.lifecycle_property.clone());
        set.insert(self.modified_property.clone());
        set.insert(MERGED_IDS_PROPERTY.to_owned());
        set.extend(self.alternate_email_property.iter().cloned());
        for t in &self.tags {
            match t {
                TagSource::CheckboxProperty(p) | TagSource::Predicate { property: p, .. } => {
                    set.insert(p.clone());
                }
                TagSource::Lists(_) => {}
            }
        }
        set.into_iter().collect()
    }

    /// Whether any tag comes from list memberships.
    pub fn uses_lists(&self) -> bool {
        self.tags.iter().any(|t| matches!(t, TagSource::Lists(_)))
    }

    /// The configured list ids -> tags.
    pub fn list_tags(&self) -> impl Iterator<Item = (&String, &String)> {
        self.tags
            .iter()
            .flat_map(|t| match t {
                TagSource::Lists(m) => Some(m.iter()),
                _ => None,
            })
            .flatten()
    }

    /// The modification time of an object: the modified property, else `updatedAt`, else
    /// `createdAt`, else the Unix epoch (so it sorts first and is re-read, never skipped).
    pub fn modified_at(&self, obj: &HubSpotObject) -> DateTime<Utc> {
        obj.property(&self.modified_property)
            .and_then(parse_time)
            .or_else(|| obj.updated_at.as_deref().and_then(parse_time))
            .or_else(|| obj.created_at.as_deref().and_then(parse_time))
            .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
    }

    /// Converts an object. An email that fails [`Email`] validation becomes `None` (the
    /// contact is then reported as unmatchable by the planner, not dropped).
    pub fn to_contact(&self, obj: HubSpotObject, lists: Option<&ListTags>) -> CrmContact {
        let updated_at = self.modified_at(&obj);
        let email = obj
            .property(&self.email_property)
            .and_then(|e| Email::parse(e).ok());
        let alternate = self
            .alternate_email_property
            .as_deref()
            .and_then(|p| obj.property(p))
            .and_then(|e| Email::parse(e).ok());
        let lifecycle = obj
            .property(&self.lifecycle_property)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        let mut tags = BTreeSet::new();
        for t in &self.tags {
            match t {
                TagSource::CheckboxProperty(p) => {
                    if let Some(v) = obj.property(p) {
                        tags.extend(split_multi(v).map(str::to_owned));
                    }
                }
                TagSource::Predicate {
                    tag,
                    property,
                    matches,
                } => {
                    if matches.test(obj.property(property)) {
                        tags.insert(tag.clone());
                    }
                }
                TagSource::Lists(_) => {
                    if let Some(found) = lists.and_then(|l| l.get(&obj.id)) {
                        tags.extend(found.iter().cloned());
                    }
                }
            }
        }
        let mut c = CrmContact::new(CrmRecordId::hubspot(obj.id), email, updated_at);
        c.alternate_email = alternate;
        c.lifecycle_stage = lifecycle;
        c.tags = tags;
        c.archived = obj.archived;
        c.properties = obj.properties;
        c
    }

    /// Decodes a list or search response body into contacts plus the next `after` cursor.
    ///
    /// ```
    /// let body = br#"{"results":[{"id":"1","properties":{"email":"A@x.io"}}],"paging":{"next":{"after":"2"}}}"#;
    /// let (contacts, next) = crm_hubspot::ContactMapping::default().decode_page(body, None)?;
    /// assert_eq!(contacts[0].email.as_ref().map(|e| e.as_str()), Some("a@x.io"));
    /// assert_eq!(next.as_deref(), Some("2"));
    /// # Ok::<(), crm_hubspot::Error>(())
    /// ```
    pub fn decode_page(
        &self,
        body: &[u8],
        lists: Option<&ListTags>,
    ) -> Result<(Vec<CrmContact>, Option<String>), crate::Error> {
        let page: crate::model::Page<HubSpotObject> =
            serde_json::from_slice(body).map_err(|e| crate::Error::decode("contacts page", e))?;
        let next = page.next_after().map(str::to_owned);
        Ok((
            page.results
                .into_iter()
                .map(|o| self.to_contact(o, lists))
                .collect(),
            next,
        ))
    }

    /// Tombstones for the records merged into `obj` (from `hs_merged_object_ids`): archived
    /// contacts with `merged_into` the survivor, so the planner moves their mappings.
    pub fn merge_tombstones(&self, obj: &HubSpotObject) -> Vec<CrmContact> {
        let Some(ids) = obj.property(MERGED_IDS_PROPERTY) else {
            return Vec::new();
        };
        let at = self.modified_at(obj);
        split_multi(ids)
            .filter(|id| *id != obj.id)
            .map(|id| {
                CrmContact::new(CrmRecordId::hubspot(id), None, at)
                    .merged_into(CrmRecordId::hubspot(obj.id.clone()))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(json: &str) -> HubSpotObject {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn converts_email_tags_lifecycle_and_time() {
        let m = ContactMapping::default()
            .with_tags(TagSource::CheckboxProperty("cativa_tags".into()))
            .with_tags(TagSource::Predicate {
                tag: "Annual".into(),
                property: "plan".into(),
                matches: TagMatch::OneOf(vec!["annual".into(), "annual-2".into()]),
            })
            .with_tags(TagSource::Lists(BTreeMap::from([(
                "77".to_owned(),
                "Beta".to_owned(),
            )])))
            .with_alternate_email("community_email");
        let o = obj(
            r#"{"id":"513","properties":{"email":" Jane@Example.COM ","community_email":"bad email","lifecyclestage":"customer",
                "lastmodifieddate":"2025-12-22T18:16:33.376Z","cativa_tags":"vip; speaker;;","plan":"annual","firstname":null},
                "createdAt":"2025-01-01T00:00:00Z","updatedAt":"2025-12-22T18:16:33.376Z","archived":false}"#,
        );
        let lists: ListTags =
            HashMap::from([("513".to_owned(), BTreeSet::from(["Beta".to_owned()]))]);
        let c = m.to_contact(o, Some(&lists));
        assert_eq!(c.id, CrmRecordId::hubspot("513"));
        assert_eq!(c.email.as_ref().unwrap().as_str(), "jane@example.com");
        assert!(
            c.alternate_email.is_none(),
            "invalid alternate email is dropped"
        );
        assert_eq!(c.lifecycle_stage.as_deref(), Some("customer"));
        assert_eq!(
            c.tags.iter().map(String::as_str).collect::<Vec<_>>(),
            vec!["Annual", "Beta", "speaker", "vip"]
        );
        assert_eq!(
            c.updated_at,
            parse_time("2025-12-22T18:16:33.376Z").unwrap()
        );
        assert!(
            !c.properties.contains_key("firstname"),
            "null values are absent"
        );
        assert!(!c.archived);
    }

    #[test]
    fn invalid_email_is_none_and_time_falls_back() {
        let m = ContactMapping::default();
        let c = m.to_contact(obj(r#"{"id":"1","properties":{"email":"not-an-email"},"updatedAt":"2026-01-02T03:04:05Z","archived":true}"#), None);
        assert!(c.email.is_none());
        assert!(c.archived);
        assert_eq!(c.updated_at, parse_time("2026-01-02T03:04:05Z").unwrap());
        let c = m.to_contact(
            obj(r#"{"id":"1","properties":{"lastmodifieddate":"1767225600000"}}"#),
            None,
        );
        assert_eq!(c.updated_at.timestamp_millis(), 1_767_225_600_000);
    }

    #[test]
    fn multi_values_split_and_join() {
        assert_eq!(
            split_multi(" a;b ;;c").collect::<Vec<_>>(),
            vec!["a", "b", "c"]
        );
        assert_eq!(
            join_multi(["vip", " speaker ", "", "beta"]),
            "vip;speaker;beta"
        );
        assert!(TagMatch::Contains("b".into()).test(Some("a;b")));
        assert!(!TagMatch::Equals("x".into()).test(Some("  ")));
        assert!(TagMatch::HasValue.test(Some("y")));
    }

    #[test]
    fn merge_tombstones_point_to_survivor() {
        let m = ContactMapping::default();
        let t = m.merge_tombstones(&obj(
            r#"{"id":"10","properties":{"hs_merged_object_ids":"7;8;10"}}"#,
        ));
        assert_eq!(t.len(), 2);
        assert!(
            t.iter()
                .all(|c| c.archived && c.merged_into == Some(CrmRecordId::hubspot("10")))
        );
        assert!(
            m.properties_to_request()
                .contains(&MERGED_IDS_PROPERTY.to_owned())
        );
    }
}
