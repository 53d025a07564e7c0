//! The crypto provider behind the `rustls` feature.
//!
//! reqwest's own `rustls` feature compiles in aws-lc-rs, whose C build is the
//! longest step of a clean build of an application using this crate. This
//! crate's `rustls` feature asks reqwest for rustls *without* a provider and
//! brings *ring* instead. reqwest then reads rustls's process-wide default
//! provider when a `reqwest::Client` is built, and panics if there is none:
//! [`ensure_crypto_provider`] makes sure there is one.

/// Makes sure rustls has a process-wide crypto provider, so that building a
/// `reqwest::Client` cannot panic for want of one.
///
/// With the `rustls` feature, this installs *ring* as rustls's default
/// provider unless the application installed a provider first (that one is
/// kept: call `rustls::crypto::CryptoProvider::install_default` at the start
/// of `main` to choose another, such as aws-lc-rs for FIPS). Without the
/// `rustls` feature it does nothing. Cheap and idempotent: call it before
/// every `reqwest::Client::builder().build()` that may use rustls, including
/// before [`Client::new`](crate::Client::new), which builds one.
pub fn ensure_crypto_provider() {
    #[cfg(feature = "rustls")]
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // `Err` means another thread installed a provider in between; there
        // is a default either way, which is all reqwest needs.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

#[cfg(all(test, feature = "rustls"))]
mod tests {
    use super::ensure_crypto_provider;

    /// reqwest is built without a provider of its own, so before the call
    /// there is none and building a client would panic; after it, there is
    /// one, and a client builds. (The one test in this binary that touches
    /// the process-wide default, so no other test can install it first.)
    #[test]
    fn installs_a_provider_that_reqwest_then_uses() {
        assert!(rustls::crypto::CryptoProvider::get_default().is_none());
        let without = std::panic::catch_unwind(|| reqwest::Client::builder().build());
        assert!(without.is_err(), "reqwest found a provider of its own");

        ensure_crypto_provider();
        ensure_crypto_provider();
        assert!(rustls::crypto::CryptoProvider::get_default().is_some());
        reqwest::Client::builder()
            .build()
            .expect("a client builds once a provider is installed");
    }
}
