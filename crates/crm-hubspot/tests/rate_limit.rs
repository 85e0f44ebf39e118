#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The client-side budget: a 2,000-request burst stays within HubSpot's 100 per rolling
//! 10 s, and search stays within 5 per second (tokio's paused clock, no sockets).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use crm_hubspot::model::{Filter, FilterGroup, Operator, SearchRequest};
use crm_hubspot::{HubSpotClient, RateLimitTier};
use http::{HeaderMap, StatusCode};
use secrecy::SecretString;
use sync_http::{HttpTransport, TransportError, TransportRequest, TransportResponse};
use tokio::time::Instant;

/// Answers every request with an empty contact, recording when it was sent.
#[derive(Debug, Default)]
struct Recorder(Mutex<Vec<(Instant, String)>>);

#[async_trait]
impl HttpTransport for Recorder {
    async fn send(&self, request: TransportRequest) -> Result<TransportResponse, TransportError> {
        self.0
            .lock()
            .unwrap()
            .push((Instant::now(), request.url.path().to_owned()));
        let body = if request.url.path().ends_with("/search") {
            r#"{"total":0,"results":[]}"#
        } else {
            r#"{"id":"1","properties":{}}"#
        };
        Ok(TransportResponse::new(
            StatusCode::OK,
            HeaderMap::new(),
            body.into(),
        ))
    }
}

/// The most requests sent in any closed window of `window`.
fn max_in_window(times: &[Instant], window: Duration) -> usize {
    let mut best = 0;
    let mut lo = 0;
    for hi in 0..times.len() {
        while times[hi] - times[lo] > window {
            lo += 1;
        }
        best = best.max(hi - lo + 1);
    }
    best
}

fn client(t: &Arc<Recorder>, tier: RateLimitTier) -> HubSpotClient {
    HubSpotClient::builder()
        .base_url("http://127.0.0.1:9")
        .access_token(SecretString::from("pat"))
        .tier(tier)
        .transport(Arc::clone(t) as Arc<dyn HttpTransport>)
        .without_timeouts()
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_2000_request_burst_stays_within_100_per_10_seconds() {
    let t = Arc::new(Recorder::default());
    let c = client(&t, RateLimitTier::FreeStarter);
    let start = Instant::now();
    let tasks: Vec<_> = (0..2000)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move { c.get_contact("1", &[]).await.unwrap() })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let times: Vec<Instant> = t.0.lock().unwrap().iter().map(|(i, _)| *i).collect();
    assert_eq!(times.len(), 2000);
    let max = max_in_window(&times, Duration::from_secs(10));
    assert!(max <= 100, "{max} requests in one 10 s window");
    // And the budget is used: at least 90 per window on average.
    let elapsed = start.elapsed();
    assert!(elapsed <= Duration::from_secs(230), "took {elapsed:?}");
}

#[tokio::test(start_paused = true)]
async fn professional_tier_allows_190_per_10_seconds() {
    let t = Arc::new(Recorder::default());
    let c = client(&t, RateLimitTier::ProfessionalEnterprise);
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move { c.get_contact("1", &[]).await.unwrap() })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let times: Vec<Instant> = t.0.lock().unwrap().iter().map(|(i, _)| *i).collect();
    let max = max_in_window(&times, Duration::from_secs(10));
    assert!((171..=190).contains(&max), "{max} in one window");
}

#[tokio::test(start_paused = true)]
async fn search_has_its_own_5_per_second_budget() {
    let t = Arc::new(Recorder::default());
    let c = client(&t, RateLimitTier::ProfessionalEnterprise);
    let req = SearchRequest::new(
        vec![FilterGroup::new(vec![Filter::unary(
            "email",
            Operator::HasProperty,
        )])],
        200,
    );
    let tasks: Vec<_> = (0..60)
        .map(|_| {
            let c = c.clone();
            let req = req.clone();
            tokio::spawn(async move { c.search_contacts(&req).await.unwrap() })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let times: Vec<Instant> = t.0.lock().unwrap().iter().map(|(i, _)| *i).collect();
    assert_eq!(times.len(), 60);
    assert!(max_in_window(&times, Duration::from_secs(1)) <= 5);
}

#[tokio::test(start_paused = true)]
async fn unlimited_tier_sends_everything_at_once_searches_included() {
    let t = Arc::new(Recorder::default());
    let c = client(&t, RateLimitTier::Unlimited);
    assert!(c.rate_limiter().is_none());
    let start = Instant::now();
    let req = SearchRequest::new(
        vec![FilterGroup::new(vec![Filter::unary(
            "email",
            Operator::HasProperty,
        )])],
        200,
    );
    let gets = (0..500).map(|_| {
        let c = c.clone();
        tokio::spawn(async move {
            c.get_contact("1", &[]).await.unwrap();
        })
    });
    let searches = (0..50).map(|_| {
        let c = c.clone();
        let req = req.clone();
        tokio::spawn(async move {
            c.search_contacts(&req).await.unwrap();
        })
    });
    let tasks: Vec<_> = gets.chain(searches).collect();
    for task in tasks {
        task.await.unwrap();
    }
    let times: Vec<Instant> = t.0.lock().unwrap().iter().map(|(i, _)| *i).collect();
    assert_eq!(times.len(), 550);
    // The paused clock only moves when something waits: nothing did.
    assert!(times.iter().all(|&i| i == start), "a request was paced");
}
