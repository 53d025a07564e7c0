//! The SDK README's "Calling the Demand API" sample, as written, on the
//! sandbox a newcomer rehearses it on: it is `no_run` there (it needs a
//! server), so nothing else would notice it failing (it named a survey
//! topic the sandbox does not have). `lifecycle` below is the README's, but
//! that the invoice is checked rather than written to `./invoice.pdf`;
//! `the_sample_run_here_is_the_readmes` keeps the two the same.

use std::time::Duration;

use dynata_sdk::sample_api::types;
use futures_util::StreamExt as _; // any `Stream` consumer will do

#[rustfmt::skip]
async fn lifecycle(client: dynata_sdk::Client) -> Result<(), Box<dyn std::error::Error>> {
    // 1. Create the project with one line item: 200 US adults, 10 minutes.
    let line_item = types::CreateLineItem::builder()
        .ext_line_item_id("li-1")
        .title("US adults")
        .country_iso_code("US")
        .language_iso_code("en")
        .indicative_incidence(60.0)
        .length_of_interview(10_i64)
        .days_in_field(7_i64)
        .targets(vec![types::Target::builder().count(200_i64).try_into()?]);
    let project: types::CreateProject = types::CreateProject::builder()
        .ext_project_id("p-2026-001")
        .title("Car owners")
        .notification_emails(vec!["research@example.com".to_string()])
        .category(types::ProjectCategory::builder().survey_topic(vec!["AUTOMOTIVE".to_string()]))
        .line_items(vec![line_item.try_into()?])
        .try_into()?;
    // The closure may run again (a 401 replay, a retried GET): it builds
    // the operation each time, here from a clone of the body.
    let created = client
        .sample(|api| {
            let project = project.clone();
            async move { api.create_project().body(project).send().await }
        })
        .await?;
    let id = created.ext_project_id;

    // 2. Wait for feasibility and price (Dynata takes 20-120 s).
    let quotes = client.wait_for_feasibility(&id, Duration::from_secs(300)).await?;
    for item in &quotes {
        println!("{}: {:?} per complete", item.ext_line_item_id, item.feasibility.cost_per_interview);
    }

    // 3. Buy, giving the survey links, then 4. launch the line item.
    let buy = types::BuyRequest(vec![types::BuyItem::builder()
        .ext_line_item_id("li-1")
        .survey_url("https://survey.example.com/s?psid=<#DubKnowledge[1500/Entity id]>")
        .survey_test_url("https://survey.example.com/test")
        .try_into()?]);
    client
        .sample(|api| {
            let (id, buy) = (id.clone(), buy.clone());
            async move { api.buy_project().ext_project_id(id).body(buy).send().await }
        })
        .await?;
    client
        .sample(|api| {
            let id = id.clone();
            async move {
                api.launch_line_item().ext_project_id(id).ext_line_item_id("li-1").send().await
            }
        })
        .await?;

    // 5. Watch the report.
    let report = client
        .sample(|api| {
            let id = id.clone();
            async move { api.get_project_report().ext_project_id(id).send().await }
        })
        .await?;
    println!("{:?} completes of {:?}", report.completes, report.remaining_completes);

    // 6. Accept every reprice Dynata proposed, following the pages.
    let project_id = id.clone();
    let mut reprices = client.sample_items(100, move |api, page| {
        let id = project_id.clone();
        async move {
            api.list_events()
                .ext_project_id(id)
                .event_type("LineItem:RepriceTriggered")
                .offset(page.offset)
                .limit(page.limit)
                .send()
                .await
        }
    });
    while let Some(event) = reprices.next().await {
        let event_id = event?.event_id.to_string();
        client
            .sample(|api| {
                let event_id = event_id.clone();
                async move { api.accept_event().event_id(event_id).send().await }
            })
            .await?;
    }

    // 7. Close the project, and 8. fetch its invoice once it is INVOICED.
    let closed = client
        .sample(|api| {
            let id = id.clone();
            async move { api.close_project().ext_project_id(id).send().await }
        })
        .await?;
    println!("closed: {:?}", closed.state);
    let pdf: Vec<u8> = client.invoice_pdf(&id).await?;
    assert!(pdf.starts_with(b"%PDF-"));
    Ok(())
}

/// The README's sample, from `async fn lifecycle` to its end.
fn sample_in(text: &str) -> &str {
    let start = text.find("async fn lifecycle(").expect("the sample");
    let end = start + text[start..].find("\n}\n").expect("its end") + 3;
    &text[start..end]
}

#[test]
fn the_sample_run_here_is_the_readmes() {
    let readme = include_str!("../../../crates/dynata-sdk/README.md");
    let here = include_str!("readme_sample.rs");
    assert_eq!(
        sample_in(here).replace(
            r#"assert!(pdf.starts_with(b"%PDF-"));"#,
            r#"std::fs::write("invoice.pdf", pdf)?;"#
        ),
        sample_in(readme),
        "the SDK README's Demand API sample changed: change lifecycle() here the same way"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sdk_readmes_demand_sample_runs_on_the_sandbox() {
    let sandbox = dynata_sandbox::Sandbox::builder()
        .user("alice", "secret")
        .feasibility_delay(Duration::from_millis(200))
        .start()
        .await
        .expect("the sandbox starts");
    let client = dynata_sdk::Client::builder()
        .credentials(dynata_sdk::Credentials::new("alice", "secret"))
        .environment(dynata_sdk::Environment::custom(&sandbox.base_url()).expect("loopback"))
        .build()
        .expect("valid configuration");
    if let Err(error) = lifecycle(client).await {
        panic!("the README's Demand API sample fails on the sandbox: {error}");
    }
}
