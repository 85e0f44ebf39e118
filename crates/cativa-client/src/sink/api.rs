//! Sinks over the **preview** Cativa write endpoints: [`ApiBadgeSink`] and
//! [`ApiCommunitySink`].

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use futures::StreamExt;
use futures::future::BoxFuture;
use sync_core::ports::{BadgeChange, BadgeOp, BadgeSink, CommunitySink, FieldUpdate, ItemResult};
use sync_core::{Error, TenantId};

use crate::client::CativaClient;

/// The default number of requests in flight per batch.
pub const DEFAULT_CONCURRENCY: usize = 5;

/// One client per tenant: each Cativa API key belongs to one tenant, so a change for a
/// tenant without a client is refused rather than sent with another tenant's key.
#[derive(Debug, Clone, Default)]
struct Clients(HashMap<TenantId, CativaClient>);

impl Clients {
    fn get(&self, tenant: &TenantId) -> Result<&CativaClient, Error> {
        self.0
            .get(tenant)
            .ok_or_else(|| Error::UnknownTenant(tenant.clone()))
    }
}

/// Applies badge changes through the preview assign/remove endpoints, each call carrying
/// the change's idempotency key as `Idempotency-Key`, with at most `concurrency` calls in
/// flight. One result per change, in order; a failed change never fails the others.
#[derive(Debug, Clone)]
pub struct ApiBadgeSink {
    clients: Clients,
    concurrency: usize,
}

impl ApiBadgeSink {
    /// A sink for one tenant. It counts its API calls apart from other users of `client`
    /// (see [`CativaClient::with_own_call_counts`]).
    pub fn new(tenant: TenantId, client: CativaClient) -> Self {
        Self {
            clients: Clients(HashMap::from([(tenant, client.with_own_call_counts())])),
            concurrency: DEFAULT_CONCURRENCY,
        }
    }

    /// Adds another tenant with its own client (its own API key).
    #[must_use]
    pub fn with_tenant(mut self, tenant: TenantId, client: CativaClient) -> Self {
        self.clients.0.insert(tenant, client.with_own_call_counts());
        self
    }

    /// Sets the number of calls in flight (at least 1).
    #[must_use]
    pub fn with_concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency.max(1);
        self
    }
}

/// A call tagged with its input position.
type Tagged<'a> = BoxFuture<'a, (usize, ItemResult<()>)>;

/// Runs the futures with at most `concurrency` in flight; results in input order.
async fn in_order(futs: Vec<Tagged<'_>>, concurrency: usize) -> Vec<ItemResult<()>> {
    let mut results: Vec<(usize, ItemResult<()>)> = futures::stream::iter(futs)
        .buffer_unordered(concurrency)
        .collect()
        .await;
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

#[async_trait]
impl BadgeSink for ApiBadgeSink {
    async fn apply_badges(
        &self,
        tenant: &TenantId,
        changes: &[BadgeChange],
    ) -> Result<Vec<ItemResult<()>>, Error> {
        let client = self.clients.get(tenant)?;
        let futs = changes
            .iter()
            .enumerate()
            .map(|(i, c)| {
                Box::pin(async move {
                    let r = match c.op {
                        BadgeOp::Assign => {
                            client.assign_badge(&c.user, &c.badge, c.key.as_str()).await
                        }
                        BadgeOp::Remove => {
                            client.remove_badge(&c.user, &c.badge, c.key.as_str()).await
                        }
                    };
                    (i, r.map_err(Error::from))
                }) as Tagged<'_>
            })
            .collect();
        Ok(in_order(futs, self.concurrency).await)
    }

    /// The calls of every tenant's client, added up by endpoint.
    fn api_calls(&self) -> BTreeMap<String, u64> {
        let mut total = BTreeMap::new();
        for client in self.clients.0.values() {
            for (endpoint, n) in client.api_calls() {
                *total.entry(endpoint).or_insert(0) += n;
            }
        }
        total
    }
}

/// Writes profile fields through the preview update-user endpoint (PATCH, idempotency key
/// header, bounded parallelism).
#[derive(Debug, Clone)]
pub struct ApiCommunitySink {
    clients: Clients,
    concurrency: usize,
}

impl ApiCommunitySink {
    /// A sink for one tenant.
    pub fn new(tenant: TenantId, client: CativaClient) -> Self {
        Self {
            clients: Clients(HashMap::from([(tenant, client)])),
            concurrency: DEFAULT_CONCURRENCY,
        }
    }

    /// Adds another tenant with its own client.
    #[must_use]
    pub fn with_tenant(mut self, tenant: TenantId, client: CativaClient) -> Self {
        self.clients.0.insert(tenant, client);
        self
    }

    /// Sets the number of calls in flight (at least 1).
    #[must_use]
    pub fn with_concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency.max(1);
        self
    }
}

#[async_trait]
impl CommunitySink for ApiCommunitySink {
    async fn update_fields(
        &self,
        tenant: &TenantId,
        updates: &[FieldUpdate],
    ) -> Result<Vec<ItemResult<()>>, Error> {
        let client = self.clients.get(tenant)?;
        let futs = updates
            .iter()
            .enumerate()
            .map(|(i, u)| {
                Box::pin(async move {
                    let r = client.update_user(&u.user, &u.fields, u.key.as_str()).await;
                    (i, r.map_err(Error::from))
                }) as Tagged<'_>
            })
            .collect();
        Ok(in_order(futs, self.concurrency).await)
    }
}
