//! The one error type of the crate.
//!
//! Every variant says what happened and what to do. None carries a password,
//! a token, or the body of a token response, since those may hold secrets.

use std::sync::Arc;
use std::time::Duration;

/// What can go wrong talking to Dynata.
///
/// `Error` is `Clone`: when one login or refresh fails, every caller that was
/// waiting for it receives the same error.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Dynata rejected the username or password (`400`/`401`, usually with
    /// `error: "invalid_grant"`). The login was sent exactly once and is not
    /// retried automatically, since identity servers lock accounts after
    /// repeated failures; see [`crate::ClientBuilder::rejected_login_cooldown`].
    #[error(
        "Dynata rejected the credentials (status {status}{}): check the username, password and client id",
        describe(error.as_deref(), description.as_deref())
    )]
    CredentialsRejected {
        /// The HTTP status, 400 or 401.
        status: u16,
        /// Dynata's error code, such as `invalid_grant`.
        error: Option<String>,
        /// Dynata's `errorDescription` (or a gateway's `message`).
        description: Option<String>,
    },

    /// Dynata answered with a status the SDK does not recover from (for
    /// example `403`, `404`, or a `5xx` after the retry budget ran out). The
    /// request reached the server and may have had an effect.
    #[error("Dynata answered {status}: {summary}{}", request_id.as_deref().map(|id| format!(" (request id {id})")).unwrap_or_default())]
    Api {
        /// The HTTP status.
        status: u16,
        /// A short, secret-free summary of the body: the error fields of a
        /// JSON body, or the title of an HTML page.
        summary: String,
        /// The `x-request-id` response header, worth quoting to Dynata.
        request_id: Option<String>,
    },

    /// Dynata's Sample API refused the request: an error status, or an
    /// envelope whose `status.message` is `"fail"`, with its `errors[]`.
    #[error("Dynata refused the request (status {status}){}: {}", request_id.as_deref().map(|id| format!(", request id {id}")).unwrap_or_default(), describe_details(errors))]
    Rejected {
        /// The HTTP status.
        status: u16,
        /// The envelope's `status.errors`.
        errors: Vec<crate::ApiErrorDetail>,
        /// The `x-request-id` response header, worth quoting to Dynata.
        request_id: Option<String>,
    },

    /// Dynata (or its gateway) answered `429 Too Many Requests` and the retry
    /// budget could not wait as long as it asked.
    #[error("Dynata is rate limiting this client{}", retry_after.map(|d| format!("; retry after {} s", d.as_secs_f64())).unwrap_or_default())]
    RateLimited {
        /// How long the server asked to wait (`Retry-After`), if it said.
        retry_after: Option<Duration>,
    },

    /// No answer within the configured timeout, after every retry. The
    /// request MAY have been sent and processed.
    #[error("Dynata did not answer within the timeout (after retries)")]
    Timeout,

    /// The connection failed: DNS, TCP, TLS, a reset. The request MAY have
    /// been sent.
    #[error("could not reach Dynata: {message}")]
    Transport {
        /// What failed, from the HTTP client.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<Arc<dyn std::error::Error + Send + Sync>>,
    },

    /// Dynata answered, but the answer could not be understood: not JSON, a
    /// missing or mistyped field, a negative lifetime, an oversized body. The
    /// body itself is never included: it may hold tokens.
    #[error("Dynata's answer could not be decoded: {what}")]
    Decode {
        /// What was wrong with it.
        what: String,
    },

    /// The client is misconfigured: an invalid or insecure base URL, missing
    /// credentials, an unusable setting. Nothing was sent.
    #[error("invalid configuration: {message}")]
    Config {
        /// What is wrong, and how to fix it.
        message: String,
    },

    /// An environment variable that [`crate::Credentials::from_env`] or
    /// [`crate::Environment::from_env`] needs is not set (or not UTF-8).
    #[error("environment variable {name} is not set")]
    MissingEnvVar {
        /// The variable's name.
        name: String,
    },
}

fn describe_details(errors: &[crate::ApiErrorDetail]) -> String {
    if errors.is_empty() {
        return "no details given".into();
    }
    let parts: Vec<String> = errors
        .iter()
        .map(|e| {
            let mut part = e.message.clone().unwrap_or_else(|| "(no message)".into());
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

impl Error {
    /// Whether the failure may go away on its own, so that trying again later
    /// makes sense: timeouts, connection failures, rate limits and `5xx`.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Timeout | Error::Transport { .. } | Error::RateLimited { .. } => true,
            Error::Api { status, .. } => is_transient_status(*status),
            _ => false,
        }
    }

    pub(crate) fn config(message: impl Into<String>) -> Self {
        Error::Config {
            message: message.into(),
        }
    }

    pub(crate) fn decode(what: impl Into<String>) -> Self {
        Error::Decode { what: what.into() }
    }

    pub(crate) fn transport(error: reqwest::Error) -> Self {
        if error.is_timeout() {
            return Error::Timeout;
        }
        Error::Transport {
            message: transport_message(&error),
            source: Some(Arc::new(error)),
        }
    }
}

/// `408`, `429` and every `5xx` are worth retrying.
pub(crate) fn is_transient_status(status: u16) -> bool {
    status == 408 || status == 429 || (500..600).contains(&status)
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
