//! The one error type of the crate.
//!
//! Every variant says what happened and what to do. None carries a password,
//! a token, or a server's body: what a server sent reaches an error only
//! through [`server_text`], which withholds anything that could be an echo of
//! a request.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// What can go wrong talking to Dynata.
///
/// `Error` is `Clone`: when one login or refresh fails, every caller that was
/// waiting for it receives the same error. Match on the variant for the kind
/// of failure, and use [`Error::status`], [`Error::request_id`],
/// [`Error::retry_after`] and [`Error::is_transient`] rather than reading
/// fields variant by variant.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Error {
    /// Dynata's identity server refused the grant (`400`/`401` with
    /// `error: "invalid_grant"`, say): a wrong username, password or client
    /// id, or (with `refreshing`) the refresh token. The login or refresh
    /// was sent once and is not retried automatically,
    /// since identity servers lock accounts after repeated failures; see
    /// [`crate::ClientBuilder::rejected_login_cooldown`].
    CredentialsRejected {
        /// The HTTP status, 400 or 401.
        status: u16,
        /// Dynata's error code, such as `invalid_grant`.
        error: Option<String>,
        /// Dynata's `errorDescription` (or a gateway's `message`); or, when
        /// a process sharing the token store had these same credentials
        /// rejected and they were not sent again, a note saying so. Told to
        /// a caller during the cooldown that follows a refusal, it ends with
        /// "(not sent again for another N s, the cooldown)".
        description: Option<String>,
        /// The `x-request-id` response header, worth quoting to Dynata.
        request_id: Option<String>,
        /// Whether it was a refresh token that was refused, not a password.
        /// A client with a password logs in after Dynata's `invalid_grant`
        /// (the session has ended), and one without gets
        /// [`Error::LoginRequired`] instead; so a caller sees this only for
        /// another refusal (`invalid_client`, or a gateway's `401`), which
        /// does not say the session has ended: it is kept.
        refreshing: bool,
    },

    /// Dynata answered with a status the SDK does not recover from (for
    /// example `403`, `404`, a `401` from a web firewall, or a `5xx` after
    /// the retry budget ran out). The request reached the server and may
    /// have had an effect.
    Api {
        /// The HTTP status.
        status: u16,
        /// A short, secret-free summary of the body: the error fields of a
        /// JSON body, or the title of an HTML page; never the body itself.
        summary: String,
        /// The `x-request-id` response header, worth quoting to Dynata.
        request_id: Option<String>,
        /// The server's `Retry-After`, if it said when to ask again (a
        /// `503` during maintenance, longer than the retry budget waits).
        retry_after: Option<Duration>,
    },

    /// Dynata's Sample API refused the request: an error status, or an
    /// envelope whose `status.message` is `"fail"`, with its `errors[]`. A
    /// `408`, `429` or `504` is never this, envelope or not, but
    /// [`Error::Timeout`] or [`Error::RateLimited`].
    Rejected {
        /// The HTTP status.
        status: u16,
        /// The envelope's `status.errors`.
        errors: Vec<crate::ApiErrorDetail>,
        /// The `x-request-id` response header, worth quoting to Dynata.
        request_id: Option<String>,
        /// The server's `Retry-After`, if it said when to ask again.
        retry_after: Option<Duration>,
    },

    /// Dynata (or its gateway) answered `429 Too Many Requests`: for an
    /// idempotent request, after the retry budget could not wait as long as
    /// it asked; for a `POST`, at once (it is never retried). When a login or
    /// refresh got it, the client remembers the pause: until it ends, logins
    /// and refreshes fail at once with this error instead of asking again.
    RateLimited {
        /// How long the server asked to wait (`Retry-After`), if it said.
        retry_after: Option<Duration>,
        /// The `x-request-id` response header, worth quoting to Dynata.
        request_id: Option<String>,
        /// Dynata's `status.errors`, when the answer was its envelope.
        errors: Vec<crate::ApiErrorDetail>,
    },

    /// No answer in time, after the retries an idempotent request gets: the
    /// client's own timeout, a `504` or a `408` (a gateway's, or Dynata's own,
    /// then with its `errors`), or a login or refresh that took longer than
    /// [`crate::ClientBuilder::renewal_timeout`]. The request MAY have been
    /// sent and processed.
    Timeout {
        /// The HTTP status when a server said so (`408`, `504`).
        status: Option<u16>,
        /// The `x-request-id` response header, if there was a response.
        request_id: Option<String>,
        /// Dynata's `status.errors`, when the answer was its envelope.
        errors: Vec<crate::ApiErrorDetail>,
        /// The server's `Retry-After`, if it said when to ask again.
        retry_after: Option<Duration>,
    },

    #[cfg(feature = "demand")]
    /// Dynata cannot compute feasibility for a line item: its status is
    /// `FAILED` or `NOT_SUPPORTED` (see [`crate::Client::wait_for_feasibility`]).
    /// Asking again will not change it; change the line item (its country,
    /// targeting or quotas) instead.
    Infeasible {
        /// The line item, as Dynata sent its id back.
        ext_line_item_id: String,
        /// `FAILED` or `NOT_SUPPORTED`.
        status: dynata_sample_api::types::FeasibilityStatus,
    },

    #[cfg(feature = "demand")]
    /// [`crate::Client::wait_for_feasibility`] waited as long as it was
    /// allowed and some line item was still being computed. Nothing more
    /// was sent after the time was up; wait again to go on.
    FeasibilityTimeout {
        /// The project, as the caller named it.
        ext_project_id: String,
        /// How long the call waited: the caller's time limit.
        waited: Duration,
    },

    /// The connection failed: DNS, TCP, TLS, a reset. The request MAY have
    /// been sent.
    Transport {
        /// What failed, from the HTTP client.
        message: String,
        /// The underlying error.
        source: Option<Arc<dyn std::error::Error + Send + Sync>>,
    },

    /// Dynata answered, but the answer could not be understood: not JSON, a
    /// missing or mistyped field, a token that is already expired, an
    /// oversized body. The body itself is never included: it may hold tokens.
    ///
    /// With a `2xx` [`status`](Error::status), Dynata carried the request
    /// out and only its answer was lost: a create answered `201` created its
    /// resource. Look it up (by its `extProjectId`, say) before sending the
    /// request again.
    Decode {
        /// What was wrong with it.
        what: String,
        /// The answer's HTTP status, where the SDK read it (as for
        /// `request_id`); not for an HTML page in a typed answer's place (a
        /// proxy's or captive portal's, which says nothing of Dynata).
        status: Option<u16>,
        /// The `x-request-id` response header, where the answer had one
        /// and the SDK read it ([`crate::Client::get`]; a typed call's answer
        /// of an unexpected status or shape; an invoice that is not a PDF).
        request_id: Option<String>,
    },

    /// The session cannot be renewed without a password, and the client has
    /// none ([`crate::Credentials::without_password`]): log in again where the
    /// password is (for the command line, `dynata login`). Nothing was sent
    /// to the login endpoint.
    LoginRequired,

    /// [`crate::Client::logout`] ended the session while this call waited for
    /// a login or refresh that was already under way; the logout revokes the
    /// session that obtained. Call again to log in afresh.
    LoggedOut,

    /// The client is misconfigured: an invalid or insecure base URL,
    /// missing credentials, settings that allow no attempt. Nothing was sent.
    Config {
        /// What is wrong, and how to fix it.
        message: String,
    },

    /// This call's request was refused before it was sent: a missing
    /// required argument of a typed call, an id that cannot be a path
    /// segment (`..`), a page size of 0, a request for a host other than
    /// the environment's (the token goes to no other). Nothing was sent;
    /// the client is fine for other calls.
    InvalidRequest {
        /// What is wrong with the request.
        message: String,
    },

    /// A call was not sent: it needed a new access token, and the login or
    /// refresh failed with `renewal` (an answer of Dynata's identity server,
    /// a timeout, no connection). This attempt never reached Dynata's API;
    /// only idempotent calls are retried, so a `POST` that failed this way
    /// was never sent at all and is safe to send again. [`Error::status`] is
    /// `None` (the call got no answer); [`Error::retry_after`],
    /// [`Error::is_transient`] and [`Error::request_id`] are the renewal's.
    /// (A refusal of the credentials, or no password to log in with, is
    /// [`Error::CredentialsRejected`] or [`Error::LoginRequired`] as it
    /// is.)
    NotSent {
        /// Why the token could not be renewed.
        renewal: Box<Error>,
    },

    /// An environment variable that [`crate::Credentials::from_env`] or
    /// [`crate::Environment::from_env`] needs is not set (or empty, or not
    /// UTF-8).
    MissingEnvVar {
        /// The variable's name.
        name: String,
    },
}

// Written out rather than derived with `thiserror`: a dozen arms of `write!`
// cost less than the two crates (and a proc-macro build) every user pays.
impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::CredentialsRejected {
                status,
                error,
                description,
                request_id,
                refreshing: false,
            } => write!(
                f,
                "Dynata rejected the credentials (status {status}{}): check the username, password and client id{}",
                describe(error.as_deref(), description.as_deref()),
                with_request_id(request_id.as_deref())
            ),
            Error::CredentialsRejected {
                status,
                error,
                description,
                request_id,
                refreshing: true,
            } => {
                let meaning = if error.as_deref() == Some("invalid_grant") {
                    "the session has ended (logged out, revoked or expired), and only a login with the password starts a new one"
                } else {
                    "it did not say the session ended, so the session is kept: check the client id, or try again later"
                };
                write!(
                    f,
                    "Dynata refused the refresh token (status {status}{}): {meaning}{}",
                    describe(error.as_deref(), description.as_deref()),
                    with_request_id(request_id.as_deref())
                )
            }
            Error::Api {
                status,
                summary,
                request_id,
                retry_after,
            } => write!(
                f,
                "Dynata answered {status}: {summary}{}{}",
                with_request_id(request_id.as_deref()),
                asked_to_wait(*retry_after)
            ),
            Error::Rejected {
                status,
                errors,
                request_id,
                retry_after,
            } => write!(
                f,
                "Dynata refused the request (status {status}){}{}: {}",
                with_request_id(request_id.as_deref()),
                asked_to_wait(*retry_after),
                describe_details(errors)
            ),
            Error::RateLimited {
                retry_after,
                request_id,
                errors,
            } => {
                f.write_str("Dynata is rate limiting this client")?;
                if let Some(wait) = retry_after {
                    write!(f, "; retry after {} s", seconds_up(*wait))?;
                }
                f.write_str(&with_request_id(request_id.as_deref()))?;
                with_details(f, errors)
            }
            Error::Timeout {
                status,
                request_id,
                errors,
                retry_after,
            } => {
                // Not "after retries": a `POST` is sent once, and a renewal
                // ends at its own deadline.
                f.write_str("Dynata did not answer in time")?;
                if let Some(status) = status {
                    write!(f, " (status {status})")?;
                }
                write!(
                    f,
                    "{}{}",
                    with_request_id(request_id.as_deref()),
                    asked_to_wait(*retry_after)
                )?;
                with_details(f, errors)
            }
            #[cfg(feature = "demand")]
            Error::Infeasible {
                ext_line_item_id,
                status,
            } => write!(
                f,
                "Dynata cannot supply line item {ext_line_item_id}: its feasibility is {status}"
            ),
            #[cfg(feature = "demand")]
            Error::FeasibilityTimeout {
                ext_project_id,
                waited,
            } => write!(
                f,
                "feasibility of project {ext_project_id} was not ready after {} s",
                waited.as_secs_f64()
            ),
            Error::Transport { message, .. } => write!(f, "could not reach Dynata: {message}"),
            Error::Decode {
                what,
                status: Some(status @ 200..=299),
                request_id,
            } => write!(
                f,
                "Dynata answered {status}, so it carried the request out, but its answer could not be decoded{}: {what}",
                with_request_id(request_id.as_deref())
            ),
            Error::Decode {
                what, request_id, ..
            } => write!(
                f,
                "Dynata's answer could not be decoded{}: {what}",
                with_request_id(request_id.as_deref())
            ),
            Error::LoginRequired => f.write_str(
                "no live session to renew (it has ended, or the token store holds none or did not answer) and this client has no password to log in with: log in again",
            ),
            Error::LoggedOut => {
                f.write_str("the client logged out while this call waited for a token")
            }
            Error::Config { message } => write!(f, "invalid configuration: {message}"),
            Error::InvalidRequest { message } => {
                write!(f, "invalid request, not sent: {message}")
            }
            Error::MissingEnvVar { name } => write!(f, "environment variable {name} is not set"),
            Error::NotSent { renewal } => write!(
                f,
                "not sent: a new access token was needed, and its renewal failed: {renewal}"
            ),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::NotSent { renewal } => Some(renewal.as_ref()),
            Error::Transport {
                source: Some(source),
                ..
            } => Some(source.as_ref()),
            _ => None,
        }
    }
}

/// "; Dynata asked to wait N s", for an error whose answer said when to ask
/// again.
fn asked_to_wait(retry_after: Option<Duration>) -> String {
    retry_after.map_or_else(String::new, |wait| {
        format!("; it asked to wait {} s", seconds_up(wait))
    })
}

/// A wait in whole seconds, rounded up, for messages: what is left of a
/// wait is rarely whole, "34.153380705000004 s" says no more than "35 s",
/// and "0 s" while it still holds would mislead.
pub(crate) fn seconds_up(wait: Duration) -> u64 {
    wait.as_secs()
        .saturating_add(u64::from(wait.subsec_nanos() > 0))
}

fn with_request_id(request_id: Option<&str>) -> String {
    request_id
        .map(|id| format!(" (request id {id})"))
        .unwrap_or_default()
}

/// `: ` and Dynata's errors, if it gave any.
fn with_details(f: &mut fmt::Formatter<'_>, errors: &[crate::ApiErrorDetail]) -> fmt::Result {
    if errors.is_empty() {
        return Ok(());
    }
    write!(f, ": {}", describe_details(errors))
}

fn describe_details(errors: &[crate::ApiErrorDetail]) -> String {
    if errors.is_empty() {
        return "no details given".into();
    }
    let parts: Vec<String> = errors
        .iter()
        .map(|e| {
            // `None` also when Dynata sent one that `server_text` withheld.
            let mut part = e.message.clone().unwrap_or_else(|| {
                "(no message, or one withheld: it may quote the request)".into()
            });
            if let Some(code) = &e.code {
                part = format!("[{code}] {part}");
            }
            if let Some(resource) = &e.resource {
                part.push_str(&format!(" ({resource})"));
            }
            part
        })
        .collect();
    parts.join("; ")
}

fn describe(error: Option<&str>, description: Option<&str>) -> String {
    match (error, description) {
        (Some(e), Some(d)) => format!(", {e}: {d}"),
        (Some(s), None) | (None, Some(s)) => format!(", {s}"),
        (None, None) => String::new(),
    }
}

/// Whether reqwest failed in a way that sending again cannot change: a
/// redirect loop (or too many redirects) answers the same way however often
/// it is asked, and a request reqwest could not build stays unbuildable.
pub(crate) fn fails_the_same_again(error: &reqwest::Error) -> bool {
    error.is_redirect() || error.is_builder()
}

impl Error {
    /// Whether the failure may go away on its own, so that trying again later
    /// makes sense: timeouts, connection failures (not a redirect loop),
    /// rate limits, and the statuses `408`, `429` and `5xx` whatever the body
    /// looked like.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Transport {
                source: Some(source),
                ..
            } if source
                .downcast_ref::<reqwest::Error>()
                .is_some_and(fails_the_same_again) =>
            {
                false
            }
            Error::Timeout { .. } | Error::Transport { .. } | Error::RateLimited { .. } => true,
            Error::Api { status, .. } | Error::Rejected { status, .. } => {
                is_transient_status(*status)
            }
            Error::NotSent { renewal } => renewal.is_transient(),
            _ => false,
        }
    }

    /// The HTTP status of the answer this error comes from, if there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::CredentialsRejected { status, .. }
            | Error::Api { status, .. }
            | Error::Rejected { status, .. } => Some(*status),
            Error::RateLimited { .. } => Some(429),
            Error::Timeout { status, .. } | Error::Decode { status, .. } => *status,
            _ => None,
        }
    }

    /// How long the server asked to wait before asking again (its
    /// `Retry-After`), when the answer this error comes from said: a `429`,
    /// or a `503` whose wait was longer than the retry budget allows.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Api { retry_after, .. }
            | Error::Rejected { retry_after, .. }
            | Error::RateLimited { retry_after, .. }
            | Error::Timeout { retry_after, .. } => *retry_after,
            Error::NotSent { renewal } => renewal.retry_after(),
            _ => None,
        }
    }

    /// The same error, its server's wait (if it has one) shortened to
    /// `left`: what remains of it, for a caller told of it later.
    pub(crate) fn with_wait_left(mut self, left: Duration) -> Self {
        if let Error::Api { retry_after, .. }
        | Error::Rejected { retry_after, .. }
        | Error::RateLimited { retry_after, .. }
        | Error::Timeout { retry_after, .. } = &mut self
            && let Some(wait) = retry_after
        {
            *wait = (*wait).min(left);
        }
        self
    }

    /// The `x-request-id` header of the answer this error comes from: quote it
    /// to Dynata's support.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Error::CredentialsRejected { request_id, .. }
            | Error::Api { request_id, .. }
            | Error::Rejected { request_id, .. }
            | Error::RateLimited { request_id, .. }
            | Error::Timeout { request_id, .. }
            | Error::Decode { request_id, .. } => request_id.as_deref(),
            Error::NotSent { renewal } => renewal.request_id(),
            _ => None,
        }
    }

    /// The error without its request id if `leaks` says the id quotes
    /// something secret (a server or gateway that echoed it).
    pub(crate) fn without_request_id_if(mut self, leaks: impl Fn(&str) -> bool) -> Self {
        if let Error::CredentialsRejected { request_id, .. }
        | Error::Api { request_id, .. }
        | Error::Rejected { request_id, .. }
        | Error::RateLimited { request_id, .. }
        | Error::Timeout { request_id, .. }
        | Error::Decode { request_id, .. } = &mut self
            && request_id.as_deref().is_some_and(&leaks)
        {
            *request_id = None;
        }
        self
    }

    /// The error with every text a server sent that contains one of
    /// `secrets` (what the request carried: a password, a token) withheld:
    /// its messages, Dynata's `errors[]`, and its request id. The secret is
    /// known exactly, so an echo of it is caught whatever its shape, where
    /// [`server_text`] and [`server_id`] catch only what looks like one (a
    /// password of letters, digits and `-`, or an access token that is not
    /// a JWT, looks like any id).
    pub(crate) fn without_secrets(self, secrets: &[&dynata_auth_api::Secret]) -> Self {
        let leaks = |text: &str| {
            secrets
                .iter()
                .map(|s| s.expose_secret())
                .any(|secret| !secret.is_empty() && text.contains(secret))
        };
        let scrub = |text: Option<String>| text.filter(|t| !leaks(t));
        let scrub_details = |errors: Vec<crate::ApiErrorDetail>| {
            errors
                .into_iter()
                .map(|detail| crate::ApiErrorDetail {
                    code: scrub(detail.code),
                    message: scrub(detail.message),
                    resource: scrub(detail.resource),
                })
                .collect()
        };
        match self.without_request_id_if(leaks) {
            Error::CredentialsRejected {
                status,
                error,
                description,
                request_id,
                refreshing,
            } => Error::CredentialsRejected {
                status,
                error: scrub(error),
                description: scrub(description),
                request_id,
                refreshing,
            },
            Error::Api {
                status,
                summary,
                request_id,
                retry_after,
            } if leaks(&summary) => Error::Api {
                status,
                summary: "(withheld: it quotes what the request sent)".into(),
                request_id,
                retry_after,
            },
            Error::Rejected {
                status,
                errors,
                request_id,
                retry_after,
            } => Error::Rejected {
                status,
                errors: scrub_details(errors),
                request_id,
                retry_after,
            },
            Error::RateLimited {
                retry_after,
                request_id,
                errors,
            } => Error::RateLimited {
                retry_after,
                request_id,
                errors: scrub_details(errors),
            },
            Error::Timeout {
                status,
                request_id,
                errors,
                retry_after,
            } => Error::Timeout {
                status,
                request_id,
                errors: scrub_details(errors),
                retry_after,
            },
            // reqwest names the URL, and a redirect's is the server's: what
            // it failed with is kept, without it.
            Error::Transport { message, source } if leaks(&message) => {
                let causes = source
                    .as_deref()
                    .map(|source| causes_of(source))
                    .unwrap_or_default();
                let message = if causes.is_empty() || leaks(&causes) {
                    "(withheld: it quotes what the request sent)".to_string()
                } else {
                    format!("(its URL withheld: it quotes what the request sent): {causes}")
                };
                Error::Transport { message, source }
            }
            other => other,
        }
    }

    /// The error of a renewal a call needed, as that call's: an error that
    /// could pass for the call's own answer (a status, a timeout, no
    /// connection) is [`Error::NotSent`], so that a caller knows its
    /// request never reached Dynata's API. Errors about the session
    /// (refused credentials, no password, a logout) already say so.
    pub(crate) fn before_sending(self) -> Self {
        match self {
            Error::Api { .. }
            | Error::Rejected { .. }
            | Error::RateLimited { .. }
            | Error::Timeout { .. }
            | Error::Transport { .. }
            | Error::Decode { .. } => Error::NotSent {
                renewal: Box::new(self),
            },
            other => other,
        }
    }

    pub(crate) fn config(message: impl Into<String>) -> Self {
        Error::Config {
            message: message.into(),
        }
    }

    pub(crate) fn invalid_request(message: impl Into<String>) -> Self {
        Error::InvalidRequest {
            message: message.into(),
        }
    }

    pub(crate) fn decode(what: impl Into<String>) -> Self {
        Error::Decode {
            what: what.into(),
            status: None,
            request_id: None,
        }
    }

    /// [`Error::Decode`] for an answer of status `status` that could not be
    /// understood.
    pub(crate) fn undecodable_answer(
        status: u16,
        what: impl Into<String>,
        request_id: Option<String>,
    ) -> Self {
        Error::Decode {
            what: what.into(),
            status: Some(status),
            request_id,
        }
    }

    pub(crate) fn transport(error: reqwest::Error) -> Self {
        if error.is_timeout() {
            return Error::Timeout {
                status: None,
                request_id: None,
                errors: Vec::new(),
                retry_after: None,
            };
        }
        // The message names the URL; the source does not, so that an
        // error whose URL quotes a secret (a redirect a server sent) can be
        // cleaned by its message alone (see `without_secrets`).
        Error::Transport {
            message: transport_message(&error),
            source: Some(Arc::new(error.without_url())),
        }
    }

    /// The error for an HTTP status that is not a success, by what the status
    /// means: `429` is a rate limit, `408` and `504` a timeout, anything else
    /// [`Error::Api`] with `summary`.
    pub(crate) fn from_status(
        status: u16,
        summary: String,
        request_id: Option<String>,
        retry_after: Option<Duration>,
    ) -> Self {
        match status {
            408 | 429 | 504 => Error::refused(status, Vec::new(), request_id, retry_after),
            _ => Error::Api {
                status,
                summary,
                request_id,
                retry_after,
            },
        }
    }

    /// A refusal in Dynata's envelope (an error status, or a `2xx` whose
    /// `status.message` is `"fail"`): [`Error::Rejected`] with its `errors`,
    /// unless the status says more. An error's kind follows its status, not
    /// its body: with the envelope, a `429` is still [`Error::RateLimited`]
    /// with its `Retry-After`, and a `408` or `504` still [`Error::Timeout`]
    /// (a `POST` that may have taken effect, not a refusal to send again).
    pub(crate) fn refused(
        status: u16,
        errors: Vec<crate::ApiErrorDetail>,
        request_id: Option<String>,
        retry_after: Option<Duration>,
    ) -> Self {
        match status {
            429 => Error::RateLimited {
                retry_after,
                request_id,
                errors,
            },
            408 | 504 => Error::Timeout {
                status: Some(status),
                request_id,
                errors,
                retry_after,
            },
            _ => Error::Rejected {
                status,
                errors,
                request_id,
                retry_after,
            },
        }
    }
}

/// `408`, `429` and every `5xx` are worth retrying.
pub(crate) fn is_transient_status(status: u16) -> bool {
    status == 408 || status == 429 || (500..600).contains(&status)
}

/// A string a server sent, made safe to put into an error, or `None` if it
/// must be withheld.
///
/// Servers echo requests: a proxy quoting the login body, a gateway repeating
/// a header. Since the SDK cannot tell an echo from a message, it keeps only
/// short, plain sentences and codes: nothing long, nothing with the marks of
/// JSON, a form or markup (`{`, `"`, `=`, `&`, `<`), no word long enough to
/// be a token unless it is a field's path, and nothing that names a bearer
/// token (an echoed `Authorization` header, however short its token).
pub(crate) fn server_text(text: &str) -> Option<String> {
    const MAX_CHARS: usize = 200;
    let text = text.trim();
    if text.is_empty() || text.chars().count() > MAX_CHARS {
        return None;
    }
    let suspicious = text
        .chars()
        .any(|c| c.is_control() || matches!(c, '{' | '}' | '"' | '=' | '&' | '<' | '>' | '\\'))
        || text
            .split_whitespace()
            .any(|word| word.chars().count() > MAX_WORD && !is_field_path(word))
        || text.to_ascii_lowercase().contains("bearer");
    (!suspicious).then(|| text.to_string())
}

/// An id Dynata sent back (an `extLineItemId`, an error's `resource.id`,
/// the `x-request-id` header), if it is safe to put into an error: made of
/// letters, digits and `-_.:` only, at most `max_len` of them, and not
/// shaped like a JWT (`eyJ…`, or three dotted parts), the bearer token
/// every request carries. (A request body may carry other secrets, such as
/// `endLinks.securityKey1`: an `errors[].resource.id`, which may quote the
/// body, is also held to short runs; see `describe_resource`.) [`server_text`]'s limit on word
/// length, meant for tokens quoted back in a message, would withhold the
/// ids that say which item an error concerns: callers choose theirs (up to
/// 255 characters), and a UUID is the usual choice.
pub(crate) fn server_id(id: &str, max_len: usize) -> Option<String> {
    let id = id.trim();
    let plausible = !id.is_empty()
        && id.len() <= max_len
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    let token_like = id.starts_with("eyJ")
        || id.matches('.').count() >= 2
        || id.to_ascii_lowercase().contains("bearer");
    (plausible && !token_like).then(|| id.to_string())
}

/// The longest id of Dynata's resources: callers choose `extProjectId` and
/// `extLineItemId`, up to this many characters.
pub(crate) const MAX_RESOURCE_ID: usize = 255;

/// JWTs, refresh tokens and API keys are long runs without spaces: no word
/// of a message quoted back is longer, but a field's path.
pub(crate) const MAX_WORD: usize = 24;

/// Whether `word` names a field the way validation messages do
/// (`lineItems[0].countryISOCode:`): names of letters, digits and `_`, each
/// starting with a letter and no longer than [`MAX_WORD`], joined by dots
/// or followed by `[n]` indices. A JWT never is one: it starts with `eyJ`
/// (its header, `{"`), and its signature is longer than a name.
fn is_field_path(word: &str) -> bool {
    let word = word.strip_suffix([':', ',', '.', ';']).unwrap_or(word);
    let is_name = |name: &str| {
        name.len() <= MAX_WORD
            && name.starts_with(|c: char| c.is_ascii_alphabetic())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    let is_segment = |segment: &str| {
        let (name, mut indices) = segment.split_at(segment.find('[').unwrap_or(segment.len()));
        while let Some(rest) = indices.strip_prefix('[') {
            match rest.split_once(']') {
                Some((index, after))
                    if !index.is_empty() && index.bytes().all(|b| b.is_ascii_digit()) =>
                {
                    indices = after;
                }
                _ => return false,
            }
        }
        is_name(name) && indices.is_empty()
    };
    word.len() <= 4 * MAX_WORD
        && !word.contains("eyJ")
        && word.contains(['.', '['])
        && word.split('.').all(is_segment)
}

/// The causes of `error` on one line, without its own message.
fn causes_of(error: &(dyn std::error::Error + 'static)) -> String {
    let mut causes = Vec::new();
    let mut source = error.source();
    while let Some(cause) = source {
        causes.push(cause.to_string());
        source = cause.source();
    }
    causes.join(": ")
}

/// reqwest's message and its causes on one line, for example "error sending
/// request: connection reset by peer". The URLs the SDK calls carry no secrets.
fn transport_message(error: &reqwest::Error) -> String {
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_text_keeps_messages_and_codes() {
        for kept in [
            "invalid_grant",
            "Invalid user credentials",
            "Project not found (extProjectId p-1)",
            "502 Bad Gateway",
            // Validation messages name the field (found by a walkthrough).
            "lineItems[0].countryISOCode: XX/en is not a country the catalogue lists",
            "quotaPlan.filters[2][0].targetingAttributeId is required.",
        ] {
            assert_eq!(server_text(kept).as_deref(), Some(kept));
        }
    }

    #[test]
    fn server_text_withholds_what_could_be_an_echo() {
        for withheld in [
            r#"{"username":"alice","password":"hunter2"}"#,
            "username=alice&password=hunter2",
            "Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl",
            "token abcdefghijklmnopqrstuvwxyz0123456789",
            "token abcdefghijklmnopqrstuvwxyz.0123456789",
            "token abcdefghij.klmnopqrstuvwxyz.0123456789a",
            "token a.eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl",
            "Authorization: Bearer abc",
            "bad BEARER token",
            &"a ".repeat(150),
            "",
        ] {
            assert_eq!(server_text(withheld), None, "{withheld}");
        }
    }

    #[test]
    fn statuses_map_to_the_kind_of_failure() {
        let timeout = Error::from_status(504, String::new(), Some("r".into()), None);
        assert!(matches!(
            timeout,
            Error::Timeout {
                status: Some(504),
                ..
            }
        ));
        assert_eq!(timeout.request_id(), Some("r"));
        assert!(timeout.is_transient());
        // What happened, not a retry that may not have been (a `POST` is
        // sent once; found by a walkthrough of the library).
        assert_eq!(
            timeout.to_string(),
            "Dynata did not answer in time (status 504) (request id r)"
        );
        let limited = Error::from_status(429, String::new(), None, Some(Duration::from_secs(3)));
        assert_eq!(limited.status(), Some(429));
        let rejected = Error::Rejected {
            status: 503,
            errors: vec![],
            request_id: None,
            retry_after: None,
        };
        assert!(
            rejected.is_transient(),
            "a 503 is transient whatever its body"
        );
        // A wait the server asked for is kept, whatever the status.
        let maintenance =
            Error::from_status(503, "down".into(), None, Some(Duration::from_secs(120)));
        assert_eq!(maintenance.retry_after(), Some(Duration::from_secs(120)));
        assert!(
            maintenance.to_string().contains("asked to wait 120 s"),
            "{maintenance}"
        );
        let forbidden = Error::from_status(403, "no".into(), None, None);
        assert!(!forbidden.is_transient());
        assert_eq!(forbidden.status(), Some(403));
    }
}
