//! `connect` + `check` against the sandbox on 127.0.0.1 (and wiremock where the sandbox
//! lacks something): every problem is reported at once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;

use sync_sandbox::hubspot::HubSpotConfig;
use sync_sandbox::{SandboxConfig, SandboxServer};
use sync_service::{Error, Problem, ServiceConfig, check, connect, start};

struct Env {
    _dir: tempfile::TempDir,
    vars: HashMap<String, String>,
}

impl Env {
    fn new(hubspot_url: &str, cativa_url: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("sync.db").to_string_lossy().into_owned();
        let vars = [
            ("HUBSPOT_BASE_URL", hubspot_url),
            ("HUBSPOT_TOKEN", sync_sandbox::hubspot::DEFAULT_ACCESS_TOKEN),
            ("HUBSPOT_CLIENT_SECRET", "hubspot-app-secret"),
            ("CATIVA_BASE_URL", cativa_url),
            ("CATIVA_API_KEY", sync_sandbox::cativa::DEFAULT_API_KEY),
            ("CATIVA_WEBHOOK_SECRET", "cativa-webhook-secret"),
            ("SYNC_DATABASE_URL", db.as_str()),
            ("SYNC_INSTANCE_ID", "test-instance"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        Self { _dir: dir, vars }
    }

    fn set(mut self, k: &str, v: &str) -> Self {
        self.vars.insert(k.to_owned(), v.to_owned());
        self
    }

    fn config(&self) -> ServiceConfig {
        ServiceConfig::from_lookup(None, |k| self.vars.get(k).cloned()).unwrap()
    }
}

async fn sandbox(hubspot: HubSpotConfig) -> SandboxServer {
    SandboxServer::start(SandboxConfig::default().with_hubspot(hubspot))
        .await
        .unwrap()
}

fn env_for(sb: &SandboxServer) -> Env {
    Env::new(sb.hubspot().base_url(), sb.cativa().base_url())
}

fn problems(e: Error) -> Vec<Problem> {
    match e {
        Error::Startup(p) => p,
        other => panic!("expected a start-up refusal, got {other}"),
    }
}

#[tokio::test]
async fn connect_and_check_pass_against_the_sandbox_creating_what_is_missing() {
    let sb = sandbox(HubSpotConfig::default()).await;
    let env = env_for(&sb).set("SYNC_CREATE_PROPERTIES", "true");
    let config = env.config();
    let connected = connect(&config).await.unwrap();
    assert_eq!(connected.engine.options().worker_id, "test-instance");
    assert!(connected.cativa_receiver.is_some() && connected.hubspot_receiver.is_some());
    let report = check(&connected, &config).await.unwrap();
    assert_eq!(report.created, vec!["cativa_user_id", "cativa_badges"]);
    assert!(report.unchecked.is_empty(), "{:?}", report.unchecked);
    assert!(
        report.passed.iter().any(|p| p.contains("scopes")),
        "{:?}",
        report.passed
    );
    let names: Vec<String> = sb
        .hubspot()
        .properties()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert!(names.iter().any(|n| n == "cativa_user_id"), "{names:?}");

    // Now that they exist, a start without create_properties passes and builds the service.
    let plain_env = env_for(&sb);
    let plain = plain_env.config();
    let service = start(&plain).await.unwrap();
    assert_eq!(service.tenant().as_str(), "default");
    // The start-up check recorded the connection with the portal the token reaches.
    let status = service.status().await.unwrap();
    assert_eq!(status.connection.ok, Some(true), "{:?}", status.connection);
    assert_eq!(
        status.account_id,
        Some(sb.hubspot().portal_id().to_string()),
        "the status names the HubSpot portal"
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn a_missing_property_refuses_start_naming_it_and_the_scope() {
    let sb = sandbox(HubSpotConfig::default()).await;
    let env = env_for(&sb);
    let config = env.config();
    let connected = connect(&config).await.unwrap();
    let found = problems(check(&connected, &config).await.unwrap_err());
    let user_id = found
        .iter()
        .find(|p| p.message.contains("cativa_user_id"))
        .unwrap_or_else(|| panic!("{found:?}"));
    assert_eq!(user_id.check, "crm_property");
    assert!(
        user_id.message.contains("crm.schemas.contacts.write"),
        "{user_id}"
    );
    assert!(found.iter().any(|p| p.message.contains("cativa_badges")));
    assert!(
        sb.hubspot()
            .properties()
            .iter()
            .all(|p| p.name != "cativa_user_id"),
        "nothing created without create_properties"
    );
    let shown = start(&config).await.unwrap_err().to_string();
    assert!(
        shown.contains("cativa_user_id") && shown.contains("refusing to start"),
        "{shown}"
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn a_token_without_the_schema_write_scope_cannot_create_properties() {
    let scopes = [
        "crm.objects.contacts.read",
        "crm.objects.contacts.write",
        "crm.schemas.contacts.read",
    ];
    let sb = sandbox(HubSpotConfig::default().with_scopes(scopes)).await;
    let env = env_for(&sb).set("SYNC_CREATE_PROPERTIES", "true");
    let config = env.config();
    let connected = connect(&config).await.unwrap();
    let found = problems(check(&connected, &config).await.unwrap_err());
    assert!(
        found.iter().any(|p| p.message.contains("cativa_user_id")
            && p.message
                .contains("lacks the scope crm.schemas.contacts.write")),
        "{found:?}"
    );

    let sb2 = sandbox(HubSpotConfig::default().with_scopes(["crm.objects.contacts.read"])).await;
    let env = env_for(&sb2).set("SYNC_CREATE_PROPERTIES", "true");
    let config = env.config();
    let connected = connect(&config).await.unwrap();
    let found = problems(check(&connected, &config).await.unwrap_err());
    let scopes = found.iter().find(|p| p.check == "hubspot_scopes").unwrap();
    assert!(
        scopes.message.contains("crm.objects.contacts.write"),
        "{scopes}"
    );
    sb.shutdown().await;
    sb2.shutdown().await;
}

#[tokio::test]
async fn a_wrong_cativa_key_and_a_wrong_hubspot_token_are_both_reported() {
    let sb = sandbox(HubSpotConfig::default()).await;
    let env = env_for(&sb)
        .set("CATIVA_API_KEY", "cativa_pk_wrong_key")
        .set("HUBSPOT_TOKEN", "pat-na1-wrong-token-0000");
    let config = env.config();
    let connected = connect(&config).await.unwrap();
    let found = problems(check(&connected, &config).await.unwrap_err());
    let checks: Vec<&str> = found.iter().map(|p| p.check).collect();
    assert!(checks.contains(&"cativa_credentials"), "{found:?}");
    assert!(checks.contains(&"hubspot_credentials"), "{found:?}");
    let shown = Error::Startup(found).to_string();
    assert!(
        !shown.contains("wrong_key") && !shown.contains("wrong-token"),
        "{shown}"
    );
    sb.shutdown().await;
}

#[tokio::test]
async fn a_token_info_404_is_noted_not_refused() {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let sb = sandbox(HubSpotConfig::default()).await;
    let hubspot = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth/v2/private-apps/get/access-token-info"))
        .respond_with(ResponseTemplate::new(404).set_body_json(serde_json::json!({
            "status": "error", "message": "not found", "correlationId": "c", "category": "OBJECT_NOT_FOUND"
        })))
        .mount(&hubspot)
        .await;
    let property = |name: &str, kind: &str, field: &str| {
        serde_json::json!({"name": name, "label": name, "type": kind, "fieldType": field,
                           "groupName": "contactinformation", "description": "", "options": []})
    };
    Mock::given(method("GET"))
        .and(path("/crm/v3/properties/contacts"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(serde_json::json!({"results": [
                property("email", "string", "text"),
                property("cativa_tags", "enumeration", "checkbox"),
                property("cativa_user_id", "string", "text"),
                property("cativa_badges", "enumeration", "checkbox"),
            ]})),
        )
        .mount(&hubspot)
        .await;
    let env = Env::new(&hubspot.uri(), sb.cativa().base_url());
    let config = env.config();
    let connected = connect(&config).await.unwrap();
    let report = check(&connected, &config).await.unwrap();
    assert!(
        report
            .unchecked
            .iter()
            .any(|u| u.contains("HubSpot scopes")),
        "{report:?}"
    );
    sb.shutdown().await;
}

fn salesforce_env(sb: &SandboxServer) -> Env {
    let mut env = Env::new("", sb.cativa().base_url());
    env.vars.remove("HUBSPOT_BASE_URL");
    env.vars.remove("HUBSPOT_CLIENT_SECRET");
    env.set("SALESFORCE_LOGIN_URL", sb.salesforce().base_url())
        .set(
            "SALESFORCE_CLIENT_ID",
            sync_sandbox::salesforce::DEFAULT_CLIENT_ID,
        )
        .set(
            "SALESFORCE_REFRESH_TOKEN",
            sync_sandbox::salesforce::DEFAULT_REFRESH_TOKEN,
        )
}

#[tokio::test]
async fn salesforce_credentials_and_tags_field_are_checked() {
    let sb = sandbox(HubSpotConfig::default()).await;
    let env = salesforce_env(&sb);
    let config = env.config();
    let connected = connect(&config).await.unwrap();
    assert!(connected.salesforce.is_some() && connected.hubspot.is_none());
    let report = check(&connected, &config).await.unwrap();
    assert!(
        report
            .passed
            .iter()
            .any(|p| p.contains("Contact.Cativa_Tags__c")),
        "{report:?}"
    );
    assert!(!report.unchecked.is_empty(), "says what is not checked");

    let env = salesforce_env(&sb).set("SALESFORCE_TAGS_FIELD", "Missing_Tags__c");
    let config = env.config();
    let connected = connect(&config).await.unwrap();
    let found = problems(check(&connected, &config).await.unwrap_err());
    assert!(
        found
            .iter()
            .any(|p| p.check == "salesforce" && p.message.contains("Missing_Tags__c")),
        "{found:?}"
    );
    sb.shutdown().await;
}
