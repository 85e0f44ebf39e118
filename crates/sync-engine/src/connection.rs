//! [`SyncEngine::check_connection`]: whether a tenant's CRM connection works, which account
//! it reaches, the scopes granted against those needed and the fields the source reads that
//! the CRM lacks, recorded as the tenant's credentials check (the status page's connection).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sync_core::TenantId;
use sync_core::ports::CredentialsCheck;
use tracing::warn;

use crate::status::refuses_credentials;
use crate::{Error, SyncEngine};

/// The result of [`SyncEngine::check_connection`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ConnectionReport {
    /// The tenant.
    pub tenant: TenantId,
    /// When it was checked.
    pub checked_at: DateTime<Utc>,
    /// Whether the CRM accepted the credentials.
    pub credentials_valid: bool,
    /// Why the check failed (refused credentials, or the CRM could not be reached).
    pub error: Option<String>,
    /// The CRM account (HubSpot portal id, Salesforce org id), when known.
    pub account_id: Option<String>,
    /// The scopes granted, when the CRM says.
    pub scopes_granted: Option<Vec<String>>,
    /// Needed scopes the credentials lack (empty when unknown: see `unchecked`).
    pub scopes_missing: Vec<String>,
    /// Fields the source reads that the CRM lacks; `None` when not checked.
    pub missing_fields: Option<Vec<String>>,
    /// What could not be checked, and why.
    pub unchecked: Vec<String>,
}

impl ConnectionReport {
    /// Whether the sync can run: credentials accepted, no scope or field missing.
    pub fn is_ready(&self) -> bool {
        self.credentials_valid
            && self.scopes_missing.is_empty()
            && self.missing_fields.as_ref().is_none_or(Vec::is_empty)
    }
}

impl SyncEngine {
    /// Checks `tenant`'s CRM connection through the source
    /// ([`CrmSource::connection_facts`](sync_core::ports::CrmSource::connection_facts)) and
    /// records the result as the tenant's credentials check, with the account id (see
    /// [`SyncEngine::status`]). A CRM that refuses or cannot be reached gives a report with
    /// `credentials_valid == false`, not an error.
    ///
    /// # Errors
    /// [`Error::NotConfigured`] without a source; store errors while recording.
    pub async fn check_connection(&self, tenant: &TenantId) -> Result<ConnectionReport, Error> {
        let this = &self.scoped(tenant).await?;
        let source = this.source()?;
        let now = this.clock.now();
        let mut report = ConnectionReport {
            tenant: tenant.clone(),
            checked_at: now,
            credentials_valid: false,
            error: None,
            account_id: None,
            scopes_granted: None,
            scopes_missing: Vec::new(),
            missing_fields: None,
            unchecked: Vec::new(),
        };
        let check = match source.connection_facts(tenant).await {
            Ok(facts) => {
                report.credentials_valid = true;
                report.scopes_missing = facts
                    .scopes_granted
                    .as_ref()
                    .map(|granted| {
                        facts
                            .scopes_needed
                            .iter()
                            .filter(|s| !granted.contains(s))
                            .cloned()
                            .collect()
                    })
                    .unwrap_or_default();
                report.account_id = facts.account_id;
                report.scopes_granted = facts.scopes_granted;
                report.missing_fields = facts.missing_fields;
                report.unchecked = facts.unchecked;
                CredentialsCheck::ok(now, report.account_id.clone())
            }
            Err(e) => {
                let refused = e.as_remote().is_some_and(refuses_credentials);
                let why = if refused {
                    format!("the CRM refused the credentials: {e}")
                } else {
                    format!("the CRM could not be checked: {e}")
                };
                warn!(%tenant, error = %e, refused, "connection check failed");
                report.error = Some(why.clone());
                CredentialsCheck::failed(now, why)
            }
        };
        this.store.record_credentials_check(tenant, &check).await?;
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use async_trait::async_trait;
    use chrono::TimeZone;
    use sync_core::config::SyncConfig;
    use sync_core::ports::{ConnectionFacts, ContactPage, CrmSource, PageToken, StatusStore};
    use sync_core::{
        CrmContact, CrmKind, CrmRecordId, Cursor, Email, MemoryStore, RemoteError, RemoteErrorKind,
    };

    use super::*;
    use crate::Clock;

    struct Fixed;
    impl Clock for Fixed {
        fn now(&self) -> DateTime<Utc> {
            Utc.with_ymd_and_hms(2026, 12, 1, 12, 0, 0).unwrap()
        }
    }

    /// A source whose connection check answers `facts` or fails with `kind`.
    struct Checked(Result<ConnectionFacts, RemoteErrorKind>);

    #[async_trait]
    impl CrmSource for Checked {
        fn crm(&self) -> CrmKind {
            CrmKind::Hubspot
        }
        async fn changed_since(
            &self,
            _: &TenantId,
            _: &Cursor,
            _: Option<&PageToken>,
        ) -> Result<ContactPage, sync_core::Error> {
            Ok(ContactPage::default())
        }
        async fn scan(
            &self,
            _: &TenantId,
            _: Option<&PageToken>,
        ) -> Result<ContactPage, sync_core::Error> {
            Ok(ContactPage::default())
        }
        async fn get_by_ids(
            &self,
            _: &TenantId,
            _: &[CrmRecordId],
        ) -> Result<Vec<CrmContact>, sync_core::Error> {
            Ok(Vec::new())
        }
        async fn find_by_email(
            &self,
            _: &TenantId,
            _: &Email,
        ) -> Result<Vec<CrmContact>, sync_core::Error> {
            Ok(Vec::new())
        }
        async fn connection_facts(
            &self,
            _: &TenantId,
        ) -> Result<ConnectionFacts, sync_core::Error> {
            match &self.0 {
                Ok(f) => Ok(f.clone()),
                Err(kind) => {
                    Err(RemoteError::new("hubspot", *kind, "HTTP 401: token revoked").into())
                }
            }
        }
    }

    fn engine(source: Checked) -> (Arc<MemoryStore>, SyncEngine) {
        let store = Arc::new(MemoryStore::new());
        let engine = SyncEngine::builder(SyncConfig::default().validate().unwrap(), store.clone())
            .clock(Arc::new(Fixed))
            .source(Arc::new(source))
            .build();
        (store, engine)
    }

    #[tokio::test]
    async fn a_working_connection_records_the_account_and_compares_scopes() {
        let mut facts = ConnectionFacts::account(Some("62515".into()));
        facts.scopes_needed = vec!["read".into(), "write".into()];
        facts.scopes_granted = Some(vec!["read".into()]);
        facts.missing_fields = Some(Vec::new());
        let (store, engine) = engine(Checked(Ok(facts)));
        let t = TenantId::new("acme");
        let report = engine.check_connection(&t).await.unwrap();
        assert!(report.credentials_valid);
        assert_eq!(report.account_id.as_deref(), Some("62515"));
        assert_eq!(report.scopes_missing, vec!["write".to_owned()]);
        assert!(!report.is_ready());
        let check = store.credentials_check(&t).await.unwrap().unwrap();
        assert_eq!(check.error, None);
        assert_eq!(check.account_id.as_deref(), Some("62515"));
    }

    #[tokio::test]
    async fn refused_credentials_are_a_failed_check_not_an_error() {
        let (store, engine) = engine(Checked(Err(RemoteErrorKind::Auth)));
        let t = TenantId::new("acme");
        let report = engine.check_connection(&t).await.unwrap();
        assert!(!report.credentials_valid && !report.is_ready());
        let why = report.error.unwrap();
        assert!(why.contains("refused the credentials"), "{why}");
        let check = store.credentials_check(&t).await.unwrap().unwrap();
        assert!(check.error.unwrap().contains("refused"));
    }
}
