//! The webhook routes of [`sync_service::router`]: each Cativa failure answered with its
//! status and a JSON error (a stable code, a message without internals, the request id),
//! 422 for a delivery whose event cannot be determined, the HubSpot v3 signature checked over
//! the public URL, and a shutdown of [`sync_service::Service::serve`] that lets the delivery
//! in flight finish.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use crm_hubspot::{ContactMapping, HubSpotClient, HubSpotSource, SourceConfig, TagSource};
use secrecy::SecretString;
use serde_json::Value;
use sync_core::{MemoryStore, TenantId};
use sync_engine::SyncEngine;
use sync_service::{REQUEST_ID_HEADER, Service, ServiceOptions};
use tower::ServiceExt;

const SECRET: &str = "whsec_test";
const HUBSPOT_URL: &str = "https://hooks.example.com/webhooks/hubspot";
const CUSTOMER: &str = "8c1f0b7e-1111-2222-3333-444455556666";
const CONFIG: &str = r#"
[badges]
Premium = "b0000000-0000-4000-8000-000000000001"

[[badge_rules]]
id = "annual-plan"
grant = "Premium"
when = { tag = "Pago Anual" }
"#;

fn engine() -> SyncEngine {
    let config = sync_core::SyncConfig::from_toml_str(CONFIG)
        .unwrap()
        .validate()
        .unwrap();
    SyncEngine::builder(config, Arc::new(MemoryStore::new())).build()
}

fn hubspot_source(base_url: &str) -> Arc<HubSpotSource> {
    let client = HubSpotClient::builder()
        .base_url(base_url)
        .access_token(SecretString::from("t"))
        .build()
        .unwrap();
    let mapping =
        ContactMapping::default().with_tags(TagSource::CheckboxProperty("cativa_tags".to_owned()));
    Arc::new(HubSpotSource::new(client, SourceConfig::new(mapping)))
}

fn hubspot_receiver(public_url: &str) -> crm_hubspot::webhook::WebhookReceiver {
    crm_hubspot::webhook::WebhookReceiver::new(
        crm_hubspot::webhook::SignatureVerifier::new(SecretString::from(SECRET))
            .with_public_url(public_url),
    )
}

fn cativa_receiver() -> cativa_client::webhook::WebhookReceiver {
    cativa_client::webhook::WebhookReceiver::new(
        cativa_client::webhook::SignatureVerifier::new(SecretString::from(SECRET)).unwrap(),
    )
}

fn app() -> Router {
    // Never called: every HubSpot request here is refused before a contact is read.
    let service = Service::builder(engine(), TenantId::new("t"))
        .cativa(cativa_receiver())
        .hubspot(
            hubspot_receiver(HUBSPOT_URL),
            hubspot_source("http://127.0.0.1:9"),
        )
        .build();
    sync_service::router(&service)
}

/// Whether a message shows internal detail a sender must never see.
fn leaks_internals(text: &str) -> bool {
    [
        "::", "Error {", "Error(", "Some(", "sqlx", "serde", "reqwest", "hyper", "axum",
    ]
    .iter()
    .any(|t| text.contains(t))
}

/// Posts through the router; returns the status and the JSON body, after checking the
/// shape every answer has: the request id in the body and the `x-request-id` header, and for
/// an error a stable code and a message without internals.
async fn post(
    app: &Router,
    path: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let mut req = Request::post(path);
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let header_id = resp
        .headers()
        .get(REQUEST_ID_HEADER)
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    let id = v["request_id"].as_str().unwrap_or_default();
    assert!(!id.is_empty(), "{v}");
    assert_eq!(header_id.as_deref(), Some(id), "{v}");
    if !status.is_success() {
        let code = v["error"].as_str().unwrap();
        assert!(
            !code.is_empty() && code.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
            "a stable code: {v}"
        );
        let message = v["message"].as_str().unwrap();
        assert!(!leaks_internals(message), "{v}");
    }
    (status, v)
}

fn code(v: &Value) -> &str {
    v["error"].as_str().unwrap_or_default()
}

fn message(v: &Value) -> &str {
    v["message"].as_str().unwrap_or_default()
}

/// The clock the routes read (they verify against now), in milliseconds.
fn now_ms() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    i64::try_from(since.as_millis()).unwrap()
}

fn now() -> i64 {
    now_ms() / 1000
}

fn cativa_signed(body: &[u8], t: i64) -> Vec<(&'static str, String)> {
    let secret = SecretString::from(SECRET);
    vec![
        (
            "x-cativa-signature",
            cativa_client::webhook::sign(&secret, t, body),
        ),
        ("x-cativa-execution-id", "exec-1".to_owned()),
    ]
}

fn user_body(user: &str, email: &str) -> Vec<u8> {
    format!(r#"{{"CustomerId":"{CUSTOMER}","User":{{"Id":"{user}","Email":"{email}"}}}}"#)
        .into_bytes()
}

#[tokio::test]
async fn cativa_route_answers_each_failure_with_its_status_and_a_json_error() {
    let app = app();
    let route = "/webhooks/cativa/user_created";
    let user = user_body("0b7e8c1f-aaaa-4bbb-8ccc-000000000001", "jane@example.com");
    let (s, b) = post(&app, route, &cativa_signed(&user, now()), user.clone()).await;
    assert_eq!(
        (s, b["status"].as_str()),
        (StatusCode::OK, Some("accepted"))
    );
    let (s, b) = post(&app, route, &cativa_signed(&user, now()), user.clone()).await;
    assert_eq!(
        (s, b["status"].as_str()),
        (StatusCode::OK, Some("duplicate")),
        "same execution id"
    );

    let (s, b) = post(
        &app,
        route,
        &cativa_signed(&user, now() - 3_600),
        user.clone(),
    )
    .await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::UNAUTHORIZED, "timestamp_out_of_range")
    );
    assert!(message(&b).contains("stale"), "{b}");
    let (s, b) = post(&app, route, &[], user.clone()).await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::UNAUTHORIZED, "signature_missing"),
        "{b}"
    );

    let broken = user_body("0b7e8c1f-aaaa-4bbb-8ccc-000000000002", "not an email");
    let (s, b) = post(&app, route, &cativa_signed(&broken, now()), broken.clone()).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert!(message(&b).contains("User.Email"), "{b}");

    let limit = ServiceOptions::default().http.max_body_bytes;
    let big = vec![b' '; limit + 1];
    let (s, b) = post(&app, route, &cativa_signed(&big, now()), big.clone()).await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large")
    );
    assert!(message(&b).contains("limit"), "{b}");

    let (s, b) = post(
        &app,
        "/webhooks/cativa/user_deleted",
        &cativa_signed(&user, now()),
        user.clone(),
    )
    .await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::NOT_FOUND, "unknown_event"),
        "{b}"
    );
    assert!(message(&b).contains("user_created"), "{b}");
}

#[tokio::test]
async fn an_undetermined_or_incomplete_delivery_is_422_and_never_accepted() {
    let app = app();
    // The documented payload on the shared route, from a listener nobody mapped.
    let user = user_body("0b7e8c1f-aaaa-4bbb-8ccc-000000000003", "ann@example.com");
    let (s, b) = post(
        &app,
        "/webhooks/cativa",
        &cativa_signed(&user, now()),
        user.clone(),
    )
    .await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::UNPROCESSABLE_ENTITY, "unknown_event"),
        "{b}"
    );
    assert!(message(&b).contains("Automation-Id"), "{b}");
    // Any JSON object is not a user_created.
    let hello = br#"{"hello":"world"}"#.to_vec();
    let (s, b) = post(
        &app,
        "/webhooks/cativa/user_created",
        &cativa_signed(&hello, now()),
        hello.clone(),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert!(message(&b).contains("CustomerId"), "{b}");
    // A body naming another event than its route.
    let named = format!(
        r#"{{"Event":"user_joined_group","CustomerId":"{CUSTOMER}","User":{{"Id":"0b7e8c1f-aaaa-4bbb-8ccc-000000000004","Email":"bo@example.com"}}}}"#
    )
    .into_bytes();
    let (s, b) = post(
        &app,
        "/webhooks/cativa/user_created",
        &cativa_signed(&named, now()),
        named.clone(),
    )
    .await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::UNPROCESSABLE_ENTITY, "event_type_mismatch"),
        "{b}"
    );
    assert!(message(&b).contains("mismatch"), "{b}");
}

#[tokio::test]
async fn hubspot_route_checks_the_v3_signature_over_the_public_url() {
    let app = app();
    let body =
        br#"[{"portalId":1,"occurredAt":1,"subscriptionType":"contact.creation","objectId":7}]"#;
    let ts = now_ms().to_string();
    let signed = |url: &str, body: &[u8]| {
        vec![
            (
                "x-hubspot-signature-v3",
                crm_hubspot::webhook::v3_signature(SECRET, "POST", url, body, &ts),
            ),
            ("x-hubspot-request-timestamp", ts.clone()),
        ]
    };
    let (s, b) = post(
        &app,
        "/webhooks/hubspot",
        &signed("http://internal:8080/webhooks/hubspot", body),
        body.to_vec(),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "signed over another URL: {b}");
    let (s, b) = post(&app, "/webhooks/hubspot", &[], body.to_vec()).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{b}");
    let junk = b"{not json";
    let (s, b) = post(
        &app,
        "/webhooks/hubspot",
        &signed(HUBSPOT_URL, junk),
        junk.to_vec(),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert!(b["error"].is_string() && b["message"].is_string(), "{b}");
    let big = vec![b' '; ServiceOptions::default().http.max_body_bytes + 1];
    let (s, b) = post(
        &app,
        "/webhooks/hubspot",
        &signed(HUBSPOT_URL, &big),
        big.clone(),
    )
    .await;
    assert_eq!(
        (s, code(&b)),
        (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large")
    );
}

/// A stand-in for HubSpot's batch read that says when a read arrived and answers only once
/// released: the delivery reading through it stays in flight as long as the test wants.
async fn held_hubspot() -> (
    String,
    Arc<tokio::sync::Notify>,
    tokio::sync::watch::Sender<bool>,
) {
    let entered = Arc::new(tokio::sync::Notify::new());
    let (release, released) = tokio::sync::watch::channel(false);
    let e = entered.clone();
    let fake = Router::new().fallback(move || {
        let (e, mut r) = (e.clone(), released.clone());
        async move {
            e.notify_one();
            let _ = r.wait_for(|go| *go).await;
            axum::Json(serde_json::json!({"status": "COMPLETE", "results": []}))
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, fake).await;
    });
    (url, entered, release)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_the_delivery_in_flight_finish() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let (hubspot_url, entered, release) = held_hubspot().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let public_url = format!("http://{addr}/webhooks/hubspot");
    let service = Service::builder(engine(), TenantId::new("t"))
        .hubspot(hubspot_receiver(&public_url), hubspot_source(&hubspot_url))
        .build();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(service.serve(listener, async {
        let _ = stopped.await;
    }));

    let body =
        br#"[{"portalId":1,"occurredAt":1,"subscriptionType":"contact.creation","objectId":7}]"#;
    let ts = now_ms().to_string();
    let signature = crm_hubspot::webhook::v3_signature(SECRET, "POST", &public_url, body, &ts);
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /webhooks/hubspot HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\nx-hubspot-signature-v3: {signature}\r\nx-hubspot-request-timestamp: {ts}\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();

    // The delivery is reading its contact: shut down now.
    entered.notified().await;
    stop.send(()).unwrap();
    // New connections are refused while the delivery is still held.
    let mut refused = false;
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(refused, "no longer accepting after the shutdown");
    assert!(!server.is_finished(), "the server waits for the delivery");

    release.send(true).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains(r#""status":"accepted""#), "{response}");
    server.await.unwrap().unwrap();
}
