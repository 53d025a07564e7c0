//! The `/sample/v1` envelope: `{data, meta, status}` on success, and the
//! same envelope with `status.errors[]` filled in on failure.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use crate::reply;

/// A successful answer with `meta: {}`.
pub(crate) fn ok(data: Value) -> Response {
    with_meta(data, json!({}))
}

/// A successful answer with the given `meta` (paging, for lists).
pub(crate) fn with_meta(data: Value, meta: Value) -> Response {
    reply::json_body(
        StatusCode::OK,
        reply::JSON_MEDIA_TYPE,
        &json!({
            "data": data,
            "meta": meta,
            "status": {"message": "success", "errors": []},
        }),
    )
}

/// A `201 Created` answer, for the operations that create a record.
pub(crate) fn created(data: Value) -> Answer {
    let mut response = ok(data);
    *response.status_mut() = StatusCode::CREATED;
    Ok(response)
}

/// One reason a request failed: `{code, message, resource: {id, type}}`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Problem {
    pub(crate) code: &'static str,
    pub(crate) message: String,
    /// What the problem is about: `(id, type)`, such as
    /// `("lineItems[0].countryISOCode", "field")` or `("p-1", "project")`.
    pub(crate) resource: (String, &'static str),
}

/// A failed request: a status and at least one problem.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) problems: Vec<Problem>,
}

impl ApiError {
    pub(crate) fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
        resource: (impl Into<String>, &'static str),
    ) -> ApiError {
        ApiError {
            status,
            problems: vec![Problem {
                code,
                message: message.into(),
                resource: (resource.0.into(), resource.1),
            }],
        }
    }

    /// `404 NOT_FOUND`: the record does not exist, or belongs to another
    /// account (the two are not told apart, so ids do not leak).
    pub(crate) fn not_found(kind: &'static str, id: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("{kind} not found"),
            (id, kind),
        )
    }

    /// `409 INVALID_STATE`: the action is not allowed in the record's state.
    pub(crate) fn invalid_state(kind: &'static str, id: &str, message: String) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, "INVALID_STATE", message, (id, kind))
    }

    /// `400` naming each bad field.
    pub(crate) fn invalid_fields(problems: Vec<Problem>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            problems,
        }
    }

    pub(crate) fn into_response(self) -> Response {
        let errors: Vec<Value> = self
            .problems
            .into_iter()
            .map(|problem| {
                json!({
                    "code": problem.code,
                    "message": problem.message,
                    "resource": {"id": problem.resource.0, "type": problem.resource.1},
                })
            })
            .collect();
        reply::json_body(
            self.status,
            reply::JSON_MEDIA_TYPE,
            &json!({
                "data": null,
                "meta": {},
                "status": {"message": "fail", "errors": errors},
            }),
        )
    }
}

/// What a Demand API handler answers.
pub(crate) type Answer = Result<Response, ApiError>;
