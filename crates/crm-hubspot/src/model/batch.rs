//! Batch request and response bodies (`/batch/read|create|update|upsert|archive`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::notes::Association;
use super::object::HubSpotObject;
use crate::api_error::ErrorBody;

/// HubSpot's limit on inputs per batch request.
pub const MAX_BATCH_INPUTS: usize = 100;

/// An id to read or archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct IdInput {
    /// Record id, or the value of `idProperty`.
    pub id: String,
}

impl IdInput {
    /// An input.
    pub fn new(id: impl Into<String>) -> Self {
        Self { id: id.into() }
    }
}

/// `POST …/batch/read`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct BatchReadRequest {
    /// Properties to return.
    pub properties: Vec<String>,
    /// Read by this unique property (e.g. `email`); omit for record ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_property: Option<String>,
    /// The ids.
    pub inputs: Vec<IdInput>,
}

/// One input of `…/batch/create`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct CreateInput {
    /// Properties.
    pub properties: BTreeMap<String, String>,
    /// Associations to create with the record.
    #[serde(default)]
    pub associations: Vec<Association>,
    /// Matches errors to inputs in a 207 response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_write_trace_id: Option<String>,
}

impl CreateInput {
    /// An input with these properties.
    pub fn new(properties: BTreeMap<String, String>) -> Self {
        Self {
            properties,
            associations: Vec::new(),
            object_write_trace_id: None,
        }
    }

    /// Sets the trace id that matches 207 errors to this input (builder style).
    #[must_use]
    pub fn with_trace_id(mut self, id: impl Into<String>) -> Self {
        self.object_write_trace_id = Some(id.into());
        self
    }

    /// Adds an association (builder style).
    #[must_use]
    pub fn with_association(mut self, association: Association) -> Self {
        self.associations.push(association);
        self
    }
}

/// One input of `…/batch/update` or `…/batch/upsert`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct UpdateInput {
    /// Record id, or the value of `idProperty`.
    pub id: String,
    /// Address by this unique property (`email`, `cativa_member_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_property: Option<String>,
    /// Properties to set (`""` clears).
    pub properties: BTreeMap<String, String>,
    /// Matches errors to inputs in a 207 response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_write_trace_id: Option<String>,
}

impl UpdateInput {
    /// An input for record `id` (or the value of `idProperty`, see [`UpdateInput::by`]).
    pub fn new(id: impl Into<String>, properties: BTreeMap<String, String>) -> Self {
        Self {
            id: id.into(),
            id_property: None,
            properties,
            object_write_trace_id: None,
        }
    }

    /// Addresses the record by this unique property (builder style).
    #[must_use]
    pub fn by(mut self, id_property: impl Into<String>) -> Self {
        self.id_property = Some(id_property.into());
        self
    }

    /// Sets the trace id that matches 207 errors to this input (builder style).
    #[must_use]
    pub fn with_trace_id(mut self, id: impl Into<String>) -> Self {
        self.object_write_trace_id = Some(id.into());
        self
    }
}

/// `{"inputs": [...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Inputs<T> {
    /// The inputs (at most 100).
    pub inputs: Vec<T>,
}

/// A batch response (200, 201 or 207 multi-status).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct BatchResponse {
    /// `COMPLETE`, `PENDING`, `PROCESSING` or `CANCELED`.
    #[serde(default)]
    pub status: Option<String>,
    /// The records written or read.
    #[serde(default)]
    pub results: Vec<HubSpotObject>,
    /// Number of errors (207).
    #[serde(default)]
    pub num_errors: Option<u32>,
    /// Per-input errors (207); `context.objectWriteTraceId` or `context.ids` name the inputs.
    #[serde(default)]
    pub errors: Vec<ErrorBody>,
}
