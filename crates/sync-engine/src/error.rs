//! The error type of the engine: everything sync-core and the ports report, plus what only
//! the engine can find out (a missing piece, a stopped run, a kind it does not know).

/// What went wrong in an engine call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A port (CRM, community, store) or sync-core failed; see the inner error for what to
    /// do.
    #[error(transparent)]
    Core(#[from] sync_core::Error),
    /// The engine lacks a piece the work needs (a source, a sink, an inviter): configure it
    /// on the [`SyncEngineBuilder`](crate::SyncEngineBuilder).
    #[error("not configured: {0}: configure it on the SyncEngineBuilder")]
    NotConfigured(String),
    /// The run stopped (quota exhausted, credentials rejected) before this action was
    /// applied; it stays in the outbox and is applied by the next run once the cause is
    /// fixed (the report's `resume_after` says when a quota resets).
    #[error("run stopped before this action: {0}: it stays in the outbox for the next run")]
    RunStopped(String),
    /// The work names a kind (action, event, plan mode) added to sync-core after this
    /// engine was built: upgrade sync-engine to the version of sync-core.
    #[error("this sync-engine cannot handle {0}: upgrade sync-engine to match sync-core")]
    Unsupported(String),
}

impl Error {
    /// Whether trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Core(e) => e.is_retryable(),
            Error::RunStopped(_) | Error::Unsupported(_) => true,
            Error::NotConfigured(_) => false,
        }
    }

    /// Whether the error should end the whole run cleanly (checkpoint saved, report says when
    /// to run again) rather than fail one record: exhausted quotas and rejected credentials.
    pub fn stops_run(&self) -> bool {
        match self {
            Error::Core(e) => e.stops_run(),
            _ => false,
        }
    }

    /// The sync-core error inside, when the failure came from a port or from sync-core.
    pub fn as_core(&self) -> Option<&sync_core::Error> {
        match self {
            Error::Core(e) => Some(e),
            _ => None,
        }
    }

    /// The remote error, when a remote system failed.
    pub fn as_remote(&self) -> Option<&sync_core::RemoteError> {
        self.as_core().and_then(sync_core::Error::as_remote)
    }
}

impl From<sync_core::RemoteError> for Error {
    fn from(e: sync_core::RemoteError) -> Self {
        Error::Core(e.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sync_core::{RemoteError, RemoteErrorKind};

    #[test]
    fn classification_follows_the_core_error() {
        let quota = Error::from(RemoteError::new(
            "salesforce",
            RemoteErrorKind::QuotaExhausted,
            "TotalRequests",
        ));
        assert!(quota.stops_run() && !quota.is_retryable());
        assert!(quota.as_remote().is_some());
        assert!(Error::RunStopped("quota".into()).is_retryable());
        let missing = Error::NotConfigured("no CRM source".into());
        assert!(!missing.is_retryable() && !missing.stops_run());
        assert!(
            missing.to_string().contains("SyncEngineBuilder"),
            "{missing}"
        );
    }
}
