//! The session a store holds, with absolute expiry times, and how a process
//! turns them into deadlines on its own monotonic clock.
//!
//! Processes share no monotonic clock, so a stored session carries wall-clock
//! times. Hosts' wall clocks disagree by a few seconds; every conversion
//! subtracts a skew allowance, so a host whose clock is behind never uses a
//! token after it has expired.

use std::fmt;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dynata_auth_api::Secret;

/// One token pair as a store holds it: the tokens and when, by the wall
/// clock, each expires. `Debug` is redacted.
#[derive(Clone, PartialEq)]
pub struct StoredSession {
    /// When Dynata issued the pair (just before the request was sent).
    pub issued_at: SystemTime,
    /// The access token.
    pub access_token: Secret,
    /// When the access token expires.
    pub access_expires_at: SystemTime,
    /// The refresh token (single-use: Dynata may rotate it on every refresh).
    pub refresh_token: Secret,
    /// When the refresh token expires.
    pub refresh_expires_at: SystemTime,
}

impl StoredSession {
    /// A session from the lifetimes Dynata sent (`expiresIn`,
    /// `refreshExpiresIn`), counted from `sent_at`: the wall-clock time just
    /// before the request left, so network delay only makes it earlier.
    /// Times are kept to the millisecond, rounded down.
    pub fn from_lifetimes(
        access_token: Secret,
        access_lifetime: Duration,
        refresh_token: Secret,
        refresh_lifetime: Duration,
        sent_at: SystemTime,
    ) -> Option<Self> {
        // Stores keep milliseconds: round down (earlier is the safe side),
        // so that what is loaded equals what was saved.
        let sent_at = from_unix_millis(unix_millis(sent_at))?;
        Some(StoredSession {
            issued_at: sent_at,
            access_token,
            access_expires_at: sent_at.checked_add(access_lifetime)?,
            refresh_token,
            refresh_expires_at: sent_at.checked_add(refresh_lifetime)?,
        })
    }

    /// How long the access token was issued for.
    pub fn access_lifetime(&self) -> Duration {
        self.access_expires_at
            .duration_since(self.issued_at)
            .unwrap_or_default()
    }

    /// How long the refresh token was issued for.
    pub fn refresh_lifetime(&self) -> Duration {
        self.refresh_expires_at
            .duration_since(self.issued_at)
            .unwrap_or_default()
    }

    /// Time left on the access token at `now`, less the skew allowance; zero
    /// once that is spent.
    pub fn access_remaining(&self, now: SystemTime, skew: Duration) -> Duration {
        remaining(self.access_expires_at, now, skew)
    }

    /// Time left on the refresh token at `now`, less the skew allowance.
    pub fn refresh_remaining(&self, now: SystemTime, skew: Duration) -> Duration {
        remaining(self.refresh_expires_at, now, skew)
    }

    /// When the access token expires on a monotonic clock that reads
    /// `now_instant` at the wall-clock time `now`, made early by `skew`.
    /// `None` when it has (conservatively) expired already.
    pub fn access_deadline(
        &self,
        now: SystemTime,
        now_instant: Instant,
        skew: Duration,
    ) -> Option<Instant> {
        local_deadline(self.access_expires_at, now, now_instant, skew)
    }

    /// As [`StoredSession::access_deadline`], for the refresh token.
    pub fn refresh_deadline(
        &self,
        now: SystemTime,
        now_instant: Instant,
        skew: Duration,
    ) -> Option<Instant> {
        local_deadline(self.refresh_expires_at, now, now_instant, skew)
    }
}

impl fmt::Debug for StoredSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredSession")
            .field("issued_at_unix_ms", &unix_millis(self.issued_at))
            .field("access_token", &self.access_token)
            .field(
                "access_expires_at_unix_ms",
                &unix_millis(self.access_expires_at),
            )
            .field("refresh_token", &self.refresh_token)
            .field(
                "refresh_expires_at_unix_ms",
                &unix_millis(self.refresh_expires_at),
            )
            .finish()
    }
}

/// Time from `now` to `expires_at`, less `skew`; zero when none is left.
fn remaining(expires_at: SystemTime, now: SystemTime, skew: Duration) -> Duration {
    expires_at
        .duration_since(now)
        .unwrap_or_default()
        .saturating_sub(skew)
}

/// An absolute wall-clock expiry as a deadline on a monotonic clock, `skew`
/// early: the conservative local deadline. `None` when already past.
pub fn local_deadline(
    expires_at: SystemTime,
    now: SystemTime,
    now_instant: Instant,
    skew: Duration,
) -> Option<Instant> {
    let left = remaining(expires_at, now, skew);
    if left.is_zero() {
        return None;
    }
    now_instant.checked_add(left)
}

/// Milliseconds since the Unix epoch; times before it count as zero.
pub(crate) fn unix_millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The inverse of [`unix_millis`]; `None` past what a `SystemTime` holds.
pub(crate) fn from_unix_millis(millis: u64) -> Option<SystemTime> {
    UNIX_EPOCH.checked_add(Duration::from_millis(millis))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(now: SystemTime) -> StoredSession {
        StoredSession::from_lifetimes(
            Secret::new("access-secret"),
            Duration::from_secs(1800),
            Secret::new("refresh-secret"),
            Duration::from_secs(3600),
            now,
        )
        .expect("in range")
    }

    #[test]
    fn a_deadline_is_early_by_the_skew_allowance() {
        let wall = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mono = Instant::now();
        let s = session(wall);
        let deadline = s
            .access_deadline(
                wall + Duration::from_secs(100),
                mono,
                Duration::from_secs(5),
            )
            .expect("still valid");
        assert_eq!(deadline - mono, Duration::from_secs(1800 - 100 - 5));
        assert_eq!(
            s.access_remaining(wall + Duration::from_secs(1796), Duration::from_secs(5)),
            Duration::ZERO
        );
        assert!(
            s.access_deadline(
                wall + Duration::from_secs(1796),
                mono,
                Duration::from_secs(5)
            )
            .is_none(),
            "within the skew allowance of expiry counts as expired"
        );
        assert_eq!(s.refresh_lifetime(), Duration::from_secs(3600));
    }

    #[test]
    fn debug_is_redacted() {
        let debug = format!("{:?}", session(SystemTime::now()));
        assert!(
            !debug.contains("access-secret") && !debug.contains("refresh-secret"),
            "{debug}"
        );
    }

    #[test]
    fn unix_millis_round_trip() {
        let t = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(from_unix_millis(unix_millis(t)), Some(t));
        assert_eq!(unix_millis(UNIX_EPOCH - Duration::from_secs(1)), 0);
    }
}
