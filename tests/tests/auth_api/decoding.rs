//! How the generated client decodes each kind of answer: success in either
//! JSON media type, documented errors in both of Dynata's error shapes, an
//! undocumented gateway status, logout's empty 204, and an oversized body.

use dynata_auth_api::{Error, MAX_RESPONSE_BYTES};
use httpmock::{Method::POST, MockServer};

use super::*;

async fn answering(path: &str, status: u16, content_type: &str, body: &str) -> MockServer {
    let server = MockServer::start_async().await;
    server
        .mock_async(|when, then| {
            when.method(POST).path(path);
            then.status(status)
                .header("content-type", content_type)
                .body(body);
        })
        .await;
    server
}

fn assert_getting_started_pair(pair: &types::TokenPair) {
    assert_eq!(pair.access_token.expose_secret(), "<JWT>");
    assert_eq!(pair.refresh_token.expose_secret(), "<JWT>");
    assert_eq!((pair.expires_in, pair.refresh_expires_in), (1800, 3600));
}

#[tokio::test]
async fn every_token_operation_decodes_the_pair() {
    for path in [
        "/auth/v1/token/password",
        "/auth/v1/token/refresh",
        "/auth/v1/token/code",
    ] {
        let server = answering(path, 200, "application/json", TOKEN_PAIR).await;
        let client = client_for(&server);
        let pair = match path {
            "/auth/v1/token/password" => client.login(&login_body()).await,
            "/auth/v1/token/refresh" => client.refresh(&refresh_body()).await,
            _ => client.exchange_code(&code_body()).await,
        }
        .unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(pair.status(), 200);
        assert_getting_started_pair(&pair);
    }
}

#[tokio::test]
async fn a_pair_labelled_vnd_token_json_is_decoded() {
    let server = answering(
        "/auth/v1/token/password",
        200,
        "application/vnd.token+json",
        TOKEN_PAIR,
    )
    .await;
    let pair = client_for(&server)
        .login(&login_body())
        .await
        .expect("decodes");
    assert_getting_started_pair(&pair);
}

#[tokio::test]
async fn documented_error_statuses_decode_both_error_shapes() {
    let bodies = [
        (
            r#"{"error":"invalid_grant","errorDescription":"Invalid user credentials"}"#,
            types::AuthError {
                error: Some("invalid_grant".into()),
                error_description: Some("Invalid user credentials".into()),
                message: None,
            },
        ),
        (
            r#"{"message":"Unauthorized"}"#,
            types::AuthError {
                message: Some("Unauthorized".into()),
                ..Default::default()
            },
        ),
    ];
    for status in [400, 401] {
        for (body, expected) in &bodies {
            for path in [
                "/auth/v1/token/password",
                "/auth/v1/token/refresh",
                "/auth/v1/logout",
            ] {
                let server = answering(path, status, "application/vnd.auth.error+json", body).await;
                let client = client_for(&server);
                let error = match path {
                    "/auth/v1/token/password" => client.login(&login_body()).await.map(|_| ()),
                    "/auth/v1/token/refresh" => client.refresh(&refresh_body()).await.map(|_| ()),
                    _ => client.logout(&logout_body()).await.map(|_| ()),
                }
                .expect_err("an error status");
                match error {
                    Error::ErrorResponse(response) => {
                        assert_eq!(response.status(), status);
                        assert_eq!(&response.into_inner(), expected, "{path} {status}");
                    }
                    other => panic!("{path} {status}: expected ErrorResponse, got {other:?}"),
                }
            }
        }
    }
}

#[tokio::test]
async fn an_undocumented_gateway_error_is_unexpected_with_its_status() {
    let page = "<html><body><h1>502 Bad Gateway</h1></body></html>";
    let server = answering("/auth/v1/token/password", 502, "text/html", page).await;
    match client_for(&server).login(&login_body()).await {
        Err(Error::UnexpectedResponse(response)) => {
            assert_eq!(response.status(), 502);
            assert_eq!(response.text().await.expect("body"), page);
        }
        other => panic!("expected UnexpectedResponse, got {other:?}"),
    }
}

#[tokio::test]
async fn logout_accepts_204_with_an_empty_body() {
    let server = answering("/auth/v1/logout", 204, "application/json", "").await;
    let response = client_for(&server)
        .logout(&logout_body())
        .await
        .expect("logout succeeds");
    assert_eq!(response.status(), 204);
}

#[tokio::test]
async fn a_body_over_the_limit_is_an_error_not_read_whole() {
    let huge = format!(r#"{{"accessToken":"{}"}}"#, "x".repeat(MAX_RESPONSE_BYTES));
    let server = answering("/auth/v1/token/password", 200, "application/json", &huge).await;
    match client_for(&server).login(&login_body()).await {
        Err(Error::Custom(message)) => assert!(message.contains("limit"), "{message}"),
        other => panic!("expected the size limit error, got {other:?}"),
    }
}

/// A gateway's page over the limit is still its status: a `502` that the
/// SDK retries, not an answer from Dynata that could not be used (which
/// would count the refresh token as spent).
#[tokio::test]
async fn an_error_status_over_the_limit_keeps_its_status() {
    let page = format!(
        "<html><title>Bad Gateway</title>{}</html>",
        "x".repeat(MAX_RESPONSE_BYTES)
    );
    let server = answering("/auth/v1/token/refresh", 502, "text/html", &page).await;
    match client_for(&server).refresh(&refresh_body()).await {
        Err(Error::UnexpectedResponse(response)) => {
            assert_eq!(response.status(), 502);
            let kept = response.bytes().await.expect("in memory");
            assert!(kept.len() <= MAX_RESPONSE_BYTES && kept.starts_with(b"<html>"));
        }
        other => panic!("expected the 502, got {other:?}"),
    }
}

#[tokio::test]
async fn truncated_json_is_an_invalid_payload() {
    let server = answering(
        "/auth/v1/token/password",
        200,
        "application/json",
        r#"{"accessToken":"ab"#,
    )
    .await;
    match client_for(&server).login(&login_body()).await {
        Err(Error::InvalidResponsePayload(..)) => {}
        other => panic!("expected InvalidResponsePayload, got {other:?}"),
    }
}
