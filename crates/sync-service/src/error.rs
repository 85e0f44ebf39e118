//! The one error type of the service crate.

/// One problem found by the start-up checks: which check, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Problem {
    /// The check that failed (`cativa_credentials`, `hubspot_scopes`, `crm_property`, ...).
    pub check: &'static str,
    /// What is wrong and how to fix it, safe to print (never a secret).
    pub message: String,
}

impl Problem {
    /// A problem found by `check`.
    pub fn new(check: &'static str, message: impl Into<String>) -> Self {
        Self {
            check,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.check, self.message)
    }
}

fn problem_lines(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("\n  - {p}"))
        .collect::<String>()
}

/// What went wrong starting or running the service.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting is missing or invalid. `key` is its name in the TOML file, and `env` the
    /// environment variable that sets it.
    #[error("invalid setting {key} (env {env}): {message}")]
    Config {
        /// The TOML key, e.g. `http.max_body_bytes`.
        key: String,
        /// The environment variable, e.g. `SYNC_HTTP_MAX_BODY_BYTES`.
        env: String,
        /// What is wrong and what is expected.
        message: String,
    },
    /// The start-up checks found problems: every one is listed; fix them and start again.
    /// The service never accepts deliveries that would fail for a configuration reason.
    #[error("refusing to start: {} problem(s) found{}", .0.len(), problem_lines(.0))]
    Startup(Vec<Problem>),
    /// The engine or the store failed.
    #[error(transparent)]
    Engine(#[from] sync_engine::Error),
    /// Binding, accepting or reading a file failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

impl From<sync_core::Error> for Error {
    fn from(e: sync_core::Error) -> Self {
        Self::Engine(sync_engine::Error::from(e))
    }
}
