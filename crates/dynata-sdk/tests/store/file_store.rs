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
    let stranger = FileStore::new(dir.path()).with_encryption(EncryptionKey::from_bytes([1; 32]));
    assert!(matches!(
        stranger.load(&key()).await,
        Err(StoreError::Corrupt { .. })
    ));
    let plain = FileStore::new(dir.path());
    assert!(matches!(
        plain.load(&key()).await,
        Err(StoreError::Corrupt { .. })
    ));
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
