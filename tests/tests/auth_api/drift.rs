//! The generated types against the spec's component schemas (see
//! `dynata_tests::schema_drift` for what must agree).

use dynata_tests::schema_drift::{assert_agrees, generated_schema, spec_schemas, summarize};

use super::types;

fn spec() -> serde_json::Map<String, serde_json::Value> {
    spec_schemas("dynata-auth.yaml")
}

#[test]
fn request_and_response_types_agree_with_the_spec() {
    let spec = spec();
    assert_agrees::<types::PasswordLoginRequest>(&spec, "PasswordLoginRequest");
    assert_agrees::<types::RefreshRequest>(&spec, "RefreshRequest");
    assert_agrees::<types::LogoutRequest>(&spec, "LogoutRequest");
    assert_agrees::<types::CodeExchangeRequest>(&spec, "CodeExchangeRequest");
    assert_agrees::<types::TokenPair>(&spec, "TokenPair");
    assert_agrees::<types::AuthError>(&spec, "AuthError");
    assert_agrees::<dynata_auth_api::Secret>(&spec, "Secret");
}

#[test]
fn every_component_schema_is_checked() {
    let checked = [
        "PasswordLoginRequest",
        "RefreshRequest",
        "LogoutRequest",
        "CodeExchangeRequest",
        "TokenPair",
        "AuthError",
        "Secret",
    ];
    let mut in_spec: Vec<String> = spec().keys().cloned().collect();
    in_spec.sort();
    let mut checked: Vec<String> = checked.iter().map(|s| s.to_string()).collect();
    checked.sort();
    assert_eq!(
        in_spec, checked,
        "a component schema was added or removed: check it above"
    );
}

#[test]
fn the_summary_notices_a_difference() {
    // Guards the checker itself: a renamed property and a dropped requirement
    // must make two schemas disagree.
    let spec = spec();
    let mut edited = spec["TokenPair"].clone();
    let properties = edited["properties"].as_object_mut().expect("properties");
    let value = properties.remove("expiresIn").expect("expiresIn");
    properties.insert("expires_in".into(), value);
    assert_ne!(summarize(&edited), summarize(&spec["TokenPair"]));
    assert_ne!(
        summarize(&generated_schema::<types::TokenPair>()),
        summarize(&edited)
    );
}
