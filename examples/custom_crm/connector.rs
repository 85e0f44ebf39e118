//! The connector of the `custom_crm` example: `CrmSource` and `CrmSink` for a small
//! JSON-over-HTTP CRM, written only against the public traits. Copy this file as the start
//! of your own connector; the repository's `docs/writing-a-connector.md` explains each
//! contract.

use std::collections::BTreeMap;

use async_trait::async_trait;
use cativa_crm_sync::chrono::{DateTime, TimeZone, Utc};
use cativa_crm_sync::core::ports::{
    Activity, ContactDraft, ContactPage, CrmSink, CrmSource, ItemResult, PageToken, PropertyUpdate,
    Provisioned,
};
use cativa_crm_sync::core::{
    CrmContact, CrmKind, CrmRecordId, Cursor, Email, Error, RemoteError, RemoteErrorKind, TenantId,
};
use serde::Deserialize;
use serde_json::{Value, json};

const SYSTEM: &str = "json-crm";

/// One contact as the CRM's API returns it.
#[derive(Debug, Deserialize)]
struct WireContact {
    id: String,
    email: String,
    modified_ms: i64,
    #[serde(default)]
    deleted: bool,
    #[serde(default)]
    merged_into: Option<String>,
    #[serde(default)]
    properties: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
struct WirePage {
    contacts: Vec<WireContact>,
    next: Option<String>,
}

/// The connector: the CRM's ids are text, compared as numbers on ties by the CRM itself.
#[derive(Debug, Clone)]
pub struct JsonCrmConnector {
    http: reqwest::Client,
    base: String,
}

impl JsonCrmConnector {
    /// A connector for the CRM at `base` (no trailing slash).
    pub fn new(base: impl Into<String>) -> Self {
        Self {
            // The SDK's builder installs the TLS crypto provider its `reqwest` needs.
            http: cativa_crm_sync::http::tls::client_builder()
                .build()
                .unwrap_or_default(),
            base: base.into(),
        }
    }

    fn kind() -> CrmKind {
        CrmKind::Other("json-crm".into())
    }

    pub fn id(&self, id: &str) -> CrmRecordId {
        CrmRecordId::new(Self::kind(), id)
    }

    fn contact(&self, w: WireContact) -> CrmContact {
        let at = Utc
            .timestamp_millis_opt(w.modified_ms)
            .single()
            .unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
        let mut c = CrmContact::new(self.id(&w.id), Email::parse(&w.email).ok(), at);
        c.archived = w.deleted;
        c.merged_into = w.merged_into.map(|m| self.id(&m));
        c.properties = w.properties;
        c
    }

    /// Sends a request and classifies failures the way the engine acts on them.
    async fn call(&self, req: reqwest::RequestBuilder) -> Result<Value, Error> {
        let resp = req.send().await.map_err(|e| {
            let kind = if e.is_timeout() {
                RemoteErrorKind::Timeout
            } else {
                RemoteErrorKind::Network
            };
            RemoteError::new(SYSTEM, kind, e.to_string())
        })?;
        let status = resp.status().as_u16();
        let wait = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        let kind = match status {
            200..=299 => return Ok(body),
            429 => RemoteErrorKind::RateLimited,
            401 => RemoteErrorKind::Auth,
            403 => RemoteErrorKind::Forbidden,
            404 => RemoteErrorKind::NotFound,
            500..=599 => RemoteErrorKind::Server,
            _ => RemoteErrorKind::Invalid,
        };
        let mut err = RemoteError::new(
            SYSTEM,
            kind,
            body["error"].as_str().unwrap_or("request failed"),
        )
        .with_status(status);
        if let Some(secs) = wait {
            err = err.with_retry_after(std::time::Duration::from_secs(secs));
        }
        Err(err.into())
    }

    async fn page(&self, path: &str, query: &[(&str, String)]) -> Result<ContactPage, Error> {
        let body = self
            .call(self.http.get(format!("{}{path}", self.base)).query(query))
            .await?;
        let page: WirePage = serde_json::from_value(body)
            .map_err(|e| RemoteError::new(SYSTEM, RemoteErrorKind::Decode, e.to_string()))?;
        let contacts = page.contacts.into_iter().map(|w| self.contact(w)).collect();
        Ok(ContactPage::new(contacts, page.next.map(PageToken)))
    }

    fn contacts(&self, body: Value) -> Result<Vec<CrmContact>, Error> {
        let list: Vec<WireContact> = serde_json::from_value(body["contacts"].clone())
            .map_err(|e| RemoteError::new(SYSTEM, RemoteErrorKind::Decode, e.to_string()))?;
        Ok(list.into_iter().map(|w| self.contact(w)).collect())
    }
}

#[async_trait]
impl CrmSource for JsonCrmConnector {
    fn crm(&self) -> CrmKind {
        Self::kind()
    }

    async fn changed_since(
        &self,
        _t: &TenantId,
        since: &Cursor,
        page: Option<&PageToken>,
    ) -> Result<ContactPage, Error> {
        let mut q = vec![("since", since.modified_at.timestamp_millis().to_string())];
        q.extend(page.map(|p| ("after", p.0.clone())));
        self.page("/contacts/changed", &q).await
    }

    async fn scan(&self, _t: &TenantId, page: Option<&PageToken>) -> Result<ContactPage, Error> {
        let q: Vec<(&str, String)> = page.map(|p| ("after", p.0.clone())).into_iter().collect();
        self.page("/contacts", &q).await
    }

    async fn get_by_ids(
        &self,
        _t: &TenantId,
        ids: &[CrmRecordId],
    ) -> Result<Vec<CrmContact>, Error> {
        let ids: Vec<&str> = ids.iter().map(|i| i.id.as_str()).collect();
        let body = self
            .call(
                self.http
                    .post(format!("{}/contacts/get", self.base))
                    .json(&json!({ "ids": ids })),
            )
            .await?;
        self.contacts(body)
    }

    async fn find_by_email(&self, _t: &TenantId, email: &Email) -> Result<Vec<CrmContact>, Error> {
        let req = self
            .http
            .get(format!("{}/contacts/search", self.base))
            .query(&[("email", email.as_str())]);
        self.contacts(self.call(req).await?)
    }
}

#[async_trait]
impl CrmSink for JsonCrmConnector {
    fn crm(&self) -> CrmKind {
        Self::kind()
    }

    fn max_batch(&self) -> usize {
        50
    }

    async fn upsert_contacts(
        &self,
        _t: &TenantId,
        drafts: &[ContactDraft],
    ) -> Result<Vec<ItemResult<Provisioned>>, Error> {
        let contacts: Vec<Value> = drafts
            .iter()
            .map(|d| {
                let mut props = d.properties.clone();
                if let Some(u) = &d.cativa_user_id {
                    props.insert("cativa_user_id".into(), u.to_string());
                }
                json!({ "email": d.email.as_str(), "properties": props })
            })
            .collect();
        let req = self
            .http
            .post(format!("{}/contacts/upsert", self.base))
            .json(&json!({ "contacts": contacts }));
        let body = self.call(req).await?;
        let results = body["results"].as_array().cloned().unwrap_or_default();
        if results.len() != drafts.len() {
            return Err(RemoteError::new(
                SYSTEM,
                RemoteErrorKind::Decode,
                "one result per contact expected",
            )
            .into());
        }
        Ok(results
            .iter()
            .map(|r| match (r["id"].as_str(), r["error"].as_str()) {
                (Some(id), _) => Ok(Provisioned::new(
                    self.id(id),
                    r["created"].as_bool().unwrap_or(false),
                )),
                (None, e) => {
                    Err(
                        RemoteError::new(SYSTEM, RemoteErrorKind::Invalid, e.unwrap_or("rejected"))
                            .into(),
                    )
                }
            })
            .collect())
    }

    async fn update_properties(
        &self,
        _t: &TenantId,
        updates: &[PropertyUpdate],
    ) -> Result<Vec<ItemResult<()>>, Error> {
        // This CRM writes properties through the same upsert; a real one has its own call.
        let refused = || {
            Err(RemoteError::new(
                SYSTEM,
                RemoteErrorKind::Invalid,
                "property updates are not supported by this example",
            )
            .into())
        };
        Ok(updates.iter().map(|_| refused()).collect())
    }

    async fn log_activities(
        &self,
        _t: &TenantId,
        activities: &[Activity],
    ) -> Result<Vec<ItemResult<()>>, Error> {
        let refused = || {
            Err(RemoteError::new(
                SYSTEM,
                RemoteErrorKind::Invalid,
                "activities are not supported by this example",
            )
            .into())
        };
        Ok(activities.iter().map(|_| refused()).collect())
    }
}
