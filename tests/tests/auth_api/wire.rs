//! Snapshots of exactly what each generated operation sends, so that a spec
//! edit that changes the wire format shows up in review.

use std::sync::{Arc, Mutex};

use httpmock::MockServer;

use super::*;

/// Starts a mock server that answers every request with `status` and `body`,
/// and returns it with the list of requests it received, rendered as text.
async fn capturing_server(
    status: u16,
    body: &'static str,
) -> (MockServer, Arc<Mutex<Vec<String>>>) {
    let server = MockServer::start_async().await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    server
        .mock_async(move |when, then| {
            when.is_true(move |request| {
                sink.lock().expect("capture lock").push(render(request));
                true
            });
            then.status(status)
                .header("content-type", "application/json")
                .body(body);
        })
        .await;
    (server, seen)
}

/// Method, path, headers (sorted; `host` dropped because it holds the port)
/// and the body exactly as sent.
fn render(request: &httpmock::HttpMockRequest) -> String {
    let mut headers: Vec<String> = request
        .headers_vec()
        .iter()
        .filter(|(name, _)| !name.eq_ignore_ascii_case("host"))
        .map(|(name, value)| format!("{}: {value}", name.to_ascii_lowercase()))
        .collect();
    headers.sort();
    format!(
        "{} {}\n{}\n\n{}",
        request.method_str(),
        request.uri().path(),
        headers.join("\n"),
        request.body_string()
    )
}

fn only_request(seen: &Mutex<Vec<String>>) -> String {
    let seen = seen.lock().expect("capture lock");
    assert_eq!(seen.len(), 1, "expected one request: {seen:#?}");
    seen[0].clone()
}

#[tokio::test]
async fn login_request() {
    let (server, seen) = capturing_server(200, TOKEN_PAIR).await;
    client_for(&server)
        .login(&login_body())
        .await
        .expect("login succeeds");
    insta::assert_snapshot!(only_request(&seen));
}

#[tokio::test]
async fn refresh_request() {
    let (server, seen) = capturing_server(200, TOKEN_PAIR).await;
    client_for(&server)
        .refresh(&refresh_body())
        .await
        .expect("refresh succeeds");
    insta::assert_snapshot!(only_request(&seen));
}

#[tokio::test]
async fn logout_request() {
    let (server, seen) = capturing_server(204, "").await;
    client_for(&server)
        .logout(&logout_body())
        .await
        .expect("logout succeeds");
    insta::assert_snapshot!(only_request(&seen));
}

#[tokio::test]
async fn exchange_code_request() {
    let (server, seen) = capturing_server(200, TOKEN_PAIR).await;
    client_for(&server)
        .exchange_code(&code_body())
        .await
        .expect("exchange succeeds");
    insta::assert_snapshot!(only_request(&seen));
}
