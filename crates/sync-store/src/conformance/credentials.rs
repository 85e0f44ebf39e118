//! Conformance cases of a [`CredentialStore`]: each takes a fresh store and panics on a
//! violation. Run them with [`credential_conformance_tests!`](crate::credential_conformance_tests).

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use secrecy::{ExposeSecret, SecretString};
use sync_core::ports::{CredentialStore, TenantCredentials};
use sync_core::{CrmKind, Error, TenantId};

use super::CaseFuture;

/// A credential conformance case.
pub type CredentialCase = fn(Arc<dyn CredentialStore>) -> CaseFuture;

/// Generates one `#[tokio::test]` per credential conformance case. The argument is an async
/// function of no arguments returning `Option<Arc<dyn CredentialStore>>` (`None` skips).
#[macro_export]
macro_rules! credential_conformance_tests {
    ($make:expr) => {
        $crate::__credential_conformance_tests!($make;
            credentials_round_trip,
            credentials_are_per_tenant_and_crm,
            credentials_of_an_empty_tenant_are_refused,
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __credential_conformance_tests {
    ($make:expr; $($case:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let make = $make;
                if let Some(store) = make().await {
                    $crate::conformance::credentials::$case(store).await;
                }
            }
        )*
    };
}

fn sample(access: &str, refresh: &str) -> TenantCredentials {
    TenantCredentials::new(
        Some(SecretString::from(access.to_owned())),
        Some(SecretString::from(refresh.to_owned())),
    )
    .with_expires_at(Utc.with_ymd_and_hms(2026, 12, 1, 12, 30, 0).single())
    .with_instance_url(Some("https://acme.my.salesforce.com".into()))
    .with_account_id(Some("00Dxx0000001gPLEAY".into()))
}

fn tokens(c: &TenantCredentials) -> (String, String) {
    (
        c.access_token
            .as_ref()
            .map(|s| s.expose_secret().to_owned())
            .unwrap_or_default(),
        c.refresh_token
            .as_ref()
            .map(|s| s.expose_secret().to_owned())
            .unwrap_or_default(),
    )
}

/// Saved credentials load back whole; a save replaces; delete removes and says so.
pub fn credentials_round_trip(store: Arc<dyn CredentialStore>) -> CaseFuture {
    Box::pin(async move {
        let t = TenantId::new("cred-a");
        let sf = CrmKind::Salesforce;
        assert!(store.load_credentials(&t, &sf).await.unwrap().is_none());
        store
            .save_credentials(&t, &sf, &sample("at-1", "rt-1"))
            .await
            .unwrap();
        let got = store.load_credentials(&t, &sf).await.unwrap().unwrap();
        assert_eq!(tokens(&got), ("at-1".into(), "rt-1".into()));
        assert_eq!(got.expires_at, sample("", "").expires_at);
        assert_eq!(
            got.instance_url.as_deref(),
            Some("https://acme.my.salesforce.com")
        );
        assert_eq!(got.account_id.as_deref(), Some("00Dxx0000001gPLEAY"));
        let rotated = TenantCredentials::new(Some(SecretString::from("at-2")), None);
        store.save_credentials(&t, &sf, &rotated).await.unwrap();
        let got = store.load_credentials(&t, &sf).await.unwrap().unwrap();
        assert_eq!(tokens(&got), ("at-2".into(), String::new()));
        assert_eq!(got.account_id, None, "a save replaces the whole record");
        assert!(store.delete_credentials(&t, &sf).await.unwrap());
        assert!(!store.delete_credentials(&t, &sf).await.unwrap());
        assert!(store.load_credentials(&t, &sf).await.unwrap().is_none());
    })
}

/// One tenant's credentials for one CRM never show up for another tenant or CRM.
pub fn credentials_are_per_tenant_and_crm(store: Arc<dyn CredentialStore>) -> CaseFuture {
    Box::pin(async move {
        let (a, b) = (TenantId::new("cred-a"), TenantId::new("cred-b"));
        let (hs, sf) = (CrmKind::Hubspot, CrmKind::Salesforce);
        store
            .save_credentials(&a, &hs, &sample("a-hs", "ra"))
            .await
            .unwrap();
        store
            .save_credentials(&b, &hs, &sample("b-hs", "rb"))
            .await
            .unwrap();
        store
            .save_credentials(&a, &sf, &sample("a-sf", "rs"))
            .await
            .unwrap();
        let get = |t: TenantId, c: CrmKind| {
            let store = Arc::clone(&store);
            async move {
                store
                    .load_credentials(&t, &c)
                    .await
                    .unwrap()
                    .map(|c| tokens(&c).0)
            }
        };
        assert_eq!(get(a.clone(), hs.clone()).await.as_deref(), Some("a-hs"));
        assert_eq!(get(b.clone(), hs.clone()).await.as_deref(), Some("b-hs"));
        assert_eq!(get(a.clone(), sf.clone()).await.as_deref(), Some("a-sf"));
        assert_eq!(get(b.clone(), sf.clone()).await, None);
        assert!(store.delete_credentials(&a, &hs).await.unwrap());
        assert_eq!(get(b, hs).await.as_deref(), Some("b-hs"));
        assert_eq!(get(a, sf).await.as_deref(), Some("a-sf"));
    })
}

/// The empty tenant id is refused, as by every other port.
pub fn credentials_of_an_empty_tenant_are_refused(store: Arc<dyn CredentialStore>) -> CaseFuture {
    Box::pin(async move {
        let empty = TenantId::new("");
        let err = store
            .save_credentials(&empty, &CrmKind::Hubspot, &sample("x", "y"))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::UnknownTenant(_)), "{err}");
        assert!(matches!(
            store.load_credentials(&empty, &CrmKind::Hubspot).await,
            Err(Error::UnknownTenant(_))
        ));
    })
}

/// Every credential case with its name.
pub fn credential_cases() -> Vec<(&'static str, CredentialCase)> {
    vec![
        ("credentials_round_trip", credentials_round_trip),
        (
            "credentials_are_per_tenant_and_crm",
            credentials_are_per_tenant_and_crm,
        ),
        (
            "credentials_of_an_empty_tenant_are_refused",
            credentials_of_an_empty_tenant_are_refused,
        ),
    ]
}
