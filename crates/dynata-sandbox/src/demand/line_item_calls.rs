//! The calls on line items: list, add, read, change (with reprices for a
//! bought one), launch, pause, close, and a quota cell's status. The model
//! and its state machine are in `line_items`.

use axum::http::StatusCode;
use serde_json::{Map, Value};
use tokio::time::Instant;

use super::Call;
use super::envelope::{self, Answer, ApiError};
use super::events::{self, Event};
use super::line_items::{
    self, CLOSED as LINE_ITEM_CLOSED, COMPLETED as LINE_ITEM_COMPLETED,
    LAUNCHED as LINE_ITEM_LAUNCHED, LineItem, Mode, PAUSED as LINE_ITEM_PAUSED,
};
use super::listing::{self, FilterSpec, ListQuery};
use super::store::Demand;
use super::validate::{self, Check};
use crate::later::later;

const LINE_ITEM_FILTERS: &[FilterSpec] = &[
    ("extLineItemId", "/extLineItemId"),
    ("title", "/title"),
    ("state", "/state"),
    ("stateReason", "/stateReason"),
    ("countryISOCode", "/countryISOCode"),
    ("languageISOCode", "/languageISOCode"),
    ("createdAt", "/createdAt"),
    ("updatedAt", "/updatedAt"),
];

pub(crate) fn list_line_items(call: &mut Call<'_>) -> Answer {
    let query = ListQuery::parse(&call.query, LINE_ITEM_FILTERS)?;
    let project = call
        .demand
        .project(&call.username, call.param("extProjectId"))?;
    let records = project
        .line_items
        .iter()
        .map(|item| item.header(&call.demand.clock))
        .collect();
    let url = format!(
        "{}/projects/{}/lineItems",
        call.base_url,
        listing::encode(&project.id)
    );
    query.answer(records, LINE_ITEM_FILTERS, &url)
}

pub(crate) fn create_line_item(call: &mut Call<'_>) -> Answer {
    let body = validate::json_object(&call.body)?;
    let project_id = call.param("extProjectId").to_owned();
    let project = call.demand.project(&call.username, &project_id)?;
    project.refuse_if_finished("add a line item")?;
    let mut check = Check::default();
    line_items::check_body(&mut check, &body, "", Mode::Create, None);
    check.finish()?;
    let item_id = body["extLineItemId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    if project.line_item(&item_id).is_ok() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "DUPLICATE_EXT_LINE_ITEM_ID",
            format!("the project already has a line item {item_id:?}"),
            (item_id, "lineItem"),
        ));
    }
    let (now, delay) = (call.now, call.demand.feasibility_delay);
    let project = call.demand.project_mut(&call.username, &project_id)?;
    let item = LineItem::new(item_id.clone(), &body, now, delay);
    project.line_items.push(item);
    project.updated_at = now;
    let project = call.demand.project(&call.username, &project_id)?;
    envelope::created(project.line_item(&item_id)?.full(&call.demand.clock))
}

pub(crate) fn get_line_item(call: &mut Call<'_>) -> Answer {
    let project = call
        .demand
        .project(&call.username, call.param("extProjectId"))?;
    let item = project.line_item(call.param("extLineItemId"))?;
    Ok(envelope::ok(item.full(&call.demand.clock)))
}

/// What would make `update_item` refuse: a finished line item, a pending
/// reprice, or a bought one moving country or language.
pub(super) fn precheck_item_update(
    item: &LineItem,
    body: &Map<String, Value>,
) -> Result<(), ApiError> {
    if matches!(item.state, LINE_ITEM_CLOSED | LINE_ITEM_COMPLETED) {
        return Err(ApiError::invalid_state(
            "lineItem",
            &item.id,
            format!("cannot update a line item that is {}", item.state),
        ));
    }
    if item.reprice.is_some() {
        return Err(ApiError::invalid_state(
            "lineItem",
            &item.id,
            "a reprice event awaits an answer: accept or reject it first".to_owned(),
        ));
    }
    let moves = |name: &str| {
        body.get(name)
            .is_some_and(|value| Some(value) != item.fields.get(name))
    };
    if item.purchase.is_some() && (moves("countryISOCode") || moves("languageISOCode")) {
        return Err(ApiError::invalid_state(
            "lineItem",
            &item.id,
            "a bought line item keeps its country and language".to_owned(),
        ));
    }
    Ok(())
}

/// Applies a checked partial update. Before buying, a priced change sends
/// feasibility back to `PROCESSING`; after, a new length of interview or
/// incidence raises a reprice event (returned, for the caller to store).
pub(super) fn update_item(
    demand: &mut Demand,
    username: &str,
    project_id: &str,
    item_id: &str,
    body: &Map<String, Value>,
    now: Instant,
) -> Result<Option<Event>, ApiError> {
    let delay = demand.feasibility_delay;
    let event_id = demand.peek_event_id();
    let event = update_item_in(
        demand, username, project_id, item_id, body, now, delay, event_id,
    )?;
    if event.is_some() {
        demand.take_event_id();
    }
    Ok(event)
}

#[allow(clippy::too_many_arguments)]
fn update_item_in(
    demand: &mut Demand,
    username: &str,
    project_id: &str,
    item_id: &str,
    body: &Map<String, Value>,
    now: Instant,
    delay: std::time::Duration,
    event_id: i64,
) -> Result<Option<Event>, ApiError> {
    let project = demand.project_mut(username, project_id)?;
    let item = project.line_item_mut(item_id)?;
    precheck_item_update(item, body)?;
    let repriced = item.apply(body);
    item.updated_at = now;
    let Some(purchase) = item.purchase else {
        if repriced {
            item.priced_at = later(now, delay);
        }
        return Ok(None);
    };
    if item.length_of_interview() == purchase.length_of_interview
        && item.incidence() == purchase.incidence
    {
        return Ok(None);
    }
    let event = events::reprice_triggered(event_id, project_id, item, purchase, now);
    let resume = item.state;
    if item.state == LINE_ITEM_LAUNCHED {
        item.set_state(LINE_ITEM_PAUSED, "Paused for a reprice", now);
    }
    item.reprice = Some(line_items::PendingReprice { event_id, resume });
    project.follow_line_items(now);
    Ok(Some(event))
}

pub(crate) fn update_line_item(call: &mut Call<'_>) -> Answer {
    let body = validate::json_object(&call.body)?;
    let project_id = call.param("extProjectId").to_owned();
    let item_id = call.param("extLineItemId").to_owned();
    let project = call.demand.project(&call.username, &project_id)?;
    project.refuse_if_finished("update a line item")?;
    let item = project.line_item(&item_id)?;
    let mut check = Check::default();
    line_items::check_body(
        &mut check,
        &body,
        "",
        Mode::Update,
        Some((item.text("countryISOCode"), item.text("languageISOCode"))),
    );
    if let Some(given) = body.get("extLineItemId")
        && given.as_str() != Some(item_id.as_str())
    {
        check.bad("extLineItemId", "must match the path, if given");
    }
    check.finish()?;
    if let Some(event) = update_item(
        call.demand,
        &call.username,
        &project_id,
        &item_id,
        &body,
        call.now,
    )? {
        call.demand.account_mut(&call.username).events.push(event);
    }
    let project = call.demand.project(&call.username, &project_id)?;
    Ok(envelope::ok(
        project.line_item(&item_id)?.full(&call.demand.clock),
    ))
}

fn act(call: &mut Call<'_>, action: &str) -> Answer {
    validate::no_body(&call.body)?;
    let now = call.now;
    let project_id = call.param("extProjectId").to_owned();
    let item_id = call.param("extLineItemId").to_owned();
    let project = call.demand.project_mut(&call.username, &project_id)?;
    project.refuse_if_finished(&format!("{action} a line item"))?;
    project.line_item_mut(&item_id)?.act(action, now)?;
    project.updated_at = now;
    project.follow_line_items(now);
    let project = call.demand.project(&call.username, &project_id)?;
    Ok(envelope::ok(
        project.line_item(&item_id)?.full(&call.demand.clock),
    ))
}

pub(crate) fn launch_line_item(call: &mut Call<'_>) -> Answer {
    act(call, "launch")
}

pub(crate) fn pause_line_item(call: &mut Call<'_>) -> Answer {
    act(call, "pause")
}

pub(crate) fn close_line_item(call: &mut Call<'_>) -> Answer {
    act(call, "close")
}

pub(crate) fn set_quota_cell_status(call: &mut Call<'_>) -> Answer {
    validate::no_body(&call.body)?;
    let now = call.now;
    let status = match call.param("action") {
        "launch" => LINE_ITEM_LAUNCHED,
        "pause" => LINE_ITEM_PAUSED,
        other => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "INVALID_PARAMETER",
                format!("the action must be launch or pause, not {other:?}"),
                ("action", "parameter"),
            ));
        }
    };
    let project_id = call.param("extProjectId").to_owned();
    let item_id = call.param("extLineItemId").to_owned();
    let cell_id = call.param("quotaCellId").to_owned();
    let project = call.demand.project_mut(&call.username, &project_id)?;
    project.refuse_if_finished("change a quota cell")?;
    let item = project.line_item_mut(&item_id)?;
    if matches!(item.state, LINE_ITEM_CLOSED | LINE_ITEM_COMPLETED) {
        return Err(ApiError::invalid_state(
            "lineItem",
            &item_id,
            format!(
                "cannot change a quota cell of a line item that is {}",
                item.state
            ),
        ));
    }
    let cell = item
        .quota_cell_mut(&cell_id)
        .ok_or_else(|| ApiError::not_found("quotaCell", &cell_id))?;
    cell.insert("status".to_owned(), Value::from(status));
    let answer = Value::Object(cell.clone());
    item.updated_at = now;
    Ok(envelope::ok(answer))
}
