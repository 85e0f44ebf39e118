//! [`Service`]: the parts of a running sync service (engine, tenant, webhook receivers) and
//! its options, built with [`ServiceBuilder`]; serve it standalone or nest its router.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crm_hubspot::HubSpotSource;
use sync_core::TenantId;
use sync_engine::SyncEngine;
use tokio::sync::Notify;

use crate::options::ServiceOptions;

/// What the routes and the background tasks share.
pub(crate) struct Shared {
    pub(crate) engine: SyncEngine,
    pub(crate) tenant: TenantId,
    pub(crate) cativa: Option<cativa_client::webhook::WebhookReceiver>,
    pub(crate) hubspot: Option<(crm_hubspot::webhook::WebhookReceiver, Arc<HubSpotSource>)>,
    pub(crate) options: ServiceOptions,
    /// Wakes the drainer when a delivery left work in the outbox.
    pub(crate) work: Notify,
    /// The instance id pulls and leader leases are held under.
    pub(crate) instance: String,
    /// Raised when a shutdown begins: `/readyz` answers 503 from then on.
    pub(crate) shutting_down: AtomicBool,
    /// The start-up checks that passed, listed by `/readyz`.
    pub(crate) checks: Vec<String>,
    #[cfg(feature = "prometheus")]
    pub(crate) metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
}

/// A sync service: webhook routes, health routes and the background work (drainer, pulls,
/// retention) of one tenant. Cheap to clone.
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
            options: ServiceOptions::default(),
            checks: Vec::new(),
            #[cfg(feature = "prometheus")]
            metrics: None,
        }
    }

    /// The engine.
    pub fn engine(&self) -> &SyncEngine {
        &self.shared.engine
    }

    /// The tenant.
    pub fn tenant(&self) -> &TenantId {
        &self.shared.tenant
    }

    /// The options.
    pub fn options(&self) -> &ServiceOptions {
        &self.shared.options
    }
}

/// Builds a [`Service`].
pub struct ServiceBuilder {
    engine: SyncEngine,
    tenant: TenantId,
    cativa: Option<cativa_client::webhook::WebhookReceiver>,
    hubspot: Option<(crm_hubspot::webhook::WebhookReceiver, Arc<HubSpotSource>)>,
    options: ServiceOptions,
    checks: Vec<String>,
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
        self.hubspot = Some((receiver, source));
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
        Service {
            shared: Arc::new(Shared {
                engine: self.engine,
                tenant: self.tenant,
                cativa: self.cativa,
                hubspot: self.hubspot,
                options: self.options,
                work: Notify::new(),
                instance,
                shutting_down: AtomicBool::new(false),
                checks: self.checks,
                #[cfg(feature = "prometheus")]
                metrics: self.metrics,
            }),
        }
    }
}
