//! `cargo xtask build-cost [ROUNDS]`: how long a clean debug build of an
//! application on `dynata-sdk` takes, beside the same application on
//! `yup-oauth2` 12, on this machine, now (`docs/build-cost.md`).
//!
//! Each application depends on tokio and one library: `dynata-sdk` as a `git`
//! dependency on this repository's `HEAD` (how an application depends on an
//! unpublished crate; a `path` dependency would be built with the
//! workspace's lints, incrementally), or `yup-oauth2` from crates.io. Both
//! are resolved at the same moment, so the crates they share are the same
//! versions. Every build starts from an empty target directory; the two
//! alternate, in turn first.
//!
//! The machine's speed drifts by up to a fifth within minutes (it is shared),
//! more than the difference being measured. So each build is also scaled by
//! how fast the machine was while it ran: the crates both applications
//! compile identically (same version, same features: tokio, rustls, serde,
//! hyper…) are the same work in every build, and their summed compile time,
//! read from cargo's `--timings` report, measures the machine. A build's
//! normalized time is its wall time times the median of those sums over
//! this build's own sum.
//!
//! Needs crates.io (for yup-oauth2 and the shared crates); never run by CI.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

/// Rounds when none are given: each builds both applications once.
pub(crate) const DEFAULT_ROUNDS: usize = 3;

const APPLICATIONS: [(&str, &str); 2] = [
    ("yup-oauth2", "yup-oauth2 = \"12\""),
    (
        "dynata-sdk",
        "dynata-sdk = { git = \"{REPO}\", rev = \"{REV}\" }",
    ),
];

/// One clean build of one application.
#[derive(Debug)]
struct Build {
    application: &'static str,
    wall_seconds: f64,
    /// `(name, version, target, features)` of each unit and its compile time.
    units: Vec<(String, f64)>,
}

pub(crate) fn run(root: &Path, rounds: usize) -> ExitCode {
    match measure(root, rounds) {
        Ok(()) => ExitCode::SUCCESS,
        Err(problem) => {
            eprintln!("error: {problem}");
            ExitCode::FAILURE
        }
    }
}

fn measure(root: &Path, rounds: usize) -> Result<(), String> {
    let rev = output(
        Command::new("git")
            .args(["rev-parse", "HEAD"])
            .current_dir(root),
    )?;
    let dirty = output(
        Command::new("git")
            .args(["status", "--porcelain", "--untracked-files=no"])
            .current_dir(root),
    )?;
    if !dirty.is_empty() {
        eprintln!("note: measuring the commit {rev}; uncommitted changes are not in it");
    }
    let scratch = std::env::temp_dir().join(format!("dynata-build-cost-{}", std::process::id()));
    let result = measure_in(root, &rev, &scratch, rounds);
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

fn measure_in(root: &Path, rev: &str, scratch: &Path, rounds: usize) -> Result<(), String> {
    let repo = format!("file://{}", root.display());
    let mut apps = Vec::new();
    for (name, dependency) in APPLICATIONS {
        let dir = scratch.join(name);
        let dependency = dependency.replace("{REPO}", &repo).replace("{REV}", rev);
        write_application(&dir, &format!("on-{name}"), &dependency)?;
        apps.push((name, dir));
    }
    // Resolve and download first, so that no build waits on the network.
    for (_, dir) in &apps {
        run_cargo(dir, &["generate-lockfile", "--quiet"], None)?;
        run_cargo(dir, &["fetch", "--quiet"], None)?;
    }
    println!("dynata-sdk at {rev}; {rounds} rounds of one clean debug build each");
    let mut builds = Vec::new();
    for round in 0..rounds {
        let mut order: Vec<&(&'static str, PathBuf)> = apps.iter().collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for (name, dir) in order {
            let build = build(name, dir, &scratch.join("target"))?;
            println!(
                "  round {}: {name:<10} {:6.2} s",
                round + 1,
                build.wall_seconds
            );
            builds.push(build);
        }
    }
    report(&builds);
    Ok(())
}

fn write_application(dir: &Path, package: &str, dependency: &str) -> Result<(), String> {
    // Named apart, so that the application itself is not a shared unit.
    let manifest = format!(
        "[package]\nname = \"{package}\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n\
         [dependencies]\n{dependency}\n\
         tokio = {{ version = \"1\", features = [\"macros\", \"rt-multi-thread\"] }}\n\n\
         # Not part of any enclosing workspace.\n[workspace]\n"
    );
    let write = |path: PathBuf, text: &str| {
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
    };
    std::fs::create_dir_all(dir.join("src"))
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    write(dir.join("Cargo.toml"), &manifest)?;
    write(dir.join("src").join("main.rs"), "fn main() {}\n")
}

fn build(application: &'static str, dir: &Path, target: &Path) -> Result<Build, String> {
    let _ = std::fs::remove_dir_all(target);
    let began = Instant::now();
    run_cargo(
        dir,
        &["build", "--quiet", "--offline", "--timings"],
        Some(target),
    )?;
    let wall_seconds = began.elapsed().as_secs_f64();
    let report = target.join("cargo-timings").join("cargo-timing.html");
    let html = std::fs::read_to_string(&report)
        .map_err(|e| format!("cannot read {}: {e}", report.display()))?;
    let units = units(&html).ok_or_else(|| {
        format!(
            "{} has no UNIT_DATA this task can read (did cargo's report change?)",
            report.display()
        )
    })?;
    let _ = std::fs::remove_dir_all(target);
    Ok(Build {
        application,
        wall_seconds,
        units,
    })
}

/// The units of a `--timings` report, from its embedded `UNIT_DATA`: one per
/// compiled crate or build script, named by everything that makes two of
/// them the same work.
fn units(html: &str) -> Option<Vec<(String, f64)>> {
    let start = html.find("const UNIT_DATA = ")? + "const UNIT_DATA = ".len();
    let end = start + html[start..].find(";\n")?;
    let data: serde_json::Value = serde_json::from_str(&html[start..end]).ok()?;
    data.as_array()?
        .iter()
        .map(|unit| {
            let text = |key: &str| unit.get(key).map(ToString::to_string).unwrap_or_default();
            let identity = [
                text("name"),
                text("version"),
                text("target"),
                text("features"),
            ];
            Some((identity.join(" "), unit.get("duration")?.as_f64()?))
        })
        .collect()
}

fn report(builds: &[Build]) {
    // Units every build compiled identically: the measure of the machine.
    let Some((first, rest)) = builds.split_first() else {
        return;
    };
    let shared: Vec<&str> = first
        .units
        .iter()
        .map(|(id, _)| id.as_str())
        .filter(|id| {
            rest.iter()
                .all(|b| b.units.iter().any(|(other, _)| other == id))
        })
        .collect();
    let shared_seconds = |build: &Build| -> f64 {
        build
            .units
            .iter()
            .filter(|(id, _)| shared.contains(&id.as_str()))
            .map(|(_, seconds)| seconds)
            .sum()
    };
    let reference = median(builds.iter().map(shared_seconds).collect());
    println!(
        "\n{} units are compiled identically by both (their compile time measures the machine):",
        shared.len()
    );
    println!("  application   wall     shared units   normalized");
    let mut summary = Vec::new();
    for (name, _) in APPLICATIONS {
        let mut walls = Vec::new();
        let mut normalized = Vec::new();
        for build in builds.iter().filter(|b| b.application == name) {
            let machine = shared_seconds(build);
            let scaled = build.wall_seconds * reference / machine;
            println!(
                "  {name:<12} {:6.2} s  {machine:7.2} s     {scaled:6.2} s",
                build.wall_seconds
            );
            walls.push(build.wall_seconds);
            normalized.push(scaled);
        }
        summary.push((name, median(walls), median(normalized)));
    }
    if let [(base, base_wall, base_normalized), (ours, wall, normalized)] = summary[..] {
        println!(
            "\nmedian wall: {base} {base_wall:.2} s, {ours} {wall:.2} s ({:.3}x)",
            wall / base_wall
        );
        println!(
            "median normalized: {base} {base_normalized:.2} s, {ours} {normalized:.2} s ({:.3}x)",
            normalized / base_normalized
        );
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

fn run_cargo(dir: &Path, args: &[&str], target: Option<&Path>) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        // The xtask's own build settings must not leak into the measured builds.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET_DIR");
    match target {
        Some(target) => command.env("CARGO_TARGET_DIR", target),
        None => command.env_remove("CARGO_TARGET_DIR"),
    };
    let status = command
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "`cargo {}` in {} failed",
            args.join(" "),
            dir.display()
        ))
    }
}

fn output(command: &mut Command) -> Result<String, String> {
    let out = command
        .output()
        .map_err(|e| format!("cannot run {command:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!("{command:?} failed"));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_are_read_from_a_timings_report() {
        let html = "<script>\nconst UNIT_DATA = [\
            {\"i\":0,\"name\":\"serde\",\"version\":\"1.0.0\",\"mode\":\"todo\",\"target\":\"\",\
             \"features\":[\"std\"],\"start\":0.1,\"duration\":1.5},\
            {\"i\":1,\"name\":\"serde\",\"version\":\"1.0.0\",\"mode\":\"run-custom-build\",\
             \"target\":\" build-script (run)\",\"features\":[],\"start\":0.0,\"duration\":0.25}];\n\
            const CONCURRENCY_DATA = [];\n</script>";
        let read = units(html).expect("readable");
        assert_eq!(read.len(), 2);
        assert_eq!(read[0].1, 1.5);
        assert_ne!(read[0].0, read[1].0, "a build script is another unit");
        assert!(
            read[0].0.contains("\"std\""),
            "features are part of a unit's identity"
        );
        assert_eq!(units("<html>no data</html>"), None);
        assert_eq!(units("const UNIT_DATA = [{\"name\": \"x\"}];\n"), None);
    }

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(Vec::new()).is_nan());
    }
}
