//! Load: the production service (`sync_service::Service::serve`: the hardened routes with
//! their limits, timeouts and request ids, the hyper server and the background drainer)
//! over a SQLite file store, driven on loopback by 32 concurrent connections with 50,000 signed `user_received_badge` deliveries, plus a share
//! sent twice (Cativa's retries). Checks zero lost and zero double-applied, and reports
//! throughput and latency percentiles.
//!
//! ```sh
//! cargo bench -p cativa-crm-sync-benches --bench webhook_load
//! LOAD_DELIVERIES=10000 LOAD_CONNECTIONS=16 cargo bench -p cativa-crm-sync-benches --bench webhook_load
//! # PostgreSQL, and two service instances on one database (connections split between them):
//! scripts/with-postgres.sh sh -c 'LOAD_DATABASE_URL=$SYNC_TEST_POSTGRES_URL cargo bench -p cativa-crm-sync-benches --bench webhook_load'
//! scripts/with-postgres.sh sh -c 'LOAD_DATABASE_URL=$SYNC_TEST_POSTGRES_URL LOAD_INSTANCES=2 cargo bench -p cativa-crm-sync-benches --bench webhook_load'
//! ```
//!
//! Bounded in count (`LOAD_DELIVERIES`, default 50,000) and time (`LOAD_MAX_SECS`, default
//! 300: the run fails rather than hang). Target on 2 cores: at least 5,000 deliveries/s and
//! p99 under 50 ms. Not run by CI.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cativa_client::webhook::{SignatureVerifier, WebhookReceiver, sign};
use futures::StreamExt;
use secrecy::SecretString;
use sync_core::TenantId;
use sync_core::ports::Store;
use sync_engine::SyncEngine;
use sync_service::Service;
use sync_store::SqliteStore;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A `user_received_badge` body as Cativa documents it: the nested `User` (same shape as in
/// `user_created`) holding the badge, and no event-name field: the route says which event.
fn body(i: u64) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "CustomerId": "5a4d0b0c-0000-4000-8000-c0ffee000001",
        "User": {
            "Id": format!("00000000-0000-4000-8000-{i:012}"),
            "Email": format!("member{i}@example.com"),
            "FirstName": "Load",
            "LastName": format!("Member {i}"),
            "BadgeId": "b0000000-0000-4000-8000-000000000001",
            "Badges": ["b0000000-0000-4000-8000-000000000001"]
        }
    }))
    .unwrap()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    let deliveries = env_or("LOAD_DELIVERIES", 50_000);
    let connections = env_or("LOAD_CONNECTIONS", 32) as usize;
    let max_secs = env_or("LOAD_MAX_SECS", 300);
    // One delivery in 20 is sent a second time, as Cativa retries a slow acknowledgement.
    let resend_every = 20;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let instances = env_or("LOAD_INSTANCES", 1).max(1) as usize;
    let database = std::env::var("LOAD_DATABASE_URL").ok();
    rt.block_on(async move {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = dir.path().join("load.db");
        // A tenant of its own per run, so runs on a kept PostgreSQL database do not meet.
        let run_id = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
        let tenant = TenantId::new(format!("load-{run_id}"));
        let secret = SecretString::from("whsec_load_test_secret");
        // Each instance is a service of its own with its own pool, as separate processes
        // sharing one database would be.
        let mut urls = Vec::new();
        let mut servers = Vec::new();
        let mut store: Option<Arc<dyn Store>> = None;
        for _ in 0..instances {
            let s: Arc<dyn Store> = match &database {
                Some(url) => sync_store::connect(url).await.unwrap(),
                None => Arc::new(SqliteStore::open(&sqlite).await.unwrap()),
            };
            store.get_or_insert_with(|| s.clone());
            let engine = SyncEngine::builder(
                sync_core::SyncConfig::default().validate().unwrap(),
                s,
            )
            .build();
            let service = Service::builder(engine, tenant.clone())
                .cativa(WebhookReceiver::new(
                    SignatureVerifier::new(secret.clone()).unwrap(),
                ))
                .build();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            servers.push((
                stop,
                tokio::spawn(service.serve(listener, async {
                    let _ = stopped.await;
                })),
            ));
            urls.push(format!("http://{addr}/webhooks/cativa/user_received_badge"));
        }
        let store = store.unwrap();
        let client = sync_http::tls::client_builder()
            .pool_max_idle_per_host(connections)
            .build()
            .unwrap();

        // The work list: every delivery, and the resends right after their first send.
        let mut work: Vec<u64> = Vec::with_capacity(deliveries as usize * 21 / 20);
        for i in 0..deliveries {
            work.push(i);
            if i % resend_every == 0 {
                work.push(i);
            }
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let started = Instant::now();
        let deadline = started + Duration::from_secs(max_secs);
        let results: Vec<(u64, Result<String, String>, Duration)> =
            futures::stream::iter(work.into_iter().enumerate().map(|(n, i)| {
                let client = client.clone();
                let url = urls[n % urls.len()].clone();
                let secret = secret.clone();
                async move {
                    let b = body(i);
                    let signature = sign(&secret, now, &b);
                    let t = Instant::now();
                    let send = || {
                        client
                            .post(&url)
                            .header("content-type", "application/json")
                            .header("x-cativa-signature", signature.clone())
                            .header("x-cativa-execution-id", format!("exec-{i}"))
                            .body(b.clone())
                            .send()
                    };
                    let mut r = send().await;
                    // A resend overlapping its first copy is answered 409 `in_progress`:
                    // the sender retries, as Cativa does.
                    for _ in 0..100 {
                        match &r {
                            Ok(resp) if resp.status() == reqwest::StatusCode::CONFLICT => {
                                tokio::time::sleep(Duration::from_millis(5)).await;
                                r = send().await;
                            }
                            _ => break,
                        }
                    }
                    let r = match r {
                        Ok(resp) if resp.status().is_success() => {
                            let v: serde_json::Value = resp.json().await.unwrap_or_default();
                            Ok(v["status"].as_str().unwrap_or_default().to_owned())
                        }
                        Ok(resp) => Err(format!(
                            "{} {}",
                            resp.status(),
                            resp.text().await.unwrap_or_default()
                        )),
                        Err(e) => Err(e.to_string()),
                    };
                    (i, r, t.elapsed())
                }
            }))
            .buffer_unordered(connections)
            .take_while(|_| futures::future::ready(Instant::now() < deadline))
            .collect()
            .await;
        let elapsed = started.elapsed();
        // A graceful stop: in-flight requests finish, the background work ends.
        for (stop, server) in servers {
            let _ = stop.send(());
            server.await.unwrap().unwrap();
        }

        let sent = results.len() as u64;
        let expected_sent = deliveries + deliveries.div_ceil(resend_every);
        assert_eq!(sent, expected_sent, "the run hit LOAD_MAX_SECS ({max_secs} s)");
        let mut accepted: HashMap<u64, u32> = HashMap::new();
        let mut duplicates = 0u64;
        let mut errors = Vec::new();
        let mut latencies: Vec<Duration> = Vec::with_capacity(results.len());
        for (i, r, d) in results {
            latencies.push(d);
            match r {
                Ok(s) if s == "accepted" => *accepted.entry(i).or_default() += 1,
                Ok(s) if s == "duplicate" => duplicates += 1,
                Ok(s) => errors.push(format!("{i}: status {s:?}")),
                Err(e) => errors.push(format!("{i}: {e}")),
            }
        }
        let lost = (0..deliveries).filter(|i| !accepted.contains_key(i)).count();
        let doubled = accepted.values().filter(|n| **n > 1).count();
        // The ledger holds every delivery (durably: a new store on the file would see it).
        let mut missing_in_ledger = 0;
        for i in 0..deliveries {
            if !store
                .has_delivery(&tenant, &format!("exec-{i}"))
                .await
                .unwrap()
            {
                missing_in_ledger += 1;
            }
        }
        latencies.sort_unstable();
        let rate = sent as f64 / elapsed.as_secs_f64();
        println!(
            "webhook_load ({}, {instances} instance(s)): {sent} requests ({deliveries} deliveries + {} resends) over {connections} connections in {:.2} s",
            if database.is_some() { "PostgreSQL" } else { "SQLite" },
            sent - deliveries,
            elapsed.as_secs_f64()
        );
        println!(
            "  throughput {rate:.0}/s; latency p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            percentile(&latencies, 0.50).as_secs_f64() * 1e3,
            percentile(&latencies, 0.90).as_secs_f64() * 1e3,
            percentile(&latencies, 0.99).as_secs_f64() * 1e3,
            percentile(&latencies, 1.0).as_secs_f64() * 1e3,
        );
        println!(
            "  lost {lost}, double-applied {doubled}, duplicates acknowledged {duplicates}, errors {}, missing from the ledger {missing_in_ledger}",
            errors.len()
        );
        assert!(errors.is_empty(), "errors: {:?}", &errors[..errors.len().min(5)]);
        assert_eq!(lost, 0, "lost deliveries");
        assert_eq!(doubled, 0, "double-applied deliveries");
        assert_eq!(duplicates, sent - deliveries, "every resend acknowledged as a duplicate");
        assert_eq!(missing_in_ledger, 0);
        let target = rate >= 5_000.0 && percentile(&latencies, 0.99) < Duration::from_millis(50);
        println!(
            "  target (>= 5,000/s, p99 < 50 ms): {}",
            if target { "met" } else { "NOT met" }
        );
    });
}
