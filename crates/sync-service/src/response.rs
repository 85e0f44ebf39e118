//! Every answer of the service is JSON: `{"status", "request_id"}` for a delivery taken,
//! `{"error": code, "message": text safe to show, "request_id"}` for anything else. Internal
//! detail (SQL, paths, upstream error text) goes to the log under the same request id, never
//! into a response.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// The header carrying the request id, in every response.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The id of one request, in its extensions and its response's `x-request-id` header. It is
/// generated here (a client-supplied id is never trusted into logs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

impl RequestId {
    fn generate() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        // A random process prefix and a counter: unique per process, cheap, and sortable
        // within one instance's logs.
        static PREFIX: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
        let prefix = *PREFIX.get_or_init(|| sync_http::random::u64() as u32);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        Self(format!("{prefix:08x}-{n:012x}"))
    }
}

/// An error answer: the status, a stable code, a message safe to show.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) message: String,
    pub(crate) retry_after: Option<u64>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub(crate) fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    pub(crate) fn into_response(self, id: &RequestId) -> Response {
        let body = json!({ "error": self.code, "message": self.message, "request_id": id.0 });
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// A success answer: `{"status": status, "request_id"}`.
pub(crate) fn status(code: StatusCode, status: &str, id: &RequestId) -> Response {
    (
        code,
        axum::Json(json!({ "status": status, "request_id": id.0 })),
    )
        .into_response()
}

/// The code and message for an error status produced without a JSON body (by a layer or
/// axum itself: unknown route, wrong method, limits, timeouts).
fn describe(status: StatusCode) -> (&'static str, &'static str) {
    match status {
        StatusCode::NOT_FOUND => ("not_found", "no route for this path"),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "this route does not accept this method",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => ("body_too_large", "the body exceeds the size limit"),
        StatusCode::REQUEST_TIMEOUT => ("request_timeout", "the request took too long"),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => {
            ("headers_too_large", "the request headers exceed the limit")
        }
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("unsupported_media_type", "unsupported body type"),
        StatusCode::SERVICE_UNAVAILABLE => ("unavailable", "the service is busy; retry later"),
        s if s.is_server_error() => ("internal", "the request failed; retry later"),
        _ => ("bad_request", "the request is malformed"),
    }
}

/// Middleware: gives each request an id, puts it in the response's `x-request-id`, and turns
/// any error answer without a JSON body into the JSON error shape.
pub(crate) async fn request_id_and_json_errors(mut request: Request, next: Next) -> Response {
    let id = RequestId::generate();
    request.extensions_mut().insert(id.clone());
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        // The status page's own HTML answers (its sign-in form on 401) are kept as they are.
        .is_some_and(|v| {
            v.as_bytes().starts_with(b"application/json") || v.as_bytes().starts_with(b"text/html")
        });
    let mut response = if (status.is_client_error() || status.is_server_error()) && !is_json {
        let (code, message) = describe(status);
        tracing::info!(request_id = %id.0, %method, %path, %status, code, "request refused");
        let retry = response.headers().get(header::RETRY_AFTER).cloned();
        let mut out = ApiError::new(status, code, message).into_response(&id);
        if let Some(retry) = retry {
            out.headers_mut().insert(header::RETRY_AFTER, retry);
        }
        out
    } else {
        response
    };
    if let Ok(value) = HeaderValue::from_str(&id.0) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}

/// Middleware: refuses requests whose headers are too many or too large with a JSON 431
/// (hyper's own, larger limit answers without a body; this one is reached first).
pub(crate) async fn header_limits(
    axum::extract::State(limits): axum::extract::State<(usize, usize)>,
    request: Request,
    next: Next,
) -> Response {
    let (max_headers, max_bytes) = limits;
    let headers = request.headers();
    let bytes: usize = headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if headers.len() > max_headers || bytes > max_bytes {
        let id = request
            .extensions()
            .get::<RequestId>()
            .cloned()
            .unwrap_or_else(RequestId::generate);
        return ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            format!(
                "the request has {} header fields totalling {bytes} bytes; the limits are {max_headers} fields and {max_bytes} bytes",
                headers.len()
            ),
        )
        .into_response(&id);
    }
    next.run(request).await
}
