//! The environment every example reads, with the same names everywhere.
//!
//! | Variable | Meaning | When unset |
//! |---|---|---|
//! | `HUBSPOT_BASE_URL` | HubSpot API base URL (`https://api.hubapi.com`) | the in-process sandbox |
//! | `HUBSPOT_TOKEN` | private-app access token | required with `HUBSPOT_BASE_URL` |
//! | `HUBSPOT_TAGS_PROPERTY` | multiple-checkboxes property holding tags | `cativa_tags` |
//! | `HUBSPOT_CLIENT_SECRET` | app secret that signs HubSpot webhooks | the sandbox's |
//! | `SALESFORCE_LOGIN_URL` | `https://login.salesforce.com` or your My Domain | the in-process sandbox |
//! | `SALESFORCE_CLIENT_ID` | connected app consumer key | required with `SALESFORCE_LOGIN_URL` |
//! | `SALESFORCE_CLIENT_SECRET` | consumer secret (client-credentials or refresh flow) | |
//! | `SALESFORCE_REFRESH_TOKEN` | refresh token (refresh flow) | |
//! | `SALESFORCE_USERNAME`, `SALESFORCE_PRIVATE_KEY_PATH` | JWT bearer flow | |
//! | `SALESFORCE_TAGS_FIELD` | multi-select picklist holding tags | `Cativa_Tags__c` |
//! | `CATIVA_BASE_URL` | Cativa API base URL | the in-process sandbox |
//! | `CATIVA_API_KEY` | partner API key | required with `CATIVA_BASE_URL` |
//! | `CATIVA_WEBHOOK_SECRET` | secret that signs Cativa webhooks | the sandbox's |
//! | `CATIVA_AUTOMATION_EVENTS` | for `POST /webhooks/cativa`: each listener's `X-Cativa-Automation-Id` and its event, `id=event` pairs separated by commas (`3f2c...=user_created,9a1b...=user_received_badge`) | none: use the per-event routes `/webhooks/cativa/{event}` |
//! | `SYNC_DATABASE_URL` | SQLite path or `postgres://` URL | see each example |
//! | `SYNC_TENANT` | tenant id in the store | `default` |
//! | `SYNC_CONFIG` | badge rules and field mappings (TOML or JSON file) | [`DEFAULT_CONFIG`] |
//!
//! The Salesforce flow is picked from what is set: a private key means JWT bearer, a
//! refresh token the refresh flow, otherwise client credentials.

use std::path::PathBuf;

use cativa_client::webhook::{EventType, SignatureVerifier, WebhookReceiver};
use secrecy::SecretString;

use crate::error::ExampleError;

/// The badge id the Cativa sandbox knows as "Premium" (`sync_sandbox::cativa::DEFAULT_BADGES`).
/// Cativa's badge endpoints take badge **ids**: with a real tenant, put yours in `SYNC_CONFIG`.
pub const SANDBOX_PREMIUM_BADGE: &str = "b0000000-0000-4000-8000-000000000001";

/// The configuration used when `SYNC_CONFIG` is unset: the tag `Pago Anual` grants the
/// sandbox's Premium badge.
pub const DEFAULT_CONFIG: &str = r#"
[badges]
Premium = "b0000000-0000-4000-8000-000000000001" # the Cativa sandbox's Premium badge

[[badge_rules]]
id = "annual-plan"
grant = "Premium"
when = { tag = "Pago Anual" }
"#;

/// HubSpot settings from the environment.
#[derive(Debug, Clone)]
pub struct HubSpotSettings {
    /// `HUBSPOT_BASE_URL`.
    pub base_url: String,
    /// `HUBSPOT_TOKEN`.
    pub token: SecretString,
}

/// How to authenticate to Salesforce.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum SalesforceAuth {
    /// JWT bearer: `SALESFORCE_USERNAME` and the PEM at `SALESFORCE_PRIVATE_KEY_PATH`.
    Jwt {
        /// The user the integration acts as.
        username: String,
        /// The RSA private key (PEM) registered with the connected app.
        private_key_path: PathBuf,
    },
    /// Refresh token flow.
    RefreshToken {
        /// `SALESFORCE_CLIENT_SECRET`, when the connected app requires it.
        client_secret: Option<SecretString>,
        /// `SALESFORCE_REFRESH_TOKEN`.
        refresh_token: SecretString,
    },
    /// Client credentials (My Domain login URL required).
    ClientCredentials {
        /// `SALESFORCE_CLIENT_SECRET`.
        client_secret: SecretString,
    },
}

/// Salesforce settings from the environment.
#[derive(Debug, Clone)]
pub struct SalesforceSettings {
    /// `SALESFORCE_LOGIN_URL`.
    pub login_url: String,
    /// `SALESFORCE_CLIENT_ID`.
    pub client_id: String,
    /// The flow.
    pub auth: SalesforceAuth,
}

/// Cativa settings from the environment.
#[derive(Debug, Clone)]
pub struct CativaSettings {
    /// `CATIVA_BASE_URL`.
    pub base_url: String,
    /// `CATIVA_API_KEY`.
    pub api_key: SecretString,
}

/// Everything the examples read from the environment. Endpoints left unset are `None`:
/// the examples then start the sandbox in-process for them.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Settings {
    /// HubSpot, when `HUBSPOT_BASE_URL` is set.
    pub hubspot: Option<HubSpotSettings>,
    /// `HUBSPOT_TAGS_PROPERTY`.
    pub hubspot_tags_property: String,
    /// `HUBSPOT_CLIENT_SECRET`.
    pub hubspot_client_secret: Option<SecretString>,
    /// Salesforce, when `SALESFORCE_LOGIN_URL` is set.
    pub salesforce: Option<SalesforceSettings>,
    /// `SALESFORCE_TAGS_FIELD`.
    pub salesforce_tags_field: String,
    /// Cativa, when `CATIVA_BASE_URL` is set.
    pub cativa: Option<CativaSettings>,
    /// `CATIVA_WEBHOOK_SECRET`.
    pub cativa_webhook_secret: Option<SecretString>,
    /// `CATIVA_AUTOMATION_EVENTS`: which event each Console listener is subscribed to.
    pub cativa_automation_events: Vec<(String, EventType)>,
    /// `SYNC_DATABASE_URL`.
    pub database_url: Option<String>,
    /// `SYNC_TENANT`.
    pub tenant: String,
    /// `SYNC_CONFIG`.
    pub config_path: Option<PathBuf>,
}

impl Settings {
    /// Reads the process environment.
    ///
    /// # Errors
    /// [`ExampleError::Env`] when an endpoint is set without its credentials.
    pub fn from_env() -> Result<Self, ExampleError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup` (the environment, or a map in tests). Blank values
    /// count as unset.
    ///
    /// # Errors
    /// [`ExampleError::Env`] when an endpoint is set without its credentials.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ExampleError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let required = |name: &'static str, with: &'static str| {
            get(name).ok_or(ExampleError::Env {
                var: name,
                message: format!("is required when {with} is set"),
            })
        };
        let hubspot = match get("HUBSPOT_BASE_URL") {
            Some(base_url) => Some(HubSpotSettings {
                base_url,
                token: SecretString::from(required("HUBSPOT_TOKEN", "HUBSPOT_BASE_URL")?),
            }),
            None => None,
        };
        let salesforce = match get("SALESFORCE_LOGIN_URL") {
            Some(login_url) => {
                let client_id = required("SALESFORCE_CLIENT_ID", "SALESFORCE_LOGIN_URL")?;
                let secret = get("SALESFORCE_CLIENT_SECRET").map(SecretString::from);
                let auth = if let Some(key) = get("SALESFORCE_PRIVATE_KEY_PATH") {
                    SalesforceAuth::Jwt {
                        username: required("SALESFORCE_USERNAME", "SALESFORCE_PRIVATE_KEY_PATH")?,
                        private_key_path: PathBuf::from(key),
                    }
                } else if let Some(token) = get("SALESFORCE_REFRESH_TOKEN") {
                    SalesforceAuth::RefreshToken {
                        client_secret: secret,
                        refresh_token: SecretString::from(token),
                    }
                } else {
                    SalesforceAuth::ClientCredentials {
                        client_secret: secret.ok_or(ExampleError::Env {
                            var: "SALESFORCE_CLIENT_SECRET",
                            message: "is required for the client-credentials flow (or set SALESFORCE_REFRESH_TOKEN, or SALESFORCE_USERNAME and SALESFORCE_PRIVATE_KEY_PATH for JWT)".to_owned(),
                        })?,
                    }
                };
                Some(SalesforceSettings {
                    login_url,
                    client_id,
                    auth,
                })
            }
            None => None,
        };
        let cativa = match get("CATIVA_BASE_URL") {
            Some(base_url) => Some(CativaSettings {
                base_url,
                api_key: SecretString::from(required("CATIVA_API_KEY", "CATIVA_BASE_URL")?),
            }),
            None => None,
        };
        Ok(Self {
            hubspot,
            hubspot_tags_property: get("HUBSPOT_TAGS_PROPERTY")
                .unwrap_or_else(|| "cativa_tags".to_owned()),
            hubspot_client_secret: get("HUBSPOT_CLIENT_SECRET").map(SecretString::from),
            salesforce,
            salesforce_tags_field: get("SALESFORCE_TAGS_FIELD")
                .unwrap_or_else(|| "Cativa_Tags__c".to_owned()),
            cativa,
            cativa_webhook_secret: get("CATIVA_WEBHOOK_SECRET").map(SecretString::from),
            cativa_automation_events: match get("CATIVA_AUTOMATION_EVENTS") {
                Some(raw) => parse_automation_events(&raw)?,
                None => Vec::new(),
            },
            database_url: get("SYNC_DATABASE_URL"),
            tenant: get("SYNC_TENANT").unwrap_or_else(|| "default".to_owned()),
            config_path: get("SYNC_CONFIG").map(PathBuf::from),
        })
    }

    /// The Cativa webhook receiver: verifies with `secret` (the Console listener's, or the
    /// sandbox's), and maps each `CATIVA_AUTOMATION_EVENTS` automation id to its event,
    /// plus the `extra` listeners given (the sandbox's, in sandbox mode).
    ///
    /// # Errors
    /// The secret is empty.
    pub fn cativa_webhook_receiver(
        &self,
        secret: SecretString,
        extra: impl IntoIterator<Item = (String, EventType)>,
    ) -> Result<WebhookReceiver, ExampleError> {
        let mut receiver = WebhookReceiver::new(SignatureVerifier::new(secret)?);
        for (automation, event) in self.cativa_automation_events.iter().cloned().chain(extra) {
            receiver = receiver.with_automation(automation, event);
        }
        Ok(receiver)
    }

    /// The sync configuration: `SYNC_CONFIG` if set, else [`DEFAULT_CONFIG`].
    ///
    /// # Errors
    /// The file cannot be read, parsed or validated.
    pub fn sync_config(&self) -> Result<sync_core::ValidatedConfig, ExampleError> {
        let config = match &self.config_path {
            Some(path) => sync_core::SyncConfig::from_path(path)?,
            None => sync_core::SyncConfig::from_toml_str(DEFAULT_CONFIG)?,
        };
        Ok(config.validate()?)
    }
}

/// Parses `CATIVA_AUTOMATION_EVENTS`: `automation-id=event` pairs separated by commas.
///
/// # Errors
/// [`ExampleError::Env`] for a pair without `=`, an empty or over-long id, an unknown
/// event, or an id given twice.
pub fn parse_automation_events(raw: &str) -> Result<Vec<(String, EventType)>, ExampleError> {
    let bad = |message: String| ExampleError::Env {
        var: "CATIVA_AUTOMATION_EVENTS",
        message,
    };
    let mut out: Vec<(String, EventType)> = Vec::new();
    for pair in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (id, event) = pair.split_once('=').ok_or_else(|| {
            bad(format!(
                "has {pair:?}: expected <automation id>=<event>, e.g. 3f2c...=user_created"
            ))
        })?;
        let id = id.trim();
        if id.is_empty() || id.len() > cativa_client::webhook::MAX_ID_LEN {
            return Err(bad(format!(
                "has {pair:?}: the automation id must be 1 to {} characters",
                cativa_client::webhook::MAX_ID_LEN
            )));
        }
        let event: EventType =
            event
                .trim()
                .parse()
                .map_err(|e: cativa_client::webhook::UnknownEventType| {
                    bad(format!("has {pair:?}: {e}"))
                })?;
        if out.iter().any(|(known, _)| known == id) {
            return Err(bad(format!(
                "maps automation id {id} twice: a listener is subscribed to one event"
            )));
        }
        out.push((id.to_owned(), event));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, ExampleError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn nothing_set_means_sandboxes_and_defaults() {
        let s = settings(&[]).unwrap();
        assert!(s.hubspot.is_none() && s.salesforce.is_none() && s.cativa.is_none());
        assert_eq!(s.tenant, "default");
        assert_eq!(s.hubspot_tags_property, "cativa_tags");
        assert!(
            s.sync_config()
                .unwrap()
                .is_managed(&SANDBOX_PREMIUM_BADGE.into())
        );
    }

    #[test]
    fn an_endpoint_without_its_secret_is_an_error_naming_the_variable() {
        let e = settings(&[("HUBSPOT_BASE_URL", "https://api.hubapi.com")]).unwrap_err();
        assert!(e.to_string().contains("HUBSPOT_TOKEN"), "{e}");
        let e = settings(&[("CATIVA_BASE_URL", "https://x"), ("CATIVA_API_KEY", " ")]).unwrap_err();
        assert!(e.to_string().contains("CATIVA_API_KEY"), "{e}");
    }

    #[test]
    fn the_salesforce_flow_follows_what_is_set() {
        let base = [
            ("SALESFORCE_LOGIN_URL", "https://acme.my.salesforce.com"),
            ("SALESFORCE_CLIENT_ID", "id"),
        ];
        let with = |extra: &[(&str, &str)]| {
            let mut v = base.to_vec();
            v.extend_from_slice(extra);
            settings(&v).map(|s| s.salesforce.unwrap().auth)
        };
        assert!(with(&[]).is_err(), "no secret, no token, no key");
        assert!(matches!(
            with(&[("SALESFORCE_CLIENT_SECRET", "s")]).unwrap(),
            SalesforceAuth::ClientCredentials { .. }
        ));
        assert!(matches!(
            with(&[("SALESFORCE_REFRESH_TOKEN", "r")]).unwrap(),
            SalesforceAuth::RefreshToken { .. }
        ));
        assert!(matches!(
            with(&[
                ("SALESFORCE_PRIVATE_KEY_PATH", "k.pem"),
                ("SALESFORCE_USERNAME", "u")
            ])
            .unwrap(),
            SalesforceAuth::Jwt { .. }
        ));
    }

    #[test]
    fn automation_events_map_listeners_to_events() {
        let s = settings(&[(
            "CATIVA_AUTOMATION_EVENTS",
            " a-1=user_created, a-2 = user_received_badge ,",
        )])
        .unwrap();
        assert_eq!(
            s.cativa_automation_events,
            vec![
                ("a-1".to_owned(), EventType::UserCreated),
                ("a-2".to_owned(), EventType::UserReceivedBadge)
            ]
        );
        for bad in [
            "a-1",
            "a-1=user_deleted",
            "=user_created",
            "a=user_created,a=user_joined_group",
        ] {
            let e = settings(&[("CATIVA_AUTOMATION_EVENTS", bad)]).unwrap_err();
            assert!(
                e.to_string().contains("CATIVA_AUTOMATION_EVENTS"),
                "{bad}: {e}"
            );
        }
        assert!(settings(&[]).unwrap().cativa_automation_events.is_empty());
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let s = settings(&[
            ("HUBSPOT_BASE_URL", "https://api.hubapi.com"),
            ("HUBSPOT_TOKEN", "pat-na1-secret-value"),
            ("CATIVA_BASE_URL", "https://api.cativa.example"),
            ("CATIVA_API_KEY", "cativa_pk_secret_value"),
        ])
        .unwrap();
        let debug = format!("{s:?}");
        assert!(
            !debug.contains("secret-value") && !debug.contains("secret_value"),
            "{debug}"
        );
    }
}
