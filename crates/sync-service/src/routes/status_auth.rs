//! Who may read the status and act on failed work: a bearer token compared in constant time,
//! or (for the status page in a browser, which cannot send a bearer header when it
//! navigates) a session cookie set by `POST /status/login`. The cookie holds an HMAC-SHA256
//! of a fixed label under the token, never the token itself. A cookie-authenticated `POST`
//! from another site is refused (CSRF), on top of the cookie's `SameSite=Strict`.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::response::{ApiError, RequestId};
use crate::service::Shared;

/// The session cookie's name.
pub(crate) const COOKIE: &str = "cativa_status";

/// What the session cookie's value is the HMAC of: fixed, so the cookie proves knowledge of
/// the token without carrying it.
const SESSION_LABEL: &[u8] = b"cativa-crm-sync status page session v1";

/// The status routes' credentials: the token's digest (compared in constant time, whatever
/// the length given) and the session cookie's expected value.
pub(crate) struct StatusAuth {
    token_digest: [u8; 32],
    session: String,
}

impl StatusAuth {
    /// The credentials of `token`; `None` for an empty token (the routes stay unmounted).
    pub(crate) fn new(token: &SecretString) -> Option<Self> {
        let token = token.expose_secret();
        if token.trim().is_empty() {
            tracing::warn!("the status token is empty: the status routes are not mounted");
            return None;
        }
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(token.as_bytes()).ok()?;
        mac.update(SESSION_LABEL);
        Some(Self {
            token_digest: Sha256::digest(token.as_bytes()).into(),
            session: hex::encode(mac.finalize().into_bytes()),
        })
    }

    /// Whether `given` is the token (digests compared in constant time).
    pub(crate) fn token_ok(&self, given: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(given.as_bytes()).into();
        digest.ct_eq(&self.token_digest).into()
    }

    fn session_ok(&self, given: &str) -> bool {
        given.as_bytes().ct_eq(self.session.as_bytes()).into()
    }

    /// The session cookie's value.
    pub(crate) fn session(&self) -> &str {
        &self.session
    }
}

/// How a request proved it may use the status routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Caller {
    /// `Authorization: Bearer <token>`.
    Bearer,
    /// The status page's session cookie.
    Session,
}

impl Caller {
    /// Who an operator action is audited under when the request names nobody.
    pub(crate) fn default_actor(self) -> &'static str {
        match self {
            Caller::Bearer => "status api",
            Caller::Session => "status page",
        }
    }
}

/// The caller of a request, if its credentials are right.
pub(crate) fn caller(auth: &StatusAuth, headers: &HeaderMap) -> Option<Caller> {
    if let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let (scheme, token) = value.trim().split_once(' ')?;
        return (scheme.eq_ignore_ascii_case("bearer") && auth.token_ok(token.trim()))
            .then_some(Caller::Bearer);
    }
    let cookies = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok());
    for pair in cookies.flat_map(|c| c.split(';')) {
        if let Some((name, value)) = pair.trim().split_once('=')
            && name == COOKIE
            && auth.session_ok(value)
        {
            return Some(Caller::Session);
        }
    }
    None
}

/// Whether the request comes from another site: its `Origin` (or, without one,
/// `Sec-Fetch-Site`) names a different host than the one it was sent to. A request with
/// neither header (not a browser's form post) is not refused here.
pub(crate) fn cross_site(headers: &HeaderMap) -> bool {
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
        let origin_host = origin
            .split_once("://")
            .map(|(_, rest)| rest.trim_end_matches('/'));
        return match (origin_host, host) {
            (Some(o), Some(h)) => !o.eq_ignore_ascii_case(h),
            // `Origin: null` (a sandboxed or privacy-redirected page), or no Host.
            _ => true,
        };
    }
    headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("cross-site"))
}

/// The answer without valid credentials: 401 with `WWW-Authenticate: Bearer` and the usual
/// JSON error, naming no tenant.
pub(crate) fn unauthorized(id: &RequestId) -> Response {
    let mut response = ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "the status routes need Authorization: Bearer <STATUS_TOKEN>",
    )
    .into_response(id);
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"status\""),
    );
    response
}

/// The refusal of a cross-site cookie-authenticated `POST`.
pub(crate) fn cross_site_refused(id: &RequestId) -> Response {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "cross_site",
        "a signed-in status page action must come from the status page itself",
    )
    .into_response(id)
}

/// Middleware of the protected status routes: lets a request with valid credentials through
/// (its [`Caller`] in its extensions), refuses the rest with 401, and refuses a
/// cookie-authenticated `POST` from another site with 403.
pub(crate) async fn require(
    State(shared): State<Arc<Shared>>,
    Extension(id): Extension<RequestId>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(auth) = &shared.status_auth else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Some(who) = caller(auth, request.headers()) else {
        return unauthorized(&id);
    };
    if who == Caller::Session
        && request.method() == axum::http::Method::POST
        && cross_site(request.headers())
    {
        return cross_site_refused(&id);
    }
    request.extensions_mut().insert(who);
    next.run(request).await
}

/// The `Set-Cookie` value of a session: only sent back to the status routes, never readable
/// by scripts, never sent along from another site.
pub(crate) fn session_cookie(auth: &StatusAuth, path: &str, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{COOKIE}={}; Path={path}; HttpOnly; SameSite=Strict{secure}",
        auth.session()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> StatusAuth {
        StatusAuth::new(&SecretString::from("s3cret-token")).unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn the_token_is_checked_and_the_cookie_never_holds_it() {
        let a = auth();
        assert!(a.token_ok("s3cret-token"));
        assert!(!a.token_ok("s3cret-toke"));
        assert!(!a.token_ok(""));
        assert!(!a.session().contains("s3cret"));
        assert_eq!(a.session().len(), 64);
        assert!(StatusAuth::new(&SecretString::from("  ")).is_none());
    }

    #[test]
    fn callers_are_told_apart() {
        let a = auth();
        let bearer = headers(&[("authorization", "Bearer s3cret-token")]);
        assert_eq!(caller(&a, &bearer), Some(Caller::Bearer));
        let wrong = headers(&[("authorization", "Bearer nope")]);
        assert_eq!(caller(&a, &wrong), None);
        let basic = headers(&[("authorization", "Basic s3cret-token")]);
        assert_eq!(caller(&a, &basic), None);
        let cookie = format!("other=1; {COOKIE}={}", a.session());
        assert_eq!(
            caller(&a, &headers(&[("cookie", &cookie)])),
            Some(Caller::Session)
        );
        let forged = format!("{COOKIE}=s3cret-token");
        assert_eq!(caller(&a, &headers(&[("cookie", &forged)])), None);
    }

    #[test]
    fn cross_site_posts_are_recognised() {
        let same = headers(&[
            ("origin", "http://127.0.0.1:8080"),
            ("host", "127.0.0.1:8080"),
        ]);
        assert!(!cross_site(&same));
        let other = headers(&[
            ("origin", "https://evil.example"),
            ("host", "127.0.0.1:8080"),
        ]);
        assert!(cross_site(&other));
        assert!(cross_site(&headers(&[("origin", "null"), ("host", "a")])));
        assert!(cross_site(&headers(&[("sec-fetch-site", "cross-site")])));
        assert!(!cross_site(&headers(&[("sec-fetch-site", "same-origin")])));
        assert!(!cross_site(&HeaderMap::new()));
    }
}
