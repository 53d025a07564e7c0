//! Events: a bought line item whose length of interview or incidence
//! changes is priced again, and Dynata asks the buyer to accept or reject
//! the new price with a `LineItem:RepriceTriggered` event. Accepting takes
//! the new price; rejecting puts the old values back. Either way the line
//! item returns to the state it had (a launched one is paused meanwhile),
//! and the answer is a new event (`...Accepted` or `...Rejected`) whose
//! `parentEventId` is the reprice's.

use serde_json::{Value, json};
use tokio::time::Instant;

use super::Call;
use super::envelope::{self, Answer, ApiError};
use super::line_items::{LineItem, Purchase};
use super::listing::{FilterSpec, ListQuery};
use super::pricing::{self, CURRENCY, cents};
use super::validate;

pub(crate) const REPRICE_TRIGGERED: &str = "LineItem:RepriceTriggered";
pub(crate) const REPRICE_ACCEPTED: &str = "LineItem:RepriceAccepted";
pub(crate) const REPRICE_REJECTED: &str = "LineItem:RepriceRejected";

pub(crate) struct Event {
    pub(crate) id: i64,
    pub(crate) kind: &'static str,
    pub(crate) project: String,
    pub(crate) line_item: String,
    pub(crate) created_at: Instant,
    pub(crate) parent: Option<i64>,
    pub(crate) resource: Value,
    /// For a reprice: accepted or rejected already.
    pub(crate) answered: bool,
}

impl Event {
    fn to_json(&self, call: &Call<'_>) -> Value {
        let mut value = json!({
            "eventId": self.id,
            "eventType": self.kind,
            "extProjectId": self.project,
            "extLineItemId": self.line_item,
            "createdAt": call.demand.clock.timestamp(self.created_at),
            "parentEventId": self.parent,
            "resource": self.resource,
        });
        if self.kind == REPRICE_TRIGGERED && !self.answered {
            let url = format!("{}/events/{}", call.base_url, self.id);
            value["actions"] =
                json!({"acceptURL": format!("{url}/accept"), "rejectURL": format!("{url}/reject")});
        }
        value
    }
}

/// The reprice event for `item`, whose new values differ from those it was
/// bought with.
pub(crate) fn reprice_triggered(
    id: i64,
    project: &str,
    item: &LineItem,
    bought: Purchase,
    now: Instant,
) -> Event {
    let (loi, incidence) = (item.length_of_interview(), item.incidence());
    let new_cpi = pricing::cost_per_interview(item.text("countryISOCode"), incidence, loi);
    let wanted = item.wanted_completes() as f64;
    let reason = match (
        loi != bought.length_of_interview,
        incidence != bought.incidence,
    ) {
        (true, true) => "IR_AND_LOI_CHANGE",
        (true, false) => "LOI_CHANGE",
        (false, true) => "IR_CHANGE",
        (false, false) => "UNKNOWN",
    };
    let new_state = if item.state == super::line_items::LAUNCHED {
        super::line_items::PAUSED
    } else {
        item.state
    };
    Event {
        id,
        kind: REPRICE_TRIGGERED,
        project: project.to_owned(),
        line_item: item.id.clone(),
        created_at: now,
        parent: None,
        resource: json!({
            "currency": CURRENCY,
            "reason": reason,
            "costPerInterview": {"previousValue": bought.cost_per_interview, "newValue": new_cpi},
            "estimatedCost": {
                "previousValue": cents(bought.cost_per_interview * wanted),
                "newValue": cents(new_cpi * wanted),
            },
            "lengthOfInterview": {"previousValue": bought.length_of_interview, "newValue": loi},
            "incidenceRate": {"previousValue": bought.incidence, "newValue": incidence},
            "status": {"previousValue": item.state, "newValue": new_state},
            "isAutoAccepted": false,
        }),
        answered: false,
    }
}

const EVENT_FILTERS: &[FilterSpec] = &[
    ("eventType", "/eventType"),
    ("extProjectId", "/extProjectId"),
    ("extLineItemId", "/extLineItemId"),
    ("eventId", "/eventId"),
    ("createdAt", "/createdAt"),
];

pub(crate) fn list(call: &mut Call<'_>) -> Answer {
    let query = ListQuery::parse(&call.query, EVENT_FILTERS)?;
    let records = call
        .demand
        .account(&call.username)
        .events
        .iter()
        .map(|event| event.to_json(call))
        .collect();
    query.answer(records, EVENT_FILTERS, &format!("{}/events", call.base_url))
}

fn find<'c>(call: &'c Call<'_>) -> Result<&'c Event, ApiError> {
    let id = call.param("eventId");
    call.demand
        .account(&call.username)
        .events
        .iter()
        .find(|event| id.parse() == Ok(event.id))
        .ok_or_else(|| ApiError::not_found("event", id))
}

pub(crate) fn get(call: &mut Call<'_>) -> Answer {
    Ok(envelope::ok(find(call)?.to_json(call)))
}

pub(crate) fn accept(call: &mut Call<'_>) -> Answer {
    answer(call, true)
}

pub(crate) fn reject(call: &mut Call<'_>) -> Answer {
    answer(call, false)
}

fn answer(call: &mut Call<'_>, accept: bool) -> Answer {
    validate::no_body(&call.body)?;
    let event = find(call)?;
    let (id, project_id, item_id) = (event.id, event.project.clone(), event.line_item.clone());
    if event.kind != REPRICE_TRIGGERED || event.answered {
        return Err(ApiError::invalid_state(
            "event",
            &id.to_string(),
            format!("event {id} is not a reprice waiting for an answer"),
        ));
    }
    let now = call.now;
    let new_id = call.demand.peek_event_id();
    let project = call.demand.project_mut(&call.username, &project_id)?;
    let Some(item) = project
        .line_items
        .iter_mut()
        .find(|item| item.id == item_id)
    else {
        return Err(ApiError::not_found("lineItem", &item_id));
    };
    let (Some(pending), Some(bought)) = (item.reprice.filter(|p| p.event_id == id), item.purchase)
    else {
        return Err(ApiError::invalid_state(
            "lineItem",
            &item_id,
            format!(
                "line item {item_id:?} is {} and takes no reprice",
                item.state
            ),
        ));
    };
    if accept {
        item.purchase = Some(Purchase {
            cost_per_interview: pricing::cost_per_interview(
                item.text("countryISOCode"),
                item.incidence(),
                item.length_of_interview(),
            ),
            length_of_interview: item.length_of_interview(),
            incidence: item.incidence(),
        });
    } else {
        item.fields.insert(
            "lengthOfInterview".into(),
            Value::from(bought.length_of_interview),
        );
        item.fields
            .insert("indicativeIncidence".into(), Value::from(bought.incidence));
    }
    item.reprice = None;
    let previous_state = item.state;
    let reason = if accept {
        "Reprice accepted"
    } else {
        "Reprice rejected"
    };
    item.set_state(pending.resume, reason, now);
    let resource = json!({
        "currency": CURRENCY,
        "costPerInterview": {
            "previousValue": bought.cost_per_interview,
            "newValue": item.purchase.map(|p| p.cost_per_interview),
        },
        "status": {"previousValue": previous_state, "newValue": item.state},
    });
    project.follow_line_items(now);
    call.demand.take_event_id();
    let account = call.demand.account_mut(&call.username);
    if let Some(triggered) = account.events.iter_mut().find(|event| event.id == id) {
        triggered.answered = true;
    }
    account.events.push(Event {
        id: new_id,
        kind: if accept {
            REPRICE_ACCEPTED
        } else {
            REPRICE_REJECTED
        },
        project: project_id,
        line_item: item_id,
        created_at: now,
        parent: Some(id),
        resource,
        answered: true,
    });
    let account = call.demand.account(&call.username);
    let event = account.events.last().map(|event| event.to_json(call));
    Ok(envelope::ok(event.unwrap_or_default()))
}
