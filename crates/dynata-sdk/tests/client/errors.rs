//! Rejected credentials and undecodable answers: typed errors, no panics, and
//! no second request where a second request would do harm.

use dynata_sdk::Error;

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_credentials_send_one_login_and_every_waiter_gets_the_error() {
    let harness = Harness::new().await;
    let login = harness
        .server
        .mock_async(|when, then| {
            when.method(POST).path(LOGIN);
            then.status(401)
                .header("content-type", "application/vnd.auth.error+json")
                .body(r#"{"error":"invalid_grant","errorDescription":"Invalid user credentials"}"#)
                .delay(Duration::from_millis(100));
        })
        .await;
    let callers = harness.spawn_callers(20);
    for caller in callers {
        let error = caller.await.expect("task").expect_err("rejected");
        assert!(
            matches!(&error, Error::CredentialsRejected { status: 401, error: Some(code), .. } if code == "invalid_grant"),
            "{error:?}"
        );
    }
    // Later calls fail at once, without asking again, until the cooldown
    // ends, and say so (they read as the refusal itself: found by a
    // walkthrough).
    harness.advance(4 * 60).await;
    let again = harness.client.access_token().await.expect_err("paused");
    let said = again.to_string();
    assert!(
        said.contains("Invalid user credentials (not sent again for another 60 s, the cooldown)"),
        "{said}"
    );
    assert_eq!(login.calls_async().await, 1);
    harness.advance(60).await;
    assert!(harness.client.access_token().await.is_err());
    assert_eq!(
        login.calls_async().await,
        2,
        "one more try after the cooldown"
    );
}

#[tokio::test]
async fn without_a_cooldown_a_rejected_login_is_never_sent_again() {
    let harness = Harness::with(|b| b.rejected_login_cooldown(None)).await;
    let login = harness
        .answer(LOGIN, 400, r#"{"error":"invalid_grant"}"#, 0)
        .await;
    for _ in 0..3 {
        assert!(matches!(
            harness.client.access_token().await,
            Err(Error::CredentialsRejected { .. })
        ));
        harness.advance(24 * 3600).await;
    }
    assert_eq!(login.calls_async().await, 1);
}

#[tokio::test]
async fn undecodable_answers_are_decode_errors_and_are_not_retried() {
    let oversized = format!(r#"{{"accessToken":"{}"}}"#, "x".repeat(300 * 1024));
    let cases: [(&str, String); 6] = [
        ("truncated JSON", r#"{"accessToken":"abc"#.into()),
        (
            "wrong field types",
            r#"{"accessToken":1,"expiresIn":"soon","refreshExpiresIn":1,"refreshToken":2}"#.into(),
        ),
        ("an empty 200", String::new()),
        (
            "a missing field",
            r#"{"accessToken":"a","expiresIn":1800,"refreshToken":"r"}"#.into(),
        ),
        (
            "a negative lifetime",
            Pair::new("a", "r").lifetimes(-5, 3600).json(),
        ),
        ("an oversized body", oversized),
    ];
    for (case, body) in cases {
        let harness = Harness::new().await;
        let login = harness.answer(LOGIN, 200, &body, 0).await;
        let error = harness.client.access_token().await.expect_err(case);
        assert!(matches!(error, Error::Decode { .. }), "{case}: {error:?}");
        assert_eq!(login.calls_async().await, 1, "{case}: retried");
    }
}

#[tokio::test]
async fn a_firewall_s_401_page_on_login_is_not_retried() {
    let harness = Harness::new().await;
    let login = harness
        .server
        .mock_async(|when, then| {
            when.method(POST).path(LOGIN);
            then.status(401)
                .header("content-type", "text/html")
                .header("x-request-id", "waf-7")
                .body("<html><head><title>Access denied</title></head></html>");
        })
        .await;
    let error = harness.client.access_token().await.expect_err("refused");
    assert!(
        matches!(&error, Error::Api { status: 401, summary, .. } if summary.contains("Access denied")),
        "{error:?}"
    );
    assert_eq!(error.request_id(), Some("waf-7"));
    assert!(!error.is_transient());
    assert_eq!(login.calls_async().await, 1);
}

#[tokio::test]
async fn a_server_that_echoes_the_request_never_puts_the_password_in_an_error() {
    let echoes = [
        (
            502,
            format!("POST /auth/v1/token/password username=alice&password={PASSWORD}"),
        ),
        (
            400,
            format!(r#"{{"message":"bad request {{\"password\":\"{PASSWORD}\"}}"}}"#),
        ),
        (
            401,
            format!(
                r#"{{"error":"invalid_grant","errorDescription":"password {PASSWORD} is wrong for alice on this realm today"}}"#
            ),
        ),
    ];
    for (status, body) in echoes {
        let harness = Harness::with(|b| b.retry_policy(RetryPolicy::none())).await;
        harness.answer(LOGIN, status, &body, 0).await;
        let error = harness.client.access_token().await.expect_err("refused");
        for shown in [error.to_string(), format!("{error:?}")] {
            assert!(!shown.contains("horse"), "{status}: {shown}");
        }
    }
}

#[tokio::test]
async fn a_client_without_a_password_never_sends_a_login() {
    let harness = Harness::with(|b| b.credentials(Credentials::without_password("alice"))).await;
    let login = harness.pair_on(LOGIN, Pair::new("a1", "r1"), 0).await;
    for _ in 0..3 {
        let error = harness
            .client
            .access_token()
            .await
            .expect_err("no password");
        assert!(matches!(error, Error::LoginRequired), "{error:?}");
        harness.advance(5).await;
    }
    assert_eq!(login.calls_async().await, 0);
}

/// A fleet shares a refusal through its token store, for the
/// cooldown (24 hours at most). A process that set the longest one records
/// `until` = its wall clock + 24 h. Another process whose clock is one or two
/// seconds behind reads a record claiming a little more than a day: it
/// still holds (it is not garbage to remove), and the refused password is
/// not sent again.
#[tokio::test]
async fn a_day_long_refusal_holds_back_a_process_whose_clock_is_a_little_behind() {
    let dir =
        std::env::temp_dir().join(format!("dynata-review-day-refusal-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let day = Duration::from_secs(24 * 60 * 60);
    let writer = Harness::with(|b| {
        b.token_store(Arc::new(dynata_sdk::store::FileStore::new(&dir)))
            .rejected_login_cooldown(Some(day))
    })
    .await;
    let login = writer
        .answer(LOGIN, 400, r#"{"error":"invalid_grant"}"#, 0)
        .await;
    // The reader's clock; the writer's runs 2 s ahead of it.
    let behind = ManualClock::new();
    writer.clock.advance(Duration::from_secs(2));
    assert!(matches!(
        writer.client.access_token().await,
        Err(Error::CredentialsRejected { .. })
    ));
    assert_eq!(login.calls_async().await, 1);
    let reader = Client::builder()
        .credentials(Credentials::new("alice", PASSWORD))
        .environment(Environment::custom(&writer.server.base_url()).expect("loopback"))
        .token_store(Arc::new(dynata_sdk::store::FileStore::new(&dir)))
        .rejected_login_cooldown(Some(day))
        .clock(Arc::new(behind))
        .build()
        .expect("valid");
    let held = reader.access_token().await.expect_err("held back");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        matches!(held, Error::CredentialsRejected { .. }),
        "{held:?}"
    );
    assert_eq!(
        login.calls_async().await,
        1,
        "the password the fleet's store records as refused was sent again"
    );
}

/// A zero `timeout`, `connect_timeout` or `renewal_timeout` ("no limit" to
/// many HTTP clients) is refused by `build()`, naming the setting. Taken,
/// it built a client that could never log in: every call failed with
/// `Error::Timeout` from a server that answers at once.
#[tokio::test]
async fn a_zero_time_limit_is_refused_when_the_client_is_built() {
    type Configure = fn(ClientBuilder) -> ClientBuilder;
    let settings: [(&str, Configure); 3] = [
        ("timeout", |b| b.timeout(Duration::ZERO)),
        ("connect_timeout", |b| b.connect_timeout(Duration::ZERO)),
        ("renewal_timeout", |b| b.renewal_timeout(Duration::ZERO)),
    ];
    let mut accepted = Vec::new();
    for (setting, configure) in settings {
        let server = MockServer::start_async().await;
        server
            .mock_async(|when, then| {
                when.method(POST).path(LOGIN);
                then.status(200).body(Pair::new("a1", "r1").json());
            })
            .await;
        let builder = Client::builder()
            .credentials(Credentials::new("alice", PASSWORD))
            .environment(Environment::custom(&server.base_url()).expect("loopback"))
            .retry_policy(RetryPolicy::none());
        match configure(builder).build() {
            Err(Error::Config { .. }) => {}
            Ok(client) => {
                let outcome = client.access_token().await.map(|_| "a token");
                accepted.push(format!(
                    "{setting}(ZERO) built; access_token() = {outcome:?}"
                ));
            }
            Err(other) => panic!("{setting}(ZERO): {other:?}"),
        }
    }
    assert!(accepted.is_empty(), "{accepted:#?}");
}

/// An access token an `Authorization` header cannot carry (a control
/// character) is not taken: cached, it would fail every call before sending
/// it until it expired, and no `401` would come to renew it. The login that
/// brought it is an error; the next call logs in again.
#[tokio::test]
async fn an_access_token_a_header_cannot_carry_is_not_taken() {
    let harness = Harness::new().await;
    let unsendable = harness
        .answer(
            LOGIN,
            200,
            r#"{"accessToken":"a1\u0001","expiresIn":1800,"refreshExpiresIn":3600,"refreshToken":"r1"}"#,
            1,
        )
        .await;
    let good = harness.pair_on(LOGIN, Pair::new("a2", "r2"), 0).await;
    let first = harness.client.access_token().await;
    assert!(matches!(first, Err(Error::Decode { .. })), "{first:?}");
    harness.advance(60).await;
    let token = harness.client.access_token().await.expect("logs in again");
    assert_eq!(token.secret(), "a2");
    assert_eq!(unsendable.calls_async().await, 1);
    assert_eq!(good.calls_async().await, 1);
}

/// A login answered `401` with an empty body (how many gateways refuse
/// credentials), or `403` with a firewall's page: not Dynata's refusal, but
/// it may be the password refused all the same, so renewals pause for the
/// rejected-login cooldown. (They paused one second, and every call a
/// second apart sent the password again.)
#[tokio::test]
async fn a_bare_401_or_403_on_login_does_not_send_the_password_every_second() {
    for (status, body) in [(401, ""), (403, "<html><title>Forbidden</title></html>")] {
        let harness = Harness::new().await;
        let login = harness.answer(LOGIN, status, body, 0).await;
        for _ in 0..5 {
            let error = harness.client.access_token().await.expect_err("refused");
            assert!(
                matches!(error, Error::Api { status: s, .. } if s == status),
                "{status}: {error:?}"
            );
            harness.advance(2).await;
        }
        assert_eq!(
            login.calls_async().await,
            1,
            "{status}: the password was sent again every two seconds"
        );
        // A logout does not lift the cooldown, as for Dynata's refusal.
        harness.client.logout().await.expect("nothing to revoke");
        let _ = harness.client.access_token().await;
        assert_eq!(
            login.calls_async().await,
            1,
            "{status}: sent after a logout"
        );
        // The cooldown over, one call tries again.
        harness.advance(300).await;
        let _ = harness.client.access_token().await;
        assert_eq!(login.calls_async().await, 2, "{status}");
    }
}
