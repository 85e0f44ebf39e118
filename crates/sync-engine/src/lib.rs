//! # sync-engine
//!
//! The sync engine of cativa-crm-sync: runs pull (delta, full reconcile), push (webhook
//! events) and hybrid sync over any source, sinks and store, through the durable outbox.
//!
//! Every run is **plan, then apply**: contacts are planned by sync-core's pure planner, the
//! actions are written to the store's outbox (durable), the checkpoint advances only past work
//! that is durable, and the outbox is drained through the sinks with batching, bounded
//! parallelism, retries with backoff and an audit row per action. A crash at any point loses
//! nothing: the next run or drain picks up pending and lease-expired items, and idempotency
//! keys make a repeated apply harmless.
//!
//! The engine is runtime-agnostic: it uses `futures` only and spawns no tasks, so it runs on
//! tokio (what the rest of the workspace uses) or any other executor; time comes from a
//! [`Clock`].

// Functions stay short enough to read: long ones are split into named steps.
#![warn(clippy::too_many_lines)]

mod apply;
mod connection;
mod credentials;
mod crm_fields;
mod disconnect;
mod error;
mod events;
mod group_commit;
mod groups;
mod progress;
mod pull;
mod report;
mod retention;
mod single;
mod status;

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};

pub use connection::ConnectionReport;
pub use credentials::TenantTokens;
pub use disconnect::{DisconnectOptions, DisconnectReport, Revocation, RevokeOutcome};
pub use error::Error;
pub use progress::{Progress, ProgressObserver};
pub use retention::{PurgeReport, RetentionPolicy};
pub use single::{ContactSync, SyncMode};
pub use status::{FAILURE_SCAN, HealthWatch, describe_metrics};
pub use sync_core::ports::ContactRef;
pub use sync_core::report::{FailureSample, MAX_SAMPLES, RunReport, STOP_REQUESTED};
pub use sync_core::status::{
    Health, HealthState, HealthThresholds, Schedule, StatusObserver, SyncStatus,
};
pub use sync_core::{CommunityEvent, DeliveryOutcome};

use sync_core::TenantId;
use sync_core::config::ValidatedConfig;
use sync_core::ports::{
    BadgeSink, CommunitySink, CrmSink, CrmSource, Inviter, LeaseHolder, OutboxBacklog,
    Registration, StaticConnections, Store, TenantConnections, TenantParts,
};

/// A request to stop, shared between whoever receives the shutdown signal and the engine.
///
/// Once [`StopSignal::stop`] is called, runs take no new work: no more pages are read and
/// no more outbox items are claimed. The batch in flight is finished, claims not yet
/// applied are released (claimable at once by the next run), and the run returns its
/// report with `interrupted` set.
#[derive(Debug, Clone, Default)]
pub struct StopSignal(Arc<AtomicBool>);

impl StopSignal {
    /// A signal not yet raised.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks every engine holding this signal to stop taking work.
    pub fn stop(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether a stop was asked for.
    pub fn is_stopped(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Where the engine reads the time. Inject a fixed or manual clock in tests.
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// The badge mirror property the SDK suggests (a multiple-checkbox property on HubSpot).
pub const DEFAULT_BADGES_PROPERTY: &str = "cativa_badges";

/// Tuning of the engine. The defaults suit a CRM with HubSpot-like limits.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct EngineOptions {
    /// The stream name of the contact checkpoint.
    pub stream: String,
    /// How far before the newest change seen the checkpoint is set (re-read on purpose).
    pub overlap: chrono::Duration,
    /// This worker's instance id, recorded on outbox leases. Give each worker a stable id
    /// (the same across restarts, different between live workers): a restarted worker then
    /// takes back the claims of its previous incarnation at once. The default (`worker-` and
    /// the process id) is unique per process, so a dead worker's claims wait out one lease.
    pub worker_id: String,
    /// The most outbox items claimed per round. A round claims no more than the sinks apply
    /// at once (their batch size times `parallelism`), so a claim covers only what is
    /// applied next.
    pub claim_batch: usize,
    /// How long a claim is leased before another worker may take it. The lease is renewed
    /// (every third of it) while its batch is in flight, so a live worker keeps its claims
    /// and a dead worker's claims are free again within one lease. Keep it short: seconds.
    pub lease: Duration,
    /// Sink batches in flight at once.
    pub parallelism: usize,
    /// Attempts before an action is failed for good.
    pub max_attempts: u32,
    /// First retry delay of a failed action (doubles each attempt).
    pub retry_base: Duration,
    /// Longest retry delay.
    pub retry_max: Duration,
    /// Apply (drain the outbox) at the end of each page or event. `false` only enqueues.
    pub apply: bool,
    /// A CRM property that mirrors the badges a user holds (`;`-joined badge ids, sorted;
    /// [`DEFAULT_BADGES_PROPERTY`] is the multiple-checkbox property HubSpot's
    /// `ensure_sdk_properties` creates). Written when a badge event records new badges and
    /// after this sync grants or removes a badge, so it holds exactly the held badges. Not
    /// written when a field mapping gives the property to another owner. `None` (the
    /// default) to skip.
    pub crm_badges_property: Option<String>,
    /// Log community events (badges, groups) as CRM activities.
    pub log_activities: bool,
    /// Overrides the CRM property that stores the Cativa user id on the contact. `None`
    /// (the default) takes the CRM sink's own
    /// ([`sync_core::ports::CrmSink::provisioning_fields`]: `cativa_user_id` on HubSpot,
    /// the External ID field on Salesforce). `user_created` writes it on an existing
    /// contact so both sides hold both ids.
    pub crm_user_id_property: Option<String>,
    /// The thresholds of the health [`SyncEngine::status`] reports (see
    /// [`sync_core::status::assess`]).
    pub health: HealthThresholds,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            stream: "contacts".to_owned(),
            overlap: chrono::Duration::minutes(5),
            worker_id: default_worker_id(),
            claim_batch: 100,
            lease: Duration::from_secs(15),
            parallelism: 4,
            max_attempts: 8,
            retry_base: Duration::from_secs(30),
            retry_max: Duration::from_secs(3600),
            apply: true,
            crm_badges_property: None,
            log_activities: true,
            crm_user_id_property: None,
            health: HealthThresholds::default(),
        }
    }
}

/// `worker-<pid>-<n>`: unique per engine built with default options, so two engines in one
/// process never fence each other.
fn default_worker_id() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    format!(
        "worker-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

impl EngineOptions {
    /// The delay before retry number `attempts` (1-based), exponential and capped.
    pub fn retry_delay(&self, attempts: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempts.saturating_sub(1).min(20));
        self.retry_base.saturating_mul(factor).min(self.retry_max)
    }
}

/// The sync engine. Build it with [`SyncEngine::builder`]; clone the `Arc`s it holds freely.
#[derive(Clone)]
pub struct SyncEngine {
    config: Arc<ValidatedConfig>,
    store: Arc<dyn Store>,
    /// Resolves each tenant's parts (a [`StaticConnections`] unless
    /// [`SyncEngineBuilder::connections`] gave another).
    connections: Arc<dyn TenantConnections>,
    /// Whether `connections` came from [`SyncEngineBuilder::connections`] (many tenants)
    /// rather than the single-account part setters.
    multi_tenant: bool,
    /// The parts in use: the single account's, or after [`SyncEngine::scoped`] the tenant's.
    parts: TenantParts,
    /// The tenant `parts` were resolved for.
    scoped_to: Option<TenantId>,
    clock: Arc<dyn Clock>,
    options: EngineOptions,
    stop: StopSignal,
    /// The lease holder registered per tenant (registered on first use).
    holders: Arc<Mutex<HashMap<TenantId, LeaseHolder>>>,
    /// Serializes first-use registrations: two concurrent runs of one engine must share one
    /// incarnation, not supersede each other.
    registering: Arc<futures::lock::Mutex<()>>,
    /// Deliveries this engine is handling now (tenant, lease name): copies racing inside one
    /// process are told `InProgress` here, before the store's lease is asked.
    deliveries_in_flight: events::InFlight,
    /// Commits concurrent deliveries together (see `group_commit`).
    group_commit: group_commit::GroupCommit,
    /// Writes the last event run of concurrent deliveries once (see `group_commit`).
    event_runs: group_commit::LatestRuns,
    /// Who hears how runs move (`SyncEngineBuilder::with_progress`).
    progress: Option<Arc<dyn ProgressObserver>>,
}

impl std::fmt::Debug for SyncEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncEngine")
            .field("parts", &self.parts)
            .field("multi_tenant", &self.multi_tenant)
            .field("scoped_to", &self.scoped_to)
            .field("progress", &self.progress.is_some())
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// Builds a [`SyncEngine`].
#[derive(Clone)]
pub struct SyncEngineBuilder {
    engine: SyncEngine,
}

impl SyncEngine {
    /// Starts a builder with the two things every engine needs.
    pub fn builder(config: ValidatedConfig, store: Arc<dyn Store>) -> SyncEngineBuilder {
        SyncEngineBuilder {
            engine: SyncEngine {
                config: Arc::new(config),
                store,
                connections: Arc::new(StaticConnections::default()),
                multi_tenant: false,
                parts: TenantParts::default(),
                scoped_to: None,
                clock: Arc::new(SystemClock),
                options: EngineOptions::default(),
                stop: StopSignal::new(),
                holders: Arc::new(Mutex::new(HashMap::new())),
                registering: Arc::new(futures::lock::Mutex::new(())),
                deliveries_in_flight: events::InFlight::default(),
                group_commit: group_commit::GroupCommit::default(),
                event_runs: group_commit::LatestRuns::default(),
                progress: None,
            },
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ValidatedConfig {
        &self.config
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The time now on the engine's clock ([`SyncEngineBuilder::clock`]): stamp what you
    /// record beside the engine (operator actions, delivery counts) with it, so that every
    /// record of a run reads one clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// The options.
    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    /// Whether a CRM source is configured (pulls need one). An engine over many tenants
    /// ([`SyncEngineBuilder::connections`]) answers `true`: each tenant's source is resolved
    /// when it is used.
    pub fn has_source(&self) -> bool {
        self.multi_tenant || self.parts.source.is_some()
    }

    /// Whether this engine resolves each tenant's parts through
    /// [`SyncEngineBuilder::connections`].
    pub fn is_multi_tenant(&self) -> bool {
        self.multi_tenant
    }

    /// The tenant connections this engine resolves parts through.
    pub fn connections(&self) -> &Arc<dyn TenantConnections> {
        &self.connections
    }

    /// This engine with `tenant`'s parts: every call that reads or writes a CRM or the
    /// community resolves them first, so a tenant's work never runs on another tenant's
    /// credentials. Cheap: the parts are `Arc`s and the single-account engine serves its
    /// own.
    pub(crate) async fn scoped(&self, tenant: &TenantId) -> Result<SyncEngine, Error> {
        if !self.multi_tenant || self.scoped_to.as_ref() == Some(tenant) {
            return Ok(self.clone());
        }
        let parts = self.connections.parts(tenant).await?;
        let mut engine = self.clone();
        engine.parts = parts;
        engine.scoped_to = Some(tenant.clone());
        Ok(engine)
    }

    /// The stop signal this engine obeys.
    pub fn stop_signal(&self) -> &StopSignal {
        &self.stop
    }

    pub(crate) fn stop_requested(&self) -> bool {
        self.stop.is_stopped()
    }

    /// Registers this worker's instance id with the store for `tenant`: starts a new
    /// incarnation and takes back at once the claims its previous incarnations held (a
    /// restart after `kill -9` resumes their work without waiting out a lease). Runs do this
    /// on first use; call it at start-up to do it before anything else.
    pub async fn register(&self, tenant: &TenantId) -> Result<Registration, Error> {
        let registration = self
            .store
            .register_worker(tenant, &self.options.worker_id, self.clock.now())
            .await?;
        if registration.taken_back > 0 {
            tracing::info!(
                worker = %registration.holder,
                taken_back = registration.taken_back,
                "took back the claims of this instance's previous incarnation"
            );
        }
        self.holders
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(tenant.clone(), registration.holder.clone());
        Ok(registration)
    }

    /// The lease holder of this engine for `tenant`, registering on first use.
    pub(crate) async fn holder(&self, tenant: &TenantId) -> Result<LeaseHolder, Error> {
        if let Some(holder) = self.known_holder(tenant) {
            return Ok(holder);
        }
        let _first = self.registering.lock().await;
        // Another run of this engine may have registered while this one waited.
        match self.known_holder(tenant) {
            Some(holder) => Ok(holder),
            None => Ok(self.register(tenant).await?.holder),
        }
    }

    fn known_holder(&self, tenant: &TenantId) -> Option<LeaseHolder> {
        self.holders
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(tenant)
            .cloned()
    }

    /// Releases every claim this engine holds for `tenant` (pending again, claimable at once
    /// by any worker). For a shutdown: a finished run holds nothing, but a run dropped
    /// mid-batch may. Returns how many were released.
    pub async fn release_claims(&self, tenant: &TenantId) -> Result<u64, Error> {
        let holder = self.holder(tenant).await?;
        Ok(self
            .store
            .release(tenant, &holder, None, self.clock.now())
            .await?)
    }

    /// Where the tenant's unfinished outbox work stands now (pending, retrying later, held
    /// by a live worker, held under an expired lease).
    pub async fn backlog(&self, tenant: &TenantId) -> Result<OutboxBacklog, Error> {
        Ok(self.store.outbox_backlog(tenant, self.clock.now()).await?)
    }

    fn source(&self) -> Result<&Arc<dyn CrmSource>, Error> {
        self.parts.source.as_ref().ok_or_else(|| {
            Error::NotConfigured("no CRM source (SyncEngineBuilder::source)".to_owned())
        })
    }

    fn source_name(&self) -> String {
        self.parts
            .source
            .as_ref()
            .map_or_else(|| "crm".to_owned(), |s| s.crm().as_str().to_owned())
    }

    fn api_calls(&self) -> BTreeMap<String, u64> {
        let mut all = BTreeMap::new();
        let mut add = |m: BTreeMap<String, u64>| {
            for (k, v) in m {
                *all.entry(k).or_insert(0) += v;
            }
        };
        if let Some(s) = &self.parts.source {
            add(s.api_calls());
        }
        if let Some(s) = &self.parts.crm_sink {
            add(s.api_calls());
        }
        if let Some(s) = &self.parts.badge_sink {
            add(s.api_calls());
        }
        all
    }
}

fn diff_calls(
    after: BTreeMap<String, u64>,
    before: &BTreeMap<String, u64>,
) -> BTreeMap<String, u64> {
    after
        .into_iter()
        .map(|(k, v)| {
            let d = v.saturating_sub(before.get(&k).copied().unwrap_or(0));
            (k, d)
        })
        .filter(|(_, d)| *d > 0)
        .collect()
}

impl SyncEngineBuilder {
    /// The CRM to read.
    pub fn source(mut self, source: Arc<dyn CrmSource>) -> Self {
        self.engine.parts.source = Some(source);
        self
    }

    /// The CRM to write (provisioning, properties, activities).
    pub fn crm_sink(mut self, sink: Arc<dyn CrmSink>) -> Self {
        self.engine.parts.crm_sink = Some(sink);
        self
    }

    /// Where badge changes go.
    pub fn badge_sink(mut self, sink: Arc<dyn BadgeSink>) -> Self {
        self.engine.parts.badge_sink = Some(sink);
        self
    }

    /// Who sends invites.
    pub fn inviter(mut self, inviter: Arc<dyn Inviter>) -> Self {
        self.engine.parts.inviter = Some(inviter);
        self
    }

    /// Where community field updates go.
    pub fn community_sink(mut self, sink: Arc<dyn CommunitySink>) -> Self {
        self.engine.parts.community_sink = Some(sink);
        self
    }

    /// Who is in each community group: a full reconcile adds the members of each `[groups]`
    /// group to its list and removes the memberships the sync added for users who left.
    /// Without it (or for a group whose members it cannot tell), a reconcile touches no list.
    pub fn community_groups(mut self, groups: Arc<dyn sync_core::ports::CommunityGroups>) -> Self {
        self.engine.parts.community_groups = Some(groups);
        self
    }

    /// The clock (default: the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.engine.clock = clock;
        self
    }

    /// Tuning.
    pub fn options(mut self, options: EngineOptions) -> Self {
        self.engine.options = options;
        self
    }

    /// The stop signal to obey (default: one that is never raised). Raise it from the
    /// shutdown handler.
    pub fn stop_signal(mut self, stop: StopSignal) -> Self {
        self.engine.stop = stop;
        self
    }

    /// Serves many tenants: each call resolves its tenant's parts through `connections`
    /// (see [`sync_core::ports::TenantConnections`]), and the single-account part setters
    /// ([`source`](Self::source), [`crm_sink`](Self::crm_sink), ...) are ignored.
    pub fn connections(mut self, connections: Arc<dyn TenantConnections>) -> Self {
        self.engine.connections = connections;
        self.engine.multi_tenant = true;
        self
    }

    /// The engine.
    pub fn build(mut self) -> SyncEngine {
        if self.engine.multi_tenant {
            // Unscoped calls of a multi-tenant engine must not use any account's parts.
            self.engine.parts = TenantParts::default();
        } else {
            self.engine.connections = Arc::new(StaticConnections::new(self.engine.parts.clone()));
        }
        self.engine
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod badge_names_tests;

#[cfg(test)]
mod tenants_tests;

// The README's code blocks compile and run as doc-tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
