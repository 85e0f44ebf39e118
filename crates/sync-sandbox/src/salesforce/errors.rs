//! Salesforce error shapes: REST errors are a JSON array of
//! `{"message","errorCode","fields"?}`; per-record collection errors use `statusCode`;
//! OAuth errors are `{"error","error_description"}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// One error, renderable in the REST or the per-record shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SfError {
    pub(crate) code: &'static str,
    pub(crate) message: String,
    pub(crate) fields: Vec<String>,
}

impl SfError {
    pub(crate) fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            fields: Vec::new(),
        }
    }

    pub(crate) fn with_fields(mut self, fields: Vec<String>) -> Self {
        self.fields = fields;
        self
    }

    /// The REST shape (`errorCode`).
    pub(crate) fn rest(&self) -> Value {
        let mut v = json!({"message": self.message, "errorCode": self.code});
        if !self.fields.is_empty() {
            v["fields"] = json!(self.fields);
        }
        v
    }

    /// The per-record shape of collections (`statusCode`).
    pub(crate) fn record(&self) -> Value {
        json!({"statusCode": self.code, "message": self.message, "fields": self.fields})
    }

    pub(crate) fn respond(&self, status: StatusCode) -> Response {
        (status, Json(json!([self.rest()]))).into_response()
    }
}

pub(crate) fn invalid_session() -> Response {
    SfError::new("INVALID_SESSION_ID", "Session expired or invalid")
        .respond(StatusCode::UNAUTHORIZED)
}

pub(crate) fn malformed_query(message: &str) -> Response {
    SfError::new("MALFORMED_QUERY", message).respond(StatusCode::BAD_REQUEST)
}

pub(crate) fn not_found() -> Response {
    SfError::new("NOT_FOUND", "The requested resource does not exist")
        .respond(StatusCode::NOT_FOUND)
}

pub(crate) fn oauth(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}
