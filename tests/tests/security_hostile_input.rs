//! Hostile input: oversized webhook bodies refused before any parsing (413), deeply nested
//! JSON and TOML refused without overflowing the stack, and the regressions found by fuzzing
//! (`fuzz/`) kept as tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use cativa_client::webhook::{EventType, SignatureVerifier, WebhookError, WebhookReceiver, sign};
use crm_hubspot::webhook::{
    DEFAULT_MAX_BODY, SignatureVerifier as HubSpotVerifier, WebhookReceiver as HubSpotReceiver,
    parse_batch, v3_signature,
};
use std::time::{SystemTime, UNIX_EPOCH};

use http::HeaderMap;
use http::request::Parts;
use secrecy::SecretString;
use sync_core::{Email, SyncConfig};

const NOW: i64 = 1_700_000_000;
const URL: &str = "https://hooks.example.com/webhooks/hubspot";

fn hubspot_receiver() -> HubSpotReceiver {
    HubSpotReceiver::new(
        HubSpotVerifier::new(SecretString::from("hs-client-secret")).with_public_url(URL),
    )
}

/// A request carrying `headers` (the receivers read the method, URI and headers).
fn req(headers: HeaderMap) -> Parts {
    let (mut parts, ()) = http::Request::post("/webhooks/hubspot")
        .body(())
        .unwrap()
        .into_parts();
    parts.headers = headers;
    parts
}

/// The receiver's clock at Unix second `secs`.
fn at(secs: i64) -> SystemTime {
    UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(secs).unwrap())
}

fn hubspot_signed(body: &[u8]) -> Parts {
    let t = (NOW * 1000).to_string();
    let mut h = HeaderMap::new();
    h.insert(
        "x-hubspot-signature-v3",
        v3_signature("hs-client-secret", "POST", URL, body, &t)
            .parse()
            .unwrap(),
    );
    h.insert("x-hubspot-request-timestamp", t.parse().unwrap());
    req(h)
}

fn nested(depth: usize, open: &str, close: &str) -> String {
    let mut s = String::with_capacity(depth * (open.len() + close.len()));
    for _ in 0..depth {
        s.push_str(open);
    }
    for _ in 0..depth {
        s.push_str(close);
    }
    s
}

#[test]
fn hubspot_bodies_over_1_mib_are_refused_with_413_before_verifying_or_parsing() {
    assert_eq!(DEFAULT_MAX_BODY, 1024 * 1024);
    // Exactly the limit: verified and parsed (a valid, if padded, batch).
    let mut at_limit = b"[]".to_vec();
    at_limit.resize(DEFAULT_MAX_BODY, b' ');
    let d = hubspot_receiver()
        .receive(&hubspot_signed(&at_limit), &at_limit, at(NOW))
        .unwrap();
    assert!(d.events.is_empty());
    // One byte more: refused first, even though it is correctly signed and not JSON.
    let over = vec![b'['; DEFAULT_MAX_BODY + 1];
    let e = hubspot_receiver()
        .receive(&hubspot_signed(&over), &over, at(NOW))
        .unwrap_err();
    assert!(
        matches!(e, crm_hubspot::webhook::WebhookError::PayloadTooLarge { size, limit } if size == DEFAULT_MAX_BODY + 1 && limit == DEFAULT_MAX_BODY),
        "{e:?}"
    );
    // With no signature at all, the size still decides first (no work for an attacker).
    let e = hubspot_receiver()
        .receive(&req(HeaderMap::new()), &over, at(NOW))
        .unwrap_err();
    assert!(
        matches!(
            e,
            crm_hubspot::webhook::WebhookError::PayloadTooLarge { .. }
        ),
        "{e:?}"
    );
}

#[test]
fn cativa_bodies_over_1_mib_are_refused_with_413() {
    let s = SecretString::from("whsec_live");
    let r = WebhookReceiver::new(SignatureVerifier::new(s.clone()).unwrap());
    let over = vec![b'{'; 1024 * 1024 + 1];
    let mut h = HeaderMap::new();
    h.insert("x-cativa-signature", sign(&s, NOW, &over).parse().unwrap());
    h.insert("x-cativa-execution-id", "e".parse().unwrap());
    let e = r.receive(&req(h), &over, at(NOW)).unwrap_err();
    assert!(matches!(e, WebhookError::BodyTooLarge { .. }), "{e:?}");
    assert_eq!(e.http_status(), 413);
}

/// Runs `f` on a thread with a small stack (512 KiB, a quarter of a tokio worker's; debug
/// frames included): a parser that recursed once per nesting level, without a depth
/// limit, would overflow it on 100,000 levels and abort the test binary.
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(
            std::env::var("HOSTILE_STACK_KB")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(512)
                * 1024,
        )
        .spawn(f)
        .unwrap()
        .join()
        .unwrap()
}

#[test]
fn deeply_nested_hubspot_batches_are_refused_without_overflow() {
    on_small_stack(|| {
        for (open, close) in [("[", "]"), ("{\"a\":", "}")] {
            let body = nested(100_000, open, close);
            assert!(parse_batch(body.as_bytes()).is_err());
            // Through the receiver, signed: a 400-class error, not a crash.
            let e = hubspot_receiver()
                .receive(&hubspot_signed(body.as_bytes()), body.as_bytes(), at(NOW))
                .unwrap_err();
            assert!(
                !matches!(e, crm_hubspot::webhook::WebhookError::BadSignature),
                "{e:?}"
            );
        }
        // Nesting inside an otherwise valid event.
        let deep = format!(
            r#"[{{"portalId":1,"occurredAt":1,"subscriptionType":"contact.creation","objectId":1,"extra":{}}}]"#,
            nested(50_000, "[", "]")
        );
        let _ = parse_batch(deep.as_bytes());
    });
}

#[test]
fn deeply_nested_cativa_events_are_refused_without_overflow() {
    on_small_stack(|| {
        let s = SecretString::from("whsec_live");
        let r = WebhookReceiver::new(SignatureVerifier::new(s.clone()).unwrap())
            .with_event_type(EventType::UserCreated);
        for body in [
            nested(100_000, "[", "]"),
            format!(
                r#"{{"CustomerId":"c","User":{}}}"#,
                nested(100_000, "{\"a\":", "}")
            ),
        ] {
            let mut h = HeaderMap::new();
            h.insert(
                "x-cativa-signature",
                sign(&s, NOW, body.as_bytes()).parse().unwrap(),
            );
            h.insert("x-cativa-execution-id", "e".parse().unwrap());
            let e = r.receive(&req(h), body.as_bytes(), at(NOW)).unwrap_err();
            assert_eq!(e.http_status(), 400, "{e:?}");
        }
    });
}

#[test]
fn deeply_nested_configuration_is_refused_without_overflow() {
    on_small_stack(|| {
        let json = format!(
            r#"{{"badge_rules":[{{"id":"a","grant":"B","when":{}}}]}}"#,
            nested(100_000, r#"{"not":"#, "}")
        );
        assert!(SyncConfig::from_json_str(&json).is_err());
        let toml = format!("x = {}", nested(100_000, "[", "]"));
        assert!(SyncConfig::from_toml_str(&toml).is_err());
        let toml = format!("x = {}", nested(100_000, "{a=", "}"));
        assert!(SyncConfig::from_toml_str(&toml).is_err());
    });
}

#[test]
fn hostile_emails_are_refused_or_normalized() {
    let long = format!("{}@example.com", "a".repeat(1_000_000));
    assert!(Email::parse(&long).is_err(), "longer than RFC 5321 allows");
    for bad in [
        "",
        "@",
        "a@",
        "@b",
        "a@@b.com",
        "a b@c.com",
        "a@b.com\r\nBcc: x@y.com",
        "a@exa\0mple.com",
        "a@exa\u{1b}[31mmple.com",
        // Invisible characters make look-alikes of another address.
        "jane\u{200B}@example.com",
        "jane@exa\u{202E}mple.com",
        "\u{FEFF}jane@example.com",
        "ja\u{2060}ne@example.com",
        "ja\u{00AD}ne@example.com",
    ] {
        assert!(Email::parse(bad).is_err(), "{bad:?}");
    }
    let e = Email::parse("  Jane.Doe@Example.COM ").unwrap();
    assert_eq!(Email::parse(e.as_str()).unwrap(), e);
}

const CUSTOMER: &str = "8c1f0b7e-1111-2222-3333-444455556666";
const USER: &str = "0b7e8c1f-aaaa-4bbb-8ccc-000000000001";

/// Hostile identifiers over HTTP, against the service's routes: an email with an invisible
/// character, a 60 KB execution id, a 100 KB `User.Id`, an id that is not a GUID, two
/// `X-Cativa-Signature` headers, a signed body with a key repeated. Each is refused with
/// 400 (the 60 KB header already by the service's header limit, with 431
/// `headers_too_large`) and a JSON error (a stable code, a bounded message without
/// internals, a request id),
/// and nothing reaches the store (no ledger entry, no mapping row).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_identifiers_are_refused_with_400_over_http_and_store_nothing() {
    use cativa_crm_sync_tests::{answer_code, leaks_internals};
    use std::sync::Arc;
    use sync_core::ports::{DeliveryLedger, MappingStore};
    let secret = SecretString::from("whsec_live");
    let store = Arc::new(sync_core::MemoryStore::new());
    let tenant = sync_core::TenantId::new("acme");
    let engine =
        sync_engine::SyncEngine::builder(SyncConfig::default().validate().unwrap(), store.clone())
            .build();
    let service = sync_service::Service::builder(engine, tenant.clone())
        .cativa(WebhookReceiver::new(
            SignatureVerifier::new(secret.clone()).unwrap(),
        ))
        .build();
    let app = sync_service::router(&service);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/webhooks/cativa/user_created",
        listener.local_addr().unwrap()
    );
    let server = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    let client = sync_http::tls::client().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let body_with = |user: &str, email: &str| {
        format!(r#"{{"CustomerId":"{CUSTOMER}","User":{{"Id":"{user}","Email":"{email}"}}}}"#)
    };
    let long_exec = "e".repeat(60 * 1024);
    let long_user = "u".repeat(100 * 1024);
    // (case, body, execution id, extra signature header)
    let cases: Vec<(&str, String, &str, Option<String>)> = vec![
        (
            "zero-width space",
            body_with(USER, "jane\\u200b@example.com"),
            "x-1",
            None,
        ),
        (
            "right-to-left override",
            body_with(USER, "jane@exa\\u202emple.com"),
            "x-2",
            None,
        ),
        (
            "BOM",
            body_with(USER, "\\ufeffjane@example.com"),
            "x-3",
            None,
        ),
        (
            "60 KB execution id",
            body_with(USER, "jane@example.com"),
            &long_exec,
            None,
        ),
        (
            "100 KB User.Id",
            body_with(&long_user, "jane@example.com"),
            "x-4",
            None,
        ),
        (
            "User.Id not a GUID",
            body_with("u-1", "jane@example.com"),
            "x-5",
            None,
        ),
        (
            "Email twice",
            format!(
                r#"{{"CustomerId":"{CUSTOMER}","User":{{"Id":"{USER}","Email":"jane@example.com","Email":"evil@example.com"}}}}"#
            ),
            "x-6",
            None,
        ),
        (
            "two signatures",
            body_with(USER, "jane@example.com"),
            "x-7",
            Some(sign(&SecretString::from("whsec_forged"), now, b"x")),
        ),
    ];
    for (case, body, exec, extra_signature) in cases {
        let mut req = client
            .post(&url)
            .header("x-cativa-signature", sign(&secret, now, body.as_bytes()))
            .header("x-cativa-execution-id", exec)
            .body(body.clone());
        if let Some(extra) = extra_signature {
            req = req.header("x-cativa-signature", extra);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        let header_limit = sync_service::ServiceOptions::default()
            .http
            .max_header_bytes;
        let expected = if exec.len() > header_limit { 431 } else { 400 };
        assert_eq!(status, expected, "{case}: {text}");
        let code = answer_code(&text).unwrap_or_else(|| panic!("{case}: {text}"));
        assert!(
            !code.is_empty()
                && code.len() < 40
                && code.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
            "{case}: a stable code: {text}"
        );
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let message = v["message"].as_str().unwrap();
        assert!(
            !message.is_empty() && message.len() < 1_000,
            "{case}: a bounded message: {message}"
        );
        assert!(!leaks_internals(message), "{case}: {message}");
        assert!(!store.has_delivery(&tenant, exec).await.unwrap(), "{case}");
    }
    for email in ["jane@example.com", "evil@example.com"] {
        assert!(
            store
                .mapping_by_email(&tenant, &Email::parse(email).unwrap())
                .await
                .unwrap()
                .is_none(),
            "{email}"
        );
    }
    // The same delivery, clean, is accepted.
    let body = body_with(USER, "jane@example.com");
    let r = client
        .post(&url)
        .header("x-cativa-signature", sign(&secret, now, body.as_bytes()))
        .header("x-cativa-execution-id", "x-ok")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(
        answer_code(&r.text().await.unwrap()).as_deref(),
        Some("accepted")
    );
    assert!(store.has_delivery(&tenant, "x-ok").await.unwrap());
    server.abort();
}

/// The same guarantees over HTTP, through the service's shared Cativa route: 413 before
/// parsing, 400 for nesting, 401 for stale, future or forged signatures, each with a JSON
/// error whose stable code says what was wrong and whose message shows no internals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_answers_hostile_requests_over_http() {
    use cativa_crm_sync_tests::leaks_internals;
    use std::sync::Arc;
    let max_body_bytes = sync_service::ServiceOptions::default().http.max_body_bytes;
    let secret = SecretString::from("whsec_live");
    let engine = sync_engine::SyncEngine::builder(
        SyncConfig::default().validate().unwrap(),
        Arc::new(sync_core::MemoryStore::new()),
    )
    .build();
    let service = sync_service::Service::builder(engine, sync_core::TenantId::new("acme"))
        .cativa(
            WebhookReceiver::new(SignatureVerifier::new(secret.clone()).unwrap())
                .with_event_type(EventType::UserCreated),
        )
        .build();
    let app = sync_service::router(&service);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhooks/cativa", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    let client = sync_http::tls::client().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let post = |body: Vec<u8>, signed_at: i64, key: &SecretString| {
        let signature = sign(key, signed_at, &body);
        client
            .post(&url)
            .header("x-cativa-signature", signature)
            .header(
                "x-cativa-execution-id",
                format!("e-{signed_at}-{}", body.len()),
            )
            .body(body)
            .send()
    };
    // (status, error code, message); the message never shows internals.
    let error_of = |r: reqwest::Response| async move {
        let status = r.status().as_u16();
        let v: serde_json::Value = r.json().await.unwrap();
        assert!(v["request_id"].is_string(), "{v}");
        let message = v["message"].as_str().unwrap_or_default().to_owned();
        assert!(!leaks_internals(&message), "{v}");
        let code = v["error"].as_str().unwrap_or_default().to_owned();
        (status, code, message)
    };

    let (status, code, e) = error_of(
        post(vec![b'{'; max_body_bytes + 1], now, &secret)
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, code.as_str()), (413, "body_too_large"), "{e}");
    assert!(e.contains("limit"), "{e}");

    let deep = nested(100_000, "[", "]").into_bytes();
    let (status, code, e) = error_of(post(deep, now, &secret).await.unwrap()).await;
    assert_eq!(status, 400, "{code}: {e}");
    assert!(!code.is_empty(), "{e}");

    let good = format!(
        r#"{{"CustomerId":"{CUSTOMER}","User":{{"Id":"{USER}","Email":"u1@example.com"}}}}"#
    )
    .into_bytes();
    for (signed_at, key) in [
        (now - 3_600, &secret),
        (now + 3_600, &secret),
        (now, &SecretString::from("whsec_someone_else")),
    ] {
        let (status, code, e) = error_of(post(good.clone(), signed_at, key).await.unwrap()).await;
        assert_eq!(status, 401, "t={signed_at}: {code}: {e}");
        assert!(
            code == "timestamp_out_of_range" || code == "signature_invalid",
            "t={signed_at}: {code}: {e}"
        );
        assert!(!e.is_empty());
    }
    let r = post(good, now, &secret).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    server.abort();
}
