//! End to end against the independent Salesforce fake of `sync-sandbox` (127.0.0.1): the
//! connector and the fake were written separately, so shape mismatches show up here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::KeyPair as _;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::Utc;
use crm_salesforce::{
    ContactSchema, JwtBearer, OAuthFlow, SalesforceClient, SalesforceSink, SalesforceSource,
    TagSource,
};
use secrecy::SecretString;
use sync_core::ports::{Activity, ContactDraft, ContactPage, CrmSink, CrmSource};
use sync_core::{CativaUserId, Cursor, Email, IdempotencyKey, TenantId};
use sync_sandbox::datagen::DataGenConfig;
use sync_sandbox::salesforce::{
    DEFAULT_CLIENT_ID, DEFAULT_REFRESH_TOKEN, DEFAULT_USERNAME, SalesforceConfig, SalesforceSandbox,
};
use sync_sandbox::{Clock, ManualClock};

fn tenant() -> TenantId {
    TenantId::new("acme")
}

fn client(
    sandbox: &SalesforceSandbox,
    clock: &Arc<ManualClock>,
    flow: OAuthFlow,
) -> SalesforceClient {
    let c = Arc::clone(clock);
    SalesforceClient::builder()
        .login_url(sandbox.base_url())
        .flow(flow)
        .clock(Arc::new(move || c.now_utc()))
        .build()
        .unwrap()
}

fn refresh_flow() -> OAuthFlow {
    OAuthFlow::refresh_token(
        DEFAULT_CLIENT_ID,
        None,
        SecretString::from(DEFAULT_REFRESH_TOKEN),
    )
}

fn schema() -> ContactSchema {
    ContactSchema::contact()
        .with_external_id_field("Cativa_Member_Id__c")
        .with_property("FirstName")
        .with_property("Title")
        .with_tags(TagSource::MultiSelect {
            field: "Cativa_Tags__c".into(),
        })
}

async fn drain<F, Fut>(mut next: F) -> Vec<ContactPage>
where
    F: FnMut(Option<sync_core::ports::PageToken>) -> Fut,
    Fut: std::future::Future<Output = ContactPage>,
{
    let mut pages = Vec::new();
    let mut token = None;
    loop {
        let page = next(token.take()).await;
        token = page.next.clone();
        pages.push(page);
        if token.is_none() {
            return pages;
        }
    }
}

#[tokio::test]
async fn scan_delta_merges_and_deletes_against_the_sandbox() {
    let clock = ManualClock::shared();
    let sandbox = SalesforceSandbox::start_with_clock(
        SalesforceConfig::default().with_query_batch_size(200),
        clock.clone(),
    )
    .await
    .unwrap();
    let people = sandbox
        .seed_generated(
            "Contact",
            &DataGenConfig::default()
                .with_contacts(450)
                .with_tags(["Pago Anual", "VIP"])
                .with_tag_probability(0.5),
        )
        .unwrap();
    let source = SalesforceSource::new(client(&sandbox, &clock, refresh_flow()), schema()).unwrap();

    // Full scan pages by nextRecordsUrl until done.
    let pages = drain(|t| {
        let s = source.clone();
        async move { s.scan(&tenant(), t.as_ref()).await.unwrap() }
    })
    .await;
    assert_eq!(pages.len(), 3, "450 records at 200 per page");
    let all: Vec<_> = pages.iter().flat_map(|p| p.contacts.iter()).collect();
    assert_eq!(all.len(), people.len());
    let tagged = people.iter().filter(|p| !p.tags.is_empty()).count();
    assert_eq!(all.iter().filter(|c| !c.tags.is_empty()).count(), tagged);
    assert!(
        source
            .client()
            .last_api_usage()
            .is_some_and(|u| u.used >= 3)
    );
    // Our per-endpoint counts agree with what the sandbox saw.
    let calls = source.api_calls();
    assert_eq!(calls.get("GET /services/data/{version}/query"), Some(&1));
    assert_eq!(
        calls.get("GET /services/data/{version}/query/{locator}"),
        Some(&2)
    );
    assert_eq!(
        sandbox
            .requests()
            .count("GET /services/data/{version}/query"),
        1
    );
    assert_eq!(
        sandbox
            .requests()
            .count("GET /services/data/{version}/query/{locator}"),
        2
    );

    // Changes after a cursor: a tag, a merge and a delete.
    clock.advance(Duration::from_secs(60));
    let since = Cursor::at(clock.now_utc());
    clock.advance(Duration::from_secs(60));
    let ids: Vec<String> = all.iter().map(|c| c.id.id.clone()).collect();
    sandbox.add_tag(&ids[0], "Premium").unwrap();
    clock.advance(Duration::from_secs(1));
    sandbox.merge(&ids[1], &ids[2]).unwrap();
    clock.advance(Duration::from_secs(1));
    sandbox.delete_record(&ids[3]).unwrap();

    let delta = drain(|t| {
        let s = source.clone();
        let since = since.clone();
        async move {
            s.changed_since(&tenant(), &since, t.as_ref())
                .await
                .unwrap()
        }
    })
    .await;
    assert!(!delta[0].full_reconcile_advised);
    let changed: BTreeMap<_, _> = delta
        .iter()
        .flat_map(|p| p.contacts.iter())
        .map(|c| (c.id.id.clone(), c.clone()))
        .collect();
    assert!(changed[&ids[0]].tags.contains("Premium"));
    assert!(changed[&ids[2]].archived);
    assert_eq!(
        changed[&ids[2]].merged_into.as_ref().map(|w| w.id.as_str()),
        Some(ids[1].as_str())
    );
    assert!(changed[&ids[3]].archived && changed[&ids[3]].merged_into.is_none());
    let order: Vec<_> = delta
        .iter()
        .flat_map(|p| p.contacts.iter())
        .map(|c| (c.updated_at, c.id.id.clone()))
        .collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted, "delta comes in (SystemModstamp, Id) order");

    // A purged recycle bin advises a full reconcile.
    sandbox.set_earliest_deleted_available(clock.now_utc());
    let page = source.changed_since(&tenant(), &since, None).await.unwrap();
    assert!(page.full_reconcile_advised);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn sink_finds_or_creates_without_duplicates_and_logs_tasks() {
    let clock = ManualClock::shared();
    let sandbox = SalesforceSandbox::start_with_clock(SalesforceConfig::default(), clock.clone())
        .await
        .unwrap();
    let people = sandbox
        .seed_generated(
            "Contact",
            &DataGenConfig::default()
                .with_contacts(10)
                .with_duplicate_email_share(0.0),
        )
        .unwrap();
    let sink = SalesforceSink::new(client(&sandbox, &clock, refresh_flow()), schema()).unwrap();

    let existing = Email::parse(&people[0].email).unwrap();
    let drafts = vec![
        ContactDraft::new(
            existing.clone(),
            Some(CativaUserId::new("u-existing")),
            BTreeMap::from([("Title".to_owned(), "Community Lead".to_owned())]),
            IdempotencyKey::derive(&["1"]),
        ),
        ContactDraft::new(
            Email::parse("brand.new@example.com").unwrap(),
            Some(CativaUserId::new("u-new")),
            BTreeMap::from([("LastName".to_owned(), "New".to_owned())]),
            IdempotencyKey::derive(&["2"]),
        ),
        ContactDraft::new(
            Email::parse("no.member@example.com").unwrap(),
            None,
            BTreeMap::new(),
            IdempotencyKey::derive(&["3"]),
        ),
    ];
    let first = sink.upsert_contacts(&tenant(), &drafts).await.unwrap();
    let first: Vec<_> = first.into_iter().map(Result::unwrap).collect();
    assert_eq!(
        first.iter().map(|p| p.created).collect::<Vec<_>>(),
        vec![false, true, true]
    );
    // Running the same batch again finds everything: no duplicates.
    let again: Vec<_> = sink
        .upsert_contacts(&tenant(), &drafts)
        .await
        .unwrap()
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert!(again.iter().all(|p| !p.created));
    assert_eq!(
        again.iter().map(|p| &p.id).collect::<Vec<_>>(),
        first.iter().map(|p| &p.id).collect::<Vec<_>>()
    );
    for d in &drafts {
        assert_eq!(
            sandbox.records_by_email("Contact", d.email.as_str()).len(),
            1,
            "{}",
            d.email
        );
    }
    let rec = sandbox.record(&first[0].id.id).unwrap();
    assert_eq!(rec.fields["Cativa_Member_Id__c"], "u-existing");
    assert_eq!(rec.fields["Title"], "Community Lead");
    assert_eq!(
        sandbox.record(&first[2].id.id).unwrap().fields["LastName"],
        "[not provided]"
    );
    assert!(
        sandbox
            .call_clients()
            .iter()
            .all(|c| c == "cativa-crm-sync")
    );
    assert!(!sandbox.call_clients().is_empty());

    let at = Utc::now();
    let out = sink
        .log_activities(
            &tenant(),
            &[Activity::new(
                first[0].id.clone(),
                "Received badge Premium",
                "granted by rule annual",
                at,
                IdempotencyKey::derive(&["a"]),
            )],
        )
        .await
        .unwrap();
    assert!(out[0].is_ok());
    let tasks = sandbox.tasks();
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].fields["WhoId"], first[0].id.id.as_str());

    // Expired sessions are renewed once and the call goes through.
    let issued = sandbox.tokens_issued();
    sandbox.expire_sessions();
    let found = SalesforceSource::new(sink.client().clone(), schema())
        .unwrap()
        .find_by_email(&tenant(), &existing)
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(sandbox.tokens_issued(), issued + 1);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn jwt_bearer_flow_against_the_sandbox() {
    let key = KeyPair::generate(KeySize::Rsa2048).unwrap();
    let private: Pkcs8V1Der<'static> = key.as_der().unwrap();
    let public: PublicKeyX509Der<'static> = key.public_key().as_der().unwrap();
    let pem = |label: &str, der: &[u8]| {
        let b64 = STANDARD.encode(der);
        let body: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
            body.join("\n")
        )
    };
    let clock = ManualClock::shared();
    let sandbox = SalesforceSandbox::start_with_clock(
        SalesforceConfig::default().with_jwt_public_key_pem(pem("PUBLIC KEY", public.as_ref())),
        clock.clone(),
    )
    .await
    .unwrap();
    sandbox
        .seed_generated("Contact", &DataGenConfig::default().with_contacts(3))
        .unwrap();
    let jwt = JwtBearer::from_pem(
        DEFAULT_CLIENT_ID,
        DEFAULT_USERNAME,
        pem("PRIVATE KEY", private.as_ref()).as_bytes(),
    )
    .unwrap();
    let source = SalesforceSource::new(
        client(&sandbox, &clock, OAuthFlow::JwtBearer(jwt)),
        schema(),
    )
    .unwrap();
    let page = source.scan(&tenant(), None).await.unwrap();
    assert_eq!(page.contacts.len(), 3);
    let emails: BTreeSet<_> = page
        .contacts
        .iter()
        .filter_map(|c| c.email.clone())
        .collect();
    assert_eq!(emails.len(), 3);
    sandbox.shutdown().await;
}
