//! Who is calling and what their company has: `/user`, `/users`, `/teams`,
//! `/roles`, and the catalogue's lists (countries, attributes, topics,
//! sources, study metadata), which every account shares.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::Call;
use super::catalogue;
use super::envelope::{self, Answer, ApiError};
use super::listing::{FilterSpec, ListQuery};

/// Every company has the same two teams.
const TEAMS: &[(i64, &str, &str)] = &[
    (1, "Research", "Designs and runs the studies"),
    (2, "Operations", "Buys and manages sample"),
];

pub(crate) fn team_name(id: i64) -> Option<&'static str> {
    TEAMS
        .iter()
        .find(|(team, ..)| *team == id)
        .map(|(_, name, _)| *name)
}

fn email(username: &str) -> String {
    let local: String = username
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        .collect();
    format!(
        "{}@sandbox.example",
        if local.is_empty() { "user" } else { &local }
    )
}

fn teams(call: &Call<'_>) -> Vec<Value> {
    let created = call.demand.clock.timestamp(call.now);
    TEAMS
        .iter()
        .map(|(id, name, description)| {
            json!({
                "id": id, "name": name, "description": description, "status": "ACTIVE",
                "default": *id == 1, "createdAt": created, "updatedAt": created,
            })
        })
        .collect()
}

/// `users/info`: the caller, its company and the one application the
/// sandbox has. `username` is what Dynata's Go client reads, `userName`
/// what its Swagger document and the spec say; both are sent. The query
/// filters narrow `applications`.
pub(crate) fn user_info(call: &mut Call<'_>) -> Answer {
    let account = call.demand.account(&call.username);
    let application = json!({"appId": 1, "name": "Demand API", "current": true, "default": true});
    let keep = call.query.iter().all(|(name, wanted)| match name.as_str() {
        "appId" | "current" | "default" | "name" => {
            let value = &application[name.as_str()];
            value
                .as_str()
                .map_or_else(|| value.to_string(), str::to_owned)
                == *wanted
        }
        _ => true,
    });
    Ok(envelope::ok(json!({
        "username": call.username,
        "userName": call.username,
        "email": email(&call.username),
        "fullName": call.username,
        "companyId": account.id,
        "companyName": account.name,
        "applications": if keep { vec![application] } else { Vec::new() },
    })))
}

pub(crate) fn get_user(call: &mut Call<'_>) -> Answer {
    let account = call.demand.account(&call.username);
    let teams: Vec<Value> = TEAMS
        .iter()
        .map(|(id, name, _)| {
            json!({"id": id, "name": name, "role": "PROJECT_MANAGER", "default": *id == 1, "status": "ACTIVE"})
        })
        .collect();
    Ok(envelope::ok(json!({
        "id": call.demand.user_id(&call.username),
        "email": email(&call.username),
        "userName": call.username,
        "fullName": call.username,
        "companies": [{
            "id": account.id,
            "name": account.name,
            "defaultRole": "PROJECT_MANAGER",
            "default": true,
            "teams": teams,
        }],
    })))
}

const USER_FILTERS: &[FilterSpec] = &[
    ("id", "/id"),
    ("userName", "/userName"),
    ("email", "/email"),
];

pub(crate) fn list_company_users(call: &mut Call<'_>) -> Answer {
    let query = ListQuery::parse(&call.query, USER_FILTERS)?;
    let demand = &*call.demand;
    let users = demand
        .account(&call.username)
        .members
        .iter()
        .map(|member| {
            json!({"id": demand.user_id(member), "email": email(member), "userName": member, "name": member})
        })
        .collect();
    query.answer(users, USER_FILTERS, &format!("{}/users", call.base_url))
}

const TEAM_FILTERS: &[FilterSpec] = &[("id", "/id"), ("name", "/name"), ("status", "/status")];

pub(crate) fn list_teams(call: &mut Call<'_>) -> Answer {
    let query = ListQuery::parse(&call.query, TEAM_FILTERS)?;
    query.answer(
        teams(call),
        TEAM_FILTERS,
        &format!("{}/teams", call.base_url),
    )
}

const ROLE_FILTERS: &[FilterSpec] = &[("id", "/id"), ("name", "/name")];

pub(crate) fn list_roles(call: &mut Call<'_>) -> Answer {
    let query = ListQuery::parse(&call.query, ROLE_FILTERS)?;
    let action = |id: &str, description: &str| json!({"id": id, "action": id.to_lowercase().replace('_', ":"), "description": description});
    let roles = vec![
        json!({
            "id": "PROJECT_MANAGER", "name": "Project manager",
            "description": "Creates, buys and runs projects",
            "assignableRoles": ["PROJECT_MANAGER", "SURVEY_AUTHOR", "VIEWER"],
            "allowedActions": [
                action("GET_PROJECT", "Read projects"),
                action("CREATE_PROJECT", "Create projects"),
                action("BUY_PROJECT", "Buy line items"),
                action("CLOSE_PROJECT", "Close projects"),
            ],
        }),
        json!({
            "id": "SURVEY_AUTHOR", "name": "Survey author",
            "description": "Edits projects and their line items",
            "assignableRoles": ["SURVEY_AUTHOR", "VIEWER"],
            "allowedActions": [action("GET_PROJECT", "Read projects"), action("UPDATE_PROJECT", "Change projects")],
        }),
        json!({
            "id": "VIEWER", "name": "Viewer", "description": "Reads projects and reports",
            "assignableRoles": [],
            "allowedActions": [action("GET_PROJECT", "Read projects")],
        }),
    ];
    query.answer(roles, ROLE_FILTERS, &format!("{}/roles", call.base_url))
}

const COUNTRY_FILTERS: &[FilterSpec] = &[
    ("countryName", "/countryName"),
    ("id", "/id"),
    ("isoCode", "/isoCode"),
];

pub(crate) fn list_countries(call: &mut Call<'_>) -> Answer {
    let query = ListQuery::parse(&call.query, COUNTRY_FILTERS)?;
    let url = format!("{}/countries", call.base_url);
    query.answer(catalogue::countries(), COUNTRY_FILTERS, &url)
}

const ATTRIBUTE_FILTERS: &[FilterSpec] = &[
    ("id", "/id"),
    ("name", "/name"),
    ("text", "/text"),
    ("state", "/state"),
    ("category", "/category/mainCategory/id"),
    ("subcategory", "/category/subCategory/id"),
    ("tier", "/tier"),
    ("type", "/type"),
    ("isAllowedInSurveyAppends", "/isAllowedInSurveyAppends"),
];

pub(crate) fn list_attributes(call: &mut Call<'_>) -> Answer {
    let query = ListQuery::parse(&call.query, ATTRIBUTE_FILTERS)?;
    let (country, language) = (call.param("countryCode"), call.param("languageCode"));
    let Some(attributes) = catalogue::attributes(country, language) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("{country}/{language} is not a country and language the catalogue lists"),
            (format!("{country}/{language}"), "country"),
        ));
    };
    let url = format!("{}/attributes/{country}/{language}", call.base_url);
    query.answer(attributes, ATTRIBUTE_FILTERS, &url)
}

const TOPIC_FILTERS: &[FilterSpec] = &[
    ("id", "/topic"),
    ("name", "/topic"),
    ("description", "/description"),
];

pub(crate) fn list_survey_topics(call: &mut Call<'_>) -> Answer {
    let query = ListQuery::parse(&call.query, TOPIC_FILTERS)?;
    let url = format!("{}/categories/surveyTopics", call.base_url);
    query.answer(catalogue::survey_topics(), TOPIC_FILTERS, &url)
}

const SOURCE_FILTERS: &[FilterSpec] = &[
    ("countryISOCode", "/countryISOCode"),
    ("languageISOCode", "/languageISOCode"),
];

pub(crate) fn list_sources(call: &mut Call<'_>) -> Answer {
    let query = ListQuery::parse(&call.query, SOURCE_FILTERS)?;
    let url = format!("{}/sources", call.base_url);
    query.answer(catalogue::sources(), SOURCE_FILTERS, &url)
}

pub(crate) fn get_study_metadata(_call: &mut Call<'_>) -> Answer {
    Ok(envelope::ok(catalogue::study_metadata()))
}
