//! The auth operations on the wire: each one through the retry engine, and
//! whatever came back (a status, a gateway page, a reset, garbage) turned
//! into an [`Error`] by what it means, not by what its body looked like.

use std::future::Future;
use std::time::Instant;

use dynata_auth_api::types::AuthError;
use dynata_auth_api::{ResponseValue, Secret};

use crate::clock::{Clock, FastClock, Moment};
use crate::error::server_text;
use crate::response::{describe_json_error, looks_like_html, request_id, retry_after, summarize};
use crate::retry::{Failure, with_retries};
use crate::{Error, RetryPolicy};

/// Which auth operation: what a refusal means depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthOperation {
    Login,
    Refresh,
    Logout,
}

impl AuthOperation {
    fn name(self) -> &'static str {
        match self {
            AuthOperation::Login => "login",
            AuthOperation::Refresh => "refresh",
            AuthOperation::Logout => "logout",
        }
    }
}

/// What a generated operation returns.
type ApiResult<T> = Result<ResponseValue<T>, dynata_auth_api::Error<AuthError>>;

/// A value, and the moment just before the attempt that got it was sent:
/// token lifetimes count from there, so network delay only makes us early.
pub(crate) type Sent<T> = (T, Moment);

/// Sends `call` until it succeeds, fails for good, or the retry budget runs
/// out (or the next wait would not end before `until`). The failure comes
/// back whole, with the server's `Retry-After`.
/// `secrets` are what the request carries (a password, a token): an error
/// that would quote one of them, because a server echoed it, quotes nothing.
pub(crate) async fn send<T, F, Fut>(
    operation: AuthOperation,
    policy: &RetryPolicy,
    clock: &dyn Clock,
    fast_clock: &FastClock,
    until: Option<Instant>,
    secrets: &[&Secret],
    call: F,
) -> Result<Sent<T>, Failure<Sent<T>>>
where
    F: Fn() -> Fut,
    Fut: Future<Output = ApiResult<T>>,
{
    let sent = with_retries(operation.name(), policy, clock, until, true, || async {
        let sent_at = fast_clock.moment(clock);
        match call().await {
            Ok(response) => Ok((response.into_inner(), sent_at)),
            Err(error) => {
                let failure = classify(operation, error).await;
                Err(Failure {
                    error: failure.error.without_secrets(secrets),
                    ..failure
                })
            }
        }
    })
    .await;
    if sent.is_ok() {
        tracing::info!(
            operation = operation.name(),
            "{} succeeded",
            operation.name()
        );
    }
    sent
}

async fn classify<T>(
    operation: AuthOperation,
    error: dynata_auth_api::Error<AuthError>,
) -> Failure<T> {
    use dynata_auth_api::Error as E;
    match error {
        E::CommunicationError(e) | E::ResponseBodyError(e) => Failure::of(Error::transport(e)),
        // The documented refusals, 400 and 401 with Dynata's JSON error.
        E::ErrorResponse(response) => {
            let status = response.status().as_u16();
            let request_id = request_id(response.headers());
            let body = response.into_inner();
            let code = body.error.as_deref().and_then(server_text);
            let description = body
                .error_description
                .or(body.message)
                .as_deref()
                .and_then(server_text);
            let error = match operation {
                AuthOperation::Login | AuthOperation::Refresh => Error::CredentialsRejected {
                    status,
                    error: code,
                    description,
                    request_id,
                    refreshing: operation == AuthOperation::Refresh,
                },
                // Logging out sends no credentials: a refusal is about the
                // tokens, and there is nothing for the user to check.
                AuthOperation::Logout => Error::Api {
                    status,
                    summary: [code, description]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join(": "),
                    request_id,
                    retry_after: None,
                },
            };
            Failure::fatal(error)
        }
        // Any other status, and a documented one whose body is not Dynata's
        // JSON (a web firewall's page): classified by the status alone.
        E::UnexpectedResponse(response) => {
            let status = response.status().as_u16();
            let retry_after = retry_after(response.headers());
            let request_id = request_id(response.headers());
            // dynata-auth-api's hook already capped this body's size.
            let body = response.bytes().await.unwrap_or_default();
            // A success a logout does not have (a `200` with a body; its
            // success is `204`): not an error status. (For a login or a
            // refresh the status decides as before: whether a refresh token
            // was spent hangs on it.)
            let error = if operation == AuthOperation::Logout && (200..300).contains(&status) {
                Error::undecodable_answer(
                    status,
                    format!("status {status} is not an answer this operation has"),
                    request_id,
                )
            } else {
                Error::from_status(status, summarize(&body), request_id, retry_after)
            };
            Failure {
                retry_after,
                ..Failure::of(error)
            }
        }
        // A success status with a page instead of JSON: a proxy or captive
        // portal answered, and the next attempt may reach Dynata.
        E::InvalidResponsePayload(body, _) if looks_like_html(&body) => Failure::transient(
            Error::decode("an HTML page came back instead of JSON (a gateway or proxy answered)"),
        ),
        E::InvalidResponsePayload(_, e) => Failure::fatal(Error::decode(describe_json_error(&e))),
        E::Custom(message) => Failure::fatal(Error::decode(message)),
        E::InvalidRequest(message) => Failure::fatal(Error::config(message)),
        E::InvalidUpgrade(e) => Failure::fatal(Error::transport(e)),
    }
}
