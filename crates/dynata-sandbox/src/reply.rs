//! The bodies and media types the sandbox answers with, in one place so every
//! handler speaks the same dialect as Dynata's identity server and gateway.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;

/// Success bodies of the auth API.
pub(crate) const TOKEN_MEDIA_TYPE: &str = "application/vnd.token+json";
/// Error bodies of the auth API's identity server.
pub(crate) const AUTH_ERROR_MEDIA_TYPE: &str = "application/vnd.auth.error+json";
/// Everything else: `/sample/v1` bodies and the gateway's `{"message"}` errors.
pub(crate) const JSON_MEDIA_TYPE: &str = "application/json";
/// The invoice operations' success.
pub(crate) const PDF_MEDIA_TYPE: &str = "application/pdf";

pub(crate) fn json_body(
    status: StatusCode,
    media_type: &'static str,
    body: &impl Serialize,
) -> Response {
    // Serializing our own plain structs cannot fail; an empty body is the
    // least surprising fallback if it ever did.
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static(media_type))],
        bytes,
    )
        .into_response()
}

/// An identity-server error: `{"error", "errorDescription"}`.
pub(crate) fn auth_error(status: StatusCode, error: &str, description: &str) -> Response {
    json_body(
        status,
        AUTH_ERROR_MEDIA_TYPE,
        &json!({ "error": error, "errorDescription": description }),
    )
}

/// What Keycloak answers for a client id it does not know.
pub(crate) fn invalid_client() -> Response {
    auth_error(
        StatusCode::UNAUTHORIZED,
        "invalid_client",
        "Invalid client or Invalid client credentials",
    )
}

/// A gateway's error: `{"message"}` with the status's reason phrase.
pub(crate) fn gateway(status: StatusCode) -> Response {
    let message = status.canonical_reason().unwrap_or("Error");
    json_body(status, JSON_MEDIA_TYPE, &json!({ "message": message }))
}
