//! The whole token lifecycle, watched as it happens: `cargo run --example quickstart`.
//!
//! With no `DYNATA_*` variables set it starts an embedded `dynata-sandbox`
//! with 4-second tokens, so that a proactive refresh and a re-login happen
//! within seconds. With `DYNATA_USERNAME` and `DYNATA_PASSWORD` set, the same
//! program runs against Dynata (`DYNATA_BASE_URL`, default production).
//!
//! On the sandbox it then runs a whole project through the typed Demand API:
//! create it with one line item, wait for feasibility and price, buy, launch,
//! watch the report count completes, accept a reprice, close, fetch the
//! invoice. Against Dynata that part is skipped: it would buy real sample.

use std::time::Duration;

use dynata_sandbox::Sandbox;
use dynata_sdk::sample_api::types;
use dynata_sdk::{Client, Credentials, Environment};
use futures_util::StreamExt as _;
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
                // Dynata takes 20-120 s to price a line item; 2 s here.
                .feasibility_delay(Duration::from_secs(2))
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

    match &sandbox {
        Some(_) => project_lifecycle(&client).await?,
        None => say(
            "skipping the project lifecycle: against Dynata it would buy real sample \
             (run without DYNATA_* variables to rehearse it on the sandbox)",
        ),
    }

    client.logout().await?;
    say("logged out; the next call would log in afresh");
    Ok(())
}

/// A whole project on the sandbox, through the typed Demand API: one line
/// item of 50 GB adults at 50 % incidence, 10 minutes.
async fn project_lifecycle(client: &Client) -> Result<(), Box<dyn std::error::Error>> {
    const PROJECT: &str = "quickstart-1";
    const LINE_ITEM: &str = "gb-adults";

    let line_item = types::CreateLineItem::builder()
        .ext_line_item_id(LINE_ITEM)
        .title("GB adults")
        .country_iso_code("GB")
        .language_iso_code("en")
        .indicative_incidence(50.0)
        .length_of_interview(10_i64)
        .days_in_field(7_i64)
        .targets(vec![types::Target::builder().count(50_i64).try_into()?]);
    let project: types::CreateProject = types::CreateProject::builder()
        .ext_project_id(PROJECT)
        .title("Quickstart")
        .notification_emails(vec!["research@example.com".to_string()])
        .category(types::ProjectCategory::builder().survey_topic(vec!["TRAVEL".to_string()]))
        .line_items(vec![line_item.try_into()?])
        .try_into()?;
    // The closure may run more than once (a 401 replay), so it builds the
    // operation each time, here from a clone of the body.
    let created = client
        .sample(|api| {
            let project = project.clone();
            async move { api.create_project().body(project).send().await }
        })
        .await?;
    say(&format!(
        "created project {} with line item {LINE_ITEM}: {}",
        created.ext_project_id,
        text(&created.state)
    ));

    // The SDK polls until the price is ready; a ticker shows we are waiting.
    // The sandbox prices in 2 s, but the SDK's second poll comes after 5 s
    // (`FEASIBILITY_FIRST_WAIT`): its pauses are paced for Dynata's 20-120 s.
    let wait = client.wait_for_feasibility(PROJECT, Duration::from_secs(30));
    tokio::pin!(wait);
    let mut ticker = tokio::time::interval_at(
        tokio::time::Instant::now() + Duration::from_secs(1),
        Duration::from_secs(1),
    );
    let started = std::time::Instant::now();
    let quotes = loop {
        tokio::select! {
            quotes = &mut wait => break quotes?,
            _ = ticker.tick() => say(&format!(
                "waiting for feasibility and price: {} s",
                started.elapsed().as_secs()
            )),
        }
    };
    let quote = &quotes[0].feasibility;
    let first_price = quote.cost_per_interview.unwrap_or_default();
    say(&format!(
        "feasibility: {} after {:.1} s, {} feasible at {first_price:.2} {} per complete",
        text(&quote.status),
        started.elapsed().as_secs_f64(),
        quote.total_count.unwrap_or_default(),
        quote.currency.as_deref().unwrap_or("USD"),
    ));

    let buy = types::BuyRequest(vec![
        types::BuyItem::builder()
            .ext_line_item_id(LINE_ITEM)
            .survey_url("https://survey.example.com/s?psid=<#DubKnowledge[1500/Entity id]>")
            .survey_test_url("https://survey.example.com/test")
            .try_into()?,
    ]);
    let bought = client
        .sample(|api| {
            let buy = buy.clone();
            async move {
                api.buy_project()
                    .ext_project_id(PROJECT)
                    .body(buy)
                    .send()
                    .await
            }
        })
        .await?;
    say(&format!(
        "bought: line item {}",
        bought
            .first()
            .and_then(|item| item.state.as_ref())
            .map(text)
            .unwrap_or_default()
    ));
    let launched = client
        .sample(|api| async move {
            api.launch_line_item()
                .ext_project_id(PROJECT)
                .ext_line_item_id(LINE_ITEM)
                .send()
                .await
        })
        .await?;
    say(&format!("launched: line item {}", text(&launched.state)));

    // The sandbox fields 5 attempts a second; at 50 % incidence, 80 % of
    // those who qualify complete: about 2 completes a second.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let report = client
            .sample(|api| async move {
                api.get_project_report()
                    .ext_project_id(PROJECT)
                    .send()
                    .await
            })
            .await?;
        say(&format!(
            "report: {} attempts, {} completes, {} screen-outs, {} to go",
            report.attempts.unwrap_or_default(),
            report.completes.unwrap_or_default(),
            report.screenouts.unwrap_or_default(),
            report.remaining_completes.unwrap_or_default(),
        ));
    }

    // A longer interview than quoted: Dynata raises a reprice event and
    // pauses the line item until it is answered.
    let longer: types::UpdateLineItem = types::UpdateLineItem::builder()
        .length_of_interview(Some(15_i64))
        .try_into()?;
    client
        .sample(|api| {
            let longer = longer.clone();
            async move {
                api.update_line_item()
                    .ext_project_id(PROJECT)
                    .ext_line_item_id(LINE_ITEM)
                    .body(longer)
                    .send()
                    .await
            }
        })
        .await?;
    say("updated the line item's length of interview: 10 -> 15 minutes");
    let mut reprices = client.sample_items(100, |api, page| async move {
        api.list_events()
            .ext_project_id(PROJECT)
            .event_type("LineItem:RepriceTriggered")
            .offset(page.offset)
            .limit(page.limit)
            .send()
            .await
    });
    while let Some(event) = reprices.next().await {
        let event = event?;
        let price = event
            .resource
            .as_ref()
            .and_then(|resource| resource.cost_per_interview.as_ref());
        say(&format!(
            "event {}: {} on {}, {:.2} -> {:.2} per complete",
            event.event_id,
            text(&event.event_type),
            event.ext_line_item_id.as_deref().unwrap_or("?"),
            price.and_then(|p| p.previous_value).unwrap_or_default(),
            price.and_then(|p| p.new_value).unwrap_or_default(),
        ));
        let event_id = event.event_id.to_string();
        let answer = client
            .sample(|api| {
                let event_id = event_id.clone();
                async move { api.accept_event().event_id(event_id).send().await }
            })
            .await?;
        say(&format!(
            "accepted it: event {} {}",
            answer.event_id,
            text(&answer.event_type)
        ));
    }
    let repriced = client
        .sample(|api| async move {
            api.get_line_item()
                .ext_project_id(PROJECT)
                .ext_line_item_id(LINE_ITEM)
                .send()
                .await
        })
        .await?;
    say(&format!(
        "line item {} again at the new price",
        text(&repriced.state)
    ));

    let closed = client
        .sample(|api| async move { api.close_project().ext_project_id(PROJECT).send().await })
        .await?;
    say(&format!("closed the project: {}", text(&closed.state)));
    let invoice = client.invoice_pdf(PROJECT).await?;
    say(&format!(
        "invoice: a PDF of {} bytes (the project is now INVOICED)",
        invoice.len()
    ));
    Ok(())
}

/// A value the server sent (a state, a status, an event type) as its text.
fn text(value: &impl std::fmt::Display) -> String {
    value.to_string()
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
