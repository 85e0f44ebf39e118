//! [`ServiceConfig`]: every setting of the service, read from an optional TOML file, then
//! the environment (12-factor: every setting has an environment variable), then explicit
//! command-line values ([`ServiceArgs`]). The crate README lists every key.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use cativa_client::webhook::EventType;
use secrecy::SecretString;
use serde::Deserialize;

use crate::error::Error;
use crate::options::{FullReconcile, ServiceOptions};

/// The badge rules used when `SYNC_CONFIG` is unset: the tag `Pago Anual` grants the badge
/// `Premium` (the Cativa sandbox's Premium badge id). Real tenants set `SYNC_CONFIG`.
pub const DEFAULT_SYNC_CONFIG: &str = r#"
[badges]
Premium = "b0000000-0000-4000-8000-000000000001" # the Cativa sandbox's Premium badge

[[badge_rules]]
id = "annual-plan"
grant = "Premium"
when = { tag = "Pago Anual" }
"#;

/// Every setting: its TOML key and its environment variable.
pub const SETTINGS: &[(&str, &str)] = &[
    ("listen", "LISTEN_ADDR"),
    ("tenant", "SYNC_TENANT"),
    ("database_url", "SYNC_DATABASE_URL"),
    ("sync_config", "SYNC_CONFIG"),
    ("instance_id", "SYNC_INSTANCE_ID"),
    ("crm", "SYNC_CRM"),
    ("create_properties", "SYNC_CREATE_PROPERTIES"),
    ("webhook_public_url", "WEBHOOK_PUBLIC_URL"),
    ("shutdown_grace_secs", "SYNC_SHUTDOWN_GRACE_SECS"),
    ("status_token", "STATUS_TOKEN"),
    ("alert_webhook_url", "SYNC_ALERT_WEBHOOK_URL"),
    ("health_interval_secs", "SYNC_HEALTH_INTERVAL_SECS"),
    ("hubspot.base_url", "HUBSPOT_BASE_URL"),
    ("hubspot.token", "HUBSPOT_TOKEN"),
    ("hubspot.client_secret", "HUBSPOT_CLIENT_SECRET"),
    ("hubspot.tags_property", "HUBSPOT_TAGS_PROPERTY"),
    ("salesforce.login_url", "SALESFORCE_LOGIN_URL"),
    ("salesforce.client_id", "SALESFORCE_CLIENT_ID"),
    ("salesforce.client_secret", "SALESFORCE_CLIENT_SECRET"),
    ("salesforce.refresh_token", "SALESFORCE_REFRESH_TOKEN"),
    ("salesforce.username", "SALESFORCE_USERNAME"),
    ("salesforce.private_key_path", "SALESFORCE_PRIVATE_KEY_PATH"),
    ("salesforce.tags_field", "SALESFORCE_TAGS_FIELD"),
    ("cativa.base_url", "CATIVA_BASE_URL"),
    ("cativa.api_key", "CATIVA_API_KEY"),
    ("cativa.webhook_secret", "CATIVA_WEBHOOK_SECRET"),
    ("cativa.automation_events", "CATIVA_AUTOMATION_EVENTS"),
    ("http.header_timeout_secs", "SYNC_HTTP_HEADER_TIMEOUT_SECS"),
    ("http.body_timeout_secs", "SYNC_HTTP_BODY_TIMEOUT_SECS"),
    (
        "http.request_timeout_secs",
        "SYNC_HTTP_REQUEST_TIMEOUT_SECS",
    ),
    ("http.max_concurrency", "SYNC_HTTP_MAX_CONCURRENCY"),
    ("http.max_body_bytes", "SYNC_HTTP_MAX_BODY_BYTES"),
    ("http.max_header_bytes", "SYNC_HTTP_MAX_HEADER_BYTES"),
    ("http.max_headers", "SYNC_HTTP_MAX_HEADERS"),
    ("http.retry_after_secs", "SYNC_HTTP_RETRY_AFTER_SECS"),
    ("drain.enabled", "SYNC_DRAIN_ENABLED"),
    ("drain.idle_ms", "SYNC_DRAIN_IDLE_MS"),
    ("drain.lease_secs", "SYNC_LEASE_SECS"),
    ("pull.interval_secs", "SYNC_PULL_INTERVAL_SECS"),
    ("pull.jitter_secs", "SYNC_PULL_JITTER_SECS"),
    ("pull.full_reconcile_hour", "SYNC_FULL_RECONCILE_HOUR"),
    ("pull.leader_lease_secs", "SYNC_LEADER_LEASE_SECS"),
    (
        "retention.deliveries_days",
        "SYNC_RETENTION_DELIVERIES_DAYS",
    ),
    ("retention.outbox_days", "SYNC_RETENTION_OUTBOX_DAYS"),
    ("retention.audit_days", "SYNC_RETENTION_AUDIT_DAYS"),
    (
        "retention.webhook_counts_days",
        "SYNC_RETENTION_WEBHOOK_COUNTS_DAYS",
    ),
    (
        "retention.operator_actions_days",
        "SYNC_RETENTION_OPERATOR_ACTIONS_DAYS",
    ),
    ("retention.batch", "SYNC_RETENTION_BATCH"),
    ("retention.interval_secs", "SYNC_RETENTION_INTERVAL_SECS"),
];

/// The environment variable of a TOML key (`""` for a key that is not a setting).
fn env_of(key: &str) -> &'static str {
    SETTINGS
        .iter()
        .find(|(k, _)| *k == key)
        .map_or("", |(_, e)| *e)
}

/// Which CRM the service syncs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Crm {
    /// HubSpot (`hubspot`).
    HubSpot,
    /// Salesforce (`salesforce`).
    Salesforce,
}

impl FromStr for Crm {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "hubspot" => Ok(Self::HubSpot),
            "salesforce" => Ok(Self::Salesforce),
            other => Err(format!("{other:?} is not a CRM: use hubspot or salesforce")),
        }
    }
}

/// The daily full-reconcile hour: `0`-`23` (UTC) or `never`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "toml::Value")]
#[non_exhaustive]
pub enum ReconcileHour {
    /// No scheduled full reconcile.
    Never,
    /// Daily, from this hour (UTC) on.
    At(u32),
}

impl FromStr for ReconcileHour {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("never") {
            return Ok(Self::Never);
        }
        match s.parse::<u32>() {
            Ok(h) if h < 24 => Ok(Self::At(h)),
            _ => Err(format!("{s:?} is not an hour: use 0 to 23 (UTC) or never")),
        }
    }
}

impl TryFrom<toml::Value> for ReconcileHour {
    type Error = String;

    fn try_from(v: toml::Value) -> Result<Self, String> {
        scalar(&v)
            .ok_or_else(|| "expected an hour or never".to_owned())?
            .parse()
    }
}

/// HubSpot settings (`[hubspot]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct HubSpotSection {
    /// `HUBSPOT_BASE_URL`: the API base URL. Unset: `https://api.hubapi.com` when HubSpot is
    /// chosen with `SYNC_CRM`.
    pub base_url: Option<String>,
    /// `HUBSPOT_TOKEN`: the private-app access token. Required for HubSpot.
    pub token: Option<SecretString>,
    /// `HUBSPOT_CLIENT_SECRET`: the app secret that signs HubSpot webhooks. Unset: no
    /// `/webhooks/hubspot` route.
    pub client_secret: Option<SecretString>,
    /// `HUBSPOT_TAGS_PROPERTY`: the multiple-checkboxes property holding tags. Default
    /// `cativa_tags`.
    pub tags_property: String,
}

impl Default for HubSpotSection {
    fn default() -> Self {
        Self {
            base_url: None,
            token: None,
            client_secret: None,
            tags_property: "cativa_tags".to_owned(),
        }
    }
}

/// Salesforce settings (`[salesforce]`). The flow is picked from what is set: a private key
/// means JWT bearer, a refresh token the refresh flow, otherwise client credentials.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct SalesforceSection {
    /// `SALESFORCE_LOGIN_URL`: `https://login.salesforce.com` or your My Domain.
    pub login_url: Option<String>,
    /// `SALESFORCE_CLIENT_ID`: the connected app's consumer key.
    pub client_id: Option<String>,
    /// `SALESFORCE_CLIENT_SECRET`: the consumer secret.
    pub client_secret: Option<SecretString>,
    /// `SALESFORCE_REFRESH_TOKEN`: the refresh flow's token.
    pub refresh_token: Option<SecretString>,
    /// `SALESFORCE_USERNAME`: the JWT bearer flow's user.
    pub username: Option<String>,
    /// `SALESFORCE_PRIVATE_KEY_PATH`: the JWT bearer flow's PEM key.
    pub private_key_path: Option<PathBuf>,
    /// `SALESFORCE_TAGS_FIELD`: the multi-select picklist holding tags. Default
    /// `Cativa_Tags__c`.
    pub tags_field: String,
}

impl Default for SalesforceSection {
    fn default() -> Self {
        Self {
            login_url: None,
            client_id: None,
            client_secret: None,
            refresh_token: None,
            username: None,
            private_key_path: None,
            tags_field: "Cativa_Tags__c".to_owned(),
        }
    }
}

/// Cativa settings (`[cativa]`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct CativaSection {
    /// `CATIVA_BASE_URL`: the API base URL. Unset: the client's default.
    pub base_url: Option<String>,
    /// `CATIVA_API_KEY`: the partner API key. Required.
    pub api_key: Option<SecretString>,
    /// `CATIVA_WEBHOOK_SECRET`: the Console listener's secret. Unset: no Cativa routes.
    pub webhook_secret: Option<SecretString>,
    /// `CATIVA_AUTOMATION_EVENTS`: `<automation id>=<event>` pairs separated by commas, for
    /// listeners posting to `/webhooks/cativa`; a group's listener is
    /// `<automation id>=user_joined_group:<group name>` (one listener per group). Unset: only
    /// `/webhooks/cativa/{event}`.
    pub automation_events: Option<String>,
}

/// HTTP limits (`[http]`); see [`crate::options::HttpLimits`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct HttpSection {
    /// `SYNC_HTTP_HEADER_TIMEOUT_SECS`: request line and headers. Default 10.
    pub header_timeout_secs: u64,
    /// `SYNC_HTTP_BODY_TIMEOUT_SECS`: reading the body. Default 30.
    pub body_timeout_secs: u64,
    /// `SYNC_HTTP_REQUEST_TIMEOUT_SECS`: a whole request. Default 60.
    pub request_timeout_secs: u64,
    /// `SYNC_HTTP_MAX_CONCURRENCY`: requests at once; more get 503. Default 256.
    pub max_concurrency: usize,
    /// `SYNC_HTTP_MAX_BODY_BYTES`: the largest body. Default 1048576 (1 MiB).
    pub max_body_bytes: usize,
    /// `SYNC_HTTP_MAX_HEADER_BYTES`: total header size. Default 16384.
    pub max_header_bytes: usize,
    /// `SYNC_HTTP_MAX_HEADERS`: header fields per request. Default 100.
    pub max_headers: usize,
    /// `SYNC_HTTP_RETRY_AFTER_SECS`: `Retry-After` on 503 and 409. Default 5.
    pub retry_after_secs: u64,
}

impl Default for HttpSection {
    fn default() -> Self {
        let d = crate::options::HttpLimits::default();
        Self {
            header_timeout_secs: d.header_read_timeout.as_secs(),
            body_timeout_secs: d.body_read_timeout.as_secs(),
            request_timeout_secs: d.request_timeout.as_secs(),
            max_concurrency: d.max_concurrency,
            max_body_bytes: d.max_body_bytes,
            max_header_bytes: d.max_header_bytes,
            max_headers: d.max_headers,
            retry_after_secs: d.retry_after_secs,
        }
    }
}

/// The drainer (`[drain]`); see [`crate::options::DrainOptions`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct DrainSection {
    /// `SYNC_DRAIN_ENABLED`: whether this instance drains the outbox. Default true.
    pub enabled: bool,
    /// `SYNC_DRAIN_IDLE_MS`: how often an idle drainer looks for due work. Default 1000.
    pub idle_ms: u64,
    /// `SYNC_LEASE_SECS`: how long a claim on an outbox item lasts before another worker
    /// may take it; renewed while its batch is in flight. Default 15.
    pub lease_secs: u64,
}

impl Default for DrainSection {
    fn default() -> Self {
        Self {
            enabled: true,
            idle_ms: 1000,
            lease_secs: 15,
        }
    }
}

/// Scheduled pulls (`[pull]`); see [`crate::options::PullSchedule`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct PullSection {
    /// `SYNC_PULL_INTERVAL_SECS`: between delta pulls; 0 = no scheduled pulls. Default 300.
    pub interval_secs: u64,
    /// `SYNC_PULL_JITTER_SECS`: up to this much random delay per pull. Default 30.
    pub jitter_secs: u64,
    /// `SYNC_FULL_RECONCILE_HOUR`: the daily full reconcile, 0-23 UTC or `never`. Default 3.
    pub full_reconcile_hour: ReconcileHour,
    /// `SYNC_LEADER_LEASE_SECS`: the pull leader lease. Default 60.
    pub leader_lease_secs: u64,
}

impl Default for PullSection {
    fn default() -> Self {
        Self {
            interval_secs: 300,
            jitter_secs: 30,
            full_reconcile_hour: ReconcileHour::At(3),
            leader_lease_secs: 60,
        }
    }
}

/// Retention (`[retention]`); see [`crate::options::RetentionOptions`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct RetentionSection {
    /// `SYNC_RETENTION_DELIVERIES_DAYS`: delivery ledger entries. Default 30.
    pub deliveries_days: u64,
    /// `SYNC_RETENTION_OUTBOX_DAYS`: applied outbox items. Default 7.
    pub outbox_days: u64,
    /// `SYNC_RETENTION_AUDIT_DAYS`: audit rows. Default 90.
    pub audit_days: u64,
    /// `SYNC_RETENTION_WEBHOOK_COUNTS_DAYS`: webhook delivery counters (per hour). Default 7.
    pub webhook_counts_days: u64,
    /// `SYNC_RETENTION_OPERATOR_ACTIONS_DAYS`: operator actions (requeues, dismissals).
    /// Default 90.
    pub operator_actions_days: u64,
    /// `SYNC_RETENTION_BATCH`: rows deleted per statement. Default 1000.
    pub batch: usize,
    /// `SYNC_RETENTION_INTERVAL_SECS`: how often the purge runs. Default 3600.
    pub interval_secs: u64,
}

impl Default for RetentionSection {
    fn default() -> Self {
        Self {
            deliveries_days: 30,
            outbox_days: 7,
            audit_days: 90,
            webhook_counts_days: 7,
            operator_actions_days: 90,
            batch: 1000,
            interval_secs: 3600,
        }
    }
}

/// Every setting of the service. Build it with [`ServiceConfig::load`] (file, environment,
/// command line) or [`ServiceConfig::from_lookup`]; it also deserializes from the TOML
/// layout (missing keys take their defaults) if you embed it in your own configuration,
/// then call [`ServiceConfig::validate`]. Secrets never show in `Debug`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct ServiceConfig {
    /// `LISTEN_ADDR`: where the service listens. Default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// `SYNC_TENANT`: the tenant id in the store. Default `default`.
    pub tenant: String,
    /// `SYNC_DATABASE_URL`: a SQLite path or a `postgres://` URL. Default `cativa-sync.db`.
    pub database_url: String,
    /// `SYNC_CONFIG`: the badge rules and field mappings file (TOML or JSON). Unset:
    /// [`DEFAULT_SYNC_CONFIG`].
    pub sync_config: Option<PathBuf>,
    /// `SYNC_INSTANCE_ID`: this instance's stable id (the engine's worker id). Default
    /// `sync-service`; set one per instance when several share a PostgreSQL store.
    pub instance_id: String,
    /// `SYNC_CRM`: `hubspot` or `salesforce`. Unset: HubSpot when `HUBSPOT_BASE_URL` is set,
    /// else Salesforce when `SALESFORCE_LOGIN_URL` is set; see [`ServiceConfig::crm`].
    pub crm: Option<Crm>,
    /// `SYNC_CREATE_PROPERTIES`: create missing CRM properties at start-up. Default false.
    pub create_properties: bool,
    /// `WEBHOOK_PUBLIC_URL`: the public base URL HubSpot calls and signs (v3). Unset:
    /// `http://<listen>`.
    pub webhook_public_url: Option<String>,
    /// `SYNC_SHUTDOWN_GRACE_SECS`: how long a shutdown waits for in-flight requests.
    /// Default 30.
    pub shutdown_grace_secs: u64,
    /// `STATUS_TOKEN`: the bearer token of the status routes and the status page. Unset:
    /// the status routes are not mounted (they answer 404). Never shown in `Debug` or logs.
    pub status_token: Option<SecretString>,
    /// `SYNC_ALERT_WEBHOOK_URL`: a URL told (JSON `POST`) each time a tenant's health
    /// changes. Unset: no alert posts.
    pub alert_webhook_url: Option<String>,
    /// `SYNC_HEALTH_INTERVAL_SECS`: how often the health of each tenant is computed (and
    /// observers told of changes). Default 60.
    pub health_interval_secs: u64,
    /// `[hubspot]`.
    pub hubspot: HubSpotSection,
    /// `[salesforce]`.
    pub salesforce: SalesforceSection,
    /// `[cativa]`.
    pub cativa: CativaSection,
    /// `[http]`.
    pub http: HttpSection,
    /// `[drain]`.
    pub drain: DrainSection,
    /// `[pull]`.
    pub pull: PullSection,
    /// `[retention]`.
    pub retention: RetentionSection,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            tenant: "default".to_owned(),
            database_url: "cativa-sync.db".to_owned(),
            sync_config: None,
            instance_id: "sync-service".to_owned(),
            crm: None,
            create_properties: false,
            webhook_public_url: None,
            shutdown_grace_secs: 30,
            status_token: None,
            alert_webhook_url: None,
            health_interval_secs: 60,
            hubspot: HubSpotSection::default(),
            salesforce: SalesforceSection::default(),
            cativa: CativaSection::default(),
            http: HttpSection::default(),
            drain: DrainSection::default(),
            pull: PullSection::default(),
            retention: RetentionSection::default(),
        }
    }
}

/// The command-line options of the service. Flatten them into your own parser
/// (`#[command(flatten)] service: ServiceArgs`) and pass them to [`ServiceConfig::load`].
#[derive(Debug, Clone, Default, clap::Args)]
#[non_exhaustive]
pub struct ServiceArgs {
    /// A TOML file with the service's settings; environment variables override it, and
    /// these flags override both.
    #[arg(long = "config", value_name = "FILE", env = "SYNC_SERVICE_CONFIG")]
    pub config: Option<PathBuf>,
    /// The address to listen on (default 127.0.0.1:8080).
    #[arg(long, value_name = "ADDR", env = "LISTEN_ADDR")]
    pub listen: Option<SocketAddr>,
    /// Create the CRM properties the sync writes and reads when they are missing (needs
    /// the crm.schemas.contacts.write scope on HubSpot).
    #[arg(long, env = "SYNC_CREATE_PROPERTIES")]
    pub create_properties: bool,
}

/// A TOML scalar as text (strings as they are; numbers and booleans written out).
fn scalar(v: &toml::Value) -> Option<String> {
    match v {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The settings' raw text by TOML key, from the file, then the environment on top.
struct Layers(BTreeMap<String, String>);

impl Layers {
    fn read(file: Option<&Path>, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let mut map = BTreeMap::new();
        if let Some(path) = file {
            flatten_file(path, &mut map)?;
        }
        for (key, env) in SETTINGS {
            if let Some(v) = lookup(env).filter(|v| !v.trim().is_empty()) {
                map.insert((*key).to_owned(), v);
            }
        }
        Ok(Self(map))
    }

    fn text(&self, key: &str) -> Option<String> {
        self.0.get(key).map(|v| v.trim().to_owned())
    }

    fn secret(&self, key: &str) -> Option<SecretString> {
        self.text(key).map(SecretString::from)
    }

    /// Parses `key` when set; an unparsable value names the key and its variable.
    fn parse<T: FromStr>(&self, key: &str) -> Result<Option<T>, Error>
    where
        T::Err: std::fmt::Display,
    {
        match self.text(key) {
            None => Ok(None),
            Some(raw) => raw
                .parse::<T>()
                .map(Some)
                .map_err(|e| invalid(key, format!("cannot read {raw:?}: {e} ({})", expected(key)))),
        }
    }

    fn set<T: FromStr>(&self, key: &str, slot: &mut T) -> Result<(), Error>
    where
        T::Err: std::fmt::Display,
    {
        if let Some(v) = self.parse(key)? {
            *slot = v;
        }
        Ok(())
    }
}

/// What a key takes, for error messages.
fn expected(key: &str) -> &'static str {
    match key {
        "listen" => "expected host:port, e.g. 0.0.0.0:8080",
        "create_properties" | "drain.enabled" => "expected true or false",
        "crm" => "expected hubspot or salesforce",
        "pull.full_reconcile_hour" => "expected 0 to 23 or never",
        _ => "expected a whole number",
    }
}

/// An [`Error::Config`] for `key`.
fn invalid(key: &str, message: impl Into<String>) -> Error {
    Error::Config {
        key: key.to_owned(),
        env: env_of(key).to_owned(),
        message: message.into(),
    }
}

/// Reads the TOML file into `map` by dotted key; unknown keys are errors (typos).
fn flatten_file(path: &Path, map: &mut BTreeMap<String, String>) -> Result<(), Error> {
    let file_error = |message: String| Error::Config {
        key: "(file)".to_owned(),
        env: "SYNC_SERVICE_CONFIG".to_owned(),
        message,
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| file_error(format!("cannot read {}: {e}", path.display())))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e| file_error(format!("{} is not valid TOML: {e}", path.display())))?;
    let mut entries: Vec<(String, toml::Value)> = Vec::new();
    for (k, v) in table {
        match v {
            toml::Value::Table(section) => {
                entries.extend(
                    section
                        .into_iter()
                        .map(|(k2, v2)| (format!("{k}.{k2}"), v2)),
                );
            }
            other => entries.push((k, other)),
        }
    }
    for (key, value) in entries {
        if env_of(&key).is_empty() {
            return Err(Error::Config {
                key,
                // Not a setting, so no variable of its own: name the file's.
                env: "SYNC_SERVICE_CONFIG".to_owned(),
                message: format!(
                    "is not a setting (in {}): see the sync-service README for the keys",
                    path.display()
                ),
            });
        }
        let text =
            scalar(&value).ok_or_else(|| invalid(&key, "expected a string, number or boolean"))?;
        map.insert(key, text);
    }
    Ok(())
}

impl ServiceConfig {
    /// Reads the TOML `file` (if any), then the variables `lookup` returns (the process
    /// environment, or a map in tests) on top; blank variables count as unset. Validated.
    ///
    /// # Errors
    /// [`Error::Config`] naming the TOML key and the environment variable of the first
    /// invalid or missing setting.
    pub fn from_lookup(
        file: Option<&Path>,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, Error> {
        let layers = Layers::read(file, &lookup)?;
        let mut c = Self::default();
        c.apply_top(&layers)?;
        c.apply_sections(&layers)?;
        c.apply_tuning(&layers)?;
        c.validate()?;
        Ok(c)
    }

    /// Reads `args.config` (if any), the process environment, then `args` on top.
    ///
    /// # Errors
    /// As [`from_lookup`](Self::from_lookup).
    pub fn load(args: &ServiceArgs) -> Result<Self, Error> {
        Self::from_lookup(args.config.as_deref(), |name| std::env::var(name).ok())
            .map(|c| c.with_args(args))
    }

    /// Applies explicit command-line values on top.
    #[must_use]
    pub fn with_args(mut self, args: &ServiceArgs) -> Self {
        if let Some(listen) = args.listen {
            self.listen = listen;
        }
        if args.create_properties {
            self.create_properties = true;
        }
        self
    }

    fn apply_top(&mut self, l: &Layers) -> Result<(), Error> {
        l.set("listen", &mut self.listen)?;
        if let Some(v) = l.text("tenant") {
            self.tenant = v;
        }
        if let Some(v) = l.text("database_url") {
            self.database_url = v;
        }
        if let Some(v) = l.text("sync_config") {
            self.sync_config = Some(PathBuf::from(v));
        }
        if let Some(v) = l.text("instance_id") {
            self.instance_id = v;
        }
        if let Some(v) = l.parse("crm")? {
            self.crm = Some(v);
        }
        l.set("create_properties", &mut self.create_properties)?;
        if let Some(v) = l.text("webhook_public_url") {
            self.webhook_public_url = Some(v);
        }
        self.status_token = l.secret("status_token").or(self.status_token.take());
        if let Some(v) = l.text("alert_webhook_url") {
            self.alert_webhook_url = Some(v);
        }
        l.set("health_interval_secs", &mut self.health_interval_secs)?;
        l.set("shutdown_grace_secs", &mut self.shutdown_grace_secs)
    }

    fn apply_sections(&mut self, l: &Layers) -> Result<(), Error> {
        let h = &mut self.hubspot;
        h.base_url = l.text("hubspot.base_url").or(h.base_url.take());
        h.token = l.secret("hubspot.token").or(h.token.take());
        h.client_secret = l.secret("hubspot.client_secret").or(h.client_secret.take());
        if let Some(v) = l.text("hubspot.tags_property") {
            h.tags_property = v;
        }
        let s = &mut self.salesforce;
        s.login_url = l.text("salesforce.login_url").or(s.login_url.take());
        s.client_id = l.text("salesforce.client_id").or(s.client_id.take());
        s.client_secret = l
            .secret("salesforce.client_secret")
            .or(s.client_secret.take());
        s.refresh_token = l
            .secret("salesforce.refresh_token")
            .or(s.refresh_token.take());
        s.username = l.text("salesforce.username").or(s.username.take());
        if let Some(v) = l.text("salesforce.private_key_path") {
            s.private_key_path = Some(PathBuf::from(v));
        }
        if let Some(v) = l.text("salesforce.tags_field") {
            s.tags_field = v;
        }
        let c = &mut self.cativa;
        c.base_url = l.text("cativa.base_url").or(c.base_url.take());
        c.api_key = l.secret("cativa.api_key").or(c.api_key.take());
        c.webhook_secret = l
            .secret("cativa.webhook_secret")
            .or(c.webhook_secret.take());
        c.automation_events = l
            .text("cativa.automation_events")
            .or(c.automation_events.take());
        Ok(())
    }

    fn apply_tuning(&mut self, l: &Layers) -> Result<(), Error> {
        let h = &mut self.http;
        l.set("http.header_timeout_secs", &mut h.header_timeout_secs)?;
        l.set("http.body_timeout_secs", &mut h.body_timeout_secs)?;
        l.set("http.request_timeout_secs", &mut h.request_timeout_secs)?;
        l.set("http.max_concurrency", &mut h.max_concurrency)?;
        l.set("http.max_body_bytes", &mut h.max_body_bytes)?;
        l.set("http.max_header_bytes", &mut h.max_header_bytes)?;
        l.set("http.max_headers", &mut h.max_headers)?;
        l.set("http.retry_after_secs", &mut h.retry_after_secs)?;
        l.set("drain.enabled", &mut self.drain.enabled)?;
        l.set("drain.idle_ms", &mut self.drain.idle_ms)?;
        l.set("drain.lease_secs", &mut self.drain.lease_secs)?;
        let p = &mut self.pull;
        l.set("pull.interval_secs", &mut p.interval_secs)?;
        l.set("pull.jitter_secs", &mut p.jitter_secs)?;
        l.set("pull.full_reconcile_hour", &mut p.full_reconcile_hour)?;
        l.set("pull.leader_lease_secs", &mut p.leader_lease_secs)?;
        let r = &mut self.retention;
        l.set("retention.deliveries_days", &mut r.deliveries_days)?;
        l.set("retention.outbox_days", &mut r.outbox_days)?;
        l.set("retention.audit_days", &mut r.audit_days)?;
        l.set("retention.webhook_counts_days", &mut r.webhook_counts_days)?;
        l.set(
            "retention.operator_actions_days",
            &mut r.operator_actions_days,
        )?;
        l.set("retention.batch", &mut r.batch)?;
        l.set("retention.interval_secs", &mut r.interval_secs)
    }

    /// Checks the settings that have rules beyond their type: the CRM and its credentials,
    /// the Cativa key, the automation map, and values that must not be zero.
    ///
    /// # Errors
    /// [`Error::Config`] naming the key and the environment variable.
    pub fn validate(&self) -> Result<(), Error> {
        let nonzero = [
            ("http.header_timeout_secs", self.http.header_timeout_secs),
            ("http.body_timeout_secs", self.http.body_timeout_secs),
            ("http.request_timeout_secs", self.http.request_timeout_secs),
            ("http.max_concurrency", self.http.max_concurrency as u64),
            ("http.max_body_bytes", self.http.max_body_bytes as u64),
            ("http.max_header_bytes", self.http.max_header_bytes as u64),
            ("http.max_headers", self.http.max_headers as u64),
            ("drain.idle_ms", self.drain.idle_ms),
            ("drain.lease_secs", self.drain.lease_secs),
            ("pull.leader_lease_secs", self.pull.leader_lease_secs),
            ("retention.batch", self.retention.batch as u64),
            ("retention.interval_secs", self.retention.interval_secs),
            ("health_interval_secs", self.health_interval_secs),
        ];
        if let Some((key, _)) = nonzero.iter().find(|(_, v)| *v == 0) {
            return Err(invalid(key, "must be at least 1"));
        }
        for (key, value) in [
            ("tenant", &self.tenant),
            ("database_url", &self.database_url),
            ("instance_id", &self.instance_id),
        ] {
            if value.trim().is_empty() {
                return Err(invalid(key, "must not be empty"));
            }
        }
        if self.cativa.api_key.is_none() {
            return Err(invalid(
                "cativa.api_key",
                "is required: the partner API key from the Cativa Console",
            ));
        }
        self.automation_events()?;
        match self.crm()? {
            Crm::HubSpot if self.hubspot.token.is_none() => Err(invalid(
                "hubspot.token",
                "is required for HubSpot: a private-app access token",
            )),
            Crm::HubSpot => Ok(()),
            Crm::Salesforce => self.salesforce_auth().map(|_| ()),
        }
    }

    /// The CRM: `SYNC_CRM`, else HubSpot when `HUBSPOT_BASE_URL` is set, else Salesforce
    /// when `SALESFORCE_LOGIN_URL` is set.
    ///
    /// # Errors
    /// [`Error::Config`] when none of them is set.
    pub fn crm(&self) -> Result<Crm, Error> {
        match (self.crm, &self.hubspot.base_url, &self.salesforce.login_url) {
            (Some(crm), _, _) => Ok(crm),
            (None, Some(_), _) => Ok(Crm::HubSpot),
            (None, None, Some(_)) => Ok(Crm::Salesforce),
            (None, None, None) => Err(invalid(
                "crm",
                "is unset and neither HUBSPOT_BASE_URL nor SALESFORCE_LOGIN_URL is set: choose hubspot or salesforce",
            )),
        }
    }

    /// The Salesforce flow from what is set.
    ///
    /// # Errors
    /// [`Error::Config`] naming what is missing.
    pub fn salesforce_auth(&self) -> Result<SalesforceAuth, Error> {
        let s = &self.salesforce;
        let client_id = s.client_id.clone().ok_or_else(|| {
            invalid(
                "salesforce.client_id",
                "is required for Salesforce: the connected app's consumer key",
            )
        })?;
        if let Some(key) = &s.private_key_path {
            let username = s.username.clone().ok_or_else(|| {
                invalid(
                    "salesforce.username",
                    "is required with salesforce.private_key_path (JWT bearer flow)",
                )
            })?;
            return Ok(SalesforceAuth::Jwt {
                client_id,
                username,
                private_key_path: key.clone(),
            });
        }
        if let Some(token) = &s.refresh_token {
            return Ok(SalesforceAuth::RefreshToken {
                client_id,
                client_secret: s.client_secret.clone(),
                refresh_token: token.clone(),
            });
        }
        let client_secret = s.client_secret.clone().ok_or_else(|| {
            invalid(
                "salesforce.client_secret",
                "is required for the client-credentials flow (or set SALESFORCE_REFRESH_TOKEN, or SALESFORCE_USERNAME and SALESFORCE_PRIVATE_KEY_PATH for JWT)",
            )
        })?;
        Ok(SalesforceAuth::ClientCredentials {
            client_id,
            client_secret,
        })
    }

    /// `CATIVA_AUTOMATION_EVENTS` parsed: `automation-id=event` pairs separated by commas.
    ///
    /// # Errors
    /// [`Error::Config`] for a pair without `=`, an empty or over-long id, an unknown
    /// event, or an id given twice.
    pub fn automation_events(&self) -> Result<Vec<(String, EventType)>, Error> {
        let key = "cativa.automation_events";
        let mut out: Vec<(String, EventType)> = Vec::new();
        let raw = self.cativa.automation_events.as_deref().unwrap_or("");
        for pair in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (id, event) = pair.split_once('=').ok_or_else(|| {
                invalid(
                    key,
                    format!(
                        "has {pair:?}: expected <automation id>=<event>, e.g. 3f2c...=user_created"
                    ),
                )
            })?;
            let id = id.trim();
            if id.is_empty() || id.len() > cativa_client::webhook::MAX_ID_LEN {
                return Err(invalid(
                    key,
                    format!(
                        "has {pair:?}: the automation id must be 1 to {} characters",
                        cativa_client::webhook::MAX_ID_LEN
                    ),
                ));
            }
            // `user_joined_group:<group>`: one listener per group (the payload names none).
            let (event, group) = match event.split_once(':') {
                Some((e, g)) => (e, Some(g.trim())),
                None => (event, None),
            };
            let event: EventType = event
                .trim()
                .parse()
                .map_err(|e| invalid(key, format!("has {pair:?}: {e}")))?;
            if let Some(g) = group
                && (event != EventType::UserJoinedGroup || g.is_empty())
            {
                return Err(invalid(
                    key,
                    format!(
                        "has {pair:?}: only user_joined_group takes a group, as user_joined_group:<group name>"
                    ),
                ));
            }
            if out.iter().any(|(known, _)| known == id) {
                return Err(invalid(
                    key,
                    format!("maps automation id {id} twice: a listener is subscribed to one event"),
                ));
            }
            out.push((id.to_owned(), event));
        }
        Ok(out)
    }

    /// The group listeners of `CATIVA_AUTOMATION_EVENTS`: `<automation id>=user_joined_group:<group>`
    /// pairs, as (automation id, group name).
    ///
    /// # Errors
    /// As [`automation_events`](Self::automation_events).
    pub fn group_automations(&self) -> Result<Vec<(String, String)>, Error> {
        self.automation_events()?;
        let raw = self.cativa.automation_events.as_deref().unwrap_or("");
        Ok(raw
            .split(',')
            .filter_map(|pair| {
                let (id, event) = pair.split_once('=')?;
                let (_, group) = event.split_once(':')?;
                Some((id.trim().to_owned(), group.trim().to_owned()))
            })
            .collect())
    }

    /// The public URL HubSpot signs its webhooks over: `WEBHOOK_PUBLIC_URL` (or
    /// `http://<listen>`) + `/webhooks/hubspot`.
    pub fn hubspot_webhook_url(&self) -> String {
        let base = self
            .webhook_public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen));
        format!("{}/webhooks/hubspot", base.trim_end_matches('/'))
    }

    /// The service's tuning from these settings.
    pub fn service_options(&self) -> ServiceOptions {
        const DAY: u64 = 24 * 3600;
        let mut o = ServiceOptions::default();
        let h = &self.http;
        o.http.header_read_timeout = Duration::from_secs(h.header_timeout_secs);
        o.http.body_read_timeout = Duration::from_secs(h.body_timeout_secs);
        o.http.request_timeout = Duration::from_secs(h.request_timeout_secs);
        o.http.max_concurrency = h.max_concurrency;
        o.http.max_body_bytes = h.max_body_bytes;
        o.http.max_header_bytes = h.max_header_bytes;
        o.http.max_headers = h.max_headers;
        o.http.retry_after_secs = h.retry_after_secs;
        o.drain.enabled = self.drain.enabled;
        o.drain.idle_interval = Duration::from_millis(self.drain.idle_ms);
        let p = &self.pull;
        o.schedule.delta_interval =
            (p.interval_secs > 0).then(|| Duration::from_secs(p.interval_secs));
        o.schedule.jitter = Duration::from_secs(p.jitter_secs);
        o.schedule.full_reconcile = match p.full_reconcile_hour {
            ReconcileHour::Never => FullReconcile::Never,
            ReconcileHour::At(hour) => FullReconcile::DailyAt { hour },
        };
        o.schedule.leader_lease = Duration::from_secs(p.leader_lease_secs);
        let r = &self.retention;
        o.retention.deliveries = Duration::from_secs(r.deliveries_days.saturating_mul(DAY));
        o.retention.done_outbox = Duration::from_secs(r.outbox_days.saturating_mul(DAY));
        o.retention.audit = Duration::from_secs(r.audit_days.saturating_mul(DAY));
        o.retention.webhook_counts = Duration::from_secs(r.webhook_counts_days.saturating_mul(DAY));
        o.retention.operator_actions =
            Duration::from_secs(r.operator_actions_days.saturating_mul(DAY));
        o.retention.batch = r.batch;
        o.retention.interval = Duration::from_secs(r.interval_secs);
        o.shutdown_grace = Duration::from_secs(self.shutdown_grace_secs);
        o.health_interval = Duration::from_secs(self.health_interval_secs);
        o
    }

    /// The badge rules and field mappings: `SYNC_CONFIG` if set, else
    /// [`DEFAULT_SYNC_CONFIG`].
    ///
    /// # Errors
    /// [`Error::Config`] naming `sync_config` when the file cannot be read or validated.
    pub fn sync_rules(&self) -> Result<sync_core::ValidatedConfig, Error> {
        let config = match &self.sync_config {
            Some(path) => sync_core::SyncConfig::from_path(path),
            None => sync_core::SyncConfig::from_toml_str(DEFAULT_SYNC_CONFIG),
        };
        config
            .and_then(sync_core::SyncConfig::validate)
            .map_err(|e| invalid("sync_config", e.to_string()))
    }
}

/// How the service authenticates to Salesforce.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum SalesforceAuth {
    /// JWT bearer.
    Jwt {
        /// `SALESFORCE_CLIENT_ID`.
        client_id: String,
        /// `SALESFORCE_USERNAME`.
        username: String,
        /// `SALESFORCE_PRIVATE_KEY_PATH`.
        private_key_path: PathBuf,
    },
    /// The refresh-token flow.
    RefreshToken {
        /// `SALESFORCE_CLIENT_ID`.
        client_id: String,
        /// `SALESFORCE_CLIENT_SECRET`, when the connected app requires it.
        client_secret: Option<SecretString>,
        /// `SALESFORCE_REFRESH_TOKEN`.
        refresh_token: SecretString,
    },
    /// Client credentials (My Domain login URL required).
    ClientCredentials {
        /// `SALESFORCE_CLIENT_ID`.
        client_id: String,
        /// `SALESFORCE_CLIENT_SECRET`.
        client_secret: SecretString,
    },
}
