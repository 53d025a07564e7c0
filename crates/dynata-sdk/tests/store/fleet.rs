//! Fleets of OS processes sharing one Dynata session: this test binary runs
//! itself as the worker processes (the ignored test `fleet::fleet_worker`,
//! configured through the environment), all against one `dynata-sandbox` on
//! loopback that counts logins and refreshes. Real time, 2-second tokens,
//! bounded: each run stops by itself after its duration.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dynata_sandbox::{Operation, Sandbox};
use dynata_sdk::store::{FileStore, SharingPolicy, TokenStore};
use dynata_sdk::{Client, Credentials, Environment};

/// Set in a worker's environment: the sandbox's base URL.
const WORKER_URL: &str = "DYNATA_FLEET_URL";
const WORKER_STORE: &str = "DYNATA_FLEET_STORE";
const WORKER_TASKS: &str = "DYNATA_FLEET_TASKS";
const WORKER_MILLIS: &str = "DYNATA_FLEET_MILLIS";
const WORKER_LEASE_MILLIS: &str = "DYNATA_FLEET_LEASE_MILLIS";
/// How often each task calls `users/info`.
const PACE: Duration = Duration::from_millis(250);
/// 2-second tokens are renewed at half their life.
pub(crate) const TOKEN_TTL: Duration = Duration::from_secs(2);
pub(crate) const RENEWAL_PERIOD: Duration = Duration::from_secs(1);

/// Fleets run one at a time: they measure renewals per window on a shared
/// machine, and each would slow the others.
static ONE_FLEET_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// What the processes of a fleet share.
#[derive(Clone, Debug)]
pub(crate) enum Sharing {
    Nothing,
    File(PathBuf),
    #[cfg(feature = "redis")]
    Redis(String),
}

impl Sharing {
    fn to_env(&self) -> String {
        match self {
            Sharing::Nothing => "none".into(),
            Sharing::File(dir) => format!("file:{}", dir.display()),
            #[cfg(feature = "redis")]
            Sharing::Redis(url) => format!("redis:{url}"),
        }
    }

    fn store_from_env(value: &str) -> Option<Arc<dyn TokenStore>> {
        if let Some(dir) = value.strip_prefix("file:") {
            return Some(Arc::new(FileStore::new(dir)));
        }
        #[cfg(feature = "redis")]
        if let Some(url) = value.strip_prefix("redis:") {
            let store = dynata_sdk::store::RedisStore::new(url).expect("a valid Redis URL");
            return Some(Arc::new(store));
        }
        None
    }
}

/// How one fleet runs.
#[derive(Clone, Debug)]
pub(crate) struct FleetConfig {
    pub(crate) processes: usize,
    pub(crate) tasks: usize,
    pub(crate) run_for: Duration,
    pub(crate) sharing: Sharing,
    pub(crate) lease_ttl: Duration,
}

impl FleetConfig {
    pub(crate) fn new(processes: usize, run_for: Duration, sharing: Sharing) -> Self {
        FleetConfig {
            processes,
            tasks: 64,
            run_for,
            sharing,
            // Far longer than a refresh takes on a loaded machine: a lease
            // that expires under its holder lets a second process refresh.
            lease_ttl: Duration::from_secs(5),
        }
    }
}

/// What a worker process printed when it finished.
#[derive(Debug, Default, Clone)]
pub(crate) struct WorkerReport {
    pub(crate) ok: u64,
    pub(crate) failed: u64,
    pub(crate) first_failure: String,
}

/// A running fleet of worker processes.
pub(crate) struct Fleet {
    children: Vec<Child>,
    pub(crate) started: Instant,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

impl Fleet {
    pub(crate) async fn start(sandbox: &Sandbox, config: &FleetConfig) -> Fleet {
        let turn = ONE_FLEET_AT_A_TIME.lock().await;
        let exe = std::env::current_exe().expect("the test binary's path");
        let children = (0..config.processes)
            .map(|_| {
                Command::new(&exe)
                    .args(["fleet::fleet_worker", "--exact", "--ignored", "--nocapture"])
                    .args(["--test-threads", "1"])
                    .env(WORKER_URL, sandbox.base_url())
                    .env(WORKER_STORE, config.sharing.to_env())
                    .env(WORKER_TASKS, config.tasks.to_string())
                    .env(WORKER_MILLIS, config.run_for.as_millis().to_string())
                    .env(
                        WORKER_LEASE_MILLIS,
                        config.lease_ttl.as_millis().to_string(),
                    )
                    .stdout(Stdio::piped())
                    .stderr(worker_log())
                    .spawn()
                    .expect("a worker process starts")
            })
            .collect();
        Fleet {
            children,
            started: Instant::now(),
            _turn: turn,
        }
    }

    #[cfg(feature = "redis")]
    /// Kills the worker with this process id (`kill -9`); whether it was one.
    pub(crate) fn kill(&mut self, pid: u32) -> bool {
        match self.children.iter_mut().find(|c| c.id() == pid) {
            Some(child) => child.kill().is_ok(),
            None => false,
        }
    }

    /// Waits for every worker; the reports of those that finished normally,
    /// and how many did not.
    pub(crate) async fn finish(self) -> (Vec<WorkerReport>, usize) {
        let children = self.children;
        tokio::task::spawn_blocking(move || {
            let mut reports = Vec::new();
            let mut lost = 0;
            for child in children {
                let output = child.wait_with_output().expect("the worker ends");
                let stdout = String::from_utf8_lossy(&output.stdout);
                match stdout.lines().find_map(parse_report) {
                    Some(report) if output.status.success() => reports.push(report),
                    _ => lost += 1,
                }
            }
            (reports, lost)
        })
        .await
        .expect("no panic")
    }
}

/// With `DYNATA_FLEET_LOG` set to a file, workers log at `debug` there (to
/// see why a fleet renewed more than it should); else they are silent.
fn worker_log() -> Stdio {
    let file = std::env::var_os("DYNATA_FLEET_LOG").and_then(|path| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .ok()
    });
    file.map_or_else(Stdio::null, Stdio::from)
}

fn parse_report(line: &str) -> Option<WorkerReport> {
    // libtest may print the test's name on the same line first.
    let rest = &line[line.find("FLEET-RESULT ")? + "FLEET-RESULT ".len()..];
    let mut report = WorkerReport::default();
    let (counts, first) = rest.split_once(" first=").unwrap_or((rest, ""));
    for field in counts.split(' ') {
        match field.split_once('=')? {
            ("ok", n) => report.ok = n.parse().ok()?,
            ("failed", n) => report.failed = n.parse().ok()?,
            _ => {}
        }
    }
    report.first_failure = first.to_string();
    Some(report)
}

/// The sandbox every fleet runs against: 2-second access tokens.
pub(crate) async fn sandbox() -> Sandbox {
    Sandbox::builder()
        .user("alice", "secret")
        .access_token_ttl(TOKEN_TTL)
        .refresh_token_ttl(Duration::from_secs(10))
        .start()
        .await
        .expect("the sandbox starts")
}

pub(crate) fn renewals(sandbox: &Sandbox) -> u64 {
    sandbox.count(Operation::Login) + sandbox.count(Operation::Refresh)
}

/// The first login, then one renewal per period that passed.
pub(crate) fn windows(elapsed: Duration) -> u64 {
    1 + (elapsed.as_secs_f64() / RENEWAL_PERIOD.as_secs_f64()) as u64
}

/// One fleet run, start to end: calls made, calls failed, renewals.
#[derive(Debug)]
pub(crate) struct FleetRun {
    pub(crate) calls: u64,
    pub(crate) failed: u64,
    pub(crate) first_failure: String,
    pub(crate) renewals: u64,
    pub(crate) logins: u64,
    pub(crate) windows: u64,
    pub(crate) lost_workers: usize,
}

pub(crate) async fn run_fleet(config: &FleetConfig) -> FleetRun {
    let sandbox = sandbox().await;
    let fleet = Fleet::start(&sandbox, config).await;
    let started = fleet.started;
    let (reports, lost_workers) = fleet.finish().await;
    summarize(
        &sandbox,
        started.elapsed().min(config.run_for + RENEWAL_PERIOD),
        &reports,
        lost_workers,
    )
}

pub(crate) fn summarize(
    sandbox: &Sandbox,
    elapsed: Duration,
    reports: &[WorkerReport],
    lost_workers: usize,
) -> FleetRun {
    FleetRun {
        calls: reports.iter().map(|r| r.ok + r.failed).sum(),
        failed: reports.iter().map(|r| r.failed).sum(),
        first_failure: reports
            .iter()
            .map(|r| r.first_failure.clone())
            .find(|f| !f.is_empty())
            .unwrap_or_default(),
        renewals: renewals(sandbox),
        logins: sandbox.count(Operation::Login),
        windows: windows(elapsed),
        lost_workers,
    }
}

/// The worker: `tasks` tasks call `users/info` every [`PACE`] until the time
/// is up, then one line on stdout says how it went. Run by the fleet tests as
/// a separate process; on its own it does nothing.
#[test]
#[ignore = "a worker process the fleet tests start, configured by its environment"]
fn fleet_worker() {
    let Ok(url) = std::env::var(WORKER_URL) else {
        eprintln!(
            "fleet_worker: not started by a fleet test ({WORKER_URL} is unset); nothing to do"
        );
        return;
    };
    let number = |name: &str| -> u64 {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} is a number"))
    };
    let tasks = number(WORKER_TASKS);
    let run_for = Duration::from_millis(number(WORKER_MILLIS));
    let mut policy = SharingPolicy::default();
    policy.lease_ttl = Duration::from_millis(number(WORKER_LEASE_MILLIS));
    let store = Sharing::store_from_env(&std::env::var(WORKER_STORE).unwrap_or_default());

    if std::env::var_os("DYNATA_FLEET_LOG").is_some() {
        let pid = std::process::id();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        tracing::info!(pid, "fleet worker started");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async move {
        let mut builder = Client::builder()
            .credentials(Credentials::new("alice", "secret"))
            .environment(Environment::custom(&url).expect("loopback"));
        if let Some(store) = store {
            builder = builder.token_store(store).sharing_policy(policy);
        }
        let client = builder.build().expect("valid");
        let deadline = tokio::time::Instant::now() + run_for;
        let callers: Vec<_> = (0..tasks)
            .map(|_| {
                let client = client.clone();
                tokio::spawn(async move {
                    let mut pace = tokio::time::interval(PACE);
                    pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    let (mut ok, mut failed, mut first) = (0u64, 0u64, String::new());
                    while tokio::time::Instant::now() < deadline {
                        pace.tick().await;
                        match client.users_info().await {
                            Ok(_) => ok += 1,
                            Err(error) => {
                                failed += 1;
                                if first.is_empty() {
                                    first = error.to_string();
                                }
                            }
                        }
                    }
                    (ok, failed, first)
                })
            })
            .collect();
        let (mut ok, mut failed, mut first) = (0, 0, String::new());
        for caller in callers {
            let (o, f, e) = caller.await.expect("a caller task");
            ok += o;
            failed += f;
            if first.is_empty() {
                first = e;
            }
        }
        println!("FLEET-RESULT ok={ok} failed={failed} first={first}");
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_processes_on_one_host_renew_once_per_window_through_a_file() {
    let dir = crate::TempDir::new("fleet-file");
    let config = FleetConfig::new(8, Duration::from_secs(10), Sharing::File(dir.path().into()));
    let run = run_fleet(&config).await;
    eprintln!("FileStore, 8 processes x 64 tasks, 10 s: {run:?}");
    assert_eq!(run.lost_workers, 0, "{run:?}");
    assert_eq!(run.failed, 0, "first failure: {}", run.first_failure);
    assert!(run.calls > 8 * 64 * 20, "{run:?}");
    assert!(run.renewals <= run.windows + 2, "{run:?}");
    assert_eq!(run.logins, 1, "one login for the whole fleet: {run:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_or_exposed_session_file_mid_run_loses_no_call() {
    let dir = crate::TempDir::new("fleet-file-damaged");
    let config = FleetConfig::new(4, Duration::from_secs(7), Sharing::File(dir.path().into()));
    let sandbox = sandbox().await;
    let fleet = Fleet::start(&sandbox, &config).await;
    let store = FileStore::new(dir.path());
    let key = dynata_sdk::store::StoreKey::for_account(&sandbox.base_url(), "api", "alice");
    let path = store.session_path(&key);
    // Mid-run, the session file is truncated, then made readable by others.
    tokio::time::sleep(Duration::from_millis(2_300)).await;
    let record = std::fs::read(&path).expect("the fleet stored its session");
    std::fs::write(&path, &record[..record.len() / 2]).expect("truncated");
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    }
    let started = fleet.started;
    let (reports, lost) = fleet.finish().await;
    let run = summarize(
        &sandbox,
        started.elapsed().min(config.run_for + RENEWAL_PERIOD),
        &reports,
        lost,
    );
    eprintln!("FileStore, 4 processes, session file truncated then exposed: {run:?}");
    assert_eq!(run.lost_workers, 0, "{run:?}");
    assert_eq!(run.failed, 0, "first failure: {}", run.first_failure);
    // A process that had not yet adopted the record that was damaged
    // refreshes with the refresh token it replaced, is refused, and logs in:
    // at most two renewals more per damage.
    assert!(run.renewals <= run.windows + 2 + 2 * 2, "{run:?}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path)
            .expect("exists")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(
            mode, 0o600,
            "the exposed file was replaced by a private one"
        );
    }
}

#[cfg(feature = "redis")]
mod with_redis {
    use super::*;
    use crate::redis_server::RedisServer;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn eight_processes_sharing_redis_renew_once_per_window_and_fail_no_call() {
        let Some(server) = RedisServer::start("fleet through Redis") else {
            return;
        };
        let run_for = Duration::from_secs(20);
        let shared = run_fleet(&FleetConfig::new(8, run_for, Sharing::Redis(server.url()))).await;
        let alone = run_fleet(&FleetConfig::new(8, run_for, Sharing::Nothing)).await;
        eprintln!(
            "8 processes x 64 tasks, 20 s, 2-second tokens: logins + refreshes \
             with Redis {} (windows {}), without a store {} (windows {}); \
             failed calls {} and {}",
            shared.renewals,
            shared.windows,
            alone.renewals,
            alone.windows,
            shared.failed,
            alone.failed
        );
        assert_eq!(shared.lost_workers, 0, "{shared:?}");
        assert_eq!(shared.failed, 0, "first failure: {}", shared.first_failure);
        assert!(shared.calls > 8 * 64 * 50, "{shared:?}");
        assert!(shared.renewals <= shared.windows + 2, "{shared:?}");
        assert_eq!(
            shared.logins, 1,
            "one login for the whole fleet: {shared:?}"
        );
        assert!(
            alone.renewals > shared.renewals * 4,
            "{alone:?} vs {shared:?}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn killing_the_lease_holder_mid_refresh_loses_no_call() {
        let Some(server) = RedisServer::start("fleet: kill -9 of the lease holder") else {
            return;
        };
        let mut config = FleetConfig::new(4, Duration::from_secs(8), Sharing::Redis(server.url()));
        config.lease_ttl = Duration::from_secs(1);
        let sandbox = sandbox().await;
        // The first refresh takes 1.5 s: its process is killed in the middle.
        sandbox.inject(
            Operation::Refresh,
            dynata_sandbox::Fault::Delay(Duration::from_millis(1_500)),
            1,
        );
        let mut fleet = Fleet::start(&sandbox, &config).await;
        while sandbox.count(Operation::Login) == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let holder = loop {
            if sandbox.count(Operation::Refresh) > 0 {
                let keys = server.cli(&["KEYS", "*:lease"]);
                if let Some(lease) = keys.lines().next().filter(|k| !k.is_empty()) {
                    let owner = server.cli(&["GET", lease]);
                    let pid: u32 = owner
                        .split('-')
                        .next()
                        .and_then(|p| p.parse().ok())
                        .expect("a pid");
                    break pid;
                }
            }
            assert!(
                fleet.started.elapsed() < Duration::from_secs(5),
                "no refresh under a lease"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        assert!(
            fleet.kill(holder),
            "the lease holder {holder} is one of the workers"
        );
        let killed_at = Instant::now();
        let before = renewals(&sandbox);
        while renewals(&sandbox) == before {
            assert!(
                killed_at.elapsed() < Duration::from_secs(5),
                "nobody took over"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let recovered = killed_at.elapsed();
        let (reports, lost) = fleet.finish().await;
        eprintln!(
            "kill -9 of the lease holder: a survivor renewed {recovered:?} later; {reports:?}"
        );
        assert_eq!(lost, 1, "only the killed worker is lost");
        assert_eq!(
            reports.iter().map(|r| r.failed).sum::<u64>(),
            0,
            "{reports:?}"
        );
        assert!(
            recovered <= config.lease_ttl + Duration::from_millis(500),
            "{recovered:?}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redis_stopped_for_five_seconds_loses_no_call_and_the_fleet_shares_again() {
        let Some(mut server) = RedisServer::start("fleet: Redis stopped mid-run") else {
            return;
        };
        let config = FleetConfig::new(4, Duration::from_secs(16), Sharing::Redis(server.url()));
        let sandbox = sandbox().await;
        let fleet = Fleet::start(&sandbox, &config).await;
        tokio::time::sleep(Duration::from_secs(4)).await;
        server.stop();
        let stopped = renewals(&sandbox);
        tokio::time::sleep(Duration::from_secs(5)).await;
        let during = renewals(&sandbox) - stopped;
        server.resume();
        // One window to find each other again, then count.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let rejoined = renewals(&sandbox);
        tokio::time::sleep(Duration::from_secs(4)).await;
        let after = renewals(&sandbox) - rejoined;
        let (reports, lost) = fleet.finish().await;
        eprintln!(
            "Redis stopped 5 s: {during} renewals while down (4 processes alone), \
             {after} in the 4 s after it was back; {reports:?}"
        );
        assert_eq!(lost, 0);
        assert_eq!(
            reports.iter().map(|r| r.failed).sum::<u64>(),
            0,
            "{reports:?}"
        );
        assert!(during >= 4, "each process renewed on its own: {during}");
        assert!(
            after <= windows(Duration::from_secs(4)) + 1,
            "shared again: {after}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_corrupt_value_in_redis_mid_run_loses_no_call() {
        let Some(server) = RedisServer::start("fleet: corrupt Redis value") else {
            return;
        };
        let config = FleetConfig::new(4, Duration::from_secs(6), Sharing::Redis(server.url()));
        let sandbox = sandbox().await;
        let fleet = Fleet::start(&sandbox, &config).await;
        let key = dynata_sdk::store::StoreKey::for_account(&sandbox.base_url(), "api", "alice");
        let name = dynata_sdk::store::RedisStore::new(&server.url())
            .expect("valid")
            .session_key(&key);
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_millis(900)).await;
            assert_eq!(server.cli(&["SET", &name, "garbage"]), "OK");
        }
        let started = fleet.started;
        let (reports, lost) = fleet.finish().await;
        let run = summarize(
            &sandbox,
            started.elapsed().min(config.run_for + RENEWAL_PERIOD),
            &reports,
            lost,
        );
        eprintln!("Redis value overwritten with garbage 5 times: {run:?}");
        assert_eq!(run.lost_workers, 0);
        assert_eq!(run.failed, 0, "first failure: {}", run.first_failure);
    }
}

/// The README's table: renewals per window for 1, 2, 4 and 8 processes, with
/// and without a store, from one run. About three minutes:
/// `cargo test -p dynata-sdk --features redis --test store -- --ignored --nocapture fleet_table`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark for the README (about three minutes)"]
async fn fleet_table() {
    #[cfg(feature = "redis")]
    let server = crate::redis_server::RedisServer::start("fleet_table");
    let dir = crate::TempDir::new("fleet-table");
    let run_for = Duration::from_secs(10);
    println!("| processes | without a store | FileStore | RedisStore |");
    println!("|---|---|---|---|");
    for processes in [1, 2, 4, 8] {
        let mut cells = Vec::new();
        #[cfg_attr(not(feature = "redis"), allow(unused_mut))]
        let mut sharings = vec![
            Sharing::Nothing,
            Sharing::File(dir.path().join(processes.to_string())),
        ];
        #[cfg(feature = "redis")]
        if let Some(server) = &server {
            server.cli(&["FLUSHALL"]);
            sharings.push(Sharing::Redis(server.url()));
        }
        for sharing in sharings {
            let run = run_fleet(&FleetConfig::new(processes, run_for, sharing)).await;
            assert_eq!(run.failed, 0, "first failure: {}", run.first_failure);
            cells.push(format!(
                "{:.2} ({} in {} windows)",
                run.renewals as f64 / run.windows as f64,
                run.renewals,
                run.windows
            ));
        }
        while cells.len() < 3 {
            cells.push("(not run)".into());
        }
        println!("| {processes} | {} |", cells.join(" | "));
    }
}
