//! Runs the HubSpot, Salesforce and Cativa sandboxes for manual use and for scripts, and
//! prints their URLs and credentials: one line per API, or one JSON object with `--json`.
//!
//! ```text
//! sync-sandbox --contacts 1000 --seed 7
//! sync-sandbox --json --rate-limits off      # {"hubspot": {"url", "token"}, ...}
//! sync-sandbox --hubspot-rate-limit 190 --salesforce-rate-limit off
//! ```

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use secrecy::ExposeSecret;
use serde_json::json;
use sync_sandbox::datagen::DataGenConfig;
use sync_sandbox::faults::{FaultConfig, FaultRates};
use sync_sandbox::ratelimit::{RateLimit, RateLimits};
use sync_sandbox::{SandboxConfig, SandboxServer, cativa, hubspot, salesforce};

/// Local fake HubSpot, Salesforce and Cativa servers with real-shaped payloads, seeded with
/// generated people. Ctrl-C stops them.
#[derive(Debug, Parser)]
#[command(name = "sync-sandbox", version)]
struct Args {
    /// How many people to seed (a CRM contact each, some with community users).
    #[arg(long, env = "SANDBOX_CONTACTS", default_value_t = 100)]
    contacts: usize,
    /// Seed of the generated data and of the injected faults: same seed, same sandbox.
    #[arg(long, env = "SANDBOX_SEED", default_value_t = 0)]
    seed: u64,
    /// Share of API calls (0 to 1) answered with an injected fault (429, 5xx, timeouts).
    #[arg(long, env = "SANDBOX_FAULTS", default_value_t = 0.0)]
    faults: f64,
    /// The APIs' rate limits: `default` (each API's documented limits) or `off`.
    #[arg(long, env = "SANDBOX_RATE_LIMITS", value_enum, default_value_t = Limits::Default)]
    rate_limits: Limits,
    /// HubSpot's limit, overriding `--rate-limits`: `default` (100 per 10 s, search 5/s),
    /// `off`, or a number of requests per rolling 10 s (search keeps 5/s).
    #[arg(long, env = "SANDBOX_HUBSPOT_RATE_LIMIT", value_parser = parse_limit)]
    hubspot_rate_limit: Option<Limit>,
    /// Salesforce's limit, overriding `--rate-limits`: `default` (no burst limit, 100,000
    /// calls a day), `off`, or a number of requests per rolling 10 s.
    #[arg(long, env = "SANDBOX_SALESFORCE_RATE_LIMIT", value_parser = parse_limit)]
    salesforce_rate_limit: Option<Limit>,
    /// Cativa's limit, overriding `--rate-limits`: `default` (none), `off`, or a number
    /// of requests per rolling 10 s.
    #[arg(long, env = "SANDBOX_CATIVA_RATE_LIMIT", value_parser = parse_limit)]
    cativa_rate_limit: Option<Limit>,
    /// Port of the HubSpot API on 127.0.0.1 (0: any free port).
    #[arg(long, env = "SANDBOX_HUBSPOT_PORT", default_value_t = 0)]
    hubspot_port: u16,
    /// Port of the Salesforce API on 127.0.0.1 (0: any free port).
    #[arg(long, env = "SANDBOX_SALESFORCE_PORT", default_value_t = 0)]
    salesforce_port: u16,
    /// Port of the Cativa API on 127.0.0.1 (0: any free port).
    #[arg(long, env = "SANDBOX_CATIVA_PORT", default_value_t = 0)]
    cativa_port: u16,
    /// Print the URLs and credentials as one JSON object on one line, for scripts.
    #[arg(long)]
    json: bool,
}

/// Rate limits of the sandboxes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Limits {
    /// Each API's documented limits.
    Default,
    /// No limits: for peers, benches and load tests.
    Off,
}

/// One API's limit given on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Limit {
    /// The API's documented limits.
    Default,
    /// None at all.
    Off,
    /// This many requests per rolling 10 seconds.
    Per10s(u32),
}

fn parse_limit(s: &str) -> Result<Limit, String> {
    match s {
        "default" => Ok(Limit::Default),
        "off" => Ok(Limit::Off),
        n => match n.parse::<u32>() {
            Ok(0) | Err(_) => Err(format!(
                "{n:?} is not `default`, `off` or a positive number of requests per 10 s"
            )),
            Ok(n) => Ok(Limit::Per10s(n)),
        },
    }
}

/// The limits an API runs with: its own flag, else `--rate-limits`.
fn limits_for(own: Option<Limit>, global: Limits, default: RateLimits) -> RateLimits {
    let limit = own.unwrap_or(match global {
        Limits::Default => Limit::Default,
        Limits::Off => Limit::Off,
    });
    match limit {
        Limit::Default => default,
        Limit::Off => RateLimits::unlimited(),
        Limit::Per10s(n) => default.with_general(Some(RateLimit::new(n, Duration::from_secs(10)))),
    }
}

fn config(args: &Args) -> SandboxConfig {
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
    hs.rate_limits = limits_for(args.hubspot_rate_limit, args.rate_limits, hs.rate_limits);
    sf.rate_limits = limits_for(args.salesforce_rate_limit, args.rate_limits, sf.rate_limits);
    cv.rate_limits = limits_for(args.cativa_rate_limit, args.rate_limits, cv.rate_limits);
    SandboxConfig::default()
        .with_hubspot(hs)
        .with_salesforce(sf)
        .with_cativa(cv)
}

fn print_endpoints(sandbox: &SandboxServer, args: &Args) {
    let cativa_secret = sandbox.cativa().webhook_secret().expose_secret().to_owned();
    if args.json {
        let endpoints = json!({
            "hubspot": {
                "url": sandbox.hubspot().base_url().to_string(),
                "token": hubspot::DEFAULT_ACCESS_TOKEN,
            },
            "salesforce": {
                "url": sandbox.salesforce().base_url().to_string(),
                "token": salesforce::DEFAULT_ACCESS_TOKEN,
            },
            "cativa": {
                "url": sandbox.cativa().base_url().to_string(),
                "api_key": cativa::DEFAULT_API_KEY,
                "webhook_secret": cativa_secret,
            },
        });
        println!("{endpoints}");
        return;
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
        "Cativa      {}  (API key {}, webhook secret {cativa_secret})",
        sandbox.cativa().base_url(),
        cativa::DEFAULT_API_KEY,
    );
    println!(
        "Seeded {} people (seed {}), faults {:.0}%, rate limits {:?}. Inspect with GET <url>/__sandbox/requests and /__sandbox/state. Ctrl-C stops.",
        args.contacts,
        args.seed,
        args.faults * 100.0,
        args.rate_limits
    );
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let sandbox = match SandboxServer::start(config(&args)).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let people = DataGenConfig::default()
        .with_contacts(args.contacts)
        .with_seed(args.seed);
    if let Err(e) = sandbox.seed_people(&people) {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    print_endpoints(&sandbox, &args);
    if let Err(e) = tokio::signal::ctrl_c().await {
        eprintln!("error waiting for Ctrl-C: {e}");
    }
    sandbox.shutdown().await;
    ExitCode::SUCCESS
}
