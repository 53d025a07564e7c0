//! Issues, checks, rotates and revokes the sandbox's opaque tokens.
//! Expiry is read from tokio's clock, so a test that pauses tokio time on the
//! sandbox's runtime decides when tokens expire.

use std::collections::HashMap;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use crate::ids::Ids;

/// The four-field body of a successful login, refresh or code exchange.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TokenPair {
    access_token: String,
    expires_in: u64,
    refresh_expires_in: u64,
    refresh_token: String,
}

/// Who a token was issued to. Tokens issued by one login and its refreshes
/// share a session, so that logout ends all of them, as Keycloak does.
struct Grant {
    username: String,
    session: u64,
    expires_at: Instant,
}

pub(crate) struct TokenStore {
    access_ttl: Duration,
    refresh_ttl: Duration,
    access: HashMap<String, Grant>,
    refresh: HashMap<String, Grant>,
    next_session: u64,
    ids: Ids,
}

impl TokenStore {
    pub(crate) fn new(access_ttl: Duration, refresh_ttl: Duration) -> TokenStore {
        TokenStore {
            access_ttl,
            refresh_ttl,
            access: HashMap::new(),
            refresh: HashMap::new(),
            next_session: 0,
            ids: Ids::new(),
        }
    }

    /// A new pair in a new session.
    pub(crate) fn login(&mut self, username: &str) -> TokenPair {
        let session = self.next_session;
        self.next_session += 1;
        self.issue(username.to_owned(), session)
    }

    /// A new pair for a live refresh token. The refresh token is used up
    /// whether or not it was still live: refresh tokens rotate.
    pub(crate) fn refresh(&mut self, refresh_token: &str) -> Option<TokenPair> {
        let grant = self.refresh.remove(refresh_token)?;
        if grant.expires_at <= Instant::now() {
            return None;
        }
        Some(self.issue(grant.username, grant.session))
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
    }

    pub(crate) fn revoke_all(&mut self) {
        self.access.clear();
        self.refresh.clear();
    }

    fn issue(&mut self, username: String, session: u64) -> TokenPair {
        let now = Instant::now();
        // Dropping dead tokens here keeps a long-running sandbox's memory flat.
        self.access.retain(|_, grant| grant.expires_at > now);
        self.refresh.retain(|_, grant| grant.expires_at > now);

        let access_token = format!("sbx-at-{}", self.ids.next_hex());
        let refresh_token = format!("sbx-rt-{}", self.ids.next_hex());
        self.access.insert(
            access_token.clone(),
            Grant {
                username: username.clone(),
                session,
                expires_at: now + self.access_ttl,
            },
        );
        self.refresh.insert(
            refresh_token.clone(),
            Grant {
                username,
                session,
                expires_at: now + self.refresh_ttl,
            },
        );
        TokenPair {
            access_token,
            // Whole seconds, rounded down, so a client never believes a token
            // lives longer than it does.
            expires_in: self.access_ttl.as_secs(),
            refresh_expires_in: self.refresh_ttl.as_secs(),
            refresh_token,
        }
    }
}
