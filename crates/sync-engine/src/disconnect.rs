//! Disconnecting a tenant: [`SyncEngine::disconnect`] revokes the tenant's CRM tokens
//! through each [`TokenRevoker`], purges every row the store holds for it
//! (`TenantPurge` in crates/sync-core/src/ports/purge.rs, which ends with one operator
//! action recording the purge by its counts) and deletes its saved credentials. A dry run changes nothing
//! anywhere: it says what would be revoked and counts what would be deleted.

use std::fmt;
use std::sync::Arc;

use sync_core::TenantId;
use sync_core::ports::{
    CredentialStore, PurgeCounts, PurgeMode, Revoked, TenantCredentials, TokenRevoker,
};

use crate::{Error, SyncEngine};

/// How to disconnect.
#[derive(Clone)]
#[non_exhaustive]
pub struct DisconnectOptions {
    /// Only count and report: revoke nothing, delete nothing.
    pub dry_run: bool,
    /// Who disconnects (kept in the purge's operator action).
    pub actor: String,
    /// Where the tenant's CRM tokens are saved; `None` when the tenant has none saved
    /// (static tokens from configuration): nothing is revoked then.
    pub credentials: Option<Arc<dyn CredentialStore>>,
    /// One revoker per CRM the tenant may be connected to.
    pub revokers: Vec<Arc<dyn TokenRevoker>>,
    /// Delete and purge even when a revocation failed (the CRM unreachable, or refusing).
    /// Off by default: then a failed revocation stops the disconnect before anything is
    /// deleted, so it can be retried with the tokens still at hand.
    pub force: bool,
}

impl fmt::Debug for DisconnectOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DisconnectOptions")
            .field("dry_run", &self.dry_run)
            .field("actor", &self.actor)
            .field("credentials", &self.credentials.is_some())
            .field(
                "revokers",
                &self.revokers.iter().map(|r| r.crm()).collect::<Vec<_>>(),
            )
            .field("force", &self.force)
            .finish()
    }
}

impl DisconnectOptions {
    /// A real disconnect by `actor`, with no credential store and no revoker yet.
    pub fn new(actor: impl Into<String>) -> Self {
        Self {
            dry_run: false,
            actor: actor.into(),
            credentials: None,
            revokers: Vec::new(),
            force: false,
        }
    }

    /// Only counts and reports.
    #[must_use]
    pub fn dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }

    /// Revokes the tokens saved in `store` with `revokers`, then deletes them.
    #[must_use]
    pub fn with_credentials(
        mut self,
        store: Arc<dyn CredentialStore>,
        revokers: Vec<Arc<dyn TokenRevoker>>,
    ) -> Self {
        self.credentials = Some(store);
        self.revokers = revokers;
        self
    }

    /// Deletes and purges even when a revocation fails.
    #[must_use]
    pub fn force(mut self, force: bool) -> Self {
        self.force = force;
        self
    }
}

/// What happened to one CRM's tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RevokeOutcome {
    /// The CRM revoked them.
    Revoked,
    /// Dry run: they would be revoked.
    WouldRevoke,
    /// No credentials were saved for this CRM.
    NotConnected,
    /// The saved credentials hold nothing this CRM can revoke.
    NothingToRevoke,
    /// The revocation failed (only with [`DisconnectOptions::force`]); the reason.
    Failed(String),
}

/// One CRM's part of a disconnect.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Revocation {
    /// The CRM (`hubspot`, `salesforce`).
    pub crm: String,
    /// What happened to its tokens.
    pub outcome: RevokeOutcome,
    /// Whether its saved credentials were (or, dry, would be) deleted.
    pub credentials_deleted: bool,
}

/// What [`SyncEngine::disconnect`] did (or, dry, would do).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DisconnectReport {
    /// The tenant.
    pub tenant: TenantId,
    /// Whether it was a dry run (nothing changed).
    pub dry_run: bool,
    /// One entry per revoker, in the order given.
    pub revocations: Vec<Revocation>,
    /// The rows purged from the store (or, dry, that would be), credentials included when
    /// the credential store shares the store's database.
    pub counts: PurgeCounts,
}

impl DisconnectReport {
    /// Whether every CRM that had tokens got them revoked (dry: would).
    pub fn all_revoked(&self) -> bool {
        self.revocations.iter().all(|r| {
            matches!(
                r.outcome,
                RevokeOutcome::Revoked
                    | RevokeOutcome::WouldRevoke
                    | RevokeOutcome::NotConnected
                    | RevokeOutcome::NothingToRevoke
            )
        })
    }
}

impl SyncEngine {
    /// Disconnects `tenant`: revokes its CRM tokens, deletes its saved credentials, and
    /// purges every row the store holds for it in one transaction, recording the purge
    /// (counts only, no personal data) as an operator action by `options.actor`. With
    /// `options.dry_run`, nothing is revoked or deleted: the report says what would be.
    ///
    /// Stop the tenant's runs first: work still running for it may write rows again.
    ///
    /// # Errors
    /// A revocation's error when it fails and `options.force` is off: nothing was deleted
    /// yet, so retry later, or force to delete anyway. The stores' errors.
    pub async fn disconnect(
        &self,
        tenant: &TenantId,
        options: &DisconnectOptions,
    ) -> Result<DisconnectReport, Error> {
        let mut revocations = Vec::with_capacity(options.revokers.len());
        for revoker in &options.revokers {
            revocations.push(self.revoke_one(tenant, revoker.as_ref(), options).await?);
        }
        let mode = if options.dry_run {
            PurgeMode::DryRun
        } else {
            PurgeMode::Delete
        };
        let now = self.clock.now();
        let counts = self
            .store
            .purge_tenant(tenant, mode, &options.actor, now)
            .await?;
        // After the purge, which already deleted them when the credential store shares the
        // database (then they are counted there, the same in a dry run).
        if let (Some(store), false) = (&options.credentials, options.dry_run) {
            for revoker in &options.revokers {
                store.delete_credentials(tenant, &revoker.crm()).await?;
            }
        }
        tracing::info!(
            tenant = %tenant,
            dry_run = options.dry_run,
            rows = counts.total(),
            "tenant disconnected"
        );
        Ok(DisconnectReport {
            tenant: tenant.clone(),
            dry_run: options.dry_run,
            revocations,
            counts,
        })
    }

    async fn revoke_one(
        &self,
        tenant: &TenantId,
        revoker: &dyn TokenRevoker,
        options: &DisconnectOptions,
    ) -> Result<Revocation, Error> {
        let crm = revoker.crm();
        let saved: Option<TenantCredentials> = match &options.credentials {
            Some(store) => store.load_credentials(tenant, &crm).await?,
            None => None,
        };
        let Some(saved) = saved else {
            return Ok(Revocation {
                crm: crm.as_str().to_owned(),
                outcome: RevokeOutcome::NotConnected,
                credentials_deleted: false,
            });
        };
        let outcome = if options.dry_run {
            RevokeOutcome::WouldRevoke
        } else {
            match revoker.revoke(tenant, &saved).await {
                Ok(Revoked::NothingToRevoke) => RevokeOutcome::NothingToRevoke,
                Ok(_) => RevokeOutcome::Revoked,
                Err(e) if options.force => RevokeOutcome::Failed(e.to_string()),
                Err(e) => return Err(e.into()),
            }
        };
        Ok(Revocation {
            crm: crm.as_str().to_owned(),
            outcome,
            // Deleted after the purge (`disconnect` fails if that fails).
            credentials_deleted: true,
        })
    }
}
