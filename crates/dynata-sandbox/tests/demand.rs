//! The Demand API (`/sample/v1`) as a client sees it, over loopback: a
//! project's whole lifecycle, validation, accounts, lists, the state
//! machine, events, templates, permissions, invoices and faults. Tests
//! where time matters pause tokio's clock and move it by hand.

use std::time::Duration;

use dynata_sandbox::{Fault, Operation, Sandbox};
use reqwest::header::HOST;
use reqwest::{Client, Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};

// ---- helpers ---------------------------------------------------------------

/// No proxy, and no idle-pool timer: with paused time, a pending timer would
/// make tokio jump the clock while the test waits on a socket.
fn client() -> Client {
    // reqwest's rustls has no crypto provider of its own (see dynata-sample-api).
    dynata_sample_api::ensure_crypto_provider();
    Client::builder()
        .no_proxy()
        .pool_idle_timeout(None)
        .build()
        .unwrap()
}

/// A signed-in user of a sandbox.
struct Api {
    base: String,
    token: String,
    http: Client,
}

/// What the sandbox answered: status, content type, JSON (or `Null`) and
/// the raw bytes.
struct Answer {
    status: StatusCode,
    content_type: String,
    json: Value,
    bytes: Vec<u8>,
    request_id: Option<String>,
}

impl Answer {
    fn data(&self) -> &Value {
        &self.json["data"]
    }

    /// The `resource.id` of every error, which names the bad fields.
    fn error_resources(&self) -> Vec<String> {
        self.json["status"]["errors"]
            .as_array()
            .unwrap_or_else(|| panic!("no errors in {}", self.json))
            .iter()
            .map(|error| error["resource"]["id"].as_str().unwrap().to_owned())
            .collect()
    }

    fn error_codes(&self) -> Vec<String> {
        self.json["status"]["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|error| error["code"].as_str().unwrap().to_owned())
            .collect()
    }

    #[track_caller]
    fn expect(&self, status: StatusCode) -> &Self {
        assert_eq!(self.status, status, "{}", self.json);
        if status.is_success() && self.content_type == "application/json" {
            assert_eq!(
                self.json["status"],
                json!({"message": "success", "errors": []})
            );
        } else if self.content_type == "application/json" {
            assert_eq!(self.json["status"]["message"], "fail", "{}", self.json);
            assert!(self.json["data"].is_null());
        }
        self
    }
}

impl Api {
    async fn login(sandbox: &Sandbox, username: &str) -> Api {
        let http = client();
        let pair: Value = http
            .post(format!("{}/auth/v1/token/password", sandbox.base_url()))
            .json(&json!({"clientId": "api", "username": username, "password": "pw"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        Api {
            base: format!("{}/sample/v1", sandbox.base_url()),
            token: pair["accessToken"].as_str().expect("logged in").to_owned(),
            http,
        }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        let request = self.http.request(method, format!("{}{path}", self.base));
        self.send(request, body).await
    }

    /// Sends `request` with the token (and `body` as JSON, if any).
    async fn send(&self, request: RequestBuilder, body: Option<Value>) -> Answer {
        let mut request = request.bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let request_id = response
            .headers()
            .get("x-request-id")
            .map(|v| v.to_str().unwrap().to_owned());
        let bytes = response.bytes().await.unwrap().to_vec();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Answer {
            status,
            content_type,
            json,
            bytes,
            request_id,
        }
    }

    async fn get(&self, path: &str) -> Answer {
        self.call(Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> Answer {
        self.call(Method::POST, path, Some(body)).await
    }

    async fn action(&self, path: &str) -> Answer {
        self.call(Method::POST, path, None).await
    }
}

async fn sandbox(delay: Duration) -> Sandbox {
    Sandbox::builder()
        .user("alice", "pw")
        .user("bob", "pw")
        .user("carol", "pw")
        .account("acme", ["alice", "bob"])
        .feasibility_delay(delay)
        .start()
        .await
        .unwrap()
}

fn line_item(id: &str) -> Value {
    json!({
        "extLineItemId": id,
        "title": "US adults",
        "countryISOCode": "US",
        "languageISOCode": "en",
        "indicativeIncidence": 20,
        "lengthOfInterview": 12,
        "daysInField": 10,
        "targets": [{"type": "COMPLETE", "count": 100}],
        "quotaPlan": {
            "filters": [{"attributeId": "12", "options": ["18-65"]}],
            "quotaGroups": [{
                "name": "Gender",
                "quotaCells": [
                    {"quotaNodes": [{"attributeId": "11", "options": ["1"]}], "perc": 50},
                    {"quotaNodes": [{"attributeId": "11", "options": ["2"]}], "perc": 50},
                ],
            }],
        },
    })
}

fn project(id: &str) -> Value {
    json!({
        "extProjectId": id,
        "title": format!("Project {id}"),
        "notificationEmails": ["research@example.com"],
        "category": {"surveyTopic": ["AUTOMOTIVE"]},
        "lineItems": [line_item("li-1")],
    })
}

fn buy_body(id: &str) -> Value {
    json!([{"extLineItemId": id, "surveyURL": "https://s.example/1?rid=<#rid>", "surveyTestURL": "https://s.example/t"}])
}

/// Creates `id`, waits out feasibility, buys and launches `li-1`.
async fn launched(api: &Api, id: &str) {
    api.post("/projects", project(id))
        .await
        .expect(StatusCode::CREATED);
    tokio::time::advance(Duration::from_secs(3)).await;
    api.post(&format!("/projects/{id}/buy"), buy_body("li-1"))
        .await
        .expect(StatusCode::OK);
    api.action(&format!("/projects/{id}/lineItems/li-1/launch"))
        .await
        .expect(StatusCode::OK);
}

// ---- the lifecycle -------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_project_goes_from_creation_to_invoice() {
    let sandbox = sandbox(Duration::from_secs(5)).await;
    let api = Api::login(&sandbox, "alice").await;

    let created = api.post("/projects", project("p-1")).await;
    created.expect(StatusCode::CREATED);
    let data = created.data();
    assert_eq!(data["state"], "PROVISIONED");
    assert_eq!(data["lineItems"][0]["state"], "PROVISIONED");
    assert_eq!(data["devices"], json!(["mobile", "desktop", "tablet"]));
    // Moments that have not happened are `""`, as Dynata sends them: code
    // rehearsed here must meet them (they were left out).
    assert_eq!(
        (&data["launchedAt"], &data["closedAt"]),
        (&json!(""), &json!(""))
    );
    assert_eq!(data["lineItems"][0]["launchedAt"], "");
    let cells = &data["lineItems"][0]["quotaPlan"]["quotaGroups"][0]["quotaCells"];
    assert_eq!(
        (
            cells[0]["quotaCellId"].as_str(),
            cells[1]["quotaCellId"].as_str()
        ),
        (Some("1"), Some("2"))
    );

    // Feasibility takes the configured delay; buying waits for it.
    let feasibility = api.get("/projects/p-1/feasibility").await;
    assert_eq!(feasibility.data()[0]["feasibility"]["status"], "PROCESSING");
    assert!(feasibility.data()[0]["feasibility"]["costPerInterview"].is_null());
    assert_eq!(feasibility.data()[0]["feasibility"]["expiry"], "");
    let early = api.post("/projects/p-1/buy", buy_body("li-1")).await;
    early.expect(StatusCode::CONFLICT);
    assert_eq!(early.error_codes(), ["INVALID_STATE"]);

    tokio::time::advance(Duration::from_secs(5)).await;
    let feasibility = api.get("/projects/p-1/feasibility").await;
    let ready = &feasibility.data()[0];
    assert_eq!(ready["feasibility"]["status"], "READY");
    // US: 1.50 + 0.05 × 12 LOI = 2.10 base; 30 ÷ 20 % incidence = 1.50.
    assert_eq!(ready["feasibility"]["costPerInterview"], 3.6);
    assert_eq!(ready["feasibility"]["totalCount"], 57_142);
    assert_eq!(ready["feasibility"]["feasible"], true);
    assert_eq!(ready["quote"]["estimatedCost"], 360.0);
    assert_eq!(
        ready["feasibility"]["valueCounts"][0]["quotaCells"][0]["feasibilityCount"],
        28_571
    );

    let bought = api.post("/projects/p-1/buy", buy_body("li-1")).await;
    bought.expect(StatusCode::OK);
    assert_eq!(
        bought.data(),
        &json!([{"extLineItemId": "li-1", "state": "AWAITING_APPROVAL"}])
    );

    let launched = api.action("/projects/p-1/lineItems/li-1/launch").await;
    launched.expect(StatusCode::OK);
    assert_eq!(launched.data()["state"], "LAUNCHED");
    assert_eq!(
        launched.data()["surveyURL"],
        "https://s.example/1?rid=<#rid>"
    );
    assert_eq!(api.get("/projects/p-1").await.data()["state"], "LAUNCHED");

    // Five attempts a second; 20 % qualify; 80 % of those complete.
    tokio::time::advance(Duration::from_secs(10)).await;
    let report = api.get("/projects/p-1/report").await;
    let report = report.data();
    assert_eq!(
        [
            &report["attempts"],
            &report["completes"],
            &report["screenouts"],
            &report["overquotas"],
            &report["incompletes"]
        ],
        [50, 8, 40, 1, 1]
    );
    assert_eq!(report["remainingCompletes"], 92);
    assert_eq!(report["incurredCost"], 28.8);

    // Paused, nothing moves; launched again, it goes on.
    api.action("/projects/p-1/lineItems/li-1/pause")
        .await
        .expect(StatusCode::OK);
    assert_eq!(api.get("/projects/p-1").await.data()["state"], "PAUSED");
    tokio::time::advance(Duration::from_secs(60)).await;
    assert_eq!(api.get("/projects/p-1/report").await.data()["attempts"], 50);
    api.action("/projects/p-1/lineItems/li-1/launch")
        .await
        .expect(StatusCode::OK);
    tokio::time::advance(Duration::from_secs(10)).await;
    let detailed = api.get("/projects/p-1/lineItems/li-1/detailedReport").await;
    assert_eq!(detailed.data()["stats"]["attempts"], 100);
    assert_eq!(
        detailed.data()["quotaGroups"][0]["quotaCells"][1]["stats"]["attempts"],
        50
    );

    // A longer interview is a reprice: the line item pauses until answered.
    let updated = api
        .post(
            "/projects/p-1/lineItems/li-1",
            json!({"lengthOfInterview": 20}),
        )
        .await;
    updated.expect(StatusCode::OK);
    assert_eq!(updated.data()["state"], "PAUSED");
    let events = api.get("/events?eventType=LineItem:RepriceTriggered").await;
    let event = &events.data()[0];
    assert_eq!(event["resource"]["reason"], "LOI_CHANGE");
    assert_eq!(
        event["resource"]["costPerInterview"],
        json!({"previousValue": 3.6, "newValue": 4.0})
    );
    let accept_url = event["actions"]["acceptURL"].as_str().unwrap().to_owned();
    assert!(accept_url.starts_with(&api.base), "{accept_url}");
    let accepted = api.action(&accept_url[api.base.len()..]).await;
    accepted.expect(StatusCode::OK);
    assert_eq!(accepted.data()["eventType"], "LineItem:RepriceAccepted");
    assert_eq!(accepted.data()["parentEventId"], event["eventId"]);
    let item = api.get("/projects/p-1/lineItems/li-1").await;
    assert_eq!(item.data()["state"], "LAUNCHED");
    assert_eq!(item.data()["lengthOfInterview"], 20);

    // No invoice before closing; after, a PDF, and the project is invoiced.
    let refused = api.get("/projects/p-1/invoices").await;
    refused.expect(StatusCode::CONFLICT);
    let closed = api.action("/projects/p-1/close").await;
    closed.expect(StatusCode::OK);
    assert_eq!(closed.data()["state"], "CLOSED");
    assert_eq!(closed.data()["lineItems"][0]["state"], "CLOSED");
    let invoice = api.get("/projects/p-1/invoices").await;
    assert_eq!(invoice.status, StatusCode::OK);
    assert_eq!(invoice.content_type, "application/pdf");
    assert!(invoice.bytes.starts_with(b"%PDF-1.4\n") && invoice.bytes.ends_with(b"%%EOF\n"));
    assert!(invoice.request_id.is_some());
    assert_eq!(api.get("/projects/p-1").await.data()["state"], "INVOICED");
    let summary = api.get("/projects/invoices/summary").await;
    assert_eq!(summary.content_type, "application/pdf");
    assert!(String::from_utf8_lossy(&summary.bytes).contains("Project p-1"));
}

#[tokio::test(start_paused = true)]
async fn a_line_item_completes_when_its_target_is_met() {
    let sandbox = sandbox(Duration::ZERO).await;
    let api = Api::login(&sandbox, "alice").await;
    launched(&api, "p-1").await;
    // 100 completes at 0.16 per attempt: 625 attempts, 125 s in field.
    tokio::time::advance(Duration::from_secs(1000)).await;
    let item = api.get("/projects/p-1/lineItems/li-1/detailedReport").await;
    assert_eq!(item.data()["state"], "COMPLETED");
    assert_eq!(item.data()["stats"]["completes"], 100);
    assert_eq!(item.data()["stats"]["attempts"], 625);
    assert_eq!(api.get("/projects/p-1").await.data()["state"], "COMPLETED");
    let refused = api.action("/projects/p-1/lineItems/li-1/pause").await;
    refused.expect(StatusCode::CONFLICT);
    api.action("/projects/p-1/close")
        .await
        .expect(StatusCode::OK);
    assert_eq!(
        api.get("/projects/p-1/lineItems/li-1").await.data()["state"],
        "COMPLETED"
    );
}

// ---- validation ----------------------------------------------------------------

#[tokio::test]
async fn a_bad_project_is_refused_naming_each_bad_field() {
    let sandbox = sandbox(Duration::ZERO).await;
    let api = Api::login(&sandbox, "alice").await;
    let mut bad_item = line_item("li-1");
    bad_item["countryISOCode"] = json!("USA");
    bad_item["indicativeIncidence"] = json!(0);
    bad_item.as_object_mut().unwrap().remove("targets");
    // Valid but for an option gender does not have, and a reused id.
    let mut second = line_item("li-1");
    second["quotaPlan"]["quotaGroups"][0]["quotaCells"][0]["quotaNodes"][0]["options"] =
        json!(["9"]);
    // Dynata's Swagger document requires a target's type, a URL
    // parameter's values and an exclusion's type and list.
    second["targets"] = json!([{"count": 100}]);
    second["surveyURLParams"] = json!([{"key": "rid"}]);
    let answer = api
        .post(
            "/projects",
            json!({
                "extProjectId": "p-1",
                "notificationEmails": ["not-an-email"],
                "category": {"surveyTopic": ["NOPE"]},
                "devices": ["toaster"],
                "lineItems": [bad_item, second],
                "exclusions": {"list": ["p-0"]},
            }),
        )
        .await;
    answer.expect(StatusCode::BAD_REQUEST);
    let mut resources = answer.error_resources();
    resources.sort();
    assert_eq!(
        resources,
        [
            "category.surveyTopic[0]",
            "devices[0]",
            "exclusions.type",
            "lineItems[0].countryISOCode",
            "lineItems[0].indicativeIncidence",
            "lineItems[0].targets",
            "lineItems[1].extLineItemId",
            "lineItems[1].quotaPlan.quotaGroups[0].quotaCells[0].quotaNodes[0].attributeId",
            "lineItems[1].surveyURLParams[0].values",
            "lineItems[1].targets[0].type",
            "notificationEmails[0]",
            "title",
        ]
    );
    assert!(answer.error_codes().contains(&"MISSING_FIELD".to_owned()));
    // Nothing was created.
    assert_eq!(api.get("/projects").await.json["meta"]["total"], 0);

    let not_json = api.call(Method::POST, "/projects", None).await;
    not_json.expect(StatusCode::BAD_REQUEST);
    let garbage = api
        .http
        .post(format!("{}/projects", api.base))
        .bearer_auth(&api.token)
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), StatusCode::BAD_REQUEST);
    let body: Value = garbage.json().await.unwrap();
    assert_eq!(body["status"]["errors"][0]["code"], "INVALID_BODY");
}

#[tokio::test]
async fn a_duplicate_ext_project_id_is_refused() {
    let sandbox = sandbox(Duration::ZERO).await;
    let api = Api::login(&sandbox, "alice").await;
    api.post("/projects", project("p-1"))
        .await
        .expect(StatusCode::CREATED);
    let again = api.post("/projects", project("p-1")).await;
    again.expect(StatusCode::CONFLICT);
    assert_eq!(again.error_codes(), ["DUPLICATE_EXT_PROJECT_ID"]);
    let item = api.post("/projects/p-1/lineItems", line_item("li-1")).await;
    item.expect(StatusCode::CONFLICT);
    assert_eq!(item.error_codes(), ["DUPLICATE_EXT_LINE_ITEM_ID"]);
}

#[tokio::test]
async fn partial_updates_leave_other_fields_alone() {
    let sandbox = sandbox(Duration::ZERO).await;
    let api = Api::login(&sandbox, "alice").await;
    let before = api.post("/projects", project("p-1")).await.data().clone();
    let after = api
        .post("/projects/p-1", json!({"jobNumber": "J-7", "lineItems": [{"extLineItemId": "li-1", "title": "Renamed"}]}))
        .await;
    after.expect(StatusCode::OK);
    let after = after.data();
    assert_eq!(after["jobNumber"], "J-7");
    assert_eq!(after["title"], before["title"]);
    assert_eq!(after["category"], before["category"]);
    assert_eq!(after["lineItems"][0]["title"], "Renamed");
    for field in [
        "quotaPlan",
        "targets",
        "lengthOfInterview",
        "countryISOCode",
    ] {
        assert_eq!(
            after["lineItems"][0][field], before["lineItems"][0][field],
            "{field}"
        );
    }
    let unknown = api
        .post(
            "/projects/p-1",
            json!({"lineItems": [{"extLineItemId": "nope", "title": "x"}]}),
        )
        .await;
    unknown.expect(StatusCode::BAD_REQUEST);
    assert_eq!(unknown.error_resources(), ["lineItems[0].extLineItemId"]);
}

// ---- the state machine --------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn illegal_transitions_are_refused_in_the_envelope() {
    let sandbox = sandbox(Duration::ZERO).await;
    let api = Api::login(&sandbox, "alice").await;
    api.post("/projects", project("p-1"))
        .await
        .expect(StatusCode::CREATED);
    let item = "/projects/p-1/lineItems/li-1";
    for refused in ["launch", "pause"] {
        let answer = api.action(&format!("{item}/{refused}")).await;
        answer.expect(StatusCode::CONFLICT);
        assert_eq!(answer.error_codes(), ["INVALID_STATE"], "{refused}");
        assert_eq!(answer.error_resources(), ["li-1"]);
    }
    api.post("/projects/p-1/buy", buy_body("li-1"))
        .await
        .expect(StatusCode::OK);
    let twice = api.post("/projects/p-1/buy", buy_body("li-1")).await;
    twice.expect(StatusCode::CONFLICT);
    api.action(&format!("{item}/pause"))
        .await
        .expect(StatusCode::CONFLICT);
    api.action(&format!("{item}/launch"))
        .await
        .expect(StatusCode::OK);
    api.action(&format!("{item}/launch"))
        .await
        .expect(StatusCode::CONFLICT);

    api.action("/projects/p-1/close")
        .await
        .expect(StatusCode::OK);
    for (method, path, body) in [
        (Method::POST, "/projects/p-1/close".to_owned(), None),
        (Method::POST, format!("{item}/launch"), None),
        (
            Method::POST,
            "/projects/p-1".to_owned(),
            Some(json!({"title": "late"})),
        ),
        (
            Method::POST,
            "/projects/p-1/lineItems".to_owned(),
            Some(line_item("li-2")),
        ),
        (
            Method::POST,
            "/projects/p-1/buy".to_owned(),
            Some(buy_body("li-1")),
        ),
    ] {
        let answer = api.call(method, &path, body).await;
        answer.expect(StatusCode::CONFLICT);
        assert_eq!(answer.error_codes(), ["INVALID_STATE"], "{path}");
    }
    let unknown = api.action("/projects/nope/close").await;
    unknown.expect(StatusCode::NOT_FOUND);
}

// ---- accounts ----------------------------------------------------------------

#[tokio::test]
async fn another_accounts_project_answers_as_an_unknown_id() {
    let sandbox = sandbox(Duration::ZERO).await;
    let (alice, bob, carol) = (
        Api::login(&sandbox, "alice").await,
        Api::login(&sandbox, "bob").await,
        Api::login(&sandbox, "carol").await,
    );
    alice
        .post("/projects", project("p-1"))
        .await
        .expect(StatusCode::CREATED);

    // Bob shares alice's account; carol does not.
    bob.get("/projects/p-1").await.expect(StatusCode::OK);
    let hidden = carol.get("/projects/p-1").await;
    let unknown = carol.get("/projects/p-2").await;
    hidden.expect(StatusCode::NOT_FOUND);
    unknown.expect(StatusCode::NOT_FOUND);
    assert_eq!(hidden.error_codes(), unknown.error_codes());
    assert_eq!(
        hidden.json["status"]["errors"][0]["message"],
        unknown.json["status"]["errors"][0]["message"]
    );
    for path in [
        "/projects/p-1/lineItems",
        "/projects/p-1/feasibility",
        "/projects/p-1/report",
    ] {
        carol.get(path).await.expect(StatusCode::NOT_FOUND);
    }
    carol
        .action("/projects/p-1/close")
        .await
        .expect(StatusCode::NOT_FOUND);
    assert_eq!(carol.get("/projects").await.json["meta"]["total"], 0);
    // Ids are per account: carol may use the same one.
    carol
        .post("/projects", project("p-1"))
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(alice.get("/projects").await.json["meta"]["total"], 1);
    // The users list shows the account's own users.
    let users = bob.get("/users").await;
    let names: Vec<&str> = users
        .data()
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["userName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alice", "bob"]);
}

#[tokio::test]
async fn demand_calls_need_a_live_token() {
    let sandbox = sandbox(Duration::ZERO).await;
    for token in [None, Some("sbx-at-made-up")] {
        let mut request = client().get(format!("{}/sample/v1/projects", sandbox.base_url()));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(response.headers().contains_key("x-request-id"));
        assert_eq!(
            response.json::<Value>().await.unwrap(),
            json!({"message": "Unauthorized"})
        );
    }
    assert_eq!(sandbox.count(Operation::ListProjects), 2);
}

// ---- lists -------------------------------------------------------------------

#[tokio::test]
async fn lists_page_sort_and_filter_with_the_contracts_meta() {
    let sandbox = sandbox(Duration::ZERO).await;
    let api = Api::login(&sandbox, "alice").await;
    for n in 0..12 {
        let mut body = project(&format!("p-{n:02}"));
        body["jobNumber"] = json!(if n % 3 == 0 { "J-A" } else { "J-B" });
        api.post("/projects", body)
            .await
            .expect(StatusCode::CREATED);
    }
    let page = api
        .get("/projects?limit=5&offset=5&sort=extProjectId:asc")
        .await;
    page.expect(StatusCode::OK);
    let ids: Vec<&str> = page
        .data()
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["extProjectId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["p-05", "p-06", "p-07", "p-08", "p-09"]);
    let url = format!("{}/projects", api.base);
    assert_eq!(
        page.json["meta"],
        json!({
            "links": {
                "first": format!("{url}?offset=0"),
                "last": format!("{url}?offset=7"),
                "next": format!("{url}?offset=10"),
                "prev": format!("{url}?offset=0"),
                "self": url,
            },
            "pageSize": 5,
            "total": 12,
        })
    );
    // Newest first by default; ten to a page; no `next` on the last page.
    let first = api.get("/projects").await;
    assert_eq!(first.data()[0]["extProjectId"], "p-11");
    assert_eq!(first.json["meta"]["pageSize"], 10);
    let last = api.get("/projects?offset=10").await;
    assert_eq!(last.data().as_array().unwrap().len(), 2);
    assert!(last.json["meta"]["links"].get("next").is_none());

    let filtered = api
        .get("/projects?jobNumber=J-A&sort=extProjectId:desc")
        .await;
    let ids: Vec<&str> = filtered
        .data()
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["extProjectId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["p-09", "p-06", "p-03", "p-00"]);
    assert_eq!(filtered.json["meta"]["total"], 4);
    assert_eq!(
        api.get("/projects?state=LAUNCHED").await.json["meta"]["total"],
        0
    );
    let today = &api.get("/projects/p-00").await.data()["createdAt"]
        .as_str()
        .unwrap()[..10]
        .to_owned();
    assert_eq!(
        api.get(&format!("/projects?createdAt={today},")).await.json["meta"]["total"],
        12
    );
    assert_eq!(
        api.get("/projects?createdAt=,2000/01/01").await.json["meta"]["total"],
        0
    );

    for bad in [
        "limit=0",
        "limit=abc",
        "offset=-1",
        "sort=nope:asc",
        "sort=title:sideways",
    ] {
        let answer = api.get(&format!("/projects?{bad}")).await;
        answer.expect(StatusCode::BAD_REQUEST);
        assert_eq!(answer.error_codes(), ["INVALID_PARAMETER"], "{bad}");
    }
}

/// Every absolute URL of a list answer's `meta.links`.
fn links(answer: &Answer) -> Vec<String> {
    answer.expect(StatusCode::OK);
    let links = answer.json["meta"]["links"].as_object().unwrap();
    assert!(links.contains_key("next"), "{}", answer.json);
    links
        .values()
        .map(|link| link.as_str().unwrap().to_owned())
        .collect()
}

/// Every `actions` URL of the events listed.
fn action_urls(events: &Answer) -> Vec<String> {
    events.expect(StatusCode::OK);
    let urls: Vec<String> = events
        .data()
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|event| event["actions"].as_object())
        .flat_map(|actions| actions.values())
        .map(|url| url.as_str().unwrap().to_owned())
        .collect();
    assert!(!urls.is_empty(), "{}", events.json);
    urls
}

/// Dynata answers with links on the host the client called: a client of
/// `http://localhost:PORT` (which the SDK takes as loopback, and sends its
/// token to only) must get links on it, not on the bind address
/// `127.0.0.1`. A `Host` that is not the sandbox on loopback is never
/// reflected: those get the bind address.
#[tokio::test(start_paused = true)]
async fn absolute_urls_are_on_the_loopback_host_the_client_called() {
    let sandbox = sandbox(Duration::ZERO).await;
    let port = sandbox.addr().port();
    let api = Api::login(&sandbox, "alice").await;
    // A second project, and a reprice event with actions on the first.
    launched(&api, "p-1").await;
    api.post("/projects", project("p-2"))
        .await
        .expect(StatusCode::CREATED);
    api.post(
        "/projects/p-1/lineItems/li-1",
        json!({"indicativeIncidence": 10}),
    )
    .await
    .expect(StatusCode::OK);

    let with_host = |path: &str, host: String| {
        let request = api
            .http
            .get(format!("{}{path}", api.base))
            .header(HOST, host);
        api.send(request, None)
    };
    let cases = [
        (
            format!("localhost:{port}"),
            format!("http://localhost:{port}/"),
        ),
        (
            format!("LOCALHOST:{port}"),
            format!("http://localhost:{port}/"),
        ),
        (format!("[::1]:{port}"), format!("http://[::1]:{port}/")),
        (
            "evil.example:80".to_owned(),
            format!("{}/", sandbox.base_url()),
        ),
        (
            format!("evil.example:{port}"),
            format!("{}/", sandbox.base_url()),
        ),
        // Loopback, but another port: maybe another service, not ours.
        ("localhost:1".to_owned(), format!("{}/", sandbox.base_url())),
    ];
    for (host, origin) in cases {
        let answers = [
            links(&with_host("/projects?limit=1", host.clone()).await),
            links(&with_host("/users?limit=1", host.clone()).await),
            action_urls(&with_host("/events", host.clone()).await),
        ];
        for url in answers.iter().flatten() {
            assert!(url.starts_with(&origin), "Host {host}: {url}");
        }
    }

    // And a client of http://localhost:PORT follows `next` as it is given.
    dynata_sample_api::ensure_crypto_provider();
    let local = Api {
        base: format!("http://localhost:{port}/sample/v1"),
        token: api.token.clone(),
        http: Client::builder()
            .no_proxy()
            .pool_idle_timeout(None)
            .resolve("localhost", sandbox.addr())
            .build()
            .unwrap(),
    };
    let first = local.get("/projects?limit=1").await;
    assert_eq!(first.data()[0]["extProjectId"], "p-2");
    let next = first.json["meta"]["links"]["next"].as_str().unwrap();
    assert_eq!(next, format!("{}/projects?offset=1", local.base));
    let second = local.send(local.http.get(next), None).await;
    second.expect(StatusCode::OK);
    assert_eq!(second.data()[0]["extProjectId"], "p-1");
}

// ---- the catalogue -----------------------------------------------------------

#[tokio::test]
async fn the_catalogue_has_countries_attributes_and_metadata() {
    let sandbox = sandbox(Duration::ZERO).await;
    let api = Api::login(&sandbox, "alice").await;
    let countries = api.get("/countries?limit=100").await;
    let countries = countries.data().as_array().unwrap().clone();
    assert!(countries.len() >= 5);
    assert!(
        countries
            .iter()
            .all(|c| !c["supportedLanguages"].as_array().unwrap().is_empty())
    );

    let attributes = api.get("/attributes/US/en").await;
    let attributes = attributes.data().as_array().unwrap().clone();
    let list = attributes.iter().find(|a| a["type"] == "LIST").unwrap();
    assert!(!list["options"].as_array().unwrap().is_empty());
    assert!(list["category"]["mainCategory"]["id"].is_string());
    let range = attributes
        .iter()
        .find(|a| a["type"] == "INTEGER_RANGE")
        .unwrap();
    assert!(range["format"].is_string());
    let german = api.get("/attributes/DE/de?type=LIST&id=11").await;
    assert_eq!(german.data()[0]["options"][1]["localizedText"], "Weiblich");
    api.get("/attributes/DE/en")
        .await
        .expect(StatusCode::NOT_FOUND);

    for path in [
        "/categories/surveyTopics",
        "/sources",
        "/roles",
        "/teams",
        "/users",
    ] {
        let answer = api.get(path).await;
        answer.expect(StatusCode::OK);
        assert!(!answer.data().as_array().unwrap().is_empty(), "{path}");
        assert!(answer.json["meta"]["total"].as_u64().unwrap() > 0, "{path}");
    }
    let metadata = api.get("/studyMetadata").await;
    assert!(
        !metadata.data()["deliveryTypes"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let me = api.get("/user").await;
    assert_eq!(me.data()["userName"], "alice");
    assert_eq!(me.data()["companies"][0]["name"], "acme");
}

// ---- quota cells, reprices, templates, permissions ------------------------------

#[tokio::test(start_paused = true)]
async fn quota_cells_launch_and_pause() {
    let sandbox = sandbox(Duration::ZERO).await;
    let api = Api::login(&sandbox, "alice").await;
    launched(&api, "p-1").await;
    let cell = "/projects/p-1/lineItems/li-1/quotaCells/2";
    let paused = api.action(&format!("{cell}/pause")).await;
    paused.expect(StatusCode::OK);
    assert_eq!(paused.data()["status"], "PAUSED");
    assert_eq!(paused.data()["quotaCellId"], "2");
    let item = api.get("/projects/p-1/lineItems/li-1").await;
    assert_eq!(
        item.data()["quotaPlan"]["quotaGroups"][0]["quotaCells"][1]["status"],
        "PAUSED"
    );
    assert_eq!(
        api.action(&format!("{cell}/launch")).await.data()["status"],
        "LAUNCHED"
    );
    api.action(&format!("{cell}/explode"))
        .await
        .expect(StatusCode::BAD_REQUEST);
    api.action("/projects/p-1/lineItems/li-1/quotaCells/99/pause")
        .await
        .expect(StatusCode::NOT_FOUND);
}

#[tokio::test(start_paused = true)]
async fn a_rejected_reprice_puts_the_old_values_back() {
    let sandbox = sandbox(Duration::ZERO).await;
    let api = Api::login(&sandbox, "alice").await;
    launched(&api, "p-1").await;
    api.post(
        "/projects/p-1/lineItems/li-1",
        json!({"indicativeIncidence": 10}),
    )
    .await
    .expect(StatusCode::OK);
    // While it waits for an answer, the line item neither launches nor changes.
    api.action("/projects/p-1/lineItems/li-1/launch")
        .await
        .expect(StatusCode::CONFLICT);
    api.post(
        "/projects/p-1/lineItems/li-1",
        json!({"indicativeIncidence": 5}),
    )
    .await
    .expect(StatusCode::CONFLICT);
    let event = api.get("/events").await.data()[0].clone();
    assert_eq!(event["resource"]["reason"], "IR_CHANGE");
    assert_eq!(event["resource"]["costPerInterview"]["newValue"], 5.1);
    let id = event["eventId"].as_i64().unwrap();
    let rejected = api.action(&format!("/events/{id}/reject")).await;
    rejected.expect(StatusCode::OK);
    assert_eq!(rejected.data()["eventType"], "LineItem:RepriceRejected");
    let item = api.get("/projects/p-1/lineItems/li-1").await;
    assert_eq!(item.data()["indicativeIncidence"], 20.0);
    assert_eq!(item.data()["state"], "LAUNCHED");
    // Answered once only; the triggered event has no actions any more.
    api.action(&format!("/events/{id}/accept"))
        .await
        .expect(StatusCode::CONFLICT);
    assert!(
        api.get(&format!("/events/{id}"))
            .await
            .data()
            .get("actions")
            .is_none()
    );
    api.get("/events/424242")
        .await
        .expect(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn templates_are_created_listed_updated_and_deleted() {
    let sandbox = sandbox(Duration::ZERO).await;
    let (api, carol) = (
        Api::login(&sandbox, "alice").await,
        Api::login(&sandbox, "carol").await,
    );
    let plan = json!({"quotaGroups": [{"quotaCells": [
        {"quotaNodes": [{"attributeId": "11", "options": ["1"]}], "perc": 50},
        {"quotaNodes": [{"attributeId": "11", "options": ["2"]}], "perc": 50},
    ]}]});
    let body = json!({"name": "Gender split", "description": "50/50", "countryISOCode": "GB",
                      "languageISOCode": "en", "quotaPlan": plan, "tags": ["basic"]});
    let created = api.post("/templates/quotaPlan", body.clone()).await;
    created.expect(StatusCode::CREATED);
    let id = created.data()["id"].as_i64().unwrap();
    assert_eq!(
        api.get("/templates/quotaPlan/GB/en?tags=basic").await.json["meta"]["total"],
        1
    );
    assert_eq!(
        api.get("/templates/quotaPlan/US/en").await.json["meta"]["total"],
        0
    );
    assert_eq!(
        carol.get("/templates/quotaPlan/GB/en").await.json["meta"]["total"],
        0
    );

    let mut renamed = body.clone();
    renamed["name"] = json!("Renamed");
    let updated = api
        .post(&format!("/templates/quotaPlan/{id}"), renamed)
        .await;
    updated.expect(StatusCode::OK);
    assert_eq!(updated.data()["name"], "Renamed");
    carol
        .post(&format!("/templates/quotaPlan/{id}"), body.clone())
        .await
        .expect(StatusCode::NOT_FOUND);

    let mut counted = body.clone();
    counted["quotaPlan"]["quotaGroups"][0]["quotaCells"][0] =
        json!({"quotaNodes": [{"attributeId": "11", "options": ["1"]}], "count": 5});
    let refused = api.post("/templates/quotaPlan", counted).await;
    refused.expect(StatusCode::BAD_REQUEST);
    assert!(
        refused
            .error_resources()
            .iter()
            .any(|r| r.ends_with("quotaCells[0].count"))
    );

    api.call(Method::DELETE, &format!("/templates/quotaPlan/{id}"), None)
        .await
        .expect(StatusCode::OK);
    api.call(Method::DELETE, &format!("/templates/quotaPlan/{id}"), None)
        .await
        .expect(StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn permissions_are_granted_to_the_accounts_users_and_teams() {
    let sandbox = sandbox(Duration::ZERO).await;
    let api = Api::login(&sandbox, "alice").await;
    api.post("/projects", project("p-1"))
        .await
        .expect(StatusCode::CREATED);
    let before = api.get("/projects/p-1/permissions").await;
    assert_eq!(
        before.data()["users"],
        json!([{"id": 1, "username": "alice", "role": "PROJECT_MANAGER"}])
    );
    let granted = api
        .post(
            "/projects/p-1/permissions",
            json!({"users": [{"id": 2, "role": "VIEWER"}], "teams": [{"id": 1}]}),
        )
        .await;
    granted.expect(StatusCode::OK);
    assert_eq!(
        granted.data()["users"][1],
        json!({"id": 2, "username": "bob", "role": "VIEWER"})
    );
    assert_eq!(
        granted.data()["teams"],
        json!([{"id": 1, "name": "Research"}])
    );
    // Carol (id 3) is in another account; 9 is no team; ADMIN is no role.
    let refused = api
        .post(
            "/projects/p-1/permissions",
            json!({"users": [{"id": 3, "role": "ADMIN"}], "teams": [{"id": 9}]}),
        )
        .await;
    refused.expect(StatusCode::BAD_REQUEST);
    assert_eq!(
        refused.error_resources(),
        ["users[0].id", "users[0].role", "teams[0].id"]
    );
}

// ---- faults and counters -----------------------------------------------------------

#[tokio::test]
async fn faults_and_counters_apply_to_the_demand_api() {
    let sandbox = sandbox(Duration::ZERO).await;
    let api = Api::login(&sandbox, "alice").await;
    sandbox.inject(Operation::CreateProject, Fault::Status(503), 1);
    let faulted = api.post("/projects", project("p-1")).await;
    assert_eq!(faulted.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(faulted.request_id.is_some());
    // The faulted request was not acted on.
    assert_eq!(api.get("/projects").await.json["meta"]["total"], 0);
    api.post("/projects", project("p-1"))
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(sandbox.count(Operation::CreateProject), 2);

    let admin = client()
        .post(format!("{}/__sandbox/faults", sandbox.base_url()))
        .json(&json!({"operation": "getProject", "fault": "malformedBody"}))
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), StatusCode::OK);
    let truncated = api.get("/projects/p-1").await;
    assert_eq!(truncated.status, StatusCode::OK);
    assert!(
        truncated.json.is_null(),
        "not JSON: {:?}",
        String::from_utf8_lossy(&truncated.bytes)
    );
    let counts: Value = client()
        .get(format!("{}/__sandbox/counts", sandbox.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(counts["createProject"], 2);
    assert_eq!(counts["getProject"], 1);
    assert_eq!(counts["listProjects"], 1);
}

#[tokio::test]
async fn a_feasibility_delay_too_long_for_the_clock_stays_processing() {
    let sandbox = sandbox(Duration::MAX).await;
    let api = Api::login(&sandbox, "alice").await;
    api.post("/projects", project("p-1"))
        .await
        .expect(StatusCode::CREATED);
    let feasibility = api.get("/projects/p-1/feasibility").await;
    assert_eq!(feasibility.data()[0]["feasibility"]["status"], "PROCESSING");
}

#[tokio::test]
async fn users_info_names_the_company_and_narrows_applications() {
    let sandbox = sandbox(Duration::ZERO).await;
    let api = Api::login(&sandbox, "bob").await;
    let me = api.get("/users/info").await;
    me.expect(StatusCode::OK);
    let me = me.data();
    assert_eq!(
        (&me["username"], &me["userName"]),
        (&json!("bob"), &json!("bob"))
    );
    assert_eq!(me["companyName"], "acme");
    assert_eq!(me["applications"][0]["current"], true);
    let none = api.get("/users/info?appId=2").await;
    assert_eq!(none.data()["applications"], json!([]));
    let one = api.get("/users/info?appId=1&current=true").await;
    assert_eq!(one.data()["applications"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn quota_plans_target_only_what_the_catalogue_allows() {
    let sandbox = sandbox(Duration::ZERO).await;
    let api = Api::login(&sandbox, "alice").await;
    let mut body = project("p-1");
    let plan = &mut body["lineItems"][0]["quotaPlan"];
    // 17 is DEPRECATED; 16 (postal code) may filter but not make quotas.
    plan["filters"] = json!([{"attributeId": "17", "options": ["1"]}, {"attributeId": "16", "options": ["10001"]}]);
    plan["quotaGroups"][0]["quotaCells"][0]["quotaNodes"] =
        json!([{"attributeId": "16", "options": ["10001"]}]);
    // One cell by share, the other by count: a group takes one or the other.
    plan["quotaGroups"][0]["quotaCells"][1] =
        json!({"quotaNodes": [{"attributeId": "11", "options": ["2"]}], "count": 10});
    let refused = api.post("/projects", body).await;
    refused.expect(StatusCode::BAD_REQUEST);
    let messages: Vec<String> = refused.json["status"]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|error| error["message"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(messages.len(), 3, "{messages:?}");
    assert!(messages[0].contains("DEPRECATED"), "{messages:?}");
    assert!(
        messages[1].contains("cannot be used in quotas"),
        "{messages:?}"
    );
    assert!(
        messages[2].contains("every cell of a group uses count"),
        "{messages:?}"
    );
}

#[tokio::test]
async fn ids_that_need_escaping_make_working_links() {
    let sandbox = sandbox(Duration::ZERO).await;
    let api = Api::login(&sandbox, "alice").await;
    api.post("/projects", project("wave 1/ü"))
        .await
        .expect(StatusCode::CREATED);
    let items = api.get("/projects/wave%201%2F%C3%BC/lineItems").await;
    items.expect(StatusCode::OK);
    let link = items.json["meta"]["links"]["self"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        link.ends_with("/projects/wave%201%2F%C3%BC/lineItems"),
        "{link}"
    );
    let again = api.get(&link[api.base.len()..]).await;
    assert_eq!(again.data()[0]["extLineItemId"], "li-1");
}

// ---- review ------------------------------------------------------------------

/// The contract (§3.4, `fieldSchedule`): "either this or daysInField must be
/// set". `null` is not set, yet `check_body` only asks `contains_key`.
#[tokio::test]
async fn a_line_item_with_null_days_in_field_and_field_schedule_is_refused() {
    let sandbox = sandbox(Duration::ZERO).await;
    let api = Api::login(&sandbox, "alice").await;
    let mut body = project("p-null");
    body["lineItems"][0]["daysInField"] = Value::Null;
    body["lineItems"][0]["fieldSchedule"] = Value::Null;
    let answer = api.post("/projects", body).await;
    answer.expect(StatusCode::BAD_REQUEST);
    assert!(
        answer
            .error_resources()
            .contains(&"lineItems[0].daysInField".to_owned()),
        "{}",
        answer.json
    );
}

/// README: "Every `/sample/v1` response, faults included, carries a unique
/// `x-request-id` header"; the contract: "Responses of `/sample/v1` carry an
/// `x-request-id` header worth surfacing in errors".
#[tokio::test]
async fn unknown_sample_paths_and_methods_still_carry_a_request_id() {
    let sandbox = sandbox(Duration::ZERO).await;
    let api = Api::login(&sandbox, "alice").await;
    let not_found = api.get("/projects/p-1/nope").await;
    assert_eq!(not_found.status, StatusCode::NOT_FOUND);
    assert!(not_found.request_id.is_some(), "404 without x-request-id");
    let wrong_method = api.call(Method::PUT, "/projects", None).await;
    assert_eq!(wrong_method.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(
        wrong_method.request_id.is_some(),
        "405 without x-request-id"
    );
}

/// `Fault::MalformedBody`: "Answer `200` with the operation's success media
/// type and a truncated JSON body". The invoice's success media type is
/// `application/pdf` (contract §3.8, spec).
#[tokio::test]
async fn a_malformed_body_fault_on_an_invoice_keeps_the_pdf_media_type() {
    let sandbox = sandbox(Duration::ZERO).await;
    let api = Api::login(&sandbox, "alice").await;
    api.post("/projects", project("p-1"))
        .await
        .expect(StatusCode::CREATED);
    api.action("/projects/p-1/close")
        .await
        .expect(StatusCode::OK);
    sandbox.inject(Operation::GetInvoicePdf, Fault::MalformedBody, 1);
    let truncated = api.get("/projects/p-1/invoices").await;
    assert_eq!(truncated.status, StatusCode::OK);
    assert_eq!(truncated.content_type, "application/pdf");
}

/// A `2xx` whose body was cut short is an answer Dynata sent: it carried
/// the request out, and only its answer was lost on the way (the SDK's
/// `Error::Decode` with a `2xx` status says exactly that, "look it up
/// before sending it again"). `Fault::MalformedBody` on a creation must
/// rehearse that: the project exists afterwards, and the truncated answer
/// has the creation's own status, `201`, not a `200` no creation answers.
#[tokio::test]
async fn a_malformed_body_fault_on_a_creation_is_a_lost_answer_to_a_done_request() {
    let sandbox = sandbox(Duration::ZERO).await;
    let api = Api::login(&sandbox, "alice").await;
    sandbox.inject(Operation::CreateProject, Fault::MalformedBody, 1);
    let truncated = api.post("/projects", project("p-1")).await;
    assert_eq!(truncated.status, StatusCode::CREATED);
    assert_eq!(truncated.content_type, "application/json");
    assert!(
        serde_json::from_slice::<Value>(&truncated.bytes).is_err(),
        "not cut short: {}",
        String::from_utf8_lossy(&truncated.bytes)
    );
    // It was carried out: looked up, the project is there, and creating
    // it again is the duplicate it is.
    api.get("/projects/p-1").await.expect(StatusCode::OK);
    let again = api.post("/projects", project("p-1")).await;
    again.expect(StatusCode::CONFLICT);
    assert_eq!(again.error_codes(), ["DUPLICATE_EXT_PROJECT_ID"]);
}

/// `AnswerLost` on a creation: the project is made, and the client sees
/// only a connection error, so it must look the project up before sending
/// the creation again (a `DUPLICATE_EXT_PROJECT_ID` otherwise).
#[tokio::test]
async fn an_answer_lost_creation_made_its_project() {
    let sandbox = sandbox(Duration::ZERO).await;
    let api = Api::login(&sandbox, "alice").await;
    sandbox.inject(Operation::CreateProject, Fault::AnswerLost, 1);
    let lost = api
        .http
        .post(format!("{}/projects", api.base))
        .bearer_auth(&api.token)
        .json(&project("p-1"))
        .send()
        .await;
    assert!(lost.is_err(), "an answer arrived: {lost:?}");
    api.get("/projects/p-1").await.expect(StatusCode::OK);
}

/// The truncated answer is the operation's own, cut short: a list's
/// truncated body is the start of the list's envelope, not `users/info`'s.
#[tokio::test]
async fn a_malformed_body_fault_cuts_the_operations_own_answer_short() {
    let sandbox = sandbox(Duration::ZERO).await;
    let api = Api::login(&sandbox, "alice").await;
    api.post("/projects", project("p-1"))
        .await
        .expect(StatusCode::CREATED);
    let whole = api.get("/projects").await;
    whole.expect(StatusCode::OK);
    sandbox.inject(Operation::ListProjects, Fault::MalformedBody, 1);
    let truncated = api.get("/projects").await;
    assert_eq!(truncated.status, StatusCode::OK);
    assert!(serde_json::from_slice::<Value>(&truncated.bytes).is_err());
    assert!(!truncated.bytes.is_empty() && truncated.bytes.len() < whole.bytes.len());
    assert!(
        whole.bytes.starts_with(&truncated.bytes),
        "{}",
        String::from_utf8_lossy(&truncated.bytes)
    );
}

/// README: "Actions without a body accept none, `{}` or `null`", and
/// `400 INVALID_BODY` is for a body that is "not JSON, or not the JSON type
/// the operation takes". The actions never read their body at all.
#[tokio::test]
async fn an_action_refuses_a_body_that_is_not_json() {
    let sandbox = sandbox(Duration::ZERO).await;
    let api = Api::login(&sandbox, "alice").await;
    api.post("/projects", project("p-1"))
        .await
        .expect(StatusCode::CREATED);
    api.post("/projects/p-1/buy", buy_body("li-1"))
        .await
        .expect(StatusCode::OK);
    let response = api
        .http
        .post(format!("{}/projects/p-1/lineItems/li-1/launch", api.base))
        .bearer_auth(&api.token)
        .header("content-type", "application/json")
        .body("launch please")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let state = api.get("/projects/p-1/lineItems/li-1").await;
    assert_eq!(state.data()["state"], "AWAITING_APPROVAL");
}
