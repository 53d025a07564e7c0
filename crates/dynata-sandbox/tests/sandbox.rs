//! The sandbox's behaviour as a client sees it, over real loopback HTTP.
//! Tests that involve token lifetimes pause tokio's clock and advance it.

use std::time::Duration;

use dynata_sandbox::{Fault, Operation, Sandbox, StartError};
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

// ---- helpers ---------------------------------------------------------------

/// A client that never uses a proxy and keeps no idle-pool timer: with paused
/// time, any pending timer would make tokio jump the clock while we wait on I/O.
fn client() -> Client {
    install_crypto_provider();
    Client::builder()
        .no_proxy()
        .pool_idle_timeout(None)
        .build()
        .unwrap()
}

/// reqwest's rustls comes without a crypto provider (the clients bring ring
/// instead of aws-lc-rs), and reqwest panics building a client until one is
/// installed.
fn install_crypto_provider() {
    dynata_sample_api::ensure_crypto_provider();
}

async fn alice() -> Sandbox {
    Sandbox::builder()
        .user("alice", "secret")
        .start()
        .await
        .unwrap()
}

async fn post(sandbox: &Sandbox, path: &str, body: Value) -> Response {
    client()
        .post(format!("{}{path}", sandbox.base_url()))
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn post_raw(sandbox: &Sandbox, path: &str, body: impl Into<reqwest::Body>) -> Response {
    client()
        .post(format!("{}{path}", sandbox.base_url()))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn login_as(sandbox: &Sandbox, username: &str, password: &str) -> Response {
    post(
        sandbox,
        "/auth/v1/token/password",
        json!({"clientId": "api", "username": username, "password": password}),
    )
    .await
}

/// Logs alice in and returns (access token, refresh token).
async fn login(sandbox: &Sandbox) -> (String, String) {
    let response = login_as(sandbox, "alice", "secret").await;
    assert_eq!(response.status(), StatusCode::OK);
    pair(response).await
}

async fn pair(response: Response) -> (String, String) {
    let body: Value = response.json().await.unwrap();
    (
        body["accessToken"].as_str().unwrap().to_owned(),
        body["refreshToken"].as_str().unwrap().to_owned(),
    )
}

async fn refresh(sandbox: &Sandbox, refresh_token: &str) -> Response {
    post(
        sandbox,
        "/auth/v1/token/refresh",
        json!({"clientId": "api", "refreshToken": refresh_token}),
    )
    .await
}

async fn users_info(sandbox: &Sandbox, access_token: Option<&str>) -> Response {
    let mut request = client().get(format!("{}/sample/v1/users/info", sandbox.base_url()));
    if let Some(token) = access_token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

/// The statuses of `n` users/info calls in a row with `access_token`.
async fn users_info_statuses(sandbox: &Sandbox, access_token: &str, n: usize) -> Vec<u16> {
    let mut statuses = Vec::with_capacity(n);
    for _ in 0..n {
        let response = users_info(sandbox, Some(access_token)).await;
        statuses.push(response.status().as_u16());
    }
    statuses
}

fn content_type(response: &Response) -> &str {
    response.headers()["content-type"].to_str().unwrap()
}

/// Asserts an identity-server error and returns it for more checks.
async fn assert_auth_error(response: Response, status: StatusCode, error: &str) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(content_type(&response), "application/vnd.auth.error+json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], error, "{body}");
    assert!(body["errorDescription"].is_string(), "{body}");
    body
}

// ---- login -----------------------------------------------------------------

#[tokio::test]
async fn login_returns_a_token_pair_as_vnd_token_json() {
    let sandbox = Sandbox::builder()
        .user("alice", "secret")
        .access_token_ttl(Duration::from_secs(60))
        .refresh_token_ttl(Duration::from_secs(120))
        .start()
        .await
        .unwrap();
    let response = login_as(&sandbox, "alice", "secret").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(content_type(&response), "application/vnd.token+json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["expiresIn"], 60);
    assert_eq!(body["refreshExpiresIn"], 120);
    let access = body["accessToken"].as_str().unwrap();
    let refresh = body["refreshToken"].as_str().unwrap();
    assert!(access.len() >= 32 && refresh.len() >= 32);
    assert_ne!(access, refresh);

    // Fresh tokens on every login.
    let (access2, refresh2) = login(&sandbox).await;
    assert_ne!(access, access2);
    assert_ne!(refresh, refresh2);
}

#[tokio::test]
async fn the_getting_started_request_works_as_published() {
    let sandbox = Sandbox::builder()
        .user("<Your username>", "<Your Password>")
        .start()
        .await
        .unwrap();
    let response = post_raw(
        &sandbox,
        "/auth/v1/token/password",
        r#"{"clientId": "api", "password": "<Your Password>", "username": "<Your username>"}"#,
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn without_users_the_default_user_is_sandbox() {
    let sandbox = Sandbox::start().await.unwrap();
    let response = login_as(&sandbox, "sandbox", "sandbox").await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn several_users_can_log_in() {
    let sandbox = Sandbox::builder()
        .user("alice", "secret")
        .user("bob", "hunter2")
        .start()
        .await
        .unwrap();
    assert_eq!(
        login_as(&sandbox, "alice", "secret").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        login_as(&sandbox, "bob", "hunter2").await.status(),
        StatusCode::OK
    );
    let wrong = login_as(&sandbox, "bob", "secret").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_wrong_password_or_unknown_user_is_401_invalid_grant() {
    let sandbox = alice().await;
    let body = assert_auth_error(
        login_as(&sandbox, "alice", "wrong").await,
        StatusCode::UNAUTHORIZED,
        "invalid_grant",
    )
    .await;
    assert_eq!(body["errorDescription"], "Invalid user credentials");
    assert_auth_error(
        login_as(&sandbox, "mallory", "secret").await,
        StatusCode::UNAUTHORIZED,
        "invalid_grant",
    )
    .await;
}

#[tokio::test]
async fn a_client_id_other_than_api_is_401_invalid_client() {
    let sandbox = alice().await;
    let response = post(
        &sandbox,
        "/auth/v1/token/password",
        json!({"clientId": "web", "username": "alice", "password": "secret"}),
    )
    .await;
    assert_auth_error(response, StatusCode::UNAUTHORIZED, "invalid_client").await;
}

#[tokio::test]
async fn malformed_requests_are_400_invalid_request() {
    let sandbox = alice().await;
    let bodies: [&[u8]; 8] = [
        b"",
        b"not json",
        b"\xff\xfe\x00garbage",
        b"[1, 2, 3]",
        br#"{"clientId": "api", "username": "alice"}"#,
        br#"{"clientId": "api", "username": 7, "password": "secret"}"#,
        br#"{"clientId": "api", "username": "alice", "password": "secret", "clientSecret": 1}"#,
        br#"{"clientId": "api", "username": "alice", "password": "secret""#,
    ];
    for body in bodies {
        let response = post_raw(&sandbox, "/auth/v1/token/password", body.to_vec()).await;
        assert_auth_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
    }
    // Deep nesting must not overflow the stack.
    let deep = "[".repeat(50_000);
    let response = post_raw(&sandbox, "/auth/v1/token/refresh", deep).await;
    assert_auth_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
    // And a good request still works afterwards.
    login(&sandbox).await;
}

#[tokio::test]
async fn an_oversized_body_gets_a_json_error() {
    let sandbox = alice().await;
    let huge = format!(
        r#"{{"clientId": "api", "username": "alice", "password": "{}"}}"#,
        "x".repeat(200 * 1024)
    );
    let response = post_raw(&sandbox, "/auth/v1/token/password", huge).await;
    assert_auth_error(response, StatusCode::PAYLOAD_TOO_LARGE, "invalid_request").await;
    assert_eq!(sandbox.count(Operation::Login), 1);
}

// ---- refresh ---------------------------------------------------------------

#[tokio::test]
async fn refresh_rotates_the_refresh_token() {
    let sandbox = alice().await;
    let (access, old_refresh) = login(&sandbox).await;

    let response = refresh(&sandbox, &old_refresh).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(content_type(&response), "application/vnd.token+json");
    let (new_access, new_refresh) = pair(response).await;
    assert_ne!(new_access, access);
    assert_ne!(new_refresh, old_refresh);

    // The old refresh token was used up...
    let body = assert_auth_error(
        refresh(&sandbox, &old_refresh).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
    assert_eq!(body["errorDescription"], "Token is not active");
    // ...the new pair works.
    assert_eq!(
        users_info(&sandbox, Some(&new_access)).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        refresh(&sandbox, &new_refresh).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn an_unknown_refresh_token_is_400_invalid_grant() {
    let sandbox = alice().await;
    let response = refresh(&sandbox, "sbx-rt-made-up").await;
    assert_auth_error(response, StatusCode::BAD_REQUEST, "invalid_grant").await;
    let response = post(
        &sandbox,
        "/auth/v1/token/refresh",
        json!({"clientId": "api"}),
    )
    .await;
    assert_auth_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
}

#[tokio::test(start_paused = true)]
async fn an_expired_refresh_token_is_rejected() {
    let sandbox = Sandbox::builder()
        .user("alice", "secret")
        .access_token_ttl(Duration::from_secs(1))
        .refresh_token_ttl(Duration::from_secs(3))
        .start()
        .await
        .unwrap();
    let (_, still_live) = login(&sandbox).await;
    let (_, expired) = login(&sandbox).await;

    tokio::time::advance(Duration::from_millis(2900)).await;
    assert_eq!(
        refresh(&sandbox, &still_live).await.status(),
        StatusCode::OK
    );

    tokio::time::advance(Duration::from_millis(200)).await;
    let body = assert_auth_error(
        refresh(&sandbox, &expired).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
    assert_eq!(body["errorDescription"], "Token is not active");
}

/// `(expiresIn, refreshExpiresIn)` of a token-pair response, and the pair.
async fn lifetimes(response: Response) -> ((u64, u64), (String, String)) {
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    (
        (
            body["expiresIn"].as_u64().unwrap(),
            body["refreshExpiresIn"].as_u64().unwrap(),
        ),
        (
            body["accessToken"].as_str().unwrap().to_owned(),
            body["refreshToken"].as_str().unwrap().to_owned(),
        ),
    )
}

#[tokio::test(start_paused = true)]
async fn refresh_lifetimes_shrink_towards_the_session_maximum() {
    let sandbox = Sandbox::builder()
        .user("alice", "secret")
        .access_token_ttl(Duration::from_secs(2))
        .refresh_token_ttl(Duration::from_secs(4))
        .session_max(Duration::from_secs(10))
        .start()
        .await
        .unwrap();
    let (first, (_, mut refresh_token)) =
        lifetimes(login_as(&sandbox, "alice", "secret").await).await;
    assert_eq!(first, (2, 4));

    // t = 3 s and 6 s: 7 s and 4 s of the session left, the full lifetimes.
    for _ in 0..2 {
        tokio::time::advance(Duration::from_secs(3)).await;
        let (given, (_, next)) = lifetimes(refresh(&sandbox, &refresh_token).await).await;
        assert_eq!(given, (2, 4));
        refresh_token = next;
    }

    // t = 9 s: one second of the session left caps both lifetimes.
    tokio::time::advance(Duration::from_secs(3)).await;
    let (given, (access, last_refresh)) = lifetimes(refresh(&sandbox, &refresh_token).await).await;
    assert_eq!(given, (1, 1));

    // t = 9.5 s: the refresh token is live, but half a second is not a
    // lifetime Keycloak can give out; the session is over for refreshes.
    tokio::time::advance(Duration::from_millis(500)).await;
    assert_eq!(
        users_info(&sandbox, Some(&access)).await.status(),
        StatusCode::OK
    );
    let body = assert_auth_error(
        refresh(&sandbox, &last_refresh).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
    assert_eq!(body["errorDescription"], "Session not active");

    // t = 10 s: the session's end, and its last access token's.
    tokio::time::advance(Duration::from_millis(500)).await;
    assert_unauthorized(users_info(&sandbox, Some(&access)).await).await;
}

#[tokio::test(start_paused = true)]
async fn a_session_maximum_below_the_lifetimes_caps_the_first_pair_too() {
    let sandbox = Sandbox::builder()
        .user("alice", "secret")
        .session_max(Duration::from_secs(90))
        .start()
        .await
        .unwrap();
    let (given, (access, _)) = lifetimes(login_as(&sandbox, "alice", "secret").await).await;
    assert_eq!(given, (90, 90));
    tokio::time::advance(Duration::from_secs(90)).await;
    assert_unauthorized(users_info(&sandbox, Some(&access)).await).await;
}

#[tokio::test]
async fn lifetimes_under_one_second_are_refused_at_start() {
    for (setting, builder) in [
        (
            "access_token_ttl",
            Sandbox::builder().access_token_ttl(Duration::from_millis(999)),
        ),
        (
            "refresh_token_ttl",
            Sandbox::builder().refresh_token_ttl(Duration::ZERO),
        ),
        (
            "session_max",
            Sandbox::builder().session_max(Duration::from_millis(1)),
        ),
    ] {
        match builder.start().await {
            Err(err @ StartError::LifetimeUnderOneSecond { .. }) => {
                let message = err.to_string();
                assert!(
                    message.starts_with(setting) && message.contains("at least 1"),
                    "{message}"
                );
                let StartError::LifetimeUnderOneSecond { setting: named, .. } = err else {
                    unreachable!()
                };
                assert_eq!(named, setting);
            }
            other => panic!("{setting}: expected a refusal, got {other:?}"),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_fractional_lifetime_is_served_as_its_whole_seconds() {
    let sandbox = Sandbox::builder()
        .user("alice", "secret")
        .access_token_ttl(Duration::from_millis(1999))
        .start()
        .await
        .unwrap();
    let ((expires_in, _), (access, _)) =
        lifetimes(login_as(&sandbox, "alice", "secret").await).await;
    assert_eq!(expires_in, 1);
    // The token dies when `expiresIn` says, not 999 ms later.
    tokio::time::advance(Duration::from_millis(999)).await;
    assert_eq!(
        users_info(&sandbox, Some(&access)).await.status(),
        StatusCode::OK
    );
    tokio::time::advance(Duration::from_millis(1)).await;
    assert_unauthorized(users_info(&sandbox, Some(&access)).await).await;
}

#[tokio::test(start_paused = true)]
async fn reusable_refresh_tokens_work_until_they_expire_or_the_session_ends() {
    let sandbox = Sandbox::builder()
        .user("alice", "secret")
        .refresh_token_ttl(Duration::from_secs(5))
        .reusable_refresh_tokens(true)
        .start()
        .await
        .unwrap();
    let (_, first_refresh) = login(&sandbox).await;
    let (access_a, _) = pair(refresh(&sandbox, &first_refresh).await).await;
    let (access_b, newer_refresh) = pair(refresh(&sandbox, &first_refresh).await).await;
    assert_ne!(access_a, access_b);
    assert_eq!(
        users_info(&sandbox, Some(&access_a)).await.status(),
        StatusCode::OK
    );

    // t = 3 s: the newer refresh token buys a pair that outlives the first.
    tokio::time::advance(Duration::from_secs(3)).await;
    let (access_c, live_refresh) = pair(refresh(&sandbox, &newer_refresh).await).await;

    // t = 5 s: reuse did not extend the first token; it dies 5 s after login.
    tokio::time::advance(Duration::from_secs(2)).await;
    let body = assert_auth_error(
        refresh(&sandbox, &first_refresh).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
    assert_eq!(body["errorDescription"], "Token is not active");
    assert_eq!(
        refresh(&sandbox, &live_refresh).await.status(),
        StatusCode::OK
    );

    // Logout ends every token of the session, the reusable one included.
    let response = post(
        &sandbox,
        "/auth/v1/logout",
        json!({"clientId": "api", "refreshToken": live_refresh, "accessToken": access_c}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_auth_error(
        refresh(&sandbox, &live_refresh).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
}

#[tokio::test]
async fn refresh_tokens_are_single_use_by_default() {
    let sandbox = alice().await;
    let (_, refresh_token) = login(&sandbox).await;
    assert_eq!(
        refresh(&sandbox, &refresh_token).await.status(),
        StatusCode::OK
    );
    let body = assert_auth_error(
        refresh(&sandbox, &refresh_token).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
    assert_eq!(body["errorDescription"], "Token is not active");
}

// ---- logout ----------------------------------------------------------------

#[tokio::test]
async fn logout_revokes_both_tokens_and_answers_204_empty() {
    let sandbox = alice().await;
    let (access, refresh_token) = login(&sandbox).await;
    let (other_access, _) = login(&sandbox).await;

    let response = post(
        &sandbox,
        "/auth/v1/logout",
        json!({"clientId": "api", "refreshToken": refresh_token, "accessToken": access}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(response.bytes().await.unwrap().is_empty());

    assert_eq!(
        users_info(&sandbox, Some(&access)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let response = refresh(&sandbox, &refresh_token).await;
    assert_auth_error(response, StatusCode::BAD_REQUEST, "invalid_grant").await;
    // Other sessions are untouched.
    assert_eq!(
        users_info(&sandbox, Some(&other_access)).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn logout_ends_the_whole_session_including_refreshed_tokens() {
    let sandbox = alice().await;
    let (first_access, first_refresh) = login(&sandbox).await;
    let (access, refresh_token) = pair(refresh(&sandbox, &first_refresh).await).await;

    let response = post(
        &sandbox,
        "/auth/v1/logout",
        json!({"clientId": "api", "refreshToken": refresh_token, "accessToken": access}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        users_info(&sandbox, Some(&first_access)).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn logout_needs_all_three_fields() {
    let sandbox = alice().await;
    let (access, refresh_token) = login(&sandbox).await;
    let response = post(
        &sandbox,
        "/auth/v1/logout",
        json!({"clientId": "api", "refreshToken": refresh_token}),
    )
    .await;
    assert_auth_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
    let response = post(
        &sandbox,
        "/auth/v1/logout",
        json!({"refreshToken": refresh_token, "accessToken": access}),
    )
    .await;
    assert_auth_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
    // Nothing was revoked by the refused requests.
    assert_eq!(
        users_info(&sandbox, Some(&access)).await.status(),
        StatusCode::OK
    );
}

// ---- authorization code ------------------------------------------------------

#[tokio::test]
async fn the_sandbox_code_buys_a_token_pair_for_the_first_user() {
    let sandbox = Sandbox::builder()
        .user("alice", "secret")
        .user("bob", "hunter2")
        .start()
        .await
        .unwrap();
    let response = post(
        &sandbox,
        "/auth/v1/token/code",
        json!({"clientId": "api", "code": "sandbox-code", "redirectURI": "https://example.com/cb"}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(content_type(&response), "application/vnd.token+json");
    let (access, _) = pair(response).await;
    let info: Value = users_info(&sandbox, Some(&access))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(info["data"]["username"], "alice");

    let response = post(
        &sandbox,
        "/auth/v1/token/code",
        json!({"clientId": "api", "code": "other", "redirectURI": "https://example.com/cb"}),
    )
    .await;
    assert_auth_error(response, StatusCode::BAD_REQUEST, "invalid_grant").await;
    let response = post(
        &sandbox,
        "/auth/v1/token/code",
        json!({"clientId": "api", "code": "sandbox-code"}),
    )
    .await;
    assert_auth_error(response, StatusCode::BAD_REQUEST, "invalid_request").await;
}

// ---- users/info ----------------------------------------------------------------

#[tokio::test]
async fn users_info_answers_a_valid_token_with_the_envelope() {
    let sandbox = alice().await;
    let (access, _) = login(&sandbox).await;
    let first = users_info(&sandbox, Some(&access)).await;
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(content_type(&first), "application/json");
    let first_id = first.headers()["x-request-id"].to_str().unwrap().to_owned();
    let body: Value = first.json().await.unwrap();
    assert_eq!(body["data"]["username"], "alice");
    assert_eq!(body["status"], json!({"message": "success", "errors": []}));
    assert_eq!(body["meta"], json!({}));

    let second = users_info(&sandbox, Some(&access)).await;
    let second_id = second.headers()["x-request-id"].to_str().unwrap();
    assert!(!first_id.is_empty());
    assert_ne!(first_id, second_id);
}

async fn assert_unauthorized(response: Response) {
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(content_type(&response), "application/json");
    assert!(response.headers().contains_key("x-request-id"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({"message": "Unauthorized"}));
}

#[tokio::test]
async fn users_info_refuses_a_missing_unknown_or_revoked_token() {
    let sandbox = alice().await;
    assert_unauthorized(users_info(&sandbox, None).await).await;
    assert_unauthorized(users_info(&sandbox, Some("sbx-at-made-up")).await).await;
    let response = client()
        .get(format!("{}/sample/v1/users/info", sandbox.base_url()))
        .header("authorization", "Basic YWxpY2U6c2VjcmV0")
        .send()
        .await
        .unwrap();
    assert_unauthorized(response).await;

    let (access, _) = login(&sandbox).await;
    sandbox.revoke_all();
    assert_unauthorized(users_info(&sandbox, Some(&access)).await).await;
}

#[tokio::test(start_paused = true)]
async fn users_info_refuses_an_expired_token() {
    let sandbox = Sandbox::builder()
        .user("alice", "secret")
        .access_token_ttl(Duration::from_secs(1))
        .start()
        .await
        .unwrap();
    let (access, _) = login(&sandbox).await;
    tokio::time::advance(Duration::from_millis(900)).await;
    assert_eq!(
        users_info(&sandbox, Some(&access)).await.status(),
        StatusCode::OK
    );
    tokio::time::advance(Duration::from_millis(100)).await;
    assert_unauthorized(users_info(&sandbox, Some(&access)).await).await;
}

// ---- faults ----------------------------------------------------------------

#[tokio::test]
async fn a_status_fault_answers_with_a_gateway_body_then_wears_off() {
    let sandbox = alice().await;
    let (_, refresh_token) = login(&sandbox).await;
    sandbox.inject(Operation::Refresh, Fault::Status(503), 2);

    for _ in 0..2 {
        let response = refresh(&sandbox, &refresh_token).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(content_type(&response), "application/json");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body, json!({"message": "Service Unavailable"}));
    }
    // The faulted requests did not use up the refresh token.
    assert_eq!(
        refresh(&sandbox, &refresh_token).await.status(),
        StatusCode::OK
    );
    assert_eq!(sandbox.count(Operation::Refresh), 3);
}

#[tokio::test]
async fn an_invalid_grant_fault_answers_as_keycloak_and_leaves_the_session_live() {
    let sandbox = alice().await;
    let (access, refresh_token) = login(&sandbox).await;
    sandbox.inject(Operation::Refresh, Fault::InvalidGrant, 1);
    sandbox.inject(Operation::Login, Fault::InvalidGrant, 1);

    let body = assert_auth_error(
        refresh(&sandbox, &refresh_token).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
    assert_eq!(
        body,
        json!({"error": "invalid_grant", "errorDescription": "Session not active"})
    );
    let body = assert_auth_error(
        login_as(&sandbox, "alice", "secret").await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
    assert_eq!(body["errorDescription"], "Account disabled");

    // The session the fault spoke of is untouched.
    assert_eq!(
        users_info(&sandbox, Some(&access)).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        refresh(&sandbox, &refresh_token).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn faults_are_first_in_first_out_and_per_operation() {
    let sandbox = alice().await;
    sandbox.inject(Operation::Login, Fault::Status(500), 1);
    sandbox.inject(Operation::Login, Fault::Status(504), 1);
    sandbox.inject(Operation::Refresh, Fault::Status(502), 1);
    let statuses = [
        login_as(&sandbox, "alice", "secret").await.status(),
        login_as(&sandbox, "alice", "secret").await.status(),
        login_as(&sandbox, "alice", "secret").await.status(),
    ];
    assert_eq!(
        statuses,
        [
            StatusCode::INTERNAL_SERVER_ERROR,
            StatusCode::GATEWAY_TIMEOUT,
            StatusCode::OK
        ]
    );

    sandbox.clear_faults();
    let (_, refresh_token) = login(&sandbox).await;
    assert_eq!(
        refresh(&sandbox, &refresh_token).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn rate_limiting_sends_retry_after_in_whole_seconds_rounded_up() {
    let sandbox = alice().await;
    sandbox.inject(
        Operation::Login,
        Fault::RateLimited {
            retry_after: Duration::from_millis(1500),
        },
        1,
    );
    sandbox.inject(
        Operation::Login,
        Fault::RateLimited {
            retry_after: Duration::from_secs(7),
        },
        1,
    );
    let response = login_as(&sandbox, "alice", "secret").await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()["retry-after"], "2");
    let response = login_as(&sandbox, "alice", "secret").await;
    assert_eq!(response.headers()["retry-after"], "7");
}

/// Dynata's gateway in a maintenance window: `503` with `Retry-After`, the
/// answer the SDK documents honouring on every transient status (and
/// keeping in `Error::retry_after` when it is longer than its retries may
/// wait). `Status(503)` has no `Retry-After`, and `RateLimited` is a `429`:
/// without this, no test could rehearse it.
#[tokio::test]
async fn unavailable_is_a_503_with_retry_after_in_whole_seconds_rounded_up() {
    let sandbox = alice().await;
    sandbox.inject(
        Operation::Login,
        Fault::Unavailable {
            retry_after: Duration::from_millis(1500),
        },
        1,
    );
    let response = login_as(&sandbox, "alice", "secret").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "2");
    assert_eq!(content_type(&response), "application/json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({"message": "Service Unavailable"}));

    let response = post(
        &sandbox,
        "/__sandbox/faults",
        json!({"operation": "usersInfo", "fault": {"unavailable": {"retryAfterMs": 30000}}}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = users_info(&sandbox, None).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "30");
}

#[tokio::test]
async fn an_html_bad_gateway_is_a_502_html_page() {
    let sandbox = alice().await;
    sandbox.inject(Operation::Login, Fault::HtmlBadGateway, 1);
    let response = login_as(&sandbox, "alice", "secret").await;
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    assert!(content_type(&response).starts_with("text/html"));
    let body = response.text().await.unwrap();
    assert!(body.contains("<h1>502 Bad Gateway</h1>"), "{body}");
}

#[tokio::test(start_paused = true)]
async fn a_delay_waits_then_answers_normally() {
    let sandbox = alice().await;
    sandbox.inject(Operation::Login, Fault::Delay(Duration::from_secs(30)), 1);
    let started = tokio::time::Instant::now();
    let response = login_as(&sandbox, "alice", "secret").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_secs(30));
}

#[tokio::test]
async fn a_reset_connection_is_a_client_side_error() {
    let sandbox = alice().await;
    sandbox.inject(Operation::Login, Fault::ResetConnection, 1);
    let error = client()
        .post(format!("{}/auth/v1/token/password", sandbox.base_url()))
        .json(&json!({"clientId": "api", "username": "alice", "password": "secret"}))
        .send()
        .await
        .expect_err("a reset connection must not produce a response");
    assert!(error.is_request() || error.is_connect(), "{error:?}");
    assert_eq!(sandbox.count(Operation::Login), 1);
    // The server carries on.
    login(&sandbox).await;
}

#[tokio::test]
async fn a_reset_is_a_tcp_rst_not_a_clean_close() {
    let sandbox = alice().await;
    sandbox.inject(Operation::UsersInfo, Fault::ResetConnection, 1);
    let mut stream = TcpStream::connect(sandbox.addr()).await.unwrap();
    stream
        .write_all(b"GET /sample/v1/users/info HTTP/1.1\r\nhost: sandbox\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let error = stream
        .read_to_end(&mut buf)
        .await
        .expect_err("expected a reset");
    assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset);
    assert!(buf.is_empty());
}

#[tokio::test]
async fn a_malformed_body_is_truncated_json_with_status_200() {
    let sandbox = alice().await;
    sandbox.inject(Operation::Refresh, Fault::MalformedBody, 1);
    let response = refresh(&sandbox, "anything").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(content_type(&response), "application/vnd.token+json");
    let body = response.bytes().await.unwrap();
    assert!(body.starts_with(br#"{"accessToken""#));
    assert!(serde_json::from_slice::<Value>(&body).is_err());
}

#[tokio::test]
async fn faults_on_users_info_still_carry_a_request_id() {
    let sandbox = alice().await;
    sandbox.inject(Operation::UsersInfo, Fault::Status(500), 1);
    let response = users_info(&sandbox, None).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(response.headers().contains_key("x-request-id"));
}

#[tokio::test]
async fn a_steady_rate_fails_every_nth_request_with_its_faults_in_turn() {
    let sandbox = alice().await;
    let (access, _) = login(&sandbox).await;
    sandbox.fail_one_in(
        Operation::UsersInfo,
        3,
        [Fault::Status(503), Fault::HtmlBadGateway],
    );
    // A queued fault comes first, and its request counts towards the rate.
    sandbox.inject(Operation::UsersInfo, Fault::Status(500), 1);
    assert_eq!(
        users_info_statuses(&sandbox, &access, 9).await,
        [500, 200, 503, 200, 200, 502, 200, 200, 503]
    );
    // Other operations are untouched.
    assert_eq!(
        login_as(&sandbox, "alice", "secret").await.status(),
        StatusCode::OK
    );

    sandbox.clear_faults();
    assert_eq!(users_info_statuses(&sandbox, &access, 3).await, [200; 3]);
}

#[tokio::test]
async fn a_steady_rate_can_be_set_and_ended_over_http() {
    let sandbox = alice().await;
    let (access, _) = login(&sandbox).await;
    let response = post(
        &sandbox,
        "/__sandbox/faults",
        json!({"operation": "usersInfo", "fault": {"status": 503}, "oneIn": 2}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"operation": "usersInfo", "pending": 0, "oneIn": 2})
    );
    assert_eq!(
        users_info_statuses(&sandbox, &access, 4).await,
        [200, 503, 200, 503]
    );

    let ended = post(
        &sandbox,
        "/__sandbox/faults",
        json!({"operation": "usersInfo", "fault": {"status": 503}, "oneIn": 0}),
    )
    .await;
    assert_eq!(ended.status(), StatusCode::OK);
    assert_eq!(users_info_statuses(&sandbox, &access, 2).await, [200; 2]);
}

// ---- counters ----------------------------------------------------------------

#[tokio::test]
async fn every_request_counts_faulted_and_rejected_ones_too() {
    let sandbox = alice().await;
    for op in Operation::ALL {
        assert_eq!(sandbox.count(op), 0);
    }
    sandbox.inject(Operation::Login, Fault::Status(503), 1);
    login_as(&sandbox, "alice", "secret").await; // faulted
    login_as(&sandbox, "alice", "wrong").await; // refused
    post_raw(&sandbox, "/auth/v1/token/password", "garbage").await; // malformed
    let (access, _) = login(&sandbox).await;
    users_info(&sandbox, Some(&access)).await;
    users_info(&sandbox, None).await;

    assert_eq!(sandbox.count(Operation::Login), 4);
    assert_eq!(sandbox.count(Operation::UsersInfo), 2);
    assert_eq!(sandbox.count(Operation::Refresh), 0);
    assert_eq!(sandbox.count(Operation::Logout), 0);
    assert_eq!(sandbox.count(Operation::ExchangeCode), 0);
}

// ---- admin API ---------------------------------------------------------------

#[tokio::test]
async fn faults_can_be_injected_over_http() {
    let sandbox = alice().await;
    let response = post(
        &sandbox,
        "/__sandbox/faults",
        json!({"operation": "refresh", "fault": {"status": 503}, "times": 2}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({"operation": "refresh", "pending": 2}));

    for (fault, op) in [
        (json!({"rateLimited": {"retryAfterMs": 2500}}), "login"),
        (json!("htmlBadGateway"), "login"),
        (json!({"delay": {"ms": 1}}), "login"),
        (json!("malformedBody"), "login"),
        (json!("invalidGrant"), "login"),
        (json!("resetConnection"), "usersInfo"),
    ] {
        let response = post(
            &sandbox,
            "/__sandbox/faults",
            json!({"operation": op, "fault": fault}),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK, "{fault}");
    }

    let statuses = [
        refresh(&sandbox, "x").await.status(),
        refresh(&sandbox, "x").await.status(),
        refresh(&sandbox, "x").await.status(),
    ];
    assert_eq!(
        statuses,
        [
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::SERVICE_UNAVAILABLE,
            StatusCode::BAD_REQUEST
        ]
    );

    let limited = login_as(&sandbox, "alice", "secret").await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.headers()["retry-after"], "3");
    assert_eq!(
        login_as(&sandbox, "alice", "secret").await.status(),
        StatusCode::BAD_GATEWAY
    );
    assert_eq!(
        login_as(&sandbox, "alice", "secret").await.status(),
        StatusCode::OK
    ); // delayed
    let malformed = login_as(&sandbox, "alice", "secret").await;
    assert!(malformed.json::<Value>().await.is_err());
    assert_auth_error(
        login_as(&sandbox, "alice", "secret").await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
    assert!(
        client()
            .get(format!("{}/sample/v1/users/info", sandbox.base_url()))
            .send()
            .await
            .is_err()
    );
}

#[tokio::test]
async fn admin_rejects_bad_fault_requests_with_400() {
    let sandbox = alice().await;
    for body in [
        json!({"operation": "teleport", "fault": {"status": 503}}),
        json!({"operation": "login", "fault": {"status": 42}}),
        json!({"operation": "login", "fault": "explode"}),
        json!({"operation": "login"}),
        json!({"operation": "login", "fault": {"status": 503}, "times": -1}),
        json!({"operation": "login", "fault": {"status": 503}, "typo": 1}),
        json!({"operation": "login", "fault": {"status": 503}, "times": 2, "oneIn": 5}),
    ] {
        let response = post(&sandbox, "/__sandbox/faults", body.clone()).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"], "invalid_request", "{body}");
    }
    // Nothing was queued.
    assert_eq!(
        login_as(&sandbox, "alice", "secret").await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn admin_reports_counts_clears_faults_and_revokes() {
    let sandbox = alice().await;
    let (access, _) = login(&sandbox).await;
    sandbox.inject(Operation::Login, Fault::Status(500), 5);

    let base = sandbox.base_url();
    let counts: Value = client()
        .get(format!("{base}/__sandbox/counts"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // One counter per operation, the Demand API's included; only login ran.
    let counts = counts.as_object().unwrap();
    assert_eq!(counts.len(), Operation::ALL.len());
    for op in Operation::ALL {
        let expected = u64::from(op == Operation::Login);
        assert_eq!(counts[op.name()], expected, "{op}");
    }

    let cleared = client()
        .delete(format!("{base}/__sandbox/faults"))
        .send()
        .await
        .unwrap();
    assert_eq!(cleared.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        login_as(&sandbox, "alice", "secret").await.status(),
        StatusCode::OK
    );

    let revoked = client()
        .post(format!("{base}/__sandbox/revoke"))
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    assert_unauthorized(users_info(&sandbox, Some(&access)).await).await;
}

// ---- robustness and lifecycle --------------------------------------------------

#[tokio::test]
async fn unknown_paths_and_methods_get_gateway_errors() {
    let sandbox = alice().await;
    let response = client()
        .get(format!("{}/nope", sandbox.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"message": "Not Found"})
    );
    let response = client()
        .get(format!("{}/auth/v1/token/password", sandbox.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn garbage_bytes_and_half_closed_connections_do_not_hurt_the_server() {
    let sandbox = alice().await;

    let mut garbage = TcpStream::connect(sandbox.addr()).await.unwrap();
    garbage
        .write_all(b"\x00\x01\x02 NOT HTTP \xff\r\n\r\n")
        .await
        .unwrap();
    // Hyper refuses what it cannot parse with a bare 400, then hangs up.
    let (head, body) = split_response(&read_until_closed(&mut garbage).await);
    assert!(head.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{head}");
    assert!(head.contains("connection: close"), "{head}");
    assert!(body.is_empty(), "{body:?}");

    // A request whose body never arrives in full: the client stops writing.
    let mut half = TcpStream::connect(sandbox.addr()).await.unwrap();
    half.write_all(
        b"POST /auth/v1/token/password HTTP/1.1\r\nhost: sandbox\r\ncontent-length: 100\r\n\r\n{\"cli",
    )
    .await
    .unwrap();
    half.shutdown().await.unwrap();
    // The login handler ran (and counted the request), could not read the
    // body, and answered the identity server's 400 on the still-open half
    // of the socket, then the server closed it.
    let (head, body) = split_response(&read_until_closed(&mut half).await);
    assert!(head.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{head}");
    assert!(
        head.contains("content-type: application/vnd.auth.error+json"),
        "{head}"
    );
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        body,
        json!({"error": "invalid_request", "errorDescription": "Could not read the request body"})
    );
    assert_eq!(sandbox.count(Operation::Login), 1);

    // A client that connects and says nothing before hanging up.
    drop(TcpStream::connect(sandbox.addr()).await.unwrap());

    // None of it hurt: the next login works.
    let (access, _) = login(&sandbox).await;
    assert_eq!(sandbox.count(Operation::Login), 2);
    assert_eq!(
        users_info(&sandbox, Some(&access)).await.status(),
        StatusCode::OK
    );
}

/// A raw HTTP/1.1 response split into its head (as text) and body.
fn split_response(raw: &[u8]) -> (String, Vec<u8>) {
    let end = raw
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of head in {:?}", String::from_utf8_lossy(raw)));
    (
        String::from_utf8_lossy(&raw[..end + 2]).into_owned(),
        raw[end + 4..].to_vec(),
    )
}

/// Everything the server sends until it closes the connection; a server
/// that keeps it open for 10 s fails the test.
async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("the server closes the connection")
        .expect("a clean close, not a reset");
    answer
}

#[tokio::test]
async fn dropping_the_sandbox_stops_the_server() {
    let sandbox = alice().await;
    let addr = sandbox.addr();
    login(&sandbox).await;
    assert!(format!("{sandbox:?}").contains(&sandbox.base_url()));
    assert!(!format!("{sandbox:?}").contains("secret"));
    drop(sandbox);
    // Abort takes effect when the runtime next polls the server task.
    for _ in 0..100 {
        if TcpStream::connect(addr).await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the sandbox still accepts connections after being dropped");
}

#[tokio::test]
async fn a_fixed_port_is_honoured_and_a_taken_one_is_an_error() {
    let first = alice().await;
    let port = first.addr().port();
    let clash = Sandbox::builder().port(port).start().await;
    assert!(
        matches!(clash, Err(StartError::Bind { port: p, .. }) if p == port),
        "{clash:?}"
    );
    drop(first);
    // The port is free again once the server task has ended.
    for _ in 0..100 {
        if let Ok(again) = Sandbox::builder().port(port).start().await {
            assert_eq!(again.base_url(), format!("http://127.0.0.1:{port}"));
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the port was not freed");
}

/// The binary, started as a user would, answers Dynata's getting-started
/// request sent with the same method, header and body as the curl command.
#[tokio::test]
async fn the_binary_answers_the_getting_started_request() {
    use tokio::io::AsyncBufReadExt;

    let mut binary = tokio::process::Command::new(env!("CARGO_BIN_EXE_dynata-sandbox"))
        .args(["--port", "0", "--user", "<Your username>:<Your Password>"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts");
    let stdout = binary.stdout.take().expect("piped stdout");
    let mut first_line = String::new();
    tokio::time::timeout(
        Duration::from_secs(10),
        tokio::io::BufReader::new(stdout).read_line(&mut first_line),
    )
    .await
    .expect("the binary announces itself in time")
    .expect("a line");
    let base_url = first_line
        .split_whitespace()
        .find(|word| word.starts_with("http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("no URL in {first_line:?}"));
    install_crypto_provider();
    let response = Client::new()
        .post(format!("{base_url}/auth/v1/token/password"))
        .header("Content-Type", "application/json")
        .body(
            r#"{"clientId": "api", "password": "<Your Password>", "username": "<Your username>"}"#,
        )
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::OK);
    let pair: Value = response.json().await.expect("a token pair");
    assert!(
        pair["accessToken"].as_str().is_some_and(|t| !t.is_empty()),
        "{pair}"
    );
    binary.kill().await.expect("stopped");
}

/// The binary refuses a zero lifetime before it listens, with the reason.
#[tokio::test]
async fn the_binary_refuses_a_zero_lifetime() {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_dynata-sandbox"))
        .args(["--port", "0", "--access-ttl", "0"])
        .output()
        .await
        .expect("the binary runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("`--access-ttl` must be at least 1 second"),
        "{stderr}"
    );
    assert!(output.stdout.is_empty());
}

/// `dynata-sandbox --help | head -3` is a usual way to read the usage: a
/// reader that stops early is not a panic with a backtrace (as `dynata`
/// does it too).
#[test]
fn help_into_a_closed_pipe_is_not_a_panic() {
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_dynata-sandbox"))
        .arg("--help")
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(output.status.code(), Some(0), "{stderr}");
}

/// A lifetime too long for the clock is served, not a panic in the server.
#[tokio::test]
async fn lifetimes_too_long_for_the_clock_are_served() {
    let sandbox = Sandbox::builder()
        .user("alice", "secret")
        .access_token_ttl(Duration::MAX)
        .refresh_token_ttl(Duration::MAX)
        .session_max(Duration::MAX)
        .start()
        .await
        .unwrap();
    let ((expires_in, refresh_expires_in), (access, refresh_token)) =
        lifetimes(login_as(&sandbox, "alice", "secret").await).await;
    assert_eq!((expires_in, refresh_expires_in), (u64::MAX, u64::MAX));
    assert_eq!(
        users_info(&sandbox, Some(&access)).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        refresh(&sandbox, &refresh_token).await.status(),
        StatusCode::OK
    );
}

/// `--help` documents every option, the Demand API's included.
#[tokio::test]
async fn the_binary_documents_its_options() {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_dynata-sandbox"))
        .arg("--help")
        .output()
        .await
        .expect("the binary runs");
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for option in [
        "--port",
        "--user",
        "--access-ttl",
        "--refresh-ttl",
        "--session-max",
        "--reusable-refresh-tokens",
        "--account",
        "--feasibility-delay",
    ] {
        assert!(help.contains(option), "{option} missing from:\n{help}");
    }
    // And the admin API, which no flag reaches (a walkthrough found it in
    // the README only), with an example that works as printed.
    for endpoint in [
        "/__sandbox/faults",
        "/__sandbox/counts",
        "/__sandbox/revoke",
    ] {
        assert!(help.contains(endpoint), "{endpoint} missing from:\n{help}");
    }
    let example = help
        .split("-d '")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .expect("an example body");
    let sandbox = alice().await;
    let body: Value = serde_json::from_str(example).expect("JSON");
    let queued = post(&sandbox, "/__sandbox/faults", body).await;
    assert_eq!(queued.status(), StatusCode::OK, "{example}");
}

/// A `retry_after` too long to count in seconds must still be a 429 (the
/// crate treats overlong durations as "never" elsewhere, see `later.rs`),
/// not a panic in the connection task and no response at all.
#[tokio::test]
async fn rate_limiting_with_the_longest_retry_after_still_answers_429() {
    let sandbox = alice().await;
    sandbox.inject(
        Operation::Login,
        Fault::RateLimited {
            retry_after: Duration::MAX,
        },
        1,
    );
    let response = client()
        .post(format!("{}/auth/v1/token/password", sandbox.base_url()))
        .json(&json!({"clientId": "api", "username": "alice", "password": "secret"}))
        .send()
        .await;
    let response = response.expect("an answer, not a dropped connection");
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_ne!(response.headers()["retry-after"], "0");
}

/// `AnswerLost` carries the request out, then resets the connection: the
/// refresh token sent is spent though its new pair never arrived, so the
/// client's next refresh with it is refused, as Dynata refuses a spent one.
#[tokio::test]
async fn an_answer_lost_refresh_spent_its_refresh_token() {
    let sandbox = alice().await;
    let (_, refresh_token) = login(&sandbox).await;
    sandbox.inject(Operation::Refresh, Fault::AnswerLost, 1);
    let error = client()
        .post(format!("{}/auth/v1/token/refresh", sandbox.base_url()))
        .json(&json!({"clientId": "api", "refreshToken": refresh_token}))
        .send()
        .await
        .expect_err("an answer lost must not arrive");
    assert!(error.is_request() || error.is_connect(), "{error:?}");
    let again = refresh(&sandbox, &refresh_token).await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
    let body: Value = again.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
}

/// Over the admin API, `"answerLost"` is [`Fault::AnswerLost`]: the
/// refresh is carried out (its refresh token spent) and its answer never
/// arrives.
#[tokio::test]
async fn answer_lost_is_injected_over_the_admin_api() {
    let sandbox = alice().await;
    let (_, refresh_token) = login(&sandbox).await;
    let injected = post(
        &sandbox,
        "/__sandbox/faults",
        json!({"operation": "refresh", "fault": "answerLost"}),
    )
    .await;
    assert_eq!(injected.status(), StatusCode::OK);
    let lost = client()
        .post(format!("{}/auth/v1/token/refresh", sandbox.base_url()))
        .json(&json!({"clientId": "api", "refreshToken": refresh_token}))
        .send()
        .await;
    assert!(lost.is_err(), "{lost:?}");
    let again = refresh(&sandbox, &refresh_token).await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
}

/// The line it prints once listening goes to a reader that may be gone
/// (`dynata-sandbox | grep -m1 listening`, a log collector that died, a
/// service started with stdout closed): the sandbox goes on serving, as
/// `--help` into a closed pipe is no panic either. It panicked on that
/// line, and the process ended with the server.
#[tokio::test]
async fn its_listening_line_into_a_closed_pipe_does_not_end_it() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_dynata-sandbox"))
        .args(["--port", &port.to_string()])
        .stdin(std::process::Stdio::null())
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary runs");
    let counts = format!("http://127.0.0.1:{port}/__sandbox/counts");
    let client = Client::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut answered = 0;
    while answered < 2 {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut stderr)
                .await
                .unwrap();
            panic!("it ended ({status}): {stderr}");
        }
        assert!(std::time::Instant::now() < deadline, "never served");
        match client.get(&counts).send().await {
            Ok(response) if response.status() == StatusCode::OK => answered += 1,
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    assert!(child.try_wait().unwrap().is_none(), "still serving");
    child.kill().await.unwrap();
}

/// `AnswerLost` loses whatever answer the request gets, as on the Demand
/// API (where a refusal, a `401` say, is lost too): a login the identity
/// server refuses (another client id) gets no answer either, and the fault
/// is not spent on an answer that arrives whole.
#[tokio::test]
async fn an_answer_lost_auth_refusal_never_arrives() {
    let sandbox = alice().await;
    sandbox.inject(Operation::Login, Fault::AnswerLost, 1);
    let lost = client()
        .post(format!("{}/auth/v1/token/password", sandbox.base_url()))
        .json(&json!({"clientId": "another", "username": "alice", "password": "secret"}))
        .send()
        .await;
    assert!(lost.is_err(), "an answer arrived: {lost:?}");
    assert_eq!(sandbox.count(Operation::Login), 1);
}
