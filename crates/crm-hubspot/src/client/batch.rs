//! Batch results, including 207 multi-status responses matched back to their inputs.

use std::collections::HashMap;

use crate::api_error::{ApiError, ErrorBody, Problem, validation_problem};
use crate::model::{BatchResponse, HubSpotObject};

/// The error of one input of a batch.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct BatchItemError {
    /// What went wrong.
    pub problem: Problem,
    /// The error entry HubSpot sent.
    pub body: Box<ErrorBody>,
}

impl BatchItemError {
    pub(crate) fn from_body(body: ErrorBody) -> Self {
        let message = body.message.clone().unwrap_or_default();
        let problem = match crate::api_error::parse_existing_id(&message) {
            Some(existing_id) => Problem::DuplicateContact { existing_id },
            None if body.category.as_deref() == Some("OBJECT_NOT_FOUND") => Problem::NotFound,
            None => validation_problem(&body, &message),
        };
        Self {
            problem,
            body: Box::new(body),
        }
    }

    /// Wraps a whole-call error that applies to this one input.
    pub fn from_api(e: &ApiError) -> Self {
        Self {
            problem: e.problem.clone(),
            body: Box::new(e.body.clone()),
        }
    }

    /// The message.
    pub fn message(&self) -> &str {
        self.body.message.as_deref().unwrap_or("(no message)")
    }

    fn keys(&self) -> Vec<String> {
        let ctx = &self.body.context;
        ["objectWriteTraceId", "ids", "id"]
            .iter()
            .filter_map(|k| ctx.get(*k))
            .flat_map(|v| match v {
                serde_json::Value::Array(a) => a
                    .iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect(),
                serde_json::Value::String(s) => vec![s.clone()],
                _ => Vec::new(),
            })
            .collect()
    }
}

/// A decoded batch response: records and per-input errors.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct BatchOutcome {
    /// Records written or read.
    pub results: Vec<HubSpotObject>,
    /// Errors (207 multi-status).
    pub errors: Vec<BatchItemError>,
}

impl BatchOutcome {
    pub(crate) fn from_response(r: BatchResponse) -> Self {
        Self {
            results: r.results,
            errors: r
                .errors
                .into_iter()
                .map(BatchItemError::from_body)
                .collect(),
        }
    }

    /// One result per input key, in input order. `keys[i]` is the input's
    /// `objectWriteTraceId` (writes) or id (reads, updates). A result matches by its echoed
    /// trace id, then by record id; an error by the trace ids or ids in its `context`.
    /// Inputs matched by neither get `None` (e.g. a batch read's missing id).
    pub fn per_input(&self, keys: &[String]) -> Vec<Option<Result<HubSpotObject, BatchItemError>>> {
        let mut by_key: HashMap<&str, &HubSpotObject> =
            HashMap::with_capacity(self.results.len() * 2);
        for r in &self.results {
            if let Some(t) = r.object_write_trace_id.as_deref() {
                by_key.insert(t, r);
            }
            by_key.entry(r.id.as_str()).or_insert(r);
        }
        let mut err_by_key: HashMap<String, &BatchItemError> = HashMap::new();
        for e in &self.errors {
            for k in e.keys() {
                err_by_key.insert(k, e);
            }
        }
        keys.iter()
            .map(|k| {
                if let Some(e) = err_by_key.get(k.as_str()) {
                    Some(Err((*e).clone()))
                } else {
                    by_key.get(k.as_str()).map(|r| Ok((*r).clone()))
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_status_maps_errors_and_results_to_inputs() {
        let r: BatchResponse = serde_json::from_str(
            r#"{"status":"COMPLETE","numErrors":2,"results":[
                {"id":"11","properties":{"email":"a@x.com"},"objectWriteTraceId":"t1"},
                {"id":"13","properties":{},"objectWriteTraceId":"t3"}],
              "errors":[
                {"status":"error","category":"VALIDATION_ERROR","message":"Property values were not valid: [{\"isValid\":false,\"message\":\"Property \\\"missing\\\" does not exist\",\"error\":\"PROPERTY_DOESNT_EXIST\",\"name\":\"missing\"}]","context":{"objectWriteTraceId":["t2"]}},
                {"status":"error","category":"CONFLICT","message":"Contact already exists. Existing ID: 999","context":{"objectWriteTraceId":["t4"]}}]}"#,
        )
        .unwrap();
        let o = BatchOutcome::from_response(r);
        let keys: Vec<String> = ["t1", "t2", "t3", "t4", "t5"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        let per = o.per_input(&keys);
        assert_eq!(per[0].as_ref().unwrap().as_ref().unwrap().id, "11");
        assert_eq!(
            per[1].as_ref().unwrap().as_ref().unwrap_err().problem,
            Problem::UnknownProperty {
                names: vec!["missing".into()]
            }
        );
        assert_eq!(per[2].as_ref().unwrap().as_ref().unwrap().id, "13");
        assert_eq!(
            per[3].as_ref().unwrap().as_ref().unwrap_err().problem,
            Problem::DuplicateContact {
                existing_id: "999".into()
            }
        );
        assert!(per[4].is_none());
    }

    #[test]
    fn batch_read_missing_ids_by_context_ids() {
        let r: BatchResponse = serde_json::from_str(
            r#"{"status":"COMPLETE","results":[{"id":"1","properties":{}}],"numErrors":1,
               "errors":[{"status":"error","category":"OBJECT_NOT_FOUND","message":"Could not get some CONTACT objects, they may be deleted or not exist.","context":{"ids":["2"]}}]}"#,
        )
        .unwrap();
        let per = BatchOutcome::from_response(r).per_input(&["1".to_owned(), "2".to_owned()]);
        assert!(per[0].as_ref().unwrap().is_ok());
        assert_eq!(
            per[1].as_ref().unwrap().as_ref().unwrap_err().problem,
            Problem::NotFound
        );
    }
}
