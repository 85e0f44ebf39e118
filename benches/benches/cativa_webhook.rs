//! Verifying and parsing signed 1 KB `user_created` deliveries (target: at least 100,000
//! per second on one core).

use std::hint::black_box;

use cativa_client::webhook::{CativaEvent, EventType, SignatureVerifier, WebhookReceiver, sign};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use secrecy::SecretString;
use serde_json::json;

const NOW: i64 = 1_763_900_000;

/// A realistic `user_created` body padded to about 1 KB with fields a receiver ignores.
fn body() -> Vec<u8> {
    let user = json!({
        "Id": "0b6c7c1e-5f5a-4c1e-9c43-2f1d9a8e7b61",
        "Email": "mary.jane.watson@example-customer.com.br",
        "FirstName": "Mary Jane",
        "LastName": "Watson",
        "DisplayName": "Mary Jane Watson",
        "Username": "maryjanewatson",
        "PhoneNumber": "+5511987654321",
        "CreatedAt": "2026-11-20T10:00:00.000Z",
        "BadgeId": null,
        "Badges": []
    });
    let mut v = json!({
        "CustomerId": "8c1f0b7e-1111-2222-3333-444455556666",
        "UserId": "0b6c7c1e-5f5a-4c1e-9c43-2f1d9a8e7b61",
        "Email": "mary.jane.watson@example-customer.com.br",
        "FirstName": "Mary Jane",
        "LastName": "Watson",
        "DisplayName": "Mary Jane Watson",
        "Username": "maryjanewatson",
        "PhoneNumber": "+5511987654321",
        "CreatedAt": "2026-11-20T10:00:00.000Z",
        "User": user,
        "Source": "public_signup_form",
        "Locale": "pt-BR",
    });
    let mut pad = String::new();
    while serde_json::to_vec(&v).map(|b| b.len()).unwrap_or(0) < 1000 {
        pad.push_str("utm=community-launch;");
        v["Tracking"] = json!(pad);
    }
    serde_json::to_vec(&v).unwrap_or_default()
}

fn bench(c: &mut Criterion) {
    let secret = SecretString::from("whsec_bench_secret_0123456789");
    let Ok(verifier) = SignatureVerifier::new(secret.clone()) else {
        return;
    };
    let receiver = WebhookReceiver::new(verifier).with_event_type(EventType::UserCreated);
    let body = body();
    let (mut parts, ()) = http::Request::new(()).into_parts();
    let headers = &mut parts.headers;
    if let (Ok(sig), Ok(exec)) = (
        sign(&secret, NOW, &body).parse(),
        "4f9d2c3a-0e1b-4b8e-a1d2-6c7e8f9a0b1c".parse(),
    ) {
        headers.insert("x-cativa-signature", sig);
        headers.insert("x-cativa-execution-id", exec);
    }
    let now = std::time::UNIX_EPOCH + std::time::Duration::from_secs(NOW.unsigned_abs());
    // Sanity: the delivery verifies and parses.
    assert!(matches!(
        receiver.receive(&parts, &body, now).map(|d| d.event),
        Ok(CativaEvent::UserCreated(_))
    ));
    let mut group = c.benchmark_group("cativa_webhook");
    group.throughput(Throughput::Elements(1));
    group.bench_function(
        format!("verify_and_parse_user_created_{}B", body.len()),
        |b| b.iter(|| black_box(receiver.receive(black_box(&parts), black_box(&body), now))),
    );
    group.bench_function("verify_only", |b| {
        b.iter(|| {
            black_box(
                receiver.verifier().verify(
                    parts
                        .headers
                        .get("x-cativa-signature")
                        .and_then(|v| v.to_str().ok()),
                    &body,
                    NOW,
                ),
            )
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
