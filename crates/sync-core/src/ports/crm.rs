//! CRM ports: reading contacts ([`CrmSource`]) and writing them ([`CrmSink`]).

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::{CativaUserId, CrmContact, CrmKind, CrmRecordId, Cursor, Email, TenantId};
use crate::error::Error;
use crate::plan::IdempotencyKey;

/// An opaque continuation token a source hands back with a page.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PageToken(pub String);

/// One page of contacts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ContactPage {
    /// The contacts, archived and deleted ones included (with `archived = true`) when the
    /// source can report them.
    pub contacts: Vec<CrmContact>,
    /// The token for the next page; `None` on the last page.
    pub next: Option<PageToken>,
    /// Set by a delta source that cannot guarantee it saw every deletion since the cursor
    /// (Salesforce `earliestDateAvailable` after the checkpoint): schedule a full reconcile.
    pub full_reconcile_advised: bool,
}

impl ContactPage {
    /// A page with a continuation token.
    pub fn new(contacts: Vec<CrmContact>, next: Option<PageToken>) -> Self {
        Self {
            contacts,
            next,
            full_reconcile_advised: false,
        }
    }
}

/// What a source can tell about its connection to the CRM, for
/// `SyncEngine::check_connection` (crates/sync-engine/src/connection.rs).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ConnectionFacts {
    /// The CRM account (HubSpot portal id, Salesforce org id), when the source can tell.
    pub account_id: Option<String>,
    /// The scopes the credentials were granted, when the CRM says.
    pub scopes_granted: Option<Vec<String>>,
    /// The scopes the connector needs to sync.
    pub scopes_needed: Vec<String>,
    /// The properties or fields the connector reads that the CRM does not have; `None` when
    /// not checked.
    pub missing_fields: Option<Vec<String>>,
    /// What could not be checked, and why.
    pub unchecked: Vec<String>,
}

impl ConnectionFacts {
    /// Facts naming only the account.
    pub fn account(account_id: Option<String>) -> Self {
        Self {
            account_id,
            ..Self::default()
        }
    }
}

/// Reads contacts from a CRM, page by page.
///
/// Delta pages come in modification order (ties by record id) so the engine can checkpoint
/// between pages; a full scan may come in any order.
#[async_trait]
pub trait CrmSource: Send + Sync {
    /// Which CRM this is.
    fn crm(&self) -> CrmKind;

    /// Contacts modified at or after `since`, plus deletions the CRM reports. Pass the token
    /// of the previous page to continue.
    async fn changed_since(
        &self,
        tenant: &TenantId,
        since: &Cursor,
        page: Option<&PageToken>,
    ) -> Result<ContactPage, Error>;

    /// Every live contact, page by page (full reconcile).
    async fn scan(&self, tenant: &TenantId, page: Option<&PageToken>)
    -> Result<ContactPage, Error>;

    /// Specific contacts by id (missing ids are left out of the result).
    async fn get_by_ids(
        &self,
        tenant: &TenantId,
        ids: &[CrmRecordId],
    ) -> Result<Vec<CrmContact>, Error>;

    /// Contacts with this email (several when the CRM holds duplicates).
    async fn find_by_email(
        &self,
        tenant: &TenantId,
        email: &Email,
    ) -> Result<Vec<CrmContact>, Error>;

    /// API calls made so far, by endpoint (cumulative, for run reports: the engine reports
    /// the difference over a run). The default reports nothing.
    fn api_calls(&self) -> std::collections::BTreeMap<String, u64> {
        std::collections::BTreeMap::new()
    }

    /// The CRM account `tenant`'s credentials reach (HubSpot portal id, Salesforce org id).
    /// The default cannot tell: `Ok(None)`. An error means the CRM refused or could not be
    /// reached.
    async fn account_id(&self, tenant: &TenantId) -> Result<Option<String>, Error> {
        let _ = tenant;
        Ok(None)
    }

    /// Checks the connection: credentials, account, scopes and the fields the source reads,
    /// as far as the CRM tells. The default asks only [`account_id`](Self::account_id).
    async fn connection_facts(&self, tenant: &TenantId) -> Result<ConnectionFacts, Error> {
        let mut facts = ConnectionFacts::account(self.account_id(tenant).await?);
        facts
            .unchecked
            .push("scopes and fields: this source does not report them".to_owned());
        Ok(facts)
    }
}

/// A contact to find or create by email.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ContactDraft {
    /// The email to find or create by.
    pub email: Email,
    /// The community user, stored on the contact (`cativa_user_id`).
    pub cativa_user_id: Option<CativaUserId>,
    /// Properties to set.
    pub properties: BTreeMap<String, String>,
    /// The action's idempotency key.
    pub key: IdempotencyKey,
}

impl ContactDraft {
    /// Builds a draft.
    pub fn new(
        email: Email,
        cativa_user_id: Option<CativaUserId>,
        properties: BTreeMap<String, String>,
        key: IdempotencyKey,
    ) -> Self {
        Self {
            email,
            cativa_user_id,
            properties,
            key,
        }
    }
}

/// The result of a find-or-create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Provisioned {
    /// The contact's id.
    pub id: CrmRecordId,
    /// Whether it was created (false: an existing contact was found and linked).
    pub created: bool,
}

impl Provisioned {
    /// A result: the contact's id and whether it was created.
    pub fn new(id: CrmRecordId, created: bool) -> Self {
        Self { id, created }
    }
}

/// Property values to write on one record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PropertyUpdate {
    /// The record.
    pub id: CrmRecordId,
    /// Name -> value.
    pub properties: BTreeMap<String, String>,
    /// The action's idempotency key.
    pub key: IdempotencyKey,
}

impl PropertyUpdate {
    /// Builds an update.
    pub fn new(id: CrmRecordId, properties: BTreeMap<String, String>, key: IdempotencyKey) -> Self {
        Self {
            id,
            properties,
            key,
        }
    }
}

/// A community activity to log on a CRM record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Activity {
    /// The record.
    pub id: CrmRecordId,
    /// A short subject.
    pub subject: String,
    /// The body (plain text; connectors escape it for HTML where needed).
    pub body: String,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
    /// The action's idempotency key.
    pub key: IdempotencyKey,
}

impl Activity {
    /// Builds an activity.
    pub fn new(
        id: CrmRecordId,
        subject: impl Into<String>,
        body: impl Into<String>,
        occurred_at: DateTime<Utc>,
        key: IdempotencyKey,
    ) -> Self {
        Self {
            id,
            subject: subject.into(),
            body: body.into(),
            occurred_at,
            key,
        }
    }
}

/// The result of one item of a batch: the call as a whole succeeded, this item may not have.
pub type ItemResult<T> = Result<T, Error>;

/// Writes to a CRM. Every method takes a batch no larger than [`CrmSink::max_batch`] and
/// returns one result per input, in input order. An `Err` for the whole call means nothing
/// can be said about any item (retry the batch later, or stop the run if
/// [`Error::stops_run`]).
#[async_trait]
pub trait CrmSink: Send + Sync {
    /// Which CRM this is.
    fn crm(&self) -> CrmKind;

    /// The largest batch the CRM accepts (HubSpot 100, Salesforce 200).
    fn max_batch(&self) -> usize;

    /// Finds each contact by email or creates it: never a duplicate.
    async fn upsert_contacts(
        &self,
        tenant: &TenantId,
        drafts: &[ContactDraft],
    ) -> Result<Vec<ItemResult<Provisioned>>, Error>;

    /// Writes properties.
    async fn update_properties(
        &self,
        tenant: &TenantId,
        updates: &[PropertyUpdate],
    ) -> Result<Vec<ItemResult<()>>, Error>;

    /// Logs activities.
    async fn log_activities(
        &self,
        tenant: &TenantId,
        activities: &[Activity],
    ) -> Result<Vec<ItemResult<()>>, Error>;

    /// API calls made so far, by endpoint (cumulative, for run reports: the engine reports
    /// the difference over a run). The default reports nothing.
    fn api_calls(&self) -> std::collections::BTreeMap<String, u64> {
        std::collections::BTreeMap::new()
    }
}
