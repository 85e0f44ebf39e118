//! [`CredentialConnections`]: a `TenantConnections` (crates/sync-core/src/ports/connections.rs)
//! built on a [`CredentialStore`]. Each tenant's CRM parts are built from its saved
//! credentials on first use and cached: HubSpot clients take their token from
//! [`TenantTokens`] (renewed single-flight per tenant, rotated refresh tokens saved),
//! Salesforce clients renew with the tenant's refresh token against its own org. The Cativa
//! side of a tenant (badge sink, inviter, community sink) is registered with
//! [`CredentialConnections::link_customer`]. It is also an [`InstallHook`]: a tenant that
//! connects an account through the install routes is routed at once.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use crm_hubspot::{HubSpotClient, HubSpotSink, HubSpotSource, SinkConfig, SourceConfig};
use crm_salesforce::{
    ContactSchema, OAuthFlow, SalesforceClient, SalesforceSink, SalesforceSource,
};
use secrecy::SecretString;
use sync_core::ports::{
    CredentialStore, TenantConnections, TenantCredentials, TenantParts, TenantRoutes,
};
use sync_core::{CrmKind, Error, RemoteError, RemoteErrorKind, TenantId};
use sync_engine::TenantTokens;
use sync_http::{ErrorKind, HttpError, TokenProvider};

use crate::install::InstallHook;

/// How a tenant's HubSpot parts are built.
#[derive(Clone)]
#[non_exhaustive]
pub struct HubSpotTenants {
    /// Each tenant's access token (share one per app).
    pub tokens: Arc<TenantTokens>,
    /// The API host (default `https://api.hubapi.com`; the sandbox in tests).
    pub base_url: String,
    /// The source's settings (the same for every tenant).
    pub source: SourceConfig,
    /// The sink's settings.
    pub sink: SinkConfig,
}

impl HubSpotTenants {
    /// Parts over `tokens`, against HubSpot's API host.
    pub fn new(tokens: Arc<TenantTokens>, source: SourceConfig, sink: SinkConfig) -> Self {
        Self {
            tokens,
            base_url: crm_hubspot::DEFAULT_BASE_URL.to_owned(),
            source,
            sink,
        }
    }

    /// Another API host.
    #[must_use]
    pub fn with_base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }
}

/// How a tenant's Salesforce parts are built: the connected app, and the contact schema.
#[derive(Clone)]
#[non_exhaustive]
pub struct SalesforceTenants {
    /// The consumer key.
    pub client_id: String,
    /// The consumer secret, when the app requires it for refresh.
    pub client_secret: Option<SecretString>,
    /// The login host the refresh goes to.
    pub login_url: String,
    /// The contact schema (the same for every tenant).
    pub schema: ContactSchema,
}

impl SalesforceTenants {
    /// Parts for the app `client_id`, logging in at `login_url`.
    pub fn new(
        client_id: impl Into<String>,
        client_secret: Option<SecretString>,
        login_url: impl Into<String>,
        schema: ContactSchema,
    ) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret,
            login_url: login_url.into(),
            schema,
        }
    }
}

#[derive(Default)]
struct Known {
    built: HashMap<TenantId, TenantParts>,
    community: HashMap<TenantId, TenantParts>,
    routes: TenantRoutes,
}

/// Tenant connections from saved credentials (see the module docs).
pub struct CredentialConnections {
    credentials: Arc<dyn CredentialStore>,
    hubspot: Option<HubSpotTenants>,
    salesforce: Option<SalesforceTenants>,
    known: Mutex<Known>,
}

impl fmt::Debug for CredentialConnections {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialConnections")
            .field("hubspot", &self.hubspot.is_some())
            .field("salesforce", &self.salesforce.is_some())
            .finish_non_exhaustive()
    }
}

impl CredentialConnections {
    /// Connections reading each tenant's credentials from `credentials`. Add the CRMs with
    /// [`hubspot`](Self::hubspot) and [`salesforce`](Self::salesforce).
    pub fn new(credentials: Arc<dyn CredentialStore>) -> Self {
        Self {
            credentials,
            hubspot: None,
            salesforce: None,
            known: Mutex::new(Known::default()),
        }
    }

    /// Builds HubSpot parts for tenants with saved HubSpot credentials.
    #[must_use]
    pub fn hubspot(mut self, hubspot: HubSpotTenants) -> Self {
        self.hubspot = Some(hubspot);
        self
    }

    /// Builds Salesforce parts for tenants with saved Salesforce credentials.
    #[must_use]
    pub fn salesforce(mut self, salesforce: SalesforceTenants) -> Self {
        self.salesforce = Some(salesforce);
        self
    }

    /// Registers `tenant`'s Cativa community: its `CustomerId` (for routing) and its
    /// community parts (badge sink, inviter, community sink; CRM parts given here are
    /// ignored).
    pub fn link_customer(
        &self,
        tenant: TenantId,
        customer_id: impl Into<String>,
        parts: TenantParts,
    ) {
        let mut known = self.lock();
        known.routes.link_customer(tenant.clone(), customer_id);
        known.built.remove(&tenant);
        known.community.insert(tenant, parts);
    }

    /// Loads the saved credentials of `tenants` to index their accounts (call at start-up
    /// with the tenants you serve: routing by account finds only indexed tenants). Returns
    /// how many were connected.
    ///
    /// # Errors
    /// The credential store failed.
    pub async fn load(&self, tenants: &[TenantId]) -> Result<usize, Error> {
        let mut connected = 0;
        for tenant in tenants {
            if self.saved(tenant).await?.is_some() {
                connected += 1;
            }
        }
        Ok(connected)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Known> {
        self.known.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn index(&self, tenant: &TenantId, crm: &CrmKind, credentials: &TenantCredentials) {
        if let Some(account) = &credentials.account_id {
            self.lock()
                .routes
                .link_account(tenant.clone(), crm.clone(), account.clone());
        }
    }

    /// The tenant's saved credentials: HubSpot's first, then Salesforce's, of the CRMs
    /// configured. Indexes the account found.
    async fn saved(
        &self,
        tenant: &TenantId,
    ) -> Result<Option<(CrmKind, TenantCredentials)>, Error> {
        let mut kinds = Vec::new();
        if self.hubspot.is_some() {
            kinds.push(CrmKind::Hubspot);
        }
        if self.salesforce.is_some() {
            kinds.push(CrmKind::Salesforce);
        }
        for crm in kinds {
            if let Some(c) = self.credentials.load_credentials(tenant, &crm).await? {
                self.index(tenant, &crm, &c);
                return Ok(Some((crm, c)));
            }
        }
        Ok(None)
    }

    fn build(
        &self,
        tenant: &TenantId,
        crm: &CrmKind,
        credentials: &TenantCredentials,
    ) -> Result<TenantParts, Error> {
        let config =
            |e: String| Error::from(RemoteError::new(crm.as_str(), RemoteErrorKind::Invalid, e));
        match (crm, &self.hubspot, &self.salesforce) {
            (CrmKind::Hubspot, Some(h), _) => {
                let provider = TenantTokenProvider {
                    tokens: h.tokens.clone(),
                    tenant: tenant.clone(),
                };
                let client = HubSpotClient::builder()
                    .base_url(&h.base_url)
                    .token_provider(Arc::new(provider))
                    .build()
                    .map_err(|e| config(e.to_string()))?;
                Ok(TenantParts::new()
                    .with_source(Arc::new(HubSpotSource::new(
                        client.clone(),
                        h.source.clone(),
                    )))
                    .with_crm_sink(Arc::new(HubSpotSink::new(client, h.sink.clone()))))
            }
            (CrmKind::Salesforce, _, Some(s)) => {
                let client =
                    salesforce_client(s, credentials).map_err(|e| config(e.to_string()))?;
                let source = SalesforceSource::new(client.clone(), s.schema.clone())
                    .map_err(|e| config(e.to_string()))?;
                let sink = SalesforceSink::new(client, s.schema.clone())
                    .map_err(|e| config(e.to_string()))?;
                Ok(TenantParts::new()
                    .with_source(Arc::new(source))
                    .with_crm_sink(Arc::new(sink)))
            }
            _ => Err(Error::UnknownTenant(tenant.clone())),
        }
    }
}

/// The tenant's Salesforce client: renewing with its refresh token, else its access token
/// as is, on its own instance.
fn salesforce_client(
    s: &SalesforceTenants,
    credentials: &TenantCredentials,
) -> Result<SalesforceClient, crm_salesforce::Error> {
    let mut builder = SalesforceClient::builder().login_url(&s.login_url);
    if let Some(url) = &credentials.instance_url {
        builder = builder.instance_url(url);
    }
    let flow = match (&credentials.refresh_token, &credentials.access_token) {
        (Some(refresh), _) => OAuthFlow::refresh_token(
            s.client_id.clone(),
            s.client_secret.clone(),
            refresh.clone(),
        ),
        (None, Some(access)) => OAuthFlow::AccessToken(access.clone()),
        (None, None) => {
            return Err(crm_salesforce::Error::Config(
                "the saved Salesforce credentials hold no token: connect the account again"
                    .to_owned(),
            ));
        }
    };
    builder.flow(flow).build()
}

#[async_trait]
impl TenantConnections for CredentialConnections {
    async fn parts(&self, tenant: &TenantId) -> Result<TenantParts, Error> {
        if let Some(parts) = self.lock().built.get(tenant) {
            return Ok(parts.clone());
        }
        let community = self.lock().community.get(tenant).cloned();
        let crm = match self.saved(tenant).await? {
            Some((crm, credentials)) => Some(self.build(tenant, &crm, &credentials)?),
            None => None,
        };
        let parts = match (crm, community) {
            (None, None) => return Err(Error::UnknownTenant(tenant.clone())),
            (Some(crm), None) => crm,
            (crm, Some(mut c)) => {
                c.source = crm.as_ref().and_then(|p| p.source.clone());
                c.crm_sink = crm.and_then(|p| p.crm_sink);
                c
            }
        };
        self.lock().built.insert(tenant.clone(), parts.clone());
        Ok(parts)
    }

    async fn tenant_for_account(
        &self,
        crm: &CrmKind,
        account_id: &str,
    ) -> Result<Option<TenantId>, Error> {
        Ok(self.lock().routes.account(crm, account_id))
    }

    async fn tenant_for_customer(&self, customer_id: &str) -> Result<Option<TenantId>, Error> {
        Ok(self.lock().routes.customer(customer_id))
    }

    async fn forget(&self, tenant: &TenantId) -> Result<bool, Error> {
        let mut known = self.lock();
        let mut any = known.built.remove(tenant).is_some();
        any |= known.community.remove(tenant).is_some();
        any |= known.routes.forget(tenant);
        Ok(any)
    }

    /// Every tenant known here: with an indexed account (loaded with
    /// [`load`](Self::load) or connected through the install routes), a linked Cativa
    /// community, or parts built. Sorted.
    fn tenants(&self) -> Vec<TenantId> {
        let known = self.lock();
        let all: std::collections::BTreeSet<TenantId> = known
            .built
            .keys()
            .chain(known.community.keys())
            .chain(known.routes.tenants())
            .cloned()
            .collect();
        all.into_iter().collect()
    }
}

impl InstallHook for CredentialConnections {
    fn connected(
        &self,
        tenant: &TenantId,
        crm: &CrmKind,
        credentials: &TenantCredentials,
    ) -> Result<(), Error> {
        // Built again from the new credentials on next use.
        self.lock().built.remove(tenant);
        self.index(tenant, crm, credentials);
        Ok(())
    }
}

/// A HubSpot client's token source for one tenant: [`TenantTokens`].
struct TenantTokenProvider {
    tokens: Arc<TenantTokens>,
    tenant: TenantId,
}

impl fmt::Debug for TenantTokenProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenantTokenProvider")
            .field("tenant", &self.tenant)
            .finish_non_exhaustive()
    }
}

fn http_error(e: &Error) -> HttpError {
    let kind = match e {
        Error::Remote(r) if r.kind == RemoteErrorKind::Auth => ErrorKind::Auth,
        Error::Remote(r) if r.kind == RemoteErrorKind::Forbidden => ErrorKind::Forbidden,
        Error::Remote(r) if r.kind == RemoteErrorKind::Network => ErrorKind::Network,
        _ => ErrorKind::Server,
    };
    HttpError::new(kind, format!("the tenant's token could not be had: {e}"))
}

#[async_trait]
impl TokenProvider for TenantTokenProvider {
    async fn token(&self) -> Result<SecretString, HttpError> {
        self.tokens
            .access_token(&self.tenant)
            .await
            .map_err(|e| http_error(&e))
    }

    async fn refresh(&self, rejected: &SecretString) -> Result<SecretString, HttpError> {
        self.tokens
            .refresh_after_rejection(&self.tenant, rejected)
            .await
            .map_err(|e| http_error(&e))
    }
}
