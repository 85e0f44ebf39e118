//! [`SalesforceSink`]: the [`CrmSink`] port over Contact (or Lead).
//!
//! **Find or create by email, never a duplicate.** For a batch of drafts the sink first
//! queries the object for the batch's emails (`Email IN (...)`, most recently modified
//! first, so with duplicates the freshest record wins). Found records are updated by id
//! (their External ID set to the Cativa user id when configured). New records are upserted
//! on the External ID field when the schema has one and the draft names its user (a
//! retried batch then updates instead of duplicating), otherwise created. Drafts sharing an
//! email share one record. A create refused with `DUPLICATE_VALUE ... with id: X` links to
//! `X`: the unique value already lives there.
//!
//! Every write goes through sObject Collections, 200 records per call, results mapped back
//! to the drafts in order. Activities become completed `Task` records on the contact
//! (`WhoId`), upserted on the Task key field when configured so a retry creates one Task.

mod campaigns;
mod companies;

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde_json::{Value, json};
use sync_core::ports::{
    Activity, ContactDraft, CrmSink, ItemResult, PropertyUpdate, Provisioned, ProvisioningFields,
};
use sync_core::{CrmKind, CrmRecordId, Error, RemoteError, RemoteErrorKind, TenantId};

use crate::client::{MAX_COLLECTION_RECORDS, SalesforceClient};
use crate::contact::{ContactSchema, MODSTAMP_FIELD, is_relationship};
use crate::error::{Error as SalesforceError, SYSTEM, record_error};
use crate::models::{Record, SaveResult};
use crate::soql::{Condition, Order, Soql};

/// Longest Task `Subject` Salesforce accepts.
const SUBJECT_MAX: usize = 255;
/// Longest Task `Description`.
const DESCRIPTION_MAX: usize = 32_000;

/// Writes contacts, properties and activities to one Salesforce org.
#[derive(Debug, Clone)]
pub struct SalesforceSink {
    client: SalesforceClient,
    schema: ContactSchema,
    all_or_none: bool,
    account_key: Option<String>,
    accounts: companies::AccountCache,
    campaigns: campaigns::CampaignCache,
}

impl SalesforceSink {
    /// A sink over `schema.object`, with `allOrNone: false` (each record stands alone).
    pub fn new(client: SalesforceClient, schema: ContactSchema) -> Result<Self, SalesforceError> {
        schema.validate()?;
        Ok(Self {
            client: client.with_own_call_counts(),
            schema,
            all_or_none: false,
            account_key: None,
            accounts: companies::AccountCache::default(),
            campaigns: campaigns::CampaignCache::default(),
        })
    }

    /// Finds and creates Accounts by this field holding the company's domain (a custom
    /// text field such as `Cativa_Domain__c`; `Website` works when it holds bare domains).
    /// Needed when the configuration turns companies on.
    pub fn with_account_key_field(mut self, field: impl Into<String>) -> Self {
        self.account_key = Some(field.into());
        self
    }

    /// Sets `allOrNone` on every collections call: one bad record fails its whole call.
    pub fn all_or_none(mut self, all_or_none: bool) -> Self {
        self.all_or_none = all_or_none;
        self
    }

    /// The client.
    pub fn client(&self) -> &SalesforceClient {
        &self.client
    }

    fn base_record(object: &str) -> Record {
        let mut r = Record::new();
        r.insert("attributes".into(), json!({ "type": object }));
        r
    }

    fn with_properties(mut r: Record, props: &BTreeMap<String, String>) -> Record {
        for (k, v) in props {
            r.insert(k.clone(), Value::String(v.clone()));
        }
        r
    }

    /// Existing records by lowercased email (the most recently modified one per email).
    async fn existing_by_email(
        &self,
        emails: &[&str],
    ) -> Result<BTreeMap<String, String>, SalesforceError> {
        let mut found = BTreeMap::new();
        // The list's budget: the URI limit less the rest of the query, encoded.
        let fixed = encoded_len(&format!(
            "SELECT Id, {email}, {MODSTAMP_FIELD} FROM {object} WHERE {email} IN () ORDER BY {MODSTAMP_FIELD} DESC",
            email = self.schema.email_field,
            object = self.schema.object,
        ));
        let budget = MAX_URI_BYTES.saturating_sub(URI_RESERVE + fixed);
        for chunk in lookup_chunks(emails, budget) {
            let soql = Soql::select(["Id", self.schema.email_field.as_str(), MODSTAMP_FIELD])
                .from(self.schema.object.clone())
                .filter(Condition::in_list(
                    self.schema.email_field.clone(),
                    chunk.iter().copied(),
                ))
                .order_by(MODSTAMP_FIELD, Order::Desc)
                .build()?;
            let records: Vec<Record> = self.client.query_to_end(&soql, false).await?;
            for r in records {
                let (Some(id), Some(email)) = (
                    r.get("Id").and_then(Value::as_str),
                    r.get(&self.schema.email_field).and_then(Value::as_str),
                ) else {
                    continue;
                };
                found
                    .entry(email.trim().to_lowercase())
                    .or_insert_with(|| id.to_owned());
            }
        }
        Ok(found)
    }

    async fn upsert(
        &self,
        drafts: &[ContactDraft],
    ) -> Result<Vec<ItemResult<Provisioned>>, SalesforceError> {
        let (groups, mut refused) = group_by_email(drafts);
        let emails: Vec<&str> = groups.keys().copied().collect();
        let existing = self.existing_by_email(&emails).await?;
        let routed = self.route(drafts, &groups, &existing);
        let mut by_email: BTreeMap<&str, ItemResult<Provisioned>> = BTreeMap::new();
        self.send_updates(routed.updates, &mut by_email).await?;
        self.send_upserts(routed.upserts, &mut by_email).await?;
        self.send_creates(routed.creates, &mut by_email).await?;
        Ok(drafts
            .iter()
            .enumerate()
            .map(|(i, d)| {
                if let Some(e) = refused.remove(&i) {
                    return Err(e);
                }
                match by_email.get(d.email.as_str()) {
                    Some(Ok(p)) => Ok(p.clone()),
                    Some(Err(e)) => Err(clone_error(e)),
                    None => Err(missing_result()),
                }
            })
            .collect())
    }

    async fn update(
        &self,
        updates: &[PropertyUpdate],
    ) -> Result<Vec<ItemResult<()>>, SalesforceError> {
        let mut out: Vec<Option<ItemResult<()>>> = Vec::with_capacity(updates.len());
        let mut records = Vec::new();
        let mut slots = Vec::new();
        for (i, u) in updates.iter().enumerate() {
            if u.id.crm != CrmKind::Salesforce {
                out.push(Some(Err(foreign_id(&u.id))));
                continue;
            }
            if u.properties.is_empty() {
                out.push(Some(Ok(())));
                continue;
            }
            if let Some(field) = u.properties.keys().find(|k| is_relationship(k)) {
                out.push(Some(Err(relationship_write(field))));
                continue;
            }
            out.push(None);
            let mut r =
                Self::with_properties(Self::base_record(&self.schema.object), &u.properties);
            r.insert("id".into(), Value::String(u.id.id.clone()));
            records.push(r);
            slots.push(i);
        }
        if !records.is_empty() {
            let results = self
                .client
                .update_records(&records, self.all_or_none)
                .await?;
            for ((i, rec), res) in slots.into_iter().zip(&records).zip(results) {
                out[i] = Some(if res.success {
                    self.client
                        .echo_log()
                        .wrote(&self.schema, &updates[i].id.id, rec, false);
                    Ok(())
                } else {
                    Err(record_error(&res.errors))
                });
            }
        }
        Ok(out
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(missing_result())))
            .collect())
    }

    async fn log(&self, activities: &[Activity]) -> Result<Vec<ItemResult<()>>, SalesforceError> {
        let mut out: Vec<Option<ItemResult<()>>> = Vec::with_capacity(activities.len());
        let mut records = Vec::new();
        let mut slots = Vec::new();
        for (i, a) in activities.iter().enumerate() {
            if a.id.crm != CrmKind::Salesforce {
                out.push(Some(Err(foreign_id(&a.id))));
                continue;
            }
            out.push(None);
            let mut r = Self::base_record("Task");
            r.insert("WhoId".into(), Value::String(a.id.id.clone()));
            r.insert(
                "Subject".into(),
                Value::String(truncate(&a.subject, SUBJECT_MAX)),
            );
            r.insert(
                "Description".into(),
                Value::String(truncate(&a.body, DESCRIPTION_MAX)),
            );
            r.insert(
                "ActivityDate".into(),
                Value::String(a.occurred_at.format("%Y-%m-%d").to_string()),
            );
            r.insert("Status".into(), Value::String("Completed".into()));
            if let Some(key_field) = &self.schema.task_key_field {
                r.insert(key_field.clone(), Value::String(a.key.as_str().to_owned()));
            }
            records.push(r);
            slots.push(i);
        }
        if !records.is_empty() {
            let results = match &self.schema.task_key_field {
                Some(field) => {
                    self.client
                        .upsert_records("Task", field, &records, self.all_or_none)
                        .await?
                }
                None => {
                    self.client
                        .create_records(&records, self.all_or_none)
                        .await?
                }
            };
            for (i, res) in slots.into_iter().zip(results) {
                out[i] = Some(if res.success {
                    Ok(())
                } else {
                    Err(record_error(&res.errors))
                });
            }
        }
        Ok(out
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(missing_result())))
            .collect())
    }
}

/// The longest request URI Salesforce serves, in encoded bytes (414 above it).
const MAX_URI_BYTES: usize = 16_384;
/// Kept free for the path (`/services/data/vNN.N/query?q=`, an instance path prefix) and
/// the parts of the SOQL around the list.
const URI_RESERVE: usize = 512;

/// Bytes `text` takes in the URL once form-encoded, as the query string carries it.
fn encoded_len(text: &str) -> usize {
    url::form_urlencoded::byte_serialize(text.as_bytes())
        .map(str::len)
        .sum()
}

/// What one email adds to the lookup query's URI: the escaped literal in quotes and the
/// `, ` separator, all encoded.
fn lookup_cost(email: &str) -> usize {
    encoded_len(&format!("'{}', ", crate::soql::escape_string(email)))
}

/// Splits emails into lookups of at most 200 addresses whose encoded URI stays within
/// `budget` bytes.
fn lookup_chunks<'a>(emails: &'a [&'a str], budget: usize) -> Vec<&'a [&'a str]> {
    let mut chunks = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, e) in emails.iter().enumerate() {
        let cost = lookup_cost(e);
        if i > start && (i - start == MAX_COLLECTION_RECORDS || bytes + cost > budget) {
            chunks.push(&emails[start..i]);
            start = i;
            bytes = 0;
        }
        bytes += cost;
    }
    if start < emails.len() {
        chunks.push(&emails[start..]);
    }
    chunks
}

fn provisioned(
    res: SaveResult,
    known_id: Option<String>,
    created: bool,
) -> ItemResult<Provisioned> {
    if res.success {
        let id = res.id.or(known_id).ok_or_else(|| {
            Error::from(RemoteError::new(
                SYSTEM,
                RemoteErrorKind::Decode,
                "a successful save result has no id",
            ))
        })?;
        return Ok(Provisioned::new(
            CrmRecordId::salesforce(id),
            res.created.unwrap_or(created),
        ));
    }
    // The unique value already lives on another record: that record is the contact.
    if let Some(dup) = res
        .errors
        .iter()
        .find(|e| e.code == "DUPLICATE_VALUE")
        .and_then(|e| e.duplicate_id())
    {
        return Ok(Provisioned::new(CrmRecordId::salesforce(dup), false));
    }
    Err(record_error(&res.errors))
}

/// How a contact record reaches Salesforce.
enum Route {
    /// It exists (found by email): update it by id.
    Update,
    /// New, with a Cativa user id and an external id field: upsert on that field.
    Upsert,
    /// New otherwise: create it.
    Create,
}

/// The records of one provisioning call, by route, each with the email it is for.
#[derive(Default)]
struct Routed<'a> {
    updates: Vec<(Record, &'a str)>,
    upserts: Vec<(Record, &'a str)>,
    creates: Vec<(Record, &'a str)>,
}

/// One group of draft indexes per distinct email (drafts with the same email share one
/// record); a draft writing a related record's field is refused on its own.
fn group_by_email(drafts: &[ContactDraft]) -> (BTreeMap<&str, Vec<usize>>, BTreeMap<usize, Error>) {
    let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    let mut refused: BTreeMap<usize, Error> = BTreeMap::new();
    for (i, d) in drafts.iter().enumerate() {
        if let Some(field) = d.properties.keys().find(|k| is_relationship(k)) {
            refused.insert(i, relationship_write(field));
            continue;
        }
        groups.entry(d.email.as_str()).or_default().push(i);
    }
    (groups, refused)
}

impl SalesforceSink {
    /// The record for each email group and the route it takes.
    fn route<'a>(
        &self,
        drafts: &[ContactDraft],
        groups: &BTreeMap<&'a str, Vec<usize>>,
        existing: &BTreeMap<String, String>,
    ) -> Routed<'a> {
        let mut routed = Routed::default();
        for (&email, idx) in groups {
            let (r, route) = self.record_for(drafts, idx, existing.get(email));
            match route {
                Route::Update => routed.updates.push((r, email)),
                Route::Upsert => routed.upserts.push((r, email)),
                Route::Create => routed.creates.push((r, email)),
            }
        }
        routed
    }

    /// One record merging the properties of the drafts at `idx` (all with one email):
    /// the existing record's id, or the email and create defaults for a new one.
    fn record_for(
        &self,
        drafts: &[ContactDraft],
        idx: &[usize],
        existing: Option<&String>,
    ) -> (Record, Route) {
        let ext = self.schema.external_id_field.as_deref();
        let user = idx.iter().find_map(|&i| drafts[i].cativa_user_id.as_ref());
        let mut props = BTreeMap::new();
        for &i in idx {
            props.extend(
                drafts[i]
                    .properties
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone())),
            );
        }
        let mut r = Self::with_properties(Self::base_record(self.schema.object.as_str()), &props);
        let route = match existing {
            Some(id) => {
                r.insert("id".into(), Value::String(id.clone()));
                Route::Update
            }
            None => {
                r.insert(
                    self.schema.email_field.clone(),
                    Value::String(drafts[idx[0]].email.as_str().to_owned()),
                );
                for (k, v) in &self.schema.create_defaults {
                    if r.get(k)
                        .and_then(Value::as_str)
                        .is_none_or(|s| s.trim().is_empty())
                    {
                        r.insert(k.clone(), Value::String(v.clone()));
                    }
                }
                if ext.is_some() && user.is_some() {
                    Route::Upsert
                } else {
                    Route::Create
                }
            }
        };
        if let (Some(field), Some(user)) = (ext, user) {
            r.insert(field.to_owned(), Value::String(user.as_str().to_owned()));
        }
        (r, route)
    }

    /// Updates existing records by id.
    async fn send_updates<'a>(
        &self,
        updates: Vec<(Record, &'a str)>,
        by_email: &mut BTreeMap<&'a str, ItemResult<Provisioned>>,
    ) -> Result<(), SalesforceError> {
        if updates.is_empty() {
            return Ok(());
        }
        let (records, keys): (Vec<Record>, Vec<&str>) = updates.into_iter().unzip();
        let results = self
            .client
            .update_records(&records, self.all_or_none)
            .await?;
        for ((key, rec), res) in keys.into_iter().zip(&records).zip(results) {
            // Collections update records carry their id as "id" (the documented body).
            let id = rec
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            if res.success {
                self.client.echo_log().wrote(&self.schema, &id, rec, false);
            }
            by_email.insert(key, provisioned(res, Some(id), false));
        }
        Ok(())
    }

    /// Upserts new records on the external id field (a retry finds the record it created).
    async fn send_upserts<'a>(
        &self,
        upserts: Vec<(Record, &'a str)>,
        by_email: &mut BTreeMap<&'a str, ItemResult<Provisioned>>,
    ) -> Result<(), SalesforceError> {
        let Some(field) = self.schema.external_id_field.as_deref() else {
            return Ok(());
        };
        if upserts.is_empty() {
            return Ok(());
        }
        let (records, keys): (Vec<Record>, Vec<&str>) = upserts.into_iter().unzip();
        let results = self
            .client
            .upsert_records(
                self.schema.object.as_str(),
                field,
                &records,
                self.all_or_none,
            )
            .await?;
        for ((key, rec), res) in keys.into_iter().zip(&records).zip(results) {
            let created = res.created.unwrap_or(false);
            if let (true, Some(id)) = (res.success, res.id.as_deref()) {
                self.client.echo_log().wrote(&self.schema, id, rec, created);
            }
            by_email.insert(key, provisioned(res, None, created));
        }
        Ok(())
    }

    /// Creates new records.
    async fn send_creates<'a>(
        &self,
        creates: Vec<(Record, &'a str)>,
        by_email: &mut BTreeMap<&'a str, ItemResult<Provisioned>>,
    ) -> Result<(), SalesforceError> {
        if creates.is_empty() {
            return Ok(());
        }
        let (records, keys): (Vec<Record>, Vec<&str>) = creates.into_iter().unzip();
        let results = self
            .client
            .create_records(&records, self.all_or_none)
            .await?;
        for ((key, rec), res) in keys.into_iter().zip(&records).zip(results) {
            if let (true, Some(id)) = (res.success, res.id.as_deref()) {
                self.client.echo_log().wrote(&self.schema, id, rec, true);
            }
            by_email.insert(key, provisioned(res, None, true));
        }
        Ok(())
    }
}

/// The error for a write to a relationship path (`Account.Name`).
fn relationship_write(field: &str) -> Error {
    RemoteError::new(
        SYSTEM,
        RemoteErrorKind::Invalid,
        format!(
            "{field} is a field of a related record and read-only through the contact: map it for reading only, or write a field of the contact itself"
        ),
    )
    .into()
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    s.chars().take(max).collect()
}

fn foreign_id(id: &CrmRecordId) -> Error {
    RemoteError::new(
        SYSTEM,
        RemoteErrorKind::Invalid,
        format!("{id} is not a Salesforce record id"),
    )
    .into()
}

/// A copy of a per-item error, for the other items it also fails.
fn clone_port_error(e: &Error) -> Error {
    match e {
        Error::Remote(r) => Error::Remote(r.clone()),
        other => RemoteError::new(SYSTEM, RemoteErrorKind::Invalid, other.to_string()).into(),
    }
}

fn missing_result() -> Error {
    RemoteError::new(
        SYSTEM,
        RemoteErrorKind::Decode,
        "Salesforce returned no result for this record",
    )
    .into()
}

fn clone_error(e: &Error) -> Error {
    match e {
        Error::Remote(r) => Error::Remote(r.clone()),
        other => RemoteError::new(SYSTEM, RemoteErrorKind::Invalid, other.to_string()).into(),
    }
}

#[async_trait]
impl CrmSink for SalesforceSink {
    fn crm(&self) -> CrmKind {
        CrmKind::Salesforce
    }

    fn api_calls(&self) -> BTreeMap<String, u64> {
        self.client.api_calls()
    }

    fn max_batch(&self) -> usize {
        MAX_COLLECTION_RECORDS
    }

    fn provisioning_fields(&self) -> ProvisioningFields {
        self.schema.provisioning_fields()
    }

    async fn upsert_contacts(
        &self,
        _tenant: &TenantId,
        drafts: &[ContactDraft],
    ) -> Result<Vec<ItemResult<Provisioned>>, Error> {
        self.upsert(drafts)
            .await
            .map_err(|e| self.client.port_error(e))
    }

    async fn update_properties(
        &self,
        _tenant: &TenantId,
        updates: &[PropertyUpdate],
    ) -> Result<Vec<ItemResult<()>>, Error> {
        self.update(updates)
            .await
            .map_err(|e| self.client.port_error(e))
    }

    async fn associate_companies(
        &self,
        _tenant: &TenantId,
        links: &[sync_core::ports::CompanyLink],
    ) -> Result<Vec<ItemResult<()>>, Error> {
        self.associate(links)
            .await
            .map_err(|e| self.client.port_error(e))
    }

    async fn add_to_lists(
        &self,
        _tenant: &TenantId,
        memberships: &[sync_core::ports::ListMembership],
    ) -> Result<Vec<ItemResult<()>>, Error> {
        self.campaign_memberships(memberships, true)
            .await
            .map_err(|e| self.client.port_error(e))
    }

    async fn remove_from_lists(
        &self,
        _tenant: &TenantId,
        memberships: &[sync_core::ports::ListMembership],
    ) -> Result<Vec<ItemResult<()>>, Error> {
        self.campaign_memberships(memberships, false)
            .await
            .map_err(|e| self.client.port_error(e))
    }

    async fn log_activities(
        &self,
        _tenant: &TenantId,
        activities: &[Activity],
    ) -> Result<Vec<ItemResult<()>>, Error> {
        self.log(activities)
            .await
            .map_err(|e| self.client.port_error(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_split_by_count_and_encoded_length() {
        let short: Vec<String> = (0..450).map(|i| format!("m{i}@x.io")).collect();
        let short: Vec<&str> = short.iter().map(String::as_str).collect();
        let sizes: Vec<usize> = lookup_chunks(&short, 16_000)
            .iter()
            .map(|c| c.len())
            .collect();
        assert_eq!(sizes, vec![200, 200, 50]);
        // 40 characters that each take 3 encoded bytes: the character count (about
        // 10,000 for 200 of them) is far below what they weigh in the URI (about 26,000).
        let heavy: Vec<String> = (0..200)
            .map(|i| format!("{}{i}@example.com", "+".repeat(40)))
            .collect();
        let heavy: Vec<&str> = heavy.iter().map(String::as_str).collect();
        let chunks = lookup_chunks(&heavy, 15_000);
        assert!(chunks.len() > 1);
        for c in &chunks {
            let list = c
                .iter()
                .map(|e| format!("'{}'", crate::soql::escape_string(e)))
                .collect::<Vec<_>>()
                .join(", ");
            assert!(encoded_len(&list) <= 15_000, "{}", encoded_len(&list));
        }
        assert_eq!(chunks.iter().map(|c| c.len()).sum::<usize>(), 200);
        assert!(lookup_chunks(&[], 15_000).is_empty());
    }
}
