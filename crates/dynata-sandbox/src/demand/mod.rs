//! The Demand API (`/sample/v1`), emulated in memory: every operation of
//! `openapi/dynata-sample.yaml`, behind the same bearer-token check as
//! `users/info`, counted and open to injected faults like the auth API.
//! Each submodule has one job; this one routes and admits requests.

mod account;
mod catalogue;
mod clock;
mod envelope;
mod events;
mod fieldwork;
mod invoice;
mod line_item_calls;
mod line_items;
mod listing;
mod permissions;
mod pricing;
mod projects;
mod reports;
mod store;
mod templates;
mod validate;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, Extension, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::{MethodFilter, on};
use tokio::time::Instant;

pub(crate) use store::{Demand, DemandSettings};

use self::envelope::{Answer, ApiError};
use crate::operation::Operation;
use crate::origin;
use crate::reply;
use crate::routes::{after_work, body_limit, intercept};
use crate::server::ConnHandle;
use crate::state::Shared;

/// What a handler gets: the caller, the request's parts, the store (locked
/// for the whole call, so each call is atomic) and the time.
pub(crate) struct Call<'a> {
    pub(crate) demand: &'a mut Demand,
    /// `http://HOST:PORT/sample/v1` on the host the client called (see
    /// [`origin::base_url`]), for absolute URLs.
    pub(crate) base_url: String,
    pub(crate) username: String,
    pub(crate) params: HashMap<String, String>,
    pub(crate) query: Vec<(String, String)>,
    pub(crate) body: Bytes,
    pub(crate) now: Instant,
}

impl Call<'_> {
    /// A path parameter (always there: the route declares it).
    pub(crate) fn param(&self, name: &str) -> &str {
        self.params.get(name).map_or("", String::as_str)
    }
}

type Handler = fn(&mut Call<'_>) -> Answer;

/// Every Demand API operation and the function that serves it.
const HANDLERS: &[(Operation, Handler)] = &[
    (Operation::UsersInfo, account::user_info),
    (Operation::GetUser, account::get_user),
    (Operation::ListCompanyUsers, account::list_company_users),
    (Operation::ListTeams, account::list_teams),
    (Operation::ListRoles, account::list_roles),
    (Operation::ListCountries, account::list_countries),
    (Operation::ListAttributes, account::list_attributes),
    (Operation::ListSurveyTopics, account::list_survey_topics),
    (Operation::ListSources, account::list_sources),
    (Operation::GetStudyMetadata, account::get_study_metadata),
    (Operation::ListProjects, projects::list),
    (Operation::CreateProject, projects::create),
    (Operation::GetProject, projects::get),
    (Operation::UpdateProject, projects::update),
    (Operation::CloseProject, projects::close),
    (Operation::BuyProject, projects::buy),
    (Operation::GetFeasibility, projects::feasibility),
    (Operation::ReconcileProject, projects::reconcile),
    (Operation::GetSurveyEndLinks, projects::survey_end_links),
    (Operation::GetProjectPermissions, permissions::get),
    (Operation::UpsertProjectPermissions, permissions::upsert),
    (Operation::ListLineItems, line_item_calls::list_line_items),
    (Operation::CreateLineItem, line_item_calls::create_line_item),
    (Operation::GetLineItem, line_item_calls::get_line_item),
    (Operation::UpdateLineItem, line_item_calls::update_line_item),
    (Operation::LaunchLineItem, line_item_calls::launch_line_item),
    (Operation::PauseLineItem, line_item_calls::pause_line_item),
    (Operation::CloseLineItem, line_item_calls::close_line_item),
    (
        Operation::SetQuotaCellStatus,
        line_item_calls::set_quota_cell_status,
    ),
    (Operation::GetProjectReport, reports::project_report),
    (Operation::ListProjectReports, reports::project_reports),
    (
        Operation::GetProjectDetailedReport,
        reports::project_detailed_report,
    ),
    (
        Operation::GetLineItemDetailedReport,
        reports::line_item_detailed_report,
    ),
    (Operation::GetInvoicePdf, invoice::project_invoice),
    (Operation::GetInvoicesSummaryPdf, invoice::summary),
    (Operation::ListEvents, events::list),
    (Operation::GetEvent, events::get),
    (Operation::AcceptEvent, events::accept),
    (Operation::RejectEvent, events::reject),
    (Operation::CreateTemplate, templates::create),
    (Operation::ListTemplates, templates::list),
    (Operation::UpdateTemplate, templates::update),
    (Operation::DeleteTemplate, templates::delete),
];

pub(crate) fn router() -> Router<Arc<Shared>> {
    let mut router = Router::new();
    for &(operation, handler) in HANDLERS {
        let (method, path) = operation.route();
        let filter = match method {
            "GET" => MethodFilter::GET,
            "DELETE" => MethodFilter::DELETE,
            _ => MethodFilter::POST,
        };
        router = router.route(
            path,
            on(
                filter,
                move |State(shared): State<Arc<Shared>>,
                      Extension(conn): Extension<ConnHandle>,
                      path: Result<Path<HashMap<String, String>>, PathRejection>,
                      RawQuery(query): RawQuery,
                      headers: HeaderMap,
                      body: Result<Bytes, BytesRejection>| async move {
                    let answer = serve(
                        operation, handler, &shared, &conn, path, query, &headers, body,
                    )
                    .await;
                    with_request_id(&shared, answer)
                },
            )
            .layer(DefaultBodyLimit::max(body_limit(operation))),
        );
    }
    router
}

/// Counts the request and plays any fault, then does the work (see
/// [`work`]); the fault may yet act on its answer (`MalformedBody` cuts it
/// short, `AnswerLost` drops it).
#[allow(clippy::too_many_arguments)]
async fn serve(
    operation: Operation,
    handler: Handler,
    shared: &Shared,
    conn: &ConnHandle,
    path: Result<Path<HashMap<String, String>>, PathRejection>,
    query: Option<String>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let after = match intercept(shared, operation, conn).await {
        Ok(after) => after,
        Err(response) => return response,
    };
    let answer = work(operation, handler, shared, path, query, headers, body);
    after_work(after, answer, conn).await
}

/// Checks the bearer token, then runs the handler on the locked store.
#[allow(clippy::too_many_arguments)]
fn work(
    operation: Operation,
    handler: Handler,
    shared: &Shared,
    path: Result<Path<HashMap<String, String>>, PathRejection>,
    query: Option<String>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Some(username) = authenticated_user(shared, headers) else {
        return unauthorized();
    };
    let Ok(Path(params)) = path else {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "INVALID_PARAMETER",
            "a path parameter could not be read",
            ("path", "parameter"),
        )
        .into_response();
    };
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            let status = rejection.status();
            let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
                format!(
                    "the body is larger than the {} KiB limit",
                    body_limit(operation) / 1024
                )
            } else {
                "the body could not be read".to_owned()
            };
            return ApiError::new(status, "INVALID_BODY", message, ("body", "body"))
                .into_response();
        }
    };
    let now = Instant::now();
    let mut demand = shared.demand();
    demand.settle(&username, now);
    let mut call = Call {
        demand: &mut demand,
        base_url: format!("{}/sample/v1", origin::base_url(headers, shared.addr)),
        username,
        params,
        query: listing::query_pairs(query.as_deref()),
        body,
        now,
    };
    handler(&mut call).unwrap_or_else(ApiError::into_response)
}

/// The user a live bearer token was issued to.
pub(crate) fn authenticated_user(shared: &Shared, headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return None;
    }
    shared.tokens().user_of(token).map(str::to_owned)
}

/// The gateway's answer to a missing, unknown, expired or revoked token.
pub(crate) fn unauthorized() -> Response {
    let mut response = reply::gateway(StatusCode::UNAUTHORIZED);
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// Every `/sample/v1` answer carries one, faults included, as behind the
/// gateway.
pub(crate) fn with_request_id(shared: &Shared, mut response: Response) -> Response {
    if let Ok(id) = HeaderValue::try_from(shared.ids.request_id()) {
        response.headers_mut().insert("x-request-id", id);
    }
    response
}
