#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The `sync-sandbox` binary, run as a process the way scripts use it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_sync-sandbox");

/// Kills the sandbox when the test ends, whatever happens.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn help_exits_zero_and_describes_every_flag() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--contacts",
        "--seed",
        "--faults",
        "--rate-limits",
        "--hubspot-rate-limit",
        "--salesforce-rate-limit",
        "--cativa-rate-limit",
        "--hubspot-port",
        "--salesforce-port",
        "--cativa-port",
        "--json",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
}

#[test]
fn a_rate_limit_that_is_not_a_count_is_refused() {
    for bad in ["0", "fast", "-5"] {
        let out = Command::new(BIN)
            .arg(format!("--hubspot-rate-limit={bad}"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad}: {out:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.contains("--hubspot-rate-limit"), "{err}");
    }
}

#[test]
fn an_unknown_flag_is_refused_with_a_usage_error() {
    let out = Command::new(BIN).arg("--contact").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("--contact"), "{err}");
}

#[tokio::test]
async fn json_prints_one_object_whose_endpoints_and_credentials_work() {
    let mut child = Command::new(BIN)
        .args(["--json", "--contacts", "3", "--rate-limits", "off"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let _running = Running(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();

    let hubspot = v["hubspot"]["url"].as_str().unwrap().trim_end_matches('/');
    let token = v["hubspot"]["token"].as_str().unwrap();
    let page: serde_json::Value = sync_http::tls::client()
        .unwrap()
        .get(format!("{hubspot}/crm/v3/objects/contacts?limit=10"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["results"].as_array().unwrap().len(), 3, "{page}");

    assert!(
        v["salesforce"]["url"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:")
    );
    assert!(!v["salesforce"]["token"].as_str().unwrap().is_empty());
    let cativa = &v["cativa"];
    assert!(
        cativa["url"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:")
    );
    assert!(!cativa["api_key"].as_str().unwrap().is_empty());
    assert!(!cativa["webhook_secret"].as_str().unwrap().is_empty());
}

/// Starts the binary with `args` and returns it with its HubSpot URL and token.
fn start_json(args: &[&str]) -> (Running, String, String) {
    let mut child = Command::new(BIN)
        .args(["--json", "--contacts", "1"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let running = Running(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    let url = v["hubspot"]["url"].as_str().unwrap().trim_end_matches('/');
    let token = v["hubspot"]["token"].as_str().unwrap();
    (running, url.to_owned(), token.to_owned())
}

/// Statuses of `n` HubSpot list calls sent one after the other.
async fn statuses(url: &str, token: &str, n: usize) -> Vec<u16> {
    let c = sync_http::tls::client().unwrap();
    let mut out = Vec::new();
    for _ in 0..n {
        let r = c
            .get(format!("{url}/crm/v3/objects/contacts?limit=1"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        out.push(r.status().as_u16());
    }
    out
}

#[tokio::test]
async fn a_per_api_rate_limit_overrides_the_global_one() {
    // 3 per 10 s for HubSpot, although every other limit is off.
    let (_running, url, token) = start_json(&["--rate-limits", "off", "--hubspot-rate-limit", "3"]);
    assert_eq!(statuses(&url, &token, 4).await, [200, 200, 200, 429]);
    // Off for HubSpot: past the default 100 per 10 s without a 429.
    let (_running, url, token) = start_json(&["--hubspot-rate-limit", "off"]);
    assert!(statuses(&url, &token, 120).await.iter().all(|&s| s == 200));
}
