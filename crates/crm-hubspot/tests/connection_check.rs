#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `SyncEngine::check_connection` over the HubSpot source against the sandbox: the portal
//! id, the scopes against those needed, the properties the source reads, refused tokens.

use std::sync::Arc;

use crm_hubspot::{ContactMapping, HubSpotClient, HubSpotSource, SourceConfig, TagSource};
use secrecy::SecretString;
use sync_core::config::SyncConfig;
use sync_core::ports::{CrmSource, StatusStore};
use sync_core::{MemoryStore, TenantId};
use sync_engine::SyncEngine;
use sync_sandbox::hubspot::{DEFAULT_ACCESS_TOKEN, HubSpotConfig, HubSpotSandbox};

fn source(hs: &HubSpotSandbox, token: &str, extra: &[&str]) -> HubSpotSource {
    let client = HubSpotClient::builder()
        .base_url(hs.base_url())
        .access_token(SecretString::from(token.to_owned()))
        .build()
        .unwrap();
    let mapping = ContactMapping::default()
        .with_tags(TagSource::CheckboxProperty("cativa_tags".into()))
        .with_properties(extra.iter().copied());
    HubSpotSource::new(client, SourceConfig::new(mapping))
}

fn engine_over(source: HubSpotSource) -> (Arc<MemoryStore>, SyncEngine) {
    let store = Arc::new(MemoryStore::new());
    let engine = SyncEngine::builder(SyncConfig::default().validate().unwrap(), store.clone())
        .source(Arc::new(source))
        .build();
    (store, engine)
}

#[tokio::test]
async fn a_good_token_reports_its_portal_scopes_and_properties() {
    let hs = HubSpotSandbox::start(HubSpotConfig::default())
        .await
        .unwrap();
    let t = TenantId::new("acme");
    assert_eq!(
        source(&hs, DEFAULT_ACCESS_TOKEN, &[])
            .account_id(&t)
            .await
            .unwrap(),
        Some(hs.portal_id().to_string())
    );
    let (store, engine) = engine_over(source(&hs, DEFAULT_ACCESS_TOKEN, &["no_such_property"]));
    let report = engine.check_connection(&t).await.unwrap();
    assert!(report.credentials_valid, "{report:?}");
    assert_eq!(report.account_id, Some(hs.portal_id().to_string()));
    assert!(report.scopes_missing.is_empty(), "{report:?}");
    assert_eq!(
        report.missing_fields,
        Some(vec!["no_such_property".to_owned()])
    );
    assert!(!report.is_ready());
    let check = store.credentials_check(&t).await.unwrap().unwrap();
    assert_eq!(check.account_id, Some(hs.portal_id().to_string()));
    assert_eq!(check.error, None);
}

#[tokio::test]
async fn missing_scopes_and_refused_tokens_are_reported() {
    let hs = HubSpotSandbox::start(
        HubSpotConfig::default()
            .with_scopes(["crm.objects.contacts.read", "crm.schemas.contacts.read"]),
    )
    .await
    .unwrap();
    let t = TenantId::new("acme");
    let (_, engine) = engine_over(source(&hs, DEFAULT_ACCESS_TOKEN, &[]));
    let report = engine.check_connection(&t).await.unwrap();
    assert!(report.credentials_valid);
    assert_eq!(
        report.scopes_missing,
        vec!["crm.objects.contacts.write".to_owned()]
    );
    assert_eq!(report.missing_fields, Some(Vec::new()), "{report:?}");

    let (store, engine) = engine_over(source(&hs, "pat-na1-revoked-token-0000", &[]));
    let report = engine.check_connection(&t).await.unwrap();
    assert!(!report.credentials_valid);
    let why = report.error.unwrap();
    assert!(why.contains("refused the credentials"), "{why}");
    assert!(!why.contains("pat-na1-revoked-token-0000"), "{why}");
    assert!(
        store
            .credentials_check(&t)
            .await
            .unwrap()
            .unwrap()
            .error
            .is_some()
    );
}
