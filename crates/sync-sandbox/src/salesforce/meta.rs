//! `GET /services/data/` (API versions), `GET /services/data/{version}/limits` and
//! `GET /services/data/{version}/sobjects/{object}/describe`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::Api;
use super::auth::Session;
use super::errors::not_found;
use super::model::{FieldDef, FieldType};
use crate::lock;

/// Versions the sandbox answers for (any `vNN.N` works; these are listed).
const VERSIONS: [(&str, &str); 3] = [
    ("64.0", "Summer '25"),
    ("65.0", "Winter '26"),
    ("66.0", "Spring '26"),
];

/// `GET /services/data/`: no auth needed, no `Sforce-Limit-Info`.
pub(crate) async fn versions() -> Response {
    let list: Vec<_> = VERSIONS
        .iter()
        .map(|(v, label)| json!({"label": label, "url": format!("/services/data/v{v}"), "version": v}))
        .collect();
    Json(list).into_response()
}

/// `GET /services/data/{version}/limits`: the daily API budget.
pub(crate) async fn limits(_: Session, State(api): State<Arc<Api>>) -> Response {
    let (used, daily) = api.core.api_usage();
    let max = daily.unwrap_or(100_000);
    Json(json!({"DailyApiRequests": {"Max": max, "Remaining": max.saturating_sub(used)}}))
        .into_response()
}

/// The standard values of the picklists the sandbox's schemas hold.
fn picklist_values(field: &str, tags_field: &str) -> Option<Vec<&'static str>> {
    match field {
        "LeadSource" => Some(vec![
            "Web",
            "Phone Inquiry",
            "Partner Referral",
            "Purchased List",
            "Other",
        ]),
        "Status" => Some(vec![
            "Open - Not Contacted",
            "Working - Contacted",
            "Closed - Converted",
            "Closed - Not Converted",
        ]),
        _ if field == tags_field => Some(crate::datagen::DEFAULT_TAGS.to_vec()),
        _ => None,
    }
}

/// The describe `type` of a field: the sandbox stores emails, phones and picklists as text,
/// so the standard names tell them apart.
fn describe_type(def: &FieldDef, picklist: bool) -> &'static str {
    match def.kind {
        FieldType::Id => "id",
        FieldType::MultiPicklist => "multipicklist",
        FieldType::Boolean => "boolean",
        FieldType::DateTime => "datetime",
        FieldType::Date => "date",
        FieldType::Reference => "reference",
        FieldType::Number => "double",
        _ if picklist => "picklist",
        _ if def.name == "Email" || def.name.ends_with("Email__c") => "email",
        _ if def.name.ends_with("Phone") => "phone",
        _ => "string",
    }
}

fn describe_field(def: &FieldDef, tags_field: &str) -> serde_json::Value {
    let values = picklist_values(&def.name, tags_field);
    let kind = describe_type(def, values.is_some());
    let picklist: Vec<_> = values
        .unwrap_or_default()
        .into_iter()
        .map(|v| json!({"active": true, "defaultValue": false, "label": v, "validFor": null, "value": v}))
        .collect();
    let writable = !def.read_only;
    json!({
        "name": def.name,
        "label": def.name.trim_end_matches("__c").replace('_', " "),
        "type": kind,
        "custom": def.name.ends_with("__c"),
        "createable": writable,
        "updateable": writable && def.name != "Id",
        "nillable": !def.required && writable,
        "unique": def.external_id,
        "externalId": def.external_id,
        "idLookup": def.id_lookup || def.external_id || def.name == "Id",
        "length": if matches!(kind, "string" | "email" | "phone" | "picklist") { 255 } else { 0 },
        "picklistValues": picklist,
    })
}

/// `GET /services/data/{version}/sobjects/{object}/describe`: the object's fields with
/// their type, picklist values and whether they can be created and updated.
pub(crate) async fn describe(
    _: Session,
    State(api): State<Arc<Api>>,
    Path(path): Path<HashMap<String, String>>,
) -> Response {
    let object = path.get("object").map_or("", String::as_str);
    let state = lock(&api.state);
    let Some(schema) = state.schema(object) else {
        drop(state);
        return not_found();
    };
    let tags_field = api.config.tags_field.as_str();
    let fields: Vec<_> = schema
        .fields
        .values()
        .map(|d| describe_field(d, tags_field))
        .collect();
    let body = json!({
        "name": schema.name,
        "label": schema.name,
        "keyPrefix": schema.key_prefix,
        "createable": true,
        "updateable": true,
        "queryable": true,
        "custom": false,
        "fields": fields,
    });
    drop(state);
    Json(body).into_response()
}
