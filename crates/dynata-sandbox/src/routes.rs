//! The emulated auth API (the four operations of `/auth/v1`), each counted
//! and open to injected faults before it does its real work, with the
//! Demand API and the admin API merged in.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Extension, State};
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::admin;
use crate::demand;
use crate::fault::{Action, AfterWork};
use crate::operation::Operation;
use crate::reply;
use crate::server::ConnHandle;
use crate::state::Shared;
use crate::tokens::TokenPair;

/// The only client id API accounts use.
const CLIENT_ID: &str = "api";
/// The authorization code `POST /auth/v1/token/code` accepts.
pub(crate) const SANDBOX_CODE: &str = "sandbox-code";
/// Far above any real JSON request body, far below anything that could hurt.
const BODY_LIMIT: usize = 64 * 1024;
/// For the one upload, the reconciliation's `.xlsx` (multipart): a
/// spreadsheet of a few thousand respondent ids, styles and all, as Dynata
/// takes it.
const UPLOAD_LIMIT: usize = 10 * 1024 * 1024;

/// The largest request body `operation` takes: [`UPLOAD_LIMIT`] for the
/// reconciliation's upload, [`BODY_LIMIT`] for every JSON body.
pub(crate) fn body_limit(operation: Operation) -> usize {
    match operation {
        Operation::ReconcileProject => UPLOAD_LIMIT,
        _ => BODY_LIMIT,
    }
}

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/auth/v1/token/password", post(login))
        .route("/auth/v1/token/refresh", post(refresh))
        .route("/auth/v1/logout", post(logout))
        .route("/auth/v1/token/code", post(exchange_code))
        .merge(demand::router())
        .merge(admin::router())
        .fallback(|State(shared): State<Arc<Shared>>, uri: Uri| async move {
            unrouted(StatusCode::NOT_FOUND, &shared, &uri)
        })
        .method_not_allowed_fallback(|State(shared): State<Arc<Shared>>, uri: Uri| async move {
            unrouted(StatusCode::METHOD_NOT_ALLOWED, &shared, &uri)
        })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(shared)
}

/// A path or method no route has: the gateway's answer, with the request
/// id every `/sample/v1` answer carries.
fn unrouted(status: StatusCode, shared: &Shared, uri: &Uri) -> Response {
    let answer = reply::gateway(status);
    if uri.path().starts_with("/sample/v1/") || uri.path() == "/sample/v1" {
        demand::with_request_id(shared, answer)
    } else {
        answer
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PasswordLogin {
    client_id: String,
    username: String,
    password: String,
    // Accepted and ignored, as API accounts have none; typed so that a wrong
    // type is still a 400.
    #[serde(default, rename = "clientSecret")]
    _client_secret: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RefreshRequest {
    client_id: String,
    refresh_token: String,
    #[serde(default, rename = "clientSecret")]
    _client_secret: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogoutRequest {
    client_id: String,
    refresh_token: String,
    access_token: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CodeExchange {
    client_id: String,
    code: String,
    // Required, as by Dynata, but any URI will do.
    #[serde(rename = "redirectURI")]
    _redirect_uri: String,
    #[serde(default, rename = "clientSecret")]
    _client_secret: Option<String>,
}

async fn login(
    State(shared): State<Arc<Shared>>,
    Extension(conn): Extension<ConnHandle>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    serve_auth(
        &shared,
        Operation::Login,
        &conn,
        body,
        |request: PasswordLogin| {
            if shared.password_of(&request.username) != Some(request.password.as_str()) {
                return reply::auth_error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_grant",
                    "Invalid user credentials",
                );
            }
            token_pair(&shared.tokens().login(&request.username))
        },
    )
    .await
}

async fn refresh(
    State(shared): State<Arc<Shared>>,
    Extension(conn): Extension<ConnHandle>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    serve_auth(
        &shared,
        Operation::Refresh,
        &conn,
        body,
        |request: RefreshRequest| match shared.tokens().refresh(&request.refresh_token) {
            Ok(pair) => token_pair(&pair),
            Err(refused) => reply::auth_error(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                refused.description(),
            ),
        },
    )
    .await
}

async fn logout(
    State(shared): State<Arc<Shared>>,
    Extension(conn): Extension<ConnHandle>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    serve_auth(
        &shared,
        Operation::Logout,
        &conn,
        body,
        |request: LogoutRequest| {
            shared
                .tokens()
                .logout(&request.access_token, &request.refresh_token);
            StatusCode::NO_CONTENT.into_response()
        },
    )
    .await
}

async fn exchange_code(
    State(shared): State<Arc<Shared>>,
    Extension(conn): Extension<ConnHandle>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    serve_auth(
        &shared,
        Operation::ExchangeCode,
        &conn,
        body,
        |request: CodeExchange| {
            let user = shared.users.first().map(|(name, _)| name.as_str());
            match user {
                Some(user) if request.code == SANDBOX_CODE => {
                    token_pair(&shared.tokens().login(user))
                }
                _ => reply::auth_error(StatusCode::BAD_REQUEST, "invalid_grant", "Code not valid"),
            }
        },
    )
    .await
}

/// The body of an auth operation: every one names the client it is for.
trait AuthRequest: DeserializeOwned {
    fn client_id(&self) -> &str;
}

macro_rules! auth_request {
    ($($request:ty),*) => {$(
        impl AuthRequest for $request {
            fn client_id(&self) -> &str {
                &self.client_id
            }
        }
    )*};
}
auth_request!(PasswordLogin, RefreshRequest, LogoutRequest, CodeExchange);

/// Every auth operation: count the request and play any injected fault,
/// read the JSON body, check the client id, then do the `work`; the fault
/// may yet act on its answer (see [`after_work`]).
async fn serve_auth<T: AuthRequest>(
    shared: &Shared,
    operation: Operation,
    conn: &ConnHandle,
    body: Result<Bytes, BytesRejection>,
    work: impl FnOnce(T) -> Response,
) -> Response {
    let after = match intercept(shared, operation, conn).await {
        Ok(after) => after,
        Err(response) => return response,
    };
    // A refusal is the request's answer too: `AnswerLost` loses it, as
    // on the Demand API.
    let answer = match parse::<T>(body) {
        Ok(request) if request.client_id() == CLIENT_ID => work(request),
        Ok(_) => reply::invalid_client(),
        Err(refused) => refused.into_response(),
    };
    after_work(after, answer, conn).await
}

/// Counts the request, then plays the fault at the head of the operation's
/// queue. `Err` is the response to send instead of doing the work; `Ok`
/// says what to do to the work's answer, if anything (see [`after_work`]).
pub(crate) async fn intercept(
    shared: &Shared,
    operation: Operation,
    conn: &ConnHandle,
) -> Result<Option<AfterWork>, Response> {
    shared.bump(operation);
    let Some(fault) = shared.faults().pop(operation) else {
        return Ok(None);
    };
    match fault.action(operation) {
        Action::Respond(response) => Err(response),
        Action::Delay(duration) => {
            tokio::time::sleep(duration).await;
            Ok(None)
        }
        Action::Reset => reset(conn).await,
        Action::AfterWork(after) => Ok(Some(after)),
    }
}

/// The work's `answer`, as the fault [`intercept`] played leaves it.
pub(crate) async fn after_work(
    after: Option<AfterWork>,
    answer: Response,
    conn: &ConnHandle,
) -> Response {
    match after {
        None => answer,
        Some(AfterWork::CutShort) => cut_short(answer).await,
        Some(AfterWork::Reset) => reset(conn).await,
    }
}

/// Resets the connection: no answer ever.
async fn reset<T>(conn: &ConnHandle) -> T {
    conn.reset();
    // The connection task drops this future when it resets the socket.
    std::future::pending().await
}

/// `answer` cut off halfway, with its status and headers, as when a proxy
/// drops the end of Dynata's answer. Half of a JSON envelope is never
/// valid JSON, and half of a PDF lacks its `%%EOF`.
async fn cut_short(answer: Response) -> Response {
    let (mut parts, body) = answer.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(bytes.slice(..bytes.len() / 2)))
}

/// Reads a JSON request body; anything else is the identity server's 400
/// (or 413 for a body over the limit), never a panic.
fn parse<T: DeserializeOwned>(body: Result<Bytes, BytesRejection>) -> Result<T, BadRequest> {
    let bytes = body.map_err(|rejection| {
        let status = rejection.status();
        let description = if status == StatusCode::PAYLOAD_TOO_LARGE {
            format!("Request body is larger than {} KiB", BODY_LIMIT / 1024)
        } else {
            "Could not read the request body".to_owned()
        };
        BadRequest {
            status,
            description,
        }
    })?;
    serde_json::from_slice(&bytes).map_err(|err| BadRequest {
        status: StatusCode::BAD_REQUEST,
        description: format!("Invalid request body: {err}"),
    })
}

/// A request body `parse` refused; small, unlike the `Response` it becomes.
struct BadRequest {
    status: StatusCode,
    description: String,
}

impl IntoResponse for BadRequest {
    fn into_response(self) -> Response {
        reply::auth_error(self.status, "invalid_request", &self.description)
    }
}

fn token_pair(pair: &TokenPair) -> Response {
    reply::json_body(StatusCode::OK, reply::TOKEN_MEDIA_TYPE, pair)
}
