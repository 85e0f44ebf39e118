//! [`SalesforceSource`]: the [`CrmSource`] port over Contact (or Lead).
//!
//! **Delta.** One `queryAll` ordered by `SystemModstamp, Id` from the cursor:
//! `SystemModstamp > X OR (SystemModstamp = X AND Id > 'last')` when the cursor names the
//! last id processed at a whole second, else `SystemModstamp >= X` (SOQL literals have no
//! sub-second part, so the boundary second is re-read; re-read records are deduplicated by
//! id and re-planning them is a no-op). `queryAll` returns live rows and deleted rows
//! (`IsDeleted = true`, with `MasterRecordId` for merges) in the same order, so deletions
//! and merges arrive as archived contacts, `merged_into` set for merges. Pages follow
//! `nextRecordsUrl` (the page token) until `done`.
//!
//! **Missed deletions.** On the first page the source asks `sobjects/{Object}/deleted` for
//! `earliestDateAvailable`: when it is after the cursor, or the cursor is older than the 15
//! days Salesforce keeps, deleted rows may have been purged before this run saw them and the
//! page says [`ContactPage::full_reconcile_advised`].
//!
//! **Echoes.** A delta skips the records whose last change is the sink's own write: see
//! `echo` (their `LastModifiedById` is the integration user and every field read holds
//! what that write left). Off when the schema has predicate tags, whose truth depends on
//! fields the source does not read. [`SalesforceSource::echoes_skipped`] counts them.
//!
//! **Scan.** A `query` of live rows (the schema's filter applied), paged the same way.
//!
//! One source reads one org: build one per tenant; the `tenant` arguments are not sent.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use chrono::{DateTime, Duration, DurationRound, Utc};
use sync_core::ports::{ContactPage, CrmSource, PageToken};
use sync_core::{CrmContact, CrmKind, CrmRecordId, Cursor, Email, Error, TenantId};

use crate::client::{DELETED_WINDOW_DAYS, SalesforceClient};
use crate::contact::{ContactSchema, MODSTAMP_FIELD, decode_record};
use crate::echo::{same_user, snapshot};
use crate::error::Error as SalesforceError;
use crate::models::{FieldValue, RawQueryPage};
use crate::soql::{Condition, Op, Order, Soql, Value};

/// Ids per `Id IN (...)` query, to keep the query URL short.
const IDS_PER_QUERY: usize = 200;

/// The field naming the user of a record's last change.
const LAST_MODIFIED_BY: &str = "LastModifiedById";

/// A record of which only the id is read.
#[derive(serde::Deserialize)]
struct IdOnly {
    #[serde(rename = "Id")]
    id: String,
}

/// Reads contacts from one Salesforce org.
#[derive(Debug, Clone)]
pub struct SalesforceSource {
    client: SalesforceClient,
    schema: ContactSchema,
    echoes: Arc<AtomicU64>,
}

impl SalesforceSource {
    /// A source over `schema.object`. Fails if the schema names an invalid field.
    pub fn new(client: SalesforceClient, schema: ContactSchema) -> Result<Self, SalesforceError> {
        schema.validate()?;
        Ok(Self {
            client: client.with_own_call_counts(),
            schema,
            echoes: Arc::default(),
        })
    }

    /// How many delta records were skipped as echoes of the sink's own writes.
    pub fn echoes_skipped(&self) -> u64 {
        self.echoes.load(Ordering::Relaxed)
    }

    /// The client.
    pub fn client(&self) -> &SalesforceClient {
        &self.client
    }

    /// The schema.
    pub fn schema(&self) -> &ContactSchema {
        &self.schema
    }

    fn base_query(&self) -> Soql {
        let q = Soql::select(self.schema.select_fields()).from(self.schema.object.clone());
        match &self.schema.filter {
            Some(f) => q.filter(Condition::Raw(f.clone())),
            None => q,
        }
    }

    /// The delta query for `since` (see the module docs for the cursor rule).
    pub fn delta_soql(&self, since: &Cursor) -> Result<String, SalesforceError> {
        let at = since.modified_at;
        let whole_second = at.timestamp_subsec_nanos() == 0;
        let cursor = match (&since.last_id, whole_second) {
            (Some(last), true) => Condition::Or(vec![
                Condition::cmp(MODSTAMP_FIELD, Op::Gt, at),
                Condition::And(vec![
                    Condition::cmp(MODSTAMP_FIELD, Op::Eq, at),
                    Condition::cmp("Id", Op::Gt, Value::String(last.clone())),
                ]),
            ]),
            _ => {
                let floor = at.duration_trunc(Duration::seconds(1)).unwrap_or(at);
                Condition::cmp(MODSTAMP_FIELD, Op::Ge, floor)
            }
        };
        let mut fields = self.schema.select_fields();
        fields.push(LAST_MODIFIED_BY.into());
        let mut q = Soql::select(fields).from(self.schema.object.clone());
        if let Some(f) = &self.schema.filter {
            q = q.filter(Condition::Raw(f.clone()));
        }
        Ok(q.filter(cursor)
            .order_by(MODSTAMP_FIELD, Order::Asc)
            .order_by("Id", Order::Asc)
            .build()?)
    }

    /// The full-scan query.
    pub fn scan_soql(&self) -> Result<String, SalesforceError> {
        Ok(self.base_query().build()?)
    }

    /// Decodes a page's records as they are parsed (no vector of records is built),
    /// remembering what was delivered; a delta (`skip_echoes`) leaves out the echoes of the
    /// sink's own writes. Returns the contacts and the next page's token.
    fn decode_records(
        &self,
        raw: &RawQueryPage,
        skip_echoes: bool,
    ) -> Result<(Vec<CrmContact>, Option<PageToken>), SalesforceError> {
        let log = self.client.echo_log();
        let user = if skip_echoes && self.schema.predicates().next().is_none() {
            self.client.integration_user_id()
        } else {
            None
        };
        let mut out = Vec::new();
        let info = raw.for_each_record(|r| {
            let contact = decode_record(&self.schema, r)?;
            let snap = snapshot(&self.schema, r);
            let by_us = user.as_deref().is_some_and(|u| {
                r.get(LAST_MODIFIED_BY)
                    .and_then(FieldValue::as_str)
                    .is_some_and(|by| same_user(by, u))
            });
            if by_us && !contact.archived && log.is_echo(&contact.id.id, &snap) {
                tracing::debug!(id = %contact.id.id, "skipping the echo of our own write");
                self.echoes.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
            log.seen(&contact.id.id, snap);
            out.push(contact);
            Ok(())
        })?;
        let next = match (info.done, info.next_records_url) {
            (true, _) => None,
            (false, Some(url)) => Some(PageToken(url)),
            (false, None) => {
                return Err(SalesforceError::Decode {
                    what: "query page",
                    message: "done is false but nextRecordsUrl is missing".into(),
                });
            }
        };
        Ok((out, next))
    }

    async fn decode_page(
        &self,
        raw: RawQueryPage,
        skip_echoes: bool,
    ) -> Result<ContactPage, SalesforceError> {
        let decoded = self.decode_records(&raw, skip_echoes);
        // The body is no longer needed while the predicate queries run.
        drop(raw);
        let (mut contacts, next) = decoded?;
        self.add_predicate_tags(&mut contacts).await?;
        Ok(ContactPage::new(contacts, next))
    }

    /// Every contact a query returns, page by page: each page is decoded as it is parsed
    /// and dropped before the next is read.
    async fn read_all(&self, soql: &str) -> Result<Vec<CrmContact>, SalesforceError> {
        let mut raw = self.client.query_raw(soql).await?;
        let mut out = Vec::new();
        loop {
            let (contacts, next) = self.decode_records(&raw, false)?;
            out.extend(contacts);
            let Some(next) = next else {
                return Ok(out);
            };
            drop(raw);
            raw = self.client.query_more_raw(&next.0).await?;
        }
    }

    /// Tags from predicates: one `Id IN (...) AND (predicate)` query per 200 live contacts.
    async fn add_predicate_tags(&self, contacts: &mut [CrmContact]) -> Result<(), SalesforceError> {
        let predicates: Vec<(String, String)> = self
            .schema
            .predicates()
            .map(|(t, p)| (t.to_owned(), p.to_owned()))
            .collect();
        if predicates.is_empty() {
            return Ok(());
        }
        let live: Vec<String> = contacts
            .iter()
            .filter(|c| !c.archived)
            .map(|c| c.id.id.clone())
            .collect();
        let index: HashMap<String, usize> = contacts
            .iter()
            .enumerate()
            .map(|(i, c)| (c.id.id.clone(), i))
            .collect();
        for (tag, predicate) in &predicates {
            for ids in live.chunks(IDS_PER_QUERY) {
                let soql = Soql::select(["Id"])
                    .from(self.schema.object.clone())
                    .filter(Condition::in_list("Id", ids.iter().map(String::as_str)))
                    .filter(Condition::Raw(predicate.clone()))
                    .build()?;
                let matched: Vec<IdOnly> = self.client.query_to_end(&soql, false).await?;
                for m in matched {
                    if let Some(&i) = index.get(m.id.as_str()) {
                        contacts[i].tags.insert(tag.clone());
                    }
                }
            }
        }
        Ok(())
    }

    /// Whether deletions since `since` may have been purged before this run could read them.
    pub async fn deletions_may_be_missed(
        &self,
        since: DateTime<Utc>,
    ) -> Result<bool, SalesforceError> {
        if since <= DateTime::<Utc>::UNIX_EPOCH {
            // A first run reads everything; there is nothing to have missed.
            return Ok(false);
        }
        let now = self.client.now();
        if since >= now {
            return Ok(false);
        }
        if since < now - Duration::days(DELETED_WINDOW_DAYS) + Duration::minutes(1) {
            return Ok(true);
        }
        // Salesforce truncates the window to whole minutes: keep it a few minutes wide.
        let start = since.min(now - Duration::minutes(5));
        let window = self
            .client
            .get_deleted(&self.schema.object, start, now)
            .await?;
        Ok(window.earliest_date_available > since)
    }

    async fn changed(
        &self,
        since: &Cursor,
        page: Option<&PageToken>,
    ) -> Result<ContactPage, SalesforceError> {
        match page {
            Some(token) => {
                let p = self.client.query_more_raw(&token.0).await?;
                self.decode_page(p, true).await
            }
            None => {
                let advised = self.deletions_may_be_missed(since.modified_at).await?;
                let p = self.client.query_all_raw(&self.delta_soql(since)?).await?;
                let mut out = self.decode_page(p, true).await?;
                out.full_reconcile_advised = advised;
                Ok(out)
            }
        }
    }

    async fn scan_page(&self, page: Option<&PageToken>) -> Result<ContactPage, SalesforceError> {
        let p = match page {
            Some(token) => self.client.query_more_raw(&token.0).await?,
            None => self.client.query_raw(&self.scan_soql()?).await?,
        };
        self.decode_page(p, false).await
    }

    async fn by_ids(&self, ids: &[CrmRecordId]) -> Result<Vec<CrmContact>, SalesforceError> {
        let ids: Vec<&str> = ids
            .iter()
            .filter(|i| i.crm == CrmKind::Salesforce)
            .map(|i| i.id.as_str())
            .collect();
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(IDS_PER_QUERY) {
            let soql = self
                .base_query()
                .filter(Condition::in_list("Id", chunk.iter().copied()))
                .build()?;
            let mut contacts = self.read_all(&soql).await?;
            self.add_predicate_tags(&mut contacts).await?;
            out.extend(contacts);
        }
        Ok(out)
    }

    async fn by_email(&self, email: &Email) -> Result<Vec<CrmContact>, SalesforceError> {
        let mut cond = Condition::eq(self.schema.email_field.clone(), email.as_str());
        if let Some(alt) = &self.schema.alternate_email_field {
            cond = Condition::Or(vec![cond, Condition::eq(alt.clone(), email.as_str())]);
        }
        let soql = self
            .base_query()
            .filter(cond)
            .order_by(MODSTAMP_FIELD, Order::Desc)
            .build()?;
        let mut contacts = self.read_all(&soql).await?;
        self.add_predicate_tags(&mut contacts).await?;
        Ok(contacts)
    }
}

#[async_trait]
impl CrmSource for SalesforceSource {
    fn crm(&self) -> CrmKind {
        CrmKind::Salesforce
    }

    fn api_calls(&self) -> BTreeMap<String, u64> {
        self.client.api_calls()
    }

    async fn account_id(&self, _tenant: &TenantId) -> Result<Option<String>, sync_core::Error> {
        // The org id comes with the first token.
        self.client
            .instance_url()
            .await
            .map_err(|e| self.client.port_error(e))?;
        Ok(self.client.org_id())
    }

    async fn connection_facts(
        &self,
        _tenant: &TenantId,
    ) -> Result<sync_core::ports::ConnectionFacts, sync_core::Error> {
        crate::connection::facts(&self.client, &self.schema)
            .await
            .map_err(|e| self.client.port_error(e))
    }

    async fn changed_since(
        &self,
        _tenant: &TenantId,
        since: &Cursor,
        page: Option<&PageToken>,
    ) -> Result<ContactPage, Error> {
        self.changed(since, page)
            .await
            .map_err(|e| self.client.port_error(e))
    }

    async fn scan(
        &self,
        _tenant: &TenantId,
        page: Option<&PageToken>,
    ) -> Result<ContactPage, Error> {
        self.scan_page(page)
            .await
            .map_err(|e| self.client.port_error(e))
    }

    async fn get_by_ids(
        &self,
        _tenant: &TenantId,
        ids: &[CrmRecordId],
    ) -> Result<Vec<CrmContact>, Error> {
        self.by_ids(ids)
            .await
            .map_err(|e| self.client.port_error(e))
    }

    async fn find_by_email(
        &self,
        _tenant: &TenantId,
        email: &Email,
    ) -> Result<Vec<CrmContact>, Error> {
        self.by_email(email)
            .await
            .map_err(|e| self.client.port_error(e))
    }
}
