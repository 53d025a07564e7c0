//! `FileStore`: a session shared by the processes of one machine, in files
//! under the user's cache directory.
//!
//! One account's session is `<digest>.session`, replaced atomically (write a
//! temporary file, sync it, rename it over, sync the directory), so a reader
//! sees the old record or the new one, never half of one. The renewal lease is
//! `<digest>.lease`, created exclusively (`O_EXCL`) and holding its owner and
//! expiry, so a process that dies holding it delays the others by at most its
//! time to live; removing a lease (stale, or released) or extending it
//! (rewritten atomically by its holder) happens under a second exclusive
//! file, `<digest>.lease.guard`, held for microseconds. Files are created
//! `0600` in a `0700` directory on Unix; a refused login is recorded in
//! `<digest>.rejected` (sealed like the session, removed once expired); a
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
    EncryptionKey, LONGEST_TTL, LeaseOwner, SessionCodec, StoreError, StoreFuture, StoreKey,
    StoredSession, TokenStore,
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

    /// The file recording the last login Dynata rejected for `key`'s account.
    pub fn rejected_login_path(&self, key: &StoreKey) -> PathBuf {
        self.inner.dir.join(format!("{}.rejected", key.digest()))
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
            super::off_the_runtime(move || work(&inner))
                .await
                .unwrap_or_else(|why| {
                    Err(StoreError::Unavailable {
                        message: format!("the file operation did not complete: {why}"),
                    })
                })
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
            // A plain record holds the tokens, as the one `save` wrote.
            let record = zeroize::Zeroizing::new(record);
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

    fn extend_lease<'a>(
        &'a self,
        key: &'a StoreKey,
        owner: &'a LeaseOwner,
        ttl: Duration,
        now: SystemTime,
    ) -> StoreFuture<'a, bool> {
        let path = self.lease_path(key);
        let owner = owner.clone();
        self.blocking(move |inner| {
            extend(&inner.dir, &path, &owner, ttl, now).map_err(|e| io_error("extend", &path, &e))
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

    fn load_rejected_login<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, Option<Vec<u8>>> {
        let path = self.rejected_login_path(key);
        let key = key.clone();
        self.blocking(move |inner| {
            let Some(record) = read_private(&path)? else {
                return Ok(None);
            };
            inner
                .codec
                .open(&key, &record)
                .map(|plain| Some(plain.to_vec()))
        })
    }

    /// Sealed like a session; kept past `ttl` (the record carries its own
    /// expiry), until replaced.
    fn save_rejected_login<'a>(
        &'a self,
        key: &'a StoreKey,
        record: &'a [u8],
        _ttl: Duration,
        _now: SystemTime,
    ) -> StoreFuture<'a, ()> {
        let path = self.rejected_login_path(key);
        let record = self.inner.codec.seal(key, record);
        self.blocking(move |inner| {
            let record = record?;
            ensure_dir(&inner.dir)?;
            // Renamed under the record's guard, so that a removal of an
            // expired record never takes this one for it.
            let written = (|| {
                let temporary = write_temporary(&inner.dir, &path, &record)?;
                let renamed = with_guard(&path, || fs::rename(&temporary, &path));
                if !matches!(renamed, Ok(Some(()))) {
                    let _ = fs::remove_file(&temporary);
                }
                renamed?.ok_or_else(guard_busy)?;
                sync_dir(&inner.dir);
                Ok(())
            })();
            written.map_err(|e| io_error("write", &path, &e))
        })
    }

    fn remove_rejected_login<'a>(&'a self, key: &'a StoreKey) -> StoreFuture<'a, ()> {
        let path = self.rejected_login_path(key);
        self.blocking(move |_| remove_if_present(&path).map_err(|e| io_error("remove", &path, &e)))
    }

    fn remove_expired_rejected_login<'a>(
        &'a self,
        key: &'a StoreKey,
        seen: &'a [u8],
    ) -> StoreFuture<'a, ()> {
        let path = self.rejected_login_path(key);
        let (key, seen) = (key.clone(), seen.to_vec());
        self.blocking(move |inner| {
            let removed = with_guard(&path, || {
                let Some(record) = read_private(&path).map_err(io::Error::other)? else {
                    return Ok(());
                };
                match inner.codec.open(&key, &record) {
                    Ok(plain) if *plain == *seen => remove_if_present(&path),
                    // Replaced meanwhile (or unreadable): not ours to remove.
                    _ => Ok(()),
                }
            });
            removed
                .and_then(|done| done.ok_or_else(guard_busy))
                .map_err(|e| io_error("remove", &path, &e))
        })
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
    // Looked at before it is opened: opening a FIFO blocks until a writer
    // comes, for ever (and a blocked thread keeps the runtime from ending).
    match fs::metadata(path) {
        Ok(metadata) if !metadata.is_file() => {
            return Err(StoreError::Corrupt {
                reason: format!("{} is not a regular file", path.display()),
            });
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        _ => {}
    }
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
    let temporary = write_temporary(dir, path, contents)?;
    let renamed = fs::rename(&temporary, path);
    if renamed.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    renamed?;
    sync_dir(dir);
    Ok(())
}

/// `contents` in a new private file beside `path`, synced: ready to be
/// renamed over it.
fn write_temporary(dir: &Path, path: &Path, contents: &[u8]) -> io::Result<PathBuf> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("session");
    sweep_abandoned_temporaries(dir, name);
    let temporary = dir.join(format!(".{name}.{}.tmp", LeaseOwner::random().as_str()));
    let written = (|| {
        let mut file = create_private(&temporary)?;
        file.write_all(contents)?;
        file.sync_all()
    })();
    match written {
        Ok(()) => Ok(temporary),
        Err(e) => {
            let _ = fs::remove_file(&temporary);
            Err(e)
        }
    }
}

/// How old a temporary must be before it counts as abandoned: a writer is
/// done with its temporary once it is synced and renamed, in milliseconds,
/// or seconds on a stalled disk.
const ABANDONED_AFTER: Duration = Duration::from_secs(10 * 60);

/// Removes the temporaries of `name` that a process killed between writing
/// and renaming left behind: they hold tokens, and nothing else would ever
/// remove them. Best effort, like the write it precedes.
fn sweep_abandoned_temporaries(dir: &Path, name: &str) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let prefix = format!(".{name}.");
    let now = SystemTime::now();
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else {
            continue;
        };
        if !(file_name.starts_with(&prefix) && file_name.ends_with(".tmp")) {
            continue;
        }
        let abandoned = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|modified| now.duration_since(modified).ok())
            .is_some_and(|age| age >= ABANDONED_AFTER);
        if abandoned {
            let _ = fs::remove_file(entry.path());
        }
    }
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
    // An id the record cannot hold (empty, or with a line break) would get a
    // lease it could then neither extend nor release.
    if parse_lease(&lease_record(owner, now)).map(|(id, _)| id) != Some(owner.as_str()) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a lease owner id must be one line, not empty",
        ));
    }
    let expires_at = now.checked_add(ttl.min(LONGEST_TTL)).unwrap_or(now);
    // Two rounds: a stale lease removed in the first is created in the second.
    for _ in 0..2 {
        match create_private(path) {
            Ok(mut file) => {
                let written = file
                    .write_all(lease_record(owner, expires_at).as_bytes())
                    .and_then(|()| file.sync_all());
                if written.is_err() {
                    // Ours, and held by nobody: this caller hears of the
                    // failure and renews alone. Left behind (a full disk),
                    // it would hold every other process for a lease's life.
                    // Under the guard, and only while it is still the file
                    // created here and holds no one else's record: a write
                    // that stalled past the lease's life may have seen it
                    // taken over meanwhile.
                    let created = file.metadata().ok();
                    let _ = with_guard(path, || match read_lease(path) {
                        Ok(record)
                            if is_still(path, created.as_ref())
                                && lease_owner(&record).is_none_or(|o| o == owner.as_str()) =>
                        {
                            remove_if_present(path)
                        }
                        _ => Ok(()),
                    });
                }
                return written.map(|()| true);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        let removed = with_guard(path, || match lease_state(path, ttl, now)? {
            LeaseState::Absent => Ok(true),
            LeaseState::Live => Ok(false),
            LeaseState::Stale => remove_if_present(path).map(|()| true),
        })?;
        if removed != Some(true) {
            return Ok(false);
        }
    }
    Ok(false)
}

/// The new record is written and synced first; under the guard (so that
/// nobody judges the lease stale and removes it meanwhile) the owner is
/// checked and the record renamed over the lease: the guard is held for a
/// read and a rename, as for every other use. A holder whose lease ran out
/// but was not yet taken over keeps it.
fn extend(
    dir: &Path,
    path: &Path,
    owner: &LeaseOwner,
    ttl: Duration,
    now: SystemTime,
) -> io::Result<bool> {
    let expires_at = now.checked_add(ttl.min(LONGEST_TTL)).unwrap_or(now);
    let temporary = write_temporary(dir, path, lease_record(owner, expires_at).as_bytes())?;
    let extended = with_guard(path, || {
        if holds(path, owner)? {
            fs::rename(&temporary, path).map(|()| true)
        } else {
            Ok(false)
        }
    });
    if !matches!(extended, Ok(Some(true))) {
        let _ = fs::remove_file(&temporary);
    }
    let extended = extended?.ok_or_else(guard_busy)?;
    if extended {
        sync_dir(dir);
    }
    Ok(extended)
}

fn release(path: &Path, owner: &LeaseOwner) -> io::Result<bool> {
    let released = with_guard(path, || {
        if holds(path, owner)? {
            remove_if_present(path).map(|()| true)
        } else {
            Ok(false)
        }
    })?;
    released.ok_or_else(guard_busy)
}

/// Whether the lease at `path` is `owner`'s (expired or not).
fn holds(path: &Path, owner: &LeaseOwner) -> io::Result<bool> {
    match read_lease(path) {
        Ok(record) => Ok(lease_owner(&record).as_deref() == Some(owner.as_str())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// The guard stayed busy: not an answer about who holds the lease (`false`
/// would tell a holder it lost it), but a failure to try again.
fn guard_busy() -> io::Error {
    io::Error::new(
        io::ErrorKind::WouldBlock,
        "another process held the lease's guard file",
    )
}

enum LeaseState {
    Absent,
    Live,
    Stale,
}

fn lease_state(path: &Path, ttl: Duration, now: SystemTime) -> io::Result<LeaseState> {
    let record = match read_lease(path) {
        Ok(record) => record,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(LeaseState::Absent),
        Err(e) => return Err(e),
    };
    let live = match std::str::from_utf8(&record).ok().and_then(parse_lease) {
        Some((_, expires_at)) => expires_at > now,
        // Empty or garbage: a holder that died between creating and writing
        // it, or is writing it right now. Its age decides.
        None => fs::metadata(path)
            .and_then(|m| m.modified())
            .is_ok_and(|modified| apart(modified, SystemTime::now()) < ttl.min(LONGEST_TTL)),
    };
    Ok(if live {
        LeaseState::Live
    } else {
        LeaseState::Stale
    })
}

/// A lease file's content, if it is a regular file; at most a few KiB (a
/// longer one is garbage, judged by its age). Never blocks on a FIFO.
fn read_lease(path: &Path) -> io::Result<Vec<u8>> {
    if !fs::metadata(path)?.is_file() {
        return Ok(Vec::new());
    }
    let mut record = Vec::new();
    File::open(path)?
        .take(MAX_LEASE_BYTES)
        .read_to_end(&mut record)?;
    Ok(record)
}

/// Whether `path` is still the file whose metadata is `created`: not one
/// another process created there since (the same device and inode). Where
/// that cannot be told (not Unix), whether the file is there at all.
fn is_still(path: &Path, created: Option<&fs::Metadata>) -> bool {
    let Ok(now) = fs::metadata(path) else {
        return false;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        created.is_some_and(|created| (created.dev(), created.ino()) == (now.dev(), now.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = (created, now);
        true
    }
}

/// Far more than an owner id and a time.
const MAX_LEASE_BYTES: u64 = 4096;

/// How far apart two wall-clock times are, either way: a file time in the
/// future (a clock stepped back since, or a planted file) is as far from
/// now as one in the past, so it never lives for ever.
fn apart(a: SystemTime, b: SystemTime) -> Duration {
    a.duration_since(b)
        .unwrap_or_else(|earlier| earlier.duration())
}

fn lease_owner(record: &[u8]) -> Option<String> {
    std::str::from_utf8(record)
        .ok()
        .and_then(parse_lease)
        .map(|(owner, _)| owner.to_string())
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// How long a guard may be held before others take it for abandoned: its
/// holder only reads and removes one small file.
const GUARD_STALE: Duration = Duration::from_secs(5);

/// Runs `work` holding `<lease>.guard`, which every removal of a lease file
/// takes: a lease judged stale (or ours) is removed only while the guard
/// makes sure nobody else removes or creates anything in between, so a
/// fresh lease is never removed by mistake. `None`: the guard stayed busy.
fn with_guard<T>(lease: &Path, work: impl FnOnce() -> io::Result<T>) -> io::Result<Option<T>> {
    let mut name = lease.file_name().unwrap_or_default().to_os_string();
    name.push(".guard");
    let guard = lease.with_file_name(name);
    for attempt in 0..50 {
        match create_private(&guard) {
            Ok(_) => {
                let outcome = work();
                remove_if_present(&guard)?;
                return outcome.map(Some);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                // A holder that died in the few microseconds it holds the
                // guard: past GUARD_STALE, remove it.
                let abandoned = fs::metadata(&guard)
                    .and_then(|m| m.modified())
                    .is_ok_and(|modified| apart(modified, SystemTime::now()) > GUARD_STALE);
                if abandoned {
                    remove_if_present(&guard)?;
                } else if attempt < 49 {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

fn io_error(operation: &str, path: &Path, error: &io::Error) -> StoreError {
    StoreError::Unavailable {
        message: format!("could not {operation} {}: {error}", path.display()),
    }
}

/// The user's cache directory, from the environment alone.
fn user_cache_dir() -> Option<PathBuf> {
    let var = |name| {
        std::env::var_os(name)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
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

    /// A file operation that panics is an error that says so, with the
    /// panic's message.
    #[tokio::test]
    async fn a_panicking_file_operation_says_why() {
        let store = FileStore::new(std::env::temp_dir().join("dynata-sdk-panicking-operation"));
        let error = store
            .blocking(|_| -> Result<(), StoreError> { panic!("disk on fire") })
            .await
            .expect_err("a panic in the work is an error");
        assert!(error.to_string().contains("disk on fire"), "{error}");
    }

    /// A failed lease write removes the file only if it is still the one
    /// this process created, not one another process created there since.
    #[cfg(unix)]
    #[test]
    fn a_file_replaced_since_is_not_the_one_created() {
        let dir = std::env::temp_dir().join(format!("dynata-sdk-is-still-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("lease");
        let _ = fs::remove_file(&path);
        let created = create_private(&path).expect("created");
        let ours = created.metadata().expect("metadata");
        assert!(is_still(&path, Some(&ours)));
        // Another process judged it stale, removed it and created its own
        // (kept open, so that its inode is not reused for ours).
        fs::remove_file(&path).expect("removed");
        let _theirs = create_private(&path).expect("created again");
        assert!(!is_still(&path, Some(&ours)));
        assert!(!is_still(&path, None));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_lease_record_round_trips_and_garbage_does_not_parse() {
        let owner = LeaseOwner::new("42-abc");
        let at = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_000);
        let record = lease_record(&owner, at);
        assert_eq!(parse_lease(&record), Some(("42-abc", at)));
        for garbage in [
            "",
            "42-abc",
            "42-abc\n",
            "42-abc\n17",
            "\n17\n",
            "a\nx\n",
            "a\n1\n2",
        ] {
            assert_eq!(parse_lease(garbage), None, "{garbage:?}");
        }
    }
}
