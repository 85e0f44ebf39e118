//! Running the examples as processes, as a partner runs them: built with cargo (a no-op when
//! up to date; `scripts/test.sh` builds them first), started with their documented flags and
//! environment, talked to over HTTP.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The target directory this test binary was built in (`<target>/<profile>/deps/<test>`).
fn target_dir() -> (PathBuf, PathBuf) {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().unwrap().parent().unwrap().to_path_buf();
    let target = profile_dir.parent().unwrap().to_path_buf();
    (target, profile_dir)
}

/// Builds the example `name` (once per test process) and returns its binary.
pub fn example_binary(name: &str) -> PathBuf {
    static BUILT: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let (target, profile_dir) = target_dir();
    let mut built = BUILT.lock().unwrap();
    if !built.iter().any(|b| b == name) {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let mut cmd = std::process::Command::new(cargo);
        cmd.args([
            "build",
            "-q",
            "-p",
            "cativa-crm-sync-examples",
            "--example",
            name,
        ])
        .arg("--target-dir")
        .arg(&target);
        if profile_dir.file_name().is_some_and(|p| p == "release") {
            cmd.arg("--release");
        }
        let status = cmd.status().unwrap();
        assert!(status.success(), "building the example {name} failed");
        built.push(name.to_owned());
    }
    profile_dir.join("examples").join(name)
}

/// A running example: its stdout lines are collected as they come.
pub struct Process {
    pub child: Child,
    pub lines: Arc<Mutex<Vec<String>>>,
    pub stderr: Arc<Mutex<Vec<String>>>,
}

impl Process {
    /// Starts the example `name` with `args` and `env` (on top of a cleared environment, so
    /// the machine's variables never leak in).
    pub fn start(name: &str, args: &[&str], env: &[(&str, String)]) -> Self {
        let mut cmd = Command::new(example_binary(name));
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let lines = collect(child.stdout.take().unwrap());
        let stderr = collect(child.stderr.take().unwrap());
        Self {
            child,
            lines,
            stderr,
        }
    }

    /// Waits (up to `within`) for a stdout line containing `needle`; returns it.
    pub async fn wait_for_line(&self, needle: &str, within: Duration) -> String {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(l) = self
                .lines
                .lock()
                .unwrap()
                .iter()
                .find(|l| l.contains(needle))
            {
                return l.clone();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no line with {needle:?} within {within:?}; stdout: {:?}; stderr: {:?}",
                self.lines.lock().unwrap(),
                self.stderr.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends a signal (`KILL`, `TERM`) to the process.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.id().unwrap();
        let ok = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &pid.to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{signal} {pid}");
    }

    /// Waits for the exit (up to `within`) and returns the exit code (`None`: killed).
    pub async fn exit_code(&mut self, within: Duration) -> Option<i32> {
        let status = tokio::time::timeout(within, self.child.wait())
            .await
            .expect("the process did not exit in time")
            .unwrap();
        // The readers finish once the pipes close.
        tokio::time::sleep(Duration::from_millis(50)).await;
        status.code()
    }

    /// Everything printed to stdout so far.
    pub fn stdout(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// Everything printed to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }
}

fn collect(pipe: impl tokio::io::AsyncRead + Unpin + Send + 'static) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    tokio::spawn(async move {
        let mut reader = BufReader::new(pipe).lines();
        while let Ok(Some(line)) = reader.next_line().await {
            sink.lock().unwrap().push(line);
        }
    });
    lines
}
