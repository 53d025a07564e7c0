//! Reports: the summary and detailed reports of projects and line items,
//! from the simulated field work (`fieldwork`) and the accepted prices.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::Call;
use super::envelope::{self, Answer, ApiError};
use super::fieldwork::{self, Counters};
use super::line_items::LineItem;
use super::pricing::{CURRENCY, cents, shares};
use super::projects::Project;

/// A line item's counters, incurred cost (completes at the accepted price)
/// and estimated cost (wanted completes at that price).
fn figures(item: &LineItem, call: &Call<'_>) -> (Counters, f64, f64) {
    let counters = fieldwork::counters(item, call.now);
    let cpi = fieldwork::cost_per_interview(item);
    let incurred = if item.purchase.is_some() {
        cpi * counters.completes as f64
    } else {
        0.0
    };
    (counters, incurred, cpi * item.wanted_completes() as f64)
}

fn summary(project: &Project, call: &Call<'_>) -> Value {
    let mut total = Counters::default();
    let (mut wanted, mut incurred, mut estimated) = (0, 0.0, 0.0);
    let mut items = Vec::new();
    for item in &project.line_items {
        let (counters, item_incurred, item_estimated) = figures(item, call);
        total = total.add(counters);
        wanted += item.wanted_completes();
        incurred += item_incurred;
        estimated += item_estimated;
        let mut report = fieldwork::report_fields(
            counters,
            item.wanted_completes(),
            item_incurred,
            item_estimated,
        );
        report["extLineItemId"] = Value::from(item.id.clone());
        report["title"] = Value::from(item.text("title"));
        report["countryISOCode"] = Value::from(item.text("countryISOCode"));
        report["languageISOCode"] = Value::from(item.text("languageISOCode"));
        report["state"] = Value::from(item.state);
        report["stateReason"] = Value::from(item.state_reason);
        report["actualMedianLOI"] = Value::from(if counters.completes > 0 {
            item.length_of_interview()
        } else {
            0
        });
        let (loi, incidence) = item
            .purchase
            .map_or((item.length_of_interview(), item.incidence()), |p| {
                (p.length_of_interview, p.incidence)
            });
        report["lastAcceptedIncidenceRate"] = Value::from(incidence);
        report["lastAcceptedLOI"] = Value::from(loi);
        items.push(report);
    }
    let mut report = fieldwork::report_fields(total, wanted, incurred, estimated);
    report["extProjectId"] = Value::from(project.id.clone());
    report["title"] = project.fields.get("title").cloned().unwrap_or_default();
    report["state"] = Value::from(project.state);
    report["actualMedianLOI"] = Value::from(
        project
            .line_items
            .iter()
            .filter(|item| fieldwork::counters(item, call.now).completes > 0)
            .map(LineItem::length_of_interview)
            .max()
            .unwrap_or(0),
    );
    if let Some(job) = project.fields.get("jobNumber") {
        report["jobNumber"] = job.clone();
    }
    report["lineItems"] = Value::Array(items);
    report
}

pub(crate) fn project_report(call: &mut Call<'_>) -> Answer {
    let project = call
        .demand
        .project(&call.username, call.param("extProjectId"))?;
    Ok(envelope::ok(summary(project, call)))
}

pub(crate) fn project_reports(call: &mut Call<'_>) -> Answer {
    let Some((_, ids)) = call.query.iter().find(|(name, _)| name == "extProjectId") else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "MISSING_FIELD",
            "extProjectId: is required (one id, or several joined with commas)",
            ("extProjectId", "parameter"),
        ));
    };
    let mut reports = Vec::new();
    for id in ids.split(',').filter(|id| !id.is_empty()) {
        let project = call.demand.project(&call.username, id)?;
        reports.push(summary(project, call));
    }
    Ok(envelope::ok(Value::Array(reports)))
}

fn detailed_item(item: &LineItem, call: &Call<'_>, with_quotas: bool) -> Value {
    let (counters, incurred, estimated) = figures(item, call);
    let wanted = item.wanted_completes();
    let cpi = fieldwork::cost_per_interview(item);
    let mut stats = fieldwork::stats(counters, wanted);
    stats["actualMedianLOI"] = Value::from(item.length_of_interview());
    let (loi, incidence) = item
        .purchase
        .map_or((item.length_of_interview(), item.incidence()), |p| {
            (p.length_of_interview, p.incidence)
        });
    stats["lastAcceptedLOI"] = Value::from(loi);
    stats["lastAcceptedIncidenceRate"] = Value::from(incidence);
    let sources = item
        .fields
        .get("sources")
        .cloned()
        .unwrap_or_else(|| json!([]));
    let mut report = json!({
        "extLineItemId": item.id,
        "title": item.text("title"),
        "state": item.state,
        "stateReason": item.state_reason,
        "countryISOCode": item.text("countryISOCode"),
        "languageISOCode": item.text("languageISOCode"),
        "sources": sources,
        "stats": stats,
        "cost": {
            "costPerUnit": cpi,
            "currency": CURRENCY,
            "estimatedCost": cents(estimated),
            "incurredCost": cents(incurred),
            "detailedCost": [{
                "title": "Completes",
                "type": "BASE",
                "costPerUnit": cpi,
                "estimatedCost": cents(estimated),
                "incurredCost": cents(incurred),
                "deliveredUnits": counters.completes,
                "requestedUnits": wanted,
            }],
        },
    });
    if with_quotas {
        report["quotaGroups"] = Value::Array(quota_groups(item, counters));
    }
    report
}

/// Each quota group's cells with the line item's counters split by the
/// cells' shares.
fn quota_groups(item: &LineItem, counters: Counters) -> Vec<Value> {
    let groups = item
        .fields
        .get("quotaPlan")
        .and_then(|plan| plan.get("quotaGroups"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let part = |share: f64| {
        let of = |n: i64| (n as f64 * share).floor() as i64;
        Counters {
            attempts: of(counters.attempts),
            completes: of(counters.completes),
            screenouts: of(counters.screenouts),
            overquotas: of(counters.overquotas),
            incompletes: of(counters.incompletes),
        }
    };
    groups
        .iter()
        .map(|group| {
            let cells = group["quotaCells"].as_array().cloned().unwrap_or_default();
            let cells: Vec<Value> = cells
                .iter()
                .zip(shares(&cells))
                .map(|(cell, share)| {
                    json!({
                        "quotaCellId": cell["quotaCellId"],
                        "quotaNodes": cell["quotaNodes"],
                        "stats": fieldwork::stats(part(share), (item.wanted_completes() as f64 * share) as i64),
                    })
                })
                .collect();
            json!({
                "quotaGroupId": group["quotaGroupId"],
                "stats": fieldwork::stats(counters, item.wanted_completes()),
                "quotaCells": cells,
            })
        })
        .collect()
}

pub(crate) fn project_detailed_report(call: &mut Call<'_>) -> Answer {
    let project = call
        .demand
        .project(&call.username, call.param("extProjectId"))?;
    let mut total = Counters::default();
    let (mut wanted, mut incurred, mut estimated) = (0, 0.0, 0.0);
    for item in &project.line_items {
        let (counters, item_incurred, item_estimated) = figures(item, call);
        total = total.add(counters);
        wanted += item.wanted_completes();
        incurred += item_incurred;
        estimated += item_estimated;
    }
    let items: Vec<Value> = project
        .line_items
        .iter()
        .map(|item| detailed_item(item, call, false))
        .collect();
    let mut report = json!({
        "extProjectId": project.id,
        "title": project.fields.get("title").cloned().unwrap_or_default(),
        "state": project.state,
        "stats": fieldwork::stats(total, wanted),
        "cost": {"currency": CURRENCY, "estimatedCost": cents(estimated), "incurredCost": cents(incurred)},
        "lineItems": items,
    });
    if let Some(job) = project.fields.get("jobNumber") {
        report["jobNumber"] = job.clone();
    }
    Ok(envelope::ok(report))
}

pub(crate) fn line_item_detailed_report(call: &mut Call<'_>) -> Answer {
    let project = call
        .demand
        .project(&call.username, call.param("extProjectId"))?;
    let item = project.line_item(call.param("extLineItemId"))?;
    Ok(envelope::ok(detailed_item(item, call, true)))
}
