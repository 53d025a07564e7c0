//! The fleet protocol over a `FileStore` and over stores that misbehave.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use dynata_sdk::clock::TokioClock;
use dynata_sdk::store::{
    EncryptionKey, FileStore, LeaseOwner, Renew, RenewError, SharedSession, Source, StoreError,
    StoreFuture, StoreKey, StoredSession, TokenStore,
};

use crate::{Changed, FileStoreChange, Renewals, TempDir, client, key, session_at};

/// `clients` simulated clients on `store` renew at once; the sessions they end with.
pub(crate) async fn fleet_renews(
    store: impl Fn() -> Arc<dyn TokenStore>,
    clients: usize,
    renewals: &Arc<Renewals>,
    delay: Duration,
) -> Vec<(String, Source)> {
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let shared = client(store());
            let renewals = Arc::clone(renewals);
            tokio::spawn(async move {
                let shared = &shared;
                let outcome = shared
                    .renew(None, |what| {
                        let renewals = Arc::clone(&renewals);
                        async move { renewals.renew(shared, what, delay).await }
                    })
                    .await
                    .expect("the fake renewal never fails");
                (
                    outcome.session.access_token.expose_secret().to_string(),
                    outcome.source,
                )
            })
        })
        .collect();
    let mut sessions = Vec::new();
    for task in tasks {
        sessions.push(task.await.expect("no panic"));
    }
    sessions
}

#[tokio::test(start_paused = true)]
async fn twenty_clients_sharing_a_file_store_renew_once() {
    let dir = TempDir::new("twenty");
    let renewals = Arc::new(Renewals::default());
    let path = dir.path().to_path_buf();
    let sessions = fleet_renews(
        || Arc::new(FileStore::new(&path)),
        20,
        &renewals,
        Duration::from_millis(200),
    )
    .await;
    assert_eq!(renewals.total(), 1, "{sessions:?}");
    assert_eq!(renewals.logins.load(Ordering::SeqCst), 1);
    assert!(
        sessions.iter().all(|(token, _)| token == "access-1"),
        "{sessions:?}"
    );
    let renewed = sessions
        .iter()
        .filter(|(_, s)| *s == Source::Renewed)
        .count();
    assert_eq!(renewed, 1, "{sessions:?}");
    assert!(
        !FileStore::new(&path).lease_path(&key()).exists(),
        "the lease was released"
    );
}

#[tokio::test(start_paused = true)]
async fn a_fresh_stored_session_is_adopted_and_an_expiring_one_is_refreshed() {
    let dir = TempDir::new("adopt");
    let store = Arc::new(FileStore::new(dir.path()));
    let shared = client(store.clone());
    let renewals = Renewals::default();
    let stored = session_at(&shared, 100);
    store
        .save(&key(), &stored, shared.wall_clock().now())
        .await
        .expect("saved");

    let outcome = shared
        .renew(None, |what| renewals.renew(&shared, what, Duration::ZERO))
        .await
        .expect("renewed");
    assert_eq!(outcome.source, Source::Adopted);
    assert_eq!(outcome.session, stored);
    assert_eq!(renewals.total(), 0);

    // 55 s later the token is inside the 10 s window (with 1 s of skew):
    // the stored refresh token is used, once, and the result stored.
    tokio::time::advance(Duration::from_secs(55)).await;
    let outcome = shared
        .renew(Some(&stored), |what| {
            renewals.renew(&shared, what, Duration::ZERO)
        })
        .await
        .expect("renewed");
    assert_eq!(outcome.source, Source::Renewed);
    assert_eq!(renewals.refreshes.load(Ordering::SeqCst), 1);
    assert_eq!(*renewals.refreshed_with.lock().unwrap(), ["refresh-100"]);
    let now_stored = store.load(&key()).await.expect("loads").expect("present");
    assert_eq!(now_stored, outcome.session);
}

#[tokio::test(start_paused = true)]
async fn the_callers_own_session_is_never_adopted_back() {
    // A client whose token a server rejected (a 401) asks for a new one while
    // the store still holds that same token, fresh by the clock.
    let dir = TempDir::new("own");
    let store = Arc::new(FileStore::new(dir.path()));
    let shared = client(store.clone());
    let renewals = Renewals::default();
    let rejected = session_at(&shared, 7);
    store
        .save(&key(), &rejected, shared.wall_clock().now())
        .await
        .expect("saved");
    let outcome = shared
        .renew(Some(&rejected), |what| {
            renewals.renew(&shared, what, Duration::ZERO)
        })
        .await
        .expect("renewed");
    assert_eq!(outcome.source, Source::Renewed);
    assert_ne!(outcome.session.access_token, rejected.access_token);
    assert_eq!(*renewals.refreshed_with.lock().unwrap(), ["refresh-7"]);
}

#[tokio::test(start_paused = true)]
async fn a_dead_lease_holder_delays_the_others_by_at_most_its_lease() {
    let dir = TempDir::new("dead");
    let store = Arc::new(FileStore::new(dir.path()));
    let shared = client(store.clone());
    let ttl = shared.policy().lease_ttl;
    // A process took the lease, then died: it never writes nor releases.
    let dead = LeaseOwner::new("dead-process");
    assert!(
        store
            .try_acquire_lease(&key(), &dead, ttl, shared.wall_clock().now())
            .await
            .expect("acquired")
    );

    let renewals = Renewals::default();
    let started = tokio::time::Instant::now();
    let outcome = shared
        .renew(None, |what| renewals.renew(&shared, what, Duration::ZERO))
        .await
        .expect("renewed");
    let waited = started.elapsed();
    assert_eq!(outcome.source, Source::Renewed);
    assert_eq!(renewals.total(), 1);
    assert!(
        waited >= ttl,
        "took over after {waited:?}, before the lease expired"
    );
    assert!(
        waited < ttl + Duration::from_millis(500),
        "waited {waited:?}"
    );
    assert!(
        !store.release_lease(&key(), &dead).await.expect("answers"),
        "the dead holder's lease is gone"
    );
}

/// Two clients renew an expiring stored session at once while Dynata takes
/// `delay` to answer; what each ends with, and what Dynata was asked.
async fn two_clients_renew_slowly(delay: Duration) -> (Vec<Source>, Renewals) {
    let dir = TempDir::new("slow");
    let store = Arc::new(FileStore::new(dir.path()));
    let (sources, renewals) = two_clients_renew_slowly_on(store.clone(), store, delay).await;
    let sources = sources
        .into_iter()
        .map(|outcome| outcome.expect("renewed"))
        .collect();
    (sources, renewals)
}

/// [`two_clients_renew_slowly`], each client on its own view of the store;
/// the second starts once the first holds the lease.
async fn two_clients_renew_slowly_on(
    first: Arc<dyn TokenStore>,
    second: Arc<dyn TokenStore>,
    delay: Duration,
) -> (Vec<Result<Source, String>>, Renewals) {
    let (store, first, second) = (first.clone(), client(first), client(second));
    let expiring = session_at(&first, 100);
    store
        .save(&key(), &expiring, first.wall_clock().now())
        .await
        .expect("saved");
    // Inside the 10 s soft window: both want it renewed.
    tokio::time::advance(Duration::from_secs(55)).await;
    let renewals = Renewals::default();
    let (a, b) = tokio::join!(
        first.renew(Some(&expiring), |what| renewals.renew(&first, what, delay)),
        async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            second
                .renew(Some(&expiring), |what| renewals.renew(&second, what, delay))
                .await
        },
    );
    let sources = vec![a.map(|s| s.source), b.map(|s| s.source)];
    (sources, renewals)
}

#[tokio::test(start_paused = true)]
async fn a_renewal_slower_than_the_lease_keeps_it_and_the_other_adopts() {
    let ttl = crate::policy().lease_ttl;
    // Longer than the lease, shorter than a waiter's patience (`lease_wait`).
    let (mut sources, renewals) = two_clients_renew_slowly(ttl + ttl / 2).await;
    sources.sort_by_key(|s| format!("{s:?}"));
    assert_eq!(
        *renewals.refreshed_with.lock().unwrap(),
        ["refresh-100"],
        "the single-use refresh token was sent once"
    );
    assert_eq!(renewals.logins.load(Ordering::SeqCst), 0);
    assert_eq!(sources, [Source::Adopted, Source::Renewed]);
}

#[tokio::test(start_paused = true)]
async fn a_waiter_out_of_patience_logs_in_rather_than_reuse_the_refresh_token() {
    let policy = crate::policy();
    // Longer than a waiter waits: it renews on its own.
    let (_, renewals) = two_clients_renew_slowly(policy.lease_wait + policy.lease_ttl).await;
    assert_eq!(
        *renewals.refreshed_with.lock().unwrap(),
        ["refresh-100"],
        "the single-use refresh token was sent once"
    );
    assert_eq!(renewals.logins.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_store_failing_while_a_holder_refreshes_makes_the_other_log_in_not_refresh() {
    // The other client's first look at the store fails (it cannot know that
    // a holder is refreshing with the refresh token it has too), or its
    // second, while it waits for the holder.
    for fails in [1, 2] {
        let dir = TempDir::new("blip");
        let holder: Arc<dyn TokenStore> = Arc::new(FileStore::new(dir.path()));
        let other: Arc<dyn TokenStore> = Arc::new(Changed(FailingLoad {
            inner: FileStore::new(dir.path()),
            loads: AtomicUsize::new(0),
            fails,
        }));
        let (sources, renewals) =
            two_clients_renew_slowly_on(holder, other, Duration::from_secs(2)).await;
        assert_eq!(
            *renewals.refreshed_with.lock().unwrap(),
            ["refresh-100"],
            "load {fails} failed: the single-use refresh token was sent once"
        );
        assert_eq!(renewals.logins.load(Ordering::SeqCst), 1, "load {fails}");
        assert_eq!(sources[1], Ok(Source::RenewedAlone), "load {fails}");
    }
}

/// A client without a password (a worker that only ever adopts) whose
/// store fails while a holder refreshes: it must not send the holder's
/// refresh token, whatever else it cannot do.
#[tokio::test(start_paused = true)]
async fn a_client_without_a_password_never_refreshes_a_shared_session_without_the_lease() {
    for fails in [1, 2] {
        let dir = TempDir::new("no-password-blip");
        let holder: Arc<dyn TokenStore> = Arc::new(FileStore::new(dir.path()));
        let other: Arc<dyn TokenStore> = Arc::new(Changed(FailingLoad {
            inner: FileStore::new(dir.path()),
            loads: AtomicUsize::new(0),
            fails,
        }));
        let (first, second) = (client(holder.clone()), client(other));
        let expiring = session_at(&first, 100);
        holder
            .save(&key(), &expiring, first.wall_clock().now())
            .await
            .expect("saved");
        tokio::time::advance(Duration::from_secs(55)).await;
        let renewals = Renewals::default();
        let without_password = |shared, what| {
            let renewals = &renewals;
            async move {
                match what {
                    Renew::Login => Err(RenewError::CannotLogIn("login required".to_string())),
                    refresh => {
                        renewals
                            .renew(shared, refresh, Duration::from_secs(2))
                            .await
                    }
                }
            }
        };
        let (holding, other) = tokio::join!(
            first.renew(Some(&expiring), |what| without_password(&first, what)),
            async {
                tokio::time::sleep(Duration::from_millis(50)).await;
                second
                    .renew(Some(&expiring), |what| without_password(&second, what))
                    .await
            },
        );
        assert_eq!(
            *renewals.refreshed_with.lock().unwrap(),
            ["refresh-100"],
            "load {fails} failed: only the holder refreshed"
        );
        assert_eq!(holding.expect("renewed").source, Source::Renewed);
        assert_eq!(other.map(|s| s.source), Err("login required".to_string()));
        // Its next renewal goes to the store, which is back, and adopts.
        let adopted = second
            .renew(Some(&expiring), |what| without_password(&second, what))
            .await
            .expect("adopted");
        assert_eq!(adopted.source, Source::Adopted);
    }
}

#[tokio::test(start_paused = true)]
async fn a_lease_too_long_for_the_clock_still_keeps_others_out() {
    let dir = TempDir::new("unbounded-lease");
    let store: Arc<dyn TokenStore> = Arc::new(FileStore::new(dir.path()));
    let mut policy = crate::policy();
    policy.lease_ttl = Duration::MAX;
    let session = || SharedSession::new(store.clone(), key(), policy.clone(), Arc::new(TokioClock));
    let (first, second) = (session(), session());
    let expiring = session_at(&first, 100);
    store
        .save(&key(), &expiring, first.wall_clock().now())
        .await
        .expect("saved");
    tokio::time::advance(Duration::from_secs(55)).await;
    let renewals = Renewals::default();
    let slow = Duration::from_secs(2);
    let (a, b) = tokio::join!(
        first.renew(Some(&expiring), |what| renewals.renew(&first, what, slow)),
        async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            second
                .renew(Some(&expiring), |what| renewals.renew(&second, what, slow))
                .await
        },
    );
    assert_eq!(*renewals.refreshed_with.lock().unwrap(), ["refresh-100"]);
    assert_eq!(a.expect("renewed").source, Source::Renewed);
    assert_eq!(b.expect("adopted").source, Source::Adopted);
}

/// A `FileStore` whose `fails`-th load fails.
#[derive(Debug)]
struct FailingLoad {
    inner: FileStore,
    loads: AtomicUsize,
    fails: usize,
}

impl FileStoreChange for FailingLoad {
    fn inner(&self) -> &FileStore {
        &self.inner
    }

    fn load<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, Option<StoredSession>> {
        if self.loads.fetch_add(1, Ordering::SeqCst) + 1 == self.fails {
            return Box::pin(async {
                Err(StoreError::Unavailable {
                    message: "connection reset".into(),
                })
            });
        }
        self.inner.load(key)
    }
}

#[tokio::test(start_paused = true)]
async fn a_waiter_without_a_password_waits_out_a_holder_slower_than_two_leases() {
    // A client without a password cannot log in: it must wait for the
    // holder, which keeps its lease however long it takes.
    let dir = TempDir::new("no-password");
    let store: Arc<dyn TokenStore> = Arc::new(FileStore::new(dir.path()));
    let ttl = crate::policy().lease_ttl;
    let (first, second) = (client(store.clone()), client(store.clone()));
    let expiring = session_at(&first, 100);
    store
        .save(&key(), &expiring, first.wall_clock().now())
        .await
        .expect("saved");
    tokio::time::advance(Duration::from_secs(55)).await;
    let renewals = Renewals::default();
    let without_password = |shared, what| {
        let renewals = &renewals;
        async move {
            match what {
                Renew::Login => Err(RenewError::CannotLogIn("LoginRequired".to_string())),
                refresh => renewals.renew(shared, refresh, ttl * 2 + ttl / 2).await,
            }
        }
    };
    let (holder, waiter) = tokio::join!(
        first.renew(Some(&expiring), |what| without_password(&first, what)),
        async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            second
                .renew(Some(&expiring), |what| without_password(&second, what))
                .await
        },
    );
    assert_eq!(holder.expect("renewed").source, Source::Renewed);
    assert_eq!(waiter.expect("adopted").source, Source::Adopted);
}

#[tokio::test(start_paused = true)]
async fn a_refused_refresh_looks_at_the_store_before_the_password() {
    // Another process refreshed with the same (single-use) refresh token a
    // moment earlier and stored what it got: adopt it, log in nowhere.
    let dir = TempDir::new("refused");
    let store = Arc::new(FileStore::new(dir.path()));
    let shared = client(store.clone());
    let old = session_at(&shared, 1);
    let logins = AtomicUsize::new(0);
    let outcome = shared
        .renew(Some(&old), |what| {
            let (store, shared, logins) = (&store, &shared, &logins);
            async move {
                match what {
                    dynata_sdk::store::Renew::Refresh(_) => {
                        let winner = session_at(shared, 2);
                        store
                            .save(&key(), &winner, shared.wall_clock().now())
                            .await
                            .expect("saved");
                        Err(RenewError::RefreshRejected("invalid_grant".to_string()))
                    }
                    dynata_sdk::store::Renew::Login => {
                        logins.fetch_add(1, Ordering::SeqCst);
                        Ok(session_at(shared, 3))
                    }
                }
            }
        })
        .await
        .expect("renewed");
    assert_eq!(outcome.source, Source::Adopted);
    assert_eq!(outcome.session.access_token.expose_secret(), "access-2");
    assert_eq!(logins.load(Ordering::SeqCst), 0);

    // Refused with nothing new in the store: the password, once.
    let outcome = shared
        .renew(Some(&outcome.session), |what| {
            let (shared, logins) = (&shared, &logins);
            async move {
                match what {
                    dynata_sdk::store::Renew::Refresh(_) => {
                        Err(RenewError::RefreshRejected("invalid_grant".to_string()))
                    }
                    dynata_sdk::store::Renew::Login => {
                        logins.fetch_add(1, Ordering::SeqCst);
                        Ok(session_at(shared, 4))
                    }
                }
            }
        })
        .await
        .expect("renewed");
    assert_eq!(outcome.source, Source::Renewed);
    assert_eq!(logins.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_failed_renewal_is_the_callers_error_and_frees_the_lease() {
    let dir = TempDir::new("failed");
    let store = Arc::new(FileStore::new(dir.path()));
    let shared = client(store.clone());
    let error = shared
        .renew(None, |_| async {
            Err::<StoredSession, _>(RenewError::Failed("503".to_string()))
        })
        .await
        .expect_err("the renewal failed");
    assert_eq!(error, "503");
    assert!(
        !store.lease_path(&key()).exists(),
        "released for the next try"
    );
    assert!(store.load(&key()).await.expect("loads").is_none());
}

/// A store whose every operation fails, or never answers.
#[derive(Debug)]
struct BrokenStore {
    hangs: bool,
    calls: AtomicUsize,
}

impl BrokenStore {
    fn answer<'a, T: Send + 'a>(&'a self) -> StoreFuture<'a, T> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let hangs = self.hangs;
        Box::pin(async move {
            if hangs {
                std::future::pending::<()>().await;
            }
            Err(StoreError::Unavailable {
                message: "connection refused".into(),
            })
        })
    }
}

impl TokenStore for BrokenStore {
    fn load<'a>(&'a self, _: &'a StoreKey) -> StoreFuture<'a, Option<StoredSession>> {
        self.answer()
    }
    fn save<'a>(
        &'a self,
        _: &'a StoreKey,
        _: &'a StoredSession,
        _: std::time::SystemTime,
    ) -> StoreFuture<'a, ()> {
        self.answer()
    }
    fn remove<'a>(&'a self, _: &'a StoreKey) -> StoreFuture<'a, ()> {
        self.answer()
    }
    fn try_acquire_lease<'a>(
        &'a self,
        _: &'a StoreKey,
        _: &'a LeaseOwner,
        _: Duration,
        _: std::time::SystemTime,
    ) -> StoreFuture<'a, bool> {
        self.answer()
    }
    fn extend_lease<'a>(
        &'a self,
        _: &'a StoreKey,
        _: &'a LeaseOwner,
        _: Duration,
        _: std::time::SystemTime,
    ) -> StoreFuture<'a, bool> {
        self.answer()
    }
    fn release_lease<'a>(&'a self, _: &'a StoreKey, _: &'a LeaseOwner) -> StoreFuture<'a, bool> {
        self.answer()
    }
}

#[tokio::test(start_paused = true)]
async fn a_failing_or_hanging_store_never_fails_a_renewal_and_is_tried_again() {
    for hangs in [false, true] {
        let store = Arc::new(BrokenStore {
            hangs,
            calls: AtomicUsize::new(0),
        });
        let shared = client(store.clone());
        let renewals = Renewals::default();
        let started = tokio::time::Instant::now();
        let first = shared
            .renew(None, |what| renewals.renew(&shared, what, Duration::ZERO))
            .await
            .expect("renewed without the store");
        assert_eq!(first.source, Source::RenewedAlone);
        assert_eq!(renewals.logins.load(Ordering::SeqCst), 1);
        assert!(
            started.elapsed() <= shared.policy().operation_timeout,
            "hangs={hangs}: took {:?}",
            started.elapsed()
        );
        // The next renewal goes to the store first again, then refreshes
        // with the local refresh token rather than the password.
        let second = shared
            .renew(Some(&first.session), |what| {
                renewals.renew(&shared, what, Duration::ZERO)
            })
            .await
            .expect("renewed without the store");
        assert_eq!(second.source, Source::RenewedAlone);
        assert_eq!(store.calls.load(Ordering::SeqCst), 2, "hangs={hangs}");
        assert_eq!(renewals.refreshes.load(Ordering::SeqCst), 1);
    }
}

#[tokio::test(start_paused = true)]
async fn logout_removes_the_stored_session() {
    let dir = TempDir::new("logout");
    let store = Arc::new(FileStore::new(dir.path()));
    let shared = client(store.clone());
    let renewals = Renewals::default();
    shared
        .renew(None, |what| renewals.renew(&shared, what, Duration::ZERO))
        .await
        .expect("renewed");
    assert!(shared.load_adoptable(None).await.is_some());
    shared.remove().await;
    assert!(shared.load_adoptable(None).await.is_none());
    assert!(!store.session_path(&key()).exists());
}

#[tokio::test(start_paused = true)]
async fn a_renewal_dropped_while_holding_the_lease_releases_it() {
    let dir = TempDir::new("dropped");
    let store = Arc::new(FileStore::new(dir.path()));
    let shared = Arc::new(client(store.clone()));
    let started = Arc::new(tokio::sync::Notify::new());
    let renewing = tokio::spawn({
        let (shared, started) = (Arc::clone(&shared), Arc::clone(&started));
        async move {
            shared
                .renew(None, |_| {
                    started.notify_one();
                    std::future::pending::<Result<StoredSession, RenewError<String>>>()
                })
                .await
        }
    });
    started.notified().await;
    assert!(store.lease_path(&key()).exists(), "held while renewing");
    renewing.abort();
    let _ = renewing.await;
    for _ in 0..100 {
        if !store.lease_path(&key()).exists() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the lease outlived the renewal that held it");
}

#[tokio::test(start_paused = true)]
async fn a_waiter_with_a_short_operation_timeout_still_waits_for_the_holder() {
    // Each wait for a change lasts up to the poll interval (up to 250 ms);
    // an operation timeout shorter than that must not turn waiting into
    // renewing alone.
    let dir = TempDir::new("short-timeout");
    let store = Arc::new(FileStore::new(dir.path()));
    let mut policy = crate::policy();
    policy.operation_timeout = Duration::from_millis(20);
    let holder = client(store.clone());
    let waiter = dynata_sdk::store::SharedSession::new(
        store.clone(),
        key(),
        policy,
        Arc::new(dynata_sdk::clock::TokioClock),
    );
    let renewals = Renewals::default();
    let (held, waited) = tokio::join!(
        holder.renew(None, |what| renewals.renew(
            &holder,
            what,
            Duration::from_secs(1)
        )),
        async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            waiter
                .renew(None, |what| renewals.renew(&waiter, what, Duration::ZERO))
                .await
        }
    );
    assert_eq!(held.expect("renewed").source, Source::Renewed);
    assert_eq!(waited.expect("adopted").source, Source::Adopted);
    assert_eq!(renewals.total(), 1);
}

/// A client without a password holds an old session (refresh-1)
/// while the store holds a newer one (refresh-2) too close to expiry to
/// adopt; another process has used both single-use refresh tokens. Each dead
/// token must be sent at most once.
#[tokio::test(start_paused = true)]
async fn two_dead_refresh_tokens_are_each_sent_once() {
    let dir = TempDir::new("two-dead-tokens");
    let store = Arc::new(FileStore::new(dir.path()));
    let shared = client(store.clone());
    let local = session_at(&shared, 1);
    tokio::time::advance(Duration::from_secs(5)).await;
    let stored = session_at(&shared, 2);
    store
        .save(&key(), &stored, shared.wall_clock().now())
        .await
        .expect("saved");
    // Inside the stored session's soft window: not adoptable.
    tokio::time::advance(Duration::from_secs(50)).await;
    let sent = std::sync::Mutex::new(Vec::new());
    for _ in 0..4 {
        let _ = shared
            .renew(Some(&local), |what| {
                let sent = &sent;
                async move {
                    match what {
                        Renew::Refresh(token) => {
                            sent.lock().unwrap().push(token.expose_secret().to_string());
                            Err(RenewError::RefreshRejected("invalid_grant".to_string()))
                        }
                        Renew::Login => Err(RenewError::CannotLogIn("LoginRequired".to_string())),
                    }
                }
            })
            .await;
        tokio::time::advance(Duration::from_secs(1)).await;
    }
    assert_eq!(
        *sent.lock().unwrap(),
        ["refresh-2", "refresh-1"],
        "dead refresh tokens sent again"
    );
}

/// The client's own session (refresh-100) was refreshed long ago by another
/// process into the stored one (refresh-101), which is now too close to
/// expiry to adopt. The client's first look at the store sees it; its second
/// look, under the lease, fails. Not knowing what the store holds, it must
/// not send refresh-100, a single-use token the other process already spent.
#[tokio::test(start_paused = true)]
async fn a_load_failing_under_the_lease_does_not_resend_a_spent_refresh_token() {
    let dir = TempDir::new("load-under-lease");
    let plain: Arc<dyn TokenStore> = Arc::new(FileStore::new(dir.path()));
    // Load 1: the look before the lease (succeeds); load 2: under the lease.
    let failing: Arc<dyn TokenStore> = Arc::new(Changed(FailingLoad {
        inner: FileStore::new(dir.path()),
        loads: AtomicUsize::new(0),
        fails: 2,
    }));
    let shared = client(failing);
    let local = session_at(&shared, 100);
    tokio::time::advance(Duration::from_secs(30)).await;
    // Another process refreshed refresh-100 and stored what it got.
    let newer = session_at(&shared, 101);
    plain
        .save(&key(), &newer, shared.wall_clock().now())
        .await
        .expect("saved");
    // Inside the stored session's soft window: not adoptable; the local
    // access token has expired, its refresh token (600 s) has not.
    tokio::time::advance(Duration::from_secs(50)).await;
    let renewals = Renewals::default();
    let outcome = shared
        .renew(Some(&local), |what| {
            renewals.renew(&shared, what, Duration::ZERO)
        })
        .await
        .expect("renewed");
    let sent = renewals.refreshed_with.lock().unwrap().clone();
    assert!(
        !sent.contains(&"refresh-100".to_string()),
        "sent the spent refresh token although the store could not say what it holds: {sent:?}"
    );
    assert_eq!(outcome.source, Source::RenewedAlone);
}

/// A `FileStore` whose lease acquisition takes effect at once but whose
/// answer comes `late` (a Redis `SET NX` whose reply is slower than the
/// time limit; a `FileStore` job that `fsync` held up, detached when the
/// protocol stopped waiting for it).
#[derive(Debug)]
struct AcquireAnsweredLate {
    inner: FileStore,
    late: Duration,
}

impl FileStoreChange for AcquireAnsweredLate {
    fn inner(&self) -> &FileStore {
        &self.inner
    }

    fn try_acquire_lease<'a>(
        &'a self,
        key: &'a StoreKey,
        owner: &'a LeaseOwner,
        ttl: Duration,
        now: std::time::SystemTime,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let acquired = self.inner.try_acquire_lease(key, owner, ttl, now).await;
            tokio::time::sleep(self.late).await;
            acquired
        })
    }
}

/// An acquisition that timed out may still have taken the lease: once it
/// lands, it is given back, so another process takes the lease at once.
/// (It held every other process, and this client's own next renewal, for
/// the lease's whole time to live, with nobody renewing under it; found by
/// review.)
#[tokio::test(start_paused = true)]
async fn a_lease_taken_by_a_timed_out_acquire_is_given_back() {
    let dir = TempDir::new("late-acquire");
    let slow = Arc::new(Changed(AcquireAnsweredLate {
        inner: FileStore::new(dir.path()),
        late: policy_timeout() * 2,
    }));
    let first = client(slow.clone());
    let renewals = Renewals::default();
    let outcome = first
        .renew(None, |what| renewals.renew(&first, what, Duration::ZERO))
        .await
        .expect("renewed alone");
    assert_eq!(outcome.source, Source::RenewedAlone);
    // Let the late answer (and any release) land.
    tokio::time::sleep(policy_timeout() * 3).await;

    // Another process renews: nobody is renewing, so it should take the
    // lease at once.
    let other = client(Arc::new(FileStore::new(dir.path())));
    let started = tokio::time::Instant::now();
    let theirs = other
        .renew(None, |what| renewals.renew(&other, what, Duration::ZERO))
        .await
        .expect("renewed");
    let waited = started.elapsed();
    assert_eq!(theirs.source, Source::Renewed);
    assert!(
        waited < Duration::from_millis(500),
        "another process waited {waited:?} for a lease nobody was renewing under (lease_ttl {:?})",
        other.policy().lease_ttl
    );
}

fn policy_timeout() -> Duration {
    crate::policy().operation_timeout
}

/// A `FileStore` whose first lease acquisition is held up for `late` before
/// it touches the lease (a job `fsync` or a slow disk held up, detached when
/// the protocol stopped waiting for it); later ones act at once.
#[derive(Debug)]
struct FirstAcquireActsLate {
    inner: FileStore,
    late: Duration,
    calls: AtomicUsize,
}

impl FileStoreChange for FirstAcquireActsLate {
    fn inner(&self) -> &FileStore {
        &self.inner
    }

    fn try_acquire_lease<'a>(
        &'a self,
        key: &'a StoreKey,
        owner: &'a LeaseOwner,
        ttl: Duration,
        now: std::time::SystemTime,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            if self.calls.fetch_add(1, Ordering::SeqCst) == 0 {
                tokio::time::sleep(self.late).await;
            }
            self.inner.try_acquire_lease(key, owner, ttl, now).await
        })
    }
}

/// The lease of an acquisition that timed out is given back once it lands,
/// but only that attempt's: when it lands after the client's next renewal
/// took the lease, that renewal keeps it, and another process adopts what
/// it stores instead of renewing beside it. (The give-back was checked
/// against the client's one owner id, and released the later renewal's
/// lease mid-renewal; found by review. Each attempt now has an owner id of
/// its own.)
#[tokio::test(start_paused = true)]
async fn a_late_acquire_does_not_release_the_lease_of_a_later_renewal() {
    let dir = TempDir::new("late-acquire-later-lease");
    let slow = Arc::new(Changed(FirstAcquireActsLate {
        inner: FileStore::new(dir.path()),
        late: policy_timeout() * 4,
        calls: AtomicUsize::new(0),
    }));
    let first = client(slow.clone());
    let other = client(Arc::new(FileStore::new(dir.path())));
    let renewals = Renewals::default();
    // The first acquisition times out (still under way): renewed alone.
    let alone = first
        .renew(None, |what| renewals.renew(&first, what, Duration::ZERO))
        .await
        .expect("renewed alone");
    assert_eq!(alone.source, Source::RenewedAlone);
    // Its next renewal (a 401, say) takes the lease at once and takes its
    // time; the late acquisition lands meanwhile, and then another process
    // wants a session.
    let slow_renewal = policy_timeout() * 8;
    let (mine, theirs) = tokio::join!(
        first.renew(Some(&alone.session), |what| {
            renewals.renew(&first, what, slow_renewal)
        }),
        async {
            tokio::time::sleep(policy_timeout() * 5).await;
            other
                .renew(None, |what| renewals.renew(&other, what, Duration::ZERO))
                .await
        },
    );
    assert_eq!(mine.expect("renewed").source, Source::Renewed);
    let theirs = theirs.expect("renewed");
    assert_eq!(
        (theirs.source, renewals.total()),
        (Source::Adopted, 2),
        "another process renewed while this client held the lease and renewed under it \
         (logins {}, refreshed with {:?})",
        renewals.logins.load(Ordering::SeqCst),
        renewals.refreshed_with.lock().unwrap()
    );
}

/// A stored access token no header can carry counts as expired even when
/// the session was issued by a clock ahead of this client's. (Its expiry
/// was set to its issue time, still ahead, so it was adopted and every
/// call failed before sending; found by review.)
#[tokio::test(start_paused = true)]
async fn a_garbled_token_issued_by_a_clock_ahead_is_not_adopted() {
    let dir = TempDir::new("garbled-ahead");
    let store = Arc::new(FileStore::new(dir.path()));
    let shared = client(store.clone());
    let ahead = shared.wall_clock().now() + Duration::from_secs(5);
    let garbled = StoredSession::from_lifetimes(
        dynata_sdk::auth_api::Secret::new("line\nbreak"),
        Duration::from_secs(1800),
        dynata_sdk::auth_api::Secret::new("refresh-live"),
        Duration::from_secs(3600),
        ahead,
    )
    .expect("in range");
    store
        .save(&key(), &garbled, shared.wall_clock().now())
        .await
        .expect("saved");
    let adopted = shared.load_adoptable(None).await;
    assert!(
        adopted.is_none(),
        "adopted a session whose access token no header can carry: {adopted:?}"
    );
}

/// A `FileStore` whose lease acquisition, as it lands, also ends the
/// caller's wait for it: `stop` fires in the same poll that answers (a
/// caller's `select!` on a cancellation, or a user's own time limit, that
/// comes due at the instant the store answers).
#[derive(Debug)]
struct AcquireStopsTheCaller {
    inner: FileStore,
    stop: std::sync::Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
}

impl FileStoreChange for AcquireStopsTheCaller {
    fn inner(&self) -> &FileStore {
        &self.inner
    }

    fn try_acquire_lease<'a>(
        &'a self,
        key: &'a StoreKey,
        owner: &'a LeaseOwner,
        ttl: Duration,
        now: std::time::SystemTime,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let acquired = self.inner.try_acquire_lease(key, owner, ttl, now).await;
            if let Some(stop) = self.stop.lock().unwrap().take() {
                let _ = stop.send(());
            }
            acquired
        })
    }
}

/// A lease whose acquisition answered while its caller stopped waiting
/// (the answer sent, never read) is given back. (The give-back ran only
/// when the answer could not be sent, and the lease was left held for its
/// time to live; found by review. The answer is now the lease itself,
/// which gives the lease back when dropped unread.)
#[tokio::test(start_paused = true)]
async fn a_lease_answered_but_never_read_is_given_back() {
    let dir = TempDir::new("answered-never-read");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
    let store = Arc::new(Changed(AcquireStopsTheCaller {
        inner: FileStore::new(dir.path()),
        stop: std::sync::Mutex::new(Some(stop_tx)),
    }));
    let first = client(store.clone());
    let renewals = Renewals::default();
    let outcome = tokio::select! {
        biased;
        _ = stop_rx => None,
        renewed = first.renew(None, |what| renewals.renew(&first, what, Duration::ZERO)) => Some(renewed),
    };
    assert!(outcome.is_none(), "the caller stopped waiting");
    // Any give-back has landed by now (well within the lease's 3 s).
    tokio::time::sleep(policy_timeout() * 2).await;
    let leaked = FileStore::new(dir.path()).lease_path(&key()).exists();

    let other = client(Arc::new(FileStore::new(dir.path())));
    let started = tokio::time::Instant::now();
    let theirs = other
        .renew(None, |what| renewals.renew(&other, what, Duration::ZERO))
        .await
        .expect("renewed");
    let waited = started.elapsed();
    assert_eq!(theirs.source, Source::Renewed);
    assert!(
        !leaked && waited < Duration::from_millis(500),
        "a lease whose taker was gone was left held (lease file still there: {leaked}); \
         another process waited {waited:?} (lease_ttl {:?})",
        other.policy().lease_ttl
    );
}

/// A record this client cannot read under the lease (sealed with another
/// key: a rolling deploy that rotates the `EncryptionKey`) may have been
/// written over a session renewed from this client's own, so the client
/// logs in rather than send its refresh token, which may be spent, and
/// replaces the record. (It refreshed it: a fleet with two keys sent a
/// spent refresh token again. Found by a walkthrough of a fleet.)
#[tokio::test(start_paused = true)]
async fn an_unreadable_record_under_the_lease_does_not_resend_a_spent_refresh_token() {
    let dir = TempDir::new("unreadable-under-lease");
    let sealed =
        |byte| FileStore::new(dir.path()).with_encryption(EncryptionKey::from_bytes([byte; 32]));
    let shared = client(Arc::new(sealed(1)));
    // Adopted from the store earlier; another process (same key) has since
    // refreshed refresh-100, and one with another key then stored its own.
    let local = session_at(&shared, 100);
    let foreign = session_at(&shared, 200);
    sealed(2)
        .save(&key(), &foreign, shared.wall_clock().now())
        .await
        .expect("saved");
    // The local access token has expired; its refresh token has not.
    tokio::time::advance(Duration::from_secs(80)).await;
    let renewals = Renewals::default();
    let outcome = shared
        .renew(Some(&local), |what| {
            renewals.renew(&shared, what, Duration::ZERO)
        })
        .await
        .expect("renewed");
    let sent = renewals.refreshed_with.lock().unwrap().clone();
    assert!(
        sent.is_empty(),
        "sent a refresh token it cannot know is live: {sent:?}"
    );
    assert_eq!(renewals.logins.load(Ordering::SeqCst), 1);
    // The record is replaced, readable by this fleet again.
    assert_eq!(outcome.source, Source::Renewed);
    let stored = sealed(1)
        .load(&key())
        .await
        .expect("readable")
        .expect("stored");
    assert_eq!(stored.access_token, outcome.session.access_token);
}

/// A `FileStore` whose saves land `late`, in a task of their own that goes
/// on when the protocol stops waiting for it: a save whose `fsync` a busy
/// disk held up past the operation's time limit (`FileStore` runs it on a
/// blocking thread, which nothing cancels).
#[derive(Debug)]
struct SaveLandsLate {
    inner: FileStore,
    late: Duration,
}

impl FileStoreChange for SaveLandsLate {
    fn inner(&self) -> &FileStore {
        &self.inner
    }

    fn save<'a>(
        &'a self,
        key: &'a StoreKey,
        session: &'a StoredSession,
        now: std::time::SystemTime,
    ) -> StoreFuture<'a, ()> {
        let (inner, key, session, late) =
            (self.inner.clone(), key.clone(), session.clone(), self.late);
        let landing = tokio::spawn(async move {
            tokio::time::sleep(late).await;
            inner.save(&key, &session, now).await
        });
        Box::pin(async move { landing.await.expect("no panic") })
    }
}

/// A save that outlasts the operation's time limit is still under way: the
/// lease must not be given up before it lands, or a waiting process takes
/// the lease, reads the old record and refreshes with the single-use
/// refresh token the holder has just spent.
#[tokio::test(start_paused = true)]
async fn a_save_slower_than_its_time_limit_keeps_the_lease_until_it_lands() {
    let dir = TempDir::new("late-save");
    let slow: Arc<dyn TokenStore> = Arc::new(Changed(SaveLandsLate {
        inner: FileStore::new(dir.path()),
        late: policy_timeout() * 3,
    }));
    let (sources, renewals) =
        two_clients_renew_slowly_on(slow.clone(), slow, Duration::from_millis(200)).await;
    assert_eq!(
        *renewals.refreshed_with.lock().unwrap(),
        ["refresh-100"],
        "the single-use refresh token was sent more than once (sources {sources:?})"
    );
    assert_eq!(renewals.logins.load(Ordering::SeqCst), 0);
    assert_eq!(sources, [Ok(Source::Renewed), Ok(Source::Adopted)]);
}

/// [`a_save_slower_than_its_time_limit_keeps_the_lease_until_it_lands`],
/// with a save held up longer than the lease lives (a disk stalled for
/// more than 15 s by default): the lease, left to run out, ends before the
/// save lands, and the waiter that takes it reads the old record and
/// refreshes with the refresh token the holder has just spent.
#[tokio::test(start_paused = true)]
async fn a_save_slower_than_the_lease_does_not_resend_the_spent_refresh_token() {
    let dir = TempDir::new("later-save");
    let slow: Arc<dyn TokenStore> = Arc::new(Changed(SaveLandsLate {
        inner: FileStore::new(dir.path()),
        late: crate::policy().lease_ttl * 2,
    }));
    let (sources, renewals) =
        two_clients_renew_slowly_on(slow.clone(), slow, Duration::from_millis(200)).await;
    assert_eq!(
        *renewals.refreshed_with.lock().unwrap(),
        ["refresh-100"],
        "the single-use refresh token was sent more than once (sources {sources:?})"
    );
}
