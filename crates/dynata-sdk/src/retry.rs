//! When to try again: the retry policy and its backoff.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// How transient failures (connection errors, timeouts, `408`, `429`, `5xx`,
/// gateway pages) of the auth API are retried: exponential backoff with
/// jitter, honouring `Retry-After`, within a bounded budget.
///
/// A rejected password is never retried, whatever the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included. Default 5.
    pub max_attempts: u32,
    /// Backoff before the second attempt; it doubles each time. Default 250 ms.
    pub initial_backoff: Duration,
    /// The longest single backoff. Default 8 s.
    pub max_backoff: Duration,
    /// The most time all waits together may take; a `Retry-After` that does
    /// not fit ends the retries. Default 30 s.
    pub max_total_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(8),
            max_total_wait: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// Never retry.
    pub fn none() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// How long to wait before retrying after failed attempt number `attempt`
    /// (1-based), having waited `waited` so far: `Retry-After` if the server
    /// sent one, else the backoff. `None` when the budget is spent.
    pub(crate) fn next_wait(
        &self,
        attempt: u32,
        waited: Duration,
        retry_after: Option<Duration>,
    ) -> Option<Duration> {
        let wait = retry_after.unwrap_or_else(|| self.backoff(attempt));
        // Saturating: a server may send `Retry-After: 18446744073709551615`.
        let total = waited.saturating_add(wait);
        (attempt < self.max_attempts && total <= self.max_total_wait).then_some(wait)
    }

    /// The wait after failed attempt number `attempt` (1-based): the
    /// exponential backoff, with "equal jitter" (between half and all of it)
    /// so that many clients failing together do not retry together.
    pub(crate) fn backoff(&self, attempt: u32) -> Duration {
        let exponential = self
            .initial_backoff
            .saturating_mul(
                1u32.checked_shl(attempt.saturating_sub(1))
                    .unwrap_or(u32::MAX),
            )
            .min(self.max_backoff);
        let half = exponential / 2;
        half + half.mul_f64(random_fraction())
    }
}

/// A number in [0, 1) that needs no random-number crate: std's `RandomState`
/// is seeded randomly per process and per instance.
fn random_fraction() -> f64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u8(0);
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_jitter_and_is_capped() {
        let policy = RetryPolicy::default();
        for attempt in 1..=10 {
            let full = (policy.initial_backoff * 2u32.pow(attempt - 1)).min(policy.max_backoff);
            let wait = policy.backoff(attempt);
            assert!(
                wait >= full / 2 && wait <= full,
                "attempt {attempt}: {wait:?} vs {full:?}"
            );
        }
        assert!(policy.backoff(1000) <= policy.max_backoff);
    }

    #[test]
    fn a_huge_retry_after_ends_the_retries_without_overflow() {
        let policy = RetryPolicy::default();
        let forever = Some(Duration::from_secs(u64::MAX));
        assert_eq!(policy.next_wait(1, Duration::from_secs(1), forever), None);
        let seven = Some(Duration::from_secs(7));
        assert_eq!(policy.next_wait(1, Duration::from_secs(1), seven), seven);
    }

    #[test]
    fn jitter_spreads_the_waits() {
        let policy = RetryPolicy::default();
        let waits: std::collections::HashSet<Duration> =
            (0..20).map(|_| policy.backoff(3)).collect();
        assert!(waits.len() > 1, "no jitter: {waits:?}");
    }
}
