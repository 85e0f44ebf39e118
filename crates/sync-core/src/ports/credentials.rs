//! Per-tenant CRM credentials: the [`CredentialStore`] port that keeps each tenant's tokens,
//! and the [`TokenRefresher`] a connector implements to renew them. The engine's
//! `TenantTokens` (crates/sync-engine/src/credentials.rs) combines the two with single-flight
//! renewal per tenant.
//!
//! Tokens are [`SecretString`]s: never in `Debug`, logs or error messages.

use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use secrecy::SecretString;

use crate::domain::{CrmKind, TenantId};
use crate::error::Error;

/// One tenant's tokens for one CRM. `Debug` never shows a token.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct TenantCredentials {
    /// The access token.
    pub access_token: Option<SecretString>,
    /// The refresh token (HubSpot may rotate it on each refresh: store the newest).
    pub refresh_token: Option<SecretString>,
    /// When the access token expires, when the CRM said (Salesforce does not).
    pub expires_at: Option<DateTime<Utc>>,
    /// The API host of the account (Salesforce's `instance_url`).
    pub instance_url: Option<String>,
    /// The CRM account id (HubSpot portal id, Salesforce org id).
    pub account_id: Option<String>,
}

impl fmt::Debug for TenantCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |s: &Option<SecretString>| s.as_ref().map(|_| "[redacted]");
        f.debug_struct("TenantCredentials")
            .field("access_token", &redacted(&self.access_token))
            .field("refresh_token", &redacted(&self.refresh_token))
            .field("expires_at", &self.expires_at)
            .field("instance_url", &self.instance_url)
            .field("account_id", &self.account_id)
            .finish()
    }
}

impl TenantCredentials {
    /// Credentials with these tokens and nothing else known yet.
    pub fn new(access_token: Option<SecretString>, refresh_token: Option<SecretString>) -> Self {
        Self {
            access_token,
            refresh_token,
            ..Self::default()
        }
    }

    /// Sets the expiry.
    #[must_use]
    pub fn with_expires_at(mut self, at: Option<DateTime<Utc>>) -> Self {
        self.expires_at = at;
        self
    }

    /// Sets the instance URL.
    #[must_use]
    pub fn with_instance_url(mut self, url: Option<String>) -> Self {
        self.instance_url = url;
        self
    }

    /// Sets the account id.
    #[must_use]
    pub fn with_account_id(mut self, account: Option<String>) -> Self {
        self.account_id = account;
        self
    }
}

/// Keeps each tenant's CRM tokens. Implementations that persist them must protect them at
/// rest (the SQL stores of `sync-store` encrypt them with an AEAD).
#[async_trait]
pub trait CredentialStore: Send + Sync {
    /// Saves (replaces) `tenant`'s credentials for `crm`.
    async fn save_credentials(
        &self,
        tenant: &TenantId,
        crm: &CrmKind,
        credentials: &TenantCredentials,
    ) -> Result<(), Error>;

    /// `tenant`'s credentials for `crm`, if any were saved.
    async fn load_credentials(
        &self,
        tenant: &TenantId,
        crm: &CrmKind,
    ) -> Result<Option<TenantCredentials>, Error>;

    /// Deletes `tenant`'s credentials for `crm` (disconnect); whether there were any.
    async fn delete_credentials(&self, tenant: &TenantId, crm: &CrmKind) -> Result<bool, Error>;
}

/// Renews a tenant's tokens at the CRM's token endpoint (implemented by the connectors'
/// OAuth apps).
#[async_trait]
pub trait TokenRefresher: Send + Sync {
    /// Which CRM the tokens are for.
    fn crm(&self) -> CrmKind;

    /// New credentials from `current` (its refresh token). Keep everything the CRM did not
    /// change (a refresh token it did not rotate, the account id).
    async fn refresh(
        &self,
        tenant: &TenantId,
        current: &TenantCredentials,
        now: DateTime<Utc>,
    ) -> Result<TenantCredentials, Error>;
}
