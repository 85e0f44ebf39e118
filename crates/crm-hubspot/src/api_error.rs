//! HubSpot error bodies, decoded into what a caller can act on ([`Problem`]).
//!
//! HubSpot answers errors with `{"status":"error","message","correlationId","category",
//! "errors":[{"code","message","context"}],"context"}`; rate limits add `policyName`. Many
//! details (the existing id of a duplicate, the options an enumeration allows) are only in
//! the message text, so they are parsed out of it here, leniently: every field is optional.

use std::collections::BTreeMap;
use std::time::Duration;

use http::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How long to wait after a `TEN_SECONDLY_ROLLING` 429 when no interval header says.
pub const TEN_SECONDLY_WINDOW: Duration = Duration::from_secs(10);
/// How long to wait after a secondly (search) 429.
pub const SECONDLY_WINDOW: Duration = Duration::from_secs(1);
/// HubSpot asks for at least this delay after a 423 Locked.
pub const LOCKED_DELAY: Duration = Duration::from_secs(2);

/// The raw error body. Every field is optional: HubSpot's docs say to treat them so.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[non_exhaustive]
pub struct ErrorBody {
    /// Usually `"error"`.
    pub status: Option<String>,
    /// Human-readable message.
    pub message: Option<String>,
    /// Quote it to HubSpot support.
    pub correlation_id: Option<String>,
    /// e.g. `VALIDATION_ERROR`, `CONFLICT`, `MISSING_SCOPES`, `RATE_LIMITS`.
    pub category: Option<String>,
    /// Optional sub-category (a string or an object).
    pub sub_category: Option<Value>,
    /// Detailed errors.
    pub errors: Vec<ErrorDetail>,
    /// Context: name -> values (e.g. `objectWriteTraceId`).
    pub context: BTreeMap<String, Value>,
    /// Links (e.g. `scopes`).
    pub links: BTreeMap<String, Value>,
    /// Rate-limit policy on 429s (`TEN_SECONDLY_ROLLING`, `DAILY`, ...).
    pub policy_name: Option<String>,
    /// `RATE_LIMIT` on 429s.
    pub error_type: Option<String>,
    /// The rate-limit group.
    pub group_name: Option<String>,
}

/// One entry of `errors[]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[non_exhaustive]
pub struct ErrorDetail {
    /// Message.
    pub message: Option<String>,
    /// Code, e.g. `PROPERTY_DOESNT_EXIST`.
    pub code: Option<String>,
    /// Where (field name).
    #[serde(rename = "in")]
    pub in_: Option<String>,
    /// Optional sub-category.
    pub sub_category: Option<Value>,
    /// Context: name -> values (e.g. `propertyName`, `requiredGranularScopes`).
    pub context: BTreeMap<String, Value>,
}

/// The rate-limit policy a 429 names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum RateLimitPolicy {
    /// The burst window (100 or 190 per 10 s): wait for the window to roll.
    TenSecondlyRolling,
    /// The per-second limit (search: 5/s): wait one second.
    Secondly,
    /// The account's daily quota: stop until it resets (midnight in the account's time zone).
    Daily,
    /// Another policy name.
    Other(String),
}

/// What went wrong, in terms a caller can act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Problem {
    /// 409 on create: a contact with this email exists. Link to `existing_id`.
    DuplicateContact {
        /// The contact that holds the email.
        existing_id: String,
    },
    /// 400 on update: another record already holds this unique value (email or a unique
    /// property). The second id of HubSpot's message is the holder.
    ValueAlreadyHeld {
        /// The record the write targeted.
        record_id: Option<String>,
        /// The record that already has the value.
        existing_id: String,
        /// The property (`email` usually).
        property: Option<String>,
    },
    /// 400 `PROPERTY_DOESNT_EXIST`: create the properties or fix the mapping.
    UnknownProperty {
        /// The properties HubSpot named.
        names: Vec<String>,
    },
    /// 400: a value is not one of the enumeration's options.
    InvalidOption {
        /// The property, when named.
        property: Option<String>,
        /// The rejected value.
        value: Option<String>,
        /// The options allowed.
        allowed: Vec<String>,
    },
    /// Another validation error.
    Validation,
    /// 403 `MISSING_SCOPES`: grant these scopes to the app.
    MissingScopes {
        /// Scopes HubSpot asked for.
        required: Vec<String>,
    },
    /// 401: the token is missing, invalid or expired.
    InvalidAuthentication,
    /// 403 without missing scopes.
    Forbidden,
    /// 404 `OBJECT_NOT_FOUND`.
    NotFound,
    /// Other 409.
    Conflict,
    /// 423 Locked: too much volume too fast; wait at least 2 s.
    Locked,
    /// 429 under a burst or secondly policy.
    RateLimited {
        /// The policy named.
        policy: RateLimitPolicy,
    },
    /// 429 `DAILY`: the daily quota is spent. Stop the run; it resets at midnight in the
    /// account's time zone.
    DailyLimit,
    /// 5xx.
    Server,
    /// Anything else.
    Other,
}

impl Problem {
    /// What to do about it.
    pub fn advice(&self) -> &'static str {
        match self {
            Self::DuplicateContact { .. } => {
                "a contact with this email exists: link to the existing id instead of creating"
            }
            Self::ValueAlreadyHeld { .. } => {
                "another record already holds this unique value: link to it or clear the value there"
            }
            Self::UnknownProperty { .. } => {
                "the property does not exist in this account: create it or fix the field mapping"
            }
            Self::InvalidOption { .. } => {
                "the value is not an option of the property: add the option in HubSpot or map the value"
            }
            Self::Validation => {
                "HubSpot rejected the values: fix the record; retrying will not help"
            }
            Self::MissingScopes { .. } => {
                "grant the listed scopes to the app, then reinstall or regenerate the token"
            }
            Self::InvalidAuthentication => {
                "the token is missing, invalid or expired: check the private-app token or the OAuth refresh token"
            }
            Self::Forbidden => {
                "the token may not do this: check the app's scopes and the account's permissions"
            }
            Self::NotFound => "the record does not exist (deleted or merged): re-read it by email",
            Self::Conflict => "the request conflicts with the record's state: re-read it and retry",
            Self::Locked => "too much volume too fast: wait at least 2 seconds between requests",
            Self::RateLimited { .. } => {
                "the rate limit was reached: wait for the window, or lower the client's tier"
            }
            Self::DailyLimit => "the daily API quota is spent: stop and run again after the reset",
            Self::Server => "HubSpot failed on its side: retry later",
            Self::Other => "see HubSpot's message and correlation id",
        }
    }
}

/// A decoded HubSpot error response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ApiError {
    /// The HTTP status.
    pub status: u16,
    /// The classification.
    pub problem: Problem,
    /// How long to wait before retrying (rate limits, 423), when known.
    pub retry_after: Option<Duration>,
    /// The body as sent.
    pub body: ErrorBody,
}

impl ApiError {
    /// The message (or a placeholder when HubSpot sent none).
    pub fn message(&self) -> &str {
        self.body.message.as_deref().unwrap_or("(no message)")
    }

    /// HubSpot's correlation id.
    pub fn correlation_id(&self) -> Option<&str> {
        self.body.correlation_id.as_deref()
    }

    /// The most specific code: the first `errors[].code`, else the policy name, else the
    /// category.
    pub fn code(&self) -> Option<&str> {
        self.body
            .errors
            .iter()
            .find_map(|e| e.code.as_deref())
            .or(self.body.policy_name.as_deref())
            .or(self.body.category.as_deref())
    }

    /// The `objectWriteTraceId`s this error applies to (batch multi-status).
    pub fn trace_ids(&self) -> Vec<String> {
        strings(self.body.context.get("objectWriteTraceId"))
    }

    /// Whether trying later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.problem,
            Problem::RateLimited { .. } | Problem::Locked | Problem::Server
        )
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HubSpot HTTP {}", self.status)?;
        if let Some(c) = &self.body.category {
            write!(f, " {c}")?;
        }
        write!(f, ": {}", self.message())?;
        if let Some(id) = self.correlation_id() {
            write!(f, " (correlation id {id})")?;
        }
        write!(f, ": {}", self.problem.advice())
    }
}

impl std::error::Error for ApiError {}

fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_owned))
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// Parses `Existing ID: 512159482605` out of a 409 message.
pub fn parse_existing_id(message: &str) -> Option<String> {
    let rest = &message[message.find("Existing ID:")? + "Existing ID:".len()..];
    let digits: String = rest
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    (!digits.is_empty()).then_some(digits)
}

/// Parses HubSpot's unique-value collision message:
/// `Cannot set PropertyValueCoordinates{…, propertyName=email, value=x@y.com} on 552148386511.
/// 552239500007 already has that value.` Returns (target, holder, property).
pub fn parse_value_collision(message: &str) -> Option<(Option<String>, String, Option<String>)> {
    let end = message.find(" already has that value")?;
    let before = &message[..end];
    let holder: String = before
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    if holder.is_empty() {
        return None;
    }
    let target = message.find("} on ").map(|i| {
        message[i + 5..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
    });
    let property = message.find("propertyName=").map(|i| {
        message[i + "propertyName=".len()..]
            .chars()
            .take_while(|c| *c != ',' && *c != '}')
            .collect::<String>()
    });
    Some((target.filter(|t| !t.is_empty()), holder, property))
}

/// Parses `X was not one of the allowed options: [A, B, C]`. Returns (value, options).
pub fn parse_invalid_option(message: &str) -> Option<(Option<String>, Vec<String>)> {
    let marker = " was not one of the allowed options: [";
    let i = message.find(marker)?;
    let value = message[..i]
        .rsplit(['"', '[', ':', '{'])
        .next()
        .map(|v| v.trim().to_owned());
    let rest = &message[i + marker.len()..];
    let list = &rest[..rest.find(']')?];
    let allowed = list
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    Some((value.filter(|v| !v.is_empty()), allowed))
}

/// The per-property entries embedded in "Property values were not valid: [json]".
fn embedded_validation(message: &str) -> Vec<Value> {
    let Some(i) = message.find("not valid: [") else {
        return Vec::new();
    };
    serde_json::from_str::<Vec<Value>>(&message[i + "not valid: ".len()..]).unwrap_or_default()
}

/// Decodes an error response from its status, headers and body. Never fails: an unreadable
/// body gives an [`ApiError`] classified by status alone.
pub fn decode_error(status: u16, headers: &HeaderMap, body: &[u8]) -> ApiError {
    let body: ErrorBody = serde_json::from_slice(body).unwrap_or_else(|_| ErrorBody {
        message: Some(String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned()),
        ..ErrorBody::default()
    });
    let message = body.message.clone().unwrap_or_default();
    let category = body.category.as_deref().unwrap_or("");
    let (problem, retry_after) = match status {
        429 => rate_limit_problem(&body, &message, headers),
        423 => (Problem::Locked, Some(LOCKED_DELAY)),
        409 => match parse_existing_id(&message) {
            Some(existing_id) => (Problem::DuplicateContact { existing_id }, None),
            None => (Problem::Conflict, None),
        },
        401 => (Problem::InvalidAuthentication, None),
        403 if category == "MISSING_SCOPES" => {
            let mut required: Vec<String> = body
                .errors
                .iter()
                .flat_map(|e| {
                    strings(e.context.get("requiredGranularScopes"))
                        .into_iter()
                        .chain(strings(e.context.get("requiredScopes")))
                })
                .collect();
            required.dedup();
            (Problem::MissingScopes { required }, None)
        }
        403 => (Problem::Forbidden, None),
        404 => (Problem::NotFound, None),
        500..=599 => (Problem::Server, None),
        _ => (validation_problem(&body, &message), None),
    };
    ApiError {
        status,
        problem,
        retry_after,
        body,
    }
}

/// Classifies a validation error (400 and other 4xx) or a multi-status error entry.
pub fn validation_problem(body: &ErrorBody, message: &str) -> Problem {
    if let Some((record_id, existing_id, property)) = parse_value_collision(message) {
        return Problem::ValueAlreadyHeld {
            record_id,
            existing_id,
            property,
        };
    }
    let mut unknown: Vec<String> = Vec::new();
    let mut invalid_option: Option<Problem> = None;
    for e in &body.errors {
        match e.code.as_deref() {
            Some("PROPERTY_DOESNT_EXIST") => {
                let names = strings(e.context.get("propertyName"));
                if names.is_empty() {
                    unknown.extend(e.message.as_deref().and_then(quoted_name));
                } else {
                    unknown.extend(names);
                }
            }
            Some("INVALID_OPTION") if invalid_option.is_none() => {
                let (value, allowed) = e
                    .message
                    .as_deref()
                    .and_then(parse_invalid_option)
                    .unwrap_or((None, Vec::new()));
                let property = strings(e.context.get("propertyName")).into_iter().next();
                invalid_option = Some(Problem::InvalidOption {
                    property,
                    value,
                    allowed,
                });
            }
            _ => {}
        }
    }
    for entry in embedded_validation(message) {
        let name = entry.get("name").and_then(Value::as_str).map(str::to_owned);
        let code = entry.get("error").and_then(Value::as_str).unwrap_or("");
        let text = entry.get("message").and_then(Value::as_str).unwrap_or("");
        if code == "PROPERTY_DOESNT_EXIST" {
            unknown.extend(name);
        } else if (code == "INVALID_OPTION" || text.contains("was not one of the allowed options"))
            && invalid_option.is_none()
        {
            let (value, allowed) = parse_invalid_option(text).unwrap_or((None, Vec::new()));
            invalid_option = Some(Problem::InvalidOption {
                property: name,
                value,
                allowed,
            });
        }
    }
    if !unknown.is_empty() {
        unknown.sort();
        unknown.dedup();
        return Problem::UnknownProperty { names: unknown };
    }
    if let Some(p) = invalid_option {
        return p;
    }
    if let Some((value, allowed)) = parse_invalid_option(message) {
        return Problem::InvalidOption {
            property: None,
            value,
            allowed,
        };
    }
    if message.contains("does not exist")
        && let Some(name) = quoted_name(message)
    {
        return Problem::UnknownProperty { names: vec![name] };
    }
    Problem::Validation
}

/// `Property "testproperty" does not exist` -> `testproperty`.
fn quoted_name(message: &str) -> Option<String> {
    let start = message.find('"')? + 1;
    let len = message[start..].find('"')?;
    Some(message[start..start + len].trim_matches('\\').to_owned()).filter(|s| !s.is_empty())
}

fn rate_limit_problem(
    body: &ErrorBody,
    message: &str,
    headers: &HeaderMap,
) -> (Problem, Option<Duration>) {
    let lower = message.to_ascii_lowercase();
    let policy = match body.policy_name.as_deref() {
        Some("TEN_SECONDLY_ROLLING") => RateLimitPolicy::TenSecondlyRolling,
        Some("DAILY") => RateLimitPolicy::Daily,
        Some("SECONDLY") => RateLimitPolicy::Secondly,
        Some(other) => RateLimitPolicy::Other(other.to_owned()),
        None if lower.contains("daily limit") => RateLimitPolicy::Daily,
        None if lower.contains("secondly limit") && !lower.contains("ten_secondly") => {
            RateLimitPolicy::Secondly
        }
        None => RateLimitPolicy::TenSecondlyRolling,
    };
    let interval = headers
        .get("x-hubspot-ratelimit-interval-milliseconds")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_millis);
    match policy {
        RateLimitPolicy::Daily => (Problem::DailyLimit, None),
        RateLimitPolicy::Secondly => (Problem::RateLimited { policy }, Some(SECONDLY_WINDOW)),
        RateLimitPolicy::TenSecondlyRolling | RateLimitPolicy::Other(_) => (
            Problem::RateLimited { policy },
            Some(interval.unwrap_or(TEN_SECONDLY_WINDOW)),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(status: u16, body: &str) -> ApiError {
        decode_error(status, &HeaderMap::new(), body.as_bytes())
    }

    #[test]
    fn duplicate_409_existing_id() {
        let e = decode(
            409,
            r#"{"status":"error","message":"Contact already exists. Existing ID: 512159482605","correlationId":"c-1","category":"CONFLICT"}"#,
        );
        assert_eq!(
            e.problem,
            Problem::DuplicateContact {
                existing_id: "512159482605".into()
            }
        );
        assert_eq!(e.correlation_id(), Some("c-1"));
        assert_eq!(e.code(), Some("CONFLICT"));
        assert!(!e.is_retryable());
    }

    #[test]
    fn email_collision_400_second_id_is_holder() {
        let e = decode(
            400,
            r#"{"status":"error","category":"VALIDATION_ERROR","correlationId":"c","message":"Cannot set PropertyValueCoordinates{portalId=123, objectTypeId=OBJECT_TYPE_ID{0-1}, propertyName=email, value=x@y.com} on 552148386511. 552239500007 already has that value."}"#,
        );
        assert_eq!(
            e.problem,
            Problem::ValueAlreadyHeld {
                record_id: Some("552148386511".into()),
                existing_id: "552239500007".into(),
                property: Some("email".into())
            }
        );
    }

    #[test]
    fn property_doesnt_exist_from_errors_and_embedded_message() {
        let e = decode(
            400,
            r#"{"status":"error","message":"Property values were not valid: [...]","correlationId":"8a3f","category":"VALIDATION_ERROR",
               "errors":[{"message":"Property \"testproperty\" does not exist","code":"PROPERTY_DOESNT_EXIST","context":{"propertyName":["testproperty"]}}]}"#,
        );
        assert_eq!(
            e.problem,
            Problem::UnknownProperty {
                names: vec!["testproperty".into()]
            }
        );
        assert_eq!(e.code(), Some("PROPERTY_DOESNT_EXIST"));
        let embedded = decode(
            400,
            r#"{"status":"error","category":"VALIDATION_ERROR","message":"Property values were not valid: [{\"isValid\":false,\"message\":\"Property \\\"missing\\\" does not exist\",\"error\":\"PROPERTY_DOESNT_EXIST\",\"name\":\"missing\"}]","context":{"objectWriteTraceId":["549b1c2a9351"]}}"#,
        );
        assert_eq!(
            embedded.problem,
            Problem::UnknownProperty {
                names: vec!["missing".into()]
            }
        );
        assert_eq!(embedded.trace_ids(), vec!["549b1c2a9351".to_owned()]);
    }

    #[test]
    fn invalid_enum_option() {
        let e = decode(
            400,
            r#"{"status":"error","category":"VALIDATION_ERROR","message":"Property values were not valid: [{\"isValid\":false,\"message\":\"gold was not one of the allowed options: [vip, speaker, beta]\",\"error\":\"INVALID_OPTION\",\"name\":\"cativa_badges\"}]"}"#,
        );
        assert_eq!(
            e.problem,
            Problem::InvalidOption {
                property: Some("cativa_badges".into()),
                value: Some("gold".into()),
                allowed: vec!["vip".into(), "speaker".into(), "beta".into()]
            }
        );
        let plain = decode(
            400,
            r#"{"message":"bronze was not one of the allowed options: [A, B]"}"#,
        );
        assert!(
            matches!(plain.problem, Problem::InvalidOption { value: Some(ref v), ref allowed, .. } if v == "bronze" && allowed.len() == 2)
        );
    }

    #[test]
    fn missing_scopes_lists_required() {
        let e = decode(
            403,
            r#"{"status":"error","message":"This app hasn't been granted all required scopes","correlationId":"x","category":"MISSING_SCOPES",
               "errors":[{"message":"One or more of the following scopes are required.","context":{"requiredGranularScopes":["crm.objects.contacts.write","crm.schemas.contacts.write"]}}],
               "links":{"scopes":"https://developers.hubspot.com/scopes"}}"#,
        );
        assert_eq!(
            e.problem,
            Problem::MissingScopes {
                required: vec![
                    "crm.objects.contacts.write".into(),
                    "crm.schemas.contacts.write".into()
                ]
            }
        );
    }

    #[test]
    fn locked_423_waits_two_seconds() {
        let e = decode(
            423,
            r#"{"status":"error","message":"Include a delay of at least 2 seconds between your API requests."}"#,
        );
        assert_eq!(e.problem, Problem::Locked);
        assert_eq!(e.retry_after, Some(Duration::from_secs(2)));
        assert!(e.is_retryable());
    }

    #[test]
    fn rate_limits_by_policy_name() {
        let ten = decode(
            429,
            r#"{"status":"error","message":"You have reached your ten_secondly_rolling limit.","errorType":"RATE_LIMIT","correlationId":"64f5","policyName":"TEN_SECONDLY_ROLLING","groupName":"publicapi:private_app-api-calls-ten-secondly:1"}"#,
        );
        assert_eq!(
            ten.problem,
            Problem::RateLimited {
                policy: RateLimitPolicy::TenSecondlyRolling
            }
        );
        assert_eq!(ten.retry_after, Some(Duration::from_secs(10)));
        let mut h = HeaderMap::new();
        h.insert(
            "X-HubSpot-RateLimit-Interval-Milliseconds",
            "7000".parse().unwrap(),
        );
        let with_header = decode_error(429, &h, br#"{"policyName":"TEN_SECONDLY_ROLLING"}"#);
        assert_eq!(with_header.retry_after, Some(Duration::from_secs(7)));
        let secondly = decode(
            429,
            r#"{"status":"error","message":"You have reached your secondly limit.","category":"RATE_LIMITS"}"#,
        );
        assert_eq!(
            secondly.problem,
            Problem::RateLimited {
                policy: RateLimitPolicy::Secondly
            }
        );
        assert_eq!(secondly.retry_after, Some(Duration::from_secs(1)));
        let daily = decode(
            429,
            r#"{"status":"error","message":"You have reached your daily limit.","policyName":"DAILY"}"#,
        );
        assert_eq!(daily.problem, Problem::DailyLimit);
        assert!(!daily.is_retryable());
    }

    #[test]
    fn auth_not_found_server_and_garbage() {
        assert_eq!(
            decode(401, r#"{"category":"INVALID_AUTHENTICATION","message":"Authentication credentials not found."}"#).problem,
            Problem::InvalidAuthentication
        );
        assert_eq!(
            decode(404, r#"{"category":"OBJECT_NOT_FOUND"}"#).problem,
            Problem::NotFound
        );
        let g = decode(502, "<html>bad gateway</html>");
        assert_eq!(g.problem, Problem::Server);
        assert!(g.message().contains("bad gateway"));
        assert_eq!(
            decode(400, r#"{"category":"VALIDATION_ERROR","message":"nope"}"#).problem,
            Problem::Validation
        );
    }
}
