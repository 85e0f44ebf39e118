//! OAuth flows, the instance URL, JWT assertions and token renewal.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, TimeZone, Utc};
use common::*;
use crm_salesforce::{Error, JwtBearer, OAuthFlow, SalesforceClient};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use secrecy::SecretString;
use serde_json::json;
use sync_core::RemoteErrorKind;
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

fn form(req: &Request) -> Vec<(String, String)> {
    url::form_urlencoded::parse(&req.body)
        .into_owned()
        .collect()
}

fn field(form: &[(String, String)], name: &str) -> Option<String> {
    form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
}

fn empty_query() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(query_page(vec![], None))
}

#[tokio::test]
async fn refresh_token_flow_learns_the_instance_url_and_sends_the_bearer() {
    let (server, client) = setup().await;
    Mock::given(method("GET"))
        .and(path(format!("{V}/query")))
        .and(header("authorization", "Bearer tok-1"))
        .respond_with(empty_query())
        .expect(1)
        .mount(&server)
        .await;
    client
        .query::<serde_json::Value>("SELECT Id FROM Contact")
        .await
        .unwrap();
    assert_eq!(
        client.instance_url().await.unwrap().as_str(),
        format!("{}/", server.uri())
    );
    let tokens = requests_to(&server, "POST", "/services/oauth2/token").await;
    assert_eq!(tokens.len(), 1);
    let f = form(&tokens[0]);
    assert_eq!(field(&f, "grant_type").as_deref(), Some("refresh_token"));
    assert_eq!(
        field(&f, "refresh_token").as_deref(),
        Some("refresh-secret")
    );
    assert_eq!(field(&f, "client_id").as_deref(), Some("consumer-key"));
    assert_eq!(
        tokens[0]
            .headers
            .get("content-type")
            .unwrap()
            .to_str()
            .unwrap(),
        "application/x-www-form-urlencoded"
    );
}

#[tokio::test]
async fn client_credentials_flow_posts_id_and_secret_to_my_domain() {
    let server = MockServer::start().await;
    mount_tokens(&server).await;
    Mock::given(method("GET"))
        .and(path(format!("{V}/query")))
        .respond_with(empty_query())
        .mount(&server)
        .await;
    let client = builder(&server)
        .flow(OAuthFlow::client_credentials(
            "ck",
            SecretString::from("cs-secret"),
        ))
        .build()
        .unwrap();
    client
        .query::<serde_json::Value>("SELECT Id FROM Contact")
        .await
        .unwrap();
    let f = form(&requests_to(&server, "POST", "/services/oauth2/token").await[0]);
    assert_eq!(
        field(&f, "grant_type").as_deref(),
        Some("client_credentials")
    );
    assert_eq!(field(&f, "client_id").as_deref(), Some("ck"));
    assert_eq!(field(&f, "client_secret").as_deref(), Some("cs-secret"));

    for host in [
        "https://login.salesforce.com",
        "https://test.salesforce.com",
    ] {
        let err = SalesforceClient::builder()
            .login_url(host)
            .flow(OAuthFlow::client_credentials(
                "ck",
                SecretString::from("cs"),
            ))
            .build()
            .unwrap_err();
        assert!(
            matches!(err, Error::MyDomainRequired { .. }),
            "{host}: {err}"
        );
        assert!(err.to_string().contains("my.salesforce.com"), "{err}");
    }
}

#[tokio::test]
async fn a_refused_grant_is_an_auth_error() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/services/oauth2/token"))
        .respond_with(ResponseTemplate::new(400).set_body_json(
            json!({"error": "invalid_grant", "error_description": "expired access/refresh token"}),
        ))
        .mount(&server)
        .await;
    let client = client(&server);
    let err = client
        .query::<serde_json::Value>("SELECT Id FROM Contact")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::OAuth { code, .. } if code == "invalid_grant"),
        "{err:?}"
    );
    let core: sync_core::Error = err.into();
    assert!(core.stops_run(), "{core}");
}

/// 401 until the token is `tok-2` or later.
struct RejectFirstToken(AtomicUsize);

impl Respond for RejectFirstToken {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        self.0.fetch_add(1, Ordering::SeqCst);
        let auth = req.headers.get("authorization").unwrap().to_str().unwrap();
        if auth == "Bearer tok-1" {
            ResponseTemplate::new(401)
                .set_body_json(json!([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]))
        } else {
            ResponseTemplate::new(200)
                .insert_header("Sforce-Limit-Info", "api-usage=42/15000")
                .set_body_json(query_page(vec![], None))
        }
    }
}

#[tokio::test]
async fn token_is_renewed_once_under_20_concurrent_requests() {
    let (server, client) = setup().await;
    Mock::given(method("GET"))
        .and(path(format!("{V}/query")))
        .respond_with(RejectFirstToken(AtomicUsize::new(0)))
        .mount(&server)
        .await;
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let c = client.clone();
            tokio::spawn(async move {
                c.query::<serde_json::Value>(&format!("SELECT Id FROM Contact LIMIT {}", i + 1))
                    .await
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    // One token for the first use, exactly one renewal for all 20 rejections.
    assert_eq!(
        requests_to(&server, "POST", "/services/oauth2/token")
            .await
            .len(),
        2
    );
    assert_eq!(client.token_fetches(), 2);
    let api = requests_to(&server, "GET", &format!("{V}/query")).await;
    let renewed = api
        .iter()
        .filter(|r| r.headers.get("authorization").unwrap() == "Bearer tok-2")
        .count();
    assert_eq!(renewed, 20, "every request retried once with the new token");
    assert!(api.len() <= 40);
    assert_eq!(
        client.last_api_usage().map(|u| (u.used, u.limit)),
        Some((42, 15000))
    );
}

#[tokio::test]
async fn a_second_401_is_an_auth_error() {
    let (server, client) = setup().await;
    Mock::given(method("GET"))
        .and(path(format!("{V}/query")))
        .respond_with(ResponseTemplate::new(401).set_body_json(
            json!([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]),
        ))
        .mount(&server)
        .await;
    let err = client
        .query::<serde_json::Value>("SELECT Id FROM Contact")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("INVALID_SESSION_ID"));
    assert_eq!(err.remote_kind(), RemoteErrorKind::Auth);
    assert_eq!(
        requests_to(&server, "GET", &format!("{V}/query"))
            .await
            .len(),
        2,
        "sent, renewed once, resent"
    );
    assert_eq!(
        requests_to(&server, "POST", "/services/oauth2/token")
            .await
            .len(),
        2
    );
    let core: sync_core::Error = err.into();
    assert!(core.stops_run());
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

/// The claims of a Salesforce JWT bearer assertion, as the token endpoint reads them.
#[derive(Debug, PartialEq, Eq, serde::Deserialize)]
struct JwtClaims {
    iss: String,
    sub: String,
    aud: String,
    exp: i64,
}

/// Verifies an assertion with the public key two ways: jsonwebtoken, and aws-lc directly.
fn verify(assertion: &str, public_pkcs1: &[u8], aud: &str) -> JwtClaims {
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[aud]);
    validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
    // The test clock is fixed in 2026; check expiry by hand below.
    validation.validate_exp = false;
    let data = jsonwebtoken::decode::<JwtClaims>(
        assertion,
        &DecodingKey::from_rsa_der(public_pkcs1),
        &validation,
    )
    .unwrap();
    assert_eq!(data.header.alg, Algorithm::RS256);

    let (signed, sig) = assertion.rsplit_once('.').unwrap();
    let sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, public_pkcs1)
        .verify(signed.as_bytes(), &sig)
        .expect("RS256 signature verifies with the generated public key");
    let mut tampered = signed.as_bytes().to_vec();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    assert!(
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, public_pkcs1)
            .verify(&tampered, &sig)
            .is_err()
    );
    data.claims
}

#[tokio::test]
async fn jwt_bearer_assertions_are_signed_rs256_with_the_right_claims_and_fresh_on_renewal() {
    let key = KeyPair::generate(KeySize::Rsa2048).unwrap();
    let der: Pkcs8V1Der<'static> = key.as_der().unwrap();
    let private_pem = pem("PRIVATE KEY", der.as_ref());
    let public = key.public_key().as_ref().to_vec();

    let now = Arc::new(AtomicI64::new(
        Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0)
            .unwrap()
            .timestamp(),
    ));
    let clock_now = Arc::clone(&now);
    let clock = Arc::new(move || {
        DateTime::<Utc>::from_timestamp(clock_now.load(Ordering::SeqCst), 0).unwrap()
    });

    let server = MockServer::start().await;
    mount_tokens(&server).await;
    Mock::given(method("GET"))
        .and(path(format!("{V}/query")))
        .respond_with(RejectFirstToken(AtomicUsize::new(0)))
        .mount(&server)
        .await;
    let jwt = JwtBearer::from_pem(
        "3MVG9-consumer-key",
        "integration@acme.com",
        private_pem.as_bytes(),
    )
    .unwrap();
    assert!(
        !format!("{jwt:?}").contains("PRIVATE"),
        "Debug hides the key"
    );
    let client = builder(&server)
        .flow(OAuthFlow::JwtBearer(jwt))
        .clock(clock)
        .build()
        .unwrap();

    // First token, then a 401 forces a renewal 30 s later.
    let first_call = client.instance_url().await.unwrap();
    assert_eq!(first_call.as_str(), format!("{}/", server.uri()));
    now.fetch_add(30, Ordering::SeqCst);
    client
        .query::<serde_json::Value>("SELECT Id FROM Contact")
        .await
        .unwrap();

    let token_requests = requests_to(&server, "POST", "/services/oauth2/token").await;
    assert_eq!(token_requests.len(), 2);
    let mut assertions = Vec::new();
    for (i, req) in token_requests.iter().enumerate() {
        let f = form(req);
        assert_eq!(
            field(&f, "grant_type").as_deref(),
            Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
        );
        let assertion = field(&f, "assertion").unwrap();
        // 127.0.0.1 is not a sandbox host: the production audience.
        let claims = verify(&assertion, &public, "https://login.salesforce.com");
        assert_eq!(claims.iss, "3MVG9-consumer-key");
        assert_eq!(claims.sub, "integration@acme.com");
        let minted_at = Utc
            .with_ymd_and_hms(2026, 11, 23, 12, 0, 0)
            .unwrap()
            .timestamp()
            + 30 * i as i64;
        assert!(
            claims.exp > minted_at && claims.exp <= minted_at + 180,
            "exp within 3 minutes"
        );
        assertions.push(assertion);
    }
    assert_ne!(
        assertions[0], assertions[1],
        "a fresh assertion on each renewal"
    );
}

#[test]
fn jwt_audience_override_and_lifetime_cap() {
    let key = KeyPair::generate(KeySize::Rsa2048).unwrap();
    let der: Pkcs8V1Der<'static> = key.as_der().unwrap();
    let jwt = JwtBearer::from_pem("ck", "u@x.com", pem("PRIVATE KEY", der.as_ref()).as_bytes())
        .unwrap()
        .audience("https://test.salesforce.com")
        .lifetime(std::time::Duration::from_secs(3600));
    let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let assertion = jwt.assertion(now).unwrap();
    let c = verify(
        secrecy::ExposeSecret::expose_secret(&assertion),
        key.public_key().as_ref(),
        "https://test.salesforce.com",
    );
    assert_eq!(c.exp - now.timestamp(), 180, "capped at 3 minutes");
    assert_eq!(
        c,
        JwtClaims {
            iss: "ck".into(),
            sub: "u@x.com".into(),
            aud: "https://test.salesforce.com".into(),
            exp: now.timestamp() + 180,
        }
    );
}

#[tokio::test]
async fn api_version_is_configurable_and_queries_are_form_encoded() {
    let server = MockServer::start().await;
    mount_tokens(&server).await;
    let soql = "SELECT Id FROM Contact WHERE SystemModstamp > 2026-01-01T00:00:00Z AND Email = 'o\\'hara@x.com'";
    Mock::given(method("GET"))
        .and(path("/services/data/v61.0/query"))
        .and(query_param("q", soql))
        .respond_with(empty_query())
        .expect(1)
        .mount(&server)
        .await;
    let client = builder(&server).api_version("v61.0").build().unwrap();
    client.query::<serde_json::Value>(soql).await.unwrap();
    let req = &server.received_requests().await.unwrap()[1];
    let raw = req.url.query().unwrap();
    assert!(
        raw.starts_with(
            "q=SELECT+Id+FROM+Contact+WHERE+SystemModstamp+%3E+2026-01-01T00%3A00%3A00Z"
        ),
        "{raw}"
    );
    assert!(raw.contains("%27o%5C%27hara%40x.com%27"), "{raw}");
}

#[tokio::test]
async fn static_access_token_needs_and_uses_the_instance_url() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("{V}/query")))
        .and(header("authorization", "Bearer static-token"))
        .respond_with(empty_query())
        .expect(1)
        .mount(&server)
        .await;
    let client = SalesforceClient::builder()
        .flow(OAuthFlow::AccessToken(SecretString::from("static-token")))
        .instance_url(server.uri())
        .without_timeouts()
        .build()
        .unwrap();
    client
        .query::<serde_json::Value>("SELECT Id FROM Contact")
        .await
        .unwrap();
    assert!(!format!("{client:?}").contains("static-token"));
    assert_eq!(client.token_fetches(), 0);
}

#[test]
fn debug_of_builders_clients_and_errors_never_shows_secrets() {
    let flows = [
        OAuthFlow::client_credentials("ck", SecretString::from("cs-TOP-SECRET")),
        OAuthFlow::refresh_token(
            "ck",
            Some(SecretString::from("cs-TOP-SECRET")),
            SecretString::from("rt-TOP-SECRET"),
        ),
        OAuthFlow::AccessToken(SecretString::from("at-TOP-SECRET")),
    ];
    for flow in flows {
        let builder = SalesforceClient::builder()
            .login_url("https://acme.my.salesforce.com")
            .instance_url("https://acme.my.salesforce.com")
            .flow(flow);
        assert!(!format!("{builder:?}").contains("TOP-SECRET"));
        let client = builder.build().unwrap();
        assert!(!format!("{client:?}").contains("TOP-SECRET"), "{client:?}");
    }
}

/// The PKCS#1 `RSAPrivateKey` inside a PKCS#8 `PrivateKeyInfo`: the content of the
/// `privateKey` OCTET STRING that follows the rsaEncryption `AlgorithmIdentifier`.
fn pkcs1_of(pkcs8: &[u8]) -> Vec<u8> {
    let algorithm = [
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ];
    let at = pkcs8
        .windows(algorithm.len())
        .position(|w| w == algorithm)
        .unwrap()
        + algorithm.len();
    assert_eq!(pkcs8[at], 0x04, "an OCTET STRING follows");
    let (len, start) = match pkcs8[at + 1] {
        0x82 => (
            usize::from(pkcs8[at + 2]) << 8 | usize::from(pkcs8[at + 3]),
            at + 4,
        ),
        0x81 => (usize::from(pkcs8[at + 2]), at + 3),
        n => (usize::from(n), at + 2),
    };
    pkcs8[start..start + len].to_vec()
}

#[test]
fn jwt_keys_load_from_pkcs1_pem_too_and_ec_keys_are_refused() {
    let key = KeyPair::generate(KeySize::Rsa2048).unwrap();
    let der: Pkcs8V1Der<'static> = key.as_der().unwrap();
    let pkcs1 = pem("RSA PRIVATE KEY", &pkcs1_of(der.as_ref()));
    let jwt = JwtBearer::from_pem("ck", "u@x.com", pkcs1.as_bytes()).unwrap();
    let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let assertion = jwt.assertion(now).unwrap();
    let c = verify(
        secrecy::ExposeSecret::expose_secret(&assertion),
        key.public_key().as_ref(),
        "https://login.salesforce.com",
    );
    assert_eq!(c.iss, "ck");

    let ec = aws_lc_rs::signature::EcdsaKeyPair::generate(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
    )
    .unwrap();
    let ec_der = ec.to_pkcs8v1().unwrap();
    let err = JwtBearer::from_pem(
        "ck",
        "u@x.com",
        pem("PRIVATE KEY", ec_der.as_ref()).as_bytes(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("RSA"), "{err}");
}
