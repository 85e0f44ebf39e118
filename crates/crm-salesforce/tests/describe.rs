#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The live Contact and Lead schemas from the sandbox's describe (127.0.0.1): types,
//! picklist values, updateability, and the checks and suggestions built on them.

use crm_salesforce::describe::FieldIssue;
use crm_salesforce::{OAuthFlow, SalesforceClient};
use secrecy::SecretString;
use sync_core::suggest::{CommunityField, FieldKind, suggest_mappings};
use sync_sandbox::salesforce::{DEFAULT_ACCESS_TOKEN, SalesforceConfig, SalesforceSandbox};

#[tokio::test]
async fn describe_feeds_validation_and_suggestions() {
    let sf = SalesforceSandbox::start(SalesforceConfig::default())
        .await
        .unwrap();
    let client = SalesforceClient::builder()
        .flow(OAuthFlow::AccessToken(SecretString::from(
            DEFAULT_ACCESS_TOKEN,
        )))
        .instance_url(sf.base_url())
        .build()
        .unwrap();
    let contact = client.describe("Contact").await.unwrap();
    assert_eq!(contact.name, "Contact");
    let email = contact.field("Email").unwrap();
    assert_eq!(email.field_type, "email");
    assert!(email.updateable && email.createable);
    let id = contact.field("Id").unwrap();
    assert!(!id.updateable);
    assert_eq!(
        contact.check_value("CreatedDate", "2026-01-01"),
        Err(FieldIssue::NotUpdateable)
    );
    assert!(contact.check_value("LeadSource", "Web").is_ok());
    assert!(matches!(
        contact.check_value("LeadSource", "Carrier pigeon"),
        Err(FieldIssue::NotAPicklistValue { .. })
    ));
    assert_eq!(
        contact.check_value("No_Such__c", "x"),
        Err(FieldIssue::UnknownField)
    );

    let lead = client.describe("Lead").await.unwrap();
    assert!(lead.field("Company").is_some() && lead.field("AccountId").is_none());

    let community = [
        CommunityField::new("email", FieldKind::Email),
        CommunityField::new("jobTitle", FieldKind::Text),
        CommunityField::new("phone", FieldKind::Phone),
    ];
    let suggestions = suggest_mappings(&community, &contact.crm_properties());
    let pick = |c: &str| {
        suggestions
            .iter()
            .find(|s| s.mapping.community == c)
            .map(|s| s.mapping.crm.names().to_vec())
    };
    assert_eq!(pick("email"), Some(vec!["Email".to_owned()]));
    assert_eq!(pick("jobTitle"), Some(vec!["Title".to_owned()]));
    assert!(client.describe("NoSuchObject").await.is_err());
}
