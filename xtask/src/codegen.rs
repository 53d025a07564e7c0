//! `cargo xtask codegen`: the spec in `openapi/` becomes the low-level client.
//!
//! The generated file is committed, so a spec change shows up in review as a
//! diff of Rust code, and `--check` (also run by a plain `#[test]`) fails when
//! the committed file has drifted from the spec.

use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use progenitor::{GenerationSettings, Generator, InterfaceStyle, TypeImpl};

/// The hand-written spec, relative to the workspace root.
pub(crate) const SPEC: &str = "openapi/dynata-auth.yaml";
/// The generated client, relative to the workspace root.
pub(crate) const OUTPUT: &str = "crates/dynata-auth-api/src/generated.rs";
const REGENERATE: &str = "cargo xtask codegen";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Rewrite the generated file if its content changed.
    Write,
    /// Fail if the generated file differs from what the spec produces.
    Check,
}

/// What a successful run did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Unchanged,
    Written,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Unchanged => write!(f, "{OUTPUT} is up to date with {SPEC}"),
            Outcome::Written => write!(f, "regenerated {OUTPUT} from {SPEC}"),
        }
    }
}

/// Everything that can stop a run, each naming the file at fault.
#[derive(Debug)]
pub(crate) enum CodegenError {
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    /// The spec is not valid YAML, or not an OpenAPI document.
    Malformed { spec: String, problem: String },
    /// progenitor reads OpenAPI 3.0.x only.
    UnsupportedVersion { spec: String, version: String },
    /// progenitor refused (or panicked on) something in the spec.
    Unsupported { spec: String, problem: String },
    /// The generator produced tokens that are not a Rust file (a progenitor bug).
    Unformattable { problem: String },
    /// `--check` found the committed file out of date.
    Stale { diff: String },
}

impl fmt::Display for CodegenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodegenError::Io { path, error } => write!(f, "{}: {error}", path.display()),
            CodegenError::Malformed { spec, problem } => {
                write!(f, "{spec} is not a valid OpenAPI document: {problem}")
            }
            CodegenError::UnsupportedVersion { spec, version } => write!(
                f,
                "{spec} declares `openapi: {version}`, but progenitor reads only OpenAPI 3.0.x"
            ),
            CodegenError::Unsupported { spec, problem } => {
                write!(
                    f,
                    "progenitor cannot generate a client from {spec}: {problem}"
                )
            }
            CodegenError::Unformattable { problem } => {
                write!(f, "progenitor produced code that does not parse: {problem}")
            }
            CodegenError::Stale { diff } => write!(
                f,
                "{OUTPUT} is stale: it differs from what {SPEC} produces \
                 (- committed, + generated):\n{diff}\nRun `{REGENERATE}` and commit the result."
            ),
        }
    }
}

/// Regenerates (or, with [`Mode::Check`], verifies) the client under `root`.
pub(crate) fn run(root: &Path, mode: Mode) -> Result<Outcome, CodegenError> {
    let spec_path = root.join(SPEC);
    let spec_text = read(&spec_path)?;
    let generated = generate(&spec_text, SPEC)?;

    let output_path = root.join(OUTPUT);
    let committed = match std::fs::read_to_string(&output_path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(error) => {
            return Err(CodegenError::Io {
                path: output_path,
                error,
            });
        }
    };
    // Compare modulo line endings so a checkout with CRLF is not "stale".
    if committed.replace("\r\n", "\n") == generated {
        return Ok(Outcome::Unchanged);
    }
    match mode {
        Mode::Check => Err(CodegenError::Stale {
            diff: line_diff(&committed, &generated),
        }),
        Mode::Write => {
            std::fs::write(&output_path, generated).map_err(|error| CodegenError::Io {
                path: output_path,
                error,
            })?;
            Ok(Outcome::Written)
        }
    }
}

fn read(path: &Path) -> Result<String, CodegenError> {
    std::fs::read_to_string(path).map_err(|error| CodegenError::Io {
        path: path.to_path_buf(),
        error,
    })
}

/// Turns the text of a spec into the formatted text of the generated file.
/// `spec_name` only labels errors.
pub(crate) fn generate(spec_text: &str, spec_name: &str) -> Result<String, CodegenError> {
    let malformed = |problem: String| CodegenError::Malformed {
        spec: spec_name.to_string(),
        problem,
    };

    let mut document: serde_json::Value =
        serde_yaml::from_str(spec_text).map_err(|e| malformed(e.to_string()))?;
    let version = document
        .get("openapi")
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    if !version.starts_with("3.0.") {
        return Err(CodegenError::UnsupportedVersion {
            spec: spec_name.to_string(),
            version: version.to_string(),
        });
    }
    read_json_suffix_as_json(&mut document);
    let spec: openapiv3::OpenAPI =
        serde_json::from_value(document).map_err(|e| malformed(e.to_string()))?;

    let mut generator = Generator::new(&settings());
    let tokens = without_panics(|| generator.generate_tokens(&spec))
        .and_then(|result| result.map_err(|e| e.to_string()))
        .map_err(|problem| CodegenError::Unsupported {
            spec: spec_name.to_string(),
            problem,
        })?;

    let mut file: syn::File = syn::parse2(tokens).map_err(|e| CodegenError::Unformattable {
        problem: e.to_string(),
    })?;
    gate_json_schema_derives(&mut file.items);
    Ok(format!(
        "// @generated by `{REGENERATE}` from {SPEC}.\n\
         // Do not edit by hand: edit the spec, then run `{REGENERATE}`.\n\n{}",
        prettyplease::unparse(&file)
    ))
}

/// Positional style: every auth operation takes exactly one body, so a call is
/// `client.login(&body)`, and the file stays a third of the builder style's size.
/// Secrets are replaced by the crate's own redacting `Secret` type, and every
/// type derives `JsonSchema` (behind a feature, see `gate_json_schema_derives`)
/// so tests can compare it with the spec.
fn settings() -> GenerationSettings {
    let mut settings = GenerationSettings::new();
    settings
        .with_interface(InterfaceStyle::Positional)
        .with_derive("schemars::JsonSchema")
        .with_derive("PartialEq")
        .with_replacement(
            "Secret",
            "crate::Secret",
            [TypeImpl::Display].into_iter().take(0),
        );
    settings
}

/// `schemars::JsonSchema` is derived only with the generated crate's
/// `schemars` feature: the drift test needs it, users do not, and it would
/// cost each of them four more crates.
fn gate_json_schema_derives(items: &mut [syn::Item]) {
    use syn::punctuated::Punctuated;
    for item in items {
        let attrs = match item {
            syn::Item::Struct(item) => &mut item.attrs,
            syn::Item::Enum(item) => &mut item.attrs,
            syn::Item::Mod(module) => {
                if let Some((_, items)) = &mut module.content {
                    gate_json_schema_derives(items);
                }
                continue;
            }
            _ => continue,
        };
        let mut gated = false;
        for attr in attrs
            .iter_mut()
            .filter(|attr| attr.path().is_ident("derive"))
        {
            let Ok(paths) =
                attr.parse_args_with(Punctuated::<syn::Path, syn::Token![,]>::parse_terminated)
            else {
                continue;
            };
            let is_json_schema = |path: &syn::Path| {
                path.segments
                    .last()
                    .is_some_and(|s| s.ident == "JsonSchema")
            };
            let (json_schema, rest): (Vec<_>, Vec<_>) = paths.into_iter().partition(is_json_schema);
            if !json_schema.is_empty() {
                gated = true;
                *attr = syn::parse_quote!(#[derive(#(#rest),*)]);
            }
        }
        if gated {
            attrs.push(syn::parse_quote!(
                #[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
            ));
        }
    }
}

/// progenitor types only `application/json` bodies and turns any other media
/// type into raw bytes. Dynata's `application/vnd.token+json` is JSON by its
/// `+json` suffix (RFC 6839), so the generator sees it as `application/json`,
/// and the spec can keep saying what the server really sends.
fn read_json_suffix_as_json(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            if let Some(serde_json::Value::Object(content)) = map.get_mut("content") {
                let keys: Vec<String> = content.keys().cloned().collect();
                for key in keys {
                    if key.starts_with("application/")
                        && key.ends_with("+json")
                        && let Some(media) = content.remove(&key)
                    {
                        content.entry("application/json").or_insert(media);
                    }
                }
            }
            map.values_mut().for_each(read_json_suffix_as_json);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(read_json_suffix_as_json),
        _ => {}
    }
}

/// progenitor reports some unsupported constructs by panicking (`todo!()`,
/// assertions). Turn such a panic into an error message, without the default
/// hook printing a backtrace hint first.
fn without_panics<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    let previous_hook = panic::take_hook();
    panic::set_hook(Box::new(|_| {}));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    panic::set_hook(previous_hook);
    result.map_err(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "the generator panicked".to_string());
        format!("the generator panicked: {message}")
    })
}

/// A compact diff: the region between the common first and last lines, with
/// a little context. Enough to see what changed without a diff dependency.
fn line_diff(old: &str, new: &str) -> String {
    const CONTEXT: usize = 3;
    const MAX_LINES: usize = 60;
    let old: Vec<&str> = old.lines().collect();
    let new: Vec<&str> = new.lines().collect();
    let prefix = old.iter().zip(&new).take_while(|(a, b)| a == b).count();
    let suffix = old[prefix..]
        .iter()
        .rev()
        .zip(new[prefix..].iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    let start = prefix.saturating_sub(CONTEXT);
    let mut lines = vec![format!("@@ line {} @@", start + 1)];
    lines.extend(old[start..prefix].iter().map(|l| format!("  {l}")));
    lines.extend(
        old[prefix..old.len() - suffix]
            .iter()
            .map(|l| format!("- {l}")),
    );
    lines.extend(
        new[prefix..new.len() - suffix]
            .iter()
            .map(|l| format!("+ {l}")),
    );
    let after = new.len() - suffix;
    lines.extend(
        new[after..(after + CONTEXT).min(new.len())]
            .iter()
            .map(|l| format!("  {l}")),
    );
    if lines.len() > MAX_LINES {
        let hidden = lines.len() - MAX_LINES;
        lines.truncate(MAX_LINES);
        lines.push(format!("... {hidden} more lines"));
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn committed_spec() -> String {
        read(&crate::project_root().join(SPEC)).expect("the spec is readable")
    }

    /// `cargo test` alone catches a client that is stale against the spec.
    #[test]
    fn committed_client_matches_the_spec() {
        if let Err(error) = run(&crate::project_root(), Mode::Check) {
            panic!("{error}");
        }
    }

    #[test]
    fn a_changed_description_makes_the_client_stale_with_a_readable_diff() {
        let spec = committed_spec().replace("summary: End the session", "summary: End it all");
        let generated = generate(&spec, SPEC).expect("the edited spec still generates");
        let committed = read(&crate::project_root().join(OUTPUT)).expect("committed client");
        assert_ne!(generated, committed);
        let diff = line_diff(&committed, &generated);
        assert!(
            diff.lines()
                .any(|l| l.starts_with("- ") && l.contains("End the session")),
            "{diff}"
        );
        assert!(
            diff.lines()
                .any(|l| l.starts_with("+ ") && l.contains("End it all")),
            "{diff}"
        );
        let message = CodegenError::Stale { diff }.to_string();
        assert!(message.contains("Run `cargo xtask codegen`"), "{message}");
    }

    #[test]
    fn the_output_names_the_command_that_regenerates_it() {
        let generated = generate(&committed_spec(), SPEC).expect("the spec generates");
        assert!(generated.starts_with("// @generated by `cargo xtask codegen`"));
    }

    #[test]
    fn json_schema_is_derived_only_behind_the_schemars_feature() {
        let generated = generate(&committed_spec(), SPEC).expect("the spec generates");
        let gated = "#[cfg_attr(feature = \"schemars\", derive(schemars::JsonSchema))]";
        assert_eq!(
            generated.matches(gated).count(),
            6,
            "one per component type"
        );
        assert_eq!(
            generated.matches("JsonSchema").count(),
            6,
            "no ungated derive"
        );
    }

    #[test]
    fn vendor_json_media_types_are_generated_as_typed_json() {
        let generated = generate(&committed_spec(), SPEC).expect("the spec generates");
        assert!(
            !generated.contains("ByteStream>"),
            "a body fell back to raw bytes"
        );
        assert!(generated.contains("ResponseValue<types::TokenPair>"));
    }

    fn expect_error(spec: &str) -> String {
        match generate(spec, "broken.yaml") {
            Ok(_) => panic!("generation should fail"),
            Err(error) => {
                let message = error.to_string();
                assert!(
                    message.contains("broken.yaml"),
                    "the error names the file: {message}"
                );
                message
            }
        }
    }

    #[test]
    fn malformed_yaml_is_a_clear_error() {
        let message = expect_error("openapi: 3.0.3\ninfo: [unclosed\n");
        assert!(
            message.contains("not a valid OpenAPI document"),
            "{message}"
        );
    }

    #[test]
    fn a_document_that_is_not_openapi_is_a_clear_error() {
        let message = expect_error("openapi: 3.0.3\npaths: 12\n");
        assert!(
            message.contains("not a valid OpenAPI document"),
            "{message}"
        );
    }

    #[test]
    fn openapi_3_1_is_refused_by_name() {
        let spec = committed_spec().replace("openapi: 3.0.3", "openapi: 3.1.0");
        let message = expect_error(&spec);
        assert!(
            message.contains("3.1.0") && message.contains("3.0.x"),
            "{message}"
        );
    }

    #[test]
    fn a_generator_panic_becomes_an_error() {
        // Two error schemas for one operation make progenitor assert.
        let spec = committed_spec().replacen(
            "        \"401\":\n          $ref: \"#/components/responses/AuthError\"",
            "        \"401\":\n          description: other\n          content:\n            application/json:\n              schema:\n                type: string",
            1,
        );
        let message = expect_error(&spec);
        assert!(message.contains("progenitor cannot generate"), "{message}");
    }

    #[test]
    fn a_missing_operation_id_is_a_clear_error() {
        let spec = committed_spec().replacen("      operationId: logout\n", "", 1);
        let message = expect_error(&spec);
        assert!(message.contains("operation ID"), "{message}");
    }
}
