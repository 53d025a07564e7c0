//! Transient failures are retried with backoff; `Retry-After` is honoured.

use super::*;

#[tokio::test]
async fn a_503_is_retried_after_a_backoff() {
    let harness = Harness::new().await;
    let unavailable = harness
        .answer(LOGIN, 503, "<html><title>503</title></html>", 1)
        .await;
    let login = harness.pair_on(LOGIN, Pair::new("a1", "r1"), 0).await;
    let client = harness.client.clone();
    let caller = tokio::spawn(async move { client.access_token().await });
    // The first backoff is 125-250 ms of the clock's time, not of ours.
    until_sleeping(
        &harness.clock,
        Duration::from_millis(125)..=Duration::from_millis(250),
    )
    .await;
    assert_eq!(login.calls_async().await, 0, "no retry before the backoff");
    advance(&harness.clock, Duration::from_millis(250)).await;
    assert_eq!(caller.await.expect("task").expect("retried").secret(), "a1");
    assert_eq!(
        (unavailable.calls_async().await, login.calls_async().await),
        (1, 1)
    );
}

#[tokio::test]
async fn a_429_waits_exactly_as_long_as_retry_after_says() {
    let harness = Harness::new().await;
    let limited = harness
        .server
        .mock_async(|when, then| {
            when.method(POST).path(LOGIN);
            then.status(429)
                .header("retry-after", "7")
                .body(r#"{"message":"Too Many Requests"}"#);
        })
        .await;
    limited.up_to_n_times_async(1).await;
    let login = harness.pair_on(LOGIN, Pair::new("a1", "r1"), 0).await;
    let client = harness.client.clone();
    let caller = tokio::spawn(async move { client.access_token().await });
    until_sleeping(
        &harness.clock,
        Duration::from_secs(7)..=Duration::from_secs(7),
    )
    .await;
    harness.advance(6).await;
    tokio::task::yield_now().await;
    assert_eq!(login.calls_async().await, 0, "retried before Retry-After");
    harness.advance(1).await;
    assert_eq!(caller.await.expect("task").expect("retried").secret(), "a1");
    assert_eq!(
        (limited.calls_async().await, login.calls_async().await),
        (1, 1)
    );
}

#[tokio::test]
async fn a_retry_after_longer_than_the_budget_is_a_rate_limit_error() {
    let harness = Harness::new().await;
    let limited = harness
        .server
        .mock_async(|when, then| {
            when.method(POST).path(LOGIN);
            then.status(429).header("retry-after", "3600");
        })
        .await;
    let error = harness
        .client
        .access_token()
        .await
        .expect_err("rate limited");
    assert!(
        matches!(error, dynata_sdk::Error::RateLimited { retry_after: Some(d) } if d.as_secs() == 3600),
        "{error:?}"
    );
    assert_eq!(limited.calls_async().await, 1);
}

#[tokio::test]
async fn retries_stop_at_the_attempt_budget() {
    let policy = RetryPolicy {
        max_attempts: 3,
        ..RetryPolicy::default()
    };
    let harness = Harness::with(|b| b.retry_policy(policy)).await;
    let unavailable = harness
        .answer(LOGIN, 502, "<html>Bad Gateway</html>", 0)
        .await;
    let client = harness.client.clone();
    let caller = tokio::spawn(async move { client.access_token().await });
    for attempt in 1..3 {
        eventually("an attempt", || async {
            unavailable.calls_async().await == attempt
        })
        .await;
        until_sleeping(&harness.clock, Duration::ZERO..=Duration::from_secs(10)).await;
        harness.advance(10).await;
    }
    let error = caller.await.expect("task").expect_err("gave up");
    assert!(
        matches!(error, dynata_sdk::Error::Api { status: 502, .. }),
        "{error:?}"
    );
    assert_eq!(unavailable.calls_async().await, 3);
}

#[tokio::test]
async fn a_refused_connection_is_a_transport_error() {
    // Bind a port, then free it, so nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let client = Client::builder()
        .credentials(Credentials::new("alice", PASSWORD))
        .environment(Environment::custom(&format!("http://127.0.0.1:{port}")).expect("url"))
        .retry_policy(RetryPolicy::none())
        .build()
        .expect("valid");
    let error = client.access_token().await.expect_err("nothing listens");
    assert!(
        matches!(error, dynata_sdk::Error::Transport { .. }),
        "{error:?}"
    );
    assert!(error.is_transient());
}

#[tokio::test]
async fn an_endless_retry_after_under_an_unbounded_budget_neither_panics_nor_spins() {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);
    let policy = RetryPolicy {
        max_attempts: 3,
        max_total_wait: Duration::MAX,
        ..RetryPolicy::default()
    };
    let harness = Harness::with(|b| b.retry_policy(policy)).await;
    let limited = harness
        .server
        .mock_async(|when, then| {
            when.method(POST).path(LOGIN);
            then.status(503).header("retry-after", u64::MAX.to_string());
        })
        .await;
    limited.up_to_n_times_async(2).await;
    let login = harness.pair_on(LOGIN, Pair::new("a1", "r1"), 0).await;
    let client = harness.client.clone();
    let caller = tokio::spawn(async move { client.access_token().await });
    // Each wait is as long as an `Instant` allows: a century, not a panic.
    for attempt in 1..=2 {
        until_sleeping(&harness.clock, CENTURY..=CENTURY).await;
        assert_eq!(limited.calls_async().await, attempt);
        advance(&harness.clock, CENTURY).await;
    }
    assert_eq!(caller.await.expect("task").expect("retried").secret(), "a1");
    assert_eq!(login.calls_async().await, 1);
}
