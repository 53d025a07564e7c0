//! The password prompt of `dynata login`: the terminal's echo goes off
//! before the prompt shows.
//!
//! rpassword writes its prompt, then turns echo off: a password typed the
//! moment the prompt shows (a password manager's auto-type, `expect`, a
//! paste) could be echoed in between, onto the screen and into a `script`
//! or CI log. Here echo is off first, and back as it was however the read
//! ends.

/// Shows `prompt` on the terminal and reads one line from it, not echoed.
/// The interrupt key (Ctrl-C) ends the read with
/// [`std::io::ErrorKind::Interrupted`], the terminal's modes restored: it
/// raises no signal meanwhile, since the default SIGINT would end the
/// process with echo still off.
#[cfg(unix)]
pub(crate) fn prompt(prompt: &str) -> std::io::Result<String> {
    use std::io::{Read as _, Write as _};

    use rustix::termios::{self, LocalModes, OptionalActions, SpecialCodeIndex, Termios};

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
    // The interrupt key ends the line (as an end-of-line character) rather
    // than raising SIGINT. `0` is a key disabled.
    let interrupt = Some(shown.special_codes[SpecialCodeIndex::VINTR])
        .filter(|&key| key != 0 && shown.local_modes.contains(LocalModes::ISIG));
    if let Some(key) = interrupt {
        quiet.local_modes.remove(LocalModes::ISIG);
        quiet.special_codes[SpecialCodeIndex::VEOL] = key;
    }
    termios::tcsetattr(&tty, OptionalActions::Now, &quiet)?;
    let _restore = Restore(&tty, shown);
    (&tty).write_all(prompt.as_bytes())?;
    (&tty).flush()?;
    // Read as the terminal delivers it, a line at a time: a line ended by
    // the interrupt key has no `\n`.
    let mut line = Vec::new();
    loop {
        let mut chunk = [0u8; 256];
        let read = (&tty).read(&mut chunk)?;
        line.extend_from_slice(&chunk[..read]);
        if interrupt.is_some_and(|key| line.contains(&key)) {
            let _ = (&tty).write_all(b"\n");
            return Err(std::io::Error::new(
                std::io::ErrorKind::Interrupted,
                "interrupted",
            ));
        }
        if read == 0 || line.contains(&b'\n') {
            break;
        }
    }
    password_in(line)
}

/// The password in `line`, as the terminal delivered it: up to its end of
/// line. One that is not UTF-8 is an error that holds nothing of it: a
/// `FromUtf8Error` keeps every byte of the line (in its `Debug`), and says
/// where the first bad one is.
#[cfg(unix)]
fn password_in(mut line: Vec<u8>) -> std::io::Result<String> {
    let end = line.iter().position(|&b| b == b'\n').unwrap_or(line.len());
    line.truncate(end);
    let line = String::from_utf8(line).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "the password typed is not UTF-8 text (is the terminal's character set UTF-8?)",
        )
    })?;
    Ok(line.trim_end_matches('\r').to_owned())
}

/// Shows `prompt` and reads a line without echo (rpassword).
#[cfg(not(unix))]
pub(crate) fn prompt(prompt: &str) -> std::io::Result<String> {
    rpassword::prompt_password(prompt)
}

#[cfg(all(test, unix))]
mod tests {
    use super::password_in;

    #[test]
    fn a_password_is_the_line_up_to_its_end() {
        assert_eq!(password_in(b"s3cret\r\n".to_vec()).unwrap(), "s3cret");
        assert_eq!(password_in(b"s3cret".to_vec()).unwrap(), "s3cret");
    }

    /// A password typed on a Latin-1 terminal (`\xe9`, an `é`): the error
    /// said where its first bad byte is, and held every byte in its
    /// `Debug` (found by re-review of 89232c1; `read_line` said only that
    /// the text was not UTF-8).
    #[test]
    fn a_password_that_is_not_utf8_is_not_in_the_error() {
        let error = password_in(b"hunter\xe92\n".to_vec()).expect_err("not UTF-8");
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
        let shown = format!("{error} {error:?}");
        assert!(
            !shown.contains("104, 117") && !shown.contains("index"),
            "the error quotes the password: {shown}"
        );
    }
}
