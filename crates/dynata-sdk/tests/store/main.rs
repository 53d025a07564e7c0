//! Token stores and the fleet protocol, observed from outside: many
//! `SharedSession`s (one per simulated client) over one store, a renewal that
//! counts its calls, and stores that fail, hang or hold garbage; and fleets of
//! OS processes against a sandbox (`fleet`). The Redis tests are built with
//! the `redis` feature (`cargo test -p dynata-sdk --features redis --test
//! store`) and run against a `redis-server` each test starts on a free
//! loopback port.

mod client;
mod file_store;
mod fleet;
mod protocol;
#[cfg(feature = "redis")]
mod redis_server;
#[cfg(feature = "redis")]
mod redis_store;
mod refusals;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use dynata_sdk::auth_api::Secret;
use dynata_sdk::clock::TokioClock;
use dynata_sdk::store::{
    FileStore, LeaseOwner, Renew, RenewError, SharedSession, SharingPolicy, StoreFuture, StoreKey,
    StoredSession, TokenStore,
};

/// The account every test shares a session for.
pub(crate) fn key() -> StoreKey {
    StoreKey::for_account("http://127.0.0.1:1", "api", "alice")
}

/// A policy scaled to the tests' 60-second tokens.
pub(crate) fn policy() -> SharingPolicy {
    let mut policy = SharingPolicy::default();
    policy.clock_skew = Duration::from_secs(1);
    policy.fresh_for = Duration::from_secs(10);
    policy.lease_ttl = Duration::from_secs(3);
    policy.lease_wait = Duration::from_secs(20);
    policy.operation_timeout = Duration::from_millis(500);
    policy
}

/// One simulated client's view of the store.
pub(crate) fn client(store: Arc<dyn TokenStore>) -> SharedSession {
    SharedSession::new(store, key(), policy(), Arc::new(TokioClock))
}

/// A session issued now (on `shared`'s wall clock) with 60 s and 600 s tokens.
pub(crate) fn session_at(shared: &SharedSession, serial: u64) -> StoredSession {
    StoredSession::from_lifetimes(
        Secret::new(format!("access-{serial}")),
        Duration::from_secs(60),
        Secret::new(format!("refresh-{serial}")),
        Duration::from_secs(600),
        shared.wall_clock().now(),
    )
    .expect("in range")
}

/// What the fake Dynata was asked to do.
#[derive(Debug, Default)]
pub(crate) struct Renewals {
    pub(crate) logins: AtomicUsize,
    pub(crate) refreshes: AtomicUsize,
    serial: AtomicU64,
    /// The refresh tokens it was given, in order.
    pub(crate) refreshed_with: std::sync::Mutex<Vec<String>>,
}

impl Renewals {
    pub(crate) fn total(&self) -> usize {
        self.logins.load(Ordering::SeqCst) + self.refreshes.load(Ordering::SeqCst)
    }

    /// A renewal that takes `delay` and issues a new numbered session.
    pub(crate) async fn renew(
        &self,
        shared: &SharedSession,
        what: Renew,
        delay: Duration,
    ) -> Result<StoredSession, RenewError<String>> {
        match what {
            Renew::Login => self.logins.fetch_add(1, Ordering::SeqCst),
            Renew::Refresh(token) => {
                self.refreshed_with
                    .lock()
                    .expect("not poisoned")
                    .push(token.expose_secret().to_string());
                self.refreshes.fetch_add(1, Ordering::SeqCst)
            }
        };
        tokio::time::sleep(delay).await;
        let serial = self.serial.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(session_at(shared, serial))
    }
}

/// A directory under the system's temporary directory, removed on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(name: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "dynata-store-test-{}-{name}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&path);
        TempDir(path)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A test store: a `FileStore` (`inner`) with some operations changed. Each
/// operation is the inner store's unless the implementation says otherwise;
/// [`Changed`] makes it a `TokenStore` (a trait of another crate cannot be
/// implemented for every implementation of one of this crate's).
pub(crate) trait FileStoreChange: std::fmt::Debug + Send + Sync {
    fn inner(&self) -> &FileStore;

    fn load<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, Option<StoredSession>> {
        self.inner().load(key)
    }
    fn save<'a>(
        &'a self,
        key: &'a StoreKey,
        session: &'a StoredSession,
        now: SystemTime,
    ) -> StoreFuture<'a, ()> {
        self.inner().save(key, session, now)
    }
    fn remove<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, ()> {
        self.inner().remove(key)
    }
    fn try_acquire_lease<'a>(
        &'a self,
        key: &'a StoreKey,
        owner: &'a LeaseOwner,
        ttl: Duration,
        now: SystemTime,
    ) -> StoreFuture<'a, bool> {
        self.inner().try_acquire_lease(key, owner, ttl, now)
    }
    fn extend_lease<'a>(
        &'a self,
        key: &'a StoreKey,
        owner: &'a LeaseOwner,
        ttl: Duration,
        now: SystemTime,
    ) -> StoreFuture<'a, bool> {
        self.inner().extend_lease(key, owner, ttl, now)
    }
    fn release_lease<'a>(
        &'a self,
        key: &'a StoreKey,
        owner: &'a LeaseOwner,
    ) -> StoreFuture<'a, bool> {
        self.inner().release_lease(key, owner)
    }
    fn load_rejected_login<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, Option<Vec<u8>>> {
        self.inner().load_rejected_login(key)
    }
    fn save_rejected_login<'a>(
        &'a self,
        key: &'a StoreKey,
        record: &'a [u8],
        ttl: Duration,
        now: SystemTime,
    ) -> StoreFuture<'a, ()> {
        self.inner().save_rejected_login(key, record, ttl, now)
    }
    fn remove_rejected_login<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, ()> {
        self.inner().remove_rejected_login(key)
    }
    fn remove_expired_rejected_login<'a>(
        &'a self,
        key: &'a StoreKey,
        seen: &'a [u8],
    ) -> StoreFuture<'a, ()> {
        self.inner().remove_expired_rejected_login(key, seen)
    }
    fn wait_for_change<'a>(&'a self, key: &'a StoreKey, at_most: Duration) -> StoreFuture<'a, ()> {
        self.inner().wait_for_change(key, at_most)
    }
}

/// A [`FileStoreChange`] as a `TokenStore`; derefs to it, for its fields.
#[derive(Debug)]
pub(crate) struct Changed<S>(pub(crate) S);

impl<S> std::ops::Deref for Changed<S> {
    type Target = S;
    fn deref(&self) -> &S {
        &self.0
    }
}

impl<S: FileStoreChange> TokenStore for Changed<S> {
    fn load<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, Option<StoredSession>> {
        FileStoreChange::load(&self.0, key)
    }
    fn save<'a>(
        &'a self,
        key: &'a StoreKey,
        session: &'a StoredSession,
        now: SystemTime,
    ) -> StoreFuture<'a, ()> {
        FileStoreChange::save(&self.0, key, session, now)
    }
    fn remove<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, ()> {
        FileStoreChange::remove(&self.0, key)
    }
    fn try_acquire_lease<'a>(
        &'a self,
        key: &'a StoreKey,
        owner: &'a LeaseOwner,
        ttl: Duration,
        now: SystemTime,
    ) -> StoreFuture<'a, bool> {
        FileStoreChange::try_acquire_lease(&self.0, key, owner, ttl, now)
    }
    fn extend_lease<'a>(
        &'a self,
        key: &'a StoreKey,
        owner: &'a LeaseOwner,
        ttl: Duration,
        now: SystemTime,
    ) -> StoreFuture<'a, bool> {
        FileStoreChange::extend_lease(&self.0, key, owner, ttl, now)
    }
    fn release_lease<'a>(
        &'a self,
        key: &'a StoreKey,
        owner: &'a LeaseOwner,
    ) -> StoreFuture<'a, bool> {
        FileStoreChange::release_lease(&self.0, key, owner)
    }
    fn load_rejected_login<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, Option<Vec<u8>>> {
        FileStoreChange::load_rejected_login(&self.0, key)
    }
    fn save_rejected_login<'a>(
        &'a self,
        key: &'a StoreKey,
        record: &'a [u8],
        ttl: Duration,
        now: SystemTime,
    ) -> StoreFuture<'a, ()> {
        FileStoreChange::save_rejected_login(&self.0, key, record, ttl, now)
    }
    fn remove_rejected_login<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, ()> {
        FileStoreChange::remove_rejected_login(&self.0, key)
    }
    fn remove_expired_rejected_login<'a>(
        &'a self,
        key: &'a StoreKey,
        seen: &'a [u8],
    ) -> StoreFuture<'a, ()> {
        FileStoreChange::remove_expired_rejected_login(&self.0, key, seen)
    }
    fn wait_for_change<'a>(&'a self, key: &'a StoreKey, at_most: Duration) -> StoreFuture<'a, ()> {
        FileStoreChange::wait_for_change(&self.0, key, at_most)
    }
}
