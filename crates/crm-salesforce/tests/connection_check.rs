#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `SyncEngine::check_connection` over the Salesforce source against the sandbox: the org
//! id, the fields the source reads that the org lacks, refused credentials.

use std::sync::Arc;

use crm_salesforce::{ContactSchema, OAuthFlow, SalesforceClient, SalesforceSource, TagSource};
use secrecy::SecretString;
use sync_core::config::SyncConfig;
use sync_core::ports::{CrmSource, StatusStore};
use sync_core::{MemoryStore, TenantId};
use sync_engine::SyncEngine;
use sync_sandbox::salesforce::{
    DEFAULT_ACCESS_TOKEN, DEFAULT_CLIENT_ID, DEFAULT_REFRESH_TOKEN, SANDBOX_ORG_ID,
    SalesforceConfig, SalesforceSandbox,
};

fn source(sf: &SalesforceSandbox, flow: OAuthFlow, extra: Option<&str>) -> SalesforceSource {
    // A static token has no token response to name the instance.
    let is_static = matches!(flow, OAuthFlow::AccessToken(_));
    let mut builder = SalesforceClient::builder()
        .login_url(sf.base_url())
        .flow(flow);
    if is_static {
        builder = builder.instance_url(sf.base_url());
    }
    let client = builder.build().unwrap();
    let mut schema = ContactSchema::contact()
        .with_property("FirstName")
        .with_tags(TagSource::MultiSelect {
            field: "Cativa_Tags__c".into(),
        });
    if let Some(f) = extra {
        schema = schema.with_property(f);
    }
    SalesforceSource::new(client, schema).unwrap()
}

fn refresh(token: &str) -> OAuthFlow {
    OAuthFlow::refresh_token(
        DEFAULT_CLIENT_ID,
        None,
        SecretString::from(token.to_owned()),
    )
}

fn engine_over(source: SalesforceSource) -> (Arc<MemoryStore>, SyncEngine) {
    let store = Arc::new(MemoryStore::new());
    let engine = SyncEngine::builder(SyncConfig::default().validate().unwrap(), store.clone())
        .source(Arc::new(source))
        .build();
    (store, engine)
}

#[tokio::test]
async fn the_org_id_and_missing_fields_are_reported() {
    let sf = SalesforceSandbox::start(SalesforceConfig::default())
        .await
        .unwrap();
    let t = TenantId::new("acme");
    let by_refresh = source(&sf, refresh(DEFAULT_REFRESH_TOKEN), None);
    assert_eq!(
        by_refresh.account_id(&t).await.unwrap().as_deref(),
        Some(SANDBOX_ORG_ID)
    );
    let by_static = source(
        &sf,
        OAuthFlow::AccessToken(SecretString::from(DEFAULT_ACCESS_TOKEN)),
        None,
    );
    assert_eq!(
        by_static.account_id(&t).await.unwrap().as_deref(),
        Some(SANDBOX_ORG_ID)
    );

    let (store, engine) = engine_over(source(
        &sf,
        refresh(DEFAULT_REFRESH_TOKEN),
        Some("No_Such_Field__c"),
    ));
    let report = engine.check_connection(&t).await.unwrap();
    assert!(report.credentials_valid, "{report:?}");
    assert_eq!(report.account_id.as_deref(), Some(SANDBOX_ORG_ID));
    assert_eq!(
        report.missing_fields,
        Some(vec!["No_Such_Field__c".to_owned()])
    );
    assert!(!report.is_ready());
    assert_eq!(
        store
            .credentials_check(&t)
            .await
            .unwrap()
            .unwrap()
            .account_id
            .as_deref(),
        Some(SANDBOX_ORG_ID)
    );

    let (_, engine) = engine_over(source(&sf, refresh(DEFAULT_REFRESH_TOKEN), None));
    let report = engine.check_connection(&t).await.unwrap();
    assert_eq!(report.missing_fields, Some(Vec::new()), "{report:?}");
    assert!(report.is_ready(), "{report:?}");
}

#[tokio::test]
async fn a_refused_refresh_token_is_a_failed_check() {
    let sf = SalesforceSandbox::start(SalesforceConfig::default())
        .await
        .unwrap();
    let (_, engine) = engine_over(source(&sf, refresh("revoked-refresh-token-xyz"), None));
    let report = engine
        .check_connection(&TenantId::new("acme"))
        .await
        .unwrap();
    assert!(!report.credentials_valid);
    let why = report.error.unwrap();
    assert!(why.contains("refused the credentials"), "{why}");
    assert!(!why.contains("revoked-refresh-token-xyz"), "{why}");
}
