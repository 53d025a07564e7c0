//! Dynata's getting-started request, byte for byte but for the host.
//!
//! The page publishes a curl command. The test always sends the bytes that
//! command puts on the wire over a plain TCP socket, so it asserts the same
//! thing on every machine; where curl is installed it runs the command too,
//! and holds curl's answer to exactly the same assertions.

use dynata_sandbox::Operation;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::*;

/// The body of the published command (`-d`), unchanged.
const BODY: &str =
    r#"{"clientId": "api", "password": "<Your Password>", "username": "<Your username>"}"#;

/// The sandbox with the page's placeholders as its user, so that the
/// request logs in as published.
async fn placeholder_sandbox() -> Sandbox {
    Sandbox::builder()
        .user("<Your username>", "<Your Password>")
        .start()
        .await
        .expect("starts")
}

/// What `curl -X POST <url> -H 'Content-Type: application/json' -d <BODY>`
/// sends: curl's request line and default headers, the page's one header,
/// and the body with the length curl computes.
fn request_bytes(addr: std::net::SocketAddr) -> Vec<u8> {
    format!(
        "POST /auth/v1/token/password HTTP/1.1\r\n\
         Host: {addr}\r\n\
         User-Agent: curl/8.5.0\r\n\
         Accept: */*\r\n\
         Content-Type: application/json\r\n\
         Content-Length: {}\r\n\
         \r\n\
         {BODY}",
        BODY.len()
    )
    .into_bytes()
}

/// A response as both paths see it: status line, lower-cased headers, body.
struct RawResponse {
    status_line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl RawResponse {
    /// Splits an HTTP/1.1 response whose head is complete.
    fn parse(raw: &[u8]) -> Option<RawResponse> {
        let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
        let head = std::str::from_utf8(&raw[..end]).ok()?;
        let mut lines = head.split("\r\n");
        let status_line = lines.next()?.to_owned();
        let headers = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
            .collect();
        Some(RawResponse {
            status_line,
            headers,
            body: raw[end + 4..].to_vec(),
        })
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Sends the request bytes and reads one response, framed by its
/// `Content-Length` (the connection stays open, as curl leaves it).
async fn send_raw(addr: std::net::SocketAddr) -> RawResponse {
    let mut stream = TcpStream::connect(addr).await.expect("connects");
    stream
        .write_all(&request_bytes(addr))
        .await
        .expect("request sent");
    let mut raw = Vec::new();
    let mut chunk = [0u8; 4096];
    let read_all = async {
        loop {
            if let Some(response) = RawResponse::parse(&raw) {
                let length: usize = response
                    .header("content-length")
                    .and_then(|value| value.parse().ok())
                    .expect("a Content-Length");
                if response.body.len() >= length {
                    return response;
                }
            }
            let n = stream.read(&mut chunk).await.expect("reads");
            assert!(n > 0, "the server closed early: {raw:?}");
            raw.extend_from_slice(&chunk[..n]);
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read_all)
        .await
        .expect("an answer within 10 s")
}

/// What the page promises: a `200` token pair with Dynata's published
/// lifetimes, whose access token works. Returns nothing: it asserts.
async fn assert_logged_in(sandbox: &Sandbox, response: &RawResponse) {
    assert_eq!(response.status_line, "HTTP/1.1 200 OK");
    assert_eq!(
        response.header("content-type"),
        Some("application/vnd.token+json")
    );
    let pair: serde_json::Value =
        serde_json::from_slice(&response.body).expect("a JSON token pair");
    let access = pair["accessToken"].as_str().expect("an access token");
    assert!(!access.is_empty());
    assert!(pair["refreshToken"].as_str().is_some_and(|t| !t.is_empty()));
    assert_eq!(pair["expiresIn"], 1800);
    assert_eq!(pair["refreshExpiresIn"], 3600);
    // A plain reqwest client needs rustls's provider (see dynata-auth-api).
    dynata_auth_api::ensure_crypto_provider();
    let me = reqwest::Client::new()
        .get(format!("{}/sample/v1/users/info", sandbox.base_url()))
        .bearer_auth(access)
        .send()
        .await
        .expect("users/info answers");
    assert_eq!(me.status(), reqwest::StatusCode::OK);
    let me: serde_json::Value = me.json().await.expect("an envelope");
    assert_eq!(me["data"]["username"], "<Your username>");
}

#[tokio::test]
async fn the_getting_started_request_logs_in() {
    let sandbox = placeholder_sandbox().await;
    let response = send_raw(sandbox.addr()).await;
    assert_logged_in(&sandbox, &response).await;
    assert_eq!(sandbox.count(Operation::Login), 1);

    // The published command itself, where curl is installed, held to the
    // same assertions; elsewhere the bytes above have already been checked.
    let Some(response) = run_curl(&sandbox).await else {
        return;
    };
    assert_logged_in(&sandbox, &response).await;
    assert_eq!(sandbox.count(Operation::Login), 2);
}

/// Runs the page's curl command against the sandbox (with `-sS -i`: quiet
/// but for errors, and the response head too); `None` without curl.
async fn run_curl(sandbox: &Sandbox) -> Option<RawResponse> {
    let url = format!("{}/auth/v1/token/password", sandbox.base_url());
    let output = tokio::process::Command::new("curl")
        .args(["-sS", "-i", "-X", "POST", &url])
        .args(["-H", "Content-Type: application/json", "-d", BODY])
        .output()
        .await;
    let output = match output {
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return None,
        other => other.expect("curl runs"),
    };
    assert!(output.status.success(), "curl failed: {output:?}");
    Some(RawResponse::parse(&output.stdout).expect("curl printed a response"))
}
