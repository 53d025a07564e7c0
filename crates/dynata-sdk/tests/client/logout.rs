//! Logout: what it sends, the empty 204, and what comes after.

use dynata_sdk::Error;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewal_under_way_at_logout_is_revoked_too() {
    let harness = Harness::new().await;
    harness.pair_on(LOGIN, Pair::new("a1", "r1"), 0).await;
    let refresh = harness
        .slow_pair_on(REFRESH, Pair::new("a2", "r2"), 300)
        .await;
    let logout_first = revocation_of(&harness, "r1", 204).await;
    let logout_late = revocation_of(&harness, "r2", 204).await;
    let first = harness.token().await;
    assert!(harness.client.invalidate(&first));
    let client = harness.client.clone();
    let waiter = tokio::spawn(async move { client.access_token().await });
    eventually("the refresh reached the server", || async {
        refresh.calls_async().await == 1
    })
    .await;
    harness.client.logout().await.expect("logout");
    // Once logout returns, both sessions are revoked at the server.
    assert_eq!(
        (
            logout_first.calls_async().await,
            logout_late.calls_async().await
        ),
        (1, 1)
    );
    let error = waiter.await.expect("task").expect_err("logged out");
    assert!(matches!(error, dynata_sdk::Error::LoggedOut), "{error:?}");
}

#[tokio::test]
async fn a_refused_logout_does_not_blame_the_password() {
    let error = logout_answered(
        400,
        r#"{"error":"invalid_grant","errorDescription":"Session not active"}"#,
    )
    .await;
    let message = error.to_string();
    assert!(!message.contains("password"), "{message}");
    assert!(message.contains("Session not active"), "{message}");
    assert_eq!(error.status(), Some(400));
    assert_eq!(error.request_id(), Some("lo-1"));
}

/// A logout answered `200` with a body (its success is `204`) is an answer
/// the SDK cannot read, not an error status: it read "Dynata answered 200"
/// (found by a walkthrough).
#[tokio::test]
async fn a_logout_answered_200_with_a_body_is_a_decode_error() {
    let error = logout_answered(200, r#"{"status":"logged out"}"#).await;
    assert!(
        matches!(&error, dynata_sdk::Error::Decode { what, .. } if what.contains("status 200")),
        "{error:?}"
    );
    assert_eq!(error.request_id(), Some("lo-1"));
}

/// The error of a logout, after a login, that Dynata answers with `status`
/// and `body` (and `x-request-id: lo-1`).
async fn logout_answered(status: u16, body: &'static str) -> dynata_sdk::Error {
    let harness = Harness::new().await;
    harness.pair_on(LOGIN, Pair::new("a1", "r1"), 0).await;
    harness
        .server
        .mock_async(|when, then| {
            when.method(POST).path(LOGOUT);
            then.status(status)
                .header("x-request-id", "lo-1")
                .body(body);
        })
        .await;
    harness.token().await;
    harness.client.logout().await.expect_err("not a 204")
}

/// A call made while logout waits for Dynata to confirm the revocation does
/// not wait with it: by then nothing of the old session can be adopted, so it
/// logs in afresh at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_during_a_slow_revocation_does_not_wait_for_it() {
    let harness = Harness::new().await;
    harness.pair_on(LOGIN, Pair::new("a1", "r1"), 1).await;
    let logout = harness
        .server
        .mock_async(|when, then| {
            when.method(POST).path(LOGOUT);
            then.status(204).delay(Duration::from_millis(1500));
        })
        .await;
    harness.token().await;
    harness.pair_on(LOGIN, Pair::new("a2", "r2"), 0).await;
    let logging_out = tokio::spawn({
        let client = harness.client.clone();
        async move { client.logout().await }
    });
    // The revocation has reached Dynata, which takes its time to answer.
    while logout.calls_async().await == 0 {
        tokio::task::yield_now().await;
    }
    assert_eq!(harness.current_secret().await, "a2");
    assert!(
        !logging_out.is_finished(),
        "the call waited for the revocation"
    );
    logging_out.await.expect("joined").expect("logged out");
}

/// Two logouts at once (a shutdown hook and a request handler, say) while a
/// refresh is under way: the second returns only once the session it ended
/// has been revoked at Dynata.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_logout_returns_only_once_the_session_is_revoked() {
    let harness = Harness::new().await;
    harness.pair_on(LOGIN, Pair::new("a1", "r1"), 0).await;
    harness
        .slow_pair_on(REFRESH, Pair::new("a2", "r2"), 800)
        .await;
    let revoke_a1 = harness
        .server
        .mock_async(|when, then| {
            when.method(POST)
                .path(LOGOUT)
                .json_body_includes(r#"{"accessToken": "a1"}"#);
            then.status(204);
        })
        .await;
    harness.answer(LOGOUT, 204, "", 0).await;
    let first = harness.token().await;
    assert!(harness.client.invalidate(&first));
    let caller = tokio::spawn({
        let client = harness.client.clone();
        async move { client.access_token().await }
    });
    // Real time: the refresh answers after 800 ms, and is under way here.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let first_logout = tokio::spawn({
        let client = harness.client.clone();
        async move { client.logout().await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    harness.client.logout().await.expect("second logout");
    assert_eq!(
        revoke_a1.calls_async().await,
        1,
        "the second logout returned while a1 was still live at Dynata"
    );
    first_logout.await.expect("joined").expect("first logout");
    let _ = caller.await;
}

/// A refused password stays refused across a logout: the next call does not
/// send it again before the cooldown.
#[tokio::test]
async fn a_logout_does_not_lift_the_cooldown_of_a_refused_password() {
    let harness = Harness::new().await;
    let refused = harness
        .answer(
            LOGIN,
            401,
            r#"{"error":"invalid_grant","errorDescription":"Invalid user credentials"}"#,
            0,
        )
        .await;
    let error = harness.client.access_token().await.expect_err("refused");
    assert!(
        matches!(error, Error::CredentialsRejected { .. }),
        "{error:?}"
    );
    harness.client.logout().await.expect("nothing to revoke");
    let again = harness
        .client
        .access_token()
        .await
        .expect_err("still refused");
    assert!(
        matches!(again, Error::CredentialsRejected { .. }),
        "{again:?}"
    );
    assert_eq!(
        refused.calls_async().await,
        1,
        "the password was sent again"
    );
}

/// A caller that stops waiting for `logout()` (a timeout around it, a
/// shutdown) must not leave the session live at Dynata: the client has
/// already forgotten it, so nothing else would ever revoke it.
#[tokio::test]
async fn a_logout_whose_caller_stops_waiting_still_revokes_the_session() {
    let harness = Harness::new().await;
    harness.pair_on(LOGIN, Pair::new("a1", "r1"), 1).await;
    let unavailable = harness
        .answer(LOGOUT, 503, r#"{"message":"Service Unavailable"}"#, 1)
        .await;
    let revoked = harness.answer(LOGOUT, 204, "", 0).await;
    harness.token().await;
    let logging_out = tokio::spawn({
        let client = harness.client.clone();
        async move { client.logout().await }
    });
    // The first attempt failed; the retry engine waits before the next.
    until_sleeping(&harness.clock, Duration::ZERO..=Duration::from_secs(31)).await;
    assert_eq!(unavailable.calls_async().await, 1);
    logging_out.abort();
    let _ = logging_out.await;

    harness.advance(31).await;
    eventually("the revocation was sent again", || async {
        revoked.calls_async().await == 1
    })
    .await;
}

/// A second `logout()` whose caller gave up while it queued behind a
/// slow first one (a timeout around it) must not, much later, log out the
/// session the application obtained after giving up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abandoned_queued_logout_does_not_end_a_later_session() {
    let harness = Harness::new().await;
    harness.pair_on(LOGIN, Pair::new("a1", "r1"), 1).await;
    harness.pair_on(LOGIN, Pair::new("a2", "r2"), 0).await;
    let revoke_a1 = harness
        .server
        .mock_async(|when, then| {
            when.method(POST)
                .path(LOGOUT)
                .json_body_includes(r#"{"accessToken": "a1"}"#);
            then.status(204).delay(Duration::from_millis(1000));
        })
        .await;
    let revoke_a2 = harness
        .server
        .mock_async(|when, then| {
            when.method(POST)
                .path(LOGOUT)
                .json_body_includes(r#"{"accessToken": "a2"}"#);
            then.status(204);
        })
        .await;
    harness.token().await;
    let first = tokio::spawn({
        let client = harness.client.clone();
        async move { client.logout().await }
    });
    while revoke_a1.calls_async().await == 0 {
        tokio::task::yield_now().await;
    }
    // A second logout, given up on while it waits for the first.
    let gave_up = tokio::time::timeout(Duration::from_millis(100), harness.client.logout()).await;
    assert!(gave_up.is_err(), "it was still queued");
    // The application goes on: a new session.
    assert_eq!(harness.current_secret().await, "a2");
    first.await.expect("joined").expect("first logout");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        revoke_a2.calls_async().await,
        0,
        "the abandoned logout revoked a session obtained after it was given up"
    );
    assert_eq!(harness.current_secret().await, "a2");
}

/// A second logout called while a first one waits for Dynata to answer its
/// revocation holds callers only while it takes its own session out of the
/// store, not until that first revocation is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_logout_does_not_hold_callers_for_the_first_ones_revocation() {
    let harness = Harness::new().await;
    harness.pair_on(LOGIN, Pair::new("a1", "r1"), 1).await;
    harness.pair_on(LOGIN, Pair::new("a2", "r2"), 0).await;
    let revoke_a1 = harness
        .server
        .mock_async(|when, then| {
            when.method(POST)
                .path(LOGOUT)
                .json_body_includes(r#"{"accessToken": "a1"}"#);
            then.status(204).delay(Duration::from_millis(1500));
        })
        .await;
    harness.token().await;
    let first = tokio::spawn({
        let client = harness.client.clone();
        async move { client.logout().await }
    });
    while revoke_a1.calls_async().await == 0 {
        tokio::task::yield_now().await;
    }
    // Called, then given up on (it goes on in its own task).
    let _ = tokio::time::timeout(Duration::from_millis(50), harness.client.logout()).await;
    assert_eq!(harness.current_secret().await, "a2");
    assert!(
        !first.is_finished(),
        "the call waited for the first logout's revocation"
    );
    first.await.expect("joined").expect("first logout");
}

/// The renewal under way at a logout obtains a2/r2, and Dynata does not
/// take its revocation (a `503`): the logout says so (an error), as
/// `logout()` returns `Ok` only when no session of before the call is live.
/// The logout revokes what the renewal obtained itself, so that it hears.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_whose_orphan_revocation_failed_does_not_return_ok() {
    let harness = Harness::with(|builder| builder.retry_policy(RetryPolicy::none())).await;
    harness.pair_on(LOGIN, Pair::new("a1", "r1"), 0).await;
    let refresh = harness
        .slow_pair_on(REFRESH, Pair::new("a2", "r2"), 300)
        .await;
    revocation_of(&harness, "r1", 204).await;
    let refuse_a2 = revocation_of(&harness, "r2", 503).await;
    let first = harness.token().await;
    assert!(harness.client.invalidate(&first));
    let client = harness.client.clone();
    let waiter = tokio::spawn(async move { client.access_token().await });
    eventually("the refresh reached the server", || async {
        refresh.calls_async().await == 1
    })
    .await;
    let outcome = harness.client.logout().await;
    let _ = waiter.await;
    assert_eq!(refuse_a2.calls_async().await, 1, "a2's revocation was sent");
    assert!(
        outcome.is_err(),
        "logout() returned Ok though Dynata refused (503) to revoke a2/r2, \
         the session of the renewal under way: it is still live"
    );
}

/// Dynata refuses to revoke a session it no longer holds active (a `400`,
/// as in `a_refused_logout_does_not_blame_the_password`): retrying cannot
/// change that, so later logouts neither send it again nor fail for it.
#[tokio::test]
async fn a_revocation_refused_with_a_400_is_not_sent_again_at_every_logout() {
    let harness = Harness::with(|builder| builder.retry_policy(RetryPolicy::none())).await;
    harness.pair_on(LOGIN, Pair::new("a1", "r1"), 1).await;
    let refuse_a1 = harness
        .server
        .mock_async(|when, then| {
            when.method(POST)
                .path(LOGOUT)
                .json_body_includes(r#"{"refreshToken": "r1"}"#);
            then.status(400)
                .body(r#"{"error":"invalid_grant","errorDescription":"Session not active"}"#);
        })
        .await;
    let revoke_a2 = revocation_of(&harness, "r2", 204).await;
    harness.token().await;
    harness
        .client
        .logout()
        .await
        .expect_err("Dynata refused the revocation");
    harness.pair_on(LOGIN, Pair::new("a2", "r2"), 0).await;
    let mut outcomes = Vec::new();
    for _ in 0..3 {
        harness.token().await;
        outcomes.push(harness.client.logout().await.is_ok());
    }
    assert_eq!(
        (
            refuse_a1.calls_async().await,
            revoke_a2.calls_async().await,
            outcomes
        ),
        (1, 3, vec![true, true, true]),
        "(revocations of a1 sent, of a2, later logouts that returned Ok): \
         the refused revocation of a1 is sent again at every logout, which fails"
    );
}

/// `POST /auth/v1/logout` of the session whose refresh token is `refresh`,
/// answered with `status`.
async fn revocation_of<'a>(harness: &'a Harness, refresh: &str, status: u16) -> Mock<'a> {
    let body = format!(r#"{{"refreshToken": "{refresh}"}}"#);
    harness
        .server
        .mock_async(move |when, then| {
            when.method(POST).path(LOGOUT).json_body_includes(body);
            then.status(status);
        })
        .await
}

/// A login under way when `logout()` is called is refused by Dynata
/// (`invalid_grant`). The README: "Rejected credentials are never retried
/// automatically ... for the next 5 minutes calls fail at once without
/// sending anything", and "A `logout()` does not lift the cooldown". The
/// refusal that lands during the logout must start the cooldown like any
/// other: the next call must not send the rejected password again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_refused_during_a_logout_is_not_sent_again() {
    let harness = Harness::new().await;
    let refused = harness
        .server
        .mock_async(|when, then| {
            when.method(POST).path(LOGIN);
            then.status(401)
                .body(r#"{"error":"invalid_grant","errorDescription":"Invalid user credentials"}"#)
                .delay(Duration::from_millis(300));
        })
        .await;
    let client = harness.client.clone();
    let first = tokio::spawn(async move { client.access_token().await });
    eventually("the login reached the server", || async {
        refused.calls_async().await == 1
    })
    .await;
    harness.client.logout().await.expect("nothing to revoke");
    let error = first.await.expect("task").expect_err("refused");
    assert!(
        matches!(error, Error::CredentialsRejected { .. }),
        "{error:?}"
    );
    let again = harness.client.access_token().await;
    assert!(
        matches!(again, Err(Error::CredentialsRejected { .. })),
        "{again:?}"
    );
    assert_eq!(
        refused.calls_async().await,
        1,
        "the password Dynata had just refused was sent again right after the logout"
    );
}

/// The cooldown starts for a bare `401` that lands while a logout runs, as
/// it does for a refused password (see
/// `a_password_refused_during_a_logout_is_not_sent_again`). (Only
/// `CredentialsRejected` counted across a logout: the bare `401` of the old
/// generation set no pause, and the next call sent the password again.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bare_401_that_lands_during_a_logout_starts_the_cooldown() {
    let harness = Harness::new().await;
    let unavailable = harness
        .answer(LOGIN, 503, "<html><title>503</title></html>", 1)
        .await;
    let refused = harness.answer(LOGIN, 401, "", 0).await;
    let client = harness.client.clone();
    let first = tokio::spawn(async move { client.access_token().await });
    // The login got its 503 and sleeps its backoff on the clock.
    until_sleeping(
        &harness.clock,
        Duration::from_millis(125)..=Duration::from_millis(250),
    )
    .await;
    let client = harness.client.clone();
    let logout = tokio::spawn(async move { client.logout().await });
    // The logout waits for the flight: a second sleeper at its given-up time.
    let now = dynata_sdk::clock::Clock::now(&harness.clock);
    eventually("the logout waits for the renewal", || {
        let at_give_up = harness
            .clock
            .sleeping_until()
            .iter()
            .filter(|d| **d >= now + Duration::from_secs(60))
            .count();
        async move { at_give_up >= 2 }
    })
    .await;
    // The retry is answered with a bare 401, during the logout.
    advance(&harness.clock, Duration::from_millis(250)).await;
    let error = first.await.expect("task").expect_err("refused");
    assert!(
        matches!(error, Error::Api { status: 401, .. } | Error::LoggedOut),
        "{error:?}"
    );
    logout.await.expect("task").expect("nothing to revoke");
    assert_eq!(
        (unavailable.calls_async().await, refused.calls_async().await),
        (1, 1)
    );
    let _ = harness.client.access_token().await;
    assert_eq!(
        refused.calls_async().await,
        1,
        "the password answered with a bare 401 during the logout was sent again at once"
    );
}

/// A client shared across runtimes (a static in a test suite): the runtime
/// a logout runs on shuts down while its revocation is on the way, so
/// whether Dynata took it is not known. The session is not forgotten: the
/// next `logout()`, on another runtime, sends it again. It returned `Ok`
/// without sending anything, while the session may still be live: "once
/// this returns `Ok`, no session this client obtained before the call is
/// live at Dynata" (found by review).
#[test]
fn a_logout_cut_off_with_its_runtime_is_finished_by_the_next_one() {
    let runtime = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("rt")
    };
    let first = runtime();
    let harness = first.block_on(Harness::new());
    first.block_on(harness.pair_on(LOGIN, Pair::new("a1", "r1"), 0));
    let revocation = first.block_on(harness.server.mock_async(|when, then| {
        when.method(POST)
            .path(LOGOUT)
            .json_body_includes(r#"{"refreshToken": "r1"}"#);
        then.status(204).delay(Duration::from_millis(300));
    }));
    first.block_on(async {
        harness.token().await;
        let client = harness.client.clone();
        tokio::spawn(async move { client.logout().await });
        eventually("the revocation reached the server", || async {
            revocation.calls_async().await == 1
        })
        .await;
    });
    drop(first); // the logout task dies with its runtime, mid-revocation
    let second = runtime();
    second.block_on(async {
        harness.client.logout().await.expect("revoked");
        assert_eq!(
            revocation.calls_async().await,
            2,
            "the next logout returned Ok without revoking the session"
        );
    });
}

/// Logged in as `a1`/`r1`, a `logout()` under way whose revocation has
/// reached Dynata and will get no answer. The mock returned answers a
/// second revocation of `r1` with `204`.
async fn a_logout_whose_revocation_hangs(
    harness: &Harness,
) -> (Mock<'_>, tokio::task::JoinHandle<Result<(), Error>>) {
    harness.pair_on(LOGIN, Pair::new("a1", "r1"), 0).await;
    let hung = harness
        .server
        .mock_async(|when, then| {
            when.method(POST).path(LOGOUT);
            then.status(204).delay(Duration::from_secs(3600));
        })
        .await;
    hung.up_to_n_times_async(1).await;
    let revoked = revocation_of(harness, "r1", 204).await;
    harness.token().await;
    let client = harness.client.clone();
    let logout = tokio::spawn(async move { client.logout().await });
    eventually("the revocation reached the server", || async {
        hung.calls_async().await == 1
    })
    .await;
    (revoked, logout)
}

/// "A revocation that gets no answer or a `5xx` fails the logout, and the
/// session is kept for the next `logout()`" (README). Behind an HTTP
/// client without a time limit of its own (the harness's does not run out
/// in a test; `reqwest::Client::new()` has none), a revocation that never
/// got an answer held the logout for ever, and every later `logout()`
/// behind it: a renewal ends at the renewal timeout, the revocation had no
/// limit (found by review).
#[tokio::test]
async fn a_revocation_that_never_answers_fails_the_logout_at_the_renewal_timeout() {
    let harness = Harness::with(|b| b.renewal_timeout(Duration::from_secs(20))).await;
    let (revoked, logout) = a_logout_whose_revocation_hangs(&harness).await;
    until_sleeping(
        &harness.clock,
        Duration::from_secs(20)..=Duration::from_secs(20),
    )
    .await;
    harness.advance(20).await;
    let error = logout.await.expect("task").expect_err("no answer");
    assert!(matches!(error, Error::Timeout { .. }), "{error:?}");
    harness
        .client
        .logout()
        .await
        .expect("revoked at the second try");
    assert_eq!(revoked.calls_async().await, 1);
}

/// Two logouts at once: the first's revocation gets no answer in the
/// renewal timeout (or a `5xx`), so its session is kept as unrevoked. The
/// second, which returns once the first has finished, returned `Ok` all
/// the same, having sent nothing: "once this returns `Ok`, no session this
/// client obtained before the call is live at Dynata" did not hold. Before
/// the revocation had a time limit, the second logout hung with the first;
/// now it returned a false `Ok` (found by re-review).
#[tokio::test]
async fn a_second_logout_does_not_return_ok_while_the_first_ones_revocation_timed_out() {
    let harness = Harness::with(|b| b.renewal_timeout(Duration::from_secs(20))).await;
    let (revoked, first) = a_logout_whose_revocation_hangs(&harness).await;
    let second = tokio::spawn({
        let client = harness.client.clone();
        async move { client.logout().await }
    });
    // Let it start (one runtime thread): it ends nothing of its own, and
    // waits for the first.
    tokio::task::yield_now().await;
    until_sleeping(
        &harness.clock,
        Duration::from_secs(20)..=Duration::from_secs(20),
    )
    .await;
    harness.advance(20).await;
    let first = first.await.expect("task");
    assert!(matches!(first, Err(Error::Timeout { .. })), "{first:?}");
    let second = second.await.expect("task");
    assert!(
        second.is_err() || revoked.calls_async().await == 1,
        "the second logout returned {second:?} while r1 may still be live (revoked {} times)",
        revoked.calls_async().await
    );
}

/// A logout whose revocation gets a `5xx` fails, and keeps the session for
/// the next `logout()`: it sends it once. Any logout after the client's
/// first (here one with nothing to revoke, long finished) sent it a
/// second time before failing, taking its own failure for one the logout
/// before it had left (found by re-review of 0b4dfee); with a revocation
/// that gets no answer, it failed at twice the renewal timeout.
#[tokio::test]
async fn a_logout_sends_its_own_failed_revocation_once() {
    let harness = Harness::with(|b| b.retry_policy(RetryPolicy::none())).await;
    harness.client.logout().await.expect("nothing to revoke");
    harness.pair_on(LOGIN, Pair::new("a1", "r1"), 0).await;
    let failing = revocation_of(&harness, "r1", 503).await;
    harness.token().await;
    let error = harness.client.logout().await.expect_err("a 503");
    assert_eq!(error.status(), Some(503), "{error:?}");
    assert_eq!(
        failing.calls_async().await,
        1,
        "the logout sent its failed revocation again"
    );
}
