//! Every answer of the Demand API, success and error, checked against
//! `openapi/dynata-sample.yaml`: a walk through every operation of the spec
//! validates each body against the schema the spec gives for its status,
//! and fails if an operation was not exercised both ways.
//!
//! The validator is the part of JSON Schema that OpenAPI 3.0 documents use
//! here (`type`, `properties`, `required`, `items`, `enum`, `nullable`,
//! `additionalProperties`, `$ref`), written out below rather than pulled in
//! as a dependency: it is small, and its rules are OpenAPI 3.0's (`nullable`,
//! which JSON Schema validators do not know).

use std::collections::BTreeSet;
use std::time::Duration;

use dynata_sandbox::Sandbox;
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

/// The spec, as JSON.
struct Spec(Value);

impl Spec {
    fn load() -> Spec {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../openapi/dynata-sample.yaml"
        );
        let text = std::fs::read_to_string(path).expect("the Demand API spec is in the repository");
        Spec(serde_norway::from_str(&text).expect("the spec is YAML"))
    }

    /// `(path template, method, operation)` of every operation.
    fn operations(&self) -> Vec<(String, String, &Value)> {
        let mut operations = Vec::new();
        for (path, item) in self.0["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                if operation.get("operationId").is_some() {
                    operations.push((path.clone(), method.to_uppercase(), operation));
                }
            }
        }
        operations
    }

    fn operation(&self, id: &str) -> &Value {
        self.operations()
            .into_iter()
            .find(|(_, _, operation)| operation["operationId"] == id)
            .map(|(_, _, operation)| operation)
            .unwrap_or_else(|| panic!("no operation {id} in the spec"))
    }

    /// Follows `$ref`s to components.
    fn resolve<'a>(&'a self, mut node: &'a Value) -> &'a Value {
        while let Some(reference) = node.get("$ref").and_then(Value::as_str) {
            let pointer = reference.trim_start_matches('#');
            node = self
                .0
                .pointer(pointer)
                .unwrap_or_else(|| panic!("dangling $ref {reference}"));
        }
        node
    }

    /// The response the spec gives for `status`: the exact code, else its
    /// class (`2XX`, `4XX`, `5XX`).
    fn response<'a>(&'a self, operation: &'a Value, status: StatusCode) -> Option<&'a Value> {
        let responses = &operation["responses"];
        let class = format!("{}XX", status.as_u16() / 100);
        responses
            .get(status.as_str())
            .or_else(|| responses.get(&class))
            .map(|response| self.resolve(response))
    }

    /// Every way `value` breaks `schema`, as `path: problem`.
    fn validate(&self, schema: &Value, value: &Value, path: &str, errors: &mut Vec<String>) {
        let schema = self.resolve(schema);
        if value.is_null() {
            if schema.get("type").is_some() && schema["nullable"] != true {
                errors.push(format!("{path}: null, but the schema is not nullable"));
            }
            return;
        }
        if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
            && !allowed.contains(value)
        {
            errors.push(format!("{path}: {value} is not one of {allowed:?}"));
        }
        let fits = match schema.get("type").and_then(Value::as_str) {
            None => true,
            Some("object") => value.is_object(),
            Some("array") => value.is_array(),
            Some("string") => value.is_string(),
            Some("integer") => value.is_i64() || value.is_u64(),
            Some("number") => value.is_number(),
            Some("boolean") => value.is_boolean(),
            Some(other) => panic!("{path}: unknown type {other} in the spec"),
        };
        if !fits {
            errors.push(format!("{path}: {value} is not of type {}", schema["type"]));
            return;
        }
        if let Some(object) = value.as_object() {
            let properties = schema.get("properties").and_then(Value::as_object);
            for required in schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let name = required.as_str().unwrap();
                if !object.contains_key(name) {
                    errors.push(format!("{path}: the required {name} is missing"));
                }
            }
            for (name, field) in object {
                let field_path = format!("{path}.{name}");
                match properties.and_then(|properties| properties.get(name)) {
                    Some(field_schema) => self.validate(field_schema, field, &field_path, errors),
                    None => match schema.get("additionalProperties") {
                        Some(Value::Bool(false)) => {
                            errors.push(format!("{field_path}: not allowed by the schema"))
                        }
                        Some(extra @ Value::Object(_)) => {
                            self.validate(extra, field, &field_path, errors)
                        }
                        _ => {}
                    },
                }
            }
        }
        if let (Some(items), Some(schema)) = (value.as_array(), schema.get("items")) {
            for (index, item) in items.iter().enumerate() {
                self.validate(schema, item, &format!("{path}[{index}]"), errors);
            }
        }
    }
}

/// Sends requests as a signed-in user and checks each answer against the
/// spec, remembering which operations answered success and which error.
struct Checker {
    spec: Spec,
    http: Client,
    base: String,
    token: String,
    seen: BTreeSet<(String, bool)>,
}

impl Checker {
    /// Calls the operation `id` at `path` and checks the answer against the
    /// spec; returns its status and JSON (`Null` for a PDF).
    async fn call(
        &mut self,
        id: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        self.check(id, request).await
    }

    /// Sends `request` for the operation `id` and checks the answer against
    /// the spec; returns its status and JSON (`Null` for a PDF).
    async fn check(&mut self, id: &str, request: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let response = request.send().await.unwrap();
        let status = response.status();
        let media_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        let bytes = response.bytes().await.unwrap();
        let operation = self.spec.operation(id);
        let answer = self
            .spec
            .response(operation, status)
            .unwrap_or_else(|| panic!("{id}: the spec has no response for {status}"));
        let content = answer["content"]
            .get(&media_type)
            .unwrap_or_else(|| panic!("{id} {status}: the spec has no {media_type} answer"));
        self.seen.insert((id.to_owned(), status.is_success()));
        if media_type == "application/pdf" {
            assert!(bytes.starts_with(b"%PDF-"), "{id}: not a PDF");
            return (status, Value::Null);
        }
        let json: Value = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            panic!(
                "{id} {status}: not JSON: {}",
                String::from_utf8_lossy(&bytes)
            )
        });
        let mut errors = Vec::new();
        self.spec
            .validate(&content["schema"], &json, "body", &mut errors);
        assert!(
            errors.is_empty(),
            "{id} {status} breaks the spec:\n{}\n{json:#}",
            errors.join("\n")
        );
        (status, json)
    }

    async fn ok(&mut self, id: &str, method: Method, path: &str, body: Option<Value>) -> Value {
        let (status, json) = self.call(id, method, path, body).await;
        assert!(status.is_success(), "{id}: {status} {json}");
        json
    }

    /// `POST path` with a `multipart/form-data` body of the parts `(name,
    /// content)`, which must succeed.
    async fn ok_form(&mut self, id: &str, path: &str, parts: &[(&str, &str)]) -> Value {
        const BOUNDARY: &str = "conformance-boundary";
        let mut body = String::new();
        for (name, content) in parts {
            body.push_str(&format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{content}\r\n"
            ));
        }
        body.push_str(&format!("--{BOUNDARY}--\r\n"));
        let request = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .header(
                "content-type",
                format!("multipart/form-data; boundary={BOUNDARY}"),
            )
            .body(body);
        let (status, json) = self.check(id, request).await;
        assert!(status.is_success(), "{id}: {status} {json}");
        json
    }

    async fn fails(&mut self, id: &str, method: Method, path: &str, body: Option<Value>) {
        let (status, json) = self.call(id, method, path, body).await;
        assert!(status.is_client_error(), "{id}: {status} {json}");
    }
}

fn project(id: &str) -> Value {
    json!({
        "extProjectId": id,
        "title": "Conformance",
        "jobNumber": "J-1",
        "notificationEmails": ["research@example.com"],
        "category": {"surveyTopic": ["AUTOMOTIVE"], "studyType": ["ADHOC"]},
        "exclusions": {"type": "PROJECT", "list": ["old-1"]},
        "lineItems": [{
            "extLineItemId": "li-1",
            "title": "US adults",
            "countryISOCode": "US",
            "languageISOCode": "en",
            "indicativeIncidence": 20,
            "lengthOfInterview": 12,
            "daysInField": 10,
            "targets": [{"type": "COMPLETE", "count": 50}],
            "quotaPlan": {"quotaGroups": [{"quotaCells": [
                {"quotaNodes": [{"attributeId": "11", "options": ["1"]}], "count": 25},
                {"quotaNodes": [{"attributeId": "11", "options": ["2"]}], "count": 25},
            ]}]},
        }],
    })
}

#[tokio::test(start_paused = true)]
async fn every_operation_answers_as_the_spec_says() {
    use Method as M;
    let sandbox = Sandbox::builder()
        .user("alice", "pw")
        .user("bob", "pw")
        .account("acme", ["alice", "bob"])
        .feasibility_delay(Duration::from_secs(2))
        .start()
        .await
        .unwrap();
    // reqwest's rustls has no crypto provider of its own (see dynata-sample-api).
    dynata_sample_api::ensure_crypto_provider();
    let http = Client::builder()
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
    let mut api = Checker {
        spec: Spec::load(),
        http,
        base: format!("{}/sample/v1", sandbox.base_url()),
        token: pair["accessToken"].as_str().unwrap().to_owned(),
        seen: BTreeSet::new(),
    };

    // Account and reference data.
    api.ok("get_user_info", M::GET, "/users/info", None).await;
    api.ok("get_user", M::GET, "/user", None).await;
    for (id, path) in [
        ("list_company_users", "/users"),
        ("list_teams", "/teams"),
        ("list_roles", "/roles"),
        ("list_countries", "/countries"),
        ("list_attributes", "/attributes/US/en"),
        ("list_survey_topics", "/categories/surveyTopics"),
        ("list_sources", "/sources"),
        ("list_projects", "/projects"),
        ("list_events", "/events"),
        ("list_templates", "/templates/quotaPlan/US/en"),
    ] {
        api.ok(id, M::GET, path, None).await;
        api.fails(id, M::GET, &format!("{path}?limit=0"), None)
            .await;
    }
    api.ok("get_study_metadata", M::GET, "/studyMetadata", None)
        .await;
    api.fails("list_attributes", M::GET, "/attributes/XX/en", None)
        .await;

    // A project through its life.
    api.fails(
        "create_project",
        M::POST,
        "/projects",
        Some(json!({"extProjectId": 7})),
    )
    .await;
    api.ok("create_project", M::POST, "/projects", Some(project("p-1")))
        .await;
    api.ok("get_project", M::GET, "/projects/p-1", None).await;
    api.fails("get_project", M::GET, "/projects/nope", None)
        .await;
    api.ok(
        "update_project",
        M::POST,
        "/projects/p-1",
        Some(json!({"title": "Renamed"})),
    )
    .await;
    api.fails(
        "update_project",
        M::POST,
        "/projects/p-1",
        Some(json!({"devices": ["toaster"]})),
    )
    .await;
    let processing = api
        .ok("get_feasibility", M::GET, "/projects/p-1/feasibility", None)
        .await;
    assert_eq!(processing["data"][0]["feasibility"]["status"], "PROCESSING");
    api.fails(
        "get_feasibility",
        M::GET,
        "/projects/nope/feasibility",
        None,
    )
    .await;
    let buy = json!([{"extLineItemId": "li-1", "surveyURL": "https://s.example/1", "surveyTestURL": "https://s.example/t"}]);
    api.fails(
        "buy_project",
        M::POST,
        "/projects/p-1/buy",
        Some(buy.clone()),
    )
    .await;
    tokio::time::advance(Duration::from_secs(2)).await;
    let ready = api
        .ok("get_feasibility", M::GET, "/projects/p-1/feasibility", None)
        .await;
    assert_eq!(ready["data"][0]["feasibility"]["status"], "READY");
    api.ok("buy_project", M::POST, "/projects/p-1/buy", Some(buy))
        .await;

    let item = "/projects/p-1/lineItems/li-1";
    api.ok("list_line_items", M::GET, "/projects/p-1/lineItems", None)
        .await;
    api.fails("list_line_items", M::GET, "/projects/nope/lineItems", None)
        .await;
    let mut second = project("x")["lineItems"][0].clone();
    second["extLineItemId"] = json!("li-2");
    api.ok(
        "create_line_item",
        M::POST,
        "/projects/p-1/lineItems",
        Some(second.clone()),
    )
    .await;
    api.fails(
        "create_line_item",
        M::POST,
        "/projects/p-1/lineItems",
        Some(second),
    )
    .await;
    api.ok("get_line_item", M::GET, item, None).await;
    api.fails(
        "get_line_item",
        M::GET,
        "/projects/p-1/lineItems/nope",
        None,
    )
    .await;
    api.fails("pause_line_item", M::POST, &format!("{item}/pause"), None)
        .await;
    api.ok("launch_line_item", M::POST, &format!("{item}/launch"), None)
        .await;
    api.fails("launch_line_item", M::POST, &format!("{item}/launch"), None)
        .await;
    tokio::time::advance(Duration::from_secs(20)).await;
    api.ok("pause_line_item", M::POST, &format!("{item}/pause"), None)
        .await;
    api.ok(
        "set_quota_cell_status",
        M::POST,
        &format!("{item}/quotaCells/1/pause"),
        None,
    )
    .await;
    api.fails(
        "set_quota_cell_status",
        M::POST,
        &format!("{item}/quotaCells/99/pause"),
        None,
    )
    .await;
    api.ok(
        "update_line_item",
        M::POST,
        item,
        Some(json!({"lengthOfInterview": 15})),
    )
    .await;
    api.fails(
        "update_line_item",
        M::POST,
        item,
        Some(json!({"lengthOfInterview": "long"})),
    )
    .await;

    // The reprice that update raised, and its answers.
    let events = api.ok("list_events", M::GET, "/events", None).await;
    let event_id = events["data"][0]["eventId"].as_i64().unwrap();
    api.ok("get_event", M::GET, &format!("/events/{event_id}"), None)
        .await;
    api.fails("get_event", M::GET, "/events/1", None).await;
    api.ok(
        "accept_event",
        M::POST,
        &format!("/events/{event_id}/accept"),
        None,
    )
    .await;
    api.fails(
        "accept_event",
        M::POST,
        &format!("/events/{event_id}/accept"),
        None,
    )
    .await;
    api.ok(
        "update_line_item",
        M::POST,
        item,
        Some(json!({"indicativeIncidence": 10})),
    )
    .await;
    let events = api
        .ok(
            "list_events",
            M::GET,
            "/events?eventType=LineItem:RepriceTriggered&sort=eventId:desc",
            None,
        )
        .await;
    let event_id = events["data"][0]["eventId"].as_i64().unwrap();
    api.ok(
        "reject_event",
        M::POST,
        &format!("/events/{event_id}/reject"),
        None,
    )
    .await;
    api.fails(
        "reject_event",
        M::POST,
        &format!("/events/{event_id}/reject"),
        None,
    )
    .await;

    // Reports, permissions, end links.
    for (id, path) in [
        ("get_project_report", "/projects/p-1/report".to_owned()),
        (
            "get_project_detailed_report",
            "/projects/p-1/detailedReport".to_owned(),
        ),
        (
            "get_line_item_detailed_report",
            format!("{item}/detailedReport"),
        ),
        (
            "list_project_reports",
            "/projects/report?extProjectId=p-1".to_owned(),
        ),
        (
            "get_project_permissions",
            "/projects/p-1/permissions".to_owned(),
        ),
        (
            "get_survey_end_links",
            "/projects/p-1/surveys/s-1/links".to_owned(),
        ),
    ] {
        api.ok(id, M::GET, &path, None).await;
    }
    api.fails("get_project_report", M::GET, "/projects/nope/report", None)
        .await;
    api.fails(
        "get_project_detailed_report",
        M::GET,
        "/projects/nope/detailedReport",
        None,
    )
    .await;
    api.fails(
        "get_line_item_detailed_report",
        M::GET,
        "/projects/p-1/lineItems/nope/detailedReport",
        None,
    )
    .await;
    api.fails("list_project_reports", M::GET, "/projects/report", None)
        .await;
    api.fails(
        "get_project_permissions",
        M::GET,
        "/projects/nope/permissions",
        None,
    )
    .await;
    api.fails(
        "get_survey_end_links",
        M::GET,
        "/projects/nope/surveys/s-1/links",
        None,
    )
    .await;
    let grant = json!({"users": [{"id": 2, "role": "VIEWER"}], "teams": [{"id": 1}]});
    api.ok(
        "upsert_project_permissions",
        M::POST,
        "/projects/p-1/permissions",
        Some(grant),
    )
    .await;
    let bad_grant = json!({"users": [{"id": 99, "role": "VIEWER"}]});
    api.fails(
        "upsert_project_permissions",
        M::POST,
        "/projects/p-1/permissions",
        Some(bad_grant),
    )
    .await;

    // Closing, invoices, reconciliation.
    api.fails("get_invoice_pdf", M::GET, "/projects/p-1/invoices", None)
        .await;
    api.fails(
        "reconcile_project",
        M::POST,
        "/projects/p-1/reconcile",
        Some(json!({})),
    )
    .await;
    api.ok("close_project", M::POST, "/projects/p-1/close", None)
        .await;
    api.fails("close_project", M::POST, "/projects/p-1/close", None)
        .await;
    api.fails("close_line_item", M::POST, &format!("{item}/close"), None)
        .await;
    api.ok("get_invoice_pdf", M::GET, "/projects/p-1/invoices", None)
        .await;
    api.ok(
        "get_invoices_summary_pdf",
        M::GET,
        "/projects/invoices/summary",
        None,
    )
    .await;
    api.fails(
        "get_invoices_summary_pdf",
        M::GET,
        "/projects/invoices/summary?limit=0",
        None,
    )
    .await;
    api.ok_form(
        "reconcile_project",
        "/projects/p-1/reconcile",
        &[("file", "PK"), ("message", "")],
    )
    .await;
    api.ok("create_project", M::POST, "/projects", Some(project("p-2")))
        .await;
    api.ok(
        "close_line_item",
        M::POST,
        "/projects/p-2/lineItems/li-1/close",
        None,
    )
    .await;

    // Templates.
    let template = json!({
        "name": "Split", "description": "Half and half", "countryISOCode": "US", "languageISOCode": "en",
        "tags": ["basic"],
        "quotaPlan": {"quotaGroups": [{"quotaCells": [
            {"quotaNodes": [{"attributeId": "11", "options": ["1"]}], "perc": 50},
            {"quotaNodes": [{"attributeId": "11", "options": ["2"]}], "perc": 50},
        ]}]},
    });
    let created = api
        .ok(
            "create_template",
            M::POST,
            "/templates/quotaPlan",
            Some(template.clone()),
        )
        .await;
    api.fails(
        "create_template",
        M::POST,
        "/templates/quotaPlan",
        Some(json!({"name": 1})),
    )
    .await;
    let id = created["data"]["id"].as_i64().unwrap();
    api.ok(
        "update_template",
        M::POST,
        &format!("/templates/quotaPlan/{id}"),
        Some(template.clone()),
    )
    .await;
    api.fails(
        "update_template",
        M::POST,
        "/templates/quotaPlan/999",
        Some(template),
    )
    .await;
    api.ok(
        "list_templates",
        M::GET,
        "/templates/quotaPlan/US/en?tags=basic",
        None,
    )
    .await;
    api.ok(
        "delete_template",
        M::DELETE,
        &format!("/templates/quotaPlan/{id}"),
        None,
    )
    .await;
    api.fails(
        "delete_template",
        M::DELETE,
        &format!("/templates/quotaPlan/{id}"),
        None,
    )
    .await;

    // Without a live token, the gateway's 401, which the error schema reads.
    let token = std::mem::replace(&mut api.token, "sbx-at-made-up".to_owned());
    for (id, path) in [
        ("get_user_info", "/users/info"),
        ("get_user", "/user"),
        ("get_study_metadata", "/studyMetadata"),
    ] {
        api.fails(id, M::GET, path, None).await;
    }
    api.token = token;

    // Every operation answered both ways.
    let mut missing = Vec::new();
    for (_, _, operation) in api.spec.operations() {
        let id = operation["operationId"].as_str().unwrap();
        if !api.seen.contains(&(id.to_owned(), true)) {
            missing.push(format!("{id} (success)"));
        }
        if !api.seen.contains(&(id.to_owned(), false)) {
            missing.push(format!("{id} (error)"));
        }
    }
    assert!(missing.is_empty(), "not exercised: {missing:?}");
}

/// The validator finds what it must: a test of the test, so that a walk
/// that passes means something.
#[test]
fn the_validator_rejects_bodies_that_break_the_spec() {
    let spec = Spec::load();
    let schema = |name: &str| json!({"$ref": format!("#/components/schemas/{name}")});
    let problems = |name: &str, value: Value| {
        let mut errors = Vec::new();
        spec.validate(&schema(name), &value, "body", &mut errors);
        errors
    };
    assert_eq!(
        problems(
            "ProjectHeader",
            json!({"extProjectId": "p", "title": "t", "state": "LAUNCHED"})
        ),
        Vec::<String>::new()
    );
    assert_eq!(
        problems("ProjectHeader", json!({"extProjectId": "p", "title": "t"})).len(),
        1
    );
    assert_eq!(
        problems(
            "ProjectHeader",
            json!({"extProjectId": 1, "title": "t", "state": "X"})
        )
        .len(),
        1
    );
    assert_eq!(
        problems(
            "LineItem",
            json!({"extLineItemId": "l", "state": "S", "daysInField": 1.5})
        )
        .len(),
        1
    );
    assert_eq!(
        problems(
            "LineItem",
            json!({"extLineItemId": "l", "state": "S", "targets": [{"count": "9"}]})
        )
        .len(),
        1
    );
    assert!(
        problems(
            "Feasibility",
            json!({"status": "PROCESSING", "totalCount": null})
        )
        .is_empty()
    );
    assert_eq!(problems("Feasibility", json!({"status": null})).len(), 1);
    assert_eq!(
        problems("Event", json!({"eventId": "1", "eventType": "x"})).len(),
        1
    );
    assert_eq!(problems("QuotaCellAction", json!("explode")).len(), 1);
    assert_eq!(
        problems("ProjectListResponse", json!({"data": {}})).len(),
        1
    );
}
