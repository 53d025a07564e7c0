//! Lists: `limit`, `offset`, `sort` and top-level filters over JSON records,
//! and the `meta` Dynata answers with (`links`, `pageSize`, `total`).

use std::cmp::Ordering;

use serde_json::{Value, json};

use super::envelope::{self, Answer, ApiError};

/// Dynata's default page size.
const DEFAULT_LIMIT: u64 = 10;
/// The largest page any of Dynata's clients asks for.
const MAX_LIMIT: u64 = 1000;

/// A filter a list accepts: the query name, and where the value sits in a
/// record as a JSON pointer (`/state`, or `/billing/type` for `billingType`).
pub(crate) type FilterSpec = (&'static str, &'static str);

/// A list request, checked.
pub(crate) struct ListQuery {
    limit: u64,
    offset: u64,
    /// Pointer and descending?, most significant first.
    sort: Vec<(&'static str, bool)>,
    filters: Vec<(&'static str, String)>,
}

impl ListQuery {
    /// Reads `limit`, `offset`, `sort` and the filters `accepted` from the
    /// query string's pairs. Other parameters are ignored, as by a server
    /// that does not know them; a bad `limit`, `offset` or `sort` is a 400.
    pub(crate) fn parse(
        pairs: &[(String, String)],
        accepted: &[FilterSpec],
    ) -> Result<ListQuery, ApiError> {
        let mut query = ListQuery {
            limit: DEFAULT_LIMIT,
            offset: 0,
            sort: Vec::new(),
            filters: Vec::new(),
        };
        let mut problems = Vec::new();
        for (name, value) in pairs {
            match name.as_str() {
                "limit" => match value.parse::<u64>() {
                    Ok(limit) if (1..=MAX_LIMIT).contains(&limit) => query.limit = limit,
                    _ => problems.push(parameter_problem(
                        "limit",
                        format!("limit must be a whole number from 1 to {MAX_LIMIT}"),
                    )),
                },
                "offset" => match value.parse::<u64>() {
                    Ok(offset) => query.offset = offset,
                    Err(_) => problems.push(parameter_problem(
                        "offset",
                        "offset must be a whole number, 0 or more".to_owned(),
                    )),
                },
                "sort" => {
                    for key in value.split(',').filter(|key| !key.is_empty()) {
                        let (field, direction) = key.split_once(':').unwrap_or((key, "asc"));
                        let pointer = accepted
                            .iter()
                            .find(|(name, _)| *name == field)
                            .map(|(_, pointer)| *pointer);
                        match (pointer, direction) {
                            (Some(pointer), "asc") => query.sort.push((pointer, false)),
                            (Some(pointer), "desc") => query.sort.push((pointer, true)),
                            _ => problems.push(parameter_problem(
                                "sort",
                                format!(
                                    "cannot sort by {key:?}: sort is field:asc or field:desc, \
                                     on one of {}",
                                    names(accepted)
                                ),
                            )),
                        }
                    }
                }
                other => {
                    if let Some((name, _)) = accepted.iter().find(|(name, _)| *name == other) {
                        query.filters.push((name, value.clone()));
                    }
                }
            }
        }
        if problems.is_empty() {
            Ok(query)
        } else {
            Err(ApiError::invalid_fields(problems))
        }
    }

    /// The page of `records` this query asks for, in the envelope, with
    /// `meta.links` built on `self_url` (absolute, without a query string).
    pub(crate) fn answer(
        &self,
        records: Vec<Value>,
        accepted: &[FilterSpec],
        self_url: &str,
    ) -> Answer {
        let mut matching: Vec<Value> = records
            .into_iter()
            .filter(|record| {
                self.filters.iter().all(|(name, wanted)| {
                    let pointer = accepted
                        .iter()
                        .find(|(filter, _)| filter == name)
                        .map_or("", |(_, pointer)| *pointer);
                    record
                        .pointer(pointer)
                        .is_some_and(|value| matches(value, wanted))
                })
            })
            .collect();
        // A stable sort keeps the store's order (oldest first) among equals.
        matching.sort_by(|a, b| {
            self.sort
                .iter()
                .map(|(pointer, descending)| {
                    let order = compare(a.pointer(pointer), b.pointer(pointer));
                    if *descending { order.reverse() } else { order }
                })
                .find(|order| order.is_ne())
                .unwrap_or(Ordering::Equal)
        });
        let total = matching.len() as u64;
        let page: Vec<Value> = matching
            .into_iter()
            .skip(usize::try_from(self.offset).unwrap_or(usize::MAX))
            .take(usize::try_from(self.limit).unwrap_or(usize::MAX))
            .collect();
        Ok(envelope::with_meta(
            Value::Array(page),
            meta(self_url, self.offset, self.limit, total),
        ))
    }
}

/// `meta` as Dynata's recorded answer shows it: `self` without a query
/// string, the others with `?offset=N`; `next` is `offset + limit`, `last`
/// is `total - pageSize`; `next` and `prev` only where such a page exists.
pub(crate) fn meta(self_url: &str, offset: u64, limit: u64, total: u64) -> Value {
    let at = |offset: u64| Value::from(format!("{self_url}?offset={offset}"));
    let mut links = serde_json::Map::new();
    links.insert("first".into(), at(0));
    links.insert("last".into(), at(total.saturating_sub(limit)));
    if offset.saturating_add(limit) < total {
        links.insert("next".into(), at(offset + limit));
    }
    if offset > 0 {
        links.insert("prev".into(), at(offset.saturating_sub(limit)));
    }
    links.insert("self".into(), Value::from(self_url));
    json!({"links": links, "pageSize": limit, "total": total})
}

/// Whether a record's value matches a filter's text: equal text, numbers and
/// booleans by value, any element of an array, and for timestamps a date
/// range `YYYY/MM/DD,YYYY/MM/DD` (either side may be empty).
fn matches(value: &Value, wanted: &str) -> bool {
    match value {
        Value::String(text) => match wanted.split_once(',') {
            Some((from, to)) if looks_like_timestamp(text) => {
                let day = text.get(..10).unwrap_or(text);
                (from.is_empty() || day >= from) && (to.is_empty() || day <= to)
            }
            _ => text == wanted,
        },
        Value::Number(number) => wanted
            .parse::<f64>()
            .is_ok_and(|wanted| number.as_f64() == Some(wanted)),
        Value::Bool(flag) => wanted.parse::<bool>() == Ok(*flag),
        Value::Array(items) => items.iter().any(|item| matches(item, wanted)),
        Value::Null | Value::Object(_) => false,
    }
}

fn looks_like_timestamp(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() >= 10 && bytes[4] == b'/' && bytes[7] == b'/'
}

/// Absent first, then by value: numbers numerically, text as text.
fn compare(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    match (a, b) {
        (Some(Value::Number(a)), Some(Value::Number(b))) => a
            .as_f64()
            .partial_cmp(&b.as_f64())
            .unwrap_or(Ordering::Equal),
        (Some(Value::String(a)), Some(Value::String(b))) => a.cmp(b),
        (Some(Value::Bool(a)), Some(Value::Bool(b))) => a.cmp(b),
        (None | Some(Value::Null), None | Some(Value::Null)) => Ordering::Equal,
        (None | Some(Value::Null), _) => Ordering::Less,
        (_, None | Some(Value::Null)) => Ordering::Greater,
        (Some(a), Some(b)) => a.to_string().cmp(&b.to_string()),
    }
}

fn names(accepted: &[FilterSpec]) -> String {
    let names: Vec<&str> = accepted.iter().map(|(name, _)| *name).collect();
    names.join(", ")
}

fn parameter_problem(name: &str, message: String) -> envelope::Problem {
    envelope::Problem {
        code: "INVALID_PARAMETER",
        message,
        resource: (name.to_owned(), "parameter"),
    }
}

/// `text` percent-encoded for a URL path segment or query value: everything
/// but RFC 3986's unreserved characters, so that a caller's id with a space
/// or a slash still makes a working link.
pub(crate) fn encode(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(byte).to_string()
            }
            _ => format!("%{byte:02X}"),
        })
        .collect()
}

/// The pairs of a raw query string, percent-decoded (`+` is a space).
pub(crate) fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    raw.unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(name), decode(value))
        })
        .collect()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let hex = |byte: u8| char::from(byte).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match (
                bytes.get(i + 1).and_then(|b| hex(*b)),
                bytes.get(i + 2).and_then(|b| hex(*b)),
            ) {
                (Some(high), Some(low)) => {
                    // Two hex digits make one byte: at most 0xff.
                    out.push(u8::try_from(high * 16 + low).unwrap_or(b'?'));
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_follow_the_recorded_answer() {
        let meta = meta("http://h/sample/v1/projects", 20, 10, 183);
        assert_eq!(
            meta,
            json!({
                "links": {
                    "first": "http://h/sample/v1/projects?offset=0",
                    "last": "http://h/sample/v1/projects?offset=173",
                    "next": "http://h/sample/v1/projects?offset=30",
                    "prev": "http://h/sample/v1/projects?offset=10",
                    "self": "http://h/sample/v1/projects",
                },
                "pageSize": 10,
                "total": 183,
            })
        );
        let last_page = meta_links(&self::meta("u", 180, 10, 183));
        assert_eq!(last_page, ["first", "last", "prev", "self"]);
    }

    fn meta_links(meta: &Value) -> Vec<String> {
        meta["links"].as_object().unwrap().keys().cloned().collect()
    }

    #[test]
    fn query_strings_are_percent_decoded() {
        assert_eq!(
            query_pairs(Some("a=b%2Cc&sort=title%3Adesc&x=%zz&y=1+2&flag")),
            [
                ("a".to_owned(), "b,c".to_owned()),
                ("sort".to_owned(), "title:desc".to_owned()),
                ("x".to_owned(), "%zz".to_owned()),
                ("y".to_owned(), "1 2".to_owned()),
                ("flag".to_owned(), String::new()),
            ]
        );
        assert_eq!(
            query_pairs(Some("t=%E2%9C%93%")),
            [("t".to_owned(), "✓%".to_owned())]
        );
    }

    #[test]
    fn encoding_round_trips_through_decoding() {
        let id = "p 1/ü?&=%";
        assert_eq!(encode(id), "p%201%2F%C3%BC%3F%26%3D%25");
        assert_eq!(
            query_pairs(Some(&format!("id={}", encode(id)))),
            [("id".to_owned(), id.to_owned())]
        );
    }

    #[test]
    fn date_ranges_and_values_match() {
        let created = json!("2024/03/05 10:00:00");
        assert!(matches(&created, "2024/03/01,2024/03/31"));
        assert!(matches(&created, ",2024/03/05"));
        assert!(!matches(&created, "2024/03/06,"));
        assert!(matches(&json!(12), "12"));
        assert!(matches(&json!(true), "true"));
        assert!(matches(&json!(["a", "b"]), "b"));
        assert!(!matches(&json!(null), "x"));
    }
}
