//! Faults: the sandboxes' whole fault mix (429 with Retry-After, 500/502/503/504, slow
//! responses past the client's timeout, dropped and reset connections, truncated JSON, and
//! faults striking after the effect) at 10%, 30% and 50%. The sync converges to the state the
//! rules imply, no effect is applied twice, every request is retried within the policy's
//! bounds, and records that can never succeed are reported one by one without stopping the
//! run. Expired tokens (HubSpot OAuth, Salesforce `INVALID_SESSION_ID`) are refreshed once,
//! however many requests notice at the same time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod rel_support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use cativa_client::CativaClient;
use cativa_client::sink::ApiBadgeSink;
use crm_hubspot::{HubSpotClient, OAuthCredentials, RateLimitTier};
use rel_support::*;
use secrecy::SecretString;
use sha2::{Digest, Sha256};
use sync_core::ports::{CrmSource, MappingStore, Store};
use sync_core::{CativaUserId, Email, Mapping};
use sync_engine::SyncEngine;
use sync_http::{
    HttpTransport, ReqwestSettings, ReqwestTransport, RetryPolicy, TransportError,
    TransportRequest, TransportResponse,
};
use sync_sandbox::cativa::{CativaConfig, DEFAULT_API_KEY};
use sync_sandbox::faults::{FaultConfig, FaultRates};
use sync_sandbox::hubspot::{
    DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_REFRESH_TOKEN, HubSpotConfig,
};

/// HTTP attempts of each client.
const POLICY_ATTEMPTS: u32 = 4;
/// HubSpot's own 429 waits, on top of the policy.
const HUBSPOT_429_RETRIES: u32 = 3;
/// Outbox attempts of the engine.
const ENGINE_ATTEMPTS: u32 = 8;

/// The real transport, counting attempts per identical request (method, URL, body and
/// idempotency key): a retry is the same request sent again.
#[derive(Debug)]
struct CountingTransport {
    inner: ReqwestTransport,
    attempts: Mutex<HashMap<[u8; 32], u32>>,
}

impl CountingTransport {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            inner: ReqwestTransport::new(ReqwestSettings::default()).unwrap(),
            attempts: Mutex::new(HashMap::new()),
        })
    }
    fn max_attempts(&self) -> u32 {
        self.attempts
            .lock()
            .unwrap()
            .values()
            .copied()
            .max()
            .unwrap_or(0)
    }
    /// Starts counting afresh (per run), returning the most attempts of one request so far.
    fn take_max(&self) -> u32 {
        let max = self.max_attempts();
        self.attempts.lock().unwrap().clear();
        max
    }
}

#[async_trait]
impl HttpTransport for CountingTransport {
    async fn send(&self, request: TransportRequest) -> Result<TransportResponse, TransportError> {
        let mut h = Sha256::new();
        h.update(request.method.as_str());
        h.update(request.url.as_str());
        h.update(&request.body);
        if let Some(k) = request.headers.get("idempotency-key") {
            h.update(k.as_bytes());
        }
        *self
            .attempts
            .lock()
            .unwrap()
            .entry(h.finalize().into())
            .or_default() += 1;
        self.inner.send(request).await
    }
}

fn policy() -> RetryPolicy {
    RetryPolicy::default()
        .with_max_attempts(POLICY_ATTEMPTS)
        .with_delays(Duration::from_millis(1), Duration::from_millis(10))
        .with_max_retry_after(Duration::from_millis(50))
}

fn faults(seed: u64, share: f64) -> FaultConfig {
    FaultConfig::seeded(seed)
        .with_rates(FaultRates::mixed(share))
        .with_retry_after(Some(Duration::from_millis(20)))
        // Past the Cativa client's 200 ms timeout; HubSpot's default timeout is long, so
        // there a slow answer is only slow.
        .with_slow_delay(Duration::from_millis(400))
        .with_after_effect(0.3)
}

async fn converges_under(share: f64, seed: u64) {
    let label = format!("{:.0}% faults", share * 100.0);
    let w = world_with(600, seed, HubSpotConfig::default(), CativaConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(&dir.path().join("sync.db")).await;
    seed_mappings(&w, store.as_ref()).await;
    // Tagged contacts mapped to users Cativa has never heard of: a 404 per record, never
    // retryable, which must not stop the others.
    let users: std::collections::HashSet<String> = w
        .cativa
        .users()
        .into_iter()
        .map(|u| u.email.to_lowercase())
        .collect();
    let ghosts: Vec<Mapping> = w
        .hubspot
        .contacts()
        .into_iter()
        .filter(|c| {
            c.properties
                .get(w.hubspot.tags_property())
                .is_some_and(|v| v.split(';').any(|t| t == TAG))
        })
        .filter_map(|c| c.properties.get("email").map(|e| e.trim().to_lowercase()))
        .filter(|e| !users.contains(e))
        .take(5)
        .enumerate()
        .map(|(i, e)| {
            Mapping::new(Email::parse(&e).unwrap(), chrono::Utc::now()).with_user(
                CativaUserId::new(format!("00000000-0000-4000-8000-00000000{i:04}")),
            )
        })
        .collect();
    assert_eq!(ghosts.len(), 5);
    store.put_mappings(&w.tenant, &ghosts).await.unwrap();

    w.hubspot.set_faults(faults(seed, share)).unwrap();
    w.cativa.set_faults(faults(seed ^ 1, share)).unwrap();

    let hubspot_transport = CountingTransport::new();
    let cativa_transport = CountingTransport::new();
    let hubspot = HubSpotClient::builder()
        .base_url(w.hubspot.base_url())
        .access_token(SecretString::from(
            sync_sandbox::hubspot::DEFAULT_ACCESS_TOKEN,
        ))
        .tier(RateLimitTier::Custom {
            requests: 100_000,
            window_ms: 1_000,
        })
        .search_limit(sync_http::RateLimit::new(10_000, Duration::from_secs(1)))
        .retry_policy(policy())
        .rate_limit_retries(HUBSPOT_429_RETRIES, Duration::from_millis(50))
        .transport(hubspot_transport.clone())
        .build()
        .unwrap();
    let cativa = CativaClient::builder(SecretString::from(DEFAULT_API_KEY))
        .base_url(w.cativa.base_url())
        .retry_policy(policy())
        .transport(cativa_transport.clone())
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let mut options = options();
    options.max_attempts = ENGINE_ATTEMPTS;
    let engine = SyncEngine::builder(config(), store.clone() as Arc<dyn Store>)
        .source(Arc::new(source(&w, hubspot)))
        .badge_sink(Arc::new(ApiBadgeSink::new(w.tenant.clone(), cativa)))
        .options(options)
        .build();

    // A run stops on a page that kept failing (500s and truncated bodies are not retried
    // in-process); the next run resumes. Actions the API rate-limited wait out their
    // `not_before` (about a second), so runs are spaced a little.
    let mut runs = 0;
    let (mut hubspot_max, mut cativa_max) = (0, 0);
    let mut failed_records = 0;
    let mut samples = Vec::new();
    loop {
        runs += 1;
        assert!(runs <= 80, "{label}: no convergence after {runs} runs");
        if runs > 1 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let report = engine.run_full_reconcile(&w.tenant).await.unwrap();
        // Retries within bounds, per run: a read is sent at most the policy's attempts plus
        // HubSpot's 429 waits; a write at most the policy's attempts per engine attempt.
        hubspot_max = hubspot_max.max(hubspot_transport.take_max());
        cativa_max = cativa_max.max(cativa_transport.take_max());
        failed_records += report.failed;
        samples.extend(report.failures.clone());
        let counts = sync_core::ports::Outbox::outbox_counts(store.as_ref(), &w.tenant)
            .await
            .unwrap();
        if report.stopped.is_none()
            && report.scan_complete == Some(true)
            && counts.pending + counts.in_flight == 0
            && actual(&w) == expected(&w)
        {
            break;
        }
    }
    assert_eq!(actual(&w), expected(&w), "{label}: final state");
    assert_effects_alternate(&w);
    // The five ghosts, and only they, failed for good; each is named in the report.
    let counts = sync_core::ports::Outbox::outbox_counts(store.as_ref(), &w.tenant)
        .await
        .unwrap();
    assert_eq!(counts.failed, 5, "{label}: {counts:?}");
    assert!(failed_records >= 5, "{label}: {failed_records}");
    assert!(
        samples
            .iter()
            .any(|s| s.error.to_lowercase().contains("not found") || s.error.contains("404")),
        "{label}: {samples:?}"
    );

    assert!(
        hubspot_max <= POLICY_ATTEMPTS + HUBSPOT_429_RETRIES,
        "{label}: a HubSpot request was sent {hubspot_max} times in one run"
    );
    assert!(
        cativa_max <= POLICY_ATTEMPTS * ENGINE_ATTEMPTS,
        "{label}: a Cativa request was sent {cativa_max} times in one run"
    );
    assert!(
        hubspot_max > 1 && cativa_max > 1,
        "{label}: requests were retried"
    );
    let faulted: u64 = w
        .cativa
        .requests()
        .0
        .values()
        .chain(w.hubspot.requests().0.values())
        .map(|s| s.faults.values().sum::<u64>())
        .sum();
    assert!(faulted > 0, "{label}: faults were injected");
    eprintln!(
        "{label}: converged in {runs} runs; {faulted} faults; at most {hubspot_max} HubSpot and {cativa_max} Cativa attempts of one request in a run"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn converges_under_10_percent_faults() {
    converges_under(0.10, 10).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn converges_under_30_percent_faults() {
    converges_under(0.30, 30).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn converges_under_50_percent_faults() {
    converges_under(0.50, 50).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hubspot_oauth_expiry_mid_run_refreshes_once_under_concurrency() {
    let w = world(400, 5).await;
    let client = HubSpotClient::builder()
        .base_url(w.hubspot.base_url())
        .oauth(OAuthCredentials::new(
            DEFAULT_CLIENT_ID,
            SecretString::from(DEFAULT_CLIENT_SECRET),
            SecretString::from(DEFAULT_REFRESH_TOKEN),
        ))
        .tier(RateLimitTier::Custom {
            requests: 100_000,
            window_ms: 1_000,
        })
        .search_limit(sync_http::RateLimit::new(10_000, Duration::from_secs(1)))
        .retry_policy(fast_retries())
        .build()
        .unwrap();
    let src = Arc::new(source(&w, client));
    // Warm up: one token issued.
    src.scan(&w.tenant, None).await.unwrap();
    let issued = w.hubspot.tokens_issued();
    assert_eq!(issued, 1);

    // The token is revoked server-side while 32 reads are about to start: each gets a 401,
    // and exactly one refresh serves them all.
    w.hubspot.expire_tokens();
    let reads = futures::future::join_all((0..32).map(|i| {
        let src = src.clone();
        let tenant = w.tenant.clone();
        let id = sync_core::CrmRecordId::hubspot(w.ids[i].to_string());
        async move { src.get_by_ids(&tenant, &[id]).await }
    }))
    .await;
    for r in &reads {
        assert_eq!(r.as_ref().unwrap().len(), 1, "{r:?}");
    }
    assert_eq!(
        w.hubspot.tokens_issued(),
        issued + 1,
        "one refresh, no storm"
    );

    // And inside an engine run.
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(&dir.path().join("sync.db")).await;
    seed_mappings(&w, store.as_ref()).await;
    let engine = engine_with(
        store,
        src.clone(),
        Arc::new(ApiBadgeSink::new(w.tenant.clone(), cativa_client(&w))),
    );
    w.hubspot.expire_tokens();
    let report = engine.run_full_reconcile(&w.tenant).await.unwrap();
    assert!(report.stopped.is_none(), "{report:?}");
    assert_eq!(w.hubspot.tokens_issued(), issued + 2);
    assert_eq!(actual(&w), expected(&w));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn salesforce_invalid_session_refreshes_once_under_concurrency() {
    use crm_salesforce::{ContactSchema, OAuthFlow, SalesforceClient, SalesforceSource};
    use sync_sandbox::salesforce::{SalesforceConfig, SalesforceSandbox};
    let sandbox = SalesforceSandbox::start(SalesforceConfig::default())
        .await
        .unwrap();
    let people = sandbox
        .seed_generated(
            "Contact",
            &sync_sandbox::datagen::DataGenConfig::default()
                .with_contacts(50)
                .with_duplicate_email_share(0.0),
        )
        .unwrap();
    let client = SalesforceClient::builder()
        .login_url(sandbox.base_url())
        .flow(OAuthFlow::refresh_token(
            sync_sandbox::salesforce::DEFAULT_CLIENT_ID,
            None,
            SecretString::from(sync_sandbox::salesforce::DEFAULT_REFRESH_TOKEN),
        ))
        .retry_policy(fast_retries())
        .build()
        .unwrap();
    let source = Arc::new(SalesforceSource::new(client, ContactSchema::contact()).unwrap());
    let tenant = sync_core::TenantId::new("acme");
    source.scan(&tenant, None).await.unwrap();
    let issued = sandbox.tokens_issued();

    // Sessions invalidated: 32 concurrent queries all see INVALID_SESSION_ID; one refresh.
    sandbox.expire_sessions();
    let emails: Vec<Email> = people
        .iter()
        .take(32)
        .map(|p| Email::parse(&p.email).unwrap())
        .collect();
    let found = futures::future::join_all(emails.iter().map(|e| {
        let source = source.clone();
        let tenant = tenant.clone();
        async move { source.find_by_email(&tenant, e).await }
    }))
    .await;
    for f in &found {
        assert_eq!(f.as_ref().unwrap().len(), 1, "{f:?}");
    }
    assert_eq!(sandbox.tokens_issued(), issued + 1, "one refresh, no storm");
    sandbox.shutdown().await;
}
