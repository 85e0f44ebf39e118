#![allow(clippy::unwrap_used, clippy::expect_used)]
//! API calls by endpoint for run reports: counted under path templates (ids and emails
//! never make new keys), resends counted, and a source and a sink built from one client
//! each counting their own calls.

use std::collections::BTreeMap;

use chrono::{TimeZone, Utc};
use crm_hubspot::{HubSpotClient, HubSpotSink, HubSpotSource, SinkConfig, SourceConfig};
use secrecy::SecretString;
use serde_json::json;
use sync_core::plan::IdempotencyKey;
use sync_core::ports::{Activity, CrmSink, CrmSource};
use sync_core::{CrmRecordId, TenantId};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn client(server: &MockServer) -> HubSpotClient {
    HubSpotClient::builder()
        .base_url(server.uri())
        .access_token(SecretString::from("pat-na1-test"))
        .tier(crm_hubspot::RateLimitTier::Custom {
            requests: 100_000,
            window_ms: 1000,
        })
        .without_timeouts()
        .build()
        .unwrap()
}

fn counts(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

fn contact(id: &str) -> serde_json::Value {
    json!({"id": id, "properties": {"email": format!("c{id}@example.com")}})
}

#[tokio::test(start_paused = true)]
async fn client_counts_by_template_with_rate_limit_resends() {
    let server = MockServer::start().await;
    // One secondly 429 on contact 1, waited out and sent again.
    Mock::given(method("GET"))
        .and(path("/crm/v3/objects/contacts/1"))
        .respond_with(
            ResponseTemplate::new(429).set_body_json(json!({"status": "error",
            "message": "You have reached your secondly limit.", "category": "RATE_LIMITS"})),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path_regex(r"^/crm/v3/objects/contacts/[^/]+$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(contact("1")))
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path_regex(r"^/crm/v3/objects/contacts/\d+$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(contact("2")))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path_regex(r"^/crm/v3/lists/\d+/memberships$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"results": []})))
        .mount(&server)
        .await;
    let c = client(&server);

    c.get_contact("1", &[]).await.unwrap();
    c.get_contact("2", &[]).await.unwrap();
    c.get_contact_by_email("a@example.com", &[]).await.unwrap();
    c.get_contact_by_email("b@example.com", &[]).await.unwrap();
    let props = BTreeMap::from([("firstname".to_owned(), "Jane".to_owned())]);
    c.update_contact("2", &props).await.unwrap();
    c.update_contact("3", &props).await.unwrap();
    c.all_list_members("7").await.unwrap();
    c.all_list_members("8").await.unwrap();

    assert_eq!(
        c.api_calls(),
        counts(&[
            ("GET /crm/v3/lists/{listId}/memberships", 2),
            ("GET /crm/v3/objects/contacts/{contactId}", 3),
            ("GET /crm/v3/objects/contacts/{email}", 2),
            ("PATCH /crm/v3/objects/contacts/{contactId}", 2),
        ])
    );
    // Clones share the counts.
    assert_eq!(c.clone().api_calls(), c.api_calls());
}

#[tokio::test]
async fn source_and_sink_from_one_client_count_apart() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/crm/v3/objects/contacts"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"results": [contact("1")]})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/contacts/batch/read"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(
                json!({"status": "COMPLETE", "results": [contact("1"), contact("2")]}),
            ),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/notes/batch/create"))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(json!({"status": "COMPLETE",
            "results": [{"id": "n1", "properties": {}, "objectWriteTraceId": "t0"}]})),
        )
        .mount(&server)
        .await;
    let shared = client(&server);
    let source = HubSpotSource::new(shared.clone(), SourceConfig::default());
    let sink = HubSpotSink::new(shared.clone(), SinkConfig::default());
    let tenant = TenantId::new("t");

    source.scan(&tenant, None).await.unwrap();
    let ids = [CrmRecordId::hubspot("1"), CrmRecordId::hubspot("2")];
    assert_eq!(source.get_by_ids(&tenant, &ids).await.unwrap().len(), 2);
    let at = Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).unwrap();
    let act = Activity::new(
        CrmRecordId::hubspot("1"),
        "Posted",
        "hello",
        at,
        IdempotencyKey::from_raw("a1"),
    );
    assert!(sink.log_activities(&tenant, &[act]).await.unwrap()[0].is_ok());

    assert_eq!(
        CrmSource::api_calls(&source),
        counts(&[
            ("GET /crm/v3/objects/contacts", 1),
            ("POST /crm/v3/objects/contacts/batch/read", 1),
        ])
    );
    assert_eq!(
        CrmSink::api_calls(&sink),
        counts(&[("POST /crm/v3/objects/notes/batch/create", 1)])
    );
    // The handle they were built from counted none of it: adding the source's and the
    // sink's counts gives each request once.
    assert!(shared.api_calls().is_empty());
    let sent = server.received_requests().await.unwrap().len() as u64;
    let reported: u64 = CrmSource::api_calls(&source)
        .values()
        .chain(CrmSink::api_calls(&sink).values())
        .sum();
    assert_eq!(reported, sent);
}
