//! The SDK against `dynata-sandbox` over real loopback HTTP: the
//! getting-started request, every kind of injected fault, the middleware, a
//! soak test, the Demand API's operations and project lifecycle, and the
//! SDK README's Demand API sample.

mod demand;
mod faults;
mod getting_started;
mod middleware;
mod readme_sample;
mod soak;

use std::sync::Arc;
use std::time::Duration;

use dynata_sandbox::Sandbox;
use dynata_sdk::clock::ManualClock;
use dynata_sdk::{Client, Credentials, Environment};

/// A client for `sandbox`'s user `alice`, with a clock the test moves.
fn client_on(sandbox: &Sandbox, clock: &ManualClock) -> Client {
    Client::builder()
        .credentials(Credentials::new("alice", "secret"))
        .environment(Environment::custom(&sandbox.base_url()).expect("loopback"))
        .clock(Arc::new(clock.clone()))
        .build()
        .expect("valid configuration")
}

async fn sandbox() -> Sandbox {
    Sandbox::builder()
        .user("alice", "secret")
        .start()
        .await
        .expect("the sandbox starts")
}

/// Waits for `task`, moving `clock` a second at a time so that backoffs and
/// `Retry-After` waits pass at once. Gives up after 10 s of real time.
async fn drive<T>(clock: &ManualClock, task: tokio::task::JoinHandle<T>) -> T {
    for _ in 0..2000 {
        if task.is_finished() {
            return task.await.expect("the task completes");
        }
        clock.advance(Duration::from_secs(1));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the task did not finish");
}
