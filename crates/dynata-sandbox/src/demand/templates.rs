//! Quota-plan templates: saved quota plans (shares in `perc`) for one
//! country and language, private to the account that made them.

use axum::http::StatusCode;
use serde_json::{Map, Value, json};
use tokio::time::Instant;

use super::Call;
use super::catalogue;
use super::envelope::{self, Answer, ApiError};
use super::line_items::check_quota_plan;
use super::listing::{FilterSpec, ListQuery};
use super::validate::{self, Check, Need};

pub(crate) struct Template {
    pub(crate) id: i64,
    pub(crate) fields: Map<String, Value>,
    pub(crate) created_at: Instant,
    pub(crate) updated_at: Instant,
}

impl Template {
    fn to_json(&self, call: &Call<'_>) -> Value {
        let mut value = json!({
            "id": self.id,
            "editable": true,
            "state": "ACTIVE",
            "tags": [],
            "createdAt": call.demand.clock.timestamp(self.created_at),
            "updatedAt": call.demand.clock.timestamp(self.updated_at),
        });
        for (name, field) in &self.fields {
            value[name] = field.clone();
        }
        value
    }
}

/// Checks a create or update body; answers the fields to keep.
fn check_criteria(call: &Call<'_>) -> Result<Map<String, Value>, ApiError> {
    let body = validate::json_body(&call.body)?;
    let mut check = Check::default();
    let Some(body) = check.object(&body, "") else {
        check.finish()?;
        return Ok(Map::new());
    };
    check.string(body, "", "name", Need::Required, (1, 255));
    check.string(body, "", "description", Need::Required, (0, 2000));
    let country = check.string(body, "", "countryISOCode", Need::Required, (2, 2));
    let language = check.string(body, "", "languageISOCode", Need::Required, (2, 2));
    let place = country.as_deref().zip(language.as_deref());
    if let Some((country, language)) = place
        && !catalogue::supports(country, language)
    {
        check.bad(
            "countryISOCode",
            format!("{country}/{language} is not in the catalogue (GET /countries)"),
        );
    }
    check.strings(body, "", "tags", Need::Optional, 0, None);
    if let Some(plan) = check.field(body, "", "quotaPlan", Need::Required)
        && let Some(plan) = check.object(plan, "quotaPlan")
    {
        check_quota_plan(&mut check, plan, "quotaPlan", place, true);
    }
    check.finish()?;
    let keep = [
        "name",
        "description",
        "countryISOCode",
        "languageISOCode",
        "tags",
        "quotaPlan",
    ];
    Ok(body
        .iter()
        .filter(|(name, value)| keep.contains(&name.as_str()) && !value.is_null())
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect())
}

pub(crate) fn create(call: &mut Call<'_>) -> Answer {
    let fields = check_criteria(call)?;
    let id = call.demand.next_template_id();
    let template = Template {
        id,
        fields,
        created_at: call.now,
        updated_at: call.now,
    };
    call.demand
        .account_mut(&call.username)
        .templates
        .push(template);
    let template = call.demand.account(&call.username).templates.last();
    let mut response = envelope::ok(template.map(|t| t.to_json(call)).unwrap_or_default());
    *response.status_mut() = StatusCode::CREATED;
    Ok(response)
}

const TEMPLATE_FILTERS: &[FilterSpec] = &[
    ("id", "/id"),
    ("name", "/name"),
    ("description", "/description"),
    ("state", "/state"),
    ("tags", "/tags"),
    ("editable", "/editable"),
    ("createdAt", "/createdAt"),
    ("updatedAt", "/updatedAt"),
];

pub(crate) fn list(call: &mut Call<'_>) -> Answer {
    let query = ListQuery::parse(&call.query, TEMPLATE_FILTERS)?;
    let (country, language) = (call.param("countryCode"), call.param("languageCode"));
    let records = call
        .demand
        .account(&call.username)
        .templates
        .iter()
        .filter(|t| {
            t.fields.get("countryISOCode").and_then(Value::as_str) == Some(country)
                && t.fields.get("languageISOCode").and_then(Value::as_str) == Some(language)
        })
        .map(|t| t.to_json(call))
        .collect();
    let url = format!("{}/templates/quotaPlan/{country}/{language}", call.base_url);
    query.answer(records, TEMPLATE_FILTERS, &url)
}

fn position(call: &Call<'_>) -> Result<usize, ApiError> {
    let id = call.param("templateId");
    call.demand
        .account(&call.username)
        .templates
        .iter()
        .position(|t| id.parse() == Ok(t.id))
        .ok_or_else(|| ApiError::not_found("template", id))
}

pub(crate) fn update(call: &mut Call<'_>) -> Answer {
    let index = position(call)?;
    let fields = check_criteria(call)?;
    let now = call.now;
    let template = &mut call.demand.account_mut(&call.username).templates[index];
    template.fields = fields;
    template.updated_at = now;
    let template = &call.demand.account(&call.username).templates[index];
    Ok(envelope::ok(template.to_json(call)))
}

pub(crate) fn delete(call: &mut Call<'_>) -> Answer {
    let index = position(call)?;
    let template = call
        .demand
        .account_mut(&call.username)
        .templates
        .remove(index);
    Ok(envelope::ok(json!({"id": template.id, "deleted": true})))
}
