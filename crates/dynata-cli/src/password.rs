//! The password prompt of `dynata login`: the terminal's echo goes off
//! before the prompt shows.
//!
//! rpassword writes its prompt, then turns echo off: a password typed the
//! moment the prompt shows (a password manager's auto-type, `expect`, a
//! paste) could be echoed in between, onto the screen and into a `script`
//! or CI log. Here echo is off first, and back as it was however the read
//! ends.

/// Shows `prompt` on the terminal and reads one line from it, not echoed.
#[cfg(unix)]
pub(crate) fn prompt(prompt: &str) -> std::io::Result<String> {
    use std::io::{BufRead as _, BufReader, Write as _};

    use rustix::termios::{self, LocalModes, OptionalActions, Termios};

    /// Puts the terminal's modes back when dropped.
    struct Restore<'a>(&'a std::fs::File, Termios);
    impl Drop for Restore<'_> {
        fn drop(&mut self) {
            let _ = termios::tcsetattr(self.0, OptionalActions::Now, &self.1);
        }
    }

    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")?;
    let shown = termios::tcgetattr(&tty)?;
    let mut quiet = shown.clone();
    quiet.local_modes.remove(LocalModes::ECHO);
    // The Enter still moves to the next line.
    quiet.local_modes.insert(LocalModes::ECHONL);
    termios::tcsetattr(&tty, OptionalActions::Now, &quiet)?;
    let _restore = Restore(&tty, shown);
    (&tty).write_all(prompt.as_bytes())?;
    (&tty).flush()?;
    let mut line = String::new();
    BufReader::new(&tty).read_line(&mut line)?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}

/// Shows `prompt` and reads a line without echo (rpassword).
#[cfg(not(unix))]
pub(crate) fn prompt(prompt: &str) -> std::io::Result<String> {
    rpassword::prompt_password(prompt)
}
