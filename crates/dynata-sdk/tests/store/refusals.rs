//! `401`s with a token store: within the interval between `401` renewals,
//! a refused call looks in the store (at most once a second) and never
//! takes back a session whose refresh token this client has spent. Found
//! by a review of that look-up.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use dynata_sandbox::{Fault, Operation, Sandbox};
use dynata_sdk::clock::ManualClock;
use dynata_sdk::store::{FileStore, StoreError, StoreFuture, StoreKey, StoredSession, TokenStore};
use dynata_sdk::{Client, Credentials, Environment, Error};

use crate::client::{client_on, sandbox};
use crate::{Changed, FileStoreChange, TempDir};

/// A `FileStore` whose session saves fail while `fail_saves` is set, and
/// that counts its loads.
#[derive(Debug)]
struct Flaky {
    inner: FileStore,
    fail_saves: AtomicBool,
    loads: AtomicUsize,
    load_delay: Duration,
}

impl FileStoreChange for Flaky {
    fn inner(&self) -> &FileStore {
        &self.inner
    }
    fn save<'a>(
        &'a self,
        key: &'a StoreKey,
        session: &'a StoredSession,
        now: SystemTime,
    ) -> StoreFuture<'a, ()> {
        if self.fail_saves.load(Ordering::SeqCst) {
            return Box::pin(async {
                Err(StoreError::Unavailable {
                    message: "injected".into(),
                })
            });
        }
        self.inner.save(key, session, now)
    }
    fn load<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, Option<StoredSession>> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        let delay = self.load_delay;
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            self.inner.load(key).await
        })
    }
}

fn flaky_client(
    sandbox: &Sandbox,
    dir: &TempDir,
    clock: &ManualClock,
    load_delay: Duration,
) -> (Client, Arc<Changed<Flaky>>) {
    let store = Arc::new(Changed(Flaky {
        inner: FileStore::new(dir.path()),
        fail_saves: AtomicBool::new(false),
        loads: AtomicUsize::new(0),
        load_delay,
    }));
    let client = Client::builder()
        .credentials(Credentials::new("alice", "secret"))
        .environment(Environment::custom(&sandbox.base_url()).expect("loopback"))
        .token_store(store.clone())
        .clock(Arc::new(clock.clone()))
        .build()
        .expect("valid");
    (client, store)
}

/// The 401 renewal refreshes S1 into S2, but the store's save fails (a
/// blip): the store still holds S1, whose refresh token this client has just
/// spent and whose access token Dynata has just refused. The replay's 401
/// must not take S1 back from the store over the newer S2 (it did, and S1's
/// spent refresh token was later sent again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_call_never_takes_back_a_session_whose_refresh_token_it_spent() {
    let dir = TempDir::new("review-adopt-spent");
    let sandbox = sandbox().await;
    let clock = ManualClock::new();
    let (client, store) = flaky_client(&sandbox, &dir, &clock, Duration::ZERO);
    let s1 = client.access_token().await.expect("logs in");
    sandbox.inject(Operation::UsersInfo, Fault::Status(401), 2);
    store.fail_saves.store(true, Ordering::SeqCst);
    let refused = client.users_info().await;
    assert!(
        matches!(refused, Err(Error::Api { status: 401, .. })),
        "{refused:?}"
    );
    store.fail_saves.store(false, Ordering::SeqCst);
    assert_eq!(sandbox.count(Operation::Refresh), 1, "S1 refreshed into S2");
    let now = client.access_token().await.expect("a token");
    assert!(
        now.secret() != s1.secret(),
        "the client went back to S1: the session whose access token was just refused, and whose refresh token it spent"
    );
}

/// The same, carried on: past the 401 interval, a 401 renews S2, never S1,
/// whose refresh token was spent (sent again, Dynata refused it, and the
/// client fell back to its password).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_token_spent_before_a_failed_save_is_never_sent_again() {
    let dir = TempDir::new("review-adopt-spent-twice");
    let sandbox = sandbox().await;
    let clock = ManualClock::new();
    let (client, store) = flaky_client(&sandbox, &dir, &clock, Duration::ZERO);
    client.access_token().await.expect("logs in");
    sandbox.inject(Operation::UsersInfo, Fault::Status(401), 2);
    store.fail_saves.store(true, Ordering::SeqCst);
    let _ = client.users_info().await;
    store.fail_saves.store(false, Ordering::SeqCst);
    clock.advance(Duration::from_secs(6));
    sandbox.inject(Operation::UsersInfo, Fault::Status(401), 1);
    client.users_info().await.expect("renewed and replayed");
    assert_eq!(
        sandbox.count(Operation::Login),
        1,
        "refreshes: {}; a refused refresh (a spent refresh token sent again) made it log in",
        sandbox.count(Operation::Refresh)
    );
}

/// The logins and refreshes Dynata receives, second by second, from a fleet
/// of four clients sharing one store, which call an endpoint that answers
/// `401` to every token twice a second for `seconds`, the `n`th client
/// starting `n × start_gap` seconds in.
async fn renewals_of_a_fleet_refused_every_call(seconds: usize, start_gap: usize) -> Vec<u64> {
    let dir = TempDir::new("fleet-refused");
    let sandbox = sandbox().await;
    let store = FileStore::new(dir.path());
    let clock = ManualClock::new();
    let fleet: Vec<Client> = (0..4)
        .map(|_| {
            client_on(
                &sandbox,
                &store,
                &clock,
                Credentials::new("alice", "secret"),
            )
        })
        .collect();
    for client in &fleet {
        client.access_token().await.expect("logs in, or adopts");
    }
    assert_eq!(sandbox.count(Operation::Login), 1);
    sandbox.inject(Operation::UsersInfo, Fault::Status(401), 100_000);
    let renewals = || sandbox.count(Operation::Refresh) + sandbox.count(Operation::Login);
    let mut per_second = Vec::new();
    for second in 0..seconds {
        let at_start = renewals();
        for (n, client) in fleet.iter().enumerate() {
            if second < n * start_gap {
                continue;
            }
            for _ in 0..2 {
                let refused = client.users_info().await;
                assert!(
                    matches!(refused, Err(Error::Api { status: 401, .. })),
                    "{refused:?}"
                );
            }
        }
        per_second.push(renewals() - at_start);
        clock.advance(Duration::from_secs(1));
    }
    per_second
}

/// An endpoint that answers `401` to every token costs a fleet sharing one
/// session one renewal per 5 s interval, as it costs one process. (A first
/// fix for revoked fleets dropped every adopted token refused again, and
/// each client then renewed at Dynata: four an interval.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_refusing_every_token_costs_a_fleet_one_renewal_per_interval() {
    let per_second = renewals_of_a_fleet_refused_every_call(10, 0).await;
    let total: u64 = per_second.iter().sum();
    assert!(
        total <= 2,
        "{total} renewals in two intervals: {per_second:?}"
    );
}

/// The same with clients started a second apart, out of step. (Each caught
/// up with the store within its interval and then refreshed that session
/// at Dynata: four an interval again.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_out_of_step_costs_one_renewal_per_interval() {
    let per_second = renewals_of_a_fleet_refused_every_call(30, 1).await;
    let total: u64 = per_second.iter().sum();
    assert!(
        total <= 7,
        "{total} renewals in six intervals: {per_second:?}"
    );
}

/// With a slow store (300 ms a load, under its 1 s limit), calls an
/// endpoint refuses within the 401 interval read the store at most once a
/// second, not once (or twice) a call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_calls_read_a_slow_store_at_most_once_a_second() {
    let dir = TempDir::new("review-slow-store");
    let sandbox = sandbox().await;
    let clock = ManualClock::new();
    let (client, store) = flaky_client(&sandbox, &dir, &clock, Duration::from_millis(300));
    client.access_token().await.expect("logs in");
    sandbox.inject(Operation::UsersInfo, Fault::Status(401), 100_000);
    let _ = client.users_info().await; // the 401 renewal of the interval
    let loads = store.loads.load(Ordering::SeqCst);
    for _ in 0..10 {
        let _ = client.users_info().await;
    }
    let extra = store.loads.load(Ordering::SeqCst) - loads;
    assert!(extra <= 1, "10 refused calls read the store {extra} times");
}

/// The store's saves keep failing (a full disk) while an endpoint refuses
/// every token: each 5 s a 401 renewal refreshes this client's session, so
/// S1 (still in the store, fresh for 25 minutes) holds a refresh token
/// this client spent. It is remembered as long as S1 could be used (it was
/// kept for 8 refreshes only: S1 was then adopted again and its spent
/// refresh token sent a second time, refused, and a login followed; found
/// by review).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_refresh_token_is_remembered_through_any_number_of_renewals() {
    let dir = TempDir::new("spent-capacity");
    let sandbox = sandbox().await;
    let clock = ManualClock::new();
    let (client, store) = flaky_client(&sandbox, &dir, &clock, Duration::ZERO);
    client.access_token().await.expect("logs in"); // S1, stored
    store.fail_saves.store(true, Ordering::SeqCst);
    sandbox.inject(Operation::UsersInfo, Fault::Status(401), 100_000);
    for round in 0..14 {
        clock.advance(Duration::from_secs(6));
        let _ = client.users_info().await;
        clock.advance(Duration::from_millis(1500));
        let _ = client.users_info().await; // a look-up within the interval
        assert_eq!(
            sandbox.count(Operation::Login),
            1,
            "round {round}: refreshes {}: a spent refresh token was sent again, refused, and the client logged in",
            sandbox.count(Operation::Refresh)
        );
    }
}

/// Another process of the fleet logs out (which ends the session for
/// everyone). Shortly before, this client's look-up took the fleet's newest
/// session within its 401 interval, which now restarts that interval: its
/// calls fail until 5 s after the look-up, where before these commits the
/// 401 renewal came 5 s after its last one (here 4.7 s earlier). Found by
/// review.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_look_up_does_not_delay_the_renewal_after_a_fleet_logout() {
    let dir = TempDir::new("logout-delay");
    let sandbox = sandbox().await;
    let store = FileStore::new(dir.path());
    let clock = ManualClock::new();
    let make = || {
        client_on(
            &sandbox,
            &store,
            &clock,
            Credentials::new("alice", "secret"),
        )
    };
    let (a, b) = (make(), make());
    a.access_token().await.expect("A logs in: S1");
    b.access_token().await.expect("B adopts S1");
    // A: a 401 renewal refreshes S1 into S2 (stored).
    sandbox.inject(Operation::UsersInfo, Fault::Status(401), 1);
    a.users_info().await.expect("A renewed and replayed");
    clock.advance(Duration::from_millis(500));
    // B (t = 0.5): a 401 renewal adopts S2.
    sandbox.inject(Operation::UsersInfo, Fault::Status(401), 1);
    b.users_info().await.expect("B adopted S2 and replayed");
    clock.advance(Duration::from_millis(4700));
    // A (t = 5.2): its next 401 renewal refreshes S2 into S3 (stored).
    sandbox.inject(Operation::UsersInfo, Fault::Status(401), 1);
    a.users_info().await.expect("A renewed again");
    // B (t = 5.2): a 401 within its interval; the look-up takes S3.
    sandbox.inject(Operation::UsersInfo, Fault::Status(401), 1);
    b.users_info()
        .await
        .expect("B took S3 from the store and replayed");
    // A logs out: S3 (and its whole session) revoked, out of the store.
    a.logout().await.expect("logged out");
    let logins = sandbox.count(Operation::Login);
    // t = 6.5: B's last 401 renewal was at 0.5; before these commits it
    // would renew now (and log in).
    clock.advance(Duration::from_millis(1300));
    let outcome = b.users_info().await;
    assert!(
        outcome.is_ok(),
        "6 s after B's last 401 renewal, B still fails ({outcome:?}); logins since the logout: {}",
        sandbox.count(Operation::Login) - logins
    );
}
