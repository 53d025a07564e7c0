//! The auth API's bodies as `dynata-auth-api`'s types decode them: the token
//! pair and the error body, from well-formed, mistyped, damaged and random
//! bytes.

use dynata_auth_api::types::{AuthError, TokenPair};
use proptest::prelude::*;
use serde_json::{Map, Value};

use super::*;

/// A token-pair body as a server might send it: each field present or not,
/// of the right type or any other, the tokens secrets, then maybe damaged.
fn token_pair_body() -> impl Strategy<Value = (Vec<u8>, Vec<String>)> {
    (secret(), secret())
        .prop_flat_map(|(access, refresh)| {
            let secrets = vec![access.clone(), refresh.clone()];
            let token = |value: String| {
                prop_oneof![3 => Just(Value::String(value)), 1 => json_value(secrets.clone())]
            };
            let seconds = || {
                prop_oneof![3 => any::<i64>().prop_map(Value::from), 1 => json_value(secrets.clone())]
            };
            (
                maybe(token(access)),
                maybe(token(refresh)),
                maybe(seconds()),
                maybe(seconds()),
                proptest::collection::btree_map(".{0,8}", json_value(secrets.clone()), 0..3),
                Just(secrets),
            )
        })
        .prop_flat_map(|(access, refresh, expires, refresh_expires, extra, secrets)| {
            let mut object: Map<String, Value> = extra.into_iter().collect();
            for (key, value) in [
                ("accessToken", access),
                ("refreshToken", refresh),
                ("expiresIn", expires),
                ("refreshExpiresIn", refresh_expires),
            ] {
                if let Some(value) = value {
                    object.insert(key.into(), value);
                }
            }
            let body = serde_json::to_vec(&Value::Object(object)).expect("serializes");
            (damaged(body), Just(secrets))
        })
}

#[test]
fn a_token_pair_decodes_or_fails_without_panicking_and_its_debug_hides_the_tokens() {
    check(
        "auth_api::token_pair",
        256,
        350_000,
        token_pair_body(),
        |(body, secrets)| {
            if let Ok(pair) = serde_json::from_slice::<TokenPair>(&body) {
                assert_no_secret("a decoded pair's Debug", &format!("{pair:?}"), &secrets)?;
                assert_no_secret("a decoded pair's Debug", &format!("{pair:#?}"), &secrets)?;
                // What was decoded is what was sent, not a mangled copy.
                // serde_json skips a field the type does not know without checking
                // its escapes (a lone surrogate), so a typed decode can accept what
                // `Value` refuses; only bodies both accept are compared.
                let Ok(sent) = serde_json::from_slice::<Value>(&body) else {
                    return Ok(());
                };
                prop_assert_eq!(
                    Some(pair.access_token.expose_secret()),
                    sent["accessToken"].as_str()
                );
                prop_assert_eq!(
                    Some(pair.refresh_token.expose_secret()),
                    sent["refreshToken"].as_str()
                );
                prop_assert_eq!(Some(pair.expires_in), sent["expiresIn"].as_i64());
            }
            Ok(())
        },
    );
}

/// An error body in Dynata's shape (`error`, `errorDescription`) or a
/// gateway's (`message`), with any values, then maybe damaged.
fn auth_error_body() -> impl Strategy<Value = Vec<u8>> {
    let text =
        || prop_oneof![3 => ".{0,40}".prop_map(Value::String), 1 => json_value(vec!["x".into()])];
    (
        proptest::option::of(text()),
        proptest::option::of(text()),
        proptest::option::of(text()),
    )
        .prop_flat_map(|(error, description, message)| {
            let mut object = Map::new();
            for (key, value) in [
                ("error", error),
                ("errorDescription", description),
                ("message", message),
            ] {
                if let Some(value) = value {
                    object.insert(key.into(), value);
                }
            }
            damaged(serde_json::to_vec(&Value::Object(object)).expect("serializes"))
        })
}

#[test]
fn an_error_body_decodes_its_text_fields_exactly_or_fails_without_panicking() {
    check(
        "auth_api::auth_error",
        256,
        350_000,
        auth_error_body(),
        |body| {
            if let Ok(decoded) = serde_json::from_slice::<AuthError>(&body) {
                // As above: `Value` refuses some bodies the typed decode accepts.
                let Ok(sent) = serde_json::from_slice::<Value>(&body) else {
                    return Ok(());
                };
                prop_assert_eq!(decoded.error.as_deref(), sent["error"].as_str());
                prop_assert_eq!(
                    decoded.error_description.as_deref(),
                    sent["errorDescription"].as_str()
                );
                prop_assert_eq!(decoded.message.as_deref(), sent["message"].as_str());
            }
            Ok(())
        },
    );
}

/// JSON nested far deeper than any answer: serde_json's recursion limit
/// must turn it into an error before it exhausts the stack.
fn deeply_nested() -> impl Strategy<Value = Vec<u8>> {
    (1usize..50_000, any::<bool>()).prop_map(|(depth, arrays)| {
        if arrays {
            b"[".repeat(depth)
        } else {
            b"{\"a\":".repeat(depth)
        }
    })
}

#[test]
fn deeply_nested_json_is_an_error_not_a_stack_overflow() {
    check(
        "auth_api::deeply_nested",
        64,
        50_000,
        deeply_nested(),
        |body| {
            prop_assert!(serde_json::from_slice::<TokenPair>(&body).is_err());
            prop_assert!(serde_json::from_slice::<AuthError>(&body).is_err());
            Ok(())
        },
    );
}

#[test]
fn random_bytes_decode_only_when_they_are_json() {
    check(
        "auth_api::random_bytes",
        256,
        300_000,
        proptest::collection::vec(any::<u8>(), 0..512),
        |body| {
            // Whatever decodes is well-formed JSON text, at least as far as skipping
            // it goes (`Value` checks more: escapes in fields a type ignores).
            let is_json = serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_ok();
            if serde_json::from_slice::<TokenPair>(&body).is_ok() {
                prop_assert!(is_json);
            }
            if serde_json::from_slice::<AuthError>(&body).is_ok() {
                prop_assert!(is_json);
            }
            Ok(())
        },
    );
}
