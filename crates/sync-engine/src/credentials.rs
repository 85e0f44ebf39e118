//! [`TenantTokens`]: each tenant's access token from a [`CredentialStore`], renewed through
//! a [`TokenRefresher`] before it expires or after the CRM refused it, once per tenant at a
//! time (single-flight), with the rotated refresh token saved before anyone uses the new
//! access token.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::Duration;
use futures::lock::Mutex as AsyncMutex;
use secrecy::{ExposeSecret, SecretString};
use sync_core::ports::{CredentialStore, TenantCredentials, TokenRefresher};
use sync_core::{CrmKind, Error, RemoteError, RemoteErrorKind, TenantId};

use crate::Clock;

/// Per-tenant tokens with single-flight renewal. Share one per CRM app.
pub struct TenantTokens {
    store: Arc<dyn CredentialStore>,
    refresher: Arc<dyn TokenRefresher>,
    clock: Arc<dyn Clock>,
    margin: Duration,
    /// One renewal lock per tenant: two callers of one tenant renew once, two tenants
    /// never wait for each other.
    flights: Mutex<HashMap<TenantId, Arc<AsyncMutex<()>>>>,
}

impl fmt::Debug for TenantTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenantTokens")
            .field("crm", &self.refresher.crm())
            .field("margin", &self.margin)
            .finish_non_exhaustive()
    }
}

impl TenantTokens {
    /// Tokens kept in `store`, renewed by `refresher` 5 minutes before they expire.
    pub fn new(
        store: Arc<dyn CredentialStore>,
        refresher: Arc<dyn TokenRefresher>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            refresher,
            clock,
            margin: Duration::minutes(5),
            flights: Mutex::new(HashMap::new()),
        }
    }

    /// Renews this long before the expiry (default 5 minutes).
    #[must_use]
    pub fn with_margin(mut self, margin: Duration) -> Self {
        self.margin = margin;
        self
    }

    /// The CRM these tokens are for.
    pub fn crm(&self) -> CrmKind {
        self.refresher.crm()
    }

    fn flight(&self, tenant: &TenantId) -> Arc<AsyncMutex<()>> {
        let mut flights = self.flights.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(flights.entry(tenant.clone()).or_default())
    }

    fn not_connected(&self, tenant: &TenantId) -> Error {
        RemoteError::new(
            self.crm().as_str(),
            RemoteErrorKind::Auth,
            format!(
                "no {} credentials saved for tenant {tenant}: connect the account first",
                self.crm().as_str()
            ),
        )
        .into()
    }

    async fn load(&self, tenant: &TenantId) -> Result<TenantCredentials, Error> {
        self.store
            .load_credentials(tenant, &self.crm())
            .await?
            .ok_or_else(|| self.not_connected(tenant))
    }

    /// Renews, saves, and returns the new access token.
    async fn renew(
        &self,
        tenant: &TenantId,
        current: &TenantCredentials,
    ) -> Result<SecretString, Error> {
        let now = self.clock.now();
        let mut fresh = self.refresher.refresh(tenant, current, now).await?;
        if fresh.refresh_token.is_none() {
            fresh.refresh_token.clone_from(&current.refresh_token);
        }
        if fresh.account_id.is_none() {
            fresh.account_id.clone_from(&current.account_id);
        }
        if fresh.instance_url.is_none() {
            fresh.instance_url.clone_from(&current.instance_url);
        }
        // Saved before use: a rotated refresh token must not be lost to a crash.
        self.store
            .save_credentials(tenant, &self.crm(), &fresh)
            .await?;
        fresh.access_token.ok_or_else(|| self.not_connected(tenant))
    }

    /// `tenant`'s access token, renewed first when there is none or it expires within the
    /// margin.
    ///
    /// # Errors
    /// A [`RemoteErrorKind::Auth`] error when the tenant has no saved credentials; the
    /// refresher's and the store's errors.
    pub async fn access_token(&self, tenant: &TenantId) -> Result<SecretString, Error> {
        let flight = self.flight(tenant);
        let _one_at_a_time = flight.lock().await;
        let current = self.load(tenant).await?;
        let now = self.clock.now();
        if let Some(token) = &current.access_token
            && current.expires_at.is_none_or(|at| now + self.margin < at)
        {
            return Ok(token.clone());
        }
        self.renew(tenant, &current).await
    }

    /// A new access token after the CRM refused `rejected` (HTTP 401). When another caller
    /// already replaced it, that token is returned without renewing again.
    ///
    /// # Errors
    /// As [`access_token`](Self::access_token).
    pub async fn refresh_after_rejection(
        &self,
        tenant: &TenantId,
        rejected: &SecretString,
    ) -> Result<SecretString, Error> {
        let flight = self.flight(tenant);
        let _one_at_a_time = flight.lock().await;
        let current = self.load(tenant).await?;
        if let Some(token) = &current.access_token
            && token.expose_secret() != rejected.expose_secret()
        {
            return Ok(token.clone());
        }
        self.renew(tenant, &current).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use async_trait::async_trait;
    use chrono::{DateTime, TimeZone, Utc};
    use sync_core::MemoryStore;

    use super::*;

    struct Fixed(DateTime<Utc>);
    impl Clock for Fixed {
        fn now(&self) -> DateTime<Utc> {
            self.0
        }
    }

    /// Issues `at-N` / `rt-N` (a rotated refresh token), slowly, counting calls.
    #[derive(Default)]
    struct Counting(AtomicU32);

    #[async_trait]
    impl TokenRefresher for Counting {
        fn crm(&self) -> CrmKind {
            CrmKind::Hubspot
        }
        async fn refresh(
            &self,
            _: &TenantId,
            current: &TenantCredentials,
            now: DateTime<Utc>,
        ) -> Result<TenantCredentials, Error> {
            assert!(current.refresh_token.is_some());
            let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
            tokio::time::sleep(std::time::Duration::from_millis(30)).await;
            Ok(TenantCredentials::new(
                Some(SecretString::from(format!("at-{n}"))),
                Some(SecretString::from(format!("rt-{n}"))),
            )
            .with_expires_at(Some(now + Duration::minutes(30))))
        }
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap()
    }

    async fn setup(expires_in: Duration) -> (Arc<MemoryStore>, Arc<Counting>, TenantTokens) {
        let store = Arc::new(MemoryStore::new());
        let creds = TenantCredentials::new(
            Some(SecretString::from("at-0")),
            Some(SecretString::from("rt-0")),
        )
        .with_expires_at(Some(now() + expires_in))
        .with_account_id(Some("62515".into()));
        store
            .save_credentials(&TenantId::new("a"), &CrmKind::Hubspot, &creds)
            .await
            .unwrap();
        let counting = Arc::new(Counting::default());
        let tokens = TenantTokens::new(store.clone(), counting.clone(), Arc::new(Fixed(now())));
        (store, counting, tokens)
    }

    #[tokio::test]
    async fn concurrent_renewals_of_one_tenant_make_one_token_call() {
        let (store, counting, tokens) = setup(Duration::minutes(1)).await;
        let t = TenantId::new("a");
        let (a, b) = futures::join!(tokens.access_token(&t), tokens.access_token(&t));
        assert_eq!(a.unwrap().expose_secret(), "at-1");
        assert_eq!(b.unwrap().expose_secret(), "at-1");
        assert_eq!(counting.0.load(Ordering::SeqCst), 1);
        let saved = store
            .load_credentials(&t, &CrmKind::Hubspot)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            saved.refresh_token.unwrap().expose_secret(),
            "rt-1",
            "the rotated refresh token is kept"
        );
        assert_eq!(saved.account_id.as_deref(), Some("62515"));

        let rejected = SecretString::from("at-1");
        let (a, b) = futures::join!(
            tokens.refresh_after_rejection(&t, &rejected),
            tokens.refresh_after_rejection(&t, &rejected)
        );
        assert_eq!(a.unwrap().expose_secret(), "at-2");
        assert_eq!(b.unwrap().expose_secret(), "at-2");
        assert_eq!(counting.0.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_fresh_token_is_used_as_is_and_a_missing_tenant_is_an_auth_error() {
        let (_, counting, tokens) = setup(Duration::minutes(20)).await;
        let got = tokens.access_token(&TenantId::new("a")).await.unwrap();
        assert_eq!(got.expose_secret(), "at-0");
        assert_eq!(counting.0.load(Ordering::SeqCst), 0);
        let err = tokens.access_token(&TenantId::new("b")).await.unwrap_err();
        assert!(err.stops_run(), "{err}");
        assert!(err.to_string().contains("connect the account"), "{err}");
        assert!(!format!("{tokens:?}").contains("at-0"));
    }
}
