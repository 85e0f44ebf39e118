//! Collections writes, single upserts, per-record errors, lock retries and quota errors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use crm_salesforce::models::Record;
use crm_salesforce::{ApiErrorKind, Error};
use serde_json::{Value, json};
use sync_core::RemoteErrorKind;
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, Request, Respond, ResponseTemplate};

fn record(v: Value) -> Record {
    v.as_object().unwrap().clone()
}

#[tokio::test]
async fn create_sends_the_documented_body_and_maps_per_record_results_in_order() {
    let (server, client) = setup().await;
    let records = vec![
        record(json!({"attributes": {"type": "Contact"}, "LastName": "Doe", "Email": "a@x.com"})),
        record(json!({"attributes": {"type": "Contact"}, "Email": "b@x.com"})),
        record(json!({"attributes": {"type": "Contact"}, "LastName": "Roe", "Email": "c@x.com"})),
    ];
    Mock::given(method("POST"))
        .and(path(format!("{V}/composite/sobjects")))
        .and(no_call_options)
        .and(body_json(json!({"allOrNone": false, "records": records})))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("Sforce-Limit-Info", "api-usage=18/5000, per-app-api-usage=17/250(appName=cativa)")
                .set_body_json(json!([
                    {"id": "003A00000000001AAA", "success": true, "errors": []},
                    {"success": false, "errors": [{"statusCode": "REQUIRED_FIELD_MISSING", "message": "Required fields are missing: [LastName]", "fields": ["LastName"]}]},
                    {"id": "003A00000000003AAA", "success": true, "errors": []}
                ])),
        )
        .expect(1)
        .mount(&server)
        .await;
    let results = client.create_records(&records, false).await.unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(results[0].id.as_deref(), Some("003A00000000001AAA"));
    assert!(!results[1].success);
    assert_eq!(results[1].errors[0].code, "REQUIRED_FIELD_MISSING");
    assert_eq!(results[1].errors[0].fields, vec!["LastName"]);
    assert_eq!(results[2].id.as_deref(), Some("003A00000000003AAA"));
    let usage = client.last_api_usage().unwrap();
    assert_eq!(
        (usage.used, usage.limit, usage.remaining()),
        (18, 5000, 4982)
    );
    assert_eq!(usage.per_app.unwrap().app, "cativa");
}

#[tokio::test]
async fn update_and_upsert_paths_and_all_or_none() {
    let (server, client) = setup().await;
    let updates = vec![record(
        json!({"attributes": {"type": "Contact"}, "id": "003A", "Title": "CTO"}),
    )];
    Mock::given(method("PATCH"))
        .and(path(format!("{V}/composite/sobjects")))
        .and(no_call_options)
        .and(body_json(json!({"allOrNone": true, "records": updates})))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!([{"id": "003A", "success": true, "errors": []}])),
        )
        .expect(1)
        .mount(&server)
        .await;
    let upserts = vec![record(
        json!({"attributes": {"type": "Contact"}, "Cativa_Member_Id__c": "m-1", "LastName": "Doe"}),
    )];
    Mock::given(method("PATCH"))
        .and(path(format!(
            "{V}/composite/sobjects/Contact/Cativa_Member_Id__c"
        )))
        .and(body_json(json!({"allOrNone": false, "records": upserts})))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(
                json!([{"id": "003B", "success": true, "errors": [], "created": true}]),
            ),
        )
        .expect(1)
        .mount(&server)
        .await;
    assert!(client.update_records(&updates, true).await.unwrap()[0].success);
    let up = client
        .upsert_records("Contact", "Cativa_Member_Id__c", &upserts, false)
        .await
        .unwrap();
    assert_eq!(
        (up[0].id.as_deref(), up[0].created),
        (Some("003B"), Some(true))
    );
    let bad = client
        .upsert_records("Contact", "Bad Field", &upserts, false)
        .await
        .unwrap_err();
    assert!(matches!(bad, Error::Config(_)));
}

#[tokio::test]
async fn upserting_1000_records_takes_exactly_5_collection_calls() {
    let (server, client) = setup().await;
    Mock::given(method("PATCH"))
        .and(path(format!(
            "{V}/composite/sobjects/Contact/Cativa_Member_Id__c"
        )))
        .respond_with(EchoCollection::new("003", Some(true)))
        .mount(&server)
        .await;
    let records: Vec<Record> = (0..1000)
        .map(|i| record(json!({"attributes": {"type": "Contact"}, "Cativa_Member_Id__c": format!("m-{i}"), "LastName": "X"})))
        .collect();
    let results = client
        .upsert_records("Contact", "Cativa_Member_Id__c", &records, false)
        .await
        .unwrap();
    assert_eq!(results.len(), 1000);
    assert_eq!(
        results[999].id.as_deref(),
        Some("003000000000000999"),
        "results stay in input order"
    );
    let calls = requests_to(
        &server,
        "PATCH",
        &format!("{V}/composite/sobjects/Contact/Cativa_Member_Id__c"),
    )
    .await;
    assert_eq!(calls.len(), 5);
    for (i, c) in calls.iter().enumerate() {
        let body: Value = serde_json::from_slice(&c.body).unwrap();
        let recs = body["records"].as_array().unwrap();
        assert_eq!(recs.len(), 200);
        assert_eq!(
            recs[0]["Cativa_Member_Id__c"],
            json!(format!("m-{}", i * 200))
        );
    }
}

/// Fails the second record with `UNABLE_TO_LOCK_ROW` on the first call only.
struct LockOnce(AtomicUsize);

impl Respond for LockOnce {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let call = self.0.fetch_add(1, Ordering::SeqCst);
        let body: Value = serde_json::from_slice(&req.body).unwrap();
        let recs = body["records"].as_array().unwrap();
        let results: Vec<Value> = recs
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let id = r["id"].as_str().unwrap();
                if call == 0 && i == 1 {
                    json!({"success": false, "errors": [{"statusCode": "UNABLE_TO_LOCK_ROW", "message": "unable to obtain exclusive access to this record", "fields": []}]})
                } else {
                    json!({"id": id, "success": true, "errors": []})
                }
            })
            .collect();
        ResponseTemplate::new(200).set_body_json(results)
    }
}

#[tokio::test(start_paused = true)]
async fn records_locked_by_another_transaction_are_resent_alone_with_backoff() {
    let (server, client) = setup().await;
    Mock::given(method("PATCH"))
        .and(path(format!("{V}/composite/sobjects")))
        .respond_with(LockOnce(AtomicUsize::new(0)))
        .mount(&server)
        .await;
    let records: Vec<Record> = ["003A", "003B", "003C"]
        .iter()
        .map(|id| record(json!({"attributes": {"type": "Contact"}, "id": id, "Title": "x"})))
        .collect();
    let results = client.update_records(&records, false).await.unwrap();
    assert!(results.iter().all(|r| r.success), "{results:?}");
    assert_eq!(results[1].id.as_deref(), Some("003B"));
    let calls = requests_to(&server, "PATCH", &format!("{V}/composite/sobjects")).await;
    assert_eq!(calls.len(), 2);
    let second: Value = serde_json::from_slice(&calls[1].body).unwrap();
    assert_eq!(second["records"].as_array().unwrap().len(), 1);
    assert_eq!(second["records"][0]["id"], json!("003B"));
}

#[tokio::test(start_paused = true)]
async fn a_whole_call_lock_error_is_retried_then_reported() {
    let (server, client) = setup().await;
    let lock = ResponseTemplate::new(400)
        .set_body_json(json!([{"message": "unable to obtain exclusive access to this record", "errorCode": "UNABLE_TO_LOCK_ROW"}]));
    Mock::given(method("POST"))
        .and(path(format!("{V}/composite/sobjects")))
        .respond_with(lock)
        .mount(&server)
        .await;
    let records = vec![record(
        json!({"attributes": {"type": "Contact"}, "LastName": "A"}),
    )];
    let err = client.create_records(&records, false).await.unwrap_err();
    assert_eq!(err.api_kind(), Some(ApiErrorKind::RowLocked));
    assert!(err.is_retryable());
    // One attempt plus three resends (LockRetry::new(3, ..)).
    assert_eq!(
        requests_to(&server, "POST", &format!("{V}/composite/sobjects"))
            .await
            .len(),
        4
    );
}

#[tokio::test]
async fn request_limit_exceeded_stops_the_run_without_retrying() {
    let (server, client) = setup().await;
    Mock::given(method("PATCH"))
        .and(path(format!("{V}/composite/sobjects")))
        .respond_with(
            ResponseTemplate::new(403)
                .insert_header("Sforce-Limit-Info", "api-usage=15001/15000")
                .set_body_json(json!([{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}])),
        )
        .mount(&server)
        .await;
    let records = vec![record(
        json!({"attributes": {"type": "Contact"}, "id": "003A", "Title": "x"}),
    )];
    let err = client.update_records(&records, false).await.unwrap_err();
    assert_eq!(err.api_kind(), Some(ApiErrorKind::RequestLimitExceeded));
    assert_eq!(
        requests_to(&server, "PATCH", &format!("{V}/composite/sobjects"))
            .await
            .len(),
        1
    );
    assert_eq!(
        client.last_api_usage().unwrap().remaining(),
        0,
        "usage recorded from the error response too"
    );
    let core: sync_core::Error = err.into();
    assert!(core.stops_run());
    match core {
        sync_core::Error::Remote(r) => {
            assert_eq!(r.kind, RemoteErrorKind::QuotaExhausted);
            assert_eq!(r.status, Some(403));
            assert_eq!(r.code.as_deref(), Some("REQUEST_LIMIT_EXCEEDED"));
        }
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn single_upsert_by_external_id_handles_201_200_and_204() {
    let (server, client) = setup().await;
    let body = record(json!({"LastName": "Doe", "Email": "jane@x.com"}));
    for (value, status, resp, created, id) in [
        (
            "m-new",
            201,
            Some(json!({"id": "003N", "success": true, "errors": [], "created": true})),
            true,
            Some("003N"),
        ),
        (
            "m-old",
            200,
            Some(json!({"id": "003O", "success": true, "errors": [], "created": false})),
            false,
            Some("003O"),
        ),
        ("m-legacy", 204, None, false, None),
    ] {
        let mut t = ResponseTemplate::new(status);
        if let Some(r) = resp {
            t = t.set_body_json(r);
        }
        Mock::given(method("PATCH"))
            .and(path(format!(
                "{V}/sobjects/Contact/Cativa_Member_Id__c/{value}"
            )))
            .and(header("sforce-call-options", "client=cativa-crm-sync"))
            .and(body_json(json!({"LastName": "Doe", "Email": "jane@x.com"})))
            .respond_with(t)
            .expect(1)
            .mount(&server)
            .await;
        let out = client
            .upsert_by_external_id("Contact", "Cativa_Member_Id__c", value, &body)
            .await
            .unwrap();
        assert_eq!((out.created, out.id.as_deref()), (created, id), "{value}");
    }
    // A value that is not plain (here an email with a '/') travels in the body of a
    // one-record collections upsert, never in the path.
    Mock::given(method("PATCH"))
        .and(path(format!("{V}/composite/sobjects/Contact/Email")))
        .and(body_json(json!({"allOrNone": false, "records": [
            {"attributes": {"type": "Contact"}, "LastName": "Doe", "Email": "a/b@x.com"}
        ]})))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!([{"id": "003E", "success": true, "errors": [], "created": false}]),
        ))
        .expect(1)
        .mount(&server)
        .await;
    let out = client
        .upsert_by_external_id(
            "Contact",
            "Email",
            "a/b@x.com",
            &record(json!({"LastName": "Doe"})),
        )
        .await
        .unwrap();
    assert_eq!(out.id.as_deref(), Some("003E"));
    let invalid = client
        .upsert_by_external_id(
            "Contact",
            "Cativa_Member_Id__c",
            "m",
            &record(json!({"Cativa_Member_Id__c": "m"})),
        )
        .await
        .unwrap_err();
    assert!(matches!(invalid, Error::Config(_)));
}

#[tokio::test]
async fn multiple_matches_are_a_conflict_not_a_retry() {
    let (server, client) = setup().await;
    Mock::given(method("PATCH"))
        .and(path(format!(
            "{V}/sobjects/Contact/Cativa_Member_Id__c/m-1"
        )))
        .respond_with(ResponseTemplate::new(300).set_body_json(json!([
            format!("{V}/sobjects/Contact/003A00000000001AAA"),
            format!("{V}/sobjects/Contact/003A00000000002AAA")
        ])))
        .mount(&server)
        .await;
    let err = client
        .upsert_by_external_id(
            "Contact",
            "Cativa_Member_Id__c",
            "m-1",
            &record(json!({"LastName": "Doe"})),
        )
        .await
        .unwrap_err();
    match &err {
        Error::MultipleMatches {
            candidates, field, ..
        } => {
            assert_eq!(field, "Cativa_Member_Id__c");
            assert_eq!(
                candidates,
                &vec![
                    "003A00000000001AAA".to_owned(),
                    "003A00000000002AAA".to_owned()
                ]
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(!err.is_retryable());
    assert_eq!(err.remote_kind(), RemoteErrorKind::Conflict);
    assert_eq!(
        requests_to(
            &server,
            "PATCH",
            &format!("{V}/sobjects/Contact/Cativa_Member_Id__c/m-1")
        )
        .await
        .len(),
        1
    );
    // In the body form, several matches are a per-record DUPLICATE_EXTERNAL_ID.
    Mock::given(method("PATCH"))
        .and(path(format!("{V}/composite/sobjects/Contact/Email")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([{"success": false, "errors": [
            {"statusCode": "DUPLICATE_EXTERNAL_ID", "message": "Email: more than one record found for external id field", "fields": []}
        ]}])))
        .mount(&server)
        .await;
    let err = client
        .upsert_by_external_id(
            "Contact",
            "Email",
            "jane@x.com",
            &record(json!({"LastName": "Doe"})),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::MultipleMatches { .. }), "{err}");
}

#[tokio::test]
async fn duplicate_value_and_entity_deleted_on_single_calls() {
    let (server, client) = setup().await;
    Mock::given(method("PATCH"))
        .and(path(format!("{V}/sobjects/Contact/Cativa_Member_Id__c/m-dup")))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!([{
            "message": "duplicate value found: Cativa_Member_Id__c duplicates value on record with id: 003A00000000009AAA",
            "errorCode": "DUPLICATE_VALUE", "fields": []
        }])))
        .mount(&server)
        .await;
    let err = client
        .upsert_by_external_id(
            "Contact",
            "Cativa_Member_Id__c",
            "m-dup",
            &record(json!({"LastName": "Doe"})),
        )
        .await
        .unwrap_err();
    match &err {
        Error::Api {
            kind,
            errors,
            status,
            ..
        } => {
            assert_eq!((*kind, *status), (ApiErrorKind::Duplicate, 400));
            assert_eq!(errors[0].duplicate_id(), Some("003A00000000009AAA"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(err.remote_kind(), RemoteErrorKind::Conflict);

    Mock::given(method("PATCH"))
        .and(path(format!("{V}/composite/sobjects")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            {"success": false, "errors": [{"statusCode": "ENTITY_IS_DELETED", "message": "entity is deleted", "fields": []}]}
        ])))
        .mount(&server)
        .await;
    let r = client
        .update_records(
            &[record(
                json!({"attributes": {"type": "Contact"}, "id": "003D", "Title": "x"}),
            )],
            false,
        )
        .await
        .unwrap();
    assert_eq!(r[0].errors[0].kind(None), ApiErrorKind::EntityDeleted);
    assert_eq!(
        ApiErrorKind::EntityDeleted.remote_kind(),
        RemoteErrorKind::NotFound
    );
}

/// Rejects the whole call (400 INVALID_FIELD) when any record names `Bad__c`, like
/// Salesforce does for an unknown field; otherwise one success per record.
struct RejectUnknownField(AtomicUsize);

impl Respond for RejectUnknownField {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        self.0.fetch_add(1, Ordering::SeqCst);
        let body: Value = serde_json::from_slice(&req.body).unwrap();
        let recs = body["records"].as_array().unwrap();
        if recs.iter().any(|r| r.get("Bad__c").is_some()) {
            return ResponseTemplate::new(400).set_body_json(json!([{
                "message": "No such column 'Bad__c' on sobject of type Contact", "errorCode": "INVALID_FIELD", "fields": ["Bad__c"]
            }]));
        }
        let results: Vec<Value> = recs
            .iter()
            .map(|r| json!({"id": r["id"], "success": true, "errors": []}))
            .collect();
        ResponseTemplate::new(200).set_body_json(results)
    }
}

#[tokio::test]
async fn a_batch_rejected_as_a_whole_is_halved_until_the_bad_record_stands_alone() {
    let (server, client) = setup().await;
    Mock::given(method("PATCH"))
        .and(path(format!("{V}/composite/sobjects")))
        .respond_with(RejectUnknownField(AtomicUsize::new(0)))
        .mount(&server)
        .await;
    let records: Vec<Record> = (0..8)
        .map(|i| {
            let mut r = record(
                json!({"attributes": {"type": "Contact"}, "id": format!("003{i}"), "Title": "x"}),
            );
            if i == 5 {
                r.insert("Bad__c".into(), json!("y"));
            }
            r
        })
        .collect();
    let results = client.update_records(&records, false).await.unwrap();
    assert_eq!(results.len(), 8);
    for (i, r) in results.iter().enumerate() {
        if i == 5 {
            assert!(!r.success);
            assert_eq!(r.errors[0].code, "INVALID_FIELD");
        } else {
            assert!(r.success, "{i}: {r:?}");
            assert_eq!(
                r.id.as_deref(),
                Some(format!("003{i}").as_str()),
                "results stay in input order"
            );
        }
    }
    // 8 -> 4+4 -> (4 ok) 2+2 -> (2 ok) 1+1: 1 + 2 + 2 + 2 calls.
    assert_eq!(
        requests_to(&server, "PATCH", &format!("{V}/composite/sobjects"))
            .await
            .len(),
        7
    );

    // With allOrNone the caller asked for all or nothing: the rejection stands.
    let err = client.update_records(&records, true).await.unwrap_err();
    assert_eq!(err.code(), Some("INVALID_FIELD"));
}

#[tokio::test]
async fn an_upsert_by_key_is_resent_after_a_503_but_a_create_is_not() {
    let (server, client) = setup().await;
    let unavailable = || {
        ResponseTemplate::new(503).set_body_json(
            json!([{"message": "Server unavailable", "errorCode": "SERVER_UNAVAILABLE"}]),
        )
    };
    Mock::given(method("PATCH"))
        .and(path(format!(
            "{V}/sobjects/Contact/Cativa_Member_Id__c/m-1"
        )))
        .respond_with(unavailable())
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path(format!(
            "{V}/sobjects/Contact/Cativa_Member_Id__c/m-1"
        )))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(
                json!({"id": "003N", "success": true, "errors": [], "created": true}),
            ),
        )
        .mount(&server)
        .await;
    let out = client
        .upsert_by_external_id(
            "Contact",
            "Cativa_Member_Id__c",
            "m-1",
            &record(json!({"LastName": "Doe"})),
        )
        .await
        .unwrap();
    assert!(out.created);
    assert_eq!(
        requests_to(
            &server,
            "PATCH",
            &format!("{V}/sobjects/Contact/Cativa_Member_Id__c/m-1")
        )
        .await
        .len(),
        2
    );

    Mock::given(method("POST"))
        .and(path(format!("{V}/composite/sobjects")))
        .respond_with(unavailable())
        .mount(&server)
        .await;
    let err = client
        .create_records(
            &[record(
                json!({"attributes": {"type": "Contact"}, "LastName": "Doe"}),
            )],
            false,
        )
        .await
        .unwrap_err();
    assert!(
        err.is_retryable(),
        "the engine may retry later, knowing the risk"
    );
    assert_eq!(
        requests_to(&server, "POST", &format!("{V}/composite/sobjects"))
            .await
            .len(),
        1,
        "a create is never resent in-process"
    );
}

/// Salesforce does not document `Sforce-Call-Options` for sObject Collections.
fn no_call_options(r: &wiremock::Request) -> bool {
    !r.headers.contains_key("sforce-call-options")
}

#[tokio::test]
async fn http_420_is_a_configuration_error_and_never_retried() {
    let (server, client) = setup().await;
    Mock::given(method("PATCH"))
        .and(path(format!("{V}/composite/sobjects")))
        .respond_with(ResponseTemplate::new(420).set_body_json(json!([
            {"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "no route"}
        ])))
        .expect(1)
        .mount(&server)
        .await;
    let records = vec![record(
        json!({"attributes": {"type": "Contact"}, "id": "003A", "Title": "CTO"}),
    )];
    let err = client.update_records(&records, false).await.unwrap_err();
    assert_eq!(err.api_kind(), Some(ApiErrorKind::EdgeNoRoute), "{err}");
    assert!(!err.is_retryable());
    assert_eq!(err.remote_kind(), RemoteErrorKind::Invalid);
    assert!(err.to_string().contains("Edge"), "{err}");
    // Without a body too.
    server.reset().await;
    Mock::given(method("GET"))
        .and(path(format!("{V}/query")))
        .respond_with(ResponseTemplate::new(420))
        .expect(1)
        .mount(&server)
        .await;
    let err = client
        .query::<Value>("SELECT Id FROM Contact")
        .await
        .unwrap_err();
    assert_eq!(err.api_kind(), Some(ApiErrorKind::EdgeNoRoute), "{err}");
}
