//! Projects and the calls on them: list, create, read, partial update,
//! close, buy, feasibility, reconciliation and end links (line items have
//! `line_item_calls`, permissions `permissions`). A project's state follows
//! its line items:
//!
//! ```text
//! PROVISIONED -> LAUNCHED <-> PAUSED      (a line item launched / none in field)
//!                LAUNCHED -> COMPLETED    (every line item met its target)
//! PROVISIONED, LAUNCHED, PAUSED, COMPLETED --close--> CLOSED --invoice--> INVOICED
//! ```

use axum::http::StatusCode;
use serde_json::{Map, Value, json};
use tokio::time::Instant;

use super::catalogue;
use super::clock::Clock;
use super::envelope::{self, Answer, ApiError, Problem};
use super::line_items::{
    self, AWAITING_APPROVAL, CLOSED as LINE_ITEM_CLOSED, COMPLETED as LINE_ITEM_COMPLETED,
    LAUNCHED as LINE_ITEM_LAUNCHED, LineItem, Mode, PROVISIONED as LINE_ITEM_PROVISIONED, Purchase,
};
use super::listing::{self, FilterSpec, ListQuery};
use super::pricing;
use super::validate::{self, Check, Need, join};
use super::{Call, line_item_calls};

pub(crate) const PROVISIONED: &str = "PROVISIONED";
pub(crate) const LAUNCHED: &str = "LAUNCHED";
pub(crate) const PAUSED: &str = "PAUSED";
pub(crate) const COMPLETED: &str = "COMPLETED";
pub(crate) const CLOSED: &str = "CLOSED";
pub(crate) const INVOICED: &str = "INVOICED";

/// The project fields a client sets.
const SETTABLE: &[&str] = &[
    "title",
    "jobNumber",
    "notificationEmails",
    "devices",
    "category",
    "exclusions",
    "respondentFilters",
    "useRelevantId",
];

pub(crate) struct Project {
    pub(crate) id: String,
    pub(crate) fields: Map<String, Value>,
    pub(crate) state: &'static str,
    pub(crate) author: String,
    pub(crate) created_at: Instant,
    pub(crate) updated_at: Instant,
    pub(crate) state_changed_at: Instant,
    pub(crate) launched_at: Option<Instant>,
    pub(crate) closed_at: Option<Instant>,
    pub(crate) line_items: Vec<LineItem>,
    /// `(user id, role)`, and team ids.
    pub(crate) users: Vec<(i64, String)>,
    pub(crate) teams: Vec<i64>,
}

impl Project {
    fn set_state(&mut self, state: &'static str, now: Instant) {
        if self.state != state {
            self.state = state;
            self.state_changed_at = now;
            self.updated_at = now;
        }
    }

    /// Moves the project's state after its line items': launched while one
    /// is in field, paused when none is any more, completed when every one
    /// met its target. Closed and invoiced projects stay as they are.
    pub(crate) fn follow_line_items(&mut self, now: Instant) {
        if matches!(self.state, CLOSED | INVOICED) {
            return;
        }
        let any = |state: &str| self.line_items.iter().any(|item| item.state == state);
        if any(LINE_ITEM_LAUNCHED) {
            self.launched_at.get_or_insert(now);
            self.set_state(LAUNCHED, now);
        } else if self.launched_at.is_some() {
            let all_completed = !self.line_items.is_empty()
                && self
                    .line_items
                    .iter()
                    .all(|item| item.state == LINE_ITEM_COMPLETED);
            self.set_state(if all_completed { COMPLETED } else { PAUSED }, now);
        }
    }

    pub(crate) fn is_finished(&self) -> bool {
        matches!(self.state, CLOSED | INVOICED)
    }

    pub(crate) fn refuse_if_finished(&self, action: &str) -> Result<(), ApiError> {
        if self.is_finished() {
            return Err(ApiError::invalid_state(
                "project",
                &self.id,
                format!("cannot {action}: the project is {}", self.state),
            ));
        }
        Ok(())
    }

    pub(crate) fn header(&self, clock: &Clock) -> Value {
        let mut header = json!({
            "extProjectId": self.id,
            "title": self.fields.get("title").cloned().unwrap_or_default(),
            "state": self.state,
            "author": {"name": self.author, "type": "api", "username": self.author},
            "billing": {
                "billingID": format!("B-{}", self.id),
                "type": "PER_PROJECT",
                "billingDate": clock.timestamp(self.created_at),
            },
            "createdAt": clock.timestamp(self.created_at),
            "updatedAt": clock.timestamp(self.updated_at),
            "stateLastUpdatedAt": clock.timestamp(self.state_changed_at),
        });
        if let Some(job) = self.fields.get("jobNumber") {
            header["jobNumber"] = job.clone();
        }
        // A moment that has not happened is `""`, as Dynata documents it
        // (its Python client shows `null`): never left out, so that code
        // rehearsed here meets the empty timestamp Dynata sends.
        for (name, at) in [
            ("launchedAt", self.launched_at),
            ("closedAt", self.closed_at),
        ] {
            header[name] = Value::from(at.map(|at| clock.timestamp(at)).unwrap_or_default());
        }
        header
    }

    pub(crate) fn full(&self, clock: &Clock) -> Value {
        let mut value = self.header(clock);
        for (name, field) in &self.fields {
            value[name] = field.clone();
        }
        value["lineItems"] = self
            .line_items
            .iter()
            .map(|item| item.full(clock))
            .collect();
        value
    }

    pub(crate) fn line_item(&self, id: &str) -> Result<&LineItem, ApiError> {
        self.line_items
            .iter()
            .find(|item| item.id == id)
            .ok_or_else(|| ApiError::not_found("lineItem", id))
    }

    pub(crate) fn line_item_mut(&mut self, id: &str) -> Result<&mut LineItem, ApiError> {
        self.line_items
            .iter_mut()
            .find(|item| item.id == id)
            .ok_or_else(|| ApiError::not_found("lineItem", id))
    }
}

// ---- bodies ------------------------------------------------------------------

fn check_project_fields(check: &mut Check, body: &Map<String, Value>, mode: Mode) {
    let need = if mode == Mode::Create {
        Need::Required
    } else {
        Need::Optional
    };
    check.string(body, "", "title", need, (1, 255));
    check.string(body, "", "jobNumber", Need::Optional, (0, 100));
    if let Some(emails) = check.strings(body, "", "notificationEmails", need, 0, None) {
        for (index, email) in emails.iter().enumerate() {
            let (user, domain) = email.split_once('@').unwrap_or_default();
            if user.is_empty() || !domain.contains('.') {
                check.bad(
                    &format!("notificationEmails[{index}]"),
                    "must be an email address",
                );
            }
        }
    }
    check.strings(
        body,
        "",
        "devices",
        Need::Optional,
        1,
        Some(catalogue::DEVICES),
    );
    if let Some(category) = check.field(body, "", "category", need)
        && let Some(category) = check.object(category, "category")
    {
        let topics: Vec<&str> = catalogue::SURVEY_TOPICS
            .iter()
            .map(|(topic, _)| *topic)
            .collect();
        check.strings(
            category,
            "category",
            "surveyTopic",
            Need::Required,
            1,
            Some(&topics),
        );
        check.strings(
            category,
            "category",
            "studyType",
            Need::Optional,
            0,
            Some(catalogue::STUDY_TYPES),
        );
        check.strings(
            category,
            "category",
            "studyRequirements",
            Need::Optional,
            0,
            Some(catalogue::STUDY_REQUIREMENTS),
        );
    }
    if let Some(exclusions) = check.field(body, "", "exclusions", Need::Optional)
        && let Some(exclusions) = check.object(exclusions, "exclusions")
    {
        // Both required, as in Dynata's Swagger document and the contract.
        if let Some(kind) = check.field(exclusions, "exclusions", "type", Need::Required)
            && !matches!(kind.as_str(), Some("" | "PROJECT" | "TAG" | "CATEGORY"))
        {
            check.bad("exclusions.type", "must be PROJECT, TAG or CATEGORY");
        }
        check.strings(exclusions, "exclusions", "list", Need::Required, 0, None);
    }
    check.objects(body, "", "respondentFilters", Need::Optional, 0);
    check.boolean(body, "", "useRelevantId");
}

// ---- projects ------------------------------------------------------------------

const PROJECT_FILTERS: &[FilterSpec] = &[
    ("extProjectId", "/extProjectId"),
    ("title", "/title"),
    ("state", "/state"),
    ("jobNumber", "/jobNumber"),
    ("createdAt", "/createdAt"),
    ("updatedAt", "/updatedAt"),
    ("billingDate", "/billing/billingDate"),
    ("billingID", "/billing/billingID"),
    ("billingType", "/billing/type"),
];

pub(crate) fn list(call: &mut Call<'_>) -> Answer {
    let query = ListQuery::parse(&call.query, PROJECT_FILTERS)?;
    let scope = call
        .query
        .iter()
        .find(|(name, _)| name == "scope")
        .map(|(_, v)| v.as_str());
    if !matches!(scope, None | Some("application" | "user")) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "INVALID_PARAMETER",
            "scope must be application or user",
            ("scope", "parameter"),
        ));
    }
    let demand = &*call.demand;
    // Newest first unless `sort` says otherwise.
    let records: Vec<Value> = demand
        .account(&call.username)
        .projects
        .iter()
        .rev()
        .filter(|project| scope != Some("user") || project.author == call.username)
        .map(|project| project.header(&demand.clock))
        .collect();
    query.answer(
        records,
        PROJECT_FILTERS,
        &format!("{}/projects", call.base_url),
    )
}

pub(crate) fn create(call: &mut Call<'_>) -> Answer {
    let body = validate::json_object(&call.body)?;
    let mut check = Check::default();
    let id = check.string(&body, "", "extProjectId", Need::Required, (1, 255));
    check_project_fields(&mut check, &body, Mode::Create);
    let items = check.objects(&body, "", "lineItems", Need::Required, 1);
    let mut seen: Vec<&str> = Vec::new();
    for (path, item) in &items {
        line_items::check_body(&mut check, item, path, Mode::Create, None);
        if let Some(item_id) = item.get("extLineItemId").and_then(Value::as_str) {
            if seen.contains(&item_id) {
                check.bad(
                    &join(path, "extLineItemId"),
                    format!("{item_id:?} is used twice"),
                );
            }
            seen.push(item_id);
        }
    }
    check.finish()?;
    let id = id.unwrap_or_default();
    let (now, delay) = (call.now, call.demand.feasibility_delay);
    let author_id = call.demand.user_id(&call.username);
    let account = call.demand.account_mut(&call.username);
    if account.projects.iter().any(|project| project.id == id) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "DUPLICATE_EXT_PROJECT_ID",
            format!("a project with extProjectId {id:?} already exists"),
            (id, "project"),
        ));
    }
    let mut project = Project {
        id,
        fields: Map::new(),
        state: PROVISIONED,
        author: call.username.clone(),
        created_at: now,
        updated_at: now,
        state_changed_at: now,
        launched_at: None,
        closed_at: None,
        line_items: items
            .iter()
            .map(|(_, item)| {
                let item_id = item["extLineItemId"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                LineItem::new(item_id, item, now, delay)
            })
            .collect(),
        users: vec![(author_id, "PROJECT_MANAGER".to_owned())],
        teams: Vec::new(),
    };
    for name in SETTABLE {
        if let Some(value) = body.get(*name).filter(|value| !value.is_null()) {
            project.fields.insert((*name).to_owned(), value.clone());
        }
    }
    project
        .fields
        .entry("devices")
        .or_insert_with(|| json!(catalogue::DEVICES));
    let answer = project.full(&call.demand.clock);
    call.demand
        .account_mut(&call.username)
        .projects
        .push(project);
    envelope::created(answer)
}

pub(crate) fn get(call: &mut Call<'_>) -> Answer {
    let project = call
        .demand
        .project(&call.username, call.param("extProjectId"))?;
    Ok(envelope::ok(project.full(&call.demand.clock)))
}

pub(crate) fn update(call: &mut Call<'_>) -> Answer {
    let body = validate::json_object(&call.body)?;
    let project_id = call.param("extProjectId").to_owned();
    let project = call.demand.project(&call.username, &project_id)?;
    project.refuse_if_finished("update it")?;
    let mut check = Check::default();
    check_project_fields(&mut check, &body, Mode::Update);
    let updates = check.objects(&body, "", "lineItems", Need::Optional, 0);
    for (path, item) in &updates {
        let Some(item_id) = check.string(item, path, "extLineItemId", Need::Required, (1, 255))
        else {
            continue;
        };
        match project.line_item(&item_id) {
            Ok(existing) => line_items::check_body(
                &mut check,
                item,
                path,
                Mode::Update,
                Some((
                    existing.text("countryISOCode"),
                    existing.text("languageISOCode"),
                )),
            ),
            Err(_) => check.bad(
                &join(path, "extLineItemId"),
                format!(
                    "the project has no line item {item_id:?} (add one with POST .../lineItems)"
                ),
            ),
        }
    }
    check.finish()?;
    let now = call.now;
    // Every line item first, so that a refused one changes nothing.
    for (_, item) in &updates {
        let item_id = item["extLineItemId"].as_str().unwrap_or_default();
        let project = call.demand.project(&call.username, &project_id)?;
        line_item_calls::precheck_item_update(project.line_item(item_id)?, item)?;
    }
    let mut raised = Vec::new();
    for (_, item) in &updates {
        let item_id = item["extLineItemId"].as_str().unwrap_or_default();
        if let Some(event) = line_item_calls::update_item(
            call.demand,
            &call.username,
            &project_id,
            item_id,
            item,
            now,
        )? {
            raised.push(event);
        }
    }
    call.demand
        .account_mut(&call.username)
        .events
        .extend(raised);
    let project = call.demand.project_mut(&call.username, &project_id)?;
    for name in SETTABLE {
        if let Some(value) = body.get(*name).filter(|value| !value.is_null()) {
            project.fields.insert((*name).to_owned(), value.clone());
        }
    }
    project.updated_at = now;
    project.follow_line_items(now);
    let project = call.demand.project(&call.username, &project_id)?;
    Ok(envelope::ok(project.full(&call.demand.clock)))
}

pub(crate) fn close(call: &mut Call<'_>) -> Answer {
    validate::no_body(&call.body)?;
    let now = call.now;
    let project_id = call.param("extProjectId").to_owned();
    let project = call.demand.project_mut(&call.username, &project_id)?;
    project.refuse_if_finished("close it")?;
    for item in &mut project.line_items {
        if !matches!(item.state, LINE_ITEM_CLOSED | LINE_ITEM_COMPLETED) {
            item.reprice = None;
            item.set_state(LINE_ITEM_CLOSED, "Closed by Client", now);
        }
    }
    project.set_state(CLOSED, now);
    project.closed_at = Some(now);
    let clock = &call.demand.clock;
    let project = call.demand.project(&call.username, &project_id)?;
    let mut answer = project.header(clock);
    answer["lineItems"] = project
        .line_items
        .iter()
        .map(|item| item.header(clock))
        .collect();
    Ok(envelope::ok(answer))
}

pub(crate) fn buy(call: &mut Call<'_>) -> Answer {
    let body = validate::json_body(&call.body)?;
    let now = call.now;
    let project_id = call.param("extProjectId").to_owned();
    let project = call.demand.project(&call.username, &project_id)?;
    project.refuse_if_finished("buy")?;
    let Some(items) = body.as_array() else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "INVALID_BODY",
            "the body must be a JSON array of line items to buy",
            ("body", "body"),
        ));
    };
    let mut check = Check::default();
    if items.is_empty() {
        check.bad("body", "must name at least one line item");
    }
    let mut conflicts = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let path = format!("[{index}]");
        let Some(item) = check.object(item, &path) else {
            continue;
        };
        let item_id = check.string(item, &path, "extLineItemId", Need::Required, (1, 255));
        check.string(item, &path, "surveyURL", Need::Required, (1, 2000));
        check.string(item, &path, "surveyTestURL", Need::Required, (1, 2000));
        check.string(item, &path, "surveyTestingNotes", Need::Optional, (0, 2000));
        for params in ["surveyURLParams", "surveyTestURLParams"] {
            for (param_path, param) in check.objects(item, &path, params, Need::Optional, 0) {
                check.string(param, &param_path, "key", Need::Required, (1, 255));
                check.strings(param, &param_path, "values", Need::Optional, 0, None);
            }
        }
        let Some(item_id) = item_id else { continue };
        if seen.contains(&item_id.as_str()) {
            check.bad(&join(&path, "extLineItemId"), "is listed twice");
        }
        let Ok(line_item) = project.line_item(&item_id) else {
            check.bad(
                &join(&path, "extLineItemId"),
                format!("the project has no line item {item_id:?}"),
            );
            continue;
        };
        seen.push(items[index]["extLineItemId"].as_str().unwrap_or_default());
        let problem = |message: String| Problem {
            code: "INVALID_STATE",
            message,
            resource: (item_id.clone(), "lineItem"),
        };
        if line_item.state != LINE_ITEM_PROVISIONED {
            conflicts.push(problem(format!(
                "line item {item_id:?} is {}, not PROVISIONED",
                line_item.state
            )));
        } else if !pricing::is_ready(line_item, now) {
            conflicts.push(problem(format!(
                "feasibility of line item {item_id:?} is PROCESSING: buy once it is READY"
            )));
        } else if pricing::feasible_count(
            line_item.text("countryISOCode"),
            line_item.incidence(),
            line_item.length_of_interview(),
        ) <= 0
        {
            conflicts.push(problem(format!(
                "line item {item_id:?} has no feasible respondents"
            )));
        }
    }
    check.finish()?;
    if !conflicts.is_empty() {
        return Err(ApiError {
            status: StatusCode::CONFLICT,
            problems: conflicts,
        });
    }
    let project = call.demand.project_mut(&call.username, &project_id)?;
    let mut answer = Vec::new();
    for item in items.iter().filter_map(Value::as_object) {
        let line_item =
            project.line_item_mut(item["extLineItemId"].as_str().unwrap_or_default())?;
        for name in [
            "surveyURL",
            "surveyTestURL",
            "surveyTestingNotes",
            "surveyURLParams",
            "surveyTestURLParams",
        ] {
            if let Some(value) = item.get(name) {
                line_item.fields.insert(name.to_owned(), value.clone());
            }
        }
        line_item.purchase = Some(Purchase {
            cost_per_interview: pricing::cost_per_interview(
                line_item.text("countryISOCode"),
                line_item.incidence(),
                line_item.length_of_interview(),
            ),
            length_of_interview: line_item.length_of_interview(),
            incidence: line_item.incidence(),
        });
        line_item.set_state(AWAITING_APPROVAL, "Bought by Client", now);
        answer.push(json!({"extLineItemId": line_item.id, "state": line_item.state}));
    }
    project.updated_at = now;
    Ok(envelope::ok(Value::Array(answer)))
}

pub(crate) fn feasibility(call: &mut Call<'_>) -> Answer {
    let project = call
        .demand
        .project(&call.username, call.param("extProjectId"))?;
    let items: Vec<Value> = project
        .line_items
        .iter()
        .map(|item| pricing::feasibility(item, call.now, &call.demand.clock))
        .collect();
    Ok(envelope::ok(Value::Array(items)))
}

pub(crate) fn reconcile(call: &mut Call<'_>) -> Answer {
    let project = call
        .demand
        .project(&call.username, call.param("extProjectId"))?;
    if !project.is_finished() {
        return Err(ApiError::invalid_state(
            "project",
            &project.id,
            format!(
                "cannot reconcile a project that is {}: close it first",
                project.state
            ),
        ));
    }
    // Dynata's Swagger document has both form fields required, and its Go
    // client always sends `message`, empty or not.
    let Some(parts) = form_parts(&call.body) else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "INVALID_BODY",
            "the body must be multipart/form-data with the parts file and message",
            ("body", "body"),
        ));
    };
    let mut problems = Vec::new();
    for (name, what) in [
        ("file", "the reconciliation file"),
        ("message", "a message (it may be empty)"),
    ] {
        let part = parts.iter().find(|(part, _)| part == name);
        if part.is_none() || (name == "file" && part.is_some_and(|(_, empty)| *empty)) {
            problems.push(Problem {
                code: "MISSING_FIELD",
                message: format!("{name}: {what} is required"),
                resource: (name.to_owned(), "field"),
            });
        }
    }
    if !problems.is_empty() {
        return Err(ApiError::invalid_fields(problems));
    }
    Ok(envelope::ok(json!({})))
}

/// The parts of a `multipart/form-data` body (RFC 7578): each one's `name`
/// and whether its content is empty; `None` if the body is not one. The
/// boundary is read from the body's first line, as the request's
/// `Content-Type` states it.
fn form_parts(body: &[u8]) -> Option<Vec<(String, bool)>> {
    let first_line = body.split(|b| *b == b'\n').next()?;
    let delimiter = first_line.strip_suffix(b"\r").unwrap_or(first_line);
    if delimiter.len() < 3 || !delimiter.starts_with(b"--") {
        return None;
    }
    let text = String::from_utf8_lossy(body);
    let delimiter = String::from_utf8_lossy(delimiter).into_owned();
    let mut parts = Vec::new();
    for part in text.split(delimiter.as_str()).skip(1) {
        if part.starts_with("--") {
            break;
        }
        let (head, content) = part.split_once("\r\n\r\n")?;
        let name = head
            .split("name=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())?;
        let content = content.strip_suffix("\r\n").unwrap_or(content);
        parts.push((name.to_owned(), content.is_empty()));
    }
    Some(parts)
}

pub(crate) fn survey_end_links(call: &mut Call<'_>) -> Answer {
    let project = call
        .demand
        .project(&call.username, call.param("extProjectId"))?;
    let base = format!(
        "{}/respondent/exit?project={}",
        call.base_url,
        listing::encode(&project.id)
    );
    // The shape of Dynata's former Swagger document
    // (`ProjectSurveyEndLinksData`): each end link with the respondent ids
    // tested on it, the entry link, the security settings, the tests run.
    let end_link =
        |status: &str| json!({"link": format!("{base}&status={status}"), "testedIds": []});
    let entry_link = project
        .line_items
        .first()
        .map(|item| item.text("surveyURL").to_owned())
        .unwrap_or_default();
    Ok(envelope::ok(json!({
        "endLinks": {
            "complete": end_link("complete"),
            "screenout": end_link("screenout"),
            "overquota": end_link("overquota"),
        },
        "entryLink": entry_link,
        "securityLevel": "NONE",
        "tests": [],
    })))
}
