//! [`CativaClient`]: the Cativa REST API with a partner API key.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, StatusCode};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use sync_core::{BadgeId, CativaUserId, Email};
use sync_http::{ErrorKind, HttpClient, HttpOptions, HttpTransport, RateLimit, RetryPolicy};

mod groups;

use crate::error::Error;
use crate::model::{CativaUser, Me, NewUser, UserFields};

/// The production API base URL.
pub const DEFAULT_BASE_URL: &str = "https://api.cativa.digital";

const ME_PATH: &str = "/social/v1/auth/me";

/// Paths of the **preview** ("coming soon") write endpoints.
///
/// Cativa has announced partner-key endpoints for assigning and removing badges, creating
/// users and updating them, but has not published them: these defaults are this SDK's
/// best guess, used by the sandbox, and **will change** if Cativa publishes different
/// paths. Override them from configuration. Templates use `{user_id}` and `{badge_id}`;
/// each placeholder is replaced by the percent-encoded value.
///
/// | call | method | default path |
/// |---|---|---|
/// | assign badge | POST | `/social/v1/users/{user_id}/badges/{badge_id}` |
/// | remove badge | DELETE | `/social/v1/users/{user_id}/badges/{badge_id}` |
/// | create user | POST | `/social/v1/users` |
/// | update user | PATCH | `/social/v1/users/{user_id}` |
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct PreviewPaths {
    /// POST: grant a badge.
    pub assign_badge: String,
    /// DELETE: take a badge away.
    pub remove_badge: String,
    /// POST: create a user.
    pub create_user: String,
    /// PATCH: update a user's profile fields.
    pub update_user: String,
    /// GET: the members of a community group (`{group}`: the group's name). **Off by
    /// default** (`None`): Cativa has not published any endpoint listing a group's
    /// members, so both this path and the response shape are assumptions to configure
    /// (see [`CativaClient::group_members`]). Without it, a full reconcile removes no list
    /// membership.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_members: Option<String>,
}

impl Default for PreviewPaths {
    fn default() -> Self {
        Self {
            assign_badge: "/social/v1/users/{user_id}/badges/{badge_id}".to_owned(),
            remove_badge: "/social/v1/users/{user_id}/badges/{badge_id}".to_owned(),
            create_user: "/social/v1/users".to_owned(),
            update_user: "/social/v1/users/{user_id}".to_owned(),
            group_members: None,
        }
    }
}

impl PreviewPaths {
    /// Sets the assign-badge path (`{user_id}` and `{badge_id}` required).
    #[must_use]
    pub fn with_assign_badge(mut self, path: impl Into<String>) -> Self {
        self.assign_badge = path.into();
        self
    }

    /// Sets the remove-badge path (`{user_id}` and `{badge_id}` required).
    #[must_use]
    pub fn with_remove_badge(mut self, path: impl Into<String>) -> Self {
        self.remove_badge = path.into();
        self
    }

    /// Sets the create-user path.
    #[must_use]
    pub fn with_create_user(mut self, path: impl Into<String>) -> Self {
        self.create_user = path.into();
        self
    }

    /// Sets the update-user path (`{user_id}` required).
    #[must_use]
    pub fn with_update_user(mut self, path: impl Into<String>) -> Self {
        self.update_user = path.into();
        self
    }

    /// Turns on the group-members endpoint at `path` (`{group}` required), e.g.
    /// `/social/v1/groups/{group}/members` as the sandbox serves it.
    #[must_use]
    pub fn with_group_members(mut self, path: impl Into<String>) -> Self {
        self.group_members = Some(path.into());
        self
    }

    fn validate(&self) -> Result<(), Error> {
        let need = |name: &str, path: &str, placeholders: &[&str]| {
            if !path.starts_with('/') {
                return Err(Error::Config(format!(
                    "preview path {name} = {path:?} must start with '/'"
                )));
            }
            for p in placeholders {
                if !path.contains(p) {
                    return Err(Error::Config(format!(
                        "preview path {name} = {path:?} must contain {p}"
                    )));
                }
            }
            Ok(())
        };
        need(
            "assign_badge",
            &self.assign_badge,
            &["{user_id}", "{badge_id}"],
        )?;
        need(
            "remove_badge",
            &self.remove_badge,
            &["{user_id}", "{badge_id}"],
        )?;
        need("create_user", &self.create_user, &[])?;
        if let Some(path) = &self.group_members {
            need("group_members", path, &["{group}"])?;
        }
        need("update_user", &self.update_user, &["{user_id}"])
    }
}

/// Splits a template into percent-encodable segments with placeholders filled.
fn render(template: &str, user: Option<&str>, badge: Option<&str>) -> Vec<String> {
    template
        .trim_start_matches('/')
        .split('/')
        .map(|seg| match seg {
            "{user_id}" => user.unwrap_or_default().to_owned(),
            "{badge_id}" => badge.unwrap_or_default().to_owned(),
            other => other
                .replace("{user_id}", user.unwrap_or_default())
                .replace("{badge_id}", badge.unwrap_or_default()),
        })
        .collect()
}

fn endpoint_missing(e: &sync_http::HttpError) -> bool {
    match e.status().map(|s| s.as_u16()) {
        Some(405 | 501) => true,
        Some(404) => e
            .body()
            .is_none_or(|b| b.iter().all(u8::is_ascii_whitespace)),
        _ => false,
    }
}

/// The Cativa API client. Cheap to clone.
///
/// ```no_run
/// # async fn demo() -> Result<(), cativa_client::Error> {
/// use secrecy::SecretString;
/// use cativa_client::CativaClient;
///
/// let client = CativaClient::builder(SecretString::from(std::env::var("CATIVA_API_KEY").unwrap_or_default()))
///     .base_url(std::env::var("CATIVA_BASE_URL").unwrap_or_else(|_| cativa_client::DEFAULT_BASE_URL.into()))
///     .build()?;
/// let me = client.me().await?;
/// println!("key belongs to tenant {}", me.customer_id);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct CativaClient {
    http: HttpClient,
    paths: Arc<PreviewPaths>,
}

impl fmt::Debug for CativaClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CativaClient")
            .field("http", &self.http)
            .field("paths", &self.paths)
            .finish()
    }
}

/// Builds a [`CativaClient`].
pub struct CativaClientBuilder {
    api_key: SecretString,
    base_url: String,
    paths: PreviewPaths,
    retry: Option<RetryPolicy>,
    rate_limit: Option<RateLimit>,
    transport: Option<Arc<dyn HttpTransport>>,
    http: HttpOptions,
    without_timeouts: bool,
}

impl fmt::Debug for CativaClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CativaClientBuilder")
            .field("api_key", &"[redacted]")
            .field("base_url", &self.base_url)
            .field("paths", &self.paths)
            .field("retry", &self.retry)
            .field("rate_limit", &self.rate_limit)
            .finish_non_exhaustive()
    }
}

impl CativaClientBuilder {
    /// The API base URL (default [`DEFAULT_BASE_URL`]; a sandbox: `http://127.0.0.1:PORT`).
    #[must_use]
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// The preview endpoint paths (default [`PreviewPaths::default`]).
    #[must_use]
    pub fn preview_paths(mut self, paths: PreviewPaths) -> Self {
        self.paths = paths;
        self
    }

    /// The retry policy (default [`RetryPolicy::default`]).
    #[must_use]
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }

    /// A client-side rate limit (none by default: Cativa answers 429 with `Retry-After`,
    /// which is honoured).
    #[must_use]
    pub fn rate_limit(mut self, limit: RateLimit) -> Self {
        self.rate_limit = Some(limit);
        self
    }

    /// A custom transport.
    #[must_use]
    pub fn transport(mut self, transport: Arc<dyn HttpTransport>) -> Self {
        self.transport = Some(transport);
        self
    }

    /// The whole-request timeout of each attempt (default 30 s).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.http = self.http.timeout(timeout);
        self
    }

    /// Adjusts the default transport's `reqwest` builder (proxy, root certificates,
    /// default headers...) before it is built; ignored with a custom
    /// [`transport`](Self::transport).
    #[must_use]
    pub fn configure_http(
        mut self,
        f: impl Fn(sync_http::reqwest::ClientBuilder) -> sync_http::reqwest::ClientBuilder
        + Send
        + Sync
        + 'static,
    ) -> Self {
        self.http = self.http.configure_http(f);
        self
    }

    /// No connect or request timeouts (tests on tokio's paused clock); a later
    /// [`timeout`](Self::timeout) still applies.
    #[must_use]
    pub fn without_timeouts(mut self) -> Self {
        self.without_timeouts = true;
        self
    }

    /// Validates and builds.
    ///
    /// # Errors
    /// [`Error::Config`] for a bad preview path; [`Error::Http`] with
    /// [`ErrorKind::Config`] for a bad base URL or key.
    pub fn build(self) -> Result<CativaClient, Error> {
        self.paths.validate()?;
        let mut b = HttpClient::builder(self.base_url)
            .bearer(self.api_key)
            .user_agent(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"));
        if let Some(r) = self.retry {
            b = b.retry_policy(r);
        }
        if let Some(l) = self.rate_limit {
            b = b.rate_limit(l);
        }
        if let Some(t) = self.transport {
            b = b.transport(t);
        }
        if self.without_timeouts {
            b = b.without_timeouts();
        }
        b = self.http.apply(b);
        Ok(CativaClient {
            http: b.build()?,
            paths: Arc::new(self.paths),
        })
    }
}

impl CativaClient {
    /// Starts a builder with the partner API key (sent as `Authorization: Bearer <key>`).
    pub fn builder(api_key: SecretString) -> CativaClientBuilder {
        CativaClientBuilder {
            api_key,
            base_url: DEFAULT_BASE_URL.to_owned(),
            paths: PreviewPaths::default(),
            retry: None,
            rate_limit: None,
            transport: None,
            http: HttpOptions::default(),
            without_timeouts: false,
        }
    }

    /// The underlying HTTP client.
    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    /// The preview paths in use.
    pub fn preview_paths(&self) -> &PreviewPaths {
        &self.paths
    }

    /// API requests made through this handle (and its clones), by endpoint template:
    /// `"POST /social/v1/users/{user_id}/badges/{badge_id}"`, `"GET /social/v1/auth/me"`,
    /// ... User ids, badge ids and emails never make new keys. Every attempt sent counts,
    /// retries included.
    pub fn api_calls(&self) -> std::collections::BTreeMap<String, u64> {
        self.http.request_counts()
    }

    /// A clone that shares everything (key, connection pool, rate limiter) but counts its
    /// API calls apart, from zero. [`ApiBadgeSink`](crate::sink::ApiBadgeSink) takes one, so its
    /// report never includes calls other components made with the same client.
    #[must_use]
    pub fn with_own_call_counts(&self) -> Self {
        Self {
            http: self.http.with_own_request_counts(),
            paths: Arc::clone(&self.paths),
        }
    }

    /// `GET /social/v1/auth/me`: the user owning the key and its tenant. Use it to check a
    /// credential and to discover the `CustomerId` webhooks will carry.
    ///
    /// # Errors
    /// [`Error::Http`] (`Auth` for a bad key, `Decode` naming the missing field).
    pub async fn me(&self) -> Result<Me, Error> {
        let v: serde_json::Value = self.http.get(ME_PATH).send_json().await?;
        Me::from_value(v).map_err(|m| {
            Error::Http(sync_http::HttpError::new(
                ErrorKind::Decode,
                format!("unexpected {ME_PATH} response: {m}"),
            ))
        })
    }

    /// `GET /social/v1/admin/users/email/{email}`: the user with this email, `None` when
    /// there is none (404).
    ///
    /// # Errors
    /// [`Error::AdminLookupForbidden`] on 403: partner keys cannot use this endpoint
    /// yet (see the error text for the workaround). Other failures as [`Error::Http`].
    pub async fn user_by_email(&self, email: &Email) -> Result<Option<CativaUser>, Error> {
        let res = self
            .http
            .request_segments(
                Method::GET,
                &["social", "v1", "admin", "users", "email", email.as_str()],
            )
            .log_path("/social/v1/admin/users/email/{email}")
            .send_json::<CativaUser>()
            .await;
        match res {
            Ok(u) => Ok(Some(u)),
            Err(e) if e.status() == Some(StatusCode::NOT_FOUND) => Ok(None),
            Err(e) if e.status() == Some(StatusCode::FORBIDDEN) => {
                Err(Error::AdminLookupForbidden {
                    correlation_id: e.correlation_id().map(str::to_owned),
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn preview(
        &self,
        method: Method,
        template: &str,
        user: Option<&str>,
        badge: Option<&str>,
        idempotency_key: &str,
        body: Option<serde_json::Value>,
    ) -> Result<sync_http::Response, Error> {
        let segments = render(template, user, badge);
        let refs: Vec<&str> = segments.iter().map(String::as_str).collect();
        let mut req = self
            .http
            .request_segments(method.clone(), &refs)
            .idempotency_key(idempotency_key)
            .log_path(template.to_owned());
        if let Some(b) = body {
            req = req.json(&b);
        }
        match req.send().await {
            Ok(r) => Ok(r),
            // A route that does not exist answers 405/501, or 404 with an empty body; a 404
            // with a body is the API saying the user or badge does not exist.
            Err(e) if endpoint_missing(&e) => Err(Error::PreviewUnavailable {
                method: method.to_string(),
                path: template.to_owned(),
                status: e.status().map(|s| s.as_u16()).unwrap_or_default(),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// **Preview.** Grants `badge` to `user` (POST [`PreviewPaths::assign_badge`]) with an
    /// `Idempotency-Key` header, so a retried call has one effect.
    ///
    /// # Errors
    /// [`Error::PreviewUnavailable`] when the endpoint is not there (405/501, or 404
    /// with an empty body); otherwise [`Error::Http`] (`NotFound` for an unknown user
    /// or badge).
    pub async fn assign_badge(
        &self,
        user: &CativaUserId,
        badge: &BadgeId,
        idempotency_key: &str,
    ) -> Result<(), Error> {
        self.preview(
            Method::POST,
            &self.paths.assign_badge,
            Some(user.as_str()),
            Some(badge.as_str()),
            idempotency_key,
            None,
        )
        .await
        .map(drop)
    }

    /// **Preview.** Takes `badge` away from `user` (DELETE [`PreviewPaths::remove_badge`]).
    ///
    /// # Errors
    /// As [`assign_badge`](Self::assign_badge).
    pub async fn remove_badge(
        &self,
        user: &CativaUserId,
        badge: &BadgeId,
        idempotency_key: &str,
    ) -> Result<(), Error> {
        self.preview(
            Method::DELETE,
            &self.paths.remove_badge,
            Some(user.as_str()),
            Some(badge.as_str()),
            idempotency_key,
            None,
        )
        .await
        .map(drop)
    }

    /// **Preview.** Creates a user (POST [`PreviewPaths::create_user`], PascalCase JSON body).
    ///
    /// # Errors
    /// As [`assign_badge`](Self::assign_badge); `Conflict` when the email exists.
    pub async fn create_user(
        &self,
        user: &NewUser,
        idempotency_key: &str,
    ) -> Result<CativaUser, Error> {
        let body = serde_json::to_value(user)
            .map_err(|e| Error::Config(format!("the new user could not be encoded: {e}")))?;
        let resp = self
            .preview(
                Method::POST,
                &self.paths.create_user,
                None,
                None,
                idempotency_key,
                Some(body),
            )
            .await?;
        // The user is the body, or its `User` object.
        let v: serde_json::Value = resp.json()?;
        let v = match v.get("User").or_else(|| v.get("user")) {
            Some(u) if u.is_object() => u.clone(),
            _ => v,
        };
        serde_path_to_error::deserialize::<_, CativaUser>(v).map_err(|e| {
            Error::Http(sync_http::HttpError::new(
                ErrorKind::Decode,
                format!(
                    "unexpected create-user response: field {}: {}",
                    e.path(),
                    e.inner()
                ),
            ))
        })
    }

    /// **Preview.** Writes profile fields (PATCH [`PreviewPaths::update_user`], body
    /// `{"Field": "value", ...}`).
    ///
    /// # Errors
    /// As [`assign_badge`](Self::assign_badge).
    pub async fn update_user(
        &self,
        user: &CativaUserId,
        fields: &UserFields,
        idempotency_key: &str,
    ) -> Result<(), Error> {
        let body = serde_json::to_value(fields)
            .map_err(|e| Error::Config(format!("the fields could not be encoded: {e}")))?;
        self.preview(
            Method::PATCH,
            &self.paths.update_user,
            Some(user.as_str()),
            None,
            idempotency_key,
            Some(body),
        )
        .await
        .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_render_into_segments() {
        assert_eq!(
            render(
                "/social/v1/users/{user_id}/badges/{badge_id}",
                Some("u/1"),
                Some("b 2")
            ),
            ["social", "v1", "users", "u/1", "badges", "b 2"]
        );
        assert_eq!(render("/x/u-{user_id}", Some("7"), None), ["x", "u-7"]);
    }

    #[test]
    fn bad_preview_paths_are_config_errors() {
        let p = PreviewPaths::default().with_assign_badge("/users/{user_id}/badges");
        let e = CativaClient::builder(SecretString::from("k"))
            .preview_paths(p)
            .build()
            .unwrap_err();
        assert!(matches!(e, Error::Config(m) if m.contains("{badge_id}")));
        let p = PreviewPaths::default().with_create_user("users");
        assert!(
            CativaClient::builder(SecretString::from("k"))
                .preview_paths(p)
                .build()
                .is_err()
        );
    }

    #[test]
    fn debug_hides_the_key() {
        let b = CativaClient::builder(SecretString::from("cativa-secret-key-123"));
        assert!(!format!("{b:?}").contains("secret-key"));
        let c = b.base_url("http://127.0.0.1:1").build().unwrap();
        assert!(!format!("{c:?}").contains("secret-key"));
    }
}
