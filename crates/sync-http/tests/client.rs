//! HttpClient against wiremock: request shape, decoding, error kinds, retries under a
//! paused clock, rate limiting, token refresh, redaction.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use http::{HeaderMap, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use sync_http::{
    AccessToken, ApiErrorInfo, ErrorKind, HttpClient, HttpClientBuilder, HttpError, HttpTransport,
    RateLimit, RateLimiter, RefreshingToken, ReqwestSettings, ReqwestTransport, RetryPolicy,
    TokenProvider, TokenSource, TransportError, TransportRequest, TransportResponse,
};
use tokio::time::Instant;
use wiremock::matchers::{body_json, header, header_exists, method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const KEY: &str = "test-key-0123456789";

fn policy() -> RetryPolicy {
    RetryPolicy::default()
        .with_max_attempts(4)
        .with_delays(Duration::from_millis(100), Duration::from_secs(2))
        .with_max_elapsed(Duration::from_secs(120))
        .with_max_retry_after(Duration::from_secs(60))
        .with_jitter(0.0)
}

fn builder(server: &MockServer) -> HttpClientBuilder {
    HttpClient::builder(server.uri())
        .bearer(SecretString::from(KEY))
        .user_agent("test-crate", "9.9.9")
        .retry_policy(policy())
        .without_timeouts()
}

fn client(server: &MockServer) -> HttpClient {
    builder(server).build().unwrap()
}

#[tokio::test]
async fn get_sends_auth_user_agent_query_and_decodes_json() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/items"))
        .and(query_param("limit", "10"))
        .and(query_param("after", "a b&c"))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .and(header(
            "user-agent",
            format!("test-crate/9.9.9 sync-http/{}", env!("CARGO_PKG_VERSION")).as_str(),
        ))
        .and(header("x-extra", "1"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("x-hubspot-ratelimit-remaining", "99")
                .set_body_json(json!({"items": [1, 2, 3]})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let c = builder(&server)
        .default_header("x-extra", "1")
        .build()
        .unwrap();
    let resp = c
        .get("/v1/items")
        .query(&[("limit", "10"), ("after", "a b&c")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.attempts(), 1);
    assert_eq!(resp.header("x-hubspot-ratelimit-remaining"), Some("99"));
    let v: serde_json::Value = resp.json().unwrap();
    assert_eq!(v, json!({"items": [1, 2, 3]}));
}

#[tokio::test]
async fn post_sends_json_body_and_idempotency_key() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/base/v1/things"))
        .and(header("content-type", "application/json"))
        .and(header("idempotency-key", "k-1"))
        .and(body_json(json!({"name": "x"})))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": "t1"})))
        .expect(1)
        .mount(&server)
        .await;
    let c = HttpClient::builder(format!("{}/base", server.uri()))
        .without_timeouts()
        .build()
        .unwrap();
    #[derive(serde::Deserialize)]
    struct Created {
        id: String,
    }
    let created: Created = c
        .post("/v1/things")
        .idempotency_key("k-1")
        .json(&json!({"name": "x"}))
        .send_json()
        .await
        .unwrap();
    assert_eq!(created.id, "t1");
}

#[tokio::test]
async fn form_bodies_are_url_encoded() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(wiremock::matchers::body_string(
            "grant_type=refresh_token&refresh_token=a%2Bb",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .expect(1)
        .mount(&server)
        .await;
    client(&server)
        .post("/oauth/token")
        .form(&[("grant_type", "refresh_token"), ("refresh_token", "a+b")])
        .send()
        .await
        .unwrap();
}

async fn error_for(status: u16, body: serde_json::Value) -> HttpError {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/x"))
        .respond_with(ResponseTemplate::new(status).set_body_json(body))
        .expect(1)
        .mount(&server)
        .await;
    client(&server)
        .get("/x?secret=query")
        .send()
        .await
        .unwrap_err()
}

#[tokio::test]
async fn error_statuses_map_to_kinds_and_are_not_retried() {
    let body =
        json!({"message": "nope", "category": "CAT", "code": "CODE", "correlationId": "corr-9"});
    let cases = [
        (400, ErrorKind::Invalid),
        (401, ErrorKind::Auth),
        (403, ErrorKind::Forbidden),
        (404, ErrorKind::NotFound),
        (409, ErrorKind::Conflict),
        (422, ErrorKind::Invalid),
        (500, ErrorKind::Server),
    ];
    for (status, kind) in cases {
        // `expect(1)` on the mock proves there was no retry.
        let e = error_for(status, body.clone()).await;
        assert_eq!(e.kind(), kind, "status {status}");
        assert_eq!(e.status().map(|s| s.as_u16()), Some(status));
        assert_eq!(e.code(), Some("CODE"));
        assert_eq!(e.category(), Some("CAT"));
        assert_eq!(e.correlation_id(), Some("corr-9"));
        assert_eq!(e.message(), "nope");
        assert_eq!(e.attempts(), 1);
        assert_eq!(
            e.path(),
            Some("/x"),
            "the logged path carries no query string"
        );
        assert!(!e.is_retryable() || kind == ErrorKind::Server);
        let text = e.to_string();
        assert!(
            text.contains(&status.to_string()) && text.contains("corr-9"),
            "{text}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn retry_after_on_429_is_honoured_on_virtual_time() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/limited"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "7"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/limited"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true})))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);
    let start = Instant::now();
    let resp = c.get("/limited").send().await.unwrap();
    let elapsed = start.elapsed();
    assert_eq!(resp.attempts(), 2);
    assert!(elapsed >= Duration::from_secs(7), "waited {elapsed:?}");
    assert!(elapsed < Duration::from_secs(8), "waited {elapsed:?}");
}

#[tokio::test(start_paused = true)]
async fn retry_after_as_http_date_on_503_is_honoured() {
    let server = MockServer::start().await;
    let at = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(20));
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503).insert_header("retry-after", at.as_str()))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let start = Instant::now();
    let resp = client(&server).get("/d").send().await.unwrap();
    assert_eq!(resp.attempts(), 2);
    // The date has one-second resolution and wall time moved a little meanwhile.
    let elapsed = start.elapsed();
    assert!(
        elapsed >= Duration::from_secs(18) && elapsed <= Duration::from_secs(20),
        "{elapsed:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn server_errors_back_off_exponentially_then_give_up() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(502))
        .expect(4)
        .mount(&server)
        .await;
    let start = Instant::now();
    let e = client(&server).get("/flaky").send().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Server);
    assert_eq!(e.attempts(), 4);
    // 100 + 200 + 400 ms, no jitter.
    assert_eq!(start.elapsed(), Duration::from_millis(700));
}

#[tokio::test(start_paused = true)]
async fn retry_after_longer_than_the_cap_gives_up_rate_limited() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "3600"))
        .expect(1)
        .mount(&server)
        .await;
    let start = Instant::now();
    let e = client(&server).get("/daily").send().await.unwrap_err();
    assert_eq!(
        e.kind(),
        ErrorKind::RateLimited {
            retry_after: Some(Duration::from_secs(3600))
        }
    );
    assert_eq!(e.retry_after(), Some(Duration::from_secs(3600)));
    assert_eq!(start.elapsed(), Duration::ZERO, "no waiting in-process");

    // A 503 asking for too long a wait is also surfaced as rate limited.
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503).insert_header("retry-after", "600"))
        .expect(1)
        .mount(&server)
        .await;
    let e = client(&server).get("/maint").send().await.unwrap_err();
    assert_eq!(e.retry_after(), Some(Duration::from_secs(600)));
}

#[tokio::test(start_paused = true)]
async fn post_is_retried_only_when_idempotent() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/once"))
        .respond_with(ResponseTemplate::new(503))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/safe"))
        .respond_with(ResponseTemplate::new(503))
        .expect(4)
        .mount(&server)
        .await;
    let c = client(&server);
    let e = c.post("/once").json(&json!({})).send().await.unwrap_err();
    assert_eq!(e.attempts(), 1);
    let e = c
        .post("/safe")
        .json(&json!({}))
        .idempotent(true)
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.attempts(), 4);
}

#[tokio::test(start_paused = true)]
async fn timeouts_are_classified_and_retried_for_gets() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_millis(300)))
        .mount(&server)
        .await;
    let c = builder(&server)
        .request_timeout(Some(Duration::from_secs(5)))
        .retry_policy(policy().with_max_attempts(2))
        .build()
        .unwrap();
    let e = c.get("/slow").send().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout);
    assert_eq!(e.attempts(), 2);
    assert!(e.is_retryable());
}

#[tokio::test]
async fn connection_refused_is_a_network_error() {
    // Bind then drop a listener so the port is (very likely) closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let c = HttpClient::builder(format!("http://127.0.0.1:{port}"))
        .retry_policy(RetryPolicy::none())
        .build()
        .unwrap();
    let e = c.post("/x").send().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Network);
    assert!(e.is_retryable());
    assert!(e.status().is_none());
}

#[tokio::test]
async fn undecodable_success_body_is_a_decode_error() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_string("{not json"))
        .mount(&server)
        .await;
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Me {
        id: String,
    }
    let e = client(&server)
        .get("/me")
        .send_json::<Me>()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Decode);
    assert!(!e.is_retryable());
}

#[tokio::test]
async fn custom_error_decoder_refines_kind_and_retryability() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(403).set_body_json(json!([{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "TotalRequests Limit exceeded."}])))
        .expect(1)
        .mount(&server)
        .await;
    let decoder = |status: StatusCode, headers: &HeaderMap, body: &[u8]| -> ApiErrorInfo {
        let mut info =
            sync_http::ErrorDecoder::decode(&sync_http::JsonErrorDecoder, status, headers, body);
        if info.code.as_deref() == Some("REQUEST_LIMIT_EXCEEDED") {
            info.kind = Some(ErrorKind::RateLimited { retry_after: None });
            info.retryable = Some(false);
        }
        info
    };
    let c = builder(&server)
        .error_decoder(Arc::new(decoder))
        .build()
        .unwrap();
    let e = c.get("/q").send().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RateLimited { retry_after: None });
    assert_eq!(e.code(), Some("REQUEST_LIMIT_EXCEEDED"));
    assert!(!e.is_retryable());
    assert_eq!(e.attempts(), 1);
}

#[tokio::test]
async fn secrets_in_api_messages_are_redacted() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(400).set_body_json(
            json!({"message": format!("bad header Authorization: Bearer {KEY}; raw key {KEY}")}),
        ))
        .mount(&server)
        .await;
    let e = client(&server).get("/x").send().await.unwrap_err();
    let shown = format!("{e} {e:?}");
    assert!(!shown.contains(KEY), "{shown}");
    assert!(shown.contains("Bearer [redacted]"), "{shown}");
}

#[derive(Debug)]
struct Recording {
    inner: ReqwestTransport,
    sent_at: Mutex<Vec<Instant>>,
}

#[async_trait]
impl HttpTransport for Recording {
    async fn send(&self, request: TransportRequest) -> Result<TransportResponse, TransportError> {
        self.sent_at.lock().unwrap().push(Instant::now());
        self.inner.send(request).await
    }
}

fn recording() -> Arc<Recording> {
    let settings = ReqwestSettings::default()
        .with_connect_timeout(None)
        .with_pool_idle_timeout(None);
    Arc::new(Recording {
        inner: ReqwestTransport::new(settings).unwrap(),
        sent_at: Mutex::new(Vec::new()),
    })
}

#[tokio::test(start_paused = true)]
async fn rate_limiter_never_exceeds_its_budget_across_clones() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200))
        .expect(23)
        .mount(&server)
        .await;
    let transport = recording();
    let limit = RateLimit::new(5, Duration::from_secs(1)).with_burst(3);
    let c = builder(&server)
        .rate_limit(limit)
        .transport(transport.clone())
        .build()
        .unwrap();
    let start = Instant::now();
    let tasks: Vec<_> = (0..23)
        .map(|i| {
            let c = c.clone(); // clones share the limiter
            tokio::spawn(async move { c.get(&format!("/r/{i}")).send().await.unwrap() })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let times = transport.sent_at.lock().unwrap().clone();
    assert_eq!(times.len(), 23);
    let period = limit.period();
    // GCRA: within any span of length T at most `burst + T / period` requests go out.
    for i in 0..times.len() {
        for j in i..times.len() {
            let span = times[j] - times[i];
            let allowed = u128::from(limit.burst) + span.as_nanos() / period.as_nanos();
            assert!(
                (j - i + 1) as u128 <= allowed,
                "{} requests in {span:?}",
                j - i + 1
            );
        }
    }
    // And it used the budget: 23 requests at 5/s with a burst of 3 take 4 s.
    assert_eq!(start.elapsed(), Duration::from_secs(4));
}

#[tokio::test(start_paused = true)]
async fn a_per_request_limiter_adds_to_the_client_budget() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let c = builder(&server)
        .rate_limit(RateLimit::new(100, Duration::from_secs(1)))
        .build()
        .unwrap();
    let search = Arc::new(RateLimiter::new(RateLimit::new(2, Duration::from_secs(1))).unwrap());
    let start = Instant::now();
    for _ in 0..6 {
        c.post("/search")
            .idempotent(true)
            .limiter(search.clone())
            .send()
            .await
            .unwrap();
    }
    // 2 at once, then one every 500 ms.
    assert_eq!(start.elapsed(), Duration::from_secs(2));
}

#[derive(Debug, Default)]
struct Issuer(AtomicU32);

#[async_trait]
impl TokenSource for Issuer {
    async fn fetch_token(&self) -> Result<AccessToken, HttpError> {
        let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(AccessToken::new(
            SecretString::from(format!("tok-{n}")),
            Some(Duration::from_secs(3600)),
        ))
    }
}

#[tokio::test]
async fn a_rejected_token_is_refreshed_once_and_the_request_resent() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(header("authorization", "Bearer tok-1"))
        .respond_with(
            ResponseTemplate::new(401).set_body_json(json!([{"errorCode": "INVALID_SESSION_ID"}])),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(header("authorization", "Bearer tok-2"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let provider = Arc::new(RefreshingToken::new(Issuer::default()));
    let c = HttpClient::builder(server.uri())
        .token_provider(provider.clone())
        .build()
        .unwrap();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move { c.get("/data").send().await.unwrap().attempts() })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), 1, "a refresh is not a retry attempt");
    }
    assert_eq!(
        provider.source().0.load(Ordering::SeqCst),
        2,
        "one fetch, one renewal"
    );
    assert_eq!(provider.token().await.unwrap().expose_secret(), "tok-2");
}

#[tokio::test]
async fn a_second_rejection_is_an_auth_error() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(header_exists("authorization"))
        .respond_with(ResponseTemplate::new(401))
        .expect(2)
        .mount(&server)
        .await;
    let c = HttpClient::builder(server.uri())
        .token_provider(Arc::new(RefreshingToken::new(Issuer::default())))
        .build()
        .unwrap();
    let e = c.get("/data").send().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth);
}

#[tokio::test]
async fn absolute_urls_must_stay_on_the_clients_origin() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/next/page"))
        .and(query_param("cursor", "2"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);
    let next = url::Url::parse(&format!("{}/next/page?cursor=2", server.uri())).unwrap();
    c.request_url(http::Method::GET, next).send().await.unwrap();
    let foreign = url::Url::parse("http://attacker.example/steal").unwrap();
    let e = c
        .request_url(http::Method::GET, foreign)
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
}

#[tokio::test]
async fn segments_are_percent_encoded_on_the_wire() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/users/email/a%20b%2Fc@x.com"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    client(&server)
        .request_segments(http::Method::GET, &["users", "email", "a b/c@x.com"])
        .send()
        .await
        .unwrap();
    let requests: Vec<Request> = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
}

#[tokio::test]
async fn oversized_responses_are_refused_and_requests_debug_without_the_key() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_string("x".repeat(2048)))
        .mount(&server)
        .await;
    #[derive(Debug)]
    struct Spy {
        inner: ReqwestTransport,
        seen: Mutex<Vec<String>>,
    }
    #[async_trait]
    impl HttpTransport for Spy {
        async fn send(
            &self,
            request: TransportRequest,
        ) -> Result<TransportResponse, TransportError> {
            self.seen.lock().unwrap().push(format!("{request:?}"));
            self.inner.send(request).await
        }
    }
    let spy = Arc::new(Spy {
        inner: ReqwestTransport::new(ReqwestSettings::default().with_max_response_bytes(1024))
            .unwrap(),
        seen: Mutex::new(Vec::new()),
    });
    let c = builder(&server)
        .transport(spy.clone())
        .retry_policy(RetryPolicy::none())
        .build()
        .unwrap();
    let e = c.get("/big").send().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Network);
    let seen = spy.seen.lock().unwrap().join("\n");
    assert!(seen.contains("authorization"), "{seen}");
    assert!(!seen.contains(KEY), "{seen}");
}
