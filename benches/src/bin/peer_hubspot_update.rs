//! The HubSpot side of the peer batch update (`benches/peers/run.sh`): reads the first `n`
//! contact ids page by page (`limit=100`), then sets `jobtitle` on each of them with batch
//! updates of 100, and prints how many it updated.
//!
//! ```text
//! peer_hubspot_update <base-url> <token> <n>
//! ```

use std::collections::BTreeMap;
use std::process::ExitCode;

use crm_hubspot::model::UpdateInput;
use crm_hubspot::{HubSpotClient, ListOptions, RateLimitTier};
use secrecy::SecretString;

async fn run(url: &str, token: &str, n: usize) -> Result<usize, crm_hubspot::Error> {
    let client = HubSpotClient::builder()
        .base_url(url)
        .access_token(SecretString::from(token.to_owned()))
        // The sandbox runs without limits here; never for a real portal.
        .tier(RateLimitTier::Unlimited)
        .build()?;
    let mut ids = Vec::with_capacity(n);
    let mut opts = ListOptions::new(100, vec!["email".to_owned()]);
    while ids.len() < n {
        let page = client.list_contacts(&opts).await?;
        ids.extend(page.results.iter().map(|c| c.id.clone()));
        match page.next_after() {
            Some(after) => opts = opts.after(Some(after.to_owned())),
            None => break,
        }
    }
    ids.truncate(n);
    let mut updated = 0;
    for chunk in ids.chunks(100) {
        let inputs = chunk
            .iter()
            .map(|id| {
                let properties = BTreeMap::from([("jobtitle".to_owned(), format!("Title {id}"))]);
                UpdateInput::new(id.clone(), properties)
            })
            .collect();
        updated += client.batch_update_contacts(inputs).await?.results.len();
    }
    Ok(updated)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, token, n] = args.as_slice() else {
        eprintln!("usage: peer_hubspot_update <base-url> <token> <n>");
        return ExitCode::from(2);
    };
    let Ok(n) = n.parse() else {
        eprintln!("n must be a number");
        return ExitCode::from(2);
    };
    match run(url, token, n).await {
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
