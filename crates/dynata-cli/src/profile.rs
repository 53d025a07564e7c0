//! Profiles: which account and environment `dynata` uses, one small JSON file
//! per profile in `<config dir>/dynata/profiles/<name>.json`. A profile never
//! holds a password or a token: sessions live in the SDK's file store.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::dirs;
use crate::failure::Failure;

/// What `dynata login` remembers for later commands.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub(crate) struct Profile {
    /// The username that logged in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) username: Option<String>,
    /// The environment it logged in to: `production`, `uat` or a URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) environment: Option<String>,
}

/// A profile name: letters, digits, `-`, `_` and `.` (not leading), so it is
/// always a plain file name.
pub(crate) fn check_name(name: &str) -> Result<(), Failure> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if valid {
        Ok(())
    } else {
        Err(Failure::usage(format!(
            "invalid profile name {name:?}: use letters, digits, '-', '_' and '.'"
        )))
    }
}

fn path(name: &str) -> Result<PathBuf, Failure> {
    check_name(name)?;
    let base = dirs::config_dir().ok_or_else(|| {
        Failure::usage("no config directory: set HOME (or XDG_CONFIG_HOME, APPDATA)")
    })?;
    Ok(base
        .join("dynata")
        .join("profiles")
        .join(format!("{name}.json")))
}

/// The profile `name`; an empty one if it was never saved.
pub(crate) fn load(name: &str) -> Result<Profile, Failure> {
    let path = path(name)?;
    read(&path)?.map_err(|e| {
        Failure::usage(format!(
            "the profile file {} is not valid: {e}; fix or delete it, or run \
             `dynata login --env ENV` to replace it",
            path.display()
        ))
    })
}

/// The profile `name` for `dynata login`, which rewrites all of it: a file
/// that is not valid is replaced, saying so, rather than refused.
pub(crate) fn load_replacing_invalid(name: &str) -> Result<Profile, Failure> {
    let path = path(name)?;
    Ok(read(&path)?.unwrap_or_else(|e| {
        crate::output::noteln!(
            "dynata: the profile file {} is not valid ({e}); this login replaces it",
            path.display()
        );
        Profile::default()
    }))
}

/// The profile at `path` (empty if there is none), or why its content is
/// not a profile.
fn read(path: &Path) -> Result<Result<Profile, serde_json::Error>, Failure> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(serde_json::from_slice(&bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Ok(Profile::default())),
        Err(e) => Err(Failure::io(&format!("read {}", path.display()), &e)),
    }
}

/// Whether the profile `name` can be saved: its directory made and written
/// to (a byte written to a scratch file there). `dynata login` asks before it
/// sends the password, since a login whose profile cannot be saved leaves
/// a live session that no later command finds.
pub(crate) fn check_writable(name: &str) -> Result<(), Failure> {
    let path = path(name)?;
    let dir = path.parent().expect("a profile path ends in a file name");
    std::fs::create_dir_all(dir)
        .map_err(|e| Failure::io(&format!("create {}", dir.display()), &e))?;
    crate::dirs::write_probe(dir)
        .map_err(|e| Failure::io(&format!("write in {}", dir.display()), &e))
}

/// Saves the profile `name`, creating its directory. The file is replaced
/// whole (written beside it, then renamed), so a `dynata` stopped halfway
/// leaves the old profile or the new one, never a truncated file.
pub(crate) fn save(name: &str, profile: &Profile) -> Result<(), Failure> {
    let path = path(name)?;
    let dir = path.parent().expect("a profile path ends in a file name");
    std::fs::create_dir_all(dir)
        .map_err(|e| Failure::io(&format!("create {}", dir.display()), &e))?;
    let mut text = serde_json::to_string_pretty(profile)
        .map_err(|e| Failure::usage(format!("cannot encode the profile: {e}")))?;
    text.push('\n');
    let write_failed = |e: std::io::Error| Failure::io(&format!("write {}", path.display()), &e);
    let mut file = tempfile::Builder::new()
        .prefix(".profile-")
        .tempfile_in(dir)
        .map_err(write_failed)?;
    file.write_all(text.as_bytes()).map_err(write_failed)?;
    file.persist(&path).map_err(|e| write_failed(e.error))?;
    Ok(())
}
