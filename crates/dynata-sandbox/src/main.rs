//! `dynata-sandbox`: serves the emulator (auth and Demand API) on 127.0.0.1 until Ctrl-C.
//! Flags are parsed by hand to keep the binary's dependencies at none.

use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use dynata_sandbox::Sandbox;

const USAGE: &str = "\
Usage: dynata-sandbox [--port PORT] [--user NAME:PASSWORD]... [--access-ttl SECS]
                      [--refresh-ttl SECS] [--session-max SECS] [--reusable-refresh-tokens]
                      [--account NAME:USER[,USER...]]... [--feasibility-delay SECS]

A local emulator of Dynata's auth API and Demand API (/sample/v1) on 127.0.0.1.

Options:
  --port PORT                Port to listen on (default 8080; 0 picks a free one)
  --user NAME:PASSWORD       A user who can log in; repeat for more
                             (default: one user sandbox:sandbox)
  --access-ttl SECS          Access token lifetime in whole seconds, at least 1
                             (default 1800)
  --refresh-ttl SECS         Refresh token lifetime in whole seconds, at least 1
                             (default 3600)
  --session-max SECS         Longest a session lives from its login, however often
                             it is refreshed: no token outlives it (default 36000)
  --reusable-refresh-tokens  A refresh token stays usable after a refresh, as by
                             Keycloak's default (default: single use, rotated)
  --account NAME:USERS       Put these users (comma-separated) in one account: they
                             share its projects, events and templates, which no
                             other account sees; repeat for more accounts (default:
                             each user is an account of its own)
  --feasibility-delay SECS   How long feasibility stays PROCESSING after a line item
                             is created or repriced, in whole seconds; 0 for at
                             once (default 3)
  -h, --help                 Print this help

Fault injection and counters, over HTTP on the same port (the crate's README
has every fault):
  curl -X POST localhost:PORT/__sandbox/faults \\
       -d '{\"operation\": \"refresh\", \"fault\": {\"status\": 503}, \"times\": 2}'
  curl -X DELETE localhost:PORT/__sandbox/faults   drop every queued fault
  curl localhost:PORT/__sandbox/counts             requests per operation
  curl -X POST localhost:PORT/__sandbox/revoke     revoke every token issued";

struct Options {
    port: u16,
    users: Vec<(String, String)>,
    access_ttl: u64,
    refresh_ttl: u64,
    session_max: u64,
    reusable_refresh_tokens: bool,
    accounts: Vec<(String, Vec<String>)>,
    feasibility_delay: u64,
}

fn main() -> ExitCode {
    let options = match parse(std::env::args().skip(1)) {
        Ok(Some(options)) => options,
        Ok(None) => {
            // A reader that stops early (`--help | head`) is no failure.
            let _ = writeln!(std::io::stdout(), "{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("error: {message}\n\nRun `dynata-sandbox --help` for usage.");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the tokio runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(options))
}

async fn run(options: Options) -> ExitCode {
    let default_user = options.users.is_empty();
    let names: Vec<String> = options.users.iter().map(|(name, _)| name.clone()).collect();
    let mut builder = Sandbox::builder()
        .port(options.port)
        .access_token_ttl(Duration::from_secs(options.access_ttl))
        .refresh_token_ttl(Duration::from_secs(options.refresh_ttl))
        .session_max(Duration::from_secs(options.session_max))
        .reusable_refresh_tokens(options.reusable_refresh_tokens)
        .feasibility_delay(Duration::from_secs(options.feasibility_delay));
    for (name, members) in options.accounts {
        builder = builder.account(name, members);
    }
    for (name, password) in options.users {
        builder = builder.user(name, password);
    }
    let sandbox = match builder.start().await {
        Ok(sandbox) => sandbox,
        Err(err) => {
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
    };
    let users = if default_user {
        "sandbox (password: sandbox)".to_owned()
    } else {
        names.join(", ")
    };
    // A reader gone (`| grep -m1 listening`, stdout closed) is no reason
    // to stop serving.
    let _ = writeln!(
        std::io::stdout(),
        "dynata-sandbox listening on {} (users: {users})",
        sandbox.base_url()
    );
    if let Err(err) = tokio::signal::ctrl_c().await {
        eprintln!("error: cannot wait for Ctrl-C: {err}");
        return ExitCode::FAILURE;
    }
    drop(sandbox);
    ExitCode::SUCCESS
}

/// `Ok(None)` means help was asked for.
fn parse(args: impl Iterator<Item = String>) -> Result<Option<Options>, String> {
    let mut options = Options {
        port: 8080,
        users: Vec::new(),
        access_ttl: 1800,
        refresh_ttl: 3600,
        session_max: 36000,
        reusable_refresh_tokens: false,
        accounts: Vec::new(),
        feasibility_delay: 3,
    };
    let mut args = args;
    while let Some(arg) = args.next() {
        // Both `--port 8080` and `--port=8080`.
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_owned(), Some(value.to_owned()))
            }
            _ => (arg, None),
        };
        if flag == "-h" || flag == "--help" {
            return Ok(None);
        }
        if flag == "--reusable-refresh-tokens" {
            if inline.is_some() {
                return Err(format!("`{flag}` takes no value"));
            }
            options.reusable_refresh_tokens = true;
            continue;
        }
        if !matches!(
            flag.as_str(),
            "--port"
                | "--user"
                | "--access-ttl"
                | "--refresh-ttl"
                | "--session-max"
                | "--account"
                | "--feasibility-delay"
        ) {
            return Err(format!("unknown argument `{flag}`"));
        }
        let value = match inline.or_else(|| args.next()) {
            Some(value) => value,
            None => return Err(format!("`{flag}` needs a value")),
        };
        match flag.as_str() {
            "--port" => {
                options.port = value.parse().map_err(|_| {
                    format!("`--port` takes a port number (0-65535), not `{value}`")
                })?;
            }
            "--user" => {
                let Some((name, password)) = value.split_once(':') else {
                    return Err(format!("`--user` takes NAME:PASSWORD, not `{value}`"));
                };
                if name.is_empty() {
                    return Err("`--user` needs a non-empty NAME before the colon".to_owned());
                }
                // The library keeps the last password of a name given twice;
                // on a command line that is a typo, and only one would work.
                if options.users.iter().any(|(user, _)| user == name) {
                    return Err(format!("`--user {name}:…` is given twice"));
                }
                options.users.push((name.to_owned(), password.to_owned()));
            }
            "--access-ttl" => options.access_ttl = seconds(&flag, &value)?,
            "--refresh-ttl" => options.refresh_ttl = seconds(&flag, &value)?,
            "--session-max" => options.session_max = seconds(&flag, &value)?,
            "--account" => {
                let (name, users) = value.split_once(':').unwrap_or((&value, ""));
                let users: Vec<String> = users
                    .split(',')
                    .filter(|user| !user.is_empty())
                    .map(str::to_owned)
                    .collect();
                if name.is_empty() || users.is_empty() {
                    return Err(format!(
                        "`--account` takes NAME:USER[,USER...], not `{value}`"
                    ));
                }
                options.accounts.push((name.to_owned(), users));
            }
            _ => {
                options.feasibility_delay = value.parse().map_err(|_| {
                    format!("`{flag}` takes a whole number of seconds, not `{value}`")
                })?;
            }
        }
    }
    // The library ignores an account member who is not a user; on a command
    // line that is a typo, and the account would silently lack them.
    let is_user = |member: &String| match options.users.is_empty() {
        true => member == "sandbox",
        false => options.users.iter().any(|(user, _)| user == member),
    };
    for (account, members) in &options.accounts {
        if let Some(stranger) = members.iter().find(|member| !is_user(member)) {
            return Err(format!(
                "`--account {account}:…` names `{stranger}`, who is not a user (add `--user {stranger}:PASSWORD`)"
            ));
        }
    }
    Ok(Some(options))
}

/// A lifetime: whole seconds, at least one, because Keycloak counts in whole
/// seconds and a token that lives `0` seconds is not one Dynata would issue.
fn seconds(flag: &str, value: &str) -> Result<u64, String> {
    match value.parse() {
        Ok(0) => Err(format!(
            "`{flag}` must be at least 1 second: lifetimes are whole seconds"
        )),
        Ok(secs) => Ok(secs),
        Err(_) => Err(format!(
            "`{flag}` takes a whole number of seconds, not `{value}`"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Option<Options>, String> {
        parse(list.iter().map(|arg| (*arg).to_owned()))
    }

    #[test]
    fn flags_take_separate_or_inline_values() {
        let options = args(&[
            "--port=0",
            "--user",
            "<Your username>:<Your Password>",
            "--user=bob:pass:with:colons",
            "--access-ttl",
            "5",
            "--refresh-ttl=9",
            "--session-max",
            "20",
            "--reusable-refresh-tokens",
            "--account",
            "acme:<Your username>,bob",
            "--feasibility-delay=0",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(options.port, 0);
        assert_eq!(
            options.users,
            [
                ("<Your username>".to_owned(), "<Your Password>".to_owned()),
                ("bob".to_owned(), "pass:with:colons".to_owned()),
            ]
        );
        assert_eq!(
            (options.access_ttl, options.refresh_ttl, options.session_max),
            (5, 9, 20)
        );
        assert!(options.reusable_refresh_tokens);
        assert_eq!(
            options.accounts,
            [(
                "acme".to_owned(),
                vec!["<Your username>".to_owned(), "bob".to_owned()]
            )]
        );
        assert_eq!(options.feasibility_delay, 0);
    }

    #[test]
    fn defaults_and_help() {
        let options = args(&[]).unwrap().unwrap();
        assert_eq!(options.port, 8080);
        assert!(options.users.is_empty());
        assert_eq!(
            (options.access_ttl, options.refresh_ttl, options.session_max),
            (1800, 3600, 36000)
        );
        assert!(!options.reusable_refresh_tokens);
        assert_eq!(options.feasibility_delay, 3);
        assert!(args(&["--port", "1", "--help"]).unwrap().is_none());
        assert!(args(&["-h"]).unwrap().is_none());
    }

    #[test]
    fn bad_flags_are_errors() {
        for bad in [
            &["--bogus"][..],
            &["--port"],
            &["--port", "99999"],
            &["--user", "nocolon"],
            &["--user", ":pw"],
            &["--access-ttl", "-1"],
            &["--refresh-ttl", "soon"],
            &["--access-ttl", "0"],
            &["--refresh-ttl=0"],
            &["--session-max", "0"],
            &["--access-ttl", "0.5"],
            &["--reusable-refresh-tokens=yes"],
            &["--account", "nousers"],
            &["--account", ":alice"],
            // Found by a walkthrough: both were accepted without a word.
            &["--user", "a:b", "--user", "a:c"],
            &["--user", "a:b", "--account", "acme:a,nobody"],
            &["--account", "acme:alice"],
            &["--feasibility-delay", "-1"],
            &["8080"],
        ] {
            assert!(args(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_zero_lifetime_is_refused_with_the_reason() {
        for flag in ["--access-ttl", "--refresh-ttl", "--session-max"] {
            let err = args(&[flag, "0"]).err().unwrap();
            assert!(
                err.contains(flag) && err.contains("at least 1 second"),
                "{err}"
            );
        }
    }
}
