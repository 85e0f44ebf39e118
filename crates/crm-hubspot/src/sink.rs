//! [`HubSpotSink`]: writing contacts, properties and activity notes as a [`CrmSink`].
//!
//! - Find-or-create never makes a duplicate: with a unique member-id property configured
//!   (`cativa_member_id`), one batch upsert by it per 100 contacts; otherwise a batch
//!   create per 100 (no read first). A create that collides with an existing contact
//!   (409 `Existing ID: N`, or the "already has that value" 400) links to the existing id
//!   instead, and that contact gets the draft's other properties.
//! - Values are checked against the described schema first (unknown property, read-only,
//!   enumeration option, number, bool, date): an invalid item costs no call.
//! - A batch HubSpot rejects as a whole (400/409) is split in halves until the bad input
//!   stands alone; the others are written.

mod companies;
mod lists;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{SecondsFormat, Utc};
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use sync_core::ports::{
    Activity, ContactDraft, CrmSink, ItemResult, PropertyUpdate, Provisioned, ProvisioningFields,
};
use sync_core::{CrmKind, CrmRecordId, TenantId};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::api_error::Problem;
use crate::client::{BatchOutcome, HubSpotClient};
use crate::error::{Error, item_error};
use crate::model::{
    CreateInput, HubSpotObject, MAX_BATCH_INPUTS, NoteCreate, PropertyCreate, UpdateInput,
    escape_html,
};
use crate::schema::{Schema, ValueIssue};
use crate::webhook::EchoFilter;

/// Settings of a [`HubSpotSink`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct SinkConfig {
    /// A unique contact property holding the community member id (e.g.
    /// `cativa_member_id`, created with `hasUniqueValue`): contacts are then batch-upserted
    /// by it, one call per 100. Without it, find-or-create creates by email and links to the
    /// existing contact on a conflict.
    pub member_id_property: Option<String>,
    /// The property the Cativa user id is written to (default `cativa_user_id`; `None`
    /// writes nothing).
    pub user_id_property: Option<String>,
    /// Check values against the schema before sending (default true).
    pub validate: bool,
    /// Multiple-checkbox properties whose missing options are added before writing (off
    /// for every property by default: an unknown option is then an invalid item).
    pub add_missing_options: BTreeSet<String>,
    /// How long the described schema is cached, in seconds (default 600).
    pub schema_cache_secs: u64,
    /// Community profile field -> contact property written when a contact is provisioned
    /// for a new community user (default `firstName` -> `firstname`, `lastName` ->
    /// `lastname`, `phone` -> `phone`).
    pub profile_properties: BTreeMap<String, String>,
    /// The property the tenant's `CustomerId` is written to on provisioned contacts (e.g.
    /// `cativa_customer_id`; default `None`: not written). `ensure_sdk_properties` creates
    /// it.
    pub customer_id_property: Option<String>,
}

impl Default for SinkConfig {
    fn default() -> Self {
        Self {
            member_id_property: None,
            user_id_property: Some("cativa_user_id".into()),
            validate: true,
            add_missing_options: BTreeSet::new(),
            schema_cache_secs: 600,
            profile_properties: ProvisioningFields::hubspot().profile,
            customer_id_property: None,
        }
    }
}

impl SinkConfig {
    /// Upserts by this unique property (builder style).
    #[must_use]
    pub fn with_member_id_property(mut self, property: impl Into<String>) -> Self {
        self.member_id_property = Some(property.into());
        self
    }

    /// Adds missing options to this checkbox property before writing (builder style).
    #[must_use]
    pub fn adding_options_to(mut self, property: impl Into<String>) -> Self {
        self.add_missing_options.insert(property.into());
        self
    }

    /// Writes community profile field `community` to contact property `property` when a
    /// contact is provisioned (builder style).
    #[must_use]
    pub fn with_profile_property(
        mut self,
        community: impl Into<String>,
        property: impl Into<String>,
    ) -> Self {
        self.profile_properties
            .insert(community.into(), property.into());
        self
    }

    /// Writes the tenant's `CustomerId` to `property` on provisioned contacts (builder
    /// style).
    #[must_use]
    pub fn with_customer_id_property(mut self, property: impl Into<String>) -> Self {
        self.customer_id_property = Some(property.into());
        self
    }

    /// The provisioning field names of this configuration.
    pub fn provisioning_fields(&self) -> ProvisioningFields {
        let mut fields = ProvisioningFields::none();
        fields.profile = self.profile_properties.clone();
        fields.user_id = self.user_id_property.clone();
        match &self.customer_id_property {
            Some(p) => fields.with_customer_id(p.clone()),
            None => fields,
        }
    }

    /// Turns schema validation on or off (builder style).
    #[must_use]
    pub fn with_validation(mut self, validate: bool) -> Self {
        self.validate = validate;
        self
    }
}

/// Writes to HubSpot for the sync engine. One sink serves one HubSpot account.
#[derive(Debug)]
pub struct HubSpotSink {
    client: HubSpotClient,
    config: SinkConfig,
    schema: Mutex<Option<(Instant, Arc<Schema>)>>,
    echo: Option<Arc<EchoFilter>>,
    companies: companies::CompanyCache,
    lists: lists::ListCache,
}

/// A contact resolved by find-or-create.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Found {
    /// Written by this call (created, or updated in place by an upsert).
    Written { id: String, created: bool },
    /// An existing contact that still needs the draft's properties.
    Existing(String),
}

type Outcomes<R> = Vec<ItemResult<R>>;

/// Whether HubSpot refused the batch as a whole because of its content (so halves may pass).
fn rejects_content(e: &Error) -> bool {
    matches!(e, Error::Api(api) if matches!(api.status, 400 | 409 | 404 | 422))
}

/// Sends `items` with `call`; when the whole batch is rejected for its content, splits it
/// in halves until the bad inputs stand alone, each reported with the error.
fn isolate<'a, T, R, F, Fut>(
    items: &'a [T],
    call: &'a F,
) -> BoxFuture<'a, Result<Outcomes<R>, Error>>
where
    T: Sync,
    R: Send + 'a,
    F: Fn(&'a [T]) -> Fut + Sync,
    Fut: Future<Output = Result<Outcomes<R>, Error>> + Send + 'a,
{
    Box::pin(async move {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        match call(items).await {
            Ok(v) => Ok(v),
            Err(e) if rejects_content(&e) && items.len() > 1 => {
                let (a, b) = items.split_at(items.len() / 2);
                tracing::debug!(
                    size = items.len(),
                    "HubSpot rejected the batch; splitting it to isolate the bad input"
                );
                let mut left = isolate(a, call).await?;
                left.extend(isolate(b, call).await?);
                Ok(left)
            }
            Err(e) if rejects_content(&e) => Ok(vec![Err(e.into())]),
            Err(e) => Err(e),
        }
    })
}

fn trace(i: usize) -> String {
    format!("t{i}")
}

/// The id of the contact that already holds the value, when a write collided with one.
fn existing_holder(problem: &Problem) -> Option<&str> {
    match problem {
        Problem::DuplicateContact { existing_id }
        | Problem::ValueAlreadyHeld { existing_id, .. } => Some(existing_id),
        _ => None,
    }
}

fn missing_result(what: &str) -> sync_core::Error {
    sync_core::Error::from(sync_core::RemoteError::new(
        "hubspot",
        sync_core::RemoteErrorKind::Decode,
        format!("HubSpot returned no result and no error for this {what}; retry it"),
    ))
}

/// One write of the sink, after validation.
#[derive(Debug, Clone)]
struct Write {
    /// Positions of the inputs this write serves (several when inputs were merged).
    inputs: Vec<usize>,
    /// Record id, or the member id for upserts, or the email.
    key: String,
    properties: BTreeMap<String, String>,
}

/// Merges writes with the same key (HubSpot rejects duplicate ids in one batch); later
/// values win.
fn merge_by_key(writes: Vec<Write>) -> Vec<Write> {
    let mut pos: HashMap<String, usize> = HashMap::new();
    let mut out: Vec<Write> = Vec::with_capacity(writes.len());
    for w in writes {
        match pos.get(&w.key) {
            Some(&i) => {
                out[i].inputs.extend(w.inputs);
                out[i].properties.extend(w.properties);
            }
            None => {
                pos.insert(w.key.clone(), out.len());
                out.push(w);
            }
        }
    }
    out
}

impl HubSpotSink {
    /// A sink over `client`, counting its API calls apart from other users of the client
    /// (see [`HubSpotClient::with_own_call_counts`]).
    pub fn new(client: HubSpotClient, config: SinkConfig) -> Self {
        Self {
            client: client.with_own_call_counts(),
            config,
            schema: Mutex::new(None),
            echo: None,
            companies: companies::CompanyCache::default(),
            lists: lists::ListCache::default(),
        }
    }

    /// Records every successful property write in `filter`, so the webhook receiver can
    /// recognise their echoes.
    #[must_use]
    pub fn with_echo_filter(mut self, filter: Arc<EchoFilter>) -> Self {
        self.echo = Some(filter);
        self
    }

    /// The client.
    pub fn client(&self) -> &HubSpotClient {
        &self.client
    }

    /// The described contact schema (cached).
    pub async fn schema(&self) -> Result<Arc<Schema>, Error> {
        let mut slot = self.schema.lock().await;
        if let Some((at, s)) = slot.as_ref()
            && at.elapsed() < Duration::from_secs(self.config.schema_cache_secs)
        {
            return Ok(Arc::clone(s));
        }
        let ttl = Duration::from_secs(self.config.schema_cache_secs);
        // A listing the client made moments ago (e.g. ensuring properties at start-up)
        // describes the same account: no second listing.
        let listed = match self.client.recent_contact_properties(ttl) {
            Some(list) => list,
            None => self.client.list_contact_properties().await?,
        };
        let s = Arc::new(Schema::new(listed));
        *slot = Some((Instant::now(), Arc::clone(&s)));
        Ok(s)
    }

    /// Creates the properties the sink writes (`cativa_user_id`, the unique
    /// `cativa_member_id`, `cativa_badges` with `badges` as options, the `CustomerId`
    /// property when configured) where missing, in
    /// property group `group` (`contactinformation` exists in every account). Needs the
    /// `crm.schemas.contacts.write` scope. Returns the names created.
    pub async fn ensure_sdk_properties(
        &self,
        group: &str,
        badges: &[String],
    ) -> Result<Vec<String>, Error> {
        let mut wanted = PropertyCreate::sdk_properties(group, badges);
        if let Some(name) = &self.config.customer_id_property {
            wanted.push(PropertyCreate::cativa_customer_id(group, name));
        }
        let created = self.client.ensure_contact_properties(&wanted).await?;
        // The client's listing now includes what was created: rebuild from it.
        *self.schema.lock().await = None;
        Ok(created)
    }

    /// Forgets the cached schema (after creating properties outside the sink).
    pub async fn invalidate_schema(&self) {
        self.client.forget_contact_properties();
        *self.schema.lock().await = None;
    }

    /// Validates and normalizes every input's properties. Returns, per input, the
    /// properties to send or the reason it is invalid. Adds missing checkbox options first
    /// for the configured properties.
    async fn prepare(
        &self,
        inputs: Vec<BTreeMap<String, String>>,
    ) -> Result<Vec<ItemResult<BTreeMap<String, String>>>, Error> {
        if !self.config.validate {
            return Ok(inputs.into_iter().map(Ok).collect());
        }
        let mut schema = self.schema().await?;
        // Options to add, per property.
        let mut to_add: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for props in &inputs {
            for (k, v) in props {
                if let Err(ValueIssue::NotAnOption { missing }) =
                    schema.check(k, &schema.normalize(k, v))
                    && self.config.add_missing_options.contains(k)
                {
                    let entry = to_add.entry(k.clone()).or_default();
                    for m in missing {
                        if !entry.contains(&m) {
                            entry.push(m);
                        }
                    }
                }
            }
        }
        if !to_add.is_empty() {
            let mut updated = (*schema).clone();
            for (name, values) in &to_add {
                if let Some(p) = schema.get(name) {
                    let p = self.client.add_contact_property_options(p, values).await?;
                    updated.update(p);
                }
            }
            let updated = Arc::new(updated);
            *self.schema.lock().await = Some((Instant::now(), Arc::clone(&updated)));
            schema = updated;
        }
        Ok(inputs
            .into_iter()
            .map(|props| {
                let mut out = BTreeMap::new();
                for (k, v) in props {
                    let v = schema.normalize(&k, &v);
                    if let Err(issue) = schema.check(&k, &v) {
                        return Err(Error::InvalidValue {
                            property: k,
                            reason: issue.to_string(),
                        }
                        .into());
                    }
                    out.insert(k, v);
                }
                Ok(out)
            })
            .collect())
    }

    fn record_echo(&self, id: &str, props: &BTreeMap<String, String>) {
        if let (Some(f), Ok(n)) = (&self.echo, id.parse::<u64>()) {
            f.record_properties(n, props, Utc::now().timestamp_millis());
        }
    }

    fn draft_properties(&self, d: &ContactDraft) -> BTreeMap<String, String> {
        let mut p = d.properties.clone();
        p.insert("email".into(), d.email.as_str().to_owned());
        if let Some(uid) = &d.cativa_user_id {
            if let Some(prop) = &self.config.user_id_property {
                p.insert(prop.clone(), uid.as_str().to_owned());
            }
            if let Some(prop) = &self.config.member_id_property {
                p.insert(prop.clone(), uid.as_str().to_owned());
            }
        }
        p
    }

    // ---- batch calls, each returning one outcome per write -------------------------------

    async fn upsert_chunk(&self, writes: &[Write]) -> Result<Outcomes<Found>, Error> {
        let prop = self.config.member_id_property.clone().unwrap_or_default();
        let inputs = writes
            .iter()
            .enumerate()
            .map(|(i, w)| UpdateInput {
                id: w.key.clone(),
                id_property: Some(prop.clone()),
                properties: w.properties.clone(),
                object_write_trace_id: Some(trace(i)),
            })
            .collect();
        let outcome = self.client.batch_upsert_contacts(inputs).await?;
        let keys: Vec<String> = (0..writes.len()).map(trace).collect();
        let per = outcome.per_input(&keys);
        Ok(writes
            .iter()
            .zip(per)
            .map(|(w, r)| match r {
                Some(Ok(o)) => Ok(found(&o)),
                Some(Err(e)) => match existing_holder(&e.problem) {
                    Some(id) => Ok(Found::Existing(id.to_owned())),
                    None => Err(item_error(&e)),
                },
                None => by_property(&outcome, &prop, &w.key)
                    .map(found)
                    .ok_or_else(|| missing_result("upsert")),
            })
            .collect())
    }

    async fn create_chunk(&self, writes: &[Write]) -> Result<Outcomes<Found>, Error> {
        let inputs = writes
            .iter()
            .enumerate()
            .map(|(i, w)| CreateInput {
                properties: w.properties.clone(),
                associations: Vec::new(),
                object_write_trace_id: Some(trace(i)),
            })
            .collect();
        let outcome = match self.client.batch_create_contacts(inputs).await {
            Ok(o) => o,
            // A lone input that collides with an existing contact: link to it.
            Err(Error::Api(api))
                if writes.len() == 1 && existing_holder(&api.problem).is_some() =>
            {
                let id = existing_holder(&api.problem).unwrap_or_default().to_owned();
                return Ok(vec![Ok(Found::Existing(id))]);
            }
            Err(e) => return Err(e),
        };
        let keys: Vec<String> = (0..writes.len()).map(trace).collect();
        let per = outcome.per_input(&keys);
        Ok(writes
            .iter()
            .zip(per)
            .map(|(w, r)| match r {
                Some(Ok(o)) => Ok(Found::Written {
                    id: o.id,
                    created: true,
                }),
                Some(Err(e)) => match existing_holder(&e.problem) {
                    Some(id) => Ok(Found::Existing(id.to_owned())),
                    None => Err(item_error(&e)),
                },
                None => by_property(&outcome, "email", &w.key)
                    .map(|o| Found::Written {
                        id: o.id.clone(),
                        created: true,
                    })
                    .ok_or_else(|| missing_result("create")),
            })
            .collect())
    }

    async fn update_chunk(&self, writes: &[Write]) -> Result<Outcomes<()>, Error> {
        let inputs = writes
            .iter()
            .enumerate()
            .map(|(i, w)| UpdateInput {
                id: w.key.clone(),
                id_property: None,
                properties: w.properties.clone(),
                object_write_trace_id: Some(trace(i)),
            })
            .collect();
        let outcome = self.client.batch_update_contacts(inputs).await?;
        let keys: Vec<String> = (0..writes.len()).map(trace).collect();
        let by_trace = outcome.per_input(&keys);
        let ids: Vec<String> = writes.iter().map(|w| w.key.clone()).collect();
        let by_id = outcome.per_input(&ids);
        Ok(by_trace
            .into_iter()
            .zip(by_id)
            .map(|(t, i)| match t.or(i) {
                Some(Ok(_)) => Ok(()),
                Some(Err(e)) => Err(item_error(&e)),
                // HubSpot answered 200 without listing it: the update went through.
                None if outcome.errors.is_empty() => Ok(()),
                None => Err(missing_result("update")),
            })
            .collect())
    }

    /// Writes `writes` (each a record id and properties) in batches of 100, isolating bad
    /// inputs; returns one outcome per write.
    async fn update_all(&self, writes: &[Write]) -> Result<Outcomes<()>, Error> {
        let mut out = Vec::with_capacity(writes.len());
        let call = |c: &[Write]| self.update_chunk_owned(c.to_vec());
        for chunk in writes.chunks(MAX_BATCH_INPUTS) {
            out.extend(isolate(chunk, &call).await?);
        }
        for (w, r) in writes.iter().zip(&out) {
            if r.is_ok() {
                self.record_echo(&w.key, &w.properties);
            }
        }
        Ok(out)
    }

    async fn update_chunk_owned(&self, writes: Vec<Write>) -> Result<Outcomes<()>, Error> {
        self.update_chunk(&writes).await
    }

    async fn upsert_chunk_owned(&self, writes: Vec<Write>) -> Result<Outcomes<Found>, Error> {
        self.upsert_chunk(&writes).await
    }

    async fn create_chunk_owned(&self, writes: Vec<Write>) -> Result<Outcomes<Found>, Error> {
        self.create_chunk(&writes).await
    }

    async fn notes_chunk(&self, notes: Vec<NoteCreate>) -> Result<Outcomes<()>, Error> {
        let keys: Vec<String> = notes
            .iter()
            .filter_map(|n| n.object_write_trace_id.clone())
            .collect();
        let outcome = self.client.batch_create_notes(notes).await?;
        let per = outcome.per_input(&keys);
        let all_ok = outcome.errors.is_empty();
        Ok(per
            .into_iter()
            .map(|r| match r {
                Some(Ok(_)) => Ok(()),
                Some(Err(e)) => Err(item_error(&e)),
                None if all_ok => Ok(()),
                None => Err(missing_result("note")),
            })
            .collect())
    }

    /// Links found-by-collision contacts and writes the draft's properties on them.
    async fn settle(
        &self,
        writes: &[Write],
        found: Outcomes<Found>,
        results: &mut [Option<ItemResult<Provisioned>>],
    ) -> Result<(), Error> {
        let mut follow_up: Vec<Write> = Vec::new();
        for (w, f) in writes.iter().zip(found) {
            match f {
                Ok(Found::Written { id, created }) => {
                    self.record_echo(&id, &w.properties);
                    for &i in &w.inputs {
                        results[i] = Some(Ok(provisioned(&id, created)));
                    }
                }
                Ok(Found::Existing(id)) => follow_up.push(Write {
                    inputs: w.inputs.clone(),
                    key: id,
                    properties: w.properties.clone(),
                }),
                Err(e) => {
                    for &i in &w.inputs {
                        results[i] = Some(Err(clone_error(&e)));
                    }
                }
            }
        }
        // Existing contacts get the draft's properties (email excluded: it already matches).
        let mut updates: Vec<Write> = follow_up
            .iter()
            .map(|w| Write {
                inputs: w.inputs.clone(),
                key: w.key.clone(),
                properties: w
                    .properties
                    .iter()
                    .filter(|(k, _)| k.as_str() != "email")
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            })
            .collect();
        updates.retain(|w| !w.properties.is_empty());
        let updated = merge_by_key(updates);
        let outcomes = self.update_all(&updated).await?;
        let mut failed: HashMap<usize, sync_core::Error> = HashMap::new();
        for (w, r) in updated.iter().zip(outcomes) {
            if let Err(e) = r {
                for &i in &w.inputs {
                    failed.insert(i, clone_error(&e));
                }
            }
        }
        for w in &follow_up {
            for &i in &w.inputs {
                results[i] = Some(match failed.remove(&i) {
                    Some(e) => Err(e),
                    None => Ok(provisioned(&w.key, false)),
                });
            }
        }
        Ok(())
    }
}

/// An upsert result: its properties are written whether it was created or not.
fn found(o: &HubSpotObject) -> Found {
    Found::Written {
        id: o.id.clone(),
        created: o.new == Some(true),
    }
}

fn by_property<'a>(
    outcome: &'a BatchOutcome,
    property: &str,
    value: &str,
) -> Option<&'a HubSpotObject> {
    outcome.results.iter().find(|o| {
        o.property(property)
            .is_some_and(|v| v.eq_ignore_ascii_case(value))
    })
}

fn provisioned(id: &str, created: bool) -> Provisioned {
    Provisioned::new(CrmRecordId::hubspot(id), created)
}

/// sync-core's error is not `Clone`; per-item errors are always `Remote` (or `Delivery`).
fn clone_error(e: &sync_core::Error) -> sync_core::Error {
    match e {
        sync_core::Error::Remote(r) => sync_core::Error::Remote(r.clone()),
        other => sync_core::Error::from(sync_core::RemoteError::new(
            "hubspot",
            sync_core::RemoteErrorKind::Invalid,
            other.to_string(),
        )),
    }
}

fn hubspot_id(id: &CrmRecordId) -> Result<&str, sync_core::Error> {
    if id.crm == CrmKind::Hubspot {
        Ok(&id.id)
    } else {
        Err(Error::Config(format!("record {id} is not a HubSpot record")).into())
    }
}

#[async_trait]
impl CrmSink for HubSpotSink {
    fn crm(&self) -> CrmKind {
        CrmKind::Hubspot
    }

    fn api_calls(&self) -> BTreeMap<String, u64> {
        self.client.api_calls()
    }

    fn max_batch(&self) -> usize {
        MAX_BATCH_INPUTS
    }

    fn provisioning_fields(&self) -> ProvisioningFields {
        self.config.provisioning_fields()
    }

    async fn upsert_contacts(
        &self,
        _tenant: &TenantId,
        drafts: &[ContactDraft],
    ) -> Result<Vec<ItemResult<Provisioned>>, sync_core::Error> {
        let prepared = self
            .prepare(drafts.iter().map(|d| self.draft_properties(d)).collect())
            .await?;
        let mut results: Vec<Option<ItemResult<Provisioned>>> =
            (0..drafts.len()).map(|_| None).collect();
        let mut by_member = Vec::new();
        let mut by_email = Vec::new();
        for (i, (d, p)) in drafts.iter().zip(prepared).enumerate() {
            match p {
                Err(e) => results[i] = Some(Err(e)),
                Ok(properties) => match (&self.config.member_id_property, &d.cativa_user_id) {
                    (Some(_), Some(uid)) => by_member.push(Write {
                        inputs: vec![i],
                        key: uid.as_str().to_owned(),
                        properties,
                    }),
                    _ => by_email.push(Write {
                        inputs: vec![i],
                        key: d.email.as_str().to_owned(),
                        properties,
                    }),
                },
            }
        }

        // Upsert by the unique member id: one call per 100.
        let by_member = merge_by_key(by_member);
        let upsert = |c: &[Write]| self.upsert_chunk_owned(c.to_vec());
        for chunk in by_member.chunks(MAX_BATCH_INPUTS) {
            let found = isolate(chunk, &upsert).await?;
            self.settle(chunk, found, &mut results).await?;
        }

        // By email: create, and link to the contact HubSpot names when the email is taken
        // (409 "Existing ID"). No read first: the caller has usually just looked the email
        // up (the engine searches before provisioning), and a conflict answers the same
        // question in the same call.
        let by_email = merge_by_key(by_email);
        let create = |c: &[Write]| self.create_chunk_owned(c.to_vec());
        let mut found = Vec::with_capacity(by_email.len());
        for chunk in by_email.chunks(MAX_BATCH_INPUTS) {
            found.extend(isolate(chunk, &create).await?);
        }
        // Settled together, so the existing contacts' updates fill whole batches.
        self.settle(&by_email, found, &mut results).await?;

        Ok(results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(missing_result("contact"))))
            .collect())
    }

    async fn update_properties(
        &self,
        _tenant: &TenantId,
        updates: &[PropertyUpdate],
    ) -> Result<Vec<ItemResult<()>>, sync_core::Error> {
        let prepared = self
            .prepare(updates.iter().map(|u| u.properties.clone()).collect())
            .await?;
        let mut results: Vec<Option<ItemResult<()>>> = (0..updates.len()).map(|_| None).collect();
        let mut writes = Vec::new();
        for (i, (u, p)) in updates.iter().zip(prepared).enumerate() {
            match (p, hubspot_id(&u.id)) {
                (Err(e), _) | (_, Err(e)) => results[i] = Some(Err(e)),
                (Ok(properties), Ok(id)) => writes.push(Write {
                    inputs: vec![i],
                    key: id.to_owned(),
                    properties,
                }),
            }
        }
        let writes = merge_by_key(writes);
        let outcomes = self.update_all(&writes).await?;
        for (w, r) in writes.iter().zip(outcomes) {
            for &i in &w.inputs {
                results[i] = Some(match &r {
                    Ok(()) => Ok(()),
                    Err(e) => Err(clone_error(e)),
                });
            }
        }
        Ok(results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(missing_result("update"))))
            .collect())
    }

    async fn associate_companies(
        &self,
        tenant: &TenantId,
        links: &[sync_core::ports::CompanyLink],
    ) -> Result<Vec<ItemResult<()>>, sync_core::Error> {
        self.associate_companies_impl(tenant, links).await
    }

    async fn add_to_lists(
        &self,
        tenant: &TenantId,
        memberships: &[sync_core::ports::ListMembership],
    ) -> Result<Vec<ItemResult<()>>, sync_core::Error> {
        self.list_memberships_impl(tenant, memberships, true).await
    }

    async fn remove_from_lists(
        &self,
        tenant: &TenantId,
        memberships: &[sync_core::ports::ListMembership],
    ) -> Result<Vec<ItemResult<()>>, sync_core::Error> {
        self.list_memberships_impl(tenant, memberships, false).await
    }

    async fn log_activities(
        &self,
        _tenant: &TenantId,
        activities: &[Activity],
    ) -> Result<Vec<ItemResult<()>>, sync_core::Error> {
        let mut results: Vec<Option<ItemResult<()>>> =
            (0..activities.len()).map(|_| None).collect();
        let mut notes: Vec<(usize, NoteCreate)> = Vec::new();
        for (i, a) in activities.iter().enumerate() {
            match hubspot_id(&a.id) {
                Err(e) => results[i] = Some(Err(e)),
                Ok(id) => {
                    let body = format!(
                        "<p><strong>{}</strong></p><p>{}</p>",
                        escape_html(&a.subject),
                        escape_html(&a.body).replace('\n', "<br>")
                    );
                    let ts = a.occurred_at.to_rfc3339_opts(SecondsFormat::Millis, true);
                    notes.push((
                        i,
                        NoteCreate::on_contact(id, ts, body).with_trace_id(trace(i)),
                    ));
                }
            }
        }
        let call = |c: &[(usize, NoteCreate)]| {
            self.notes_chunk(c.iter().map(|(_, n)| n.clone()).collect())
        };
        for chunk in notes.chunks(MAX_BATCH_INPUTS) {
            let out = isolate(chunk, &call).await?;
            for ((i, _), r) in chunk.iter().zip(out) {
                results[*i] = Some(r);
            }
        }
        Ok(results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(missing_result("note"))))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_writes_with_the_same_key() {
        let w = |i: usize, k: &str, p: &str| Write {
            inputs: vec![i],
            key: k.into(),
            properties: BTreeMap::from([(p.to_owned(), i.to_string())]),
        };
        let m = merge_by_key(vec![
            w(0, "a", "x"),
            w(1, "b", "x"),
            w(2, "a", "y"),
            w(3, "a", "x"),
        ]);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].inputs, vec![0, 2, 3]);
        assert_eq!(m[0].properties["x"], "3");
        assert_eq!(m[0].properties["y"], "2");
    }

    #[test]
    fn collision_problems_name_the_holder() {
        assert_eq!(
            existing_holder(&Problem::DuplicateContact {
                existing_id: "5".into()
            }),
            Some("5")
        );
        assert_eq!(
            existing_holder(&Problem::ValueAlreadyHeld {
                record_id: None,
                existing_id: "6".into(),
                property: None
            }),
            Some("6")
        );
        assert_eq!(existing_holder(&Problem::Validation), None);
    }
}
