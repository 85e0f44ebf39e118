//! Bootstrap: API clients for the endpoints in the environment, the in-process sandbox for
//! the ones that are not set, and the store.

use std::path::PathBuf;
use std::sync::Arc;

use cativa_client::CativaClient;
use crm_hubspot::{ContactMapping, HubSpotClient, HubSpotSource, SourceConfig, TagSource};
use crm_salesforce::{ContactSchema, JwtBearer, OAuthFlow, SalesforceClient};
use secrecy::{ExposeSecret, SecretString};
use sync_core::ports::Store;
use sync_sandbox::{SandboxConfig, SandboxServer};

use crate::error::ExampleError;
use crate::settings::{SalesforceAuth, Settings};

/// Which CRM an example talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Crm {
    /// HubSpot.
    HubSpot,
    /// Salesforce.
    Salesforce,
}

/// The API clients an example uses, pointed at real endpoints or at the sandbox.
#[derive(Debug)]
pub struct Endpoints {
    /// The sandbox, when any endpoint was not set (keep it alive while the example runs).
    pub sandbox: Option<SandboxServer>,
    /// The HubSpot client, when the example uses HubSpot.
    pub hubspot: Option<HubSpotClient>,
    /// The Salesforce client, when the example uses Salesforce.
    pub salesforce: Option<SalesforceClient>,
    /// The Cativa client.
    pub cativa: CativaClient,
    /// The secret Cativa webhooks are verified with.
    pub cativa_webhook_secret: SecretString,
    /// The secret HubSpot webhooks are verified with.
    pub hubspot_client_secret: SecretString,
    /// One line saying where each API is served from: print it first.
    pub notice: String,
}

/// The Salesforce client for `crm`: from the settings, else from the sandbox.
fn salesforce_endpoint(
    crm: Crm,
    settings: &Settings,
    sandbox: Option<&SandboxServer>,
    served: &mut Vec<String>,
) -> Result<Option<SalesforceClient>, ExampleError> {
    Ok(match (crm, &settings.salesforce, sandbox) {
        (Crm::Salesforce, Some(s), _) => {
            served.push(format!("Salesforce at {}", s.login_url));
            let flow = match &s.auth {
                SalesforceAuth::Jwt {
                    username,
                    private_key_path,
                } => {
                    let pem = std::fs::read(private_key_path)?;
                    OAuthFlow::JwtBearer(JwtBearer::from_pem(&s.client_id, username, &pem)?)
                }
                SalesforceAuth::RefreshToken {
                    client_secret,
                    refresh_token,
                } => OAuthFlow::refresh_token(
                    &s.client_id,
                    client_secret.clone(),
                    refresh_token.clone(),
                ),
                SalesforceAuth::ClientCredentials { client_secret } => {
                    OAuthFlow::client_credentials(&s.client_id, client_secret.clone())
                }
            };
            Some(
                SalesforceClient::builder()
                    .login_url(&s.login_url)
                    .flow(flow)
                    .build()?,
            )
        }
        (Crm::Salesforce, None, Some(sb)) => {
            served.push(format!(
                "Salesforce at {} (sandbox)",
                sb.salesforce().base_url()
            ));
            Some(
                SalesforceClient::builder()
                    .login_url(sb.salesforce().base_url())
                    .flow(OAuthFlow::refresh_token(
                        sync_sandbox::salesforce::DEFAULT_CLIENT_ID,
                        None,
                        SecretString::from(sync_sandbox::salesforce::DEFAULT_REFRESH_TOKEN),
                    ))
                    .build()?,
            )
        }
        _ => None,
    })
}

/// The Cativa client and webhook secret: from the settings, else from the sandbox.
fn cativa_endpoint(
    settings: &Settings,
    sandbox: Option<&SandboxServer>,
    served: &mut Vec<String>,
) -> Result<(CativaClient, SecretString), ExampleError> {
    Ok(match (&settings.cativa, sandbox) {
        (Some(c), _) => {
            served.push(format!("Cativa at {}", c.base_url));
            let secret = settings.cativa_webhook_secret.clone().ok_or(ExampleError::Env {
                var: "CATIVA_WEBHOOK_SECRET",
                message: "is required when CATIVA_BASE_URL is set (the Console shows it with the listener)".to_owned(),
            });
            (
                CativaClient::builder(c.api_key.clone())
                    .base_url(&c.base_url)
                    .build()?,
                // Only receivers need it; the pull examples run without.
                secret.unwrap_or_else(|_| SecretString::from(String::new())),
            )
        }
        (None, Some(sb)) => {
            served.push(format!("Cativa at {} (sandbox)", sb.cativa().base_url()));
            (
                CativaClient::builder(SecretString::from(sync_sandbox::cativa::DEFAULT_API_KEY))
                    .base_url(sb.cativa().base_url())
                    .build()?,
                settings
                    .cativa_webhook_secret
                    .clone()
                    .unwrap_or_else(|| sb.cativa().webhook_secret().clone()),
            )
        }
        (None, None) => {
            return Err(ExampleError::Env {
                var: "CATIVA_BASE_URL",
                message: "is unset and the sandbox did not start".to_owned(),
            });
        }
    })
}

impl Endpoints {
    /// Builds the clients for `crm` and Cativa; starts the sandbox (all three fake APIs on
    /// 127.0.0.1) if any of them has no endpoint in the environment.
    ///
    /// # Errors
    /// The sandbox cannot start, or a client cannot be built from the settings.
    pub async fn connect(settings: &Settings, crm: Crm) -> Result<Self, ExampleError> {
        let mut missing = Vec::new();
        match crm {
            Crm::HubSpot if settings.hubspot.is_none() => missing.push("HUBSPOT_BASE_URL"),
            Crm::Salesforce if settings.salesforce.is_none() => {
                missing.push("SALESFORCE_LOGIN_URL");
            }
            _ => {}
        }
        if settings.cativa.is_none() {
            missing.push("CATIVA_BASE_URL");
        }
        let sandbox = if missing.is_empty() {
            None
        } else {
            Some(SandboxServer::start(SandboxConfig::default()).await?)
        };
        let mut served = Vec::new();

        let hubspot = match (crm, &settings.hubspot, &sandbox) {
            (Crm::HubSpot, Some(h), _) => {
                served.push(format!("HubSpot at {}", h.base_url));
                Some(hubspot_client(&h.base_url, h.token.clone())?)
            }
            (Crm::HubSpot, None, Some(sb)) => {
                served.push(format!("HubSpot at {} (sandbox)", sb.hubspot().base_url()));
                Some(hubspot_client(
                    sb.hubspot().base_url(),
                    SecretString::from(sync_sandbox::hubspot::DEFAULT_ACCESS_TOKEN),
                )?)
            }
            _ => None,
        };
        let salesforce = salesforce_endpoint(crm, settings, sandbox.as_ref(), &mut served)?;
        let (cativa, cativa_webhook_secret) =
            cativa_endpoint(settings, sandbox.as_ref(), &mut served)?;
        let hubspot_client_secret = settings
            .hubspot_client_secret
            .clone()
            .unwrap_or_else(|| SecretString::from(sync_sandbox::hubspot::DEFAULT_CLIENT_SECRET));
        let notice = if missing.is_empty() {
            format!("Using {} (from the environment).", served.join(", "))
        } else {
            format!(
                "Sandbox mode: {} not set, so in-process sandboxes serve the APIs on 127.0.0.1 (no real account is touched): {}.",
                missing.join(" and "),
                served.join(", ")
            )
        };
        Ok(Self {
            sandbox,
            hubspot,
            salesforce,
            cativa,
            cativa_webhook_secret,
            hubspot_client_secret,
            notice,
        })
    }

    /// The HubSpot client, or an error naming the variable to set.
    ///
    /// # Errors
    /// [`ExampleError::Env`] when the endpoints were built for another CRM.
    pub fn hubspot(&self) -> Result<&HubSpotClient, ExampleError> {
        self.hubspot.as_ref().ok_or(ExampleError::Env {
            var: "HUBSPOT_BASE_URL",
            message: "is needed: these endpoints were built without HubSpot".to_owned(),
        })
    }

    /// The Salesforce client, or an error naming the variable to set.
    ///
    /// # Errors
    /// [`ExampleError::Env`] when the endpoints were built for another CRM.
    pub fn salesforce(&self) -> Result<&SalesforceClient, ExampleError> {
        self.salesforce.as_ref().ok_or(ExampleError::Env {
            var: "SALESFORCE_LOGIN_URL",
            message: "is needed: these endpoints were built without Salesforce".to_owned(),
        })
    }

    /// Stops the sandbox, if one was started.
    pub async fn shutdown(self) {
        if let Some(sandbox) = self.sandbox {
            sandbox.shutdown().await;
        }
    }
}

/// A HubSpot client for a private-app token, within the default (Free/Starter) burst tier.
///
/// # Errors
/// A bad base URL.
pub fn hubspot_client(base_url: &str, token: SecretString) -> Result<HubSpotClient, ExampleError> {
    Ok(HubSpotClient::builder()
        .base_url(base_url)
        .access_token(token)
        .build()?)
}

/// A HubSpot source reading tags from the multiple-checkboxes property `tags_property`.
pub fn hubspot_source(client: HubSpotClient, tags_property: &str) -> HubSpotSource {
    let mapping =
        ContactMapping::default().with_tags(TagSource::CheckboxProperty(tags_property.to_owned()));
    HubSpotSource::new(client, SourceConfig::new(mapping))
}

/// The Salesforce contact schema: tags from the multi-select picklist `tags_field`.
pub fn salesforce_schema(tags_field: &str) -> ContactSchema {
    ContactSchema::contact().with_tags(crm_salesforce::TagSource::MultiSelect {
        field: tags_field.to_owned(),
    })
}

/// Where the store lives when `SYNC_DATABASE_URL` is unset.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum StoreFallback {
    /// A SQLite file in a fresh temporary directory, deleted on exit (demos).
    TempDir,
    /// A SQLite file at this path (workers that must remember their checkpoint).
    File(PathBuf),
}

/// An open store and where it lives.
pub struct OpenedStore {
    /// The store.
    pub store: Arc<dyn Store>,
    /// Where it lives, for the output (never includes a password).
    pub description: String,
    _temp: Option<tempfile::TempDir>,
}

impl std::fmt::Debug for OpenedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenedStore")
            .field("description", &self.description)
            .finish_non_exhaustive()
    }
}

/// Opens `SYNC_DATABASE_URL` (a SQLite path or a `postgres://` URL; migrations run on
/// connect), or `fallback`.
///
/// # Errors
/// The database cannot be opened or migrated.
pub async fn open_store(
    settings: &Settings,
    fallback: StoreFallback,
) -> Result<OpenedStore, ExampleError> {
    if let Some(url) = &settings.database_url {
        let store = sync_store::connect(url).await?;
        return Ok(OpenedStore {
            store,
            description: describe_url(url),
            _temp: None,
        });
    }
    let (path, temp) = match fallback {
        StoreFallback::TempDir => {
            let dir = tempfile::tempdir()?;
            (dir.path().join("cativa-sync.db"), Some(dir))
        }
        StoreFallback::File(path) => (path, None),
    };
    let store = sync_store::connect(&path.to_string_lossy()).await?;
    Ok(OpenedStore {
        store,
        description: format!("SQLite at {}", path.display()),
        _temp: temp,
    })
}

/// A database URL without its password.
fn describe_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) if scheme.starts_with("postgres") => {
            let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
            format!("PostgreSQL at {scheme}://{host}")
        }
        _ => format!("SQLite at {url}"),
    }
}

/// Exposes a secret to a library call that takes `&str` (the sandbox's signer).
pub(crate) fn expose(secret: &SecretString) -> &str {
    secret.expose_secret()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls_are_described_without_passwords() {
        assert_eq!(
            describe_url("postgres://sync:hunter2@db.internal:5432/sync"),
            "PostgreSQL at postgres://db.internal:5432/sync"
        );
        assert_eq!(
            describe_url("/var/lib/sync.db"),
            "SQLite at /var/lib/sync.db"
        );
    }

    #[tokio::test]
    async fn unset_endpoints_start_the_sandbox_and_say_so() {
        let settings = Settings::from_lookup(|_| None).unwrap();
        let endpoints = Endpoints::connect(&settings, Crm::HubSpot).await.unwrap();
        assert!(endpoints.sandbox.is_some());
        assert!(
            endpoints
                .notice
                .starts_with("Sandbox mode: HUBSPOT_BASE_URL and CATIVA_BASE_URL not set"),
            "{}",
            endpoints.notice
        );
        assert!(endpoints.hubspot().is_ok() && endpoints.salesforce().is_err());
        let me = endpoints.cativa.me().await.unwrap();
        assert_eq!(
            me.customer_id.as_str(),
            endpoints.sandbox.as_ref().unwrap().cativa().customer_id()
        );
        endpoints.shutdown().await;
    }
}
