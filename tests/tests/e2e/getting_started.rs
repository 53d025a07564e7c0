//! Dynata's getting-started request, byte for byte but for the host.

use super::*;

/// The curl command from Dynata's getting-started page.
fn curl_args(base_url: &str) -> Vec<String> {
    [
        "-sS",
        "-X",
        "POST",
        &format!("{base_url}/auth/v1/token/password"),
        "-H",
        "Content-Type: application/json",
        "-d",
        r#"{"clientId": "api", "password": "<Your Password>", "username": "<Your username>"}"#,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

#[tokio::test]
async fn the_getting_started_request_logs_in() {
    let sandbox = Sandbox::builder()
        .user("<Your username>", "<Your Password>")
        .start()
        .await
        .expect("starts");
    let args = curl_args(&sandbox.base_url());
    // curl where it is installed; else the same method, URL, header and body.
    let body = match tokio::process::Command::new("curl")
        .args(&args)
        .output()
        .await
    {
        Ok(output) if output.status.success() => output.stdout,
        _ => {
            // A plain reqwest client needs rustls's provider (see dynata-auth-api).
            dynata_auth_api::ensure_crypto_provider();
            reqwest::Client::new()
                .post(&args[3])
                .header("Content-Type", "application/json")
                .body(args[7].clone())
                .send()
                .await
                .expect("sent")
                .bytes()
                .await
                .expect("body")
                .to_vec()
        }
    };
    let pair: serde_json::Value = serde_json::from_slice(&body).expect("a JSON token pair");
    assert!(
        pair["accessToken"].as_str().is_some_and(|t| !t.is_empty()),
        "{pair}"
    );
    assert!(
        pair["refreshToken"].as_str().is_some_and(|t| !t.is_empty()),
        "{pair}"
    );
    assert_eq!(
        (
            pair["expiresIn"].as_u64(),
            pair["refreshExpiresIn"].as_u64()
        ),
        (Some(1800), Some(3600))
    );
    assert_eq!(sandbox.count(dynata_sandbox::Operation::Login), 1);
}
