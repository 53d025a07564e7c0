//! The whole token lifecycle, watched as it happens: `cargo run --example quickstart`.
//!
//! With no `DYNATA_*` variables set it starts an embedded `dynata-sandbox`
//! with 4-second tokens, so that a proactive refresh and a re-login happen
//! within seconds. With `DYNATA_USERNAME` and `DYNATA_PASSWORD` set, the same
//! program runs against Dynata (`DYNATA_BASE_URL`, default production).

use std::time::Duration;

use dynata_sandbox::Sandbox;
use dynata_sdk::{Client, Credentials, Environment};
use tracing_subscriber::layer::SubscriberExt;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    show_sdk_events();

    // Real Dynata if any DYNATA_* variable asks for it (and then every one
    // of them must be right); the embedded sandbox otherwise.
    let asked_for_dynata = ["DYNATA_USERNAME", "DYNATA_PASSWORD", "DYNATA_BASE_URL"]
        .iter()
        .any(|name| std::env::var(name).is_ok_and(|value| !value.is_empty()));
    let (client, sandbox) = match asked_for_dynata {
        true => {
            let credentials = Credentials::from_env()?;
            let environment = Environment::from_env_or(Environment::Production)?;
            say(&format!("using Dynata at {}", environment.base_url()?));
            (
                Client::builder()
                    .credentials(credentials)
                    .environment(environment)
                    .build()?,
                None,
            )
        }
        false => {
            let sandbox = Sandbox::builder()
                .user("quickstart", "quickstart")
                .access_token_ttl(Duration::from_secs(4))
                .refresh_token_ttl(Duration::from_secs(60))
                .start()
                .await?;
            say(&format!(
                "no DYNATA_USERNAME set: started a sandbox at {}",
                sandbox.base_url()
            ));
            let client = Client::builder()
                .credentials(Credentials::new("quickstart", "quickstart"))
                .environment(Environment::custom(&sandbox.base_url())?)
                .build()?;
            (client, Some(sandbox))
        }
    };

    say("first call: the client logs in");
    let token = client.access_token().await?;
    let lifetime = token
        .expires_at()
        .saturating_duration_since(std::time::Instant::now());
    say(&format!(
        "got a token valid for {} s more (its value stays secret)",
        lifetime.as_secs()
    ));

    let me = client.users_info().await?;
    say(&format!(
        "authenticated call: GET /sample/v1/users/info -> user {:?}",
        me.username
    ));

    if let Some(sandbox) = &sandbox {
        say("waiting 2.5 s: the 4 s token enters its soft window");
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let current = client.access_token().await?;
        say(&format!(
            "a call in the soft window gets the current token at once (same as before? {}) \
             and starts one refresh in the background",
            current.same_as(&token)
        ));
        tokio::time::sleep(Duration::from_millis(300)).await;
        let fresh = client.access_token().await?;
        say(&format!("refreshed since? {}", !fresh.same_as(&token)));

        say("the sandbox now revokes every token, as if the session ended server-side");
        sandbox.revoke_all();
        let me = client.users_info().await?;
        say(&format!(
            "the call still succeeded (401, re-login, retry): user {:?}",
            me.username
        ));
    }

    client.logout().await?;
    say("logged out; the next call would log in afresh");
    Ok(())
}

/// One line per event of the SDK's own (`dynata_sdk`), without timestamps.
fn show_sdk_events() {
    let ours =
        tracing_subscriber::filter::filter_fn(|meta| meta.target().starts_with("dynata_sdk"));
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .without_time()
        .with_target(false)
        .finish()
        .with(ours);
    let _ = tracing::subscriber::set_global_default(subscriber);
}

fn say(line: &str) {
    println!("quickstart: {line}");
}
