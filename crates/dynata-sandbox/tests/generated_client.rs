//! The generated Demand API client (`dynata-sample-api`) against the
//! sandbox: every generated operation is called and its answer, success or
//! error, decodes into the client's types. The conformance test checks the
//! sandbox against the spec; this one checks it against the code users run.

use std::time::Duration;

use dynata_sample_api::{Bearer, Client, Error, ResponseValue, types};
use dynata_sandbox::Sandbox;
use futures_util::TryStreamExt;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// A request body of the client's own types, from JSON.
fn body<T: DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).expect("a body the spec allows")
}

/// A server-sent value (an open enum, say) as its JSON text.
fn text(value: &impl serde::Serialize) -> String {
    serde_json::to_value(value)
        .unwrap()
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The status and first error code of a refused call.
fn refusal<T>(result: Result<T, Error<types::ApiError>>) -> (u16, String) {
    match result {
        Err(Error::ErrorResponse(answer)) => {
            let status = answer.status().as_u16();
            let error = answer.into_inner();
            let code = error
                .status
                .and_then(|s| s.errors.into_iter().flatten().next())
                .map(|e| e.code);
            (status, code.unwrap_or_default())
        }
        Err(other) => panic!("expected an error answer, got {other}"),
        Ok(_) => panic!("expected an error answer, got a success"),
    }
}

async fn pdf(answer: ResponseValue<dynata_sample_api::ByteStream>) -> Vec<u8> {
    assert_eq!(answer.headers()["content-type"], "application/pdf");
    let chunks: Vec<_> = answer
        .into_inner()
        .into_inner()
        .try_collect()
        .await
        .unwrap();
    chunks.concat()
}

fn project(id: &str) -> types::CreateProject {
    body(json!({
        "extProjectId": id,
        "title": "Generated client",
        "notificationEmails": ["research@example.com"],
        "category": {"surveyTopic": ["TRAVEL"]},
        "lineItems": [{
            "extLineItemId": "li-1",
            "title": "GB adults",
            "countryISOCode": "GB",
            "languageISOCode": "en",
            "indicativeIncidence": 25,
            "lengthOfInterview": 10,
            "daysInField": 5,
            "targets": [{"type": "COMPLETE", "count": 40}],
            "quotaPlan": {"quotaGroups": [{"quotaCells": [
                {"quotaNodes": [{"attributeId": "11", "options": ["1"]}], "perc": 50},
                {"quotaNodes": [{"attributeId": "11", "options": ["2"]}], "perc": 50},
            ]}]},
        }],
    }))
}

#[tokio::test(start_paused = true)]
async fn every_generated_operation_works_against_the_sandbox() {
    let sandbox = Sandbox::builder()
        .user("alice", "pw")
        .feasibility_delay(Duration::from_secs(4))
        .start()
        .await
        .unwrap();
    // reqwest's rustls has no crypto provider of its own (see dynata-sample-api).
    dynata_sample_api::ensure_crypto_provider();
    let http = reqwest::Client::builder()
        .no_proxy()
        .pool_idle_timeout(None)
        .build()
        .unwrap();
    let pair: Value = http
        .post(format!("{}/auth/v1/token/password", sandbox.base_url()))
        .json(&json!({"clientId": "api", "username": "alice", "password": "pw"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = pair["accessToken"].as_str().unwrap();
    let base = format!("{}/sample/v1", sandbox.base_url());
    let api = Client::new_with_client(&base, http.clone(), Bearer::new(token));

    // Who and what.
    let me = api.get_user_info().send().await.unwrap().into_inner().data;
    assert_eq!(me.user_name.as_deref(), Some("alice"));
    assert_eq!(api.get_user().send().await.unwrap().into_inner().data.id, 1);
    assert!(
        api.list_company_users()
            .send()
            .await
            .unwrap()
            .into_inner()
            .data
            .len()
            == 1
    );
    assert!(
        !api.list_teams()
            .send()
            .await
            .unwrap()
            .into_inner()
            .data
            .is_empty()
    );
    assert!(
        !api.list_roles()
            .send()
            .await
            .unwrap()
            .into_inner()
            .data
            .is_empty()
    );
    let countries = api
        .list_countries()
        .limit(100)
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        countries.meta.unwrap().total,
        Some(countries.data.len() as i64)
    );
    let attributes = api
        .list_attributes()
        .country_code("JP")
        .language_code("ja")
        .send()
        .await
        .unwrap();
    assert!(
        attributes
            .into_inner()
            .data
            .iter()
            .any(|a| !a.options.is_empty())
    );
    assert!(
        !api.list_survey_topics()
            .send()
            .await
            .unwrap()
            .into_inner()
            .data
            .is_empty()
    );
    assert!(
        !api.list_sources()
            .send()
            .await
            .unwrap()
            .into_inner()
            .data
            .is_empty()
    );
    let metadata = api
        .get_study_metadata()
        .send()
        .await
        .unwrap()
        .into_inner()
        .data;
    assert!(!metadata.delivery_types.is_empty());

    // A project, its feasibility, and a buy that must wait for it.
    let created = api
        .create_project()
        .body(project("p-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    assert_eq!(text(&created.into_inner().data.state), "PROVISIONED");
    assert_eq!(
        api.list_projects()
            .send()
            .await
            .unwrap()
            .into_inner()
            .data
            .len(),
        1
    );
    let renamed = api
        .update_project()
        .ext_project_id("p-1")
        .body(body::<types::UpdateProject>(json!({"title": "Renamed"})))
        .send()
        .await
        .unwrap();
    assert_eq!(renamed.into_inner().data.title, "Renamed");
    assert_eq!(
        refusal(api.get_project().ext_project_id("nope").send().await),
        (404, "NOT_FOUND".into())
    );
    let feasibility = api
        .get_feasibility()
        .ext_project_id("p-1")
        .send()
        .await
        .unwrap();
    assert_eq!(
        text(&feasibility.into_inner().data[0].feasibility.status),
        "PROCESSING"
    );
    let buy: types::BuyRequest = body(json!([
        {"extLineItemId": "li-1", "surveyURL": "https://s.example/1", "surveyTestURL": "https://s.example/t"}
    ]));
    let early = api
        .buy_project()
        .ext_project_id("p-1")
        .body(buy.clone())
        .send()
        .await;
    assert_eq!(refusal(early), (409, "INVALID_STATE".into()));
    tokio::time::advance(Duration::from_secs(4)).await;
    let ready = api
        .get_feasibility()
        .ext_project_id("p-1")
        .send()
        .await
        .unwrap()
        .into_inner();
    // GB: 1.80 + 0.05 × 10 = 2.30 base; 30 ÷ 25 = 1.20 premium.
    assert_eq!(ready.data[0].feasibility.cost_per_interview, Some(3.5));
    api.buy_project()
        .ext_project_id("p-1")
        .body(buy)
        .send()
        .await
        .unwrap();

    // In field.
    let item = |id: &str| id.to_owned();
    let launched = api
        .launch_line_item()
        .ext_project_id("p-1")
        .ext_line_item_id(item("li-1"))
        .send()
        .await;
    assert_eq!(text(&launched.unwrap().into_inner().data.state), "LAUNCHED");
    tokio::time::advance(Duration::from_secs(20)).await;
    let report = api
        .get_project_report()
        .ext_project_id("p-1")
        .send()
        .await
        .unwrap()
        .into_inner()
        .data;
    // 100 attempts at 25 %: 25 qualify, 20 complete.
    assert_eq!((report.attempts, report.completes), (Some(100), Some(20)));
    api.get_project_detailed_report()
        .ext_project_id("p-1")
        .send()
        .await
        .unwrap();
    let detailed = api
        .get_line_item_detailed_report()
        .ext_project_id("p-1")
        .ext_line_item_id("li-1")
        .send()
        .await
        .unwrap()
        .into_inner()
        .data;
    assert_eq!(detailed.quota_groups.len(), 1);
    let reports = api
        .list_project_reports()
        .ext_project_id("p-1")
        .send()
        .await
        .unwrap();
    assert_eq!(reports.into_inner().data.len(), 1);
    assert_eq!(
        api.list_line_items()
            .ext_project_id("p-1")
            .send()
            .await
            .unwrap()
            .into_inner()
            .data
            .len(),
        1
    );
    api.get_line_item()
        .ext_project_id("p-1")
        .ext_line_item_id("li-1")
        .send()
        .await
        .unwrap();
    let cell = api
        .set_quota_cell_status()
        .ext_project_id("p-1")
        .ext_line_item_id("li-1")
        .quota_cell_id("2")
        .action(types::QuotaCellAction::Pause)
        .send()
        .await
        .unwrap()
        .into_inner()
        .data;
    assert_eq!(cell.status.as_ref().map(text), Some("PAUSED".to_owned()));
    api.pause_line_item()
        .ext_project_id("p-1")
        .ext_line_item_id("li-1")
        .send()
        .await
        .unwrap();

    // Two reprices: one accepted, one rejected.
    for (change, accept) in [
        (json!({"lengthOfInterview": 14}), true),
        (json!({"indicativeIncidence": 5}), false),
    ] {
        api.update_line_item()
            .ext_project_id("p-1")
            .ext_line_item_id("li-1")
            .body(body::<types::UpdateLineItem>(change))
            .send()
            .await
            .unwrap();
        let events = api
            .list_events()
            .event_type("LineItem:RepriceTriggered")
            .sort("eventId:desc")
            .send()
            .await;
        let event_id = events.unwrap().into_inner().data[0].event_id.to_string();
        let answered = if accept {
            api.accept_event().event_id(&event_id).send().await.unwrap()
        } else {
            api.reject_event().event_id(&event_id).send().await.unwrap()
        };
        assert_eq!(
            answered
                .into_inner()
                .data
                .parent_event_id
                .map(|id| id.to_string()),
            Some(event_id.clone())
        );
        let triggered = api
            .get_event()
            .event_id(&event_id)
            .send()
            .await
            .unwrap()
            .into_inner()
            .data;
        assert!(triggered.actions.is_none());
    }

    // Permissions and end links.
    api.get_project_permissions()
        .ext_project_id("p-1")
        .send()
        .await
        .unwrap();
    let grant: types::UpsertPermissions = body(json!({"teams": [{"id": 2}]}));
    let granted = api
        .upsert_project_permissions()
        .ext_project_id("p-1")
        .body(grant)
        .send()
        .await;
    assert_eq!(granted.unwrap().into_inner().data.teams.len(), 1);
    api.get_survey_end_links()
        .ext_project_id("p-1")
        .survey_id("s-1")
        .send()
        .await
        .unwrap();

    // Another line item, closed on its own; then the project, and its invoice.
    let mut second = serde_json::to_value(project("x")).unwrap()["lineItems"][0].clone();
    second["extLineItemId"] = json!("li-2");
    api.create_line_item()
        .ext_project_id("p-1")
        .body(body::<types::CreateLineItem>(second))
        .send()
        .await
        .unwrap();
    api.close_line_item()
        .ext_project_id("p-1")
        .ext_line_item_id("li-2")
        .send()
        .await
        .unwrap();
    assert_eq!(
        refusal(api.get_invoice_pdf().ext_project_id("p-1").send().await).0,
        409
    );
    let closed = api
        .close_project()
        .ext_project_id("p-1")
        .send()
        .await
        .unwrap()
        .into_inner()
        .data;
    assert_eq!(text(&closed.state), "CLOSED");
    let invoice = pdf(api
        .get_invoice_pdf()
        .ext_project_id("p-1")
        .send()
        .await
        .unwrap())
    .await;
    assert!(invoice.starts_with(b"%PDF-"));
    let summary = pdf(api.get_invoices_summary_pdf().send().await.unwrap()).await;
    assert!(String::from_utf8_lossy(&summary).contains("Project p-1"));

    // Templates.
    let criteria: types::TemplateCriteria = body(json!({
        "name": "Split", "description": "Half and half", "countryISOCode": "GB", "languageISOCode": "en",
        "quotaPlan": {"quotaGroups": [{"quotaCells": [
            {"quotaNodes": [{"attributeId": "11", "options": ["1"]}], "perc": 50},
            {"quotaNodes": [{"attributeId": "11", "options": ["2"]}], "perc": 50},
        ]}]},
    }));
    let template = api
        .create_template()
        .body(criteria.clone())
        .send()
        .await
        .unwrap()
        .into_inner()
        .data;
    let id = template.id.to_string();
    api.update_template()
        .template_id(&id)
        .body(criteria)
        .send()
        .await
        .unwrap();
    let listed = api
        .list_templates()
        .country_code("GB")
        .language_code("en")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.into_inner().data.len(), 1);
    api.delete_template().template_id(&id).send().await.unwrap();
    assert_eq!(
        refusal(api.delete_template().template_id(&id).send().await).0,
        404
    );

    // Without a token, the gateway's 401 still decodes as the error type.
    let anonymous = Client::new_with_client(&base, http, Bearer::none());
    assert_eq!(refusal(anonymous.get_user_info().send().await).0, 401);
}
