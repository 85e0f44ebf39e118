//! The sync-core ports: `CrmSource` (delta, scan, deletes, merges, tags) and `CrmSink`
//! (find-or-create by email, property updates, activities).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;

use chrono::{Duration, TimeZone, Utc};
use common::*;
use crm_salesforce::{ContactSchema, SalesforceSink, SalesforceSource, TagSource};
use serde_json::{Value, json};
use sync_core::ports::{Activity, ContactDraft, CrmSink, CrmSource, PageToken, PropertyUpdate};
use sync_core::{
    CativaUserId, CrmRecordId, Cursor, Email, IdempotencyKey, RemoteErrorKind, TenantId,
};
use wiremock::matchers::{body_json, method, path, query_param};
use wiremock::{Mock, ResponseTemplate};

fn tenant() -> TenantId {
    TenantId::new("acme")
}

fn schema() -> ContactSchema {
    ContactSchema::contact()
        .with_external_id_field("Cativa_Member_Id__c")
        .with_tags(TagSource::MultiSelect {
            field: "Community_Tags__c".into(),
        })
        .with_tags(TagSource::Checkbox {
            field: "Annual__c".into(),
            tag: "Pago Anual".into(),
        })
}

const FIELDS: &str = "Id, SystemModstamp, IsDeleted, MasterRecordId, Email, Cativa_Member_Id__c, Community_Tags__c, Annual__c";

fn deleted_window(earliest: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "deletedRecords": [], "earliestDateAvailable": earliest, "latestDateCovered": "2026-11-23T12:00:00.000+0000"
    }))
}

#[tokio::test]
async fn delta_reads_query_all_from_the_cursor_with_id_tie_break_and_pages_to_done() {
    let (server, client) = setup().await;
    let source = SalesforceSource::new(client, schema()).unwrap();
    let since = Cursor {
        modified_at: Utc.with_ymd_and_hms(2026, 11, 20, 8, 30, 0).unwrap(),
        last_id: Some("003A00000000005AAA".into()),
    };
    let soql = format!(
        "SELECT {FIELDS}, LastModifiedById FROM Contact WHERE SystemModstamp > 2026-11-20T08:30:00Z OR \
         (SystemModstamp = 2026-11-20T08:30:00Z AND Id > '003A00000000005AAA') ORDER BY SystemModstamp, Id"
    );
    assert_eq!(source.delta_soql(&since).unwrap(), soql);
    Mock::given(method("GET"))
        .and(path(format!("{V}/sobjects/Contact/deleted/")))
        .and(query_param("start", "2026-11-20T08:30:00+00:00"))
        .and(query_param("end", "2026-11-23T12:00:00+00:00"))
        .respond_with(deleted_window("2026-11-10T00:00:00.000+0000"))
        .expect(1)
        .mount(&server)
        .await;
    let next = format!("{V}/query/01gRO0000016PIAYA2-2000");
    let mut live = contact(
        "003A00000000006AAA",
        "Jane@Example.com",
        "2026-11-20T08:30:00.000+0000",
    );
    live["Community_Tags__c"] = json!("Gold;VIP");
    live["Annual__c"] = json!(true);
    live["Cativa_Member_Id__c"] = json!("u-1");
    let mut merged = contact(
        "003A00000000007AAA",
        "old@example.com",
        "2026-11-21T09:00:00.000+0000",
    );
    merged["IsDeleted"] = json!(true);
    merged["MasterRecordId"] = json!("003A00000000006AAA");
    Mock::given(method("GET"))
        .and(path(format!("{V}/queryAll")))
        .and(query_param("q", soql.as_str()))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(query_page(vec![live, merged], Some(&next))),
        )
        .expect(1)
        .mount(&server)
        .await;
    let mut deleted = contact(
        "003A00000000008AAA",
        "gone@example.com",
        "2026-11-22T10:00:00.000+0000",
    );
    deleted["IsDeleted"] = json!(true);
    Mock::given(method("GET"))
        .and(path(next.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(query_page(vec![deleted], None)))
        .expect(1)
        .mount(&server)
        .await;

    let p1 = source.changed_since(&tenant(), &since, None).await.unwrap();
    assert!(!p1.full_reconcile_advised);
    assert_eq!(p1.next, Some(PageToken(next.clone())));
    assert_eq!(p1.contacts.len(), 2);
    let jane = &p1.contacts[0];
    assert_eq!(jane.email.as_ref().unwrap().as_str(), "jane@example.com");
    assert_eq!(
        jane.tags.iter().map(String::as_str).collect::<Vec<_>>(),
        vec!["Gold", "Pago Anual", "VIP"]
    );
    assert_eq!(jane.property("Cativa_Member_Id__c"), Some("u-1"));
    let loser = &p1.contacts[1];
    assert!(loser.archived);
    assert_eq!(
        loser.merged_into,
        Some(CrmRecordId::salesforce("003A00000000006AAA"))
    );

    let p2 = source
        .changed_since(&tenant(), &since, p1.next.as_ref())
        .await
        .unwrap();
    assert_eq!(p2.next, None);
    assert!(p2.contacts[0].archived && p2.contacts[0].merged_into.is_none());
}

#[tokio::test]
async fn delta_advises_a_full_reconcile_when_deletions_may_have_been_purged() {
    let (server, client) = setup().await;
    let source = SalesforceSource::new(client, ContactSchema::contact()).unwrap();
    Mock::given(method("GET"))
        .and(path(format!("{V}/sobjects/Contact/deleted/")))
        .respond_with(deleted_window("2026-11-22T00:00:00.000+0000"))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{V}/queryAll")))
        .respond_with(ResponseTemplate::new(200).set_body_json(query_page(vec![], None)))
        .mount(&server)
        .await;
    // Cursor before earliestDateAvailable: deletes may be gone.
    let since = Cursor::at(Utc.with_ymd_and_hms(2026, 11, 21, 0, 0, 0).unwrap());
    assert!(
        source
            .changed_since(&tenant(), &since, None)
            .await
            .unwrap()
            .full_reconcile_advised
    );
    // Cursor after it: fine.
    let since = Cursor::at(Utc.with_ymd_and_hms(2026, 11, 22, 6, 0, 0).unwrap());
    assert!(
        !source
            .changed_since(&tenant(), &since, None)
            .await
            .unwrap()
            .full_reconcile_advised
    );
    // Older than the 15 days Salesforce keeps: advised without asking.
    let calls_before = requests_to(&server, "GET", &format!("{V}/sobjects/Contact/deleted/"))
        .await
        .len();
    let old = Cursor::at(fixed_now() - Duration::days(20));
    assert!(
        source
            .changed_since(&tenant(), &old, None)
            .await
            .unwrap()
            .full_reconcile_advised
    );
    // The very first run has nothing to miss.
    assert!(
        !source
            .changed_since(&tenant(), &Cursor::beginning(), None)
            .await
            .unwrap()
            .full_reconcile_advised
    );
    assert_eq!(
        requests_to(&server, "GET", &format!("{V}/sobjects/Contact/deleted/"))
            .await
            .len(),
        calls_before
    );
    // Sub-second cursors compare with >= on the whole second.
    let sub = Cursor {
        modified_at: Utc.with_ymd_and_hms(2026, 11, 22, 6, 0, 0).unwrap()
            + Duration::milliseconds(250),
        last_id: Some("003X".into()),
    };
    assert!(
        source
            .delta_soql(&sub)
            .unwrap()
            .contains("WHERE SystemModstamp >= 2026-11-22T06:00:00Z ORDER BY")
    );
}

#[tokio::test]
async fn scan_uses_query_with_the_schema_filter_and_predicate_tags() {
    let (server, client) = setup().await;
    let schema = ContactSchema::lead().with_tags(TagSource::Predicate {
        tag: "Hot".into(),
        soql: "Rating = 'Hot'".into(),
    });
    let source = SalesforceSource::new(client, schema).unwrap();
    let scan = "SELECT Id, SystemModstamp, IsDeleted, MasterRecordId, Email FROM Lead WHERE (IsConverted = false)";
    assert_eq!(source.scan_soql().unwrap(), scan);
    Mock::given(method("GET"))
        .and(path(format!("{V}/query")))
        .and(query_param("q", scan))
        .respond_with(ResponseTemplate::new(200).set_body_json(query_page(
            vec![
                contact("00QA", "a@x.com", "2026-11-01T00:00:00.000+0000"),
                contact("00QB", "b@x.com", "2026-11-01T00:00:00.000+0000"),
            ],
            None,
        )))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{V}/query")))
        .and(query_param(
            "q",
            "SELECT Id FROM Lead WHERE Id IN ('00QA', '00QB') AND (Rating = 'Hot')",
        ))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(query_page(vec![json!({"Id": "00QB"})], None)),
        )
        .expect(1)
        .mount(&server)
        .await;
    let page = source.scan(&tenant(), None).await.unwrap();
    assert!(page.next.is_none());
    assert!(page.contacts[0].tags.is_empty());
    assert!(page.contacts[1].tags.contains("Hot"));
}

#[tokio::test]
async fn find_by_email_escapes_the_literal_and_get_by_ids_skips_foreign_ids() {
    let (server, client) = setup().await;
    let source = SalesforceSource::new(
        client,
        ContactSchema::contact().with_alternate_email_field("Community_Email__c"),
    )
    .unwrap();
    let email = Email::parse("o'hara@example.com").unwrap();
    Mock::given(method("GET"))
        .and(path(format!("{V}/query")))
        .and(query_param(
            "q",
            "SELECT Id, SystemModstamp, IsDeleted, MasterRecordId, Email, Community_Email__c FROM Contact WHERE \
             Email = 'o\\'hara@example.com' OR Community_Email__c = 'o\\'hara@example.com' ORDER BY SystemModstamp DESC",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(query_page(
            vec![contact("003A", "o'hara@example.com", "2026-11-01T00:00:00.000+0000")],
            None,
        )))
        .expect(1)
        .mount(&server)
        .await;
    let found = source.find_by_email(&tenant(), &email).await.unwrap();
    assert_eq!(found.len(), 1);

    Mock::given(method("GET"))
        .and(path(format!("{V}/query")))
        .and(query_param(
            "q",
            "SELECT Id, SystemModstamp, IsDeleted, MasterRecordId, Email, Community_Email__c FROM Contact WHERE Id IN ('003A', '003B')",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(query_page(
            vec![contact("003A", "a@x.com", "2026-11-01T00:00:00.000+0000")],
            None,
        )))
        .expect(1)
        .mount(&server)
        .await;
    let got = source
        .get_by_ids(
            &tenant(),
            &[
                CrmRecordId::salesforce("003A"),
                CrmRecordId::hubspot("42"),
                CrmRecordId::salesforce("003B"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(got.len(), 1, "missing ids are left out");
}

#[tokio::test]
async fn malformed_query_and_quota_errors_reach_the_engine_classified() {
    let (server, client) = setup().await;
    let source = SalesforceSource::new(client, ContactSchema::contact()).unwrap();
    Mock::given(method("GET"))
        .and(path(format!("{V}/query")))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!([{
            "message": "unexpected token: 'FROM'", "errorCode": "MALFORMED_QUERY"
        }])))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{V}/query")))
        .respond_with(ResponseTemplate::new(403).set_body_json(json!([{
            "message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"
        }])))
        .mount(&server)
        .await;
    let err = source.scan(&tenant(), None).await.unwrap_err();
    match &err {
        sync_core::Error::Remote(r) => {
            assert_eq!(
                (r.kind, r.code.as_deref()),
                (RemoteErrorKind::Invalid, Some("MALFORMED_QUERY"))
            );
        }
        other => panic!("{other}"),
    }
    assert!(!err.stops_run());
    let err = source.scan(&tenant(), None).await.unwrap_err();
    assert!(
        err.stops_run(),
        "REQUEST_LIMIT_EXCEEDED ends the run cleanly: {err}"
    );
}

fn draft(email: &str, user: Option<&str>, props: &[(&str, &str)]) -> ContactDraft {
    ContactDraft::new(
        Email::parse(email).unwrap(),
        user.map(CativaUserId::new),
        props
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        IdempotencyKey::derive(&[email]),
    )
}

#[tokio::test]
async fn upsert_contacts_finds_by_email_first_then_updates_or_upserts_by_external_id() {
    let (server, client) = setup().await;
    let sink = SalesforceSink::new(client, schema()).unwrap();
    Mock::given(method("GET"))
        .and(path(format!("{V}/query")))
        .and(query_param(
            "q",
            "SELECT Id, Email, SystemModstamp FROM Contact WHERE Email IN ('jane@x.com', 'new@x.com', 'plain@x.com') \
             ORDER BY SystemModstamp DESC",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(query_page(
            vec![
                json!({"Id": "003NEWEST", "Email": "Jane@X.com", "SystemModstamp": "2026-11-02T00:00:00.000+0000"}),
                json!({"Id": "003OLDER", "Email": "jane@x.com", "SystemModstamp": "2026-11-01T00:00:00.000+0000"}),
            ],
            None,
        )))
        .expect(1)
        .mount(&server)
        .await;
    // Existing: update by id, stamping the member id.
    Mock::given(method("PATCH"))
        .and(path(format!("{V}/composite/sobjects")))
        .and(no_call_options)
        .and(body_json(json!({"allOrNone": false, "records": [
            {"attributes": {"type": "Contact"}, "id": "003NEWEST", "Title": "CTO", "Cativa_Member_Id__c": "u-jane"}
        ]})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([{"id": "003NEWEST", "success": true, "errors": []}])))
        .expect(1)
        .mount(&server)
        .await;
    // New with a member id: upsert on the external ID.
    Mock::given(method("PATCH"))
        .and(path(format!("{V}/composite/sobjects/Contact/Cativa_Member_Id__c")))
        .and(body_json(json!({"allOrNone": false, "records": [
            {"attributes": {"type": "Contact"}, "Email": "new@x.com", "LastName": "Newman", "Cativa_Member_Id__c": "u-new"}
        ]})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([{"id": "003CREATED", "success": true, "errors": [], "created": true}])))
        .expect(1)
        .mount(&server)
        .await;
    // New without a member id: plain create, default LastName; the create hits a unique
    // value that already exists elsewhere and is linked to it.
    Mock::given(method("POST"))
        .and(path(format!("{V}/composite/sobjects")))
        .and(body_json(json!({"allOrNone": false, "records": [
            {"attributes": {"type": "Contact"}, "Email": "plain@x.com", "LastName": "[not provided]"}
        ]})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([{"success": false, "errors": [{
            "statusCode": "DUPLICATE_VALUE",
            "message": "duplicate value found: Unique_Email__c duplicates value on record with id: 003A00000000009AAA",
            "fields": ["Unique_Email__c"]
        }]}])))
        .expect(1)
        .mount(&server)
        .await;

    let drafts = vec![
        draft("new@x.com", Some("u-new"), &[("LastName", "Newman")]),
        draft("jane@x.com", Some("u-jane"), &[("Title", "CTO")]),
        draft("plain@x.com", None, &[]),
        draft("JANE@x.com", None, &[]),
    ];
    let out = sink.upsert_contacts(&tenant(), &drafts).await.unwrap();
    let got: Vec<(String, bool)> = out
        .into_iter()
        .map(|r| {
            let p = r.unwrap();
            (p.id.id, p.created)
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("003CREATED".to_owned(), true),
            ("003NEWEST".to_owned(), false),
            ("003A00000000009AAA".to_owned(), false),
            ("003NEWEST".to_owned(), false),
        ]
    );
}

#[tokio::test]
async fn upserting_1000_new_contacts_takes_exactly_5_collection_calls() {
    let (server, client) = setup().await;
    let sink = SalesforceSink::new(client, schema()).unwrap();
    assert_eq!(sink.max_batch(), 200);
    Mock::given(method("GET"))
        .and(path(format!("{V}/query")))
        .respond_with(ResponseTemplate::new(200).set_body_json(query_page(vec![], None)))
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path(format!(
            "{V}/composite/sobjects/Contact/Cativa_Member_Id__c"
        )))
        .respond_with(EchoCollection::new("003", Some(true)))
        .mount(&server)
        .await;
    let drafts: Vec<ContactDraft> = (0..1000)
        .map(|i| {
            draft(
                &format!("member{i:04}@example.com"),
                Some(&format!("u-{i}")),
                &[("LastName", "Member")],
            )
        })
        .collect();
    let out = sink.upsert_contacts(&tenant(), &drafts).await.unwrap();
    assert_eq!(out.len(), 1000);
    assert!(out.iter().all(|r| r.as_ref().is_ok_and(|p| p.created)));
    let all = server.received_requests().await.unwrap();
    let collection_calls = all
        .iter()
        .filter(|r| r.url.path().starts_with(&format!("{V}/composite/")))
        .count();
    assert_eq!(collection_calls, 5);
    let lookups = all
        .iter()
        .filter(|r| r.url.path() == format!("{V}/query"))
        .count();
    assert_eq!(lookups, 5, "emails looked up 200 at a time");
    // The sink reports its own calls by endpoint, for the run report.
    let calls = sink.api_calls();
    assert_eq!(calls.get("GET /services/data/{version}/query"), Some(&5));
    assert_eq!(
        calls.get("PATCH /services/data/{version}/composite/sobjects/{object}/{field}"),
        Some(&5)
    );
    assert_eq!(calls.len(), 2);
    // Each draft got the id of its own record.
    let calls = requests_to(
        &server,
        "PATCH",
        &format!("{V}/composite/sobjects/Contact/Cativa_Member_Id__c"),
    )
    .await;
    let first: Value = serde_json::from_slice(&calls[0].body).unwrap();
    let first_email = first["records"][0]["Email"].as_str().unwrap();
    let idx = drafts
        .iter()
        .position(|d| d.email.as_str() == first_email)
        .unwrap();
    assert_eq!(out[idx].as_ref().unwrap().id.id, "003000000000000000");
}

#[tokio::test]
async fn property_updates_map_per_record_errors_back_to_inputs() {
    let (server, client) = setup().await;
    let sink = SalesforceSink::new(client, schema())
        .unwrap()
        .all_or_none(true);
    Mock::given(method("PATCH"))
        .and(path(format!("{V}/composite/sobjects")))
        .and(body_json(json!({"allOrNone": true, "records": [
            {"attributes": {"type": "Contact"}, "id": "003A", "Title": "CTO"},
            {"attributes": {"type": "Contact"}, "id": "003D", "Title": "CEO"}
        ]})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            {"id": "003A", "success": false, "errors": [{"statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK", "message": "Record rolled back because not all records were valid and the request was using AllOrNone header", "fields": []}]},
            {"success": false, "errors": [{"statusCode": "ENTITY_IS_DELETED", "message": "entity is deleted", "fields": []}]}
        ])))
        .expect(1)
        .mount(&server)
        .await;
    let key = IdempotencyKey::derive(&["k"]);
    let title = |v: &str| BTreeMap::from([("Title".to_owned(), v.to_owned())]);
    let updates = vec![
        PropertyUpdate::new(CrmRecordId::salesforce("003A"), title("CTO"), key.clone()),
        PropertyUpdate::new(CrmRecordId::hubspot("77"), title("x"), key.clone()),
        PropertyUpdate::new(
            CrmRecordId::salesforce("003Z"),
            BTreeMap::new(),
            key.clone(),
        ),
        PropertyUpdate::new(CrmRecordId::salesforce("003D"), title("CEO"), key.clone()),
    ];
    let out = sink.update_properties(&tenant(), &updates).await.unwrap();
    let kind = |i: usize| match &out[i] {
        Err(sync_core::Error::Remote(r)) => Some(r.kind),
        _ => None,
    };
    assert!(
        out[0].as_ref().is_err_and(|e| e.is_retryable()),
        "rolled back: retryable"
    );
    assert_eq!(
        kind(1),
        Some(RemoteErrorKind::Invalid),
        "not a Salesforce id: no call"
    );
    assert!(out[2].is_ok(), "nothing to write");
    assert_eq!(
        kind(3),
        Some(RemoteErrorKind::NotFound),
        "ENTITY_IS_DELETED: gone"
    );
}

#[tokio::test]
async fn activities_become_completed_tasks_upserted_on_their_key() {
    let (server, client) = setup().await;
    let sink = SalesforceSink::new(
        client,
        schema().with_task_key_field("Cativa_Activity_Key__c"),
    )
    .unwrap();
    let key = IdempotencyKey::derive(&["badge", "jane"]);
    Mock::given(method("PATCH"))
        .and(path(format!("{V}/composite/sobjects/Task/Cativa_Activity_Key__c")))
        .and(no_call_options)
        .and(body_json(json!({"allOrNone": false, "records": [{
            "attributes": {"type": "Task"}, "WhoId": "003A", "Subject": "Received badge Premium",
            "Description": "Jane received Premium", "ActivityDate": "2026-11-20", "Status": "Completed",
            "Cativa_Activity_Key__c": key.as_str()
        }]})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([{"id": "00TA", "success": true, "errors": [], "created": true}])))
        .expect(1)
        .mount(&server)
        .await;
    let at = Utc.with_ymd_and_hms(2026, 11, 20, 15, 0, 0).unwrap();
    let out = sink
        .log_activities(
            &tenant(),
            &[Activity::new(
                CrmRecordId::salesforce("003A"),
                "Received badge Premium",
                "Jane received Premium",
                at,
                key.clone(),
            )],
        )
        .await
        .unwrap();
    assert!(out[0].is_ok());

    // Without a key field: plain creates.
    let (server, client) = setup().await;
    let sink = SalesforceSink::new(client, schema()).unwrap();
    Mock::given(method("POST"))
        .and(path(format!("{V}/composite/sobjects")))
        .respond_with(EchoCollection::new("00T", None))
        .expect(1)
        .mount(&server)
        .await;
    let out = sink
        .log_activities(
            &tenant(),
            &[Activity::new(
                CrmRecordId::salesforce("003A"),
                "s",
                "b",
                at,
                key,
            )],
        )
        .await
        .unwrap();
    assert!(out[0].is_ok());
    let body: Value = serde_json::from_slice(
        &requests_to(&server, "POST", &format!("{V}/composite/sobjects")).await[0].body,
    )
    .unwrap();
    assert_eq!(body["records"][0]["attributes"]["type"], json!("Task"));
}

/// Salesforce does not document `Sforce-Call-Options` for sObject Collections.
fn no_call_options(r: &wiremock::Request) -> bool {
    !r.headers.contains_key("sforce-call-options")
}

#[tokio::test]
async fn an_updated_contact_is_provisioned_with_its_record_id() {
    let (server, client) = setup().await;
    let sink = SalesforceSink::new(client, schema()).unwrap();
    Mock::given(method("GET"))
        .and(path(format!("{V}/query")))
        .respond_with(ResponseTemplate::new(200).set_body_json(query_page(
            vec![json!({"Id": "003KNOWN", "Email": "jane@x.com", "SystemModstamp": "2026-11-02T00:00:00.000+0000"})],
            None,
        )))
        .mount(&server)
        .await;
    // A success result that leaves the id out: the sink knows it from the record it sent.
    Mock::given(method("PATCH"))
        .and(path(format!("{V}/composite/sobjects")))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!([{"success": true, "errors": []}])),
        )
        .expect(1)
        .mount(&server)
        .await;
    let out = sink
        .upsert_contacts(&tenant(), &[draft("jane@x.com", None, &[("Title", "CTO")])])
        .await
        .unwrap();
    let p = out[0].as_ref().unwrap();
    assert_eq!(p.id.id, "003KNOWN");
    assert!(!p.created);
}
