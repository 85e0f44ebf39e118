//! Authentication: a static bearer secret, or a [`TokenProvider`] for OAuth clients whose
//! tokens expire and are refreshed.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::error::HttpError;

/// How a client authenticates. `Debug` never shows a secret.
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum Auth {
    /// No `Authorization` header.
    #[default]
    None,
    /// `Authorization: Bearer <secret>` (API keys, private-app tokens).
    Bearer(SecretString),
    /// `Authorization: Bearer <token>` with a token from a provider; on a 401 the client asks
    /// the provider to refresh once and resends.
    Provider(Arc<dyn TokenProvider>),
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("None"),
            Self::Bearer(_) => f.write_str("Bearer([redacted])"),
            Self::Provider(p) => f.debug_tuple("Provider").field(p).finish(),
        }
    }
}

/// Supplies bearer tokens, refreshing them when they expire or are rejected.
///
/// Implementations must make [`refresh`](Self::refresh) single-flight: when many requests
/// are rejected with the same token at once, the token is renewed once and all of them get
/// the new one. [`RefreshingToken`] does this for any [`TokenSource`].
#[async_trait]
pub trait TokenProvider: Send + Sync + fmt::Debug {
    /// The current token, fetching one first if there is none or it is about to expire.
    async fn token(&self) -> Result<SecretString, HttpError>;

    /// Called when the server rejected `rejected` (HTTP 401). Returns a fresh token: renews
    /// it unless another caller already replaced `rejected`, in which case the current
    /// token is returned as is.
    async fn refresh(&self, rejected: &SecretString) -> Result<SecretString, HttpError>;
}

/// A freshly issued token.
#[derive(Clone)]
#[non_exhaustive]
pub struct AccessToken {
    /// The token.
    pub token: SecretString,
    /// How long it is valid, when the issuer said.
    pub expires_in: Option<Duration>,
}

impl AccessToken {
    /// A token valid for `expires_in` (if known).
    pub fn new(token: SecretString, expires_in: Option<Duration>) -> Self {
        Self { token, expires_in }
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("token", &"[redacted]")
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

/// Issues new tokens (an OAuth token endpoint call: refresh token, client credentials, JWT
/// bearer...). Wrap it in [`RefreshingToken`] to get caching and single-flight renewal.
#[async_trait]
pub trait TokenSource: Send + Sync + fmt::Debug {
    /// Obtains a new token.
    async fn fetch_token(&self) -> Result<AccessToken, HttpError>;
}

struct Cached {
    token: SecretString,
    renew_at: Option<Instant>,
}

/// A [`TokenProvider`] over a [`TokenSource`]: caches the token, renews it `margin` before
/// it expires, and renews at most once for any number of concurrent rejections of the same
/// token (single-flight, behind an async mutex).
pub struct RefreshingToken<S> {
    source: S,
    margin: Duration,
    state: Mutex<Option<Cached>>,
}

impl<S: fmt::Debug> fmt::Debug for RefreshingToken<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshingToken")
            .field("source", &self.source)
            .field("margin", &self.margin)
            .finish_non_exhaustive()
    }
}

impl<S: TokenSource> RefreshingToken<S> {
    /// Wraps `source`, renewing tokens 60 s before they expire.
    pub fn new(source: S) -> Self {
        Self::with_margin(source, Duration::from_secs(60))
    }

    /// Wraps `source`, renewing tokens `margin` before they expire.
    pub fn with_margin(source: S, margin: Duration) -> Self {
        Self {
            source,
            margin,
            state: Mutex::new(None),
        }
    }

    /// The wrapped source.
    pub fn source(&self) -> &S {
        &self.source
    }

    async fn renew(&self, slot: &mut Option<Cached>) -> Result<SecretString, HttpError> {
        let fresh = self.source.fetch_token().await?;
        let renew_at = fresh
            .expires_in
            .map(|ttl| Instant::now() + ttl.saturating_sub(self.margin));
        let token = fresh.token.clone();
        *slot = Some(Cached {
            token: fresh.token,
            renew_at,
        });
        Ok(token)
    }
}

#[async_trait]
impl<S: TokenSource> TokenProvider for RefreshingToken<S> {
    async fn token(&self) -> Result<SecretString, HttpError> {
        let mut slot = self.state.lock().await;
        if let Some(c) = slot.as_ref()
            && c.renew_at.is_none_or(|at| Instant::now() < at)
        {
            return Ok(c.token.clone());
        }
        self.renew(&mut slot).await
    }

    async fn refresh(&self, rejected: &SecretString) -> Result<SecretString, HttpError> {
        let mut slot = self.state.lock().await;
        if let Some(c) = slot.as_ref()
            && c.token.expose_secret() != rejected.expose_secret()
        {
            // Someone else renewed while we waited for the lock.
            return Ok(c.token.clone());
        }
        self.renew(&mut slot).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[derive(Debug, Default)]
    struct Counting(AtomicU32);

    #[async_trait]
    impl TokenSource for Counting {
        async fn fetch_token(&self) -> Result<AccessToken, HttpError> {
            let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok(AccessToken::new(
                SecretString::from(format!("tok-{n}")),
                Some(Duration::from_secs(3600)),
            ))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn caches_and_renews_before_expiry() {
        let p = RefreshingToken::new(Counting::default());
        assert_eq!(p.token().await.unwrap().expose_secret(), "tok-1");
        assert_eq!(p.token().await.unwrap().expose_secret(), "tok-1");
        tokio::time::advance(Duration::from_secs(3541)).await;
        assert_eq!(p.token().await.unwrap().expose_secret(), "tok-2");
        assert_eq!(p.source().0.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_rejections_refresh_once() {
        let p = Arc::new(RefreshingToken::new(Counting::default()));
        let first = p.token().await.unwrap();
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let p = Arc::clone(&p);
                let rejected = first.clone();
                tokio::spawn(async move { p.refresh(&rejected).await.unwrap() })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap().expose_secret(), "tok-2");
        }
        assert_eq!(
            p.source().0.load(Ordering::SeqCst),
            2,
            "one initial fetch, one renewal"
        );
    }

    #[test]
    fn debug_hides_secrets() {
        let a = Auth::Bearer(SecretString::from("super-secret-key"));
        assert!(!format!("{a:?}").contains("super-secret"));
        let t = AccessToken::new(SecretString::from("super-secret-tok"), None);
        assert!(!format!("{t:?}").contains("super-secret"));
    }
}
