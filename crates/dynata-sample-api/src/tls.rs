//! The crypto provider behind the `rustls` feature, as in `dynata-auth-api`
//! (see its `tls` module): reqwest is built without one, this crate brings
//! *ring*, and reqwest panics building a client until rustls has a
//! process-wide default.

/// Makes sure rustls has a process-wide crypto provider, so that building a
/// `reqwest::Client` cannot panic for want of one: installs *ring* unless
/// the application installed a provider first. Does nothing without the
/// `rustls` feature. Cheap and idempotent: call it before building the
/// `reqwest::Client` you hand to [`Client::new_with_client`](crate::Client::new_with_client),
/// and before [`Client::new`](crate::Client::new), which builds one.
pub fn ensure_crypto_provider() {
    #[cfg(feature = "rustls")]
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // `Err` means another thread installed a provider in between; there
        // is a default either way, which is all reqwest needs.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}
