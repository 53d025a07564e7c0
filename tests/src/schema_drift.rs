//! Compares a generated type's JSON Schema (from its `schemars` derive) with
//! the component schema of the spec it was generated from: property names,
//! required sets, property types and enum values must agree, so that a hand
//! edit on either side (or a generator upgrade that changes the mapping) is
//! caught.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde_json::Value;

/// A whole spec in `openapi/`, such as `dynata-auth.yaml`, as JSON.
pub fn spec_document(spec_file: &str) -> Value {
    let path = format!("{}/../openapi/{spec_file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_norway::from_str(&text).expect("the spec is YAML")
}

/// The `components.schemas` of a spec in `openapi/`.
pub fn spec_schemas(spec_file: &str) -> serde_json::Map<String, Value> {
    spec_document(spec_file)["components"]["schemas"]
        .as_object()
        .expect("components.schemas")
        .clone()
}

/// The JSON Schema schemars derives for a generated type.
pub fn generated_schema<T: JsonSchema>() -> Value {
    let generator = schemars::r#gen::SchemaSettings::openapi3().into_generator();
    serde_json::to_value(generator.into_root_schema_for::<T>()).expect("schema serializes")
}

/// A schema reduced to what must agree: `ref:Name`, or the type and format
/// (`array<…>` with the items' shape), with the nullability schemars adds for
/// `Option` removed.
pub fn shape(schema: &Value) -> String {
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
    let kind = match schema.get("items") {
        Some(items) if kind == "array" => format!("array<{}>", shape(items)),
        _ => kind,
    };
    match schema.get("format").and_then(Value::as_str) {
        // schemars says `double` for every f64; the specs say plain `number`.
        Some("double") if kind == "number" => kind,
        Some(format) => format!("{kind}/{format}"),
        None => kind,
    }
}

/// What must agree between the two sides of one schema.
#[derive(Debug, PartialEq)]
pub struct Summary {
    pub kind: String,
    pub properties: BTreeMap<String, String>,
    pub required: Vec<String>,
    /// A closed `enum`'s values.
    pub values: Vec<String>,
    /// An `x-extensible-enum`'s known values.
    pub extensible_values: Vec<String>,
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

pub fn summarize(schema: &Value) -> Summary {
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
    let mut required = strings(schema.get("required"));
    required.sort();
    Summary {
        kind: shape(schema),
        properties,
        required,
        values: strings(schema.get("enum")),
        extensible_values: strings(schema.get("x-extensible-enum")),
    }
}

/// Panics, naming the schema, when generated type `T` disagrees with the
/// component schema `name` of `spec`.
pub fn assert_agrees<T: JsonSchema>(spec: &serde_json::Map<String, Value>, name: &str) {
    let in_spec = spec
        .get(name)
        .unwrap_or_else(|| panic!("{name} is not in the spec"));
    assert_eq!(
        summarize(&generated_schema::<T>()),
        summarize(in_spec),
        "generated type {name} disagrees with the spec (left: generated, right: spec)"
    );
}
