//! The typed shortcuts: projects, line items, feasibility and invoices.
//!
//! Written over `Client::send` with the generated Demand API types
//! (`dynata_sample_api::types`) decoding each envelope's `data`; the SDK's
//! typed layer was not merged when this was written, and these can move onto
//! it without changing the command line.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use dynata_sample_api::types::{FeasibilityItem, LineItemHeader, ProjectHeader};
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::api::{self, Target, segment};
use crate::cli::{FeasibilityCommand, Format, LineItemsCommand, ProjectsCommand};
use crate::failure::Failure;
use crate::output;
use crate::session::SessionClient;

fn project_path(project: &str) -> String {
    format!("/sample/v1/projects/{}", segment(project))
}

fn decode<T: DeserializeOwned>(what: &str, value: Value) -> Result<T, Failure> {
    serde_json::from_value(value)
        .map_err(|e| Failure::refused(format!("Dynata's {what} could not be decoded: {e}")))
}

/// Sends a request and returns the envelope's `data`, or the refusal.
async fn data(
    session: &SessionClient,
    method: Method,
    path: &str,
    body: Option<Vec<u8>>,
) -> Result<Value, Failure> {
    let target = Target::parse(path)?;
    let answer = api::call(
        session,
        method,
        &target,
        body.map(|b| (b, "application/json")),
    )
    .await?;
    if !answer.ok() {
        return Err(answer.refusal());
    }
    answer
        .json()
        .and_then(|mut v| v.get_mut("data").map(Value::take))
        .ok_or_else(|| {
            Failure::refused(format!("the answer to {path} is not a Demand API envelope"))
        })
}

fn text(value: Option<impl ToString>) -> String {
    value.map(|v| v.to_string()).unwrap_or_default()
}

/// `dynata projects ...`.
pub(crate) async fn projects(
    session: &SessionClient,
    command: ProjectsCommand,
) -> Result<(), Failure> {
    match command {
        ProjectsCommand::List { state, output } => {
            let mut target = Target::parse("/sample/v1/projects")?;
            if let Some(state) = state {
                target.query.push(("state".into(), state));
            }
            let items = api::all_pages(session, &target).await?;
            if output.output == Format::Json {
                return output::print_json(&Value::Array(items));
            }
            let mut rows = Vec::new();
            for item in items {
                let project: ProjectHeader = decode("project", item)?;
                rows.push(vec![
                    project.ext_project_id,
                    project.state.to_string(),
                    project.title,
                    text(project.created_at),
                ]);
            }
            output::write_stdout(
                output::table(&["ID", "STATE", "TITLE", "CREATED"], &rows).as_bytes(),
            )
        }
        ProjectsCommand::Get { project } => {
            let project = data(session, Method::GET, &project_path(&project), None).await?;
            output::print_json(&project)
        }
        ProjectsCommand::Create { file, output } => {
            let body = api::read_json(&file)?;
            let created = data(session, Method::POST, "/sample/v1/projects", Some(body)).await?;
            if output.output == Format::Json {
                return output::print_json(&created);
            }
            let project: ProjectHeader = decode("project", created)?;
            output::write_stdout(
                output::table(
                    &["ID", "STATE", "TITLE"],
                    &[vec![
                        project.ext_project_id,
                        project.state.to_string(),
                        project.title,
                    ]],
                )
                .as_bytes(),
            )
        }
        ProjectsCommand::Close { project } => {
            let path = format!("{}/close", project_path(&project));
            let closed = data(session, Method::POST, &path, None).await?;
            let state = closed
                .get("state")
                .and_then(Value::as_str)
                .unwrap_or("CLOSED");
            eprintln!("Project {project} is {state}.");
            Ok(())
        }
    }
}

/// `dynata lineitems ...`.
pub(crate) async fn line_items(
    session: &SessionClient,
    command: LineItemsCommand,
) -> Result<(), Failure> {
    let (project, line_item, action) = match command {
        LineItemsCommand::List { project, output } => {
            let target = Target::parse(&format!("{}/lineItems", project_path(&project)))?;
            let items = api::all_pages(session, &target).await?;
            if output.output == Format::Json {
                return output::print_json(&Value::Array(items));
            }
            let mut rows = Vec::new();
            for item in items {
                let item: LineItemHeader = decode("line item", item)?;
                rows.push(vec![
                    item.ext_line_item_id,
                    item.state.to_string(),
                    text(item.title),
                    format!(
                        "{}-{}",
                        text(item.country_iso_code),
                        text(item.language_iso_code)
                    ),
                ]);
            }
            return output::write_stdout(
                output::table(&["ID", "STATE", "TITLE", "LOCALE"], &rows).as_bytes(),
            );
        }
        LineItemsCommand::Launch { project, line_item } => (project, line_item, "launch"),
        LineItemsCommand::Pause { project, line_item } => (project, line_item, "pause"),
    };
    let path = format!(
        "{}/lineItems/{}/{action}",
        project_path(&project),
        segment(&line_item)
    );
    let answer = data(session, Method::POST, &path, None).await?;
    let state = answer
        .get("state")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{action}ed"));
    eprintln!("Line item {line_item} of {project}: {state}.");
    Ok(())
}

/// One line of progress: `2/3 ready: li-1 READY, li-2 READY, li-3 PROCESSING`.
fn progress(items: &[FeasibilityItem]) -> String {
    let ready = items
        .iter()
        .filter(|i| i.feasibility.status.as_str() != "PROCESSING")
        .count();
    let each: Vec<String> = items
        .iter()
        .map(|i| format!("{} {}", i.ext_line_item_id, i.feasibility.status))
        .collect();
    format!("{ready}/{} ready: {}", items.len(), each.join(", "))
}

fn seconds(value: f64, flag: &str) -> Result<Duration, Failure> {
    Duration::try_from_secs_f64(value)
        .map_err(|_| Failure::usage(format!("{flag} takes a number of seconds, 0 or more")))
}

/// `dynata feasibility wait`.
pub(crate) async fn feasibility(
    session: &SessionClient,
    command: FeasibilityCommand,
) -> Result<(), Failure> {
    let FeasibilityCommand::Wait {
        project,
        interval,
        timeout,
        output,
    } = command;
    let interval = seconds(interval, "--interval")?.max(Duration::from_millis(100));
    let deadline = tokio::time::Instant::now() + seconds(timeout, "--timeout")?;
    let path = format!("{}/feasibility", project_path(&project));
    let terminal = std::io::stderr().is_terminal();
    let mut last = String::new();
    loop {
        let raw = data(session, Method::GET, &path, None).await?;
        let items: Vec<FeasibilityItem> = decode("feasibility", raw.clone())?;
        let line = progress(&items);
        if line != last {
            // On a terminal the line is rewritten in place; in a log, each
            // change is a line of its own.
            if terminal {
                eprint!("\r\x1b[2K{line}");
            } else {
                eprintln!("{line}");
            }
            let _ = std::io::stderr().flush();
            last = line;
        }
        let done = items
            .iter()
            .all(|i| i.feasibility.status.as_str() != "PROCESSING");
        if done {
            if terminal {
                eprintln!();
            }
            if output.output == Format::Json {
                return output::print_json(&raw);
            }
            let rows: Vec<Vec<String>> = items
                .into_iter()
                .map(|i| {
                    vec![
                        i.ext_line_item_id,
                        i.feasibility.status.to_string(),
                        text(i.feasibility.feasible),
                        text(i.feasibility.total_count),
                        text(i.feasibility.cost_per_interview),
                        text(i.feasibility.currency),
                    ]
                })
                .collect();
            return output::write_stdout(
                output::table(
                    &[
                        "LINE ITEM",
                        "STATUS",
                        "FEASIBLE",
                        "COUNT",
                        "CPI",
                        "CURRENCY",
                    ],
                    &rows,
                )
                .as_bytes(),
            );
        }
        if tokio::time::Instant::now() + interval > deadline {
            if terminal {
                eprintln!();
            }
            return Err(Failure::refused(format!(
                "feasibility of {project} was still PROCESSING when --timeout ran out"
            )));
        }
        tokio::time::sleep(interval).await;
    }
}

/// `dynata invoice PROJECT -o FILE`.
pub(crate) async fn invoice(
    session: &SessionClient,
    project: &str,
    file: &std::path::Path,
) -> Result<(), Failure> {
    let target = Target::parse(&format!("{}/invoices", project_path(project)))?;
    let request = session.client.request(Method::GET, &target.path);
    let response = session
        .client
        .send(request)
        .await
        .map_err(|e| session.failure(e))?;
    let status = response.status();
    let request_id = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response
        .bytes()
        .await
        .map_err(|e| Failure::unreachable(format!("the invoice download broke off: {e}")))?;
    if !status.is_success() {
        return Err(api::Answer {
            status: status.as_u16(),
            request_id,
            head: String::new(),
            body: body.to_vec(),
        }
        .refusal());
    }
    if !body.starts_with(b"%PDF") {
        return Err(Failure::refused(format!(
            "Dynata's answer for the invoice of {project} is not a PDF"
        )));
    }
    std::fs::write(file, &body)
        .map_err(|e| Failure::io(&format!("write {}", file.display()), &e))?;
    eprintln!(
        "Wrote the invoice of {project} to {} ({} bytes).",
        file.display(),
        body.len()
    );
    Ok(())
}
