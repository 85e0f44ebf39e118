//! [`CredentialStore`] for the in-memory store: tokens kept in process memory, for tests
//! and single-process tools.

use async_trait::async_trait;

use super::MemoryStore;
use crate::domain::{CrmKind, TenantId};
use crate::error::Error;
use crate::ports::{CredentialStore, TenantCredentials};

#[async_trait]
impl CredentialStore for MemoryStore {
    async fn save_credentials(
        &self,
        tenant: &TenantId,
        crm: &CrmKind,
        credentials: &TenantCredentials,
    ) -> Result<(), Error> {
        self.with(tenant, |t| {
            t.crm_credentials
                .insert(crm.as_str().to_owned(), credentials.clone());
        })
    }

    async fn load_credentials(
        &self,
        tenant: &TenantId,
        crm: &CrmKind,
    ) -> Result<Option<TenantCredentials>, Error> {
        self.with(tenant, |t| t.crm_credentials.get(crm.as_str()).cloned())
    }

    async fn delete_credentials(&self, tenant: &TenantId, crm: &CrmKind) -> Result<bool, Error> {
        self.with(tenant, |t| t.crm_credentials.remove(crm.as_str()).is_some())
    }
}
