//! Property tests of the SDK's own readers of server bytes: `Retry-After`
//! (seconds and HTTP dates, huge and negative), `x-request-id`, the summary
//! of an error body, the filter on server text, and the description of a
//! JSON error; and of a store's rejected-login record, which another process
//! (or anyone who can write the store) wrote. No panic, and nothing
//! token-like from the input in the output.
//!
//! A few hundred cases each under `cargo test`; `cargo xtask fuzz` sets
//! `DYNATA_FUZZ` for the long run and adds up the `proptest-cases` lines.
//! (The `/sample/v1` envelope is decoded from a real response, so its
//! properties run over loopback in `tests/tests/props/sdk.rs`.)

use std::time::{Duration, SystemTime};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use reqwest::header::{HeaderMap, HeaderValue};

use crate::error::server_text;
use crate::response::{describe_json_error, request_id, retry_after, summarize};
use crate::store::rejection::Record;

/// Runs `test` `ci_cases` times, or `fuzz_cases` times with `DYNATA_FUZZ`
/// set, and prints the count for `cargo xtask fuzz`. (The same harness as
/// `tests/tests/props/main.rs`; a crate of its own would cost more.)
fn check<S: Strategy>(
    name: &str,
    ci_cases: u32,
    fuzz_cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    let fuzz = std::env::var_os("DYNATA_FUZZ").is_some();
    let mut runner = TestRunner::new(Config {
        cases: if fuzz { fuzz_cases } else { ci_cases },
        failure_persistence: None,
        ..Config::default()
    });
    let ran = std::cell::Cell::new(0u64);
    let result = runner.run(&strategy, |value| {
        ran.set(ran.get() + 1);
        test(value)
    });
    println!("proptest-cases {name} {}", ran.get());
    if let Err(failure) = result {
        panic!("{name}: {failure}");
    }
}

/// A JWT-shaped token: what must never be quoted back.
fn secret() -> impl Strategy<Value = String> {
    "eyJ[A-Za-z0-9_-]{20,40}\\.[A-Za-z0-9_-]{8,20}\\.[A-Za-z0-9_-]{8,20}"
}

fn assert_no_secret(what: &str, text: &str, secrets: &[String]) -> Result<(), TestCaseError> {
    for secret in secrets {
        let leaked = secret
            .as_bytes()
            .windows(20.min(secret.len()))
            .any(|run| text.as_bytes().windows(run.len()).any(|w| w == run));
        prop_assert!(!leaked, "{what} quotes {secret:?}: {text}");
    }
    Ok(())
}

fn header(name: &'static str, value: &[u8]) -> Option<HeaderMap> {
    let value = HeaderValue::from_bytes(value).ok()?;
    let mut headers = HeaderMap::new();
    headers.insert(name, value);
    Some(headers)
}

/// What a `Retry-After` header can hold: seconds of any size or sign, with
/// spaces or leading zeros, HTTP dates from 1970 to 9999 in the three formats
/// of RFC 9110, and any other visible text.
fn retry_after_value() -> impl Strategy<Value = String> {
    let date = (0u64..253_402_300_799, 0usize..3).prop_map(|(seconds, format)| {
        let date = SystemTime::UNIX_EPOCH + Duration::from_secs(seconds);
        let imf = httpdate::fmt_http_date(date);
        match format {
            0 => imf,
            // RFC 850 and asctime, which RFC 9110 says recipients accept.
            1 => {
                let parts: Vec<&str> = imf.split(' ').collect();
                format!(
                    "{}, {}-{}-{} {} GMT",
                    long_day(parts[0]),
                    parts[1],
                    parts[2],
                    &parts[3][2..],
                    parts[4]
                )
            }
            _ => {
                let parts: Vec<&str> = imf.split(' ').collect();
                let day = parts[1].trim_start_matches('0');
                format!(
                    "{} {} {:>2} {} {}",
                    &parts[0][..3],
                    parts[2],
                    day,
                    parts[4],
                    parts[3]
                )
            }
        }
    });
    prop_oneof![
        any::<u64>().prop_map(|n| n.to_string()),
        any::<i128>().prop_map(|n| n.to_string()),
        "[0-9]{20,40}",
        (" {0,3}", "0{0,5}[0-9]{1,5}", " {0,3}").prop_map(|(a, n, b)| format!("{a}{n}{b}")),
        date,
        "[ -~]{0,60}",
    ]
}

fn long_day(short: &str) -> &'static str {
    match short.trim_end_matches(',') {
        "Mon" => "Monday",
        "Tue" => "Tuesday",
        "Wed" => "Wednesday",
        "Thu" => "Thursday",
        "Fri" => "Friday",
        "Sat" => "Saturday",
        _ => "Sunday",
    }
}

#[test]
fn retry_after_reads_seconds_and_dates_of_any_size_and_nothing_else() {
    check(
        "sdk::retry_after",
        512,
        250_000,
        retry_after_value(),
        |value| {
            let Some(headers) = header("retry-after", value.as_bytes()) else {
                return Ok(());
            };
            let before = SystemTime::now();
            let wait = retry_after(&headers);
            let trimmed = value.trim();
            let digits = !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit());
            if digits {
                // More seconds than a u64 holds is the longest wait there is.
                let seconds = trimmed.parse::<u64>().unwrap_or(u64::MAX);
                prop_assert_eq!(wait, Some(Duration::from_secs(seconds)));
            } else if trimmed.starts_with(['-', '+']) {
                // Signed: not `delay-seconds`, so not a wait.
                prop_assert_eq!(wait, None);
            } else if let Ok(date) = httpdate::parse_http_date(trimmed) {
                // Against the wall clock: never more than the date is ahead of
                // the clock as read before the call, zero for a date past.
                let ahead = date.duration_since(before).unwrap_or(Duration::ZERO);
                prop_assert!(wait.is_some_and(|w| w <= ahead), "{value}: {wait:?}");
            } else {
                prop_assert_eq!(wait, None, "{}", value);
            }
            Ok(())
        },
    );
}

#[test]
fn request_ids_are_kept_exactly_or_dropped() {
    let value = prop_oneof![
        "[A-Za-z0-9_.:-]{0,80}".prop_map(String::into_bytes),
        proptest::collection::vec(any::<u8>(), 0..100),
        secret().prop_map(|s| format!("Bearer {s}").into_bytes()),
    ];
    check("sdk::request_id", 512, 200_000, value, |value| {
        let Some(headers) = header("x-request-id", &value) else {
            return Ok(());
        };
        if let Some(id) = request_id(&headers) {
            let sent = std::str::from_utf8(&value).expect("kept, so it is text");
            prop_assert_eq!(id.as_str(), sent.trim());
            prop_assert!(!id.is_empty() && id.len() <= 64);
            prop_assert!(
                id.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
            );
        }
        Ok(())
    });
}

/// Any text a server might put into an error field, secrets included.
fn server_string() -> impl Strategy<Value = (String, Vec<String>)> {
    (secret(), ".{0,40}", ".{0,40}", 0usize..4).prop_map(|(secret, before, after, shape)| {
        let text = match shape {
            0 => format!("{before}{secret}{after}"),
            1 => format!("invalid token {secret}"),
            2 => format!("{before} {after}"),
            _ => format!("password={secret}&username=alice"),
        };
        (text, vec![secret])
    })
}

#[test]
fn server_text_keeps_short_plain_sentences_and_never_a_token() {
    check(
        "sdk::server_text",
        512,
        200_000,
        server_string(),
        |(text, secrets)| {
            if let Some(kept) = server_text(&text) {
                assert_no_secret("server_text", &kept, &secrets)?;
                prop_assert_eq!(kept.as_str(), text.trim());
                prop_assert!(kept.chars().count() <= 200);
                prop_assert!(
                    kept.split_whitespace()
                        .all(|word| word.chars().count() <= 24 || !word.contains("eyJ"))
                );
            }
            Ok(())
        },
    );
}

/// An error body: Dynata's JSON, a gateway's page, plain text, or random
/// bytes, with secrets in every place text goes.
fn error_body() -> impl Strategy<Value = (Vec<u8>, Vec<String>)> {
    (
        server_string(),
        server_string(),
        0usize..5,
        proptest::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(|((a, mut secrets), (b, more), shape, random)| {
            secrets.extend(more);
            let body = match shape {
                0 => serde_json::json!({ "error": a, "errorDescription": b })
                    .to_string()
                    .into_bytes(),
                1 => serde_json::json!({ "message": a, "accessToken": b })
                    .to_string()
                    .into_bytes(),
                2 => format!("<html><head><title>{a}</title></head><body>{b}</body></html>")
                    .into_bytes(),
                3 => format!("{a}\n{b}").into_bytes(),
                _ => random,
            };
            (body, secrets)
        })
}

#[test]
fn an_error_summary_never_quotes_a_token_and_stays_short() {
    check(
        "sdk::summarize",
        512,
        250_000,
        error_body(),
        |(body, secrets)| {
            let summary = summarize(&body);
            assert_no_secret("the summary", &summary, &secrets)?;
            // At most three kept fields of 200 characters and their separators.
            prop_assert!(
                summary.chars().count() <= 3 * 200 + 100,
                "{}",
                summary.len()
            );
            Ok(())
        },
    );
}

#[test]
fn a_json_error_is_described_without_the_values_it_choked_on() {
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Pair {
        #[serde(rename = "expiresIn")]
        expires_in: i64,
        #[serde(rename = "accessToken")]
        access_token: String,
    }
    let body = (secret(), 0usize..6).prop_map(|(secret, shape)| {
        let body = match shape {
            0 => format!(r#"{{"expiresIn":"{secret}","accessToken":"x"}}"#),
            1 => format!(r#"{{"expiresIn":1,"accessToken":["{secret}"]}}"#),
            2 => format!(r#"{{"expiresIn":1,"accessToken":"{secret}""#),
            // Shaped like serde's own message around the value.
            3 => format!(r#"{{"expiresIn":"x, expected {secret} at line 1","accessToken":"a"}}"#),
            4 => format!(r#"{{"expiresIn":"x, expected {secret}","accessToken":"a"}}"#),
            _ => format!(r#"{{"{secret}":1}}"#),
        };
        (body, vec![secret])
    });
    check(
        "sdk::describe_json_error",
        512,
        100_000,
        body,
        |(body, secrets)| {
            if let Err(error) = serde_json::from_str::<Pair>(&body) {
                assert_no_secret("the description", &describe_json_error(&error), &secrets)?;
            }
            Ok(())
        },
    );
}

/// A rejected-login record as the store may hold it: this build's shape with
/// any values, or any bytes at all.
fn rejection_record() -> impl Strategy<Value = Vec<u8>> {
    // Mostly well-formed hexadecimal, sometimes with a sign in it.
    let hex = |len| {
        prop_oneof![
            3 => proptest::string::string_regex(&format!("[0-9a-f]{{{len}}}")).unwrap(),
            1 => proptest::string::string_regex(&format!("[0-9a-fA-F+-]{{{len}}}")).unwrap(),
        ]
    };
    let shaped = (
        prop_oneof![Just(1u8), any::<u8>()],
        any::<u64>(),
        prop_oneof![400u16..500, any::<u16>()],
        proptest::option::of(".{0,80}"),
        prop_oneof![any::<u32>(), 99_000u32..10_000_100],
        prop_oneof![hex(32), ".{0,40}"],
        prop_oneof![hex(64), ".{0,80}"],
    )
        .prop_map(|(version, until, status, error, iterations, salt, hash)| {
            serde_json::json!({
                "version": version, "until": until, "status": status, "error": error,
                "iterations": iterations, "salt": salt, "hash": hash,
            })
            .to_string()
            .into_bytes()
        });
    // And records that decode, so that every run checks what a decoded one
    // may claim: the two above decode about once in a hundred cases, and a
    // run of 512 once had none.
    let decodable = (
        any::<u64>(),
        400u16..500,
        proptest::option::of(prop_oneof!["[a-z_]{1,30}", ".{0,80}"]),
        crate::store::rejection::MIN_ITERATIONS..=crate::store::rejection::MAX_ITERATIONS,
        hex(32),
        hex(64),
    )
        .prop_map(|(until, status, error, iterations, salt, hash)| {
            serde_json::json!({
                "version": 1, "until": until, "status": status, "error": error,
                "iterations": iterations, "salt": salt, "hash": hash,
            })
            .to_string()
            .into_bytes()
        });
    prop_oneof![
        shaped,
        decodable,
        proptest::collection::vec(any::<u8>(), 0..300)
    ]
}

#[test]
fn a_rejected_login_record_from_the_store_is_read_or_refused_never_trusted_blindly() {
    let decoded = std::cell::Cell::new(0u32);
    check(
        "sdk::rejection_record",
        512,
        200_000,
        (rejection_record(), any::<u64>()),
        |(bytes, now)| {
            let Some(record) = Record::decode(&bytes) else {
                return Ok(());
            };
            decoded.set(decoded.get() + 1);
            let now = SystemTime::UNIX_EPOCH + Duration::from_millis(now);
            if let Some(rejection) = record.in_force(now) {
                prop_assert!(rejection.until > now);
                prop_assert!(
                    (400..500).contains(&rejection.status),
                    "{}",
                    rejection.status
                );
                let longest = crate::store::LONGEST_KEPT + crate::store::CLOCKS_DIFFER_BY;
                prop_assert!(rejection.until <= now + longest);
                if let Some(code) = &rejection.error {
                    prop_assert!(crate::store::is_error_code(code), "{code:?}");
                }
            }
            Ok(())
        },
    );
    // The strategy reaches records that decode, not only refusals.
    assert!(decoded.get() > 0, "no generated record decoded");
}

/// A body a typed call could not decode: Dynata's envelope refusing (with
/// codes as strings or numbers, fields missing, secrets in every text), a
/// success, a gateway's JSON, or any bytes.
#[cfg(feature = "demand")]
fn undecodable_body() -> impl Strategy<Value = (Vec<u8>, Vec<String>)> {
    (
        server_string(),
        server_string(),
        prop_oneof![
            Just("fail".to_string()),
            Just("FAIL".to_string()),
            Just("success".to_string()),
            ".{0,8}"
        ],
        0usize..6,
        proptest::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(|((a, mut secrets), (b, more), message, shape, random)| {
            secrets.extend(more);
            let body = match shape {
                0 => serde_json::json!({"data": null, "status": {"message": message, "errors": [{"code": a, "message": b}]}}),
                1 => serde_json::json!({"status": {"message": message, "errors": [{"code": 2001, "resource": {"type": a, "id": 7}}, b]}}),
                2 => serde_json::json!({"data": {"accessToken": a}, "status": {"message": message, "errors": null}}),
                3 => serde_json::json!({"message": a, "status": b}),
                4 => serde_json::json!([a, b]),
                _ => return (random, secrets),
            };
            (body.to_string().into_bytes(), secrets)
        })
}

#[cfg(feature = "demand")]
#[test]
fn a_refusal_is_read_from_any_body_without_quoting_a_token() {
    use crate::sample::refusal_in;
    let refused = std::cell::Cell::new(0u32);
    check(
        "sdk::refusal_in",
        512,
        200_000,
        (
            undecodable_body(),
            prop_oneof![Just(200u16), Just(409), Just(429), Just(504)],
        ),
        |((body, secrets), status)| {
            let error_status = status >= 400;
            let Some(errors) = refusal_in(&body, error_status) else {
                return Ok(());
            };
            refused.set(refused.get() + 1);
            let error = crate::Error::refused(status, errors, None, None);
            assert_no_secret("the refusal", &format!("{error} {error:?}"), &secrets)?;
            prop_assert_eq!(error.status(), Some(status));
            Ok(())
        },
    );
    assert!(refused.get() > 0, "no generated body was a refusal");
}
