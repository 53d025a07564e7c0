//! `access_token()` on a warm cache, beside (a) a bare `arc_swap` load of an
//! `Arc`, the floor for handing out a shared token, and (b) the common cache,
//! a `tokio::sync::RwLock<Option<Token>>`, in the same run; on one thread and
//! with two threads contending.
//!
//! Run: `cargo bench -p dynata-sdk --bench access_token`. Ratios are in the
//! crate's README.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use criterion::{Criterion, criterion_group, criterion_main};
use dynata_sdk::{Client, Credentials, Environment};
use httpmock::MockServer;
use tokio::runtime::Runtime;

/// What the baselines cache: a token and its expiry, like the SDK's.
#[derive(Clone)]
struct Token {
    #[allow(dead_code)]
    secret: Arc<str>,
    #[allow(dead_code)]
    expires_at: Instant,
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

/// A client that has logged in (once, against a mock server on loopback).
fn warm_client(server: &MockServer) -> Client {
    server.mock(|when, then| {
        when.path("/auth/v1/token/password");
        then.status(200).body(
            r#"{"accessToken":"a","expiresIn":1800,"refreshExpiresIn":3600,"refreshToken":"r"}"#,
        );
    });
    let client = Client::builder()
        .credentials(Credentials::new("bench", "bench"))
        .environment(Environment::custom(&server.base_url()).expect("loopback"))
        .build()
        .expect("valid");
    runtime().block_on(client.access_token()).expect("login");
    client
}

/// Awaits `call()` `iters` times in a loop on each of `threads` threads at
/// once (one runtime per thread, entered once) and returns the wall time, so
/// contention shows as a longer time per call. Every contender runs in this
/// same loop, so the executor's cost is the same for all.
fn contended<F, Fut, T>(threads: usize, iters: u64, call: F) -> Duration
where
    F: Fn() -> Fut + Sync,
    Fut: Future<Output = T>,
{
    let start = std::sync::Barrier::new(threads + 1);
    let mut began = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                let rt = runtime();
                start.wait();
                rt.block_on(async {
                    for _ in 0..iters {
                        black_box(call().await);
                    }
                });
            });
        }
        start.wait();
        began = Instant::now();
    });
    began.elapsed()
}

fn benches(c: &mut Criterion) {
    let server = MockServer::start();
    let client = warm_client(&server);
    let token = Token {
        secret: "a".into(),
        expires_at: Instant::now(),
    };
    let floor = ArcSwapOption::from_pointee(token.clone());
    let rwlock = tokio::sync::RwLock::new(Some(token));

    for threads in [1, 2] {
        let mut group = c.benchmark_group(format!("warm_token_{threads}_thread"));
        group.bench_function("arc_swap_load_full (floor)", |b| {
            b.iter_custom(|iters| contended(threads, iters, || async { floor.load_full() }))
        });
        group.bench_function("tokio_rwlock_cache (common)", |b| {
            b.iter_custom(|iters| {
                contended(threads, iters, || async { rwlock.read().await.clone() })
            })
        });
        group.bench_function("dynata_sdk_access_token", |b| {
            b.iter_custom(|iters| {
                contended(threads, iters, || async {
                    client.access_token().await.ok()
                })
            })
        });
        group.finish();
    }
}

criterion_group!(access_token, benches);
criterion_main!(access_token);
