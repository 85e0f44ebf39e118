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

    /// One contact, by CRM id or by email: the single-record read of a "sync now". `None`
    /// when there is no such contact. By email, with duplicates, the most recently updated
    /// live one (ties: the smaller id). The default reads through
    /// [`CrmSource::get_by_ids`] and [`CrmSource::find_by_email`]; connectors override it
    /// with the CRM's own single-record read.
    async fn get_contact(
        &self,
        tenant: &TenantId,
        contact: &ContactRef,
    ) -> Result<Option<CrmContact>, Error> {
        let found = match contact {
            ContactRef::CrmId(id) => self.get_by_ids(tenant, std::slice::from_ref(id)).await?,
            ContactRef::Email(email) => self.find_by_email(tenant, email).await?,
        };
        Ok(freshest(found))
    }

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

/// The contact [`CrmSource::get_contact`] returns among several: the most recently updated
/// live one (ties: the smaller id), else the most recently updated archived one.
pub fn freshest(contacts: Vec<CrmContact>) -> Option<CrmContact> {
    contacts.into_iter().max_by(|a, b| {
        (!a.archived, a.updated_at)
            .cmp(&(!b.archived, b.updated_at))
            .then_with(|| b.id.id.cmp(&a.id.id))
    })
}

/// Which contact a single-record sync is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ContactRef {
    /// The contact with this email.
    Email(Email),
    /// The CRM record with this id.
    CrmId(CrmRecordId),
}

impl std::fmt::Display for ContactRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Email(e) => write!(f, "{e}"),
            Self::CrmId(id) => write!(f, "{id}"),
        }
    }
}

/// The community profile field that carries the tenant's `CustomerId` on a new user (set by
/// the Cativa client from the `user_created` payload).
pub const CUSTOMER_ID_FIELD: &str = "customerId";

/// The CRM property names a sink writes when it provisions a contact for a new community
/// user. Each sink builds them from its own configuration
/// ([`CrmSink::provisioning_fields`]), so the engine never assumes one CRM's names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct ProvisioningFields {
    /// Community profile field -> CRM property, written on the new contact (`firstName` ->
    /// `firstname` on HubSpot, `FirstName` on Salesforce). The email is the sink's own
    /// business ([`ContactDraft::email`]).
    pub profile: BTreeMap<String, String>,
    /// The CRM property holding the Cativa user id (HubSpot `cativa_user_id`, a Salesforce
    /// External ID field), stamped on an existing contact when its user signs up. `None`:
    /// the CRM does not store it.
    pub user_id: Option<String>,
}

impl Default for ProvisioningFields {
    fn default() -> Self {
        Self::hubspot()
    }
}

impl ProvisioningFields {
    /// No property at all: only the email (and the user id where the sink stores it).
    pub fn none() -> Self {
        Self {
            profile: BTreeMap::new(),
            user_id: None,
        }
    }

    /// HubSpot's contact properties: `firstname`, `lastname`, `phone`, `cativa_user_id`.
    pub fn hubspot() -> Self {
        Self::none()
            .with_profile_field("firstName", "firstname")
            .with_profile_field("lastName", "lastname")
            .with_profile_field("phone", "phone")
            .with_user_id("cativa_user_id")
    }

    /// Salesforce's Contact and Lead fields: `FirstName`, `LastName`, `Phone`. The user id
    /// goes to the sink's External ID field, when it has one ([`Self::with_user_id`]).
    pub fn salesforce() -> Self {
        Self::none()
            .with_profile_field("firstName", "FirstName")
            .with_profile_field("lastName", "LastName")
            .with_profile_field("phone", "Phone")
    }

    /// The defaults of a CRM: [`Self::hubspot`], [`Self::salesforce`], or [`Self::none`]
    /// for any other.
    pub fn for_crm(crm: &CrmKind) -> Self {
        match crm {
            CrmKind::Hubspot => Self::hubspot(),
            CrmKind::Salesforce => Self::salesforce(),
            CrmKind::Other(_) => Self::none(),
        }
    }

    /// Writes community profile field `community` to CRM property `crm` (builder style).
    #[must_use]
    pub fn with_profile_field(
        mut self,
        community: impl Into<String>,
        crm: impl Into<String>,
    ) -> Self {
        self.profile.insert(community.into(), crm.into());
        self
    }

    /// Stores the Cativa user id in `property` (builder style).
    #[must_use]
    pub fn with_user_id(mut self, property: impl Into<String>) -> Self {
        self.user_id = Some(property.into());
        self
    }

    /// Writes the tenant's `CustomerId` ([`CUSTOMER_ID_FIELD`]) to `property` on provisioned
    /// contacts (builder style), for cross-tenant segmentation in the CRM.
    #[must_use]
    pub fn with_customer_id(self, property: impl Into<String>) -> Self {
        self.with_profile_field(CUSTOMER_ID_FIELD, property)
    }

    /// The CRM property the `CustomerId` goes to, if any.
    pub fn customer_id(&self) -> Option<&str> {
        self.profile.get(CUSTOMER_ID_FIELD).map(String::as_str)
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

    /// The CRM property names this sink writes when it provisions a contact (from its
    /// configuration). The default: [`ProvisioningFields::for_crm`] of [`CrmSink::crm`].
    fn provisioning_fields(&self) -> ProvisioningFields {
        ProvisioningFields::for_crm(&self.crm())
    }

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

    /// Finds or creates each link's company by domain (each domain once per call, never a
    /// duplicate company), associates the contact with it and records the company in the
    /// provenance property. Takes any number of links: the sink batches its calls, so the
    /// engine hands over a whole claim at once. The default: [`Error::NotSupported`].
    async fn associate_companies(
        &self,
        tenant: &TenantId,
        links: &[super::CompanyLink],
    ) -> Result<Vec<ItemResult<()>>, Error> {
        let _ = (tenant, links);
        Err(Error::NotSupported(
            "companies (CrmSink::associate_companies)".to_owned(),
        ))
    }

    /// Adds each contact to its group's list (HubSpot MANUAL list, Salesforce campaign),
    /// creating a missing list when the membership's configuration allows, and records the
    /// group in the contact's provenance property. Takes any number of memberships: the
    /// sink makes one call per list. The default: [`Error::NotSupported`].
    async fn add_to_lists(
        &self,
        tenant: &TenantId,
        memberships: &[super::ListMembership],
    ) -> Result<Vec<ItemResult<()>>, Error> {
        let _ = (tenant, memberships);
        Err(Error::NotSupported(
            "groups as lists (CrmSink::add_to_lists)".to_owned(),
        ))
    }

    /// Removes each contact from its group's list and the group from its provenance
    /// property. Only called for memberships the provenance shows the sync added. The
    /// default: [`Error::NotSupported`].
    async fn remove_from_lists(
        &self,
        tenant: &TenantId,
        memberships: &[super::ListMembership],
    ) -> Result<Vec<ItemResult<()>>, Error> {
        let _ = (tenant, memberships);
        Err(Error::NotSupported(
            "groups as lists (CrmSink::remove_from_lists)".to_owned(),
        ))
    }
}
