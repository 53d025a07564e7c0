//! Property tests of everything that decodes bytes from the other side of a
//! connection: the auth API's token pair and error body, what the SDK makes of
//! any login answer, the Demand API's free-form end links, and the sandbox's parsing of requests.
//!
//! The properties: no panic, no hang, and nothing that looks like a secret
//! echoed into an error's `Display` or `Debug` (or, for the sandbox, into its
//! answer). Each property runs a few cases under `cargo test` (seconds in all);
//! `cargo xtask fuzz` runs them with `DYNATA_FUZZ=1`, at least a million cases
//! in all, and adds up the `proptest-cases` lines each property prints.

mod auth_api;
mod sample_api;
mod sandbox;
mod sdk;

use std::sync::atomic::{AtomicU64, Ordering};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// Runs `test` over `strategy`: `ci_cases` times under `cargo test`,
/// `fuzz_cases` times when `DYNATA_FUZZ` is set (by `cargo xtask fuzz`).
/// Prints how many cases ran, for the xtask's total.
fn check<S: Strategy>(
    name: &str,
    ci_cases: u32,
    fuzz_cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    let cases = if std::env::var_os("DYNATA_FUZZ").is_some() {
        fuzz_cases
    } else {
        ci_cases
    };
    let ran = AtomicU64::new(0);
    let mut runner = TestRunner::new(Config {
        cases,
        // A failure prints its shrunk input; nothing is written to disk.
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&strategy, |value| {
        ran.fetch_add(1, Ordering::Relaxed);
        test(value)
    });
    println!("proptest-cases {name} {}", ran.load(Ordering::Relaxed));
    if let Err(failure) = result {
        panic!("{name}: {failure}");
    }
}

/// A value that looks like a secret: a JWT-shaped access or refresh token.
/// Long and random enough that finding it in an error means it was copied
/// there, not made up.
fn secret() -> impl Strategy<Value = String> {
    "eyJ[A-Za-z0-9_-]{20,40}\\.[A-Za-z0-9_-]{8,20}\\.[A-Za-z0-9_-]{8,20}"
}

/// Fails the case when `text` (an error's `Display` or `Debug`, or an answer)
/// contains any of `secrets`, or any run of 20 characters from one.
fn assert_no_secret(what: &str, text: &str, secrets: &[String]) -> Result<(), TestCaseError> {
    for secret in secrets {
        let leaked = secret
            .as_bytes()
            .windows(20.min(secret.len()))
            .any(|run| text.as_bytes().windows(run.len()).any(|w| w == run));
        prop_assert!(!leaked, "{what} quotes the secret {secret:?}: {text}");
    }
    Ok(())
}

/// Any JSON value, nested a few levels, whose strings are sometimes secrets.
fn json_value(secrets: Vec<String>) -> BoxedStrategy<serde_json::Value> {
    use serde_json::Value;
    let string = prop_oneof![
        3 => ".{0,12}",
        1 => proptest::sample::select(secrets),
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        string.prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(".{0,8}", inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
    .boxed()
}

/// `value`, or (one time in ten) nothing: a field left out.
fn maybe<S: Strategy>(value: S) -> impl Strategy<Value = Option<S::Value>> {
    proptest::option::weighted(0.9, value)
}

/// How a body that was meant to be JSON arrives damaged: whole, cut short,
/// with bytes flipped, or with bytes added at the end.
fn damaged(body: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let len = body.len();
    prop_oneof![
        2 => Just(body.clone()),
        1 => (0..=len).prop_map({
            let body = body.clone();
            move |cut| body[..cut].to_vec()
        }),
        1 => proptest::collection::vec((0..len.max(1), any::<u8>()), 1..4).prop_map({
            let body = body.clone();
            move |flips| {
                let mut body = body.clone();
                for (at, byte) in flips {
                    if let Some(slot) = body.get_mut(at) {
                        *slot = byte;
                    }
                }
                body
            }
        }),
        1 => proptest::collection::vec(any::<u8>(), 1..16).prop_map(move |tail| {
            let mut body = body.clone();
            body.extend(tail);
            body
        }),
    ]
}
