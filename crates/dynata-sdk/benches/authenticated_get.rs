//! An authenticated GET through the SDK beside a raw `reqwest` GET with a
//! static `Authorization` header, to the same loopback server (the sandbox's
//! `/sample/v1/users/info`) in the same run. The difference is what the SDK
//! adds per request: the token lookup, the sensitive header, the 401 check.
//!
//! Run: `cargo bench -p dynata-sdk --bench authenticated_get`. The figure is
//! in the crate's README.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use dynata_sandbox::Sandbox;
use dynata_sdk::{Client, Credentials, Environment};
use reqwest::Method;
use reqwest::header::AUTHORIZATION;
use tokio::runtime::Runtime;

const PATH: &str = "/sample/v1/users/info";

/// Times `iters` sequential requests made by `request` on `rt`.
fn timed<F, Fut>(rt: &Runtime, iters: u64, request: F) -> Duration
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()>,
{
    rt.block_on(async {
        let began = Instant::now();
        for _ in 0..iters {
            request().await;
        }
        began.elapsed()
    })
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let sandbox = rt
        .block_on(Sandbox::builder().user("bench", "bench").start())
        .expect("sandbox");
    let client = Client::builder()
        .credentials(Credentials::new("bench", "bench"))
        .environment(Environment::custom(&sandbox.base_url()).expect("loopback"))
        .build()
        .expect("valid");
    let token = rt.block_on(client.access_token()).expect("login");
    // Configured as the SDK configures its own, so only the SDK's work differs.
    let raw = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(10))
        .user_agent("dynata-sdk/0.1.0")
        .build()
        .expect("a client");
    let url = format!("{}{PATH}", sandbox.base_url());
    let bearer = format!("Bearer {}", token.secret());

    let mut group = c.benchmark_group("authenticated_get");
    group.bench_function("raw_reqwest_static_header (baseline)", |b| {
        b.iter_custom(|iters| {
            timed(&rt, iters, || async {
                let response = raw
                    .get(&url)
                    .header(AUTHORIZATION, &bearer)
                    .send()
                    .await
                    .expect("sent");
                black_box(response.bytes().await.expect("body"));
            })
        })
    });
    group.bench_function("dynata_sdk_send", |b| {
        b.iter_custom(|iters| {
            timed(&rt, iters, || async {
                let response = client
                    .send(client.request(Method::GET, PATH))
                    .await
                    .expect("sent");
                black_box(response.bytes().await.expect("body"));
            })
        })
    });
    group.finish();
}

criterion_group!(authenticated_get, benches);
criterion_main!(authenticated_get);
