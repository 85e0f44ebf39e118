//! Hostile input: oversized webhook bodies refused before any parsing (413), deeply nested
//! JSON and TOML refused without overflowing the stack, and the regressions found by fuzzing
//! (`fuzz/`) kept as tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use cativa_client::webhook::{EventType, SignatureVerifier, WebhookError, WebhookReceiver, sign};
use crm_hubspot::webhook::{
    DEFAULT_MAX_BODY, SignatureVerifier as HubSpotVerifier, WebhookReceiver as HubSpotReceiver,
    parse_batch, v3_signature,
};
use http::HeaderMap;
use secrecy::SecretString;
use sync_core::{Email, SyncConfig};

const NOW: i64 = 1_700_000_000;
const URL: &str = "https://hooks.example.com/webhooks/hubspot";

fn hubspot_receiver() -> HubSpotReceiver {
    HubSpotReceiver::new(
        HubSpotVerifier::new(SecretString::from("hs-client-secret")).with_public_url(URL),
    )
}

fn hubspot_signed(body: &[u8]) -> HeaderMap {
    let t = (NOW * 1000).to_string();
    let mut h = HeaderMap::new();
    h.insert(
        "x-hubspot-signature-v3",
        v3_signature("hs-client-secret", "POST", URL, body, &t)
            .parse()
            .unwrap(),
    );
    h.insert("x-hubspot-request-timestamp", t.parse().unwrap());
    h
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
        .receive(
            "POST",
            None,
            &hubspot_signed(&at_limit),
            &at_limit,
            NOW * 1000,
        )
        .unwrap();
    assert!(d.events.is_empty());
    // One byte more: refused first, even though it is correctly signed and not JSON.
    let over = vec![b'['; DEFAULT_MAX_BODY + 1];
    let e = hubspot_receiver()
        .receive("POST", None, &hubspot_signed(&over), &over, NOW * 1000)
        .unwrap_err();
    assert!(
        matches!(e, crm_hubspot::Error::PayloadTooLarge { size, limit } if size == DEFAULT_MAX_BODY + 1 && limit == DEFAULT_MAX_BODY),
        "{e:?}"
    );
    // With no signature at all, the size still decides first (no work for an attacker).
    let e = hubspot_receiver()
        .receive("POST", None, &HeaderMap::new(), &over, NOW * 1000)
        .unwrap_err();
    assert!(
        matches!(e, crm_hubspot::Error::PayloadTooLarge { .. }),
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
    let e = r.receive(&h, &over, NOW).unwrap_err();
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
                .receive(
                    "POST",
                    None,
                    &hubspot_signed(body.as_bytes()),
                    body.as_bytes(),
                    NOW * 1000,
                )
                .unwrap_err();
            assert!(!matches!(e, crm_hubspot::Error::BadSignature), "{e:?}");
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
            let e = r.receive(&h, body.as_bytes(), NOW).unwrap_err();
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
    ] {
        assert!(Email::parse(bad).is_err(), "{bad:?}");
    }
    let e = Email::parse("  Jane.Doe@Example.COM ").unwrap();
    assert_eq!(Email::parse(e.as_str()).unwrap(), e);
}
