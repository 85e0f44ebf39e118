//! Shared fixtures for the end-to-end tests of cativa-crm-sync (in `tests/tests/`).
//!
//! A [`World`] is the sandbox (HubSpot, Salesforce and Cativa fakes on 127.0.0.1) seeded
//! with generated people, a SQLite store in a temporary directory, and clients pointed at
//! the sandbox. Expected outcomes are computed here **from the sandbox's own state**
//! ([`World::expected_premium`]), independently of the planner, so a test compares what
//! the engine did with what the rules imply.
//!
//! The other helpers: [`seed`] records community users from signed `user_created`
//! webhooks; [`hubspot_source`] and [`salesforce_schema`] read tags the way the sandbox
//! stores them; [`answer_code`] and [`leaks_internals`] read the JSON answers of the
//! `sync-service` routes.

pub mod seed;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use cativa_client::CativaClient;
use cativa_client::sink::ApiBadgeSink;
use crm_hubspot::{ContactMapping, HubSpotClient, HubSpotSource, RateLimitTier, SourceConfig};
use crm_salesforce::ContactSchema;
use secrecy::SecretString;
use sync_core::ports::Store;
use sync_core::{Error, TenantId, ValidatedConfig};
use sync_engine::{EngineOptions, SyncEngine};
use sync_sandbox::cativa::BadgeSource;
use sync_sandbox::datagen::{DataGenConfig, GeneratedContact};
use sync_sandbox::{SandboxConfig, SandboxServer};

pub use seed::{DeliveryTally, cativa_headers, deliver_user_created};

/// Seed 004's `user_created` payload, verbatim: the same field names and nesting (the
/// top-level fields and the nested `User`), and no event-name field.
pub const SEED_USER_CREATED: &str = r#"{
  "CustomerId": "5a4d0b0c-0000-4000-8000-c0ffee000001",
  "UserId": "3f9a1c2e-7b4d-4e8f-9a0b-1c2d3e4f5a6b",
  "Email": "Maria.Silva@Example.com.br",
  "FirstName": "Maria",
  "LastName": "Silva",
  "DisplayName": "Maria Silva",
  "Username": "mariasilva",
  "PhoneNumber": "+5511988887777",
  "CreatedAt": "2026-11-20T13:45:10.123Z",
  "User": {
    "Id": "3f9a1c2e-7b4d-4e8f-9a0b-1c2d3e4f5a6b",
    "Email": "Maria.Silva@Example.com.br",
    "FirstName": "Maria",
    "LastName": "Silva",
    "DisplayName": "Maria Silva",
    "Username": "mariasilva",
    "PhoneNumber": "+5511988887777",
    "CreatedAt": "2026-11-20T13:45:10.123Z",
    "BadgeId": null,
    "Badges": []
  }
}"#;

/// The badge id the Cativa sandbox knows as "Premium" (`sync_sandbox::cativa::DEFAULT_BADGES`).
pub const PREMIUM: &str = "b0000000-0000-4000-8000-000000000001";

/// The tag that grants [`PREMIUM`].
pub const TAG: &str = "Pago Anual";

/// The configuration of these tests: the tag `Pago Anual` grants the sandbox's Premium badge.
pub const DEFAULT_CONFIG: &str = r#"
[badges]
Premium = "b0000000-0000-4000-8000-000000000001" # the Cativa sandbox's Premium badge

[[badge_rules]]
id = "annual-plan"
grant = "Premium"
when = { tag = "Pago Anual" }
"#;

/// The rule under test ([`DEFAULT_CONFIG`]): tag `Pago Anual` grants Premium.
///
/// # Errors
/// Never in practice: the TOML is fixed.
pub fn config() -> Result<ValidatedConfig, Error> {
    sync_core::SyncConfig::from_toml_str(DEFAULT_CONFIG)?.validate()
}

/// A HubSpot source reading tags from the multiple-checkboxes property `tags_property`.
pub fn hubspot_source(client: HubSpotClient, tags_property: &str) -> HubSpotSource {
    let mapping = ContactMapping::default().with_tags(crm_hubspot::TagSource::CheckboxProperty(
        tags_property.to_owned(),
    ));
    HubSpotSource::new(client, SourceConfig::new(mapping))
}

/// The Salesforce contact schema: tags from the multi-select picklist `tags_field`.
pub fn salesforce_schema(tags_field: &str) -> ContactSchema {
    ContactSchema::contact().with_tags(crm_salesforce::TagSource::MultiSelect {
        field: tags_field.to_owned(),
    })
}

/// What a `sync-service` answer body names: its `status` (`accepted`, `duplicate`) when a
/// delivery was taken, else its `error` code (`signature_invalid`, `in_progress`,
/// `unavailable`, ...). `None` when the body is not the service's JSON shape: every answer
/// carries a non-empty `request_id`, and an error a `message`.
pub fn answer_code(body: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    let id = v.get("request_id")?.as_str()?;
    if id.is_empty() {
        return None;
    }
    if let Some(status) = v.get("status").and_then(|s| s.as_str()) {
        return Some(status.to_owned());
    }
    v.get("message")?.as_str()?;
    v.get("error")?.as_str().map(str::to_owned)
}

/// Whether `text` (an answer's `message`) shows internal detail a sender must never see:
/// Rust paths or debug output, SQL, or the names of the libraries underneath.
pub fn leaks_internals(text: &str) -> bool {
    const TELLTALES: [&str; 14] = [
        "::",
        "Error {",
        "Error(",
        "Some(",
        "None",
        "sqlx",
        "serde",
        "reqwest",
        "hyper",
        "axum",
        "SELECT ",
        "INSERT ",
        "panicked",
        "backtrace",
    ];
    TELLTALES.iter().any(|t| text.contains(t))
}

/// Engine options for tests: failed actions become due again after milliseconds instead
/// of the production 30 s, so a test can drain them again at once.
pub fn fast_options() -> EngineOptions {
    let mut o = EngineOptions::default();
    o.retry_base = Duration::from_millis(5);
    o.retry_max = Duration::from_millis(50);
    o
}

/// A HubSpot client for the sandbox, with client-side budgets far above the sandbox's (the
/// tests that check rate limiting set their own).
///
/// # Errors
/// A bad base URL.
pub fn hubspot_client(base_url: &str) -> Result<HubSpotClient, crm_hubspot::Error> {
    HubSpotClient::builder()
        .base_url(base_url)
        .access_token(SecretString::from(
            sync_sandbox::hubspot::DEFAULT_ACCESS_TOKEN,
        ))
        .tier(RateLimitTier::Custom {
            requests: 100_000,
            window_ms: 1_000,
        })
        .search_limit(sync_http::RateLimit::new(100_000, Duration::from_secs(1)))
        .build()
}

/// A Cativa client for the sandbox.
///
/// # Errors
/// A bad base URL.
pub fn cativa_client(base_url: &str) -> Result<CativaClient, cativa_client::Error> {
    CativaClient::builder(SecretString::from(sync_sandbox::cativa::DEFAULT_API_KEY))
        .base_url(base_url)
        .build()
}

/// Sandbox configuration with every rate limit off (the default HubSpot limits would make
/// a 10,000-contact test take minutes; `rate_limit.rs` tests limits on purpose).
pub fn unlimited_sandbox() -> SandboxConfig {
    let mut c = SandboxConfig::default();
    c.hubspot.rate_limits = sync_sandbox::ratelimit::RateLimits::unlimited();
    c
}

/// The sandbox, the store and clients of one test.
pub struct World {
    /// The three fake APIs.
    pub sandbox: SandboxServer,
    /// The people seeded.
    pub people: Vec<GeneratedContact>,
    /// The tenant.
    pub tenant: TenantId,
    /// A SQLite store in [`World::dir`].
    pub store: Arc<dyn Store>,
    /// A HubSpot client for the sandbox.
    pub hubspot: HubSpotClient,
    /// A Cativa client for the sandbox.
    pub cativa: CativaClient,
    dir: tempfile::TempDir,
}

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("World")
            .field("people", &self.people.len())
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}

/// A failure building a [`World`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl World {
    /// Starts the sandbox with `config`, seeds `contacts` people (seed `seed`), opens a SQLite
    /// store in a temporary directory.
    ///
    /// # Errors
    /// The sandbox or the store could not start.
    pub async fn start(
        config: SandboxConfig,
        contacts: usize,
        seed: u64,
    ) -> Result<Self, BoxError> {
        Self::start_with(
            config,
            DataGenConfig::default()
                .with_contacts(contacts)
                .with_seed(seed),
        )
        .await
    }

    /// [`World::start`] with full control of the generated data.
    ///
    /// # Errors
    /// The sandbox or the store could not start.
    pub async fn start_with(config: SandboxConfig, data: DataGenConfig) -> Result<Self, BoxError> {
        let sandbox = SandboxServer::start(config).await?;
        let people = sandbox.seed_people(&data)?;
        let dir = tempfile::tempdir()?;
        let store = sync_store::connect(&dir.path().join("sync.db").to_string_lossy()).await?;
        let hubspot = hubspot_client(sandbox.hubspot().base_url())?;
        let cativa = cativa_client(sandbox.cativa().base_url())?;
        Ok(Self {
            sandbox,
            people,
            tenant: TenantId::new("e2e"),
            store,
            hubspot,
            cativa,
            dir,
        })
    }

    /// The temporary directory holding the store.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// A HubSpot source over the tags property of the sandbox.
    pub fn source(&self) -> Arc<HubSpotSource> {
        Arc::new(hubspot_source(
            self.hubspot.clone(),
            self.sandbox.hubspot().tags_property(),
        ))
    }

    /// An engine reading HubSpot and writing badges to Cativa, with [`fast_options`].
    ///
    /// # Errors
    /// The rule does not validate.
    pub fn engine(&self) -> Result<SyncEngine, Error> {
        Ok(SyncEngine::builder(config()?, self.store.clone())
            .source(self.source())
            .badge_sink(Arc::new(ApiBadgeSink::new(
                self.tenant.clone(),
                self.cativa.clone(),
            )))
            .options(fast_options())
            .build())
    }

    /// Records every Cativa user in the store from a signed `user_created` delivery, as a
    /// live receiver would (an engine without a CRM source: the reconcile that follows
    /// links contacts by email).
    ///
    /// # Errors
    /// A delivery failed verification or the engine failed.
    pub async fn record_users(&self) -> Result<DeliveryTally, BoxError> {
        let community = SyncEngine::builder(config()?, self.store.clone())
            .options(fast_options())
            .build();
        let secret = self.sandbox.cativa().webhook_secret().clone();
        deliver_user_created(&self.sandbox, &community, &self.tenant, &secret, 8).await
    }

    /// Cativa user id by normalized email.
    pub fn users_by_email(&self) -> BTreeMap<String, String> {
        self.sandbox
            .cativa()
            .users()
            .into_iter()
            .map(|u| (u.email.trim().to_lowercase(), u.id))
            .collect()
    }

    /// The users the rule says should hold Premium, computed from the sandbox's HubSpot
    /// contacts without the planner: per email, the live contact updated last wins (ties:
    /// the smaller id, the documented default duplicate policy); it qualifies when its tags
    /// include [`TAG`] and a Cativa user has its email.
    pub fn expected_premium(&self) -> BTreeSet<String> {
        let tags_property = self.sandbox.hubspot().tags_property().to_owned();
        let mut winners: BTreeMap<String, sync_sandbox::hubspot::HubSpotContact> = BTreeMap::new();
        for c in self.sandbox.hubspot().contacts() {
            if c.archived {
                continue;
            }
            let Some(email) = c.email().map(|e| e.trim().to_lowercase()) else {
                continue;
            };
            let better = winners.get(&email).is_none_or(|w| {
                c.updated_at > w.updated_at || (c.updated_at == w.updated_at && c.id < w.id)
            });
            if better {
                winners.insert(email, c);
            }
        }
        let users = self.users_by_email();
        winners
            .into_iter()
            .filter(|(_, c)| {
                c.property(&tags_property)
                    .is_some_and(|t| t.split(';').any(|x| x.trim() == TAG))
            })
            .filter_map(|(email, _)| users.get(&email).cloned())
            .collect()
    }

    /// Users holding Premium in the Cativa sandbox, whatever granted it.
    pub fn premium_holders(&self) -> BTreeSet<String> {
        self.holders(|_| true)
    }

    /// Users holding Premium granted "elsewhere" (not through the API).
    pub fn premium_elsewhere(&self) -> BTreeSet<String> {
        self.holders(|s| *s == BadgeSource::Elsewhere)
    }

    fn holders(&self, keep: impl Fn(&BadgeSource) -> bool) -> BTreeSet<String> {
        self.sandbox
            .cativa()
            .badges_by_user()
            .into_iter()
            .filter(|(_, grants)| {
                grants
                    .iter()
                    .any(|g| g.badge_id == PREMIUM && keep(&g.source))
            })
            .map(|(user, _)| user)
            .collect()
    }

    /// Drains the outbox until nothing is pending or in flight (retries included), at most
    /// `rounds` times with a short pause between; returns the outbox counts at the end.
    ///
    /// # Errors
    /// The engine or the store failed.
    pub async fn settle(
        &self,
        engine: &SyncEngine,
        rounds: usize,
    ) -> Result<sync_core::ports::OutboxCounts, sync_engine::Error> {
        for _ in 0..rounds {
            let counts = self.store.outbox_counts(&self.tenant).await?;
            if counts.pending == 0 && counts.in_flight == 0 {
                return Ok(counts);
            }
            tokio::time::sleep(Duration::from_millis(60)).await;
            engine.drain_outbox(&self.tenant).await?;
        }
        Ok(self.store.outbox_counts(&self.tenant).await?)
    }

    /// Stops the sandbox.
    pub async fn shutdown(self) {
        self.sandbox.shutdown().await;
    }
}

/// Compares two sets of user ids and panics with a short diff (counts and a few samples)
/// instead of printing thousands of ids.
///
/// # Panics
/// When the sets differ.
pub fn assert_same_users(what: &str, actual: &BTreeSet<String>, expected: &BTreeSet<String>) {
    let missing: Vec<&String> = expected.difference(actual).collect();
    let extra: Vec<&String> = actual.difference(expected).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{what}: {} expected, {} actual; {} missing (e.g. {:?}), {} unexpected (e.g. {:?})",
        expected.len(),
        actual.len(),
        missing.len(),
        missing.iter().take(5).collect::<Vec<_>>(),
        extra.len(),
        extra.iter().take(5).collect::<Vec<_>>(),
    );
}

/// Serves `router` on 127.0.0.1 (any free port); returns its base URL and the server task
/// (abort it, or let the test end).
///
/// # Errors
/// The port could not be bound.
pub async fn serve(
    router: axum::Router,
) -> Result<(String, tokio::task::JoinHandle<()>), BoxError> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok((url, task))
}

/// A badge sink that records the size of every batch the engine hands it, then delegates.
pub struct RecordingBadgeSink<S> {
    inner: S,
    batches: std::sync::Mutex<Vec<usize>>,
}

impl<S> RecordingBadgeSink<S> {
    /// Wraps `inner`.
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            batches: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// The batch sizes seen so far, in order.
    pub fn batches(&self) -> Vec<usize> {
        self.batches
            .lock()
            .map(|b| b.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }
}

#[async_trait::async_trait]
impl<S: sync_core::ports::BadgeSink> sync_core::ports::BadgeSink for RecordingBadgeSink<S> {
    fn max_batch(&self) -> usize {
        self.inner.max_batch()
    }

    async fn apply_badges(
        &self,
        tenant: &TenantId,
        changes: &[sync_core::ports::BadgeChange],
    ) -> Result<Vec<sync_core::ports::ItemResult<()>>, Error> {
        match self.batches.lock() {
            Ok(mut b) => b.push(changes.len()),
            Err(p) => p.into_inner().push(changes.len()),
        }
        self.inner.apply_badges(tenant, changes).await
    }
}

/// The outcome of [`sustained_hubspot_run`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateRun {
    /// Requests HubSpot received.
    pub requests: u64,
    /// Of which refused with 429.
    pub rate_limited: u64,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// The sandbox's limit, requests per second.
    pub limit_per_sec: u32,
}

impl RateRun {
    /// The share of the budget used: requests / (limit × seconds).
    pub fn utilization(&self) -> f64 {
        let budget = f64::from(self.limit_per_sec) * self.elapsed.as_secs_f64();
        if budget == 0.0 {
            0.0
        } else {
            self.requests as f64 / budget
        }
    }
}

/// How the HubSpot client paces itself in [`sustained_hubspot_run`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Pacing {
    /// `RateLimitTier::Custom` with the sandbox's limit: what a partner configures (a
    /// rolling window paced evenly; the client also follows the window the sandbox
    /// announces).
    Tier,
    /// A shared limiter of `limit - 1` per second with a burst of 1: one request of margin.
    Tight,
}

/// A sustained read of HubSpot against a sandbox limited to `limit_per_sec` requests per
/// rolling second: every one of `contacts` contacts read again by id, 10 per batch read,
/// 8 reads in flight through one client (a webhook receiver refetching contacts during a
/// burst of deliveries). The run is all HubSpot calls, so the client's pacing decides its
/// pace, not the round-trip time.
///
/// # Errors
/// The sandbox, the client or the source failed.
pub async fn sustained_hubspot_run(
    limit_per_sec: u32,
    contacts: usize,
    pacing: Pacing,
) -> Result<RateRun, BoxError> {
    use futures::StreamExt;
    use sync_core::ports::CrmSource;

    let mut sandbox = SandboxConfig::default();
    sandbox.hubspot.rate_limits =
        sync_sandbox::ratelimit::RateLimits::unlimited().with_general(Some(
            sync_sandbox::ratelimit::RateLimit::per_second(limit_per_sec),
        ));
    let data = DataGenConfig::default()
        .with_contacts(contacts)
        .with_seed(60)
        .with_duplicate_email_share(0.0);
    let world = World::start_with(sandbox, data).await?;
    let builder = HubSpotClient::builder()
        .base_url(world.sandbox.hubspot().base_url())
        .access_token(SecretString::from(
            sync_sandbox::hubspot::DEFAULT_ACCESS_TOKEN,
        ));
    let client = match pacing {
        Pacing::Tier => builder
            .tier(RateLimitTier::Custom {
                requests: limit_per_sec,
                window_ms: 1_000,
            })
            .build()?,
        Pacing::Tight => {
            let limit = sync_http::RateLimit::new(
                limit_per_sec.saturating_sub(1).max(1),
                Duration::from_secs(1),
            )
            .with_burst(1);
            let limiter = sync_http::RateLimiter::new(limit).ok_or("invalid rate limit")?;
            builder.shared_limiter(Arc::new(limiter)).build()?
        }
    };
    let source = hubspot_source(client, world.sandbox.hubspot().tags_property());
    let ids: Vec<sync_core::CrmRecordId> = world
        .sandbox
        .hubspot()
        .contacts()
        .iter()
        .map(|c| sync_core::CrmRecordId::hubspot(c.id.to_string()))
        .collect();
    world.sandbox.reset_requests();
    let started = std::time::Instant::now();
    let read: Vec<Result<usize, Error>> = futures::stream::iter(ids.chunks(10))
        .map(|chunk| {
            let source = &source;
            let tenant = &world.tenant;
            async move { source.get_by_ids(tenant, chunk).await.map(|c| c.len()) }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    let elapsed = started.elapsed();
    let mut total = 0;
    for r in read {
        total += r?;
    }
    if total != contacts {
        return Err(format!("read {total} of {contacts} contacts").into());
    }
    let counts = world.sandbox.hubspot().requests();
    let run = RateRun {
        requests: counts.total(),
        rate_limited: counts.0.values().map(|s| s.rate_limited).sum(),
        elapsed,
        limit_per_sec,
    };
    world.shutdown().await;
    Ok(run)
}

/// The repository's READMEs, so their Rust blocks compile (and run, unless `no_run`) as
/// doc-tests of this package, which depends on every crate they use. `readme_snippets.rs`
/// checks their TOML, JSON and shell blocks.
#[cfg(doctest)]
pub mod readme_doctests {
    #[doc = include_str!("../../README.md")]
    pub struct Readme;
    #[doc = include_str!("../../examples/README.md")]
    pub struct ExamplesReadme;
    #[doc = include_str!("../README.md")]
    pub struct TestsReadme;
    #[doc = include_str!("../../docs/writing-a-connector.md")]
    pub struct ConnectorGuide;
}
