//! What `dynata-sdk` makes of any answer, through its public API, against a
//! loopback server that replies with the bytes each case chooses: the login's
//! token pair, and every answer a `/sample/v1` call can get (status, envelope
//! or gateway page, `Retry-After`, `x-request-id`).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use dynata_sdk::clock::ManualClock;
use dynata_sdk::{Client, Credentials, Environment, RetryPolicy};
use proptest::prelude::*;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::runtime::Runtime;

use super::*;

/// Longer than any answer takes on loopback: reaching it is a hang.
const LIMIT: Duration = Duration::from_secs(10);

struct Fixture {
    runtime: Runtime,
    http: reqwest::Client,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime");
        dynata_auth_api::ensure_crypto_provider();
        // One HTTP client for every case: building one reads the system's
        // root certificates, which would cost more than the case.
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(LIMIT)
            .pool_max_idle_per_host(0)
            .build()
            .expect("a client");
        Fixture { runtime, http }
    })
}

/// Serves `answer(path)` (raw HTTP response bytes) to every request on a
/// fresh loopback port, one request per connection, and returns its URL.
async fn serve(answer: impl Fn(&str) -> Vec<u8> + Send + Sync + 'static) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let url = format!("http://{}", listener.local_addr().expect("bound"));
    let answer = Arc::new(answer);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let answer = answer.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buffer = [0u8; 4096];
                // The SDK's requests are small: headers and a JSON body.
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&request);
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                let _ = stream.write_all(&answer(&path)).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    url
}

/// A raw HTTP/1.1 response. `Content-Length` is right and the connection
/// closes after it, so only the status, headers and body vary.
fn response(status: u16, headers: &[(String, Vec<u8>)], body: &[u8]) -> Vec<u8> {
    let mut raw = format!(
        "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    )
    .into_bytes();
    for (name, value) in headers {
        raw.extend_from_slice(name.as_bytes());
        raw.extend_from_slice(b": ");
        raw.extend_from_slice(value);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"\r\n");
    raw.extend_from_slice(body);
    raw
}

fn client(url: &str) -> Client {
    Client::builder()
        .credentials(Credentials::new(
            "alice",
            "eyJpasswordNeverEchoed.cccccccccccc.dddddddd",
        ))
        .environment(Environment::custom(url).expect("loopback"))
        .http_client(fixture().http.clone())
        .retry_policy(RetryPolicy::none())
        .clock(Arc::new(ManualClock::new()))
        .build()
        .expect("valid configuration")
}

/// The error's `Display`, alternate `Display`, `Debug` and alternate
/// `Debug`, and the `Display` of every error in its source chain.
fn renderings(error: &dynata_sdk::Error) -> String {
    let mut all = format!("{error}\n{error:#}\n{error:?}\n{error:#?}");
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        all.push_str(&format!("\n{cause}\n{cause:?}"));
        source = cause.source();
    }
    all
}

/// What the login can get back with a 200: a token pair, mistyped, damaged,
/// or not JSON at all (a gateway's page, plain text), holding secrets.
fn login_answer() -> impl Strategy<Value = (Vec<u8>, Vec<String>)> {
    (secret(), secret()).prop_flat_map(|(access, refresh)| {
        let secrets = vec![access.clone(), refresh.clone()];
        // Each field right, or a secret where a number or another token
        // belongs (serde's messages quote a string of the wrong type), or any
        // other value.
        let value = |v: Value| {
            prop_oneof![
                3 => Just(v),
                1 => proptest::sample::select(secrets.clone()).prop_map(Value::from),
                1 => json_value(secrets.clone()),
            ]
        };
        let pair = (
            value(Value::from(access.clone())),
            value(Value::from(refresh.clone())),
            value(Value::from(1800)),
            value(Value::from(3600)),
        )
            .prop_map(|(a, r, e, re)| {
                serde_json::to_vec(&json!({
                    "accessToken": a, "refreshToken": r, "expiresIn": e, "refreshExpiresIn": re,
                }))
                .expect("serializes")
            })
            .prop_flat_map(damaged);
        let page = Just(
            format!("<html><head><title>{access}</title></head><body>{refresh}</body></html>")
                .into_bytes(),
        );
        let text = Just(format!("accessToken={access}&refreshToken={refresh}").into_bytes());
        (prop_oneof![4 => pair, 1 => page, 1 => text], Just(secrets))
    })
}

#[test]
fn a_login_answer_never_puts_a_token_into_an_error() {
    let fixture = fixture();
    let content_types = proptest::sample::select(vec![
        "application/vnd.token+json",
        "application/json",
        "text/html",
        "text/plain",
    ]);
    check(
        "sdk::login_answer",
        24,
        5_000,
        (login_answer(), content_types),
        |((body, secrets), content_type)| {
            let raw = response(200, &[("content-type".into(), content_type.into())], &body);
            let outcome = fixture.runtime.block_on(async {
                let url = serve(move |_| raw.clone()).await;
                tokio::time::timeout(LIMIT, client(&url).access_token()).await
            });
            let outcome =
                outcome.map_err(|_| TestCaseError::fail("no outcome within the limit"))?;
            match outcome {
                Ok(token) => {
                    assert_no_secret("an access token's Debug", &format!("{token:?}"), &secrets)
                }
                Err(error) => assert_no_secret("the error", &renderings(&error), &secrets),
            }
        },
    );
}

/// The access token the login hands out in the `/sample/v1` properties: a
/// secret the SDK sends with every call, so one a proxy could echo back.
const SESSION_ACCESS_TOKEN: &str = "eyJaccessTokenOfTheSession.eeeeeeeeeeee.ffffffffffff";

/// Any answer to `GET /sample/v1/users/info` after a good login: a status,
/// `Retry-After` and `x-request-id` headers of any shape, and an envelope,
/// error body, gateway page or random bytes holding secrets.
fn sample_answer() -> impl Strategy<Value = (Vec<u8>, Vec<String>)> {
    (secret(), secret()).prop_flat_map(|(a, b)| {
        let secrets = vec![a.clone(), b.clone()];
        let status = prop_oneof![
            3 => Just(200u16),
            1 => proptest::sample::select(vec![201u16, 204, 301, 400, 401, 403, 404, 408, 429, 500, 502, 503, 504]),
            1 => 100u16..1000,
        ];
        let retry_after = prop_oneof![
            any::<u64>().prop_map(|n| n.to_string().into_bytes()),
            any::<i64>().prop_map(|n| n.to_string().into_bytes()),
            Just(b"Sun, 06 Nov 1994 08:49:37 GMT".to_vec()),
            Just(b"Fri, 31 Dec 9999 23:59:59 GMT".to_vec()),
            "[ -~]{0,40}".prop_map(String::into_bytes),
        ];
        // Ids and any visible text. (The session's token echoed back as the
        // id is the ignored test below.)
        let request_id = prop_oneof![
            "[0-9a-f-]{0,40}".prop_map(String::into_bytes),
            "[ -~]{0,60}".prop_map(String::into_bytes),
        ];
        let headers = (proptest::option::of(retry_after), proptest::option::of(request_id)).prop_map(|(r, id)| {
            let mut headers = vec![("content-type".to_string(), b"application/json".to_vec())];
            headers.extend(r.map(|r| ("retry-after".to_string(), r)));
            headers.extend(id.map(|id| ("x-request-id".to_string(), id)));
            headers
        });
        let envelope = (json_value(secrets.clone()), json_value(secrets.clone()), json_value(secrets.clone()))
            .prop_map(|(data, status, meta)| {
                serde_json::to_vec(&json!({ "data": data, "status": status, "meta": meta })).expect("serializes")
            })
            .prop_flat_map(damaged);
        let failed = proptest::sample::select(secrets.clone()).prop_map(|s| {
            serde_json::to_vec(&json!({
                "data": null,
                "status": { "message": "fail", "errors": [{ "code": "E1", "message": s, "resource": s }] },
                "meta": {},
            }))
            .expect("serializes")
        });
        let auth_error = proptest::sample::select(secrets.clone())
            .prop_map(|s| format!(r#"{{"error":"invalid_token","errorDescription":"{s}","message":"{s}"}}"#).into_bytes());
        let page = proptest::sample::select(secrets.clone())
            .prop_map(|s| format!("<html><title>502 {s}</title><body>{s}</body></html>").into_bytes());
        let text = proptest::sample::select(secrets.clone()).prop_map(|s| format!("bad token {s}").into_bytes());
        let random = proptest::collection::vec(any::<u8>(), 0..256);
        let body = prop_oneof![envelope, failed, auth_error, page, text, random];
        ((status, headers, body).prop_map(|(status, headers, body)| response(status, &headers, &body)), Just(secrets))
    })
}

#[test]
fn a_sample_answer_never_puts_a_secret_into_an_error() {
    let fixture = fixture();
    check(
        "sdk::sample_answer",
        48,
        5_000,
        sample_answer(),
        |(raw, mut secrets)| {
            let access = "eyJaccessTokenOfTheSession.eeeeeeeeeeee.ffffffffffff";
            secrets.push(access.to_string());
            let login = response(
            200,
            &[("content-type".into(), b"application/json".to_vec())],
            &serde_json::to_vec(&json!({
                "accessToken": access, "refreshToken": "eyJrefreshOfTheSession.gggggggggggg.hhhhhhhh",
                "expiresIn": 1800, "refreshExpiresIn": 3600,
            }))
            .expect("serializes"),
        );
            let outcome = fixture.runtime.block_on(async {
                let url = serve(move |path| {
                    if path.starts_with("/auth/") {
                        login.clone()
                    } else {
                        raw.clone()
                    }
                })
                .await;
                tokio::time::timeout(LIMIT, client(&url).users_info()).await
            });
            let outcome =
                outcome.map_err(|_| TestCaseError::fail("no outcome within the limit"))?;
            match outcome {
                Ok(_) => Ok(()),
                Err(error) => assert_no_secret("the error", &renderings(&error), &secrets),
            }
        },
    );
}

/// An `x-request-id` that echoes the bearer token (a JWT short enough to
/// pass for an id) is never quoted in the error.
#[test]
fn an_echoed_token_is_not_quoted_as_a_request_id() {
    let fixture = fixture();
    let statuses = proptest::sample::select(vec![200u16, 400, 401, 403, 404, 429, 500, 502, 503]);
    check("sdk::echoed_request_id", 16, 2_000, statuses, |status| {
        let login = response(
            200,
            &[("content-type".into(), b"application/json".to_vec())],
            &serde_json::to_vec(&json!({
                "accessToken": SESSION_ACCESS_TOKEN, "refreshToken": "eyJrefreshOfTheSession.gggggggggggg.hhhhhhhh",
                "expiresIn": 1800, "refreshExpiresIn": 3600,
            }))
            .expect("serializes"),
        );
        let echo = response(
            status,
            &[(
                "x-request-id".into(),
                SESSION_ACCESS_TOKEN.as_bytes().to_vec(),
            )],
            b"{}",
        );
        let outcome = fixture.runtime.block_on(async {
            let url = serve(move |path| {
                if path.starts_with("/auth/") {
                    login.clone()
                } else {
                    echo.clone()
                }
            })
            .await;
            tokio::time::timeout(LIMIT, client(&url).users_info()).await
        });
        match outcome.map_err(|_| TestCaseError::fail("no outcome within the limit"))? {
            Ok(_) => Ok(()),
            Err(error) => assert_no_secret(
                "the error",
                &renderings(&error),
                &[SESSION_ACCESS_TOKEN.to_string()],
            ),
        }
    });
}
