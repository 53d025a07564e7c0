//! Issues, checks, rotates and revokes the sandbox's opaque tokens, the way
//! Keycloak (Dynata's identity server) does: a login opens a session, every
//! token belongs to one, and no token outlives its session's maximum
//! lifetime. Expiry is read from tokio's clock, so a test that pauses tokio
//! time on the sandbox's runtime decides when tokens expire.

use std::collections::HashMap;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use crate::ids::Ids;
use crate::later::later;

/// The four-field body of a successful login, refresh or code exchange.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TokenPair {
    access_token: String,
    expires_in: u64,
    refresh_expires_in: u64,
    refresh_token: String,
}

/// How tokens live; every duration is a whole number of seconds of at least
/// one (the builder checks), as Keycloak's realm settings are.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Lifetimes {
    /// Keycloak's "Access Token Lifespan".
    pub(crate) access: Duration,
    /// Keycloak's "SSO Session Idle": how long a refresh token lives.
    pub(crate) refresh: Duration,
    /// Keycloak's "SSO Session Max": no token outlives its session's login
    /// by more than this, however often it is refreshed.
    pub(crate) session_max: Duration,
    /// Keycloak's "Revoke Refresh Token" turned off (its default): a refresh
    /// token stays usable after a refresh, until it expires.
    pub(crate) reusable_refresh_tokens: bool,
}

/// Why a refresh was refused; each is Keycloak's `invalid_grant` with its
/// own description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RefreshRefused {
    /// Unknown, used, revoked or expired.
    TokenNotActive,
    /// The session reached its maximum lifetime: less than one whole second
    /// of it is left, so there is nothing to give out.
    SessionNotActive,
}

impl RefreshRefused {
    pub(crate) fn description(self) -> &'static str {
        match self {
            RefreshRefused::TokenNotActive => "Token is not active",
            RefreshRefused::SessionNotActive => "Session not active",
        }
    }
}

/// Who a token was issued to. Tokens issued by one login and its refreshes
/// share a session, so that logout ends all of them, as Keycloak does.
struct Grant {
    username: String,
    session: u64,
    expires_at: Instant,
}

pub(crate) struct TokenStore {
    lifetimes: Lifetimes,
    access: HashMap<String, Grant>,
    refresh: HashMap<String, Grant>,
    /// When each live session ends for good (its login plus `session_max`).
    sessions: HashMap<u64, Instant>,
    next_session: u64,
    ids: Ids,
}

impl TokenStore {
    pub(crate) fn new(lifetimes: Lifetimes) -> TokenStore {
        TokenStore {
            lifetimes,
            access: HashMap::new(),
            refresh: HashMap::new(),
            sessions: HashMap::new(),
            next_session: 0,
            ids: Ids::new(),
        }
    }

    /// A new pair in a new session.
    pub(crate) fn login(&mut self, username: &str) -> TokenPair {
        let session = self.next_session;
        self.next_session += 1;
        let now = Instant::now();
        self.sweep(now);
        let session_max = self.lifetimes.session_max;
        self.sessions.insert(session, later(now, session_max));
        // A fresh session has all of `session_max`, at least a second, ahead.
        let (expires_in, refresh_expires_in) = self.whole_seconds(session_max);
        self.mint(
            username.to_owned(),
            session,
            now,
            expires_in,
            refresh_expires_in,
        )
    }

    /// A new pair for a live refresh token of a live session. Single-use
    /// refresh tokens are used up whether or not they were still live.
    pub(crate) fn refresh(&mut self, refresh_token: &str) -> Result<TokenPair, RefreshRefused> {
        let now = Instant::now();
        let grant = if self.lifetimes.reusable_refresh_tokens {
            self.refresh
                .get(refresh_token)
                .map(|grant| (grant.username.clone(), grant.session, grant.expires_at))
        } else {
            self.refresh
                .remove(refresh_token)
                .map(|grant| (grant.username, grant.session, grant.expires_at))
        };
        let Some((username, session, expires_at)) = grant else {
            return Err(RefreshRefused::TokenNotActive);
        };
        if expires_at <= now {
            return Err(RefreshRefused::TokenNotActive);
        }
        self.sweep(now);
        let session_left = match self.sessions.get(&session) {
            Some(ends_at) => ends_at.saturating_duration_since(now),
            None => return Err(RefreshRefused::SessionNotActive),
        };
        match self.whole_seconds(session_left) {
            (0, _) | (_, 0) => Err(RefreshRefused::SessionNotActive),
            (expires_in, refresh_expires_in) => {
                Ok(self.mint(username, session, now, expires_in, refresh_expires_in))
            }
        }
    }

    /// The user a live access token was issued to.
    pub(crate) fn user_of(&self, access_token: &str) -> Option<&str> {
        let grant = self.access.get(access_token)?;
        (Instant::now() < grant.expires_at).then_some(grant.username.as_str())
    }

    /// Ends the sessions either token belongs to; unknown tokens are ignored,
    /// so logging out twice is harmless.
    pub(crate) fn logout(&mut self, access_token: &str, refresh_token: &str) {
        let ended: Vec<u64> = [
            self.access.get(access_token),
            self.refresh.get(refresh_token),
        ]
        .into_iter()
        .flatten()
        .map(|grant| grant.session)
        .collect();
        self.access
            .retain(|_, grant| !ended.contains(&grant.session));
        self.refresh
            .retain(|_, grant| !ended.contains(&grant.session));
        self.sessions.retain(|session, _| !ended.contains(session));
    }

    pub(crate) fn revoke_all(&mut self) {
        self.access.clear();
        self.refresh.clear();
        self.sessions.clear();
    }

    /// Drops dead tokens and sessions, which keeps a long-running sandbox's
    /// memory flat.
    fn sweep(&mut self, now: Instant) {
        self.access.retain(|_, grant| grant.expires_at > now);
        self.refresh.retain(|_, grant| grant.expires_at > now);
        self.sessions.retain(|_, ends_at| *ends_at > now);
    }

    /// `(expiresIn, refreshExpiresIn)` for a session with `session_left` to
    /// go: each lifetime capped by the session's end, in whole seconds
    /// rounded down, as Keycloak counts them.
    fn whole_seconds(&self, session_left: Duration) -> (u64, u64) {
        let capped = |ttl: Duration| ttl.min(session_left).as_secs();
        (
            capped(self.lifetimes.access),
            capped(self.lifetimes.refresh),
        )
    }

    /// A new pair whose tokens die exactly when the rounded lifetimes say:
    /// what the client is told is the truth.
    fn mint(
        &mut self,
        username: String,
        session: u64,
        now: Instant,
        expires_in: u64,
        refresh_expires_in: u64,
    ) -> TokenPair {
        let access_token = format!("sbx-at-{}", self.ids.next_hex());
        let refresh_token = format!("sbx-rt-{}", self.ids.next_hex());
        self.access.insert(
            access_token.clone(),
            Grant {
                username: username.clone(),
                session,
                expires_at: later(now, Duration::from_secs(expires_in)),
            },
        );
        self.refresh.insert(
            refresh_token.clone(),
            Grant {
                username,
                session,
                expires_at: later(now, Duration::from_secs(refresh_expires_in)),
            },
        );
        TokenPair {
            access_token,
            expires_in,
            refresh_expires_in,
            refresh_token,
        }
    }
}
