//! Notes, for activity logging (associated to contacts with type 202).

use http::Method;

use super::batch::BatchOutcome;
use super::{HubSpotClient, Req};
use crate::error::Error;
use crate::model::{HubSpotObject, Inputs, MAX_BATCH_INPUTS, NoteCreate};

impl HubSpotClient {
    /// Creates a note (`POST /crm/v3/objects/notes`).
    pub async fn create_note(&self, note: &NoteCreate) -> Result<HubSpotObject, Error> {
        let req = Req::new(Method::POST, &self.paths.objects, &["notes"]).json(note)?;
        self.send_json(&req).await
    }

    /// Creates up to 100 notes in one call (`POST /crm/v3/objects/notes/batch/create`).
    pub async fn batch_create_notes(&self, notes: Vec<NoteCreate>) -> Result<BatchOutcome, Error> {
        if notes.len() > MAX_BATCH_INPUTS {
            return Err(Error::Config(format!(
                "{} notes in one batch; HubSpot accepts at most {MAX_BATCH_INPUTS}",
                notes.len()
            )));
        }
        let req = Req::new(
            Method::POST,
            &self.paths.objects,
            &["notes", "batch", "create"],
        )
        .json(&Inputs { inputs: notes })?;
        self.send_batch(&req).await
    }
}
