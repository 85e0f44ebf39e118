//! The Properties API: describe contact properties, create the SDK's own, add options.

use std::time::Duration;

use http::Method;
use tokio::time::Instant;

use super::{HubSpotClient, Req, path_template};
use crate::error::Error;
use crate::model::{Page, Property, PropertyCreate, PropertyOption, PropertyOptionsUpdate};

impl HubSpotClient {
    /// `…/contacts/{propertyName}`: the path logged and counted for one property.
    fn property_template(&self) -> String {
        path_template(&self.paths.properties, "contacts/{propertyName}")
    }

    /// Every contact property with its type and options (`GET /crm/v3/properties/contacts`).
    pub async fn list_contact_properties(&self) -> Result<Vec<Property>, Error> {
        let req = Req::new(Method::GET, &self.paths.properties, &["contacts"]);
        let page: Page<Property> = self.send_json(&req).await?;
        *self.recent_properties() = Some((Instant::now(), page.results.clone()));
        Ok(page.results)
    }

    fn recent_properties(&self) -> std::sync::MutexGuard<'_, Option<(Instant, Vec<Property>)>> {
        self.properties
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The last listing of contact properties by this client (or its clones) if it is
    /// younger than `max_age`, with the properties this client created or changed since
    /// applied. `None` when there is none: call
    /// [`list_contact_properties`](Self::list_contact_properties).
    pub fn recent_contact_properties(&self, max_age: Duration) -> Option<Vec<Property>> {
        self.recent_properties()
            .as_ref()
            .filter(|(at, _)| at.elapsed() < max_age)
            .map(|(_, list)| list.clone())
    }

    /// Forgets the last listing (properties were changed by someone else).
    pub fn forget_contact_properties(&self) {
        *self.recent_properties() = None;
    }

    /// Keeps the last listing current with a property this client wrote.
    fn remember_property(&self, property: &Property) {
        if let Some((_, list)) = self.recent_properties().as_mut() {
            match list.iter_mut().find(|p| p.name == property.name) {
                Some(p) => *p = property.clone(),
                None => list.push(property.clone()),
            }
        }
    }

    /// One contact property; `None` when it does not exist.
    pub async fn get_contact_property(&self, name: &str) -> Result<Option<Property>, Error> {
        let req = Req::new(Method::GET, &self.paths.properties, &["contacts", name])
            .log_path(self.property_template());
        match self.send_json(&req).await {
            Ok(p) => Ok(Some(p)),
            Err(Error::Api(e)) if e.status == 404 => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates a contact property (`POST /crm/v3/properties/contacts`).
    pub async fn create_contact_property(
        &self,
        property: &PropertyCreate,
    ) -> Result<Property, Error> {
        let req = Req::new(Method::POST, &self.paths.properties, &["contacts"]).json(property)?;
        let created: Property = self.send_json(&req).await?;
        self.remember_property(&created);
        Ok(created)
    }

    /// Replaces the option list of an enumeration property (`PATCH
    /// /crm/v3/properties/contacts/{name}` with the full list: whether HubSpot merges or
    /// replaces is undocumented, so the caller sends all options).
    pub async fn set_contact_property_options(
        &self,
        name: &str,
        options: Vec<PropertyOption>,
    ) -> Result<Property, Error> {
        let req = Req::new(Method::PATCH, &self.paths.properties, &["contacts", name])
            .log_path(self.property_template())
            .json(&PropertyOptionsUpdate { options })?
            .idempotent();
        let updated: Property = self.send_json(&req).await?;
        self.remember_property(&updated);
        Ok(updated)
    }

    /// Adds the options `values` lacks to an enumeration property, keeping the existing
    /// ones. Returns the property as it now is (unchanged and no call when none is missing).
    pub async fn add_contact_property_options(
        &self,
        property: &Property,
        values: &[String],
    ) -> Result<Property, Error> {
        let mut options = property.options.clone();
        let mut added = false;
        for v in values {
            if !options.iter().any(|o| &o.value == v) {
                let mut o = PropertyOption::new(v.clone());
                o.display_order = i32::try_from(options.len()).ok();
                options.push(o);
                added = true;
            }
        }
        if !added {
            return Ok(property.clone());
        }
        self.set_contact_property_options(&property.name, options)
            .await
    }

    /// Creates each of `wanted` that does not exist yet; returns the names created.
    pub async fn ensure_contact_properties(
        &self,
        wanted: &[PropertyCreate],
    ) -> Result<Vec<String>, Error> {
        let existing = self.list_contact_properties().await?;
        let mut created = Vec::new();
        for p in wanted {
            if existing.iter().any(|e| e.name == p.name) {
                continue;
            }
            self.create_contact_property(p).await?;
            created.push(p.name.clone());
        }
        Ok(created)
    }
}
