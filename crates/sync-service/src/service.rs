//! [`Service`]: the parts of a running sync service (engine, tenant, webhook receivers) and
//! its options, built with [`ServiceBuilder`]; serve it standalone or nest its router.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, NaiveDate, Utc};
use crm_hubspot::HubSpotSource;
use secrecy::SecretString;
use sync_core::TenantId;
use sync_core::ports::TenantConnections;
use sync_core::status::{StatusObserver, SyncStatus};
use sync_engine::{HealthWatch, SyncEngine};
use tokio::sync::Notify;

use crate::options::ServiceOptions;
use crate::routes::StatusAuth;

/// What the pull loop knows of its own schedule, for the status' `schedule`.
#[derive(Debug, Default)]
pub(crate) struct PullState {
    /// When the pull loop next wakes up to pull.
    pub(crate) next_delta: Option<DateTime<Utc>>,
    /// The day each tenant's last complete full reconcile ran.
    pub(crate) last_full: HashMap<TenantId, NaiveDate>,
}

/// What the routes and the background tasks share.
pub(crate) struct Shared {
    pub(crate) engine: SyncEngine,
    pub(crate) tenant: TenantId,
    pub(crate) cativa: Option<cativa_client::webhook::WebhookReceiver>,
    /// The HubSpot receiver, and the source of the single tenant (a routing service reads
    /// through each tenant's own source).
    pub(crate) hubspot: Option<(
        crm_hubspot::webhook::WebhookReceiver,
        Option<Arc<HubSpotSource>>,
    )>,
    /// Routes deliveries to their tenant; `None`: every delivery is `tenant`'s.
    pub(crate) routing: Option<Arc<dyn TenantConnections>>,
    /// The install routes' flows; `None`: `/connect` and `/oauth` answer 404.
    pub(crate) installs: Option<Arc<crate::install::Installs>>,
    pub(crate) options: ServiceOptions,
    /// Wakes the drainer when a delivery left work in the outbox.
    pub(crate) work: Notify,
    /// The tenants the drainer was woken for since its last round.
    pub(crate) woken: Mutex<BTreeSet<TenantId>>,
    /// The instance id pulls and leader leases are held under.
    pub(crate) instance: String,
    /// Raised when a shutdown begins: `/readyz` answers 503 from then on.
    pub(crate) shutting_down: AtomicBool,
    /// The start-up checks that passed, listed by `/readyz`.
    pub(crate) checks: Vec<String>,
    /// The status routes' credentials; `None`: the status routes are not mounted.
    pub(crate) status_auth: Option<StatusAuth>,
    /// Tells the observers of each change of a tenant's health.
    pub(crate) health: HealthWatch,
    /// The pull loop's next run, for the status' schedule.
    pub(crate) pulls: Mutex<PullState>,
    #[cfg(feature = "prometheus")]
    pub(crate) metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
}

impl Shared {
    /// The status of `tenant`, with the schedule of this service's pulls.
    pub(crate) async fn status(&self, tenant: &TenantId) -> Result<SyncStatus, sync_engine::Error> {
        let schedule = crate::background::schedule(self, tenant, Utc::now());
        self.engine.status(tenant, &schedule).await
    }

    /// Every tenant this service serves: its own first, then those its routing lists.
    pub(crate) fn tenants(&self) -> Vec<TenantId> {
        let mut all = vec![self.tenant.clone()];
        if let Some(routing) = &self.routing {
            all.extend(routing.tenants().into_iter().filter(|t| *t != self.tenant));
        }
        all
    }

    /// The served tenant named `name`, if this service serves it.
    pub(crate) fn served(&self, name: &str) -> Option<TenantId> {
        if name == self.tenant.as_str() {
            return Some(self.tenant.clone());
        }
        self.routing
            .as_ref()?
            .tenants()
            .into_iter()
            .find(|t| t.as_str() == name)
    }

    /// Wakes the drainer for `tenant`, whose outbox may hold new work.
    pub(crate) fn wake(&self, tenant: &TenantId) {
        self.woken
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(tenant.clone());
        self.work.notify_one();
    }
}

/// A sync service: webhook routes, health routes and the background work (drainer, pulls,
/// retention, health) of its tenant, and of every tenant its routing lists
/// ([`ServiceBuilder::route_tenants`]). Cheap to clone.
///
/// ```no_run
/// # async fn run(engine: sync_engine::SyncEngine) -> Result<(), sync_service::Error> {
/// use sync_service::Service;
/// let service = Service::builder(engine, sync_core::TenantId::new("default")).build();
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
/// service.serve(listener, sync_service::shutdown_signal()).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Service {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("tenant", &self.shared.tenant)
            .field("instance", &self.shared.instance)
            .field("cativa", &self.shared.cativa.is_some())
            .field("hubspot", &self.shared.hubspot.is_some())
            .field("routes_tenants", &self.shared.routing.is_some())
            .field("options", &self.shared.options)
            .finish_non_exhaustive()
    }
}

impl Service {
    /// Starts building a service around `engine` for `tenant`.
    pub fn builder(engine: SyncEngine, tenant: TenantId) -> ServiceBuilder {
        ServiceBuilder {
            engine,
            tenant,
            cativa: None,
            hubspot: None,
            routing: None,
            installs: None,
            options: ServiceOptions::default(),
            checks: Vec::new(),
            status_token: None,
            observers: Vec::new(),
            #[cfg(feature = "prometheus")]
            metrics: None,
        }
    }

    /// Starts building a service over many tenants: `engine` resolves each tenant's parts
    /// ([`sync_engine::SyncEngineBuilder::connections`]) and each webhook delivery is routed
    /// to its tenant through the same connections ([`ServiceBuilder::route_tenants`]).
    /// `home` is the tenant of deliveries' counters and the first of the tenants the
    /// background work and the status routes serve (with every tenant the connections list,
    /// [`TenantConnections::tenants`]).
    pub fn multi_tenant_builder(engine: SyncEngine, home: TenantId) -> ServiceBuilder {
        let connections = engine.connections().clone();
        Self::builder(engine, home).route_tenants(connections)
    }

    /// The engine.
    pub fn engine(&self) -> &SyncEngine {
        &self.shared.engine
    }

    /// The tenant.
    pub fn tenant(&self) -> &TenantId {
        &self.shared.tenant
    }

    /// Every tenant the service serves now: its own, then the tenants its routing lists
    /// ([`TenantConnections::tenants`]).
    pub fn tenants(&self) -> Vec<TenantId> {
        self.shared.tenants()
    }

    /// The options.
    pub fn options(&self) -> &ServiceOptions {
        &self.shared.options
    }

    /// The status of the service's tenant now (as `GET /status/{tenant}` answers it), with
    /// the schedule of this service's pulls.
    ///
    /// # Errors
    /// The store could not be read.
    pub async fn status(&self) -> Result<SyncStatus, crate::Error> {
        Ok(self.shared.status(&self.shared.tenant).await?)
    }
}

/// Builds a [`Service`].
pub struct ServiceBuilder {
    engine: SyncEngine,
    tenant: TenantId,
    cativa: Option<cativa_client::webhook::WebhookReceiver>,
    hubspot: Option<(
        crm_hubspot::webhook::WebhookReceiver,
        Option<Arc<HubSpotSource>>,
    )>,
    routing: Option<Arc<dyn TenantConnections>>,
    installs: Option<Arc<crate::install::Installs>>,
    options: ServiceOptions,
    checks: Vec<String>,
    status_token: Option<SecretString>,
    observers: Vec<Arc<dyn StatusObserver>>,
    #[cfg(feature = "prometheus")]
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
}

impl std::fmt::Debug for ServiceBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceBuilder")
            .field("tenant", &self.tenant)
            .finish_non_exhaustive()
    }
}

impl ServiceBuilder {
    /// Serves Cativa webhooks (`POST /webhooks/cativa/{event}` and `POST /webhooks/cativa`)
    /// verified by `receiver`. Without it those routes answer 404.
    pub fn cativa(mut self, receiver: cativa_client::webhook::WebhookReceiver) -> Self {
        self.cativa = Some(receiver);
        self
    }

    /// Serves HubSpot webhooks (`POST /webhooks/hubspot`) verified by `receiver`, reading the
    /// contacts they name through `source`. Without it the route answers 404.
    pub fn hubspot(
        mut self,
        receiver: crm_hubspot::webhook::WebhookReceiver,
        source: Arc<HubSpotSource>,
    ) -> Self {
        self.hubspot = Some((receiver, Some(source)));
        self
    }

    /// Serves HubSpot webhooks verified by `receiver` for a service that routes many
    /// tenants ([`route_tenants`](Self::route_tenants)): the contacts an event names are
    /// read through its tenant's own source.
    pub fn hubspot_receiver(mut self, receiver: crm_hubspot::webhook::WebhookReceiver) -> Self {
        self.hubspot = Some((receiver, None));
        self
    }

    /// Routes each webhook delivery to its tenant through `connections`: HubSpot events by
    /// `portalId` ([`TenantConnections::tenant_for_account`]), Cativa deliveries by
    /// `CustomerId` ([`TenantConnections::tenant_for_customer`]). A delivery for a tenant
    /// it does not know is refused with 422 `unknown_tenant` and changes nothing. The
    /// background work (drainer, pulls, retention, health), `/readyz` and the status routes
    /// serve the builder's own tenant and every tenant `connections` lists
    /// ([`TenantConnections::tenants`]), looked up afresh each round.
    pub fn route_tenants(mut self, connections: Arc<dyn TenantConnections>) -> Self {
        self.routing = Some(connections);
        self
    }

    /// Serves the install routes `GET /connect/{crm}?tenant=...` and
    /// `GET /oauth/{crm}/callback` with these flows (see [`crate::Installs`]). Without it
    /// they answer 404.
    pub fn installs(mut self, installs: crate::install::Installs) -> Self {
        self.installs = Some(Arc::new(installs));
        self
    }

    /// The options (limits, drainer, schedule, retention, shutdown grace).
    pub fn options(mut self, options: ServiceOptions) -> Self {
        self.options = options;
        self
    }

    /// Records the start-up checks that passed (names), listed by `GET /readyz`.
    pub fn checks_passed(mut self, checks: impl IntoIterator<Item = String>) -> Self {
        self.checks = checks.into_iter().collect();
        self
    }

    /// Mounts the status routes (`GET /status`, `GET /status/{tenant}`, failures, requeue,
    /// dismiss, and the status page) behind this bearer token. Without a token (or with an
    /// empty one) they are not mounted and answer 404.
    pub fn status_token(mut self, token: SecretString) -> Self {
        self.status_token = Some(token);
        self
    }

    /// Adds an observer told once per change of the tenant's health (on failing and on
    /// recovery), by the background health job every
    /// [`ServiceOptions::health_interval`](crate::ServiceOptions::health_interval).
    pub fn observer(mut self, observer: Arc<dyn StatusObserver>) -> Self {
        self.observers.push(observer);
        self
    }

    /// Serves `GET /metrics` from this Prometheus recorder (install it once per process,
    /// e.g. with `PrometheusBuilder::new().install_recorder()`).
    #[cfg(feature = "prometheus")]
    pub fn prometheus(mut self, handle: metrics_exporter_prometheus::PrometheusHandle) -> Self {
        self.metrics = Some(handle);
        self
    }

    /// The service. Its instance id is the engine's worker id
    /// ([`sync_engine::EngineOptions::worker_id`]): keep it stable across restarts, so a
    /// restarted instance takes back its previous incarnation's claims at once.
    pub fn build(self) -> Service {
        let instance = self.engine.options().worker_id.clone();
        let status_auth = self.status_token.as_ref().and_then(StatusAuth::new);
        let health = self
            .observers
            .into_iter()
            .fold(HealthWatch::new(), HealthWatch::observer);
        Service {
            shared: Arc::new(Shared {
                engine: self.engine,
                tenant: self.tenant,
                cativa: self.cativa,
                hubspot: self.hubspot,
                routing: self.routing,
                installs: self.installs,
                options: self.options,
                work: Notify::new(),
                woken: Mutex::new(BTreeSet::new()),
                instance,
                shutting_down: AtomicBool::new(false),
                checks: self.checks,
                status_auth,
                health,
                pulls: Mutex::new(PullState::default()),
                #[cfg(feature = "prometheus")]
                metrics: self.metrics,
            }),
        }
    }
}
