//! The token lifecycle: one session shared by every clone of a client.
//!
//! The fast path is one lock-free load and one atomic read. Everything else
//! (login, refresh, the windows before expiry, failures) happens on a slow
//! path behind a mutex that is never held across an `.await`, in tasks that
//! outlive any one caller, so a caller dropped mid-refresh harms nobody.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use dynata_auth_api::{Secret, types};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::clock::Clock;
use crate::transport::send_with_retries;
use crate::{AccessToken, Credentials, Error, RetryPolicy};

/// The settings the lifecycle runs by; see [`crate::ClientBuilder`].
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) soft_window: Duration,
    pub(crate) hard_margin: Duration,
    pub(crate) retry: RetryPolicy,
    pub(crate) rejected_login_cooldown: Option<Duration>,
}

/// A session's access token is served from the fast path while `FRESH`.
const FRESH: u8 = 0;
/// Inside the hard margin: callers wait for a new token.
const EXPIRING: u8 = 1;
/// A caller saw it rejected ([`Lifecycle::invalidate`]): never served again.
const INVALIDATED: u8 = 2;

/// One token pair, and when to act on it.
struct Session {
    token: AccessToken,
    refresh_token: Secret,
    /// Past this, the refresh token is taken as expired: log in instead.
    refresh_usable_until: Instant,
    /// Start of the soft window: a background refresh begins.
    soft_at: Instant,
    /// Start of the hard margin: the token stops being served at once.
    hard_at: Instant,
    state: AtomicU8,
}

/// The outcome of one login or refresh, shared by every caller waiting on it.
type Flight = watch::Receiver<Option<Result<AccessToken, Error>>>;

/// The last login or refresh failed; until `until`, nobody starts another.
struct Failure {
    error: Error,
    /// `None`: never (rejected credentials with no cooldown configured).
    until: Option<Instant>,
}

#[derive(Default)]
struct SlowPath {
    /// The login or refresh under way, if any: the single flight.
    flight: Option<Flight>,
    failure: Option<Failure>,
    /// Wakes at the current session's soft window and hard margin.
    expiry_timer: Option<JoinHandle<()>>,
    /// Bumped by logout, so that a flight started before it does not revive
    /// the session.
    generation: u64,
}

pub(crate) struct Lifecycle {
    api: dynata_auth_api::Client,
    credentials: Credentials,
    settings: Settings,
    clock: Arc<dyn Clock>,
    current: ArcSwapOption<Session>,
    slow: Mutex<SlowPath>,
}

impl Lifecycle {
    pub(crate) fn new(
        api: dynata_auth_api::Client,
        credentials: Credentials,
        settings: Settings,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Lifecycle {
            api,
            credentials,
            settings,
            clock,
            current: ArcSwapOption::empty(),
            slow: Mutex::default(),
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
    #[inline]
    pub(crate) fn fresh_token(&self) -> Option<AccessToken> {
        match self.current.load().as_deref() {
            Some(session) if session.state.load(Ordering::Acquire) == FRESH => {
                Some(session.token.clone())
            }
            _ => None,
        }
    }

    pub(crate) async fn access_token(self: &Arc<Self>) -> Result<AccessToken, Error> {
        match self.fresh_token() {
            Some(token) => Ok(token),
            None => self.new_token().await,
        }
    }

    /// The slow path: join the login or refresh under way, or start one.
    async fn new_token(self: &Arc<Self>) -> Result<AccessToken, Error> {
        let mut flight = {
            let mut slow = self.lock_slow();
            if let Some(token) = self.fresh_token() {
                return Ok(token);
            }
            let now = self.clock.now();
            let cooling_down = slow
                .failure
                .as_ref()
                .is_some_and(|f| f.until.is_none_or(|until| now < until));
            // A flight whose task died (a panic, a runtime shutting down)
            // would never answer: start a new one rather than join it.
            let flight = match slow.flight.clone().filter(|f| f.has_changed().is_ok()) {
                Some(flight) => Some(flight),
                None if !cooling_down => Some(self.start_flight(&mut slow)),
                None => None,
            };
            // Once a renewal has failed, a token that is still valid is served
            // at once rather than after the next attempt.
            if slow.failure.is_some()
                && let Some(token) = self.still_valid_token()
            {
                return Ok(token);
            }
            match flight {
                Some(flight) => flight,
                None => {
                    return Err(slow
                        .failure
                        .as_ref()
                        .map_or_else(flight_lost, |f| f.error.clone()));
                }
            }
        };
        let outcome = match flight.wait_for(Option::is_some).await {
            Ok(outcome) => outcome.clone().unwrap_or_else(|| Err(flight_lost())),
            Err(_) => Err(flight_lost()),
        };
        outcome.or_else(|error| match self.still_valid_token() {
            Some(token) if error.is_transient() => Ok(token),
            _ => Err(error),
        })
    }

    /// The current token if it has neither expired nor been invalidated.
    fn still_valid_token(&self) -> Option<AccessToken> {
        let session = self.current.load_full()?;
        let valid = session.state.load(Ordering::Acquire) != INVALIDATED
            && self.clock.now() < session.token.expires_at();
        valid.then(|| session.token.clone())
    }

    /// Starts the one login or refresh that every caller will wait on. It runs
    /// in its own task, so it finishes even if every caller goes away.
    fn start_flight(self: &Arc<Self>, slow: &mut SlowPath) -> Flight {
        let (sender, receiver) = watch::channel(None);
        slow.flight = Some(receiver.clone());
        let generation = slow.generation;
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let outcome = this.renew().await;
            let outcome = {
                let mut slow = this.lock_slow();
                slow.flight = None;
                match outcome {
                    Ok(session) => {
                        let token = session.token.clone();
                        if slow.generation == generation {
                            this.install(&mut slow, session);
                        }
                        Ok(token)
                    }
                    Err(error) => {
                        let pause = match &error {
                            Error::CredentialsRejected { .. } => {
                                this.settings.rejected_login_cooldown
                            }
                            _ => Some(this.settings.retry.initial_backoff),
                        };
                        slow.failure = Some(Failure {
                            until: pause.and_then(|p| this.clock.now().checked_add(p)),
                            error: error.clone(),
                        });
                        Err(error)
                    }
                }
            };
            sender.send_replace(Some(outcome));
        });
        receiver
    }

    /// A new token pair: by refresh while the refresh token lives, else (or if
    /// Dynata rejects it) by password.
    async fn renew(&self) -> Result<Arc<Session>, Error> {
        let credentials = &self.credentials;
        if let Some(previous) = self.current.load_full()
            && self.clock.now() < previous.refresh_usable_until
        {
            let body = types::RefreshRequest {
                client_id: credentials.client_id.clone(),
                refresh_token: previous.refresh_token.clone(),
                client_secret: credentials.client_secret.clone(),
            };
            let refreshed =
                send_with_retries("refresh", &self.settings.retry, &*self.clock, || {
                    self.api.refresh(&body)
                })
                .await;
            match refreshed {
                Ok((pair, sent_at)) => return self.session_from(pair, sent_at),
                Err(Error::CredentialsRejected { status, error, .. }) => tracing::info!(
                    status,
                    error = error.as_deref().unwrap_or(""),
                    "the refresh token was rejected; logging in with the password"
                ),
                Err(error) => return Err(error),
            }
        }
        let body = types::PasswordLoginRequest {
            client_id: credentials.client_id.clone(),
            username: credentials.username.clone(),
            password: credentials.password.clone(),
            client_secret: credentials.client_secret.clone(),
        };
        let (pair, sent_at) =
            send_with_retries("login", &self.settings.retry, &*self.clock, || {
                self.api.login(&body)
            })
            .await?;
        self.session_from(pair, sent_at)
    }

    /// Turns a token pair into a session. Lifetimes count from `sent_at`, just
    /// before the request left, so network delay only makes us early.
    fn session_from(
        &self,
        pair: types::TokenPair,
        sent_at: Instant,
    ) -> Result<Arc<Session>, Error> {
        let lifetime = |seconds: i64, field: &str| {
            u64::try_from(seconds)
                .ok()
                .map(Duration::from_secs)
                .filter(|d| sent_at.checked_add(*d).is_some())
                .ok_or_else(|| Error::decode(format!("{field} is out of range: {seconds}")))
        };
        let access_lifetime = lifetime(pair.expires_in, "expiresIn")?;
        let refresh_lifetime = lifetime(pair.refresh_expires_in, "refreshExpiresIn")?;
        // The windows shrink for short-lived tokens, so that a fresh token is
        // never "expiring" on arrival: at most half its life is the soft
        // window and a tenth the hard margin.
        let soft = self.settings.soft_window.min(access_lifetime / 2);
        let hard = self
            .settings
            .hard_margin
            .min(access_lifetime / 10)
            .min(soft);
        let expires_at = sent_at + access_lifetime;
        let refresh_expires_at = sent_at + refresh_lifetime;
        Ok(Arc::new(Session {
            token: AccessToken::new(pair.access_token, expires_at),
            refresh_token: pair.refresh_token,
            refresh_usable_until: refresh_expires_at
                - self.settings.hard_margin.min(refresh_lifetime / 10),
            soft_at: expires_at - soft,
            hard_at: expires_at - hard,
            state: AtomicU8::new(FRESH),
        }))
    }

    fn install(self: &Arc<Self>, slow: &mut SlowPath, session: Arc<Session>) {
        self.current.store(Some(Arc::clone(&session)));
        slow.failure = None;
        if let Some(timer) = slow.expiry_timer.take() {
            timer.abort();
        }
        let this = Arc::downgrade(self);
        let clock = Arc::clone(&self.clock);
        slow.expiry_timer = Some(tokio::spawn(watch_expiry(this, session, clock)));
    }

    /// Drops the current token if `token` is still it, so that a burst of
    /// `401`s for one token causes one refresh. Returns whether it did.
    pub(crate) fn invalidate(&self, token: &AccessToken) -> bool {
        match self.current.load().as_deref() {
            Some(session) if session.token.same_as(token) => {
                session.state.store(INVALIDATED, Ordering::Release);
                tracing::info!("access token invalidated by a caller; the next call renews it");
                true
            }
            _ => false,
        }
    }

    /// Clears the session, then revokes its tokens at Dynata.
    pub(crate) async fn logout(&self) -> Result<(), Error> {
        let session = {
            let mut slow = self.lock_slow();
            slow.generation += 1;
            slow.failure = None;
            if let Some(timer) = slow.expiry_timer.take() {
                timer.abort();
            }
            self.current.swap(None)
        };
        let Some(session) = session else {
            tracing::debug!("logout without a session: nothing to do");
            return Ok(());
        };
        let body = types::LogoutRequest {
            client_id: self.credentials.client_id.clone(),
            refresh_token: session.refresh_token.clone(),
            access_token: session.token.secret_value().clone(),
        };
        send_with_retries("logout", &self.settings.retry, &*self.clock, || {
            self.api.logout(&body)
        })
        .await
        .map(|((), _)| ())
    }

    fn lock_slow(&self) -> MutexGuard<'_, SlowPath> {
        // Nothing panics while holding this lock; if something did, the state
        // is still consistent field by field, so carry on.
        self.slow.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn is_current(&self, session: &Arc<Session>) -> bool {
        self.current
            .load()
            .as_ref()
            .is_some_and(|current| Arc::ptr_eq(current, session))
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

/// At the soft window, refresh in the background while callers keep getting
/// the current token; at the hard margin, make callers wait for a new one.
/// Holds only a weak reference, so it never keeps a dropped client alive.
async fn watch_expiry(lifecycle: Weak<Lifecycle>, session: Arc<Session>, clock: Arc<dyn Clock>) {
    clock.sleep_until(session.soft_at).await;
    if let Some(lifecycle) = lifecycle.upgrade() {
        let mut slow = lifecycle.lock_slow();
        if lifecycle.is_current(&session) && slow.flight.is_none() {
            tracing::debug!(
                "the access token entered its soft window; refreshing in the background"
            );
            let _background = lifecycle.start_flight(&mut slow);
        }
    }
    clock.sleep_until(session.hard_at).await;
    let _ = session
        .state
        .compare_exchange(FRESH, EXPIRING, Ordering::AcqRel, Ordering::Acquire);
}

fn flight_lost() -> Error {
    Error::Transport {
        message: "the login or refresh task ended without an answer (was the runtime shut down?)"
            .into(),
        source: None,
    }
}
