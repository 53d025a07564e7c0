//! `cargo xtask fuzz`: the property tests of everything that decodes bytes
//! from a server (or, for the sandbox, from a client), with their long case
//! counts: at least a million cases in all, against a few hundred under
//! `cargo test`.
//!
//! Each property prints `proptest-cases <name> <count>` when it is done (see
//! `check` in `tests/tests/props/main.rs` and `crates/dynata-sdk/src/props.rs`); this task runs the suites with `DYNATA_FUZZ`
//! set, adds those lines up, and prints the total and the time it took.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

/// Fewer cases than this in all is a failure: a property lost its long run.
const MINIMUM_CASES: u64 = 1_000_000;

/// The suites, as arguments to `cargo test`: the SDK's own readers of
/// server bytes (`crates/dynata-sdk/src/props.rs`), then the bodies, the SDK
/// over loopback and the sandbox (`tests/tests/props`).
const SUITES: &[&[&str]] = &[
    &["-p", "dynata-sdk", "--lib", "props::"],
    &["-p", "dynata-tests", "--test", "props"],
];

pub(crate) fn run(root: &Path) -> ExitCode {
    let began = Instant::now();
    let mut total = 0u64;
    let mut failed = false;
    for suite in SUITES {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let child = Command::new(cargo)
            .arg("test")
            .arg("--locked")
            .args(*suite)
            .args(["--", "--nocapture"])
            .env("DYNATA_FUZZ", "1")
            .current_dir(root)
            .stdout(Stdio::piped())
            .spawn();
        let mut child = match child {
            Ok(child) => child,
            Err(error) => {
                eprintln!(
                    "error: could not run cargo test {}: {error}",
                    suite.join(" ")
                );
                return ExitCode::FAILURE;
            }
        };
        let stdout = child.stdout.take().expect("stdout is piped");
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            println!("{line}");
            total += cases_in(&line).unwrap_or(0);
        }
        match child.wait() {
            Ok(status) if status.success() => {}
            _ => failed = true,
        }
    }
    let seconds = began.elapsed().as_secs_f64();
    println!(
        "\nfuzz: {total} cases in {seconds:.1} s ({:.0} cases/s), building included",
        total as f64 / seconds.max(f64::EPSILON)
    );
    if failed {
        eprintln!("error: a property failed; its shrunk input is above");
        return ExitCode::FAILURE;
    }
    if total < MINIMUM_CASES {
        eprintln!("error: {total} cases is under the minimum of {MINIMUM_CASES}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// The count from a `proptest-cases <name> <count>` line.
fn cases_in(line: &str) -> Option<u64> {
    let mut words = line.strip_prefix("proptest-cases ")?.split_whitespace();
    let _name = words.next()?;
    words.next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::cases_in;

    #[test]
    fn reads_the_count_of_a_cases_line_and_nothing_else() {
        assert_eq!(
            cases_in("proptest-cases sdk::login_answer 20000"),
            Some(20_000)
        );
        assert_eq!(cases_in("proptest-cases broken"), None);
        assert_eq!(cases_in("test result: ok. 7 passed"), None);
        assert_eq!(cases_in("running 7 tests"), None);
    }
}
