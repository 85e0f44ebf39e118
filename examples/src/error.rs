//! The one error type of the examples.

/// Why an example could not start or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExampleError {
    /// An environment variable is missing or invalid.
    #[error("environment variable {var} {message}")]
    Env {
        /// The variable.
        var: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// A command-line argument is invalid.
    #[error("invalid arguments: {0}; see the example's header comment for usage")]
    Usage(String),
    /// The in-process sandbox could not start or be seeded.
    #[error("sandbox: {0}")]
    Sandbox(#[from] sync_sandbox::SandboxError),
    /// The store or a connector failed.
    #[error("sync: {0}")]
    Sync(#[from] sync_core::Error),
    /// The sync engine failed (a store or connector error inside, or a missing piece).
    #[error("sync engine: {0}")]
    Engine(#[from] sync_engine::Error),
    /// The HubSpot client could not be built.
    #[error("HubSpot: {0}")]
    HubSpot(#[from] crm_hubspot::Error),
    /// The Salesforce client could not be built.
    #[error("Salesforce: {0}")]
    Salesforce(#[from] crm_salesforce::Error),
    /// The Cativa client could not be built.
    #[error("Cativa: {0}")]
    Cativa(#[from] cativa_client::Error),
    /// A webhook could not be verified.
    #[error("Cativa webhook: {0}")]
    CativaWebhook(#[from] cativa_client::webhook::WebhookError),
    /// A value the example sets up itself is invalid (a bug in the example).
    #[error("setup: {0}")]
    Setup(String),
    /// Reading a file, binding a port or writing output failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}
