//! Notes (activity logging) and the association shape they use.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Association type id of note -> contact.
pub const NOTE_TO_CONTACT: u32 = 202;

/// A record to associate with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AssociationTarget {
    /// Record id.
    pub id: String,
}

/// An association type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct AssociationType {
    /// `HUBSPOT_DEFINED`, `USER_DEFINED`, `INTEGRATOR_DEFINED` or `WORK`.
    pub association_category: String,
    /// e.g. 202 for note -> contact.
    pub association_type_id: u32,
}

/// An association created with a record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Association {
    /// The other record.
    pub to: AssociationTarget,
    /// The association types.
    pub types: Vec<AssociationType>,
}

impl Association {
    /// A HubSpot-defined association of type `type_id` to record `id`.
    pub fn hubspot_defined(id: impl Into<String>, type_id: u32) -> Self {
        Self {
            to: AssociationTarget { id: id.into() },
            types: vec![AssociationType {
                association_category: "HUBSPOT_DEFINED".into(),
                association_type_id: type_id,
            }],
        }
    }
}

/// `POST /crm/v3/objects/notes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct NoteCreate {
    /// `hs_timestamp` (required) and `hs_note_body` (HTML).
    pub properties: BTreeMap<String, String>,
    /// Usually one association to a contact (type 202).
    pub associations: Vec<Association>,
    /// Matches errors to inputs in a batch create.
    #[serde(
        default,
        rename = "objectWriteTraceId",
        skip_serializing_if = "Option::is_none"
    )]
    pub object_write_trace_id: Option<String>,
}

impl NoteCreate {
    /// A note on contact `contact_id` at `timestamp` (ISO 8601) with an HTML body.
    pub fn on_contact(
        contact_id: impl Into<String>,
        timestamp: impl Into<String>,
        html_body: impl Into<String>,
    ) -> Self {
        let mut properties = BTreeMap::new();
        properties.insert("hs_timestamp".to_owned(), timestamp.into());
        properties.insert("hs_note_body".to_owned(), html_body.into());
        Self {
            properties,
            associations: vec![Association::hubspot_defined(contact_id, NOTE_TO_CONTACT)],
            object_write_trace_id: None,
        }
    }
}

impl NoteCreate {
    /// Sets the batch trace id (builder style).
    #[must_use]
    pub fn with_trace_id(mut self, id: impl Into<String>) -> Self {
        self.object_write_trace_id = Some(id.into());
        self
    }
}

/// Escapes text for an HTML note body.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
