#![doc = include_str!("../README.md")]

mod auth_calls;
mod authenticated;
mod client;
pub mod clock;
mod credentials;
#[cfg(feature = "demand")]
mod demand;
mod environment;
mod error;
mod http_date;
mod lifecycle;
#[cfg(feature = "middleware")]
mod middleware;
mod response;
mod retry;
mod sample;
pub mod store;
mod token;

#[cfg(test)]
mod props;

pub use client::{Client, ClientBuilder};
pub use credentials::{Credentials, DEFAULT_CLIENT_ID};
#[cfg(feature = "demand")]
pub use demand::{
    FEASIBILITY_FIRST_WAIT, FEASIBILITY_MAX_WAIT, PageRequest, SampleItems, SampleResult,
};
pub use environment::Environment;
pub use error::Error;
#[cfg(feature = "middleware")]
pub use middleware::AuthMiddleware;
pub use response::{request_id, retry_after};
pub use retry::RetryPolicy;
pub use sample::{ApiErrorDetail, Links, MAX_ENVELOPE_BYTES, Page, UserInfo, is_failure_message};
pub use token::AccessToken;

/// The HTTP client the SDK is built on (0.13, without default features):
/// its types are in the SDK's API ([`Client::request`], [`Client::send`],
/// [`request_id`]). Use this one rather than a `reqwest` of your own, whose
/// version or default features (aws-lc-rs) may differ.
///
/// With the `rustls` feature it has no crypto provider of its own: the SDK
/// installs *ring* when a [`Client`] is built. A `reqwest::Client` built
/// before any [`Client`] (a middleware stack set up first) panics unless
/// [`auth_api::ensure_crypto_provider`] was called first.
pub use reqwest;

/// The generated low-level client for Dynata's auth API, for the rare caller
/// who needs an operation the SDK does not wrap.
pub use dynata_auth_api as auth_api;

/// The generated low-level client for Dynata's Demand API (`/sample/v1`):
/// its types, and the operations [`Client::sample`] hands out.
#[cfg(feature = "demand")]
pub use dynata_sample_api as sample_api;
