//! HubSpot's error bodies (its documented error response format): `status`, `message`,
//! `correlationId`, `category`, optional `errors[]` and `context`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::ratelimit::LimitKind;

/// One invalid property value, as HubSpot lists them inside "Property values were not valid".
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PropertyError {
    pub(crate) name: String,
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

impl PropertyError {
    pub(crate) fn doesnt_exist(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            code: "PROPERTY_DOESNT_EXIST",
            message: format!("Property \"{name}\" does not exist"),
        }
    }

    pub(crate) fn read_only(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            code: "READ_ONLY_VALUE",
            message: format!("{name} is a read only property; its value cannot be set."),
        }
    }

    pub(crate) fn invalid_option(name: &str, value: &str, allowed: &[String]) -> Self {
        Self {
            name: name.to_owned(),
            code: "INVALID_OPTION",
            message: format!(
                "{value} was not one of the allowed options: [{}]",
                allowed.join(", ")
            ),
        }
    }

    pub(crate) fn invalid(name: &str, code: &'static str, message: String) -> Self {
        Self {
            name: name.to_owned(),
            code,
            message,
        }
    }
}

/// A HubSpot API error ready to render.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) category: &'static str,
    pub(crate) message: String,
    pub(crate) errors: Vec<Value>,
    pub(crate) context: Option<Value>,
    pub(crate) sub_category: Option<&'static str>,
}

impl ApiError {
    pub(crate) fn new(
        status: StatusCode,
        category: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            category,
            message: message.into(),
            errors: Vec::new(),
            context: None,
            sub_category: None,
        }
    }

    pub(crate) fn validation(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", message)
    }

    pub(crate) fn not_found(id: &str) -> Self {
        let mut e = Self::new(
            StatusCode::NOT_FOUND,
            "OBJECT_NOT_FOUND",
            "resource not found",
        );
        e.context = Some(json!({ "id": [id] }));
        e
    }

    /// 403 `MISSING_SCOPES`, naming the scope required.
    pub(crate) fn missing_scope(scope: &str) -> Self {
        let mut e = Self::new(
            StatusCode::FORBIDDEN,
            "MISSING_SCOPES",
            "This app hasn't been granted all required scopes to make this call. Read more about required scopes here: https://developers.hubspot.com/scopes.",
        );
        e.errors = vec![json!({
            "message": "One or more of the following scopes are required.",
            "context": { "requiredGranularScopes": [scope] }
        })];
        e
    }

    pub(crate) fn duplicate_contact(existing: u64) -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "CONFLICT",
            format!("Contact already exists. Existing ID: {existing}"),
        )
    }

    /// `Cannot set PropertyValueCoordinates{...} on A. B already has that value.`
    pub(crate) fn unique_collision(
        portal_id: u64,
        property: &str,
        value: &str,
        target: Option<u64>,
        holder: u64,
    ) -> Self {
        let on = target.map_or_else(String::new, |t| format!(" on {t}"));
        Self::validation(format!(
            "Cannot set PropertyValueCoordinates{{portalId={portal_id}, objectTypeId=OBJECT_TYPE_ID{{0-1}}, propertyName={property}, value={value}}}{on}. {holder} already has that value."
        ))
    }

    pub(crate) fn invalid_properties(errs: &[PropertyError]) -> Self {
        let details: Vec<Value> = errs
            .iter()
            .map(|e| {
                json!({"isValid": false, "message": e.message, "error": e.code, "name": e.name,
                       "localizedErrorMessage": e.message})
            })
            .collect();
        let mut err = Self::validation(format!(
            "Property values were not valid: {}",
            Value::Array(details)
        ));
        err.errors = errs
            .iter()
            .map(|e| json!({"message": e.message, "code": e.code, "context": {"propertyName": [e.name]}}))
            .collect();
        err
    }

    pub(crate) fn body(&self, correlation_id: &str) -> Value {
        let mut body = json!({
            "status": "error",
            "message": self.message,
            "correlationId": correlation_id,
            "category": self.category,
        });
        if let Some(sub) = self.sub_category {
            body["subCategory"] = json!(sub);
        }
        if !self.errors.is_empty() {
            body["errors"] = Value::Array(self.errors.clone());
        }
        if let Some(ctx) = &self.context {
            body["context"] = ctx.clone();
        }
        body
    }

    /// The element HubSpot puts in a 207 response's `errors` for one input.
    pub(crate) fn batch_entry(&self, context: Value) -> Value {
        let mut v = json!({
            "status": "error",
            "category": self.category,
            "message": self.message,
            "context": context,
        });
        if !self.errors.is_empty() {
            v["errors"] = Value::Array(self.errors.clone());
        }
        v
    }

    pub(crate) fn into_response_with(self, correlation_id: &str) -> Response {
        let mut resp = (self.status, axum::Json(self.body(correlation_id))).into_response();
        if let Ok(v) = correlation_id.parse() {
            resp.headers_mut().insert("x-hubspot-correlation-id", v);
        }
        resp
    }
}

pub(crate) fn unauthorized(correlation_id: &str) -> Response {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "INVALID_AUTHENTICATION",
        "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
    )
    .into_response_with(correlation_id)
}

pub(crate) fn expired(correlation_id: &str, ago_secs: u64) -> Response {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "EXPIRED_AUTHENTICATION",
        format!("The OAuth token used to make this call expired {ago_secs} second(s) ago."),
    )
    .into_response_with(correlation_id)
}

/// The 429 bodies of §1.8, by which limit was hit.
pub(crate) fn rate_limited(kind: LimitKind, correlation_id: &str) -> Response {
    let body = match kind {
        LimitKind::Rolling { .. } => json!({
            "status": "error",
            "message": "You have reached your ten_secondly_rolling limit.",
            "errorType": "RATE_LIMIT",
            "correlationId": correlation_id,
            "policyName": "TEN_SECONDLY_ROLLING",
            "groupName": "publicapi:private_app-api-calls-ten-secondly:sandbox",
        }),
        LimitKind::Search { .. } => json!({
            "status": "error",
            "message": "You have reached your secondly limit.",
            "errorType": "RATE_LIMIT",
            "correlationId": correlation_id,
            "category": "RATE_LIMITS",
        }),
        LimitKind::Daily => json!({
            "status": "error",
            "message": "You have reached your daily limit.",
            "errorType": "RATE_LIMIT",
            "correlationId": correlation_id,
            "policyName": "DAILY",
            "groupName": "publicapi:private_app-api-calls-daily:sandbox",
        }),
    };
    (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response()
}
