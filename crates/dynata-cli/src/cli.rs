//! The command line, as types: clap derives parsing, `--help` and completions
//! from them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  Dynata refused the request, or you are not logged in
  2  usage: a bad flag or input, no password available, or a local file
     that cannot be read or written
  3  Dynata could not be reached or did not answer in time
  130  interrupted (Ctrl-C), once a refresh under way is stored

Environment:
  DYNATA_USERNAME, DYNATA_PASSWORD  account (the password is never stored)
  DYNATA_ENV                        as --env
  DYNATA_BASE_URL                   used when neither --env nor DYNATA_ENV names one
  DYNATA_CLIENT_ID                  the auth API's client id (default api)
  (these rank above the profile's account and environment)
  NO_COLOR                          no colours, even on a terminal";

/// `dynata`: log in to Dynata once, then get tokens and call the Demand API.
#[derive(Debug, Parser)]
#[command(name = "dynata", version, after_help = EXIT_CODES)]
pub(crate) struct Cli {
    /// Dynata environment: production, uat, or a base URL (https, or http on loopback).
    #[arg(long, global = true, env = "DYNATA_ENV", value_name = "ENV")]
    pub(crate) env: Option<String>,

    /// Profile to use: its account and environment, saved by `dynata login`.
    #[arg(
        long,
        global = true,
        env = "DYNATA_PROFILE",
        default_value = "default",
        value_name = "NAME"
    )]
    pub(crate) profile: String,

    /// Trace what the SDK does on stderr (never a password or token).
    #[arg(long, short = 'v', global = true)]
    pub(crate) verbose: bool,

    #[command(subcommand)]
    pub(crate) command: Command,
}

impl Cli {
    /// An empty `DYNATA_ENV` or `DYNATA_PROFILE` (a CI template that
    /// resolved to nothing, `export DYNATA_ENV=` to clear it) counts as
    /// unset, as every other variable does here and in the SDK.
    pub(crate) fn without_empty_variables(mut self) -> Self {
        if self.env.as_deref().is_some_and(|env| env.trim().is_empty()) {
            self.env = None;
        }
        if self.profile.trim().is_empty() {
            self.profile = "default".to_owned();
        }
        self
    }
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Log in and keep the session (never the password) for later commands.
    Login {
        /// Username (default: DYNATA_USERNAME, else a prompt).
        #[arg(long, short = 'u')]
        username: Option<String>,
    },
    /// Print a valid access token, refreshed through the stored session when needed.
    Token,
    /// Show who is logged in (GET /sample/v1/users/info).
    Whoami {
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Revoke the session at Dynata and remove it from this machine.
    Logout,
    /// Make an authenticated request to the Demand API, in the manner of `gh api`.
    Api(ApiArgs),
    /// Projects of the Demand API.
    #[command(subcommand)]
    Projects(ProjectsCommand),
    /// Line items of a project.
    #[command(subcommand, name = "lineitems")]
    LineItems(LineItemsCommand),
    /// Feasibility of a project's line items.
    #[command(subcommand)]
    Feasibility(FeasibilityCommand),
    /// Download a closed project's invoice (a PDF).
    Invoice {
        /// The project's extProjectId.
        project: String,
        /// Where to write the PDF; `-` is stdout (refused on a terminal), `./-` a file named `-`.
        #[arg(short = 'o', long = "output-file", value_name = "FILE")]
        output: PathBuf,
    },
    /// Run Dynata's API emulator on loopback, and print how to point dynata and the SDK at it.
    Sandbox {
        /// Port to listen on; 0 picks a free one.
        #[arg(long, default_value_t = 8080)]
        port: u16,
    },
    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Args)]
pub(crate) struct ApiArgs {
    /// The path, such as /sample/v1/projects; a path without a leading slash is under /sample/v1/;
    /// or a URL of the environment's own host (an event's acceptURL).
    pub(crate) path: String,
    /// HTTP method (default GET, or POST with fields or --input).
    #[arg(short = 'X', long = "method", value_name = "METHOD")]
    pub(crate) method: Option<String>,
    /// A field: a query parameter for GET, a JSON body string field otherwise.
    #[arg(short = 'f', long = "field", value_name = "KEY=VALUE")]
    pub(crate) fields: Vec<String>,
    /// The request body, JSON, from a file or `-` for stdin.
    #[arg(long, value_name = "FILE")]
    pub(crate) input: Option<String>,
    /// Follow the paging of a list (meta.links.next, or offset and meta.total) and print one JSON array.
    #[arg(long)]
    pub(crate) paginate: bool,
    /// Print the status line and response headers (to stdout, before the body, as gh and curl do).
    #[arg(short = 'i', long = "include")]
    pub(crate) include: bool,
}

#[derive(Debug, Args)]
pub(crate) struct OutputArgs {
    /// Output format: a table for people, or JSON for scripts.
    #[arg(long, short = 'o', value_enum, default_value_t = Format::Table)]
    pub(crate) output: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ProjectsCommand {
    /// List projects (every page).
    List {
        /// Only projects in this state (PROVISIONED, LAUNCHED, PAUSED, CLOSED, ...).
        #[arg(long)]
        state: Option<String>,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Show one project, as JSON.
    Get {
        /// The project's extProjectId.
        project: String,
    },
    /// Create a project from a JSON file (`-` for stdin).
    Create {
        /// The project, as the body of POST /sample/v1/projects.
        #[arg(long, value_name = "FILE")]
        file: String,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Close a project.
    Close {
        /// The project's extProjectId.
        project: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum LineItemsCommand {
    /// List a project's line items (every page).
    List {
        /// The project's extProjectId.
        project: String,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Launch a line item.
    Launch {
        /// The project's extProjectId.
        project: String,
        /// The line item's extLineItemId.
        line_item: String,
    },
    /// Pause a line item.
    Pause {
        /// The project's extProjectId.
        project: String,
        /// The line item's extLineItemId.
        line_item: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum FeasibilityCommand {
    /// Wait until no line item's feasibility is PROCESSING, showing progress on stderr; then print it.
    Wait {
        /// The project's extProjectId.
        project: String,
        /// Seconds between looks.
        #[arg(long, default_value_t = 2.0)]
        interval: f64,
        /// Give up after this many seconds (exit 1; exit 3 if Dynata has answered no status by then).
        #[arg(long, default_value_t = 600.0)]
        timeout: f64,
        #[command(flatten)]
        output: OutputArgs,
    },
}
