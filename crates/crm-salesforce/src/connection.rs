//! The Salesforce source's connection check: a token (and the org id in its identity URL),
//! then one SOQL query selecting every field the source reads; when Salesforce names a
//! field it does not know (`INVALID_FIELD`), each field is tried alone to list all of them.

use sync_core::ports::ConnectionFacts;

use crate::client::SalesforceClient;
use crate::contact::ContactSchema;
use crate::error::Error;

fn probe(object: &str, fields: &[&str]) -> String {
    format!("SELECT {} FROM {object} LIMIT 1", fields.join(", "))
}

fn invalid_field(e: &Error) -> bool {
    e.code() == Some("INVALID_FIELD")
}

/// The facts for a source reading `schema` through `client`.
pub(crate) async fn facts(
    client: &SalesforceClient,
    schema: &ContactSchema,
) -> Result<ConnectionFacts, Error> {
    client
        .query::<serde_json::Value>(&probe(&schema.object, &["Id"]))
        .await?;
    let mut facts = ConnectionFacts::account(client.org_id());
    facts.unchecked.push(
        "Salesforce scopes: the connected app's scopes are not checked (the API reports them only in the token response)".to_owned(),
    );
    let fields = schema.select_fields();
    let all: Vec<&str> = fields.iter().map(String::as_str).collect();
    match client
        .query::<serde_json::Value>(&probe(&schema.object, &all))
        .await
    {
        Ok(_) => facts.missing_fields = Some(Vec::new()),
        Err(e) if invalid_field(&e) => {
            let mut missing = Vec::new();
            for f in all.iter().filter(|f| **f != "Id") {
                match client
                    .query::<serde_json::Value>(&probe(&schema.object, &["Id", f]))
                    .await
                {
                    Ok(_) => {}
                    Err(e) if invalid_field(&e) => missing.push((*f).to_owned()),
                    Err(e) => return Err(e),
                }
            }
            facts.missing_fields = Some(missing);
        }
        Err(e) => return Err(e),
    }
    Ok(facts)
}
