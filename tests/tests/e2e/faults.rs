//! What the SDK does with each kind of fault the sandbox can inject.

use dynata_sandbox::{Fault, Operation};
use dynata_sdk::Error;

use super::*;

/// A login that meets `fault` once, then succeeds.
async fn login_through(fault: Fault) -> (Result<dynata_sdk::AccessToken, Error>, u64) {
    let sandbox = sandbox().await;
    let clock = ManualClock::new();
    let client = client_on(&sandbox, &clock);
    sandbox.inject(Operation::Login, fault, 1);
    let task = tokio::spawn(async move { client.access_token().await });
    let outcome = drive(&clock, task).await;
    (outcome, sandbox.count(Operation::Login))
}

#[tokio::test]
async fn transient_faults_are_retried_until_the_login_succeeds() {
    let faults = [
        Fault::Status(503),
        Fault::Status(500),
        Fault::RateLimited {
            retry_after: Duration::from_secs(2),
        },
        Fault::Unavailable {
            retry_after: Duration::from_secs(2),
        },
        Fault::HtmlBadGateway,
        Fault::ResetConnection,
        Fault::Delay(Duration::from_millis(50)),
    ];
    for fault in faults {
        let delay = matches!(fault, Fault::Delay(_));
        let (outcome, logins) = login_through(fault.clone()).await;
        assert!(outcome.is_ok(), "{fault:?}: {outcome:?}");
        // A delay is not a failure: one request. Every other fault: a retry.
        assert_eq!(logins, if delay { 1 } else { 2 }, "{fault:?}");
    }
}

/// README: retries honour `Retry-After` "on every one of them", and
/// `Error::retry_after` is "the wait a server asked for, kept on a `503`
/// the retries gave up on": a maintenance window longer than the retry
/// budget is one request and an error that says when to come back.
#[tokio::test]
async fn a_503_asking_for_longer_than_the_budget_keeps_its_retry_after() {
    let (outcome, logins) = login_through(Fault::Unavailable {
        retry_after: Duration::from_secs(120),
    })
    .await;
    let error = outcome.expect_err("a 503 for two minutes");
    assert_eq!(error.status(), Some(503), "{error:?}");
    assert_eq!(error.retry_after(), Some(Duration::from_secs(120)));
    assert!(error.is_transient());
    assert_eq!(logins, 1);
}

#[tokio::test]
async fn a_malformed_body_is_a_decode_error_and_is_not_retried() {
    let (outcome, logins) = login_through(Fault::MalformedBody).await;
    assert!(matches!(outcome, Err(Error::Decode { .. })), "{outcome:?}");
    assert_eq!(logins, 1);
}

#[tokio::test]
async fn a_client_error_status_is_not_retried() {
    let (outcome, logins) = login_through(Fault::Status(403)).await;
    assert!(
        matches!(outcome, Err(Error::Api { status: 403, .. })),
        "{outcome:?}"
    );
    assert_eq!(logins, 1);
}

#[tokio::test]
async fn wrong_credentials_are_rejected_with_one_request() {
    let sandbox = sandbox().await;
    let client = Client::builder()
        .credentials(Credentials::new("alice", "wrong"))
        .environment(Environment::custom(&sandbox.base_url()).expect("loopback"))
        .build()
        .expect("valid");
    for _ in 0..3 {
        let error = client.access_token().await.expect_err("rejected");
        assert!(
            matches!(error, Error::CredentialsRejected { status: 401, .. }),
            "{error:?}"
        );
    }
    assert_eq!(sandbox.count(Operation::Login), 1);
}

#[tokio::test]
async fn authenticated_calls_survive_faults_and_a_revoked_session() {
    let sandbox = sandbox().await;
    let clock = ManualClock::new();
    let client = client_on(&sandbox, &clock);
    assert_eq!(
        client
            .users_info()
            .await
            .expect("works")
            .username
            .as_deref(),
        Some("alice")
    );
    sandbox.inject(Operation::UsersInfo, Fault::ResetConnection, 1);
    sandbox.inject(Operation::UsersInfo, Fault::HtmlBadGateway, 1);
    let task = {
        let client = client.clone();
        tokio::spawn(async move { client.users_info().await })
    };
    drive(&clock, task)
        .await
        .expect("retried past a reset and a 502");
    assert_eq!(sandbox.count(Operation::UsersInfo), 4);

    // Dynata ends the session: the 401 leads to a refresh, which is refused
    // (revoked), so the SDK logs in again and retries the call once.
    sandbox.revoke_all();
    client.users_info().await.expect("recovered");
    assert_eq!(
        (
            sandbox.count(Operation::Refresh),
            sandbox.count(Operation::Login)
        ),
        (1, 2)
    );
}

/// A refresh whose answer was lost after Dynata spent its refresh token
/// (`AnswerLost`): the SDK cannot have the new pair, and the refresh token
/// it holds is dead. The renewal must still end with a working token (a
/// login with the password), not a dead end of refused refreshes.
#[tokio::test]
async fn a_refresh_whose_answer_was_lost_ends_in_a_login() {
    let sandbox = sandbox().await;
    let clock = ManualClock::new();
    let client = client_on(&sandbox, &clock);
    let first = client.access_token().await.expect("logged in");
    assert!(client.invalidate(&first));
    sandbox.inject(Operation::Refresh, Fault::AnswerLost, 1);
    let task = {
        let client = client.clone();
        tokio::spawn(async move { client.users_info().await })
    };
    let info = drive(&clock, task).await;
    assert!(info.is_ok(), "{info:?}");
    assert_eq!(
        (
            sandbox.count(Operation::Refresh),
            sandbox.count(Operation::Login)
        ),
        (2, 2),
        "a lost refresh, the spent token refused once, then a login"
    );
}
