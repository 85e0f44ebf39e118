//! The HubSpot side of the peer comparison (`benches/peers/run.sh`): reads every contact of
//! a HubSpot API (the sandbox) page by page, `limit=100`, with the given properties, and
//! prints how many it read.
//!
//! ```text
//! peer_hubspot <base-url> <token> <comma-separated properties>
//! ```

use std::process::ExitCode;

use crm_hubspot::{HubSpotClient, ListOptions, RateLimitTier};
use secrecy::SecretString;

async fn run(url: &str, token: &str, properties: &str) -> Result<usize, crm_hubspot::Error> {
    let client = HubSpotClient::builder()
        .base_url(url)
        .access_token(SecretString::from(token.to_owned()))
        // The sandbox runs without limits here; never for a real portal.
        .tier(RateLimitTier::Unlimited)
        .build()?;
    let properties: Vec<String> = properties.split(',').map(str::to_owned).collect();
    let mut opts = ListOptions::new(100, properties);
    let mut count = 0;
    loop {
        let page = client.list_contacts(&opts).await?;
        count += page.results.len();
        match page.next_after() {
            Some(after) => opts = opts.after(Some(after.to_owned())),
            None => return Ok(count),
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, token, properties] = args.as_slice() else {
        eprintln!("usage: peer_hubspot <base-url> <token> <comma-separated properties>");
        return ExitCode::from(2);
    };
    match run(url, token, properties).await {
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
