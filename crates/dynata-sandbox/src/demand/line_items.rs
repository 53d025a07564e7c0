//! Line items: what a body may set (checked field by field), the record
//! the sandbox keeps, its JSON shapes, and its state machine:
//!
//! ```text
//! PROVISIONED --buy--> AWAITING_APPROVAL --launch--> LAUNCHED <--pause/launch--> PAUSED
//!      |                      |                         |  target met -> COMPLETED
//!      +----------------------+------- close -----------+----------------> CLOSED
//! ```
//!
//! The sandbox approves a bought line item at once: `launch` works straight
//! from `AWAITING_APPROVAL`.

use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::time::Instant;

use super::catalogue;
use super::clock::Clock;
use super::envelope::ApiError;
use super::validate::{Check, Need, join};
use crate::later::later;

pub(crate) const PROVISIONED: &str = "PROVISIONED";
pub(crate) const AWAITING_APPROVAL: &str = "AWAITING_APPROVAL";
pub(crate) const LAUNCHED: &str = "LAUNCHED";
pub(crate) const PAUSED: &str = "PAUSED";
pub(crate) const CLOSED: &str = "CLOSED";
pub(crate) const COMPLETED: &str = "COMPLETED";

/// The fields a client sets, kept as sent (after checking) and answered
/// back unchanged.
const SETTABLE: &[&str] = &[
    "title",
    "countryISOCode",
    "languageISOCode",
    "surveyURL",
    "surveyTestURL",
    "surveyURLParams",
    "surveyTestURLParams",
    "indicativeIncidence",
    "daysInField",
    "fieldSchedule",
    "lengthOfInterview",
    "deliveryType",
    "requiredCompletes",
    "targets",
    "sources",
    "quotaPlan",
    "surveyTestingNotes",
    "costPerInterview",
    "dynataLineItemReferenceId",
];

/// Fields whose change makes Dynata price the line item again.
const PRICED_BY: &[&str] = &[
    "countryISOCode",
    "languageISOCode",
    "indicativeIncidence",
    "lengthOfInterview",
    "targets",
    "requiredCompletes",
    "quotaPlan",
];

/// What a bought line item was bought at: the accepted price and the
/// length of interview and incidence it was priced with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Purchase {
    pub(crate) cost_per_interview: f64,
    pub(crate) length_of_interview: i64,
    pub(crate) incidence: f64,
}

/// A reprice waiting for an answer, and the state to go back to after it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PendingReprice {
    pub(crate) event_id: i64,
    pub(crate) resume: &'static str,
}

pub(crate) struct LineItem {
    pub(crate) id: String,
    pub(crate) fields: Map<String, Value>,
    pub(crate) state: &'static str,
    pub(crate) state_reason: &'static str,
    pub(crate) created_at: Instant,
    pub(crate) updated_at: Instant,
    pub(crate) state_changed_at: Instant,
    pub(crate) launched_at: Option<Instant>,
    /// When feasibility is `READY`: the last priced change plus the delay.
    pub(crate) priced_at: Instant,
    pub(crate) purchase: Option<Purchase>,
    /// Time spent `LAUNCHED` before `running_since`.
    pub(crate) field_time: Duration,
    pub(crate) running_since: Option<Instant>,
    pub(crate) reprice: Option<PendingReprice>,
}

/// Whether a body creates a line item (required fields must be there) or
/// changes one (anything may be left out).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Create,
    Update,
}

impl LineItem {
    /// A new line item from a checked create body.
    pub(crate) fn new(
        id: String,
        body: &Map<String, Value>,
        now: Instant,
        delay: Duration,
    ) -> LineItem {
        let mut item = LineItem {
            id,
            fields: Map::new(),
            state: PROVISIONED,
            state_reason: "Created by Client",
            created_at: now,
            updated_at: now,
            state_changed_at: now,
            launched_at: None,
            priced_at: later(now, delay),
            purchase: None,
            field_time: Duration::ZERO,
            running_since: None,
            reprice: None,
        };
        item.apply(body);
        item.fields
            .entry("deliveryType")
            .or_insert_with(|| Value::from("BALANCED"));
        item.fields
            .entry("sources")
            .or_insert_with(|| json!([{"id": 100, "name": "Dynata Panel"}]));
        item
    }

    /// Copies the settable fields of a checked body over the record's;
    /// fields left out stay. Answers whether the price may have changed.
    pub(crate) fn apply(&mut self, body: &Map<String, Value>) -> bool {
        let mut repriced = false;
        for name in SETTABLE {
            if let Some(value) = body.get(*name).filter(|value| !value.is_null()) {
                let mut value = value.clone();
                if *name == "quotaPlan" {
                    number_quota_plan(&mut value);
                }
                if self.fields.get(*name) != Some(&value) {
                    repriced |= PRICED_BY.contains(name);
                    self.fields.insert((*name).to_owned(), value);
                }
            }
        }
        repriced
    }

    pub(crate) fn text(&self, name: &str) -> &str {
        self.fields
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    pub(crate) fn length_of_interview(&self) -> i64 {
        self.fields
            .get("lengthOfInterview")
            .and_then(Value::as_i64)
            .unwrap_or(1)
    }

    pub(crate) fn incidence(&self) -> f64 {
        self.fields
            .get("indicativeIncidence")
            .and_then(Value::as_f64)
            .unwrap_or(100.0)
    }

    /// Completes wanted: the `COMPLETE` targets, else `requiredCompletes`.
    pub(crate) fn wanted_completes(&self) -> i64 {
        let from_targets: i64 = self
            .fields
            .get("targets")
            .and_then(Value::as_array)
            .map(|targets| {
                targets
                    .iter()
                    .filter(|t| {
                        t.get("type").and_then(Value::as_str).unwrap_or("COMPLETE") == "COMPLETE"
                    })
                    .filter_map(|t| t.get("count").and_then(Value::as_i64))
                    .sum()
            })
            .unwrap_or(0);
        if from_targets > 0 {
            from_targets
        } else {
            self.fields
                .get("requiredCompletes")
                .and_then(Value::as_i64)
                .unwrap_or(0)
        }
    }

    /// How long the line item has been in field, up to `now`.
    pub(crate) fn time_in_field(&self, now: Instant) -> Duration {
        self.field_time
            + self
                .running_since
                .map_or(Duration::ZERO, |since| now.saturating_duration_since(since))
    }

    /// Moves to `state`, keeping the field clock right.
    pub(crate) fn set_state(&mut self, state: &'static str, reason: &'static str, now: Instant) {
        if let Some(since) = self.running_since.take() {
            self.field_time += now.saturating_duration_since(since);
        }
        if state == LAUNCHED {
            self.running_since = Some(now);
            self.launched_at.get_or_insert(now);
        }
        self.state = state;
        self.state_reason = reason;
        self.state_changed_at = now;
        self.updated_at = now;
    }

    /// Applies `launch`, `pause` or `close`, or says why not.
    pub(crate) fn act(&mut self, action: &str, now: Instant) -> Result<(), ApiError> {
        let refuse = |item: &LineItem, why: &str| {
            Err(ApiError::invalid_state(
                "lineItem",
                &item.id,
                format!("cannot {action} a line item that is {} ({why})", item.state),
            ))
        };
        match (action, self.state) {
            (_, CLOSED | COMPLETED) => refuse(self, "it is finished"),
            ("launch", AWAITING_APPROVAL | PAUSED) if self.reprice.is_some() => {
                refuse(self, "a reprice event awaits an answer")
            }
            ("launch", AWAITING_APPROVAL | PAUSED) => {
                self.set_state(LAUNCHED, "Launched by Client", now);
                Ok(())
            }
            ("launch", PROVISIONED) => refuse(self, "buy it first"),
            ("pause", LAUNCHED) => {
                self.set_state(PAUSED, "Paused by Client", now);
                Ok(())
            }
            ("close", _) => {
                self.reprice = None;
                self.set_state(CLOSED, "Closed by Client", now);
                Ok(())
            }
            _ => refuse(self, "not allowed from that state"),
        }
    }

    /// The header fields lists show. A moment that has not happened
    /// (`launchedAt` before launch) is `""`, as Dynata documents it.
    pub(crate) fn header(&self, clock: &Clock) -> Value {
        let mut header = json!({
            "extLineItemId": self.id,
            "title": self.text("title"),
            "countryISOCode": self.text("countryISOCode"),
            "languageISOCode": self.text("languageISOCode"),
            "state": self.state,
            "stateReason": self.state_reason,
            "createdAt": clock.timestamp(self.created_at),
            "updatedAt": clock.timestamp(self.updated_at),
            "stateLastUpdatedAt": clock.timestamp(self.state_changed_at),
        });
        header["launchedAt"] = Value::from(
            self.launched_at
                .map(|at| clock.timestamp(at))
                .unwrap_or_default(),
        );
        header
    }

    /// The whole line item.
    pub(crate) fn full(&self, clock: &Clock) -> Value {
        let mut value = self.header(clock);
        if let Value::Object(object) = &mut value {
            for (name, field) in &self.fields {
                object.insert(name.clone(), field.clone());
            }
        }
        value
    }

    /// The quota cell with this id, if the plan has one.
    pub(crate) fn quota_cell_mut(&mut self, cell_id: &str) -> Option<&mut Map<String, Value>> {
        self.fields
            .get_mut("quotaPlan")?
            .get_mut("quotaGroups")?
            .as_array_mut()?
            .iter_mut()
            .filter_map(|group| group.get_mut("quotaCells").and_then(Value::as_array_mut))
            .flatten()
            .filter_map(Value::as_object_mut)
            .find(|cell| cell.get("quotaCellId").and_then(Value::as_str) == Some(cell_id))
    }
}

/// Gives every quota group and cell an id (`"1"`, `"2"`, ... where the
/// client gave none) and every cell a status (`LAUNCHED`).
fn number_quota_plan(plan: &mut Value) {
    let Some(groups) = plan.get_mut("quotaGroups").and_then(Value::as_array_mut) else {
        return;
    };
    let mut next_cell = 1;
    for (index, group) in groups.iter_mut().enumerate() {
        let Some(group) = group.as_object_mut() else {
            continue;
        };
        group
            .entry("quotaGroupId")
            .or_insert_with(|| Value::from((index + 1).to_string()));
        let Some(cells) = group.get_mut("quotaCells").and_then(Value::as_array_mut) else {
            continue;
        };
        for cell in cells.iter_mut().filter_map(Value::as_object_mut) {
            cell.entry("quotaCellId")
                .or_insert_with(|| Value::from(next_cell.to_string()));
            cell.entry("status")
                .or_insert_with(|| Value::from(LAUNCHED));
            next_cell += 1;
        }
    }
}

/// Checks a line item body (create or update) at `prefix`; `existing` is
/// the country and language the item has, for an update that leaves them
/// out.
pub(crate) fn check_body(
    check: &mut Check,
    body: &Map<String, Value>,
    prefix: &str,
    mode: Mode,
    existing: Option<(&str, &str)>,
) {
    let need = |create_needs: bool| {
        if create_needs && mode == Mode::Create {
            Need::Required
        } else {
            Need::Optional
        }
    };
    if mode == Mode::Create {
        check.string(body, prefix, "extLineItemId", Need::Required, (1, 255));
    }
    check.string(body, prefix, "title", need(true), (1, 255));
    let country = check.string(body, prefix, "countryISOCode", need(true), (2, 2));
    let language = check.string(body, prefix, "languageISOCode", need(true), (2, 2));
    let country = country.or_else(|| existing.map(|(country, _)| country.to_owned()));
    let language = language.or_else(|| existing.map(|(_, language)| language.to_owned()));
    if let (Some(country), Some(language)) = (&country, &language)
        && (body.contains_key("countryISOCode") || body.contains_key("languageISOCode"))
        && !catalogue::supports(country, language)
    {
        check.bad(
            &join(prefix, "countryISOCode"),
            format!("{country}/{language} is not a country and language the catalogue lists (GET /countries)"),
        );
    }
    check.string(body, prefix, "surveyURL", Need::Optional, (0, 2000));
    check.string(body, prefix, "surveyTestURL", Need::Optional, (0, 2000));
    check.string(
        body,
        prefix,
        "surveyTestingNotes",
        Need::Optional,
        (0, 2000),
    );
    check.string(
        body,
        prefix,
        "dynataLineItemReferenceId",
        Need::Optional,
        (0, 255),
    );
    for params in ["surveyURLParams", "surveyTestURLParams"] {
        for (path, param) in check.objects(body, prefix, params, Need::Optional, 0) {
            check.string(param, &path, "key", Need::Required, (1, 255));
            // Required, as in Dynata's Swagger document and the contract.
            check.strings(param, &path, "values", Need::Required, 0, None);
        }
    }
    check.number(
        body,
        prefix,
        "indicativeIncidence",
        need(true),
        (0.01, 100.0),
    );
    check.integer(body, prefix, "lengthOfInterview", need(true), (1, 120));
    check.integer(body, prefix, "daysInField", Need::Optional, (1, 365));
    check.integer(
        body,
        prefix,
        "requiredCompletes",
        Need::Optional,
        (1, 1_000_000),
    );
    check.number(body, prefix, "costPerInterview", Need::Optional, (0.0, 1e6));
    // `null` is not set, here as everywhere else in the checks.
    let set = |name: &str| body.get(name).is_some_and(|value| !value.is_null());
    if mode == Mode::Create && !set("daysInField") && !set("fieldSchedule") {
        check.bad(
            &join(prefix, "daysInField"),
            "daysInField or fieldSchedule is required",
        );
    }
    if let Some(schedule) = check.field(body, prefix, "fieldSchedule", Need::Optional) {
        let path = join(prefix, "fieldSchedule");
        if let Some(schedule) = check.object(schedule, &path) {
            check.string(schedule, &path, "startTime", Need::Optional, (0, 64));
            check.string(schedule, &path, "endTime", Need::Optional, (0, 64));
        }
    }
    if let Some(delivery) = check.field(body, prefix, "deliveryType", Need::Optional) {
        let allowed: Vec<&str> = catalogue::DELIVERY_TYPES
            .iter()
            .filter(|(_, allowed)| *allowed)
            .map(|(id, _)| *id)
            .collect();
        if !delivery.as_str().is_some_and(|d| allowed.contains(&d)) {
            check.bad(
                &join(prefix, "deliveryType"),
                format!("must be one of {} (GET /studyMetadata)", allowed.join(", ")),
            );
        }
    }
    let targets = check.objects(body, prefix, "targets", need(true), 1);
    for (path, target) in targets {
        check.integer(target, &path, "count", Need::Required, (1, 1_000_000));
        check.integer(target, &path, "dailyLimit", Need::Optional, (0, 1_000_000));
        check.integer(target, &path, "softLaunch", Need::Optional, (0, 1_000_000));
        if let Some(kind) = check.field(target, &path, "type", Need::Required)
            && kind.as_str() != Some("COMPLETE")
        {
            check.bad(&join(&path, "type"), "must be COMPLETE");
        }
    }
    for (path, source) in check.objects(body, prefix, "sources", Need::Optional, 0) {
        let known: Vec<i64> = catalogue::SOURCES.iter().map(|(id, ..)| *id).collect();
        if let Some(id) = check.integer(source, &path, "id", Need::Required, (0, i64::MAX))
            && !known.contains(&id)
        {
            check.bad(&join(&path, "id"), "is not a source GET /sources lists");
        }
    }
    if let Some(plan) = check.field(body, prefix, "quotaPlan", Need::Optional) {
        let path = join(prefix, "quotaPlan");
        if let Some(plan) = check.object(plan, &path) {
            let place = country.as_deref().zip(language.as_deref());
            check_quota_plan(check, plan, &path, place, false);
        }
    }
}

/// Checks a quota plan: targeting attributes known to the catalogue for
/// `place` (country, language), and in each group every cell with `count`
/// or every cell with `perc` (only `perc` when `perc_only`, as templates).
pub(crate) fn check_quota_plan(
    check: &mut Check,
    plan: &Map<String, Value>,
    prefix: &str,
    place: Option<(&str, &str)>,
    perc_only: bool,
) {
    for (path, filter) in check.objects(plan, prefix, "filters", Need::Optional, 0) {
        check_targeting(check, filter, &path, place, false);
    }
    for (group_path, group) in check.objects(plan, prefix, "quotaGroups", Need::Optional, 0) {
        check.string(group, &group_path, "quotaGroupId", Need::Optional, (1, 64));
        check.string(group, &group_path, "name", Need::Optional, (0, 255));
        let mut kinds = Vec::new();
        for (cell_path, cell) in check.objects(group, &group_path, "quotaCells", Need::Required, 1)
        {
            check.string(cell, &cell_path, "quotaCellId", Need::Optional, (1, 64));
            let nodes = check.objects(cell, &cell_path, "quotaNodes", Need::Required, 1);
            for (node_path, node) in nodes {
                check_targeting(check, node, &node_path, place, true);
            }
            let count = check.integer(cell, &cell_path, "count", Need::Optional, (0, 1_000_000));
            let perc = check.number(cell, &cell_path, "perc", Need::Optional, (0.0, 100.0));
            match (cell.contains_key("count"), cell.contains_key("perc")) {
                (true, true) | (false, false) => {
                    check.bad(&cell_path, "give exactly one of count and perc")
                }
                (true, false) if perc_only => {
                    check.bad(&join(&cell_path, "count"), "templates use perc only")
                }
                (has_count, _) => kinds.push(has_count),
            }
            let _ = (count, perc);
            if let Some(status) = check.field(cell, &cell_path, "status", Need::Optional)
                && !matches!(status.as_str(), Some(LAUNCHED | PAUSED))
            {
                check.bad(&join(&cell_path, "status"), "must be LAUNCHED or PAUSED");
            }
        }
        if kinds.windows(2).any(|pair| pair[0] != pair[1]) {
            check.bad(
                &group_path,
                "every cell of a group uses count, or every cell uses perc",
            );
        }
    }
}

fn check_targeting(
    check: &mut Check,
    node: &Map<String, Value>,
    path: &str,
    place: Option<(&str, &str)>,
    in_quota: bool,
) {
    let attribute = check.string(node, path, "attributeId", Need::Required, (1, 64));
    let options = check.strings(node, path, "options", Need::Required, 1, None);
    if let Some(operator) = check.field(node, path, "operator", Need::Optional)
        && !operator.as_str().is_some_and(|op| {
            op.eq_ignore_ascii_case("include") || op.eq_ignore_ascii_case("exclude")
        })
    {
        check.bad(&join(path, "operator"), "must be include or exclude");
    }
    if let (Some((country, language)), Some(attribute), Some(options)) = (place, attribute, options)
        && let Err(message) =
            catalogue::check_targeting(country, language, &attribute, &options, in_quota)
    {
        check.bad(&join(path, "attributeId"), message);
    }
}
