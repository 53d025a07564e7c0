//! Maintainer tasks for the dynata-sdk workspace, run as `cargo xtask <task>`.
//!
//! `codegen` turns each hand-written spec in `openapi/` into its low-level
//! client crate (the table is `codegen::TARGETS`); `fuzz` runs the property
//! tests with their long case counts.

mod codegen;
mod fuzz;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  codegen          regenerate every client crate from its spec in openapi/
  codegen --check  fail if a committed client differs from what its spec produces
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
    let mut failed = false;
    for outcome in codegen::run_all(&project_root(), mode) {
        match outcome {
            Ok(outcome) => println!("{outcome}"),
            Err(error) => {
                eprintln!("error: {error}");
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// The workspace root: the xtask crate sits one level below it.
fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives inside the workspace")
        .to_path_buf()
}
