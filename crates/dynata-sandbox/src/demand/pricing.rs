//! Feasibility and price, computed the same way every time from a line
//! item's country, incidence, length of interview (LOI) and wanted
//! completes, so that tests can assert exact figures:
//!
//! - cost per interview = the country's base plus 0.05 × LOI (the `BASE`
//!   line), plus 30 ÷ incidence (the `PREMIUM` line, for hard-to-find
//!   people), in USD rounded to cents;
//! - feasible count = the country's panel × incidence % × 30 ÷ (30 + LOI),
//!   rounded down; feasible when it covers the wanted completes.

use serde_json::{Value, json};
use tokio::time::Instant;

use super::clock::Clock;
use super::line_items::LineItem;
use crate::later::later;

/// Base cost per interview and panel size of each country.
fn country_figures(country: &str) -> (f64, f64) {
    match country {
        "US" => (1.50, 400_000.0),
        "CA" => (1.70, 80_000.0),
        "GB" => (1.80, 150_000.0),
        "DE" => (2.10, 120_000.0),
        "FR" => (2.00, 110_000.0),
        "JP" => (3.20, 90_000.0),
        _ => (2.50, 10_000.0),
    }
}

pub(crate) const CURRENCY: &str = "USD";

/// Cents, so that sums of prices stay exact in JSON.
pub(crate) fn cents(amount: f64) -> f64 {
    (amount * 100.0).round() / 100.0
}

/// The two lines of the price per interview: `(base, premium)`.
pub(crate) fn cost_lines(country: &str, incidence: f64, length_of_interview: i64) -> (f64, f64) {
    let (base, _) = country_figures(country);
    (
        cents(base + 0.05 * length_of_interview as f64),
        cents(30.0 / incidence.max(0.01)),
    )
}

pub(crate) fn cost_per_interview(country: &str, incidence: f64, length_of_interview: i64) -> f64 {
    let (base, premium) = cost_lines(country, incidence, length_of_interview);
    cents(base + premium)
}

pub(crate) fn feasible_count(country: &str, incidence: f64, length_of_interview: i64) -> i64 {
    let (_, panel) = country_figures(country);
    let loi = length_of_interview.max(1) as f64;
    // Truncation is the rounding down the module promises; the value is
    // far inside i64.
    (panel * incidence / 100.0 * 30.0 / (30.0 + loi)).floor() as i64
}

/// Whether the line item's feasibility is known at `now`.
pub(crate) fn is_ready(item: &LineItem, now: Instant) -> bool {
    now >= item.priced_at
}

/// One entry of `GET /projects/{id}/feasibility`.
pub(crate) fn feasibility(item: &LineItem, now: Instant, clock: &Clock) -> Value {
    if !is_ready(item, now) {
        return json!({
            "extLineItemId": item.id,
            "feasibility": {
                "status": "PROCESSING",
                "costPerInterview": null,
                "currency": null,
                "expiry": "",
                "feasible": null,
                "totalCount": null,
                "valueCounts": [],
            },
        });
    }
    let country = item.text("countryISOCode");
    let (incidence, loi) = (item.incidence(), item.length_of_interview());
    let (base, premium) = cost_lines(country, incidence, loi);
    let cpi = cents(base + premium);
    let total = feasible_count(country, incidence, loi);
    let wanted = item.wanted_completes();
    let expiry = later(item.priced_at, std::time::Duration::from_secs(7 * 86_400));
    json!({
        "extLineItemId": item.id,
        "feasibility": {
            "status": "READY",
            "costPerInterview": cpi,
            "currency": CURRENCY,
            "feasible": total >= wanted,
            "totalCount": total,
            "expiry": clock.timestamp(expiry),
            "valueCounts": value_counts(item, total),
        },
        "quote": {
            "costPerUnit": cpi,
            "currency": CURRENCY,
            "estimatedCost": cents(cpi * wanted as f64),
            "detailedQuote": [
                {"type": "BASE", "title": "Base cost", "costPerUnit": base,
                 "estimatedCost": cents(base * wanted as f64), "units": wanted},
                {"type": "PREMIUM", "title": "Incidence premium", "costPerUnit": premium,
                 "estimatedCost": cents(premium * wanted as f64), "units": wanted},
            ],
        },
    })
}

/// Feasible counts per quota cell: the total split by each cell's share of
/// its group (`perc`, or `count` over the group's counts).
fn value_counts(item: &LineItem, total: i64) -> Vec<Value> {
    let groups = item
        .fields
        .get("quotaPlan")
        .and_then(|plan| plan.get("quotaGroups"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    groups
        .iter()
        .map(|group| {
            let cells = group["quotaCells"].as_array().cloned().unwrap_or_default();
            let shares = shares(&cells);
            let cells: Vec<Value> = cells
                .iter()
                .zip(shares)
                .map(|(cell, share)| {
                    json!({
                        "feasibilityCount": (total as f64 * share).floor() as i64,
                        "quotaNodes": cell["quotaNodes"].clone(),
                        "quotaCellId": cell["quotaCellId"].clone(),
                    })
                })
                .collect();
            json!({"quotaCells": cells})
        })
        .collect()
}

/// Each cell's share of its group, from 0 to 1.
pub(crate) fn shares(cells: &[Value]) -> Vec<f64> {
    let counts: f64 = cells.iter().filter_map(|c| c["count"].as_f64()).sum();
    cells
        .iter()
        .map(
            |cell| match (cell["perc"].as_f64(), cell["count"].as_f64()) {
                (Some(perc), _) => perc / 100.0,
                (None, Some(count)) if counts > 0.0 => count / counts,
                _ => 0.0,
            },
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_follow_the_documented_formula() {
        // US: 1.50 + 0.05 × 12 = 2.10; 30 ÷ 20 = 1.50.
        assert_eq!(cost_lines("US", 20.0, 12), (2.10, 1.50));
        assert_eq!(cost_per_interview("US", 20.0, 12), 3.60);
        // 400 000 × 20 % × 30 ÷ 42 = 57 142.857...
        assert_eq!(feasible_count("US", 20.0, 12), 57_142);
        // Harder to find, longer: dearer and scarcer.
        assert!(cost_per_interview("US", 5.0, 30) > cost_per_interview("US", 20.0, 12));
        assert!(feasible_count("JP", 5.0, 30) < feasible_count("JP", 20.0, 12));
    }
}
