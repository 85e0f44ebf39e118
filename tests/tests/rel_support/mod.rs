//! Shared wiring of the reliability and security tests: the HubSpot and Cativa sandboxes, the
//! SDK's real clients pointed at them, an engine over a SQLite file, and the state the rules
//! imply, computed here independently of the planner.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use cativa_client::CativaClient;
use cativa_client::sink::ApiBadgeSink;
use crm_hubspot::{
    ContactMapping, HubSpotClient, HubSpotSource, RateLimitTier, SourceConfig, TagSource,
};
use secrecy::SecretString;
use sync_core::config::{BadgeRule, Condition, SyncConfig};
use sync_core::ports::Store;
use sync_core::{Email, Mapping, TenantId};
use sync_engine::{EngineOptions, SyncEngine};
use sync_http::RetryPolicy;
use sync_sandbox::cativa::{CativaConfig, CativaSandbox, DEFAULT_API_KEY, DEFAULT_BADGES};
use sync_sandbox::datagen::{DataGenConfig, GeneratedContact, generate};
use sync_sandbox::hubspot::{DEFAULT_ACCESS_TOKEN, HubSpotConfig, HubSpotSandbox};
use sync_sandbox::ratelimit::RateLimits;
use sync_store::SqliteStore;

/// The tag that earns the badge.
pub const TAG: &str = "Pago Anual";
/// The badge it earns (the sandbox's "Premium").
pub const BADGE: &str = DEFAULT_BADGES[0].0;

/// Both sandboxes, seeded.
pub struct World {
    pub tenant: TenantId,
    pub hubspot: HubSpotSandbox,
    pub cativa: CativaSandbox,
    pub people: Vec<GeneratedContact>,
    /// HubSpot contact ids, in `people` order.
    pub ids: Vec<u64>,
}

/// Starts both sandboxes without rate limits and seeds `n` people (no duplicate emails, so
/// the expected state is unambiguous); community members are signed up on Cativa.
pub async fn world(n: usize, seed: u64) -> World {
    world_with(n, seed, HubSpotConfig::default(), CativaConfig::default()).await
}

/// Like [`world`], with sandbox settings.
pub async fn world_with(
    n: usize,
    seed: u64,
    hubspot: HubSpotConfig,
    cativa: CativaConfig,
) -> World {
    let hubspot = HubSpotSandbox::start(hubspot.with_rate_limits(RateLimits::unlimited()))
        .await
        .unwrap();
    let cativa = CativaSandbox::start(cativa.with_rate_limits(RateLimits::unlimited()))
        .await
        .unwrap();
    let people = generate(
        &DataGenConfig::default()
            .with_contacts(n)
            .with_seed(seed)
            .with_duplicate_email_share(0.0),
    );
    let ids = hubspot.seed(&people).unwrap();
    cativa.seed_users(&people);
    World {
        tenant: TenantId::new("acme"),
        hubspot,
        cativa,
        people,
        ids,
    }
}

/// Fast retries: the sandboxes answer on loopback.
pub fn fast_retries() -> RetryPolicy {
    RetryPolicy::default()
        .with_delays(Duration::from_millis(1), Duration::from_millis(20))
        .with_max_retry_after(Duration::from_millis(50))
}

pub fn hubspot_client(w: &World) -> HubSpotClient {
    hubspot_client_at(w.hubspot.base_url())
}

pub fn hubspot_client_at(url: &str) -> HubSpotClient {
    HubSpotClient::builder()
        .base_url(url)
        .access_token(SecretString::from(DEFAULT_ACCESS_TOKEN))
        .tier(RateLimitTier::Custom {
            requests: 100_000,
            window_ms: 1_000,
        })
        .search_limit(sync_http::RateLimit::new(10_000, Duration::from_secs(1)))
        .retry_policy(fast_retries())
        .build()
        .unwrap()
}

pub fn cativa_client(w: &World) -> CativaClient {
    cativa_client_at(w.cativa.base_url())
}

pub fn cativa_client_at(url: &str) -> CativaClient {
    CativaClient::builder(SecretString::from(DEFAULT_API_KEY))
        .base_url(url)
        .retry_policy(fast_retries())
        .build()
        .unwrap()
}

pub fn source(w: &World, client: HubSpotClient) -> HubSpotSource {
    source_with(w.hubspot.tags_property(), client)
}

pub fn source_with(tags_property: &str, client: HubSpotClient) -> HubSpotSource {
    let mapping =
        ContactMapping::default().with_tags(TagSource::CheckboxProperty(tags_property.to_owned()));
    HubSpotSource::new(client, SourceConfig::new(mapping))
}

pub fn config() -> sync_core::ValidatedConfig {
    let mut raw = SyncConfig::default();
    raw.badge_rules = vec![BadgeRule::new("annual", BADGE, Condition::Tag(TAG.into()))];
    raw.validate().unwrap()
}

pub fn options() -> EngineOptions {
    let mut o = EngineOptions::default();
    o.retry_base = Duration::from_millis(1);
    o.retry_max = Duration::from_millis(10);
    o.overlap = chrono::Duration::seconds(1);
    o.log_activities = false;
    o
}

/// An engine over the sandboxes and `store`, reading with `source` (any `CrmSource`).
pub fn engine_with(
    store: Arc<dyn Store>,
    source: Arc<dyn sync_core::ports::CrmSource>,
    badges: Arc<dyn sync_core::ports::BadgeSink>,
) -> SyncEngine {
    SyncEngine::builder(config(), store)
        .source(source)
        .badge_sink(badges)
        .options(options())
        .build()
}

/// The plain engine: HubSpot source, Cativa API badge sink.
pub fn engine(w: &World, store: Arc<dyn Store>) -> SyncEngine {
    let source = Arc::new(source(w, hubspot_client(w)));
    let sink = Arc::new(ApiBadgeSink::new(w.tenant.clone(), cativa_client(w)));
    engine_with(store, source, sink)
}

pub async fn sqlite(path: &Path) -> Arc<SqliteStore> {
    Arc::new(SqliteStore::open(path).await.unwrap())
}

/// The community users known to the store (as after an import of `user_created` events).
pub async fn seed_mappings(w: &World, store: &dyn Store) {
    let now = chrono::Utc::now();
    let mappings: Vec<Mapping> = w
        .cativa
        .users()
        .into_iter()
        .map(|u| Mapping::new(Email::parse(&u.email).unwrap(), now).with_user(u.id.clone().into()))
        .collect();
    store.put_mappings(&w.tenant, &mappings).await.unwrap();
}

/// The badges the rule implies, from the sandboxes' current state: user id -> badges.
pub fn expected(w: &World) -> BTreeMap<String, BTreeSet<String>> {
    let tagged: BTreeSet<String> = w
        .hubspot
        .contacts()
        .into_iter()
        .filter(|c| !c.archived)
        .filter(|c| {
            c.properties
                .get(w.hubspot.tags_property())
                .is_some_and(|v| v.split(';').any(|t| t.trim() == TAG))
        })
        .filter_map(|c| c.properties.get("email").map(|e| e.trim().to_lowercase()))
        .collect();
    w.cativa
        .users()
        .into_iter()
        .map(|u| {
            let mut b = BTreeSet::new();
            if tagged.contains(&u.email.trim().to_lowercase()) {
                b.insert(BADGE.to_owned());
            }
            (u.id, b)
        })
        .collect()
}

/// The badges users hold on the Cativa sandbox.
pub fn actual(w: &World) -> BTreeMap<String, BTreeSet<String>> {
    w.cativa
        .users()
        .into_iter()
        .map(|u| {
            let ids = u.badge_ids().into_iter().collect();
            (u.id, ids)
        })
        .collect()
}

/// Asserts no (user, badge) was granted twice in a row or removed twice in a row through
/// the API: every API effect is a real state change, never a replay.
pub fn assert_effects_alternate(w: &World) {
    use sync_sandbox::cativa::Effect;
    let mut last: BTreeMap<(String, String), bool> = BTreeMap::new();
    for e in w.cativa.effects() {
        let (key, granted) = match e {
            Effect::BadgeGranted { user_id, badge_id } => ((user_id, badge_id), true),
            Effect::BadgeRemoved {
                user_id, badge_id, ..
            } => ((user_id, badge_id), false),
            _ => continue,
        };
        let prev = last.insert(key.clone(), granted);
        assert_ne!(prev, Some(granted), "duplicate effect on {key:?}");
        if prev.is_none() {
            assert!(granted, "first effect on {key:?} is a removal");
        }
    }
}
