//! From a verified delivery to what
//! `sync_engine::SyncEngine::handle_crm_contacts` takes:
//! the ledger ids of its events and the contacts to plan.

use sync_core::ports::CrmSource;
use sync_core::{CrmContact, TenantId};

use super::receiver::{ContactSignals, Delivery};
use crate::source::HubSpotSource;

impl Delivery {
    /// One ledger id per event (HubSpot's dedupe tuple as a string, see
    /// [`WebhookEvent::dedupe_string`](super::WebhookEvent::dedupe_string)): a retried
    /// delivery carries the same events, hence the same ids, and the engine skips it. Echoes
    /// are left out: they are not acted on.
    pub fn ledger_ids(&self) -> Vec<String> {
        self.events.iter().map(|e| e.dedupe_string()).collect()
    }
}

impl HubSpotSource {
    /// The contacts a delivery's signals name, ready to plan: the ones to read again,
    /// fetched in batches of 100 (a contact deleted since is left out), followed by the
    /// tombstones (archived, or `merged_into` the survivor).
    ///
    /// ```no_run
    /// # async fn demo(
    /// #     engine: sync_engine::SyncEngine,
    /// #     source: crm_hubspot::HubSpotSource,
    /// #     delivery: crm_hubspot::webhook::Delivery,
    /// # ) -> Result<(), Box<dyn std::error::Error>> {
    /// let tenant = sync_core::TenantId::new("acme");
    /// let contacts = source.contacts_for(&tenant, &delivery.contact_signals()).await?;
    /// engine.handle_crm_contacts(&tenant, &delivery.ledger_ids(), contacts).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// What [`CrmSource::get_by_ids`] returns: answer the webhook with a 5xx so HubSpot
    /// retries it.
    pub async fn contacts_for(
        &self,
        tenant: &TenantId,
        signals: &ContactSignals,
    ) -> Result<Vec<CrmContact>, sync_core::Error> {
        let mut contacts = if signals.refetch.is_empty() {
            Vec::new()
        } else {
            self.get_by_ids(tenant, &signals.refetch).await?
        };
        contacts.extend(signals.tombstones.iter().cloned());
        Ok(contacts)
    }
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;

    use super::super::{SignatureVerifier, WebhookReceiver, v3_signature};

    #[test]
    fn ledger_ids_are_stable_across_retries_and_skip_duplicates() {
        let url = "https://hooks.example.com/hubspot";
        let receiver = WebhookReceiver::new(
            SignatureVerifier::new(SecretString::from("s")).with_public_url(url),
        );
        let body = br#"[
          {"portalId":1,"occurredAt":1000,"subscriptionType":"contact.creation","objectId":5},
          {"portalId":1,"occurredAt":1000,"subscriptionType":"contact.creation","objectId":5,"attemptNumber":1},
          {"portalId":1,"occurredAt":1001,"subscriptionType":"contact.propertyChange","objectId":5,"propertyName":"plan"}
        ]"#;
        let receive = || {
            let sig = v3_signature("s", "POST", url, body, "1000");
            let (parts, ()) = http::Request::post("/hubspot")
                .header("x-hubspot-signature-v3", sig)
                .header("x-hubspot-request-timestamp", "1000")
                .body(())
                .unwrap()
                .into_parts();
            let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(2000);
            receiver.receive(&parts, body, at).unwrap()
        };
        let ids = receive().ledger_ids();
        assert_eq!(
            ids,
            vec![
                "hubspot:1:contact.creation:5:1000:".to_owned(),
                "hubspot:1:contact.propertyChange:5:1001:plan".to_owned(),
            ]
        );
        assert_eq!(receive().ledger_ids(), ids, "a retry has the same ids");
    }
}
