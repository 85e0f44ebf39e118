#![allow(clippy::unwrap_used, clippy::expect_used)]
//! HubSpotClient against wiremock: exact requests, pagination, errors, 429 policies.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crm_hubspot::api_error::{Problem, RateLimitPolicy};
use crm_hubspot::model::{
    CreateInput, Direction, Filter, FilterGroup, NoteCreate, Operator, PropertyCreate,
    PropertyOption, SearchRequest, UpdateInput,
};
use crm_hubspot::{Error, HubSpotClient, ListOptions};
use secrecy::SecretString;
use serde_json::json;
use sync_http::RetryPolicy;
use wiremock::matchers::{
    body_json, body_string_contains, header, method, path, query_param, query_param_is_missing,
};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const TOKEN: &str = "pat-na1-00000000-test";

fn client(server: &MockServer) -> HubSpotClient {
    HubSpotClient::builder()
        .base_url(server.uri())
        .access_token(SecretString::from(TOKEN))
        .retry_policy(RetryPolicy::none())
        .without_timeouts()
        .build()
        .unwrap()
}

fn contact(id: u32) -> serde_json::Value {
    json!({"id": id.to_string(), "properties": {"email": format!("c{id}@example.com"), "lastmodifieddate": "2025-12-22T18:16:33.376Z"},
           "createdAt": "2025-12-22T18:16:33.376Z", "updatedAt": "2025-12-22T18:16:33.376Z", "archived": false})
}

#[tokio::test]
async fn list_follows_cursor_to_the_last_page_with_exact_query_and_auth() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/crm/v3/objects/contacts"))
        .and(query_param("limit", "100"))
        .and(query_param("properties", "email,firstname"))
        .and(query_param("archived", "false"))
        .and(query_param_is_missing("after"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "results": [contact(1), contact(2)],
            "paging": {"next": {"after": "3", "link": "https://api.hubapi.com/crm/v3/objects/contacts?after=3"}}})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/crm/v3/objects/contacts"))
        .and(query_param("after", "3"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"results": [contact(3)]})))
        .expect(1)
        .mount(&server)
        .await;
    let all = client(&server)
        .list_all_contacts(ListOptions::new(
            100,
            vec!["email".into(), "firstname".into()],
        ))
        .await
        .unwrap();
    assert_eq!(
        all.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        vec!["1", "2", "3"]
    );
    let ua = server.received_requests().await.unwrap()[0]
        .headers
        .get("user-agent")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(ua.starts_with("crm-hubspot/"), "{ua}");
}

#[tokio::test]
async fn archived_list_and_date_versioned_prefix() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/crm/objects/2026-03/contacts"))
        .and(query_param("archived", "true"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"results": [{"id": "9", "properties": {}, "archived": true, "archivedAt": "2026-01-01T00:00:00Z"}]})))
        .expect(1)
        .mount(&server)
        .await;
    let c = HubSpotClient::builder()
        .base_url(server.uri())
        .access_token(SecretString::from(TOKEN))
        .objects_path_prefix("/crm/objects/2026-03")
        .without_timeouts()
        .build()
        .unwrap();
    let page = c
        .list_contacts(&ListOptions::default().archived(true))
        .await
        .unwrap();
    assert!(page.results[0].archived);
    assert!(page.next_after().is_none());
}

#[tokio::test]
async fn get_by_id_and_by_email_and_missing_is_none() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/crm/v3/objects/contacts/513"))
        .and(query_param("properties", "email"))
        .respond_with(ResponseTemplate::new(200).set_body_json(contact(513)))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/crm/v3/objects/contacts/jon@website.com"))
        .and(query_param("idProperty", "email"))
        .respond_with(ResponseTemplate::new(200).set_body_json(contact(7)))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/crm/v3/objects/contacts/404"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"status":"error","message":"Object not found","category":"OBJECT_NOT_FOUND","correlationId":"x"})))
        .mount(&server)
        .await;
    let c = client(&server);
    assert_eq!(
        c.get_contact("513", &["email".into()])
            .await
            .unwrap()
            .unwrap()
            .id,
        "513"
    );
    assert_eq!(
        c.get_contact_by_email("jon@website.com", &[])
            .await
            .unwrap()
            .unwrap()
            .id,
        "7"
    );
    assert!(c.get_contact("404", &[]).await.unwrap().is_none());
}

#[tokio::test]
async fn search_sends_the_documented_body() {
    let server = MockServer::start().await;
    let expected = json!({
        "filterGroups": [{"filters": [
            {"propertyName": "lastmodifieddate", "operator": "GTE", "value": "1767225600000"},
            {"propertyName": "email", "operator": "HAS_PROPERTY"}]}],
        "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
        "properties": ["email", "firstname", "lastname", "lastmodifieddate"],
        "limit": 200,
        "after": "0"
    });
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/contacts/search"))
        .and(header("content-type", "application/json"))
        .and(body_json(&expected))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"total": 1, "results": [contact(1)], "paging": {"next": {"after": "10"}}}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let mut req = SearchRequest::new(
        vec![FilterGroup::new(vec![
            Filter::new("lastmodifieddate", Operator::Gte, "1767225600000"),
            Filter::unary("email", Operator::HasProperty),
        ])],
        200,
    )
    .sorted_by("lastmodifieddate", Direction::Ascending)
    .with_properties(vec![
        "email".into(),
        "firstname".into(),
        "lastname".into(),
        "lastmodifieddate".into(),
    ]);
    req.after = Some("0".into());
    let page = client(&server).search_contacts(&req).await.unwrap();
    assert_eq!(page.total, Some(1));
    assert_eq!(page.next_after(), Some("10"));
}

#[tokio::test]
async fn search_limits_are_checked_before_any_call() {
    let server = MockServer::start().await;
    let groups = (0..6)
        .map(|_| FilterGroup::new(vec![Filter::unary("email", Operator::HasProperty)]))
        .collect();
    let err = client(&server)
        .search_contacts(&SearchRequest::new(groups, 10))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("5"), "{err}");
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn batch_endpoints_send_exact_bodies() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/contacts/batch/read"))
        .and(query_param("archived", "false"))
        .and(body_json(
            json!({"properties": ["email"], "idProperty": "email", "inputs": [{"id": "a@b.com"}]}),
        ))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"status": "COMPLETE", "results": [contact(1)]})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/contacts/batch/upsert"))
        .and(body_json(json!({"inputs": [{"id": "luke@lukesdiner.com", "idProperty": "email", "properties": {"phone": "5555555555"}}]})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "COMPLETE", "results": [{"id": "5", "properties": {}, "new": true}]})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/contacts/batch/update"))
        .and(body_json(
            json!({"inputs": [{"id": "123", "properties": {"firstname": "Ann"}}]}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"status": "COMPLETE", "results": [{"id": "123", "properties": {}}]}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/contacts/batch/create"))
        .and(body_json(json!({"inputs": [{"properties": {"email": "n@x.com"}, "associations": [], "objectWriteTraceId": "t1"}]})))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"status": "COMPLETE", "results": [{"id": "77", "properties": {}, "objectWriteTraceId": "t1"}]})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/contacts/batch/archive"))
        .and(body_json(json!({"inputs": [{"id": "123"}]})))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/contacts/merge"))
        .and(body_json(
            json!({"primaryObjectId": "1", "objectIdToMerge": "2"}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(contact(1)))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);
    assert_eq!(
        c.batch_read_contacts(&["a@b.com".into()], &["email".into()], Some("email"), false)
            .await
            .unwrap()
            .results
            .len(),
        1
    );
    let up = c
        .batch_upsert_contacts(vec![
            UpdateInput::new(
                "luke@lukesdiner.com",
                BTreeMap::from([("phone".to_owned(), "5555555555".to_owned())]),
            )
            .by("email"),
        ])
        .await
        .unwrap();
    assert_eq!(up.results[0].new, Some(true));
    c.batch_update_contacts(vec![UpdateInput::new(
        "123",
        BTreeMap::from([("firstname".to_owned(), "Ann".to_owned())]),
    )])
    .await
    .unwrap();
    let created = c
        .batch_create_contacts(vec![
            CreateInput::new(BTreeMap::from([("email".to_owned(), "n@x.com".to_owned())]))
                .with_trace_id("t1"),
        ])
        .await
        .unwrap();
    assert_eq!(
        created.per_input(&["t1".into()])[0]
            .as_ref()
            .unwrap()
            .as_ref()
            .unwrap()
            .id,
        "77"
    );
    c.batch_archive_contacts(&["123".into()]).await.unwrap();
    assert_eq!(c.merge_contacts("1", "2").await.unwrap().id, "1");
}

#[tokio::test]
async fn batches_over_100_are_refused_without_a_call() {
    let server = MockServer::start().await;
    let ids: Vec<String> = (0..101).map(|i| i.to_string()).collect();
    let e = client(&server)
        .batch_read_contacts(&ids, &[], None, false)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e}");
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn multi_status_207_maps_errors_to_inputs() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/contacts/batch/create"))
        .respond_with(ResponseTemplate::new(207).set_body_json(json!({
            "status": "COMPLETE", "numErrors": 1,
            "results": [{"id": "11", "properties": {}, "objectWriteTraceId": "b"}],
            "errors": [{"status": "error", "category": "VALIDATION_ERROR",
                "message": "Property values were not valid: [{\"isValid\":false,\"message\":\"Property \\\"missing\\\" does not exist\",\"error\":\"PROPERTY_DOESNT_EXIST\",\"name\":\"missing\"}]",
                "context": {"objectWriteTraceId": ["a"]}}]})))
        .mount(&server)
        .await;
    let inputs = ["a", "b"]
        .iter()
        .map(|t| CreateInput::new(BTreeMap::new()).with_trace_id(*t))
        .collect();
    let out = client(&server).batch_create_contacts(inputs).await.unwrap();
    let per = out.per_input(&["a".into(), "b".into()]);
    assert_eq!(
        per[0].as_ref().unwrap().as_ref().unwrap_err().problem,
        Problem::UnknownProperty {
            names: vec!["missing".into()]
        }
    );
    assert_eq!(per[1].as_ref().unwrap().as_ref().unwrap().id, "11");
}

#[tokio::test]
async fn error_shapes_are_decoded_over_http() {
    let server = MockServer::start().await;
    let cases = [
        (
            409,
            json!({"status":"error","message":"Contact already exists. Existing ID: 512159482605","correlationId":"c409","category":"CONFLICT"}),
        ),
        (
            400,
            json!({"status":"error","message":"Property values were not valid","correlationId":"c400","category":"VALIDATION_ERROR",
            "errors":[{"message":"Property \"testproperty\" does not exist","code":"PROPERTY_DOESNT_EXIST","context":{"propertyName":["testproperty"]}}]}),
        ),
        (
            403,
            json!({"status":"error","message":"missing scopes","correlationId":"c403","category":"MISSING_SCOPES",
            "errors":[{"message":"One or more of the following scopes are required.","context":{"requiredGranularScopes":["crm.objects.contacts.write"]}}]}),
        ),
        (
            401,
            json!({"status":"error","message":"Authentication credentials not found.","correlationId":"c401","category":"INVALID_AUTHENTICATION"}),
        ),
    ];
    for (status, body) in &cases {
        Mock::given(method("PATCH"))
            .and(path(format!("/crm/v3/objects/contacts/{status}")))
            .respond_with(ResponseTemplate::new(*status).set_body_json(body))
            .mount(&server)
            .await;
    }
    let c = client(&server);
    let props = BTreeMap::from([("x".to_owned(), "y".to_owned())]);
    let problem = |e: Error| match e {
        Error::Api(a) => (a.problem.clone(), a.correlation_id().map(str::to_owned)),
        other => panic!("not an API error: {other}"),
    };
    let (p, corr) = problem(c.update_contact("409", &props).await.unwrap_err());
    assert_eq!(
        p,
        Problem::DuplicateContact {
            existing_id: "512159482605".into()
        }
    );
    assert_eq!(corr.as_deref(), Some("c409"));
    assert_eq!(
        problem(c.update_contact("400", &props).await.unwrap_err()).0,
        Problem::UnknownProperty {
            names: vec!["testproperty".into()]
        }
    );
    assert_eq!(
        problem(c.update_contact("403", &props).await.unwrap_err()).0,
        Problem::MissingScopes {
            required: vec!["crm.objects.contacts.write".into()]
        }
    );
    let auth = c.update_contact("401", &props).await.unwrap_err();
    let core: sync_core::Error = auth.into();
    assert!(core.stops_run(), "a rejected token stops the run");
    let msg = core.to_string();
    assert!(msg.contains("c401") && !msg.contains(TOKEN), "{msg}");
}

#[tokio::test(start_paused = true)]
async fn ten_secondly_429_waits_the_window_then_succeeds() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/crm/v3/objects/contacts/1"))
        .respond_with(ResponseTemplate::new(429).set_body_json(json!({"status":"error","message":"You have reached your ten_secondly_rolling limit.",
            "errorType":"RATE_LIMIT","correlationId":"64f5","policyName":"TEN_SECONDLY_ROLLING","groupName":"publicapi:private_app-api-calls-ten-secondly:1"})))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/crm/v3/objects/contacts/1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(contact(1)))
        .mount(&server)
        .await;
    let start = tokio::time::Instant::now();
    let got = client(&server).get_contact("1", &[]).await.unwrap();
    assert_eq!(got.unwrap().id, "1");
    assert!(
        start.elapsed() >= Duration::from_secs(10),
        "waited {:?}",
        start.elapsed()
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn secondly_429_waits_one_second_even_for_non_idempotent_posts() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/notes"))
        .respond_with(ResponseTemplate::new(429).set_body_json(json!({"status":"error","message":"You have reached your secondly limit.","category":"RATE_LIMITS"})))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/notes"))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(json!({"id": "n1", "properties": {}})),
        )
        .mount(&server)
        .await;
    let start = tokio::time::Instant::now();
    let note = NoteCreate::on_contact("123", "2026-05-01T12:00:00Z", "<p>hi</p>");
    client(&server).create_note(&note).await.unwrap();
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs(1) && waited < Duration::from_secs(10),
        "waited {waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn daily_429_stops_at_once_and_reports_the_reset() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/crm/v3/objects/contacts/1"))
        .respond_with(ResponseTemplate::new(429).set_body_json(json!({"status":"error","message":"You have reached your daily limit.","policyName":"DAILY","correlationId":"d1"})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/account-info/v3/api-usage/daily/private-apps"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"results":[{"name":"private-apps-api-calls-daily","usageLimit":250000,
            "currentUsage":250000,"collectedAt":"2026-11-23T10:00:00Z","resetsAt":"2026-11-24T05:00:00Z","fetchStatus":"SUCCESS"}]})))
        .mount(&server)
        .await;
    let e = client(&server).get_contact("1", &[]).await.unwrap_err();
    let Error::DailyLimit { resets_at, .. } = &e else {
        panic!("{e}")
    };
    assert_eq!(resets_at.unwrap().to_rfc3339(), "2026-11-24T05:00:00+00:00");
    let core: sync_core::Error = e.into();
    assert!(core.stops_run() && !core.is_retryable());
    let sync_core::Error::Remote(r) = core else {
        panic!()
    };
    assert_eq!(r.kind, sync_core::RemoteErrorKind::QuotaExhausted);
    assert!(r.resets_at.is_some());
}

#[tokio::test(start_paused = true)]
async fn locked_423_waits_two_seconds_and_retries() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/crm/v3/objects/contacts/1"))
        .respond_with(ResponseTemplate::new(423).set_body_json(json!({"status":"error","message":"Include a delay of at least 2 seconds between your API requests."})))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/crm/v3/objects/contacts/1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(contact(1)))
        .mount(&server)
        .await;
    let start = tokio::time::Instant::now();
    client(&server).get_contact("1", &[]).await.unwrap();
    assert!(start.elapsed() >= Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn persistent_429_gives_up_after_the_configured_retries() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(
            ResponseTemplate::new(429)
                .set_body_json(json!({"policyName":"TEN_SECONDLY_ROLLING","message":"slow down"})),
        )
        .mount(&server)
        .await;
    let c = HubSpotClient::builder()
        .base_url(server.uri())
        .access_token(SecretString::from(TOKEN))
        .retry_policy(RetryPolicy::none())
        .rate_limit_retries(2, Duration::from_secs(60))
        .without_timeouts()
        .build()
        .unwrap();
    let e = c.get_contact("1", &[]).await.unwrap_err();
    assert!(
        matches!(&e, Error::Api(a) if a.problem == Problem::RateLimited { policy: RateLimitPolicy::TenSecondlyRolling })
    );
    assert!(e.is_retryable());
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
}

#[tokio::test]
async fn properties_describe_create_and_add_options() {
    let server = MockServer::start().await;
    let badges = json!({"name":"cativa_badges","label":"Cativa badges","type":"enumeration","fieldType":"checkbox","groupName":"contactinformation",
        "description":"","options":[{"label":"vip","value":"vip","hidden":false}]});
    Mock::given(method("GET"))
        .and(path("/crm/v3/properties/contacts"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"results":[badges.clone(),
            {"name":"email","label":"Email","type":"string","fieldType":"text","groupName":"contactinformation","description":"","options":[]}]})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/crm/v3/properties/contacts"))
        .and(body_json(json!({"name":"cativa_member_id","label":"Cativa member id","type":"string","fieldType":"text","groupName":"contactinformation",
            "description":"Unique community member id; cativa-crm-sync upserts contacts by it.","hasUniqueValue":true,"formField":false})))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"name":"cativa_member_id","label":"Cativa member id","type":"string","fieldType":"text","hasUniqueValue":true})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/crm/v3/properties/contacts"))
        .and(body_string_contains("\"name\":\"cativa_user_id\""))
        .respond_with(
            ResponseTemplate::new(201)
                .set_body_json(json!({"name":"cativa_user_id","type":"string","fieldType":"text"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path("/crm/v3/properties/contacts/cativa_badges"))
        .and(body_json(json!({"options":[{"label":"vip","value":"vip","hidden":false},{"label":"speaker","value":"speaker","displayOrder":1,"hidden":false}]})))
        .respond_with(ResponseTemplate::new(200).set_body_json(badges))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);
    let props = c.list_contact_properties().await.unwrap();
    assert!(props[0].is_multi_checkbox());
    let created = c
        .ensure_contact_properties(&[
            PropertyCreate::cativa_member_id("contactinformation"),
            PropertyCreate::cativa_user_id("contactinformation"),
            PropertyCreate::cativa_badges("contactinformation", &["vip".into()]),
        ])
        .await
        .unwrap();
    assert_eq!(
        created,
        vec!["cativa_member_id".to_owned(), "cativa_user_id".to_owned()]
    );
    c.add_contact_property_options(&props[0], &["vip".into(), "speaker".into()])
        .await
        .unwrap();
    // Nothing missing: no call.
    c.add_contact_property_options(&props[0], &["vip".into()])
        .await
        .unwrap();
    let _ = PropertyOption::new("x");
}

#[tokio::test]
async fn lists_memberships_add_remove_and_page_to_the_end() {
    let server = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(path("/crm/v3/lists/42/memberships/add"))
        .and(body_json(json!(["123", "456"])))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"recordsIdsAdded":["123"],"recordIdsRemoved":[],"recordIdsMissing":["456"]}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path("/crm/v3/lists/42/memberships/remove"))
        .and(body_json(json!(["123"])))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"recordIdsRemoved":["123"]})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/crm/v3/lists/42/memberships"))
        .and(query_param("limit", "250"))
        .and(query_param_is_missing("after"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"results":[{"recordId":"1","membershipTimestamp":"2026-01-01T00:00:00Z"}],"paging":{"next":{"after":"abc"}},"total":2})))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/crm/v3/lists/42/memberships"))
        .and(query_param("after", "abc"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"results":[{"recordId":"2"}],"total":2})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/crm/v3/lists/records/0-1/123/memberships"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"results":[{"listId":"42","listVersion":3,"isPublicList":false}],"total":1}),
        ))
        .mount(&server)
        .await;
    let c = client(&server);
    let added = c
        .add_to_list("42", &["123".into(), "456".into()])
        .await
        .unwrap();
    assert_eq!(added.record_ids_added, vec!["123".to_owned()]);
    assert_eq!(added.record_ids_missing, vec!["456".to_owned()]);
    assert_eq!(
        c.remove_from_list("42", &["123".into()])
            .await
            .unwrap()
            .record_ids_removed,
        vec!["123".to_owned()]
    );
    assert_eq!(
        c.all_list_members("42").await.unwrap(),
        vec!["1".to_owned(), "2".to_owned()]
    );
    assert_eq!(
        c.contact_list_memberships("123").await.unwrap()[0].list_id,
        "42"
    );
}

#[tokio::test]
async fn notes_carry_association_type_202() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/notes"))
        .and(body_json(json!({"properties": {"hs_timestamp": "2026-05-01T12:00:00Z", "hs_note_body": "<p>Posted in #general: …</p>"},
            "associations": [{"to": {"id": "123"}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 202}]}]})))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": "n1", "properties": {}})))
        .expect(1)
        .mount(&server)
        .await;
    let note = NoteCreate::on_contact(
        "123",
        "2026-05-01T12:00:00Z",
        "<p>Posted in #general: …</p>",
    );
    assert_eq!(client(&server).create_note(&note).await.unwrap().id, "n1");
}

/// Counts token endpoint calls; answers with a token valid for 30 minutes after a delay,
/// so concurrent callers pile up behind the first refresh.
struct TokenResponder(Arc<AtomicU32>);

impl Respond for TokenResponder {
    fn respond(&self, _req: &Request) -> ResponseTemplate {
        let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
        ResponseTemplate::new(200)
            .set_delay(Duration::from_millis(100))
            .set_body_json(json!({"access_token": format!("access-{n}"), "refresh_token": "refresh-2", "expires_in": 1800, "token_type": "bearer"}))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_refreshes_once_under_20_concurrent_requests() {
    let server = MockServer::start().await;
    let calls = Arc::new(AtomicU32::new(0));
    Mock::given(method("POST"))
        .and(path("/oauth/v1/token"))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(body_string_contains("grant_type=refresh_token"))
        .and(body_string_contains("client_id=app-1"))
        .and(body_string_contains("client_secret=shh-secret"))
        .and(body_string_contains("refresh_token=refresh-1"))
        .respond_with(TokenResponder(Arc::clone(&calls)))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/crm/v3/objects/contacts/1"))
        .and(header("authorization", "Bearer access-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(contact(1)))
        .expect(20)
        .mount(&server)
        .await;
    let c = HubSpotClient::builder()
        .base_url(server.uri())
        .oauth(crm_hubspot::OAuthCredentials::new(
            "app-1",
            SecretString::from("shh-secret"),
            SecretString::from("refresh-1"),
        ))
        .build()
        .unwrap();
    assert!(!format!("{c:?}").contains("shh-secret"));
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move { c.get_contact("1", &[]).await })
        })
        .collect();
    for t in tasks {
        assert!(t.await.unwrap().unwrap().is_some());
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1, "exactly one token refresh");
}

#[tokio::test(start_paused = true)]
async fn oauth_refreshes_proactively_before_expiry() {
    let server = MockServer::start().await;
    let calls = Arc::new(AtomicU32::new(0));
    Mock::given(method("POST"))
        .and(path("/oauth/v1/token"))
        .respond_with(TokenResponder(Arc::clone(&calls)))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(contact(1)))
        .mount(&server)
        .await;
    let c = HubSpotClient::builder()
        .base_url(server.uri())
        .oauth(crm_hubspot::OAuthCredentials::new(
            "app-1",
            SecretString::from("s"),
            SecretString::from("refresh-1"),
        ))
        .without_timeouts()
        .build()
        .unwrap();
    c.get_contact("1", &[]).await.unwrap();
    tokio::time::advance(Duration::from_secs(20 * 60)).await;
    c.get_contact("1", &[]).await.unwrap();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "still fresh after 20 minutes"
    );
    // 30-minute tokens are renewed 5 minutes early, before any 401.
    tokio::time::advance(Duration::from_secs(6 * 60)).await;
    c.get_contact("1", &[]).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let reqs = server.received_requests().await.unwrap();
    let last = reqs.last().unwrap();
    assert_eq!(
        last.headers.get("authorization").unwrap(),
        "Bearer access-2"
    );
    let second_refresh = reqs
        .iter()
        .filter(|r| r.url.path() == "/oauth/v1/token")
        .nth(1)
        .unwrap();
    assert!(
        String::from_utf8_lossy(&second_refresh.body).contains("refresh_token=refresh-2"),
        "the rotated refresh token is used"
    );
}

#[tokio::test]
async fn tokens_echoed_in_error_messages_are_redacted() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(400).set_body_json(
            json!({"status":"error","category":"VALIDATION_ERROR",
            "message": format!("bad header Authorization: Bearer {TOKEN} (token {TOKEN})"),
            "errors": [{"message": format!("{TOKEN} invalid")}]}),
        ))
        .mount(&server)
        .await;
    let e = client(&server).get_contact("1", &[]).await.unwrap_err();
    let shown = format!("{e} {e:?}");
    assert!(!shown.contains("00000000-test"), "{shown}");
    let core: sync_core::Error = e.into();
    assert!(!core.to_string().contains("00000000-test"));
}

#[test]
fn oauth_credentials_debug_hides_secrets() {
    let c = crm_hubspot::OAuthCredentials::new(
        "app",
        SecretString::from("client-secret-x"),
        SecretString::from("refresh-secret-y"),
    );
    let d = format!("{c:?}");
    assert!(
        d.contains("app") && !d.contains("secret-x") && !d.contains("secret-y"),
        "{d}"
    );
}

#[test]
fn builder_reports_bad_settings_without_panicking() {
    assert!(matches!(
        HubSpotClient::builder().base_url("not a url").build(),
        Err(Error::Config(_))
    ));
    assert!(matches!(
        HubSpotClient::builder()
            .tier(crm_hubspot::RateLimitTier::Custom {
                requests: 0,
                window_ms: 0
            })
            .build(),
        Err(Error::Config(_))
    ));
    let b = HubSpotClient::builder().access_token(SecretString::from("pat-na1-secret-value"));
    assert!(!format!("{b:?}").contains("secret-value"));
}
