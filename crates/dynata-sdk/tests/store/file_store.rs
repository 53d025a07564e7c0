//! `FileStore` on its own: permissions, atomic replacement, damaged files,
//! encryption at rest, and the lease.

use std::fs;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use dynata_sdk::store::{EncryptionKey, FileStore, LeaseOwner, Source, StoreError, TokenStore};

use crate::{Renewals, TempDir, client, key, session_at};

#[tokio::test]
async fn a_saved_session_round_trips_in_a_private_file_and_leaves_no_temporaries() {
    let dir = TempDir::new("private");
    let store = FileStore::new(dir.path().join("nested"));
    let shared = client(Arc::new(store.clone()));
    let session = session_at(&shared, 1);
    for _ in 0..3 {
        store
            .save(&key(), &session, SystemTime::now())
            .await
            .expect("saved");
    }
    assert_eq!(store.load(&key()).await.expect("loads"), Some(session));
    let names: Vec<_> = fs::read_dir(store.dir())
        .expect("listed")
        .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
        .collect();
    assert_eq!(
        names,
        [format!("{}.session", key().digest())],
        "no temporary left behind"
    );
    let record = fs::read(store.session_path(&key())).expect("read");
    assert!(
        !String::from_utf8_lossy(&record).contains("alice"),
        "no username in the file"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode =
            |p: &std::path::Path| fs::metadata(p).expect("exists").permissions().mode() & 0o777;
        assert_eq!(mode(&store.session_path(&key())), 0o600);
        assert_eq!(mode(store.dir()), 0o700);
    }
}

/// A process killed between writing its temporary and renaming it leaves
/// the temporary behind, tokens and all. The next save sweeps away those
/// abandoned long enough ago that no writer can still be busy with them,
/// and leaves another process's write in progress alone.
#[tokio::test]
async fn a_save_sweeps_away_temporaries_abandoned_by_a_killed_process() {
    let dir = TempDir::new("abandoned-temporaries");
    let store = FileStore::new(dir.path());
    let shared = client(Arc::new(store.clone()));
    let session = session_at(&shared, 1);
    store
        .save(&key(), &session, SystemTime::now())
        .await
        .expect("saved");
    let session_name = format!("{}.session", key().digest());
    let temporary = |owner: &str| dir.path().join(format!(".{session_name}.{owner}.tmp"));
    let abandoned = temporary("killed-an-hour-ago");
    let in_progress = temporary("writing-now");
    let unrelated = dir.path().join(".notes.killed-an-hour-ago.tmp");
    for path in [&abandoned, &in_progress, &unrelated] {
        write_private(path, b"{\"access_token\":\"...\"}");
    }
    let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
    for path in [&abandoned, &unrelated] {
        fs::File::options()
            .write(true)
            .open(path)
            .and_then(|file| file.set_modified(an_hour_ago))
            .expect("backdated");
    }

    store
        .save(&key(), &session, SystemTime::now())
        .await
        .expect("saved again");

    assert!(!abandoned.exists(), "the abandoned temporary is swept");
    assert!(in_progress.exists(), "a write in progress is left alone");
    assert!(
        unrelated.exists(),
        "only the store's own temporaries are touched"
    );
    assert_eq!(store.load(&key()).await.expect("loads"), Some(session));
}

#[tokio::test]
async fn a_truncated_or_garbage_file_is_ignored_and_replaced_by_the_next_renewal() {
    let dir = TempDir::new("garbage");
    let store = FileStore::new(dir.path());
    let shared = client(Arc::new(store.clone()));
    let good = fs::read({
        store
            .save(&key(), &session_at(&shared, 1), SystemTime::now())
            .await
            .expect("saved");
        store.session_path(&key())
    })
    .expect("read");
    let damaged: [&[u8]; 4] = [
        &good[..good.len() / 2],
        b"",
        b"\xff\xfe garbage",
        &[b'{'; 100_000],
    ];
    for (round, bytes) in damaged.into_iter().enumerate() {
        write_private(&store.session_path(&key()), bytes);
        let error = store.load(&key()).await.expect_err("unusable");
        assert!(matches!(error, StoreError::Corrupt { .. }), "{error}");

        let renewals = Renewals::default();
        let outcome = shared
            .renew(None, |what| renewals.renew(&shared, what, Duration::ZERO))
            .await
            .expect("renewed");
        assert_eq!(outcome.source, Source::Renewed, "round {round}");
        assert_eq!(renewals.logins.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(
            store.load(&key()).await.expect("replaced"),
            Some(outcome.session)
        );
    }
}

#[cfg(unix)]
#[tokio::test]
async fn a_file_others_can_read_is_refused_said_so_and_replaced_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("mode");
    let store = FileStore::new(dir.path());
    let shared = client(Arc::new(store.clone()));
    let leaked = session_at(&shared, 1);
    store
        .save(&key(), &leaked, SystemTime::now())
        .await
        .expect("saved");
    let path = store.session_path(&key());
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");

    let error = store.load(&key()).await.expect_err("refused");
    assert!(matches!(error, StoreError::Insecure { .. }), "{error}");
    assert!(error.to_string().contains("0644"), "{error}");

    let renewals = Renewals::default();
    let outcome = shared
        .renew(None, |what| renewals.renew(&shared, what, Duration::ZERO))
        .await
        .expect("renewed");
    assert_eq!(
        outcome.source,
        Source::Renewed,
        "the exposed session is not adopted"
    );
    assert_ne!(outcome.session, leaked);
    assert_eq!(
        fs::metadata(&path).expect("exists").permissions().mode() & 0o777,
        0o600
    );
}

#[tokio::test]
async fn encrypted_records_are_shared_by_holders_of_the_key_only() {
    let dir = TempDir::new("sealed");
    let key_a = EncryptionKey::from_bytes([42; 32]);
    let writer = FileStore::new(dir.path()).with_encryption(key_a.clone());
    let shared = client(Arc::new(writer.clone()));
    let session = session_at(&shared, 1);
    writer
        .save(&key(), &session, SystemTime::now())
        .await
        .expect("saved");

    let record = fs::read(writer.session_path(&key())).expect("read");
    let text = String::from_utf8_lossy(&record);
    assert!(
        !text.contains("access-1") && !text.contains("refresh-1"),
        "tokens are sealed"
    );

    let reader = FileStore::new(dir.path()).with_encryption(key_a);
    assert_eq!(reader.load(&key()).await.expect("loads"), Some(session));
    // Refused, saying why replacing the record will not mend it (a fleet
    // configured with two keys was told "it will be replaced", for ever:
    // found by a walkthrough).
    let stranger = FileStore::new(dir.path()).with_encryption(EncryptionKey::from_bytes([1; 32]));
    let plain = FileStore::new(dir.path());
    for other in [stranger, plain] {
        let refused = other.load(&key()).await;
        assert!(
            matches!(refused, Err(StoreError::Corrupt { .. })),
            "{refused:?}"
        );
        let said = refused.expect_err("refused").to_string();
        assert!(said.contains("different encryption keys"), "{said}");
    }
}

#[tokio::test]
async fn only_the_holder_releases_the_lease() {
    let dir = TempDir::new("lease");
    let store = FileStore::new(dir.path());
    let (a, b) = (LeaseOwner::new("a"), LeaseOwner::new("b"));
    let ttl = Duration::from_secs(10);
    let now = SystemTime::now();
    assert!(
        store
            .try_acquire_lease(&key(), &a, ttl, now)
            .await
            .expect("answers")
    );
    assert!(
        !store
            .try_acquire_lease(&key(), &b, ttl, now)
            .await
            .expect("answers")
    );
    assert!(
        !store.release_lease(&key(), &b).await.expect("answers"),
        "b does not hold it"
    );
    assert!(store.lease_path(&key()).exists());
    // Past its time to live, a's lease passes to b; a's late release leaves b's alone.
    let later = now + ttl + Duration::from_millis(1);
    assert!(
        store
            .try_acquire_lease(&key(), &b, ttl, later)
            .await
            .expect("answers")
    );
    assert!(!store.release_lease(&key(), &a).await.expect("answers"));
    assert!(
        !store
            .try_acquire_lease(&key(), &a, ttl, later)
            .await
            .expect("answers")
    );
    assert!(store.release_lease(&key(), &b).await.expect("answers"));
    assert!(!store.lease_path(&key()).exists());
}

#[tokio::test]
async fn only_the_holder_extends_the_lease_and_it_then_lives_longer() {
    let dir = TempDir::new("extend");
    let store = FileStore::new(dir.path());
    let (a, b) = (LeaseOwner::new("a"), LeaseOwner::new("b"));
    let ttl = Duration::from_secs(10);
    let now = SystemTime::now();
    let at = |seconds| now + Duration::from_secs(seconds);
    assert!(
        store
            .try_acquire_lease(&key(), &a, ttl, now)
            .await
            .expect("answers")
    );
    assert!(
        !store
            .extend_lease(&key(), &b, ttl, at(8))
            .await
            .expect("answers"),
        "b does not hold it"
    );
    assert!(
        store
            .extend_lease(&key(), &a, ttl, at(8))
            .await
            .expect("answers")
    );
    // Without the extension it would have been b's at 10 s; now it lasts to 18 s.
    assert!(
        !store
            .try_acquire_lease(&key(), &b, ttl, at(15))
            .await
            .expect("answers")
    );
    assert!(
        store
            .try_acquire_lease(&key(), &b, ttl, at(19))
            .await
            .expect("answers")
    );
    assert!(
        !store
            .extend_lease(&key(), &a, ttl, at(19))
            .await
            .expect("answers"),
        "a's lease passed to b: a extends nothing"
    );
    assert!(store.release_lease(&key(), &b).await.expect("answers"));
    assert!(
        !store
            .extend_lease(&key(), &b, ttl, at(19))
            .await
            .expect("answers"),
        "a released lease is not brought back"
    );
    assert!(!store.lease_path(&key()).exists());
    let leftovers: Vec<_> = fs::read_dir(dir.path())
        .expect("readable")
        .map(|entry| entry.expect("entry").file_name())
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test]
async fn a_busy_guard_is_an_error_to_retry_never_a_lost_lease() {
    let dir = TempDir::new("guard-busy");
    let store = FileStore::new(dir.path());
    let a = LeaseOwner::new("a");
    let ttl = Duration::from_secs(15);
    assert!(
        store
            .try_acquire_lease(&key(), &a, ttl, SystemTime::now())
            .await
            .expect("answers")
    );
    // Another process holds the guard (for longer than anyone waits for it).
    let lease = store.lease_path(&key());
    let mut guard = lease.clone().into_os_string();
    guard.push(".guard");
    fs::write(&guard, b"").expect("written");

    let extended = store.extend_lease(&key(), &a, ttl, SystemTime::now()).await;
    assert!(extended.is_err(), "{extended:?}: a still holds the lease");
    let released = store.release_lease(&key(), &a).await;
    assert!(released.is_err(), "{released:?}: a still holds the lease");
    let record = fs::read_to_string(&lease).expect("still there");
    assert_eq!(record.lines().next(), Some("a"));

    fs::remove_file(&guard).expect("removed");
    assert!(
        store
            .extend_lease(&key(), &a, ttl, SystemTime::now())
            .await
            .expect("answers")
    );
    assert!(store.release_lease(&key(), &a).await.expect("answers"));
    let leftovers: Vec<_> = fs::read_dir(dir.path())
        .expect("readable")
        .map(|entry| entry.expect("entry").file_name())
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test]
async fn a_garbage_lease_file_counts_as_held_until_it_is_a_lease_old() {
    let dir = TempDir::new("lease-garbage");
    let store = FileStore::new(dir.path());
    fs::create_dir_all(store.dir()).expect("dir");
    let path = store.lease_path(&key());
    write_private(&path, b""); // a holder that died between creating and writing it
    let owner = LeaseOwner::new("me");
    let ttl = Duration::from_secs(10);
    assert!(
        !store
            .try_acquire_lease(&key(), &owner, ttl, SystemTime::now())
            .await
            .expect("answers")
    );
    let file = fs::File::options().write(true).open(&path).expect("open");
    file.set_modified(SystemTime::now() - ttl - Duration::from_secs(1))
        .expect("backdate");
    assert!(
        store
            .try_acquire_lease(&key(), &owner, ttl, SystemTime::now())
            .await
            .expect("answers")
    );
}

#[tokio::test]
async fn concurrent_acquirers_of_a_stale_lease_get_it_once() {
    // Many processes find the same dead holder's lease at once: exactly one
    // of them takes it over.
    let dir = TempDir::new("stale-race");
    let store = FileStore::new(dir.path());
    let ttl = Duration::from_secs(10);
    let now = SystemTime::now();
    let dead = LeaseOwner::new("dead");
    assert!(
        store
            .try_acquire_lease(&key(), &dead, ttl, now)
            .await
            .expect("answers")
    );
    let later = now + ttl * 2;
    for _ in 0..20 {
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    let owner = LeaseOwner::new(format!("racer-{i}"));
                    store
                        .try_acquire_lease(&key(), &owner, ttl, later)
                        .await
                        .expect("answers")
                })
            })
            .collect();
        let mut winners = 0;
        for task in tasks {
            winners += usize::from(task.await.expect("no panic"));
        }
        assert_eq!(winners, 1);
        // Make it stale again for the next round.
        fs::remove_file(store.lease_path(&key())).expect("remove");
        assert!(
            store
                .try_acquire_lease(&key(), &dead, ttl, now)
                .await
                .expect("answers")
        );
    }
}

fn write_private(path: &std::path::Path, bytes: &[u8]) {
    fs::write(path, bytes).expect("written");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(0o600)).expect("chmod");
    }
}

/// Where a test run by [`rerun_on_a_full_disk`] keeps its store.
#[cfg(unix)]
const FULL_DISK_DIR: &str = "DYNATA_TEST_FULL_DISK_DIR";

/// Runs the test `name` of this binary again in a child process in which
/// every file write fails (`ulimit -f 0`: creating a file works, writing a
/// byte fails with `EFBIG`), with its store in `dir`; the child's output.
#[cfg(unix)]
fn rerun_on_a_full_disk(name: &str, dir: &TempDir) -> String {
    fs::create_dir_all(dir.path()).expect("dir");
    let output = std::process::Command::new("sh")
        .arg("-c")
        .arg("trap '' XFSZ; ulimit -f 0; exec \"$0\" --exact \"$1\" --nocapture --test-threads=1")
        .arg(std::env::current_exe().expect("test binary"))
        .arg(name)
        .env(FULL_DISK_DIR, dir.path())
        .output()
        .expect("child ran");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A lease whose record could not be written (disk full, quota, EIO) is not
/// held by anyone: the process that failed to write it got an error and will
/// never release it. Leaving the empty file behind makes every other process
/// of the fleet wait a whole lease time to live for nobody, on every renewal,
/// for as long as the disk stays full.
#[cfg(unix)]
#[tokio::test]
async fn a_lease_whose_record_could_not_be_written_is_not_left_behind() {
    if let Some(dir) = std::env::var_os(FULL_DISK_DIR) {
        // The child: every file write fails.
        let store = FileStore::new(std::path::PathBuf::from(dir));
        let acquired = store
            .try_acquire_lease(
                &key(),
                &LeaseOwner::new("full-disk"),
                Duration::from_secs(15),
                SystemTime::now(),
            )
            .await;
        println!("CHILD-ACQUIRED-IS-ERR={}", acquired.is_err());
        return;
    }
    let dir = TempDir::new("full-disk");
    let stdout = rerun_on_a_full_disk(
        "file_store::a_lease_whose_record_could_not_be_written_is_not_left_behind",
        &dir,
    );
    assert!(
        stdout.contains("CHILD-ACQUIRED-IS-ERR=true"),
        "the child's acquire should fail on a full disk: {stdout}"
    );

    let store = FileStore::new(dir.path());
    let leftover = store.lease_path(&key()).exists();
    let other = store
        .try_acquire_lease(
            &key(),
            &LeaseOwner::new("other"),
            Duration::from_secs(15),
            SystemTime::now(),
        )
        .await
        .expect("answers");
    assert!(
        !leftover && other,
        "a lease nobody holds (its creator's write failed and it was told so) blocks the others: \
         lease file left behind = {leftover}, another process got the lease = {other}"
    );
}

/// Anything but a regular file in place of a record is refused, and looked
/// at before it is opened: opening a FIFO blocks until a writer comes, so
/// `load` never answered and its blocking thread was stuck for ever (and
/// with it the runtime's shutdown, at the end of `main`).
#[cfg(unix)]
#[tokio::test]
async fn a_fifo_in_place_of_the_session_is_refused_not_waited_on() {
    let dir = TempDir::new("fifo");
    let store = FileStore::new(dir.path());
    fs::create_dir_all(dir.path()).expect("dir");
    let path = store.session_path(&key());
    let made = std::process::Command::new("mkfifo")
        .arg("-m")
        .arg("600")
        .arg(&path)
        .status()
        .expect("mkfifo ran");
    assert!(made.success());

    let loaded = tokio::time::timeout(Duration::from_secs(2), store.load(&key())).await;
    // Unblock the stuck open (if any) so that the runtime can shut down.
    {
        use std::os::unix::fs::OpenOptionsExt;
        let _writer = fs::OpenOptions::new()
            .write(true)
            .custom_flags(0o4000) // O_NONBLOCK
            .open(&path);
    }
    match loaded {
        Ok(Err(StoreError::Corrupt { .. })) => {}
        Ok(other) => panic!("expected Corrupt, got {other:?}"),
        Err(_) => {
            panic!("load of a FIFO did not answer within 2 s (its thread is blocked in open)")
        }
    }
}

/// `LeaseOwner::new` takes any id, but a lease file cannot hold an empty one
/// or one with a line break: such an owner was granted the lease and could
/// then neither extend nor release it. It is refused now, or works.
#[tokio::test]
async fn an_owner_granted_the_lease_can_release_it() {
    for id in ["", "pod\nname"] {
        let dir = TempDir::new("owner-id");
        let store = FileStore::new(dir.path());
        let owner = LeaseOwner::new(id);
        let ttl = Duration::from_secs(15);
        let acquired = store
            .try_acquire_lease(&key(), &owner, ttl, SystemTime::now())
            .await;
        if !matches!(acquired, Ok(true)) {
            // Refusing the id is a fine answer too.
            continue;
        }
        assert!(
            store
                .extend_lease(&key(), &owner, ttl, SystemTime::now())
                .await
                .expect("answers"),
            "{id:?}: the holder cannot extend its lease"
        );
        assert!(
            store.release_lease(&key(), &owner).await.expect("answers"),
            "{id:?}: the holder cannot release its lease"
        );
    }
}

/// A guard file with an absurd modification time (the largest a
/// `SystemTime` holds, which tmpfs stores as given) is abandoned, not a
/// panic (an overflow in judging its age), nor a guard held for ever.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_guard_with_an_absurd_time_is_no_panic() {
    let base = std::path::Path::new("/dev/shm");
    if !base.is_dir() {
        return;
    }
    let dir = base.join(format!("dynata-review-guard-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    let store = FileStore::new(&dir);
    let owner = LeaseOwner::new("a");
    assert!(
        store
            .try_acquire_lease(&key(), &owner, Duration::from_secs(15), SystemTime::now())
            .await
            .expect("answers")
    );
    let mut guard = store.lease_path(&key()).into_os_string();
    guard.push(".guard");
    let file = fs::File::create(&guard).expect("guard");
    let far = SystemTime::UNIX_EPOCH + Duration::from_secs(i64::MAX as u64);
    let set = file.set_modified(far);
    drop(file);
    let released = store.release_lease(&key(), &owner).await;
    let _ = fs::remove_dir_all(&dir);
    if set.is_err() {
        return; // the file system refused the time: nothing to show
    }
    if let Err(error) = &released {
        assert!(!error.to_string().contains("panicked"), "{error}");
    }
}

/// The same, seen from the protocol: on a full disk (every write fails),
/// each renewal goes ahead without the store at once. Each used to wait for
/// the empty lease file the one before left to grow a lease's time to live
/// old (3 s here, 15 s by default).
#[cfg(unix)]
#[tokio::test(start_paused = true)]
async fn a_full_disk_does_not_delay_every_renewal_by_a_lease_time() {
    if let Some(dir) = std::env::var_os(FULL_DISK_DIR) {
        let store: Arc<dyn TokenStore> = Arc::new(FileStore::new(std::path::PathBuf::from(dir)));
        for process in 0..2 {
            let shared = client(Arc::clone(&store));
            let renewals = Renewals::default();
            let started = tokio::time::Instant::now();
            let outcome = shared
                .renew(None, |what| renewals.renew(&shared, what, Duration::ZERO))
                .await
                .expect("renewed");
            println!(
                "CHILD-RENEWAL-{process} {:?} took {} ms",
                outcome.source,
                started.elapsed().as_millis()
            );
        }
        return;
    }
    let dir = TempDir::new("full-disk-renew");
    let stdout = rerun_on_a_full_disk(
        "file_store::a_full_disk_does_not_delay_every_renewal_by_a_lease_time",
        &dir,
    );
    let took: Vec<u128> = stdout
        .lines()
        // Anywhere in a line: the harness's own output may precede it.
        .filter_map(|line| line.find("CHILD-RENEWAL-").map(|at| &line[at..]))
        .map(|line| {
            line.rsplit(' ')
                .nth(1)
                .expect("ms")
                .parse()
                .expect("number")
        })
        .collect();
    assert_eq!(took.len(), 2, "{stdout}");
    assert!(
        took.iter().all(|&ms| ms < 1_000),
        "renewals on a full disk took {took:?} ms: {stdout}"
    );
}
