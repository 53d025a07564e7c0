//! Authenticated calls: the bearer token, attached only for the environment's
//! origin and marked sensitive; the one `401` step (renew once, send once
//! more); and the retry engine around both. [`Client::send`], the middleware
//! and the typed calls all go through [`Client::call_authenticated`].

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use reqwest::header::{ACCEPT, AUTHORIZATION, HOST, HeaderValue};
use reqwest::{Method, Request, RequestBuilder, Response, StatusCode};

use crate::error::is_transient_status;
use crate::response::{read_at_most, request_id, retry_after, summarize};
use crate::retry::{Failure, TokenRefused, with_retries};
use crate::token::bearer_header;
use crate::{AccessToken, Client, Error};

impl Client {
    /// A request to `path`, relative to the environment's base URL (for
    /// example `"/sample/v1/projects"`), or an absolute URL such as a
    /// `links.next` Dynata sent, with `Accept: application/json`. Send it
    /// with [`Client::send`], which adds the token, and refuses a URL of any
    /// other origin.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let url = match reqwest::Url::parse(path) {
            Ok(absolute) if absolute.has_host() => absolute.into(),
            _ => format!("{}/{}", self.base_url(), path.trim_start_matches('/')),
        };
        self.http
            .request(method, url)
            .header(ACCEPT, "application/json")
    }

    /// Sends `request` with `Authorization: Bearer <token>` (marked
    /// sensitive, so it never shows in logs).
    ///
    /// - The token goes only to the environment's origin (scheme, host and
    ///   port): a request for any other URL, such as an absolute URL from an
    ///   event's `actions`, is refused with [`Error::InvalidRequest`] before anything
    ///   is sent, and so is one whose `Host` header names another site.
    ///   reqwest drops the header on redirects to another host.
    /// - On a `401` the token is invalidated (see [`Client::invalidate`]) and
    ///   the request is sent once more with a new token. A second `401`, or a
    ///   `401` for a request whose body cannot be replayed (a stream), is
    ///   [`Error::Api`] with status 401. A `401` from another host (a
    ///   redirect your own HTTP client followed) leaves the token alone, and
    ///   one that ends the redirects of a `POST` (which may have taken
    ///   effect) invalidates the token but sends nothing again. (With your
    ///   own HTTP client, only a redirect to another URL is seen.)
    /// - Idempotent requests (`GET`, `HEAD`, `PUT`, `DELETE`, `OPTIONS`) with
    ///   a replayable body are retried after transient failures (connection
    ///   errors, timeouts, `408`, `429`, `5xx`) under the client's
    ///   [`crate::RetryPolicy`], honouring `Retry-After`. A `POST` is never
    ///   retried: it may have had its effect.
    ///
    /// Any other status is returned as it came, for the caller to read; so is
    /// a transient one when no retry is left. A header of the answer that
    /// quotes the access token the request was sent with (a gateway echoing
    /// it) is removed.
    pub async fn send(&self, request: RequestBuilder) -> Result<Response, Error> {
        self.send_then(request, |answered| async { answered }).await
    }

    /// [`Client::send`], with `read` turning each attempt's classified
    /// answer into the call's result inside the retry engine, so that a
    /// body cut short is retried like the request it belongs to. The
    /// answer `read` is given has no header that quotes the token the
    /// attempt was sent with (see [`remove_echoed_token`]).
    pub(crate) async fn send_then<R, F, Fut>(
        &self,
        request: RequestBuilder,
        read: F,
    ) -> Result<R, Error>
    where
        F: Fn(Result<Response, Failure<Response>>) -> Fut,
        Fut: Future<Output = Result<R, Failure<R>>>,
    {
        let request = request
            .build()
            .map_err(|e| Error::invalid_request(e.to_string()))?;
        self.check_origin(&request)?;
        let idempotent = is_idempotent(request.method());
        let requests = Replays::new(request);
        let replayable = requests.replayable();
        self.call_authenticated(idempotent && replayable, replayable, None, |token| {
            let request = requests.next();
            let read = &read;
            async move {
                let mut request = request?;
                self.attach_bearer(&mut request, &token)
                    .map_err(Failure::fatal)?;
                let to = SentTo::of(&request);
                let (sent, followed) = noting_redirects(self.http.execute(request)).await;
                let sent = sent.map_err(Error::transport);
                let mut answered = self
                    .classify(sent, &to, followed, Unauthorized::IsAnError)
                    .await;
                remove_echoed_token_from(&mut answered, &token);
                read(answered).await
            }
        })
        .await
    }

    /// Adds `Authorization: Bearer <token>` (sensitive) to `request`, logging
    /// in or refreshing first if needed, and returns the token used. Refuses
    /// a request for another origin than the environment's. This is the hook
    /// for clients of other Dynata specs; prefer [`Client::send`], which also
    /// renews the token after a `401`.
    pub async fn authorize(&self, request: &mut Request) -> Result<AccessToken, Error> {
        self.check_origin(request)?;
        let token = self.access_token().await?;
        self.attach_bearer(request, &token)?;
        Ok(token)
    }

    /// The `401` step inside the retry engine, for one authenticated call.
    ///
    /// `attempt` sends the call with the token it is given. A failure marked
    /// `unauthorized` invalidates that token and, if `may_replay` and a new
    /// token comes of it, the call is sent once more (once per call, however
    /// many retries). Transient failures are retried only if `may_retry`,
    /// and never with a wait that would not end before `until`.
    pub(crate) async fn call_authenticated<T, F, Fut>(
        &self,
        may_retry: bool,
        may_replay: bool,
        until: Option<Instant>,
        attempt: F,
    ) -> Result<T, Error>
    where
        F: Fn(AccessToken) -> Fut,
        Fut: Future<Output = Result<T, Failure<T>>>,
    {
        let replayed = AtomicBool::new(false);
        let policy = self.retry_policy();
        with_retries(
            "request",
            policy,
            self.clock(),
            until,
            may_retry,
            || async {
                let token = self
                    .access_token()
                    .await
                    .map_err(|error| Failure::fatal(error.before_sending()))?;
                match without_token(attempt(token.clone()).await, &token) {
                    Err(failure) if failure.unauthorized != TokenRefused::No => {
                        if !self.invalidate(&token) {
                            self.adopt_after_refusal(&token).await;
                        }
                        if !may_replay
                            || failure.unauthorized == TokenRefused::AfterRedirect
                            || replayed.swap(true, Ordering::Relaxed)
                        {
                            return Err(failure);
                        }
                        // The call was refused (a `401`): not carried out,
                        // so a renewal's failure means it was not sent.
                        let renewed = self
                            .access_token()
                            .await
                            .map_err(|error| Failure::fatal(error.before_sending()))?;
                        if renewed.same_as(&token) {
                            // Not renewed (a 401 renewed it moments ago): sending
                            // the same token again would be refused again.
                            return Err(failure);
                        }
                        tracing::info!("401 from Dynata; sending once more with a new token");
                        let replay = without_token(attempt(renewed.clone()).await, &renewed);
                        // Refused too (a session adopted from the token
                        // store that Dynata revoked with the first): not
                        // sent again for this call; the next call takes
                        // another session the store holds, if any. (Not
                        // dropped: in a fleet, each process would renew it
                        // at Dynata. Not looked up now: the renewal has
                        // just read the store.)
                        if let Err(failure) = &replay
                            && failure.unauthorized != TokenRefused::No
                        {
                            self.invalidate(&renewed);
                        }
                        replay
                    }
                    outcome => outcome,
                }
            },
        )
        .await
        .or_else(Failure::into_result)
    }

    /// Refuses a request for any origin but the environment's: the token
    /// belongs to it alone.
    pub(crate) fn check_origin(&self, request: &Request) -> Result<(), Error> {
        let origin = request.url().origin();
        if origin != *self.origin {
            return Err(Error::invalid_request(format!(
                "refusing to send the access token to {}: it goes only to {}",
                origin.ascii_serialization(),
                self.origin.ascii_serialization()
            )));
        }
        // The HTTP client sends a `Host` header the caller set as it is, and
        // a gateway that routes by it would hand the token to that site.
        // Every one: `RequestBuilder::header` appends, and all are sent.
        if request
            .headers()
            .get_all(HOST)
            .iter()
            .any(|host| !names_host_of(host, request.url()))
        {
            return Err(Error::invalid_request(format!(
                "refusing to send the access token with a Host header naming another site than {}",
                self.origin.ascii_serialization()
            )));
        }
        Ok(())
    }

    /// Adds the token to a request whose origin [`Client::check_origin`]
    /// has accepted: every caller checks once, before any login.
    pub(crate) fn attach_bearer(
        &self,
        request: &mut Request,
        token: &AccessToken,
    ) -> Result<(), Error> {
        let value = bearer_header(token.secret()).ok_or_else(|| {
            Error::decode("the access token has characters a header cannot carry")
        })?;
        request.headers_mut().insert(AUTHORIZATION, value);
        Ok(())
    }
}

/// An attempt's outcome, its error quoting nothing of the `token` it sent:
/// a gateway may echo the token back (in `x-request-id`, in a message), and
/// one that is not a JWT (the sandbox's, a UUID) looks like any id.
fn without_token<T>(outcome: Result<T, Failure<T>>, token: &AccessToken) -> Result<T, Failure<T>> {
    outcome.map_err(|failure| Failure {
        error: failure.error.without_secrets(&[token.secret_value()]),
        ..failure
    })
}

/// Removes from an attempt's classified answer the headers that quote the
/// `token` it was sent with (see [`remove_echoed_token`]): from every
/// answer, a transient one too, which [`Client::send`] and the middleware
/// hand on as the response when no retry is left.
pub(crate) fn remove_echoed_token_from(
    answered: &mut Result<Response, Failure<Response>>,
    token: &AccessToken,
) {
    let response = match answered {
        Ok(response) => Some(response),
        Err(failure) => failure.answer.as_mut(),
    };
    if let Some(response) = response {
        remove_echoed_token(response.headers_mut(), token);
    }
}

/// Removes the headers of an answer that quote the access `token` it was
/// sent with: a gateway may echo the token back (in `x-request-id`), and
/// one that is not a JWT (the sandbox's, a UUID) looks like any id, to
/// [`crate::request_id`] and to whoever prints the headers.
fn remove_echoed_token(headers: &mut reqwest::header::HeaderMap, token: &AccessToken) {
    let token = token.secret().as_bytes();
    if token.is_empty() {
        return;
    }
    let echoed: Vec<_> = headers
        .iter()
        .filter(|(_, value)| value.as_bytes().windows(token.len()).any(|w| w == token))
        .map(|(name, _)| name.clone())
        .collect();
    for name in echoed {
        headers.remove(name);
    }
}

/// Whether a `Host` header names the host of `url`, with or without its
/// port.
fn names_host_of(host: &HeaderValue, url: &reqwest::Url) -> bool {
    let (Ok(host), Some(name)) = (host.to_str(), url.host_str()) else {
        return false;
    };
    host.eq_ignore_ascii_case(name)
        || url
            .port_or_known_default()
            .is_some_and(|port| host.eq_ignore_ascii_case(&format!("{name}:{port}")))
}

pub(crate) fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS
    )
}

/// The request for each attempt: the original first, then copies of it.
pub(crate) struct Replays {
    first: Mutex<Option<Request>>,
    /// `None` when the body is a stream that cannot be sent twice.
    template: Option<Request>,
}

impl Replays {
    pub(crate) fn new(request: Request) -> Self {
        Replays {
            template: request.try_clone(),
            first: Mutex::new(Some(request)),
        }
    }

    pub(crate) fn replayable(&self) -> bool {
        self.template.is_some()
    }

    pub(crate) fn next<T>(&self) -> Result<Request, Failure<T>> {
        let first = self
            .first
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        first
            .or_else(|| self.template.as_ref()?.try_clone())
            .ok_or_else(|| Failure::fatal(Error::config("the request body cannot be sent twice")))
    }
}

/// What a final `401` is: an error ([`Client::send`]), or an answer to hand
/// on as it came (the middleware, which is transparent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unauthorized {
    IsAnError,
    #[cfg_attr(not(feature = "middleware"), allow(dead_code))]
    IsAnAnswer,
}

tokio::task_local! {
    /// Set while an attempt runs: whether the SDK's redirect policy followed
    /// a redirect for it. The answer alone cannot say: a `POST` answered
    /// `303` with its own URL comes back from the URL it was sent to.
    static FOLLOWED: Arc<AtomicBool>;
}

/// Runs `attempt`, noting whether the SDK's own redirect policy followed a
/// redirect meanwhile. A client of the caller's own follows its own policy,
/// which notes nothing: then only a changed URL tells.
pub(crate) async fn noting_redirects<F: Future>(attempt: F) -> (F::Output, bool) {
    let followed = Arc::new(AtomicBool::new(false));
    let output = FOLLOWED.scope(Arc::clone(&followed), attempt).await;
    (output, followed.load(Ordering::Relaxed))
}

/// Called by the SDK's redirect policy for each redirect it follows.
pub(crate) fn note_redirect() {
    let _ = FOLLOWED.try_with(|followed| followed.store(true, Ordering::Relaxed));
}

/// Where an answer came from, if a redirect was followed to get it: noted by
/// the SDK's policy (`followed`), or else seen in a URL that changed (the
/// fragment aside, which never reaches the server).
pub(crate) fn redirected_to<'u>(
    sent_to: &reqwest::Url,
    answered_from: &'u reqwest::Url,
    followed: bool,
) -> Option<&'u reqwest::Url> {
    let resource = |url: &reqwest::Url| {
        let mut resource = url.clone();
        resource.set_fragment(None);
        resource
    };
    (followed || resource(sent_to) != resource(answered_from)).then_some(answered_from)
}

/// Where an authenticated request went: its `401` is read by it.
pub(crate) struct SentTo {
    url: reqwest::Url,
    idempotent: bool,
}

impl SentTo {
    pub(crate) fn of(request: &Request) -> Self {
        SentTo {
            url: request.url().clone(),
            idempotent: is_idempotent(request.method()),
        }
    }
}

impl Client {
    /// One authenticated attempt's outcome, for the engine: a `401` for the
    /// `401` step, a transient status or error for the retries, anything
    /// else is the answer.
    pub(crate) async fn classify(
        &self,
        sent: Result<Response, Error>,
        to: &SentTo,
        followed: bool,
        unauthorized: Unauthorized,
    ) -> Result<Response, Failure<Response>> {
        let response = sent.map_err(Failure::of)?;
        let refused = (response.status() == StatusCode::UNAUTHORIZED).then(|| {
            let redirected_to = redirected_to(&to.url, response.url(), followed);
            TokenRefused::read(&self.origin, to.idempotent, redirected_to)
        });
        match refused {
            // Another host's `401`: an answer like any other.
            Some(TokenRefused::No) => return Ok(response),
            Some(refused) => {
                return Err(unauthorized_failure(response, refused, unauthorized).await);
            }
            None => {}
        }
        let status = response.status().as_u16();
        if is_transient_status(status) {
            let retry_after = retry_after(response.headers());
            let error = Error::from_status(
                status,
                "(the response is handed on if no retry is left)".into(),
                request_id(response.headers()),
                retry_after,
            );
            return Err(Failure {
                answer: Some(response),
                retry_after,
                ..Failure::transient(error)
            });
        }
        Ok(response)
    }
}

/// A `401`: an error, or for the middleware an answer to hand on as it came.
async fn unauthorized_failure(
    response: Response,
    refused: TokenRefused,
    unauthorized: Unauthorized,
) -> Failure<Response> {
    let request_id = request_id(response.headers());
    let (summary, answer) = match unauthorized {
        Unauthorized::IsAnAnswer => ("(the response is handed on)".into(), Some(response)),
        Unauthorized::IsAnError => {
            // As `Client::get` reads an error status: a body too large, or
            // cut short, is said to be, not taken for an empty one.
            let summary = match read_at_most(response, 64 * 1024).await {
                Ok(body) => summarize(&body),
                Err(Error::Decode { what, .. }) => format!("({what})"),
                Err(_) => "(the body could not be read)".into(),
            };
            (summary, None)
        }
    };
    Failure {
        answer,
        unauthorized: refused,
        ..Failure::fatal(Error::Api {
            status: 401,
            summary,
            request_id,
            retry_after: None,
        })
    }
}
