//! `AuthMiddleware` in a `reqwest-middleware` stack of the user's own.

use dynata_sandbox::Operation;
use dynata_sdk::AuthMiddleware;

use super::*;

#[tokio::test]
async fn the_middleware_authenticates_and_recovers_from_a_401() {
    let sandbox = sandbox().await;
    let client = client_on(&sandbox, &ManualClock::new());
    // A plain reqwest client needs rustls's provider (see dynata-auth-api).
    dynata_auth_api::ensure_crypto_provider();
    let http = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(AuthMiddleware::new(client))
        .build();
    let url = format!("{}/sample/v1/users/info", sandbox.base_url());
    assert_eq!(http.get(&url).send().await.expect("sent").status(), 200);
    sandbox.revoke_all();
    assert_eq!(
        http.get(&url).send().await.expect("sent").status(),
        200,
        "recovered"
    );
    assert_eq!(sandbox.count(Operation::UsersInfo), 3);
    assert_eq!(sandbox.count(Operation::Login), 2);

    let plain = reqwest::Client::new().get(&url).send().await.expect("sent");
    assert_eq!(
        plain.status(),
        401,
        "without the middleware the sandbox refuses"
    );
}

#[tokio::test]
async fn the_middleware_refuses_another_origin_before_logging_in() {
    let elsewhere = sandbox().await;
    let sandbox = sandbox().await;
    let client = client_on(&sandbox, &ManualClock::new());
    dynata_auth_api::ensure_crypto_provider();
    let http = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(AuthMiddleware::new(client))
        .build();
    let foreign = format!("{}/sample/v1/users/info", elsewhere.base_url());
    let error = http.get(&foreign).send().await.expect_err("refused");
    assert!(
        error
            .to_string()
            .contains("refusing to send the access token"),
        "{error}"
    );
    assert_eq!(elsewhere.count(Operation::UsersInfo), 0);
    assert_eq!(sandbox.count(Operation::Login), 0, "no login for it");
}
