//! The generated low-level client (`dynata-auth-api`) against the spec it was
//! generated from: what it puts on the wire, how it decodes what Dynata and its
//! gateways answer, and whether its types still agree with the spec.

mod decoding;
mod drift;
mod wire;

use dynata_auth_api::{Client, types};

/// A generated client pointed at a mock server on loopback.
fn client_for(server: &httpmock::MockServer) -> Client {
    // reqwest's rustls has no crypto provider of its own here (see dynata-auth-api).
    dynata_auth_api::ensure_crypto_provider();
    Client::new_with_client(&server.base_url(), reqwest::Client::new())
}

fn login_body() -> types::PasswordLoginRequest {
    types::PasswordLoginRequest {
        client_id: "api".into(),
        username: "<Your username>".into(),
        password: "<Your Password>".into(),
        client_secret: None,
    }
}

fn refresh_body() -> types::RefreshRequest {
    types::RefreshRequest {
        client_id: "api".into(),
        refresh_token: "<refresh token>".into(),
        client_secret: None,
    }
}

fn logout_body() -> types::LogoutRequest {
    types::LogoutRequest {
        client_id: "api".into(),
        refresh_token: "<refresh token>".into(),
        access_token: "<access token>".into(),
    }
}

fn code_body() -> types::CodeExchangeRequest {
    types::CodeExchangeRequest {
        client_id: "api".into(),
        code: "<authorization code>".into(),
        redirect_uri: "https://example.com/callback".into(),
        client_secret: None,
    }
}

/// The token pair of Dynata's getting-started page, with placeholder tokens.
const TOKEN_PAIR: &str =
    r#"{"accessToken":"<JWT>","expiresIn":1800,"refreshExpiresIn":3600,"refreshToken":"<JWT>"}"#;
