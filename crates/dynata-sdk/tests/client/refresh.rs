//! Proactive refresh in two windows, rotation, and the fallback to password.

use super::*;

#[tokio::test]
async fn inside_the_soft_window_the_current_token_is_served_while_one_refresh_runs() {
    let harness = Harness::new().await;
    harness.pair_on(LOGIN, Pair::new("a1", "r1"), 0).await;
    let refresh = harness
        .slow_pair_on(REFRESH, Pair::new("a2", "r2"), 300)
        .await;
    let first = harness.token().await;
    // 30-minute token, 5-minute soft window: at 25:01 the refresh starts, and
    // while it is under way callers get the current token at once.
    harness.advance(25 * 60 + 1).await;
    assert!(harness.token().await.same_as(&first));
    eventually("one background refresh", || async {
        harness.current_secret().await == "a2"
    })
    .await;
    assert_eq!(refresh.calls_async().await, 1);
}

#[tokio::test]
async fn inside_the_hard_margin_callers_wait_for_the_new_token() {
    let harness = Harness::new().await;
    harness.pair_on(LOGIN, Pair::new("a1", "r1"), 0).await;
    let refresh = harness
        .slow_pair_on(REFRESH, Pair::new("a2", "r2"), 300)
        .await;
    harness.token().await;
    // 29:30 is inside the 1-minute hard margin: once the expiry timer has
    // seen it, the old token (still valid for 30 s) is no longer served.
    harness.advance(29 * 60 + 30).await;
    let token = harness.token().await;
    assert_eq!(token.secret(), "a2");
    assert_eq!(refresh.calls_async().await, 1);
}

#[tokio::test]
async fn one_refresh_at_expiry_and_the_rotated_refresh_token_is_kept() {
    let harness = Harness::new().await;
    harness.pair_on(LOGIN, Pair::new("a1", "r1"), 1).await;
    let first_refresh = harness
        .server
        .mock_async(|when, then| {
            when.method(POST)
                .path(REFRESH)
                .json_body(json!({"clientId": "api", "refreshToken": "r1"}));
            then.status(200).body(Pair::new("a2", "r2").json());
        })
        .await;
    let second_refresh = harness
        .server
        .mock_async(|when, then| {
            when.method(POST)
                .path(REFRESH)
                .json_body(json!({"clientId": "api", "refreshToken": "r2"}));
            then.status(200).body(Pair::new("a3", "r3").json());
        })
        .await;
    harness.token().await;
    harness.advance(30 * 60).await;
    assert_eq!(harness.current_secret().await, "a2");
    harness.advance(30 * 60).await;
    assert_eq!(harness.current_secret().await, "a3");
    assert_eq!(
        (
            first_refresh.calls_async().await,
            second_refresh.calls_async().await
        ),
        (1, 1)
    );
}

#[tokio::test]
async fn a_rejected_refresh_token_falls_back_to_the_password() {
    let harness = Harness::new().await;
    let login = harness.pair_on(LOGIN, Pair::new("a1", "r1"), 1).await;
    let refresh = harness
        .answer(
            REFRESH,
            400,
            r#"{"error":"invalid_grant","errorDescription":"Token is not active"}"#,
            0,
        )
        .await;
    let relogin = harness.pair_on(LOGIN, Pair::new("a2", "r2"), 0).await;
    harness.token().await;
    harness.advance(30 * 60).await;
    assert_eq!(harness.current_secret().await, "a2");
    assert_eq!(
        (
            login.calls_async().await,
            refresh.calls_async().await,
            relogin.calls_async().await
        ),
        (1, 1, 1)
    );
}

#[tokio::test]
async fn an_expired_refresh_token_is_not_sent() {
    let harness = Harness::new().await;
    // The refresh token dies before the access token's soft window opens.
    harness
        .pair_on(LOGIN, Pair::new("a1", "r1").lifetimes(1800, 600), 1)
        .await;
    let refresh = harness.pair_on(REFRESH, Pair::new("x", "x"), 0).await;
    let relogin = harness.pair_on(LOGIN, Pair::new("a2", "r2"), 0).await;
    harness.token().await;
    harness.advance(30 * 60).await;
    assert_eq!(harness.current_secret().await, "a2");
    assert_eq!(
        (refresh.calls_async().await, relogin.calls_async().await),
        (0, 1)
    );
}

#[tokio::test]
async fn the_old_token_is_served_while_refreshes_fail() {
    let harness = Harness::with(|b| b.retry_policy(RetryPolicy::none())).await;
    harness.pair_on(LOGIN, Pair::new("a1", "r1"), 1).await;
    let refresh = harness
        .answer(REFRESH, 503, r#"{"message":"Service Unavailable"}"#, 0)
        .await;
    let first = harness.token().await;
    // Past the soft window and into the hard margin; the token is still valid.
    harness.advance(29 * 60 + 30).await;
    eventually("the background refresh failed", || async {
        refresh.calls_async().await >= 1
    })
    .await;
    let served = harness.token().await;
    assert!(served.same_as(&first));
    // Once it has expired, the failure is the caller's.
    harness.advance(31).await;
    let error = harness
        .client
        .access_token()
        .await
        .expect_err("no valid token left");
    assert!(
        matches!(error, dynata_sdk::Error::Api { status: 503, .. }),
        "{error:?}"
    );
}
