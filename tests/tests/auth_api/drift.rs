//! The generated types against the spec's component schemas: property names,
//! required sets and property types must agree, so that a hand edit on either
//! side (or a generator upgrade that changes the mapping) is caught.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde_json::Value;

use super::types;

/// The spec's `components.schemas`, read from the committed YAML.
fn spec_schemas() -> serde_json::Map<String, Value> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi/dynata-auth.yaml");
    let text = std::fs::read_to_string(path).expect("the spec is readable");
    let spec: Value = serde_norway::from_str(&text).expect("the spec is YAML");
    spec["components"]["schemas"]
        .as_object()
        .expect("components.schemas")
        .clone()
}

/// The JSON Schema schemars derives for a generated type.
fn generated_schema<T: JsonSchema>() -> Value {
    let generator = schemars::r#gen::SchemaSettings::openapi3().into_generator();
    serde_json::to_value(generator.into_root_schema_for::<T>()).expect("schema serializes")
}

/// A schema reduced to what must agree: `ref:Name`, or the type and format,
/// with the nullability schemars adds for `Option` removed.
fn shape(schema: &Value) -> String {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        return format!("ref:{}", reference.rsplit('/').next().unwrap_or_default());
    }
    for combinator in ["allOf", "anyOf", "oneOf"] {
        if let Some(Value::Array(parts)) = schema.get(combinator) {
            let shapes: Vec<String> = parts.iter().map(shape).filter(|s| s != "null").collect();
            return shapes.join("|");
        }
    }
    let kind = match schema.get("type") {
        Some(Value::Array(kinds)) => kinds
            .iter()
            .filter_map(Value::as_str)
            .filter(|k| *k != "null")
            .collect::<Vec<_>>()
            .join("|"),
        Some(Value::String(kind)) => kind.clone(),
        _ => "any".to_string(),
    };
    match schema.get("format").and_then(Value::as_str) {
        Some(format) => format!("{kind}/{format}"),
        None => kind,
    }
}

#[derive(Debug, PartialEq)]
struct Summary {
    kind: String,
    properties: BTreeMap<String, String>,
    required: Vec<String>,
}

fn summarize(schema: &Value) -> Summary {
    let properties = schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|props| {
            props
                .iter()
                .map(|(name, s)| (name.clone(), shape(s)))
                .collect()
        })
        .unwrap_or_default();
    let mut required: Vec<String> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|names| {
            names
                .iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    required.sort();
    Summary {
        kind: shape(schema),
        properties,
        required,
    }
}

fn assert_agrees<T: JsonSchema>(name: &str) {
    let spec = spec_schemas();
    let in_spec = spec
        .get(name)
        .unwrap_or_else(|| panic!("{name} is not in the spec"));
    assert_eq!(
        summarize(&generated_schema::<T>()),
        summarize(in_spec),
        "generated type {name} disagrees with the spec (left: generated, right: spec)"
    );
}

#[test]
fn request_and_response_types_agree_with_the_spec() {
    assert_agrees::<types::PasswordLoginRequest>("PasswordLoginRequest");
    assert_agrees::<types::RefreshRequest>("RefreshRequest");
    assert_agrees::<types::LogoutRequest>("LogoutRequest");
    assert_agrees::<types::CodeExchangeRequest>("CodeExchangeRequest");
    assert_agrees::<types::TokenPair>("TokenPair");
    assert_agrees::<types::AuthError>("AuthError");
    assert_agrees::<dynata_auth_api::Secret>("Secret");
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
    let mut in_spec: Vec<String> = spec_schemas().keys().cloned().collect();
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
    let spec = spec_schemas();
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
