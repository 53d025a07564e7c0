//! The public handle: a builder that starts a sandbox on loopback, and the
//! running sandbox, which tests read counters from, inject faults into, and
//! drop to stop.

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::demand::{Demand, DemandSettings};
use crate::fault::Fault;
use crate::operation::Operation;
use crate::origin;
use crate::routes;
use crate::server;
use crate::state::Shared;
use crate::tokens::{Lifetimes, TokenStore};

/// A running emulator of Dynata's auth API and Demand API on `127.0.0.1`.
///
/// Dropping it stops the server: its tasks end and its port is freed.
pub struct Sandbox {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

impl Sandbox {
    /// A builder with the defaults: one user `sandbox` with password
    /// `sandbox`, access tokens that live 1800 s, refresh tokens 3600 s,
    /// sessions at most 10 hours, single-use refresh tokens, and any free
    /// port.
    pub fn builder() -> SandboxBuilder {
        SandboxBuilder::default()
    }

    /// Starts a sandbox with the defaults of [`Sandbox::builder`].
    ///
    /// # Errors
    /// When no port on 127.0.0.1 can be bound.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub async fn start() -> Result<Sandbox, StartError> {
        Sandbox::builder().start().await
    }

    /// The base URL to point a client at, such as `http://127.0.0.1:41234`
    /// (no trailing slash).
    pub fn base_url(&self) -> String {
        origin::bind_url(self.addr)
    }

    /// The address the sandbox listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many requests the operation has received so far, faulted and
    /// rejected ones included.
    pub fn count(&self, operation: Operation) -> u64 {
        self.shared.count(operation)
    }

    /// Makes the next `times` requests to `operation` fail with `fault`,
    /// after any faults already queued for it (first in, first out).
    pub fn inject(&self, operation: Operation, fault: Fault, times: u32) {
        self.shared.faults().push(operation, fault, times);
    }

    /// From now on, one request in `one_in` to `operation` (the `one_in`-th,
    /// the `2 × one_in`-th, ...) fails, with `faults` in turn: a steady fault
    /// rate, say 5% with `one_in = 20`, counted by the sandbox itself so that
    /// it holds however busy the machine is. Faults queued with
    /// [`Sandbox::inject`] come first. Replaces an earlier rate for the
    /// operation; `one_in = 0`, no faults, or [`Sandbox::clear_faults`] end
    /// it.
    pub fn fail_one_in(
        &self,
        operation: Operation,
        one_in: u32,
        faults: impl IntoIterator<Item = Fault>,
    ) {
        self.shared
            .faults()
            .set_steady(operation, one_in, faults.into_iter().collect());
    }

    /// Drops every queued fault, and every steady fault rate.
    pub fn clear_faults(&self) {
        self.shared.faults().clear();
    }

    /// Revokes every token issued so far, as if every session had been
    /// logged out: the next call with any of them is refused.
    pub fn revoke_all(&self) {
        self.shared.tokens().revoke_all();
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let users: Vec<&str> = self
            .shared
            .users
            .iter()
            .map(|(name, _)| name.as_str())
            .collect();
        f.debug_struct("Sandbox")
            .field("base_url", &self.base_url())
            .field("users", &users)
            .finish_non_exhaustive()
    }
}

/// Configures and starts a [`Sandbox`]; from [`Sandbox::builder`].
#[derive(Clone)]
pub struct SandboxBuilder {
    users: Vec<(String, String)>,
    access_token_ttl: Duration,
    refresh_token_ttl: Duration,
    session_max: Duration,
    reusable_refresh_tokens: bool,
    demand: DemandSettings,
    port: u16,
}

impl Default for SandboxBuilder {
    fn default() -> Self {
        SandboxBuilder {
            users: Vec::new(),
            access_token_ttl: Duration::from_secs(1800),
            refresh_token_ttl: Duration::from_secs(3600),
            // Keycloak's default "SSO Session Max".
            session_max: Duration::from_secs(10 * 3600),
            reusable_refresh_tokens: false,
            demand: DemandSettings {
                feasibility_delay: Duration::from_secs(3),
                accounts: Vec::new(),
            },
            port: 0,
        }
    }
}

impl SandboxBuilder {
    /// Adds a user who can log in with this password. Call it once per user;
    /// a name given twice keeps the last password. Without any call, the one
    /// user is `sandbox` with password `sandbox`. The first user is the one an
    /// authorization code (`sandbox-code`) logs in as.
    pub fn user(mut self, username: impl Into<String>, password: impl Into<String>) -> Self {
        let (username, password) = (username.into(), password.into());
        match self.users.iter_mut().find(|(name, _)| *name == username) {
            Some(user) => user.1 = password,
            None => self.users.push((username, password)),
        }
        self
    }

    /// How long access tokens live (`expiresIn`). Default 1800 s.
    ///
    /// Keycloak counts lifetimes in whole seconds, so the sandbox does too: a
    /// fraction of a second is dropped, and a lifetime under one second is
    /// refused by [`start`](Self::start) rather than served as
    /// `expiresIn: 0`.
    pub fn access_token_ttl(mut self, ttl: Duration) -> Self {
        self.access_token_ttl = ttl;
        self
    }

    /// How long refresh tokens live (`refreshExpiresIn`), Keycloak's "SSO
    /// Session Idle". Default 3600 s. Whole seconds, at least one, as for
    /// [`access_token_ttl`](Self::access_token_ttl).
    pub fn refresh_token_ttl(mut self, ttl: Duration) -> Self {
        self.refresh_token_ttl = ttl;
        self
    }

    /// The longest a session lives, counted from its login, however often it
    /// is refreshed: Keycloak's "SSO Session Max". No token outlives it, so
    /// `refreshExpiresIn` (and `expiresIn`) shrink towards it on each
    /// refresh, and once less than a second is left a refresh is refused
    /// with `invalid_grant` "Session not active". Default 10 hours,
    /// Keycloak's default. Whole seconds, at least one.
    pub fn session_max(mut self, max: Duration) -> Self {
        self.session_max = max;
        self
    }

    /// Whether a refresh token stays usable after it has been used, until it
    /// expires or its session ends. Default `false`: a refresh rotates the
    /// refresh token and the used one is dead at once.
    ///
    /// Keycloak's own default is `true` ("Revoke Refresh Token" off), and
    /// Dynata does not publish which it runs. Single use is the default here
    /// because it is the stricter of the two: a client that keeps the old
    /// refresh token fails against it at once, where reuse would hide the
    /// bug until it met a server that rotates. Turn it on to check that a
    /// client copes with the other behaviour too.
    pub fn reusable_refresh_tokens(mut self, reusable: bool) -> Self {
        self.reusable_refresh_tokens = reusable;
        self
    }

    /// Puts users in one account (a company): they share its projects,
    /// line items, events, templates and permissions, and no other account
    /// sees them. A user named in no account has one of its own, named
    /// after it; a user named in several belongs to the first. Names that
    /// are not users (see [`user`](Self::user)) are ignored.
    pub fn account<I, S>(mut self, name: impl Into<String>, users: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let users = users.into_iter().map(Into::into).collect();
        self.demand.accounts.push((name.into(), users));
        self
    }

    /// How long a line item's feasibility stays `PROCESSING` after it is
    /// created or after a change to what it is priced on, measured with
    /// tokio's clock (so paused test time moves it). Default 3 s (Dynata
    /// takes 20 to 120 s); `Duration::ZERO` makes it `READY` at once.
    pub fn feasibility_delay(mut self, delay: Duration) -> Self {
        self.demand.feasibility_delay = delay;
        self
    }

    /// The port to listen on, always on `127.0.0.1`. Default 0: any free port.
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Checks the settings, binds the port and starts serving on the current
    /// tokio runtime.
    ///
    /// # Errors
    /// [`StartError::LifetimeUnderOneSecond`] for a token or session
    /// lifetime under one second; [`StartError::Bind`] when the port cannot
    /// be bound (for example, it is in use).
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub async fn start(self) -> Result<Sandbox, StartError> {
        let lifetimes = Lifetimes {
            access: whole_seconds("access_token_ttl", self.access_token_ttl)?,
            refresh: whole_seconds("refresh_token_ttl", self.refresh_token_ttl)?,
            session_max: whole_seconds("session_max", self.session_max)?,
            reusable_refresh_tokens: self.reusable_refresh_tokens,
        };
        let mut users = self.users;
        if users.is_empty() {
            users.push(("sandbox".to_owned(), "sandbox".to_owned()));
        }
        let bind_error = |source| StartError::Bind {
            port: self.port,
            source,
        };
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, self.port))
            .await
            .map_err(bind_error)?;
        let addr = listener.local_addr().map_err(bind_error)?;
        let tokens = TokenStore::new(lifetimes);
        let names: Vec<String> = users.iter().map(|(name, _)| name.clone()).collect();
        let demand = Demand::new(self.demand, &names);
        let shared = Arc::new(Shared::new(addr, users, tokens, demand));
        let router = routes::router(shared.clone());
        let server = tokio::spawn(server::serve(listener, router));
        Ok(Sandbox {
            addr,
            shared,
            server,
        })
    }
}

impl fmt::Debug for SandboxBuilder {
    // Passwords stay out of test logs, fake as they are.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let users: Vec<&str> = self.users.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("SandboxBuilder")
            .field("users", &users)
            .field("access_token_ttl", &self.access_token_ttl)
            .field("refresh_token_ttl", &self.refresh_token_ttl)
            .field("session_max", &self.session_max)
            .field("reusable_refresh_tokens", &self.reusable_refresh_tokens)
            .field("feasibility_delay", &self.demand.feasibility_delay)
            .field("accounts", &self.demand.accounts)
            .field("port", &self.port)
            .finish()
    }
}

/// `ttl` in whole seconds, rounded down; under one second is an error.
fn whole_seconds(setting: &'static str, ttl: Duration) -> Result<Duration, StartError> {
    match ttl.as_secs() {
        0 => Err(StartError::LifetimeUnderOneSecond {
            setting,
            given: ttl,
        }),
        secs => Ok(Duration::from_secs(secs)),
    }
}

/// Why a [`SandboxBuilder`] could not start a sandbox.
#[derive(Debug)]
#[non_exhaustive]
pub enum StartError {
    /// A token or session lifetime under one second. Keycloak's lifetimes
    /// are whole seconds, and `expiresIn: 0` is not something Dynata sends.
    LifetimeUnderOneSecond {
        /// The builder method it was given to, such as `access_token_ttl`.
        setting: &'static str,
        /// What it was given.
        given: Duration,
    },
    /// The port could not be bound on 127.0.0.1.
    Bind {
        /// The port asked for (0: any free port).
        port: u16,
        /// What the operating system said.
        source: io::Error,
    },
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::LifetimeUnderOneSecond { setting, given } => write!(
                f,
                "{setting} is {given:?}, under one second: token lifetimes are whole seconds, at least 1"
            ),
            StartError::Bind { port, source } => {
                write!(f, "cannot listen on 127.0.0.1:{port}: {source}")
            }
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StartError::Bind { source, .. } => Some(source),
            StartError::LifetimeUnderOneSecond { .. } => None,
        }
    }
}
