//! Reading what a server answered, safely: `Retry-After`, `x-request-id`, a
//! body read up to a limit, and a summary of an error body that never quotes
//! the body itself.

use std::time::{Duration, SystemTime};

use reqwest::Response;
use reqwest::header::{HeaderMap, RETRY_AFTER};

use crate::Error;
use crate::error::server_text;

/// `Retry-After` as seconds or as an HTTP date (RFC 9110 §10.2.3); a date in
/// the past means "now". A value that is neither is ignored (`None`; the
/// SDK's own calls then back off by their policy). Seconds beyond `u64` are
/// the longest wait there is, not an unreadable value: the server asked not
/// to be called again soon. Every [`crate::Error::retry_after`] was read
/// here.
///
/// ```
/// # use std::time::Duration;
/// let mut headers = reqwest::header::HeaderMap::new();
/// headers.insert("retry-after", "120".parse().unwrap());
/// assert_eq!(dynata_sdk::retry_after(&headers), Some(Duration::from_secs(120)));
/// headers.insert("retry-after", "soon".parse().unwrap());
/// assert_eq!(dynata_sdk::retry_after(&headers), None);
/// ```
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    // Digits only: `u64::from_str` would also take a leading `+`, which
    // RFC 9110's `delay-seconds = 1*DIGIT` does not.
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        let seconds = value.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(seconds));
    }
    // A date is the server's wall clock, so it is read against ours: the one
    // place the client looks at the wall clock.
    let date = crate::http_date::parse(value)?;
    Some(
        date.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// The `x-request-id` header of an answer, to quote to Dynata's support, if
/// it looks like an id: at most 64 letters, digits and `-_.:`, and not
/// shaped like a JWT (`eyJ…`, or three dotted parts). Anything else could
/// be a proxy echoing a header (the bearer token), so it is dropped rather
/// than shown. (Every [`crate::Error`] that has a request id got it here.)
///
/// ```
/// let mut headers = reqwest::header::HeaderMap::new();
/// headers.insert("x-request-id", "req-9".parse().unwrap());
/// assert_eq!(dynata_sdk::request_id(&headers).as_deref(), Some("req-9"));
/// headers.insert("x-request-id", "Bearer eyJhbGciOiJIUzI1NiJ9.e30.c2ln".parse().unwrap());
/// assert_eq!(dynata_sdk::request_id(&headers), None);
/// ```
pub fn request_id(headers: &HeaderMap) -> Option<String> {
    crate::error::server_id(headers.get("x-request-id")?.to_str().ok()?, 64)
}

pub(crate) fn looks_like_html(body: &[u8]) -> bool {
    body.trim_ascii_start().first() == Some(&b'<')
}

/// What was wrong with a JSON body, without quoting it: serde's messages can
/// include the values they choked on, and those may be tokens.
pub(crate) fn describe_json_error(error: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let what = match error.classify() {
        Category::Eof if error.line() == 1 && error.column() == 0 => "the body is empty".into(),
        Category::Eof => "the JSON is truncated".into(),
        Category::Syntax => "the body is not valid JSON".into(),
        Category::Data => data_error(error),
        Category::Io => "the body could not be read".into(),
    };
    // Line 0: decoded from a value already parsed, where no position is kept.
    if error.line() == 0 {
        return what;
    }
    format!("{what} (line {}, column {})", error.line(), error.column())
}

/// What serde says of data of the wrong shape, keeping only what comes from
/// the SDK's own types (a field's name, what was expected), never the value
/// the server sent. serde puts that value before what it expected
/// ("invalid type: string \"…\", expected u32"), and the value may hold
/// anything, ", expected" and " at line" included: so the position serde
/// appends is cut off exactly, and only what follows the last ", expected"
/// of one of serde's own messages is kept.
fn data_error(error: &serde_json::Error) -> String {
    const GENERIC: &str = "a field is missing, or has the wrong type or value";
    let message = error.to_string();
    let position = format!(" at line {} column {}", error.line(), error.column());
    let message = match error.line() {
        0 => message.as_str(),
        _ => match message.strip_suffix(&position) {
            Some(message) => message,
            None => return GENERIC.into(),
        },
    };
    let named = |prefix: &str| {
        let name = message.strip_prefix(prefix)?.strip_suffix('`')?;
        is_identifier(name).then_some(name)
    };
    if let Some(field) = named("missing field `") {
        return format!("the field `{field}` is missing");
    }
    if let Some(field) = named("duplicate field `") {
        return format!("the field `{field}` appears twice");
    }
    let serdes_own = [
        "invalid type: ",
        "invalid value: ",
        "unknown variant `",
        "invalid length ",
    ]
    .iter()
    .any(|prefix| message.starts_with(prefix));
    match message.rsplit_once(", expected ") {
        Some((_, expected)) if serdes_own => {
            format!("a value has the wrong type or value (expected {expected})")
        }
        _ => GENERIC.into(),
    }
}

/// A name as the SDK's types have them, and nothing a server could slip in.
fn is_identifier(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A short summary of an error body that is safe to show: the error fields of
/// a JSON body or the title of an HTML page, each only if [`server_text`]
/// keeps it. Plain text is never quoted: a proxy that echoes the request
/// would put the password into the error.
pub(crate) fn summarize(body: &[u8]) -> String {
    if body.iter().all(u8::is_ascii_whitespace) {
        return "(empty body)".into();
    }
    if let Ok(serde_json::Value::Object(fields)) = serde_json::from_slice(body) {
        let present: Vec<&str> = ["error", "errorDescription", "message"]
            .iter()
            .filter_map(|key| fields.get(*key)?.as_str())
            .collect();
        if present.is_empty() {
            return "(a JSON body without error fields)".into();
        }
        let kept: Vec<String> = present.iter().filter_map(|s| server_text(s)).collect();
        if kept.is_empty() {
            return "(a JSON error whose message is withheld: it may echo the request)".into();
        }
        return kept.join(": ");
    }
    if looks_like_html(body) {
        let text = String::from_utf8_lossy(body);
        let title = text.to_ascii_lowercase().find("<title>").and_then(|start| {
            let rest = text.get(start + 7..)?;
            rest.find('<').and_then(|end| server_text(&rest[..end]))
        });
        return match title {
            Some(title) => format!("an HTML page: {title}"),
            None => "an HTML page".into(),
        };
    }
    format!(
        "a {}-byte body that is neither JSON nor HTML (not shown: it may echo the request)",
        body.len()
    )
}

/// The body, or an error if it is larger than `limit`: a misbehaving server
/// must not exhaust the caller's memory.
pub(crate) async fn read_at_most(mut response: Response, limit: usize) -> Result<Vec<u8>, Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(Error::transport)? {
        if body.len() + chunk.len() > limit {
            return Err(Error::decode(format!(
                "the response body is over {limit} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
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
    }

    #[test]
    fn summaries_never_quote_an_echoed_request() {
        let echoes: [&[u8]; 4] = [
            b"POST /auth/v1/token/password password=correct horse battery staple",
            br#"{"message":"{\"password\":\"correct horse battery staple\"}"}"#,
            br#"{"message":"bad token eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl"}"#,
            b"<html><title>password=correct horse battery staple</title></html>",
        ];
        for echo in echoes {
            let summary = summarize(echo);
            assert!(
                !summary.contains("horse") && !summary.contains("eyJ"),
                "{summary}"
            );
        }
    }

    #[test]
    fn json_errors_are_described_without_their_values() {
        let error = serde_json::from_str::<Vec<u32>>(r#"["eyJ.secret"]"#).expect_err("wrong type");
        let described = describe_json_error(&error);
        assert!(!described.contains("eyJ.secret"), "{described}");
        let missing = serde_json::from_str::<std::collections::HashMap<String, u32>>(
            r#"{"a": "eyJ.secret"}"#,
        )
        .expect_err("wrong type");
        assert!(!describe_json_error(&missing).contains("eyJ"));
        let empty = serde_json::from_str::<u32>("").expect_err("empty");
        assert!(describe_json_error(&empty).contains("empty"));
    }

    /// The field or the type expected, from the SDK's own types, which a
    /// user needs when Dynata's answers differ from the spec.
    #[test]
    fn json_errors_name_the_field_or_what_was_expected() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Project {
            #[serde(rename = "extProjectId")]
            ext_project_id: String,
            title: String,
        }
        let missing =
            serde_json::from_str::<Project>(r#"{"extProjectId": "p1"}"#).expect_err("no title");
        assert_eq!(
            describe_json_error(&missing),
            "the field `title` is missing (line 1, column 22)"
        );
        let wrong = serde_json::from_str::<Project>(r#"{"extProjectId": 7, "title": "t"}"#)
            .expect_err("a number");
        let described = describe_json_error(&wrong);
        assert!(described.contains("(expected a string)"), "{described}");
        // A value shaped like the rest of serde's message is still never
        // quoted (found by review).
        let secret = "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0LXBheWxvYWQ.c2lnbmF0dXJl";
        for body in [
            format!(r#"["x, expected {secret} at line 1"]"#),
            format!(r#"["x, expected {secret}"]"#),
        ] {
            let error = serde_json::from_str::<Vec<u32>>(&body).expect_err("wrong type");
            let described = describe_json_error(&error);
            assert!(!described.contains("eyJ"), "{described}");
            assert!(described.contains("(expected u32)"), "{described}");
        }
        // From a value already parsed: no position to give.
        let value = serde_json::json!({"extProjectId": "p1"});
        let from_value = serde_json::from_value::<Project>(value).expect_err("no title");
        assert_eq!(
            describe_json_error(&from_value),
            "the field `title` is missing"
        );
    }

    fn headers(name: &'static str, value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(name, value.parse().expect("valid header"));
        headers
    }

    fn retry_after_of(value: &str) -> Option<Duration> {
        retry_after(&headers("retry-after", value))
    }

    #[test]
    fn retry_after_reads_seconds() {
        assert_eq!(retry_after_of("7"), Some(Duration::from_secs(7)));
        assert_eq!(retry_after_of(" 0 "), Some(Duration::ZERO));
        assert_eq!(retry_after_of("soon"), None);
        assert_eq!(retry_after_of("-3"), None);
        assert_eq!(retry_after_of("+3"), None);
        assert_eq!(retry_after(&HeaderMap::new()), None);
        // Beyond u64: the longest wait, never "no wait asked for".
        assert_eq!(
            retry_after_of("18446744073709551616"),
            Some(Duration::from_secs(u64::MAX))
        );
        assert_eq!(
            retry_after_of(&"9".repeat(400)),
            Some(Duration::from_secs(u64::MAX))
        );
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

    #[test]
    fn request_ids_are_kept_only_when_they_look_like_ids() {
        let id = |value: &str| request_id(&headers("x-request-id", value));
        assert_eq!(id("req-42").as_deref(), Some("req-42"));
        assert_eq!(
            id("3f2c1a9e-0b7d-4c55-9f1e-2a6b8c0d4e11").as_deref(),
            Some("3f2c1a9e-0b7d-4c55-9f1e-2a6b8c0d4e11")
        );
        assert_eq!(id("Bearer eyJhbGciOi"), None);
        assert_eq!(id("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln"), None);
        assert_eq!(id("abcdefgh.ijklmnop.qrstuvwx"), None, "three dotted parts");
        assert_eq!(id(&"a".repeat(200)), None);
    }
}
