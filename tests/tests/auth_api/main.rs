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

/// `Client::new`, the generated client's own constructor, built its
/// `reqwest::Client` with reqwest's default redirect policy, which follows a
/// `307`/`308` to any host and sends the body again: a login answered with
/// a redirect elsewhere handed that host the password. It follows none now.
/// (The SDK's own client follows redirects within the origin only.)
#[tokio::test]
async fn client_new_does_not_send_a_redirected_login_to_another_host() {
    dynata_auth_api::ensure_crypto_provider();
    let home = httpmock::MockServer::start_async().await;
    let elsewhere = httpmock::MockServer::start_async().await;
    let stolen = elsewhere
        .mock_async(|when, then| {
            when.body_includes("<Your Password>");
            then.status(200)
                .header("content-type", "application/json")
                .body(TOKEN_PAIR);
        })
        .await;
    let target = elsewhere.url("/auth/v1/token/password");
    home.mock_async(move |when, then| {
        when.path("/auth/v1/token/password");
        then.status(307).header("location", target);
    })
    .await;
    let client = Client::new(&home.base_url());
    let _ = client.login(&login_body()).await;
    assert_eq!(
        stolen.calls_async().await,
        0,
        "the password was sent to another host"
    );
}
