//! `dynata`: a command line for people who integrate with Dynata's Demand
//! API. See the crate README for the commands, exit codes and where state is
//! kept.

mod api;
mod cli;
mod demand;
mod dirs;
mod failure;
mod output;
mod password;
mod profile;
mod session;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use crate::cli::{Cli, Command};
use crate::failure::Failure;
use crate::session::{Context, SessionClient};

fn main() -> ExitCode {
    let cli = Cli::parse().without_empty_variables();
    if cli.verbose {
        // The SDK's spans and events; it never logs a secret.
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            // Its own report of a failed write is an eprintln!, which panics
            // on a closed pipe.
            .log_internal_errors(false)
            .with_max_level(tracing::Level::DEBUG)
            .with_target(true)
            .init();
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            output::noteln!("dynata: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            output::noteln!("dynata: {failure}");
            ExitCode::from(failure.code)
        }
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    profile::check_name(&cli.profile)?;
    let env = cli.env.as_deref();
    match cli.command {
        Command::Completions { shell } => {
            let mut command = Cli::command();
            // Written whole: clap_complete panics on a stdout closed early.
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut command, "dynata", &mut script);
            output::write_stdout(&script)
        }
        Command::Sandbox { port } => sandbox(port).await,
        Command::Login { username } => {
            let mut context = Context::for_login(&cli.profile, env)?;
            // Before the password goes anywhere: the login's session is
            // found later through the profile.
            profile::check_writable(&cli.profile)?;
            let username = session::login_username(username)?;
            let password = session::login_password(&context, &username)?;
            context.login(username.clone(), password).await?;
            output::noteln!(
                "Logged in to {} as {username} (profile {}). The session is kept; the password is not.",
                context.base_url,
                context.profile_name
            );
            Ok(())
        }
        Command::Logout => {
            let context = Context::new(&cli.profile, env)?;
            match context.logout().await? {
                Some(session::Revoked::Now) => {
                    output::noteln!("Logged out of {}.", context.base_url);
                }
                Some(session::Revoked::AlreadyEnded) => output::noteln!(
                    "The session at {} had already ended (Dynata no longer honours it); it is \
                     removed from this machine.",
                    context.base_url
                ),
                None => output::noteln!(
                    "No session to revoke at {}; nothing is stored.",
                    context.base_url
                ),
            }
            Ok(())
        }
        command => {
            let context = Context::new(&cli.profile, env)?;
            let session = context.client().await?;
            // Ctrl-C stops the command, not the process: a refresh under way
            // (in the background of a `feasibility wait`, or the one `dynata
            // token` waits for) runs in a task of its own, and the default
            // SIGINT would kill it after Dynata spent the stored refresh
            // token and before the new one reached the store.
            //
            // `biased`: the command is polled first, so that what it reads
            // from stdin before its first await (`--input -`, `--file -`)
            // is read before Ctrl-C is listened for; a Ctrl-C then still
            // ends the process, rather than waiting for a read that the
            // caught signal does not interrupt.
            let outcome = tokio::select! {
                biased;
                outcome = with_session(&context, &session, command) => outcome,
                () = ctrl_c() => Err(Failure {
                    code: failure::INTERRUPTED,
                    message: "interrupted".to_owned(),
                }),
            };
            // A refresh the command started (in the background, inside the
            // soft window, or one a `--timeout` stopped waiting for) must
            // reach the store before the runtime ends: cut off, it may have
            // spent the stored refresh token at Dynata, and the next command
            // would find the session ended. A Ctrl-C (a second one, if the
            // first stopped the command) ends the wait, exit 130. Listened
            // for at once: the handler the command's select installed keeps
            // the default SIGINT away, so a Ctrl-C nobody listened for would
            // be lost.
            let interrupted = outcome
                .as_ref()
                .is_err_and(|f| f.code == failure::INTERRUPTED);
            let finished = session.client.finish_renewal();
            let cut_short = tokio::select! {
                () = finished => false,
                () = ctrl_c() => true,
                () = async {
                    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                    let again = if interrupted { " again" } else { "" };
                    output::noteln!(
                        "dynata: waiting for the session's refresh to be stored (Ctrl-C{again} to quit at once; the session may then be lost)…"
                    );
                    std::future::pending::<()>().await;
                } => false,
            };
            if cut_short && !interrupted {
                return Err(Failure {
                    code: failure::INTERRUPTED,
                    message: "interrupted while the session's refresh was being stored; the session may be lost".to_owned(),
                });
            }
            outcome
        }
    }
}

/// Resolves at the next Ctrl-C (SIGINT); never, where it cannot be
/// listened for.
async fn ctrl_c() {
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// A command that needs the stored session (or a password).
async fn with_session(
    context: &Context,
    session: &SessionClient,
    command: Command,
) -> Result<(), Failure> {
    match command {
        Command::Token => {
            let token = session.access_token().await?;
            output::write_stdout(format!("{}\n", token.secret()).as_bytes())
        }
        Command::Whoami { output } => {
            let target = api::Target::parse("/sample/v1/users/info")?;
            let answer = api::call(session, reqwest::Method::GET, &target, None).await?;
            if !answer.ok() {
                return Err(answer.refusal());
            }
            // A 2xx that is not the envelope (a proxy's or a captive
            // portal's page) is not a working session.
            let data = answer
                .json()
                .and_then(|mut v| v.get_mut("data").map(serde_json::Value::take))
                .filter(serde_json::Value::is_object)
                .ok_or_else(|| {
                    Failure::unreachable(format!(
                        "the answer to GET /sample/v1/users/info (status {}) is not Dynata's user; is a proxy or a captive portal in the way?",
                        answer.status
                    ))
                })?;
            if output.output == cli::Format::Json {
                return output::print_json(&data);
            }
            // Either spelling, as the SDK's `UserInfo` reads it.
            let name = ["userName", "username"]
                .into_iter()
                .find_map(|field| data.get(field).and_then(serde_json::Value::as_str))
                .unwrap_or("(unknown)");
            output::write_stdout(
                format!(
                    "{} at {} (profile {})\n",
                    output::printable(name, &[]),
                    context.base_url,
                    context.profile_name
                )
                .as_bytes(),
            )
        }
        Command::Api(args) => api::run(session, args).await,
        Command::Projects(command) => demand::projects(session, command).await,
        Command::LineItems(command) => demand::line_items(session, command).await,
        Command::Feasibility(command) => demand::feasibility(session, command).await,
        Command::Invoice { project, output } => demand::invoice(session, &project, &output).await,
        Command::Login { .. }
        | Command::Logout
        | Command::Sandbox { .. }
        | Command::Completions { .. } => {
            // Matched by the outer `match`, before any session.
            Err(Failure::usage("this command needs no session"))
        }
    }
}

/// `dynata sandbox`: the emulator on loopback until Ctrl-C.
async fn sandbox(port: u16) -> Result<(), Failure> {
    let sandbox = dynata_sandbox::Sandbox::builder()
        .port(port)
        .start()
        .await
        .map_err(|e| Failure::usage(format!("cannot start the sandbox: {e}")))?;
    let url = sandbox.base_url();
    output::write_stdout(
        format!(
            "dynata sandbox listening on {url} (user sandbox, password sandbox)

Point dynata at it, in another shell (a profile of its own, so that your
default profile's account and session stay as they are):
  export DYNATA_ENV={url} DYNATA_PROFILE=sandbox
  DYNATA_PASSWORD=sandbox dynata login --username sandbox
  dynata whoami

Point the SDK (Environment::from_env, Credentials::from_env) at it:
  export DYNATA_BASE_URL={url} DYNATA_USERNAME=sandbox DYNATA_PASSWORD=sandbox

Ctrl-C stops it.
"
        )
        .as_bytes(),
    )?;
    tokio::signal::ctrl_c()
        .await
        .map_err(|e| Failure::io("wait for Ctrl-C", &e))?;
    drop(sandbox);
    Ok(())
}
