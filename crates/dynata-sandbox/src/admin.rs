//! The admin API under `/__sandbox`: fault injection and counters over HTTP,
//! for tests written in any language. The SDK never calls it.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::fault::Fault;
use crate::operation::Operation;
use crate::reply;
use crate::state::Shared;

pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/__sandbox/faults", post(inject).delete(clear_faults))
        .route("/__sandbox/counts", get(counts))
        .route("/__sandbox/revoke", post(revoke_all))
}

/// `{"operation": "refresh", "fault": {"status": 503}, "times": 2}` queues a
/// fault for the next requests (once if `times` is left out);
/// `{"operation": "usersInfo", "fault": "resetConnection", "oneIn": 20}` sets
/// a steady rate instead (`"oneIn": 0` ends it).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct InjectRequest {
    operation: String,
    fault: FaultSpec,
    times: Option<u32>,
    one_in: Option<u32>,
}

/// A [`Fault`] as JSON: `{"status": 503}`, `{"rateLimited": {"retryAfterMs":
/// 2000}}`, `{"unavailable": {"retryAfterMs": 2000}}`, `"htmlBadGateway"`,
/// `{"delay": {"ms": 250}}`, `"resetConnection"`, `"malformedBody"`,
/// `"answerLost"` or `"invalidGrant"`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
enum FaultSpec {
    Status(u16),
    #[serde(rename_all = "camelCase")]
    RateLimited {
        retry_after_ms: u64,
    },
    #[serde(rename_all = "camelCase")]
    Unavailable {
        retry_after_ms: u64,
    },
    HtmlBadGateway,
    Delay {
        ms: u64,
    },
    ResetConnection,
    MalformedBody,
    AnswerLost,
    InvalidGrant,
}

impl FaultSpec {
    fn into_fault(self) -> Fault {
        match self {
            FaultSpec::Status(code) => Fault::Status(code),
            FaultSpec::RateLimited { retry_after_ms } => Fault::RateLimited {
                retry_after: Duration::from_millis(retry_after_ms),
            },
            FaultSpec::Unavailable { retry_after_ms } => Fault::Unavailable {
                retry_after: Duration::from_millis(retry_after_ms),
            },
            FaultSpec::HtmlBadGateway => Fault::HtmlBadGateway,
            FaultSpec::Delay { ms } => Fault::Delay(Duration::from_millis(ms)),
            FaultSpec::ResetConnection => Fault::ResetConnection,
            FaultSpec::MalformedBody => Fault::MalformedBody,
            FaultSpec::AnswerLost => Fault::AnswerLost,
            FaultSpec::InvalidGrant => Fault::InvalidGrant,
        }
    }
}

async fn inject(
    State(shared): State<Arc<Shared>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Ok(body) = body else {
        return admin_error("Could not read the request body (the limit is 64 KiB)");
    };
    let request: InjectRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(err) => return admin_error(&format!("Invalid fault request: {err}")),
    };
    let Some(operation) = Operation::from_name(&request.operation) else {
        let names: Vec<&str> = Operation::ALL.iter().map(|op| op.name()).collect();
        return admin_error(&format!(
            "Unknown operation {:?}; expected one of {}",
            request.operation,
            names.join(", ")
        ));
    };
    if let FaultSpec::Status(code) = request.fault
        && !(200..=599).contains(&code)
    {
        return admin_error("A fault's status must be in 200..=599");
    }
    let fault = request.fault.into_fault();
    let mut faults = shared.faults();
    match (request.times, request.one_in) {
        (Some(_), Some(_)) => return admin_error("Give either times or oneIn, not both"),
        (times, None) => faults.push(operation, fault, times.unwrap_or(1)),
        (None, Some(one_in)) => faults.set_steady(operation, one_in, vec![fault]),
    }
    let pending = faults.pending(operation);
    drop(faults);
    let mut answer = json!({ "operation": operation.name(), "pending": pending });
    if let Some(one_in) = request.one_in {
        answer["oneIn"] = Value::from(one_in);
    }
    reply::json_body(StatusCode::OK, reply::JSON_MEDIA_TYPE, &answer)
}

async fn clear_faults(State(shared): State<Arc<Shared>>) -> Response {
    shared.faults().clear();
    StatusCode::NO_CONTENT.into_response()
}

async fn counts(State(shared): State<Arc<Shared>>) -> Response {
    let counts: Map<String, Value> = Operation::ALL
        .into_iter()
        .map(|op| (op.name().to_owned(), Value::from(shared.count(op))))
        .collect();
    reply::json_body(StatusCode::OK, reply::JSON_MEDIA_TYPE, &counts)
}

async fn revoke_all(State(shared): State<Arc<Shared>>) -> Response {
    shared.tokens().revoke_all();
    StatusCode::NO_CONTENT.into_response()
}

fn admin_error(description: &str) -> Response {
    reply::json_body(
        StatusCode::BAD_REQUEST,
        reply::JSON_MEDIA_TYPE,
        &json!({ "error": "invalid_request", "errorDescription": description }),
    )
}
