//! `RedisStore` and the fleet protocol against a real `redis-server`, which
//! each test starts on a free loopback port with persistence off and stops
//! when it ends. Redis keeps its own time (lease and entry expiry), so these
//! tests run on real time, with leases of a fraction of a second.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use dynata_sdk::auth_api::Secret;
use dynata_sdk::clock::{Clock, ManualClock, TokioClock};
use dynata_sdk::store::{
    LeaseOwner, RedisStore, SharedSession, Source, StoreError, StoredSession, TokenStore,
};

use crate::protocol::fleet_renews;
use crate::redis_server::RedisServer;
use crate::{Renewals, key, policy, session_at};

fn client(store: Arc<dyn TokenStore>) -> SharedSession {
    SharedSession::new(store, key(), policy(), Arc::new(TokioClock))
}

fn store(server: &RedisServer) -> RedisStore {
    RedisStore::new(&server.url())
        .expect("valid URL")
        .with_timeout(Duration::from_millis(300))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_clients_sharing_redis_renew_once() {
    let Some(server) = RedisServer::start("twenty_clients_sharing_redis_renew_once") else {
        return;
    };
    let renewals = Arc::new(Renewals::default());
    let sessions = fleet_renews(
        || Arc::new(store(&server)),
        20,
        &renewals,
        Duration::from_millis(200),
    )
    .await;
    assert_eq!(renewals.total(), 1, "{sessions:?}");
    assert!(
        sessions.iter().all(|(token, _)| token == "access-1"),
        "{sessions:?}"
    );
    assert_eq!(
        server.cli(&["EXISTS", &format!("{}:lease", key().name())]),
        "0",
        "released"
    );
    // The entry lives as long as its longer-lived token (the refresh
    // token, 600 s), no longer.
    let ttl: u64 = server
        .cli(&["PTTL", key().name()])
        .parse()
        .expect("a number");
    assert!((590_000..=600_000).contains(&ttl), "PTTL {ttl}");
}

/// A refresh token that ends before its access token (Keycloak shortens it
/// as the login session nears its end): the entry lives as long as the
/// access token, which the other processes can still use. (It lived as long
/// as the refresh token, and the fleet logged in one by one.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_lives_as_long_as_the_longer_lived_token() {
    let Some(server) = RedisServer::start("redis: the longer-lived token") else {
        return;
    };
    let store = store(&server);
    let now = SystemTime::now();
    let session = StoredSession::from_lifetimes(
        Secret::new("access"),
        Duration::from_secs(1800),
        Secret::new("refresh"),
        Duration::from_secs(5),
        now,
    )
    .expect("in range");
    store.save(&key(), &session, now).await.expect("saved");
    let ttl: u64 = server
        .cli(&["PTTL", key().name()])
        .parse()
        .expect("a number");
    assert!((1_790_000..=1_800_000).contains(&ttl), "PTTL {ttl}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_lease_holder_delays_the_others_by_at_most_its_lease() {
    let Some(server) = RedisServer::start("redis: a dead lease holder") else {
        return;
    };
    let mut short = policy();
    short.lease_ttl = Duration::from_millis(600);
    let shared = SharedSession::new(Arc::new(store(&server)), key(), short, Arc::new(TokioClock));
    let dead = LeaseOwner::new("dead-process");
    let raw = store(&server);
    assert!(
        raw.try_acquire_lease(&key(), &dead, Duration::from_millis(600), SystemTime::now())
            .await
            .expect("acquired")
    );
    let started = Instant::now();
    let renewals = Renewals::default();
    let outcome = shared
        .renew(None, |what| renewals.renew(&shared, what, Duration::ZERO))
        .await
        .expect("renewed");
    let waited = started.elapsed();
    assert_eq!(outcome.source, Source::Renewed);
    assert_eq!(renewals.total(), 1);
    assert!(
        waited >= Duration::from_millis(500),
        "took over after {waited:?}"
    );
    assert!(waited < Duration::from_millis(1500), "waited {waited:?}");
    assert!(
        !raw.release_lease(&key(), &dead).await.expect("answers"),
        "only the holder releases"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_holder_extends_the_lease() {
    let Some(server) = RedisServer::start("redis: only the holder extends the lease") else {
        return;
    };
    let raw = store(&server);
    let (a, b) = (LeaseOwner::new("a"), LeaseOwner::new("b"));
    let now = SystemTime::now();
    let lease = format!("{}:lease", key().name());
    let pttl = || -> i64 { server.cli(&["PTTL", &lease]).parse().expect("a number") };
    assert!(
        raw.try_acquire_lease(&key(), &a, Duration::from_secs(1), now)
            .await
            .expect("answers")
    );
    let minute = Duration::from_secs(60);
    assert!(
        !raw.extend_lease(&key(), &b, minute, now)
            .await
            .expect("answers")
    );
    assert!(pttl() <= 1_000, "b's extension changed nothing");
    assert!(
        raw.extend_lease(&key(), &a, minute, now)
            .await
            .expect("answers")
    );
    assert!(pttl() > 50_000, "a's extension took: PTTL {}", pttl());
    assert_eq!(server.cli(&["GET", &lease]), "a", "still a's");
    assert!(raw.release_lease(&key(), &a).await.expect("answers"));
    assert!(
        !raw.extend_lease(&key(), &a, minute, now)
            .await
            .expect("answers"),
        "a released lease is not brought back"
    );
    assert_eq!(server.cli(&["EXISTS", &lease]), "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewal_slower_than_the_lease_keeps_it_and_the_other_adopts() {
    let Some(server) = RedisServer::start("redis: a slow renewal keeps its lease") else {
        return;
    };
    two_renewing_slower_than_the_lease(&server, Arc::new(TokioClock)).await;
}

/// Two clients of `server` on `clock`, renewing at once a session inside
/// its soft window, with a Dynata that answers after one and a half leases
/// (real time): the refresh token is sent once, and one client adopts what
/// the other renewed.
async fn two_renewing_slower_than_the_lease(server: &RedisServer, clock: Arc<dyn Clock>) {
    let mut short = policy();
    short.lease_ttl = Duration::from_millis(600);
    let shared =
        || SharedSession::new(Arc::new(store(server)), key(), short.clone(), clock.clone());
    let (first, second) = (shared(), shared());
    // Issued 55 s ago with 60 s to live: inside the soft window, to be refreshed.
    let expiring = StoredSession::from_lifetimes(
        Secret::new("access-100"),
        Duration::from_secs(60),
        Secret::new("refresh-100"),
        Duration::from_secs(600),
        first.wall_clock().now() - Duration::from_secs(55),
    )
    .expect("in range");
    store(server)
        .save(&key(), &expiring, SystemTime::now())
        .await
        .expect("saved");
    let renewals = Renewals::default();
    let slow = Duration::from_millis(900);
    let (a, b) = tokio::join!(
        first.renew(Some(&expiring), |what| renewals.renew(&first, what, slow)),
        second.renew(Some(&expiring), |what| renewals.renew(&second, what, slow)),
    );
    assert_eq!(
        *renewals.refreshed_with.lock().unwrap(),
        ["refresh-100"],
        "the single-use refresh token was sent once"
    );
    let mut sources = [a.expect("renewed").source, b.expect("renewed").source];
    sources.sort_by_key(|s| format!("{s:?}"));
    assert_eq!(sources, [Source::Adopted, Source::Renewed]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outdated_password_is_sent_once_per_fleet_sharing_redis() {
    let Some(server) = RedisServer::start("redis: an outdated password") else {
        return;
    };
    crate::client::an_outdated_password_is_sent_once_per_fleet(|| Arc::new(store(&server))).await;
    // One record, which expires with the cooldown (5 minutes by default).
    let record = server.cli(&["KEYS", "*:rejected"]);
    assert_eq!(record.lines().count(), 1, "{record:?}");
    let ttl: u64 = server.cli(&["PTTL", &record]).parse().expect("a number");
    assert!((280_000..=300_000).contains(&ttl), "PTTL {ttl}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stopped_mid_run_fails_no_renewal_and_is_rejoined() {
    let Some(mut server) = RedisServer::start("redis stopped mid-run") else {
        return;
    };
    let shared = client(Arc::new(store(&server)));
    let renewals = Renewals::default();
    let first = shared
        .renew(None, |what| renewals.renew(&shared, what, Duration::ZERO))
        .await
        .expect("renewed");
    assert_eq!(first.source, Source::Renewed);

    server.stop();
    let started = Instant::now();
    let alone = shared
        .renew(Some(&first.session), |what| {
            renewals.renew(&shared, what, Duration::ZERO)
        })
        .await
        .expect("renewed without the store");
    assert_eq!(alone.source, Source::RenewedAlone);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    // The session came through the store: another process may be
    // refreshing with its refresh token under the lease, so this one logs in.
    assert_eq!(
        renewals.refreshes.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the shared refresh token was sent without the lease"
    );
    assert_eq!(renewals.logins.load(std::sync::atomic::Ordering::SeqCst), 2);

    server.resume(); // empty: persistence is off
    tokio::time::sleep(Duration::from_millis(600)).await; // the manager's reconnect backoff
    let mut rejoined = None;
    for _ in 0..20 {
        let outcome = shared
            .renew(Some(&alone.session), |what| {
                renewals.renew(&shared, what, Duration::ZERO)
            })
            .await
            .expect("renewed");
        if outcome.source == Source::Renewed {
            rejoined = Some(outcome);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rejoined = rejoined.expect("the store is used again once Redis is back");
    let stored = store(&server).load(&key()).await.expect("loads");
    assert_eq!(stored, Some(rejoined.session));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_value_is_ignored_and_replaced() {
    let Some(server) = RedisServer::start("redis: a corrupt value") else {
        return;
    };
    let redis = store(&server);
    let shared = client(Arc::new(store(&server)));
    let name = redis.session_key(&key());
    // A truncated header, something that was never ours, and a value that
    // is not even a string (another tool's hash), which Redis refuses to
    // `GET` with WRONGTYPE: not a store to give up on, but garbage to replace.
    let garbage: [&[&str]; 3] = [
        &["SET", &name, "DYNSESS"],
        &["SET", &name, "{\"accessToken\": \"x\"}"],
        &["HSET", &name, "accessToken", "x"],
    ];
    for command in garbage {
        server.cli(&["DEL", &name]);
        server.cli(command);
        assert!(
            matches!(redis.load(&key()).await, Err(StoreError::Corrupt { .. })),
            "{command:?}"
        );
        let renewals = Renewals::default();
        let outcome = shared
            .renew(None, |what| renewals.renew(&shared, what, Duration::ZERO))
            .await
            .expect("renewed");
        assert_eq!(outcome.source, Source::Renewed);
        assert_eq!(
            redis.load(&key()).await.expect("loads"),
            Some(outcome.session)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_protected_redis_works_and_a_wrong_password_never_shows() {
    let Some(server) = RedisServer::start_with_password("redis with a password", Some("s3cret-pw"))
    else {
        return;
    };
    let redis = store(&server);
    let shared = client(Arc::new(store(&server)));
    let session = session_at(&shared, 1);
    redis
        .save(&key(), &session, SystemTime::now())
        .await
        .expect("saved with the password");
    assert_eq!(redis.load(&key()).await.expect("loads"), Some(session));
    assert!(!format!("{redis:?}").contains("s3cret-pw"));

    let wrong = RedisStore::new(&format!("redis://:wrong-pw-123@127.0.0.1:{}/", server.port))
        .expect("valid URL")
        .with_timeout(Duration::from_millis(300));
    let error = wrong.load(&key()).await.expect_err("refused");
    let shown = format!("{error} {error:?}");
    assert!(!shown.contains("wrong-pw-123"), "{shown}");
    assert!(shown.contains("***"), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_names_carry_the_prefix_and_never_the_username() {
    let Some(server) = RedisServer::start("redis key names") else {
        return;
    };
    let redis = store(&server).with_key_prefix("survey-router:");
    let shared = client(Arc::new(store(&server).with_key_prefix("survey-router:")));
    let renewals = Renewals::default();
    shared
        .renew(None, |what| renewals.renew(&shared, what, Duration::ZERO))
        .await
        .expect("renewed");
    let keys = server.cli(&["KEYS", "*"]);
    assert_eq!(keys, format!("survey-router:{}", key().digest()));
    assert_eq!(keys, redis.session_key(&key()));
    assert!(!keys.contains("alice"));
}

/// Set in the child process of `rediss_trusts_the_platforms_roots_only`.
const REDISS_URL: &str = "DYNATA_TEST_REDISS_URL";
const REDISS_TRUSTED: &str = "DYNATA_TEST_REDISS_TRUSTED";
const REDISS_PASSWORD: &str = "tls-pa55word";

/// `rediss://`: the fleet shares its session over TLS, the server's
/// certificate checked against the platform's roots; with a certificate
/// they do not trust, nothing is sent, and the store's error shows no
/// password. The roots are read from `SSL_CERT_FILE` when it is set, and
/// tests cannot set environment variables (`unsafe_code` is forbidden): the
/// test runs itself again as a child process, once trusting the test's CA
/// and once another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_trusts_the_platforms_roots_only() {
    if let Ok(url) = std::env::var(REDISS_URL) {
        let redis = RedisStore::new(&url).expect("a rediss URL");
        let shared = client(Arc::new(RedisStore::new(&url).expect("a rediss URL")));
        let renewals = Renewals::default();
        let outcome = shared
            .renew(None, |what| renewals.renew(&shared, what, Duration::ZERO))
            .await
            .expect("renewed");
        if std::env::var_os(REDISS_TRUSTED).is_some() {
            assert_eq!(outcome.source, Source::Renewed, "through the store");
            assert_eq!(
                redis.load(&key()).await.expect("loads over TLS"),
                Some(outcome.session)
            );
        } else {
            assert_eq!(outcome.source, Source::RenewedAlone, "without the store");
            let error = redis.load(&key()).await.expect_err("an untrusted server");
            assert!(matches!(error, StoreError::Unavailable { .. }), "{error:?}");
            let shown = format!("{error} {error:?}");
            assert!(!shown.contains(REDISS_PASSWORD), "{shown}");
        }
        return;
    }
    let dir = crate::TempDir::new("rediss");
    let Some(server) = RedisServer::start_tls("rediss", dir.path(), REDISS_PASSWORD) else {
        return;
    };
    assert_eq!(server.cli(&["PING"]), "PONG", "redis-server speaks TLS");
    for (trusted, roots) in [(true, "ca.pem"), (false, "other-ca.pem")] {
        let mut child = std::process::Command::new(std::env::current_exe().expect("test binary"));
        child
            .args([
                "redis_store::rediss_trusts_the_platforms_roots_only",
                "--exact",
                "--nocapture",
            ])
            .env(REDISS_URL, server.url())
            .env("SSL_CERT_FILE", dir.path().join(roots))
            .env_remove("SSL_CERT_DIR");
        if trusted {
            child.env(REDISS_TRUSTED, "1");
        }
        let status = tokio::task::spawn_blocking(move || child.status().expect("child runs"))
            .await
            .expect("child");
        assert!(status.success(), "trusting {roots}: the child failed");
    }
}

/// After a failover behind one address (Sentinel, a cloud's endpoint: here a
/// TCP front that sends new connections to the new primary), the store
/// follows: the demoted primary's `READONLY` answer drops the connection,
/// and the next operation reaches the new one. Before, the store kept the
/// old connection for ever, every lease failed, and every process of the
/// fleet logged in on its own at every renewal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_failover_the_store_reaches_the_new_primary() {
    use std::sync::atomic::{AtomicU16, Ordering};
    let Some(old) = RedisServer::start("failover, old primary") else {
        return;
    };
    let Some(new) = RedisServer::start("failover, new primary") else {
        return;
    };
    let target = Arc::new(AtomicU16::new(old.port));
    let front = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port");
    let front_port = front.local_addr().expect("bound").port();
    let routed = Arc::clone(&target);
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = front.accept().await {
            let port = routed.load(Ordering::SeqCst);
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await
                {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    let shared = client(Arc::new(
        RedisStore::new(&format!("redis://127.0.0.1:{front_port}/")).expect("valid URL"),
    ));
    let renewals = Renewals::default();
    let renew = |what| renewals.renew(&shared, what, Duration::ZERO);
    let first = shared.renew(None, renew).await.expect("renewed");
    assert_eq!(
        first.source,
        Source::Renewed,
        "through Redis before the failover"
    );

    target.store(new.port, Ordering::SeqCst);
    assert_eq!(
        old.cli(&["REPLICAOF", "127.0.0.1", &new.port.to_string()]),
        "OK"
    );
    let mut local = first.session;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(5) {
        let outcome = shared.renew(Some(&local), renew).await.expect("renewed");
        if outcome.source == Source::Renewed {
            return;
        }
        local = outcome.session;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "5 s after the failover, still renewing alone: {} logins, {} refreshes",
        renewals.logins.load(Ordering::SeqCst),
        renewals.refreshes.load(Ordering::SeqCst)
    );
}

/// A value under a session or rejection key larger than any record (another
/// program's, or planted) is refused without being read: Redis allows half
/// a gigabyte, which every process would otherwise read whole at every
/// renewal. Measured as Redis's own count of the bytes it sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_value_is_refused_without_being_read() {
    let Some(server) = RedisServer::start("an oversized value") else {
        return;
    };
    let store = store(&server);
    let size: u64 = 16 << 20;
    for name in [store.session_key(&key()), store.rejected_login_key(&key())] {
        assert_eq!(
            server.cli(&["SETRANGE", &name, &(size - 1).to_string(), "x"]),
            size.to_string()
        );
    }
    let sent = || -> u64 {
        server
            .cli(&["INFO", "stats"])
            .lines()
            .find_map(|line| line.strip_prefix("total_net_output_bytes:"))
            .and_then(|bytes| bytes.trim().parse().ok())
            .expect("Redis counts what it sends")
    };
    let before = sent();
    let session = store.load(&key()).await;
    assert!(
        matches!(session, Err(StoreError::Corrupt { .. })),
        "{session:?}"
    );
    let rejection = store.load_rejected_login(&key()).await;
    assert!(rejection.is_err(), "{rejection:?}");
    let read = sent() - before;
    assert!(
        read < 1 << 20,
        "Redis sent {read} bytes for two refused records"
    );
}

/// A Redis whose answers take three fifths of the store's time limit serves
/// every command in time on an open connection. One stall (a command past
/// the limit) must not turn that into a store that never answers again: a
/// new connection costs more round trips (setup, then the command) than the
/// limit allows, so a store that drops its connection at every timeout
/// reconnects at every operation, and every operation times out, for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_timeout_on_a_slow_redis_does_not_fail_every_later_operation() {
    use std::sync::atomic::{AtomicU64, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Some(server) = RedisServer::start_with_password("slow redis", Some("pw")) else {
        return;
    };
    // A TCP front that delays Redis's answers by `latency` milliseconds.
    let latency = Arc::new(AtomicU64::new(0));
    let front = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port");
    let front_port = front.local_addr().expect("bound").port();
    let redis_port = server.port;
    let delay = Arc::clone(&latency);
    tokio::spawn(async move {
        while let Ok((inbound, _)) = front.accept().await {
            let delay = Arc::clone(&delay);
            tokio::spawn(async move {
                let Ok(outbound) = tokio::net::TcpStream::connect(("127.0.0.1", redis_port)).await
                else {
                    return;
                };
                let (mut in_read, mut in_write) = inbound.into_split();
                let (mut out_read, mut out_write) = outbound.into_split();
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut in_read, &mut out_write).await;
                });
                let (tx, mut rx) =
                    tokio::sync::mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
                tokio::spawn(async move {
                    while let Some((due, bytes)) = rx.recv().await {
                        tokio::time::sleep_until(due).await;
                        if in_write.write_all(&bytes).await.is_err() {
                            return;
                        }
                    }
                });
                let mut buffer = vec![0u8; 64 * 1024];
                while let Ok(n) = out_read.read(&mut buffer).await {
                    if n == 0 {
                        return;
                    }
                    let due = tokio::time::Instant::now()
                        + Duration::from_millis(delay.load(Ordering::SeqCst));
                    if tx.send((due, buffer[..n].to_vec())).is_err() {
                        return;
                    }
                }
            });
        }
    });
    let store = RedisStore::new(&format!("redis://:pw@127.0.0.1:{front_port}/"))
        .expect("valid URL")
        .with_timeout(Duration::from_millis(500));
    store.load(&key()).await.expect("a fast Redis answers");

    latency.store(300, Ordering::SeqCst);
    for _ in 0..3 {
        store
            .load(&key())
            .await
            .expect("a Redis answering in 300 ms is in time");
    }
    // One stall past the limit.
    latency.store(700, Ordering::SeqCst);
    let stalled = store.load(&key()).await;
    assert!(stalled.is_err(), "{stalled:?}");
    latency.store(300, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(800)).await;

    let mut failed = Vec::new();
    for attempt in 0..8 {
        if let Err(error) = store.load(&key()).await {
            failed.push(format!("#{attempt}: {error}"));
        }
    }
    assert!(
        failed.len() <= 1,
        "after one stall, the same 300 ms Redis timed out {} of 8 operations: {failed:?}",
        failed.len()
    );
}

/// A `RedisStore` whose every lease acquisition meets a Redis that holds
/// writes back for a moment (`CLIENT PAUSE … WRITE`, as a failover or a
/// slow fork does): the `SET NX` is applied, but after the store's time
/// limit.
#[derive(Debug)]
struct PausedAtAcquire {
    inner: RedisStore,
    port: u16,
}

impl TokenStore for PausedAtAcquire {
    fn load<'a>(
        &'a self,
        key: &'a dynata_sdk::store::StoreKey,
    ) -> dynata_sdk::store::StoreFuture<'a, Option<StoredSession>> {
        self.inner.load(key)
    }
    fn save<'a>(
        &'a self,
        key: &'a dynata_sdk::store::StoreKey,
        session: &'a StoredSession,
        now: SystemTime,
    ) -> dynata_sdk::store::StoreFuture<'a, ()> {
        self.inner.save(key, session, now)
    }
    fn remove<'a>(
        &'a self,
        key: &'a dynata_sdk::store::StoreKey,
    ) -> dynata_sdk::store::StoreFuture<'a, ()> {
        self.inner.remove(key)
    }
    fn try_acquire_lease<'a>(
        &'a self,
        key: &'a dynata_sdk::store::StoreKey,
        owner: &'a LeaseOwner,
        ttl: Duration,
        now: SystemTime,
    ) -> dynata_sdk::store::StoreFuture<'a, bool> {
        let paused = std::process::Command::new("redis-cli")
            .args([
                "-p",
                &self.port.to_string(),
                "CLIENT",
                "PAUSE",
                "800",
                "WRITE",
            ])
            .output()
            .expect("redis-cli runs");
        assert!(paused.status.success());
        self.inner.try_acquire_lease(key, owner, ttl, now)
    }
    fn extend_lease<'a>(
        &'a self,
        key: &'a dynata_sdk::store::StoreKey,
        owner: &'a LeaseOwner,
        ttl: Duration,
        now: SystemTime,
    ) -> dynata_sdk::store::StoreFuture<'a, bool> {
        self.inner.extend_lease(key, owner, ttl, now)
    }
    fn release_lease<'a>(
        &'a self,
        key: &'a dynata_sdk::store::StoreKey,
        owner: &'a LeaseOwner,
    ) -> dynata_sdk::store::StoreFuture<'a, bool> {
        self.inner.release_lease(key, owner)
    }
}

/// The acquisition timed out (Redis held writes back), so the client
/// renewed alone; Redis then took the lease for it, and the client gives it
/// back: the next process does not wait the lease's time to live for a
/// renewal nobody is doing. (Found by review.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_redis_took_after_the_time_limit_is_given_back() {
    let Some(server) = RedisServer::start("redis: a lease taken after the time limit") else {
        return;
    };
    let first = client(Arc::new(PausedAtAcquire {
        inner: store(&server),
        port: server.port,
    }));
    let renewals = Renewals::default();
    let outcome = first
        .renew(None, |what| renewals.renew(&first, what, Duration::ZERO))
        .await
        .expect("renewed alone");
    assert_eq!(outcome.source, Source::RenewedAlone);
    // The pause ends; Redis applies the SET NX.
    tokio::time::sleep(Duration::from_millis(900)).await;
    let lease = format!("{}:lease", key().name());
    let pttl = server.cli(&["PTTL", &lease]);

    let other = client(Arc::new(store(&server)));
    let started = Instant::now();
    let theirs = other
        .renew(None, |what| renewals.renew(&other, what, Duration::ZERO))
        .await
        .expect("renewed");
    let waited = started.elapsed();
    assert_eq!(theirs.source, Source::Renewed);
    assert!(
        waited < Duration::from_millis(500),
        "waited {waited:?} for a lease nobody renews under (its PTTL was {pttl} ms)"
    );
}

/// The same slow renewal as above, on a `ManualClock` that the test does
/// not move while Dynata takes its time: Redis keeps the lease's time
/// itself, in real time, so the holder extends it in real time too. (Once
/// the extender slept on the client's clock alone, it never extended; the
/// lease expired and the second client sent the same single-use refresh
/// token: found by review.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_renewal_on_a_manual_clock_keeps_its_redis_lease() {
    let Some(server) = RedisServer::start("a slow renewal on a manual clock") else {
        return;
    };
    two_renewing_slower_than_the_lease(&server, Arc::new(ManualClock::new())).await;
}

/// A wrong Redis address is found by the start-up check, not only by a
/// warning while the fleet works unshared. (No server needed: nothing
/// listens on the port.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_start_up_check_finds_a_redis_that_is_not_there() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let store = RedisStore::new(&format!("redis://:hunter2@127.0.0.1:{port}"))
        .expect("valid URL")
        .with_timeout(Duration::from_millis(300));
    let failed = client(Arc::new(store))
        .check()
        .await
        .expect_err("nobody there");
    assert!(
        matches!(
            failed,
            StoreError::Unavailable { .. } | StoreError::Timeout { .. }
        ),
        "{failed:?}"
    );
    assert!(!failed.to_string().contains("hunter2"), "{failed}");
}
