//! Many tenants: the [`TenantConnections`] port that resolves each tenant's CRM source, sinks
//! and inviter ([`TenantParts`]), and finds the tenant a webhook belongs to (HubSpot
//! `portalId`, Salesforce org id, Cativa `CustomerId`).
//!
//! The engine resolves a tenant's parts at the start of each call, so one engine serves every
//! tenant, each with its own credentials. Two implementations live here: [`StaticConnections`]
//! (the same parts for every tenant: what `SyncEngineBuilder::source` and friends build) and
//! [`MemoryConnections`] (a map per tenant plus the account and customer indexes). A
//! credential-backed one that builds clients from stored tokens lives in `sync-service`
//! (crates/sync-service/src/tenants.rs).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;

use super::community::{BadgeSink, CommunitySink, Inviter};
use super::crm::{CrmSink, CrmSource};
use super::lists::CommunityGroups;
use crate::domain::{CrmKind, TenantId};
use crate::error::Error;

/// One tenant's parts: where its contacts are read and its changes written. A part left
/// `None` makes the work that needs it fail with "not configured", never fall back to
/// another tenant's.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct TenantParts {
    /// The CRM to read.
    pub source: Option<Arc<dyn CrmSource>>,
    /// The CRM to write (provisioning, properties, activities).
    pub crm_sink: Option<Arc<dyn CrmSink>>,
    /// Where badge changes go.
    pub badge_sink: Option<Arc<dyn BadgeSink>>,
    /// Who sends invites.
    pub inviter: Option<Arc<dyn Inviter>>,
    /// Where community field updates go.
    pub community_sink: Option<Arc<dyn CommunitySink>>,
    /// Who is in each community group (for the full reconcile's list removals; without it
    /// a reconcile adds and removes no list memberships).
    pub community_groups: Option<Arc<dyn CommunityGroups>>,
}

impl fmt::Debug for TenantParts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenantParts")
            .field("source", &self.source.as_ref().map(|s| s.crm()))
            .field("crm_sink", &self.crm_sink.as_ref().map(|s| s.crm()))
            .field("badge_sink", &self.badge_sink.is_some())
            .field("inviter", &self.inviter.is_some())
            .field("community_sink", &self.community_sink.is_some())
            .field("community_groups", &self.community_groups.is_some())
            .finish()
    }
}

impl TenantParts {
    /// No parts yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the CRM source.
    #[must_use]
    pub fn with_source(mut self, source: Arc<dyn CrmSource>) -> Self {
        self.source = Some(source);
        self
    }

    /// Sets the CRM sink.
    #[must_use]
    pub fn with_crm_sink(mut self, sink: Arc<dyn CrmSink>) -> Self {
        self.crm_sink = Some(sink);
        self
    }

    /// Sets the badge sink.
    #[must_use]
    pub fn with_badge_sink(mut self, sink: Arc<dyn BadgeSink>) -> Self {
        self.badge_sink = Some(sink);
        self
    }

    /// Sets the inviter.
    #[must_use]
    pub fn with_inviter(mut self, inviter: Arc<dyn Inviter>) -> Self {
        self.inviter = Some(inviter);
        self
    }

    /// Sets the community sink.
    #[must_use]
    pub fn with_community_sink(mut self, sink: Arc<dyn CommunitySink>) -> Self {
        self.community_sink = Some(sink);
        self
    }

    /// Sets the source of community group members.
    #[must_use]
    pub fn with_community_groups(mut self, groups: Arc<dyn CommunityGroups>) -> Self {
        self.community_groups = Some(groups);
        self
    }
}

/// Resolves each tenant's parts and finds the tenant an inbound event belongs to.
///
/// A lookup that finds nothing answers `Ok(None)` (the caller refuses the delivery); `Err` is
/// for a lookup that could not be made (store down, credentials unreadable).
#[async_trait]
pub trait TenantConnections: Send + Sync {
    /// `tenant`'s parts. An unknown tenant is [`Error::UnknownTenant`].
    async fn parts(&self, tenant: &TenantId) -> Result<TenantParts, Error>;

    /// The tenant connected to the CRM account `account_id` (HubSpot portal id, Salesforce
    /// org id) of `crm`.
    async fn tenant_for_account(
        &self,
        crm: &CrmKind,
        account_id: &str,
    ) -> Result<Option<TenantId>, Error>;

    /// The tenant whose Cativa community is `customer_id` (the webhook's `CustomerId`).
    async fn tenant_for_customer(&self, customer_id: &str) -> Result<Option<TenantId>, Error>;

    /// Forgets what is cached or indexed for `tenant` (the disconnect hook: after it, routing
    /// no longer finds the tenant and its parts are built again on next use). Whether
    /// anything was known. The default forgets nothing.
    async fn forget(&self, tenant: &TenantId) -> Result<bool, Error> {
        let _ = tenant;
        Ok(false)
    }

    /// The tenants these connections route, sorted: a service's background work (drainer,
    /// pulls, retention, health) and status routes serve each of them. The default lists
    /// none (a deployment that names its one tenant itself).
    fn tenants(&self) -> Vec<TenantId> {
        Vec::new()
    }
}

/// The same parts for every tenant: a single-account deployment (what
/// `SyncEngineBuilder::source` and the other part setters build). It routes nothing: the
/// single-tenant service names its one tenant itself.
#[derive(Debug, Clone, Default)]
pub struct StaticConnections {
    parts: TenantParts,
}

impl StaticConnections {
    /// Serves `parts` to every tenant.
    pub fn new(parts: TenantParts) -> Self {
        Self { parts }
    }

    /// The parts served.
    pub fn served(&self) -> &TenantParts {
        &self.parts
    }

    /// The parts served, to change them.
    pub fn served_mut(&mut self) -> &mut TenantParts {
        &mut self.parts
    }
}

#[async_trait]
impl TenantConnections for StaticConnections {
    async fn parts(&self, _tenant: &TenantId) -> Result<TenantParts, Error> {
        Ok(self.parts.clone())
    }

    async fn tenant_for_account(
        &self,
        _crm: &CrmKind,
        _account_id: &str,
    ) -> Result<Option<TenantId>, Error> {
        Ok(None)
    }

    async fn tenant_for_customer(&self, _customer_id: &str) -> Result<Option<TenantId>, Error> {
        Ok(None)
    }
}

/// Which tenant a CRM account or a Cativa `CustomerId` belongs to: the routing index of a
/// [`TenantConnections`] implementation, as plain data (keep it behind your own lock).
#[derive(Debug, Clone, Default)]
pub struct TenantRoutes {
    accounts: HashMap<(CrmKind, String), TenantId>,
    customers: HashMap<String, TenantId>,
}

impl TenantRoutes {
    /// No routes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Routes the CRM account `account_id` of `crm` to `tenant` (replacing an earlier tenant
    /// of that account: one account feeds one tenant).
    pub fn link_account(&mut self, tenant: TenantId, crm: CrmKind, account_id: impl Into<String>) {
        self.accounts.insert((crm, account_id.into()), tenant);
    }

    /// Routes the Cativa `CustomerId` `customer_id` to `tenant`.
    pub fn link_customer(&mut self, tenant: TenantId, customer_id: impl Into<String>) {
        self.customers.insert(customer_id.into(), tenant);
    }

    /// The tenant of the CRM account, if routed.
    pub fn account(&self, crm: &CrmKind, account_id: &str) -> Option<TenantId> {
        self.accounts
            .get(&(crm.clone(), account_id.to_owned()))
            .cloned()
    }

    /// The tenant of the Cativa `CustomerId`, if routed.
    pub fn customer(&self, customer_id: &str) -> Option<TenantId> {
        self.customers.get(customer_id).cloned()
    }

    /// Removes every route to `tenant`; whether there was any.
    pub fn forget(&mut self, tenant: &TenantId) -> bool {
        let before = self.accounts.len() + self.customers.len();
        self.accounts.retain(|_, t| t != tenant);
        self.customers.retain(|_, t| t != tenant);
        self.accounts.len() + self.customers.len() < before
    }

    /// The tenants some route leads to (each once per route, unsorted).
    pub fn tenants(&self) -> impl Iterator<Item = &TenantId> {
        self.accounts.values().chain(self.customers.values())
    }
}

#[derive(Default)]
struct Registry {
    parts: HashMap<TenantId, TenantParts>,
    routes: TenantRoutes,
}

/// Tenants registered in memory: their parts, the CRM account each is connected to and its
/// Cativa `CustomerId`. For tests and for services that build every tenant's parts at start.
#[derive(Default)]
pub struct MemoryConnections {
    inner: RwLock<Registry>,
}

impl fmt::Debug for MemoryConnections {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        f.debug_struct("MemoryConnections")
            .field("tenants", &inner.parts.len())
            .finish_non_exhaustive()
    }
}

impl MemoryConnections {
    /// No tenants yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers (replaces) `tenant`'s parts.
    pub fn insert(&self, tenant: TenantId, parts: TenantParts) {
        self.write().parts.insert(tenant, parts);
    }

    /// Routes the CRM account `account_id` of `crm` to `tenant` (replacing an earlier
    /// tenant of that account: one account feeds one tenant).
    pub fn link_account(&self, tenant: TenantId, crm: CrmKind, account_id: impl Into<String>) {
        self.write().routes.link_account(tenant, crm, account_id);
    }

    /// Routes the Cativa `CustomerId` `customer_id` to `tenant`.
    pub fn link_customer(&self, tenant: TenantId, customer_id: impl Into<String>) {
        self.write().routes.link_customer(tenant, customer_id);
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Registry> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Registry> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl TenantConnections for MemoryConnections {
    async fn parts(&self, tenant: &TenantId) -> Result<TenantParts, Error> {
        self.read()
            .parts
            .get(tenant)
            .cloned()
            .ok_or_else(|| Error::UnknownTenant(tenant.clone()))
    }

    async fn tenant_for_account(
        &self,
        crm: &CrmKind,
        account_id: &str,
    ) -> Result<Option<TenantId>, Error> {
        Ok(self.read().routes.account(crm, account_id))
    }

    async fn tenant_for_customer(&self, customer_id: &str) -> Result<Option<TenantId>, Error> {
        Ok(self.read().routes.customer(customer_id))
    }

    async fn forget(&self, tenant: &TenantId) -> Result<bool, Error> {
        let mut inner = self.write();
        let known = inner.parts.remove(tenant).is_some();
        let routed = inner.routes.forget(tenant);
        Ok(known || routed)
    }

    /// The tenants registered (with parts), sorted.
    fn tenants(&self) -> Vec<TenantId> {
        let mut all: Vec<TenantId> = self.read().parts.keys().cloned().collect();
        all.sort();
        all
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn block<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn routes_replace_an_accounts_tenant_and_forget_only_their_own() {
        let mut routes = TenantRoutes::new();
        let (acme, globex) = (TenantId::new("acme"), TenantId::new("globex"));
        routes.link_account(acme.clone(), CrmKind::Hubspot, "62515");
        routes.link_customer(acme.clone(), "c-1");
        routes.link_account(globex.clone(), CrmKind::Salesforce, "00D1");
        assert_eq!(
            routes.account(&CrmKind::Hubspot, "62515"),
            Some(acme.clone())
        );
        // The same id under another CRM is another account.
        assert_eq!(routes.account(&CrmKind::Salesforce, "62515"), None);
        // One account feeds one tenant: linking it again moves it.
        routes.link_account(globex.clone(), CrmKind::Hubspot, "62515");
        assert_eq!(
            routes.account(&CrmKind::Hubspot, "62515"),
            Some(globex.clone())
        );
        assert!(routes.forget(&acme), "acme still had its CustomerId");
        assert!(!routes.forget(&acme));
        assert_eq!(routes.customer("c-1"), None);
        assert_eq!(routes.tenants().filter(|t| **t == globex).count(), 2);
    }

    #[test]
    fn memory_connections_route_accounts_and_customers_to_their_tenant() {
        let reg = MemoryConnections::new();
        let (a, b) = (TenantId::new("a"), TenantId::new("b"));
        reg.insert(a.clone(), TenantParts::new());
        reg.insert(b.clone(), TenantParts::new());
        reg.link_account(a.clone(), CrmKind::Hubspot, "111");
        reg.link_account(b.clone(), CrmKind::Hubspot, "222");
        reg.link_customer(b.clone(), "cust-b");
        assert_eq!(
            block(reg.tenant_for_account(&CrmKind::Hubspot, "111")).unwrap(),
            Some(a.clone())
        );
        assert_eq!(
            block(reg.tenant_for_account(&CrmKind::Hubspot, "222")).unwrap(),
            Some(b.clone())
        );
        // The same id in another CRM is another account.
        assert_eq!(
            block(reg.tenant_for_account(&CrmKind::Salesforce, "111")).unwrap(),
            None
        );
        assert_eq!(
            block(reg.tenant_for_customer("cust-b")).unwrap(),
            Some(b.clone())
        );
        assert_eq!(block(reg.tenant_for_customer("cust-x")).unwrap(), None);
        assert_eq!(reg.tenants(), vec![a, b]);
    }

    #[test]
    fn an_unknown_tenant_has_no_parts_and_forget_unroutes_it() {
        let reg = MemoryConnections::new();
        let a = TenantId::new("a");
        assert!(matches!(
            block(reg.parts(&a)),
            Err(Error::UnknownTenant(t)) if t == a
        ));
        reg.insert(a.clone(), TenantParts::new());
        reg.link_account(a.clone(), CrmKind::Hubspot, "111");
        reg.link_customer(a.clone(), "cust-a");
        assert!(block(reg.forget(&a)).unwrap());
        assert!(block(reg.parts(&a)).is_err());
        assert_eq!(
            block(reg.tenant_for_account(&CrmKind::Hubspot, "111")).unwrap(),
            None
        );
        assert_eq!(block(reg.tenant_for_customer("cust-a")).unwrap(), None);
        assert!(!block(reg.forget(&a)).unwrap());
        assert!(
            reg.tenants().is_empty(),
            "a forgotten tenant is no longer listed"
        );
    }

    #[test]
    fn static_connections_serve_the_same_parts_to_every_tenant_and_route_nothing() {
        let conns = StaticConnections::default();
        assert!(block(conns.parts(&TenantId::new("x"))).is_ok());
        assert_eq!(
            block(conns.tenant_for_account(&CrmKind::Hubspot, "1")).unwrap(),
            None
        );
        assert!(conns.tenants().is_empty(), "it lists no tenants of its own");
    }
}
