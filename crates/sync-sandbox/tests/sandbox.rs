#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The three servers together, per-server faults, and the binary.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use sync_sandbox::datagen::DataGenConfig;
use sync_sandbox::faults::{Fault, FaultConfig, FaultRates};
use sync_sandbox::hubspot::{DEFAULT_ACCESS_TOKEN, HubSpotConfig};
use sync_sandbox::{Clock, ManualClock, SandboxConfig, SandboxServer};

#[tokio::test]
async fn seed_people_everywhere_with_one_clock() {
    let clock = ManualClock::shared();
    let sandbox = SandboxServer::start(SandboxConfig::default().with_clock(clock.clone()))
        .await
        .unwrap();
    let people = sandbox
        .seed_people(&DataGenConfig::default().with_contacts(300).with_seed(4))
        .unwrap();
    assert_eq!(sandbox.hubspot().contacts().len(), 300);
    assert_eq!(sandbox.salesforce().records("Contact").len(), 300);
    let community: std::collections::BTreeSet<String> = people
        .iter()
        .filter(|p| p.in_community)
        .map(|p| p.normalized_email())
        .collect();
    assert_eq!(sandbox.cativa().users().len(), community.len());
    for email in &community {
        assert!(!sandbox.hubspot().contacts_by_email(email).is_empty());
    }
    // Seeded duplicates exist as separate contacts with the same email.
    let dup = people.iter().find(|p| p.duplicate_of.is_some()).unwrap();
    assert!(sandbox.hubspot().contacts_by_email(&dup.email).len() >= 2);
    assert_eq!(sandbox.hubspot().contacts()[0].created_at, clock.now_utc());
    let urls = [
        sandbox.hubspot().base_url(),
        sandbox.salesforce().base_url(),
        sandbox.cativa().base_url(),
    ];
    assert!(urls.iter().all(|u| u.starts_with("http://127.0.0.1:")));
    let c = sync_http::tls::client().unwrap();
    for u in urls {
        c.get(format!("{u}/nowhere")).send().await.unwrap();
    }
    assert_eq!(
        sandbox
            .cativa()
            .requests()
            .count("GET /nowhere (unmatched)"),
        1
    );
    sandbox.reset_requests();
    assert_eq!(
        sandbox.hubspot().requests().total()
            + sandbox.salesforce().requests().total()
            + sandbox.cativa().requests().total(),
        0
    );
    sandbox.shutdown().await;
}

#[tokio::test]
async fn faults_are_per_server() {
    let faults = FaultConfig::seeded(1).with_rates(FaultRates::only(Fault::DropConnection, 1.0));
    let sandbox = SandboxServer::start(
        SandboxConfig::default().with_hubspot(HubSpotConfig::default().with_faults(faults)),
    )
    .await
    .unwrap();
    let c = sync_http::tls::client().unwrap();
    let err = c
        .get(format!(
            "{}/crm/v3/objects/contacts",
            sandbox.hubspot().base_url()
        ))
        .bearer_auth(DEFAULT_ACCESS_TOKEN)
        .send()
        .await
        .unwrap_err();
    assert!(!err.is_status());
    let r = c
        .get(format!("{}/social/v1/auth/me", sandbox.cativa().base_url()))
        .bearer_auth(sync_sandbox::cativa::DEFAULT_API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let stats = sandbox.hubspot().requests();
    assert_eq!(
        stats
            .get("GET /crm/v3/objects/contacts")
            .unwrap()
            .faults
            .get("drop"),
        Some(&1)
    );
}

#[tokio::test]
async fn truncated_bodies_and_slow_responses() {
    let sandbox = SandboxServer::start(SandboxConfig::default())
        .await
        .unwrap();
    let sf = sandbox.salesforce();
    sf.set_faults(FaultConfig::seeded(2).with_rates(FaultRates::only(Fault::TruncatedBody, 1.0)))
        .unwrap();
    let c = sync_http::tls::client().unwrap();
    let url = format!(
        "{}/services/data/v66.0/query?q=SELECT+Id+FROM+Contact",
        sf.base_url()
    );
    let r = c
        .get(&url)
        .bearer_auth(sync_sandbox::salesforce::DEFAULT_ACCESS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers().contains_key("sforce-limit-info"));
    let text = r.text().await.unwrap();
    assert!(
        serde_json::from_str::<serde_json::Value>(&text).is_err(),
        "truncated: {text}"
    );

    // A slow response longer than the client's timeout is a timeout.
    sf.set_faults(
        FaultConfig::seeded(2)
            .with_rates(FaultRates::only(Fault::Slow, 1.0))
            .with_slow_delay(Duration::from_secs(5)),
    )
    .unwrap();
    let quick = sync_http::tls::client_builder()
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let err = quick
        .get(&url)
        .bearer_auth(sync_sandbox::salesforce::DEFAULT_ACCESS_TOKEN)
        .send()
        .await
        .unwrap_err();
    assert!(err.is_timeout());
}

#[test]
fn binary_prints_its_urls_and_serves() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sync-sandbox"))
        .args(["--contacts", "20", "--seed", "3"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(first.starts_with("HubSpot "), "{first}");
    let url = first.split_whitespace().nth(1).unwrap().to_owned();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let body: serde_json::Value = rt.block_on(async {
        sync_http::tls::client()
            .unwrap()
            .get(format!("{url}/crm/v3/objects/contacts?limit=100"))
            .bearer_auth(DEFAULT_ACCESS_TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    assert_eq!(body["results"].as_array().unwrap().len(), 20);
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test]
async fn debug_output_shows_no_credentials() {
    let config = SandboxConfig::default();
    let sandbox = SandboxServer::start(config.clone()).await.unwrap();
    let text = format!(
        "{config:?} {sandbox:?} {:?} {:?} {:?}",
        sandbox.hubspot(),
        sandbox.salesforce(),
        sandbox.cativa()
    );
    for secret in [
        sync_sandbox::hubspot::DEFAULT_ACCESS_TOKEN,
        sync_sandbox::hubspot::DEFAULT_CLIENT_SECRET,
        sync_sandbox::hubspot::DEFAULT_REFRESH_TOKEN,
        sync_sandbox::salesforce::DEFAULT_ACCESS_TOKEN,
        sync_sandbox::salesforce::DEFAULT_CLIENT_SECRET,
        sync_sandbox::salesforce::DEFAULT_REFRESH_TOKEN,
        sync_sandbox::cativa::DEFAULT_API_KEY,
        sync_sandbox::cativa::DEFAULT_WEBHOOK_SECRET,
    ] {
        assert!(!text.contains(secret), "{secret} leaked in {text}");
    }
    assert!(text.contains("127.0.0.1"));
}

fn is_reset(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionReset
        {
            return true;
        }
        cur = e.source();
    }
    false
}

#[tokio::test]
async fn reset_faults_send_a_tcp_reset_and_drops_close_cleanly() {
    let sandbox = SandboxServer::start(SandboxConfig::default())
        .await
        .unwrap();
    let hs = sandbox.hubspot();
    let url = format!("{}/crm/v3/objects/contacts", hs.base_url());
    hs.set_faults(FaultConfig::seeded(1).with_rates(FaultRates::only(Fault::ResetConnection, 1.0)))
        .unwrap();
    let err = sync_http::tls::client()
        .unwrap()
        .get(&url)
        .bearer_auth(DEFAULT_ACCESS_TOKEN)
        .send()
        .await
        .unwrap_err();
    assert!(is_reset(&err), "{err:?}");
    hs.set_faults(FaultConfig::seeded(1).with_rates(FaultRates::only(Fault::DropConnection, 1.0)))
        .unwrap();
    let err = sync_http::tls::client()
        .unwrap()
        .get(&url)
        .bearer_auth(DEFAULT_ACCESS_TOKEN)
        .send()
        .await
        .unwrap_err();
    assert!(!is_reset(&err), "{err:?}");
    let stats = hs.requests();
    let s = stats.get("GET /crm/v3/objects/contacts").unwrap();
    assert_eq!(
        (s.faults.get("reset"), s.faults.get("drop")),
        (Some(&1), Some(&1))
    );
    assert!(s.by_status.is_empty(), "no response was sent");
}
