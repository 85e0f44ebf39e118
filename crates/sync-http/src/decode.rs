//! Turning an error response into [`ApiErrorInfo`]: each API crate plugs in its own
//! [`ErrorDecoder`] for its error body shape; [`JsonErrorDecoder`] handles the common ones.

use std::time::Duration;

use http::{HeaderMap, StatusCode};
use serde_json::Value;

use crate::error::ErrorKind;

/// What an API said about an error.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApiErrorInfo {
    /// Human-readable message.
    pub message: Option<String>,
    /// Machine-readable code (`INVALID_SESSION_ID`, `PROPERTY_DOESNT_EXIST`).
    pub code: Option<String>,
    /// Category (`VALIDATION_ERROR`, `RATE_LIMITS`).
    pub category: Option<String>,
    /// Correlation / request id.
    pub correlation_id: Option<String>,
    /// A kind that overrides the status-based default (e.g. Salesforce 403
    /// `REQUEST_LIMIT_EXCEEDED` is `RateLimited`, a 300 multiple-match is `Conflict`).
    pub kind: Option<ErrorKind>,
    /// A retry verdict that overrides the status-based default.
    pub retryable: Option<bool>,
    /// A wait the API asked for in its body (used when no `Retry-After` header came).
    pub retry_after: Option<Duration>,
}

/// Decodes an API's error responses. Implemented for closures
/// `Fn(StatusCode, &HeaderMap, &[u8]) -> ApiErrorInfo`.
pub trait ErrorDecoder: Send + Sync {
    /// Reads what the API said about a non-2xx response.
    fn decode(&self, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> ApiErrorInfo;
}

impl<F> ErrorDecoder for F
where
    F: Fn(StatusCode, &HeaderMap, &[u8]) -> ApiErrorInfo + Send + Sync,
{
    fn decode(&self, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> ApiErrorInfo {
        self(status, headers, body)
    }
}

/// The default decoder: reads the common JSON error shapes leniently.
///
/// - objects with `message` / `error_description` / `error` / `detail` / `title`,
///   `code` / `errorCode` / `error_code` / `error` (when a code-like string),
///   `category` / `type` / `errorType`, and `correlationId` / `requestId` / `traceId`
///   (camelCase or snake_case), also nested under `error`;
/// - a JSON array of such objects (Salesforce): the first element;
/// - anything else: the body text (truncated) as the message.
///
/// Correlation ids also come from the `X-Request-Id`, `X-Correlation-Id`,
/// `X-HubSpot-Correlation-Id` and `X-Trace-Id` headers.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonErrorDecoder;

const MAX_TEXT: usize = 512;

fn str_field<'a>(v: &'a Value, names: &[&str]) -> Option<&'a str> {
    names
        .iter()
        .find_map(|n| v.get(*n).and_then(Value::as_str).filter(|s| !s.is_empty()))
}

fn truncate(s: &str) -> String {
    if s.len() <= MAX_TEXT {
        return s.to_owned();
    }
    let mut end = MAX_TEXT;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

fn looks_like_code(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-')
        && !s.contains(' ')
}

fn validation_details(errors: &Value) -> String {
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Array(items) => Some(
            items
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join("; "),
        ),
        Value::Object(_) => str_field(v, &["message", "detail"]).map(str::to_owned),
        _ => None,
    };
    match errors {
        Value::Object(map) => map
            .iter()
            .filter_map(|(field, v)| text(v).map(|t| format!("{field}: {t}")))
            .collect::<Vec<_>>()
            .join("; "),
        Value::Array(items) => items.iter().filter_map(text).collect::<Vec<_>>().join("; "),
        _ => String::new(),
    }
}

impl JsonErrorDecoder {
    fn from_object(v: &Value, info: &mut ApiErrorInfo) {
        let nested = v.get("error").filter(|e| e.is_object());
        let scopes: Vec<&Value> = nested.into_iter().chain(std::iter::once(v)).collect();
        for s in &scopes {
            if info.message.is_none() {
                info.message = str_field(
                    s,
                    &["message", "error_description", "detail", "title", "msg"],
                )
                .map(truncate);
            }
            if info.code.is_none() {
                info.code = str_field(s, &["code", "errorCode", "error_code", "subCategory"])
                    .map(str::to_owned);
            }
            if info.category.is_none() {
                info.category = str_field(s, &["category", "errorType", "type"]).map(str::to_owned);
            }
            if info.correlation_id.is_none() {
                info.correlation_id = str_field(
                    s,
                    &[
                        "correlationId",
                        "correlation_id",
                        "requestId",
                        "request_id",
                        "traceId",
                        "trace_id",
                    ],
                )
                .map(str::to_owned);
            }
            // `code` may be numeric.
            if info.code.is_none()
                && let Some(n) = s.get("code").and_then(Value::as_i64)
            {
                info.code = Some(n.to_string());
            }
        }
        // Validation details: ASP.NET problem `errors: {"Email": ["..."]}`, or a list of
        // `{message}` / strings. Appended so the message says which field is wrong.
        if let Some(details) = v
            .get("errors")
            .map(validation_details)
            .filter(|d| !d.is_empty())
        {
            let base = info.message.take().unwrap_or_default();
            let joined = if base.is_empty() {
                details
            } else {
                format!("{base} ({details})")
            };
            info.message = Some(truncate(&joined));
        }
        // OAuth style: {"error": "invalid_grant", "error_description": "..."}
        if let Some(e) = v.get("error").and_then(Value::as_str) {
            if info.code.is_none() && looks_like_code(e) {
                info.code = Some(e.to_owned());
            } else if info.message.is_none() {
                info.message = Some(truncate(e));
            }
        }
    }
}

impl ErrorDecoder for JsonErrorDecoder {
    fn decode(&self, _status: StatusCode, headers: &HeaderMap, body: &[u8]) -> ApiErrorInfo {
        let mut info = ApiErrorInfo::default();
        match serde_json::from_slice::<Value>(body) {
            Ok(v @ Value::Object(_)) => Self::from_object(&v, &mut info),
            Ok(Value::Array(items)) => {
                if let Some(first) = items.first() {
                    Self::from_object(first, &mut info);
                }
            }
            _ => {
                let text = String::from_utf8_lossy(body);
                let text = text.trim();
                if !text.is_empty() {
                    info.message = Some(truncate(text));
                }
            }
        }
        if info.correlation_id.is_none() {
            info.correlation_id = correlation_from_headers(headers);
        }
        info
    }
}

/// The first of the usual request-id headers present.
pub fn correlation_from_headers(headers: &HeaderMap) -> Option<String> {
    [
        "x-request-id",
        "x-correlation-id",
        "x-hubspot-correlation-id",
        "x-trace-id",
    ]
    .iter()
    .find_map(|n| {
        headers
            .get(*n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(body: &str) -> ApiErrorInfo {
        JsonErrorDecoder.decode(StatusCode::BAD_REQUEST, &HeaderMap::new(), body.as_bytes())
    }

    #[test]
    fn hubspot_shape() {
        let i = decode(
            r#"{"status":"error","message":"Property values were not valid","correlationId":"c-1","category":"VALIDATION_ERROR","subCategory":"x"}"#,
        );
        assert_eq!(i.message.as_deref(), Some("Property values were not valid"));
        assert_eq!(i.category.as_deref(), Some("VALIDATION_ERROR"));
        assert_eq!(i.correlation_id.as_deref(), Some("c-1"));
        assert_eq!(i.code.as_deref(), Some("x"));
    }

    #[test]
    fn salesforce_array_shape() {
        let i = decode(
            r#"[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]"#,
        );
        assert_eq!(i.message.as_deref(), Some("Session expired or invalid"));
        assert_eq!(i.code.as_deref(), Some("INVALID_SESSION_ID"));
    }

    #[test]
    fn oauth_and_nested_shapes() {
        let i = decode(r#"{"error":"invalid_grant","error_description":"expired"}"#);
        assert_eq!(i.code.as_deref(), Some("invalid_grant"));
        assert_eq!(i.message.as_deref(), Some("expired"));
        let i = decode(r#"{"error":{"code":"forbidden","message":"nope","requestId":"r-9"}}"#);
        assert_eq!(i.code.as_deref(), Some("forbidden"));
        assert_eq!(i.message.as_deref(), Some("nope"));
        assert_eq!(i.correlation_id.as_deref(), Some("r-9"));
    }

    #[test]
    fn problem_details_with_validation_errors() {
        let i = decode(
            r#"{"type":"https://httpstatuses.io/400","title":"Bad Request","status":400,"detail":"One or more validation errors occurred.","traceId":"t-1","errors":{"Email":["The Email field is not a valid e-mail address."]}}"#,
        );
        assert_eq!(
            i.message.as_deref(),
            Some(
                "One or more validation errors occurred. (Email: The Email field is not a valid e-mail address.)"
            )
        );
        assert_eq!(i.correlation_id.as_deref(), Some("t-1"));
        let i = decode(
            r#"{"message":"Invalid input","errors":[{"message":"Property \"x\" does not exist","code":"PROPERTY_DOESNT_EXIST"}]}"#,
        );
        assert_eq!(
            i.message.as_deref(),
            Some(r#"Invalid input (Property "x" does not exist)"#)
        );
    }

    #[test]
    fn text_body_and_header_correlation() {
        let mut h = HeaderMap::new();
        h.insert("x-request-id", "req-7".parse().unwrap());
        let i = JsonErrorDecoder.decode(StatusCode::BAD_GATEWAY, &h, b"<html>bad gateway</html>");
        assert_eq!(i.message.as_deref(), Some("<html>bad gateway</html>"));
        assert_eq!(i.correlation_id.as_deref(), Some("req-7"));
        let long = "é".repeat(1000);
        let i = decode(&long);
        assert!(i.message.unwrap().len() <= MAX_TEXT + 3);
    }
}
