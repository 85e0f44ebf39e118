//! [`TokenRevoker`]: revokes a tenant's tokens at the CRM when the tenant disconnects
//! (implemented by the connectors' OAuth apps; driven by the engine's `SyncEngine::disconnect`
//! in crates/sync-engine/src/disconnect.rs).

use async_trait::async_trait;

use crate::domain::{CrmKind, TenantId};
use crate::error::Error;
use crate::ports::TenantCredentials;

/// What a revocation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Revoked {
    /// The CRM revoked the token (or no longer knew it, which ends the same).
    Revoked,
    /// The credentials hold no token this CRM can revoke (e.g. only a HubSpot access token,
    /// which expires on its own within 30 minutes).
    NothingToRevoke,
}

/// Revokes a tenant's tokens at the CRM's OAuth endpoint.
#[async_trait]
pub trait TokenRevoker: Send + Sync {
    /// Which CRM the tokens are for.
    fn crm(&self) -> CrmKind;

    /// Revokes the tokens of `credentials`: the refresh token, which takes the access tokens
    /// issued with it along. A token the CRM no longer knows counts as revoked, so a
    /// disconnect can be retried.
    async fn revoke(
        &self,
        tenant: &TenantId,
        credentials: &TenantCredentials,
    ) -> Result<Revoked, Error>;
}
