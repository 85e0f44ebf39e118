#![allow(clippy::unwrap_used, clippy::expect_used)]
//! HubSpotSink against wiremock: find-or-create without duplicates, batch sizes, 207s,
//! 409 recovery, validation before sending, splitting rejected batches, notes.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{TimeZone, Utc};
use crm_hubspot::webhook::{EchoFilter, parse_batch};
use crm_hubspot::{HubSpotClient, HubSpotSink, SinkConfig};
use secrecy::SecretString;
use serde_json::{Value, json};
use sync_core::plan::IdempotencyKey;
use sync_core::ports::{Activity, ContactDraft, CrmSink, PropertyUpdate};
use sync_core::{CativaUserId, CrmRecordId, Email, RemoteErrorKind, TenantId};
use wiremock::matchers::{body_partial_json, method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

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

fn key(s: &str) -> IdempotencyKey {
    IdempotencyKey::from_raw(s)
}

fn draft(i: usize, with_user: bool) -> ContactDraft {
    ContactDraft::new(
        Email::parse(&format!("user{i}@example.com")).unwrap(),
        with_user.then(|| CativaUserId::new(format!("u-{i}"))),
        BTreeMap::from([("firstname".to_owned(), format!("User {i}"))]),
        key(&format!("k{i}")),
    )
}

fn schema() -> Value {
    json!({"results": [
        {"name": "email", "label": "Email", "type": "string", "fieldType": "text", "groupName": "contactinformation", "description": "", "options": []},
        {"name": "firstname", "label": "First", "type": "string", "fieldType": "text", "groupName": "contactinformation", "description": "", "options": []},
        {"name": "cativa_user_id", "label": "U", "type": "string", "fieldType": "text", "groupName": "cativa", "description": "", "options": []},
        {"name": "cativa_member_id", "label": "M", "type": "string", "fieldType": "text", "groupName": "cativa", "description": "", "options": [], "hasUniqueValue": true},
        {"name": "cativa_badges", "label": "B", "type": "enumeration", "fieldType": "checkbox", "groupName": "cativa", "description": "",
         "options": [{"label": "vip", "value": "vip"}, {"label": "speaker", "value": "speaker"}]},
        {"name": "plan", "label": "Plan", "type": "enumeration", "fieldType": "select", "groupName": "cativa", "description": "", "options": [{"label": "Annual", "value": "annual"}]}
    ]})
}

async fn mount_schema(server: &MockServer) {
    Mock::given(method("GET"))
        .and(path("/crm/v3/properties/contacts"))
        .respond_with(ResponseTemplate::new(200).set_body_json(schema()))
        .mount(server)
        .await;
}

fn inputs(req: &Request) -> Vec<Value> {
    let body: Value = serde_json::from_slice(&req.body).unwrap();
    body["inputs"].as_array().unwrap().clone()
}

/// Batch upsert: every input created, results echo trace ids; records batch sizes.
struct UpsertAll(Arc<Mutex<Vec<usize>>>);

impl Respond for UpsertAll {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let ins = inputs(req);
        self.0.lock().unwrap().push(ins.len());
        let results: Vec<Value> = ins
            .iter()
            .map(|i| {
                json!({"id": format!("9{}", &i["id"].as_str().unwrap()[2..]), "properties": {"cativa_member_id": i["id"]},
                       "new": true, "objectWriteTraceId": i["objectWriteTraceId"]})
            })
            .collect();
        ResponseTemplate::new(200).set_body_json(json!({"status": "COMPLETE", "results": results}))
    }
}

#[tokio::test]
async fn upserting_1000_contacts_takes_exactly_10_batch_calls() {
    let server = MockServer::start().await;
    mount_schema(&server).await;
    let sizes = Arc::new(Mutex::new(Vec::new()));
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/contacts/batch/upsert"))
        .respond_with(UpsertAll(Arc::clone(&sizes)))
        .mount(&server)
        .await;
    let sink = HubSpotSink::new(
        client(&server),
        SinkConfig::default().with_member_id_property("cativa_member_id"),
    );
    let drafts: Vec<ContactDraft> = (0..1000).map(|i| draft(i, true)).collect();
    let out = sink
        .upsert_contacts(&TenantId::new("t"), &drafts)
        .await
        .unwrap();
    assert_eq!(out.len(), 1000);
    for (i, r) in out.iter().enumerate() {
        let p = r.as_ref().unwrap();
        assert_eq!(p.id, CrmRecordId::hubspot(format!("9{i}")));
        assert!(p.created);
    }
    assert_eq!(*sizes.lock().unwrap(), vec![100; 10], "ten calls of 100");
    let reqs = server.received_requests().await.unwrap();
    assert_eq!(
        reqs.iter()
            .filter(|r| r.url.path().ends_with("/batch/upsert"))
            .count(),
        10
    );
    assert_eq!(reqs.len(), 11, "plus one schema read");
    let first = inputs(&reqs[1])[0].clone();
    assert_eq!(first["idProperty"], "cativa_member_id");
    assert_eq!(first["id"], "u-0");
    assert_eq!(first["properties"]["email"], "user0@example.com");
    assert_eq!(first["properties"]["cativa_user_id"], "u-0");
    assert_eq!(first["properties"]["firstname"], "User 0");
}

#[tokio::test]
async fn upsert_collision_with_an_existing_email_links_to_it() {
    let server = MockServer::start().await;
    mount_schema(&server).await;
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/contacts/batch/upsert"))
        .respond_with(ResponseTemplate::new(207).set_body_json(json!({"status": "COMPLETE", "numErrors": 1,
            "results": [{"id": "500", "properties": {}, "new": false, "objectWriteTraceId": "t0"}],
            "errors": [{"status": "error", "category": "CONFLICT", "message": "Contact already exists. Existing ID: 777", "context": {"objectWriteTraceId": ["t1"]}}]})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/contacts/batch/update"))
        .and(body_partial_json(json!({"inputs": [{"id": "777", "properties": {"cativa_member_id": "u-1"}}]})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "COMPLETE", "results": [{"id": "777", "properties": {}, "objectWriteTraceId": "t0"}]})))
        .expect(1)
        .mount(&server)
        .await;
    let sink = HubSpotSink::new(
        client(&server),
        SinkConfig::default().with_member_id_property("cativa_member_id"),
    );
    let out = sink
        .upsert_contacts(&TenantId::new("t"), &[draft(0, true), draft(1, true)])
        .await
        .unwrap();
    let a = out[0].as_ref().unwrap();
    let b = out[1].as_ref().unwrap();
    assert_eq!((a.id.id.as_str(), a.created), ("500", false));
    assert_eq!((b.id.id.as_str(), b.created), ("777", false));
}

#[tokio::test]
async fn by_email_creates_without_a_read_and_links_on_409() {
    let server = MockServer::start().await;
    mount_schema(&server).await;
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/contacts/batch/read"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/contacts/batch/create"))
        .respond_with(ResponseTemplate::new(207).set_body_json(json!({"status": "COMPLETE", "numErrors": 2,
            "results": [{"id": "201", "properties": {"email": "user1@example.com"}, "objectWriteTraceId": "t1"}],
            "errors": [
                {"status": "error", "category": "CONFLICT", "message": "Contact already exists. Existing ID: 100", "context": {"objectWriteTraceId": ["t0"]}},
                {"status": "error", "category": "CONFLICT", "message": "Contact already exists. Existing ID: 202", "context": {"objectWriteTraceId": ["t2"]}}]})))
        .expect(1)
        .mount(&server)
        .await;
    let updates = Arc::new(Mutex::new(Vec::new()));
    let u2 = Arc::clone(&updates);
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/contacts/batch/update"))
        .respond_with(move |req: &Request| {
            let ins = inputs(req);
            u2.lock().unwrap().extend(ins.iter().map(|i| i["id"].as_str().unwrap().to_owned()));
            let results: Vec<Value> = ins.iter().map(|i| json!({"id": i["id"], "properties": {}, "objectWriteTraceId": i["objectWriteTraceId"]})).collect();
            ResponseTemplate::new(200).set_body_json(json!({"status": "COMPLETE", "results": results}))
        })
        .mount(&server)
        .await;
    let sink = HubSpotSink::new(client(&server), SinkConfig::default());
    // Draft 3 repeats draft 0's email: one contact, both linked.
    let mut dup = draft(0, false);
    dup.properties.insert("firstname".into(), "Again".into());
    let drafts = vec![draft(0, false), draft(1, false), draft(2, false), dup];
    let out = sink
        .upsert_contacts(&TenantId::new("t"), &drafts)
        .await
        .unwrap();
    let got: Vec<(String, bool)> = out
        .iter()
        .map(|r| r.as_ref().map(|p| (p.id.id.clone(), p.created)).unwrap())
        .collect();
    assert_eq!(
        got,
        vec![
            ("100".into(), false),
            ("201".into(), true),
            ("202".into(), false),
            ("100".into(), false)
        ]
    );
    let mut updated = updates.lock().unwrap().clone();
    updated.sort();
    assert_eq!(
        updated,
        vec!["100".to_owned(), "202".to_owned()],
        "existing contacts get the draft's properties"
    );
}

#[tokio::test]
async fn invalid_values_cost_no_call_and_are_reported_per_item() {
    let server = MockServer::start().await;
    mount_schema(&server).await;
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/contacts/batch/update"))
        .and(body_partial_json(json!({"inputs": [{"id": "1", "properties": {"cativa_badges": "vip;speaker"}}]})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "COMPLETE", "results": [{"id": "1", "properties": {}, "objectWriteTraceId": "t0"}]})))
        .expect(1)
        .mount(&server)
        .await;
    let echo = Arc::new(EchoFilter::new());
    let sink = HubSpotSink::new(client(&server), SinkConfig::default())
        .with_echo_filter(Arc::clone(&echo));
    let up = |id: &str, k: &str, v: &str| {
        PropertyUpdate::new(
            CrmRecordId::hubspot(id),
            BTreeMap::from([(k.to_owned(), v.to_owned())]),
            key(id),
        )
    };
    let out = sink
        .update_properties(
            &TenantId::new("t"),
            &[
                up("1", "cativa_badges", "vip; speaker"),
                up("2", "no_such_property", "x"),
                up("3", "plan", "Monthly"),
                up("4", "cativa_badges", "gold"),
            ],
        )
        .await
        .unwrap();
    assert!(out[0].is_ok());
    for (i, needle) in [(1, "no_such_property"), (2, "Monthly"), (3, "gold")] {
        let Err(sync_core::Error::Remote(r)) = &out[i] else {
            panic!("{:?}", out[i])
        };
        assert_eq!(r.kind, RemoteErrorKind::Invalid);
        assert!(r.message.contains(needle), "{}", r.message);
    }
    let batch_calls = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path().contains("batch"))
        .count();
    assert_eq!(batch_calls, 1, "only the valid update was sent");
    let ev = parse_batch(
        br#"[{"portalId":1,"occurredAt":4102444800000,"subscriptionType":"contact.propertyChange","objectId":1,
        "propertyName":"cativa_badges","propertyValue":"speaker;vip","changeSource":"INTEGRATION"}]"#,
    )
    .unwrap();
    let now = Utc::now().timestamp_millis();
    let mut e = ev[0].clone();
    e.occurred_at = now;
    assert!(
        echo.is_echo(&e),
        "the sink's write is recognised when it comes back"
    );
}

#[tokio::test]
async fn missing_checkbox_options_are_added_only_when_configured() {
    let server = MockServer::start().await;
    mount_schema(&server).await;
    Mock::given(method("PATCH"))
        .and(path("/crm/v3/properties/contacts/cativa_badges"))
        .and(body_partial_json(json!({"options": [{"value": "vip"}, {"value": "speaker"}, {"value": "gold"}]})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"name": "cativa_badges", "label": "B", "type": "enumeration", "fieldType": "checkbox",
            "options": [{"label": "vip", "value": "vip"}, {"label": "speaker", "value": "speaker"}, {"label": "gold", "value": "gold"}]})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/contacts/batch/update"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "COMPLETE", "results": [{"id": "1", "properties": {}, "objectWriteTraceId": "t0"}]})))
        .expect(1)
        .mount(&server)
        .await;
    let sink = HubSpotSink::new(
        client(&server),
        SinkConfig::default().adding_options_to("cativa_badges"),
    );
    let up = PropertyUpdate::new(
        CrmRecordId::hubspot("1"),
        BTreeMap::from([("cativa_badges".to_owned(), "vip;gold".to_owned())]),
        key("a"),
    );
    let out = sink
        .update_properties(&TenantId::new("t"), &[up])
        .await
        .unwrap();
    assert!(out[0].is_ok(), "{:?}", out[0]);
}

/// Rejects (400) any batch update that contains id `bad`; accepts the others.
struct RejectBad(Arc<AtomicU32>);

impl Respond for RejectBad {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        self.0.fetch_add(1, Ordering::SeqCst);
        let ins = inputs(req);
        assert!(ins.len() <= 100);
        if ins.iter().any(|i| i["id"] == "666") {
            return ResponseTemplate::new(400).set_body_json(json!({"status": "error", "category": "VALIDATION_ERROR", "correlationId": "c",
                "message": "Property values were not valid: [{\"isValid\":false,\"message\":\"Property \\\"firstname\\\" is locked\",\"error\":\"INVALID_VALUE\",\"name\":\"firstname\"}]"}));
        }
        let results: Vec<Value> = ins.iter().map(|i| json!({"id": i["id"], "properties": {}, "objectWriteTraceId": i["objectWriteTraceId"]})).collect();
        ResponseTemplate::new(200).set_body_json(json!({"status": "COMPLETE", "results": results}))
    }
}

#[tokio::test]
async fn a_rejected_batch_is_split_in_halves_to_isolate_the_bad_input() {
    let server = MockServer::start().await;
    mount_schema(&server).await;
    let calls = Arc::new(AtomicU32::new(0));
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/contacts/batch/update"))
        .respond_with(RejectBad(Arc::clone(&calls)))
        .mount(&server)
        .await;
    let sink = HubSpotSink::new(client(&server), SinkConfig::default());
    let ids = ["1", "2", "3", "4", "5", "666", "7", "8"];
    let updates: Vec<PropertyUpdate> = ids
        .iter()
        .map(|id| {
            PropertyUpdate::new(
                CrmRecordId::hubspot(*id),
                BTreeMap::from([("firstname".to_owned(), "X".to_owned())]),
                key(id),
            )
        })
        .collect();
    let out = sink
        .update_properties(&TenantId::new("t"), &updates)
        .await
        .unwrap();
    for (id, r) in ids.iter().zip(&out) {
        assert_eq!(r.is_err(), *id == "666", "{id}: {r:?}");
    }
    let Err(sync_core::Error::Remote(r)) = &out[5] else {
        panic!()
    };
    assert_eq!(r.status, Some(400));
    assert_eq!(r.correlation_id.as_deref(), Some("c"));
    // 8 -> 4 ok + 4 -> 2 ok + 2 -> 1 ok + 1 bad.
    assert_eq!(calls.load(Ordering::SeqCst), 7);
}

#[tokio::test]
async fn server_errors_fail_the_call_not_the_items() {
    let server = MockServer::start().await;
    mount_schema(&server).await;
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/contacts/batch/update"))
        .respond_with(
            ResponseTemplate::new(500)
                .set_body_json(json!({"status": "error", "message": "internal"})),
        )
        .mount(&server)
        .await;
    let c = HubSpotClient::builder()
        .base_url(server.uri())
        .access_token(SecretString::from("pat"))
        .retry_policy(sync_http::RetryPolicy::none())
        .without_timeouts()
        .build()
        .unwrap();
    let sink = HubSpotSink::new(c, SinkConfig::default());
    let up = PropertyUpdate::new(
        CrmRecordId::hubspot("1"),
        BTreeMap::from([("firstname".to_owned(), "X".to_owned())]),
        key("a"),
    );
    let e = sink
        .update_properties(&TenantId::new("t"), &[up])
        .await
        .unwrap_err();
    assert!(e.is_retryable(), "{e}");
}

#[tokio::test]
async fn activities_become_notes_associated_with_type_202() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/crm/v3/objects/notes/batch/create"))
        .and(body_partial_json(json!({"inputs": [{
            "properties": {"hs_timestamp": "2026-05-01T12:00:00.000Z", "hs_note_body": "<p><strong>Posted in #general</strong></p><p>a &lt;b&gt; c<br>d</p>"},
            "associations": [{"to": {"id": "123"}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 202}]}],
            "objectWriteTraceId": "t0"}]})))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"status": "COMPLETE", "results": [{"id": "n1", "properties": {}, "objectWriteTraceId": "t0"}]})))
        .expect(1)
        .mount(&server)
        .await;
    let sink = HubSpotSink::new(client(&server), SinkConfig::default());
    let at = Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).unwrap();
    let acts = [
        Activity::new(
            CrmRecordId::hubspot("123"),
            "Posted in #general",
            "a <b> c\nd",
            at,
            key("a1"),
        ),
        Activity::new(CrmRecordId::salesforce("003"), "x", "y", at, key("a2")),
    ];
    let out = sink
        .log_activities(&TenantId::new("t"), &acts)
        .await
        .unwrap();
    assert!(out[0].is_ok());
    assert!(out[1].is_err(), "a Salesforce id is refused");
    let _ = Duration::ZERO;
}

/// Every other address exists (batch create answers 207 with a conflict naming it); the
/// rest are created. Records every batch size.
struct EmailWorld(Arc<Mutex<Vec<(String, usize)>>>);

impl Respond for EmailWorld {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let ins = inputs(req);
        let p = req.url.path().to_owned();
        self.0.lock().unwrap().push((p.clone(), ins.len()));
        let n = |e: &str| -> u32 {
            e.trim_start_matches("user")
                .split('@')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        };
        if p.ends_with("/batch/create") {
            let (taken, free): (Vec<&Value>, Vec<&Value>) = ins
                .iter()
                .partition(|i| n(i["properties"]["email"].as_str().unwrap()) % 2 == 0);
            let errors: Vec<Value> = taken
                .iter()
                .map(|i| json!({"status": "error", "category": "CONFLICT",
                    "message": format!("Contact already exists. Existing ID: 1{}", n(i["properties"]["email"].as_str().unwrap())),
                    "context": {"objectWriteTraceId": [i["objectWriteTraceId"]]}}))
                .collect();
            let results: Vec<Value> = free
                .iter()
                .map(|i| {
                    let e = i["properties"]["email"].as_str().unwrap();
                    json!({"id": format!("2{}", n(e)), "properties": {"email": e}, "objectWriteTraceId": i["objectWriteTraceId"]})
                })
                .collect();
            return ResponseTemplate::new(if errors.is_empty() { 201 } else { 207 }).set_body_json(
                json!({"status": "COMPLETE", "results": results, "numErrors": errors.len(), "errors": errors}),
            );
        }
        let results: Vec<Value> = ins
            .iter()
            .map(|i| {
                let e = i["properties"]["email"].as_str().unwrap_or_else(|| i["id"].as_str().unwrap());
                json!({"id": i["id"].as_str().map_or_else(|| format!("2{}", e.trim_start_matches("user").split('@').next().unwrap()), str::to_owned),
                       "properties": {"email": e}, "objectWriteTraceId": i["objectWriteTraceId"]})
            })
            .collect();
        ResponseTemplate::new(if p.ends_with("/create") { 201 } else { 200 })
            .set_body_json(json!({"status": "COMPLETE", "results": results}))
    }
}

#[tokio::test]
async fn find_or_create_by_email_never_exceeds_100_per_batch() {
    let server = MockServer::start().await;
    mount_schema(&server).await;
    let log = Arc::new(Mutex::new(Vec::new()));
    Mock::given(method("POST"))
        .and(wiremock::matchers::path_regex(
            r"^/crm/v3/objects/contacts/batch/(read|create|update)$",
        ))
        .respond_with(EmailWorld(Arc::clone(&log)))
        .mount(&server)
        .await;
    let sink = HubSpotSink::new(client(&server), SinkConfig::default());
    let drafts: Vec<ContactDraft> = (0..250).map(|i| draft(i, false)).collect();
    let out = sink
        .upsert_contacts(&TenantId::new("t"), &drafts)
        .await
        .unwrap();
    for (i, r) in out.iter().enumerate() {
        let p = r.as_ref().unwrap();
        if i % 2 == 0 {
            assert_eq!((p.id.id.clone(), p.created), (format!("1{i}"), false));
        } else {
            assert_eq!((p.id.id.clone(), p.created), (format!("2{i}"), true));
        }
    }
    let log = log.lock().unwrap();
    assert!(log.iter().all(|(_, n)| *n <= 100), "{log:?}");
    let count = |suffix: &str| {
        log.iter()
            .filter(|(p, _)| p.ends_with(suffix))
            .map(|(_, n)| *n)
            .collect::<Vec<_>>()
    };
    assert!(count("/read").is_empty(), "no read before creating");
    assert_eq!(count("/create"), vec![100, 100, 50]);
    assert_eq!(
        count("/update"),
        vec![100, 25],
        "found contacts get the draft's other properties"
    );
}
