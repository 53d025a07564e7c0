//! `FileStore`: a session shared by the processes of one machine, in files
//! under the user's cache directory.
//!
//! One account's session is `<digest>.session`, replaced atomically (write a
//! temporary file, sync it, rename it over, sync the directory), so a reader
//! sees the old record or the new one, never half of one. The renewal lease is
//! `<digest>.lease`, created exclusively (`O_EXCL`) and holding its owner and
//! expiry, so a process that dies holding it delays the others by at most its
//! time to live. Files are created `0600` in a `0700` directory on Unix; a
//! session file that others could read is refused (and replaced by the next
//! renewal), with a warning.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::codec::MAX_RECORD_BYTES;
use super::session::{from_unix_millis, unix_millis};
use super::{
    EncryptionKey, LeaseOwner, SessionCodec, StoreError, StoreFuture, StoreKey, StoredSession,
    TokenStore,
};

/// How often a waiter looks at the files for a change.
const CHANGE_POLL: Duration = Duration::from_millis(15);

/// Sessions in files, for the processes of one machine (services, workers,
/// command lines). See the [module documentation](super) for what anyone who
/// can read the files can do, and [`FileStore::with_encryption`].
#[derive(Clone, Debug)]
pub struct FileStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    codec: SessionCodec,
}

impl FileStore {
    /// Sessions in `dir` (created `0700` on first write if missing).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        FileStore {
            inner: Arc::new(Inner {
                dir: dir.into(),
                codec: SessionCodec::plain(),
            }),
        }
    }

    /// Sessions in the user's cache directory: `$XDG_CACHE_HOME/dynata/sessions`
    /// (or `~/.cache/dynata/sessions`) on Linux and other Unixes,
    /// `~/Library/Caches/dynata/sessions` on macOS,
    /// `%LOCALAPPDATA%\dynata\sessions` on Windows.
    pub fn in_cache_dir() -> Result<Self, StoreError> {
        let base = user_cache_dir().ok_or_else(|| StoreError::Config {
            message: "no cache directory: set HOME (or XDG_CACHE_HOME, LOCALAPPDATA), or give FileStore::new a directory".into(),
        })?;
        Ok(FileStore::new(base.join("dynata").join("sessions")))
    }

    /// Seals every record with AES-256-GCM under `key`.
    pub fn with_encryption(self, key: EncryptionKey) -> Self {
        self.with_codec(SessionCodec::encrypted(key))
    }

    /// Reads and writes records with `codec`.
    pub fn with_codec(self, codec: SessionCodec) -> Self {
        FileStore {
            inner: Arc::new(Inner {
                dir: self.inner.dir.clone(),
                codec,
            }),
        }
    }

    /// The directory holding the files.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The file holding the session of `key`.
    pub fn session_path(&self, key: &StoreKey) -> PathBuf {
        self.inner.dir.join(format!("{}.session", key.digest()))
    }

    /// The file holding the renewal lease of `key`.
    pub fn lease_path(&self, key: &StoreKey) -> PathBuf {
        self.inner.dir.join(format!("{}.lease", key.digest()))
    }

    /// Runs blocking file work off the async threads.
    fn blocking<'a, T: Send + 'static>(
        &self,
        work: impl FnOnce(&Inner) -> Result<T, StoreError> + Send + 'static,
    ) -> StoreFuture<'a, T> {
        let inner = Arc::clone(&self.inner);
        Box::pin(async move {
            tokio::task::spawn_blocking(move || work(&inner))
                .await
                .map_err(|e| StoreError::Unavailable {
                    message: format!("the file operation did not complete: {e}"),
                })?
        })
    }
}

impl TokenStore for FileStore {
    fn load<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, Option<StoredSession>> {
        let path = self.session_path(key);
        let key = key.clone();
        self.blocking(move |inner| {
            let Some(record) = read_private(&path)? else {
                return Ok(None);
            };
            inner.codec.decode(&key, &record).map(Some)
        })
    }

    fn save<'a>(
        &'a self,
        key: &'a StoreKey,
        session: &'a StoredSession,
        _now: SystemTime,
    ) -> StoreFuture<'a, ()> {
        let path = self.session_path(key);
        let record = self.inner.codec.encode(key, session);
        self.blocking(move |inner| {
            let record = zeroize::Zeroizing::new(record?);
            ensure_dir(&inner.dir)?;
            replace_atomically(&inner.dir, &path, &record).map_err(|e| io_error("write", &path, &e))
        })
    }

    fn remove<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, ()> {
        let path = self.session_path(key);
        self.blocking(move |_| match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error("remove", &path, &e)),
        })
    }

    fn try_acquire_lease<'a>(
        &'a self,
        key: &'a StoreKey,
        owner: &'a LeaseOwner,
        ttl: Duration,
        now: SystemTime,
    ) -> StoreFuture<'a, bool> {
        let path = self.lease_path(key);
        let owner = owner.clone();
        self.blocking(move |inner| {
            ensure_dir(&inner.dir)?;
            acquire(&path, &owner, ttl, now).map_err(|e| io_error("lock", &path, &e))
        })
    }

    fn release_lease<'a>(
        &'a self,
        key: &'a StoreKey,
        owner: &'a LeaseOwner,
    ) -> StoreFuture<'a, bool> {
        let path = self.lease_path(key);
        let owner = owner.clone();
        self.blocking(move |_| release(&path, &owner).map_err(|e| io_error("unlock", &path, &e)))
    }

    fn wait_for_change<'a>(&'a self, key: &'a StoreKey, at_most: Duration) -> StoreFuture<'a, ()> {
        let session = self.session_path(key);
        let lease = self.lease_path(key);
        Box::pin(async move {
            let deadline = tokio::time::Instant::now() + at_most;
            let before = (Stamp::of(&session), Stamp::of(&lease));
            loop {
                let now = tokio::time::Instant::now();
                if now >= deadline {
                    return Ok(());
                }
                tokio::time::sleep_until(deadline.min(now + CHANGE_POLL)).await;
                if (Stamp::of(&session), Stamp::of(&lease)) != before {
                    return Ok(());
                }
            }
        })
    }
}

/// Enough of a file's metadata to notice that it was replaced or removed.
#[derive(PartialEq, Eq)]
struct Stamp(Option<(u64, Option<SystemTime>, u64)>);

impl Stamp {
    fn of(path: &Path) -> Stamp {
        Stamp(fs::metadata(path).ok().map(|m| {
            #[cfg(unix)]
            let inode = std::os::unix::fs::MetadataExt::ino(&m);
            #[cfg(not(unix))]
            let inode = 0;
            (m.len(), m.modified().ok(), inode)
        }))
    }
}

/// The record in `path`, if there is one; refuses files others could read.
fn read_private(path: &Path) -> Result<Option<Vec<u8>>, StoreError> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error("open", path, &e)),
    };
    let metadata = file.metadata().map_err(|e| io_error("inspect", path, &e))?;
    if !metadata.is_file() {
        return Err(StoreError::Corrupt {
            reason: format!("{} is not a regular file", path.display()),
        });
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(StoreError::Insecure {
                message: format!(
                    "{} has mode {mode:04o}, so others may have read its tokens; it is ignored and will be replaced by a 0600 file",
                    path.display()
                ),
            });
        }
    }
    let mut record = Vec::new();
    file.take(MAX_RECORD_BYTES as u64 + 1)
        .read_to_end(&mut record)
        .map_err(|e| io_error("read", path, &e))?;
    Ok(Some(record))
}

fn ensure_dir(dir: &Path) -> Result<(), StoreError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|e| io_error("create", dir, &e))
}

/// A new file that only its owner can read or write, failing if it exists.
fn create_private(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// Writes `contents` to a temporary file beside `path`, syncs it, renames it
/// over `path`, and syncs the directory, so that `path` is always either the
/// old record or the new one, even across a crash.
fn replace_atomically(dir: &Path, path: &Path, contents: &[u8]) -> io::Result<()> {
    let temporary = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("session"),
        LeaseOwner::random().as_str()
    ));
    let written = (|| {
        let mut file = create_private(&temporary)?;
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&temporary, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    written?;
    sync_dir(dir);
    Ok(())
}

/// Makes a rename durable. Best effort: not every platform can open a directory.
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(dir) = File::open(dir) {
        let _ = dir.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

/// A lease file's content: the owner on one line, the expiry (Unix ms) on the next.
fn lease_record(owner: &LeaseOwner, expires_at: SystemTime) -> String {
    format!("{}\n{}\n", owner.as_str(), unix_millis(expires_at))
}

fn parse_lease(record: &str) -> Option<(&str, SystemTime)> {
    let mut lines = record.split('\n');
    let owner = lines.next().filter(|o| !o.is_empty())?;
    let expires = from_unix_millis(lines.next()?.parse().ok()?)?;
    (lines.next() == Some("")).then_some((owner, expires))
}

fn acquire(path: &Path, owner: &LeaseOwner, ttl: Duration, now: SystemTime) -> io::Result<bool> {
    let expires_at = now.checked_add(ttl).unwrap_or(now);
    // A few rounds: a stale lease broken in one round is created in the next.
    for _ in 0..4 {
        match create_private(path) {
            Ok(mut file) => {
                file.write_all(lease_record(owner, expires_at).as_bytes())?;
                file.sync_all()?;
                return Ok(true);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        let observed = match fs::read(path) {
            Ok(observed) => observed,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let live = match std::str::from_utf8(&observed).ok().and_then(parse_lease) {
            Some((holder, _)) if holder == owner.as_str() => {
                // Ours already (a second call without a release): extend it.
                replace_atomically(path.parent().unwrap_or(Path::new(".")), path, lease_record(owner, expires_at).as_bytes())?;
                return Ok(true);
            }
            Some((_, holder_expires)) => holder_expires > now,
            // Empty or garbage: a holder that died between creating and
            // writing it, or is writing it right now. Its age decides.
            None => fs::metadata(path)
                .and_then(|m| m.modified())
                .map(|modified| modified + ttl > SystemTime::now())
                .unwrap_or(false),
        };
        if live {
            return Ok(false);
        }
        break_stale(path, &observed)?;
    }
    Ok(false)
}

/// Removes the lease at `path` if it still holds `observed`. Move it aside
/// (atomic), look at what was moved: if it is not what we judged stale (a new
/// holder got in between), put it back unless yet another has appeared.
fn break_stale(path: &Path, observed: &[u8]) -> io::Result<()> {
    let aside = aside_path(path);
    match fs::rename(path, &aside) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    }
    let moved = fs::read(&aside).unwrap_or_default();
    if moved != observed {
        restore(&aside, path);
    }
    let _ = fs::remove_file(&aside);
    Ok(())
}

fn release(path: &Path, owner: &LeaseOwner) -> io::Result<bool> {
    let ours = |record: &[u8]| {
        std::str::from_utf8(record)
            .ok()
            .and_then(parse_lease)
            .is_some_and(|(holder, _)| holder == owner.as_str())
    };
    match fs::read(path) {
        Ok(record) if ours(&record) => {}
        Ok(_) => return Ok(false),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    }
    // Compare-and-delete: between the read and the removal, the lease may have
    // expired and passed to someone else, whose lease must survive.
    let aside = aside_path(path);
    match fs::rename(path, &aside) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    }
    let released = ours(&fs::read(&aside).unwrap_or_default());
    if !released {
        restore(&aside, path);
    }
    let _ = fs::remove_file(&aside);
    Ok(released)
}

fn aside_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{}.aside", LeaseOwner::random().as_str()));
    path.with_file_name(name)
}

/// Puts a lease moved aside by mistake back, unless a new one has appeared
/// (a hard link, unlike a rename, never replaces an existing file).
fn restore(aside: &Path, path: &Path) {
    if let Err(e) = fs::hard_link(aside, path)
        && e.kind() != io::ErrorKind::AlreadyExists
    {
        tracing::warn!(path = %path.display(), error = %e, "could not put back a renewal lease moved aside; its holder's lease ends early");
    }
}

fn io_error(operation: &str, path: &Path, error: &io::Error) -> StoreError {
    StoreError::Unavailable {
        message: format!("could not {operation} {}: {error}", path.display()),
    }
}

/// The user's cache directory, from the environment alone.
fn user_cache_dir() -> Option<PathBuf> {
    let var = |name| std::env::var_os(name).map(PathBuf::from).filter(|p| p.is_absolute());
    if cfg!(windows) {
        var("LOCALAPPDATA")
    } else if cfg!(target_os = "macos") {
        var("HOME").map(|home| home.join("Library").join("Caches"))
    } else {
        var("XDG_CACHE_HOME").or_else(|| var("HOME").map(|home| home.join(".cache")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_record_round_trips_and_garbage_does_not_parse() {
        let owner = LeaseOwner::new("42-abc");
        let at = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_000);
        let record = lease_record(&owner, at);
        assert_eq!(parse_lease(&record), Some(("42-abc", at)));
        for garbage in ["", "42-abc", "42-abc\n", "42-abc\n17", "\n17\n", "a\nx\n", "a\n1\n2"] {
            assert_eq!(parse_lease(garbage), None, "{garbage:?}");
        }
    }
}
