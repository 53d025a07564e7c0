//! Sending one auth operation: retries with backoff, and turning whatever
//! came back (a status, a gateway page, a reset, garbage) into an [`Error`].

use std::future::Future;
use std::time::{Duration, Instant, SystemTime};

use dynata_auth_api::ResponseValue;
use dynata_auth_api::types::AuthError;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use tracing::Instrument;

use crate::clock::Clock;
use crate::error::is_transient_status;
use crate::{Error, RetryPolicy};

/// What a generated operation returns.
pub(crate) type ApiResult<T> = Result<ResponseValue<T>, dynata_auth_api::Error<AuthError>>;

/// Sends `call` until it succeeds, fails for good, or the retry budget runs
/// out. Returns the value and the instant just before the successful attempt
/// was sent, from which the token lifetimes count.
pub(crate) async fn send_with_retries<T, F, Fut>(
    operation: &'static str,
    policy: &RetryPolicy,
    clock: &dyn Clock,
    call: F,
) -> Result<(T, Instant), Error>
where
    F: Fn() -> Fut,
    Fut: Future<Output = ApiResult<T>>,
{
    let span = tracing::info_span!("dynata_auth", operation);
    async move {
        let mut waited = Duration::ZERO;
        let mut attempt = 1u32;
        loop {
            let sent_at = clock.now();
            let failure = match call().await {
                Ok(response) => {
                    tracing::info!(attempt, outcome = "ok", "{operation} succeeded");
                    return Ok((response.into_inner(), sent_at));
                }
                Err(error) => classify(error).await,
            };
            let wait = failure
                .retry
                .then(|| policy.next_wait(attempt, waited, failure.retry_after))
                .flatten();
            let Some(wait) = wait else {
                tracing::warn!(attempt, outcome = "failed", error = %failure.error, "{operation} failed");
                return Err(failure.error);
            };
            tracing::warn!(
                attempt,
                wait_ms = wait.as_millis() as u64,
                error = %failure.error,
                "{operation} failed transiently; retrying"
            );
            clock.sleep(wait).await;
            waited = waited.saturating_add(wait);
            attempt += 1;
        }
    }
    .instrument(span)
    .await
}

/// A failed attempt: the error to report, and whether (and when) to retry.
struct Failure {
    error: Error,
    retry: bool,
    retry_after: Option<Duration>,
}

impl Failure {
    fn final_(error: Error) -> Self {
        Failure {
            error,
            retry: false,
            retry_after: None,
        }
    }

    fn transient(error: Error) -> Self {
        Failure {
            error,
            retry: true,
            retry_after: None,
        }
    }
}

async fn classify(error: dynata_auth_api::Error<AuthError>) -> Failure {
    use dynata_auth_api::Error as E;
    match error {
        E::CommunicationError(e) | E::ResponseBodyError(e) => {
            Failure::transient(Error::transport(e))
        }
        // The documented errors are 400 and 401: Dynata refusing the grant.
        E::ErrorResponse(response) => {
            let status = response.status().as_u16();
            let body = response.into_inner();
            Failure::final_(Error::CredentialsRejected {
                status,
                error: body.error,
                description: body.error_description.or(body.message),
            })
        }
        E::UnexpectedResponse(response) => {
            let status = response.status().as_u16();
            let retry_after = retry_after(response.headers());
            let request_id = request_id(response.headers());
            // The generated client's hook already capped this body's size.
            let body = response.bytes().await.unwrap_or_default();
            if status == 429 {
                return Failure {
                    error: Error::RateLimited { retry_after },
                    retry: true,
                    retry_after,
                };
            }
            Failure {
                error: Error::Api {
                    status,
                    summary: summarize(&body),
                    request_id,
                },
                retry: is_transient_status(status),
                retry_after: if status == 503 { retry_after } else { None },
            }
        }
        E::InvalidResponsePayload(body, _) if looks_like_html(&body) => Failure::transient(
            Error::decode("an HTML page came back instead of JSON (a gateway or proxy answered)"),
        ),
        E::InvalidResponsePayload(_, e) => Failure::final_(Error::decode(describe_json_error(&e))),
        E::Custom(message) => Failure::final_(Error::decode(message)),
        E::InvalidRequest(message) => Failure::final_(Error::config(message)),
        E::InvalidUpgrade(e) => Failure::final_(Error::transport(e)),
    }
}

/// `Retry-After` as seconds or as an HTTP date (RFC 9110 §10.2.3); a date in
/// the past means "now". A value that is neither is ignored, and the policy's
/// backoff applies.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    // A date is the server's wall clock, so it is read against ours: the one
    // place the client looks at the wall clock.
    let date = httpdate::parse_http_date(value).ok()?;
    Some(
        date.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

pub(crate) fn request_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get("x-request-id")?
        .to_str()
        .ok()
        .map(str::to_owned)
}

fn looks_like_html(body: &[u8]) -> bool {
    body.trim_ascii_start().first() == Some(&b'<')
}

/// What was wrong with a JSON body, without quoting it: serde's messages can
/// include the values they choked on, and those may be tokens.
fn describe_json_error(error: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let message = error.to_string();
    let what = match error.classify() {
        Category::Eof if error.line() == 1 && error.column() == 0 => {
            "the body is empty".to_string()
        }
        Category::Eof => "the JSON is truncated".to_string(),
        Category::Syntax => "the body is not valid JSON".to_string(),
        Category::Data if message.starts_with("missing field") => message
            .split(" at line")
            .next()
            .unwrap_or("a field is missing")
            .to_string(),
        Category::Data => "a field has the wrong type or value".to_string(),
        Category::Io => "the body could not be read".to_string(),
    };
    format!("{what} (line {}, column {})", error.line(), error.column())
}

/// A short summary of an error body that is safe to show: the error fields of
/// a JSON body, the title of an HTML page, or the start of plain text.
pub(crate) fn summarize(body: &[u8]) -> String {
    const MAX: usize = 160;
    if body.iter().all(u8::is_ascii_whitespace) {
        return "(empty body)".into();
    }
    if let Ok(serde_json::Value::Object(fields)) = serde_json::from_slice(body) {
        let parts: Vec<&str> = ["error", "errorDescription", "message"]
            .iter()
            .filter_map(|key| fields.get(*key)?.as_str())
            .collect();
        if !parts.is_empty() {
            return truncate(&parts.join(": "), MAX);
        }
        return "(a JSON body without error fields)".into();
    }
    let text = String::from_utf8_lossy(body);
    if looks_like_html(body) {
        let lower = text.to_ascii_lowercase();
        let title = lower
            .find("<title>")
            .and_then(|start| {
                let rest = &text[start + 7..];
                rest.find('<').map(|end| rest[..end].trim().to_string())
            })
            .filter(|t| !t.is_empty());
        return match title {
            Some(title) => format!("an HTML page: {}", truncate(&title, MAX)),
            None => "an HTML page".into(),
        };
    }
    truncate(&text.split_whitespace().collect::<Vec<_>>().join(" "), MAX)
}

fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_keep_error_fields_and_page_titles_only() {
        assert_eq!(
            summarize(br#"{"error":"invalid_grant","errorDescription":"nope","accessToken":"x"}"#),
            "invalid_grant: nope"
        );
        assert_eq!(summarize(br#"{"message":"Unauthorized"}"#), "Unauthorized");
        assert_eq!(
            summarize(b"<html><head><title>502 Bad Gateway</title></head></html>"),
            "an HTML page: 502 Bad Gateway"
        );
        assert_eq!(summarize(b""), "(empty body)");
        assert_eq!(summarize(&[b'a'; 500]).chars().count(), 161);
    }

    #[test]
    fn json_errors_are_described_without_their_values() {
        let error = serde_json::from_str::<Vec<u32>>(r#"["eyJ.secret"]"#).expect_err("wrong type");
        let described = describe_json_error(&error);
        assert!(!described.contains("eyJ.secret"), "{described}");
        let empty = serde_json::from_str::<u32>("").expect_err("empty");
        assert!(describe_json_error(&empty).contains("empty"));
    }

    fn retry_after_of(value: &str) -> Option<Duration> {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, value.parse().expect("valid header"));
        retry_after(&headers)
    }

    #[test]
    fn retry_after_reads_seconds() {
        assert_eq!(retry_after_of("7"), Some(Duration::from_secs(7)));
        assert_eq!(retry_after_of(" 0 "), Some(Duration::ZERO));
        assert_eq!(retry_after_of("soon"), None);
        assert_eq!(retry_after_of("-3"), None);
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }

    #[test]
    fn retry_after_reads_http_dates() {
        let in_a_minute = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(60));
        let wait = retry_after_of(&in_a_minute).expect("a date");
        // The date has whole seconds: up to one is lost to rounding down.
        assert!(
            wait > Duration::from_secs(58) && wait <= Duration::from_secs(60),
            "{wait:?}"
        );
        assert_eq!(
            retry_after_of("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after_of("Wed, 32 Oct 2015 07:28:00 GMT"), None);
    }
}
