#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The private-app token info call: the token goes in the body, the scopes come back; a
//! 404 means the scopes cannot be told, a 401 that the token is refused.

use crm_hubspot::HubSpotClient;
use secrecy::SecretString;
use serde_json::json;
use wiremock::matchers::{body_json, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const PATH: &str = "/oauth/v2/private-apps/get/access-token-info";

fn client(server: &MockServer) -> HubSpotClient {
    HubSpotClient::builder()
        .base_url(server.uri())
        .access_token(SecretString::from("pat-na1-test-token"))
        .without_timeouts()
        .build()
        .unwrap()
}

#[tokio::test]
async fn token_info_reports_the_granted_scopes() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(PATH))
        .and(body_json(json!({"tokenKey": "pat-na1-test-token"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "userId": 7, "hubId": 62515, "appId": 9,
            "scopes": ["crm.objects.contacts.read", "crm.schemas.contacts.write"]
        })))
        .mount(&server)
        .await;
    let info = client(&server)
        .private_app_token_info()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(info.hub_id, Some(62515));
    assert!(info.has_scope("crm.schemas.contacts.write"));
    assert!(!info.has_scope("crm.objects.contacts.write"));
}

#[tokio::test]
async fn a_404_means_unknown_and_a_401_is_an_error() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(PATH))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({
            "status": "error", "message": "not found", "correlationId": "c", "category": "OBJECT_NOT_FOUND"
        })))
        .mount(&server)
        .await;
    assert_eq!(
        client(&server).private_app_token_info().await.unwrap(),
        None
    );

    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(PATH))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "status": "error", "message": "Authentication credentials not found.",
            "correlationId": "c", "category": "INVALID_AUTHENTICATION"
        })))
        .mount(&server)
        .await;
    let e = client(&server).private_app_token_info().await.unwrap_err();
    assert!(
        matches!(e, crm_hubspot::Error::Api(ref a) if a.status == 401),
        "{e}"
    );
}
