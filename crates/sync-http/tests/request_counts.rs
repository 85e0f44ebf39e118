//! `HttpClient::request_counts`: keys by method and path template, retries counted,
//! clones sharing counts, `with_own_request_counts` counting apart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use sync_http::{
    HttpClient, HttpTransport, RetryPolicy, TransportError, TransportErrorKind, TransportRequest,
    TransportResponse,
};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn policy() -> RetryPolicy {
    RetryPolicy::default()
        .with_max_attempts(3)
        .with_delays(Duration::from_millis(100), Duration::from_secs(1))
        .with_jitter(0.0)
}

fn client(server: &MockServer) -> HttpClient {
    HttpClient::builder(server.uri())
        .retry_policy(policy())
        .without_timeouts()
        .build()
        .unwrap()
}

fn counts(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

#[tokio::test(start_paused = true)]
async fn counts_by_method_and_template_with_retries_and_without_query() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/items"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    // Two 503s, then a success: three attempts went out.
    Mock::given(method("POST"))
        .and(path("/v1/search"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/search"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/users/42"))
        .respond_with(ResponseTemplate::new(404))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/users/43"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;

    let c = client(&server);
    c.get("/v1/items?limit=10").send().await.unwrap();
    c.get("/v1/items")
        .query(&[("after", "x")])
        .send()
        .await
        .unwrap();
    let r = c.post("/v1/search").idempotent(true).send().await.unwrap();
    assert_eq!(r.attempts(), 3);
    // Ids in the path stay out of the key when the caller names a template; a failed
    // request still counts.
    for id in ["42", "43"] {
        let _ = c
            .get(&format!("/v1/users/{id}"))
            .log_path("/v1/users/{id}")
            .send()
            .await;
    }

    assert_eq!(
        c.request_counts(),
        counts(&[
            ("GET /v1/items", 2),
            ("GET /v1/users/{id}", 2),
            ("POST /v1/search", 3),
        ])
    );
}

#[tokio::test]
async fn clones_share_counts_and_own_counts_start_apart() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let c = client(&server);
    let clone = c.clone();
    let own = c.with_own_request_counts();
    let own_clone = own.clone();

    c.get("/a").send().await.unwrap();
    clone.get("/a").send().await.unwrap();
    own.get("/b").send().await.unwrap();
    own_clone.get("/b").send().await.unwrap();

    assert_eq!(c.request_counts(), counts(&[("GET /a", 2)]));
    assert_eq!(clone.request_counts(), counts(&[("GET /a", 2)]));
    assert_eq!(own.request_counts(), counts(&[("GET /b", 2)]));
    assert_eq!(own_clone.request_counts(), counts(&[("GET /b", 2)]));
}

/// Fails every request with a fixed transport error kind.
#[derive(Debug)]
struct Failing {
    kind: TransportErrorKind,
    calls: Mutex<u32>,
}

#[async_trait]
impl HttpTransport for Failing {
    async fn send(&self, _: TransportRequest) -> Result<TransportResponse, TransportError> {
        *self.calls.lock().unwrap() += 1;
        Err(TransportError::new(self.kind, "scripted failure"))
    }
}

#[tokio::test(start_paused = true)]
async fn attempts_that_never_left_do_not_count_but_timeouts_do() {
    for (kind, expected) in [
        (TransportErrorKind::Connect, None),
        (TransportErrorKind::Timeout, Some(3)),
        (TransportErrorKind::Network, Some(3)),
    ] {
        let transport = Arc::new(Failing {
            kind,
            calls: Mutex::new(0),
        });
        let c = HttpClient::builder("http://127.0.0.1:9")
            .retry_policy(policy())
            .transport(transport.clone())
            .build()
            .unwrap();
        let e = c.get("/v1/me").send().await.unwrap_err();
        assert_eq!(e.attempts(), 3, "{kind:?}");
        assert_eq!(*transport.calls.lock().unwrap(), 3, "{kind:?}");
        let want = expected.map_or_else(BTreeMap::new, |n| counts(&[("GET /v1/me", n)]));
        assert_eq!(c.request_counts(), want, "{kind:?}");
    }
}
