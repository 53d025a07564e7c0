//! Profiles: which account and environment `dynata` uses, one small JSON file
//! per profile in `<config dir>/dynata/profiles/<name>.json`. A profile never
//! holds a password or a token: sessions live in the SDK's file store.

use std::path::PathBuf;

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
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            Failure::usage(format!(
                "the profile file {} is not valid: {e}; fix or delete it",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Profile::default()),
        Err(e) => Err(Failure::io(&format!("read {}", path.display()), &e)),
    }
}

/// Saves the profile `name`, creating its directory.
pub(crate) fn save(name: &str, profile: &Profile) -> Result<(), Failure> {
    let path = path(name)?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| Failure::io(&format!("create {}", dir.display()), &e))?;
    }
    let mut text = serde_json::to_string_pretty(profile)
        .map_err(|e| Failure::usage(format!("cannot encode the profile: {e}")))?;
    text.push('\n');
    std::fs::write(&path, text).map_err(|e| Failure::io(&format!("write {}", path.display()), &e))
}
