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
    let end = line.iter().position(|&b| b == b'\n').unwrap_or(line.len());
    line.truncate(end);
    let line = String::from_utf8(line)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    Ok(line.trim_end_matches('\r').to_owned())
}

/// Shows `prompt` and reads a line without echo (rpassword).
#[cfg(not(unix))]
pub(crate) fn prompt(prompt: &str) -> std::io::Result<String> {
    rpassword::prompt_password(prompt)
}
