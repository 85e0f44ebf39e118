//! Removing credentials from text before it reaches an error message or a log.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex_lite::Regex;

// `Bearer <token>` anywhere, and `key=value` / `"key": "value"` pairs whose key names a
// credential. A regex that fails to compile (it cannot: these are constants) makes
// `redact_secrets` drop the whole text rather than leak it.
static BEARER: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9\-._~+/=]+").ok());
static KEY_VALUE: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(
        r#"(?i)\b(access_token|refresh_token|id_token|client_secret|api_key|apikey|password|assertion|hapikey)("?\s*[:=]\s*"?)[^"&\s,;}]+"#,
    )
    .ok()
});

/// Replaces bearer tokens (`Bearer xxx` -> `Bearer [redacted]`) and credential-named
/// `key=value` pairs (`access_token`, `client_secret`, `api_key`, ...) in `text`.
///
/// ```
/// assert_eq!(
///     sync_http::redact_secrets("sent Bearer pat-na1-123 and client_secret=s3cr3t"),
///     "sent Bearer [redacted] and client_secret=[redacted]"
/// );
/// ```
pub fn redact_secrets(text: &str) -> String {
    let (Some(bearer), Some(kv)) = (BEARER.as_ref(), KEY_VALUE.as_ref()) else {
        return "[message redacted]".to_owned();
    };
    let once: Cow<'_, str> = bearer.replace_all(text, "$1$2[redacted]");
    kv.replace_all(&once, "$1$2[redacted]").into_owned()
}

#[cfg(test)]
mod tests {
    use super::redact_secrets;

    #[test]
    fn redacts_bearer_tokens_in_any_case() {
        assert_eq!(
            redact_secrets("Authorization: Bearer abc.DEF_123-x=="),
            "Authorization: Bearer [redacted]"
        );
        assert_eq!(
            redact_secrets("bearer xyz and BEARER qq"),
            "bearer [redacted] and BEARER [redacted]"
        );
        assert_eq!(redact_secrets("Basic dXNlcjpwYXNz"), "Basic [redacted]");
    }

    #[test]
    fn redacts_credential_pairs() {
        assert_eq!(
            redact_secrets(r#"{"access_token":"00Dxx!AQ4","instance_url":"https://x"}"#),
            r#"{"access_token":"[redacted]","instance_url":"https://x"}"#
        );
        assert_eq!(
            redact_secrets("a=1&client_secret=zzz&b=2"),
            "a=1&client_secret=[redacted]&b=2"
        );
        assert_eq!(
            redact_secrets("refresh_token: rt-1"),
            "refresh_token: [redacted]"
        );
    }

    #[test]
    fn leaves_ordinary_text_alone() {
        let text = "Property \"email\" is not valid: value x@y.com";
        assert_eq!(redact_secrets(text), text);
    }
}
