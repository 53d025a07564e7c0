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

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use dynata_sdk::auth_api::Secret;
use dynata_sdk::clock::TokioClock;
use dynata_sdk::store::{
    Renew, RenewError, SharedSession, SharingPolicy, StoreKey, StoredSession, TokenStore,
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
