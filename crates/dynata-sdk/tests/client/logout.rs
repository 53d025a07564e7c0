//! Logout: what it sends, the empty 204, and what comes after.

use super::*;

#[tokio::test]
async fn logout_sends_all_three_fields_accepts_204_and_the_next_call_logs_in_afresh() {
    let harness = Harness::new().await;
    let login = harness.pair_on(LOGIN, Pair::new("a1", "r1"), 1).await;
    let logout = harness
        .server
        .mock_async(|when, then| {
            when.method(POST)
                .path(LOGOUT)
                .json_body(json!({"clientId": "api", "refreshToken": "r1", "accessToken": "a1"}));
            then.status(204);
        })
        .await;
    let relogin = harness.pair_on(LOGIN, Pair::new("a2", "r2"), 0).await;
    harness.token().await;
    harness.client.logout().await.expect("logout");
    assert_eq!(logout.calls_async().await, 1);
    assert_eq!(harness.current_secret().await, "a2");
    assert_eq!(
        (login.calls_async().await, relogin.calls_async().await),
        (1, 1)
    );
}

#[tokio::test]
async fn logout_without_a_session_sends_nothing() {
    let harness = Harness::new().await;
    let logout = harness.answer(LOGOUT, 204, "", 0).await;
    harness.client.logout().await.expect("a no-op");
    harness.client.logout().await.expect("still a no-op");
    assert_eq!(logout.calls_async().await, 0);
}
