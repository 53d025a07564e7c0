//! The `Client` users build once and share, and its builder.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;
use crate::lifecycle::{Lifecycle, Settings};
use crate::store::{SharingPolicy, StoreError, StoreKey, TokenStore};
use crate::{AccessToken, Credentials, Environment, Error, RetryPolicy};

/// How long a rejected password is not sent again, by default.
pub(crate) const DEFAULT_REJECTED_LOGIN_COOLDOWN: Duration = Duration::from_secs(5 * 60);

/// A client for Dynata's API that always holds a valid access token.
///
/// Build one at start-up and share it: clones are cheap (one reference count)
/// and share one session, so every task uses the same token and concurrent
/// callers cause at most one login or refresh.
#[derive(Clone)]
pub struct Client {
    lifecycle: Arc<Lifecycle>,
    base_url: Arc<str>,
    /// Where the access token may go: the environment's scheme, host and
    /// port, and nowhere else.
    pub(crate) origin: Arc<url::Origin>,
    /// The HTTP client the auth API and authenticated calls share.
    pub(crate) http: reqwest::Client,
}

impl Client {
    /// Starts configuring a client.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// A valid access token, valid for at least the hard refresh margin;
    /// only when a renewal inside the margin has just failed, the current
    /// token while it is still valid (see the README's "Retries").
    ///
    /// The first call logs in. Later calls return the cached token without
    /// I/O or locks, refresh it in the background inside the soft window, and
    /// wait for a new one only inside the hard margin or after
    /// [`Client::invalidate`]. Dropping the returned future never disturbs
    /// other callers.
    pub async fn access_token(&self) -> Result<AccessToken, Error> {
        self.lifecycle.access_token().await
    }

    /// Drops the session's access token if `token` is still the current one,
    /// so the next [`Client::access_token`] renews it. Call it when the API
    /// rejected `token` with `401`: a burst of such calls for the same token
    /// causes one renewal, and `401`s renew the token at most once every five
    /// seconds, so an endpoint that refuses every token cannot make the client renew
    /// on every call. Returns whether it dropped the token.
    pub fn invalidate(&self, token: &AccessToken) -> bool {
        self.lifecycle.invalidate(token)
    }

    /// After a `401` that [`Client::invalidate`] did not act on (a `401`
    /// renewed the token moments ago): takes another fresh session from the
    /// token store, if it holds one. Sends nothing to Dynata.
    pub(crate) async fn adopt_after_refusal(&self, token: &AccessToken) {
        self.lifecycle.adopt_after_refusal(token).await;
    }

    /// Ends the session: clears it locally, then revokes its tokens at
    /// Dynata. A login or refresh already under way is waited for and its
    /// new session revoked too (its waiters get [`Error::LoggedOut`]), so once
    /// this returns `Ok`, no session this client obtained before the call is
    /// live at Dynata. With a token store, the session stored there is taken
    /// out and revoked too, whichever process obtained it. A session whose
    /// revocation got no answer or a `5xx` (the error this returns) is kept,
    /// and the next `logout()` tries it again; one Dynata refuses (`400`,
    /// `401`: it has ended already) is not. The next [`Client::access_token`]
    /// logs in afresh (one made while this runs first waits until the old
    /// session is out of the token store). Without a session it sends
    /// nothing. Once started, it runs to the end even if the caller stops
    /// waiting for it (a timeout around it).
    pub async fn logout(&self) -> Result<(), Error> {
        self.lifecycle.logout().await
    }

    /// Waits for the login or refresh under way, if any, to end: its
    /// session installed and, with a token store, stored. Returns at once
    /// when none is under way, and waits at most until that renewal's
    /// deadline ([`ClientBuilder::renewal_timeout`]) and a grace.
    ///
    /// Call it before a short-lived process (a command line, a cron job, a
    /// function) shuts its runtime down. Inside the soft window
    /// [`Client::access_token`] refreshes in the background; a refresh cut
    /// off by the end of the process may have spent the refresh token at
    /// Dynata while the new pair never reached the token store, which then
    /// holds a session Dynata no longer honours: the next process must log
    /// in again (or, without a password, cannot).
    pub async fn finish_renewal(&self) {
        self.lifecycle.finish_renewal().await;
    }

    /// Reads this account's record in the [`ClientBuilder::token_store`]
    /// once, within [`SharingPolicy::operation_timeout`], and says what went
    /// wrong: a store that cannot be reached or does not answer (a wrong
    /// Redis URL or password, a directory that cannot be read), or a record
    /// this client cannot use (sealed with another [`EncryptionKey`](crate::store::EncryptionKey),
    /// garbage, a file others can read). `Ok` when there is no store, and
    /// when the store holds no session yet.
    ///
    /// A client never fails a call for its store: it renews on its own and
    /// warns at most once a [`SharingPolicy::warning_interval`], so a fleet
    /// whose store is misconfigured works, unshared, each process logging
    /// in. Call this at start-up to fail fast instead. It writes nothing, so
    /// a store that can be read but not written passes.
    pub async fn check_token_store(&self) -> Result<(), StoreError> {
        self.lifecycle.check_token_store().await
    }

    pub(crate) fn retry_policy(&self) -> &RetryPolicy {
        self.lifecycle.retry_policy()
    }

    /// The clock the client measures expiry and waits on.
    pub(crate) fn clock(&self) -> &dyn Clock {
        self.lifecycle.clock()
    }

    /// The base URL of the environment, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.base_url)
            .field("credentials", self.lifecycle.credentials())
            .finish_non_exhaustive()
    }
}

/// Configures a [`Client`]. Only the credentials are required. Cloned, it
/// is a template: two clients built from it (sharing a token store, say)
/// are configured alike.
#[derive(Clone)]
pub struct ClientBuilder {
    credentials: Option<Credentials>,
    environment: Environment,
    http_client: Option<reqwest::Client>,
    timeout: Duration,
    connect_timeout: Duration,
    soft_window: Duration,
    hard_margin: Duration,
    retry: RetryPolicy,
    rejected_login_cooldown: Option<Duration>,
    renewal_timeout: Duration,
    clock: Option<Arc<dyn Clock>>,
    token_store: Option<Arc<dyn TokenStore>>,
    sharing_policy: Option<SharingPolicy>,
}

impl Default for ClientBuilder {
    fn default() -> Self {
        ClientBuilder {
            credentials: None,
            environment: Environment::Production,
            http_client: None,
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            soft_window: Duration::from_secs(5 * 60),
            hard_margin: Duration::from_secs(60),
            retry: RetryPolicy::default(),
            rejected_login_cooldown: Some(DEFAULT_REJECTED_LOGIN_COOLDOWN),
            renewal_timeout: Duration::from_secs(60),
            clock: None,
            token_store: None,
            sharing_policy: None,
        }
    }
}

impl ClientBuilder {
    /// The API account to log in with. Required.
    pub fn credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = Some(credentials);
        self
    }

    /// Where to send requests. Default: [`Environment::Production`].
    pub fn environment(mut self, environment: Environment) -> Self {
        self.environment = environment;
        self
    }

    /// The HTTP client to use, for proxies, custom roots or shared pools. Its
    /// own timeouts then apply instead of [`ClientBuilder::timeout`], and its
    /// own redirect policy: the SDK's client follows redirects only within
    /// the environment's origin, because reqwest's default follows a
    /// `307`/`308` to any host with the body (a password, a refresh token).
    /// Give yours `reqwest::redirect::Policy::none()` or a policy like it.
    /// The SDK's client also uses no proxy for a loopback environment (plain
    /// `http` would show a proxy the password); yours uses what it was given.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http_client = Some(client);
        self
    }

    /// Time limit for one request, from sending to the end of the body.
    /// Default 30 s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Time limit for opening a connection. Default 10 s.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long before expiry a background refresh starts while callers keep
    /// getting the current token at once. Default 5 minutes, and never more
    /// than half the token's lifetime.
    pub fn soft_refresh_window(mut self, window: Duration) -> Self {
        self.soft_window = window;
        self
    }

    /// How long before expiry callers stop getting the current token and wait
    /// for a new one. Default 1 minute, and never more than a tenth of the
    /// token's lifetime or the soft window.
    pub fn hard_refresh_margin(mut self, margin: Duration) -> Self {
        self.hard_margin = margin;
        self
    }

    /// How transient failures are retried. Default: [`RetryPolicy::default`].
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// After Dynata rejects the password, every call fails at once with the
    /// same [`Error::CredentialsRejected`] and nothing is sent for this long;
    /// then one call tries again. `None` never tries again: build a new
    /// client. Default 5 minutes, so a service recovers from a password fixed
    /// at Dynata without ever hammering its identity server into a lockout.
    ///
    /// With a [`ClientBuilder::token_store`], a refusal (`invalid_grant` or
    /// `invalid_client`) is also recorded there for this long (5 minutes
    /// with `None`, 24 hours at most), so the other processes sharing it do
    /// not send the same credentials either; a refusal learnt from that
    /// record holds this client back only until the record ends.
    pub fn rejected_login_cooldown(mut self, cooldown: Option<Duration>) -> Self {
        self.rejected_login_cooldown = cooldown;
        self
    }

    /// The longest a caller waits for a login or refresh, retries included.
    /// Past it the caller gets [`Error::Timeout`] (a call that needed the
    /// token, [`Error::NotSent`] holding it) and the renewal is
    /// abandoned, so that even an HTTP client without timeouts of its own
    /// cannot hold callers for ever. A [`Client::logout`] waits as long at
    /// most for each revocation: past it, the logout fails with
    /// [`Error::Timeout`] and the next one sends it again. Default 60 s.
    pub fn renewal_timeout(mut self, timeout: Duration) -> Self {
        self.renewal_timeout = timeout;
        self
    }

    /// The clock expiry is measured on. Default: tokio's monotonic clock
    /// ([`crate::clock::TokioClock`]), which the token fast path reads in its
    /// coarse, cheaper form, adding the time the machine slept (which the
    /// monotonic clock does not count). A clock passed here is taken as it
    /// is. Tests can pass a `ManualClock` (feature `test-util`).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Shares the session with every process that uses the same store and
    /// account (base URL, client id, username): one process renews it per
    /// expiry window and the others adopt it, so a fleet costs Dynata one
    /// login per session and one refresh per window. See [`crate::store`],
    /// and what anyone who can read the store can do. The store is consulted
    /// only when the token needs renewing, never on the cached-token fast
    /// path; a store that fails or is slow never fails a call. Default: none.
    pub fn token_store(mut self, store: Arc<dyn TokenStore>) -> Self {
        self.token_store = Some(store);
        self
    }

    /// How the session is shared through the [`ClientBuilder::token_store`].
    /// Default: [`SharingPolicy::default`] with `fresh_for` set to the soft
    /// refresh window and `lease_wait` to the renewal timeout.
    pub fn sharing_policy(mut self, policy: SharingPolicy) -> Self {
        self.sharing_policy = Some(policy);
        self
    }

    /// Checks the configuration and builds the client. Sends nothing: the
    /// first [`Client::access_token`] logs in.
    pub fn build(self) -> Result<Client, Error> {
        let credentials = self.credentials.ok_or_else(|| {
            Error::config("no credentials: call .credentials(Credentials::new(..)) or Credentials::from_env()")
        })?;
        let base_url = self.environment.base_url()?;
        let url = url::Url::parse(&base_url)
            .map_err(|e| Error::config(format!("the base URL is not a URL: {e}")))?;
        let origin = url.origin();
        #[cfg(not(any(feature = "rustls", feature = "native-tls")))]
        if base_url.starts_with("https:") {
            return Err(Error::config(
                "this build of dynata-sdk has no TLS (enable the `rustls` or `native-tls` feature), \
                 so it cannot reach an https URL",
            ));
        }
        if self.hard_margin > self.soft_window {
            return Err(Error::config(
                "the hard refresh margin is longer than the soft window",
            ));
        }
        if self.retry.max_attempts == 0 {
            return Err(Error::config("the retry policy allows no attempt at all"));
        }
        // Zero means "no limit" to many HTTP clients; here it would mean no
        // request ever finishes in time, so it is refused, by name.
        let limits = [
            ("timeout", self.timeout),
            ("connect_timeout", self.connect_timeout),
            ("renewal_timeout", self.renewal_timeout),
        ];
        if let Some((name, _)) = limits.iter().find(|(_, limit)| limit.is_zero()) {
            return Err(Error::config(format!(
                "{name} is zero: no request could finish in time"
            )));
        }
        let http = match self.http_client {
            Some(client) => client,
            None => {
                // The `rustls` feature builds reqwest without a crypto provider
                // of its own: this installs ring unless the application chose one.
                dynata_auth_api::ensure_crypto_provider();
                // reqwest's default follows a `307`/`308` to any host and
                // sends the body again: the password or a refresh token
                // would go with it. Redirects are followed within the
                // environment's origin only; any other is answered as is.
                let home = origin.clone();
                let redirects = reqwest::redirect::Policy::custom(move |attempt| {
                    if attempt.url().origin() != home {
                        attempt.stop()
                    } else if attempt.previous().len() >= 10 {
                        attempt.error("more than 10 redirects")
                    } else {
                        crate::authenticated::note_redirect();
                        attempt.follow()
                    }
                });
                let builder = reqwest::Client::builder();
                // A proxy (`HTTP_PROXY` and the like, which reqwest reads by
                // default) would receive a loopback environment's plain-http
                // traffic, password and tokens in clear, and reach its own
                // loopback, not ours.
                let builder = if crate::environment::is_loopback(&url) {
                    builder.no_proxy()
                } else {
                    builder
                };
                builder
                    .redirect(redirects)
                    .timeout(self.timeout)
                    .connect_timeout(self.connect_timeout)
                    .user_agent(concat!("dynata-sdk/", env!("CARGO_PKG_VERSION")))
                    .build()
                    .map_err(|e| Error::config(format!("cannot build the HTTP client: {e}")))?
            }
        };
        let api = dynata_auth_api::Client::new_with_client(&base_url, http.clone());
        let settings = Settings {
            soft_window: self.soft_window,
            hard_margin: self.hard_margin,
            retry: self.retry,
            rejected_login_cooldown: self.rejected_login_cooldown,
            renewal_timeout: self.renewal_timeout,
        };
        let store = self.token_store.map(|store| {
            let policy = self.sharing_policy.unwrap_or_else(|| SharingPolicy {
                fresh_for: self.soft_window,
                // A holder's renewal lasts at most this long: wait as long
                // (a client that can log in stops earlier, to log in on its
                // own in time: see `Lifecycle::renew`).
                lease_wait: self.renewal_timeout,
                ..SharingPolicy::default()
            });
            let key =
                StoreKey::for_account(&base_url, &credentials.client_id, &credentials.username);
            (store, key, policy)
        });
        Ok(Client {
            lifecycle: Arc::new(Lifecycle::new(
                api,
                credentials,
                settings,
                self.clock,
                store,
            )),
            base_url: base_url.into(),
            origin: Arc::new(origin),
            http,
        })
    }
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("credentials", &self.credentials)
            .field("environment", &self.environment)
            .field("timeout", &self.timeout)
            .field("soft_window", &self.soft_window)
            .field("hard_margin", &self.hard_margin)
            .field("retry", &self.retry)
            .field("renewal_timeout", &self.renewal_timeout)
            .field("token_store", &self.token_store)
            .finish_non_exhaustive()
    }
}

/// Only a build without any TLS feature compiles these: `.ci/run` runs them
/// with `cargo test -p dynata-sdk --no-default-features --lib without_tls`.
#[cfg(all(test, not(any(feature = "rustls", feature = "native-tls"))))]
mod without_tls {
    use super::*;
    use crate::{Credentials, Environment};

    fn build(environment: Environment) -> Result<Client, Error> {
        Client::builder()
            .credentials(Credentials::new("user", "password"))
            .environment(environment)
            .build()
    }

    #[test]
    fn an_https_environment_is_refused_when_built_and_loopback_http_is_not() {
        let error = build(Environment::Uat).expect_err("https needs TLS");
        assert!(matches!(error, Error::Config { .. }), "{error:?}");
        assert!(error.to_string().contains("no TLS"), "{error}");
        let loopback = Environment::custom("http://127.0.0.1:9").expect("loopback http");
        build(loopback).expect("plain http on loopback needs no TLS");
    }
}
