//! What goes to stdout: JSON (indented and coloured on a terminal, plain
//! when piped) and tables. The colouring is a dozen lines here rather than a
//! dependency.

use std::io::{IsTerminal, Write};

use serde_json::Value;

use crate::failure::Failure;

/// Writes to stderr what is for people (progress, confirmations, failures),
/// like `eprint!`, with control characters other than line breaks shown
/// escaped ([`printable`]): these lines quote Dynata's texts. A reader that
/// has gone away (`… 2>&1 | head -1`) is no reason to panic: the command's
/// result and exit code stand.
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let text = format!($($arg)*);
        let _ = std::io::stderr()
            .lock()
            .write_all($crate::output::printable(&text, &['\n']).as_bytes());
    }};
}
pub(crate) use note;

/// [`note!`], ending the line.
macro_rules! noteln {
    () => { $crate::output::note!("\n") };
    ($($arg:tt)*) => {{
        $crate::output::note!($($arg)*);
        $crate::output::note!("\n");
    }};
}
pub(crate) use noteln;

/// `text` with its control characters, but those in `keep`, written as
/// Rust escapes (`\u{1b}`): Dynata's texts (a project's title, set by anyone
/// in the company; a state this version does not know) must not reach a
/// terminal as escape sequences, which can clear it, retitle its window or
/// rewrite what it shows. JSON output escapes them already.
pub(crate) fn printable<'a>(text: &'a str, keep: &[char]) -> std::borrow::Cow<'a, str> {
    let escaped = |c: char| c.is_control() && !keep.contains(&c);
    if !text.chars().any(escaped) {
        return text.into();
    }
    text.chars()
        .map(|c| {
            if escaped(c) {
                c.escape_debug().to_string()
            } else {
                c.to_string()
            }
        })
        .collect::<String>()
        .into()
}

/// Whether stdout gets colours: a terminal, and `NO_COLOR` unset.
pub(crate) fn colour_stdout() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

const KEY: &str = "\x1b[34;1m";
const STRING: &str = "\x1b[32m";
const NUMBER: &str = "\x1b[36m";
const LITERAL: &str = "\x1b[33m";
const RESET: &str = "\x1b[0m";

/// `value` as indented JSON, coloured if `colour`.
pub(crate) fn json_text(value: &Value, colour: bool) -> String {
    if !colour {
        // Infallible for a Value.
        return serde_json::to_string_pretty(value).unwrap_or_default();
    }
    let mut out = String::new();
    write_coloured(value, 0, &mut out);
    out
}

fn paint(out: &mut String, colour: &str, text: &str) {
    out.push_str(colour);
    out.push_str(text);
    out.push_str(RESET);
}

fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_default()
}

fn write_coloured(value: &Value, depth: usize, out: &mut String) {
    let indent = |depth: usize| "  ".repeat(depth);
    match value {
        Value::Null | Value::Bool(_) => paint(out, LITERAL, &value.to_string()),
        Value::Number(n) => paint(out, NUMBER, &n.to_string()),
        Value::String(s) => paint(out, STRING, &quoted(s)),
        Value::Array(items) if items.is_empty() => out.push_str("[]"),
        Value::Object(map) if map.is_empty() => out.push_str("{}"),
        Value::Array(items) => {
            out.push_str("[\n");
            for (i, item) in items.iter().enumerate() {
                out.push_str(&indent(depth + 1));
                write_coloured(item, depth + 1, out);
                out.push_str(if i + 1 < items.len() { ",\n" } else { "\n" });
            }
            out.push_str(&indent(depth));
            out.push(']');
        }
        Value::Object(map) => {
            out.push_str("{\n");
            for (i, (key, item)) in map.iter().enumerate() {
                out.push_str(&indent(depth + 1));
                paint(out, KEY, &quoted(key));
                out.push_str(": ");
                write_coloured(item, depth + 1, out);
                out.push_str(if i + 1 < map.len() { ",\n" } else { "\n" });
            }
            out.push_str(&indent(depth));
            out.push('}');
        }
    }
}

/// Prints `value` as JSON on stdout.
pub(crate) fn print_json(value: &Value) -> Result<(), Failure> {
    write_stdout(format!("{}\n", json_text(value, colour_stdout())).as_bytes())
}

/// Writes to stdout; a closed pipe (`| head`) is not an error worth a message.
pub(crate) fn write_stdout(bytes: &[u8]) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Failure::io("write to stdout", &e)),
    }
}

/// Rows under a header, columns padded to their widest cell; a cell's
/// control characters (a line break too) are shown escaped.
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            row.iter()
                .map(|cell| printable(cell, &[]).into_owned())
                .collect()
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut text = String::new();
        for (i, (cell, width)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                text.push_str(cell);
                text.push_str(&" ".repeat(width - cell.chars().count() + 2));
            }
        }
        text.trim_end().to_owned() + "\n"
    };
    let mut out = line(header.to_vec());
    for row in &rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_shown_escaped_and_the_rest_kept() {
        assert_eq!(printable("Café é ✓", &[]), "Café é ✓");
        assert_eq!(
            printable("a\x1b[2Jb\x07\u{9b}c\td\ne", &['\n']),
            "a\\u{1b}[2Jb\\u{7}\\u{9b}c\\td\ne"
        );
        assert_eq!(printable("two\nlines", &[]), "two\\nlines");
        let table = table(
            &["ID", "TITLE"],
            &[vec!["p0".into(), "x\x1b]0;t\x07".into()]],
        );
        assert_eq!(table, "ID  TITLE\np0  x\\u{1b}]0;t\\u{7}\n");
    }

    #[test]
    fn plain_json_has_no_escape_codes_and_coloured_json_parses_once_stripped() {
        let value = serde_json::json!({"a": [1, "x\"y", null, true], "b": {}, "c": []});
        let plain = json_text(&value, false);
        assert!(!plain.contains('\x1b'));
        let coloured = json_text(&value, true);
        assert!(coloured.contains(STRING));
        let stripped = coloured
            .replace(KEY, "")
            .replace(STRING, "")
            .replace(NUMBER, "")
            .replace(LITERAL, "")
            .replace(RESET, "");
        assert_eq!(stripped, plain);
    }

    #[test]
    fn table_columns_line_up() {
        let text = table(
            &["ID", "STATE"],
            &[
                vec!["p-1".into(), "LAUNCHED".into()],
                vec!["project-22".into(), "X".into()],
            ],
        );
        assert_eq!(
            text,
            "ID          STATE\np-1         LAUNCHED\nproject-22  X\n"
        );
    }
}
