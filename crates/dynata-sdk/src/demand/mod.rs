//! Typed calls to Dynata's Demand API (`/sample/v1`) through the generated
//! client, `dynata-sample-api`, on the client's token, pool, retry engine and
//! error type.
//!
//! Each attempt of a call builds a generated client for the token it is
//! given (cheap: it shares the `reqwest::Client`) and hands it to the
//! caller's closure by value, so the closure's future owns it and can be
//! `Send + 'static`. The `pre` hook of the generated client notes the HTTP
//! method it sent ([`SentMethod`]): only idempotent methods are retried.

mod feasibility;
mod invoice;
mod paging;
mod reconcile;

use std::future::Future;
use std::time::Instant;

use dynata_sample_api::{Bearer, Envelope, ResponseValue, SentMethod, types};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;

use crate::authenticated::{is_idempotent, noting_redirects};
use crate::error::server_text;
use crate::response::{describe_json_error, request_id, retry_after, summarize};
use crate::retry::{Failure, TokenRefused};
use crate::sample::{describe_resource, gateway_error, refusal_in};
use crate::{AccessToken, ApiErrorDetail, Client, Error};

pub use feasibility::{FEASIBILITY_FIRST_WAIT, FEASIBILITY_MAX_WAIT};
pub use paging::{PageRequest, SampleItems};

/// What a generated operation's `send()` returns: the closures given to
/// [`Client::sample`] and its siblings return a future of this.
pub type SampleResult<T> = Result<ResponseValue<T>, dynata_sample_api::Error<types::ApiError>>;

impl Client {
    /// Calls one operation of the Demand API and returns the envelope's
    /// `data`.
    ///
    /// `call` receives a [`dynata_sample_api::Client`] that sends the current
    /// access token, and sends one operation with it:
    ///
    /// ```no_run
    /// # async fn example(client: dynata_sdk::Client) -> Result<(), dynata_sdk::Error> {
    /// let project = client
    ///     .sample(|api| async move { api.get_project().ext_project_id("p-1").send().await })
    ///     .await?;
    /// println!("{:?}", project.state);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// `call` may run more than once, so build the operation inside it. It
    /// should send one operation: one that sends several is sent again
    /// whole, so it is retried and replayed only if every request it sent
    /// was idempotent (a `POST` that succeeded beside a `GET` that failed is
    /// not sent twice, whichever ran first).
    ///
    /// - On a `401` the token is invalidated and the call sent once more
    ///   with a new one, as [`Client::send`] does.
    /// - Operations sent with an idempotent method (`GET`, `PUT`, `DELETE`)
    ///   are retried after transient failures (connection errors, timeouts,
    ///   `408`, `429`, `5xx`) under the client's [`crate::RetryPolicy`].
    ///   `POST`s (create, buy, launch, close, accept, …) never are: they may
    ///   have had their effect.
    /// - A `4xx` or `5xx` with Dynata's envelope, and a `2xx` whose
    ///   `status.message` is `"fail"` (its `data` `null` or a record), are
    ///   [`Error::Rejected`] with its `errors[]`, unless the status says
    ///   more (`429` is [`Error::RateLimited`], `408` and `504`
    ///   [`Error::Timeout`]); any other body (a gateway's page) is an error by its
    ///   status ([`Error::Api`], [`Error::RateLimited`], [`Error::Timeout`]).
    ///   Each keeps the `x-request-id` header.
    pub async fn sample<E, F, Fut>(&self, call: F) -> Result<E::Data, Error>
    where
        E: Envelope,
        F: Fn(dynata_sample_api::Client) -> Fut,
        Fut: Future<Output = SampleResult<E>>,
    {
        Ok(self.sample_envelope(call).await?.into_data())
    }

    /// As [`Client::sample`], but returns the whole envelope, with its
    /// `meta` (paging) and `status`.
    pub async fn sample_envelope<E, F, Fut>(&self, call: F) -> Result<E, Error>
    where
        E: Envelope,
        F: Fn(dynata_sample_api::Client) -> Fut,
        Fut: Future<Output = SampleResult<E>>,
    {
        self.envelope_before(None, call).await
    }

    /// [`Client::sample_envelope`], retrying a transient failure only with
    /// a wait that ends before `until`: the failure is returned instead.
    pub(crate) async fn envelope_before<E, F, Fut>(
        &self,
        until: Option<Instant>,
        call: F,
    ) -> Result<E, Error>
    where
        E: Envelope,
        F: Fn(dynata_sample_api::Client) -> Fut,
        Fut: Future<Output = SampleResult<E>>,
    {
        let (response, token) = self.call_sample(until, call).await?;
        let status = response.status();
        let request_id = request_id(response.headers());
        let envelope = response.into_inner();
        rejected_if_failed(&envelope, status, request_id)
            .map_err(|error| error.without_secrets(&[token.secret_value()]))?;
        Ok(envelope)
    }

    /// A generated client for `/sample/v1` that sends `token`.
    fn sample_api(&self, bearer: Bearer) -> dynata_sample_api::Client {
        dynata_sample_api::Client::new_with_client(
            &format!("{}/sample/v1", self.base_url()),
            self.http.clone(),
            bearer,
        )
    }

    /// One generated operation through the `401` step and the retry engine,
    /// and the token it was sent with: an error read from its answer
    /// afterwards must quote nothing of it (see [`Error::without_secrets`]).
    pub(crate) async fn call_sample<T, F, Fut>(
        &self,
        until: Option<Instant>,
        call: F,
    ) -> Result<(ResponseValue<T>, AccessToken), Error>
    where
        F: Fn(dynata_sample_api::Client) -> Fut,
        Fut: Future<Output = SampleResult<T>>,
    {
        self.call_authenticated(true, true, until, |token| {
            let sent = SentMethod::new();
            let api = self.sample_api(Bearer::new(token.secret()).recording(sent.clone()));
            let outcome = call(api);
            async move {
                let (outcome, followed) = noting_redirects(outcome).await;
                // Every request `call` sent is sent again with it: only if
                // each was idempotent may it be retried. Unknown (nothing
                // was sent) counts as not idempotent.
                let methods = sent.methods();
                let idempotent = !methods.is_empty() && methods.iter().all(is_idempotent);
                let last_idempotent = methods.last().is_some_and(is_idempotent);
                // The request refused may not be the last sent (requests run
                // at once): replay only what sent one request, or idempotent
                // ones alone.
                let replayable = methods.len() <= 1 || idempotent;
                match outcome {
                    Ok(response) => Ok((response, token)),
                    Err(error) => {
                        let mut failure = failure_of(error, idempotent, &sent).await;
                        if failure.error.status() == Some(401) {
                            let redirected_to = if followed {
                                sent.answered_from()
                            } else {
                                sent.redirected_to()
                            };
                            failure.unauthorized = TokenRefused::read(
                                &self.origin,
                                last_idempotent,
                                redirected_to.as_ref(),
                            );
                            // Another request of `call` may have had its
                            // effect: renew the token, send nothing again.
                            if !replayable && failure.unauthorized == TokenRefused::BeforeActing {
                                failure.unauthorized = TokenRefused::AfterRedirect;
                            }
                        }
                        Err(failure)
                    }
                }
            }
        })
        .await
    }
}

/// [`Error::Rejected`] if a `2xx` envelope says `status.message: "fail"`.
fn rejected_if_failed<E: Envelope>(
    envelope: &E,
    status: StatusCode,
    request_id: Option<String>,
) -> Result<(), Error> {
    let Some(envelope_status) = envelope.status() else {
        return Ok(());
    };
    let failed = envelope_status
        .message
        .as_deref()
        .is_some_and(crate::sample::is_failure_message);
    if !failed {
        return Ok(());
    }
    Err(Error::refused(
        status.as_u16(),
        details(envelope_status),
        request_id,
        None,
    ))
}

/// Dynata's `errors[]`, each text kept only if [`server_text`] allows it.
pub(crate) fn details(status: &types::ResponseStatus) -> Vec<ApiErrorDetail> {
    status
        .errors
        .iter()
        .flatten()
        .map(|error| ApiErrorDetail {
            code: server_text(&error.code),
            message: server_text(&error.message),
            resource: error.resource.as_ref().and_then(|resource| {
                describe_resource(resource.type_.as_deref(), resource.id.as_deref())
            }),
        })
        .collect()
}

/// A failed generated operation, as the retry engine needs to see it. Only
/// an `idempotent` operation may be retried. What a `401` says about the
/// token is read by the caller, which knows where the answer came from;
/// `sent` has the answer's status and headers where the generated error
/// keeps neither (a body it could not decode).
async fn failure_of<T>(
    error: dynata_sample_api::Error<types::ApiError>,
    idempotent: bool,
    sent: &SentMethod,
) -> Failure<T> {
    use dynata_sample_api::Error as Generated;
    let (error, retry_after) = match error {
        Generated::ErrorResponse(response) => {
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let body = response.into_inner();
            (api_error(status, &headers, &body), retry_after(&headers))
        }
        Generated::UnexpectedResponse(response) => {
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let request_id = request_id(&headers);
            let retry_after = retry_after(&headers);
            // The generated client's hook has read the body into memory.
            let body = response.bytes().await.unwrap_or_default();
            let error = if (200..300).contains(&status) {
                Error::undecodable_answer(
                    status,
                    format!("status {status} is not an answer this operation has"),
                    request_id,
                )
            } else if let Some(errors) = refusal_in(&body, true) {
                // Dynata's envelope, with what the generated `ApiError` is
                // too strict for (a numeric code, no message).
                Error::refused(status, errors, request_id, retry_after)
            } else {
                Error::from_status(status, summarize(&body), request_id, retry_after)
            };
            (error, retry_after)
        }
        Generated::CommunicationError(error) if error.is_builder() => {
            (Error::invalid_request(without_url(&error)), None)
        }
        Generated::CommunicationError(error) | Generated::ResponseBodyError(error) => {
            (Error::transport(error), None)
        }
        Generated::InvalidResponsePayload(body, error) => undecodable(&body, &error, sent),
        Generated::InvalidRequest(message) => (Error::invalid_request(message), None),
        // The hooks' own errors (a body over the size limit) and upgrades,
        // which no operation of this API uses.
        // A 2xx's status is kept, as for any answer that could not be read.
        Generated::Custom(message) => {
            let (status, headers) = sent.answer().unzip();
            let headers = headers.unwrap_or_default();
            let error = Error::Decode {
                what: message,
                status: status.map(|status| status.as_u16()),
                request_id: request_id(&headers),
            };
            (error, None)
        }
        Generated::InvalidUpgrade(error) => (Error::decode(without_url(&error)), None),
    };
    let transient = idempotent && error.is_transient();
    Failure {
        transient,
        retry_after,
        ..Failure::fatal(error)
    }
}

/// The error for an answer the generated code could not decode as its type.
/// A refusal in Dynata's envelope is one (it carries `data: null`, or no
/// `data`, where the type expects a record): it is the refusal, with
/// Dynata's errors. Anything else is [`Error::Decode`]; both keep the
/// answer's `x-request-id`.
fn undecodable(
    body: &[u8],
    error: &serde_json::Error,
    sent: &SentMethod,
) -> (Error, Option<std::time::Duration>) {
    let (status, headers) = sent.answer().unzip();
    let headers = headers.unwrap_or_default();
    let request_id = request_id(&headers);
    match refusal_in(body, false) {
        Some(errors) => {
            let retry_after = retry_after(&headers);
            let status = status.unwrap_or_default().as_u16();
            let error = Error::refused(status, errors, request_id, retry_after);
            (error, retry_after)
        }
        None => (
            Error::Decode {
                what: format!(
                    "the answer does not have the expected shape: {}",
                    describe_json_error(error)
                ),
                // A proxy's or captive portal's page is not Dynata's
                // answer: its status says nothing of the request's fate.
                status: status
                    .map(|status| status.as_u16())
                    .filter(|_| !crate::response::looks_like_html(body)),
                request_id,
            },
            None,
        ),
    }
}

/// The error for a `4xx`/`5xx` whose body decoded as `ApiError`: Dynata's
/// envelope is [`Error::Rejected`]; a gateway's `{"message": …}` is an
/// error by its status.
fn api_error(status: u16, headers: &HeaderMap, body: &types::ApiError) -> Error {
    let request_id = request_id(headers);
    match &body.status {
        Some(envelope_status) => Error::refused(
            status,
            details(envelope_status),
            request_id,
            retry_after(headers),
        ),
        None => gateway_error(
            status,
            body.message.as_deref(),
            request_id,
            retry_after(headers),
        ),
    }
}

/// reqwest's message without the URL it names (a query string may hold
/// what a caller would not log).
fn without_url(error: &reqwest::Error) -> String {
    let mut message = String::new();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    if message.is_empty() {
        message = "the request could not be built".into();
    }
    message
}
