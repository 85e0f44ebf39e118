//! Start-up checks: the store, the Cativa key, the CRM credentials and scopes, and the CRM
//! properties the sync writes and reads. Every check runs and every problem is reported at
//! once, so one restart fixes them all; the service never accepts deliveries that would fail
//! for a configuration reason.

use crm_hubspot::model::PropertyCreate;
use crm_hubspot::{HubSpotClient, HubSpotSink, TokenInfo};
use sync_core::ports::CredentialsCheck;
use tracing::{info, warn};

use crate::config::ServiceConfig;
use crate::connect::{Connected, HUBSPOT_BADGES_PROPERTY, HUBSPOT_USER_ID_PROPERTY, connect};
use crate::error::{Error, Problem};
use crate::service::Service;

/// The HubSpot scope needed to create contact properties.
pub const HUBSPOT_SCHEMA_WRITE_SCOPE: &str = "crm.schemas.contacts.write";
/// The HubSpot scopes the sync needs to run: read and write contacts, read their schema.
pub const HUBSPOT_REQUIRED_SCOPES: [&str; 3] = [
    "crm.objects.contacts.read",
    "crm.objects.contacts.write",
    "crm.schemas.contacts.read",
];
/// The property group created properties go to (it exists in every HubSpot account).
const PROPERTY_GROUP: &str = "contactinformation";

/// What the start-up checks found, when nothing stops the start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckReport {
    /// One line per check passed.
    pub passed: Vec<String>,
    /// What could not be checked, and why (the service starts anyway).
    pub unchecked: Vec<String>,
    /// The CRM properties created (with `create_properties`).
    pub created: Vec<String>,
}

/// The findings of one or more checks.
#[derive(Default)]
struct Findings {
    report: CheckReport,
    problems: Vec<Problem>,
}

impl Findings {
    fn pass(&mut self, line: impl Into<String>) {
        self.report.passed.push(line.into());
    }

    fn fail(&mut self, check: &'static str, message: impl Into<String>) {
        self.problems.push(Problem::new(check, message));
    }

    fn merge(&mut self, other: Self) {
        self.report.passed.extend(other.report.passed);
        self.report.unchecked.extend(other.report.unchecked);
        self.report.created.extend(other.report.created);
        self.problems.extend(other.problems);
    }
}

/// Runs every start-up check against `connected`, creating missing CRM properties when
/// `config.create_properties` is set and the credentials permit.
///
/// # Errors
/// [`Error::Startup`] listing every problem found.
pub async fn check(connected: &Connected, config: &ServiceConfig) -> Result<CheckReport, Error> {
    let (store, cativa, crm) = tokio::join!(
        check_store(connected),
        check_cativa(connected),
        check_crm(connected, config)
    );
    let mut all = Findings::default();
    all.merge(store);
    all.merge(cativa);
    all.merge(crm);
    if all.problems.is_empty() {
        Ok(all.report)
    } else {
        Err(Error::Startup(all.problems))
    }
}

/// Connects, checks (logging each check passed) and builds the service with
/// `config.service_options()`.
///
/// # Errors
/// [`Error::Config`] for a bad setting, [`Error::Engine`] when the store cannot be opened,
/// [`Error::Startup`] listing every problem the checks found.
pub async fn start(config: &ServiceConfig) -> Result<Service, Error> {
    let connected = connect(config).await?;
    let checked = check(&connected, config).await;
    record_credentials(&connected, checked.as_ref().err()).await;
    let report = checked?;
    for line in &report.passed {
        info!(check = %line, "start-up check passed");
    }
    for line in &report.unchecked {
        warn!(check = %line, "not checked at start-up");
    }
    for name in &report.created {
        info!(property = %name, "created CRM property");
    }
    let mut builder = connected
        .into_builder(config.service_options())
        .checks_passed(report.passed);
    if let Some(token) = &config.status_token {
        builder = builder.status_token(token.clone());
    }
    if let Some(url) = &config.alert_webhook_url {
        let observer =
            cativa_client::WebhookObserver::new(url.clone()).map_err(|e| Error::Config {
                key: "alert_webhook_url".to_owned(),
                env: "SYNC_ALERT_WEBHOOK_URL".to_owned(),
                message: e.to_string(),
            })?;
        builder = builder.observer(std::sync::Arc::new(observer));
    }
    #[cfg(feature = "prometheus")]
    let builder = match metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder() {
        Ok(handle) => builder.prometheus(handle),
        Err(e) => {
            warn!(error = %e, "no Prometheus recorder installed (the process has one already?): GET /metrics answers 404");
            builder
        }
    };
    Ok(builder.build())
}

/// The checks whose failure means credentials were refused.
const CREDENTIAL_CHECKS: [&str; 4] = [
    "cativa_credentials",
    "hubspot_credentials",
    "hubspot_scopes",
    "salesforce",
];

/// Records the start-up check of the credentials for the status: failed with the
/// credential problems found, else ok. A store error is only logged (the store check
/// reports it).
async fn record_credentials(c: &Connected, error: Option<&Error>) {
    let now = c.engine.now();
    let refused: Vec<String> = match error {
        Some(Error::Startup(problems)) => problems
            .iter()
            .filter(|p| CREDENTIAL_CHECKS.contains(&p.check))
            .map(ToString::to_string)
            .collect(),
        _ => Vec::new(),
    };
    let check = if refused.is_empty() {
        // The engine's connection check also learns the CRM account id (HubSpot portal,
        // Salesforce org) and records its own result; without a CRM source it cannot run.
        if let Ok(report) = c.engine.check_connection(&c.tenant).await {
            info!(account = ?report.account_id, ready = report.is_ready(), "CRM connection checked");
            return;
        }
        CredentialsCheck::ok(now, None)
    } else {
        CredentialsCheck::failed(now, refused.join("; "))
    };
    if let Err(e) = c.store.record_credentials_check(&c.tenant, &check).await {
        warn!(error = %e, "could not record the start-up credentials check");
    }
}

/// The store answers reads on the tables the service uses (so it is reachable and
/// migrated).
async fn check_store(c: &Connected) -> Findings {
    let mut f = Findings::default();
    let reads = async {
        c.store.outbox_counts(&c.tenant).await?;
        c.store.count_mappings(&c.tenant).await?;
        c.store.has_delivery(&c.tenant, "start-up-check").await
    };
    match reads.await {
        Ok(_) => f.pass("store reachable and migrated"),
        Err(e) => f.fail(
            "store",
            format!("the store cannot be read ({e}): check SYNC_DATABASE_URL, that the database is up and that the migrations ran"),
        ),
    }
    f
}

/// The Cativa key is accepted (`GET /social/v1/auth/me`).
async fn check_cativa(c: &Connected) -> Findings {
    let mut f = Findings::default();
    match c.cativa.me().await {
        Ok(me) => f.pass(format!(
            "Cativa credentials accepted (customer {})",
            me.customer_id.as_str()
        )),
        Err(e) => f.fail(
            "cativa_credentials",
            format!(
                "Cativa refused the API key at GET /social/v1/auth/me ({e}): check CATIVA_API_KEY and CATIVA_BASE_URL"
            ),
        ),
    }
    f
}

async fn check_crm(c: &Connected, config: &ServiceConfig) -> Findings {
    match (&c.hubspot, &c.hubspot_sink, &c.salesforce) {
        (Some(client), Some(sink), _) => check_hubspot(client, sink, c, config).await,
        (_, _, Some(client)) => check_salesforce(client, config).await,
        _ => {
            let mut f = Findings::default();
            f.report
                .unchecked
                .push("CRM: no CRM client was connected".to_owned());
            f
        }
    }
}

/// HubSpot: the token and its scopes, then the properties.
async fn check_hubspot(
    client: &HubSpotClient,
    sink: &HubSpotSink,
    c: &Connected,
    config: &ServiceConfig,
) -> Findings {
    let mut f = Findings::default();
    let scopes = match client.private_app_token_info().await {
        Ok(Some(info)) => {
            check_scopes(&info, &mut f);
            Some(info)
        }
        Ok(None) => {
            f.report.unchecked.push(
                "HubSpot scopes: the token info endpoint cannot tell them for this token (404, or not a private-app token)".to_owned(),
            );
            None
        }
        Err(e) => {
            f.fail(
                "hubspot_credentials",
                format!("HubSpot refused the access token ({e}): check HUBSPOT_TOKEN and HUBSPOT_BASE_URL"),
            );
            // Every other HubSpot check would fail the same way.
            return f;
        }
    };
    match sink.schema().await {
        Ok(schema) => {
            let required = [
                config.hubspot.tags_property.as_str(),
                HUBSPOT_USER_ID_PROPERTY,
                HUBSPOT_BADGES_PROPERTY,
            ];
            let missing: Vec<&str> = required
                .into_iter()
                .filter(|name| schema.get(name).is_none())
                .collect();
            if missing.is_empty() {
                f.pass(format!("HubSpot contact properties present: {}", required.join(", ")));
            } else {
                missing_properties(client, sink, c, config, scopes.as_ref(), &missing, &mut f)
                    .await;
            }
        }
        Err(e) => f.fail(
            "hubspot_properties",
            format!("cannot list HubSpot contact properties ({e}): the token needs the scope crm.schemas.contacts.read"),
        ),
    }
    f
}

fn check_scopes(info: &TokenInfo, f: &mut Findings) {
    let lacking: Vec<&str> = HUBSPOT_REQUIRED_SCOPES
        .into_iter()
        .filter(|s| !info.has_scope(s))
        .collect();
    if lacking.is_empty() {
        f.pass(format!(
            "HubSpot token accepted with scopes {}",
            HUBSPOT_REQUIRED_SCOPES.join(", ")
        ));
    } else {
        f.fail(
            "hubspot_scopes",
            format!(
                "the HubSpot token lacks the scope(s) {}: add them to the private app and use its new token",
                lacking.join(", ")
            ),
        );
    }
}

/// Creates the missing properties when asked and permitted, else reports each one with
/// what would create it.
async fn missing_properties(
    client: &HubSpotClient,
    sink: &HubSpotSink,
    c: &Connected,
    config: &ServiceConfig,
    scopes: Option<&TokenInfo>,
    missing: &[&str],
    f: &mut Findings,
) {
    let can_write = scopes.is_none_or(|i| i.has_scope(HUBSPOT_SCHEMA_WRITE_SCOPE));
    for &name in missing {
        if !config.create_properties {
            f.fail(
                "crm_property",
                format!(
                    "the HubSpot contact property {name} is missing: create it, or start with --create-properties (SYNC_CREATE_PROPERTIES=true) to let the service create it (needs the scope {HUBSPOT_SCHEMA_WRITE_SCOPE})"
                ),
            );
            continue;
        }
        if !can_write {
            f.fail(
                "crm_property",
                format!(
                    "the HubSpot contact property {name} is missing and cannot be created: the token lacks the scope {HUBSPOT_SCHEMA_WRITE_SCOPE}"
                ),
            );
            continue;
        }
        let definition = property_definition(name, &config.hubspot.tags_property, c);
        match client.create_contact_property(&definition).await {
            Ok(_) => f.report.created.push(name.to_owned()),
            Err(crm_hubspot::Error::Api(e)) if e.status == 403 => f.fail(
                "crm_property",
                format!(
                    "the HubSpot contact property {name} is missing and HubSpot refused to create it: the token needs the scope {HUBSPOT_SCHEMA_WRITE_SCOPE}"
                ),
            ),
            Err(e) => f.fail(
                "crm_property",
                format!("the HubSpot contact property {name} is missing and creating it failed: {e}"),
            ),
        }
    }
    if !f.report.created.is_empty() {
        sink.invalidate_schema().await;
    }
}

fn property_definition(name: &str, tags_property: &str, c: &Connected) -> PropertyCreate {
    match name {
        HUBSPOT_USER_ID_PROPERTY => PropertyCreate::cativa_user_id(PROPERTY_GROUP),
        HUBSPOT_BADGES_PROPERTY => PropertyCreate::cativa_badges(PROPERTY_GROUP, &c.managed_badges),
        _ => PropertyCreate::multi_checkbox(
            tags_property,
            "Cativa tags",
            PROPERTY_GROUP,
            "Tags that grant Cativa community badges (read by cativa-crm-sync).",
            &[],
        ),
    }
}

/// Salesforce: the credentials and the tags field, through one SOQL query reading it.
async fn check_salesforce(
    client: &crm_salesforce::SalesforceClient,
    config: &ServiceConfig,
) -> Findings {
    let mut f = Findings::default();
    let field = &config.salesforce.tags_field;
    let soql = format!("SELECT Id, {field} FROM Contact LIMIT 1");
    match client.query::<serde_json::Value>(&soql).await {
        Ok(_) => f.pass(format!(
            "Salesforce credentials accepted; Contact.{field} readable"
        )),
        Err(e) => f.fail(
            "salesforce",
            format!(
                "cannot read Contact.{field} ({e}): check the SALESFORCE_* credentials and that the field exists (SALESFORCE_TAGS_FIELD)"
            ),
        ),
    }
    f.report.unchecked.push(
        "Salesforce: the connected app's scopes and whether fields are writable are not checked (no describe call)".to_owned(),
    );
    f
}
