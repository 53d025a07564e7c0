//! Maintainer tasks for the dynata-sdk workspace, run as `cargo xtask <task>`.
//!
//! There is one task today, `codegen`, which turns the hand-written spec in
//! `openapi/` into the low-level client in `crates/dynata-auth-api`.

mod codegen;
mod fuzz;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  codegen          regenerate crates/dynata-auth-api from openapi/dynata-auth.yaml
  codegen --check  fail if the committed client differs from what the spec produces
  fuzz             the property tests with a million cases or more; prints the count and time";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mode = match args.as_slice() {
        ["fuzz"] => return fuzz::run(&project_root()),
        ["codegen"] => codegen::Mode::Write,
        ["codegen", "--check"] => codegen::Mode::Check,
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match codegen::run(&project_root(), mode) {
        Ok(outcome) => {
            println!("{outcome}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root: the xtask crate sits one level below it.
fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives inside the workspace")
        .to_path_buf()
}
