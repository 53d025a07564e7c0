//! Who may access a project: the account's users with a role, and its
//! teams. The project's creator is its `PROJECT_MANAGER`.

use serde_json::{Value, json};

use super::Call;
use super::envelope::{self, Answer};
use super::projects::Project;
use super::store::Demand;
use super::validate::{self, Check, Need, join};

/// Roles a user can be given on a project.
pub(crate) const PROJECT_ROLES: &[&str] = &["PROJECT_MANAGER", "SURVEY_AUTHOR", "VIEWER"];

fn permissions_of(demand: &Demand, username: &str, project: &Project) -> Value {
    let users: Vec<Value> = project
        .users
        .iter()
        .map(|(id, role)| json!({"id": id, "username": demand.username_of(*id), "role": role}))
        .collect();
    let teams: Vec<Value> = project
        .teams
        .iter()
        .map(|id| json!({"id": id, "name": super::account::team_name(*id)}))
        .collect();
    let caller = demand.user_id(username);
    let role = project
        .users
        .iter()
        .find(|(id, _)| *id == caller)
        .map_or("PROJECT_MANAGER", |(_, role)| role.as_str());
    json!({
        "extProjectId": project.id,
        "currentUser": {"roles": [role]},
        "users": users,
        "teams": teams,
    })
}

pub(crate) fn get(call: &mut Call<'_>) -> Answer {
    let project = call
        .demand
        .project(&call.username, call.param("extProjectId"))?;
    Ok(envelope::ok(permissions_of(
        call.demand,
        &call.username,
        project,
    )))
}

pub(crate) fn upsert(call: &mut Call<'_>) -> Answer {
    let body = validate::json_object(&call.body)?;
    let project_id = call.param("extProjectId").to_owned();
    call.demand.project(&call.username, &project_id)?;
    let members: Vec<i64> = call
        .demand
        .account(&call.username)
        .members
        .iter()
        .map(|member| call.demand.user_id(member))
        .collect();
    let mut check = Check::default();
    let mut users = Vec::new();
    for (path, user) in check.objects(&body, "", "users", Need::Optional, 0) {
        let id = check.integer(user, &path, "id", Need::Required, (1, i64::MAX));
        let role = check.string(user, &path, "role", Need::Required, (1, 64));
        if let Some(id) = id
            && !members.contains(&id)
        {
            check.bad(
                &join(&path, "id"),
                "is not a user of your company (GET /users)",
            );
        }
        if let Some(role) = &role
            && !PROJECT_ROLES.contains(&role.as_str())
        {
            check.bad(
                &join(&path, "role"),
                format!("must be one of {}", PROJECT_ROLES.join(", ")),
            );
        }
        if let (Some(id), Some(role)) = (id, role) {
            users.push((id, role));
        }
    }
    let mut teams = Vec::new();
    for (path, team) in check.objects(&body, "", "teams", Need::Optional, 0) {
        if let Some(id) = check.integer(team, &path, "id", Need::Required, (1, i64::MAX)) {
            if super::account::team_name(id).is_none() {
                check.bad(
                    &join(&path, "id"),
                    "is not a team of your company (GET /teams)",
                );
            }
            teams.push(id);
        }
    }
    check.finish()?;
    let project = call.demand.project_mut(&call.username, &project_id)?;
    for (id, role) in users {
        match project.users.iter_mut().find(|(known, _)| *known == id) {
            Some(entry) => entry.1 = role,
            None => project.users.push((id, role)),
        }
    }
    for id in teams {
        if !project.teams.contains(&id) {
            project.teams.push(id);
        }
    }
    let project = call.demand.project(&call.username, &project_id)?;
    Ok(envelope::ok(permissions_of(
        call.demand,
        &call.username,
        project,
    )))
}
