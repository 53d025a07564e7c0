//! Single flight, the lock-free cache, and callers that give up.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_callers_cause_one_login() {
    let harness = Harness::new().await;
    let login = harness
        .slow_pair_on(LOGIN, Pair::new("a1", "r1"), 200)
        .await;
    let callers = harness.spawn_callers(1000);
    let mut tokens = Vec::new();
    for caller in callers {
        tokens.push(caller.await.expect("task").expect("a token"));
    }
    assert_eq!(login.calls_async().await, 1);
    assert!(
        tokens
            .iter()
            .all(|t| t.same_as(&tokens[0]) && t.secret() == "a1")
    );
}

#[tokio::test]
async fn a_cached_token_costs_no_request() {
    let harness = Harness::new().await;
    let login = harness.pair_on(LOGIN, Pair::new("a1", "r1"), 0).await;
    let first = harness.token().await;
    harness.advance(60).await;
    for _ in 0..100 {
        assert!(harness.token().await.same_as(&first));
    }
    assert_eq!(login.calls_async().await, 1);
}

#[tokio::test]
async fn one_second_tokens_do_not_cause_a_refresh_per_call() {
    let harness = Harness::new().await;
    let login = harness
        .pair_on(LOGIN, Pair::new("a1", "r1").lifetimes(1, 3), 0)
        .await;
    let refresh = harness
        .pair_on(REFRESH, Pair::new("a2", "r2").lifetimes(1, 3), 0)
        .await;
    // 50 calls over 0.49 s of the token's second: all served from the cache.
    for _ in 0..50 {
        assert_eq!(harness.current_secret().await, "a1");
        harness.advance_millis(10).await;
    }
    assert_eq!(
        (login.calls_async().await, refresh.calls_async().await),
        (1, 0)
    );
}

/// A client kept in a static, or used through `Runtime::block_on` wrappers:
/// the runtime that logged in (and ran the session's timer) is gone, and the
/// token must still stop being served at its hard margin.
#[test]
fn an_expired_token_is_not_served_after_its_runtime_is_gone() {
    let runtime = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("rt")
    };
    let first = runtime();
    let harness = first.block_on(Harness::new());
    first.block_on(harness.pair_on(LOGIN, Pair::new("a1", "r1"), 1));
    let token = first.block_on(harness.token());
    drop(first);

    let second = runtime();
    let refresh = second.block_on(harness.pair_on(REFRESH, Pair::new("a2", "r2"), 0));
    second.block_on(async {
        assert!(harness.token().await.same_as(&token), "still fresh");
        // Into the hard margin: the timer that would have said so is dead.
        harness.clock.advance(Duration::from_secs(29 * 60 + 30));
        assert_eq!(harness.current_secret().await, "a2");
        assert_eq!(refresh.calls_async().await, 1);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_dropped_mid_login_neither_aborts_it_nor_strands_others() {
    let harness = Harness::new().await;
    let login = harness
        .slow_pair_on(LOGIN, Pair::new("a1", "r1"), 300)
        .await;
    let client = harness.client.clone();
    let impatient = tokio::spawn(async move { client.access_token().await });
    let waiting = harness.client.clone();
    let patient = tokio::spawn(async move { waiting.access_token().await });
    eventually("the login reached the server", || async {
        login.calls_async().await == 1
    })
    .await;
    impatient.abort();
    let token = patient
        .await
        .expect("task")
        .expect("the login finished for the patient caller");
    assert_eq!(token.secret(), "a1");
    assert!(harness.token().await.same_as(&token));
    assert_eq!(login.calls_async().await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_invalidations_of_one_token_cause_one_refresh() {
    let harness = Harness::new().await;
    harness.pair_on(LOGIN, Pair::new("a1", "r1"), 0).await;
    let refresh = harness
        .slow_pair_on(REFRESH, Pair::new("a2", "r2"), 100)
        .await;
    let stale = harness.token().await;
    let callers: Vec<_> = (0..50)
        .map(|_| {
            let client = harness.client.clone();
            let stale = stale.clone();
            tokio::spawn(async move {
                client.invalidate(&stale);
                client.access_token().await
            })
        })
        .collect();
    for caller in callers {
        assert_eq!(caller.await.expect("task").expect("a token").secret(), "a2");
    }
    assert_eq!(refresh.calls_async().await, 1);
    assert!(
        !harness.client.invalidate(&stale),
        "an old token no longer invalidates anything"
    );
}

/// A client shared across runtimes (a static in a test suite, say): if the
/// runtime running a login shuts down mid-flight, the next caller on another
/// runtime starts a new login instead of waiting on the dead one.
#[test]
fn a_login_lost_with_its_runtime_is_started_again() {
    let first = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    let harness = first.block_on(Harness::new());
    let login = first.block_on(harness.slow_pair_on(LOGIN, Pair::new("a1", "r1"), 300));
    let client = harness.client.clone();
    first.block_on(async {
        let pending = tokio::spawn(async move { client.access_token().await });
        eventually("the login reached the server", || async {
            login.calls_async().await == 1
        })
        .await;
        pending.abort();
    });
    drop(first); // the flight task dies with its runtime

    let second = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    let token = second
        .block_on(harness.client.access_token())
        .expect("a new login");
    assert_eq!(token.secret(), "a1");
    assert_eq!(second.block_on(login.calls_async()), 2);
}

/// A client shared across runtimes: a caller on a runtime that lives
/// joins a login running on another, which then shuts down (a test's
/// runtime ending, with the client in a static). The login is lost, not
/// refused: the caller starts a new one rather than fail with "was the
/// runtime shut down?" about a runtime that is not its own.
#[test]
fn a_caller_waiting_on_a_login_lost_with_another_runtime_logs_in_again() {
    let first = current_thread();
    let harness = first.block_on(Harness::new());
    let login = first.block_on(harness.slow_pair_on(LOGIN, Pair::new("a1", "r1"), 300));
    first.block_on(async {
        let client = harness.client.clone();
        // Started here, the login task stays on `first`, which nobody
        // drives after this `block_on`.
        tokio::spawn(async move { client.access_token().await });
        eventually("the login reached the server", || async {
            login.calls_async().await == 1
        })
        .await;
    });
    let second = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("rt");
    let client = harness.client.clone();
    let waiter = second.spawn(async move { client.access_token().await });
    // Both callers wait for the login on `first`, each until its deadline
    // (60 s) and its grace (1 s).
    let given_up_at = dynata_sdk::clock::Clock::now(&harness.clock) + Duration::from_secs(61);
    second.block_on(eventually("the second caller waits for the login", || {
        let waiting = harness.clock.sleeping_until();
        async move { waiting.iter().filter(|at| **at == given_up_at).count() == 2 }
    }));
    drop(first); // the login task dies with its runtime
    let token = second.block_on(waiter).expect("task");
    assert!(
        token.as_ref().is_ok_and(|t| t.secret() == "a1"),
        "the caller on the live runtime got {token:?}"
    );
    assert_eq!(second.block_on(login.calls_async()), 2);
}

/// A `current_thread` runtime, as a sync façade keeps one and enters it
/// with `block_on` now and then.
fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt")
}

/// Strands the first login on `idle`: a caller there gives up once `login`
/// (which answers late) has been reached, and the login task stays on
/// `idle`, alive but not driven.
fn strand_first_login(idle: &tokio::runtime::Runtime, harness: &Harness, login: &Mock<'_>) {
    idle.block_on(async {
        let impatient =
            tokio::time::timeout(Duration::from_millis(50), harness.client.access_token()).await;
        assert!(impatient.is_err(), "the caller gave up");
        eventually("the login reached the server", || async {
            login.calls_async().await == 1
        })
        .await;
    });
}

/// Enters `idle` again, as the façade's next `block_on` does: the tasks
/// left on it run.
fn run_again(idle: &tokio::runtime::Runtime) {
    idle.block_on(async {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    });
}

/// A call on `busy` that joins the stranded login gets `Timeout` at its
/// deadline (60 s) and grace (1 s).
fn time_out_on_the_stranded_login(busy: &tokio::runtime::Runtime, harness: &Harness) {
    busy.block_on(async {
        let client = harness.client.clone();
        let first = tokio::spawn(async move { client.access_token().await });
        until_sleeping(
            &harness.clock,
            Duration::from_secs(61)..=Duration::from_secs(61),
        )
        .await;
        harness.clock.advance(Duration::from_secs(61));
        let error = first.await.expect("task").expect_err("stranded");
        assert!(
            matches!(error, dynata_sdk::Error::Timeout { .. }),
            "{error:?}"
        );
    });
}

/// After the stranded login's deadline, it is given up: the next call
/// starts one of its own rather than fail at once, for as long as that
/// runtime stays idle.
#[test]
fn a_login_stranded_on_an_idle_runtime_does_not_fail_every_later_call() {
    let idle = current_thread();
    let harness = idle.block_on(Harness::new());
    let login = idle.block_on(harness.slow_pair_on(LOGIN, Pair::new("a1", "r1"), 300));
    strand_first_login(&idle, &harness, &login);
    let busy = current_thread();
    time_out_on_the_stranded_login(&busy, &harness);
    busy.block_on(async {
        let next = harness.client.access_token().await;
        assert!(
            next.as_ref().is_ok_and(|t| t.secret() == "a1"),
            "the call after the deadline: {next:?}"
        );
        assert_eq!(login.calls_async().await, 2);
    });
}

/// A login given up at its deadline for a newer one says nothing when its
/// runtime runs again: its failure does not pause the renewals of a client
/// that has logged in since.
#[test]
fn a_superseded_login_does_not_pause_renewals_when_its_runtime_runs_again() {
    let idle = current_thread();
    let harness = idle.block_on(Harness::with(|b| b.retry_policy(RetryPolicy::none())));
    // The first login is answered late, with a `503`; later ones at once.
    let stranded = idle.block_on(async {
        let stranded = harness
            .server
            .mock_async(|when, then| {
                when.method(POST).path(LOGIN);
                then.status(503).delay(Duration::from_millis(300));
            })
            .await;
        stranded.up_to_n_times_async(1).await;
        stranded
    });
    let login = idle.block_on(harness.pair_on(LOGIN, Pair::new("a1", "r1"), 0));
    let refresh = idle.block_on(harness.pair_on(REFRESH, Pair::new("a2", "r2"), 0));
    strand_first_login(&idle, &harness, &stranded);
    let busy = current_thread();
    let token = busy.block_on(async {
        // Past the stranded login's deadline (60 s) and its grace (1 s).
        harness.clock.advance(Duration::from_secs(61));
        harness.client.access_token().await.expect("a new login")
    });
    run_again(&idle);
    busy.block_on(async {
        harness.client.invalidate(&token);
        let renewed = harness.client.access_token().await;
        assert!(
            renewed.as_ref().is_ok_and(|t| t.secret() == "a2"),
            "paused by the superseded login: {renewed:?}"
        );
        assert_eq!(refresh.calls_async().await, 1);
        assert_eq!(login.calls_async().await, 1);
        assert_eq!(stranded.calls_async().await, 1);
    });
}

/// The login after a stranded one is refused (a changed password):
/// renewals pause for the cooldown (5 min). When the stranded login's
/// runtime runs again, past its deadline, it must not replace that pause
/// with its own 1-s one: two seconds later the refused password would be
/// sent again.
#[test]
fn a_stranded_flight_ending_late_does_not_shorten_a_newer_pause() {
    let idle = current_thread();
    let harness = idle.block_on(Harness::new());
    let stranded = idle.block_on(harness.slow_pair_on(LOGIN, Pair::new("a1", "r1"), 5_000));
    idle.block_on(stranded.up_to_n_times_async(1));
    let refused = idle.block_on(harness.answer(LOGIN, 400, r#"{"error":"invalid_grant"}"#, 0));
    strand_first_login(&idle, &harness, &stranded);
    let busy = current_thread();
    time_out_on_the_stranded_login(&busy, &harness);
    busy.block_on(async {
        let error = harness.client.access_token().await.expect_err("refused");
        assert!(
            matches!(error, dynata_sdk::Error::CredentialsRejected { .. }),
            "{error:?}"
        );
        assert_eq!(refused.calls_async().await, 1);
    });
    run_again(&idle);
    busy.block_on(async {
        harness.clock.advance(Duration::from_secs(2));
        let error = harness.client.access_token().await.expect_err("paused");
        assert!(
            matches!(error, dynata_sdk::Error::CredentialsRejected { .. }),
            "{error:?}"
        );
        assert_eq!(
            refused.calls_async().await,
            1,
            "the refused password was sent again 2 s into a 5-min cooldown"
        );
    });
}

/// The login answers 4-second tokens (the sandbox's, in the quickstart),
/// but the answer takes 5 s to arrive (a slow link; lifetimes count from
/// just before the request was sent, as the README says). The pair is
/// already expired when it arrives: `access_token()` must not hand it out
/// ("always valid"; `AccessToken`: "valid for at least the client's hard
/// refresh margin when access_token returned it"), as it refuses
/// `expiresIn: 0` for the same reason. The renewal is made once more at
/// once, with that pair's refresh token; when its answer is as late, that
/// is the end of it: an error, not a third renewal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_expired_on_arrival_is_not_served() {
    let harness = Harness::new().await;
    let slow_pair = |path: &'static str, pair: Pair| {
        harness.server.mock_async(move |when, then| {
            when.method(POST).path(path);
            then.status(200)
                .body(pair.lifetimes(4, 8).json())
                .delay(Duration::from_millis(500));
        })
    };
    let login = slow_pair(LOGIN, Pair::new("a1", "r1")).await;
    let refresh = slow_pair(REFRESH, Pair::new("a2", "r2")).await;
    let client = harness.client.clone();
    let caller = tokio::spawn(async move { client.access_token().await });
    for (call, sent) in [("login", &login), ("refresh", &refresh)] {
        eventually(&format!("the {call} reached the server"), || async {
            sent.calls_async().await == 1
        })
        .await;
        // Five seconds pass on the client's clock while the answer travels.
        harness.clock.advance(Duration::from_secs(5));
    }
    let outcome = caller.await.expect("task");
    let now = dynata_sdk::clock::Clock::now(&harness.clock);
    if let Ok(token) = &outcome {
        panic!(
            "access_token() returned a token that had expired {:?} before it was handed out",
            now.saturating_duration_since(token.expires_at())
        );
    }
    let error = outcome.expect_err("refused");
    assert!(
        matches!(error, dynata_sdk::Error::Decode { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("expired"), "{error}");
    assert_eq!(
        (login.calls_async().await, refresh.calls_async().await),
        (1, 1)
    );
}

/// A sync façade (the `current_thread` runtime it enters with `block_on`)
/// gives up on a `logout()` (a timeout around it) while a login is stranded
/// on that runtime. The logout's task stays there, waiting for that login,
/// and holds every caller meanwhile (`SlowPath::logouts`). A renewal
/// stranded this way is given up at its deadline ("the next call starts a
/// new one, even if the abandoned one is stuck on a runtime nobody
/// drives"); a logout stranded with it must not hold callers on other
/// runtimes for ever, long after that deadline.
#[test]
fn a_logout_stranded_on_an_idle_runtime_does_not_hold_callers_for_ever() {
    let idle = current_thread();
    let harness = idle.block_on(Harness::new());
    let login = idle.block_on(harness.slow_pair_on(LOGIN, Pair::new("a1", "r1"), 300));
    strand_first_login(&idle, &harness, &login);
    idle.block_on(async {
        let gave_up =
            tokio::time::timeout(Duration::from_millis(50), harness.client.logout()).await;
        assert!(gave_up.is_err(), "the logout waits for the stranded login");
    });
    let busy = current_thread();
    busy.block_on(async {
        let client = harness.client.clone();
        let caller = tokio::spawn(async move { client.access_token().await });
        // Five minutes of the client's time: far past the stranded login's
        // deadline (60 s) and grace (1 s).
        for _ in 0..5 {
            harness.clock.advance(Duration::from_secs(61));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let outcome = tokio::time::timeout(Duration::from_secs(5), caller).await;
        assert!(
            outcome.is_ok(),
            "access_token() on another runtime still waits, 5 minutes past the stranded \
             login's deadline, for a logout stranded on an idle runtime"
        );
    });
}

/// A client waiting for another process's renewal says so in its logs,
/// and says when the lease is free again: a fleet whose calls stall behind
/// a dead lease holder logged nothing at any level (found by a walkthrough).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_for_another_process_s_lease_is_logged() {
    use dynata_sdk::store::{FileStore, LeaseOwner, StoreKey, TokenStore};
    let captured = super::redaction::captured_logs();
    let dir = std::env::temp_dir().join(format!("dynata-lease-wait-log-{}", std::process::id()));
    let store = FileStore::new(&dir);
    let harness = Harness::with(|b| b.token_store(Arc::new(store.clone()))).await;
    let login = harness.pair_on(LOGIN, Pair::new("a1", "r1"), 0).await;
    let key = StoreKey::for_account(
        harness.client.base_url(),
        dynata_sdk::DEFAULT_CLIENT_ID,
        "alice",
    );
    let other = LeaseOwner::new("another-process");
    let ttl = Duration::from_secs(15);
    assert!(
        store
            .try_acquire_lease(&key, &other, ttl, std::time::SystemTime::now())
            .await
            .expect("the store answers"),
        "the lease was free"
    );
    let client = harness.client.clone();
    let caller = tokio::spawn(async move { client.access_token().await });
    eventually("the wait is logged", || async {
        captured
            .text()
            .contains("another process holds the renewal lease; waiting")
    })
    .await;
    assert_eq!(login.calls_async().await, 0, "it waits, sending nothing");
    assert!(store.release_lease(&key, &other).await.expect("released"));
    let token = caller.await.expect("task");
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(token.expect("logged in").secret(), "a1");
    assert!(
        captured.text().contains("the renewal lease is free again"),
        "{}",
        captured.text()
    );
}
