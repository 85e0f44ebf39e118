//! `X-Cativa-Signature` parsing and verification: any header, body and clock.
#![no_main]

use cativa_client::webhook::{SignatureHeader, SignatureVerifier, sign};
use libfuzzer_sys::fuzz_target;
use secrecy::SecretString;

fuzz_target!(|data: &[u8]| {
    // The header is the text before the first NUL, the body what follows.
    let (header, body) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(header) = std::str::from_utf8(header) else {
        return;
    };
    if let Ok(parsed) = SignatureHeader::parse(header) {
        // Whatever parsed must survive a debug print (it is logged).
        let _ = format!("{parsed:?}");
    }
    let secret = SecretString::from("whsec_fuzz");
    let Ok(verifier) = SignatureVerifier::new(secret.clone()) else {
        return;
    };
    let now = 1_700_000_000;
    // A fuzzed header verifies only if it carries the genuine MAC of its own timestamp.
    if let Ok(ok) = verifier.verify(Some(header), body, now) {
        let genuine = sign(&secret, ok.timestamp, body);
        let mac = genuine.rsplit("v1=").next().unwrap_or_default();
        assert!(header.contains(mac), "{header:?} verified without the MAC");
    }
    // The genuine signature always verifies.
    let genuine = sign(&secret, now, body);
    assert!(verifier.verify(Some(&genuine), body, now).is_ok());
});
