//! Maintainer tasks for the dynata-sdk workspace, run as `cargo xtask <task>`.
//!
//! `codegen` turns each hand-written spec in `openapi/` into its low-level
//! client crate (the table is `codegen::TARGETS`); `fuzz` runs the property
//! tests with their long case counts; `build-cost` times a clean build of an
//! application on the SDK beside one on yup-oauth2.

mod build_cost;
mod codegen;
mod fuzz;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  codegen          regenerate every client crate from its spec in openapi/
  codegen --check  fail if a committed client differs from what its spec produces
  fuzz             the property tests with a million cases or more; prints the count and time
  build-cost [N]   N rounds (default 3) of clean builds of an application on dynata-sdk (HEAD)
                   and of one on yup-oauth2 12, alternating; needs crates.io";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mode = match args.as_slice() {
        ["fuzz"] => return fuzz::run(&project_root()),
        ["build-cost"] => return build_cost::run(&project_root(), build_cost::DEFAULT_ROUNDS),
        ["build-cost", rounds] if rounds.parse::<usize>().is_ok_and(|n| n > 0) => {
            let rounds = rounds.parse().unwrap_or(build_cost::DEFAULT_ROUNDS);
            return build_cost::run(&project_root(), rounds);
        }
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
