//! The monotonic clock the token lifecycle reads and sleeps on.
//!
//! Expiry is counted on a monotonic clock, never on the wall clock alone: a
//! step of the wall clock back does not keep a token alive. But the
//! system's monotonic clock stands still while the machine sleeps (Linux's
//! `CLOCK_MONOTONIC`, and so `Instant`), and Dynata's tokens expire all the
//! same; so the fast path's clock adds the time the wall clock went on
//! without it (`Missed`). The clock is injectable so that tests (ours and
//! yours) control time instead of sleeping through it: `ManualClock`, behind
//! the `test-util` feature.

use std::fmt;
use std::future::Future;
use std::pin::{Pin, pin};
#[cfg(feature = "test-util")]
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::task::Poll;
use std::time::{Duration, Instant, SystemTime};

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

/// The clock the lifecycle judges validity on: the fast path reads it on
/// every call. Ticks are cheap to read and to compare, on the same timeline
/// as the client's [`Clock`], plus, for the default clock, the time that
/// clock missed while the machine slept.
#[derive(Debug)]
pub(crate) struct FastClock {
    /// For the default clock: the system's coarse monotonic clock
    /// (`CLOCK_MONOTONIC_COARSE` on Linux), a few nanoseconds to read where
    /// the precise one takes about twenty, the fast path's whole budget; and
    /// the time it missed. `None` for an injected clock, read as it is.
    system: Option<Missed>,
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

    /// The default clock's: the coarse clock, and the time it misses.
    pub(crate) fn system(clock: &dyn Clock) -> Self {
        FastClock::reading_wall(clock, SystemTime::now)
    }

    /// [`FastClock::system`], with the wall clock read by `wall`.
    pub(crate) fn reading_wall(clock: &dyn Clock, wall: fn() -> SystemTime) -> Self {
        FastClock {
            system: Some(Missed::since_now(wall)),
            origin: clock.now(),
        }
    }

    /// An injected clock's: read exactly, and taken as the truth.
    pub(crate) fn injected(clock: &dyn Clock) -> Self {
        FastClock {
            system: None,
            origin: clock.now(),
        }
    }

    /// The time now, in ticks.
    #[inline]
    pub(crate) fn now(&self, clock: &dyn Clock) -> u64 {
        match &self.system {
            Some(missed) => {
                // Not `now()`, which also writes a process-wide cache: a
                // write that every thread would contend on.
                let ticks = coarsetime::Instant::now_without_cache_update().as_ticks();
                ticks.saturating_add(missed.ticks_as_of(ticks))
            }
            None => nanos(clock.now().saturating_duration_since(self.origin)),
        }
    }

    /// Now, on both the client's clock and this one.
    pub(crate) fn moment(&self, clock: &dyn Clock) -> Moment {
        Moment {
            instant: clock.now(),
            ticks: self.now(clock),
        }
    }

    /// The time since `moment`, on whichever clock saw more of it: the
    /// client's (which tests pause and move) or this one (which counts the
    /// time the machine slept).
    pub(crate) fn since(&self, moment: Moment, clock: &dyn Clock) -> Duration {
        let ticks = self.now(clock).saturating_sub(moment.ticks);
        let on_this = match self.system {
            Some(_) => coarsetime::Duration::from_ticks(ticks).into(),
            None => Duration::from_nanos(ticks),
        };
        clock
            .now()
            .saturating_duration_since(moment.instant)
            .max(on_this)
    }

    /// How long until `ticks` on this clock (zero once passed).
    pub(crate) fn until(&self, ticks: u64, clock: &dyn Clock) -> Duration {
        let left = ticks.saturating_sub(self.now(clock));
        match self.system {
            Some(_) => coarsetime::Duration::from_ticks(left).into(),
            None => Duration::from_nanos(left),
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

    /// `moment`, an instant of `clock`, in ticks: never earlier than it, for
    /// what must not happen before (the end of a server's `Retry-After`).
    pub(crate) fn ticks_not_before(&self, moment: Instant, clock: &dyn Clock) -> u64 {
        let ticks = self.ticks(moment, clock, Duration::ZERO);
        match self.system {
            // The coarse clock lags by up to a tick: this much later.
            Some(_) => {
                ticks.saturating_add(coarsetime::Duration::from(Self::COARSE_SLACK).as_ticks())
            }
            None => ticks,
        }
    }

    /// How long until the moment `ticks` came from, read by
    /// [`FastClock::ticks_not_before`]: without the tick it added.
    pub(crate) fn until_not_before(&self, ticks: u64, clock: &dyn Clock) -> Duration {
        let left = self.until(ticks, clock);
        match self.system {
            Some(_) => left.saturating_sub(Self::COARSE_SLACK),
            None => left,
        }
    }

    /// How far ahead `at` is now, counted from now in ticks: so a deadline
    /// set before the machine slept has passed by as much as it slept.
    fn ticks(&self, at: Instant, clock: &dyn Clock, slack: Duration) -> u64 {
        if self.system.is_none() {
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

/// A moment of the lifecycle ([`FastClock::moment`]): an instant of the
/// client's clock, and the fast clock's ticks then.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Moment {
    pub(crate) instant: Instant,
    ticks: u64,
}

/// The time the coarse clock missed while the wall clock went on: how long
/// the machine slept (suspended, hibernated, a virtual machine paused and
/// its clock set right on resuming) since this was created, where the
/// system's monotonic clock stands still then (Linux's does).
///
/// It adds up what the wall clock gained on the coarse clock between two
/// looks, when that is a second or more: so a step of the wall clock back
/// (NTP) counts nothing, and one forward counts as sleep: a token renewed
/// early, the harmless side. Between two looks only the net is seen: a
/// step back, then a sleep before the next call, counts the sleep less the
/// step. A gain of more than [`Missed::SETTING`] is the wall clock being
/// set (a machine that booted in 1970), not sleep, and counts nothing.
#[derive(Debug)]
pub(crate) struct Missed {
    /// The wall clock (replaced in tests).
    wall: fn() -> SystemTime,
    /// The coarse clock's ticks at the last look: the clocks are compared
    /// at most once per tick of the coarse clock (1 to 16 ms), so a busy
    /// fast path almost never pays for reading the wall clock. Written
    /// after `ticks`, so that whoever reads it current reads `ticks` too.
    looked_at: AtomicU64,
    /// The time missed, in the coarse clock's ticks.
    ticks: AtomicU64,
    /// Both clocks at the last look; held while looking, so that callers in
    /// a tick whose look is under way wait for it rather than miss it.
    last: Mutex<(u64, SystemTime)>,
}

impl Missed {
    /// Ten years: more than any machine sleeps.
    const SETTING: Duration = Duration::from_secs(10 * 365 * 24 * 60 * 60);
    /// A century in all: far less than the coarse clock's ticks can add.
    const AT_MOST: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);
    /// Less than this between two looks is the clocks' jitter (a thread
    /// put aside between reading one and the other), not sleep.
    const AT_LEAST: Duration = Duration::from_secs(1);

    fn since_now(wall: fn() -> SystemTime) -> Self {
        let now = coarsetime::Instant::now_without_cache_update().as_ticks();
        Missed {
            wall,
            looked_at: AtomicU64::new(now),
            ticks: AtomicU64::new(0),
            last: Mutex::new((now, wall())),
        }
    }

    /// The time missed, in ticks, as of `now`, the coarse clock's reading.
    #[inline]
    fn ticks_as_of(&self, now: u64) -> u64 {
        if self.looked_at.load(Ordering::Acquire) != now {
            self.look(now);
        }
        self.ticks.load(Ordering::Acquire)
    }

    /// Compares the wall clock with `now`, the coarse clock's reading, and
    /// adds what the wall clock gained since the last look. A wall clock
    /// set back teaches nothing, and is the start of the next comparison.
    #[cold]
    fn look(&self, now: u64) {
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        let (then, wall_then) = *last;
        if now <= then {
            // Another caller looked in this tick (or a later one) meanwhile.
            return;
        }
        let wall = (self.wall)();
        let monotonic: Duration = coarsetime::Duration::from_ticks(now - then).into();
        let gained = wall
            .duration_since(wall_then)
            .map_or(Duration::ZERO, |passed| passed.saturating_sub(monotonic));
        if (Self::AT_LEAST..=Self::SETTING).contains(&gained) {
            let missed = coarsetime::Duration::from_ticks(self.ticks.load(Ordering::Relaxed));
            let missed = Duration::from(missed)
                .saturating_add(gained)
                .min(Self::AT_MOST);
            self.ticks.store(
                coarsetime::Duration::from(missed).as_ticks(),
                Ordering::Release,
            );
        }
        *last = (now, wall);
        self.looked_at.store(now, Ordering::Release);
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
        let fast = FastClock::system(&TokioClock);
        let now = TokioClock.now();
        assert!(fast.now(&TokioClock) >= fast.ticks_at(now, &TokioClock));
        let in_an_hour = fast.ticks_at(now + Duration::from_secs(3600), &TokioClock);
        assert!(fast.now(&TokioClock) < in_an_hour);
        // Farther than the coarse clock can hold: not passed, no overflow.
        if let Some(far) = now.checked_add(Duration::from_secs(u64::MAX / 4)) {
            assert!(fast.now(&TokioClock) < fast.ticks_at(far, &TokioClock));
        }
    }

    use std::sync::atomic::{AtomicBool, AtomicI64};

    /// Where the wall clock stands, in milliseconds after an arbitrary start.
    static WALL: AtomicI64 = AtomicI64::new(0);

    fn moved_wall_clock() -> SystemTime {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        let millis = WALL.load(Ordering::Relaxed);
        let moved = Duration::from_millis(millis.unsigned_abs());
        if millis < 0 {
            start - moved
        } else {
            start + moved
        }
    }

    fn ticks(seconds: u64) -> u64 {
        coarsetime::Duration::from_secs(seconds).as_ticks()
    }

    /// `Missed` as if created `ticks(1_000)` into the coarse clock, with the
    /// wall clock at `WALL` zero.
    fn missed_since_start(wall: fn() -> SystemTime) -> Missed {
        Missed {
            wall,
            looked_at: AtomicU64::new(ticks(1_000)),
            ticks: AtomicU64::new(0),
            last: Mutex::new((ticks(1_000), wall())),
        }
    }

    #[test]
    fn the_time_missed_adds_up_what_the_wall_clock_gained() {
        WALL.store(0, Ordering::Relaxed);
        let missed = missed_since_start(moved_wall_clock);
        let look_ms = |wall_ms: i64, monotonic: u64| {
            WALL.store(wall_ms, Ordering::Relaxed);
            missed.ticks_as_of(ticks(1_000 + monotonic))
        };
        let look = |wall: i64, monotonic: u64| look_ms(wall * 1_000, monotonic);
        // Both clocks went on together: nothing missed.
        assert_eq!(look(10, 10), 0);
        // The wall clock went on for an hour the coarse clock missed.
        assert_eq!(look(3_620, 20), ticks(3_600));
        // Stepped back, before the start even: the hour stays.
        assert_eq!(look(30, 30), ticks(3_600));
        assert_eq!(look(-5_000, 40), ticks(3_600));
        // A sleep after the step back counts in full: forty minutes.
        assert_eq!(look(-5_000 + 10 + 2_400, 50), ticks(6_000));
        // Jitter under a second is not sleep.
        assert_eq!(
            look_ms((-5_000 + 20 + 2_400) * 1_000 + 900, 60),
            ticks(6_000)
        );
        // A wall clock set decades ahead is being set, not sleeping; a sleep
        // after it still counts (found by review).
        let set = 56 * 365 * 86_400;
        assert_eq!(look(set, 70), ticks(6_000));
        assert_eq!(look(set + 10 + 3_600, 80), ticks(9_600));
    }

    static ENTERED: AtomicBool = AtomicBool::new(false);
    static RELEASE: AtomicBool = AtomicBool::new(false);

    /// The wall clock an hour ahead, read slowly the first time: until
    /// `RELEASE`.
    fn slowly_read_wall_clock() -> SystemTime {
        if !ENTERED.swap(true, Ordering::SeqCst) {
            while !RELEASE.load(Ordering::SeqCst) {
                std::thread::yield_now();
            }
        }
        SystemTime::now() + Duration::from_secs(3_600)
    }

    /// A caller in the tick whose look is under way waits for it rather
    /// than take the time missed before it (found by review): the tick is
    /// marked looked at only once the look is done.
    #[test]
    fn a_caller_in_the_tick_of_a_look_under_way_sees_what_it_finds() {
        let missed = Missed {
            wall: slowly_read_wall_clock,
            ..missed_since_start(SystemTime::now)
        };
        let woke = ticks(1_000) + coarsetime::Duration::from_millis(4).as_ticks();
        std::thread::scope(|scope| {
            let first = scope.spawn(|| missed.ticks_as_of(woke));
            while !ENTERED.load(Ordering::SeqCst) {
                std::hint::spin_loop();
            }
            // Looking: a caller now must not take this tick as looked at.
            assert_ne!(missed.looked_at.load(Ordering::SeqCst), woke);
            let second = scope.spawn(|| missed.ticks_as_of(woke));
            RELEASE.store(true, Ordering::SeqCst);
            let first = first.join().expect("no panic");
            let second = second.join().expect("no panic");
            assert!(first >= ticks(3_599), "the first caller saw {first}");
            assert_eq!(second, first);
        });
    }

    #[cfg(feature = "test-util")]
    #[test]
    fn an_injected_clock_is_read_exactly() {
        let clock = ManualClock::new();
        let fast = FastClock::injected(&clock);
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
