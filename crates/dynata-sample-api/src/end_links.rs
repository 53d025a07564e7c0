//! [`SurveyEndLinks`]: the free-form answer of `get_survey_end_links`.

use std::fmt;
use std::ops::Deref;

use serde_json::{Map, Value};

/// A survey's end links and test results, as Dynata sends them: no source
/// documents their fields, so they stay a JSON object (read them with
/// [`Map::get`], through `Deref`).
///
/// They hold the survey's security keys (`securityKey1`, `securityKey2`,
/// which sign respondents' end links, and the like), so `Debug` shows the
/// value of every field whose name says `key`, `secret`, `token` or
/// `password` as `[REDACTED]`, at any depth.
///
/// ```
/// let links: dynata_sample_api::SurveyEndLinks =
///     serde_json::from_str(r#"{"entryLink": "https://e.example/", "securityKey1": "k-1"}"#)
///         .expect("an object");
/// assert_eq!(links.get("securityKey1").and_then(|v| v.as_str()), Some("k-1"));
/// assert!(!format!("{links:?}").contains("k-1"));
/// ```
#[derive(Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct SurveyEndLinks(Map<String, Value>);

impl SurveyEndLinks {
    /// The object, to keep.
    pub fn into_inner(self) -> Map<String, Value> {
        self.0
    }
}

impl Deref for SurveyEndLinks {
    type Target = Map<String, Value>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl From<Map<String, Value>> for SurveyEndLinks {
    fn from(object: Map<String, Value>) -> Self {
        SurveyEndLinks(object)
    }
}

impl fmt::Debug for SurveyEndLinks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SurveyEndLinks")
            .field(&redacted(&Value::Object(self.0.clone())))
            .finish()
    }
}

/// `value` with the value of every field named like a secret replaced.
fn redacted(value: &Value) -> Value {
    match value {
        Value::Object(object) => Value::Object(
            object
                .iter()
                .map(|(name, value)| {
                    let shown = if names_a_secret(name) {
                        Value::String("[REDACTED]".into())
                    } else {
                        redacted(value)
                    };
                    (name.clone(), shown)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redacted).collect()),
        other => other.clone(),
    }
}

fn names_a_secret(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["key", "secret", "token", "password"]
        .iter()
        .any(|word| name.contains(word))
}

#[cfg(feature = "schemars")]
impl schemars::JsonSchema for SurveyEndLinks {
    fn schema_name() -> String {
        "SurveyEndLinks".to_string()
    }

    fn json_schema(_: &mut schemars::r#gen::SchemaGenerator) -> schemars::schema::Schema {
        schemars::schema::SchemaObject {
            instance_type: Some(schemars::schema::InstanceType::Object.into()),
            ..Default::default()
        }
        .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_fields_named_like_secrets_at_any_depth() {
        let links: SurveyEndLinks = serde_json::from_value(serde_json::json!({
            "entryLink": "https://e.example/?psid=1",
            "SecurityKey1": "k-1",
            "endLinks": {"signedURLSecuritySecretKey": "s-2", "complete": "https://c.example/"},
            "tests": [{"accessToken": "t-3", "passed": true}],
        }))
        .expect("an object");
        let shown = format!("{links:?}");
        for secret in ["k-1", "s-2", "t-3"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        for kept in ["https://e.example/?psid=1", "https://c.example/", "passed"] {
            assert!(shown.contains(kept), "{kept} missing from {shown}");
        }
        assert_eq!(
            serde_json::to_value(&links).expect("serializes")["SecurityKey1"],
            "k-1",
            "only Debug hides them"
        );
    }
}
