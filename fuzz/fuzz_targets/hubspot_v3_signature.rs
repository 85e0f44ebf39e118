//! HubSpot v3 (and legacy) signature checks: any headers, query, body and clock.
#![no_main]

use crm_hubspot::webhook::{SignatureVerifier, v3_signature};
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use secrecy::SecretString;

const URL: &str = "https://hooks.example.com/webhooks/hubspot";

fuzz_target!(|data: &[u8]| {
    // Fields separated by NUL: signature, timestamp, version, query, body.
    let mut parts = data.splitn(5, |&b| b == 0);
    let sig = parts.next().unwrap_or_default();
    let ts = parts.next().unwrap_or_default();
    let version = parts.next().unwrap_or_default();
    let query = parts.next().and_then(|q| std::str::from_utf8(q).ok());
    let body = parts.next().unwrap_or_default();
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("x-hubspot-signature-v3", sig),
        ("x-hubspot-request-timestamp", ts),
        ("x-hubspot-signature-version", version),
        ("x-hubspot-signature", sig),
    ] {
        if let Ok(v) = HeaderValue::from_bytes(value) {
            headers.insert(name, v);
        }
    }
    let verifier =
        SignatureVerifier::new(SecretString::from("fuzz-client-secret")).with_public_url(URL);
    let now_ms = 1_700_000_000_000;
    let _ = verifier.verify("POST", query, &headers, body, now_ms);

    // The genuine v3 signature of this body verifies, and only for this body.
    let uri = match query.filter(|q| !q.is_empty()) {
        Some(q) => format!("{URL}?{q}"),
        None => URL.to_owned(),
    };
    let ts = now_ms.to_string();
    let genuine = v3_signature("fuzz-client-secret", "POST", &uri, body, &ts);
    let mut ok = HeaderMap::new();
    ok.insert(
        "x-hubspot-signature-v3",
        HeaderValue::from_str(&genuine).unwrap(),
    );
    ok.insert(
        "x-hubspot-request-timestamp",
        HeaderValue::from_str(&ts).unwrap(),
    );
    let verified = verifier.verify("POST", query, &ok, body, now_ms);
    assert!(verified.is_ok(), "{verified:?}");
    let mut other = body.to_vec();
    other.push(b'x');
    assert!(verifier.verify("POST", query, &ok, &other, now_ms).is_err());
});
