//! The client observed from outside, its token lifecycle and its
//! authenticated calls: every test counts what an httpmock server on loopback
//! received. Time is a `ManualClock`, moved by the tests; nothing sleeps
//! through a token's lifetime.

mod authenticated;
mod concurrency;
#[cfg(feature = "demand")]
mod demand;
mod errors;
mod logout;
mod redaction;
mod refresh;
mod retries;

use std::future::Future;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use dynata_sdk::clock::ManualClock;
use dynata_sdk::{Client, ClientBuilder, Credentials, Environment, RetryPolicy};
use httpmock::{Method::POST, Mock, MockServer};
use serde_json::json;

pub(crate) const LOGIN: &str = "/auth/v1/token/password";
pub(crate) const REFRESH: &str = "/auth/v1/token/refresh";
pub(crate) const LOGOUT: &str = "/auth/v1/logout";
pub(crate) const PASSWORD: &str = "correct horse battery staple";

/// A policy of `attempts` attempts in all, retried at once: no waiting on
/// the clock between them.
pub(crate) fn retrying_at_once(attempts: u32) -> RetryPolicy {
    RetryPolicy::default()
        .with_max_attempts(attempts)
        .with_initial_backoff(Duration::ZERO)
        .with_max_backoff(Duration::ZERO)
}

/// A mock server, a manual clock, and a client wired to both.
pub(crate) struct Harness {
    pub(crate) server: MockServer,
    pub(crate) clock: ManualClock,
    pub(crate) client: Client,
    _watchdog: Watchdog,
}

/// Ends the test run, naming the test, if the harness outlives a minute.
///
/// A client sleeping on a manual clock that no one moves waits forever; a
/// test that gets that wrong would otherwise stall the whole run (and CI)
/// instead of failing.
struct Watchdog {
    _alive: mpsc::Sender<()>,
}

impl Watchdog {
    const LIMIT: Duration = Duration::from_secs(60);

    fn start() -> Self {
        let test = std::thread::current()
            .name()
            .unwrap_or("a test")
            .to_string();
        let (alive, dropped) = mpsc::channel::<()>();
        std::thread::spawn(move || {
            if let Err(RecvTimeoutError::Timeout) = dropped.recv_timeout(Watchdog::LIMIT) {
                eprintln!("{test} hung for {:?}; ending the run", Watchdog::LIMIT);
                std::process::abort();
            }
        });
        Watchdog { _alive: alive }
    }
}

impl Harness {
    pub(crate) async fn new() -> Self {
        Self::with(|builder| builder).await
    }

    /// A harness whose builder the test adjusts (retry policy, windows).
    pub(crate) async fn with(configure: impl FnOnce(ClientBuilder) -> ClientBuilder) -> Self {
        let server = MockServer::start_async().await;
        let clock = ManualClock::new();
        let environment = Environment::custom(&server.base_url()).expect("loopback URL");
        let builder = Client::builder()
            .credentials(Credentials::new("alice", PASSWORD))
            .environment(environment)
            .clock(Arc::new(clock.clone()))
            .retry_policy(RetryPolicy::default());
        let client = configure(builder).build().expect("valid configuration");
        Harness {
            server,
            clock,
            client,
            _watchdog: Watchdog::start(),
        }
    }

    /// Answers `path` with a token pair, `times` times at most (0: always).
    pub(crate) async fn pair_on(&self, path: &str, pair: Pair, times: usize) -> Mock<'_> {
        self.answer(path, 200, &pair.json(), times).await
    }

    /// Answers `path` with a token pair after a real delay, so that callers
    /// pile up behind one request.
    pub(crate) async fn slow_pair_on(&self, path: &str, pair: Pair, delay_ms: u64) -> Mock<'_> {
        let path = path.to_string();
        self.server
            .mock_async(move |when, then| {
                when.method(POST).path(path);
                then.status(200)
                    .body(pair.json())
                    .delay(Duration::from_millis(delay_ms));
            })
            .await
    }

    /// Calls `access_token` from `count` tasks at once.
    pub(crate) fn spawn_callers(
        &self,
        count: usize,
    ) -> Vec<tokio::task::JoinHandle<Result<dynata_sdk::AccessToken, dynata_sdk::Error>>> {
        (0..count)
            .map(|_| {
                let client = self.client.clone();
                tokio::spawn(async move { client.access_token().await })
            })
            .collect()
    }

    /// Answers `path` with `status` and `body`, `times` times at most (0: always).
    pub(crate) async fn answer(
        &self,
        path: &str,
        status: u16,
        body: &str,
        times: usize,
    ) -> Mock<'_> {
        let path = path.to_string();
        let body = body.to_string();
        let mock = self
            .server
            .mock_async(move |when, then| {
                when.method(POST).path(path);
                then.status(status)
                    .header("content-type", "application/vnd.token+json")
                    .body(body);
            })
            .await;
        if times > 0 {
            mock.up_to_n_times_async(times).await;
        }
        mock
    }

    /// The token `access_token()` returns now.
    pub(crate) async fn token(&self) -> dynata_sdk::AccessToken {
        match self.client.access_token().await {
            Ok(token) => token,
            Err(error) => panic!("no token: {error}"),
        }
    }

    /// `access_token()`, which must end without sleeping on the clock: a
    /// test of it fails, rather than hang, if it sleeps.
    pub(crate) async fn access_token_at_once(
        &self,
    ) -> Result<dynata_sdk::AccessToken, dynata_sdk::Error> {
        let client = self.client.clone();
        let caller = tokio::spawn(async move { client.access_token().await });
        eventually("the call ends without sleeping", || async {
            caller.is_finished()
        })
        .await;
        caller.await.expect("task")
    }

    /// The secret of the token `access_token()` returns now.
    pub(crate) async fn current_secret(&self) -> String {
        self.token().await.secret().to_string()
    }

    /// Moves the clock, then waits until every sleeper it woke (the expiry
    /// timer, a backoff) has run: as if that much time had really passed.
    pub(crate) async fn advance(&self, seconds: u64) {
        advance(&self.clock, Duration::from_secs(seconds)).await;
    }

    pub(crate) async fn advance_millis(&self, millis: u64) {
        advance(&self.clock, Duration::from_millis(millis)).await;
    }
}

/// A token pair as Dynata sends it.
#[derive(Clone, Copy)]
pub(crate) struct Pair {
    pub(crate) access: &'static str,
    pub(crate) refresh: &'static str,
    pub(crate) expires_in: i64,
    pub(crate) refresh_expires_in: i64,
}

impl Pair {
    /// Dynata's published lifetimes: 30 minutes, and an hour to refresh.
    pub(crate) const fn new(access: &'static str, refresh: &'static str) -> Self {
        Pair {
            access,
            refresh,
            expires_in: 1800,
            refresh_expires_in: 3600,
        }
    }

    pub(crate) const fn lifetimes(self, expires_in: i64, refresh_expires_in: i64) -> Self {
        Pair {
            expires_in,
            refresh_expires_in,
            ..self
        }
    }

    pub(crate) fn json(&self) -> String {
        json!({
            "accessToken": self.access,
            "expiresIn": self.expires_in,
            "refreshExpiresIn": self.refresh_expires_in,
            "refreshToken": self.refresh,
        })
        .to_string()
    }
}

/// Waits, on real time, for work on other threads (the mock server, the
/// client's background tasks) to make `check` true. Fails after 10 s.
pub(crate) async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    for _ in 0..5000 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    panic!("timed out waiting until {what}");
}

/// Moves `clock` by `by`, then waits until no sleeper is left whose deadline
/// has passed.
pub(crate) async fn advance(clock: &ManualClock, by: Duration) {
    clock.advance(by);
    let now = dynata_sdk::clock::Clock::now(clock);
    eventually("woken sleepers ran", || {
        let due = clock.sleeping_until().iter().any(|d| *d <= now);
        async move { !due }
    })
    .await;
}

/// Waits until the client sleeps on the clock for a time within `wait` of
/// now (a backoff, say). The range matters: a session's expiry timer sleeps
/// too, and must not pass for the backoff that has yet to start.
pub(crate) async fn until_sleeping(clock: &ManualClock, wait: RangeInclusive<Duration>) {
    let now = dynata_sdk::clock::Clock::now(clock);
    let (earliest, latest) = (now + *wait.start(), now + *wait.end());
    eventually("the client sleeps on the clock", || {
        let sleeping = clock.sleeping_until();
        async move {
            sleeping
                .iter()
                .any(|deadline| (earliest..=latest).contains(deadline))
        }
    })
    .await;
}

/// A client (retrying at once, three attempts) of a server on loopback
/// that answers any `POST` with a token pair, and the first `GET` with
/// headers promising 1000 bytes and a body that stops short; later `GET`s
/// get `body`, of `content_type`. Also returns how many `GET`s it received.
pub(crate) async fn client_of_a_cutting_server(
    content_type: &'static str,
    body: &'static [u8],
) -> (Client, Arc<AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let gets = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&gets);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            // Read all of the request: closing a socket with some of it
            // unread would reset the connection before the answer is read.
            let mut request = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                let read = stream.read(&mut chunk).await.unwrap_or(0);
                request.extend_from_slice(&chunk[..read]);
                let head = request.windows(4).position(|w| w == b"\r\n\r\n");
                let complete = head.is_some_and(|end| {
                    let head = String::from_utf8_lossy(&request[..end]).to_ascii_lowercase();
                    let length = head
                        .lines()
                        .find_map(|line| line.strip_prefix("content-length:"))
                        .and_then(|n| n.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    request.len() >= end + 4 + length
                });
                if read == 0 || complete {
                    break;
                }
            }
            let head = |content_type: &str, length: usize| {
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ncontent-length: {length}\r\nconnection: close\r\n\r\n"
                )
                .into_bytes()
            };
            let answer = if request.starts_with(b"POST ") {
                let pair = Pair::new("a1", "r1").json();
                [head("application/json", pair.len()), pair.into_bytes()].concat()
            } else if counted.fetch_add(1, Ordering::SeqCst) == 0 {
                [head(content_type, 1000), body[..body.len() / 2].to_vec()].concat()
            } else {
                [head(content_type, body.len()), body.to_vec()].concat()
            };
            let _ = stream.write_all(&answer).await;
        }
    });
    let client = Client::builder()
        .credentials(Credentials::new("alice", PASSWORD))
        .environment(Environment::custom(&base).expect("loopback URL"))
        .clock(Arc::new(ManualClock::new()))
        .retry_policy(retrying_at_once(3))
        .build()
        .expect("valid");
    (client, gets)
}
