//! The fleet protocol: how a client renews its session through a store, so
//! that however many processes share the store, one of them renews per expiry
//! window and the others adopt what it wrote.
//!
//! The steps are on [`SharedSession`].

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use dynata_auth_api::Secret;

use super::rejection::{LoginRejection, Record};
use super::{LeaseOwner, StoreError, StoreKey, StoredSession, TokenStore};
use crate::clock::{Clock, first_of};
use crate::token::bearer_header;

/// The first wait between looks at a lease someone else holds; it doubles up
/// to [`MAX_POLL`].
const FIRST_POLL: Duration = Duration::from_millis(10);
const MAX_POLL: Duration = Duration::from_millis(250);

/// How a [`SharedSession`] judges stored sessions and treats its store.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SharingPolicy {
    /// How far hosts' wall clocks may disagree: every stored expiry is taken
    /// as this much earlier (at most a tenth of the token's lifetime, so that
    /// short-lived tokens stay usable). Default 5 s.
    pub clock_skew: Duration,
    /// A stored session is adopted only with at least this long left on its
    /// access token (at most half its lifetime): the client's soft refresh
    /// window. Default 5 minutes.
    pub fresh_for: Duration,
    /// How long a renewal lease lasts unless its holder extends it: the
    /// longest a process that dies while renewing delays the others. A live
    /// holder extends it every third of this while its renewal runs, however
    /// long that takes. Default 15 s.
    pub lease_ttl: Duration,
    /// The longest a client waits for another process's renewal before it
    /// renews on its own (a lease that never ends: a store's fault), on the
    /// client's clock. A live holder keeps its lease as long as its renewal
    /// runs, which a client bounds by its `renewal_timeout`; a `Client` built
    /// without a policy of its own sets this to that. (A `Client` that can
    /// log in also stops waiting with a quarter of its own renewal's time
    /// left, to log in on its own: see [`SharedSession::renew_by`].)
    /// Default 60 s.
    pub lease_wait: Duration,
    /// The time limit of every store operation. Default 1 s.
    pub operation_timeout: Duration,
    /// At most one warning about the store per this interval; the rest go to
    /// `debug`. Default 60 s.
    pub warning_interval: Duration,
}

impl SharingPolicy {
    /// The skew allowance for `session`: [`SharingPolicy::clock_skew`], at
    /// most a tenth of the access token's lifetime, so that a short-lived
    /// session stays usable. Every expiry read from the store is made this
    /// much earlier.
    pub fn skew_for(&self, session: &StoredSession) -> Duration {
        self.clock_skew.min(session.access_lifetime() / 10)
    }
}

impl Default for SharingPolicy {
    fn default() -> Self {
        SharingPolicy {
            clock_skew: Duration::from_secs(5),
            fresh_for: Duration::from_secs(5 * 60),
            lease_ttl: Duration::from_secs(15),
            lease_wait: Duration::from_secs(60),
            operation_timeout: Duration::from_secs(1),
            warning_interval: Duration::from_secs(60),
        }
    }
}

/// What the caller's renewal should do.
#[derive(Debug)]
pub enum Renew {
    /// Refresh with this (the newest known) refresh token.
    Refresh(Secret),
    /// Log in with the password: no refresh token is usable.
    Login,
}

/// A failed renewal, as the caller's renewal reports it.
#[derive(Debug)]
#[non_exhaustive]
pub enum RenewError<E> {
    /// Dynata refused the refresh token (expired, revoked, or already used by
    /// another process). The protocol looks at the store again, then logs in;
    /// if the store still holds the session with that refresh token, it is
    /// dead, and removed first, even when the login cannot be made. So it is
    /// only what certainly spent the refresh token (Dynata's `invalid_grant`,
    /// or an answer that cannot be used), never a gateway's `401` that may
    /// not have reached Dynata.
    RefreshRejected(E),
    /// Any other failure; given back to the caller as is.
    Failed(E),
    /// A login was asked for but the caller has no password. The protocol
    /// never answers it by sending a refresh token another process may be
    /// using: the caller gets this error, and tries the store again on its
    /// next renewal.
    CannotLogIn(E),
}

impl<E> RenewError<E> {
    /// The caller's error, whatever the kind.
    pub fn into_inner(self) -> E {
        match self {
            RenewError::RefreshRejected(error)
            | RenewError::Failed(error)
            | RenewError::CannotLogIn(error) => error,
        }
    }
}

/// Where the session [`SharedSession::renew`] returned came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// Another process renewed it; nothing was sent to Dynata.
    Adopted,
    /// This process renewed it under the lease, and stored it.
    Renewed,
    /// This process renewed it without the store, which failed.
    RenewedAlone,
}

/// The outcome of [`SharedSession::renew`].
#[derive(Clone, Debug)]
pub struct Shared {
    /// The session to use.
    pub session: StoredSession,
    /// Where it came from.
    pub source: Source,
}

/// The wall clock a [`SharedSession`] reads. Stored times are wall-clock
/// times, compared between processes: this is the system's clock, read at
/// each call, so that it follows a suspend or a step of the system clock
/// (NTP) as every other process's does. A client whose own [`Clock`] runs
/// apart from real time (a test's `ManualClock`, feature `test-util`, or
/// tokio's paused time) moves it by as much as that clock is ahead of (or
/// behind) the system's monotonic clock, so clients sharing one such clock
/// agree.
#[derive(Clone)]
pub struct WallClock {
    clock: Arc<dyn Clock>,
    /// The system's wall clock (replaced in unit tests).
    system: fn() -> SystemTime,
}

impl WallClock {
    /// The system's wall clock, moved along with `clock` where that clock
    /// runs apart from real time.
    pub fn following(clock: Arc<dyn Clock>) -> Self {
        WallClock::reading(clock, SystemTime::now)
    }

    fn reading(clock: Arc<dyn Clock>, system: fn() -> SystemTime) -> Self {
        WallClock { clock, system }
    }

    /// The wall-clock time now.
    pub fn now(&self) -> SystemTime {
        let system = (self.system)();
        let (clock, real) = (self.clock.now(), Instant::now());
        // The same instant, give or take the nanoseconds between two reads,
        // unless the client's clock is a test's.
        let shifted = if clock >= real {
            system.checked_add(clock - real)
        } else {
            system.checked_sub(real - clock)
        };
        shifted.unwrap_or(system)
    }

    /// The monotonic clock it follows, read now.
    pub fn now_instant(&self) -> Instant {
        self.clock.now()
    }
}

impl fmt::Debug for WallClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WallClock")
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

/// One client's view of a shared session: a store, the account's key, and
/// the policy.
///
/// On the slow path only (the cached-token fast path never sees a store):
/// 1. Load. A stored session that is fresh enough (beyond the soft window,
///    less the clock-skew allowance) and is not the one the caller already
///    has is adopted: no request to Dynata.
/// 2. Otherwise take the lease, load again (a holder may have just written),
///    refresh with the newest refresh token (stored or local), save, release.
///    A refused refresh (another process used that single-use token) looks at
///    the store once more before falling back to the password; that refresh
///    token is never sent again, and a stored session that still holds it is
///    removed.
///    The lease is extended while the renewal runs, so a slow one keeps it.
/// 3. If another process holds the lease, wait for a change (bounded), adopt
///    what it writes; if it died, its lease expires and a waiter takes over.
///    A waiter that stops waiting (the store failed, the lease outlived
///    [`SharingPolicy::lease_wait`], or the caller's time to stop waiting
///    came: see [`SharedSession::renew_by`]) logs in on its own: the
///    refresh token is the holder's to use. A client without a password then fails with
///    its login's error (through a `Client`, which lets it wait to its
///    renewal's end: that renewal's timeout), and tries the store again
///    next time.
///
/// A store that fails or is slow (every operation has
/// [`SharingPolicy::operation_timeout`]) makes this renewal happen without
/// it: the call succeeds as it would have without a store, a warning is
/// logged (rate-limited), and the next renewal tries the store again. A
/// stored record that is garbage is ignored, with a warning, and overwritten.
#[derive(Debug)]
pub struct SharedSession {
    store: Arc<dyn TokenStore>,
    key: StoreKey,
    policy: SharingPolicy,
    wall: WallClock,
    warnings: Arc<Warnings>,
    /// The refresh token of the last session renewed without the store
    /// ([`Source::RenewedAlone`]): no other process has it, so it may be
    /// refreshed without the lease while the store fails.
    own_refresh_token: RememberedTokens,
    /// The last refresh tokens Dynata refused to this client: dead, so never
    /// the basis of a refresh again (a client without a password would
    /// otherwise send them on every renewal, in turn when there are two: its
    /// own and the stored one).
    refused_refresh_tokens: RememberedTokens,
    /// The last refresh tokens this client refreshed with success: spent,
    /// so a stored session holding one (a record this client's save did
    /// not replace) is older than the session it got, and never adopted.
    spent_refresh_tokens: SpentTokens,
    /// One [`SharedSession::take`] at a time: two logouts at once would both
    /// read the stored session before either removed it, and both revoke it.
    taking: tokio::sync::Mutex<()>,
}

impl SharedSession {
    /// The session of `key` in `store`, read by a client on `clock`.
    pub fn new(
        store: Arc<dyn TokenStore>,
        key: StoreKey,
        policy: SharingPolicy,
        clock: Arc<dyn Clock>,
    ) -> Self {
        SharedSession {
            store,
            key,
            warnings: Arc::new(Warnings::new(policy.warning_interval)),
            policy,
            wall: WallClock::following(clock),
            own_refresh_token: RememberedTokens::new(1),
            refused_refresh_tokens: RememberedTokens::new(REFUSED_KEPT),
            spent_refresh_tokens: SpentTokens::default(),
            taking: tokio::sync::Mutex::new(()),
        }
    }

    /// The key the session is stored under.
    pub fn key(&self) -> &StoreKey {
        &self.key
    }

    /// The policy.
    pub fn policy(&self) -> &SharingPolicy {
        &self.policy
    }

    /// The wall clock this client reads stored times with.
    pub fn wall_clock(&self) -> &WallClock {
        &self.wall
    }

    /// The skew allowance for `session` under this policy: see
    /// [`SharingPolicy::skew_for`].
    pub fn skew_for(&self, session: &StoredSession) -> Duration {
        self.policy.skew_for(session)
    }

    /// When `session`'s access and refresh tokens expire on this client's
    /// monotonic clock, both made early by the skew allowance. `None` when
    /// the access token has expired already.
    pub fn local_deadlines(&self, session: &StoredSession) -> Option<(Instant, Instant)> {
        let (now, now_instant) = (self.wall.now(), self.wall.now_instant());
        let skew = self.skew_for(session);
        let access = session.access_deadline(now, now_instant, skew)?;
        let refresh = session
            .refresh_deadline(now, now_instant, skew)
            .unwrap_or(now_instant);
        Some((access, refresh))
    }

    /// Whether `session` may be adopted now: fresh beyond the soft window,
    /// counted with the skew allowance.
    pub fn is_fresh(&self, session: &StoredSession) -> bool {
        let need = self.policy.fresh_for.min(session.access_lifetime() / 2);
        session.access_remaining(self.wall.now(), self.skew_for(session)) > need
    }

    /// A stored session this client may adopt in place of `local` (its own,
    /// which it wants replaced), if there is one: fresh beyond the soft
    /// window. Sends nothing to Dynata. A failing store is `None`, with a
    /// warning.
    pub async fn load_adoptable(&self, local: Option<&StoredSession>) -> Option<StoredSession> {
        self.load_adoptable_or_gone(local).await.0
    }

    /// [`Self::load_adoptable`], and also whether the store answered that it
    /// holds no session at all (a logout, or a dead session removed): the
    /// fleet's session is gone.
    pub(crate) async fn load_adoptable_or_gone(
        &self,
        local: Option<&StoredSession>,
    ) -> (Option<StoredSession>, bool) {
        match self.load().await {
            Ok(Some(session)) if self.adoptable(&session, local) => {
                (Some(self.adopted(session).session), false)
            }
            Ok(stored) => (None, stored.is_none()),
            Err(error) => {
                self.warnings.warn("load", &error);
                (None, false)
            }
        }
    }

    /// Takes the stored session out of the store (logout), and returns it if
    /// it could be read, for the caller to revoke: the fleet's session may be
    /// one another process obtained. A failing store is a warning.
    ///
    /// The take holds the renewal lease, waiting for it as a renewal does:
    /// the store offers no compare-and-remove, and a session another process
    /// renewed and stored between the read and the removal would be removed
    /// unread, live at Dynata and never revoked. A renewal under way is
    /// waited for and its session taken. If the lease cannot be had (the
    /// store fails, or a holder outlives [`SharingPolicy::lease_wait`]), the
    /// take goes ahead without it.
    pub async fn take(&self) -> Option<StoredSession> {
        self.take_until(None).await
    }

    /// [`Self::take`], but nothing at all once the client's clock has
    /// reached `until`: a take that resumes after its caller's time is up
    /// (a logout stranded on a runtime nobody drove meanwhile) would remove
    /// and revoke a session obtained after it. The time is looked at after
    /// the wait for the lease and after the load; a removal already sent
    /// when it passes goes through.
    pub async fn take_until(&self, until: Option<Instant>) -> Option<StoredSession> {
        let _one_at_a_time = self.taking.lock().await;
        let lease = match self
            .wait_for_lease(until, || async { Ok::<Option<()>, _>(None) })
            .await
        {
            LeaseWait::Held(lease) => Some(lease),
            LeaseWait::Ended(()) => None,
            LeaseWait::Failed(operation, error) => {
                self.warnings.warn(operation, &error);
                None
            }
        };
        let taken = if self.too_late(until) {
            None
        } else {
            let stored = match self.load().await {
                Ok(stored) => stored,
                Err(error) => {
                    self.warnings.warn("load", &error);
                    None
                }
            };
            // Again: the load itself may have outlasted `until`.
            if self.too_late(until) {
                None
            } else {
                self.remove().await;
                stored
            }
        };
        if let Some(lease) = lease {
            lease.release(self).await;
        }
        taken
    }

    /// Whether the client's clock has reached `until`, with a warning if so.
    fn too_late(&self, until: Option<Instant>) -> bool {
        let late = until.is_some_and(|until| self.wall.now_instant() >= until);
        if late {
            tracing::warn!(
                key = %self.key,
                "a logout took longer than it could (was its runtime not driven?); it leaves the stored session as it is"
            );
        }
        late
    }

    /// Removes the stored session (a logout, or a session Dynata refused to
    /// refresh). A failing store is a warning: the logout itself has revoked
    /// the tokens at Dynata.
    pub async fn remove(&self) {
        let removed = self.bounded("remove", self.store.remove(&self.key)).await;
        if let Err(error) = removed {
            self.warnings.warn("remove", &error);
        }
    }

    /// A rejection of these credentials that a process sharing the store
    /// recorded and that is still in force: the caller answers with it instead
    /// of sending them again. `None` when there is none, it has expired, it
    /// was for other credentials (a corrected password), or the store fails.
    pub async fn rejected_login(
        &self,
        password: &Secret,
        client_secret: Option<&Secret>,
    ) -> Option<LoginRejection> {
        let loaded = self
            .bounded("load rejection", self.store.load_rejected_login(&self.key))
            .await;
        let bytes = match loaded {
            Ok(bytes) => bytes?,
            Err(error) => {
                self.warnings.warn("load rejection", &error);
                return None;
            }
        };
        let Some(record) = Record::decode(&bytes) else {
            tracing::debug!(key = %self.key, "ignoring a rejected-login record this build cannot read");
            return None;
        };
        let Some(rejection) = record.in_force(self.wall.now()) else {
            // Expired (or claiming more than a day): nothing to keep
            // (FileStore would keep it for ever),
            // unless another process has just recorded a fresh refusal.
            let _ = self
                .bounded(
                    "remove rejection",
                    self.store.remove_expired_rejected_login(&self.key, &bytes),
                )
                .await;
            return None;
        };
        let (password, client_secret) = (password.clone(), client_secret.cloned());
        // The comparison is a slow hash, kept off the runtime's threads.
        super::off_the_runtime(move || {
            record
                .matches(&password, client_secret.as_ref())
                .then_some(rejection)
        })
        .await
        .ok()
        .flatten()
    }

    /// Records that Dynata rejected these credentials, so that no process
    /// sharing the store sends them again before `rejection.until`. A failing
    /// store is a warning: each process still remembers its own rejections.
    pub async fn remember_rejected_login(
        &self,
        rejection: LoginRejection,
        password: &Secret,
        client_secret: Option<&Secret>,
    ) {
        let now = self.wall.now();
        let Ok(ttl) = rejection.until.duration_since(now) else {
            return;
        };
        let (password, client_secret) = (password.clone(), client_secret.cloned());
        let record = super::off_the_runtime(move || {
            Record::new(rejection, &password, client_secret.as_ref()).encode()
        })
        .await;
        let Ok(record) = record else {
            return;
        };
        let saved = self
            .bounded(
                "save rejection",
                self.store.save_rejected_login(&self.key, &record, ttl, now),
            )
            .await;
        if let Err(error) = saved {
            self.warnings.warn("save rejection", &error);
        }
    }

    /// A session fresher than `local` (the caller's current one, if any,
    /// which it wants replaced), renewed by `renew` only if no other process
    /// has just done so. `renew` is called at most twice: a refresh, and a
    /// login if that refresh is refused.
    pub async fn renew<E, F, Fut>(
        &self,
        local: Option<&StoredSession>,
        renew: F,
    ) -> Result<Shared, E>
    where
        F: FnMut(Renew) -> Fut,
        Fut: Future<Output = Result<StoredSession, RenewError<E>>>,
    {
        self.renew_by(local, None, renew).await
    }

    /// [`Self::renew`], waiting for another process's renewal at most until
    /// `stop_waiting_at` on the client's clock (and at most
    /// [`SharingPolicy::lease_wait`]). A client whose renewal must end by a
    /// deadline, and that can log in, stops waiting in time to renew on its
    /// own: a lease that never ends (a store's fault) then delays its
    /// renewals without failing them.
    pub async fn renew_by<E, F, Fut>(
        &self,
        local: Option<&StoredSession>,
        stop_waiting_at: Option<Instant>,
        renew: F,
    ) -> Result<Shared, E>
    where
        F: FnMut(Renew) -> Fut,
        Fut: Future<Output = Result<StoredSession, RenewError<E>>>,
    {
        let stored = match self.load().await {
            Ok(stored) => stored,
            Err(error) if error.is_unusable_content() => {
                self.warnings.warn("load", &error);
                None
            }
            Err(error) => return self.renew_alone(local, renew, "load", &error).await,
        };
        if let Some(session) = stored.filter(|s| self.adoptable(s, local)) {
            return Ok(self.adopted(session));
        }

        let waited = self
            .wait_for_lease(stop_waiting_at, || async {
                match self.load().await {
                    Ok(Some(session)) if self.adoptable(&session, local) => {
                        Ok(Some(self.adopted(session)))
                    }
                    Ok(_) => Ok(None),
                    Err(error) if error.is_unusable_content() => {
                        self.warnings.warn("load", &error);
                        Ok(None)
                    }
                    Err(error) => Err(("load", error)),
                }
            })
            .await;
        match waited {
            LeaseWait::Held(lease) => self.renew_holding_lease(lease, local, renew).await,
            LeaseWait::Ended(shared) => Ok(shared),
            LeaseWait::Failed(operation, error) => {
                self.renew_alone(local, renew, operation, &error).await
            }
        }
    }

    /// Waits for the renewal lease, up to [`SharingPolicy::lease_wait`] and
    /// `stop_at`, polling the store for a change. After each wait, `between`
    /// may end the wait with a value (a renewal: the session another process
    /// stored meanwhile).
    async fn wait_for_lease<T, B, BetweenFut>(
        &self,
        stop_at: Option<Instant>,
        mut between: B,
    ) -> LeaseWait<T>
    where
        B: FnMut() -> BetweenFut,
        BetweenFut: Future<Output = Result<Option<T>, (&'static str, StoreError)>>,
    {
        // On the client's clock, as the renewal's own time limit is.
        let started = self.wall.now_instant();
        // No deadline at all for a wait too long for the clock.
        let patience = started.checked_add(self.policy.lease_wait);
        let give_up_at = match (patience, stop_at) {
            (Some(patience), Some(stop_at)) => Some(patience.min(stop_at)),
            (patience, stop_at) => patience.or(stop_at),
        };
        let mut poll = FIRST_POLL;
        let mut waiting = false;
        loop {
            match self.try_acquire().await {
                Ok(Some(lease)) => {
                    if waiting {
                        let waited = self.wall.now_instant().saturating_duration_since(started);
                        tracing::debug!(
                            key = %self.key,
                            waited_ms = waited.as_millis(),
                            "the renewal lease is free again (its holder ended, or its time ran out)"
                        );
                    }
                    return LeaseWait::Held(lease);
                }
                Ok(None) if !waiting => {
                    waiting = true;
                    tracing::debug!(
                        key = %self.key,
                        "another process holds the renewal lease; waiting for the session it stores"
                    );
                }
                Ok(None) => {}
                Err(error) => return LeaseWait::Failed("acquire", error),
            }
            if give_up_at.is_some_and(|at| self.wall.now_instant() >= at) {
                let error = StoreError::Timeout {
                    operation: "lease",
                    after: self.wall.now_instant().saturating_duration_since(started),
                };
                return LeaseWait::Failed("wait for the lease", error);
            }
            let poll_for = poll.min(self.policy.lease_ttl);
            // The wait itself may take `poll_for`; only beyond it is the store slow.
            let limit = poll_for.saturating_add(self.policy.operation_timeout);
            let waited =
                tokio::time::timeout(limit, self.store.wait_for_change(&self.key, poll_for))
                    .await
                    .unwrap_or(Err(StoreError::Timeout {
                        operation: "wait",
                        after: limit,
                    }));
            if let Err(error) = waited {
                return LeaseWait::Failed("wait", error);
            }
            poll = (poll * 2).min(MAX_POLL);
            match between().await {
                Ok(Some(value)) => return LeaseWait::Ended(value),
                Ok(None) => {}
                Err((operation, error)) => return LeaseWait::Failed(operation, error),
            }
        }
    }

    /// Step 2: this client holds the lease, and keeps it until it is done.
    async fn renew_holding_lease<E, F, Fut>(
        &self,
        lease: HeldLease,
        local: Option<&StoredSession>,
        renew: F,
    ) -> Result<Shared, E>
    where
        F: FnMut(Renew) -> Fut,
        Fut: Future<Output = Result<StoredSession, RenewError<E>>>,
    {
        let save_under_way = Mutex::new(None);
        let outcome = self
            .keeping_lease(
                &lease.owner,
                self.renew_under_lease(local, renew, &save_under_way),
            )
            .await;
        let save = save_under_way
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(save) = save {
            // A save that outlasted its time limit may still land (a
            // `FileStore` job held up by `fsync`, a Redis `SET` answered
            // late): released now, or left to run out before it lands, the
            // lease would let another process read the record before it and
            // refresh with the refresh token just spent. Kept until the
            // save ends instead (in the background: the session is this
            // renewal's already), at most as long as a waiter waits for it.
            self.keep_lease_until_saved(lease, save);
            tracing::debug!(
                key = %self.key,
                "the save outlasted its time limit: the renewal lease is kept until it ends"
            );
        } else {
            lease.release(self).await;
        }
        outcome
    }

    /// Keeps `lease`, extended as [`Self::keeping_lease`] does, until `save`
    /// has ended, then gives it back; if it has not by
    /// [`SharingPolicy::lease_wait`], leaves it to run out (a waiter has
    /// given up waiting by then, and logs in rather than refresh).
    fn keep_lease_until_saved(&self, lease: HeldLease, save: tokio::task::JoinHandle<()>) {
        let (policy, wall, warnings) = (
            self.policy.clone(),
            self.wall.clone(),
            Arc::clone(&self.warnings),
        );
        tokio::spawn(async move {
            let saved = {
                let kept = first_of(
                    save,
                    extend_until_lost(
                        &lease.store,
                        &lease.key,
                        &lease.owner,
                        &policy,
                        &wall,
                        &warnings,
                    ),
                );
                let patience = async {
                    let wait = policy.lease_wait;
                    let _ = first_of(wall.clock.sleep(wait), tokio::time::sleep(wait)).await;
                };
                first_of(kept, patience).await
            };
            match saved {
                // Dropped held: given back (see `HeldLease`'s `drop`).
                Some(Some(_)) => drop(lease),
                // Lost, or the save outlasted every waiter's patience.
                Some(None) | None => lease.leave_to_run_out(),
            }
        });
    }

    async fn renew_under_lease<E, F, Fut>(
        &self,
        local: Option<&StoredSession>,
        mut renew: F,
        save_under_way: &Mutex<Option<tokio::task::JoinHandle<()>>>,
    ) -> Result<Shared, E>
    where
        F: FnMut(Renew) -> Fut,
        Fut: Future<Output = Result<StoredSession, RenewError<E>>>,
    {
        // A holder may have written and released just before we took the lease.
        let (stored, read) = match self.load().await {
            Ok(stored) => (stored, true),
            // Replaced below, as an empty store would be. But what it was
            // is unknown (a record sealed with another fleet's key, say,
            // written over a session renewed from `local`), so, as on a
            // store failure, no shared refresh token is sent: only one of
            // a session this client renewed alone.
            Err(error) if error.is_unusable_content() => {
                self.warnings.warn("load", &error);
                (None, false)
            }
            // What the store holds is unknown: it may be a session renewed
            // from `local` by another process, whose refresh token is spent.
            // As on every other store failure, send no shared refresh token.
            Err(error) => return self.renew_alone(local, renew, "load", &error).await,
        };
        if let Some(session) = stored.as_ref().filter(|s| self.adoptable(s, local)) {
            return Ok(self.adopted(session.clone()));
        }
        let basis = self
            .newest_refreshable(stored.as_ref(), local)
            .filter(|basis| read || self.own_refresh_token.contains(&basis.refresh_token));
        let session = match basis {
            Some(basis) => match renew(Renew::Refresh(basis.refresh_token.clone())).await {
                Ok(session) => {
                    self.spent_refresh_tokens.remember(basis, self.wall.now());
                    session
                }
                Err(RenewError::Failed(error) | RenewError::CannotLogIn(error)) => {
                    return Err(error);
                }
                Err(RenewError::RefreshRejected(_)) => {
                    self.refused_refresh_tokens.remember(&basis.refresh_token);
                    match self.load().await {
                        // Still stored, the session is dead: out of the
                        // store, no process adopts its access token (revoked,
                        // or ending) any more, even if this client cannot log
                        // in. (Only a writer that skips the lease, which every
                        // save of the protocol and of the command line takes,
                        // could land between the load and the removal.)
                        Ok(Some(session)) if session.refresh_token == basis.refresh_token => {
                            self.remove().await;
                            login(&mut renew).await?
                        }
                        // Another process may have used that refresh token
                        // and stored what it got: take that before the
                        // password.
                        Ok(Some(session)) if self.adoptable(&session, local) => {
                            return Ok(self.adopted(session));
                        }
                        _ => login(&mut renew).await?,
                    }
                }
            },
            None => login(&mut renew).await?,
        };
        // In a task of its own, so that one that outlasts its time limit
        // can be seen to end (see `renew_holding_lease`).
        let (store, key, to_save, now) = (
            Arc::clone(&self.store),
            self.key.clone(),
            session.clone(),
            self.wall.now(),
        );
        let (answer, answered) = tokio::sync::oneshot::channel();
        let job = tokio::spawn(async move {
            let _ = answer.send(store.save(&key, &to_save, now).await);
        });
        let saved = self
            .bounded("save", async {
                let saved = answered.await;
                saved.unwrap_or_else(|_| {
                    Err(StoreError::Unavailable {
                        message: "the save ended without an answer".into(),
                    })
                })
            })
            .await;
        if matches!(saved, Err(StoreError::Timeout { .. })) {
            // Still under way: `job` ends when it does.
            *save_under_way
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(job);
        }
        if let Err(error) = saved {
            self.warnings.warn("save", &error);
        } else {
            self.warnings.recovered();
        }
        Ok(Shared {
            session,
            source: Source::Renewed,
        })
    }

    /// Runs `work` while extending the lease every third of its time to live:
    /// a renewal that takes longer than the lease (a server's `Retry-After`,
    /// a slow answer) must not let another process take the lease and send
    /// the same single-use refresh token.
    async fn keeping_lease<T>(&self, owner: &LeaseOwner, work: impl Future<Output = T>) -> T {
        let mut work = pin!(work);
        // Extending never ends by itself: the work always comes first.
        match first_of(work.as_mut(), self.extend_lease_until_lost(owner)).await {
            Some(value) => value,
            None => work.await,
        }
    }

    async fn extend_lease_until_lost(&self, owner: &LeaseOwner) {
        extend_until_lost(
            &self.store,
            &self.key,
            owner,
            &self.policy,
            &self.wall,
            &self.warnings,
        )
        .await;
    }

    /// The store failed (or the lease outlived [`SharingPolicy::lease_wait`]):
    /// renew without it, and without sending a refresh token another process
    /// may be using under the lease. Only the refresh token of a session this
    /// client renewed alone is its own to refresh; any other (adopted, or
    /// stored) is shared, so the caller logs in instead, which takes nothing
    /// from anyone. A caller that cannot log in (no password) gets that
    /// error: its token serves until its hard margin, and its next renewal
    /// tries the store again.
    async fn renew_alone<E, F, Fut>(
        &self,
        local: Option<&StoredSession>,
        mut renew: F,
        operation: &str,
        error: &StoreError,
    ) -> Result<Shared, E>
    where
        F: FnMut(Renew) -> Fut,
        Fut: Future<Output = Result<StoredSession, RenewError<E>>>,
    {
        self.warnings.warn(operation, error);
        let own = self
            .newest_refreshable(None, local)
            .filter(|local| self.own_refresh_token.contains(&local.refresh_token));
        let renewed = match own {
            Some(own) => match renew(Renew::Refresh(own.refresh_token.clone())).await {
                Ok(session) => {
                    self.spent_refresh_tokens.remember(own, self.wall.now());
                    Ok(session)
                }
                Err(RenewError::RefreshRejected(_)) => {
                    self.refused_refresh_tokens.remember(&own.refresh_token);
                    renew(Renew::Login).await
                }
                outcome => outcome,
            },
            None => renew(Renew::Login).await,
        };
        let session = renewed.map_err(RenewError::into_inner)?;
        self.own_refresh_token.remember(&session.refresh_token);
        Ok(Shared {
            session,
            source: Source::RenewedAlone,
        })
    }

    /// Not the caller's own session (which it wants replaced: expiring, or
    /// rejected by a server) and fresh beyond the soft window.
    fn adoptable(&self, stored: &StoredSession, local: Option<&StoredSession>) -> bool {
        let own = local.is_some_and(|local| local.access_token == stored.access_token);
        !own && !self.spent_refresh_tokens.contains(&stored.refresh_token) && self.is_fresh(stored)
    }

    fn adopted(&self, session: StoredSession) -> Shared {
        self.warnings.recovered();
        tracing::debug!(key = %self.key, "adopted the session another process stored");
        Shared {
            session,
            source: Source::Adopted,
        }
    }

    /// Of the stored and the local session, the most recently issued whose
    /// refresh token is still alive (with the skew allowance) and was not
    /// refused.
    fn newest_refreshable<'s>(
        &self,
        stored: Option<&'s StoredSession>,
        local: Option<&'s StoredSession>,
    ) -> Option<&'s StoredSession> {
        let now = self.wall.now();
        [stored, local]
            .into_iter()
            .flatten()
            .filter(|s| !s.refresh_remaining(now, self.skew_for(s)).is_zero())
            .filter(|s| !self.refused_refresh_tokens.contains(&s.refresh_token))
            .filter(|s| !self.spent_refresh_tokens.contains(&s.refresh_token))
            .max_by_key(|s| s.issued_at)
    }

    /// The stored session. One whose access token no `Authorization` header
    /// can carry (another writer's bug, a hand-edited file) counts as
    /// expired: adopted, it would fail every call until it expired, while its
    /// refresh token may still be live, to refresh it (replacing the record)
    /// or to revoke it at a logout (the revocation carries the tokens in its
    /// body).
    async fn load(&self) -> Result<Option<StoredSession>, StoreError> {
        let mut loaded = self.bounded("load", self.store.load(&self.key)).await?;
        if let Some(session) = &mut loaded
            && bearer_header(session.access_token.expose_secret()).is_none()
        {
            // Long past, not its issue time, which a writer whose clock is
            // ahead puts in this client's future.
            session.access_expires_at = SystemTime::UNIX_EPOCH;
        }
        Ok(loaded)
    }

    /// One attempt at the lease, within the time limit, under an owner id of
    /// its own: the lease if it is taken.
    ///
    /// An attempt may take the lease after its caller stopped waiting for it
    /// (Redis applies a `SET NX` it was slow to answer; a `FileStore` job
    /// held up by `fsync` finishes later; the caller's future was dropped),
    /// and a lease nobody renews under would hold every process of the fleet
    /// for its time to live. So the attempt runs to its end in a task of its
    /// own, and its answer is the [`HeldLease`] itself, which gives the
    /// lease back when dropped: unread (in the channel, or not sent), or
    /// after a failure (the store may have applied it all the same). Only
    /// that attempt's lease, as no other uses its owner id.
    async fn try_acquire(&self) -> Result<Option<HeldLease>, StoreError> {
        let lease = HeldLease {
            owner: LeaseOwner::random(),
            store: Arc::clone(&self.store),
            key: self.key.clone(),
            give_back_within: self.policy.operation_timeout,
            held: true,
        };
        let (ttl, now) = (self.policy.lease_ttl, self.wall.now());
        let (answer, answered) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            // A store that never answers is given up at the lease's time to
            // live; what it takes later is given back on the same
            // connection, after it.
            let attempt = lease
                .store
                .try_acquire_lease(&lease.key, &lease.owner, ttl, now);
            let acquired =
                tokio::time::timeout(ttl, attempt)
                    .await
                    .unwrap_or(Err(StoreError::Timeout {
                        operation: "acquire",
                        after: ttl,
                    }));
            let _ = answer.send(match acquired {
                Ok(true) => Ok(Some(lease)),
                Ok(false) => Ok(lease.not_taken()),
                Err(error) => Err(error),
            });
        });
        let limit = self.policy.operation_timeout;
        match tokio::time::timeout(limit, answered).await {
            Ok(Ok(acquired)) => acquired,
            Ok(Err(_)) => Err(StoreError::Unavailable {
                message: "the token store's lease acquisition panicked".into(),
            }),
            Err(_) => Err(StoreError::Timeout {
                operation: "acquire",
                after: limit,
            }),
        }
    }

    /// One bounded read of the account's record: whether the store answers
    /// and holds nothing unusable. See [`crate::Client::check_token_store`].
    pub async fn check(&self) -> Result<(), StoreError> {
        self.bounded("load", self.store.load(&self.key))
            .await
            .map(drop)
    }

    async fn release(&self, owner: &LeaseOwner) {
        let released = self
            .bounded("release", self.store.release_lease(&self.key, owner))
            .await;
        match released {
            Ok(true) => {}
            Ok(false) => tracing::debug!(
                key = %self.key,
                "the renewal lease had expired before its release; the renewal took longer than the lease's time to live"
            ),
            Err(error) => self.warnings.warn("release", &error),
        }
    }

    async fn bounded<T>(
        &self,
        operation: &'static str,
        future: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        bounded(&self.policy, operation, future).await
    }
}

/// `future`, a store operation, within the policy's time limit.
async fn bounded<T>(
    policy: &SharingPolicy,
    operation: &'static str,
    future: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    let limit = policy.operation_timeout;
    tokio::time::timeout(limit, future)
        .await
        .unwrap_or(Err(StoreError::Timeout {
            operation,
            after: limit,
        }))
}

/// Extends `owner`'s lease on `key` every third of its time to live, until
/// it is lost; never ends otherwise.
async fn extend_until_lost(
    store: &Arc<dyn TokenStore>,
    key: &StoreKey,
    owner: &LeaseOwner,
    policy: &SharingPolicy,
    wall: &WallClock,
    warnings: &Warnings,
) {
    let ttl = policy.lease_ttl;
    let every = (ttl / 3).max(Duration::from_millis(10));
    loop {
        // Whichever clock passes `every` first: the lease expires on the
        // client's clock for a store judging it by `now` (FileStore), in
        // real time for one keeping its own time (Redis's PX).
        let _ = first_of(wall.clock.sleep(every), tokio::time::sleep(every)).await;
        let extended = bounded(
            policy,
            "extend",
            store.extend_lease(key, owner, ttl, wall.now()),
        )
        .await;
        match extended {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(
                    key = %key,
                    "the renewal lease ran out before it could be extended (the store failed for longer than the lease lives); another process may renew at the same time"
                );
                break;
            }
            // Tried again a third later, before the lease runs out.
            Err(error) => warnings.warn("extend", &error),
        }
    }
    std::future::pending::<()>().await;
}

/// How many refused refresh tokens a [`SharedSession`] remembers. A renewal
/// chooses between two (its own and the stored one); a few more cover
/// sessions replaced while it was refused.
const REFUSED_KEPT: usize = 8;

/// The last few refresh tokens of a kind a [`SharedSession`] remembers.
struct RememberedTokens {
    tokens: Mutex<VecDeque<Secret>>,
    capacity: usize,
}

impl RememberedTokens {
    fn new(capacity: usize) -> Self {
        RememberedTokens {
            tokens: Mutex::new(VecDeque::with_capacity(capacity)),
            capacity,
        }
    }

    fn remember(&self, refresh_token: &Secret) {
        let mut tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        if tokens.contains(refresh_token) {
            return;
        }
        if tokens.len() == self.capacity {
            tokens.pop_front();
        }
        tokens.push_back(refresh_token.clone());
    }

    fn contains(&self, refresh_token: &Secret) -> bool {
        self.tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(refresh_token)
    }
}

/// The refresh tokens this client refreshed with, each kept while a stored
/// session holding it could still be adopted or refreshed (to the later of
/// its expiries, with an hour for wall-clock steps), not for a fixed count:
/// a store whose saves fail keeps the spent session in it, fresh for most
/// of its life, through any number of `401` renewals (one each 5 s).
#[derive(Default)]
struct SpentTokens {
    tokens: Mutex<VecDeque<(Secret, SystemTime)>>,
}

/// A bound on [`SpentTokens`] all the same: over 5 hours of a `401`
/// renewal every 5 s.
const SPENT_KEPT_AT_MOST: usize = 4096;

impl SpentTokens {
    fn remember(&self, spent: &StoredSession, now: SystemTime) {
        let mut tokens = self.tokens.lock().unwrap_or_else(PoisonError::into_inner);
        tokens.retain(|(_, until)| *until > now);
        if tokens
            .iter()
            .any(|(token, _)| *token == spent.refresh_token)
        {
            return;
        }
        if tokens.len() >= SPENT_KEPT_AT_MOST {
            tokens.pop_front();
        }
        let until = spent.refresh_expires_at.max(spent.access_expires_at);
        let until = until
            .checked_add(Duration::from_secs(3600))
            .unwrap_or(until);
        tokens.push_back((spent.refresh_token.clone(), until));
    }

    fn contains(&self, refresh_token: &Secret) -> bool {
        self.tokens
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .any(|(token, _)| token == refresh_token)
    }
}

/// Redacted, like the tokens themselves.
impl fmt::Debug for SpentTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SpentTokens(..)")
    }
}

/// Redacted, like the tokens themselves.
impl fmt::Debug for RememberedTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RememberedTokens(..)")
    }
}

/// How a wait for the renewal lease ended.
enum LeaseWait<T> {
    /// This client holds it.
    Held(HeldLease),
    /// The caller's check between polls ended the wait with this.
    Ended(T),
    /// The store failed in `operation`, or the wait ran out.
    Failed(&'static str, StoreError),
}

/// The renewal lease while this client holds it, under an owner id of its
/// own. Released explicitly; if dropped while held (the renewal's future
/// dropped, its caller gone; an acquisition's answer nobody read; an
/// acquisition that failed, which the store may have applied all the
/// same), released by a task of its own, so the others need not wait for
/// it to expire.
struct HeldLease {
    owner: LeaseOwner,
    store: Arc<dyn TokenStore>,
    key: StoreKey,
    give_back_within: Duration,
    held: bool,
}

impl HeldLease {
    async fn release(mut self, shared: &SharedSession) {
        self.held = false;
        shared.release(&self.owner).await;
    }

    /// Gives the lease up without releasing it: it ends at its time to live.
    fn leave_to_run_out(mut self) {
        self.held = false;
    }

    /// An attempt that did not take the lease: nothing to give back.
    fn not_taken(mut self) -> Option<HeldLease> {
        self.held = false;
        None
    }
}

impl Drop for HeldLease {
    fn drop(&mut self) {
        if !self.held {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return; // No runtime to release on: the lease expires by itself.
        };
        let (store, key, owner) = (
            Arc::clone(&self.store),
            self.key.clone(),
            self.owner.clone(),
        );
        let limit = self.give_back_within;
        runtime.spawn(async move {
            let _ = tokio::time::timeout(limit, store.release_lease(&key, &owner)).await;
        });
    }
}

async fn login<E, F, Fut>(renew: &mut F) -> Result<StoredSession, E>
where
    F: FnMut(Renew) -> Fut,
    Fut: Future<Output = Result<StoredSession, RenewError<E>>>,
{
    renew(Renew::Login).await.map_err(RenewError::into_inner)
}

/// Store warnings, at most one per interval; the rest go to `debug`.
#[derive(Debug)]
struct Warnings {
    interval: Duration,
    state: Mutex<WarningState>,
}

#[derive(Debug, Default)]
struct WarningState {
    last_warned: Option<tokio::time::Instant>,
    suppressed: u64,
    failing: bool,
}

impl Warnings {
    fn new(interval: Duration) -> Self {
        Warnings {
            interval,
            state: Mutex::default(),
        }
    }

    fn warn(&self, operation: &str, error: &StoreError) {
        let now = tokio::time::Instant::now();
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.failing = !error.is_unusable_content() || state.failing;
        let due = state
            .last_warned
            .is_none_or(|last| now.duration_since(last) >= self.interval);
        if due {
            let suppressed = std::mem::take(&mut state.suppressed);
            state.last_warned = Some(now);
            drop(state);
            if error.is_unusable_content() {
                tracing::warn!(
                    operation,
                    %error,
                    suppressed,
                    "token store: ignoring an unusable stored session; the next renewal replaces it"
                );
            } else {
                tracing::warn!(
                    operation,
                    %error,
                    suppressed,
                    "token store: renewing without it this time (the next renewal tries it again)"
                );
            }
        } else {
            state.suppressed += 1;
            drop(state);
            tracing::debug!(operation, %error, "token store failed again");
        }
    }

    /// The store answered properly: say so once, if it had been failing.
    fn recovered(&self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if std::mem::take(&mut state.failing) {
            drop(state);
            tracing::info!("token store: reachable again; sharing the session through it");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;
    use crate::clock::{Sleep, TokioClock};

    /// How far the system's wall clock has jumped, in seconds: a suspend
    /// (the monotonic clock stands still meanwhile), or an NTP step.
    static JUMPED: AtomicU64 = AtomicU64::new(0);

    fn jumping_system_clock() -> SystemTime {
        SystemTime::now() + Duration::from_secs(JUMPED.load(Ordering::Relaxed))
    }

    /// Two processes compare leases and expiry times in wall-clock time: one
    /// that had run through a suspend or a clock step must read the same
    /// time as one started after it.
    #[test]
    fn the_wall_clock_follows_a_jump_of_the_system_clock() {
        let wall = WallClock::reading(Arc::new(TokioClock), jumping_system_clock);
        let before = wall.now();
        JUMPED.store(3600, Ordering::Relaxed);
        let jump = wall.now().duration_since(before).expect("later");
        assert!(
            (Duration::from_secs(3600)..Duration::from_secs(3601)).contains(&jump),
            "moved by {jump:?}"
        );
    }

    /// A clock that moves only when told to.
    #[derive(Debug)]
    struct Stepped(Mutex<Instant>);

    impl Clock for Stepped {
        fn now(&self) -> Instant {
            *self.0.lock().expect("not poisoned")
        }

        fn sleep_until(&self, _: Instant) -> Sleep {
            Box::pin(std::future::pending())
        }
    }

    #[test]
    fn the_wall_clock_moves_with_a_test_clock() {
        let clock = Arc::new(Stepped(Mutex::new(Instant::now())));
        let wall = WallClock::following(clock.clone());
        let before = wall.now();
        *clock.0.lock().expect("not poisoned") += Duration::from_secs(600);
        let moved = wall.now().duration_since(before).expect("later");
        assert!(
            (Duration::from_secs(599)..Duration::from_secs(601)).contains(&moved),
            "moved by {moved:?}"
        );
    }
}
