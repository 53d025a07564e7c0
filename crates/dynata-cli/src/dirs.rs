//! The platform's config and cache directories, looked up by hand: four
//! environment variables do not justify a dependency. The cache directory is
//! the one `dynata_sdk::store::FileStore::in_cache_dir` uses, so `dynata` and
//! programs using the SDK's file store share one session per account.

use std::path::PathBuf;

fn absolute_var(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .map(PathBuf::from)
        .filter(|path| path.is_absolute())
}

/// `$XDG_CONFIG_HOME` (or `~/.config`) on Linux and other Unixes,
/// `~/Library/Application Support` on macOS, `%APPDATA%` on Windows.
pub(crate) fn config_dir() -> Option<PathBuf> {
    if cfg!(windows) {
        absolute_var("APPDATA")
    } else if cfg!(target_os = "macos") {
        absolute_var("HOME").map(|home| home.join("Library").join("Application Support"))
    } else {
        absolute_var("XDG_CONFIG_HOME").or_else(|| absolute_var("HOME").map(|h| h.join(".config")))
    }
}

/// `$XDG_CACHE_HOME` (or `~/.cache`) on Linux and other Unixes,
/// `~/Library/Caches` on macOS, `%LOCALAPPDATA%` on Windows.
pub(crate) fn cache_dir() -> Option<PathBuf> {
    if cfg!(windows) {
        absolute_var("LOCALAPPDATA")
    } else if cfg!(target_os = "macos") {
        absolute_var("HOME").map(|home| home.join("Library").join("Caches"))
    } else {
        absolute_var("XDG_CACHE_HOME").or_else(|| absolute_var("HOME").map(|h| h.join(".cache")))
    }
}

/// Writes a byte to a scratch file in `dir`, and removes it: whether files
/// can be written there (not only created: a full disk creates them).
pub(crate) fn write_probe(dir: &std::path::Path) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut probe = tempfile::Builder::new()
        .prefix(".write-probe-")
        .tempfile_in(dir)?;
    probe.write_all(b"0")?;
    probe.flush()
}
