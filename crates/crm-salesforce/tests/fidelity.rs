//! The connector against the Salesforce sandbox, which refuses what real Salesforce
//! refuses: each test here fails for a client that breaks one of the guide's rules.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crm_salesforce::limits::resume_estimate;
use crm_salesforce::{
    ContactSchema, Error, OAuthFlow, SalesforceClient, SalesforceSink, SalesforceSource, TagSource,
};
use secrecy::SecretString;
use serde_json::{Map, Value, json};
use sync_core::ports::{ContactDraft, ContactPage, CrmSink, CrmSource, PropertyUpdate};
use sync_core::{
    CativaUserId, CrmRecordId, Cursor, Email, IdempotencyKey, RemoteErrorKind, TenantId,
};
use sync_sandbox::salesforce::{
    DEFAULT_CLIENT_ID, DEFAULT_REFRESH_TOKEN, INTEGRATION_USER_ID, SalesforceConfig,
    SalesforceSandbox,
};
use sync_sandbox::{Clock, ManualClock};

fn tenant() -> TenantId {
    TenantId::new("acme")
}

fn client(sandbox: &SalesforceSandbox, clock: &Arc<ManualClock>) -> SalesforceClient {
    let c = Arc::clone(clock);
    SalesforceClient::builder()
        .login_url(sandbox.base_url())
        .flow(OAuthFlow::refresh_token(
            DEFAULT_CLIENT_ID,
            None,
            SecretString::from(DEFAULT_REFRESH_TOKEN),
        ))
        .clock(Arc::new(move || c.now_utc()))
        .build()
        .unwrap()
}

fn schema() -> ContactSchema {
    ContactSchema::contact()
        .with_external_id_field("Cativa_Member_Id__c")
        .with_property("Title")
        .with_tags(TagSource::MultiSelect {
            field: "Cativa_Tags__c".into(),
        })
}

async fn start() -> (SalesforceSandbox, Arc<ManualClock>) {
    let clock = ManualClock::shared();
    let sandbox = SalesforceSandbox::start_with_clock(SalesforceConfig::default(), clock.clone())
        .await
        .unwrap();
    (sandbox, clock)
}

fn fields(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

async fn delta(source: &SalesforceSource, since: &Cursor) -> Vec<String> {
    let mut ids = Vec::new();
    let mut token = None;
    loop {
        let page: ContactPage = source
            .changed_since(&tenant(), since, token.as_ref())
            .await
            .unwrap();
        ids.extend(page.contacts.iter().map(|c| c.id.id.clone()));
        match page.next {
            Some(t) => token = Some(t),
            None => return ids,
        }
    }
}

#[tokio::test]
async fn external_id_values_unsafe_in_a_path_are_upserted_through_the_body() {
    let (sandbox, clock) = start().await;
    let c = client(&sandbox, &clock);
    for value in [".", "..", "a/b", "x@email.inc", "Jürgen-ß", "plain-1"] {
        let record = fields(json!({"LastName": "Doe"}));
        let first = c
            .upsert_by_external_id("Contact", "Cativa_Member_Id__c", value, &record)
            .await
            .unwrap_or_else(|e| panic!("{value}: {e}"));
        assert!(first.created, "{value}");
        let id = first.id.clone().unwrap();
        assert_eq!(
            sandbox.record(&id).unwrap().text("Cativa_Member_Id__c"),
            Some(value),
            "the record carries exactly {value:?}"
        );
        let second = c
            .upsert_by_external_id(
                "Contact",
                "Cativa_Member_Id__c",
                value,
                &fields(json!({"Title": "CTO"})),
            )
            .await
            .unwrap();
        assert_eq!(
            (second.created, second.id.as_deref()),
            (false, Some(id.as_str()))
        );
    }
    assert_eq!(sandbox.records("Contact").len(), 6);
    // Only the plain value travelled in the path.
    assert_eq!(
        sandbox
            .requests()
            .count("PATCH /services/data/{version}/sobjects/{object}/{field}/{value}"),
        2
    );
}

#[tokio::test]
async fn call_options_go_only_where_the_guide_lists_them() {
    let (sandbox, clock) = start().await;
    let c = client(&sandbox, &clock);
    let sink = SalesforceSink::new(c.clone(), schema()).unwrap();
    let source = SalesforceSource::new(c, schema()).unwrap();
    let out = sink
        .upsert_contacts(
            &tenant(),
            &[
                ContactDraft::new(
                    Email::parse("a@example.com").unwrap(),
                    Some(CativaUserId::new("u-a")),
                    BTreeMap::new(),
                    IdempotencyKey::derive(&["a"]),
                ),
                ContactDraft::new(
                    Email::parse("b@example.com").unwrap(),
                    None,
                    BTreeMap::new(),
                    IdempotencyKey::derive(&["b"]),
                ),
            ],
        )
        .await
        .unwrap();
    let id = out[0].as_ref().unwrap().id.clone();
    sink.update_properties(
        &tenant(),
        &[PropertyUpdate::new(
            id,
            BTreeMap::from([("Title".to_owned(), "CTO".to_owned())]),
            IdempotencyKey::derive(&["t"]),
        )],
    )
    .await
    .unwrap()[0]
        .as_ref()
        .unwrap();
    delta(&source, &Cursor::beginning()).await;
    assert_eq!(
        sandbox.misplaced_call_options(),
        Vec::<String>::new(),
        "no Sforce-Call-Options on collections or change windows"
    );
    // The lookups and the delta query carried it.
    assert!(sandbox.call_clients().len() >= 2);
    assert!(
        sandbox
            .call_clients()
            .iter()
            .all(|c| c == "cativa-crm-sync")
    );
}

#[tokio::test]
async fn the_sinks_own_writes_are_not_read_back_as_changes() {
    let (sandbox, clock) = start().await;
    let ids: Vec<String> = (0..3)
        .map(|i| {
            sandbox
                .insert_record(
                    "Contact",
                    fields(
                        json!({"LastName": format!("P{i}"), "Email": format!("p{i}@example.com")}),
                    ),
                )
                .unwrap()
        })
        .collect();
    let c = client(&sandbox, &clock);
    let source = SalesforceSource::new(c.clone(), schema()).unwrap();
    let sink = SalesforceSink::new(c, schema()).unwrap();
    clock.advance(Duration::from_secs(5));
    assert_eq!(delta(&source, &Cursor::beginning()).await.len(), 3);
    assert_eq!(
        source.client().integration_user_id().as_deref(),
        Some(INTEGRATION_USER_ID)
    );

    clock.advance(Duration::from_secs(60));
    let since = Cursor::at(clock.now_utc());
    clock.advance(Duration::from_secs(5));
    // ids[1]: a person tags it, then the sink writes it: the tag must still be read.
    sandbox.add_tag(&ids[1], "Premium").unwrap();
    clock.advance(Duration::from_secs(1));
    let title = |id: &str| {
        PropertyUpdate::new(
            CrmRecordId::salesforce(id),
            BTreeMap::from([("Title".to_owned(), "Member".to_owned())]),
            IdempotencyKey::derive(&[id]),
        )
    };
    let out = sink
        .update_properties(&tenant(), &[title(&ids[0]), title(&ids[1])])
        .await
        .unwrap();
    assert!(out.iter().all(Result::is_ok));
    // ids[2]: a person edits it after no write of ours.
    sandbox.add_tag(&ids[2], "VIP").unwrap();
    // A contact the sink creates.
    let created = sink
        .upsert_contacts(
            &tenant(),
            &[ContactDraft::new(
                Email::parse("new@example.com").unwrap(),
                Some(CativaUserId::new("u-new")),
                BTreeMap::new(),
                IdempotencyKey::derive(&["n"]),
            )],
        )
        .await
        .unwrap()[0]
        .as_ref()
        .unwrap()
        .id
        .id
        .clone();
    assert_eq!(
        sandbox.record(&ids[0]).unwrap().last_modified_by,
        INTEGRATION_USER_ID
    );
    clock.advance(Duration::from_secs(5));

    let mut read = delta(&source, &since).await;
    read.sort();
    let mut want = vec![ids[1].clone(), ids[2].clone()];
    want.sort();
    assert_eq!(read, want, "our pure writes (ids[0], {created}) are echoes");
    assert_eq!(source.echoes_skipped(), 2);

    // A person edits the created contact afterwards: it is read again.
    sandbox.add_tag(&created, "VIP").unwrap();
    clock.advance(Duration::from_secs(5));
    assert!(delta(&source, &since).await.contains(&created));
}

#[tokio::test]
async fn lookups_with_heavily_encoded_emails_stay_under_the_uri_limit() {
    let (sandbox, clock) = start().await;
    let sink = SalesforceSink::new(client(&sandbox, &clock), schema()).unwrap();
    // 40 '+' each: about 57 characters per email, but 3 encoded bytes per '+'.
    let drafts: Vec<ContactDraft> = (0..200)
        .map(|i| {
            ContactDraft::new(
                Email::parse(&format!("{}{i}@example.com", "a+".repeat(20))).unwrap(),
                None,
                BTreeMap::new(),
                IdempotencyKey::derive(&[&i.to_string()]),
            )
        })
        .collect();
    let out = sink.upsert_contacts(&tenant(), &drafts).await.unwrap();
    assert!(
        out.iter().all(Result::is_ok),
        "{:?}",
        out.iter().find(|r| r.is_err())
    );
    assert_eq!(sandbox.records("Contact").len(), 200);
    assert!(
        sandbox
            .requests()
            .count("GET /services/data/{version}/query")
            >= 2,
        "the lookup was split by encoded length"
    );
}

#[tokio::test]
async fn collections_never_exceed_200_records_on_the_sandbox() {
    let (sandbox, clock) = start().await;
    let sink = SalesforceSink::new(client(&sandbox, &clock), schema()).unwrap();
    let drafts: Vec<ContactDraft> = (0..450)
        .map(|i| {
            ContactDraft::new(
                Email::parse(&format!("m{i}@example.com")).unwrap(),
                None,
                BTreeMap::new(),
                IdempotencyKey::derive(&[&i.to_string()]),
            )
        })
        .collect();
    let out = sink.upsert_contacts(&tenant(), &drafts).await.unwrap();
    assert!(out.iter().all(Result::is_ok));
    assert_eq!(sandbox.records("Contact").len(), 450);
    assert_eq!(
        sandbox
            .requests()
            .count("POST /services/data/{version}/composite/sobjects"),
        3
    );
}

#[tokio::test]
async fn versions_below_the_collections_upsert_minimum_are_refused_at_build() {
    let err = SalesforceClient::builder()
        .flow(OAuthFlow::refresh_token(
            DEFAULT_CLIENT_ID,
            None,
            SecretString::from("rt"),
        ))
        .api_version("v45.0")
        .build()
        .unwrap_err();
    assert!(matches!(err, Error::Config(_)));
    assert!(err.to_string().contains("v46.0"), "{err}");
    // v46.0 itself works end to end, collections upsert included.
    let (sandbox, clock) = start().await;
    let c = clock.clone();
    let client = SalesforceClient::builder()
        .login_url(sandbox.base_url())
        .flow(OAuthFlow::refresh_token(
            DEFAULT_CLIENT_ID,
            None,
            SecretString::from(DEFAULT_REFRESH_TOKEN),
        ))
        .api_version("v46.0")
        .clock(Arc::new(move || c.now_utc()))
        .build()
        .unwrap();
    let sink = SalesforceSink::new(client, schema()).unwrap();
    let out = sink
        .upsert_contacts(
            &tenant(),
            &[ContactDraft::new(
                Email::parse("v46@example.com").unwrap(),
                Some(CativaUserId::new("u-46")),
                BTreeMap::new(),
                IdempotencyKey::derive(&["46"]),
            )],
        )
        .await
        .unwrap();
    assert!(out[0].as_ref().unwrap().created);
}

#[tokio::test]
async fn relationship_fields_are_write_protected() {
    let (sandbox, clock) = start().await;
    let id = sandbox
        .insert_record(
            "Contact",
            fields(json!({"LastName": "R", "Email": "r@example.com"})),
        )
        .unwrap();
    let schema = schema().with_property("Account.Name");
    let sink = SalesforceSink::new(client(&sandbox, &clock), schema).unwrap();
    let out = sink
        .update_properties(
            &tenant(),
            &[
                PropertyUpdate::new(
                    CrmRecordId::salesforce(&id),
                    BTreeMap::from([("Account.Name".to_owned(), "Acme".to_owned())]),
                    IdempotencyKey::derive(&["1"]),
                ),
                PropertyUpdate::new(
                    CrmRecordId::salesforce(&id),
                    BTreeMap::from([("Title".to_owned(), "CTO".to_owned())]),
                    IdempotencyKey::derive(&["2"]),
                ),
            ],
        )
        .await
        .unwrap();
    let err = out[0].as_ref().unwrap_err().to_string();
    assert!(
        err.contains("Account.Name") && err.contains("read-only"),
        "{err}"
    );
    assert!(out[1].is_ok());
    let drafts = sink
        .upsert_contacts(
            &tenant(),
            &[ContactDraft::new(
                Email::parse("new@example.com").unwrap(),
                None,
                BTreeMap::from([("Account.Name".to_owned(), "Acme".to_owned())]),
                IdempotencyKey::derive(&["r"]),
            )],
        )
        .await
        .unwrap();
    assert!(drafts[0].is_err());
    assert!(
        sandbox
            .records_by_email("Contact", "new@example.com")
            .is_empty()
    );
    assert_eq!(sandbox.record(&id).unwrap().text("Title"), Some("CTO"));
}

#[tokio::test]
async fn a_spent_daily_allowance_says_when_to_resume() {
    let clock = ManualClock::shared();
    let sandbox = SalesforceSandbox::start_with_clock(
        SalesforceConfig::default().with_daily_budget(3),
        clock.clone(),
    )
    .await
    .unwrap();
    let source = SalesforceSource::new(client(&sandbox, &clock), schema()).unwrap();
    let mut stop = None;
    for _ in 0..5 {
        if let Err(e) = source.scan(&tenant(), None).await {
            stop = Some(e);
            break;
        }
    }
    let Some(sync_core::Error::Remote(r)) = stop else {
        panic!("the budget of 3 calls was never spent");
    };
    assert_eq!(r.kind, RemoteErrorKind::QuotaExhausted);
    let usage = source.client().last_api_usage().unwrap();
    assert!(usage.used >= usage.limit, "{usage:?}");
    let now = clock.now_utc();
    assert_eq!(r.resets_at, Some(resume_estimate(Some(&usage), now)));
    assert!(r.resets_at.unwrap() > now);
}

#[tokio::test]
async fn a_delta_stopped_by_the_daily_allowance_reports_when_to_resume() {
    use sync_core::MemoryStore;
    use sync_core::config::{BadgeRule, Condition, SyncConfig};
    use sync_core::testkit::RecordingBadgeSink;
    use sync_engine::SyncEngine;

    let clock = ManualClock::shared();
    // A budget of one call, spent before the run: the delta's first query is refused.
    let sandbox = SalesforceSandbox::start_with_clock(
        SalesforceConfig::default().with_daily_budget(1),
        clock.clone(),
    )
    .await
    .unwrap();
    sandbox
        .insert_record(
            "Contact",
            fields(
                json!({"LastName": "A", "Email": "a@example.com", "Cativa_Tags__c": "Pago Anual"}),
            ),
        )
        .unwrap();
    let source = SalesforceSource::new(client(&sandbox, &clock), schema()).unwrap();
    let probe = source.client().clone();
    probe
        .query::<Value>("SELECT Id FROM Contact")
        .await
        .unwrap();
    let mut raw = SyncConfig::default();
    raw.badge_rules = vec![BadgeRule::new(
        "annual",
        "Premium",
        Condition::Tag("Pago Anual".into()),
    )];
    let engine = SyncEngine::builder(raw.validate().unwrap(), Arc::new(MemoryStore::new()))
        .source(Arc::new(source))
        .badge_sink(Arc::new(RecordingBadgeSink::new()))
        .build();
    let report = engine.run_delta(&tenant()).await.unwrap();
    assert!(report.stopped.is_some(), "{report}");
    let usage = probe.last_api_usage().unwrap();
    assert_eq!(
        report.resume_after,
        Some(resume_estimate(Some(&usage), clock.now_utc())),
        "{report}"
    );
}
