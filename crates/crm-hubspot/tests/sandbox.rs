#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The connector against the in-process HubSpot sandbox (127.0.0.1): a second, independent
//! implementation of the API, so shape mismatches show up here.

use std::collections::{BTreeMap, HashSet};

use chrono::Utc;
use crm_hubspot::model::PropertyCreate;
use crm_hubspot::{
    ContactMapping, HubSpotClient, HubSpotSink, HubSpotSource, RateLimitTier, SinkConfig,
    SourceConfig, TagSource,
};
use secrecy::SecretString;
use sync_core::plan::IdempotencyKey;
use sync_core::ports::{ContactDraft, CrmSink, CrmSource, PageToken};
use sync_core::{CativaUserId, Cursor, Email, TenantId};
use sync_sandbox::datagen::DataGenConfig;
use sync_sandbox::hubspot::{DEFAULT_ACCESS_TOKEN, HubSpotConfig, HubSpotSandbox};
use sync_sandbox::ratelimit::RateLimits;

async fn sandbox(contacts: usize) -> HubSpotSandbox {
    let hs =
        HubSpotSandbox::start(HubSpotConfig::default().with_rate_limits(RateLimits::unlimited()))
            .await
            .unwrap();
    if contacts > 0 {
        hs.seed_generated(
            &DataGenConfig::default()
                .with_contacts(contacts)
                .with_duplicate_email_share(0.0),
        )
        .unwrap();
    }
    hs
}

fn client(hs: &HubSpotSandbox) -> HubSpotClient {
    HubSpotClient::builder()
        .base_url(hs.base_url())
        .access_token(SecretString::from(DEFAULT_ACCESS_TOKEN))
        .tier(RateLimitTier::Custom {
            requests: 100_000,
            window_ms: 1000,
        })
        .search_limit(sync_http::RateLimit::new(
            10_000,
            std::time::Duration::from_secs(1),
        ))
        .build()
        .unwrap()
}

fn source(hs: &HubSpotSandbox) -> HubSpotSource {
    let mapping = ContactMapping::default()
        .with_tags(TagSource::CheckboxProperty(hs.tags_property().to_owned()));
    HubSpotSource::new(client(hs), SourceConfig::new(mapping))
}

#[tokio::test]
async fn full_scan_reads_1000_contacts_in_10_list_calls() {
    let hs = sandbox(1000).await;
    let src = source(&hs);
    let tenant = TenantId::new("t");
    let mut token: Option<PageToken> = None;
    let mut ids = HashSet::new();
    let mut tagged = 0;
    loop {
        let page = src.scan(&tenant, token.as_ref()).await.unwrap();
        for c in &page.contacts {
            assert!(ids.insert(c.id.id.clone()));
            tagged += usize::from(!c.tags.is_empty());
        }
        match page.next {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    assert_eq!(ids.len(), 1000);
    assert!(tagged > 0, "tags come from the checkbox property");
    assert_eq!(hs.requests().count("GET /crm/v3/objects/contacts"), 10);
    hs.shutdown().await;
}

#[tokio::test]
async fn delta_sees_changes_and_archives_since_the_cursor() {
    let hs = sandbox(300).await;
    let src = source(&hs);
    let tenant = TenantId::new("t");
    let mut all = Vec::new();
    let mut token = None;
    loop {
        let page = src
            .changed_since(&tenant, &Cursor::beginning(), token.as_ref())
            .await
            .unwrap();
        all.extend(page.contacts);
        match page.next {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    assert_eq!(all.len(), 300);
    let checkpoint = Cursor::at(Utc::now() - chrono::Duration::milliseconds(1));
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let contacts = hs.contacts();
    let (changed, gone) = (contacts[0].id, contacts[1].id);
    hs.set_property(changed, "firstname", "Changed").unwrap();
    hs.archive_contact(gone).unwrap();
    let mut delta = Vec::new();
    let mut token = None;
    loop {
        let page = src
            .changed_since(&tenant, &checkpoint, token.as_ref())
            .await
            .unwrap();
        delta.extend(page.contacts);
        match page.next {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    let live: Vec<_> = delta
        .iter()
        .filter(|c| !c.archived)
        .map(|c| c.id.id.clone())
        .collect();
    let archived: Vec<_> = delta
        .iter()
        .filter(|c| c.archived)
        .map(|c| c.id.id.clone())
        .collect();
    assert!(live.contains(&changed.to_string()), "{live:?}");
    assert_eq!(archived, vec![gone.to_string()]);
    hs.shutdown().await;
}

#[tokio::test]
async fn sink_upserts_by_member_id_without_duplicates_and_links_existing_emails() {
    let hs = sandbox(0).await;
    let sink = HubSpotSink::new(
        client(&hs),
        SinkConfig::default().with_member_id_property("cativa_member_id"),
    );
    let created = sink
        .ensure_sdk_properties("contactinformation", &["vip".into()])
        .await
        .unwrap();
    assert_eq!(created.len(), 3);
    assert!(
        sink.ensure_sdk_properties("contactinformation", &[])
            .await
            .unwrap()
            .is_empty(),
        "idempotent"
    );
    assert!(PropertyCreate::cativa_member_id("g").has_unique_value);
    let tenant = TenantId::new("t");
    let drafts: Vec<ContactDraft> = (0..150)
        .map(|i| {
            ContactDraft::new(
                Email::parse(&format!("member{i}@example.com")).unwrap(),
                Some(CativaUserId::new(format!("u-{i}"))),
                BTreeMap::from([("firstname".to_owned(), format!("M{i}"))]),
                IdempotencyKey::from_raw(format!("k{i}")),
            )
        })
        .collect();
    let first = sink.upsert_contacts(&tenant, &drafts).await.unwrap();
    assert!(first.iter().all(|r| r.as_ref().unwrap().created));
    assert_eq!(
        hs.requests()
            .count("POST /crm/v3/objects/contacts/batch/upsert"),
        2
    );
    let again = sink.upsert_contacts(&tenant, &drafts).await.unwrap();
    for (a, b) in first.iter().zip(&again) {
        let (a, b) = (a.as_ref().unwrap(), b.as_ref().unwrap());
        assert_eq!(a.id, b.id);
        assert!(!b.created);
    }
    assert_eq!(hs.contacts().len(), 150, "no duplicates");

    // By email (no member id): existing contacts are linked, new ones created once.
    let by_email = HubSpotSink::new(client(&hs), SinkConfig::default());
    let mixed: Vec<ContactDraft> = [3usize, 1000]
        .iter()
        .map(|i| {
            ContactDraft::new(
                Email::parse(&format!("Member{i}@Example.com")).unwrap(),
                None,
                BTreeMap::new(),
                IdempotencyKey::from_raw(format!("e{i}")),
            )
        })
        .collect();
    let out = by_email.upsert_contacts(&tenant, &mixed).await.unwrap();
    assert_eq!(out[0].as_ref().unwrap().id, first[3].as_ref().unwrap().id);
    assert!(!out[0].as_ref().unwrap().created);
    assert!(out[1].as_ref().unwrap().created);
    assert_eq!(hs.contacts().len(), 151);
    hs.shutdown().await;
}
