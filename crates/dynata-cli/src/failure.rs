//! What went wrong, as one sentence on stderr and an exit code.
//!
//! Exit codes (also in `--help` and the README): 0 success; 1 Dynata (or the
//! stored session) refused; 2 usage: bad flags, bad input, a missing
//! password, a local file that cannot be read or written; 3 Dynata could not be reached or did not answer in time.

use std::fmt;

/// Exit code: Dynata answered, and refused (or the user is not logged in).
pub(crate) const REFUSED: u8 = 1;
/// Exit code: the command line or its input is wrong. clap uses 2 as well.
pub(crate) const USAGE: u8 = 2;
/// Exit code: no answer from Dynata (connection, timeout, gateway errors).
pub(crate) const UNREACHABLE: u8 = 3;
/// Exit code: stopped by Ctrl-C (128 + SIGINT, as a shell reports a process
/// the signal killed).
pub(crate) const INTERRUPTED: u8 = 130;

/// A failed command: the exit code and one plain sentence, free of secrets.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: u8,
    pub(crate) message: String,
}

impl Failure {
    pub(crate) fn refused(message: impl Into<String>) -> Self {
        Failure {
            code: REFUSED,
            message: message.into(),
        }
    }

    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Failure {
            code: USAGE,
            message: message.into(),
        }
    }

    pub(crate) fn unreachable(message: impl Into<String>) -> Self {
        Failure {
            code: UNREACHABLE,
            message: message.into(),
        }
    }

    /// An I/O failure on a local file or stream.
    pub(crate) fn io(what: &str, error: &std::io::Error) -> Self {
        Failure::usage(format!("cannot {what}: {error}"))
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The SDK's errors already say what happened with Dynata's error code and
/// request id, and never carry a secret; only the exit code is chosen here.
impl From<dynata_sdk::Error> for Failure {
    fn from(error: dynata_sdk::Error) -> Self {
        Failure {
            code: exit_code(&error),
            message: error.to_string(),
        }
    }
}

/// The exit code of an SDK error; a call not sent (its token's renewal
/// failed) by what failed.
fn exit_code(error: &dynata_sdk::Error) -> u8 {
    use dynata_sdk::Error;
    match error {
        Error::Transport { .. } | Error::Timeout { .. } => UNREACHABLE,
        // A gateway's 5xx after every retry: Dynata is not answering.
        Error::Api { status, .. } | Error::Rejected { status, .. } if *status >= 500 => UNREACHABLE,
        Error::Config { .. } | Error::InvalidRequest { .. } | Error::MissingEnvVar { .. } => USAGE,
        Error::NotSent { renewal } => exit_code(renewal),
        _ => REFUSED,
    }
}
