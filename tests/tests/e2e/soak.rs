//! Soak: 64 tasks make 20,032 authenticated calls over about ten seconds,
//! with 1-second access tokens, 3-second refresh tokens and 5% injected
//! transient faults. Real time, bounded: it stops by itself.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use dynata_sandbox::{Fault, Operation};
use tokio::time::MissedTickBehavior;

use super::*;

const TASKS: u64 = 64;
const CALLS_PER_TASK: u64 = 313;
/// 313 calls 32 ms apart take ten seconds.
const PACE: Duration = Duration::from_millis(32);
/// One call in twenty meets a fault: 5%.
const FAULT_ONE_IN: u64 = 20;
/// How long the sandbox's access tokens live.
const ACCESS_TTL: Duration = Duration::from_secs(1);
/// A 1-second token is renewed at half its life.
const RENEWAL_PERIOD: Duration = Duration::from_millis(500);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_thousand_calls_with_short_tokens_and_faults_all_succeed() {
    let metrics = tokio::runtime::Handle::current().metrics();
    let tasks_before = metrics.num_alive_tasks();
    let sandbox = Sandbox::builder()
        .user("alice", "secret")
        .access_token_ttl(ACCESS_TTL)
        .refresh_token_ttl(Duration::from_secs(3))
        .start()
        .await
        .expect("starts");
    let sandbox = Arc::new(sandbox);
    let client = Client::builder()
        .credentials(Credentials::new("alice", "secret"))
        .environment(Environment::custom(&sandbox.base_url()).expect("loopback"))
        .build()
        .expect("valid");

    client.access_token().await.expect("first login");
    let started = Instant::now();

    let done = Arc::new(AtomicBool::new(false));
    let injected = Arc::new(AtomicU64::new(0));
    let injector = {
        let (sandbox, done, injected) = (sandbox.clone(), done.clone(), injected.clone());
        tokio::spawn(async move {
            let kinds = [
                Fault::Status(503),
                Fault::HtmlBadGateway,
                Fault::ResetConnection,
            ];
            // Keep pace with the calls the sandbox has seen, so faults never
            // pile up into a burst that no retry budget could outlast.
            let mut n = 0;
            while !done.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(5)).await;
                while n < sandbox.count(Operation::UsersInfo) / FAULT_ONE_IN {
                    let kind = kinds[n as usize % kinds.len()].clone();
                    sandbox.inject(Operation::UsersInfo, kind, 1);
                    injected.fetch_add(1, Ordering::Relaxed);
                    n += 1;
                }
            }
        })
    };

    let callers: Vec<_> = (0..TASKS)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move {
                let mut pace = tokio::time::interval(PACE);
                pace.set_missed_tick_behavior(MissedTickBehavior::Delay);
                let mut failures = Vec::new();
                for _ in 0..CALLS_PER_TASK {
                    pace.tick().await;
                    if let Err(error) = client.users_info().await {
                        failures.push(error.to_string());
                    }
                }
                failures
            })
        })
        .collect();
    let mut failures = Vec::new();
    for caller in callers {
        failures.extend(caller.await.expect("a caller task"));
    }
    let elapsed = started.elapsed();
    done.store(true, Ordering::Relaxed);
    injector.await.expect("the injector");
    let renewals = sandbox.count(Operation::Login) + sandbox.count(Operation::Refresh);
    // The first login, then one renewal per soft window: half a token's life.
    let windows = 1 + (elapsed.as_secs_f64() / RENEWAL_PERIOD.as_secs_f64()).floor() as u64;
    eprintln!(
        "soak: {} calls in {elapsed:.1?}, {} faults injected, {renewals} logins and refreshes \
         for {windows} expiry windows",
        TASKS * CALLS_PER_TASK,
        injected.load(Ordering::Relaxed)
    );

    assert!(
        failures.is_empty(),
        "{} calls failed, first: {:?}",
        failures.len(),
        failures.first()
    );
    let calls = TASKS * CALLS_PER_TASK;
    let faults = injected.load(Ordering::Relaxed);
    assert!(
        faults * 100 >= calls * 4,
        "only {faults} faults injected for {calls} calls"
    );
    assert!(sandbox.count(Operation::UsersInfo) >= calls);

    // Renewals: no more than one per window, within one: that is single
    // flight. Never less often than once per lifetime: no token is
    // used past its expiry. Each renewal is sent when its timer runs, so the
    // scheduler's lag stretches every period a little; on an idle machine the
    // count matches the windows, on a busy one it falls between the bounds.
    let lifetimes = 1 + (elapsed.as_secs_f64() / ACCESS_TTL.as_secs_f64()).floor() as u64;
    assert!(
        (lifetimes..=windows + 1).contains(&renewals),
        "{renewals} logins and refreshes in {elapsed:?}: expected {windows} (one per \
         expiry window), and no fewer than {lifetimes} (one per token lifetime)"
    );
    assert!(elapsed < Duration::from_secs(60), "took {elapsed:?}");

    // Nothing is left running once the client and the sandbox are gone.
    drop(client);
    drop(sandbox);
    for _ in 0..500 {
        if metrics.num_alive_tasks() <= tasks_before {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "{} tasks still alive, {tasks_before} before",
        metrics.num_alive_tasks()
    );
}
