//! Soak: 64 tasks make 20,032 authenticated calls over about ten seconds,
//! with 1-second access tokens, 3-second refresh tokens and 5% injected
//! transient faults. Real time, bounded: it stops by itself.

use std::time::Instant;

use dynata_sandbox::{Fault, Operation};
use tokio::time::MissedTickBehavior;

use super::*;

const TASKS: u64 = 64;
const CALLS_PER_TASK: u64 = 313;
/// 313 calls 32 ms apart take ten seconds.
const PACE: Duration = Duration::from_millis(32);
/// One call in twenty meets a fault: 5%.
const FAULT_ONE_IN: u32 = 20;
/// A 1-second token is renewed at half its life.
const RENEWAL_PERIOD: Duration = Duration::from_millis(500);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_thousand_calls_with_short_tokens_and_faults_all_succeed() {
    let metrics = tokio::runtime::Handle::current().metrics();
    let tasks_before = metrics.num_alive_tasks();
    let sandbox = Sandbox::builder()
        .user("alice", "secret")
        .access_token_ttl(Duration::from_secs(1))
        .refresh_token_ttl(Duration::from_secs(3))
        .start()
        .await
        .expect("starts");
    let client = Client::builder()
        .credentials(Credentials::new("alice", "secret"))
        .environment(Environment::custom(&sandbox.base_url()).expect("loopback"))
        .build()
        .expect("valid");

    client.access_token().await.expect("first login");
    let started = Instant::now();

    // The sandbox counts the requests and fails every twentieth itself, so
    // the rate holds exactly however the machine schedules this test.
    sandbox.fail_one_in(
        Operation::UsersInfo,
        FAULT_ONE_IN,
        [
            Fault::Status(503),
            Fault::HtmlBadGateway,
            Fault::ResetConnection,
        ],
    );

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
    let calls = TASKS * CALLS_PER_TASK;
    let requests = sandbox.count(Operation::UsersInfo);
    let faults = requests / u64::from(FAULT_ONE_IN);
    let renewals = sandbox.count(Operation::Login) + sandbox.count(Operation::Refresh);
    // The first login, then one renewal per period that passed.
    let windows_of = |period: Duration| 1 + (elapsed.as_secs_f64() / period.as_secs_f64()) as u64;
    let windows = windows_of(RENEWAL_PERIOD);
    eprintln!(
        "soak: {calls} calls in {elapsed:.1?}, {faults} faults injected, {renewals} logins and \
         refreshes for {windows} expiry windows"
    );

    assert!(
        failures.is_empty(),
        "{} calls failed, first: {:?}",
        failures.len(),
        failures.first()
    );
    // Every call that met a fault was sent again: a request more per fault.
    assert!(
        requests >= calls + faults,
        "{requests} requests for {calls} calls and {faults} faults"
    );

    // Renewals: no more than one per window, within one: that is single
    // flight. Each renewal starts with the first call inside the soft window
    // and takes a request's time, so on a busy machine every period stretches
    // a little; idle, the count matches the windows. The floor allows 60% of
    // lag (two busy cores stretch periods by 5-25%), and still fails a client
    // that renewed only at the hard margin (90% of the token's life).
    let lagging_windows = windows_of(RENEWAL_PERIOD.mul_f64(1.6));
    assert!(
        (lagging_windows..=windows + 1).contains(&renewals),
        "{renewals} logins and refreshes in {elapsed:?}: expected {windows} (one per \
         expiry window), and no fewer than {lagging_windows}"
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
