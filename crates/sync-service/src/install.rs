//! Connecting an account: `GET /connect/{crm}?tenant=...` sends the user to the CRM's consent
//! page with a signed `state` bound to the tenant; `GET /oauth/{crm}/callback?code&state`
//! checks the state, exchanges the code, learns the account (HubSpot portal id from the
//! token or its token info, Salesforce org id from the identity URL), saves the tenant's
//! credentials in the [`CredentialStore`] and tells the [`InstallHook`] so routing finds the
//! tenant. A forged, altered, expired or already used state is refused with 400 and saves
//! nothing.
//!
//! `/connect` trusts its `tenant` parameter: mount the router behind your own sign-in so
//! only a signed-in user of that tenant can start its install.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use crm_hubspot::oauth::HubSpotOAuthApp;
use crm_salesforce::WebServerFlow;
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::json;
use sync_core::ports::{CredentialStore, TenantCredentials};
use sync_core::{CrmKind, TenantId};
use sync_http::OAuthStateKey;

use crate::response::{ApiError, RequestId};
use crate::service::Shared;

/// How long a Salesforce PKCE verifier waits for its callback (the state's own lifetime).
const VERIFIER_TTL: Duration = Duration::from_secs(600);

/// The most Salesforce installs waiting for their callback at once: past it the oldest is
/// dropped (its user starts again), so a flood of `/connect` cannot grow memory unbounded.
const MAX_PENDING: usize = 10_000;

/// Told when a tenant connected an account, after its credentials are saved: register the
/// tenant (its parts, its account id for webhook routing) here.
pub trait InstallHook: Send + Sync {
    /// `tenant` connected `crm` with `credentials` (account id and, for Salesforce, the
    /// instance URL set).
    ///
    /// # Errors
    /// The registration failed; the callback answers 500 and the user can connect again.
    fn connected(
        &self,
        tenant: &TenantId,
        crm: &CrmKind,
        credentials: &TenantCredentials,
    ) -> Result<(), sync_core::Error>;
}

/// The install flows a service offers: the state key, where credentials are saved, and the
/// OAuth apps of the CRMs that can be connected.
pub struct Installs {
    key: OAuthStateKey,
    credentials: Arc<dyn CredentialStore>,
    hubspot: Option<HubSpotOAuthApp>,
    salesforce: Option<WebServerFlow>,
    hook: Option<Arc<dyn InstallHook>>,
    /// Salesforce PKCE verifiers by state, taken once by the callback. In memory: the
    /// callback must reach the instance that served `/connect` (or the install is refused
    /// and started again).
    verifiers: Mutex<HashMap<String, (SecretString, SystemTime)>>,
}

impl std::fmt::Debug for Installs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Installs")
            .field("hubspot", &self.hubspot.is_some())
            .field("salesforce", &self.salesforce.is_some())
            .field("hook", &self.hook.is_some())
            .finish_non_exhaustive()
    }
}

impl Installs {
    /// Install flows signing states with `key` and saving credentials into `credentials`
    /// (the SQL stores of `sync-store` encrypt them at rest). Add the CRMs with
    /// [`hubspot`](Self::hubspot) and [`salesforce`](Self::salesforce).
    pub fn new(key: OAuthStateKey, credentials: Arc<dyn CredentialStore>) -> Self {
        Self {
            key,
            credentials,
            hubspot: None,
            salesforce: None,
            hook: None,
            verifiers: Mutex::new(HashMap::new()),
        }
    }

    /// Offers HubSpot installs through this public app (client id and secret, redirect URI
    /// `.../oauth/hubspot/callback`, scopes: see `crm_hubspot::oauth::HubSpotOAuthConfig`).
    #[must_use]
    pub fn hubspot(mut self, app: HubSpotOAuthApp) -> Self {
        self.hubspot = Some(app);
        self
    }

    /// Offers Salesforce installs through this web-server flow (with PKCE; redirect URI
    /// `.../oauth/salesforce/callback`).
    #[must_use]
    pub fn salesforce(mut self, flow: WebServerFlow) -> Self {
        self.salesforce = Some(flow);
        self
    }

    /// Who is told of each connected account.
    #[must_use]
    pub fn on_connected(mut self, hook: Arc<dyn InstallHook>) -> Self {
        self.hook = Some(hook);
        self
    }

    fn keep_verifier(&self, state: String, verifier: SecretString, now: SystemTime) {
        let mut all = self.verifiers.lock().unwrap_or_else(|e| e.into_inner());
        all.retain(|_, (_, at)| now.duration_since(*at).is_ok_and(|d| d < VERIFIER_TTL));
        if all.len() >= MAX_PENDING
            && let Some(oldest) = all
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(k, _)| k.clone())
        {
            all.remove(&oldest);
        }
        all.insert(state, (verifier, now));
    }

    fn take_verifier(&self, state: &str) -> Option<SecretString> {
        let mut all = self.verifiers.lock().unwrap_or_else(|e| e.into_inner());
        all.remove(state).map(|(v, _)| v)
    }
}

/// The query of `/connect/{crm}`.
#[derive(Debug, Deserialize)]
pub(crate) struct ConnectQuery {
    tenant: Option<String>,
}

/// The query of `/oauth/{crm}/callback`.
#[derive(Debug, Deserialize)]
pub(crate) struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

fn not_offered(crm: &str, id: &RequestId) -> Response {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_configured",
        format!("connecting a {crm} account is not configured on this service"),
    )
    .into_response(id)
}

/// `GET /connect/{crm}?tenant=...`: 302 to the consent page.
pub(crate) async fn connect(
    State(shared): State<Arc<Shared>>,
    Extension(id): Extension<RequestId>,
    Path(crm): Path<String>,
    Query(query): Query<ConnectQuery>,
) -> Response {
    let Some(installs) = &shared.installs else {
        return not_offered(&crm, &id);
    };
    let Some(tenant) = query.tenant.filter(|t| valid_tenant(t)) else {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "missing_tenant",
            "give the tenant to connect: ?tenant= with 1 to 128 letters, digits, '-', '_' or '.'",
        )
        .into_response(&id);
    };
    let tenant = TenantId::new(tenant);
    let now = SystemTime::now();
    let url = match (crm.as_str(), &installs.hubspot, &installs.salesforce) {
        ("hubspot", Some(app), _) => app.begin(&installs.key, &tenant, now),
        ("salesforce", _, Some(flow)) => {
            let auth = flow.begin(&installs.key, &tenant, now);
            installs.keep_verifier(auth.state.clone(), auth.verifier, now);
            auth.url
        }
        _ => return not_offered(&crm, &id),
    };
    (StatusCode::FOUND, [(header::LOCATION, url)]).into_response()
}

fn valid_tenant(t: &str) -> bool {
    (1..=128).contains(&t.len())
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn invalid_state(id: &RequestId) -> Response {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_state",
        "the install's state is forged, altered, expired or already used; start again from /connect",
    )
    .into_response(id)
}

/// `GET /oauth/{crm}/callback?code&state`: checks, exchanges, saves, registers.
pub(crate) async fn callback(
    State(shared): State<Arc<Shared>>,
    Extension(id): Extension<RequestId>,
    Path(crm): Path<String>,
    Query(query): Query<CallbackQuery>,
) -> Response {
    let Some(installs) = &shared.installs else {
        return not_offered(&crm, &id);
    };
    if query.error.is_some() {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "consent_denied",
            "the account was not connected: consent was refused on the CRM's page",
        )
        .into_response(&id);
    }
    let (Some(code), Some(state)) = (query.code, query.state) else {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "missing_code",
            "the callback needs both code and state",
        )
        .into_response(&id);
    };
    let done = match crm.as_str() {
        "hubspot" if installs.hubspot.is_some() => hubspot(installs, &state, &code).await,
        "salesforce" if installs.salesforce.is_some() => salesforce(installs, &state, &code).await,
        _ => return not_offered(&crm, &id),
    };
    let (tenant, kind, credentials) = match done {
        Ok(d) => d,
        Err(Failure::State) => return invalid_state(&id),
        Err(Failure::Exchange(e)) => {
            tracing::warn!(request_id = %id.0, %crm, error = %e, "install: code exchange failed");
            return ApiError::new(
                StatusCode::BAD_GATEWAY,
                "exchange_failed",
                "the CRM refused the code or could not be reached; start again from /connect",
            )
            .into_response(&id);
        }
    };
    save(installs, &tenant, &kind, &credentials, &id).await
}

async fn save(
    installs: &Installs,
    tenant: &TenantId,
    crm: &CrmKind,
    credentials: &TenantCredentials,
    id: &RequestId,
) -> Response {
    let saved = installs
        .credentials
        .save_credentials(tenant, crm, credentials)
        .await;
    let registered = saved.and_then(|()| {
        installs
            .hook
            .as_ref()
            .map_or(Ok(()), |h| h.connected(tenant, crm, credentials))
    });
    if let Err(e) = registered {
        tracing::error!(request_id = %id.0, %tenant, error = %e, "install: could not save the credentials");
        return ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the account could not be saved; the log has the detail under this request id",
        )
        .into_response(id);
    }
    tracing::info!(request_id = %id.0, %tenant, crm = crm.as_str(), account = ?credentials.account_id, "account connected");
    Json(json!({
        "status": "connected",
        "crm": crm.as_str(),
        "tenant": tenant.as_str(),
        "account_id": credentials.account_id,
        "request_id": id.0,
    }))
    .into_response()
}

enum Failure {
    State,
    Exchange(String),
}

type Connected = (TenantId, CrmKind, TenantCredentials);

async fn hubspot(installs: &Installs, state: &str, code: &str) -> Result<Connected, Failure> {
    let app = installs.hubspot.as_ref().ok_or(Failure::State)?;
    let installed = app
        .complete(&installs.key, state, code, SystemTime::now())
        .await
        .map_err(|e| match e {
            crm_hubspot::Error::OAuthState(_) => Failure::State,
            other => Failure::Exchange(other.to_string()),
        })?;
    let access = installed.tokens.access_token.clone();
    let mut credentials = installed.tokens.into_credentials(chrono::Utc::now());
    if credentials.account_id.is_none() {
        // The token response did not name the portal: its token info does.
        let info = app
            .access_token_info(&access)
            .await
            .map_err(|e| Failure::Exchange(e.to_string()))?;
        credentials.account_id = Some(info.hub_id.to_string());
    }
    Ok((installed.tenant, CrmKind::Hubspot, credentials))
}

async fn salesforce(installs: &Installs, state: &str, code: &str) -> Result<Connected, Failure> {
    let flow = installs.salesforce.as_ref().ok_or(Failure::State)?;
    // Checked before the verifier is looked up, so a forged state learns nothing.
    installs
        .key
        .verify(state, SystemTime::now())
        .map_err(|_| Failure::State)?;
    let verifier = installs.take_verifier(state).ok_or(Failure::State)?;
    let installed = flow
        .complete(&installs.key, state, code, &verifier, SystemTime::now())
        .await
        .map_err(|e| match e {
            crm_salesforce::Error::OAuthState(_) => Failure::State,
            other => Failure::Exchange(other.to_string()),
        })?;
    Ok((
        installed.tenant,
        CrmKind::Salesforce,
        installed.tokens.into_credentials(),
    ))
}
