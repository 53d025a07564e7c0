//! `ClientBuilder::token_store`: clients that share a store share a session.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use dynata_sandbox::{Fault, Operation, Sandbox};
use dynata_sdk::auth_api::Secret;
use dynata_sdk::clock::ManualClock;
use dynata_sdk::store::{
    EncryptionKey, FileStore, LeaseOwner, StoreError, StoreFuture, StoreKey, StoredSession,
    TokenStore,
};
use dynata_sdk::store::{LoginRejection, SharedSession, SharingPolicy};
use dynata_sdk::{Client, Credentials, Environment, Error};
use tokio::sync::Notify;

use crate::{Changed, FileStoreChange, TempDir};

pub(crate) async fn sandbox() -> Sandbox {
    Sandbox::builder()
        .user("alice", "secret")
        .access_token_ttl(Duration::from_secs(1800))
        .start()
        .await
        .expect("starts")
}

fn client(sandbox: &Sandbox, store: Arc<dyn TokenStore>) -> Client {
    builder_on(sandbox, store, Credentials::new("alice", "secret"))
        .build()
        .expect("valid")
}

/// A client builder for `sandbox`'s account `credentials`, sharing `store`.
fn builder_on(
    sandbox: &Sandbox,
    store: Arc<dyn TokenStore>,
    credentials: Credentials,
) -> dynata_sdk::ClientBuilder {
    Client::builder()
        .credentials(credentials)
        .environment(Environment::custom(&sandbox.base_url()).expect("loopback"))
        .token_store(store)
}

/// The token of `client`, once the look at the store that a paused call
/// started in the background has adopted a session (real time, at most 5 s).
async fn adopted_in_background(client: &Client) -> dynata_sdk::AccessToken {
    for _ in 0..500 {
        if let Ok(token) = client.access_token().await {
            return token;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no session adopted while paused");
}

/// A client of `store` on `clock`, a `ManualClock` its test moves.
pub(crate) fn client_on(
    sandbox: &Sandbox,
    store: &FileStore,
    clock: &ManualClock,
    credentials: Credentials,
) -> Client {
    builder_on(sandbox, Arc::new(store.clone()), credentials)
        .clock(Arc::new(clock.clone()))
        .build()
        .expect("valid")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_client_adopts_the_session_the_first_stored() {
    let dir = TempDir::new("client-adopt");
    let sandbox = sandbox().await;
    // One template for both, as a service configures its workers.
    let store = Arc::new(FileStore::new(dir.path()));
    let template = builder_on(&sandbox, store, Credentials::new("alice", "secret"));
    let first = template.clone().build().expect("valid");
    let second = template.build().expect("valid");
    let a = first.access_token().await.expect("logs in");
    let b = second.access_token().await.expect("adopts");
    assert_eq!(a.secret(), b.secret());
    assert_eq!(sandbox.count(Operation::Login), 1);
    second.users_info().await.expect("the adopted token works");
    // The fast path serves it from then on: nothing more is sent.
    for _ in 0..100 {
        second.access_token().await.expect("cached");
    }
    assert_eq!(
        sandbox.count(Operation::Login) + sandbox.count(Operation::Refresh),
        1
    );
}

/// Three processes of a fleet share `store`: two still have the password the
/// account had before it changed, one the new one.
pub(crate) async fn an_outdated_password_is_sent_once_per_fleet(
    store: impl Fn() -> Arc<dyn TokenStore>,
) {
    let sandbox = sandbox().await;
    let with_password = |password: &str| {
        builder_on(&sandbox, store(), Credentials::new("alice", password))
            .build()
            .expect("valid")
    };
    let (first, second) = (with_password("Winter2025!"), with_password("Winter2025!"));
    let rejected = first.access_token().await.expect_err("rejected");
    assert!(
        matches!(rejected, Error::CredentialsRejected { .. }),
        "{rejected:?}"
    );
    assert_eq!(sandbox.count(Operation::Login), 1);

    let also_rejected = second.access_token().await.expect_err("rejected");
    let Error::CredentialsRejected {
        status,
        description,
        ..
    } = &also_rejected
    else {
        panic!("{also_rejected:?}");
    };
    assert_eq!(
        sandbox.count(Operation::Login),
        1,
        "the second process did not send the rejected password again"
    );
    assert!(matches!(status, 400 | 401), "{status}");
    assert!(
        description
            .as_deref()
            .is_some_and(|d| d.contains("the token store records")),
        "{also_rejected}"
    );
    assert!(
        !also_rejected.to_string().contains("Winter2025"),
        "{also_rejected}"
    );

    // The corrected password is not held back by the others' rejection.
    let fixed = with_password("secret");
    fixed.access_token().await.expect("logs in");
    assert_eq!(sandbox.count(Operation::Login), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outdated_password_is_sent_once_per_fleet_sharing_a_file_store() {
    let dir = TempDir::new("client-rejected");
    let path = dir.path().to_path_buf();
    an_outdated_password_is_sent_once_per_fleet(|| Arc::new(FileStore::new(&path))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encrypted_store_keeps_the_rejection_unreadable_and_still_shares_it() {
    let dir = TempDir::new("client-rejected-sealed");
    let path = dir.path().to_path_buf();
    let key = EncryptionKey::from_bytes([7; 32]);
    an_outdated_password_is_sent_once_per_fleet(|| {
        Arc::new(FileStore::new(&path).with_encryption(key.clone()))
    })
    .await;
    let records: Vec<_> = std::fs::read_dir(&path)
        .expect("readable")
        .map(|entry| entry.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "rejected"))
        .collect();
    assert_eq!(records.len(), 1, "{records:?}");
    let bytes = std::fs::read(&records[0]).expect("readable");
    let text = String::from_utf8_lossy(&bytes);
    for word in ["hash", "salt", "iterations", "invalid_grant"] {
        assert!(!text.contains(word), "{word} readable in {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateways_401_is_not_recorded_as_a_refused_password() {
    let dir = TempDir::new("client-gateway-401");
    let sandbox = sandbox().await;
    // A bare 401 from a gateway (no OAuth error code) on the first login.
    sandbox.inject(Operation::Login, Fault::Status(401), 1);
    let build = || {
        Client::builder()
            .credentials(Credentials::new("alice", "secret"))
            .environment(Environment::custom(&sandbox.base_url()).expect("loopback"))
            .token_store(Arc::new(FileStore::new(dir.path())))
            .rejected_login_cooldown(None)
            .build()
            .expect("valid")
    };
    let first = build().access_token().await.expect_err("the gateway's 401");
    assert!(
        matches!(first, Error::CredentialsRejected { .. }),
        "{first:?}"
    );
    // Another process with the same, correct password is not held back.
    build().access_token().await.expect("logs in");
    assert_eq!(sandbox.count(Operation::Login), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_removes_the_stored_session_and_the_others_log_in_again() {
    let dir = TempDir::new("client-logout");
    let sandbox = sandbox().await;
    let store = FileStore::new(dir.path());
    let first = client(&sandbox, Arc::new(store.clone()));
    let second = client(&sandbox, Arc::new(store.clone()));
    first.access_token().await.expect("logs in");
    second.access_token().await.expect("adopts");
    let key = StoreKey::for_account(&sandbox.base_url(), "api", "alice");
    assert!(store.session_path(&key).exists());

    first.logout().await.expect("logged out");
    assert!(
        !store.session_path(&key).exists(),
        "the shared session is gone"
    );
    // The session was revoked at Dynata: the other client's next call meets a
    // 401, renews (a login, as the store is empty) and succeeds.
    second.users_info().await.expect("renewed after the 401");
    assert_eq!(sandbox.count(Operation::Login), 2);
}

/// A worker without a password shares a session that another process then
/// logs out of: Dynata refuses the worker's refresh token once. With nothing
/// in the store to adopt and no password, it must not send that dead token
/// again on every call after that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_refresh_token_is_not_sent_again_by_a_client_without_password() {
    let dir = TempDir::new("client-refused-refresh");
    let sandbox = sandbox().await;
    let store = FileStore::new(dir.path());
    let clock = ManualClock::new();
    let on_clock = |credentials| client_on(&sandbox, &store, &clock, credentials);
    let first = on_clock(Credentials::new("alice", "secret"));
    let worker = on_clock(Credentials::without_password("alice"));
    first.access_token().await.expect("logs in");
    worker.access_token().await.expect("adopts");
    first.logout().await.expect("logged out");

    clock.advance(Duration::from_secs(30 * 60));
    for _ in 0..3 {
        let error = worker
            .access_token()
            .await
            .expect_err("nothing to renew with");
        assert!(matches!(error, Error::LoginRequired), "{error:?}");
        clock.advance(Duration::from_secs(2));
    }
    assert_eq!(sandbox.count(Operation::Refresh), 1);
    // A new session in the store is adopted as before.
    let renewed = first.access_token().await.expect("logs in again");
    let adopted = worker.access_token().await.expect("adopts the new session");
    assert_eq!(adopted.secret(), renewed.secret());
}

/// A short-lived process (a command line, a cron job) waits for the
/// refresh that its last call started in the background before it exits:
/// once `finish_renewal` returns, the new session is in the store. Cut off,
/// the refresh may have spent the refresh token at Dynata while the store
/// kept the old pair, which the next process can no longer refresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finish_renewal_returns_once_the_background_refresh_is_stored() {
    let dir = TempDir::new("client-finish-renewal");
    let sandbox = sandbox().await;
    let store = FileStore::new(dir.path());
    let clock = ManualClock::new();
    let client = client_on(
        &sandbox,
        &store,
        &clock,
        Credentials::new("alice", "secret"),
    );
    let first = client.access_token().await.expect("logs in");
    let key = StoreKey::for_account(&sandbox.base_url(), "api", "alice");
    // Nothing under way: returns at once.
    client.finish_renewal().await;

    // Into the soft window (the last five minutes): the call is served the
    // current token and starts a refresh, whose answer takes a while.
    sandbox.inject(
        Operation::Refresh,
        Fault::Delay(Duration::from_millis(300)),
        1,
    );
    clock.advance(Duration::from_secs(26 * 60));
    let served = client.access_token().await.expect("served");
    assert!(served.same_as(&first), "served without waiting");
    client.finish_renewal().await;
    assert_eq!(sandbox.count(Operation::Refresh), 1);
    let stored = store.load(&key).await.expect("readable").expect("stored");
    assert_ne!(
        stored.access_token.expose_secret(),
        first.secret(),
        "the refreshed session is stored once finish_renewal returns"
    );
}

/// With a token store too, a refresh answered `401` with an empty body (a
/// gateway's) may be the refresh token refused: the renewal logs in with
/// the password at once and stores that session. (It paused renewals for
/// the five-minute rejected-login cooldown, a password it never sent.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bare_401_to_a_refresh_falls_back_to_the_password() {
    let dir = TempDir::new("client-bare-401-refresh");
    let server = httpmock::MockServer::start_async().await;
    let pair = |access: &str, refresh: &str| {
        format!(
            r#"{{"accessToken":"{access}","expiresIn":1800,"refreshToken":"{refresh}","refreshExpiresIn":3600,"tokenType":"bearer"}}"#
        )
    };
    let answer = |path: &'static str, status: u16, body: String| {
        server.mock_async(move |when, then| {
            when.method(httpmock::Method::POST).path(path);
            then.status(status)
                .header("content-type", "application/vnd.token+json")
                .body(body);
        })
    };
    let login = answer("/auth/v1/token/password", 200, pair("a1", "r1")).await;
    login.up_to_n_times_async(1).await;
    let refresh = answer("/auth/v1/token/refresh", 401, String::new()).await;
    let relogin = answer("/auth/v1/token/password", 200, pair("a2", "r2")).await;
    let clock = ManualClock::new();
    let store = FileStore::new(dir.path());
    let client = Client::builder()
        .credentials(Credentials::new("alice", "secret"))
        .environment(Environment::custom(&server.base_url()).expect("loopback"))
        .token_store(Arc::new(store.clone()))
        .clock(Arc::new(clock.clone()))
        .build()
        .expect("valid");
    assert_eq!(client.access_token().await.expect("logs in").secret(), "a1");
    clock.advance(Duration::from_secs(30 * 60));
    let renewed = client.access_token().await.map(|t| t.secret().to_string());
    assert_eq!(renewed.map_err(|e| e.to_string()), Ok("a2".to_string()));
    assert_eq!(
        (
            login.calls_async().await,
            refresh.calls_async().await,
            relogin.calls_async().await
        ),
        (1, 1, 1)
    );
    let key = StoreKey::for_account(&server.base_url(), "api", "alice");
    let stored = store.load(&key).await.expect("readable").expect("stored");
    assert_eq!(stored.access_token.expose_secret(), "a2");
}

/// A client of `store` on `sandbox` without a password, as every `dynata`
/// command but `login` is.
fn passwordless(sandbox: &Sandbox, store: &FileStore) -> Client {
    builder_on(
        sandbox,
        Arc::new(store.clone()),
        Credentials::without_password("alice"),
    )
    .build()
    .expect("valid")
}

/// A client without a password and an empty store never had a session:
/// its error says the store holds none, not only that "the session has
/// ended" (found by a walkthrough), and it sends nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passwordless_client_with_an_empty_store_is_told_so() {
    let dir = TempDir::new("client-passwordless-empty");
    let sandbox = sandbox().await;
    let store = FileStore::new(dir.path());
    let error = passwordless(&sandbox, &store)
        .access_token()
        .await
        .expect_err("nothing to renew");
    assert!(matches!(error, Error::LoginRequired), "{error:?}");
    let said = error.to_string();
    assert!(said.contains("the token store holds none"), "{said}");
    assert_eq!(sandbox.count(Operation::Login), 0);
}

/// A session logged in and stored, then adopted by a client without a
/// password; a call of that client gets a `401`, and Dynata's refresh
/// endpoint answers with `fault`: what renewing gives it.
async fn renewal_of_a_passwordless_client_whose_refresh_gets(
    sandbox: &Sandbox,
    store: &FileStore,
    fault: Fault,
) -> Result<dynata_sdk::AccessToken, Error> {
    client(sandbox, Arc::new(store.clone()))
        .access_token()
        .await
        .expect("logs in");
    let worker = passwordless(sandbox, store);
    let token = worker.access_token().await.expect("adopts");
    sandbox.inject(Operation::Refresh, fault, 1);
    assert!(worker.invalidate(&token));
    worker.access_token().await
}

/// A session whose refresh token Dynata refused is dead: a client that
/// cannot log in takes it out of the store, so that another process is not
/// handed its access token (the command line's `dynata token` printed a
/// revoked token until it expired) nor sends its refresh token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_dynata_refused_to_refresh_is_taken_out_of_the_store() {
    let dir = TempDir::new("client-dead-session");
    let sandbox = sandbox().await;
    let store = FileStore::new(dir.path());
    // Revoked at Dynata: the refresh is refused.
    let ended =
        renewal_of_a_passwordless_client_whose_refresh_gets(&sandbox, &store, Fault::InvalidGrant)
            .await;
    assert!(matches!(ended, Err(Error::LoginRequired)), "{ended:?}");
    let key = StoreKey::for_account(&sandbox.base_url(), "api", "alice");
    assert!(
        store.load(&key).await.expect("readable").is_none(),
        "the dead session is still stored"
    );
    let reader = passwordless(&sandbox, &store).access_token().await;
    assert!(
        matches!(reader, Err(Error::LoginRequired)),
        "another process got {reader:?}"
    );
    assert_eq!(sandbox.count(Operation::Refresh), 1);
    // A new login is shared as before.
    let renewed = client(&sandbox, Arc::new(store.clone()))
        .access_token()
        .await
        .expect("logs in again");
    let adopted = passwordless(&sandbox, &store)
        .access_token()
        .await
        .expect("adopts");
    assert_eq!(adopted.secret(), renewed.secret());
}

/// A gateway's `401` or `403` to a refresh, bare or with its own `{"message":
/// …}` (which reads as an auth error), may never have reached Dynata: the
/// fleet's session (its access token and its refresh token) may be live. A
/// client without a password leaves it stored. (Taken for a refusal, it was
/// removed, and one gateway hiccup logged the whole fleet out: the 403 at
/// first, the JSON 401, found by review, after.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateways_401_or_403_to_a_refresh_leaves_the_live_session_stored() {
    for status in [401, 403] {
        let dir = TempDir::new("client-gateway-refusal-kept");
        let sandbox = sandbox().await;
        let store = FileStore::new(dir.path());
        let renewal = renewal_of_a_passwordless_client_whose_refresh_gets(
            &sandbox,
            &store,
            Fault::Status(status),
        )
        .await;
        let key = StoreKey::for_account(&sandbox.base_url(), "api", "alice");
        let stored = store.load(&key).await.expect("readable");
        assert!(
            stored.is_some(),
            "a gateway's {status} took the fleet's live session out of the store (the renewal: {renewal:?})"
        );
        // And the error says so: the session is kept, not ended (the
        // gateway's JSON 401 read "the session has ended": found by review).
        if let Err(refused @ Error::CredentialsRejected { .. }) = &renewal {
            let said = refused.to_string();
            assert!(said.contains("the session is kept"), "{said}");
            assert!(!said.contains("has ended"), "{said}");
        }
        passwordless(&sandbox, &store)
            .access_token()
            .await
            .expect("another process still has the live session");
    }
}

/// A gateway's `503` page over the auth client's 256 KiB cap never reached
/// Dynata: the fleet's session stays stored. (It was read as an unusable
/// answer that spent the refresh token, and a client without a password
/// took the live session out of the store; found by review.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_gateway_page_to_a_refresh_leaves_the_live_session_stored() {
    let dir = TempDir::new("client-oversized-page");
    let server = httpmock::MockServer::start_async().await;
    let login = server
        .mock_async(|when, then| {
            when.method(httpmock::Method::POST).path("/auth/v1/token/password");
            then.status(200)
                .header("content-type", "application/vnd.token+json")
                .body(r#"{"accessToken":"a1","expiresIn":1800,"refreshToken":"r1","refreshExpiresIn":3600}"#);
        })
        .await;
    let page = format!(
        "<html><head><title>Service Unavailable</title></head><body>{}</body></html>",
        "x".repeat(300 * 1024)
    );
    let refresh = server
        .mock_async(|when, then| {
            when.method(httpmock::Method::POST)
                .path("/auth/v1/token/refresh");
            then.status(503)
                .header("content-type", "text/html")
                .body(&page);
        })
        .await;
    let store = FileStore::new(dir.path());
    let build = |credentials| {
        Client::builder()
            .credentials(credentials)
            .environment(Environment::custom(&server.base_url()).expect("loopback"))
            .token_store(Arc::new(store.clone()))
            .retry_policy(dynata_sdk::RetryPolicy::none())
            .build()
            .expect("valid")
    };
    build(Credentials::new("alice", "secret"))
        .access_token()
        .await
        .expect("logs in");
    let worker = build(Credentials::without_password("alice"));
    let token = worker.access_token().await.expect("adopts");
    assert!(worker.invalidate(&token));
    let renewal = worker.access_token().await;
    let key = StoreKey::for_account(&server.base_url(), "api", "alice");
    let stored = store.load(&key).await.expect("readable");
    assert!(
        stored.is_some(),
        "a gateway's oversized 503 took the fleet's live session out of the store (the renewal: {renewal:?}; logins {}, refreshes {})",
        login.calls_async().await,
        refresh.calls_async().await,
    );
}

/// A stored access token no `Authorization` header can carry (a line
/// break: another writer's bug, a hand-edited file) counts as expired: the
/// session is refreshed with its refresh token, which may still be live,
/// and the record replaced; no call fails on it. (It was adopted as it
/// was, and every call failed before sending until it expired, with no
/// `401` to renew it; found by review. Then it was treated as garbage,
/// which threw its live refresh token away; found by the next review.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_token_no_header_can_carry_is_refreshed_not_adopted() {
    let dir = TempDir::new("client-unsendable-token");
    let sandbox = sandbox().await;
    let store = FileStore::new(dir.path());
    let key = StoreKey::for_account(&sandbox.base_url(), "api", "alice");
    let garbled = garble_stored_access_token(&sandbox, &store, &key).await;
    let client = client(&sandbox, Arc::new(store.clone()));
    let call = client.users_info().await;
    assert!(call.is_ok(), "a call failed on the garbled token: {call:?}");
    assert_eq!(
        (
            sandbox.count(Operation::Login),
            sandbox.count(Operation::Refresh)
        ),
        (1, 1),
        "refreshed, not logged in again"
    );
    let stored = store.load(&key).await.expect("readable").expect("stored");
    assert_ne!(stored.access_token.expose_secret(), "line\nbreak");
    assert_ne!(stored.refresh_token, garbled.refresh_token, "replaced");
}

/// A logout revokes such a session as any other: the revocation carries
/// the tokens in its body, where no header is needed. (Treated as garbage,
/// it was taken out of the store unrevoked, its refresh token live at
/// Dynata and held by nobody; found by review.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_revokes_a_stored_session_whose_access_token_no_header_can_carry() {
    let dir = TempDir::new("client-logout-unsendable");
    let sandbox = sandbox().await;
    let store = FileStore::new(dir.path());
    let key = StoreKey::for_account(&sandbox.base_url(), "api", "alice");
    garble_stored_access_token(&sandbox, &store, &key).await;
    let other = builder_on(
        &sandbox,
        Arc::new(store.clone()),
        Credentials::without_password("alice"),
    )
    .build()
    .expect("valid");
    let logout = other.logout().await;
    assert!(logout.is_ok(), "{logout:?}");
    assert!(
        store.load(&key).await.expect("readable").is_none(),
        "removed"
    );
    assert_eq!(sandbox.count(Operation::Logout), 1, "revoked");
}

/// A live session at `sandbox`, logged in by a client of `store` that is
/// then dropped, whose stored access token another writer then garbled
/// (a line break); returns what is stored.
async fn garble_stored_access_token(
    sandbox: &Sandbox,
    store: &FileStore,
    key: &StoreKey,
) -> StoredSession {
    let first = client(sandbox, Arc::new(store.clone()));
    first.access_token().await.expect("logs in");
    drop(first);
    let mut garbled = store.load(key).await.expect("readable").expect("stored");
    garbled.access_token = Secret::new("line\nbreak");
    store
        .save(key, &garbled, SystemTime::now())
        .await
        .expect("saved");
    garbled
}

/// Dynata told this client to wait ten minutes before renewing again; another
/// process has renewed since and stored a fresh session. Taking it from the
/// store sends nothing to Dynata: the pause must not hold that back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_client_still_adopts_what_another_process_stored() {
    let dir = TempDir::new("client-paused-adopts");
    let sandbox = sandbox().await;
    let store = FileStore::new(dir.path());
    let clock = ManualClock::new();
    let paused = client_on(
        &sandbox,
        &store,
        &clock,
        Credentials::new("alice", "secret"),
    );
    paused.access_token().await.expect("logs in");
    sandbox.inject(
        Operation::Refresh,
        Fault::RateLimited {
            retry_after: Duration::from_secs(600),
        },
        1,
    );
    clock.advance(Duration::from_secs(30 * 60));
    let error = paused.access_token().await.expect_err("told to wait");
    assert!(matches!(error, Error::RateLimited { .. }), "{error:?}");

    // Another process, started later.
    let other = client_on(
        &sandbox,
        &store,
        &clock,
        Credentials::new("alice", "secret"),
    );
    let stored = other.access_token().await.expect("renews and stores");
    clock.advance(Duration::from_secs(2));
    // The call fails at once, as paused calls do; it starts a look at the
    // store, and the session found there serves the calls after it.
    let error = paused.access_token().await.expect_err("still paused");
    assert!(matches!(error, Error::RateLimited { .. }), "{error:?}");
    let adopted = adopted_in_background(&paused).await;
    assert_eq!(adopted.secret(), stored.secret());
    assert_eq!(
        sandbox.count(Operation::Refresh) + sandbox.count(Operation::Login),
        3,
        "a login, the refused refresh and the other's refresh: nothing more"
    );
}

/// A lease that never ends (a store's fault: a foreign value under the
/// lease key, a holder whose clock ran far ahead) delays a renewal, but must
/// not fail it: a client that can log in stops waiting in time to do so
/// within its `renewal_timeout`. It used to wait for the lease as long as
/// its renewal could last, so every renewal timed out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_that_never_ends_delays_a_renewal_but_does_not_fail_it() {
    let waited = renewal_beside_a_lease_that_never_ends(|builder| builder).await;
    // It stops waiting with a quarter of its 60 s left.
    assert!(
        waited >= Duration::from_secs(45) && waited < Duration::from_secs(46),
        "waited {waited:?}"
    );
}

/// The same with a policy of the caller's whose `lease_wait` (60 s)
/// outlasts the client's `renewal_timeout` (20 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_that_never_ends_does_not_fail_a_renewal_under_any_policy() {
    let waited = renewal_beside_a_lease_that_never_ends(|builder| {
        builder
            .sharing_policy(SharingPolicy::default())
            .renewal_timeout(Duration::from_secs(20))
    })
    .await;
    assert!(
        waited >= Duration::from_secs(15) && waited < Duration::from_secs(16),
        "waited {waited:?}"
    );
}

/// A client built by `configure` renews while another holder keeps the
/// lease for a day, and succeeds with one login; how long it waited, on its
/// clock (which runs only while it waits for the store).
async fn renewal_beside_a_lease_that_never_ends(
    configure: impl FnOnce(dynata_sdk::ClientBuilder) -> dynata_sdk::ClientBuilder,
) -> Duration {
    let dir = TempDir::new("client-stuck-lease");
    let sandbox = sandbox().await;
    let clock = ManualClock::new();
    let store = Changed(WaitsOnTheClientsClock {
        inner: FileStore::new(dir.path()),
        clock: clock.clone(),
    });
    let key = StoreKey::for_account(&sandbox.base_url(), "api", "alice");
    let day = Duration::from_secs(24 * 60 * 60);
    let stuck = LeaseOwner::new("a-holder-that-never-lets-go");
    assert!(
        store
            .inner
            .try_acquire_lease(&key, &stuck, day, SystemTime::now())
            .await
            .expect("acquired")
    );
    let inner = store.inner.clone();
    let client = configure(
        builder_on(
            &sandbox,
            Arc::new(store),
            Credentials::new("alice", "secret"),
        )
        .clock(Arc::new(clock.clone())),
    )
    .build()
    .expect("valid");

    let started = dynata_sdk::clock::Clock::now(&clock);
    client
        .access_token()
        .await
        .expect("renewed on its own before the renewal's time ran out");
    assert_eq!(sandbox.count(Operation::Login), 1);
    assert!(
        inner.release_lease(&key, &stuck).await.expect("answers"),
        "the other holder's lease was left alone"
    );
    dynata_sdk::clock::Clock::now(&clock) - started
}

/// A `FileStore` on which a wait for a change takes all its time on the
/// client's `ManualClock`, and none of the test's: the client's clock runs
/// while it waits for the lease, and only then.
#[derive(Debug)]
struct WaitsOnTheClientsClock {
    inner: FileStore,
    clock: ManualClock,
}

impl FileStoreChange for WaitsOnTheClientsClock {
    fn inner(&self) -> &FileStore {
        &self.inner
    }

    fn wait_for_change<'a>(&'a self, _: &'a StoreKey, at_most: Duration) -> StoreFuture<'a, ()> {
        self.clock.advance(at_most);
        Box::pin(async { Ok(()) })
    }
}

/// A `FileStore` whose `remove` holds until the test lets it go, and that
/// says when it starts and whether anything is loaded meanwhile.
#[derive(Debug)]
struct HeldRemove {
    inner: FileStore,
    removing: AtomicBool,
    remove_started: Notify,
    loaded_while_removing: Notify,
    release: Notify,
}

impl FileStoreChange for HeldRemove {
    fn inner(&self) -> &FileStore {
        &self.inner
    }

    fn load<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, Option<StoredSession>> {
        if self.removing.load(Ordering::SeqCst) {
            self.loaded_while_removing.notify_one();
        }
        self.inner.load(key)
    }

    fn remove<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.removing.store(true, Ordering::SeqCst);
            self.remove_started.notify_one();
            self.release.notified().await;
            let removed = self.inner.remove(key).await;
            self.removing.store(false, Ordering::SeqCst);
            removed
        })
    }
}

/// A call made while `logout()` removes the stored session must not adopt
/// that session from the store: logout is about to revoke it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_during_logout_waits_for_it_and_never_gets_the_revoked_token() {
    let dir = TempDir::new("client-logout-race");
    let sandbox = sandbox().await;
    let store = Arc::new(Changed(HeldRemove {
        inner: FileStore::new(dir.path()),
        removing: AtomicBool::new(false),
        remove_started: Notify::new(),
        loaded_while_removing: Notify::new(),
        release: Notify::new(),
    }));
    let client = client(&sandbox, store.clone());
    let before = client.access_token().await.expect("logs in");

    let logout = tokio::spawn({
        let client = client.clone();
        async move { client.logout().await }
    });
    store.remove_started.notified().await;
    let during = tokio::spawn({
        let client = client.clone();
        async move { client.access_token().await }
    });
    // Without the fix the call loads the store at once and adopts the session
    // still in it. This only bounds how long the test looks for that.
    tokio::select! {
        () = store.loaded_while_removing.notified() => {}
        () = tokio::time::sleep(Duration::from_millis(300)) => {}
    }
    store.release.notify_one();
    logout.await.expect("joined").expect("logged out");
    let during = during.await.expect("joined").expect("a token");
    let after = client.access_token().await.expect("a token");
    // Compared by value: a session adopted from the store is a new handle.
    assert_ne!(
        during.secret(),
        before.secret(),
        "a call during logout got the revoked token"
    );
    assert_ne!(
        after.secret(),
        before.secret(),
        "the revoked token is served after logout"
    );
    assert_eq!(sandbox.count(Operation::Login), 2);
    assert_eq!(sandbox.count(Operation::Logout), 1);
    client.users_info().await.expect("the new session works");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_whose_store_is_unusable_still_works() {
    let dir = TempDir::new("client-broken");
    // A regular file where the store's directory should be.
    std::fs::write(dir.path(), b"not a directory").expect("written");
    let sandbox = sandbox().await;
    let client = client(
        &sandbox,
        Arc::new(FileStore::new(dir.path().join("sessions"))),
    );
    client.users_info().await.expect("works without the store");
    assert_eq!(sandbox.count(Operation::Login), 1);
    let _ = std::fs::remove_file(dir.path());
}

/// A refusal another process recorded holds this client back only as long
/// as the record lives, even without a cooldown of its own ("never tries
/// again" is about its own refusals): it sent nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_refusal_holds_back_no_longer_than_the_record_lives() {
    let dir = TempDir::new("client-record-expiry");
    let sandbox = sandbox().await;
    let clock = ManualClock::new();
    let store: Arc<dyn TokenStore> = Arc::new(FileStore::new(dir.path()));
    let key = StoreKey::for_account(&sandbox.base_url(), "api", "alice");
    let other = SharedSession::new(
        store.clone(),
        key,
        SharingPolicy::default(),
        Arc::new(clock.clone()),
    );
    // Another process had "secret" refused (the account was locked then).
    let until = other.wall_clock().now() + Duration::from_secs(60);
    other
        .remember_rejected_login(
            LoginRejection::new(400, Some("invalid_grant".into()), until),
            &Secret::new("secret"),
            None,
        )
        .await;
    let client = builder_on(&sandbox, store, Credentials::new("alice", "secret"))
        .clock(Arc::new(clock.clone()))
        .rejected_login_cooldown(None)
        .build()
        .expect("valid");
    let held = client.access_token().await.expect_err("held back");
    assert!(held.to_string().contains("expires in 60 s"), "{held}");
    assert_eq!(sandbox.count(Operation::Login), 0);
    clock.advance(Duration::from_secs(61));
    client
        .access_token()
        .await
        .expect("logs in once the record ended");
    assert_eq!(sandbox.count(Operation::Login), 1);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("readable")
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.path().extension().is_some_and(|e| e == "rejected"))
        .collect();
    assert!(leftovers.is_empty(), "the expired record was removed");
}

/// A `FileStore` in which another process records a fresh refusal right
/// after this one has read the (expired) record.
#[derive(Debug)]
struct RecordsAfterRead {
    inner: FileStore,
    fresh: std::sync::Mutex<Option<Vec<u8>>>,
}

impl FileStoreChange for RecordsAfterRead {
    fn inner(&self) -> &FileStore {
        &self.inner
    }

    fn load_rejected_login<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, Option<Vec<u8>>> {
        Box::pin(async move {
            let read = self.inner.load_rejected_login(key).await;
            let fresh = self.fresh.lock().expect("not poisoned").take();
            if let Some(fresh) = fresh {
                let minutes = Duration::from_secs(300);
                self.inner
                    .save_rejected_login(key, &fresh, minutes, SystemTime::now())
                    .await
                    .expect("saved");
            }
            read
        })
    }
}

/// Removing an expired record must not remove the fresh refusal another
/// process recorded between the read and the removal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_record_is_removed_but_never_a_fresh_one_written_meanwhile() {
    let dir = TempDir::new("record-race");
    let scratch = TempDir::new("record-race-scratch");
    let clock = ManualClock::new();
    let key = StoreKey::for_account("http://127.0.0.1:1", "api", "alice");
    let session = |store: Arc<dyn TokenStore>| {
        SharedSession::new(
            store,
            key.clone(),
            SharingPolicy::default(),
            Arc::new(clock.clone()),
        )
    };
    let racing = Arc::new(Changed(RecordsAfterRead {
        inner: FileStore::new(dir.path()),
        fresh: std::sync::Mutex::new(None),
    }));
    let (reader, checker) = (
        session(racing.clone()),
        session(Arc::new(FileStore::new(dir.path()))),
    );
    let refused = Secret::new("Winter2025!");
    let rejection =
        |at: SystemTime, ttl| LoginRejection::new(400, Some("invalid_grant".into()), at + ttl);
    // An old refusal, expired by the time it is read.
    checker
        .remember_rejected_login(
            rejection(checker.wall_clock().now(), Duration::from_secs(60)),
            &refused,
            None,
        )
        .await;
    clock.advance(Duration::from_secs(61));
    // The fresh one another process records meanwhile (written elsewhere
    // first, to have its bytes).
    let elsewhere = session(Arc::new(FileStore::new(scratch.path())));
    elsewhere
        .remember_rejected_login(
            rejection(elsewhere.wall_clock().now(), Duration::from_secs(300)),
            &refused,
            None,
        )
        .await;
    let fresh = FileStore::new(scratch.path())
        .load_rejected_login(&key)
        .await
        .expect("readable")
        .expect("written");
    *racing.fresh.lock().expect("not poisoned") = Some(fresh);

    assert!(
        reader.rejected_login(&refused, None).await.is_none(),
        "expired"
    );
    assert!(
        checker.rejected_login(&refused, None).await.is_some(),
        "the fresh refusal was removed"
    );
    // With nothing written meanwhile, an expired record is removed.
    clock.advance(Duration::from_secs(301));
    assert!(checker.rejected_login(&refused, None).await.is_none());
    assert!(
        !FileStore::new(dir.path())
            .rejected_login_path(&key)
            .exists()
    );
}

/// A client whose password Dynata refused, built with
/// `rejected_login_cooldown(None)` ("never tries again"), adopts another
/// process's session while paused; that adoption must not lift the refusal
/// (once the shared session dies, it must not send the password again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adopting_while_paused_does_not_lift_a_refused_password() {
    let dir = TempDir::new("client-adopt-keeps-refusal");
    let sandbox = sandbox().await;
    let store = FileStore::new(dir.path());
    let clock = ManualClock::new();
    let stale = builder_on(
        &sandbox,
        Arc::new(store.clone()),
        Credentials::new("alice", "outdated"),
    )
    .clock(Arc::new(clock.clone()))
    .rejected_login_cooldown(None)
    .build()
    .expect("valid");
    let good = client_on(
        &sandbox,
        &store,
        &clock,
        Credentials::new("alice", "secret"),
    );
    let refused = stale.access_token().await.expect_err("outdated password");
    assert!(
        matches!(refused, Error::CredentialsRejected { .. }),
        "{refused:?}"
    );
    assert_eq!(sandbox.count(Operation::Login), 1);

    good.access_token().await.expect("logs in and stores");
    clock.advance(Duration::from_secs(2));
    stale.access_token().await.expect_err("still paused");
    adopted_in_background(&stale).await;

    // The shared session dies (a logout elsewhere), well after the store's
    // 5-minute record of the refusal has ended.
    sandbox.revoke_all();
    clock.advance(Duration::from_secs(31 * 60));
    let _ = stale.access_token().await;
    clock.advance(Duration::from_secs(2));
    let _ = stale.access_token().await;
    assert_eq!(
        sandbox.count(Operation::Login),
        2,
        "the refused password was sent again (cooldown None: never)"
    );
}

/// Dynata told this client to wait an hour (429, Retry-After: 3600).
/// Adopting another process's session while paused must not let it send a
/// refresh to Dynata before that hour is over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adopting_while_paused_does_not_lift_a_servers_retry_after() {
    let dir = TempDir::new("client-adopt-keeps-retry-after");
    let sandbox = sandbox().await;
    let store = FileStore::new(dir.path());
    let clock = ManualClock::new();
    let paused = client_on(
        &sandbox,
        &store,
        &clock,
        Credentials::new("alice", "secret"),
    );
    let other = client_on(
        &sandbox,
        &store,
        &clock,
        Credentials::new("alice", "secret"),
    );
    paused.access_token().await.expect("logs in");
    sandbox.inject(
        Operation::Refresh,
        Fault::RateLimited {
            retry_after: Duration::from_secs(3600),
        },
        1,
    );
    clock.advance(Duration::from_secs(30 * 60));
    let error = paused.access_token().await.expect_err("told to wait");
    assert!(matches!(error, Error::RateLimited { .. }), "{error:?}");
    other.access_token().await.expect("renews and stores");
    let sent = sandbox.count(Operation::Refresh) + sandbox.count(Operation::Login);
    assert_eq!(sent, 3);

    // 24.5 minutes on, still well inside the hour: the stored session is
    // fresh enough to adopt, and reaches its soft window 40 s later.
    clock.advance(Duration::from_secs(24 * 60 + 30));
    paused.access_token().await.expect_err("still paused");
    adopted_in_background(&paused).await;
    clock.advance(Duration::from_secs(40));
    let _ = paused.access_token().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        sandbox.count(Operation::Refresh) + sandbox.count(Operation::Login),
        sent,
        "sent to Dynata 25 minutes into a 60-minute Retry-After"
    );
}

/// A `FileStore` whose loads, once `hold` is set, wait until the test
/// releases them (a struggling remote store), counting those under way.
#[derive(Debug)]
struct HeldLoad {
    inner: FileStore,
    hold: AtomicBool,
    release: Notify,
    started: AtomicUsize,
    under_way: Arc<AtomicUsize>,
}

/// Counts a load under way until it ends or is dropped.
struct UnderWay(Arc<AtomicUsize>);

impl Drop for UnderWay {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl FileStoreChange for HeldLoad {
    fn inner(&self) -> &FileStore {
        &self.inner
    }

    fn load<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, Option<StoredSession>> {
        Box::pin(async move {
            if self.hold.load(Ordering::SeqCst) {
                self.under_way.fetch_add(1, Ordering::SeqCst);
                let _under_way = UnderWay(self.under_way.clone());
                self.started.fetch_add(1, Ordering::SeqCst);
                self.release.notified().await;
            }
            self.inner.load(key).await
        })
    }
}

/// During a refused password's cooldown, calls fail at once without sending
/// anything (README). The look at the store for a session another process
/// stored runs beside them: a paused call does not wait for a slow store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_call_fails_at_once_while_the_store_is_slow() {
    let dir = TempDir::new("client-paused-slow-store");
    let sandbox = sandbox().await;
    let store = Arc::new(Changed(HeldLoad {
        inner: FileStore::new(dir.path()),
        hold: AtomicBool::new(false),
        release: Notify::new(),
        started: AtomicUsize::new(0),
        under_way: Arc::default(),
    }));
    let client = builder_on(
        &sandbox,
        store.clone(),
        Credentials::new("alice", "outdated"),
    )
    .build()
    .expect("valid");
    let refused = client.access_token().await.expect_err("refused");
    assert!(
        matches!(refused, Error::CredentialsRejected { .. }),
        "{refused:?}"
    );
    store.hold.store(true, Ordering::SeqCst);
    let error = client.access_token().await.expect_err("paused");
    assert!(
        matches!(error, Error::CredentialsRejected { .. }),
        "{error:?}"
    );
    for _ in 0..500 {
        if store.started.load(Ordering::SeqCst) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        store.started.load(Ordering::SeqCst),
        1,
        "one look at the store"
    );
    assert_eq!(
        store.under_way.load(Ordering::SeqCst),
        1,
        "the call returned while its look at the store was still held"
    );
    store.release.notify_waiters();
    assert_eq!(sandbox.count(Operation::Login), 1);
}
/// As `two_dead_refresh_tokens_are_each_sent_once` in protocol.rs, through
/// clients: a password-less worker that adopted S1 and stayed idle
/// while another process refreshed it into S2; then every session dies (an
/// administrator revokes them, or the SSO session's maximum is reached).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_sends_each_of_two_dead_refresh_tokens_once() {
    let dir = TempDir::new("client-two-dead-tokens");
    let sandbox = sandbox().await;
    let store = FileStore::new(dir.path());
    let clock = ManualClock::new();
    let owner = client_on(
        &sandbox,
        &store,
        &clock,
        Credentials::new("alice", "secret"),
    );
    let worker = client_on(
        &sandbox,
        &store,
        &clock,
        Credentials::without_password("alice"),
    );
    let s1 = owner.access_token().await.expect("logs in");
    worker.access_token().await.expect("adopts");
    // The owner's soft window: it refreshes in the background, and stores S2
    // before it uses it (Dynata counts the refresh before the store has it:
    // waiting on that count raced the store).
    clock.advance(Duration::from_secs(26 * 60));
    for _ in 0..200 {
        let current = owner.access_token().await.expect("still valid");
        if current.secret() != s1.secret() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(sandbox.count(Operation::Refresh), 1);
    sandbox.revoke_all();
    // S2 is now too close to expiry to adopt; S1 has expired.
    clock.advance(Duration::from_secs(25 * 60));
    for _ in 0..4 {
        let error = worker.access_token().await.expect_err("nothing works");
        assert!(matches!(error, Error::LoginRequired), "{error:?}");
        clock.advance(Duration::from_secs(2));
    }
    assert_eq!(
        sandbox.count(Operation::Refresh),
        3,
        "the worker sent each dead refresh token more than once"
    );
}

/// A revocation Dynata did not take (one `503`) fails the logout and leaves
/// the session live; the client keeps it for the next `logout()`, which
/// revokes it. Before, the client had forgotten it: the next `logout()`
/// sent nothing and returned `Ok`, the session still live.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_after_a_failed_revocation_revokes_the_session_the_next_time() {
    let sandbox = sandbox().await;
    let client = Client::builder()
        .credentials(Credentials::new("alice", "secret"))
        .environment(Environment::custom(&sandbox.base_url()).expect("loopback"))
        .retry_policy(dynata_sdk::RetryPolicy::none())
        .build()
        .expect("valid");
    let token = client.access_token().await.expect("logs in");
    sandbox.inject(Operation::Logout, Fault::Status(503), 1);
    client
        .logout()
        .await
        .expect_err("Dynata did not take the revocation");
    client.logout().await.expect("the second logout returns Ok");
    let status = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
        .get(format!("{}/sample/v1/users/info", sandbox.base_url()))
        .bearer_auth(token.secret())
        .send()
        .await
        .expect("answers")
        .status();
    assert_eq!(
        (status.as_u16(), sandbox.count(Operation::Logout)),
        (401, 2),
        "(status of the pre-logout token, logout requests): logout() returned Ok \
         but the session it obtained before is still live at Dynata"
    );
}

/// `logout` removes the shared session for everyone and revokes it at
/// Dynata, also from a client that has no session of its own: before, the
/// session was taken out of the store but stayed live at Dynata, used by
/// whoever had adopted it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_revokes_the_shared_session_whoever_obtained_it() {
    let dir = TempDir::new("logout-unrevoked");
    let sandbox = sandbox().await;
    let store = FileStore::new(dir.path());
    let first = client(&sandbox, Arc::new(store.clone()));
    let second = client(&sandbox, Arc::new(store.clone()));
    first.access_token().await.expect("logs in");
    let key = StoreKey::for_account(&sandbox.base_url(), "api", "alice");
    assert!(store.session_path(&key).exists());

    second.logout().await.expect("logged out");
    assert!(
        !store.session_path(&key).exists(),
        "the shared session is removed for everyone"
    );
    // Its session revoked, the first client logs in again.
    first.users_info().await.expect("call");
    assert_eq!(
        (
            sandbox.count(Operation::Logout),
            sandbox.count(Operation::Login)
        ),
        (1, 2),
        "(logouts sent, logins): the shared session must be revoked, not only removed"
    );
}

/// A revocation Dynata refuses (`400 invalid_grant`: the session has
/// already ended) is final: the next `logout()` does not send it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_dynata_refuses_is_not_sent_again() {
    let sandbox = sandbox().await;
    let client = Client::builder()
        .credentials(Credentials::new("alice", "secret"))
        .environment(Environment::custom(&sandbox.base_url()).expect("loopback"))
        .retry_policy(dynata_sdk::RetryPolicy::none())
        .build()
        .expect("valid");
    client.access_token().await.expect("logs in");
    sandbox.inject(Operation::Logout, Fault::InvalidGrant, 1);
    client.logout().await.expect_err("refused");
    client.logout().await.expect("nothing left to revoke");
    assert_eq!(sandbox.count(Operation::Logout), 1);
}

/// Two takes of one `SharedSession` at once (two logouts) do not both read
/// the stored session: the second waits until the first has taken it out,
/// so the session is revoked once, not twice (Dynata would refuse the second
/// revocation, failing that logout).
#[tokio::test]
async fn two_takes_at_once_read_the_stored_session_once() {
    let dir = TempDir::new("two-takes");
    let store = Arc::new(Changed(HeldLoad {
        inner: FileStore::new(dir.path()),
        hold: AtomicBool::new(false),
        release: Notify::new(),
        started: AtomicUsize::new(0),
        under_way: Arc::default(),
    }));
    let shared = SharedSession::new(
        store.clone(),
        crate::key(),
        crate::policy(),
        Arc::new(dynata_sdk::clock::TokioClock),
    );
    let session = crate::session_at(&shared, 1);
    store
        .inner
        .save(&crate::key(), &session, SystemTime::now())
        .await
        .expect("saved");
    store.hold.store(true, Ordering::SeqCst);
    let mut first = std::pin::pin!(shared.take());
    let mut second = std::pin::pin!(shared.take());
    // Both driven until the first holds in its load (after it has taken
    // the renewal lease, on a blocking thread), and a while longer.
    let mut after_first_holds = 0;
    while after_first_holds < 20 {
        std::future::poll_fn(|cx| {
            let _ = first.as_mut().poll(cx);
            let _ = second.as_mut().poll(cx);
            std::task::Poll::Ready(())
        })
        .await;
        if store.started.load(Ordering::SeqCst) > 0 {
            after_first_holds += 1;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(
        store.started.load(Ordering::SeqCst),
        1,
        "the second take read the store while the first held it"
    );
    store.hold.store(false, Ordering::SeqCst);
    store.release.notify_waiters();
    assert_eq!(first.await, Some(session));
    assert_eq!(second.await, None, "the session was taken twice");
}

/// A FileStore that says when a removal or a refused lease happened: what a
/// take does first, with or without waiting for the lease.
#[derive(Debug)]
struct Watched {
    inner: FileStore,
    progressed: Notify,
}

impl FileStoreChange for Watched {
    fn inner(&self) -> &FileStore {
        &self.inner
    }

    fn remove<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let removed = self.inner.remove(key).await;
            self.progressed.notify_one();
            removed
        })
    }

    fn try_acquire_lease<'a>(
        &'a self,
        key: &'a StoreKey,
        owner: &'a LeaseOwner,
        ttl: Duration,
        now: SystemTime,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let acquired = self.inner.try_acquire_lease(key, owner, ttl, now).await;
            if matches!(acquired, Ok(false)) {
                self.progressed.notify_one();
            }
            acquired
        })
    }
}

/// A take while another process of the fleet renews (holding the renewal
/// lease, its login on the way) waits for that renewal and takes the session
/// it stores, for the logout to revoke. Taken before, the new session would
/// land in the store after the removal: live at Dynata, never revoked, and
/// adopted by the next process that looks.
#[tokio::test]
async fn a_take_during_another_process_renewal_takes_the_session_it_stores() {
    let dir = TempDir::new("take-during-renewal");
    let store = Arc::new(Changed(Watched {
        inner: FileStore::new(dir.path()),
        progressed: Notify::new(),
    }));
    let renewing = crate::client(store.clone());
    let logging_out = crate::client(store.clone());
    let login_started = Arc::new(Notify::new());
    let login_may_finish = Arc::new(Notify::new());
    let session = crate::session_at(&renewing, 7);
    let renewal = tokio::spawn({
        let (started, may_finish, session) = (
            login_started.clone(),
            login_may_finish.clone(),
            session.clone(),
        );
        async move {
            renewing
                .renew(None, move |_: dynata_sdk::store::Renew| {
                    let (started, may_finish, session) =
                        (started.clone(), may_finish.clone(), session.clone());
                    async move {
                        started.notify_one();
                        may_finish.notified().await;
                        Ok::<_, dynata_sdk::store::RenewError<()>>(session)
                    }
                })
                .await
        }
    });
    login_started.notified().await;
    let take = tokio::spawn(async move { logging_out.take().await });
    // The take has either removed what the store held (nothing yet) or
    // found the lease held.
    store.progressed.notified().await;
    login_may_finish.notify_one();
    renewal.await.expect("renewal ran").expect("renewed");
    let taken = take.await.expect("take ran");
    assert_eq!(
        taken.map(|s| s.refresh_token.expose_secret().to_string()),
        Some("refresh-7".to_string()),
        "the take missed the session the renewal stored"
    );
    assert_eq!(
        store.load(&crate::key()).await.expect("readable"),
        None,
        "a session stayed in the store after the logout"
    );
}

/// `holder`'s renewal, which Dynata answers after `delay`, once it holds
/// the lease of `store`.
async fn renewing_slowly(
    sandbox: &Sandbox,
    store: &FileStore,
    holder: &Client,
    delay: Duration,
) -> tokio::task::JoinHandle<Result<dynata_sdk::AccessToken, Error>> {
    sandbox.inject(Operation::Login, Fault::Delay(delay), 1);
    let renewal = tokio::spawn({
        let client = holder.clone();
        async move { client.access_token().await }
    });
    let key = StoreKey::for_account(&sandbox.base_url(), "api", "alice");
    while !store.lease_path(&key).exists() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    renewal
}

/// A client of `store` with the defaults but a 6 s `renewal_timeout`.
fn client_with_a_short_renewal_timeout(
    sandbox: &Sandbox,
    store: &FileStore,
    credentials: Credentials,
) -> Client {
    builder_on(sandbox, Arc::new(store.clone()), credentials)
        .renewal_timeout(Duration::from_secs(6))
        .build()
        .expect("valid")
}

/// Another process's renewal is under way, holding the lease, and takes
/// 4.5 s: inside its `renewal_timeout` (6 s). `logout()` elsewhere waits
/// for it and takes (and revokes) the session it stores. (With the lease
/// wait once cut to half the renewal timeout, the take gave up at 3 s and
/// that session outlived the logout, for the whole fleet to adopt.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_takes_the_session_a_slow_renewal_elsewhere_stores() {
    let dir = TempDir::new("logout-slow-holder");
    let sandbox = sandbox().await;
    let store = FileStore::new(dir.path());
    let key = StoreKey::for_account(&sandbox.base_url(), "api", "alice");
    let renewing =
        client_with_a_short_renewal_timeout(&sandbox, &store, Credentials::new("alice", "secret"));
    let leaving =
        client_with_a_short_renewal_timeout(&sandbox, &store, Credentials::new("alice", "secret"));
    let renewal = renewing_slowly(&sandbox, &store, &renewing, Duration::from_millis(4_500)).await;
    leaving.logout().await.expect("logged out");
    renewal.await.expect("joined").expect("renewed");
    let left = store.load(&key).await.expect("answers");
    assert!(
        left.is_none() && sandbox.count(Operation::Logout) == 1,
        "(session left in the store, revocations sent) = ({}, {}): the session \
         a renewal under way stored outlived the logout",
        left.is_some(),
        sandbox.count(Operation::Logout)
    );
}

/// A client without a password waits while another process renews under
/// the lease, for 4.5 s, inside both clients' 6 s `renewal_timeout`, and
/// adopts what the holder stores: it cannot log in on its own, so it never
/// stops waiting early. (With the lease wait once cut to half the renewal
/// timeout, it failed with `LoginRequired` at 3 s.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passwordless_waiter_adopts_a_slow_renewal_under_way() {
    let dir = TempDir::new("passwordless-waiter");
    let sandbox = sandbox().await;
    let store = FileStore::new(dir.path());
    let holder =
        client_with_a_short_renewal_timeout(&sandbox, &store, Credentials::new("alice", "secret"));
    let waiter = client_with_a_short_renewal_timeout(
        &sandbox,
        &store,
        Credentials::without_password("alice"),
    );
    let renewal = renewing_slowly(&sandbox, &store, &holder, Duration::from_millis(4_500)).await;
    let waited = waiter.access_token().await;
    let renewed = renewal.await.expect("joined").expect("renewed");
    let adopted = waited.expect("adopts the session the live holder stores");
    assert_eq!(adopted.secret(), renewed.secret());
    assert_eq!(sandbox.count(Operation::Login), 1);
}

/// A logout stranded on a sync façade's runtime (`idle`: nobody drives it
/// after its caller gave up), waiting for a lease another process holds;
/// calls go on from another runtime (`busy`).
struct StrandedLogout {
    idle: tokio::runtime::Runtime,
    busy: tokio::runtime::Runtime,
    sandbox: Sandbox,
    store: FileStore,
    key: StoreKey,
    clock: ManualClock,
    client: Client,
    _dir: TempDir,
    // Last: the sandbox's connections live on it.
    _server: tokio::runtime::Runtime,
}

impl StrandedLogout {
    /// The client logs in first when `with_a_session`; the token it had.
    fn new(name: &str, with_a_session: bool) -> (Self, Option<dynata_sdk::AccessToken>) {
        let server = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("rt");
        let current_thread = || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("rt")
        };
        let (idle, busy) = (current_thread(), current_thread());
        let sandbox = server.block_on(sandbox());
        let dir = TempDir::new(name);
        let store = FileStore::new(dir.path());
        let key = StoreKey::for_account(&sandbox.base_url(), "api", "alice");
        let clock = ManualClock::new();
        let client = client_on(
            &sandbox,
            &store,
            &clock,
            Credentials::new("alice", "secret"),
        );
        let before = with_a_session
            .then(|| busy.block_on(async { client.access_token().await.expect("logs in") }));
        busy.block_on(async {
            let day = Duration::from_secs(24 * 60 * 60);
            assert!(
                store
                    .try_acquire_lease(&key, &Self::foreign(), day, SystemTime::now())
                    .await
                    .expect("answers")
            );
        });
        idle.block_on(async {
            let gave_up = tokio::time::timeout(Duration::from_millis(100), client.logout()).await;
            assert!(gave_up.is_err(), "the logout waits for the lease");
        });
        let stranded = StrandedLogout {
            idle,
            busy,
            sandbox,
            store,
            key,
            clock,
            client,
            _dir: dir,
            _server: server,
        };
        (stranded, before)
    }

    fn foreign() -> LeaseOwner {
        LeaseOwner::new("another-process-renewing")
    }

    /// The other process lets the lease go; a call on `busy` goes on once
    /// the logout has taken as long as it could (the client's clock runs a
    /// second at a time), and gets a token.
    fn a_call_goes_on(&self) -> dynata_sdk::AccessToken {
        self.busy.block_on(async {
            assert!(
                self.store
                    .release_lease(&self.key, &Self::foreign())
                    .await
                    .expect("answers")
            );
            let caller = tokio::spawn({
                let client = self.client.clone();
                async move { client.access_token().await }
            });
            let mut caller = std::pin::pin!(caller);
            let mut advanced = Duration::ZERO;
            loop {
                tokio::select! {
                    done = &mut caller => break done.expect("joined").expect("a session"),
                    () = tokio::time::sleep(Duration::from_millis(10)) => {
                        assert!(advanced < Duration::from_secs(300), "the caller is still held");
                        self.clock.advance(Duration::from_secs(1));
                        advanced += Duration::from_secs(1);
                    }
                }
            }
        })
    }

    /// The façade's next `block_on`: the stranded logout runs again, for up
    /// to 3 s or until it revokes something (`busy` is driven meanwhile
    /// too: the HTTP connections live there).
    fn the_logout_runs_again(&self) {
        let until_revoked = || async {
            for _ in 0..300 {
                if self.sandbox.count(Operation::Logout) > 0 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        std::thread::scope(|scope| {
            scope.spawn(|| self.idle.block_on(until_revoked()));
            self.busy.block_on(until_revoked());
        });
    }
}

/// A logout stranded in `take()` by a lease another process holds: calls
/// on another runtime go on once the logout has taken as long as it could,
/// and one logs in and stores a new session. When the façade's runtime runs
/// again, the stranded take leaves that session alone: a logout ends the
/// session of the moment it is called.
#[test]
fn a_stranded_logout_does_not_end_a_session_obtained_after_it() {
    let (stranded, _) = StrandedLogout::new("stranded-take", false);
    let token = stranded.a_call_goes_on();
    assert_eq!(stranded.sandbox.count(Operation::Login), 1);
    let stored = |stranded: &StrandedLogout| {
        stranded
            .busy
            .block_on(stranded.store.load(&stranded.key))
            .expect("answers")
            .map(|s| s.access_token)
    };
    assert_eq!(
        stored(&stranded),
        Some(Secret::new(token.secret().to_string()))
    );
    stranded.the_logout_runs_again();
    assert!(
        stored(&stranded).is_some() && stranded.sandbox.count(Operation::Logout) == 0,
        "the stranded logout ended the session obtained after it (revocations {})",
        stranded.sandbox.count(Operation::Logout)
    );
}

/// The same, but the client had a session S (stored) when it called the
/// stranded logout: the calls that go on adopt S from the store (nobody
/// took it out). When the façade's runtime runs again, the stranded logout
/// leaves S alone: it is the token those calls are served. (It used to
/// revoke it from under them.)
#[test]
fn a_stranded_logout_does_not_revoke_the_session_callers_adopted() {
    let (stranded, before) = StrandedLogout::new("stranded-adopt", true);
    let before = before.expect("a session");
    let after = stranded.a_call_goes_on();
    assert_eq!(after.secret(), before.secret(), "adopted from the store");
    stranded.the_logout_runs_again();
    assert_eq!(
        stranded.sandbox.count(Operation::Logout),
        0,
        "the stranded logout revoked the session the calls that went on took up again"
    );
    let served = stranded
        .busy
        .block_on(stranded.client.access_token())
        .expect("a token");
    assert_eq!(served.secret(), before.secret());
}

/// A client whose `renewal_timeout` is `Duration::MAX` ("no limit") can log
/// in, and meets another process's live renewal under the lease (a login
/// that takes 1 s). It waits for it and adopts what it stores. (Its time to
/// stop waiting was once counted back from a deadline the clock had capped,
/// an instant long past: it gave up at once and logged in a second time.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unbounded_renewal_timeout_still_waits_for_a_live_holder() {
    let dir = TempDir::new("max-renewal-timeout");
    let sandbox = sandbox().await;
    let store = FileStore::new(dir.path());
    let holder =
        client_with_a_short_renewal_timeout(&sandbox, &store, Credentials::new("alice", "secret"));
    let waiter = builder_on(
        &sandbox,
        Arc::new(store.clone()),
        Credentials::new("alice", "secret"),
    )
    .renewal_timeout(Duration::MAX)
    .build()
    .expect("valid");
    let renewal = renewing_slowly(&sandbox, &store, &holder, Duration::from_secs(1)).await;
    let waited = waiter.access_token().await.expect("a token");
    let renewed = renewal.await.expect("joined").expect("renewed");
    assert_eq!(
        sandbox.count(Operation::Login),
        1,
        "the waiter gave up on a live holder at once and logged in on its own"
    );
    assert_eq!(waited.secret(), renewed.secret());
}

/// A `FileStore` whose first `load` stands for a logout's runtime that
/// stops being driven in the middle of that load (a sync façade gave up on
/// it while the store was slow): meanwhile the client's clock passes the
/// take's `until`, and callers, who went on without the logout, store a
/// new session. The load then reads what the store holds.
#[derive(Debug)]
struct StrandedDuringLoad {
    inner: FileStore,
    clock: ManualClock,
    after: StoredSession,
    stranded: AtomicBool,
}

impl FileStoreChange for StrandedDuringLoad {
    fn inner(&self) -> &FileStore {
        &self.inner
    }

    fn load<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, Option<StoredSession>> {
        Box::pin(async move {
            if !self.stranded.swap(true, Ordering::SeqCst) {
                self.clock.advance(Duration::from_secs(120));
                self.inner.save(key, &self.after, SystemTime::now()).await?;
            }
            self.inner.load(key).await
        })
    }
}

/// `take_until` takes nothing once the client's clock has reached `until`,
/// so that a stranded logout cannot revoke a session obtained after callers
/// stopped waiting for it; a take stranded in its load (a hung store) too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_take_stranded_in_its_load_takes_nothing_after_its_time() {
    let dir = TempDir::new("take-stranded-load");
    let key = StoreKey::for_account("http://127.0.0.1:1", "api", "alice");
    let clock = ManualClock::new();
    let inner = FileStore::new(dir.path());
    let session = |serial: u32| {
        StoredSession::from_lifetimes(
            Secret::new(format!("access-{serial}")),
            Duration::from_secs(1800),
            Secret::new(format!("refresh-{serial}")),
            Duration::from_secs(3600),
            SystemTime::now(),
        )
        .expect("in range")
    };
    inner
        .save(&key, &session(1), SystemTime::now())
        .await
        .expect("saved");
    let store = Changed(StrandedDuringLoad {
        inner: inner.clone(),
        clock: clock.clone(),
        after: session(2),
        stranded: AtomicBool::new(false),
    });
    let shared = SharedSession::new(
        Arc::new(store),
        key.clone(),
        SharingPolicy::default(),
        Arc::new(clock.clone()),
    );
    let until = dynata_sdk::clock::Clock::now(&clock) + Duration::from_secs(60);
    let taken = shared.take_until(Some(until)).await;
    let left = inner.load(&key).await.expect("answers");
    assert!(
        taken.is_none() && left.is_some(),
        "(taken for revocation, left in the store) = ({:?}, {:?}): a take past its \
         time took the session obtained after it",
        taken.map(|s| s.access_token.expose_secret().to_string()),
        left.map(|s| s.access_token.expose_secret().to_string()),
    );
}

/// A background refresh whose task first runs a while after its flight
/// started (a current-thread runtime that a sync caller drives only inside
/// its calls) meets a lease that never ends. It still stops waiting with a
/// quarter of its 60 s left, counted from the flight's start, and logs in.
/// (Counted from when its task first ran, 30 s late, the point fell past
/// the flight's deadline, and the renewal timed out without a login.)
#[tokio::test]
async fn a_late_started_flight_still_stops_waiting_for_a_stuck_lease() {
    let dir = TempDir::new("late-flight");
    let sandbox = sandbox().await;
    let clock = ManualClock::new();
    let store = Changed(WaitsOnTheClientsClock {
        inner: FileStore::new(dir.path()),
        clock: clock.clone(),
    });
    let inner = store.inner.clone();
    let key = StoreKey::for_account(&sandbox.base_url(), "api", "alice");
    let client = builder_on(
        &sandbox,
        Arc::new(store),
        Credentials::new("alice", "secret"),
    )
    .clock(Arc::new(clock.clone()))
    .build()
    .expect("valid");
    client.access_token().await.expect("logged in");
    assert_eq!(sandbox.count(Operation::Login), 1);
    let stuck = LeaseOwner::new("a-holder-that-never-lets-go");
    let day = Duration::from_secs(24 * 60 * 60);
    assert!(
        inner
            .try_acquire_lease(&key, &stuck, day, SystemTime::now())
            .await
            .expect("acquired")
    );
    // Into the soft window (the token lives 1800 s, the window is 300 s):
    // the fast path serves the token and starts a flight, whose task does
    // not run before this test yields.
    clock.advance(Duration::from_secs(1510));
    client.access_token().await.expect("still served");
    // The runtime is not driven for 30 s of the flight's 60.
    clock.advance(Duration::from_secs(30));
    for _ in 0..500 {
        if sandbox.count(Operation::Login) >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        sandbox.count(Operation::Login),
        2,
        "the renewal never stopped waiting for a lease that never ends, and timed out"
    );
}

/// A `FileStore` whose `save` (the session save the test picked) or first
/// `save_rejected_login` is slow: it says when it starts (`holding`), and
/// goes on when the test says so (`release`).
#[derive(Debug)]
struct HeldSave {
    inner: FileStore,
    /// Which session save holds (1 = the first); 0: none.
    hold_session_save: usize,
    /// Holds the first `save_rejected_login` if set.
    hold_rejection_save: AtomicBool,
    session_saves: AtomicUsize,
    holding: Notify,
    release: Notify,
}

impl HeldSave {
    /// Holds the session save numbered `session_save` (0: none), or the first
    /// rejection record if `rejection_save`.
    fn new(dir: &TempDir, session_save: usize, rejection_save: bool) -> Self {
        HeldSave {
            inner: FileStore::new(dir.path()),
            hold_session_save: session_save,
            hold_rejection_save: AtomicBool::new(rejection_save),
            session_saves: AtomicUsize::new(0),
            holding: Notify::new(),
            release: Notify::new(),
        }
    }

    /// Says that a save is held, and waits for the test to release it.
    async fn hold(&self) {
        self.holding.notify_one();
        self.release.notified().await;
    }
}

impl FileStoreChange for HeldSave {
    fn inner(&self) -> &FileStore {
        &self.inner
    }

    fn save<'a>(
        &'a self,
        key: &'a StoreKey,
        session: &'a StoredSession,
        now: SystemTime,
    ) -> StoreFuture<'a, ()> {
        let number = self.session_saves.fetch_add(1, Ordering::SeqCst) + 1;
        if number != self.hold_session_save {
            return self.inner.save(key, session, now);
        }
        Box::pin(async move {
            self.hold().await;
            self.inner.save(key, session, now).await
        })
    }

    fn save_rejected_login<'a>(
        &'a self,
        key: &'a StoreKey,
        record: &'a [u8],
        ttl: Duration,
        now: SystemTime,
    ) -> StoreFuture<'a, ()> {
        if !self.hold_rejection_save.swap(false, Ordering::SeqCst) {
            return self.inner.save_rejected_login(key, record, ttl, now);
        }
        Box::pin(async move {
            self.hold().await;
            self.inner.save_rejected_login(key, record, ttl, now).await
        })
    }
}

/// A client of `store` on `clock` with a 10 s renewal timeout, and store
/// operations allowed 30 s of real time (a held one ends when the test
/// releases it, not by its own time limit).
fn client_with_held_saves(
    sandbox: &Sandbox,
    store: HeldSave,
    clock: &ManualClock,
    credentials: Credentials,
) -> (Client, Arc<Changed<HeldSave>>) {
    let store = Arc::new(Changed(store));
    let mut policy = SharingPolicy::default();
    policy.fresh_for = Duration::from_secs(300);
    policy.lease_wait = Duration::from_secs(10);
    policy.operation_timeout = Duration::from_secs(30);
    let client = builder_on(sandbox, store.clone(), credentials)
        .clock(Arc::new(clock.clone()))
        .renewal_timeout(Duration::from_secs(10))
        .sharing_policy(policy)
        .build()
        .expect("valid");
    (client, store)
}

/// Waits (real time, at most 5 s) until the renewal has let go of the lease:
/// its flight has ended, and set whatever pause it sets.
async fn lease_let_go(sandbox: &Sandbox, store: &Changed<HeldSave>) {
    let key = StoreKey::for_account(&sandbox.base_url(), "api", "alice");
    for _ in 0..500 {
        if !store.inner.lease_path(&key).exists() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the renewal never let go of the lease");
}

/// A refresh that Dynata answered just before its renewal's deadline, the
/// new pair still being saved when the deadline passes: the save is not cut
/// short (it used to be, and the new pair with it: Dynata had spent the old
/// refresh token, so the next renewal sent it again, refused, then logged
/// in with the password). The caller gets the new token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_answered_at_its_deadline_keeps_the_new_pair() {
    let dir = TempDir::new("refresh-at-deadline");
    let sandbox = sandbox().await;
    let clock = ManualClock::new();
    let (client, store) = client_with_held_saves(
        &sandbox,
        // The login's save goes through; the refresh's holds.
        HeldSave::new(&dir, 2, false),
        &clock,
        Credentials::new("alice", "secret"),
    );
    let first = client.access_token().await.expect("logs in");
    assert!(client.invalidate(&first), "a 401 for it");
    let renewal = tokio::spawn({
        let client = client.clone();
        async move { client.access_token().await }
    });
    // Dynata has answered the refresh; the store is saving the new pair.
    tokio::time::timeout(Duration::from_secs(20), store.holding.notified())
        .await
        .expect("the refresh's save started");
    assert_eq!(sandbox.count(Operation::Refresh), 1);
    // The renewal's deadline passes before the save ends.
    clock.advance(Duration::from_secs(11));
    store.release.notify_one();
    let renewed = renewal.await.expect("joined").expect("the new token");
    assert_ne!(renewed.secret(), first.secret());
    lease_let_go(&sandbox, &store).await;
    clock.advance(Duration::from_secs(2));
    let next = client.access_token().await.expect("the same token");
    assert_eq!(next.secret(), renewed.secret());
    assert_eq!(
        (
            sandbox.count(Operation::Refresh),
            sandbox.count(Operation::Login)
        ),
        (1, 1),
        "(refreshes, logins) sent: the pair Dynata issued for the first refresh \
         token was dropped, and that spent refresh token was sent again"
    );
}

/// A password Dynata refused just before its renewal's deadline, the refusal
/// still being recorded in the store when the deadline passes: the record is
/// not cut short. (It used to be: callers got `Timeout` instead of
/// `CredentialsRejected`, renewals paused for one second instead of the
/// cooldown, and the refused password was sent again a second later.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_refused_at_its_deadline_is_not_sent_again_a_second_later() {
    let dir = TempDir::new("refused-at-deadline");
    let sandbox = sandbox().await;
    let clock = ManualClock::new();
    let (client, store) = client_with_held_saves(
        &sandbox,
        HeldSave::new(&dir, 0, true),
        &clock,
        Credentials::new("alice", "Winter2025!"),
    );
    let renewal = tokio::spawn({
        let client = client.clone();
        async move { client.access_token().await }
    });
    // Dynata has refused the password; the store is recording the refusal.
    tokio::time::timeout(Duration::from_secs(20), store.holding.notified())
        .await
        .expect("the refusal's record started");
    assert_eq!(sandbox.count(Operation::Login), 1);
    clock.advance(Duration::from_secs(11));
    store.release.notify_one();
    let refused = renewal.await.expect("joined").expect_err("refused");
    assert!(
        matches!(refused, Error::CredentialsRejected { .. }),
        "{refused:?}"
    );
    lease_let_go(&sandbox, &store).await;
    clock.advance(Duration::from_secs(2));
    let next = client.access_token().await.expect_err("still refused");
    assert!(
        matches!(next, Error::CredentialsRejected { .. }),
        "{next:?}"
    );
    assert_eq!(
        sandbox.count(Operation::Login),
        1,
        "the refused password was sent again two seconds after Dynata refused it"
    );
}

/// A refresh answered with a pair that cannot be used (`expiresIn: 0`)
/// spends the refresh token, and the protocol logs in with the password: a
/// request to Dynata, which the renewal's deadline still ends. (The flight
/// counted as answered once the refresh had its pair, usable or not, so a
/// login that hung ran on past the deadline, and its caller was held.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_after_an_unusable_refresh_still_ends_at_the_deadline() {
    use httpmock::{Method::POST, MockServer};
    let dir = TempDir::new("unusable-refresh-then-login");
    let server = MockServer::start_async().await;
    let pair = |access: &str, refresh: &str, expires_in: i64| {
        serde_json::json!({
            "accessToken": access,
            "expiresIn": expires_in,
            "refreshExpiresIn": 3600,
            "refreshToken": refresh,
        })
        .to_string()
    };
    let first_login = server
        .mock_async(|when, then| {
            when.method(POST).path("/auth/v1/token/password");
            then.status(200).body(pair("a1", "r1", 1800));
        })
        .await;
    first_login.up_to_n_times_async(1).await;
    let refresh = server
        .mock_async(|when, then| {
            when.method(POST).path("/auth/v1/token/refresh");
            then.status(200).body(pair("a2", "r2", 0));
        })
        .await;
    // The login after it does not answer (for the test's lifetime).
    let hung_login = server
        .mock_async(|when, then| {
            when.method(POST).path("/auth/v1/token/password");
            then.status(200)
                .body(pair("a3", "r3", 1800))
                .delay(Duration::from_secs(600));
        })
        .await;
    let clock = ManualClock::new();
    let client = Client::builder()
        .credentials(Credentials::new("alice", "secret"))
        .environment(Environment::custom(&server.base_url()).expect("loopback"))
        .token_store(Arc::new(FileStore::new(dir.path())))
        .clock(Arc::new(clock.clone()))
        .renewal_timeout(Duration::from_secs(10))
        .retry_policy(dynata_sdk::RetryPolicy::none())
        .build()
        .expect("valid");
    let first = client.access_token().await.expect("logs in");
    assert!(client.invalidate(&first), "a 401 for it");
    let caller = tokio::spawn({
        let client = client.clone();
        async move { client.access_token().await }
    });
    for _ in 0..500 {
        if hung_login.calls_async().await == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        (refresh.calls_async().await, hung_login.calls_async().await),
        (1, 1)
    );
    // Past the renewal's deadline (10 s), before the grace callers give
    // an answered flight (1 s and three store operations of 1 s).
    clock.advance(Duration::from_secs(11));
    for _ in 0..300 {
        if caller.is_finished() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        caller.is_finished(),
        "the login after an unusable refresh ran on past the renewal's deadline, \
         and its caller was still held"
    );
    let error = caller.await.expect("joined").expect_err("timed out");
    assert!(matches!(error, Error::Timeout { .. }), "{error:?}");
}

/// On a `ManualClock`, the renewal lease is kept alive on the clock it
/// expires on: a holder waiting out a `Retry-After` longer than the lease
/// extends it as the test moves the clock, and a second client waits for
/// its answer instead of sending the same refresh token. (The lease
/// expired on the client's clock but was extended on tokio's, so a second
/// client took it over and sent `r1` too: found by review.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_held_through_a_long_retry_after_is_extended_on_the_clients_clock() {
    use dynata_sdk::clock::Clock;
    let dir = TempDir::new("client-lease-manual-clock");
    let server = httpmock::MockServer::start_async().await;
    let pair = |access: &str, refresh: &str| {
        format!(
            r#"{{"accessToken":"{access}","expiresIn":1800,"refreshToken":"{refresh}","refreshExpiresIn":3600}}"#
        )
    };
    let answer = |status: u16, body: String| {
        let server = &server;
        async move {
            server
                .mock_async(move |when, then| {
                    when.method(httpmock::Method::POST)
                        .path("/auth/v1/token/refresh");
                    then.status(status)
                        .header("retry-after", "20")
                        .body(body)
                        .delay(Duration::from_millis(if status == 200 { 500 } else { 0 }));
                })
                .await
        }
    };
    server
        .mock_async(|when, then| {
            when.method(httpmock::Method::POST)
                .path("/auth/v1/token/password");
            then.status(200).body(pair("a1", "r1"));
        })
        .await;
    let busy = answer(503, String::new()).await;
    busy.up_to_n_times_async(1).await;
    let refreshed = answer(200, pair("a2", "r2")).await;

    let clock = ManualClock::new();
    let store = FileStore::new(dir.path());
    let client = || {
        Client::builder()
            .credentials(Credentials::new("alice", "secret"))
            .environment(Environment::custom(&server.base_url()).expect("loopback"))
            .clock(Arc::new(clock.clone()))
            .token_store(Arc::new(store.clone()))
            .build()
            .expect("valid")
    };
    let (holder, waiter) = (client(), client());
    assert_eq!(holder.access_token().await.expect("logs in").secret(), "a1");
    assert_eq!(waiter.access_token().await.expect("adopts").secret(), "a1");

    // Inside the hard margin: the holder refreshes, is told to wait 20 s,
    // and sleeps on the clock, holding the lease (15 s).
    clock.advance(Duration::from_secs(1800 - 25));
    let renewing = {
        let holder = holder.clone();
        tokio::spawn(async move { holder.access_token().await })
    };
    let sleeps_until = |clock: &ManualClock, at: Duration| {
        let at = clock.now() + at;
        let clock = clock.clone();
        async move {
            for _ in 0..2500 {
                if clock.sleeping_until().contains(&at) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            panic!("nothing came to sleep until {at:?}");
        }
    };
    sleeps_until(&clock, Duration::from_secs(20)).await;
    // Twenty seconds in steps of the lease's extension interval: after each,
    // the holder has extended the lease once it sleeps until the next.
    for _ in 0..4 {
        clock.advance(Duration::from_secs(5));
        sleeps_until(&clock, Duration::from_secs(5)).await;
    }
    let waiting = tokio::spawn(async move { waiter.access_token().await });
    let (held, waited) = (renewing.await.expect("task"), waiting.await.expect("task"));
    assert_eq!(held.expect("refreshed").secret(), "a2");
    assert_eq!(waited.expect("the holder's pair").secret(), "a2");
    assert_eq!(
        (busy.calls_async().await, refreshed.calls_async().await),
        (1, 1),
        "r1 was sent by a second client while the lease's holder sent it"
    );
}

/// `check_token_store` tells at start-up what a client would otherwise only
/// warn about while it works unshared: a store it cannot read, a record
/// sealed with another fleet's key. A store with no session yet, and no
/// store at all, pass; nothing is sent to Dynata.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_is_checked_at_start_up_for_what_would_leave_the_fleet_unshared() {
    let sandbox = sandbox().await;
    let plain = Client::builder()
        .credentials(Credentials::new("alice", "secret"))
        .environment(Environment::custom(&sandbox.base_url()).expect("loopback"))
        .build()
        .expect("valid");
    plain.check_token_store().await.expect("no store to check");

    let dir = TempDir::new("client-check");
    let sealed =
        |byte| FileStore::new(dir.path()).with_encryption(EncryptionKey::from_bytes([byte; 32]));
    let first = client(&sandbox, Arc::new(sealed(7)));
    first
        .check_token_store()
        .await
        .expect("an empty store is fine");
    first.access_token().await.expect("logs in and stores");
    first.check_token_store().await.expect("its own record");

    let other_key = client(&sandbox, Arc::new(sealed(8)));
    let refused = other_key
        .check_token_store()
        .await
        .expect_err("another key");
    assert!(
        refused.to_string().contains("different encryption keys"),
        "{refused}"
    );

    let unreadable = TempDir::new("client-check-file");
    // A regular file where the store's directory should be.
    std::fs::write(unreadable.path(), b"not a directory").expect("written");
    let broken = client(
        &sandbox,
        Arc::new(FileStore::new(unreadable.path().join("sessions"))),
    );
    let failed = broken
        .check_token_store()
        .await
        .expect_err("not a directory");
    assert!(
        matches!(failed, StoreError::Unavailable { .. }),
        "{failed:?}"
    );
    let _ = std::fs::remove_file(unreadable.path());
    assert_eq!(sandbox.count(Operation::Login), 1, "checks send nothing");
}

/// Dynata revoked the fleet's sessions. A client still on an older one
/// meets a `401`, adopts the newer one from the store (revoked too, but
/// fresh), and its replay meets a `401` as well. Within the five seconds
/// between its `401` renewals, each refused call looks in the store, so the
/// client's next call takes the session the fleet has logged in to since,
/// instead of failing with the dead token until the interval has passed.
/// (Found by a walkthrough of a fleet: a quiet replica failed six calls in
/// a row.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_adopted_after_a_401_gives_way_to_the_fleets_new_session() {
    let dir = TempDir::new("client-revoked-adopted");
    let sandbox = sandbox().await;
    let store = FileStore::new(dir.path());
    let [busy, quiet, renewer] = std::array::from_fn(|_| client(&sandbox, Arc::new(store.clone())));
    busy.access_token().await.expect("logs in");
    quiet.access_token().await.expect("adopts");
    // Another process renews: the store holds a newer session. Then Dynata
    // revokes every session.
    let first = renewer.access_token().await.expect("adopts");
    renewer.invalidate(&first);
    renewer.access_token().await.expect("refreshes");
    sandbox.revoke_all();

    for revoked in [&quiet, &busy] {
        let refused = revoked.users_info().await;
        assert!(
            matches!(refused, Err(Error::Api { status: 401, .. })),
            "its token and the newer one it adopted were both revoked: {refused:?}"
        );
    }
    // A process whose 401 interval allows renews: Dynata refuses the
    // revoked refresh token, it logs in and stores the fleet's new session.
    // The two above take it on their next call, with no renewal of their
    // own (dropping their token instead had each renew at Dynata: the test
    // below).
    let other = client(&sandbox, Arc::new(store.clone()));
    other.users_info().await.expect("renews: logs in");
    let renewals = sandbox.count(Operation::Login) + sandbox.count(Operation::Refresh);
    for revoked in [&busy, &quiet] {
        revoked
            .users_info()
            .await
            .expect("the next call takes the fleet's new session");
    }
    assert_eq!(
        sandbox.count(Operation::Login) + sandbox.count(Operation::Refresh),
        renewals,
        "adopted, not a renewal of its own"
    );
}
