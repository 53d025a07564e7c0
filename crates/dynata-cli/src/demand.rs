//! The typed shortcuts: projects, line items, feasibility and invoices,
//! on the SDK's typed Demand API layer (`Client::sample`,
//! `Client::sample_items`, `Client::invoice_pdf`) and the generated types.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use dynata_sdk::sample_api::types::{self, FeasibilityItem};
use futures_util::StreamExt as _;
use serde::Serialize;
use serde_json::Value;

use crate::cli::{FeasibilityCommand, Format, LineItemsCommand, ProjectsCommand};
use crate::failure::Failure;
use crate::output;
use crate::session::SessionClient;

/// Items per page when a shortcut lists everything.
const PAGE_SIZE: u32 = 100;

/// The most items a list command collects: a server whose `meta.total` lies
/// and that ignores `offset` would otherwise be paged for ever.
const MAX_ITEMS: usize = 100_000;

fn to_json(value: &impl Serialize) -> Result<Value, Failure> {
    serde_json::to_value(value)
        .map_err(|e| Failure::refused(format!("cannot show Dynata's answer as JSON: {e}")))
}

fn text(value: Option<impl ToString>) -> String {
    value.map(|v| v.to_string()).unwrap_or_default()
}

/// Drains a paging stream; the first error ends it.
async fn every<I>(
    session: &SessionClient,
    items: dynata_sdk::SampleItems<I>,
) -> Result<Vec<I>, Failure>
where
    dynata_sdk::SampleItems<I>: futures_util::Stream<Item = Result<I, dynata_sdk::Error>> + Unpin,
{
    // As for every call (`SessionClient::call`): the token first.
    session.access_token().await?;
    at_most(MAX_ITEMS, items, async |e| session.failure(e).await).await
}

/// The items of `stream`, unless it has more than `max` or fails.
async fn at_most<I, E>(
    max: usize,
    mut stream: impl futures_util::Stream<Item = Result<I, E>> + Unpin,
    failure: impl AsyncFn(E) -> Failure,
) -> Result<Vec<I>, Failure> {
    let mut all = Vec::new();
    while let Some(item) = stream.next().await {
        if all.len() == max {
            return Err(Failure::refused(format!(
                "gave up after {max} items: Dynata's list does not end \
                 (use `dynata api --paginate` with filters for more)"
            )));
        }
        match item {
            Ok(item) => all.push(item),
            Err(error) => return Err(failure(error).await),
        }
    }
    Ok(all)
}

/// `dynata projects ...`.
pub(crate) async fn projects(
    session: &SessionClient,
    command: ProjectsCommand,
) -> Result<(), Failure> {
    let client = &session.client;
    match command {
        ProjectsCommand::List { state, output } => {
            let stream = client.sample_items(PAGE_SIZE, move |api, page| {
                let state = state.clone();
                async move {
                    let mut list = api.list_projects().offset(page.offset).limit(page.limit);
                    if let Some(state) = state {
                        list = list.state(state);
                    }
                    list.send().await
                }
            });
            let projects = every(session, stream).await?;
            if output.output == Format::Json {
                return output::print_json(&to_json(&projects)?);
            }
            let rows: Vec<Vec<String>> = projects
                .into_iter()
                .map(|p| {
                    vec![
                        p.ext_project_id,
                        p.state.to_string(),
                        p.title,
                        text(p.created_at),
                    ]
                })
                .collect();
            output::write_stdout(
                output::table(&["ID", "STATE", "TITLE", "CREATED"], &rows).as_bytes(),
            )
        }
        ProjectsCommand::Get { project } => {
            let project = session
                .call(client.sample(|api| {
                    let id = project.clone();
                    async move { api.get_project().ext_project_id(id).send().await }
                }))
                .await?;
            output::print_json(&to_json(&project)?)
        }
        ProjectsCommand::Create { file, output } => {
            let bytes = crate::api::read_json(&file)?;
            let not_accepted = |problem: String| {
                Failure::usage(format!(
                    "{file} is not a project Dynata accepts (CreateProject): {problem}"
                ))
            };
            // serde drops what a type does not know: a misspelt field would
            // be lost unseen (a line item without its quota plan), so any
            // such field is refused, by its path.
            let mut unknown = Vec::new();
            let body: types::CreateProject = serde_ignored::deserialize(
                &mut serde_json::Deserializer::from_slice(&bytes),
                |path| unknown.push(json_path(&path)),
            )
            .map_err(|e| not_accepted(e.to_string()))?;
            if !unknown.is_empty() {
                return Err(not_accepted(format!(
                    "unknown field {} (misspelt?); nothing was sent",
                    unknown.join(", ")
                )));
            }
            let created = session
                .call(client.sample(|api| {
                    let body = body.clone();
                    async move { api.create_project().body(body).send().await }
                }))
                .await?;
            if output.output == Format::Json {
                return output::print_json(&to_json(&created)?);
            }
            output::write_stdout(
                output::table(
                    &["ID", "STATE", "TITLE"],
                    &[vec![
                        created.ext_project_id,
                        created.state.to_string(),
                        created.title,
                    ]],
                )
                .as_bytes(),
            )
        }
        ProjectsCommand::Close { project } => {
            let closed = session
                .call(client.sample(|api| {
                    let id = project.clone();
                    async move { api.close_project().ext_project_id(id).send().await }
                }))
                .await?;
            output::noteln!("Project {} is {}.", closed.ext_project_id, closed.state);
            Ok(())
        }
    }
}

/// `dynata lineitems ...`.
pub(crate) async fn line_items(
    session: &SessionClient,
    command: LineItemsCommand,
) -> Result<(), Failure> {
    let client = &session.client;
    let (project, line_item, launch) = match command {
        LineItemsCommand::List { project, output } => {
            let stream = client.sample_items(PAGE_SIZE, move |api, page| {
                let project = project.clone();
                async move {
                    api.list_line_items()
                        .ext_project_id(project)
                        .offset(page.offset)
                        .limit(page.limit)
                        .send()
                        .await
                }
            });
            let items = every(session, stream).await?;
            if output.output == Format::Json {
                return output::print_json(&to_json(&items)?);
            }
            let rows: Vec<Vec<String>> = items
                .into_iter()
                .map(|item| {
                    vec![
                        item.ext_line_item_id,
                        item.state.to_string(),
                        text(item.title),
                        format!(
                            "{}-{}",
                            text(item.country_iso_code),
                            text(item.language_iso_code)
                        ),
                    ]
                })
                .collect();
            return output::write_stdout(
                output::table(&["ID", "STATE", "TITLE", "LOCALE"], &rows).as_bytes(),
            );
        }
        LineItemsCommand::Launch { project, line_item } => (project, line_item, true),
        LineItemsCommand::Pause { project, line_item } => (project, line_item, false),
    };
    let changed = session
        .call(client.sample(|api| {
            let (project, line_item) = (project.clone(), line_item.clone());
            async move {
                if launch {
                    api.launch_line_item()
                        .ext_project_id(project)
                        .ext_line_item_id(line_item)
                        .send()
                        .await
                } else {
                    api.pause_line_item()
                        .ext_project_id(project)
                        .ext_line_item_id(line_item)
                        .send()
                        .await
                }
            }
        }))
        .await?;
    output::noteln!(
        "Line item {} of {project}: {}.",
        changed.ext_line_item_id,
        changed.state
    );
    Ok(())
}

/// Where a line item's feasibility stands, as `Client::wait_for_feasibility`
/// sees it: a status this version does not know is still being computed.
#[derive(Debug, PartialEq, Eq)]
enum Status {
    Ready,
    Failed,
    Pending,
}

fn status(item: &FeasibilityItem) -> Status {
    match item.feasibility.status.as_str() {
        "READY" => Status::Ready,
        "FAILED" | "NOT_SUPPORTED" => Status::Failed,
        _ => Status::Pending,
    }
}

/// One line of progress: `2/3 ready: li-1 READY, li-2 READY, li-3 PROCESSING`.
fn progress(items: &[FeasibilityItem]) -> String {
    let ready = items
        .iter()
        .filter(|i| status(i) != Status::Pending)
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
    let timeout = seconds(timeout, "--timeout")?;
    // A timeout too long for the clock is no timeout.
    let deadline = tokio::time::Instant::now().checked_add(timeout);
    let terminal = std::io::stderr().is_terminal();
    // How the last attempt at a poll failed: the SDK retries a poll inside
    // it, and one that --timeout cuts short ends with no error of its own.
    let failed_attempt: Arc<Mutex<Option<String>>> = Arc::default();
    // Until Dynata has answered with a status, it is not "still PROCESSING"
    // that --timeout ran out on, but Dynata not answering (exit 3).
    let mut answered = false;
    let timed_out = |answered: bool| {
        if terminal {
            // Ends the progress line rewritten in place.
            output::noteln!();
        }
        if answered {
            return Failure::refused(format!(
                "feasibility of {project} was still PROCESSING when --timeout ran out"
            ));
        }
        let last = match failed_attempt
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            Some(failure) => format!(" (the last try got {failure}; it was being retried)"),
            None => " (no answer yet)".to_owned(),
        };
        Failure::unreachable(format!(
            "Dynata could not answer the feasibility of {project} before --timeout ran out{last}"
        ))
    };
    let mut last = String::new();
    loop {
        let poll = session.client.sample(|api| {
            let id = project.clone();
            let failed_attempt = Arc::clone(&failed_attempt);
            async move {
                let answer = api.get_feasibility().ext_project_id(id).send().await;
                if let Err(error) = &answer {
                    *failed_attempt
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner) = Some(attempt_failure(error));
                }
                answer
            }
        });
        // A poll (with its retries) must not outlast --timeout either; the
        // one made when it runs out has a grace of its own.
        let poll_ends = deadline.map(|deadline| {
            let now = tokio::time::Instant::now();
            if now < deadline {
                deadline
            } else {
                now.checked_add(LAST_POLL_GRACE).unwrap_or(now)
            }
        });
        let items: Vec<FeasibilityItem> = match poll_ends {
            Some(poll_ends) => tokio::time::timeout_at(poll_ends, session.call(poll))
                .await
                .map_err(|_| timed_out(answered))??,
            None => session.call(poll).await?,
        };
        answered = true;
        let line = progress(&items);
        if line != last {
            // On a terminal the line is rewritten in place; in a log, each
            // change is a line of its own.
            if terminal {
                // Back to the line's start and clear it: written as it is,
                // where `note!` would show the escape.
                let _ = std::io::stderr().lock().write_all(b"\r\x1b[2K");
                output::note!("{line}");
            } else {
                output::noteln!("{line}");
            }
            let _ = std::io::stderr().flush();
            last = line;
        }
        // As `Client::wait_for_feasibility`: no line item at all is an
        // answer not computed yet, never "all of them ready".
        let done = !items.is_empty() && items.iter().all(|i| status(i) != Status::Pending);
        if done {
            if terminal {
                output::noteln!();
            }
            let failed: Vec<String> = items
                .iter()
                .filter(|i| status(i) == Status::Failed)
                .map(|i| format!("{} {}", i.ext_line_item_id, i.feasibility.status))
                .collect();
            if output.output == Format::Json {
                output::print_json(&to_json(&items)?)?;
            } else {
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
                output::write_stdout(
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
                )?;
            }
            if failed.is_empty() {
                return Ok(());
            }
            return Err(Failure::refused(format!(
                "Dynata cannot field every line item of {project}: {}",
                failed.join(", ")
            )));
        }
        // The next poll after --interval, or when --timeout runs out if
        // that comes first: the answer is looked at once more then, not
        // given up on an interval early.
        let now = tokio::time::Instant::now();
        match deadline {
            Some(deadline) if now >= deadline => return Err(timed_out(answered)),
            Some(deadline) => {
                let next = now
                    .checked_add(interval)
                    .map_or(deadline, |next| next.min(deadline));
                tokio::time::sleep_until(next).await;
            }
            None => tokio::time::sleep(interval).await,
        }
    }
}

/// What a failed attempt at a feasibility poll got: an answer's status and
/// request id (never its body, which may echo the request), or that there
/// was no answer to read.
fn attempt_failure(error: &dynata_sdk::sample_api::Error<types::ApiError>) -> String {
    use dynata_sdk::sample_api::Error as Generated;
    let headers = match error {
        Generated::ErrorResponse(answer) => Some(answer.headers()),
        Generated::UnexpectedResponse(answer) => Some(answer.headers()),
        _ => None,
    };
    match error.status() {
        Some(status) => {
            let request_id = headers
                .and_then(dynata_sdk::request_id)
                .map(|id| format!(", request id {id}"))
                .unwrap_or_default();
            format!("status {}{request_id}", status.as_u16())
        }
        None => match error {
            Generated::CommunicationError(e) if e.is_timeout() => "no answer in time".to_owned(),
            Generated::CommunicationError(e) if e.is_connect() => "no connection".to_owned(),
            _ => "no answer it could read".to_owned(),
        },
    }
}

/// How long the poll made when `--timeout` runs out may take: the last look
/// at the answer, not cut off as it starts.
const LAST_POLL_GRACE: Duration = Duration::from_secs(5);

/// `dynata invoice PROJECT -o FILE`; `-o -` is stdout, as `--file -` and
/// `--input -` are stdin (a file named `-` is `./-`).
pub(crate) async fn invoice(
    session: &SessionClient,
    project: &str,
    file: &std::path::Path,
) -> Result<(), Failure> {
    let to_stdout = file.as_os_str() == "-";
    // A PDF's bytes on a terminal are garbage at best, and may be escape
    // sequences that rewrite what it shows: refused before anything is
    // sent, as a PDF is never meant for one.
    if to_stdout && std::io::stdout().is_terminal() {
        return Err(Failure::usage(
            "-o - writes the PDF to stdout, which is a terminal: redirect it (> invoice.pdf) \
             or pipe it, or name a file",
        ));
    }
    let pdf = session.call(session.client.invoice_pdf(project)).await?;
    let written_to = if to_stdout {
        output::write_stdout(&pdf)?;
        "stdout".to_owned()
    } else {
        write_whole(file, &pdf)
            .map_err(|e| Failure::io(&format!("write {}", file.display()), &e))?;
        file.display().to_string()
    };
    output::noteln!(
        "Wrote the invoice of {project} to {written_to} ({} bytes).",
        pdf.len()
    );
    Ok(())
}

/// Writes `bytes` to a temporary file beside `file`, then renames it over
/// `file`: a write that fails (a full disk, a kill) leaves `file` as it was,
/// never a truncated PDF. A path that is not a plain file (a link, a pipe,
/// `/dev/stdout`) is written through, as a shell's `>` does: renaming over
/// it would replace the link or the device.
fn write_whole(file: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    let existing = match std::fs::symlink_metadata(file) {
        Ok(metadata) => Some(metadata),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    let plain_or_absent = existing.as_ref().is_none_or(|m| m.file_type().is_file());
    if !plain_or_absent {
        let mut through = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(file)?;
        return through.write_all(bytes).and_then(|()| through.flush());
    }
    let dir = match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => std::path::Path::new("."),
    };
    // Not the temporary file's private 0600: the file's own mode, as an
    // editor saving it keeps it, or for a new file the mode of any other
    // the user creates.
    let mut temporary = new_file_in(dir)?;
    if let Some(metadata) = existing {
        temporary
            .as_file()
            .set_permissions(metadata.permissions())?;
    }
    temporary.write_all(bytes)?;
    temporary.as_file().sync_all()?;
    temporary.persist(file).map_err(|e| e.error)?;
    Ok(())
}

/// A temporary file in `dir` with the mode a new file gets: 0666 less the
/// umask.
#[cfg(unix)]
fn new_file_in(dir: &std::path::Path) -> std::io::Result<tempfile::NamedTempFile> {
    use std::os::unix::fs::PermissionsExt;
    tempfile::Builder::new()
        .permissions(std::fs::Permissions::from_mode(0o666))
        .tempfile_in(dir)
}

#[cfg(not(unix))]
fn new_file_in(dir: &std::path::Path) -> std::io::Result<tempfile::NamedTempFile> {
    tempfile::NamedTempFile::new_in(dir)
}

/// Where `path` is in the JSON document, as `lineItems.0.quotaplan`: the
/// fields and indexes only. serde_ignored's own text also shows each
/// `Option` or newtype the value went through as `?`, which the document
/// does not have.
fn json_path(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    let (parent, segment) = match path {
        Path::Root => return String::new(),
        Path::Seq { parent, index } => (parent, index.to_string()),
        Path::Map { parent, key } => (parent, key.clone()),
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => {
            return json_path(parent);
        }
    };
    match json_path(parent) {
        above if above.is_empty() => segment,
        above => format!("{above}.{segment}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_list_that_never_ends_is_cut_off_with_a_refusal() {
        let endless = futures_util::stream::repeat_with(|| Ok::<u8, ()>(1));
        let failure = at_most(3, endless, async |()| unreachable!("no item fails"))
            .await
            .expect_err("endless");
        assert!(
            failure.message.contains("gave up after 3 items"),
            "{}",
            failure.message
        );
        let three = futures_util::stream::iter([Ok::<u8, ()>(1), Ok(2), Ok(3)]);
        let all = at_most(3, three, async |()| unreachable!("no item fails")).await;
        assert_eq!(all.expect("exactly the limit"), [1, 2, 3]);
    }
}
