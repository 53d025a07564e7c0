//! Token stores: one Dynata session shared by every process of a fleet.
//!
//! Without a store, every process logs in on its own and refreshes on its
//! own. With one, processes that use the same account (same base URL, client
//! id and username) share one token pair: one process renews it under a
//! lease while the others wait for it and then adopt it, so the fleet costs
//! Dynata one login per session and one refresh per expiry window.
//!
//! - [`TokenStore`]: what a store does (load, save, remove, a lease, waiting
//!   for a change, and the record of a rejected login). Two come with the SDK: [`FileStore`] for the processes of
//!   one machine, and `RedisStore` (feature `redis`) for a fleet.
//! - [`SharedSession`]: the protocol a client runs on its slow path (never on
//!   the cached-token fast path). A store that is unreachable, slow or holds
//!   garbage never fails a call: the client renews on its own, warns (at most
//!   once per [`SharingPolicy::warning_interval`]) and tries the store again
//!   on its next renewal.
//! - [`StoredSession`]: the pair with absolute (wall-clock) expiry times,
//!   since processes share no monotonic clock. Every use of them is made early
//!   by [`SharingPolicy::clock_skew`], so a host whose clock is a little behind
//!   never uses a token late.
//!
//! # Who can read the store can use the session
//!
//! Without an [`EncryptionKey`], a stored session is in clear. Anyone who can
//! read the file or the Redis key can, until the tokens expire:
//! - call Dynata's API as your account with the access token (up to
//!   `expiresIn`, 30 minutes in Dynata's published example), and
//! - trade the refresh token for new pairs, keeping a session alive as that
//!   account until the refresh token's lifetime runs out, and in doing so
//!   (refresh tokens are single-use) log your own processes out of it, which
//!   then fall back to the password.
//!
//! They never learn the password: stores hold no password. After Dynata
//! refuses a login, the store holds a record of it for the cooldown, with a
//! salted PBKDF2 of the password and client secret (600,000 iterations) so
//! that other processes recognise the same credentials: a slow guess at an
//! outdated password for whoever reads it. Protect the store
//! as you protect the password: [`FileStore`] creates its files `0600` in a
//! `0700` directory; give Redis a password, TLS (`rediss://`) and no network
//! exposure. With an [`EncryptionKey`] (AES-256-GCM, a fresh random nonce per
//! write), reading the store yields nothing usable without the key; every
//! process sharing the store needs the same key.
//!
//! # Who can write to the store chooses the session
//!
//! Without an [`EncryptionKey`], a stored session is not authenticated
//! either, nor bound to its account: the record names no account, and the
//! key names are predictable (a digest of the base URL, client id and
//! username). Anyone who can write to the store can therefore put a session
//! of their choosing under your account's key (copied from another
//! account's key, or their own Dynata account's), and your processes will
//! adopt it and refresh it: their calls, purchases included, then go to
//! that account. [`FileStore`] refuses files others could read, but cannot
//! tell who wrote a `0600` file (a process running as root reads anyone's).
//! With an [`EncryptionKey`] every record is sealed with its account's
//! digest, so a record copied under another key, or written without the
//! key, is refused. Use one whenever anyone but your fleet can write to the
//! store: a Redis others share, a directory others can write to.

mod codec;
mod file;
mod key;
#[cfg(feature = "redis")]
mod redis;
pub(crate) mod rejection;
mod session;
mod shared;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

use ring::rand::{SecureRandom, SystemRandom};

pub use codec::{EncryptionKey, SessionCodec};
pub use file::FileStore;
pub use key::{DEFAULT_KEY_PREFIX, StoreKey};
#[cfg(feature = "redis")]
pub use redis::RedisStore;
#[cfg(test)]
pub(crate) use rejection::CLOCKS_DIFFER_BY;
pub use rejection::LoginRejection;
pub(crate) use rejection::{LONGEST_KEPT, is_error_code, refuses_credentials};
pub use session::{StoredSession, local_deadline};
pub use shared::{Renew, RenewError, Shared, SharedSession, SharingPolicy, Source, WallClock};

/// The longest anything is kept in a store: a lease time or a token lifetime
/// longer than this (a setting of `Duration::MAX`, a server's absurd
/// `refreshExpiresIn`) counts as this, which every clock and Redis can hold.
pub(crate) const LONGEST_TTL: Duration = Duration::from_secs(10 * 365 * 24 * 60 * 60);

/// The future a [`TokenStore`] operation returns.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Where processes share a session, and the lease that lets one of them renew
/// it at a time.
///
/// Object-safe: clients hold an `Arc<dyn TokenStore>`. Implementations keep
/// every operation short (the protocol also bounds each by
/// [`SharingPolicy::operation_timeout`]) and report trouble as a
/// [`StoreError`], never by panicking.
pub trait TokenStore: Send + Sync + fmt::Debug {
    /// The session stored under `key`, if any. Content that is not a usable
    /// session is [`StoreError::Corrupt`] (or [`StoreError::Insecure`]); the
    /// protocol then treats the store as empty and overwrites it.
    fn load<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, Option<StoredSession>>;

    /// Stores `session` under `key`, replacing what was there. Stores that
    /// expire entries keep it until its refresh token expires, as counted from
    /// `now`.
    fn save<'a>(
        &'a self,
        key: &'a StoreKey,
        session: &'a StoredSession,
        now: SystemTime,
    ) -> StoreFuture<'a, ()>;

    /// Removes the session stored under `key`: after a logout, and by the
    /// lease holder when Dynata refused that session's refresh token.
    fn remove<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, ()>;

    /// Takes the renewal lease of `key` for `owner` until `ttl` after `now`,
    /// if nobody holds it. `Ok(false)`: someone else does. A holder that dies
    /// holding it delays the others until its `ttl` has passed, never longer.
    fn try_acquire_lease<'a>(
        &'a self,
        key: &'a StoreKey,
        owner: &'a LeaseOwner,
        ttl: Duration,
        now: SystemTime,
    ) -> StoreFuture<'a, bool>;

    /// Moves the lease's expiry to `ttl` after `now` if `owner` still holds
    /// it; `Ok(false)` if it does not (its time to live ran out and it may
    /// have passed to someone else). A holder calls it while its renewal
    /// runs, so a slow renewal (a server's `Retry-After`, a slow answer) never
    /// outlives its lease: another process that took the lease then would
    /// refresh with the same single-use refresh token.
    fn extend_lease<'a>(
        &'a self,
        key: &'a StoreKey,
        owner: &'a LeaseOwner,
        ttl: Duration,
        now: SystemTime,
    ) -> StoreFuture<'a, bool>;

    /// Gives up the lease if `owner` still holds it; `Ok(false)` if it had
    /// passed to someone else (its time to live ran out), who keeps it.
    fn release_lease<'a>(
        &'a self,
        key: &'a StoreKey,
        owner: &'a LeaseOwner,
    ) -> StoreFuture<'a, bool>;

    /// The record of the last login Dynata rejected for `key`'s account, as
    /// [`TokenStore::save_rejected_login`] stored it. The protocol judges its
    /// age itself; a store may drop it once its time to live has passed.
    ///
    /// The default keeps none (and [`TokenStore::save_rejected_login`]
    /// stores none): each process then remembers only its own rejections.
    fn load_rejected_login<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, Option<Vec<u8>>> {
        let _ = key;
        Box::pin(async { Ok(None) })
    }

    /// Stores `record` for `key`, replacing any, for `ttl` after `now`. The
    /// record is the protocol's, opaque to the store: the rejection, and a
    /// slow salted hash of the credentials rejected, never the credentials.
    fn save_rejected_login<'a>(
        &'a self,
        key: &'a StoreKey,
        record: &'a [u8],
        ttl: Duration,
        now: SystemTime,
    ) -> StoreFuture<'a, ()> {
        let _ = (key, record, ttl, now);
        Box::pin(async { Ok(()) })
    }

    /// Removes the rejected-login record of `key`, if any, whatever it
    /// holds: one a person asks to be ignored (`dynata login` is one
    /// deliberate try).
    fn remove_rejected_login<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, ()> {
        let _ = key;
        Box::pin(async { Ok(()) })
    }

    /// Removes the rejected-login record of `key` only if it still is `seen`
    /// (what [`TokenStore::load_rejected_login`] returned), which the
    /// protocol found expired: a fresh refusal another process recorded
    /// meanwhile stays. The default removes nothing, as suits a store that
    /// expires entries by itself (Redis).
    fn remove_expired_rejected_login<'a>(
        &'a self,
        key: &'a StoreKey,
        seen: &'a [u8],
    ) -> StoreFuture<'a, ()> {
        let _ = (key, seen);
        Box::pin(async { Ok(()) })
    }

    /// Completes when the session or lease of `key` may have changed, or after
    /// `at_most`. Waiters call it between looks at the store; the default
    /// just waits `at_most`, which makes them poll with the protocol's backoff.
    fn wait_for_change<'a>(&'a self, key: &'a StoreKey, at_most: Duration) -> StoreFuture<'a, ()> {
        let _ = key;
        Box::pin(async move {
            tokio::time::sleep(at_most).await;
            Ok(())
        })
    }
}

/// Why a store operation failed. Never carries a token or a password.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum StoreError {
    /// The store could not be reached or refused the operation (I/O error,
    /// connection refused, Redis error). The client renews on its own.
    Unavailable {
        /// What went wrong, with any password in a URL redacted.
        message: String,
    },
    /// The operation did not finish in time.
    Timeout {
        /// The operation: `load`, `save`, `acquire`, ...
        operation: &'static str,
        /// The time limit that ran out.
        after: Duration,
    },
    /// What the store holds is not a usable session: truncated, garbage, a
    /// format or key this build does not know. It is treated as absent and
    /// replaced by the next renewal.
    Corrupt {
        /// Why, without quoting the record.
        reason: String,
    },
    /// The stored session is refused because others could have read it (a
    /// token file readable by group or others). It is replaced, with safe
    /// permissions, by the next renewal.
    Insecure {
        /// Which file, and its permissions.
        message: String,
    },
    /// The store was configured wrongly (a bad URL, key or path).
    Config {
        /// What to fix.
        message: String,
    },
}

// Written out rather than derived with `thiserror` (see `crate::Error`).
impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Unavailable { message } => {
                write!(f, "the token store is unavailable: {message}")
            }
            StoreError::Timeout { operation, after } => write!(
                f,
                "the token store did not answer {operation} within {after:?}"
            ),
            StoreError::Corrupt { reason } => write!(
                f,
                "the token store holds an unusable session record ({reason}); it will be replaced"
            ),
            StoreError::Insecure { message } => {
                write!(f, "the token store is not private: {message}")
            }
            StoreError::Config { message } => {
                write!(f, "the token store is misconfigured: {message}")
            }
        }
    }
}

impl std::error::Error for StoreError {}

impl StoreError {
    /// Whether the store answered but what it holds is unusable: the protocol
    /// then treats it as empty and overwrites it.
    pub fn is_unusable_content(&self) -> bool {
        matches!(
            self,
            StoreError::Corrupt { .. } | StoreError::Insecure { .. }
        )
    }
}

/// Who holds a renewal lease: random per attempt to take it (by a
/// [`SharedSession`]), so that only the holder can release or extend it, and
/// a late attempt's lease is told apart from a later one's.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct LeaseOwner(String);

impl LeaseOwner {
    /// A fresh owner id: the process id and 128 random bits.
    pub fn random() -> Self {
        let mut bytes = [0u8; 16];
        if SystemRandom::new().fill(&mut bytes).is_err() {
            // Unreachable on supported platforms; with the process id, the
            // time in nanoseconds still tells owners apart in practice.
            let nanos = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos();
            bytes.copy_from_slice(&nanos.to_le_bytes());
        }
        LeaseOwner(format!("{}-{}", std::process::id(), codec::to_hex(&bytes)))
    }

    /// A given owner id (tests, or ids your platform already has). It must be
    /// unique to one process and one client, and one line, not empty:
    /// `FileStore` refuses another (an error, not a lease).
    pub fn new(id: impl Into<String>) -> Self {
        LeaseOwner(id.into())
    }

    /// The id, as stored in the lease.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for LeaseOwner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LeaseOwner({})", self.0)
    }
}

/// Runs blocking work (file system calls, a slow hash) on tokio's blocking
/// threads, and gives its result, or why there is none: tokio's account of
/// the panic, or of the runtime shutting down before it ran.
///
/// Every caller shares one task type: the work is boxed and answers through
/// a oneshot channel. Spawning each closure as its own task compiled tokio's
/// task machinery once per call site, a tenth of this crate's generated code
/// (`docs/build-cost.md`).
async fn off_the_runtime<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    let (answer, answered) = tokio::sync::oneshot::channel();
    let job: Box<dyn FnOnce() + Send> = Box::new(move || {
        // The receiver is gone only if the caller stopped waiting.
        let _ = answer.send(work());
    });
    // A dropped caller detaches the job, as a blocking task cannot be
    // cancelled.
    tokio::task::spawn_blocking(job)
        .await
        .map_err(|e| e.to_string())?;
    answered
        .await
        .map_err(|_| "the work ended without an answer".to_string())
}
