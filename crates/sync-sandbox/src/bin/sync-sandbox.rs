//! Runs the HubSpot, Salesforce and Cativa sandboxes for manual use and prints their
//! URLs and credentials.
//!
//! ```text
//! sync-sandbox [--contacts N] [--seed S] [--faults SHARE] [--hubspot-port P]
//!              [--salesforce-port P] [--cativa-port P]
//! ```

use std::process::ExitCode;

use secrecy::ExposeSecret;
use sync_sandbox::datagen::DataGenConfig;
use sync_sandbox::faults::{FaultConfig, FaultRates};
use sync_sandbox::{SandboxConfig, SandboxServer, cativa, hubspot, salesforce};

#[derive(Debug, Default)]
struct Args {
    contacts: usize,
    seed: u64,
    faults: f64,
    hubspot_port: u16,
    salesforce_port: u16,
    cativa_port: u16,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        contacts: 100,
        ..Args::default()
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--help" || flag == "-h" {
            return Err(String::new());
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--contacts" => args.contacts = value.parse().map_err(|e| bad(&e))?,
            "--seed" => args.seed = value.parse().map_err(|e| bad(&e))?,
            "--faults" => args.faults = value.parse().map_err(|e| bad(&e))?,
            "--hubspot-port" => args.hubspot_port = value.parse().map_err(|e| bad(&e))?,
            "--salesforce-port" => args.salesforce_port = value.parse().map_err(|e| bad(&e))?,
            "--cativa-port" => args.cativa_port = value.parse().map_err(|e| bad(&e))?,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(args)
}

const USAGE: &str = "usage: sync-sandbox [--contacts N] [--seed S] [--faults SHARE] [--hubspot-port P] [--salesforce-port P] [--cativa-port P]";

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("error: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let faults = FaultConfig::seeded(args.seed)
        .with_rates(FaultRates::mixed(args.faults))
        .sparing("/oauth")
        .sparing("/services/oauth2");
    let mut hs = hubspot::HubSpotConfig::default().with_faults(faults.clone());
    hs.port = args.hubspot_port;
    let mut sf = salesforce::SalesforceConfig::default().with_faults(faults.clone());
    sf.port = args.salesforce_port;
    let mut cv = cativa::CativaConfig::default().with_faults(faults);
    cv.port = args.cativa_port;
    let config = SandboxConfig::default()
        .with_hubspot(hs)
        .with_salesforce(sf)
        .with_cativa(cv);
    let sandbox = match SandboxServer::start(config).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = sandbox.seed_people(
        &DataGenConfig::default()
            .with_contacts(args.contacts)
            .with_seed(args.seed),
    ) {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    println!(
        "HubSpot     {}  (bearer {})",
        sandbox.hubspot().base_url(),
        hubspot::DEFAULT_ACCESS_TOKEN
    );
    println!(
        "Salesforce  {}  (bearer {})",
        sandbox.salesforce().base_url(),
        salesforce::DEFAULT_ACCESS_TOKEN
    );
    println!(
        "Cativa      {}  (API key {}, webhook secret {})",
        sandbox.cativa().base_url(),
        cativa::DEFAULT_API_KEY,
        sandbox.cativa().webhook_secret().expose_secret()
    );
    println!(
        "Seeded {} people (seed {}), faults {:.0}%. Inspect with GET <url>/__sandbox/requests and /__sandbox/state. Ctrl-C stops.",
        args.contacts,
        args.seed,
        args.faults * 100.0
    );
    if let Err(e) = tokio::signal::ctrl_c().await {
        eprintln!("error waiting for Ctrl-C: {e}");
    }
    sandbox.shutdown().await;
    ExitCode::SUCCESS
}
