//! The monotonic clock the token lifecycle reads and sleeps on.
//!
//! Expiry is always counted on a monotonic clock, never the wall clock. The
//! clock is injectable so that tests (ours and yours) control time instead of
//! sleeping through it: `ManualClock`, behind the `test-util` feature.

use std::fmt;
use std::future::Future;
use std::pin::{Pin, pin};
#[cfg(feature = "test-util")]
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Poll;
use std::time::{Duration, Instant};

#[cfg(feature = "test-util")]
use tokio::sync::watch;

/// A future returned by [`Clock::sleep_until`].
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A monotonic clock: what time it is, and a way to wait for a later time.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current instant.
    fn now(&self) -> Instant;
    /// Completes once [`Clock::now`] has reached `deadline`.
    fn sleep_until(&self, deadline: Instant) -> Sleep;

    /// Completes once `duration` has passed on this clock. A duration too
    /// long for an [`Instant`] to hold (a server's `Retry-After` under a
    /// policy without a budget, say) sleeps for a century instead of panicking.
    fn sleep(&self, duration: Duration) -> Sleep {
        self.sleep_until(saturating_add(self.now(), duration))
    }
}

/// `instant + duration`, or a century later if no `Instant` can hold that.
pub(crate) fn saturating_add(instant: Instant, duration: Duration) -> Instant {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);
    instant
        .checked_add(duration)
        .or_else(|| instant.checked_add(CENTURY))
        .unwrap_or(instant)
}

/// The default clock: tokio's, which is the system's monotonic clock, or
/// tokio's paused clock in tests that pause time.
#[derive(Debug, Default, Clone, Copy)]
pub struct TokioClock;

impl Clock for TokioClock {
    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }

    fn sleep_until(&self, deadline: Instant) -> Sleep {
        Box::pin(tokio::time::sleep_until(deadline.into()))
    }
}

/// The clock the token fast path reads on every call: ticks that are cheap
/// to read and to compare, on the same timeline as the client's [`Clock`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct FastClock {
    /// For the default clock, the system's coarse monotonic clock
    /// (`CLOCK_MONOTONIC_COARSE` on Linux): a few nanoseconds to read where
    /// the precise one takes about twenty, the fast path's whole budget. An
    /// injected clock is read as it is.
    coarse: bool,
    /// Ticks of an injected clock are nanoseconds since this instant.
    origin: Instant,
}

impl FastClock {
    /// The coarse clock lags the precise one by up to a tick (1 to 16 ms,
    /// depending on the platform): deadlines come this much earlier.
    const COARSE_SLACK: Duration = Duration::from_millis(50);
    /// Farther deadlines are checked again after this long: the coarse
    /// clock's fixed-point ticks hold a few centuries at most.
    const HORIZON: Duration = Duration::from_secs(365 * 24 * 60 * 60);

    /// `coarse` for the default clock; `clock` is the client's.
    pub(crate) fn new(coarse: bool, clock: &dyn Clock) -> Self {
        FastClock {
            coarse,
            origin: clock.now(),
        }
    }

    /// The time now, in ticks.
    #[inline]
    pub(crate) fn now(&self, clock: &dyn Clock) -> u64 {
        if self.coarse {
            // Not `now()`, which also writes a process-wide cache: a write
            // that every thread would contend on.
            coarsetime::Instant::now_without_cache_update().as_ticks()
        } else {
            nanos(clock.now().saturating_duration_since(self.origin))
        }
    }

    /// `deadline`, an instant of `clock`, in ticks: never later than it.
    pub(crate) fn ticks_at(&self, deadline: Instant, clock: &dyn Clock) -> u64 {
        self.ticks(deadline, clock, Self::COARSE_SLACK)
    }

    /// `moment`, an instant of `clock`, in ticks, give or take the coarse
    /// clock's tick: for what may happen a little early or late.
    pub(crate) fn ticks_near(&self, moment: Instant, clock: &dyn Clock) -> u64 {
        self.ticks(moment, clock, Duration::ZERO)
    }

    fn ticks(&self, at: Instant, clock: &dyn Clock, slack: Duration) -> u64 {
        if !self.coarse {
            return nanos(at.saturating_duration_since(self.origin));
        }
        let remaining = at
            .saturating_duration_since(clock.now())
            .saturating_sub(slack)
            .min(Self::HORIZON);
        self.now(clock)
            .saturating_add(coarsetime::Duration::from(remaining).as_ticks())
    }
}

/// The output of whichever of two futures finishes first: `Some` for the
/// first, `None` if `deadline` came first.
pub(crate) async fn first_of<T>(
    work: impl Future<Output = T>,
    deadline: impl Future<Output = ()>,
) -> Option<T> {
    let mut work = pin!(work);
    let mut deadline = pin!(deadline);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(value) = work.as_mut().poll(cx) {
            return Poll::Ready(Some(value));
        }
        deadline.as_mut().poll(cx).map(|()| None)
    })
    .await
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// A clock that moves only when told to: [`ManualClock::advance`]. Sleepers
/// wake as soon as the clock passes their deadline.
///
/// Use it to test code built on the SDK without waiting for real tokens to
/// expire. Clones share the same time. Behind the `test-util` feature.
#[cfg(feature = "test-util")]
#[derive(Clone)]
pub struct ManualClock {
    now: Arc<watch::Sender<Instant>>,
    sleeping: Arc<Mutex<Vec<Instant>>>,
}

#[cfg(feature = "test-util")]
impl ManualClock {
    /// A clock standing at the current instant.
    pub fn new() -> Self {
        ManualClock {
            now: Arc::new(watch::Sender::new(Instant::now())),
            sleeping: Arc::default(),
        }
    }

    /// Moves the clock forward, waking every sleeper whose deadline passed.
    pub fn advance(&self, by: Duration) {
        self.now.send_modify(|now| *now += by);
    }

    /// The deadlines that sleepers are waiting for now, earliest first.
    pub fn sleeping_until(&self) -> Vec<Instant> {
        let mut deadlines = self.lock_sleeping().clone();
        deadlines.sort();
        deadlines
    }

    fn lock_sleeping(&self) -> std::sync::MutexGuard<'_, Vec<Instant>> {
        self.sleeping.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(feature = "test-util")]
impl Default for ManualClock {
    fn default() -> Self {
        ManualClock::new()
    }
}

#[cfg(feature = "test-util")]
impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock")
            .field("now", &*self.now.borrow())
            .finish()
    }
}

#[cfg(feature = "test-util")]
impl Clock for ManualClock {
    fn now(&self) -> Instant {
        *self.now.borrow()
    }

    fn sleep_until(&self, deadline: Instant) -> Sleep {
        let mut now = self.now.subscribe();
        let registration = SleepRegistration::new(self.sleeping.clone(), deadline);
        Box::pin(async move {
            let _registered = registration;
            // The sender lives as long as any clone of the clock; if all are
            // gone, nobody can advance time, and waking is as good as any.
            let _ = now.wait_for(|now| *now >= deadline).await;
        })
    }
}

#[cfg(feature = "test-util")]
/// Lists a deadline in [`ManualClock::sleeping_until`] while its sleep lives.
struct SleepRegistration {
    sleeping: Arc<Mutex<Vec<Instant>>>,
    deadline: Instant,
}

#[cfg(feature = "test-util")]
impl SleepRegistration {
    fn new(sleeping: Arc<Mutex<Vec<Instant>>>, deadline: Instant) -> Self {
        sleeping
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(deadline);
        SleepRegistration { sleeping, deadline }
    }
}

#[cfg(feature = "test-util")]
impl Drop for SleepRegistration {
    fn drop(&mut self) {
        let mut sleeping = self.sleeping.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(index) = sleeping.iter().position(|d| *d == self.deadline) {
            sleeping.swap_remove(index);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_coarse_deadline_passes_with_the_system_clock() {
        let fast = FastClock::new(true, &TokioClock);
        let now = TokioClock.now();
        assert!(fast.now(&TokioClock) >= fast.ticks_at(now, &TokioClock));
        let in_an_hour = fast.ticks_at(now + Duration::from_secs(3600), &TokioClock);
        assert!(fast.now(&TokioClock) < in_an_hour);
        // Farther than the coarse clock can hold: not passed, no overflow.
        if let Some(far) = now.checked_add(Duration::from_secs(u64::MAX / 4)) {
            assert!(fast.now(&TokioClock) < fast.ticks_at(far, &TokioClock));
        }
    }

    #[cfg(feature = "test-util")]
    #[test]
    fn an_injected_clock_is_read_exactly() {
        let clock = ManualClock::new();
        let fast = FastClock::new(false, &clock);
        let deadline = fast.ticks_at(clock.now() + Duration::from_secs(10), &clock);
        clock.advance(Duration::from_millis(9_999));
        assert!(fast.now(&clock) < deadline);
        clock.advance(Duration::from_millis(1));
        assert!(fast.now(&clock) >= deadline);
    }

    #[cfg(feature = "test-util")]
    #[tokio::test]
    async fn a_manual_sleep_wakes_only_when_the_clock_passes_its_deadline() {
        let clock = ManualClock::new();
        let deadline = clock.now() + Duration::from_secs(10);
        let sleep = tokio::spawn(clock.sleep_until(deadline));
        tokio::task::yield_now().await;
        assert_eq!(clock.sleeping_until(), vec![deadline]);
        clock.advance(Duration::from_secs(9));
        tokio::task::yield_now().await;
        assert!(!sleep.is_finished());
        clock.advance(Duration::from_secs(1));
        sleep.await.expect("the sleep completes");
        assert!(clock.sleeping_until().is_empty());
    }

    #[cfg(feature = "test-util")]
    #[tokio::test(start_paused = true)]
    async fn an_endless_sleep_is_pending_not_a_panic() {
        let manual = ManualClock::new();
        let clocks: [&dyn Clock; 2] = [&TokioClock, &manual];
        for clock in clocks {
            let sleep = clock.sleep(Duration::MAX);
            let waited = tokio::time::timeout(Duration::from_secs(3600), sleep).await;
            assert!(waited.is_err(), "{clock:?} woke");
        }
    }
}
