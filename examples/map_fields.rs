//! Field mapping suggestions from the live schemas of both CRMs, on sandbox servers.
//!
//! ```text
//! cargo run --example map_fields
//! ```
//!
//! Starts fake HubSpot and Salesforce servers on 127.0.0.1, reads HubSpot's contact
//! properties and Salesforce's Contact describe, and prints, for each CRM, the mappings
//! `suggest_mappings` proposes for a few community profile fields, with their confidence and
//! reasons. The Salesforce suggestions are then checked against the live schema (the field
//! exists, and is updateable when the mapping writes the CRM). No account, nothing written.

use cativa_crm_sync::core::suggest::{CommunityField, FieldKind, Suggestion, suggest_mappings};
use cativa_crm_sync::hubspot::Schema;
use cativa_crm_sync::prelude::*;
use cativa_crm_sync::salesforce::{OAuthFlow, SalesforceClient};
use cativa_crm_sync::sandbox::{SandboxConfig, SandboxServer, hubspot, salesforce};

fn print(crm: &str, suggestions: &[Suggestion]) {
    println!("{crm}: {} suggestions", suggestions.len());
    for s in suggestions {
        println!(
            "  {} -> {}  (confidence {:.2})",
            s.mapping.community,
            s.mapping.crm.names().join(", "),
            s.confidence
        );
        for reason in &s.reasons {
            println!("      - {reason}");
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!(
        "Sandbox mode: fake HubSpot and Salesforce servers on 127.0.0.1 (no account is touched)."
    );
    let sandbox = SandboxServer::start(SandboxConfig::default()).await?;
    let community = [
        CommunityField::new("email", FieldKind::Email),
        CommunityField::new("firstName", FieldKind::Text),
        CommunityField::new("lastName", FieldKind::Text),
        CommunityField::new("jobTitle", FieldKind::Text),
        CommunityField::new("phone", FieldKind::Phone),
    ];

    let hubspot = HubSpotClient::builder()
        .base_url(sandbox.hubspot().base_url())
        .access_token(SecretString::from(hubspot::DEFAULT_ACCESS_TOKEN))
        .build()?;
    let schema = Schema::new(hubspot.list_contact_properties().await?);
    let hs_props = schema.crm_properties();
    println!("HubSpot: {} writable contact properties.", hs_props.len());
    print("HubSpot", &suggest_mappings(&community, &hs_props));

    let salesforce = SalesforceClient::builder()
        .flow(OAuthFlow::AccessToken(SecretString::from(
            salesforce::DEFAULT_ACCESS_TOKEN,
        )))
        .instance_url(sandbox.salesforce().base_url())
        .build()?;
    let contact = salesforce.describe("Contact").await?;
    let sf_props = contact.crm_properties();
    println!("Salesforce: {} updateable Contact fields.", sf_props.len());
    let sf_suggestions = suggest_mappings(&community, &sf_props);
    print("Salesforce", &sf_suggestions);

    let mappings: Vec<_> = sf_suggestions.iter().map(|s| s.mapping.clone()).collect();
    let issues = contact.check_mappings(&mappings);
    if issues.is_empty() {
        println!("Salesforce: every suggested mapping fits the live schema.");
    }
    for issue in issues {
        println!("Salesforce: {}: {}", issue.at, issue.issue);
    }
    Ok(())
}
