//! `ClientBuilder::token_store`: clients that share a store share a session.

use std::sync::Arc;
use std::time::Duration;

use dynata_sandbox::{Operation, Sandbox};
use dynata_sdk::store::{FileStore, StoreKey, TokenStore};
use dynata_sdk::{Client, Credentials, Environment};

use crate::TempDir;

async fn sandbox() -> Sandbox {
    Sandbox::builder()
        .user("alice", "secret")
        .access_token_ttl(Duration::from_secs(1800))
        .start()
        .await
        .expect("starts")
}

fn client(sandbox: &Sandbox, store: Arc<dyn TokenStore>) -> Client {
    Client::builder()
        .credentials(Credentials::new("alice", "secret"))
        .environment(Environment::custom(&sandbox.base_url()).expect("loopback"))
        .token_store(store)
        .build()
        .expect("valid")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_client_adopts_the_session_the_first_stored() {
    let dir = TempDir::new("client-adopt");
    let sandbox = sandbox().await;
    let first = client(&sandbox, Arc::new(FileStore::new(dir.path())));
    let second = client(&sandbox, Arc::new(FileStore::new(dir.path())));
    let a = first.access_token().await.expect("logs in");
    let b = second.access_token().await.expect("adopts");
    assert_eq!(a.secret(), b.secret());
    assert_eq!(sandbox.count(Operation::Login), 1);
    second.users_info().await.expect("the adopted token works");
    // The fast path serves it from then on: nothing more is sent.
    for _ in 0..100 {
        second.access_token().await.expect("cached");
    }
    assert_eq!(
        sandbox.count(Operation::Login) + sandbox.count(Operation::Refresh),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_removes_the_stored_session_and_the_others_log_in_again() {
    let dir = TempDir::new("client-logout");
    let sandbox = sandbox().await;
    let store = FileStore::new(dir.path());
    let first = client(&sandbox, Arc::new(store.clone()));
    let second = client(&sandbox, Arc::new(store.clone()));
    first.access_token().await.expect("logs in");
    second.access_token().await.expect("adopts");
    let key = StoreKey::for_account(&sandbox.base_url(), "api", "alice");
    assert!(store.session_path(&key).exists());

    first.logout().await.expect("logged out");
    assert!(
        !store.session_path(&key).exists(),
        "the shared session is gone"
    );
    // The session was revoked at Dynata: the other client's next call meets a
    // 401, renews (a login, as the store is empty) and succeeds.
    second.users_info().await.expect("renewed after the 401");
    assert_eq!(sandbox.count(Operation::Login), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_whose_store_is_unusable_still_works() {
    let dir = TempDir::new("client-broken");
    // A regular file where the store's directory should be.
    std::fs::write(dir.path(), b"not a directory").expect("written");
    let sandbox = sandbox().await;
    let client = client(
        &sandbox,
        Arc::new(FileStore::new(dir.path().join("sessions"))),
    );
    client.users_info().await.expect("works without the store");
    assert_eq!(sandbox.count(Operation::Login), 1);
    let _ = std::fs::remove_file(dir.path());
}
