//! `CredentialStore`: per-tenant CRM tokens sealed at rest (compiled once per backend, see
//! `crate::tables`; the sealing is in `crate::crypto`). Only the access and refresh tokens
//! are secret; the expiry, instance URL and account id are stored as they are, so an
//! operator can see which account a tenant is connected to without the key.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sync_core::ports::{CredentialStore, TenantCredentials};
use sync_core::{CrmKind, Error, TenantId};

use super::Store;
use crate::crypto::{CredentialKeys, Sealed};
use crate::db_error::{classify, db};
use crate::rows::{check_tenant, corrupt};
use crate::time::{opt_from_ns, opt_to_ns, to_ns};

/// The CRM credentials of this database's tenants, sealed with [`CredentialKeys`]. Cheap to
/// clone; made by the store's `credential_store`.
#[derive(Clone)]
pub struct CredentialVault {
    store: Store,
    keys: Arc<CredentialKeys>,
}

impl fmt::Debug for CredentialVault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialVault")
            .field("current_key_id", &self.keys.current().id())
            .finish_non_exhaustive()
    }
}

impl Store {
    /// A [`CredentialStore`] over this database that seals tokens with `keys`.
    pub fn credential_store(&self, keys: CredentialKeys) -> CredentialVault {
        CredentialVault {
            store: self.clone(),
            keys: Arc::new(keys),
        }
    }
}

/// What is sealed: the two tokens.
#[derive(Serialize)]
struct SecretsOut<'a> {
    a: Option<&'a str>,
    r: Option<&'a str>,
}

#[derive(Deserialize)]
struct SecretsIn {
    a: Option<SecretString>,
    r: Option<SecretString>,
}

crate::from_row::from_row! {
    /// A row as read.
    struct Row {
        tenant: String,
        crm: String,
        key_id: String,
        nonce: Vec<u8>,
        sealed: Vec<u8>,
        expires_at_ns: Option<i64>,
        instance_url: Option<String>,
        account_id: Option<String>,
    }
}

impl Row {
    fn sealed(&self) -> Sealed {
        Sealed {
            key_id: self.key_id.clone(),
            nonce: self.nonce.clone(),
            ciphertext: self.sealed.clone(),
        }
    }
}

const COLUMNS: &str = "tenant, crm, key_id, nonce, sealed, expires_at_ns, instance_url, account_id";

impl CredentialVault {
    fn seal(
        &self,
        tenant: &TenantId,
        crm: &CrmKind,
        credentials: &TenantCredentials,
    ) -> Result<Sealed, Error> {
        let plain = secrecy::zeroize::Zeroizing::new(
            serde_json::to_vec(&SecretsOut {
                a: credentials
                    .access_token
                    .as_ref()
                    .map(ExposeSecret::expose_secret),
                r: credentials
                    .refresh_token
                    .as_ref()
                    .map(ExposeSecret::expose_secret),
            })
            .map_err(|e| corrupt("crm_credentials", format!("cannot encode tokens: {e}")))?,
        );
        self.keys.seal(tenant, crm, &plain)
    }

    fn open(&self, row: &Row) -> Result<TenantCredentials, Error> {
        let tenant = TenantId::new(row.tenant.clone());
        let plain = self
            .keys
            .open(&tenant, &CrmKind::from_name(&row.crm), &row.sealed())?;
        let secrets: SecretsIn = serde_json::from_slice(&plain).map_err(|_| {
            corrupt(
                "crm_credentials",
                format!("the sealed tokens of tenant {tenant} do not decode"),
            )
        })?;
        Ok(TenantCredentials::new(secrets.a, secrets.r)
            .with_expires_at(opt_from_ns(row.expires_at_ns))
            .with_instance_url(row.instance_url.clone())
            .with_account_id(row.account_id.clone()))
    }

    /// Re-seals every row not sealed with the current key (after a rotation: the previous
    /// keys must be configured as old keys until this returns). Returns how many rows were
    /// re-sealed; rows changed meanwhile by a save are left as the save wrote them.
    ///
    /// # Errors
    /// [`Error::Credentials`] when a row opens with no configured key (nothing after it is
    /// re-sealed; the rows before it are); store errors.
    pub async fn rotate_credentials(&self) -> Result<u64, Error> {
        let current = self.keys.current().id().to_owned();
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM crm_credentials WHERE key_id <> $1 ORDER BY tenant, crm"
        ))
        .bind(&current)
        .fetch_all(self.store.reader())
        .await
        .map_err(|e| classify("read credentials to rotate", None, e))?;
        let mut rotated = 0;
        for row in rows {
            let tenant = TenantId::new(row.tenant.clone());
            let crm = CrmKind::from_name(&row.crm);
            let resealed = self.seal(&tenant, &crm, &self.open(&row)?)?;
            let done = sqlx::query(
                "UPDATE crm_credentials SET key_id = $3, nonce = $4, sealed = $5 \
                 WHERE tenant = $1 AND crm = $2 AND key_id = $6 AND nonce = $7",
            )
            .bind(&row.tenant)
            .bind(&row.crm)
            .bind(&resealed.key_id)
            .bind(&resealed.nonce)
            .bind(&resealed.ciphertext)
            .bind(&row.key_id)
            .bind(&row.nonce)
            .execute(self.store.writer())
            .await
            .map_err(db("rotate credentials", &tenant))?;
            rotated += done.rows_affected();
        }
        Ok(rotated)
    }
}

#[async_trait]
impl CredentialStore for CredentialVault {
    async fn save_credentials(
        &self,
        tenant: &TenantId,
        crm: &CrmKind,
        credentials: &TenantCredentials,
    ) -> Result<(), Error> {
        check_tenant(tenant)?;
        let sealed = self.seal(tenant, crm, credentials)?;
        sqlx::query(
            "INSERT INTO crm_credentials (tenant, crm, key_id, nonce, sealed, expires_at_ns, \
                 instance_url, account_id, updated_at_ns) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (tenant, crm) DO UPDATE SET key_id = excluded.key_id, \
                 nonce = excluded.nonce, sealed = excluded.sealed, \
                 expires_at_ns = excluded.expires_at_ns, instance_url = excluded.instance_url, \
                 account_id = excluded.account_id, updated_at_ns = excluded.updated_at_ns",
        )
        .bind(tenant.as_str())
        .bind(crm.as_str())
        .bind(&sealed.key_id)
        .bind(&sealed.nonce)
        .bind(&sealed.ciphertext)
        .bind(opt_to_ns(credentials.expires_at, "token expiry")?)
        .bind(credentials.instance_url.as_deref())
        .bind(credentials.account_id.as_deref())
        .bind(to_ns(chrono::Utc::now(), "save time")?)
        .execute(self.store.writer())
        .await
        .map_err(db("save credentials", tenant))?;
        Ok(())
    }

    async fn load_credentials(
        &self,
        tenant: &TenantId,
        crm: &CrmKind,
    ) -> Result<Option<TenantCredentials>, Error> {
        check_tenant(tenant)?;
        let row: Option<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM crm_credentials WHERE tenant = $1 AND crm = $2"
        ))
        .bind(tenant.as_str())
        .bind(crm.as_str())
        .fetch_optional(self.store.reader())
        .await
        .map_err(db("load credentials", tenant))?;
        row.map(|r| self.open(&r)).transpose()
    }

    async fn delete_credentials(&self, tenant: &TenantId, crm: &CrmKind) -> Result<bool, Error> {
        check_tenant(tenant)?;
        let done = sqlx::query("DELETE FROM crm_credentials WHERE tenant = $1 AND crm = $2")
            .bind(tenant.as_str())
            .bind(crm.as_str())
            .execute(self.store.writer())
            .await
            .map_err(db("delete credentials", tenant))?;
        Ok(done.rows_affected() > 0)
    }
}
