//! `ServiceConfig`: precedence (file < environment < command line), errors naming the key
//! and the variable, secrets kept out of `Debug`, the example file, the options derived.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use clap::Parser;
use sync_service::config::{Crm, ReconcileHour};
use sync_service::options::FullReconcile;
use sync_service::{Error, ServiceArgs, ServiceConfig};

const REQUIRED: &[(&str, &str)] = &[
    ("HUBSPOT_BASE_URL", "http://127.0.0.1:9"),
    ("HUBSPOT_TOKEN", "pat-na1-secret-token-value"),
    ("CATIVA_API_KEY", "cativa_pk_secret_key_value"),
];

fn load(file: Option<&Path>, vars: &[(&str, &str)]) -> Result<ServiceConfig, Error> {
    let map: HashMap<String, String> = REQUIRED
        .iter()
        .chain(vars)
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    ServiceConfig::from_lookup(file, |k| map.get(k).cloned())
}

fn write(dir: &tempfile::TempDir, text: &str) -> std::path::PathBuf {
    let path = dir.path().join("service.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    service: ServiceArgs,
}

fn config_error(e: Error) -> (String, String, String) {
    match e {
        Error::Config { key, env, message } => (key, env, message),
        other => panic!("expected a config error, got {other}"),
    }
}

#[test]
fn defaults_are_documented_values() {
    let c = load(None, &[]).unwrap();
    assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(c.tenant, "default");
    assert_eq!(c.database_url, "cativa-sync.db");
    assert_eq!(c.instance_id, "sync-service");
    assert_eq!(c.hubspot.tags_property, "cativa_tags");
    assert_eq!(c.crm().unwrap(), Crm::HubSpot, "HUBSPOT_BASE_URL is set");
    assert_eq!(
        c.hubspot_webhook_url(),
        "http://127.0.0.1:8080/webhooks/hubspot"
    );
    assert_eq!(c.service_options(), sync_service::ServiceOptions::default());
    assert!(c.sync_rules().is_ok(), "the built-in rules validate");
}

#[test]
fn the_file_is_overridden_by_the_environment_and_that_by_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        &dir,
        r#"
listen = "127.0.0.1:1000"
tenant = "from-file"
instance_id = "file-instance"
[http]
max_concurrency = 10
max_headers = 20
[pull]
full_reconcile_hour = "never"
"#,
    );
    let c = load(
        Some(&file),
        &[
            ("SYNC_TENANT", "from-env"),
            ("SYNC_HTTP_MAX_HEADERS", "30"),
            ("LISTEN_ADDR", "127.0.0.1:2000"),
            ("SYNC_INSTANCE_ID", "   "),
        ],
    )
    .unwrap();
    assert_eq!(c.tenant, "from-env", "env over file");
    assert_eq!(c.http.max_concurrency, 10, "file over default");
    assert_eq!(c.http.max_headers, 30, "env over file");
    assert_eq!(c.instance_id, "file-instance", "a blank variable is unset");
    assert_eq!(c.pull.full_reconcile_hour, ReconcileHour::Never);
    assert_eq!(c.listen.to_string(), "127.0.0.1:2000");

    let cli =
        Cli::try_parse_from(["svc", "--listen", "127.0.0.1:3000", "--create-properties"]).unwrap();
    let c = c.with_args(&cli.service);
    assert_eq!(c.listen.to_string(), "127.0.0.1:3000", "args over env");
    assert!(c.create_properties);
    assert_eq!(
        c.hubspot_webhook_url(),
        "http://127.0.0.1:3000/webhooks/hubspot"
    );
}

#[test]
fn a_bad_value_names_its_key_and_variable() {
    let e = load(None, &[("SYNC_HTTP_MAX_CONCURRENCY", "lots")]).unwrap_err();
    let (key, env, message) = config_error(e);
    assert_eq!(
        (key.as_str(), env.as_str()),
        ("http.max_concurrency", "SYNC_HTTP_MAX_CONCURRENCY")
    );
    assert!(message.contains("lots"), "{message}");

    let dir = tempfile::tempdir().unwrap();
    let file = write(&dir, "[pull]\nfull_reconcile_hour = 25\n");
    let e = load(Some(&file), &[]).unwrap_err();
    let shown = e.to_string();
    assert!(
        shown.contains("pull.full_reconcile_hour") && shown.contains("SYNC_FULL_RECONCILE_HOUR"),
        "{shown}"
    );

    let e = load(None, &[("SYNC_RETENTION_BATCH", "0")]).unwrap_err();
    assert_eq!(config_error(e).1, "SYNC_RETENTION_BATCH");

    let file = write(&dir, "[http]\nmax_conncurrency = 5\n");
    let (key, _, _) = config_error(load(Some(&file), &[]).unwrap_err());
    assert_eq!(key, "http.max_conncurrency", "a typo is refused");

    let e = load(None, &[("CATIVA_AUTOMATION_EVENTS", "a-1=user_deleted")]).unwrap_err();
    assert_eq!(config_error(e).1, "CATIVA_AUTOMATION_EVENTS");
    let e = load(None, &[("LISTEN_ADDR", "localhost")]).unwrap_err();
    assert_eq!(config_error(e).0, "listen");
}

#[test]
fn missing_credentials_and_crm_name_their_variables() {
    let none = |_: &str| None::<String>;
    let (key, env, _) = config_error(ServiceConfig::from_lookup(None, none).unwrap_err());
    assert_eq!(
        (key.as_str(), env.as_str()),
        ("cativa.api_key", "CATIVA_API_KEY")
    );

    let only_key = |k: &str| (k == "CATIVA_API_KEY").then(|| "k".to_owned());
    let (_, env, _) = config_error(ServiceConfig::from_lookup(None, only_key).unwrap_err());
    assert_eq!(env, "SYNC_CRM");

    let sf = |k: &str| match k {
        "CATIVA_API_KEY" => Some("k".to_owned()),
        "SALESFORCE_LOGIN_URL" => Some("https://acme.my.salesforce.com".to_owned()),
        "SALESFORCE_CLIENT_ID" => Some("id".to_owned()),
        _ => None,
    };
    let (_, env, _) = config_error(ServiceConfig::from_lookup(None, sf).unwrap_err());
    assert_eq!(env, "SALESFORCE_CLIENT_SECRET");
}

#[test]
fn secrets_stay_out_of_debug_output() {
    let c = load(
        None,
        &[
            ("CATIVA_WEBHOOK_SECRET", "whsec_secret_value"),
            ("HUBSPOT_CLIENT_SECRET", "hs-client-secret-value"),
        ],
    )
    .unwrap();
    let debug = format!("{c:?}");
    assert!(
        !debug.contains("secret-token-value")
            && !debug.contains("secret_key_value")
            && !debug.contains("secret_value")
            && !debug.contains("secret-value"),
        "{debug}"
    );
}

#[test]
fn the_example_file_parses_and_holds_the_defaults() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("service.example.toml");
    let c = load(Some(&path), &[]).unwrap();
    let defaults = load(None, &[]).unwrap();
    assert_eq!(c.service_options(), defaults.service_options());
    assert_eq!(c.listen, defaults.listen);
    assert_eq!(c.tenant, defaults.tenant);
}

#[test]
fn every_setting_is_in_the_readme_and_the_example_file() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    let example = std::fs::read_to_string(dir.join("service.example.toml")).unwrap();
    for (key, env) in sync_service::config::SETTINGS {
        let leaf = key.rsplit('.').next().unwrap();
        assert!(
            readme.contains(&format!("`{key}`")) && readme.contains(&format!("`{env}`")),
            "README lacks {key} / {env}"
        );
        assert!(
            example.contains(leaf) && example.contains(env),
            "example lacks {key}"
        );
    }
}

#[test]
fn options_follow_the_settings() {
    let c = load(
        None,
        &[
            ("SYNC_PULL_INTERVAL_SECS", "0"),
            ("SYNC_FULL_RECONCILE_HOUR", "never"),
            ("SYNC_HTTP_HEADER_TIMEOUT_SECS", "2"),
            ("SYNC_DRAIN_ENABLED", "false"),
            ("SYNC_RETENTION_OUTBOX_DAYS", "1"),
            ("SYNC_RETENTION_WEBHOOK_COUNTS_DAYS", "2"),
            ("SYNC_RETENTION_OPERATOR_ACTIONS_DAYS", "3"),
        ],
    )
    .unwrap();
    let o = c.service_options();
    assert_eq!(o.schedule.delta_interval, None, "0 = no scheduled pulls");
    assert_eq!(o.schedule.full_reconcile, FullReconcile::Never);
    assert_eq!(o.http.header_read_timeout, Duration::from_secs(2));
    assert!(!o.drain.enabled);
    assert_eq!(o.retention.done_outbox, Duration::from_secs(24 * 3600));
    assert_eq!(
        o.retention.webhook_counts,
        Duration::from_secs(2 * 24 * 3600)
    );
    assert_eq!(
        o.retention.operator_actions,
        Duration::from_secs(3 * 24 * 3600)
    );
    let c = load(None, &[("SYNC_FULL_RECONCILE_HOUR", "23")]).unwrap();
    assert_eq!(
        c.service_options().schedule.full_reconcile,
        FullReconcile::DailyAt { hour: 23 }
    );
}

#[test]
fn the_arguments_have_help() {
    use clap::CommandFactory;
    let help = Cli::command().render_long_help().to_string();
    for flag in ["--config", "--listen", "--create-properties"] {
        assert!(help.contains(flag), "{help}");
    }
    assert!(
        help.contains("SYNC_SERVICE_CONFIG") && help.contains("LISTEN_ADDR"),
        "{help}"
    );
}

#[test]
fn the_config_deserializes_when_embedded() {
    let c: ServiceConfig =
        toml::from_str("tenant = \"t\"\n[pull]\nfull_reconcile_hour = 4\n").unwrap();
    assert_eq!(c.tenant, "t");
    assert_eq!(c.pull.full_reconcile_hour, ReconcileHour::At(4));
    assert_eq!(c.http.max_concurrency, 256);
}

#[test]
fn a_groups_listener_is_mapped_with_its_group() {
    let c = load(
        None,
        &[(
            "CATIVA_AUTOMATION_EVENTS",
            "a-1=user_created, a-2=user_joined_group:VIP",
        )],
    )
    .unwrap();
    assert_eq!(
        c.group_automations().unwrap(),
        vec![("a-2".to_owned(), "VIP".to_owned())]
    );
    let e = load(
        None,
        &[("CATIVA_AUTOMATION_EVENTS", "a-1=user_created:VIP")],
    )
    .unwrap_err();
    assert_eq!(config_error(e).1, "CATIVA_AUTOMATION_EVENTS");
}
