//! `cargo xtask codegen`: each spec in `openapi/` becomes its low-level client.
//!
//! The generated files are committed, so a spec change shows up in review as
//! a diff of Rust code, and `--check` (also run by a plain `#[test]`) fails when
//! a committed file has drifted from its spec.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Once;

use proc_macro2::{Delimiter, Group, TokenStream, TokenTree};
use progenitor::{GenerationSettings, Generator, HooksMode, InterfaceStyle};

const REGENERATE: &str = "cargo xtask codegen";

/// One generated crate: where its spec is, where its client goes, and what the
/// generator is told. Adding a spec is adding an entry to [`TARGETS`].
#[derive(Debug)]
pub(crate) struct Target {
    /// The hand-written spec, relative to the workspace root.
    pub(crate) spec: &'static str,
    /// The generated client, relative to the workspace root.
    pub(crate) output: &'static str,
    /// Positional methods or request builders (see the README's maintainer section).
    pub(crate) interface: Interface,
    /// Component schemas replaced by hand-written types of the generated
    /// crate: `(schema name, Rust path)`.
    pub(crate) replacements: &'static [(&'static str, &'static str)],
    /// A hand-written value every generated `Client` carries, for its hooks.
    /// With one, the crate must implement `ClientHooks` itself (a missing
    /// impl is a compile error, not a silently unauthenticated client).
    pub(crate) inner_type: Option<&'static str>,
}

/// Every generated crate.
pub(crate) const TARGETS: &[Target] = &[
    // Every auth operation takes exactly one JSON body: positional methods
    // (`client.login(&body)`) say all there is to say.
    Target {
        spec: "openapi/dynata-auth.yaml",
        output: "crates/dynata-auth-api/src/generated.rs",
        interface: Interface::Positional,
        replacements: &[("Secret", "crate::Secret")],
        inner_type: None,
    },
    // List operations take up to a dozen optional filters: builders
    // (`client.list_projects().state("LAUNCHED").limit(100).send()`) name
    // each one, where positional calls would be rows of `None`.
    Target {
        spec: "openapi/dynata-sample.yaml",
        output: "crates/dynata-sample-api/src/generated.rs",
        interface: Interface::Builder,
        replacements: &[
            ("Secret", "crate::Secret"),
            ("Timestamp", "crate::Timestamp"),
            ("SurveyEndLinks", "crate::SurveyEndLinks"),
        ],
        inner_type: Some("crate::Bearer"),
    },
];

/// progenitor's two styles of operation methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Interface {
    /// `client.login(&body)`: one argument per parameter.
    Positional,
    /// `client.list_projects().limit(100).send()`: a builder per call, and
    /// one per type a request body reaches (see
    /// `keep_builders_of_request_types_only`).
    Builder,
}

impl From<Interface> for InterfaceStyle {
    fn from(interface: Interface) -> Self {
        match interface {
            Interface::Positional => InterfaceStyle::Positional,
            Interface::Builder => InterfaceStyle::Builder,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Rewrite each generated file whose content changed.
    Write,
    /// Fail if a generated file differs from what its spec produces.
    Check,
}

/// What a successful run did to one target.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Unchanged {
        output: &'static str,
        spec: &'static str,
    },
    Written {
        output: &'static str,
        spec: &'static str,
    },
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Unchanged { output, spec } => write!(f, "{output} is up to date with {spec}"),
            Outcome::Written { output, spec } => write!(f, "regenerated {output} from {spec}"),
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
    /// `--check` found a committed file out of date.
    Stale {
        output: &'static str,
        spec: &'static str,
        diff: String,
    },
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
            CodegenError::Stale { output, spec, diff } => write!(
                f,
                "{output} is stale: it differs from what {spec} produces \
                 (- committed, + generated):\n{diff}\nRun `{REGENERATE}` and commit the result."
            ),
        }
    }
}

/// Regenerates (or, with [`Mode::Check`], verifies) every target under `root`.
/// Every target is processed even when an earlier one fails, so one run
/// reports every stale file.
pub(crate) fn run_all(root: &Path, mode: Mode) -> Vec<Result<Outcome, CodegenError>> {
    TARGETS
        .iter()
        .map(|target| run(root, target, mode))
        .collect()
}

/// Regenerates (or, with [`Mode::Check`], verifies) one target under `root`.
pub(crate) fn run(root: &Path, target: &Target, mode: Mode) -> Result<Outcome, CodegenError> {
    let spec_text = read(&root.join(target.spec))?;
    let generated = generate(&spec_text, target)?;

    let output_path = root.join(target.output);
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
    let (output, spec) = (target.output, target.spec);
    // Compare modulo line endings so a checkout with CRLF is not "stale".
    if committed.replace("\r\n", "\n") == generated {
        return Ok(Outcome::Unchanged { output, spec });
    }
    match mode {
        Mode::Check => Err(CodegenError::Stale {
            output,
            spec,
            diff: line_diff(&committed, &generated),
        }),
        Mode::Write => {
            std::fs::write(&output_path, generated).map_err(|error| CodegenError::Io {
                path: output_path,
                error,
            })?;
            Ok(Outcome::Written { output, spec })
        }
    }
}

fn read(path: &Path) -> Result<String, CodegenError> {
    std::fs::read_to_string(path).map_err(|error| CodegenError::Io {
        path: path.to_path_buf(),
        error,
    })
}

/// Turns the text of `target`'s spec into the formatted text of its client.
pub(crate) fn generate(spec_text: &str, target: &Target) -> Result<String, CodegenError> {
    let spec_name = target.spec;
    let malformed = |problem: String| CodegenError::Malformed {
        spec: spec_name.to_string(),
        problem,
    };

    let mut document: serde_json::Value =
        serde_norway::from_str(spec_text).map_err(|e| malformed(e.to_string()))?;
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
    drop_skipped_operations(&mut document);
    let open_enums = open_enums(&document).map_err(malformed)?;
    let spec: openapiv3::OpenAPI =
        serde_json::from_value(document).map_err(|e| malformed(e.to_string()))?;

    let unsupported = |problem: String| CodegenError::Unsupported {
        spec: spec_name.to_string(),
        problem,
    };
    let mut generator = Generator::new(&settings(target, &open_enums).map_err(unsupported)?);
    let tokens = without_panics(|| generator.generate_tokens(&spec))
        .and_then(|result| result.map_err(|e| e.to_string()))
        .map_err(unsupported)?;

    let tokens = with_checked_path_segments(tokens);
    let mut file: syn::File = syn::parse2(tokens).map_err(|e| CodegenError::Unformattable {
        problem: e.to_string(),
    })?;
    gate_json_schema_derives(&mut file.items);
    if let Some(requests) = request_types(&mut file.items)
        && let Some(answers) = answer_types(&mut file.items)
        && let Some(types) = module(&mut file.items, "types")
    {
        keep_builders_of_request_types_only(types, &requests);
        gate_serialize_of_answer_types(types, &requests);
        // What only a request carries stays strict: a caller's `null` list
        // there is a mistake to report (a project file for the command line).
        read_null_lists_as_empty(types, |name| {
            !requests.contains(name) || answers.contains(name)
        });
        read_odd_counts_as_none(types);
    }
    let code = with_open_enums(prettyplease::unparse(&file), &open_enums)?;
    let code = without_redirects(code)?;
    Ok(format!(
        "// @generated by `{REGENERATE}` from {spec_name}.\n\
         // Do not edit by hand: edit the spec, then run `{REGENERATE}`.\n\n{code}"
    ))
}

/// What every target shares: every type derives `PartialEq`, and
/// `schemars::JsonSchema` (behind a feature, see `gate_json_schema_derives`)
/// so tests can compare it with the spec. The rest comes from the table.
fn settings(target: &Target, open_enums: &[OpenEnum]) -> Result<GenerationSettings, String> {
    let mut settings = GenerationSettings::new();
    settings
        .with_interface(target.interface.into())
        .with_derive("schemars::JsonSchema")
        .with_derive("PartialEq");
    for (schema, rust_type) in target.replacements {
        settings.with_replacement(schema, rust_type, std::iter::empty());
    }
    for open_enum in open_enums {
        settings.with_replacement(
            &open_enum.name,
            format!("crate::types::{}", open_enum.name),
            std::iter::empty(),
        );
    }
    if let Some(inner_type) = target.inner_type {
        let tokens = syn::parse_str(inner_type)
            .map_err(|e| format!("inner type `{inner_type}` is not a Rust path: {e}"))?;
        settings
            .with_inner_type(tokens)
            .with_hooks(HooksMode::Expected);
    }
    Ok(settings)
}

/// An operation marked `x-codegen-skip: true` stays in the spec (it documents
/// the call) but not in the generated client: progenitor cannot generate it
/// (a multipart upload), so the crate above writes it by hand. The schemas
/// it uses are still generated.
fn drop_skipped_operations(document: &mut serde_json::Value) {
    const METHODS: [&str; 8] = [
        "get", "put", "post", "delete", "options", "head", "patch", "trace",
    ];
    let Some(paths) = document
        .get_mut("paths")
        .and_then(serde_json::Value::as_object_mut)
    else {
        return;
    };
    for item in paths.values_mut() {
        if let Some(item) = item.as_object_mut() {
            item.retain(|key, operation| {
                !(METHODS.contains(&key.as_str())
                    && operation.get("x-codegen-skip") == Some(&serde_json::Value::Bool(true)))
            });
        }
    }
    paths.retain(|_, item| {
        item.as_object()
            .is_none_or(|item| item.keys().any(|key| METHODS.contains(&key.as_str())))
    });
}

/// A component schema the server may extend: a string with its known values
/// under `x-extensible-enum` (Zalando's convention). It becomes an enum with
/// one variant per known value and `Other(String)` for the rest, through the
/// generated crate's `open_enum!` macro, so a value Dynata adds decodes and
/// stays visible.
#[derive(Debug, PartialEq)]
struct OpenEnum {
    name: String,
    description: String,
    /// `(Rust variant, wire value)`.
    values: Vec<(String, String)>,
}

fn open_enums(document: &serde_json::Value) -> Result<Vec<OpenEnum>, String> {
    let Some(schemas) = document
        .pointer("/components/schemas")
        .and_then(serde_json::Value::as_object)
    else {
        return Ok(Vec::new());
    };
    let mut found = Vec::new();
    for (name, schema) in schemas {
        let Some(values) = schema.get("x-extensible-enum") else {
            continue;
        };
        let problem = |what: &str| format!("schema {name}: {what}");
        if schema.get("type").and_then(serde_json::Value::as_str) != Some("string") {
            return Err(problem("`x-extensible-enum` needs `type: string`"));
        }
        if schema.get("enum").is_some() {
            return Err(problem("`x-extensible-enum` and `enum` exclude each other"));
        }
        let values = values
            .as_array()
            .ok_or_else(|| problem("`x-extensible-enum` must be a list"))?;
        let mut pairs: Vec<(String, String)> = Vec::new();
        for value in values {
            let wire = value
                .as_str()
                .ok_or_else(|| problem("`x-extensible-enum` values must be strings"))?;
            let variant = variant_name(wire)
                .ok_or_else(|| problem(&format!("`{wire}` has no letter to name a variant")))?;
            if variant == "Other" {
                return Err(problem("`Other` is the variant for unknown values"));
            }
            // Known values match without regard to ASCII case, so two that
            // differ only in case (or in punctuation) would be one variant.
            if let Some((_, earlier)) = pairs.iter().find(|(v, _)| *v == variant) {
                return Err(problem(&format!(
                    "`{earlier}` and `{wire}` would both be variant `{variant}`"
                )));
            }
            pairs.push((variant, wire.to_string()));
        }
        found.push(OpenEnum {
            name: name.clone(),
            description: schema
                .get("description")
                .and_then(serde_json::Value::as_str)
                .unwrap_or_default()
                .trim()
                .to_string(),
            values: pairs,
        });
    }
    Ok(found)
}

/// `AWAITING_CLIENT_APPROVAL` → `AwaitingClientApproval`,
/// `LineItem:RepriceTriggered` → `LineItemRepriceTriggered`, `include` →
/// `Include`. `None` when the value has no letter to start a name with.
fn variant_name(wire: &str) -> Option<String> {
    let mut name = String::new();
    for word in wire.split(|c: char| !c.is_ascii_alphanumeric()) {
        let mut chars = word.chars();
        let Some(first) = chars.next() else { continue };
        name.push(first.to_ascii_uppercase());
        let rest: String = chars.collect();
        if word.chars().any(|c| c.is_ascii_lowercase()) {
            name.push_str(&rest);
        } else {
            name.push_str(&rest.to_ascii_lowercase());
        }
    }
    name.starts_with(|c: char| c.is_ascii_alphabetic())
        .then_some(name)
}

/// Puts one `open_enum!` invocation per open enum at the top of the `types`
/// module. They are added as text, after formatting, because prettyplease
/// lays a macro's body out as one run of tokens; written here, each reads
/// like the enum it becomes.
fn with_open_enums(code: String, open_enums: &[OpenEnum]) -> Result<String, CodegenError> {
    if open_enums.is_empty() {
        return Ok(code);
    }
    const ANCHOR: &str = "\npub mod types {\n";
    let at = code
        .find(ANCHOR)
        .ok_or_else(|| CodegenError::Unformattable {
            problem: "the generated file has no `types` module".to_string(),
        })?
        + ANCHOR.len();
    let mut enums = String::new();
    for open_enum in open_enums {
        enums.push_str("    open_enum! {\n");
        for line in open_enum.description.lines() {
            let line = line.trim_end();
            if line.is_empty() {
                enums.push_str("        ///\n");
            } else {
                enums.push_str(&format!("        /// {line}\n"));
            }
        }
        enums.push_str(&format!("        {} {{\n", open_enum.name));
        for (variant, wire) in &open_enum.values {
            enums.push_str(&format!("            {variant} => {wire:?},\n"));
        }
        enums.push_str("        }\n    }\n");
    }
    // The result must still be Rust: a description could end a doc comment
    // early only through a line break, which `lines()` has removed.
    let mut code = code;
    code.insert_str(at, &enums);
    syn::parse_file(&code).map_err(|e| CodegenError::Unformattable {
        problem: format!("the open enums: {e}"),
    })?;
    Ok(code)
}

/// The generated `Client::new` builds its `reqwest::Client` with reqwest's
/// default redirect policy, which follows a `307`/`308` to any host and
/// sends the body again: a login's password, a refresh token, would go
/// with it. It follows none: a redirect comes back as the answer. (The SDK
/// builds its own client, which follows them within the environment's
/// origin.) Fails if progenitor's code no longer has that builder.
fn without_redirects(code: String) -> Result<String, CodegenError> {
    const BUILDER: &str = "reqwest::ClientBuilder::new().connect_timeout(dur).timeout(dur)";
    if code.matches(BUILDER).count() != 1 {
        return Err(CodegenError::Unformattable {
            problem: format!("`Client::new` no longer builds its client with `{BUILDER}`"),
        });
    }
    Ok(code.replace(
        BUILDER,
        "reqwest::ClientBuilder::new()\n                .connect_timeout(dur)\n                .timeout(dur)\n                .redirect(reqwest::redirect::Policy::none())",
    ))
}

/// Every path parameter goes through the generated crate's own
/// `path_segment` instead of progenitor's `encode_path`, which escapes
/// `/ ? # %` but leaves `.` and `..` as they are: the URL parser then
/// resolves them away, so "close line item `..`" of project p1 would send
/// `POST /projects/p1/close`. `path_segment` refuses them (and an empty id)
/// with `Error::InvalidRequest`, before anything is sent. The calls sit
/// inside `format!`, so they are rewritten as tokens, before parsing.
fn with_checked_path_segments(tokens: TokenStream) -> TokenStream {
    let mut out = Vec::new();
    let mut tokens = tokens.into_iter().peekable();
    while let Some(token) = tokens.next() {
        match token {
            TokenTree::Ident(ident) if ident == "encode_path" => match tokens.peek() {
                Some(TokenTree::Group(args)) if args.delimiter() == Delimiter::Parenthesis => {
                    let args = with_checked_path_segments(args.stream());
                    tokens.next();
                    let call: TokenStream =
                        "crate::path_segment(ARGS).map_err(Error::InvalidRequest)?"
                            .replace("ARGS", &args.to_string())
                            .parse()
                            .expect("valid tokens");
                    out.extend(call);
                }
                // The import, not a call.
                _ => out.push(TokenTree::Ident(ident)),
            },
            TokenTree::Group(group) => {
                let mut checked = Group::new(
                    group.delimiter(),
                    with_checked_path_segments(group.stream()),
                );
                checked.set_span(group.span());
                out.push(TokenTree::Group(checked));
            }
            other => out.push(other),
        }
    }
    out.into_iter().collect()
}

/// `schemars::JsonSchema` is derived only with the generated crate's
/// `schemars` feature: the drift test needs it, users do not, and it would
/// cost each of them four more crates.
fn gate_json_schema_derives(items: &mut [syn::Item]) {
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
        gate_derive(attrs, "JsonSchema", "schemars");
    }
}

/// Moves the derive of `trait_name` in `attrs`, if any, behind the crate
/// feature `feature`: `#[cfg_attr(feature = "…", derive(…))]`.
fn gate_derive(attrs: &mut Vec<syn::Attribute>, trait_name: &str, feature: &str) {
    use syn::punctuated::Punctuated;
    let mut gated = Vec::new();
    for attr in attrs
        .iter_mut()
        .filter(|attr| attr.path().is_ident("derive"))
    {
        let Ok(paths) =
            attr.parse_args_with(Punctuated::<syn::Path, syn::Token![,]>::parse_terminated)
        else {
            continue;
        };
        let (matching, rest): (Vec<_>, Vec<_>) = paths
            .into_iter()
            .partition(|path| path.segments.last().is_some_and(|s| s.ident == trait_name));
        if !matching.is_empty() {
            *attr = syn::parse_quote!(#[derive(#(#rest),*)]);
            gated.extend(matching);
        }
    }
    if !gated.is_empty() {
        attrs.push(syn::parse_quote!(
            #[cfg_attr(feature = #feature, derive(#(#gated),*))]
        ));
    }
}

/// The names of the generated types a request carries: those the fields of
/// each operation builder (the top-level `builder` module) name, its body and
/// its parameters, and every `types` item their definitions name, directly
/// or through others. `None` for a positional client, which has no operation
/// builders to read them from.
fn request_types(items: &mut [syn::Item]) -> Option<BTreeSet<String>> {
    let mut carried = BTreeSet::new();
    for item in module(items, "builder")?.iter() {
        if let syn::Item::Struct(builder) = item {
            for field in builder.fields.iter() {
                let ty = &field.ty;
                carried.extend(names_in(|n| syn::visit::Visit::visit_type(n, ty)));
            }
        }
    }
    Some(reached_types(module(items, "types")?, carried))
}

/// The names of the generated types Dynata answers with: those the `send`
/// of each operation builder returns (its success and its error), and every
/// `types` item they name, directly or through others. `None` for a
/// positional client.
fn answer_types(items: &mut [syn::Item]) -> Option<BTreeSet<String>> {
    let mut answered = BTreeSet::new();
    for item in module(items, "builder")?.iter() {
        let syn::Item::Impl(block) = item else {
            continue;
        };
        for function in &block.items {
            if let syn::ImplItem::Fn(function) = function
                && function.sig.ident == "send"
            {
                let output = &function.sig.output;
                answered.extend(names_in(|n| {
                    syn::visit::Visit::visit_return_type(n, output)
                }));
            }
        }
    }
    Some(reached_types(module(items, "types")?, answered))
}

/// The `types` items named in `roots`, and every one their definitions
/// name, directly or through others.
fn reached_types(types: &[syn::Item], roots: BTreeSet<String>) -> BTreeSet<String> {
    // Each type's name, and the names its definition mentions.
    let mut mentions: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for item in types.iter() {
        let (name, named) = match item {
            syn::Item::Struct(s) => (
                &s.ident,
                names_in(|n| syn::visit::Visit::visit_item_struct(n, s)),
            ),
            syn::Item::Enum(e) => (
                &e.ident,
                names_in(|n| syn::visit::Visit::visit_item_enum(n, e)),
            ),
            syn::Item::Type(t) => (
                &t.ident,
                names_in(|n| syn::visit::Visit::visit_item_type(n, t)),
            ),
            _ => continue,
        };
        mentions.insert(name.to_string(), named);
    }
    let mut reached = BTreeSet::new();
    let mut to_visit: Vec<String> = roots
        .into_iter()
        .filter(|name| mentions.contains_key(name))
        .collect();
    while let Some(name) = to_visit.pop() {
        if reached.insert(name.clone()) {
            to_visit.extend(
                mentions[&name]
                    .iter()
                    .filter(|n| mentions.contains_key(*n) && !reached.contains(*n))
                    .cloned(),
            );
        }
    }
    reached
}

fn names_in(node: impl FnOnce(&mut Names)) -> BTreeSet<String> {
    let mut names = Names::default();
    node(&mut names);
    names.0
}

/// Every identifier a syntax node contains.
#[derive(Default)]
struct Names(BTreeSet<String>);

impl<'ast> syn::visit::Visit<'ast> for Names {
    fn visit_ident(&mut self, ident: &'ast syn::Ident) {
        self.0.insert(ident.to_string());
    }
}

/// The items of the inline module `name` among `items`.
fn module<'a>(items: &'a mut [syn::Item], name: &str) -> Option<&'a mut Vec<syn::Item>> {
    items.iter_mut().find_map(|item| match item {
        syn::Item::Mod(m) if m.ident == name => m.content.as_mut().map(|(_, items)| items),
        _ => None,
    })
}

fn self_type(item: &syn::ItemImpl) -> Option<String> {
    match &*item.self_ty {
        syn::Type::Path(path) => path.path.segments.last().map(|s| s.ident.to_string()),
        _ => None,
    }
}

/// In builder style progenitor gives every generated struct a builder
/// (`types::builder::Project`, reached by `types::Project::builder()`). Users
/// build only what they send: a response type is only ever decoded. The
/// builders of the ~110 response types were three fifths of the Demand API's
/// generated file and most of its compile time, paid by every user's clean
/// build, so only the types a request carries (`request_types`) keep theirs.
fn keep_builders_of_request_types_only(types: &mut Vec<syn::Item>, requests: &BTreeSet<String>) {
    let unreached = |name: Option<String>| name.is_some_and(|n| !requests.contains(&n));
    if let Some(builders) = module(types, "builder") {
        builders.retain(|item| match item {
            syn::Item::Struct(s) => !unreached(Some(s.ident.to_string())),
            syn::Item::Impl(i) => !unreached(self_type(i)),
            _ => true,
        });
    }
    types.retain_mut(|item| {
        let syn::Item::Impl(block) = item else {
            return true;
        };
        if !unreached(self_type(block)) {
            return true;
        }
        block
            .items
            .retain(|f| !matches!(f, syn::ImplItem::Fn(f) if f.sig.ident == "builder"));
        !block.items.is_empty()
    });
}

/// The same reasoning for `serde::Serialize`: the SDK only decodes what
/// Dynata answers, and deriving `Serialize` for the ~100 answer types was a
/// fifth of the Demand API crate's compile time, on the critical path of
/// every user's clean build (`docs/build-cost.md`). An answer type
/// derives it only with the generated crate's `serialize` feature (the
/// command line's JSON output turns it on); request types always do.
fn gate_serialize_of_answer_types(types: &mut [syn::Item], requests: &BTreeSet<String>) {
    for item in types {
        let (name, attrs) = match item {
            syn::Item::Struct(item) => (&item.ident, &mut item.attrs),
            syn::Item::Enum(item) => (&item.ident, &mut item.attrs),
            _ => continue,
        };
        if !requests.contains(&name.to_string()) {
            gate_derive(attrs, "Serialize", "serialize");
        }
    }
}
/// Dynata's server is written in Go, which encodes an empty (nil) slice as
/// `null`: a project from UAT had `"exclusions": {"list": null}`, and an
/// empty page may well be `"data": null`. Every list (a `Vec` field of a
/// generated type) reads `null` as empty, through the crate's
/// `null_as_empty`; without it the whole answer failed to decode. A
/// required list is still required: only its value may be `null`. Only the
/// types `lenient` names are read so: those Dynata may answer with.
fn read_null_lists_as_empty(types: &mut [syn::Item], lenient: impl Fn(&str) -> bool) {
    let is_list = |ty: &syn::Type| {
        matches!(ty, syn::Type::Path(ty)
            if ty.path.segments.last().is_some_and(|segment| segment.ident == "Vec"))
    };
    for item in types {
        let syn::Item::Struct(item) = item else {
            continue;
        };
        if !lenient(&item.ident.to_string()) {
            continue;
        }
        for field in item.fields.iter_mut().filter(|field| is_list(&field.ty)) {
            field.attrs.push(syn::parse_quote!(
                #[serde(deserialize_with = "crate::null_as_empty")]
            ));
        }
    }
}

/// The counts of a page's `meta` (`Meta.total`, `Meta.pageSize`) only
/// inform: an odd one (`25.0`, `"25"`, past `i64`) is read as absent
/// through the crate's `integer_or_none`, so that it costs the count, not
/// the page (as `dynata-sdk`'s `Client::get` reads them).
fn read_odd_counts_as_none(types: &mut [syn::Item]) {
    const COUNTS: [(&str, &str); 2] = [("Meta", "total"), ("Meta", "page_size")];
    for item in types {
        let syn::Item::Struct(item) = item else {
            continue;
        };
        for field in item.fields.iter_mut() {
            let named = field.ident.as_ref().map(ToString::to_string);
            if COUNTS
                .iter()
                .any(|&(ty, name)| item.ident == ty && named.as_deref() == Some(name))
            {
                field.attrs.push(syn::parse_quote!(
                    #[serde(default, deserialize_with = "crate::integer_or_none")]
                ));
            }
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
/// assertions). Turn such a panic into an error message, without the panic
/// hook printing it and a backtrace hint first.
///
/// The panic hook is process-wide, and tests generate on many threads at
/// once: swapping the hook around each call would race (one thread restores
/// the hook another thread silenced, and the process stays silent). Instead
/// one hook is installed, once, in front of whatever hook was there; it stays
/// silent only for a panic on a thread that is inside this function.
fn without_panics<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !QUIET_PANICS.with(Cell::get) {
                previous(info);
            }
        }));
    });

    /// Ends this thread's quiet spell however `f` returns.
    struct Quiet;
    impl Drop for Quiet {
        fn drop(&mut self) {
            QUIET_PANICS.with(|quiet| quiet.set(false));
        }
    }
    QUIET_PANICS.with(|quiet| quiet.set(true));
    let quiet = Quiet;
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    drop(quiet);
    result.map_err(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "the generator panicked".to_string());
        format!("the generator panicked: {message}")
    })
}

thread_local! {
    /// Whether this thread is inside `without_panics`.
    static QUIET_PANICS: Cell<bool> = const { Cell::new(false) };
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

    fn target(spec: &str) -> &'static Target {
        TARGETS
            .iter()
            .find(|t| t.spec == spec)
            .expect("a target in the table")
    }

    fn auth() -> &'static Target {
        target("openapi/dynata-auth.yaml")
    }

    fn sample() -> &'static Target {
        target("openapi/dynata-sample.yaml")
    }

    fn committed_spec(target: &Target) -> String {
        read(&crate::project_root().join(target.spec)).expect("the spec is readable")
    }

    fn generated(target: &Target) -> String {
        generate(&committed_spec(target), target).expect("the spec generates")
    }

    /// `cargo test` alone catches a client that is stale against its spec.
    #[test]
    fn committed_clients_match_their_specs() {
        let outcomes = run_all(&crate::project_root(), Mode::Check);
        assert_eq!(outcomes.len(), TARGETS.len());
        let errors: Vec<String> = outcomes
            .into_iter()
            .filter_map(|outcome| outcome.err().map(|e| e.to_string()))
            .collect();
        assert!(errors.is_empty(), "{}", errors.join("\n\n"));
    }

    #[test]
    fn every_spec_in_openapi_has_a_target() {
        let mut specs: Vec<String> = std::fs::read_dir(crate::project_root().join("openapi"))
            .expect("openapi/ is readable")
            .map(|entry| {
                format!(
                    "openapi/{}",
                    entry.expect("entry").file_name().to_string_lossy()
                )
            })
            .filter(|name| name.ends_with(".yaml"))
            .collect();
        specs.sort();
        let mut targets: Vec<String> = TARGETS.iter().map(|t| t.spec.to_string()).collect();
        targets.sort();
        assert_eq!(specs, targets);
    }

    #[test]
    fn a_changed_description_makes_the_client_stale_with_a_readable_diff() {
        let spec =
            committed_spec(auth()).replace("summary: End the session", "summary: End it all");
        let generated = generate(&spec, auth()).expect("the edited spec still generates");
        let committed = read(&crate::project_root().join(auth().output)).expect("committed client");
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
        let message = CodegenError::Stale {
            output: auth().output,
            spec: auth().spec,
            diff,
        }
        .to_string();
        assert!(message.contains("Run `cargo xtask codegen`"), "{message}");
        assert!(message.contains(auth().output), "{message}");
    }

    #[test]
    fn the_output_names_the_command_and_the_spec() {
        for target in TARGETS {
            let generated = generated(target);
            let first_line = generated.lines().next().unwrap_or_default();
            assert_eq!(
                first_line,
                format!(
                    "// @generated by `cargo xtask codegen` from {}.",
                    target.spec
                )
            );
        }
    }

    #[test]
    fn json_schema_is_derived_only_behind_the_schemars_feature() {
        let gated = "#[cfg_attr(feature = \"schemars\", derive(schemars::JsonSchema))]";
        let generated_auth = generated(auth());
        assert_eq!(
            generated_auth.matches(gated).count(),
            6,
            "one per component type"
        );
        for target in TARGETS {
            let generated = generated(target);
            assert!(generated.contains(gated), "{}", target.spec);
            assert_eq!(
                generated.matches("derive(schemars::JsonSchema)").count(),
                generated.matches(gated).count(),
                "{}: no ungated derive",
                target.spec
            );
        }
    }

    #[test]
    fn every_list_dynata_may_answer_with_reads_null_as_empty() {
        let generated = generated(sample());
        let definition = |name: &str| {
            let start = generated
                .find(&format!("pub struct {name} {{"))
                .unwrap_or_else(|| panic!("{name}"));
            let end = start + generated[start..].find("\n    }\n").expect("its end");
            generated[start..end].to_string()
        };
        let lenient = "#[serde(deserialize_with = \"crate::null_as_empty\")]";
        // An answer, a type answers and requests share, an answer's
        // required list: each list reads `null` as empty.
        for (name, lists) in [
            ("Project", 3),
            ("Exclusions", 1),
            ("ProjectListResponse", 1),
        ] {
            assert_eq!(definition(name).matches(lenient).count(), lists, "{name}");
        }
        // Only a request carries these: a `null` list there is the
        // caller's mistake, and stays an error.
        for name in ["CreateProject", "UpdateProject", "UpdateLineItem"] {
            assert!(!definition(name).contains(lenient), "{name}");
        }
    }

    #[test]
    fn only_what_a_request_body_reaches_has_a_builder() {
        let generated = generated(sample());
        let has_builder = |name: &str| {
            generated.contains(&format!("pub fn builder() -> builder::{name} {{"))
                && generated.contains(&format!("pub struct {name} {{"))
        };
        // Request bodies, and a type one reaches only through another
        // (`CreateLineItem.targets: Vec<Target>`), keep theirs.
        for name in [
            "CreateProject",
            "CreateLineItem",
            "Target",
            "BuyItem",
            "UpdateLineItem",
        ] {
            assert!(has_builder(name), "{name} lost its builder");
        }
        // Answers are only decoded.
        for name in ["Project", "ProjectResponse", "LineItem", "ApiError", "Meta"] {
            assert!(
                !generated.contains(&format!("pub fn builder() -> builder::{name} {{")),
                "{name} kept a builder"
            );
        }
        // Both `types::builder` and the operation builders still name every
        // body type they use (or the crate would not compile; this says why).
        assert!(generated.contains("body: Result<types::builder::CreateProject, String>"));
    }

    #[test]
    fn a_positional_client_is_left_as_generated() {
        let spec = committed_spec(auth());
        let document: serde_json::Value = serde_norway::from_str(&spec).expect("yaml");
        let spec: openapiv3::OpenAPI = serde_json::from_value(document).expect("openapi");
        let mut generator =
            Generator::new(&settings(auth(), &[]).expect("the auth target has valid settings"));
        let tokens = generator
            .generate_tokens(&spec)
            .expect("the auth spec generates");
        let mut file: syn::File = syn::parse2(tokens).expect("progenitor's output parses");
        assert_eq!(
            request_types(&mut file.items),
            None,
            "no operation builders, so neither builders nor derives are pruned"
        );
        let generated = generated(auth());
        assert!(!generated.contains("feature = \"serialize\""));
        assert!(!generated.contains("pub fn builder()"));
    }

    #[test]
    fn answers_derive_serialize_only_behind_the_serialize_feature() {
        let generated = generated(sample());
        let derives_of = |name: &str| {
            let definition = ["struct", "enum"]
                .iter()
                .find_map(|kind| generated.find(&format!("pub {kind} {name} ")))
                .unwrap_or_else(|| panic!("{name} is generated"));
            let start = generated[..definition]
                .rfind("#[derive(")
                .expect("a derive precedes it");
            generated[start..definition].to_string()
        };
        let gated = "#[cfg_attr(feature = \"serialize\", derive(::serde::Serialize))]";
        for name in ["CreateProject", "Target", "BuyItem", "QuotaPlan"] {
            let derives = derives_of(name);
            assert!(derives.contains("::serde::Serialize,"), "{name}: {derives}");
            assert!(!derives.contains(gated), "{name}: {derives}");
        }
        for name in ["Project", "ProjectResponse", "LineItem", "ApiError", "Meta"] {
            let derives = derives_of(name);
            assert!(
                derives.contains("::serde::Deserialize"),
                "{name}: {derives}"
            );
            assert!(
                !derives.contains("::serde::Serialize,"),
                "{name}: {derives}"
            );
            assert!(derives.contains(gated), "{name}: {derives}");
        }
    }

    #[test]
    fn vendor_json_media_types_are_generated_as_typed_json() {
        let generated = generated(auth());
        assert!(
            !generated.contains("ByteStream>"),
            "a body fell back to raw bytes"
        );
        assert!(generated.contains("ResponseValue<types::TokenPair>"));
    }

    #[test]
    fn every_path_parameter_is_checked_as_one_segment() {
        let generated = generated(sample());
        // Printed inside `format!` as tokens: `crate ::path_segment(`,
        // with a line break before `::` at times.
        assert!(generated.contains("::path_segment(&"));
        assert!(
            !generated.contains("encode_path("),
            "a path parameter goes to encode_path unchecked"
        );
    }

    #[test]
    fn the_sample_client_carries_a_bearer_and_needs_hand_written_hooks() {
        let generated = generated(sample());
        assert!(generated.contains("inner: crate::Bearer"), "inner type");
        // HooksMode::Expected: no default impl the crate's own could hide behind.
        assert!(!generated.contains("impl ClientHooks<crate::Bearer> for &Client"));
        // One error type for every operation.
        assert!(!generated.contains("Error<()>"));
        assert!(generated.contains("Error<types::ApiError>"));
    }

    #[test]
    fn extensible_enums_become_open_enums_and_closed_ones_stay_closed() {
        let generated = generated(sample());
        assert!(
            generated.contains("open_enum! {"),
            "no open enum was emitted"
        );
        assert!(generated.contains("AwaitingClientApproval => \"AWAITING_CLIENT_APPROVAL\""));
        assert!(generated.contains("LineItemRepriceTriggered => \"LineItem:RepriceTriggered\""));
        // Fields refer to the open enum, not to a generated string enum.
        assert!(generated.contains("crate::types::LineItemState"));
        // Values only the client sends stay strict enums.
        assert!(generated.contains("pub enum QuotaCellAction"));
        assert!(!generated.contains("pub enum LineItemState"));
    }

    #[test]
    fn variant_names_follow_rust_conventions() {
        for (wire, variant) in [
            ("PROVISIONED", Some("Provisioned")),
            ("AWAITING_CLIENT_APPROVAL", Some("AwaitingClientApproval")),
            (
                "LineItem:RepriceTriggered",
                Some("LineItemRepriceTriggered"),
            ),
            ("include", Some("Include")),
            ("SIGNED_URL", Some("SignedUrl")),
            ("", None),
            ("42", None),
        ] {
            assert_eq!(variant_name(wire).as_deref(), variant, "{wire:?}");
        }
    }

    #[test]
    fn open_enum_values_that_collide_are_a_clear_error() {
        let spec = committed_spec(sample()).replace(
            "x-extensible-enum: [include, exclude]",
            "x-extensible-enum: [include, INCLUDE]",
        );
        let message = expect_error_in(&spec, sample());
        assert!(
            message.contains("TargetingOperator") && message.contains("`include` and `INCLUDE`"),
            "{message}"
        );
    }

    #[test]
    fn a_skipped_operation_is_left_out_but_its_schemas_are_generated() {
        let spec = committed_spec(sample());
        assert!(spec.contains("operationId: reconcile_project"));
        let generated = generated(sample());
        assert!(
            !generated.contains("fn reconcile_project"),
            "the multipart call is hand-written"
        );
        assert!(generated.contains("pub struct ReconcileResponse"));
    }

    #[test]
    fn without_the_skip_progenitor_refuses_the_multipart_upload() {
        // Guards the reason for `x-codegen-skip`: drop the mark, and the
        // generator must refuse (if a progenitor upgrade accepts it, the
        // upload can be generated and the hand-written call retired).
        let spec = committed_spec(sample()).replace("      x-codegen-skip: true\n", "");
        let message = expect_error_in(&spec, sample());
        assert!(message.contains("multipart/form-data"), "{message}");
    }

    /// A copy of `target` that labels errors `broken.yaml`.
    fn broken(target: &Target) -> Target {
        Target {
            spec: "broken.yaml",
            ..*target
        }
    }

    fn expect_error_in(spec: &str, target: &Target) -> String {
        match generate(spec, &broken(target)) {
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

    fn expect_error(spec: &str) -> String {
        expect_error_in(spec, auth())
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
        for target in TARGETS {
            let spec = committed_spec(target).replace("openapi: 3.0.3", "openapi: 3.1.0");
            let message = expect_error_in(&spec, target);
            assert!(
                message.contains("3.1.0") && message.contains("3.0.x"),
                "{message}"
            );
        }
    }

    /// Two error schemas for one operation make progenitor assert.
    fn spec_that_panics_the_generator() -> String {
        committed_spec(auth()).replacen(
            "        \"401\":\n          $ref: \"#/components/responses/AuthError\"",
            "        \"401\":\n          description: other\n          content:\n            application/json:\n              schema:\n                type: string",
            1,
        )
    }

    #[test]
    fn a_generator_panic_becomes_an_error() {
        let message = expect_error(&spec_that_panics_the_generator());
        assert!(message.contains("progenitor cannot generate"), "{message}");
        assert!(message.contains("panicked"), "{message}");
    }

    #[test]
    fn generator_panics_on_many_threads_at_once_are_each_caught() {
        let spec = spec_that_panics_the_generator();
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for _ in 0..5 {
                        let message = expect_error(&spec);
                        assert!(message.contains("panicked"), "{message}");
                    }
                });
            }
        });
    }

    #[test]
    fn only_the_generating_thread_is_quiet() {
        let inside = std::sync::Barrier::new(2);
        let checked = std::sync::Barrier::new(2);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                let quiet_inside = without_panics(|| {
                    let quiet = QUIET_PANICS.with(Cell::get);
                    inside.wait();
                    checked.wait();
                    quiet
                });
                assert_eq!(quiet_inside, Ok(true));
                assert!(!QUIET_PANICS.with(Cell::get), "quiet after returning");
                let after_a_panic = without_panics(|| panic!("boom"));
                assert_eq!(
                    after_a_panic,
                    Err("the generator panicked: boom".to_string())
                );
                assert!(!QUIET_PANICS.with(Cell::get), "quiet after a panic");
            });
            inside.wait();
            // Another thread is inside `without_panics`: this one's panics
            // still reach the hook that was there before.
            assert!(!QUIET_PANICS.with(Cell::get));
            checked.wait();
        });
    }

    #[test]
    fn a_missing_operation_id_is_a_clear_error() {
        let spec = committed_spec(auth()).replacen("      operationId: logout\n", "", 1);
        let message = expect_error(&spec);
        assert!(message.contains("operation ID"), "{message}");
    }
}
