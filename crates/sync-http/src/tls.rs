//! TLS for every `reqwest` client of the SDK: rustls with the `ring` crypto provider.
//!
//! `reqwest` bundles only the `aws-lc-rs` provider, whose C library (`aws-lc-sys`) is the
//! slowest part of a partner's first build. The workspace enables `reqwest`'s
//! `rustls-no-provider` instead, and the clients take rustls's process-wide default
//! provider, which [`install_crypto_provider`] sets to `ring` unless the application chose
//! one first.

use std::sync::Once;

/// Makes `ring` rustls's process-wide crypto provider, unless one is installed already (an
/// application's own choice always wins). Cheap after the first call. The SDK's clients call
/// it before they build a `reqwest` client; call it yourself before you build one of your own
/// with the same `reqwest` (or use [`client_builder`]).
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            // Another thread may install one between the check and here: then it wins,
            // which is what we want.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
    });
}

/// A `reqwest` client builder with the crypto provider installed
/// ([`install_crypto_provider`]).
pub fn client_builder() -> reqwest::ClientBuilder {
    install_crypto_provider();
    reqwest::Client::builder()
}

/// A `reqwest` client with default settings and the crypto provider installed. For tests and
/// tools; the SDK's clients are built through [`crate::HttpClient`].
///
/// # Errors
/// When `reqwest` cannot build the client (no usable TLS configuration).
pub fn client() -> Result<reqwest::Client, reqwest::Error> {
    client_builder().build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_provider_is_installed_once_and_a_client_builds() {
        install_crypto_provider();
        install_crypto_provider();
        assert!(rustls::crypto::CryptoProvider::get_default().is_some());
        assert!(client().is_ok());
    }
}
