//! The generated Demand API client (`dynata-sample-api`) against the spec it
//! was generated from: what each operation puts on the wire, how every answer
//! decodes (from fixtures written from the contract's field tables, not
//! recorded), and whether its types still agree with the spec.

mod decoding;
mod drift;
mod wire;

use dynata_sample_api::{Bearer, Client, types};
use httpmock::MockServer;

/// The access token every test client sends.
const TOKEN: &str = "test-access-token";

/// A plain reqwest client. reqwest's rustls has no crypto provider of its
/// own here (see `dynata_sample_api::ensure_crypto_provider`).
fn http() -> reqwest::Client {
    dynata_sample_api::ensure_crypto_provider();
    reqwest::Client::new()
}

/// A generated client pointed at a mock server on loopback, with a token.
fn client_for(server: &MockServer) -> Client {
    Client::new_with_client(&server.base_url(), http(), Bearer::new(TOKEN))
}

/// A fixture from `fixtures/`, by name without `.json`.
fn fixture(name: &str) -> String {
    let path = format!(
        "{}/tests/sample_api/fixtures/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A fixture decoded as `T`, failing the test with serde's reason if it does not.
fn decode<T: serde::de::DeserializeOwned>(name: &str) -> T {
    serde_json::from_str(&fixture(name)).unwrap_or_else(|e| panic!("{name}.json: {e}"))
}

/// The first bytes of a PDF, enough for the client to carry through.
const PDF: &[u8] = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n%%EOF\n";
