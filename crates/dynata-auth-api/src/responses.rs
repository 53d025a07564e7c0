//! What both generated clients of this workspace (this one and
//! `dynata-sample-api`) do with a response before the generated code decodes
//! it, from their `ClientHooks`: read the body up to a limit, and hand back an
//! error status whose body is not the documented JSON error as
//! [`Error::UnexpectedResponse`], status and headers intact. (The generated
//! code would decode a web firewall's HTML `401` as the JSON error and report
//! a decoding failure that has lost its status.)

use progenitor_client::{Error, OperationInfo};
use serde::de::DeserializeOwned;

/// Marks a response whose body was cut at the limit.
#[derive(Clone, Copy, Debug)]
struct BodyTooLarge;

/// The whole body of an error response, kept beside it so that
/// [`check_response`] can look at it without consuming it.
#[derive(Clone, Debug)]
struct ErrorBody(bytes::Bytes);

/// Reads the body into memory, stopping after `limit` bytes, and hands back a
/// response with the same status and headers whose body is what was read.
/// For `ClientHooks::exec`.
pub async fn read_at_most(
    mut response: reqwest::Response,
    limit: usize,
) -> reqwest::Result<reqwest::Response> {
    let headers = std::mem::take(response.headers_mut());
    let mut body = Vec::new();
    let mut too_large = false;
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > limit {
            too_large = true;
            break;
        }
        body.extend_from_slice(&chunk);
    }
    let status = response.status();
    let mut rebuilt = rebuild(status, response.version(), headers, body.into());
    if too_large {
        rebuilt.extensions_mut().insert(BodyTooLarge);
    }
    Ok(rebuilt)
}

/// For `ClientHooks::post`: an error status whose body does not decode as
/// `Documented`, or is over the `limit`, is [`Error::UnexpectedResponse`]
/// (with what fit of the body); a success over the `limit` is
/// [`Error::Custom`], naming the operation and the `limit`.
///
/// An error status is read by its status whatever its size: a gateway's
/// `502` page is still a `502` (transient, and no sign that Dynata saw the
/// request), not an answer that could not be used.
// The error type is the one progenitor's `post` hook returns.
#[allow(clippy::result_large_err)]
pub fn check_response<Documented: DeserializeOwned, E>(
    result: &reqwest::Result<reqwest::Response>,
    info: &OperationInfo,
    limit: usize,
) -> Result<(), Error<E>> {
    let Ok(response) = result else {
        return Ok(());
    };
    let too_large = response.extensions().get::<BodyTooLarge>().is_some();
    match response.extensions().get::<ErrorBody>() {
        Some(ErrorBody(body))
            if too_large || serde_json::from_slice::<Documented>(body).is_err() =>
        {
            Err(Error::UnexpectedResponse(rebuild(
                response.status(),
                response.version(),
                response.headers().clone(),
                body.clone(),
            )))
        }
        _ if too_large => Err(Error::Custom(format!(
            "the response to `{}` (status {}) has a body over the {limit}-byte limit",
            info.operation_id,
            response.status()
        ))),
        _ => Ok(()),
    }
}

fn rebuild(
    status: reqwest::StatusCode,
    version: reqwest::Version,
    headers: reqwest::header::HeaderMap,
    body: bytes::Bytes,
) -> reqwest::Response {
    let mut rebuilt = http::Response::new(reqwest::Body::from(body.clone()));
    *rebuilt.status_mut() = status;
    *rebuilt.version_mut() = version;
    *rebuilt.headers_mut() = headers;
    if status.is_client_error() || status.is_server_error() {
        rebuilt.extensions_mut().insert(ErrorBody(body));
    }
    reqwest::Response::from(rebuilt)
}
