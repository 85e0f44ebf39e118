//! The hardening of the served router, over real TCP connections: JSON error bodies with
//! request ids, the header read timeout, the body read timeout, load shedding with 503 and
//! `Retry-After`, and a graceful shutdown that lets the request in flight finish.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use sync_core::{MemoryStore, SyncConfig, TenantId};
use sync_engine::SyncEngine;
use sync_service::{Service, ServiceOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const CONFIG: &str = r#"
[badges]
Premium = "b0000000-0000-4000-8000-000000000001"

[[badge_rules]]
id = "annual-plan"
grant = "Premium"
when = { tag = "Pago Anual" }
"#;

struct Running {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<Result<(), sync_service::Error>>,
}

impl Running {
    async fn shutdown(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.server.await.unwrap().unwrap();
    }
}

async fn start(options: ServiceOptions) -> Running {
    let config = SyncConfig::from_toml_str(CONFIG)
        .unwrap()
        .validate()
        .unwrap();
    let engine = SyncEngine::builder(config, Arc::new(MemoryStore::new())).build();
    let receiver = cativa_client::webhook::WebhookReceiver::new(
        cativa_client::webhook::SignatureVerifier::new(SecretString::from("whsec_test")).unwrap(),
    );
    let service = Service::builder(engine, TenantId::new("t"))
        .cativa(receiver)
        .options(options)
        .build();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(service.serve(listener, async {
        let _ = stopped.await;
    }));
    Running {
        addr,
        stop: Some(stop),
        server,
    }
}

/// Sends raw bytes, reads the whole answer (the connection is closed after it).
async fn exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).into_owned()
}

fn split(response: &str) -> (u16, String, serde_json::Value) {
    let status = response[9..12].parse().unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let json = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {response}"));
    (status, head.to_ascii_lowercase(), json)
}

fn assert_json_error(response: &str, status: u16, code: &str) -> serde_json::Value {
    let (s, head, body) = split(response);
    assert_eq!(s, status, "{response}");
    assert_eq!(body["error"], code, "{response}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{response}"
    );
    let id = body["request_id"].as_str().unwrap();
    assert!(
        head.contains(&format!("x-request-id: {id}")),
        "the header and the body carry the same id: {response}"
    );
    assert!(
        head.contains("content-type: application/json"),
        "{response}"
    );
    body
}

fn get(path: &str, extra: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n{extra}\r\n").into_bytes()
}

#[tokio::test]
async fn every_refusal_has_a_json_body_with_a_request_id() {
    let service = start(ServiceOptions::default()).await;
    let a = service.addr;
    assert_json_error(&exchange(a, &get("/nowhere", "")).await, 404, "not_found");
    assert_json_error(
        &exchange(a, &get("/webhooks/cativa/user_created", "")).await,
        405,
        "method_not_allowed",
    );
    let big = format!(
        "POST /webhooks/cativa/user_created HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
        2 * 1024 * 1024
    );
    assert_json_error(&exchange(a, big.as_bytes()).await, 413, "body_too_large");
    let many: String = (0..150).map(|i| format!("x-h{i}: v\r\n")).collect();
    assert_json_error(
        &exchange(a, &get("/healthz", &many)).await,
        431,
        "headers_too_large",
    );
    let long = format!("x-big: {}\r\n", "a".repeat(20 * 1024));
    assert_json_error(
        &exchange(a, &get("/healthz", &long)).await,
        431,
        "headers_too_large",
    );
    let unknown = exchange(
        a,
        b"POST /webhooks/cativa/user_deleted HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: 2\r\n\r\n{}",
    )
    .await;
    assert_json_error(&unknown, 404, "unknown_event");
    let unsigned = exchange(
        a,
        b"POST /webhooks/cativa/user_created HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: 2\r\n\r\n{}",
    )
    .await;
    assert_json_error(&unsigned, 401, "signature_missing");
    assert_json_error(
        &exchange(
            a,
            b"POST /webhooks/hubspot HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: 2\r\n\r\n[]",
        )
        .await,
        404,
        "not_configured",
    );
    let (s, _, body) = split(&exchange(a, &get("/healthz", "")).await);
    assert_eq!((s, body["status"].as_str()), (200, Some("alive")));
    let (s, _, body) = split(&exchange(a, &get("/readyz", "")).await);
    assert_eq!((s, body["status"].as_str()), (200, Some("ready")), "{body}");
    service.shutdown().await;
}

#[tokio::test]
async fn slow_header_clients_are_dropped_and_do_not_delay_others() {
    let mut options = ServiceOptions::default();
    options.http.header_read_timeout = Duration::from_millis(500);
    let service = start(options).await;
    let mut slow = Vec::new();
    for _ in 0..100 {
        let mut s = TcpStream::connect(service.addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")
            .await
            .unwrap();
        slow.push(s);
    }
    // A normal request is answered while they hang.
    let (s, _, _) = split(&exchange(service.addr, &get("/healthz", "")).await);
    assert_eq!(s, 200);
    // Each slow client is disconnected at the header timeout, without an answer.
    for mut s in slow {
        let mut buf = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf)).await;
        assert!(read.is_ok(), "a slow-header connection was kept open");
        let text = String::from_utf8_lossy(&buf);
        assert!(!text.contains("200 OK"), "{text}");
    }
    service.shutdown().await;
}

#[tokio::test]
async fn a_stalled_body_times_out_and_an_excess_request_is_shed_with_retry_after() {
    let mut options = ServiceOptions::default();
    options.http.body_read_timeout = Duration::from_millis(700);
    options.http.max_concurrency = 1;
    let service = start(options).await;
    // Holds the only slot: headers promise a body that does not come.
    let mut stalled = TcpStream::connect(service.addr).await.unwrap();
    stalled
        .write_all(b"POST /webhooks/cativa/user_created HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: 10\r\n\r\n{")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    let shed = exchange(service.addr, &get("/healthz", "")).await;
    assert_json_error(&shed, 503, "overloaded");
    assert!(
        shed.to_ascii_lowercase().contains("retry-after: 5"),
        "{shed}"
    );
    let mut answer = Vec::new();
    stalled.read_to_end(&mut answer).await.unwrap();
    assert_json_error(&String::from_utf8_lossy(&answer), 408, "body_timeout");
    // The slot is free again.
    let (s, _, _) = split(&exchange(service.addr, &get("/healthz", "")).await);
    assert_eq!(s, 200);
    service.shutdown().await;
}

#[tokio::test]
async fn shutdown_lets_the_request_in_flight_finish_and_stops_accepting() {
    let service = start(ServiceOptions::default()).await;
    let addr = service.addr;
    let mut in_flight = TcpStream::connect(addr).await.unwrap();
    in_flight
        .write_all(b"POST /webhooks/cativa/user_created HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: 2\r\n\r\n{")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let Running { stop, server, .. } = service;
    let _ = stop.unwrap().send(());
    tokio::time::sleep(Duration::from_millis(100)).await;
    in_flight.write_all(b"}").await.unwrap();
    let mut answer = Vec::new();
    in_flight.read_to_end(&mut answer).await.unwrap();
    // Answered (refused for its missing signature), not cut off.
    assert_json_error(&String::from_utf8_lossy(&answer), 401, "signature_missing");
    server.await.unwrap().unwrap();
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "no longer accepting"
    );
}
