//! Checks a JSON request body field by field and collects every problem,
//! so that one `400` names each bad field (serde would stop at the first).

use serde_json::{Map, Value};

use super::envelope::{ApiError, Problem};

/// The problems found so far in one body.
#[derive(Default)]
pub(crate) struct Check {
    problems: Vec<Problem>,
}

/// Whether a field must be present.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Need {
    Required,
    Optional,
}

impl Check {
    /// Records a problem with the field at `path`.
    pub(crate) fn bad(&mut self, path: &str, message: impl Into<String>) {
        self.problems.push(Problem {
            code: "INVALID_FIELD",
            message: format!("{path}: {}", message.into()),
            resource: (path.to_owned(), "field"),
        });
    }

    /// The body as an object, or a problem with the whole body.
    pub(crate) fn object<'v>(
        &mut self,
        value: &'v Value,
        path: &str,
    ) -> Option<&'v Map<String, Value>> {
        match value {
            Value::Object(object) => Some(object),
            _ => {
                self.bad(
                    if path.is_empty() { "body" } else { path },
                    "must be a JSON object",
                );
                None
            }
        }
    }

    /// The field if present and not null; a problem if it is required and
    /// missing.
    pub(crate) fn field<'v>(
        &mut self,
        object: &'v Map<String, Value>,
        prefix: &str,
        name: &str,
        need: Need,
    ) -> Option<&'v Value> {
        match object.get(name) {
            Some(Value::Null) | None => {
                if need == Need::Required {
                    let path = join(prefix, name);
                    self.problems.push(Problem {
                        code: "MISSING_FIELD",
                        message: format!("{path}: is required"),
                        resource: (path, "field"),
                    });
                }
                None
            }
            Some(value) => Some(value),
        }
    }

    /// A string of at most `max_chars` characters (`min_chars` at least).
    pub(crate) fn string(
        &mut self,
        object: &Map<String, Value>,
        prefix: &str,
        name: &str,
        need: Need,
        (min_chars, max_chars): (usize, usize),
    ) -> Option<String> {
        let value = self.field(object, prefix, name, need)?;
        let path = join(prefix, name);
        let Some(text) = value.as_str() else {
            self.bad(&path, "must be a string");
            return None;
        };
        let chars = text.chars().count();
        if chars < min_chars || chars > max_chars {
            if min_chars == max_chars {
                self.bad(&path, format!("must be exactly {max_chars} characters"));
            } else {
                self.bad(
                    &path,
                    format!("must be {min_chars} to {max_chars} characters long"),
                );
            }
            return None;
        }
        Some(text.to_owned())
    }

    /// A whole number within `range`.
    pub(crate) fn integer(
        &mut self,
        object: &Map<String, Value>,
        prefix: &str,
        name: &str,
        need: Need,
        (min, max): (i64, i64),
    ) -> Option<i64> {
        let value = self.field(object, prefix, name, need)?;
        let path = join(prefix, name);
        match value.as_i64() {
            Some(number) if (min..=max).contains(&number) => Some(number),
            Some(_) => {
                self.bad(&path, format!("must be from {min} to {max}"));
                None
            }
            None => {
                self.bad(&path, "must be a whole number");
                None
            }
        }
    }

    /// A number within `range`.
    pub(crate) fn number(
        &mut self,
        object: &Map<String, Value>,
        prefix: &str,
        name: &str,
        need: Need,
        (min, max): (f64, f64),
    ) -> Option<f64> {
        let value = self.field(object, prefix, name, need)?;
        let path = join(prefix, name);
        match value.as_f64() {
            Some(number) if number >= min && number <= max => Some(number),
            Some(_) => {
                self.bad(&path, format!("must be from {min} to {max}"));
                None
            }
            None => {
                self.bad(&path, "must be a number");
                None
            }
        }
    }

    /// A boolean.
    pub(crate) fn boolean(
        &mut self,
        object: &Map<String, Value>,
        prefix: &str,
        name: &str,
    ) -> Option<bool> {
        let value = self.field(object, prefix, name, Need::Optional)?;
        let flag = value.as_bool();
        if flag.is_none() {
            self.bad(&join(prefix, name), "must be true or false");
        }
        flag
    }

    /// An array of strings, each one of `allowed` when given, with at least
    /// `min_items` items.
    pub(crate) fn strings(
        &mut self,
        object: &Map<String, Value>,
        prefix: &str,
        name: &str,
        need: Need,
        min_items: usize,
        allowed: Option<&[&str]>,
    ) -> Option<Vec<String>> {
        let value = self.field(object, prefix, name, need)?;
        let path = join(prefix, name);
        let Some(items) = value.as_array() else {
            self.bad(&path, "must be an array of strings");
            return None;
        };
        if items.len() < min_items {
            self.bad(&path, format!("must hold at least {min_items} item(s)"));
            return None;
        }
        let mut strings = Vec::with_capacity(items.len());
        let before = self.problems.len();
        for (index, item) in items.iter().enumerate() {
            let item_path = format!("{path}[{index}]");
            match item.as_str() {
                Some(text) if allowed.is_none_or(|allowed| allowed.contains(&text)) => {
                    strings.push(text.to_owned());
                }
                Some(_) => self.bad(
                    &item_path,
                    format!("must be one of {}", allowed.unwrap_or_default().join(", ")),
                ),
                None => self.bad(&item_path, "must be a string"),
            }
        }
        (self.problems.len() == before).then_some(strings)
    }

    /// An array of objects, each handed to `each` with its path.
    pub(crate) fn objects<'v>(
        &mut self,
        object: &'v Map<String, Value>,
        prefix: &str,
        name: &str,
        need: Need,
        min_items: usize,
    ) -> Vec<(String, &'v Map<String, Value>)> {
        let Some(value) = self.field(object, prefix, name, need) else {
            return Vec::new();
        };
        let path = join(prefix, name);
        let Some(items) = value.as_array() else {
            self.bad(&path, "must be an array of objects");
            return Vec::new();
        };
        if items.len() < min_items {
            self.bad(&path, format!("must hold at least {min_items} item(s)"));
        }
        items
            .iter()
            .enumerate()
            .filter_map(|(index, item)| {
                let item_path = format!("{path}[{index}]");
                self.object(item, &item_path).map(|item| (item_path, item))
            })
            .collect()
    }

    /// `Ok` when nothing was wrong; otherwise the `400` naming every field.
    pub(crate) fn finish(self) -> Result<(), ApiError> {
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(ApiError::invalid_fields(self.problems))
        }
    }
}

/// `lineItems[0]` + `title` = `lineItems[0].title`.
pub(crate) fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}.{name}")
    }
}

/// Reads a request body as JSON; an empty body counts as `null` (the
/// actions without a body accept nothing, `{}` and `null`).
pub(crate) fn json_body(body: &[u8]) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(body).map_err(|err| {
        ApiError::invalid_fields(vec![Problem {
            code: "INVALID_BODY",
            message: format!(
                "the body is not JSON (line {}, column {})",
                err.line(),
                err.column()
            ),
            resource: ("body".to_owned(), "body"),
        }])
    })
}

/// The body of an action that takes none: nothing, `{}` or `null`.
pub(crate) fn no_body(body: &[u8]) -> Result<(), ApiError> {
    match json_body(body)? {
        Value::Null => Ok(()),
        Value::Object(object) if object.is_empty() => Ok(()),
        _ => Err(ApiError::invalid_fields(vec![Problem {
            code: "INVALID_BODY",
            message: "this action takes no body: send none, {} or null".to_owned(),
            resource: ("body".to_owned(), "body"),
        }])),
    }
}

/// Reads a body that must be a JSON object.
pub(crate) fn json_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match json_body(body)? {
        Value::Object(object) => Ok(object),
        _ => Err(ApiError::invalid_fields(vec![Problem {
            code: "INVALID_BODY",
            message: "the body must be a JSON object".to_owned(),
            resource: ("body".to_owned(), "body"),
        }])),
    }
}
