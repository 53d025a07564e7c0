//! No password or token ever shows in `Debug`, `Display`, logs or errors.

use std::io::Write;
use std::sync::{Mutex, OnceLock};

use tracing_subscriber::layer::SubscriberExt;

use super::*;

/// Collects everything the `tracing` subscriber writes.
#[derive(Clone, Default)]
pub(crate) struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    /// Everything logged so far, by every test of this binary.
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("log lock")).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log lock").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const SECRETS: [&str; 5] = [
    PASSWORD,
    "access-one",
    "refresh-one",
    "access-two",
    "refresh-two",
];

fn assert_clean(what: &str, text: &str) {
    for secret in SECRETS {
        assert!(
            !text.contains(secret),
            "{what} shows a secret ({secret}): {text}"
        );
    }
}

/// Installs, once for this test binary, a global subscriber that captures
/// every event at every level. (A thread-local one would miss events whose
/// callsite interest another test thread cached first.)
pub(crate) fn captured_logs() -> &'static Captured {
    static CAPTURED: OnceLock<Captured> = OnceLock::new();
    CAPTURED.get_or_init(|| {
        let captured = Captured::default();
        let writer = captured.clone();
        // The mock server logs the requests it receives. It stands in for
        // Dynata; it is not the client, so its events are left out.
        let not_the_mock =
            tracing_subscriber::filter::filter_fn(|event| !event.target().starts_with("httpmock"));
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .finish()
            .with(not_the_mock);
        tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber");
        captured
    })
}

#[tokio::test]
async fn secrets_stay_out_of_logs_debug_and_errors() {
    let captured = captured_logs();

    let harness = Harness::with(|b| b.retry_policy(RetryPolicy::none())).await;
    harness
        .pair_on(LOGIN, Pair::new("access-one", "refresh-one"), 1)
        .await;
    harness
        .answer(REFRESH, 400, r#"{"error":"invalid_grant"}"#, 1)
        .await;
    harness
        .pair_on(LOGIN, Pair::new("access-two", "refresh-two"), 1)
        .await;
    let rejected = harness
        .answer(LOGIN, 401, r#"{"error":"invalid_grant"}"#, 0)
        .await;
    harness.answer(LOGOUT, 204, "", 0).await;

    let first = harness.token().await;
    harness.advance(30 * 60).await;
    let second = harness.token().await;
    assert_eq!(second.secret(), "access-two");
    harness.client.logout().await.expect("logout");
    let error = harness.client.access_token().await.expect_err("rejected");
    assert_eq!(rejected.calls_async().await, 1);

    assert_clean("AccessToken's Debug", &format!("{first:?} {second:?}"));
    assert_clean("Client's Debug", &format!("{:?}", harness.client));
    assert_clean(
        "Credentials' Debug",
        &format!("{:?}", Credentials::new("alice", PASSWORD)),
    );
    assert_clean("the error", &format!("{error} {error:?}"));
    let logs = String::from_utf8(captured.0.lock().expect("log lock").clone()).expect("utf-8");
    assert!(
        logs.contains("login succeeded") && logs.contains("refresh"),
        "nothing logged: {logs}"
    );
    assert_clean("the logs", &logs);
}

/// reqwest's default policy follows a `307`/`308` to any host and sends the
/// body again: a login redirected elsewhere would hand that host the
/// password. The SDK's client follows redirects only within the origin.
#[tokio::test]
async fn a_login_redirected_to_another_host_sends_it_nothing() {
    let harness = Harness::new().await;
    let elsewhere = MockServer::start_async().await;
    let stolen = elsewhere
        .mock_async(|_, then| {
            then.status(200)
                .body(Pair::new("access-one", "refresh-one").json());
        })
        .await;
    let target = elsewhere.url(LOGIN);
    harness
        .server
        .mock_async(move |when, then| {
            when.path(LOGIN);
            then.status(307).header("location", target);
        })
        .await;
    let error = harness
        .client
        .access_token()
        .await
        .expect_err("not followed");
    assert_eq!(
        stolen.calls_async().await,
        0,
        "the password left the origin"
    );
    assert_clean("the error", &format!("{error} {error:?}"));

    // Within the origin a redirect is still followed.
    let harness = Harness::new().await;
    harness
        .pair_on("/auth/v2/login", Pair::new("access-one", "refresh-one"), 0)
        .await;
    let moved = harness.server.url("/auth/v2/login");
    harness
        .server
        .mock_async(move |when, then| {
            when.path(LOGIN);
            then.status(308).header("location", moved);
        })
        .await;
    harness
        .client
        .access_token()
        .await
        .expect("followed within the origin");
}

/// A refresh sends the client secret too: a server that quotes it back (in
/// its error code or description) must not get it into the logs or errors.
#[tokio::test]
async fn a_client_secret_quoted_by_a_refused_refresh_stays_out() {
    const CLIENT_SECRET: &str = "client-secret-7f3a";
    let captured = captured_logs();
    let harness = Harness::with(|b| {
        b.credentials(Credentials::new("alice", PASSWORD).with_client_secret(CLIENT_SECRET))
            .retry_policy(RetryPolicy::none())
    })
    .await;
    harness
        .pair_on(LOGIN, Pair::new("access-one", "refresh-one"), 1)
        .await;
    let quoted = format!(
        r#"{{"error":"{CLIENT_SECRET}","errorDescription":"unknown client {CLIENT_SECRET}"}}"#
    );
    let refresh = harness.answer(REFRESH, 400, &quoted, 0).await;
    harness
        .answer(LOGIN, 401, &quoted.replace("unknown", "refused"), 0)
        .await;

    harness.token().await;
    harness.advance(30 * 60).await;
    let error = harness.client.access_token().await.expect_err("refused");
    assert_eq!(refresh.calls_async().await, 1);

    let text = format!("{error} {error:?}");
    assert!(!text.contains(CLIENT_SECRET), "the error shows it: {text}");
    let logs = String::from_utf8(captured.0.lock().expect("log lock").clone()).expect("utf-8");
    assert!(
        logs.contains("logging in with the password"),
        "nothing logged: {logs}"
    );
    assert!(
        !logs.contains(CLIENT_SECRET),
        "the logs show the client secret: {logs}"
    );
}

/// Plain `http` is allowed for loopback hosts only, so that the password and
/// tokens never cross a network in clear. An `HTTP_PROXY` in the process's
/// environment (common on corporate machines) must not change that: the
/// SDK's own client sent the login to the proxy instead, in clear, and the
/// proxy, on another machine, connects to *its* loopback.
///
/// The proxy variables are read when the client is built, and tests cannot
/// set them (`unsafe_code` is forbidden): the test runs itself again as a
/// child process with `HTTP_PROXY` pointing at a mock proxy.
#[tokio::test]
async fn a_loopback_login_never_goes_through_an_http_proxy() {
    if std::env::var_os("DYNATA_TEST_PROXY_CHILD").is_some() {
        let harness = Harness::with(|b| b.retry_policy(RetryPolicy::none())).await;
        harness
            .pair_on(LOGIN, Pair::new("access-one", "refresh-one"), 0)
            .await;
        harness
            .client
            .access_token()
            .await
            .expect("logged in, through the proxy or not");
        return;
    }
    let proxy = MockServer::start_async().await;
    let relayed = proxy
        .mock_async(|when, then| {
            when.body_includes(PASSWORD);
            then.status(200)
                .body(Pair::new("access-one", "refresh-one").json());
        })
        .await;
    let proxy_url = proxy.base_url();
    let child = tokio::task::spawn_blocking(move || {
        std::process::Command::new(std::env::current_exe().expect("the test binary"))
            .args([
                "redaction::a_loopback_login_never_goes_through_an_http_proxy",
                "--exact",
                "--nocapture",
            ])
            .env("DYNATA_TEST_PROXY_CHILD", "1")
            .env("HTTP_PROXY", &proxy_url)
            .env("http_proxy", &proxy_url)
            .env_remove("NO_PROXY")
            .env_remove("no_proxy")
            .status()
            .expect("the child test runs")
    })
    .await
    .expect("child");
    assert!(child.success(), "the child test failed: {child}");
    assert_eq!(
        relayed.calls_async().await,
        0,
        "the password went to the HTTP proxy, in clear"
    );
}

/// A gateway that echoes the login's password back in `x-request-id` (a
/// password of letters, digits and `-` looks like any request id): the
/// error and the logs do not quote it, as for an echoed error description.
/// (The request id was kept whole.)
#[tokio::test]
async fn a_password_echoed_in_the_request_id_stays_out_of_the_error() {
    const ID_SHAPED_PASSWORD: &str = "Summer-2024-rocks";
    let captured = captured_logs();
    let harness = Harness::with(|b| {
        b.credentials(Credentials::new("alice", ID_SHAPED_PASSWORD))
            .retry_policy(RetryPolicy::none())
    })
    .await;
    harness
        .server
        .mock_async(|when, then| {
            when.method(POST).path(LOGIN);
            then.status(401)
                .header("content-type", "application/vnd.auth.error+json")
                .header("x-request-id", ID_SHAPED_PASSWORD)
                .body(r#"{"error":"invalid_grant"}"#);
        })
        .await;
    let error = harness.client.access_token().await.expect_err("rejected");
    let text = format!("{error} {error:?}");
    assert!(
        !text.contains(ID_SHAPED_PASSWORD),
        "the error quotes the password: {text}"
    );
    let logs = String::from_utf8(captured.0.lock().expect("log lock").clone()).expect("utf-8");
    assert!(
        !logs.contains(ID_SHAPED_PASSWORD),
        "the logs quote the password: {logs}"
    );
}

/// An access token that is not a JWT (the sandbox's `sbx-at-…`, a UUID, the
/// hex string many identity servers issue) looks like any request id. A
/// gateway that echoes it back in `x-request-id` must not get it into the
/// error of the call that sent it, nor into the logs, as a login's
/// password echoed there is kept out.
#[tokio::test]
async fn an_access_token_echoed_in_the_request_id_stays_out_of_the_error() {
    const OPAQUE_TOKEN: &str = "sbx-at-3f2c1a9e0b7d4c559f1e2a6b8c0d4e11";
    let captured = captured_logs();
    let harness = logged_in_without_retries(OPAQUE_TOKEN).await;
    harness
        .server
        .mock_async(|when, then| {
            when.method(httpmock::Method::GET)
                .path("/sample/v1/projects");
            then.status(403)
                .header("content-type", "application/json")
                .header("x-request-id", OPAQUE_TOKEN)
                .body(r#"{"message":"Forbidden"}"#);
        })
        .await;
    let error = harness
        .client
        .get::<Vec<serde_json::Value>>("/sample/v1/projects")
        .await
        .expect_err("forbidden");
    assert_eq!(error.status(), Some(403), "{error:?}");
    assert_not_quoted(&error, OPAQUE_TOKEN);
    assert_not_logged(captured, OPAQUE_TOKEN);
}

/// A client that does not retry, whose login answers the access token
/// `access`.
async fn logged_in_without_retries(access: &'static str) -> Harness {
    let harness = Harness::with(|b| b.retry_policy(RetryPolicy::none())).await;
    harness
        .pair_on(LOGIN, Pair::new(access, "refresh-one"), 0)
        .await;
    harness
}

fn assert_not_logged(captured: &Captured, access: &str) {
    let logs = captured.text();
    assert!(
        !logs.contains(access),
        "the logs quote the access token: {logs}"
    );
}

fn assert_not_quoted(error: &dynata_sdk::Error, access: &str) {
    let text = format!("{error} {error:?}");
    assert!(
        !text.contains(access),
        "the error quotes the access token: {text}"
    );
}

/// The same through a typed call, whose answer Dynata refused with a `200`,
/// a record and `status.message: "fail"` (read after the call returned,
/// outside its retry engine): a UUID-shaped token echoed in `x-request-id`
/// and in `errors[].resource.id`, where ids of that shape are kept, stays
/// out.
#[cfg(feature = "demand")]
#[tokio::test]
async fn an_access_token_echoed_in_a_typed_refusal_stays_out_of_the_error() {
    const UUID_TOKEN: &str = "3f2c1a9e-0b7d-4c55-9f1e-2a6b8c0d4e11";
    let harness = logged_in_without_retries(UUID_TOKEN).await;
    let refusal = json!({
        "data": {"extProjectId": "p1", "title": "Cats", "state": "PROVISIONED"},
        "status": {
            "message": "fail",
            "errors": [{"code": "403", "message": "Forbidden", "resource": {"type": "token", "id": UUID_TOKEN}}],
        },
    });
    harness
        .server
        .mock_async(|when, then| {
            when.method(httpmock::Method::GET)
                .path("/sample/v1/projects/p1");
            then.status(200)
                .header("content-type", "application/json")
                .header("x-request-id", UUID_TOKEN)
                .body(refusal.to_string());
        })
        .await;
    let error = harness
        .client
        .sample(|api| async move { api.get_project().ext_project_id("p1").send().await })
        .await
        .expect_err("refused");
    assert!(
        matches!(error, dynata_sdk::Error::Rejected { .. }),
        "{error:?}"
    );
    assert_not_quoted(&error, UUID_TOKEN);
}

/// The same for the reconciliation upload, written by hand beside the
/// generated calls: its refusal is read from the answer `send` returned.
#[cfg(feature = "demand")]
#[tokio::test]
async fn an_access_token_echoed_in_a_refused_upload_stays_out_of_the_error() {
    const OPAQUE_TOKEN: &str = "sbx-at-3f2c1a9e0b7d4c559f1e2a6b8c0d4e11";
    let harness = logged_in_without_retries(OPAQUE_TOKEN).await;
    harness
        .server
        .mock_async(|when, then| {
            when.method(POST).path("/sample/v1/projects/p1/reconcile");
            then.status(403)
                .header("content-type", "application/json")
                .header("x-request-id", OPAQUE_TOKEN)
                .body(r#"{"message":"Forbidden"}"#);
        })
        .await;
    let error = harness
        .client
        .reconcile_project("p1", "r.xlsx", b"PK".to_vec(), None)
        .await
        .expect_err("forbidden");
    assert_eq!(error.status(), Some(403), "{error:?}");
    assert_not_quoted(&error, OPAQUE_TOKEN);
}

/// A successful answer's `x-request-id` is kept too ([`Page::request_id`],
/// for Dynata's support, and in the page's `Debug`): a gateway that echoes
/// a token that is not a JWT there must not hand it to the caller as an id.
#[tokio::test]
async fn an_access_token_echoed_in_a_good_answers_request_id_stays_out_of_the_page() {
    const OPAQUE_TOKEN: &str = "sbx-at-5a1c7e9f0b2d4c6e8f1a3b5c7d9e0f12";
    let harness = Harness::with(|b| b.retry_policy(RetryPolicy::none())).await;
    harness
        .pair_on(LOGIN, Pair::new(OPAQUE_TOKEN, "refresh-one"), 0)
        .await;
    harness
        .server
        .mock_async(|when, then| {
            when.method(httpmock::Method::GET)
                .path("/sample/v1/projects");
            then.status(200)
                .header("content-type", "application/json")
                .header("x-request-id", OPAQUE_TOKEN)
                .body(r#"{"data":[],"status":{"message":"success"}}"#);
        })
        .await;
    let page = harness
        .client
        .get::<Vec<serde_json::Value>>("/sample/v1/projects")
        .await
        .expect("a page");
    let text = format!("{page:?}");
    assert!(
        !text.contains(OPAQUE_TOKEN),
        "the page quotes the access token: {text}"
    );
}

/// A redirect (within the environment's origin) to a URL that quotes the
/// token, then a redirect loop: reqwest's message names the last URL, and
/// that must not carry the token into the error or the logs.
#[tokio::test]
async fn an_access_token_echoed_in_a_redirect_url_stays_out_of_the_error() {
    const OPAQUE_TOKEN: &str = "sbx-at-7c3e1a9f0b2d4c6e8f1a3b5c7d9e0f34";
    let captured = captured_logs();
    let harness = Harness::with(|b| b.retry_policy(RetryPolicy::none())).await;
    harness
        .pair_on(LOGIN, Pair::new(OPAQUE_TOKEN, "refresh-one"), 0)
        .await;
    let looping = format!("/sample/v1/loop/{OPAQUE_TOKEN}");
    harness
        .server
        .mock_async(|when, then| {
            when.method(httpmock::Method::GET)
                .path("/sample/v1/projects");
            then.status(302).header("location", looping.as_str());
        })
        .await;
    harness
        .server
        .mock_async(|when, then| {
            when.method(httpmock::Method::GET).path(looping.as_str());
            then.status(302).header("location", looping.as_str());
        })
        .await;
    let error = harness
        .client
        .get::<Vec<serde_json::Value>>("/sample/v1/projects")
        .await
        .expect_err("a redirect loop");
    assert_not_quoted(&error, OPAQUE_TOKEN);
    assert_not_logged(captured, OPAQUE_TOKEN);
}

/// [`Client::send`] hands on a transient status (`503`, `429`, `5xx`) as
/// the response it is when no retry is left (here a `POST`, never
/// retried): its headers are the caller's to read as much as a `200`'s,
/// and a gateway that echoes the token in `x-request-id` must not hand it
/// to the caller there either (found by re-review of 8273b47, which
/// cleaned the answers that are not failures only).
#[tokio::test]
async fn an_access_token_echoed_in_a_transient_answer_send_hands_on_is_removed() {
    const OPAQUE_TOKEN: &str = "sbx-at-0e4b6d8f1a3c5e7092b4d6f8a1c3e5f7";
    let harness = logged_in_without_retries(OPAQUE_TOKEN).await;
    harness
        .server
        .mock_async(|when, then| {
            when.method(POST).path("/sample/v1/projects");
            then.status(503)
                .header("content-type", "application/json")
                .header("x-request-id", OPAQUE_TOKEN)
                .body(r#"{"message":"Service Unavailable"}"#);
        })
        .await;
    let request = harness
        .client
        .request(reqwest::Method::POST, "/sample/v1/projects")
        .body("{}");
    let response = harness
        .client
        .send(request)
        .await
        .expect("the 503, handed on");
    assert_eq!(response.status(), 503);
    let headers = format!("{:?}", response.headers());
    assert!(
        !headers.contains(OPAQUE_TOKEN),
        "the answer's headers quote the access token: {headers}"
    );
    assert_eq!(dynata_sdk::request_id(response.headers()), None);
}

/// The same under `AuthMiddleware`, which does what [`Client::send`] does
/// and hands back every answer as the response it is: a `200`, or a
/// `503` when no retry is left (a `POST`). Neither may quote the token it
/// was sent with in its headers (found by re-review of 8273b47, which
/// cleaned `send`'s answers only).
#[cfg(feature = "middleware")]
#[tokio::test]
async fn an_access_token_echoed_in_an_answer_through_the_middleware_is_removed() {
    const OPAQUE_TOKEN: &str = "sbx-at-2a4c6e8f0b1d3f5a7c9e0b2d4f6a8c0e";
    let harness = logged_in_without_retries(OPAQUE_TOKEN).await;
    for (method, status) in [(httpmock::Method::GET, 200), (POST, 503)] {
        harness
            .server
            .mock_async(|when, then| {
                when.method(method).path("/sample/v1/projects");
                then.status(status)
                    .header("content-type", "application/json")
                    .header("x-request-id", OPAQUE_TOKEN)
                    .body(r#"{"data":[],"status":{"message":"success"}}"#);
            })
            .await;
    }
    dynata_sdk::auth_api::ensure_crypto_provider();
    let http = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(dynata_sdk::AuthMiddleware::new(harness.client.clone()))
        .build();
    let url = harness.server.url("/sample/v1/projects");
    for request in [http.get(&url), http.post(&url).body("{}")] {
        let response = request.send().await.expect("an answer");
        let headers = format!("{:?}", response.headers());
        assert!(
            !headers.contains(OPAQUE_TOKEN),
            "the {} answer's headers quote the access token: {headers}",
            response.status()
        );
    }
}
