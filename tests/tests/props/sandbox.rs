//! The sandbox's parsing of requests, over loopback: any body on the auth
//! routes, and any bytes at all on the socket. Each case is a round trip, so
//! there are few of them.

use std::sync::OnceLock;
use std::time::Duration;

use dynata_sandbox::Sandbox;
use proptest::prelude::*;
use serde_json::{Map, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::runtime::Runtime;

use super::*;

/// The one password the sandbox knows; it must never come back in an answer.
const PASSWORD: &str = "eyJsandboxPasswordNeverEchoed.aaaaaaaaaaaaaaaa.bbbbbbbb";

/// Longer than any answer takes on loopback: reaching it is a hang.
const LIMIT: Duration = Duration::from_secs(10);

struct Fixture {
    runtime: Runtime,
    sandbox: Sandbox,
    http: reqwest::Client,
}

/// One runtime and one sandbox for every case: starting them per case would
/// cost more than the case.
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime");
        let sandbox = runtime
            .block_on(Sandbox::builder().user("alice", PASSWORD).start())
            .expect("the sandbox starts");
        dynata_auth_api::ensure_crypto_provider();
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(LIMIT)
            .build()
            .expect("a client");
        Fixture {
            runtime,
            sandbox,
            http,
        }
    })
}

const ROUTES: [&str; 4] = [
    "/auth/v1/token/password",
    "/auth/v1/token/refresh",
    "/auth/v1/logout",
    "/auth/v1/token/code",
];

/// A request body for the auth routes: the fields they read, present or not,
/// of the right type or any other, holding secrets; then maybe damaged.
fn auth_body() -> impl Strategy<Value = (Vec<u8>, Vec<String>)> {
    (secret(), secret())
        .prop_flat_map(|(token, password)| {
            let secrets = vec![token.clone(), password.clone(), PASSWORD.to_string()];
            let string = |value: String| {
                prop_oneof![
                    2 => Just(Value::String(value)),
                    1 => json_value(secrets.clone()),
                ]
                .boxed()
            };
            (
                maybe(string("api".into())),
                maybe(string("alice".into())),
                maybe(prop_oneof![string(password), Just(Value::from(PASSWORD))]),
                maybe(string(token.clone())),
                maybe(string(token)),
                maybe(json_value(secrets.clone())),
                Just(secrets),
            )
        })
        .prop_flat_map(
            |(client_id, username, password, refresh, access, other, secrets)| {
                let mut object = Map::new();
                for (key, value) in [
                    ("clientId", client_id),
                    ("username", username),
                    ("password", password),
                    ("refreshToken", refresh),
                    ("accessToken", access),
                    ("clientSecret", other.clone()),
                    ("code", other.clone()),
                    ("redirectURI", other),
                ] {
                    if let Some(value) = value {
                        object.insert(key.into(), value);
                    }
                }
                let body = serde_json::to_vec(&Value::Object(object)).expect("serializes");
                (damaged(body), Just(secrets))
            },
        )
}

#[test]
fn the_auth_routes_answer_any_body_without_a_5xx_or_an_echo() {
    let fixture = fixture();
    let strategy = (proptest::sample::select(ROUTES.to_vec()), auth_body());
    check(
        "sandbox::auth_bodies",
        24,
        5_000,
        strategy,
        |(route, (body, secrets))| {
            let (status, answer) = fixture.runtime.block_on(async {
                let response = fixture
                    .http
                    .post(format!("{}{route}", fixture.sandbox.base_url()))
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .expect("an answer within the limit");
                let status = response.status().as_u16();
                (status, response.text().await.expect("a readable answer"))
            });
            // 200 and 204 only for a request that really is valid (the right
            // password, a live token, the sandbox's code; logout accepts any).
            prop_assert!(
                [200, 204, 400, 401].contains(&status),
                "{route} answered {status}: {answer}"
            );
            if status >= 400 {
                let error: Value = serde_json::from_str(&answer).expect("an error body is JSON");
                prop_assert!(error["error"].is_string(), "{answer}");
            }
            assert_no_secret("the sandbox's answer", &answer, &secrets)
        },
    );
}

/// Bytes on a fresh connection: an HTTP request line and headers followed by
/// anything, or anything at all.
fn raw_request() -> impl Strategy<Value = Vec<u8>> {
    let head = prop_oneof![
        Just(b"POST /auth/v1/token/password HTTP/1.1\r\nHost: x\r\n".to_vec()),
        Just(b"GET /sample/v1/users/info HTTP/1.1\r\nAuthorization: Bearer ".to_vec()),
        Just(
            b"POST /auth/v1/logout HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n"
                .to_vec()
        ),
        Just(b"POST /__sandbox/faults HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec()),
        Just(Vec::new()),
    ];
    (head, proptest::collection::vec(any::<u8>(), 0..1024)).prop_map(|(mut head, tail)| {
        head.extend(tail);
        head
    })
}

#[test]
fn any_bytes_on_the_socket_get_an_answer_or_a_close_and_the_server_lives_on() {
    let fixture = fixture();
    check("sandbox::raw_bytes", 24, 5_000, raw_request(), |bytes| {
        let answer = fixture.runtime.block_on(async {
            tokio::time::timeout(LIMIT, async {
                let mut stream = TcpStream::connect(fixture.sandbox.addr()).await?;
                stream.write_all(&bytes).await?;
                stream.shutdown().await?;
                let mut answer = Vec::new();
                // A reset instead of a close is an answer too.
                let _ = stream.read_to_end(&mut answer).await;
                Ok::<_, std::io::Error>(answer)
            })
            .await
        });
        let answer = answer
            .map_err(|_| TestCaseError::fail("no answer and no close within the limit"))?
            .map_err(|e| TestCaseError::fail(format!("could not even send: {e}")))?;
        prop_assert!(
            answer.is_empty() || answer.starts_with(b"HTTP/1.1 "),
            "not HTTP: {:?}",
            String::from_utf8_lossy(&answer)
        );
        if answer.starts_with(b"HTTP/1.1 5") {
            return Err(TestCaseError::fail(format!(
                "a 5xx: {}",
                String::from_utf8_lossy(&answer)
            )));
        }
        // The server still answers a well-formed request.
        let alive = fixture.runtime.block_on(async {
            fixture
                .http
                .get(format!("{}/__sandbox/counts", fixture.sandbox.base_url()))
                .send()
                .await
                .map(|response| response.status().as_u16())
        });
        prop_assert_eq!(alive.ok(), Some(200));
        Ok(())
    });
}
