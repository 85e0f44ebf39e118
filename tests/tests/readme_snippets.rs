//! The READMEs run as written. Every TOML and JSON block parses (and, when it is a sync
//! configuration, validates); no Rust block is `ignore` (they compile as doc-tests: see
//! `tests/src/lib.rs` and each crate's `lib.rs`); every `cargo run --example ...` command runs
//! against the sandbox and exits 0; and the README's configuration example grants the Premium
//! badge on the sandbox.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sync_core::SyncConfig;

/// One fenced code block.
#[derive(Debug)]
struct Block {
    file: PathBuf,
    line: usize,
    lang: String,
    text: String,
}

impl Block {
    fn at(&self) -> String {
        format!("{}:{}", self.file.display(), self.line)
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Every README of the repository: the root's, the examples', the tests', the benches' and
/// each crate's.
fn readmes() -> Vec<PathBuf> {
    let root = root();
    let mut files = vec![
        root.join("README.md"),
        root.join("examples/README.md"),
        root.join("tests/README.md"),
        root.join("benches/README.md"),
        root.join("docs/writing-a-connector.md"),
    ];
    let mut crates: Vec<PathBuf> = std::fs::read_dir(root.join("crates"))
        .unwrap()
        .map(|e| e.unwrap().path().join("README.md"))
        .filter(|p| p.exists())
        .collect();
    crates.sort();
    files.extend(crates);
    files.retain(|p| p.exists());
    files
}

fn blocks(file: &Path) -> Vec<Block> {
    let text = std::fs::read_to_string(file).unwrap();
    let mut out = Vec::new();
    let mut open: Option<(usize, String, Vec<&str>)> = None;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if let Some(info) = trimmed.strip_prefix("```") {
            match open.take() {
                None => open = Some((i + 1, info.trim().to_owned(), Vec::new())),
                Some((start, lang, lines)) => out.push(Block {
                    file: file.to_path_buf(),
                    line: start,
                    lang,
                    text: lines.join("\n"),
                }),
            }
        } else if let Some((_, _, lines)) = open.as_mut() {
            lines.push(line);
        }
    }
    assert!(open.is_none(), "{}: unclosed code block", file.display());
    out
}

fn all_blocks() -> Vec<Block> {
    readmes().iter().flat_map(|f| blocks(f)).collect()
}

/// A TOML block is a sync configuration when it has one of the configuration's tables.
fn is_sync_config(text: &str) -> bool {
    ["[[badge_rules]]", "[badges]", "[[fields]]", "missing_user"]
        .iter()
        .any(|k| text.contains(k))
}

#[test]
fn every_toml_and_json_block_parses_and_every_config_validates() {
    let mut configs = 0;
    for block in all_blocks() {
        match block.lang.as_str() {
            "toml" if is_sync_config(&block.text) => {
                SyncConfig::from_toml_str(&block.text)
                    .and_then(SyncConfig::validate)
                    .unwrap_or_else(|e| panic!("{}: {e}", block.at()));
                configs += 1;
            }
            "toml" => {
                toml::from_str::<toml::Table>(&block.text)
                    .unwrap_or_else(|e| panic!("{}: {e}", block.at()));
            }
            "json" => {
                let value: serde_json::Value = serde_json::from_str(&block.text)
                    .unwrap_or_else(|e| panic!("{}: {e}", block.at()));
                if value.get("badge_rules").is_some() {
                    SyncConfig::from_json_str(&block.text)
                        .and_then(SyncConfig::validate)
                        .unwrap_or_else(|e| panic!("{}: {e}", block.at()));
                    configs += 1;
                }
            }
            _ => {}
        }
    }
    assert!(
        configs >= 1,
        "the README's configuration example was not found"
    );
}

#[test]
fn no_rust_block_is_left_uncompiled() {
    let ignored: Vec<String> = all_blocks()
        .iter()
        .filter(|b| b.lang.starts_with("rust") && b.lang.contains("ignore"))
        .map(Block::at)
        .collect();
    assert!(
        ignored.is_empty(),
        "these Rust blocks are `ignore`: make them compile (`no_run` is fine): {ignored:?}"
    );
}

/// A shell command of a README: `VAR=value ... cargo run --example NAME [-- ARGS]`.
#[derive(Debug)]
struct ExampleCommand {
    at: String,
    env: Vec<(String, String)>,
    example: String,
    args: Vec<String>,
}

fn example_commands() -> Vec<ExampleCommand> {
    let mut out = Vec::new();
    for block in all_blocks() {
        if !matches!(block.lang.as_str(), "sh" | "bash" | "shell" | "console") {
            continue;
        }
        for (i, raw) in block.text.lines().enumerate() {
            let line = raw.trim().trim_start_matches("$ ");
            // Comments start at a `#` preceded by whitespace.
            let line = line.split(" #").next().unwrap_or("").trim();
            let words: Vec<&str> = line.split_whitespace().collect();
            let env_len = words
                .iter()
                .take_while(|w| w.contains('=') && !w.starts_with('-'))
                .count();
            let rest = &words[env_len..];
            if rest.len() < 4 || rest[..3] != ["cargo", "run", "--example"] {
                continue;
            }
            let args = match rest.iter().position(|w| *w == "--") {
                Some(p) => rest[p + 1..].iter().map(|s| (*s).to_owned()).collect(),
                None => Vec::new(),
            };
            out.push(ExampleCommand {
                at: format!("{}:{}", block.file.display(), block.line + 1 + i),
                env: words[..env_len]
                    .iter()
                    .map(|w| {
                        let (k, v) = w.split_once('=').unwrap();
                        (k.to_owned(), v.trim_matches('"').to_owned())
                    })
                    .collect(),
                example: rest[3].to_owned(),
                args,
            });
        }
    }
    out
}

/// The example binary `cargo test --workspace` built next to this test's binary.
fn example_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let debug = exe.parent().and_then(Path::parent).unwrap();
    let path = debug.join("examples").join(name);
    if !path.exists() {
        // Run alone (`cargo test -p cativa-crm-sync-tests`): build it first.
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-p", "cativa-crm-sync-examples", "--example", name])
            .current_dir(root())
            .status()
            .unwrap();
        assert!(status.success(), "cannot build example {name}");
    }
    path
}

/// Runs an example to completion (bounded), returning its stdout.
fn run_example(name: &str, args: &[String], env: &[(String, String)], at: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(example_binary(name))
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("SYNC_DATABASE_URL", dir.path().join("sync.db"))
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read both pipes while it runs: a full pipe would block the child.
    let mut out_pipe = child.stdout.take().unwrap();
    let mut err_pipe = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut out_pipe, &mut buf).ok();
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut err_pipe, &mut buf).ok();
        buf
    });
    let deadline = Instant::now() + Duration::from_secs(300);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().ok();
            panic!("{at}: `{name}` did not finish within 300 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let output = std::process::Output {
        status,
        stdout: out_reader.join().unwrap(),
        stderr: err_reader.join().unwrap(),
    };
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{at}: `cargo run --example {name}` failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn every_readme_example_command_runs_against_the_sandbox() {
    let commands = example_commands();
    assert!(
        commands.iter().any(|c| c.example == "quickstart"),
        "the README's first command is the quickstart: {commands:?}"
    );
    for command in &commands {
        let stdout = run_example(&command.example, &command.args, &command.env, &command.at);
        assert!(
            !stdout.trim().is_empty(),
            "{}: the example printed nothing",
            command.at
        );
    }
}

/// The first sync-configuration TOML block of the root README.
fn readme_config() -> String {
    blocks(&root().join("README.md"))
        .into_iter()
        .find(|b| b.lang == "toml" && is_sync_config(&b.text))
        .expect("the README has a configuration example")
        .text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_configuration_grants_premium_on_the_sandbox() {
    use std::sync::Arc;

    use cativa_client::sink::{ApiBadgeSink, InviteOutput, SignupInviter};
    use cativa_crm_sync_tests::{
        cativa_client, deliver_user_created, hubspot_client, hubspot_source,
    };
    use sync_core::{PlanMode, TenantId};
    use sync_engine::SyncEngine;

    let config = SyncConfig::from_toml_str(&readme_config())
        .unwrap()
        .validate()
        .unwrap();
    let sandbox = sync_sandbox::SandboxServer::start(cativa_crm_sync_tests::unlimited_sandbox())
        .await
        .unwrap();
    let seed = sync_sandbox::datagen::DataGenConfig::default()
        .with_contacts(300)
        .with_seed(42);
    sandbox.seed_people(&seed).unwrap();
    let store: Arc<dyn sync_core::ports::Store> = Arc::new(sync_core::MemoryStore::new());
    let tenant = TenantId::new("readme");
    let recorder = SyncEngine::builder(config.clone(), store.clone()).build();
    let secret = sandbox.cativa().webhook_secret().clone();
    deliver_user_created(&sandbox, &recorder, &tenant, &secret, 8)
        .await
        .unwrap();
    let hubspot = hubspot_client(sandbox.hubspot().base_url()).unwrap();
    let cativa = cativa_client(sandbox.cativa().base_url()).unwrap();
    // The configuration invites people who are not in the community yet.
    let engine = SyncEngine::builder(config, store)
        .source(Arc::new(hubspot_source(
            hubspot,
            sandbox.hubspot().tags_property(),
        )))
        .badge_sink(Arc::new(ApiBadgeSink::new(tenant.clone(), cativa)))
        .inviter(Arc::new(SignupInviter::new(InviteOutput::Memory)))
        .build();
    let mode = PlanMode::FullReconcile {
        scan_complete: false,
    };
    let plan = engine.plan(&tenant, mode).await.unwrap().to_string();
    assert!(
        plan.contains("+ badge Premium (b0000000-0000-4000-8000-000000000001) -> "),
        "the plan shows badges by name:\n{plan}"
    );
    let report = engine.run_full_reconcile(&tenant).await.unwrap();
    let holders = sandbox
        .cativa()
        .badges_by_user()
        .values()
        .filter(|g| {
            g.iter()
                .any(|g| g.badge_id == cativa_crm_sync_tests::PREMIUM)
        })
        .count();
    assert!(holders > 0, "nothing was granted: {report}");
    sandbox.shutdown().await;
}
