//! Field work, simulated: once launched, a line item receives
//! `ATTEMPTS_PER_SECOND` attempts per second of time in field (tokio's
//! clock, so paused tests move it), and each attempt ends the same way
//! every time: incidence decides who qualifies; of the qualified, 80 %
//! complete, 10 % are over quota and the rest drop out. When completes
//! reach the target the line item is `COMPLETED` and field work stops.

use serde_json::{Value, json};
use tokio::time::Instant;

use super::line_items::{COMPLETED, LAUNCHED, LineItem};
use super::pricing::{self, CURRENCY, cents};

pub(crate) const ATTEMPTS_PER_SECOND: u64 = 5;

/// The counters of a line item (or the sum of several).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counters {
    pub(crate) attempts: i64,
    pub(crate) completes: i64,
    pub(crate) screenouts: i64,
    pub(crate) overquotas: i64,
    pub(crate) incompletes: i64,
}

impl Counters {
    /// What `attempts` attempts give at `incidence` percent.
    fn after(attempts: i64, incidence: f64) -> Counters {
        let qualified = (attempts as f64 * incidence / 100.0).floor() as i64;
        let completes = qualified * 8 / 10;
        let overquotas = qualified / 10;
        Counters {
            attempts,
            completes,
            screenouts: attempts - qualified,
            overquotas,
            incompletes: qualified - completes - overquotas,
        }
    }

    pub(crate) fn add(self, other: Counters) -> Counters {
        Counters {
            attempts: self.attempts + other.attempts,
            completes: self.completes + other.completes,
            screenouts: self.screenouts + other.screenouts,
            overquotas: self.overquotas + other.overquotas,
            incompletes: self.incompletes + other.incompletes,
        }
    }

    pub(crate) fn conversion(self) -> f64 {
        if self.attempts == 0 {
            0.0
        } else {
            (self.completes as f64 / self.attempts as f64 * 1000.0).round() / 1000.0
        }
    }
}

/// The line item's counters at `now`.
pub(crate) fn counters(item: &LineItem, now: Instant) -> Counters {
    let incidence = item.incidence();
    let elapsed = item.time_in_field(now);
    let attempts =
        i64::try_from(elapsed.as_secs().saturating_mul(ATTEMPTS_PER_SECOND)).unwrap_or(i64::MAX);
    let wanted = item.wanted_completes();
    let attempts = attempts.min(attempts_to_complete(wanted, incidence));
    Counters::after(attempts, incidence)
}

/// The fewest attempts that give `wanted` completes (a binary search: the
/// completes only grow with attempts).
fn attempts_to_complete(wanted: i64, incidence: f64) -> i64 {
    let (mut low, mut high) = (0_i64, 1_i64 << 40);
    if Counters::after(high, incidence).completes < wanted {
        return high;
    }
    while low < high {
        let middle = low + (high - low) / 2;
        if Counters::after(middle, incidence).completes >= wanted {
            high = middle;
        } else {
            low = middle + 1;
        }
    }
    low
}

/// Marks a launched line item whose target is met `COMPLETED`, at the
/// moment it was met.
pub(crate) fn settle(item: &mut LineItem, now: Instant) {
    if item.state != LAUNCHED {
        return;
    }
    let wanted = item.wanted_completes();
    let needed = attempts_to_complete(wanted, item.incidence());
    let needed_time = std::time::Duration::from_secs(
        u64::try_from(needed)
            .unwrap_or(u64::MAX)
            .div_ceil(ATTEMPTS_PER_SECOND),
    );
    let in_field = item.time_in_field(now);
    if in_field < needed_time {
        return;
    }
    let done_at = now.checked_sub(in_field - needed_time).unwrap_or(now);
    item.set_state(COMPLETED, "Target met", done_at);
}

/// Price accepted at purchase (or the current quote before buying).
pub(crate) fn cost_per_interview(item: &LineItem) -> f64 {
    item.purchase.map_or_else(
        || {
            pricing::cost_per_interview(
                item.text("countryISOCode"),
                item.incidence(),
                item.length_of_interview(),
            )
        },
        |purchase| purchase.cost_per_interview,
    )
}

/// The counters as the summary report's fields.
pub(crate) fn report_fields(
    counters: Counters,
    wanted: i64,
    incurred: f64,
    estimated: f64,
) -> Value {
    json!({
        "currency": CURRENCY,
        "attempts": counters.attempts,
        "completes": counters.completes,
        "screenouts": counters.screenouts,
        "overquotas": counters.overquotas,
        "incompletes": counters.incompletes,
        "remainingCompletes": (wanted - counters.completes).max(0),
        "completesRefused": 0,
        "conversion": counters.conversion(),
        "incurredCost": cents(incurred),
        "estimatedCost": cents(estimated),
    })
}

/// The detailed-report `stats` of some counters.
pub(crate) fn stats(counters: Counters, wanted: i64) -> Value {
    let percent = |part: i64| {
        if counters.attempts == 0 {
            0.0
        } else {
            (part as f64 * 1000.0 / counters.attempts as f64).round() / 10.0
        }
    };
    let qualified = counters.attempts - counters.screenouts;
    json!({
        "attempts": counters.attempts,
        "completes": counters.completes,
        "completesRefused": 0,
        "screenouts": counters.screenouts,
        "overquotas": counters.overquotas,
        "incompletes": counters.incompletes,
        "remainingCompletes": (wanted - counters.completes).max(0),
        "completesRefusedPercentage": 0.0,
        "screenoutsPercentage": percent(counters.screenouts),
        "overquotasPercentage": percent(counters.overquotas),
        "incompletesPercentage": percent(counters.incompletes),
        "incidenceRate": percent(qualified),
        "conversion": counters.conversion(),
    })
}
