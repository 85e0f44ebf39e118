//! The Salesforce side of the peer comparison (`benches/peers/run.sh`): runs one SOQL query
//! against a Salesforce API (the sandbox) and follows `nextRecordsUrl` to the end, either
//! page by page (`pages`: each page decoded into `CrmContact`s, as the connector's source
//! reads, then dropped) or keeping every record (`keep`: `query_to_end` into a typed
//! record). Prints how many records it read.
//!
//! ```text
//! peer_salesforce pages|keep <instance-url> <token> <soql>
//! ```

use std::process::ExitCode;

use crm_salesforce::{ContactSchema, OAuthFlow, SalesforceClient, decode_record};
use secrecy::SecretString;
use serde::Deserialize;

/// The fields the peer query selects, kept as read.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
#[allow(dead_code)] // Kept, not read: the point is holding them.
struct Contact {
    id: String,
    system_modstamp: String,
    email: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    title: Option<String>,
    phone: Option<String>,
}

async fn pages(client: &SalesforceClient, soql: &str) -> Result<usize, crm_salesforce::Error> {
    let schema = ContactSchema::contact()
        .with_property("FirstName")
        .with_property("LastName")
        .with_property("Title")
        .with_property("Phone");
    let mut raw = client.query_raw(soql).await?;
    let mut count = 0;
    loop {
        let next = {
            let page = raw.records()?;
            for r in &page.records {
                std::hint::black_box(decode_record(&schema, r)?);
                count += 1;
            }
            match page.next_records_url {
                Some(next) if !page.done => next,
                _ => return Ok(count),
            }
        };
        raw = client.query_more_raw(&next).await?;
    }
}

async fn run(mode: &str, url: &str, token: &str, soql: &str) -> Result<usize, String> {
    let client = SalesforceClient::builder()
        .flow(OAuthFlow::AccessToken(SecretString::from(token.to_owned())))
        .instance_url(url)
        .build()
        .map_err(|e| e.to_string())?;
    match mode {
        "pages" => pages(&client, soql).await.map_err(|e| e.to_string()),
        "keep" => {
            let all: Vec<Contact> = client
                .query_to_end(soql, false)
                .await
                .map_err(|e| e.to_string())?;
            Ok(std::hint::black_box(all).len())
        }
        other => Err(format!("unknown mode {other:?}: pages or keep")),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let [_, mode, url, token, soql] = args.as_slice() else {
        eprintln!("usage: peer_salesforce pages|keep <instance-url> <token> <soql>");
        return ExitCode::from(2);
    };
    match run(mode, url, token, soql).await {
        Ok(n) => {
            println!("records {n}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
