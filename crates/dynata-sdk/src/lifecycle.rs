//! The token lifecycle: one session shared by every clone of a client.
//!
//! The fast path is one lock-free load, four atomic reads and one read of a
//! cheap clock, so a token is never served past its hard margin whatever the
//! background tasks do (their runtime may be gone). Everything else (login,
//! refresh, failures, logout) happens on a slow path behind a mutex that is
//! never held across an `.await`, in tasks that outlive any one caller, so a
//! caller dropped mid-refresh harms nobody.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Poll;
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use dynata_auth_api::{Secret, types};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::auth_calls::{self, AuthOperation, Sent};
use crate::client::DEFAULT_REJECTED_LOGIN_COOLDOWN;
use crate::clock::{Clock, FastClock, Moment, first_of};
use crate::error::seconds_up;
use crate::retry::Failure;
use crate::store::{
    LONGEST_KEPT, LoginRejection, Renew, RenewError, SharedSession, SharingPolicy, StoreError,
    StoreKey, StoredSession, TokenStore, is_error_code, refuses_credentials,
};
use crate::token::bearer_header;
use crate::{AccessToken, Credentials, Error, RetryPolicy};

/// The settings the lifecycle runs by; see [`crate::ClientBuilder`].
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) soft_window: Duration,
    pub(crate) hard_margin: Duration,
    pub(crate) retry: RetryPolicy,
    pub(crate) rejected_login_cooldown: Option<Duration>,
    pub(crate) renewal_timeout: Duration,
}

/// A failed renewal pauses renewals at least this long, so that no server
/// answer makes callers renew more often. (Successful ones are spaced by the
/// soft window, at least half a token's life, and `expiresIn: 0` is refused.)
pub(crate) const MIN_RENEWAL_INTERVAL: Duration = Duration::from_secs(1);

/// The longest a server's `Retry-After` pauses renewals (a maintenance
/// window's hour is honoured): past it, one call asks again, and a server
/// still unavailable says how long again. A gateway's absurd value (a
/// century) must not stop a client for good.
pub(crate) const MAX_SERVER_PAUSE: Duration = Duration::from_secs(60 * 60);

/// `401`s renew the token at most once in this long: an endpoint that answers
/// `401` to every token costs one renewal per burst, not one per call.
pub(crate) const MIN_INTERVAL_BETWEEN_401_RENEWALS: Duration = Duration::from_secs(5);

/// A session's access token is served from the fast path while `FRESH`.
const FRESH: u8 = 0;
/// Past the hard margin on tokio's clock: see [`watch_expiry`].
const EXPIRING: u8 = 1;
/// Rejected with a `401` ([`Lifecycle::invalidate`]): never served again.
const INVALIDATED: u8 = 2;

/// One token pair, and when to act on it.
struct Session {
    token: AccessToken,
    refresh_token: Secret,
    /// Past this, the refresh token is taken as expired: log in instead.
    refresh_usable_until: Instant,
    /// The fast path's deadlines, in [`FastClock`] ticks: from `soft`, a call
    /// starts a background refresh; from `hard`, callers wait for a new token.
    soft: u64,
    hard: u64,
    /// The token's expiry and `refresh_usable_until` in ticks too: the fast
    /// clock counts the time the machine slept, which the client's clock
    /// may not (see [`Lifecycle::before`]).
    expires: u64,
    refresh_expires: u64,
    /// `hard`, as an instant of the client's clock.
    hard_at: Instant,
    state: AtomicU8,
    /// A background refresh was started for this session (once only).
    refresh_started: AtomicBool,
    /// Dynata refused `refresh_token`: it is dead, and never sent again.
    refresh_refused: AtomicBool,
    /// The pair with wall-clock expiry times, as a token store holds it;
    /// only with a store, which shares it with other processes.
    stored: Option<StoredSession>,
}

impl Session {
    /// Whether the fast path may hand out this session's token at `now`.
    #[inline]
    fn serves_at(&self, now: u64) -> bool {
        self.state.load(Ordering::Acquire) == FRESH && now < self.hard
    }

    /// Whether a background refresh should start now: true once, for the
    /// first call inside the soft window.
    #[inline]
    fn due_for_refresh(&self, now: u64) -> bool {
        now >= self.soft
            && !self.refresh_started.load(Ordering::Relaxed)
            && !self.refresh_started.swap(true, Ordering::AcqRel)
    }
}

/// The login or refresh under way: every caller waits on the same one.
#[derive(Clone)]
struct Flight {
    id: u64,
    outcome: watch::Receiver<Option<Result<AccessToken, Error>>>,
    /// It gives up then, [`Settings::renewal_timeout`] after it started,
    /// unless Dynata's final answer is in hand (see [`flight_outcome`]).
    deadline: Instant,
    /// Callers stop waiting for it then, and a new flight may replace it:
    /// past its deadline by [`Lifecycle::flight_grace`]. Only a flight whose
    /// runtime nobody drives is still running.
    given_up_at: Instant,
}

/// The last renewal failed; until `until`, nobody starts another.
struct Pause {
    error: Error,
    /// `None`: never (rejected credentials with no cooldown configured).
    /// Else the end, on the client's clock and in ticks of the fast clock:
    /// the pause is over when either has passed it, so that a machine that
    /// slept through a server's `Retry-After` does not wait it out again.
    until: Option<(Instant, u64)>,
}

#[derive(Default)]
struct SlowPath {
    flight: Option<Flight>,
    flights_started: u64,
    pause: Option<Pause>,
    /// Marks the current session `EXPIRING` at its hard margin.
    expiry_timer: Option<JoinHandle<()>>,
    /// Bumped by logout: a flight started before it does not install its
    /// session, and revokes it instead.
    generation: u64,
    /// One per logout that is taking its session out of the token store and
    /// letting a renewal under way end; each ends when its sender is
    /// dropped. A renewal started meanwhile would adopt the session being
    /// revoked from the store. Each holds callers at most until its instant
    /// (see [`Lifecycle::logout_hold`]): a logout stranded on a runtime
    /// nobody drives must not hold callers on other runtimes for ever.
    logouts: Vec<(watch::Receiver<()>, Instant)>,
    /// Ends when the last logout called has finished (its sender dropped):
    /// the next one returns only after it, so a second logout returns only
    /// once the first has revoked what there was to revoke.
    last_logout: Option<watch::Receiver<()>>,
    last_401_renewal: Option<Instant>,
    /// The last `401` renewal asked of Dynata ([`Lifecycle::invalidate`]);
    /// `last_401_renewal` may be later, moved by a look-up that took a
    /// session from the store ([`Lifecycle::adopt_after_refusal`]).
    last_401_renewal_at_dynata: Option<Instant>,
    /// Sessions a logout could not revoke (Dynata did not answer, or
    /// answered `5xx`): the next logout tries them again, so none is
    /// forgotten while live.
    unrevoked: Vec<Revocable>,
    /// While renewals are paused, when this client last looked at the token
    /// store for a session: at most once a [`MIN_RENEWAL_INTERVAL`].
    last_look_while_paused: Option<Instant>,
    /// When a `401` the interval kept last had this client look at the
    /// token store ([`Lifecycle::adopt_after_refusal`]): at most once a
    /// [`MIN_RENEWAL_INTERVAL`], so that an endpoint refusing every token
    /// costs a slow store one read a second, not one per call.
    last_look_after_refusal: Option<Instant>,
}

/// A renewal that failed, with the pause the server asked for.
struct Refused {
    error: Error,
    retry_after: Option<Duration>,
    /// How long renewals pause, when the refusal says so itself: a refused
    /// password recorded in the token store holds back no longer than the
    /// record lives (this client's cooldown counts from its own refusals).
    pause: Option<Duration>,
}

impl<T> From<Failure<T>> for Refused {
    fn from(failure: Failure<T>) -> Self {
        Refused {
            error: failure.error,
            retry_after: failure.retry_after,
            pause: None,
        }
    }
}

impl From<Error> for Refused {
    fn from(error: Error) -> Self {
        Refused {
            error,
            retry_after: None,
            pause: None,
        }
    }
}

pub(crate) struct Lifecycle {
    api: dynata_auth_api::Client,
    credentials: Credentials,
    settings: Settings,
    clock: Arc<dyn Clock>,
    fast_clock: FastClock,
    current: ArcSwapOption<Session>,
    slow: Mutex<SlowPath>,
    /// The session shared with other processes through a token store, if
    /// one was configured. Only renewals consult it, never the fast path.
    shared: Option<SharedSession>,
}

/// A token store, the account's key in it, and how to share through it.
pub(crate) type StoreSettings = (Arc<dyn TokenStore>, StoreKey, SharingPolicy);

impl Lifecycle {
    /// `clock` is `None` for the default one, which the fast path reads in
    /// its coarse form.
    pub(crate) fn new(
        api: dynata_auth_api::Client,
        credentials: Credentials,
        settings: Settings,
        clock: Option<Arc<dyn Clock>>,
        store: Option<StoreSettings>,
    ) -> Self {
        let coarse = clock.is_none();
        let clock = clock.unwrap_or_else(|| Arc::new(crate::clock::TokioClock));
        let shared = store
            .map(|(store, key, policy)| SharedSession::new(store, key, policy, Arc::clone(&clock)));
        Lifecycle {
            api,
            credentials,
            settings,
            fast_clock: if coarse {
                FastClock::system(&*clock)
            } else {
                FastClock::injected(&*clock)
            },
            clock,
            current: ArcSwapOption::empty(),
            slow: Mutex::default(),
            shared,
        }
    }

    /// See [`crate::Client::check_token_store`].
    pub(crate) async fn check_token_store(&self) -> Result<(), StoreError> {
        match &self.shared {
            Some(shared) => shared.check().await,
            None => Ok(()),
        }
    }

    pub(crate) fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    pub(crate) fn retry_policy(&self) -> &RetryPolicy {
        &self.settings.retry
    }

    pub(crate) fn clock(&self) -> &dyn Clock {
        &*self.clock
    }

    /// The fast path: the current token, if it is fresh. No I/O, no lock.
    /// Inside the soft window it also starts the one background refresh, so
    /// only a token in use is refreshed ahead of time.
    #[inline]
    fn fresh_token(self: &Arc<Self>) -> Option<AccessToken> {
        let guard = self.current.load();
        let session = guard.as_deref()?;
        let now = self.fast_clock.now(&*self.clock);
        if !session.serves_at(now) {
            return None;
        }
        if session.due_for_refresh(now) {
            self.refresh_in_background(session);
        }
        Some(session.token.clone())
    }

    pub(crate) async fn access_token(self: &Arc<Self>) -> Result<AccessToken, Error> {
        match self.fresh_token() {
            Some(token) => Ok(token),
            None => self.new_token().await,
        }
    }

    /// The slow path: join the login or refresh under way, or start one.
    async fn new_token(self: &Arc<Self>) -> Result<AccessToken, Error> {
        // A flight lost with its task (another runtime's, shut down while
        // this caller waited) is no answer about renewing: the caller
        // starts one on its own runtime, once.
        let mut outcome = self.join_and_wait().await;
        if outcome.as_ref().is_err_and(|lost| lost.is_none()) {
            tracing::debug!("the renewal was lost with its runtime; starting another");
            outcome = self.join_and_wait().await;
        }
        outcome.map_err(|error| error.unwrap_or_else(flight_lost))
    }

    /// Joins or starts a flight and waits for it (see [`Self::new_token`]):
    /// `Err(None)` if it was lost without an answer.
    async fn join_and_wait(self: &Arc<Self>) -> Result<AccessToken, Option<Error>> {
        let flight = loop {
            let (mut logout, until) = {
                let mut slow = self.lock_slow();
                match slow.logouts.first().cloned() {
                    Some(logout) => logout,
                    None => match self.join_or_start_flight(&mut slow).map_err(Some)? {
                        Ok(token) => return Ok(token),
                        Err(flight) => break flight,
                    },
                }
            };
            // A call made during a logout waits until the logout lets it go
            // (see `SlowPath::logouts`): then nothing of the old session is
            // left to adopt, and it starts a new one. A logout that has not
            // by the time it should have is stranded: it holds no one after.
            let let_go = first_of(logout.changed(), self.clock.sleep_until(until)).await;
            if let_go.is_none() {
                tracing::warn!(
                    "a logout has not finished in the time it could take (is its runtime still driven?); calls go on without waiting for it"
                );
                self.lock_slow()
                    .logouts
                    .retain(|(other, _)| !other.same_channel(&logout));
            }
        };
        // Whatever the renewal's failure, a token that is still valid is
        // served, as to the callers after it (see `join_or_start_flight`).
        match self.wait_for_flight(flight).await {
            Some(outcome) => outcome
                .or_else(|error| self.still_valid_token().ok_or(error))
                .map_err(Some),
            None => self.still_valid_token().ok_or(None),
        }
    }

    /// A token to serve now (`Ok`), or the flight to wait for (`Err`): the
    /// one under way, or a new one unless renewals are paused.
    fn join_or_start_flight(
        self: &Arc<Self>,
        slow: &mut SlowPath,
    ) -> Result<Result<AccessToken, Flight>, Error> {
        if let Some(session) = self.current.load_full()
            && session.serves_at(self.fast_clock.now(&*self.clock))
        {
            return Ok(Ok(session.token.clone()));
        }
        let flight = match self.live_flight(slow) {
            Some(flight) => Some(flight),
            None if self.paused(slow).is_none() => Some(self.start_flight(slow)?),
            None => {
                self.adopt_in_background(slow);
                None
            }
        };
        // Once a renewal has failed, a token that is still valid is served
        // at once rather than after the next attempt.
        if slow.pause.is_some()
            && let Some(token) = self.still_valid_token()
        {
            return Ok(Ok(token));
        }
        match flight {
            Some(flight) => Ok(Err(flight)),
            None => Err(self.paused(slow).unwrap_or_else(flight_lost)),
        }
    }

    /// The flight under way, if it can still answer. A flight whose task
    /// died (a panic, a runtime shutting down) never will, and one past its
    /// deadline has been given up (its runtime is not driven: a sync
    /// caller's, between two `block_on`s): a new one is started instead.
    fn live_flight(&self, slow: &SlowPath) -> Option<Flight> {
        let now = self.clock.now();
        slow.flight
            .clone()
            .filter(|f| f.outcome.has_changed().is_ok() && now < f.given_up_at)
    }

    /// Waits for the flight under way, if any, to end (see
    /// [`crate::Client::finish_renewal`]); its outcome is its callers'.
    pub(crate) async fn finish_renewal(&self) {
        let flight = self.live_flight(&self.lock_slow());
        if let Some(flight) = flight {
            let _ = self.wait_for(flight).await;
        }
    }

    /// The flight's outcome, or a timeout if it has none by its deadline (its
    /// runtime is stuck: it would have timed out by itself otherwise).
    async fn wait_for(&self, flight: Flight) -> Result<AccessToken, Error> {
        self.wait_for_flight(flight)
            .await
            .unwrap_or_else(|| Err(flight_lost()))
    }

    /// [`Self::wait_for`], `None` if the flight's task ended without an
    /// outcome (its runtime shut down).
    async fn wait_for_flight(&self, mut flight: Flight) -> Option<Result<AccessToken, Error>> {
        let grace = self.clock.sleep_until(flight.given_up_at);
        let outcome = flight.outcome.wait_for(Option::is_some);
        match first_of(outcome, grace).await {
            Some(Ok(outcome)) => outcome.clone(),
            Some(Err(_)) => None,
            None => Some(Err(renewal_timed_out())),
        }
    }

    /// The error of the pause in force, if renewals are paused now, with
    /// what is left of the server's wait: the whole of it would have a
    /// caller who schedules by [`Error::retry_after`] wait twice.
    fn paused(&self, slow: &SlowPath) -> Option<Error> {
        let pause = slow.pause.as_ref()?;
        let Some((until, ticks)) = pause.until else {
            return Some(not_sent_again(pause.error.clone(), None));
        };
        self.before(until, ticks).then(|| {
            let left = until
                .saturating_duration_since(self.clock.now())
                .min(self.fast_clock.until_not_before(ticks, &*self.clock));
            not_sent_again(pause.error.clone().with_wait_left(left), Some(left))
        })
    }

    /// While renewals are paused: looks in the token store, in the
    /// background, for a fresh session another process stored, and takes it.
    /// That sends nothing to Dynata; the pause stays in force, so the
    /// session is not refreshed here before the pause ends (a server's
    /// `Retry-After`, a refused password's cooldown). The caller is not
    /// held up: it gets the pause's error at once. At most once a
    /// [`MIN_RENEWAL_INTERVAL`].
    fn adopt_in_background(self: &Arc<Self>, slow: &mut SlowPath) {
        if self.shared.is_none() {
            return;
        }
        let now = self.clock.now();
        if slow
            .last_look_while_paused
            .is_some_and(|last| now < crate::clock::saturating_add(last, MIN_RENEWAL_INTERVAL))
        {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        slow.last_look_while_paused = Some(now);
        let generation = slow.generation;
        let this = Arc::clone(self);
        runtime.spawn(async move {
            let Some(shared) = &this.shared else {
                return;
            };
            let seen = this.current.load_full();
            let local = seen.as_ref().and_then(|session| session.stored.as_ref());
            let Some(stored) = shared.load_adoptable(local).await else {
                return;
            };
            let Ok(session) = this.session_from_stored(shared, stored) else {
                return;
            };
            if let Some(mut slow) = this.lock_if_unchanged(seen.as_ref(), generation) {
                this.install(&mut slow, session);
            }
        });
    }

    /// The current token if it has neither expired nor been invalidated.
    fn still_valid_token(&self) -> Option<AccessToken> {
        let session = self.current.load_full()?;
        let valid = session.state.load(Ordering::Acquire) != INVALIDATED
            && self.before(session.token.expires_at(), session.expires);
        valid.then(|| session.token.clone())
    }

    /// Whether `deadline`, an instant of the client's clock, and `ticks`, the
    /// same moment on the fast clock, are both still ahead: the client's
    /// clock is the one tests pause and move; the fast clock is the one that
    /// counts the time the machine slept, when Dynata's tokens expire all
    /// the same.
    fn before(&self, deadline: Instant, ticks: u64) -> bool {
        self.clock.now() < deadline && self.fast_clock.now(&*self.clock) < ticks
    }

    /// Called by the fast path once per session, inside its soft window.
    fn refresh_in_background(self: &Arc<Self>, session: &Session) {
        let mut slow = self.lock_slow();
        let current = self
            .current
            .load()
            .as_deref()
            .is_some_and(|c| std::ptr::eq(c, session));
        if current && self.live_flight(&slow).is_none() && self.paused(&slow).is_none() {
            tracing::debug!("the access token is in its soft window; refreshing in the background");
            // Without a runtime there is no background: the hard margin will
            // make a caller renew in the foreground.
            let _ = self.start_flight(&mut slow);
        }
    }

    /// Starts the one login or refresh that every caller will wait on. It runs
    /// in its own task, so it finishes even if every caller goes away, and it
    /// gives up at its deadline, so a hung connection cannot hold callers.
    fn start_flight(self: &Arc<Self>, slow: &mut SlowPath) -> Result<Flight, Error> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| needs_runtime())?;
        let (sender, receiver) = watch::channel(None);
        slow.flights_started += 1;
        let now = self.clock.now();
        let deadline = crate::clock::saturating_add(now, self.settings.renewal_timeout);
        let flight = Flight {
            id: slow.flights_started,
            outcome: receiver,
            deadline,
            given_up_at: crate::clock::saturating_add(deadline, self.flight_grace()),
        };
        slow.flight = Some(flight.clone());
        let (id, deadline, generation) = (flight.id, flight.deadline, slow.generation);
        let this = Arc::clone(self);
        runtime.spawn(async move {
            let superseded = || this.lock_slow().flights_started != id;
            let mut started = now;
            let mut renewed_again = false;
            let renewed = loop {
                let answered = AtomicBool::new(false);
                let renewed = flight_outcome(
                    this.renew(started, deadline, &answered),
                    this.clock.sleep_until(deadline),
                    superseded,
                    || answered.load(Ordering::Acquire),
                )
                .await
                .unwrap_or_else(|| Err(renewal_timed_out().into()));
                // A pair past its hard margin on arrival: the machine slept
                // while its answer was on the way. Installed (its refresh
                // token is the newest), and renewed once more at once, so
                // that the callers waiting get a token that lives, not the
                // failure of an answer that came late.
                if let Ok(session) = &renewed
                    && !renewed_again
                    && !this.before(session.hard_at, session.hard)
                {
                    let mut slow = this.lock_slow();
                    if slow.generation == generation && slow.flights_started == id {
                        tracing::info!(
                            "the renewal's answer arrived as the token expired (did the machine sleep?); renewing once more"
                        );
                        this.install(&mut slow, Arc::clone(session));
                        renewed_again = true;
                        started = this.clock.now();
                        continue;
                    }
                }
                break renewed;
            };
            let (outcome, orphan) = {
                let mut slow = this.lock_slow();
                if slow.flight.as_ref().is_some_and(|f| f.id == id) {
                    slow.flight = None;
                }
                // A flight given up for a newer one (its runtime was not
                // driven) says nothing about renewals now.
                let superseded = slow.flights_started != id;
                match renewed {
                    Ok(session) if slow.generation == generation => {
                        let token = session.token.clone();
                        // Past its hard margin on arrival, renewed once
                        // more: not this renewal's outcome. Installed all
                        // the same (its refresh token is the newest, the
                        // next renewal's to use), so like any token it is
                        // still served, while it lives, to a caller whose
                        // renewal failed.
                        let arrived_expired = !this.before(session.hard_at, session.hard);
                        this.install(&mut slow, session);
                        if arrived_expired {
                            let refused = Refused::from(expired_on_arrival());
                            slow.pause = Some(this.pause_after(&refused));
                            (Err(refused.error), None)
                        } else {
                            slow.pause = None;
                            (Ok(token), None)
                        }
                    }
                    Ok(session) => (Err(Error::LoggedOut), Some(session)),
                    Err(refused) => {
                        // A refused password stays refused across a logout
                        // (see `end_session`), even one that came meanwhile.
                        let still_ours =
                            slow.generation == generation || may_refuse_credentials(&refused.error);
                        if still_ours && !superseded {
                            slow.pause = Some(this.pause_after(&refused));
                        }
                        (Err(refused.error), None)
                    }
                }
            };
            // Logged out while this flight ran: its session must not outlive
            // the logout. It leaves the store now; the logout, which waits
            // for this flight, revokes it with the others, so that its caller
            // hears whether Dynata took the revocation.
            if let Some(orphan) = orphan {
                if let Some(shared) = &this.shared {
                    shared.remove().await;
                }
                this.lock_slow().unrevoked.push(Revocable::of(&orphan));
            }
            sender.send_replace(Some(outcome));
        });
        Ok(flight)
    }

    /// How long renewals pause after `refused`: the cooldown for credentials
    /// that may have been refused ([`may_refuse_credentials`]), the server's
    /// `Retry-After` (at most [`MAX_SERVER_PAUSE`]), and never less than
    /// [`MIN_RENEWAL_INTERVAL`].
    fn pause_after(&self, refused: &Refused) -> Pause {
        let length = match &refused.error {
            _ if refused.pause.is_some() => refused.pause,
            error if may_refuse_credentials(error) => self.settings.rejected_login_cooldown,
            _ => Some(
                refused
                    .retry_after
                    .unwrap_or_default()
                    .min(MAX_SERVER_PAUSE),
            ),
        }
        .map(|length| length.max(MIN_RENEWAL_INTERVAL));
        let clock = &*self.clock;
        let now = clock.now();
        Pause {
            error: refused.error.clone(),
            until: length.map(|length| {
                // Saturating: a server may ask for a pause no `Instant` can hold.
                let until = crate::clock::saturating_add(now, length);
                // Never early on the fast clock: the server's wait is the
                // least it asked for (on the client's clock it is exact).
                (until, self.fast_clock.ticks_not_before(until, clock))
            }),
        }
    }

    /// A new token pair, for the flight that started at `started`: from the
    /// token store if another process has just renewed it, else by refresh
    /// while the refresh token lives, else (or if Dynata rejects it) by
    /// password.
    /// Its retries wait only while they can end before `deadline`, the
    /// flight's: a server's `Retry-After` beyond it ends the renewal at once,
    /// with that `Retry-After` for the pause that follows (slept into, the
    /// renewal would time out, and the server's pause would be lost).
    /// It sets `answered` once Dynata's final answer is in hand (a usable
    /// pair, or the password refused) and only the token store's
    /// bookkeeping is left (see [`flight_outcome`]).
    async fn renew(
        &self,
        started: Instant,
        deadline: Instant,
        answered: &AtomicBool,
    ) -> Result<Arc<Session>, Refused> {
        let Some(shared) = &self.shared else {
            return self.renew_alone(deadline).await;
        };
        let local = self.current.load_full();
        let local = local.as_ref().and_then(|session| session.stored.as_ref());
        // A client that can log in stops waiting for another process's
        // renewal with a quarter of its own time left, and logs in on its
        // own: a lease that never ends (a store's fault) must not time out
        // every renewal. Without a password it waits to the end: what the
        // holder stores is all it can have.
        // Counted forwards from the flight's start (its task may have run
        // late): a deadline too far for the clock is capped, and a quarter
        // before the cap would be in the past. No such point (a timeout too
        // long for the clock): no early stop.
        let timeout = self.settings.renewal_timeout;
        let stop_waiting_at = self
            .credentials
            .password
            .as_ref()
            .and_then(|_| started.checked_add(timeout - timeout / 4))
            .filter(|at| *at < deadline);
        let outcome = shared
            .renew_by(local, stop_waiting_at, |what| {
                self.renew_for_store(shared, what, deadline, answered)
            })
            .await?;
        tracing::debug!(source = ?outcome.source, "renewal with a token store done");
        Ok(self.session_from_stored(shared, outcome.session)?)
    }

    /// One login or refresh on behalf of the store protocol, which decides
    /// which (the newest refresh token may be another process's).
    async fn renew_for_store(
        &self,
        shared: &SharedSession,
        what: Renew,
        deadline: Instant,
        answered: &AtomicBool,
    ) -> Result<StoredSession, RenewError<Refused>> {
        let login_failed = |refused: Refused| match refused.error {
            Error::LoginRequired => RenewError::CannotLogIn(refused),
            _ => RenewError::Failed(refused),
        };
        // How an answer that cannot be used fails the renewal: after a
        // refresh, Dynata took the refresh token, so it is spent (refused)
        // and never sent again.
        let (pair, sent_at, unusable): (_, _, fn(Refused) -> RenewError<Refused>) = match what {
            Renew::Refresh(refresh_token) => match self.refresh(&refresh_token, deadline).await {
                Ok((pair, sent_at)) => (pair, sent_at, RenewError::RefreshRejected),
                Err(failure) if spends_refresh_token(&failure) => {
                    return Err(RenewError::RefreshRejected(failure.into()));
                }
                // Not known to be Dynata's refusal: the protocol is not told
                // of one (it would take the session out of the store), and
                // the password's session is stored as this renewal's.
                Err(failure) if self.logs_in_after(&failure) => {
                    let (pair, sent_at) = self
                        .login_sharing_rejections(shared, deadline, answered)
                        .await
                        .map_err(login_failed)?;
                    (pair, sent_at, RenewError::Failed)
                }
                Err(failure) => return Err(RenewError::Failed(failure.into())),
            },
            Renew::Login => {
                let (pair, sent_at) = self
                    .login_sharing_rejections(shared, deadline, answered)
                    .await
                    .map_err(login_failed)?;
                (pair, sent_at, RenewError::Failed)
            }
        };
        let (access, refresh) = lifetimes(&pair).map_err(|error| unusable(error.into()))?;
        // Counted back by the time since it was sent on whichever clock saw
        // more of it: a sleep of the machine while the answer was on its way
        // makes the pair older, never younger.
        let now = shared.wall_clock().now();
        let sent_at = now
            .checked_sub(self.fast_clock.since(sent_at, &*self.clock))
            .unwrap_or(now);
        let session = StoredSession::from_lifetimes(
            pair.access_token,
            access,
            pair.refresh_token,
            refresh,
            sent_at,
        )
        .ok_or_else(|| unusable(Error::decode("a token lifetime is out of range").into()))?;
        // A new pair that can be used (the refresh token it replaces is
        // spent): what is left is to store it, which must not be cut short.
        // (An unusable one is followed by a login, which the deadline ends.)
        answered.store(true, Ordering::Release);
        Ok(session)
    }

    /// A stored session (adopted or renewed) on this process's clocks: its
    /// wall-clock expiry becomes a monotonic deadline made early by the skew
    /// allowance, and the windows are those of its whole lifetime.
    fn session_from_stored(
        &self,
        shared: &SharedSession,
        stored: StoredSession,
    ) -> Result<Arc<Session>, Error> {
        let (expires_at, refresh_expires_at) = shared
            .local_deadlines(&stored)
            .ok_or_else(|| Error::decode("the stored token expired before it could be used"))?;
        let clock = &*self.clock;
        let now = clock.now();
        let (soft, hard) = self.windows(stored.access_lifetime());
        let early = |at: Instant, by: Duration| at.checked_sub(by).unwrap_or(now).max(now);
        // The soft window counts from the expiry as stored, without the skew
        // allowance: it schedules a renewal at the same moment as in every
        // other process sharing the token. Validity (the hard margin) stays
        // early by the skew.
        let unskewed = stored
            .access_deadline(shared.wall_clock().now(), now, Duration::ZERO)
            .unwrap_or(expires_at);
        let hard_at = early(expires_at, hard);
        let soft_at = early(unskewed, soft).min(hard_at);
        let refresh_usable_until = early(
            refresh_expires_at,
            self.settings
                .hard_margin
                .min(stored.refresh_lifetime() / 10),
        );
        Ok(Arc::new(Session {
            token: AccessToken::new(stored.access_token.clone(), expires_at),
            refresh_token: stored.refresh_token.clone(),
            refresh_usable_until,
            soft: self.fast_clock.ticks_near(soft_at, clock),
            hard: self.fast_clock.ticks_at(hard_at, clock),
            expires: self.fast_clock.ticks_at(expires_at, clock),
            refresh_expires: self.fast_clock.ticks_at(refresh_usable_until, clock),
            hard_at,
            state: AtomicU8::new(FRESH),
            refresh_started: AtomicBool::new(false),
            refresh_refused: AtomicBool::new(false),
            stored: Some(stored),
        }))
    }

    /// [`Self::login`], unless a process sharing the store had these same
    /// credentials rejected within its cooldown: then the same rejection,
    /// without sending them. A rejection is recorded there for the others, so
    /// a fleet with an outdated password costs the identity server one failed
    /// login per cooldown, not one per process.
    async fn login_sharing_rejections(
        &self,
        shared: &SharedSession,
        deadline: Instant,
        answered: &AtomicBool,
    ) -> Result<Sent<types::TokenPair>, Refused> {
        let credentials = &self.credentials;
        let client_secret = credentials.client_secret.as_ref();
        if let Some(password) = &credentials.password
            && let Some(rejection) = shared.rejected_login(password, client_secret).await
        {
            let wait = rejection
                .until
                .duration_since(shared.wall_clock().now())
                .unwrap_or_default();
            let wait_s = seconds_up(wait);
            tracing::warn!(
                status = rejection.status,
                record_expires_in_s = wait_s,
                "the token store records that Dynata refused these same credentials; not sending them"
            );
            return Err(Refused {
                error: Error::CredentialsRejected {
                    status: rejection.status,
                    error: rejection.error,
                    description: Some(format!(
                        "not sent: the token store records that Dynata refused these same credentials to a process sharing it (this one, before a restart, or another) less than a cooldown ago; the record expires in {wait_s} s"
                    )),
                    request_id: None,
                    refreshing: false,
                },
                retry_after: None,
                pause: Some(wait),
            });
        }
        let sent = self.login(deadline).await;
        if let (Some(password), Err(failure)) = (&credentials.password, &sent)
            && let Error::CredentialsRejected { status, error, .. } = &failure.error
            && refuses_credentials(error.as_deref())
        {
            // Without a cooldown this process never tries again; the others
            // are held back for the default one, not for ever.
            let keep_for = self
                .settings
                .rejected_login_cooldown
                .unwrap_or(DEFAULT_REJECTED_LOGIN_COOLDOWN)
                .min(LONGEST_KEPT);
            // Refused: what is left is to record it, which must not be cut
            // short (cut, the password would be sent again a second later).
            answered.store(true, Ordering::Release);
            if let Some(until) = shared.wall_clock().now().checked_add(keep_for) {
                let rejection = LoginRejection {
                    status: *status,
                    error: error.clone().filter(|code| is_error_code(code)),
                    until,
                };
                shared
                    .remember_rejected_login(rejection, password, client_secret)
                    .await;
            }
        }
        sent.map_err(Refused::from)
    }

    /// A refresh with `refresh_token`.
    async fn refresh(
        &self,
        refresh_token: &Secret,
        deadline: Instant,
    ) -> Result<Sent<types::TokenPair>, Failure<Sent<types::TokenPair>>> {
        let credentials = &self.credentials;
        let body = types::RefreshRequest {
            client_id: credentials.client_id.clone(),
            refresh_token: refresh_token.clone(),
            client_secret: credentials.client_secret.clone(),
        };
        // Everything secret the request carries: a server may quote it back.
        let secrets: Vec<&Secret> = [Some(&body.refresh_token), body.client_secret.as_ref()]
            .into_iter()
            .flatten()
            .collect();
        auth_calls::send(
            AuthOperation::Refresh,
            &self.settings.retry,
            &*self.clock,
            &self.fast_clock,
            Some(deadline),
            &secrets,
            || self.api.refresh(&body),
        )
        .await
    }

    /// A login with the password; [`Error::LoginRequired`] without one.
    async fn login(
        &self,
        deadline: Instant,
    ) -> Result<Sent<types::TokenPair>, Failure<Sent<types::TokenPair>>> {
        let credentials = &self.credentials;
        let Some(password) = &credentials.password else {
            return Err(Failure::fatal(Error::LoginRequired));
        };
        let body = types::PasswordLoginRequest {
            client_id: credentials.client_id.clone(),
            username: credentials.username.clone(),
            password: password.clone(),
            client_secret: credentials.client_secret.clone(),
        };
        let secrets: Vec<&Secret> = [Some(&body.password), body.client_secret.as_ref()]
            .into_iter()
            .flatten()
            .collect();
        auth_calls::send(
            AuthOperation::Login,
            &self.settings.retry,
            &*self.clock,
            &self.fast_clock,
            Some(deadline),
            &secrets,
            || self.api.login(&body),
        )
        .await
    }

    /// Renewal without a token store: the refresh token while it lives, else
    /// (or if Dynata rejects it) the password.
    async fn renew_alone(&self, deadline: Instant) -> Result<Arc<Session>, Refused> {
        if let Some(previous) = self.current.load_full()
            && self.before(previous.refresh_usable_until, previous.refresh_expires)
            && !previous.refresh_refused.load(Ordering::Acquire)
        {
            let spent = match self.refresh(&previous.refresh_token, deadline).await {
                Ok((pair, sent_at)) => match self.session_from(pair, sent_at) {
                    Ok(session) => return Ok(session),
                    Err(unusable) => unusable.error,
                },
                Err(failure) if spends_refresh_token(&failure) => failure.error,
                // The refresh token is kept: should the login fail, the next
                // renewal sends it again.
                Err(failure) if self.logs_in_after(&failure) => {
                    let (pair, sent_at) = self.login(deadline).await?;
                    return self.session_from(pair, sent_at);
                }
                Err(failure) => return Err(failure.into()),
            };
            // Should the login fail too, the next renewal goes straight to
            // the password: the refresh token is not sent again.
            previous.refresh_refused.store(true, Ordering::Release);
            match &spent {
                Error::CredentialsRejected { status, .. } => tracing::info!(
                    status,
                    "the refresh token was rejected (invalid_grant); logging in with the password"
                ),
                unusable => tracing::warn!(
                    error = %unusable,
                    "the refresh's answer cannot be used, and it spent the refresh token; logging in with the password"
                ),
            }
        }
        let (pair, sent_at) = self.login(deadline).await?;
        self.session_from(pair, sent_at)
    }

    /// Whether a refresh that failed without spending its token
    /// ([`may_refuse_refresh`]) is followed by a login: only with a
    /// password. It logs that it is.
    fn logs_in_after<T>(&self, failure: &Failure<T>) -> bool {
        let logs_in = may_refuse_refresh(failure) && self.credentials.password.is_some();
        if logs_in {
            tracing::info!(
                status = failure.error.status(),
                "the refresh was refused without Dynata's invalid_grant; logging in with the password"
            );
        }
        logs_in
    }

    /// Turns a token pair into a session. Lifetimes count from `sent`, just
    /// before the request left, so network delay only makes us early; so
    /// does a sleep of the machine while the answer was on its way.
    fn session_from(&self, pair: types::TokenPair, sent: Moment) -> Result<Arc<Session>, Refused> {
        let (access_lifetime, refresh_lifetime) = lifetimes(&pair)?;
        let clock = &*self.clock;
        let now = clock.now();
        let since_sent = self.fast_clock.since(sent, clock);
        let left = |lifetime: Duration| now.checked_add(lifetime.saturating_sub(since_sent));
        let (Some(expires_at), Some(refresh_expires_at)) =
            (left(access_lifetime), left(refresh_lifetime))
        else {
            return Err(Error::decode("a token lifetime is longer than the clock can hold").into());
        };
        let early = |at: Instant, by: Duration| at.checked_sub(by).unwrap_or_else(|| now.min(at));
        let (soft, hard) = self.windows(access_lifetime);
        let hard_at = early(expires_at, hard);
        let refresh_usable_until = early(
            refresh_expires_at,
            self.settings.hard_margin.min(refresh_lifetime / 10),
        );
        Ok(Arc::new(Session {
            token: AccessToken::new(pair.access_token, expires_at),
            refresh_token: pair.refresh_token,
            refresh_usable_until,
            soft: self.fast_clock.ticks_near(early(expires_at, soft), clock),
            hard: self.fast_clock.ticks_at(hard_at, clock),
            expires: self.fast_clock.ticks_at(expires_at, clock),
            refresh_expires: self.fast_clock.ticks_at(refresh_usable_until, clock),
            hard_at,
            state: AtomicU8::new(FRESH),
            refresh_started: AtomicBool::new(false),
            refresh_refused: AtomicBool::new(false),
            stored: None,
        }))
    }

    /// The soft window and the hard margin of a token that lives `lifetime`.
    /// They shrink for short-lived tokens, so that a fresh token is never
    /// "expiring" on arrival: at most half its life is the soft window and a
    /// tenth the hard margin.
    fn windows(&self, lifetime: Duration) -> (Duration, Duration) {
        let soft = self.settings.soft_window.min(lifetime / 2);
        let hard = self.settings.hard_margin.min(lifetime / 10).min(soft);
        (soft, hard)
    }

    /// Makes `session` the current one. A pause in force stays: only a
    /// renewal that succeeded ends it.
    fn install(self: &Arc<Self>, slow: &mut SlowPath, session: Arc<Session>) {
        self.current.store(Some(Arc::clone(&session)));
        if let Some(timer) = slow.expiry_timer.take() {
            timer.abort();
        }
        slow.expiry_timer = Some(tokio::spawn(watch_expiry(session, Arc::clone(&self.clock))));
    }

    /// A `401` refused `token` within [`MIN_INTERVAL_BETWEEN_401_RENEWALS`]
    /// of a `401` renewal, so [`Self::invalidate`] kept it: looks in the
    /// token store for another fresh session (the fleet's new one, after
    /// Dynata revoked the fleet's sessions) and takes it. That sends nothing
    /// to Dynata: dropping the token instead would have this client renew
    /// it at Dynata, once per interval per process of the fleet.
    pub(crate) async fn adopt_after_refusal(self: &Arc<Self>, token: &AccessToken) {
        let Some(shared) = &self.shared else {
            return;
        };
        let (seen, generation) = {
            let mut slow = self.lock_slow();
            let now = self.clock.now();
            if slow
                .last_look_after_refusal
                .is_some_and(|last| now < crate::clock::saturating_add(last, MIN_RENEWAL_INTERVAL))
            {
                return;
            }
            match self.current.load_full() {
                Some(seen) if seen.token.same_as(token) => {
                    slow.last_look_after_refusal = Some(now);
                    (seen, slow.generation)
                }
                _ => return,
            }
        };
        let (stored, gone) = shared.load_adoptable_or_gone(seen.stored.as_ref()).await;
        let Some(stored) = stored else {
            if gone {
                // The fleet's session is gone (another process logged out,
                // or removed it dead): a session a look-up took no longer
                // holds back this client's own `401` renewal.
                let Some(mut slow) = self.lock_if_unchanged(Some(&seen), generation) else {
                    return;
                };
                slow.last_401_renewal = slow.last_401_renewal_at_dynata;
                drop(slow);
                self.invalidate(token);
            }
            return;
        };
        let Ok(session) = self.session_from_stored(shared, stored) else {
            return;
        };
        if let Some(mut slow) = self.lock_if_unchanged(Some(&seen), generation) {
            tracing::info!("the access token was refused; took the session another process stored");
            // Counts as this client's `401` renewal: the process that
            // renewed it renews next, and this one adopts what it stores,
            // rather than each process of a fleet out of step refreshing
            // at Dynata the session it has just caught up with.
            slow.last_401_renewal = Some(self.clock.now());
            self.install(&mut slow, session);
        }
    }

    /// Drops the current token if `token` is still it and no `401` renewed
    /// the token in the last [`MIN_INTERVAL_BETWEEN_401_RENEWALS`], so that a
    /// burst of `401`s (or an endpoint that refuses every token) causes one
    /// renewal. Returns whether it did.
    pub(crate) fn invalidate(&self, token: &AccessToken) -> bool {
        let mut slow = self.lock_slow();
        let Some(session) = self.current.load_full() else {
            return false;
        };
        if !session.token.same_as(token) || session.state.load(Ordering::Acquire) == INVALIDATED {
            return false;
        }
        let now = self.clock.now();
        if slow
            .last_401_renewal
            .is_some_and(|last| now < last + MIN_INTERVAL_BETWEEN_401_RENEWALS)
        {
            tracing::warn!(
                "the access token was refused again soon after a renewal; not renewing it for this"
            );
            return false;
        }
        slow.last_401_renewal = Some(now);
        slow.last_401_renewal_at_dynata = Some(now);
        session.state.store(INVALIDATED, Ordering::Release);
        tracing::info!("access token invalidated by a caller; the next call renews it");
        true
    }

    /// Ends the session of the moment of the call: clears it here and in the
    /// token store, waits for a renewal under way (which revokes what it
    /// obtains), then revokes its tokens at Dynata.
    ///
    /// After the call, it runs in a task of its own, to the end even if its
    /// caller stops waiting: cut short, it would leave a session live at
    /// Dynata (and in the store) that this client has already forgotten.
    pub(crate) async fn logout(self: &Arc<Self>) -> Result<(), Error> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| needs_runtime())?;
        // What this logout ends is taken now, at the call: a logout queued
        // behind another, whose caller then gave up, must not end a session
        // obtained after that.
        let ending = self.end_session();
        let this = Arc::clone(self);
        runtime
            .spawn(async move { this.finish_logout(ending).await })
            .await
            .unwrap_or_else(|_| {
                Err(Error::Transport {
                    message: "the logout task ended without an answer (was the runtime shut down?)"
                        .into(),
                    source: None,
                })
            })
    }

    /// The longest a logout takes to let callers go: taking the session out
    /// of the token store (the wait for its lease, and a few operations),
    /// then waiting for the renewal under way (its time limit, and the grace
    /// callers give it).
    fn logout_hold(&self) -> Duration {
        let store = self.shared.as_ref().map_or(Duration::ZERO, |shared| {
            let policy = shared.policy();
            policy
                .lease_wait
                .saturating_add(policy.operation_timeout.saturating_mul(8))
        });
        self.settings
            .renewal_timeout
            .saturating_add(self.flight_grace())
            .saturating_add(store)
    }

    /// How long past its deadline a flight is still waited for: a second,
    /// and with a token store the bookkeeping after Dynata's answer that
    /// the deadline does not cut short (a save, or a refused password's
    /// hash and its record), counted as three store operations.
    fn flight_grace(&self) -> Duration {
        let store = self.shared.as_ref().map_or(Duration::ZERO, |shared| {
            shared.policy().operation_timeout.saturating_mul(3)
        });
        MIN_RENEWAL_INTERVAL.saturating_add(store)
    }

    /// Takes the session and the renewal under way out of the client, and
    /// holds callers back until the logout has taken them out of the store.
    fn end_session(self: &Arc<Self>) -> Ending {
        let (done, running) = watch::channel(());
        let (finished, last_logout) = watch::channel(());
        let hold_until = crate::clock::saturating_add(self.clock.now(), self.logout_hold());
        let mut slow = self.lock_slow();
        slow.logouts.push((running.clone(), hold_until));
        let previous = slow.last_logout.replace(last_logout);
        slow.generation += 1;
        // A pause for a server's Retry-After ends with the session; a
        // refused password stays refused: logging out must not make the
        // next call send it again before its cooldown.
        slow.pause = slow
            .pause
            .take()
            .filter(|pause| may_refuse_credentials(&pause.error));
        if let Some(timer) = slow.expiry_timer.take() {
            timer.abort();
        }
        let mut sessions = std::mem::take(&mut slow.unrevoked);
        sessions.extend(self.current.swap(None).as_deref().map(Revocable::of));
        Ending {
            sessions: ToRevoke {
                lifecycle: Arc::clone(self),
                sessions,
                _finished: finished,
            },
            pending: slow.flight.take(),
            // Lets waiting callers go however the logout goes on.
            running: LogoutRunning {
                lifecycle: Arc::clone(self),
                running,
                _done: done,
            },
            previous,
            hold_until,
        }
    }

    async fn finish_logout(&self, ending: Ending) -> Result<(), Error> {
        let Ending {
            mut sessions,
            pending,
            running,
            previous,
            hold_until,
        } = ending;
        if let Some(shared) = &self.shared {
            // Before revoking: no other process may adopt tokens about to
            // die. The fleet's session ends too, whoever obtained it; but
            // not once callers have stopped waiting for this logout: what
            // the store holds then may be a session obtained after it.
            if let Some(stored) = shared.take_until(Some(hold_until)).await {
                let stored = Revocable {
                    access_token: stored.access_token,
                    refresh_token: stored.refresh_token,
                };
                sessions.add(stored);
            }
        }
        if let Some(flight) = pending {
            // Its outcome does not matter here, only that it has ended: what
            // it obtained is out of the store, left for this logout to revoke.
            let _ = self.wait_for(flight).await;
            let orphans = std::mem::take(&mut self.lock_slow().unrevoked);
            for orphan in orphans {
                sessions.add(orphan);
            }
        }
        // Nothing of this session is left to adopt: callers waiting may start
        // a new one (bounded by the store's time limit and the renewal's,
        // not by however long Dynata takes to answer the revocation).
        drop(running);
        if self.clock.now() >= hold_until {
            self.keep_what_was_taken_up_again(&mut sessions.sessions)
                .await;
        }
        if sessions.sessions.is_empty() {
            tracing::debug!("logout without a session: nothing to revoke");
        }
        let mut failed = Vec::new();
        let mut revoked = self.revoke_each(&mut sessions, &mut failed).await;
        // Not before the logout called before this one has finished too:
        // once this returns, no session of before the call is live. What
        // that one could not revoke (no answer in time, a `5xx`, cut off
        // with its runtime) is of before this call too: this logout sends
        // it again rather than return `Ok` over it. Not what this one has
        // just failed to revoke, though (kept among the unrevoked too):
        // sent once per logout, and left for the next.
        if let Some(mut previous) = previous {
            let _ = previous.changed().await;
            let left = {
                let mut slow = self.lock_slow();
                let (own, left): (Vec<_>, Vec<_>) = std::mem::take(&mut slow.unrevoked)
                    .into_iter()
                    .partition(|session| failed.contains(session));
                slow.unrevoked = own;
                left
            };
            for session in left {
                sessions.add(session);
            }
            revoked = revoked.and(self.revoke_each(&mut sessions, &mut failed).await);
        }
        revoked
    }

    /// Revokes each of `sessions`; each leaves the list once its revocation
    /// has its answer: cut off before (the runtime shut down), it stays for
    /// the next logout. Those kept for the next logout after a failure are
    /// added to `failed`.
    async fn revoke_each(
        &self,
        sessions: &mut ToRevoke,
        failed: &mut Vec<Revocable>,
    ) -> Result<(), Error> {
        let mut revoked = Ok(());
        while let Some(session) = sessions.sessions.first().cloned() {
            let outcome = self.revoke(&session).await;
            sessions.sessions.remove(0);
            if let Err(error) = outcome {
                if self.keep_unrevoked(session.clone(), &error) {
                    failed.push(session);
                }
                revoked = revoked.and(Err(error));
            }
        }
        revoked
    }

    /// A logout that ran past the time callers waited for it (stranded on a
    /// runtime nobody drove) may find its session taken up again by the
    /// calls that went on without it: adopted from the store, which it did
    /// not empty. Revoking it now would pull it from under them (and every
    /// process that adopted it), so it stays; the logout's caller had given
    /// up on it, and a later `logout()` ends it.
    async fn keep_what_was_taken_up_again(&self, sessions: &mut Vec<Revocable>) {
        let current = self
            .current
            .load_full()
            .map(|session| Revocable::of(&session));
        let stored = match &self.shared {
            Some(shared) => shared.load_adoptable(None).await.map(|stored| Revocable {
                access_token: stored.access_token,
                refresh_token: stored.refresh_token,
            }),
            None => None,
        };
        let before = sessions.len();
        sessions.retain(|session| {
            Some(session) != current.as_ref() && Some(session) != stored.as_ref()
        });
        if sessions.len() < before {
            tracing::warn!(
                "a logout finished after calls had gone on without it (was its runtime not driven?); the session they took up again stays live"
            );
        }
    }

    /// Keeps a session whose revocation failed for the next logout, if
    /// another try may succeed: Dynata did not answer, or answered `5xx`. A
    /// refusal (`400`, `401`: the session has already ended) is final.
    /// Whether it is kept.
    fn keep_unrevoked(&self, session: Revocable, error: &Error) -> bool {
        let kept = error.is_transient();
        if kept {
            self.lock_slow().unrevoked.push(session);
        }
        kept
    }

    /// Revokes `session` at Dynata, within the renewal timeout, retries
    /// included, as a renewal: with an HTTP client that has no time limit
    /// of its own, a revocation that gets no answer would hold the logout
    /// (and every one after it) for ever. Past it: [`Error::Timeout`], a
    /// failure the next logout tries again.
    async fn revoke(&self, session: &Revocable) -> Result<(), Error> {
        let body = types::LogoutRequest {
            client_id: self.credentials.client_id.clone(),
            refresh_token: session.refresh_token.clone(),
            access_token: session.access_token.clone(),
        };
        let secrets = [&body.access_token, &body.refresh_token];
        let policy = &self.settings.retry;
        let deadline =
            crate::clock::saturating_add(self.clock.now(), self.settings.renewal_timeout);
        let sent = auth_calls::send(
            AuthOperation::Logout,
            policy,
            &*self.clock,
            &self.fast_clock,
            Some(deadline),
            &secrets,
            || self.api.logout(&body),
        );
        match first_of(sent, self.clock.sleep_until(deadline)).await {
            Some(sent) => sent.map(|_| ()).map_err(|failure| failure.error),
            None => Err(renewal_timed_out()),
        }
    }

    /// The slow path's lock, if no logout has happened since `generation`
    /// and the session is still `seen` (none, for `None`): a session read
    /// from the store meanwhile is installed only then, never after a logout
    /// nor over a session installed since.
    fn lock_if_unchanged(
        &self,
        seen: Option<&Arc<Session>>,
        generation: u64,
    ) -> Option<MutexGuard<'_, SlowPath>> {
        let slow = self.lock_slow();
        let unchanged = match (seen, &*self.current.load()) {
            (Some(seen), Some(current)) => Arc::ptr_eq(seen, current),
            (None, None) => true,
            _ => false,
        };
        (slow.generation == generation && unchanged).then_some(slow)
    }

    fn lock_slow(&self) -> MutexGuard<'_, SlowPath> {
        // Nothing panics while holding this lock; if something did, the state
        // is still consistent field by field, so carry on.
        self.slow.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What a logout took out of the client, and what is left to do about it.
struct Ending {
    /// This client's session, and any a logout before could not revoke.
    sessions: ToRevoke,
    /// The renewal under way at the call, which revokes what it obtains.
    pending: Option<Flight>,
    running: LogoutRunning,
    /// Ends when the logout called before this one has finished.
    previous: Option<watch::Receiver<()>>,
    /// When callers stop waiting for it (see [`Lifecycle::logout_hold`]).
    hold_until: Instant,
}

/// The sessions a logout has yet to revoke. Dropped before it has (its
/// task ended with its runtime, mid-revocation), they go back to
/// [`SlowPath::unrevoked`]: the next logout sends them again, rather than
/// return `Ok` with nothing sent while they may be live.
struct ToRevoke {
    lifecycle: Arc<Lifecycle>,
    sessions: Vec<Revocable>,
    /// Dropped when this logout has finished: after `drop` below has given
    /// back what it had not revoked, so that the logout called after this
    /// one, which then takes it up, finds it there.
    _finished: watch::Sender<()>,
}

impl ToRevoke {
    fn add(&mut self, session: Revocable) {
        if !self.sessions.contains(&session) {
            self.sessions.push(session);
        }
    }
}

impl Drop for ToRevoke {
    fn drop(&mut self) {
        if self.sessions.is_empty() {
            return;
        }
        let mut slow = self.lifecycle.lock_slow();
        for session in self.sessions.drain(..) {
            if !slow.unrevoked.contains(&session) {
                slow.unrevoked.push(session);
            }
        }
    }
}

/// What a logout sends to revoke a session.
#[derive(Clone, PartialEq)]
struct Revocable {
    access_token: Secret,
    refresh_token: Secret,
}

impl Revocable {
    fn of(session: &Session) -> Self {
        Revocable {
            access_token: session.token.secret_value().clone(),
            refresh_token: session.refresh_token.clone(),
        }
    }
}

/// A logout under way, for as long as it lives: see [`SlowPath::logouts`].
struct LogoutRunning {
    lifecycle: Arc<Lifecycle>,
    running: watch::Receiver<()>,
    /// Dropped after `drop` below has run: that wakes the waiting callers.
    _done: watch::Sender<()>,
}

impl Drop for LogoutRunning {
    fn drop(&mut self) {
        let mut slow = self.lifecycle.lock_slow();
        // Only its own: another logout that started meanwhile still holds.
        slow.logouts
            .retain(|(logout, _)| !logout.same_channel(&self.running));
    }
}

impl Drop for Lifecycle {
    fn drop(&mut self) {
        if let Some(timer) = self
            .slow
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .expiry_timer
            .take()
        {
            timer.abort();
        }
    }
}

/// A flight's outcome: its renewal's, unless the flight is given up first.
/// A newer flight replaced it (`superseded`): checked before the renewal is
/// polled, so a flight whose runtime was not driven (a sync caller's,
/// between two `block_on`s) sends nothing more when it runs again. Or its
/// deadline passed: checked after the renewal, so an answer that had come
/// meanwhile (the new pair of a refresh token now spent) is kept; and not
/// at all once the renewal has Dynata's answer (`answered`) and is only
/// storing it, under the store's own time limits: cut short there, a new
/// pair would be lost with the refresh token it replaced, or a refused
/// password sent again a second later.
async fn flight_outcome<T>(
    renewal: impl Future<Output = T>,
    deadline: impl Future<Output = ()>,
    superseded: impl Fn() -> bool,
    answered: impl Fn() -> bool,
) -> Option<T> {
    let mut renewal = std::pin::pin!(renewal);
    let mut deadline = std::pin::pin!(deadline);
    std::future::poll_fn(|cx| {
        if superseded() {
            return Poll::Ready(None);
        }
        if let Poll::Ready(outcome) = renewal.as_mut().poll(cx) {
            return Poll::Ready(Some(outcome));
        }
        if answered() {
            return Poll::Pending;
        }
        deadline.as_mut().poll(cx).map(|()| None)
    })
    .await
}

/// Whether a renewal's failure may be the credentials refused, so that they
/// are not sent again before the rejected-login cooldown: Dynata's refusal,
/// and a `401` or `403` without its error body (a gateway's, a web
/// firewall's, often empty), which may be the same refusal passed on;
/// sending the password again every second could lock the account. (Only
/// Dynata's own refusal is recorded in a token store for the others.)
fn may_refuse_credentials(error: &Error) -> bool {
    matches!(
        error,
        Error::CredentialsRejected { .. }
            | Error::Api {
                status: 401 | 403,
                ..
            }
    )
}

/// Whether a failed refresh certainly used up its refresh token: Dynata
/// refused it (`invalid_grant`, Keycloak's code for a token expired,
/// revoked or already used), or answered with JSON that is not a token pair
/// (it took the token, and whatever it issued instead is lost). A proxy's
/// page (transient) never reached Dynata, and a connection failure is not
/// known to have.
fn spends_refresh_token<T>(failure: &Failure<T>) -> bool {
    match &failure.error {
        Error::CredentialsRejected { error, .. } => error.as_deref() == Some("invalid_grant"),
        Error::Decode { .. } => !failure.transient,
        _ => false,
    }
}

/// Whether a refresh's failure may be its refusal without saying so: a
/// `401` or `403` without Dynata's `invalid_grant` (a gateway's page, or
/// its `{"message": …}`, which reads as an auth error), or another code
/// (`invalid_client`). It may be Dynata's refusal passed on, or the
/// gateway's own (a firewall that never let it through). A client with a
/// password logs in rather than pause for the rejected-login cooldown,
/// having sent no password; the refresh token is not known to be spent, so
/// it is kept (and a token store keeps the session, for those without a
/// password).
fn may_refuse_refresh<T>(failure: &Failure<T>) -> bool {
    may_refuse_credentials(&failure.error) && !spends_refresh_token(failure)
}

/// A token pair's lifetimes, checked with the pair: a negative one is out
/// of range, and an access token that is already expired, or that an
/// `Authorization` header cannot carry (a control character), cannot be
/// used. Taken, it would be asked for again at once for ever, or fail every
/// call before sending it until it expired, as no `401` would come to renew
/// it.
fn lifetimes(pair: &types::TokenPair) -> Result<(Duration, Duration), Error> {
    if bearer_header(pair.access_token.expose_secret()).is_none() {
        return Err(Error::decode(
            "accessToken is empty or has characters an HTTP header cannot carry",
        ));
    }
    let lifetime = |seconds: i64, field: &str| {
        u64::try_from(seconds)
            .map(Duration::from_secs)
            .map_err(|_| Error::decode(format!("{field} is out of range: {seconds}")))
    };
    let access = lifetime(pair.expires_in, "expiresIn")?;
    let refresh = lifetime(pair.refresh_expires_in, "refreshExpiresIn")?;
    if access.is_zero() {
        return Err(Error::decode(
            "expiresIn is 0: the token is already expired",
        ));
    }
    Ok((access, refresh))
}

/// A refusal of these credentials, as told to a caller during the pause
/// that follows it: it says the credentials were not sent again, and for
/// how much longer they will not be (`None`: never, no cooldown being
/// configured). It read the same as the refusal itself.
fn not_sent_again(error: Error, left: Option<Duration>) -> Error {
    let Error::CredentialsRejected {
        status,
        error,
        description,
        request_id,
        refreshing,
    } = error
    else {
        return error;
    };
    let note = match left {
        Some(left) => format!(
            "not sent again for another {} s, the cooldown",
            seconds_up(left)
        ),
        None => "not sent again: no cooldown is configured (build a new client)".into(),
    };
    Error::CredentialsRejected {
        status,
        error,
        description: Some(match description {
            Some(said) => format!("{said} ({note})"),
            None => note,
        }),
        request_id,
        refreshing,
    }
}

/// The failure of a renewal whose token pair had reached its hard margin
/// when its answer arrived (the answer took about as long as the token
/// lives): not a token to hand out as new.
fn expired_on_arrival() -> Error {
    Error::decode(
        "the access token had expired by the time its answer arrived (the answer took longer than the token lives)",
    )
}

/// Marks the session `EXPIRING` at its hard margin, on the client's clock.
///
/// The fast path checks the hard margin itself, on the system's coarse
/// monotonic clock; this timer covers tokio's paused clock in tests, which
/// the coarse clock does not follow. It holds no reference to the client.
async fn watch_expiry(session: Arc<Session>, clock: Arc<dyn Clock>) {
    clock.sleep_until(session.hard_at).await;
    let _ = session
        .state
        .compare_exchange(FRESH, EXPIRING, Ordering::AcqRel, Ordering::Acquire);
}

fn needs_runtime() -> Error {
    Error::config("dynata-sdk needs a tokio runtime: call it from within one")
}

fn flight_lost() -> Error {
    Error::Transport {
        message: "the login or refresh task ended without an answer (was the runtime shut down?)"
            .into(),
        source: None,
    }
}

fn renewal_timed_out() -> Error {
    Error::Timeout {
        status: None,
        request_id: None,
        errors: Vec::new(),
        retry_after: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome<T>(future: impl Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(future)
    }

    #[test]
    fn a_flight_keeps_an_answer_that_came_before_it_was_looked_at_past_its_deadline() {
        let came = std::future::ready("the new pair");
        let past = std::future::ready(());
        assert_eq!(
            outcome(flight_outcome(came, past, || false, || false)),
            Some("the new pair")
        );
        let waiting = std::future::pending::<&str>();
        let past = std::future::ready(());
        assert_eq!(
            outcome(flight_outcome(waiting, past, || false, || false)),
            None
        );
    }

    #[test]
    fn a_flight_with_its_answer_in_hand_is_not_cut_short_by_its_deadline() {
        // Answered, and still storing the pair when the deadline has passed:
        // its third poll finishes.
        let mut polls = 0;
        let storing = std::future::poll_fn(|cx| {
            polls += 1;
            if polls < 3 {
                cx.waker().wake_by_ref();
                Poll::Pending
            } else {
                Poll::Ready("stored")
            }
        });
        let past = std::future::ready(());
        assert_eq!(
            outcome(flight_outcome(storing, past, || false, || true)),
            Some("stored")
        );
    }

    #[test]
    fn a_superseded_flight_does_nothing_more() {
        let sends = std::future::poll_fn(|_| -> Poll<()> {
            panic!("a superseded flight's renewal was polled")
        });
        let later = std::future::pending::<()>();
        assert_eq!(
            outcome(flight_outcome(sends, later, || true, || false)),
            None
        );
    }

    /// A server's `Retry-After` is the least it asked to be left alone: the
    /// pause must not end before it on either clock. On the fast clock it
    /// was set, as a token's deadline is, a coarse tick's slack (50 ms)
    /// *early*: after `Retry-After: 1` the next renewal went out at 0.95 s
    /// (found by review).
    #[tokio::test]
    async fn a_servers_pause_does_not_end_early_on_the_fast_clock() {
        let server = httpmock::MockServer::start_async().await;
        let lifecycle = client_reading_wall(&server, std::time::SystemTime::now, None);
        let refused = Refused {
            error: renewal_timed_out(),
            retry_after: Some(Duration::from_secs(1)),
            pause: None,
        };
        let pause = lifecycle.pause_after(&refused);
        let (until, ticks) = pause.until.expect("a pause with an end");
        let clock = &*lifecycle.clock;
        // Read after the pause was set: at the least as late as `until`,
        // give or take the coarse clock's tick (a few ms).
        let not_before = lifecycle.fast_clock.ticks_near(until, clock);
        let tolerance = coarsetime::Duration::from_millis(10).as_ticks();
        assert!(
            ticks.saturating_add(tolerance) >= not_before,
            "the pause ends {:?} early on the fast clock",
            Duration::from(coarsetime::Duration::from_ticks(not_before - ticks))
        );
    }

    /// How long the machine has slept, for [`slept_wall_clock`]: the wall
    /// clock goes on while the monotonic clock stands still. One per test
    /// (they run at once).
    static SLEPT: [std::sync::atomic::AtomicU64; 3] =
        [const { std::sync::atomic::AtomicU64::new(0) }; 3];

    fn slept_wall_clock<const TEST: usize>() -> std::time::SystemTime {
        std::time::SystemTime::now() + Duration::from_secs(SLEPT[TEST].load(Ordering::Relaxed))
    }

    /// The machine of test `TEST` sleeps for `minutes`, then wakes.
    fn sleep_machine<const TEST: usize>(minutes: u64) {
        SLEPT[TEST].fetch_add(minutes * 60, Ordering::Relaxed);
        next_coarse_tick();
    }

    /// Waits for the coarse clock to tick once (1 to 16 ms), as it would
    /// have many times while the machine slept, so that the fast path
    /// compares the clocks again.
    fn next_coarse_tick() {
        let ticks = || coarsetime::Instant::now_without_cache_update().as_ticks();
        let before = ticks();
        while ticks() == before {
            std::hint::spin_loop();
        }
    }

    /// A client of `server` (no retries) on the default clock, whose wall
    /// clock is read by `wall`: a test's, moved to make the machine sleep.
    fn client_reading_wall(
        server: &httpmock::MockServer,
        wall: fn() -> std::time::SystemTime,
        store: Option<StoreSettings>,
    ) -> Arc<Lifecycle> {
        let settings = Settings {
            soft_window: Duration::from_secs(300),
            hard_margin: Duration::from_secs(30),
            retry: RetryPolicy::none(),
            rejected_login_cooldown: None,
            renewal_timeout: Duration::from_secs(10),
        };
        dynata_auth_api::ensure_crypto_provider();
        let mut lifecycle = Lifecycle::new(
            dynata_auth_api::Client::new(&server.base_url()),
            Credentials::new("user", "password"),
            settings,
            None,
            store,
        );
        lifecycle.fast_clock = FastClock::reading_wall(&*lifecycle.clock, wall);
        Arc::new(lifecycle)
    }

    /// A token pair of half an hour (refresh token: an hour), for the
    /// suspend tests.
    fn pair(access: &str) -> String {
        format!(
            r#"{{"accessToken":"{access}","expiresIn":1800,"refreshExpiresIn":3600,"refreshToken":"r-{access}"}}"#
        )
    }

    /// Dynata counts a token's life in real time; the system's monotonic
    /// clock stands still while the machine sleeps. After a suspend, the
    /// token must not be served on the strength of the time the client did
    /// not see pass: not from the fast path, not as "still valid" when the
    /// renewal fails, and a refresh token past its life is not sent.
    #[tokio::test]
    async fn a_token_that_expired_while_the_machine_slept_is_not_served() {
        let server = httpmock::MockServer::start_async().await;
        let mut login = server.mock(|when, then| {
            when.path("/auth/v1/token/password");
            then.status(200).body(pair("first"));
        });
        let mut refresh = server.mock(|when, then| {
            when.path("/auth/v1/token/refresh");
            then.status(200).body(pair("refreshed"));
        });
        let lifecycle = client_reading_wall(&server, slept_wall_clock::<0>, None);
        let token = |lifecycle: Arc<Lifecycle>| async move {
            let token = lifecycle.access_token().await?;
            Ok::<_, Error>(token.secret().to_string())
        };

        assert_eq!(token(lifecycle.clone()).await.expect("logged in"), "first");
        // Forty minutes: the access token (thirty) has expired, the refresh
        // token (an hour) has not.
        sleep_machine::<0>(40);
        assert_eq!(
            token(lifecycle.clone()).await.expect("refreshed"),
            "refreshed"
        );
        assert_eq!((login.calls(), refresh.calls()), (1, 1));

        // Two hours: both have expired; the password it is.
        login.delete();
        login = server.mock(|when, then| {
            when.path("/auth/v1/token/password");
            then.status(200).body(pair("second"));
        });
        sleep_machine::<0>(120);
        assert_eq!(token(lifecycle.clone()).await.expect("logged in"), "second");
        assert_eq!((login.calls(), refresh.calls()), (1, 1));

        // Dynata is unreachable on waking: the expired token is no answer.
        login.delete();
        refresh.delete();
        server.mock(|_, then| {
            then.status(503);
        });
        sleep_machine::<0>(120);
        let failed = token(lifecycle.clone()).await;
        assert!(failed.is_err(), "served {failed:?}");
    }

    /// A server's `Retry-After` is real time too: a pause it asked for is
    /// over when the machine wakes after it would have ended. It was kept
    /// on the client's clock alone, so on waking every call failed with the
    /// old `429` for as long again (found by review).
    #[tokio::test]
    async fn a_servers_pause_the_machine_slept_through_is_over() {
        let server = httpmock::MockServer::start_async().await;
        let mut login = server.mock(|when, then| {
            when.path("/auth/v1/token/password");
            then.status(200).body(pair("first"));
        });
        let refresh = server.mock(|when, then| {
            when.path("/auth/v1/token/refresh");
            then.status(429).header("retry-after", "3600");
        });
        let lifecycle = client_reading_wall(&server, slept_wall_clock::<1>, None);
        let first = lifecycle.access_token().await.expect("logged in");
        assert_eq!(first.secret(), "first");

        // Forty minutes: the token has expired; Dynata asks for an hour.
        sleep_machine::<1>(40);
        let paused = lifecycle.access_token().await;
        assert!(
            matches!(paused, Err(Error::RateLimited { .. })),
            "{paused:?}"
        );
        assert_eq!(refresh.calls(), 1);

        // Two hours more: the hour is long over, and Dynata answers.
        login.delete();
        login = server.mock(|when, then| {
            when.path("/auth/v1/token/password");
            then.status(200).body(pair("second"));
        });
        sleep_machine::<1>(120);
        let woke = lifecycle.access_token().await.expect("renewed on waking");
        assert_eq!(woke.secret(), "second");
        assert_eq!(login.calls(), 1);
    }

    /// A pause the machine slept most of says what is left of it on the
    /// clock that ends it: after an hour's `Retry-After` and fifty minutes
    /// asleep, ten minutes (it said the whole hour, read on the client's
    /// clock alone: found by review).
    #[tokio::test]
    async fn a_pause_mostly_slept_through_says_what_is_left() {
        let server = httpmock::MockServer::start_async().await;
        server.mock(|when, then| {
            when.path("/auth/v1/token/password");
            then.status(200).body(pair("first"));
        });
        server.mock(|when, then| {
            when.path("/auth/v1/token/refresh");
            then.status(429).header("retry-after", "3600");
        });
        let lifecycle = client_reading_wall(&server, slept_wall_clock::<2>, None);
        lifecycle.access_token().await.expect("logged in");
        sleep_machine::<2>(40);
        let paused = lifecycle.access_token().await.expect_err("429");
        assert_eq!(paused.retry_after(), Some(Duration::from_secs(3600)));
        // Fifty of the sixty minutes pass asleep: still paused, ten left.
        sleep_machine::<2>(50);
        let still = lifecycle.access_token().await.expect_err("still paused");
        assert!(matches!(still, Error::RateLimited { .. }), "{still:?}");
        let left = still.retry_after().expect("a wait");
        assert!(
            left <= Duration::from_secs(10 * 60),
            "ten minutes are left, the error says {left:?}"
        );
    }

    /// How long the machine slept while a login's answer was on its way, in
    /// each of the tests below (they run at the same time).
    static SLEPT_IN_FLIGHT: [std::sync::atomic::AtomicU64; 3] =
        [const { std::sync::atomic::AtomicU64::new(0) }; 3];

    fn wall_clock_slept_in_flight<const TEST: usize>() -> std::time::SystemTime {
        let slept = SLEPT_IN_FLIGHT[TEST].load(Ordering::SeqCst);
        std::time::SystemTime::now() + Duration::from_secs(slept)
    }

    /// A client of `server`, whose login answer arrives after the machine
    /// slept forty minutes (the lid closed while it was on its way).
    fn client_sleeping_through_its_login<const TEST: usize>(
        server: &httpmock::MockServer,
        store: Option<StoreSettings>,
    ) -> Arc<Lifecycle> {
        server.mock(|when, then| {
            when.path("/auth/v1/token/password").is_true(|_| {
                // Idempotent: the matcher may be asked more than once.
                SLEPT_IN_FLIGHT[TEST].store(40 * 60, Ordering::SeqCst);
                next_coarse_tick();
                true
            });
            then.status(200).body(
                r#"{"accessToken":"slept-through","expiresIn":1800,"refreshExpiresIn":3600,"refreshToken":"r"}"#,
            );
        });
        client_reading_wall(server, wall_clock_slept_in_flight::<TEST>, store)
    }

    /// A token's life counts from just before its request was sent, and the
    /// machine may sleep before the answer is read: thirty minutes' worth of
    /// token read forty minutes later has expired (found by review).
    #[tokio::test]
    async fn a_token_whose_answer_arrived_after_a_sleep_is_not_served() {
        let server = httpmock::MockServer::start_async().await;
        let lifecycle = client_sleeping_through_its_login::<0>(&server, None);
        let token = lifecycle.access_token().await;
        assert!(
            !token.as_ref().is_ok_and(|t| t.secret() == "slept-through"),
            "served a token that expired ten minutes ago"
        );
    }

    /// Instead, the renewal is made once more at once, with the refresh
    /// token of the pair that came late: the caller gets a token that
    /// lives. (It got the late answer's failure, and the call after the
    /// machine woke failed: found by review.)
    #[tokio::test]
    async fn a_renewal_whose_answer_arrived_after_a_sleep_is_made_again() {
        let server = httpmock::MockServer::start_async().await;
        let refresh = server.mock(|when, then| {
            when.path("/auth/v1/token/refresh")
                .body_includes(r#""refreshToken":"r""#);
            then.status(200).body(
                r#"{"accessToken":"renewed","expiresIn":1800,"refreshExpiresIn":3600,"refreshToken":"r2"}"#,
            );
        });
        let lifecycle = client_sleeping_through_its_login::<2>(&server, None);
        let token = lifecycle.access_token().await.expect("renewed again");
        assert_eq!(token.secret(), "renewed");
        assert_eq!(refresh.calls(), 1);
    }

    /// The same, for the processes sharing a token store: the pair is
    /// stored as issued before the sleep, so expired (found by review).
    #[tokio::test]
    async fn a_pair_whose_answer_arrived_after_a_sleep_is_stored_as_old_as_it_is() {
        let server = httpmock::MockServer::start_async().await;
        let dir =
            std::env::temp_dir().join(format!("dynata-sdk-slept-in-flight-{}", std::process::id()));
        let store = crate::store::FileStore::new(&dir);
        let key = StoreKey::for_account(&server.base_url(), "", "user");
        let shared = (
            Arc::new(store.clone()) as Arc<dyn TokenStore>,
            key.clone(),
            SharingPolicy::default(),
        );
        let lifecycle = client_sleeping_through_its_login::<1>(&server, Some(shared));
        let token = lifecycle.access_token().await;
        assert!(
            !token.as_ref().is_ok_and(|t| t.secret() == "slept-through"),
            "served a token that expired ten minutes ago"
        );
        // The store's wall clock is the system's, which did not move here:
        // for it, the pair was sent forty minutes ago.
        let stored = store.load(&key).await.expect("readable").expect("stored");
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            stored.access_expires_at < std::time::SystemTime::now(),
            "stored as expiring at {:?}, after now",
            stored.access_expires_at
        );
    }
}
