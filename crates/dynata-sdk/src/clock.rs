//! The monotonic clock the token lifecycle reads and sleeps on.
//!
//! Expiry is always counted on a monotonic clock, never the wall clock. The
//! clock is injectable so that tests (ours and yours) control time instead of
//! sleeping through it.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

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
        const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);
        let now = self.now();
        let deadline = now
            .checked_add(duration)
            .or_else(|| now.checked_add(CENTURY))
            .unwrap_or(now);
        self.sleep_until(deadline)
    }
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

/// A clock that moves only when told to: [`ManualClock::advance`]. Sleepers
/// wake as soon as the clock passes their deadline.
///
/// Use it to test code built on the SDK without waiting for real tokens to
/// expire. Clones share the same time.
#[derive(Clone)]
pub struct ManualClock {
    now: Arc<watch::Sender<Instant>>,
    sleeping: Arc<Mutex<Vec<Instant>>>,
}

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

impl Default for ManualClock {
    fn default() -> Self {
        ManualClock::new()
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock")
            .field("now", &*self.now.borrow())
            .finish()
    }
}

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

/// Lists a deadline in [`ManualClock::sleeping_until`] while its sleep lives.
struct SleepRegistration {
    sleeping: Arc<Mutex<Vec<Instant>>>,
    deadline: Instant,
}

impl SleepRegistration {
    fn new(sleeping: Arc<Mutex<Vec<Instant>>>, deadline: Instant) -> Self {
        sleeping
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(deadline);
        SleepRegistration { sleeping, deadline }
    }
}

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
