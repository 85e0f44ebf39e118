//! From a [`ServiceConfig`] to the service's parts: the store (migrated), the API clients,
//! the CRM source and sinks, the engine and the webhook receivers.

use std::sync::Arc;

use cativa_client::CativaClient;
use cativa_client::sink::ApiBadgeSink;
use crm_hubspot::webhook::{EchoFilter, SignatureVerifier as HubSpotVerifier};
use crm_hubspot::{
    ContactMapping, HubSpotClient, HubSpotSink, HubSpotSource, SinkConfig, SourceConfig, TagSource,
};
use crm_salesforce::{
    ContactSchema, JwtBearer, OAuthFlow, SalesforceClient, SalesforceSink, SalesforceSource,
};
use sync_core::TenantId;
use sync_core::ports::Store;
use sync_engine::{EngineOptions, SyncEngine};

use crate::config::{Crm, SalesforceAuth, ServiceConfig};
use crate::error::Error;
use crate::options::ServiceOptions;
use crate::service::{Service, ServiceBuilder};

/// The HubSpot property mirroring each user's badges.
pub const HUBSPOT_BADGES_PROPERTY: &str = "cativa_badges";
/// The HubSpot property holding the Cativa user id.
pub const HUBSPOT_USER_ID_PROPERTY: &str = "cativa_user_id";

/// The connected parts of a service, before the start-up checks. Turn them into a
/// [`Service`] with [`Connected::into_builder`] (or let [`crate::start`] do everything).
pub struct Connected {
    /// The store, migrated.
    pub store: Arc<dyn Store>,
    /// The tenant.
    pub tenant: TenantId,
    /// The Cativa API client.
    pub cativa: CativaClient,
    /// The HubSpot client, when the CRM is HubSpot.
    pub hubspot: Option<HubSpotClient>,
    /// The HubSpot sink, when the CRM is HubSpot (the checks read its schema and create
    /// its properties).
    pub hubspot_sink: Option<Arc<HubSpotSink>>,
    /// The Salesforce client, when the CRM is Salesforce.
    pub salesforce: Option<SalesforceClient>,
    /// The engine: the CRM source and sink, the badge sink, the instance id as worker id.
    pub engine: SyncEngine,
    /// The Cativa webhook receiver, when `CATIVA_WEBHOOK_SECRET` is set.
    pub cativa_receiver: Option<cativa_client::webhook::WebhookReceiver>,
    /// The HubSpot webhook receiver and the source it reads through, when
    /// `HUBSPOT_CLIENT_SECRET` is set (and the CRM is HubSpot).
    pub hubspot_receiver: Option<(crm_hubspot::webhook::WebhookReceiver, Arc<HubSpotSource>)>,
    /// The badge ids the rules manage (the options of `cativa_badges`).
    pub managed_badges: Vec<String>,
}

impl std::fmt::Debug for Connected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connected")
            .field("tenant", &self.tenant)
            .field("hubspot", &self.hubspot.is_some())
            .field("salesforce", &self.salesforce.is_some())
            .field("cativa_receiver", &self.cativa_receiver.is_some())
            .field("hubspot_receiver", &self.hubspot_receiver.is_some())
            .finish_non_exhaustive()
    }
}

impl Connected {
    /// A [`ServiceBuilder`] with the engine, the receivers and `options`.
    pub fn into_builder(self, options: ServiceOptions) -> ServiceBuilder {
        let mut builder = Service::builder(self.engine, self.tenant).options(options);
        if let Some(receiver) = self.cativa_receiver {
            builder = builder.cativa(receiver);
        }
        if let Some((receiver, source)) = self.hubspot_receiver {
            builder = builder.hubspot(receiver, source);
        }
        builder
    }
}

/// An [`Error::Config`] for a client that cannot be built from `key`'s value.
fn client_error(key: &str, env: &str, e: &dyn std::fmt::Display) -> Error {
    Error::Config {
        key: key.to_owned(),
        env: env.to_owned(),
        message: format!("cannot build the client: {e}"),
    }
}

/// The CRM side of the engine.
struct CrmParts {
    hubspot: Option<HubSpotClient>,
    hubspot_sink: Option<Arc<HubSpotSink>>,
    hubspot_receiver: Option<(crm_hubspot::webhook::WebhookReceiver, Arc<HubSpotSource>)>,
    salesforce: Option<SalesforceClient>,
    source: Arc<dyn sync_core::ports::CrmSource>,
    sink: Arc<dyn sync_core::ports::CrmSink>,
}

/// Opens the store (migrations run), builds the clients, the engine and the receivers.
/// Nothing is checked against the APIs yet: see [`crate::check`].
///
/// # Errors
/// [`Error::Config`] for a setting a client or receiver cannot be built from (the file
/// named by `SYNC_CONFIG` included); [`Error::Engine`] when the store cannot be opened or
/// migrated.
pub async fn connect(config: &ServiceConfig) -> Result<Connected, Error> {
    config.validate()?;
    let rules = config.sync_rules()?;
    let managed_badges: Vec<String> = rules
        .managed_badges()
        .iter()
        .map(|b| b.as_str().to_owned())
        .collect();
    let key = config
        .cativa
        .api_key
        .clone()
        .ok_or_else(|| client_error("cativa.api_key", "CATIVA_API_KEY", &"the key is unset"))?;
    let mut cativa = CativaClient::builder(key);
    if let Some(url) = &config.cativa.base_url {
        cativa = cativa.base_url(url);
    }
    let cativa = cativa
        .build()
        .map_err(|e| client_error("cativa.base_url", "CATIVA_BASE_URL", &e))?;
    let crm = match config.crm()? {
        Crm::HubSpot => hubspot_parts(config)?,
        Crm::Salesforce => salesforce_parts(config).await?,
    };
    let store = sync_store::connect(&config.database_url).await?;
    let tenant = TenantId::new(config.tenant.clone());
    let mut options = EngineOptions::default();
    options.worker_id.clone_from(&config.instance_id);
    options.lease = std::time::Duration::from_secs(config.drain.lease_secs);
    if crm.hubspot.is_some() {
        options.crm_badges_property = Some(HUBSPOT_BADGES_PROPERTY.to_owned());
    } else {
        // Salesforce keeps the user id in an External ID field of the partner's choosing.
        options.crm_user_id_property = None;
    }
    let engine = SyncEngine::builder(rules, store.clone())
        .source(crm.source)
        .crm_sink(crm.sink)
        .badge_sink(Arc::new(ApiBadgeSink::new(tenant.clone(), cativa.clone())))
        .options(options)
        .build();
    Ok(Connected {
        store,
        tenant,
        cativa,
        hubspot: crm.hubspot,
        hubspot_sink: crm.hubspot_sink,
        salesforce: crm.salesforce,
        engine,
        cativa_receiver: cativa_receiver(config)?,
        hubspot_receiver: crm.hubspot_receiver,
        managed_badges,
    })
}

/// The Cativa receiver: the listener's secret and the automation map.
fn cativa_receiver(
    config: &ServiceConfig,
) -> Result<Option<cativa_client::webhook::WebhookReceiver>, Error> {
    let Some(secret) = &config.cativa.webhook_secret else {
        return Ok(None);
    };
    let verifier = cativa_client::webhook::SignatureVerifier::new(secret.clone())
        .map_err(|e| client_error("cativa.webhook_secret", "CATIVA_WEBHOOK_SECRET", &e))?;
    let mut receiver = cativa_client::webhook::WebhookReceiver::new(verifier);
    for (automation, event) in config.automation_events()? {
        receiver = receiver.with_automation(automation, event);
    }
    for (automation, group) in config.group_automations()? {
        receiver = receiver.with_group_automation(automation, group);
    }
    Ok(Some(receiver))
}

/// HubSpot: the client, a source reading tags from the tags property, a sink sharing an
/// echo filter with the webhook receiver (so its own writes' echoes are dropped).
fn hubspot_parts(config: &ServiceConfig) -> Result<CrmParts, Error> {
    let token = config
        .hubspot
        .token
        .clone()
        .ok_or_else(|| client_error("hubspot.token", "HUBSPOT_TOKEN", &"the token is unset"))?;
    let client = HubSpotClient::builder()
        .base_url(
            config
                .hubspot
                .base_url
                .clone()
                .unwrap_or_else(|| crm_hubspot::DEFAULT_BASE_URL.to_owned()),
        )
        .access_token(token)
        .build()
        .map_err(|e| client_error("hubspot.base_url", "HUBSPOT_BASE_URL", &e))?;
    let mapping = ContactMapping::default().with_tags(TagSource::CheckboxProperty(
        config.hubspot.tags_property.clone(),
    ));
    let source = Arc::new(HubSpotSource::new(
        client.clone(),
        SourceConfig::new(mapping),
    ));
    let echo = Arc::new(EchoFilter::new());
    // Badge ids added to the rules later become options of the mirror property on demand.
    let sink_config = SinkConfig::default().adding_options_to(HUBSPOT_BADGES_PROPERTY);
    let sink =
        Arc::new(HubSpotSink::new(client.clone(), sink_config).with_echo_filter(echo.clone()));
    let receiver = config.hubspot.client_secret.as_ref().map(|secret| {
        let verifier =
            HubSpotVerifier::new(secret.clone()).with_public_url(config.hubspot_webhook_url());
        (
            crm_hubspot::webhook::WebhookReceiver::new(verifier).with_echo_filter(echo),
            source.clone(),
        )
    });
    Ok(CrmParts {
        hubspot: Some(client),
        hubspot_sink: Some(sink.clone()),
        hubspot_receiver: receiver,
        salesforce: None,
        source,
        sink,
    })
}

/// Salesforce: the client for the configured flow, a source and a sink on `Contact` with
/// tags from the tags field.
async fn salesforce_parts(config: &ServiceConfig) -> Result<CrmParts, Error> {
    let s = &config.salesforce;
    let login_url = s.login_url.clone().ok_or_else(|| {
        client_error(
            "salesforce.login_url",
            "SALESFORCE_LOGIN_URL",
            &"the login URL is unset",
        )
    })?;
    let flow = match config.salesforce_auth()? {
        SalesforceAuth::Jwt {
            client_id,
            username,
            private_key_path,
        } => {
            let pem = tokio::fs::read(&private_key_path).await.map_err(|e| {
                client_error(
                    "salesforce.private_key_path",
                    "SALESFORCE_PRIVATE_KEY_PATH",
                    &format!("cannot read {}: {e}", private_key_path.display()),
                )
            })?;
            OAuthFlow::JwtBearer(
                JwtBearer::from_pem(&client_id, &username, &pem).map_err(|e| {
                    client_error(
                        "salesforce.private_key_path",
                        "SALESFORCE_PRIVATE_KEY_PATH",
                        &e,
                    )
                })?,
            )
        }
        SalesforceAuth::RefreshToken {
            client_id,
            client_secret,
            refresh_token,
        } => OAuthFlow::refresh_token(&client_id, client_secret, refresh_token),
        SalesforceAuth::ClientCredentials {
            client_id,
            client_secret,
        } => OAuthFlow::client_credentials(&client_id, client_secret),
    };
    let client = SalesforceClient::builder()
        .login_url(&login_url)
        .flow(flow)
        .build()
        .map_err(|e| client_error("salesforce.login_url", "SALESFORCE_LOGIN_URL", &e))?;
    let schema = ContactSchema::contact().with_tags(crm_salesforce::TagSource::MultiSelect {
        field: s.tags_field.clone(),
    });
    let tags = |e: &dyn std::fmt::Display| {
        client_error("salesforce.tags_field", "SALESFORCE_TAGS_FIELD", e)
    };
    let source = SalesforceSource::new(client.clone(), schema.clone()).map_err(|e| tags(&e))?;
    let sink = SalesforceSink::new(client.clone(), schema).map_err(|e| tags(&e))?;
    Ok(CrmParts {
        hubspot: None,
        hubspot_sink: None,
        hubspot_receiver: None,
        salesforce: Some(client),
        source: Arc::new(source),
        sink: Arc::new(sink),
    })
}
