//! All three sandboxes at once, sharing one clock.

use std::sync::Arc;

use crate::SandboxError;
use crate::cativa::{CativaConfig, CativaSandbox};
use crate::clock::{Clock, SystemClock};
use crate::datagen::{DataGenConfig, GeneratedContact};
use crate::hubspot::{HubSpotConfig, HubSpotSandbox};
use crate::salesforce::{SalesforceConfig, SalesforceSandbox};

/// Settings for [`SandboxServer`]: one per API, and an optional shared clock.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct SandboxConfig {
    /// HubSpot settings.
    pub hubspot: HubSpotConfig,
    /// Salesforce settings.
    pub salesforce: SalesforceConfig,
    /// Cativa settings.
    pub cativa: CativaConfig,
    /// Clock shared by the three servers (`None`: the system clock).
    pub clock: Option<Arc<dyn Clock>>,
}

impl SandboxConfig {
    /// Sets the HubSpot settings.
    pub fn with_hubspot(mut self, config: HubSpotConfig) -> Self {
        self.hubspot = config;
        self
    }

    /// Sets the Salesforce settings.
    pub fn with_salesforce(mut self, config: SalesforceConfig) -> Self {
        self.salesforce = config;
        self
    }

    /// Sets the Cativa settings.
    pub fn with_cativa(mut self, config: CativaConfig) -> Self {
        self.cativa = config;
        self
    }

    /// Shares `clock` between the servers.
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }
}

/// HubSpot, Salesforce and Cativa sandboxes running on 127.0.0.1, each on its own
/// port (so faults and limits are per server). Dropping it stops them all.
///
/// ```no_run
/// # async fn demo() -> Result<(), sync_sandbox::SandboxError> {
/// use sync_sandbox::{SandboxConfig, SandboxServer};
/// use sync_sandbox::datagen::DataGenConfig;
///
/// let sandbox = SandboxServer::start(SandboxConfig::default()).await?;
/// // The same 1,000 people as HubSpot and Salesforce contacts, and the share of them
/// // that are community users as Cativa users.
/// sandbox.seed_people(&DataGenConfig::default().with_contacts(1_000))?;
/// println!("HubSpot    {}", sandbox.hubspot().base_url());
/// println!("Salesforce {}", sandbox.salesforce().base_url());
/// println!("Cativa     {}", sandbox.cativa().base_url());
/// sandbox.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct SandboxServer {
    hubspot: HubSpotSandbox,
    salesforce: SalesforceSandbox,
    cativa: CativaSandbox,
}

impl SandboxServer {
    /// Starts the three servers.
    pub async fn start(config: SandboxConfig) -> Result<Self, SandboxError> {
        let clock: Arc<dyn Clock> = config.clock.unwrap_or_else(|| Arc::new(SystemClock::new()));
        Ok(Self {
            hubspot: HubSpotSandbox::start_with_clock(config.hubspot, clock.clone()).await?,
            salesforce: SalesforceSandbox::start_with_clock(config.salesforce, clock.clone())
                .await?,
            cativa: CativaSandbox::start_with_clock(config.cativa, clock).await?,
        })
    }

    /// The HubSpot sandbox.
    pub fn hubspot(&self) -> &HubSpotSandbox {
        &self.hubspot
    }

    /// The Salesforce sandbox.
    pub fn salesforce(&self) -> &SalesforceSandbox {
        &self.salesforce
    }

    /// The Cativa sandbox.
    pub fn cativa(&self) -> &CativaSandbox {
        &self.cativa
    }

    /// Generates people and seeds them everywhere: HubSpot contacts, Salesforce
    /// contacts, and Cativa users for those `in_community`.
    pub fn seed_people(
        &self,
        config: &DataGenConfig,
    ) -> Result<Vec<GeneratedContact>, SandboxError> {
        let people = crate::datagen::generate(config);
        self.hubspot.seed(&people)?;
        self.salesforce.seed("Contact", &people)?;
        self.cativa.seed_users(&people);
        Ok(people)
    }

    /// Forgets the request counts of the three servers (e.g. after seeding through the
    /// APIs, before the run under test).
    pub fn reset_requests(&self) {
        self.hubspot.reset_requests();
        self.salesforce.reset_requests();
        self.cativa.reset_requests();
    }

    /// Stops the three servers gracefully.
    pub async fn shutdown(self) {
        self.hubspot.shutdown().await;
        self.salesforce.shutdown().await;
        self.cativa.shutdown().await;
    }
}
