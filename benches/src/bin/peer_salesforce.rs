//! The Salesforce side of the peer comparison (`benches/peers/run.sh`): runs one SOQL query
//! against a Salesforce API (the sandbox) and follows `nextRecordsUrl` to the end, in one
//! of three ways, and prints how many records it read:
//!
//! - `typed`: page by page, each record parsed into a typed record borrowing its strings
//!   from the body, then dropped: the same work as `simple-salesforce`, which only parses
//!   each page into dicts;
//! - `pages`: page by page, each record decoded into a `CrmContact` (email normalised,
//!   `SystemModstamp` parsed, properties copied), as the connector's source reads: more
//!   work than Python does;
//! - `keep`: every record kept (`query_to_end` into a typed record).
//!
//! Pages are streamed ([`RawQueryPage::for_each_record`]): no vector of records is built.
//!
//! ```text
//! peer_salesforce typed|pages|keep <instance-url> <token> <soql>
//! ```

use std::borrow::Cow;
use std::process::ExitCode;

use crm_salesforce::models::{PageInfo, RawQueryPage};
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

/// The fields the peer query selects, borrowed from the page body (copied only when a
/// string holds escapes).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
#[allow(dead_code)] // Parsed, not read: the point is the parse.
struct ContactRow<'a> {
    #[serde(borrow)]
    id: Text<'a>,
    #[serde(borrow)]
    system_modstamp: Text<'a>,
    #[serde(borrow)]
    email: Option<Text<'a>>,
    #[serde(borrow)]
    first_name: Option<Text<'a>>,
    #[serde(borrow)]
    last_name: Option<Text<'a>>,
    #[serde(borrow)]
    title: Option<Text<'a>>,
    #[serde(borrow)]
    phone: Option<Text<'a>>,
}

/// A string borrowed from the body. serde borrows a bare `Cow<str>` field but copies one
/// inside an `Option`, so the borrowing is spelled out here.
#[derive(Debug)]
struct Text<'a>(#[allow(dead_code)] Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

/// Follows the query to the end, handing each page to `read` (which returns its paging
/// fields); each body is dropped before the next is fetched.
async fn follow(
    client: &SalesforceClient,
    soql: &str,
    mut read: impl FnMut(&RawQueryPage) -> Result<PageInfo, crm_salesforce::Error>,
) -> Result<(), crm_salesforce::Error> {
    let mut raw = client.query_raw(soql).await?;
    loop {
        let info = read(&raw)?;
        match info.next_records_url {
            Some(next) if !info.done => {
                drop(raw);
                raw = client.query_more_raw(&next).await?;
            }
            _ => return Ok(()),
        }
    }
}

async fn pages(client: &SalesforceClient, soql: &str) -> Result<usize, crm_salesforce::Error> {
    let schema = ContactSchema::contact()
        .with_property("FirstName")
        .with_property("LastName")
        .with_property("Title")
        .with_property("Phone");
    let mut count = 0;
    follow(client, soql, |raw| {
        raw.for_each_record(|r| {
            std::hint::black_box(decode_record(&schema, r)?);
            count += 1;
            Ok(())
        })
    })
    .await?;
    Ok(count)
}

async fn typed(client: &SalesforceClient, soql: &str) -> Result<usize, crm_salesforce::Error> {
    let mut count = 0;
    follow(client, soql, |raw| {
        raw.for_each(|row: ContactRow<'_>| {
            std::hint::black_box(row);
            count += 1;
            Ok(())
        })
    })
    .await?;
    Ok(count)
}

async fn run(mode: &str, url: &str, token: &str, soql: &str) -> Result<usize, String> {
    let client = SalesforceClient::builder()
        .flow(OAuthFlow::AccessToken(SecretString::from(token.to_owned())))
        .instance_url(url)
        .build()
        .map_err(|e| e.to_string())?;
    match mode {
        "pages" => pages(&client, soql).await.map_err(|e| e.to_string()),
        "typed" => typed(&client, soql).await.map_err(|e| e.to_string()),
        "keep" => {
            let all: Vec<Contact> = client
                .query_to_end(soql, false)
                .await
                .map_err(|e| e.to_string())?;
            Ok(std::hint::black_box(all).len())
        }
        other => Err(format!("unknown mode {other:?}: typed, pages or keep")),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let [_, mode, url, token, soql] = args.as_slice() else {
        eprintln!("usage: peer_salesforce typed|pages|keep <instance-url> <token> <soql>");
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
