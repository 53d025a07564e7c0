//! When to try again: the retry policy, and the one retry engine that every
//! call goes through (the auth operations, [`crate::Client::send`], the
//! middleware).

use std::collections::hash_map::RandomState;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant};

use tracing::Instrument;

use crate::Error;
use crate::clock::Clock;

/// How transient failures (connection errors, timeouts, `408`, `429`, `5xx`,
/// gateway pages) are retried: exponential backoff with jitter, honouring
/// `Retry-After` on every transient status, within a bounded budget.
///
/// A rejected password is never retried, and neither is a `POST` to the
/// Sample API, whatever the policy.
///
/// ```
/// use std::time::Duration;
/// let policy = dynata_sdk::RetryPolicy::default()
///     .with_max_attempts(3)
///     .with_max_total_wait(Duration::from_secs(10));
/// assert_eq!(policy.max_attempts, 3);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
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
        RetryPolicy::default().with_max_attempts(1)
    }

    /// Attempts in all, the first included.
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// The backoff before the second attempt; it doubles each time.
    pub fn with_initial_backoff(mut self, backoff: Duration) -> Self {
        self.initial_backoff = backoff;
        self
    }

    /// The longest single backoff.
    pub fn with_max_backoff(mut self, backoff: Duration) -> Self {
        self.max_backoff = backoff;
        self
    }

    /// The most time all waits of one call together may take.
    pub fn with_max_total_wait(mut self, wait: Duration) -> Self {
        self.max_total_wait = wait;
        self
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

/// A failed attempt, as the engine and the `401` step need to see it.
#[derive(Debug)]
pub(crate) struct Failure<T> {
    /// What went wrong, for the caller and the logs.
    pub(crate) error: Error,
    /// An answer to hand back as it came if no attempt is left
    /// ([`crate::Client::send`] returns a last `503` as a response).
    pub(crate) answer: Option<T>,
    /// Whether another attempt may succeed.
    pub(crate) transient: bool,
    /// The server's `Retry-After`, honoured whenever the failure is transient.
    pub(crate) retry_after: Option<Duration>,
    /// Whether this is Dynata refusing the bearer token, for the `401` step.
    pub(crate) unauthorized: TokenRefused,
}

/// What a `401` says about the bearer token, for the `401` step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenRefused {
    /// Nothing: no `401`, or another host's, reached through a redirect
    /// the caller's own HTTP client followed (an expired storage link).
    No,
    /// Dynata refused the token, so the call did nothing: renew the token,
    /// and the call may be sent again.
    BeforeActing,
    /// Dynata refused the token at the end of redirects of a call that is
    /// not idempotent: the call may have had its effect before them (a
    /// `POST` answered `303 See Other`). Renew the token, send nothing again.
    AfterRedirect,
}

impl TokenRefused {
    /// How a `401` answer reads: from `redirected_to` if a redirect was
    /// followed, to a call sent to the environment's origin `home`.
    pub(crate) fn read(
        home: &url::Origin,
        idempotent: bool,
        redirected_to: Option<&url::Url>,
    ) -> TokenRefused {
        match redirected_to {
            None => TokenRefused::BeforeActing,
            Some(url) if url.origin() != *home => TokenRefused::No,
            Some(_) if idempotent => TokenRefused::BeforeActing,
            Some(_) => TokenRefused::AfterRedirect,
        }
    }
}

impl<T> Failure<T> {
    /// A failure no retry can mend.
    pub(crate) fn fatal(error: Error) -> Self {
        Failure {
            transient: false,
            ..Failure::transient(error)
        }
    }

    /// A failure that another attempt may mend.
    pub(crate) fn transient(error: Error) -> Self {
        Failure {
            error,
            answer: None,
            transient: true,
            retry_after: None,
            unauthorized: TokenRefused::No,
        }
    }

    /// A failure classified by its error's meaning (status and kind).
    pub(crate) fn of(error: Error) -> Self {
        let transient = error.is_transient();
        Failure {
            transient,
            ..Failure::transient(error)
        }
    }

    /// The same failure, for an attempt whose answers are of another type,
    /// and the answer this one held.
    pub(crate) fn take_answer<U>(self) -> (Failure<U>, Option<T>) {
        let Failure {
            error,
            answer,
            transient,
            retry_after,
            unauthorized,
        } = self;
        let failure = Failure {
            error,
            answer: None,
            transient,
            retry_after,
            unauthorized,
        };
        (failure, answer)
    }

    /// What the call returns when this is its last attempt.
    pub(crate) fn into_result(self) -> Result<T, Error> {
        match self.answer {
            Some(answer) => Ok(answer),
            None => Err(self.error),
        }
    }
}

/// Runs `attempt` until it succeeds, fails for good, or the policy's budget
/// runs out, sleeping on `clock` between attempts, and never into `until`
/// (a renewal's deadline): a wait that would not end before it is not
/// started. With `may_retry` false (a `POST`, a body that cannot be sent
/// twice) there is one attempt only. The last failure is returned whole, so
/// that the caller can remember the server's `Retry-After`.
pub(crate) async fn with_retries<T, F, Fut>(
    operation: &'static str,
    policy: &RetryPolicy,
    clock: &dyn Clock,
    until: Option<Instant>,
    may_retry: bool,
    mut attempt: F,
) -> Result<T, Failure<T>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Failure<T>>>,
{
    let span = tracing::info_span!("dynata", operation);
    async move {
        let mut waited = Duration::ZERO;
        let mut number = 1u32;
        loop {
            let failure = match attempt().await {
                Ok(value) => {
                    tracing::debug!(attempt = number, outcome = "ok", "{operation} succeeded");
                    return Ok(value);
                }
                Err(failure) => failure,
            };
            let ends_in_time = |wait: &Duration| {
                until.is_none_or(|until| clock.now().checked_add(*wait).is_some_and(|end| end < until))
            };
            let wait = (may_retry && failure.transient)
                .then(|| policy.next_wait(number, waited, failure.retry_after))
                .flatten()
                .filter(ends_in_time);
            let Some(wait) = wait else {
                tracing::warn!(attempt = number, outcome = "failed", error = %failure.error, "{operation} failed");
                return Err(failure);
            };
            tracing::warn!(
                attempt = number,
                wait_ms = wait.as_millis() as u64,
                error = %failure.error,
                "{operation} failed transiently; retrying"
            );
            clock.sleep(wait).await;
            waited = waited.saturating_add(wait);
            number += 1;
        }
    }
    .instrument(span)
    .await
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
