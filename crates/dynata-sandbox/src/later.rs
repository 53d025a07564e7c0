//! Adding a duration to tokio's clock without the panic `Instant + Duration`
//! has on overflow: a lifetime or delay too long to represent (say
//! `Duration::MAX` given to the builder) means "never" in practice.

use std::time::Duration;

use tokio::time::Instant;

/// About thirty years: longer than any sandbox runs.
const NEVER: Duration = Duration::from_secs(30 * 365 * 86_400);

/// `now + duration`, or a moment no test will reach when that overflows.
pub(crate) fn later(now: Instant, duration: Duration) -> Instant {
    now.checked_add(duration)
        .or_else(|| now.checked_add(NEVER))
        .unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_overflowing_duration_is_far_away_not_a_panic() {
        let now = Instant::now();
        assert_eq!(
            later(now, Duration::from_secs(5)),
            now + Duration::from_secs(5)
        );
        assert!(later(now, Duration::MAX) >= now + NEVER);
    }
}
