//! `dynata api`: any Demand API request, authenticated by the SDK (bearer,
//! `401` replay, retries), in the manner of `gh api`; and the paging and
//! error reading the typed shortcuts share.

use std::io::{IsTerminal as _, Read};

use dynata_sdk::ApiErrorDetail;
use reqwest::{Method, Response};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::cli::ApiArgs;
use crate::failure::{Failure, REFUSED, UNREACHABLE};
use crate::output;
use crate::session::SessionClient;

/// The most pages `--paginate` follows: a server whose `next` never ends
/// must not keep the command running for ever.
const MAX_PAGES: usize = 10_000;

/// A path and its query parameters.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Target {
    pub(crate) path: String,
    pub(crate) query: Vec<(String, String)>,
}

impl Target {
    /// `path` may carry a query string; without a leading `/` it is under
    /// `/sample/v1/`.
    pub(crate) fn parse(path: &str) -> Result<Target, Failure> {
        let path = if path.starts_with('/') {
            path.to_owned()
        } else {
            format!("/sample/v1/{path}")
        };
        let url = reqwest::Url::parse(&format!("http://localhost{path}"))
            .map_err(|e| Failure::usage(format!("invalid path {path:?}: {e}")))?;
        Ok(Target {
            path: url.path().to_owned(),
            query: url.query_pairs().into_owned().collect(),
        })
    }

    /// [`Target::parse`], and also an absolute URL of the environment's own
    /// origin (`base_url`'s), as Dynata sends in an event's
    /// `actions.acceptURL`: sent as it is (the SDK's `Client::request` takes
    /// one), not under the base URL's path again. An absolute URL of any
    /// other origin is a usage error: the session's token goes only to its
    /// environment's host.
    pub(crate) fn parse_at(path: &str, base_url: &str) -> Result<Target, Failure> {
        let absolute = ["http://", "https://"].iter().any(|scheme| {
            path.get(..scheme.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(scheme))
        });
        if !absolute {
            return Target::parse(path);
        }
        let url = reqwest::Url::parse(path)
            .map_err(|e| Failure::usage(format!("invalid URL {path:?}: {e}")))?;
        let base = reqwest::Url::parse(base_url)
            .map_err(|e| Failure::usage(format!("invalid base URL {base_url:?}: {e}")))?;
        if url.origin() != base.origin() {
            return Err(Failure::usage(format!(
                "{} is not at {}: dynata api sends the session's token only to its environment's host",
                url.origin().ascii_serialization(),
                base.origin().ascii_serialization()
            )));
        }
        let query = url.query_pairs().into_owned().collect();
        let mut bare = url;
        bare.set_query(None);
        bare.set_fragment(None);
        // Never sent: the token is the credential.
        let _ = bare.set_username("");
        let _ = bare.set_password(None);
        Ok(Target {
            path: bare.to_string(),
            query,
        })
    }

    /// The same path and parameters, in any order.
    /// The `offset` query parameter; 0 without one.
    fn offset(&self) -> u64 {
        self.query
            .iter()
            .find(|(n, _)| n == "offset")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0)
    }

    fn same_request_as(&self, other: &Target) -> bool {
        let sorted = |t: &Target| {
            let mut query = t.query.clone();
            query.sort();
            query
        };
        self.path == other.path && sorted(self) == sorted(other)
    }

    /// Sets `name` to `value`, replacing an earlier value.
    fn set(&mut self, name: &str, value: String) {
        self.query.retain(|(n, _)| n != name);
        self.query.push((name.to_owned(), value));
    }
}

/// A response read whole.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) request_id: Option<String>,
    /// Its `Retry-After`, said in a refusal (a `429`'s, a `503`'s).
    pub(crate) retry_after: Option<std::time::Duration>,
    pub(crate) head: String,
    pub(crate) body: Vec<u8>,
}

impl Answer {
    async fn read(response: Response) -> Result<Answer, Failure> {
        let status = response.status();
        // Only what looks like an id: a proxy may echo the bearer token there.
        let request_id = dynata_sdk::request_id(response.headers());
        let retry_after = dynata_sdk::retry_after(response.headers());
        let mut head = format!("{:?} {}\n", response.version(), status);
        for (name, value) in response.headers() {
            head.push_str(&format!(
                "{}: {}\n",
                name,
                String::from_utf8_lossy(value.as_bytes())
            ));
        }
        // As much as the SDK reads of an envelope: a server that never stops
        // sending must not exhaust memory.
        let mut response = response;
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| Failure::unreachable(format!("the answer from Dynata broke off: {e}")))?
        {
            if body.len() + chunk.len() > dynata_sdk::MAX_ENVELOPE_BYTES {
                let too_large = format!(
                    "the answer from Dynata is over {} bytes",
                    dynata_sdk::MAX_ENVELOPE_BYTES
                );
                if !(status.is_client_error() || status.is_server_error()) {
                    return Err(Failure::refused(too_large));
                }
                // An error status means what its status means whatever its
                // size (a gateway's page), as the SDK reads it: a `5xx` is
                // exit 3.
                let answer = Answer {
                    status: status.as_u16(),
                    request_id,
                    retry_after,
                    head: String::new(),
                    body: Vec::new(),
                };
                let mut refusal = answer.refusal();
                refusal.message.push_str(&format!(" ({too_large})"));
                return Err(refusal);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Answer {
            status: status.as_u16(),
            request_id,
            retry_after,
            head,
            body,
        })
    }

    /// A `2xx` whose envelope does not say `status.message: "fail"` (in any
    /// case): Dynata reports some refusals with `200`, as the SDK knows too.
    pub(crate) fn ok(&self) -> bool {
        let says_fail = || {
            self.json()
                .as_ref()
                .and_then(|v| v.pointer("/status/message"))
                .and_then(Value::as_str)
                .is_some_and(dynata_sdk::is_failure_message)
        };
        (200..300).contains(&self.status) && !says_fail()
    }

    pub(crate) fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The failure a non-2xx answer means: one sentence with Dynata's error
    /// codes and messages and the request id.
    pub(crate) fn refusal(&self) -> Failure {
        let mut details = Vec::new();
        if let Some(Value::Array(errors)) = self
            .json()
            .and_then(|v| v.pointer("/status/errors").cloned())
        {
            for error in &errors {
                // Only what cannot be an echo of the request (its token).
                let detail = ApiErrorDetail::from_json(error);
                match (detail.code, detail.message) {
                    (Some(c), Some(m)) => details.push(format!("[{c}] {m}")),
                    (Some(c), None) => details.push(format!("[{c}]")),
                    (None, Some(m)) => details.push(m.to_owned()),
                    (None, None) => {}
                }
            }
        }
        let request_id = self
            .request_id
            .as_deref()
            .map(|id| format!(", request id {id}"))
            .unwrap_or_default();
        let details = if details.is_empty() {
            String::new()
        } else {
            format!(": {}", details.join("; "))
        };
        // As the SDK's errors go: a `408` did not answer in time either.
        let unanswered = self.status >= 500 || self.status == 408;
        let what = if unanswered {
            "Dynata could not answer the request"
        } else {
            "Dynata refused the request"
        };
        // In whole seconds, rounded up, as the SDK's errors say it.
        let retry_after = self
            .retry_after
            .map(|wait| {
                let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                format!("; retry after {seconds} s")
            })
            .unwrap_or_default();
        Failure {
            code: if unanswered { UNREACHABLE } else { REFUSED },
            message: format!(
                "{what} (status {}{request_id}){details}{retry_after}",
                self.status
            ),
        }
    }
}

/// The answer's body on stdout: on a terminal, JSON indented (and coloured);
/// otherwise as it came (as `gh api` does), so that a pipeline reads
/// Dynata's own text: numbers past what a float holds, keys in their order.
fn print_body(answer: &Answer) -> Result<(), Failure> {
    match answer.json() {
        Some(json) if std::io::stdout().is_terminal() => output::print_json(&json),
        _ => {
            output::write_stdout(&answer.body)?;
            if answer.json().is_some() && !answer.body.ends_with(b"\n") {
                output::write_stdout(b"\n")?;
            }
            Ok(())
        }
    }
}

/// Sends a request through the SDK and reads the whole answer.
pub(crate) async fn call(
    session: &SessionClient,
    method: Method,
    target: &Target,
    body: Option<(Vec<u8>, &str)>,
) -> Result<Answer, Failure> {
    let mut request = session
        .client
        .request(method, &target.path)
        .query(&target.query);
    if let Some((bytes, content_type)) = body {
        request = request
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(bytes);
    }
    let response = session.call(session.client.send(request)).await?;
    Answer::read(response).await
}

/// Every page of a list: the `data` of each, in order. The next page is
/// `meta.links.next` (its query laid over ours, so filters and `limit`
/// stay), else `offset` + the page's length while it is below `meta.total`.
/// `"data": null` is an empty page (Dynata's server sends an empty list so);
/// an empty page short of its `meta.total` is an error, not the end,
/// and a page that begins with the item the page before began with, under
/// the same total, is the same page served again (a server that ignores
/// `offset`): an error, as in the SDK's `sample_items`, not the first page
/// printed over and over. A page refused ([`Answer::ok`] is false) is the
/// error, its body printed on stdout as `dynata api` prints any answer.
///
/// Each item is its JSON text as Dynata sent it (see [`print_items`]).
pub(crate) async fn all_pages(
    session: &SessionClient,
    target: &Target,
) -> Result<Vec<Box<RawValue>>, Failure> {
    let mut target = target.clone();
    let mut items = Vec::new();
    let mut last_page: Option<(String, Option<u64>)> = None;
    for _ in 0..MAX_PAGES {
        let answer = call(session, Method::GET, &target, None).await?;
        if !answer.ok() {
            // As without --paginate: the refusal's body is printed, with
            // Dynata's errors in full; the items of the pages before it are
            // not (part of a list, printed as the list, would mislead).
            print_body(&answer)?;
            return Err(answer.refusal());
        }
        let page = answer.json().ok_or_else(|| {
            Failure::refused(format!(
                "the answer to {} is not JSON (status {})",
                target.path, answer.status
            ))
        })?;
        // An empty page (`[]`, or `null`) short of the list's own
        // `meta.total` contradicts it: ending there would print part of
        // the list as all of it (as the SDK's `sample_items` says too).
        let empty_short_of_total = || {
            let total = page.pointer("/meta/total").and_then(Value::as_u64)?;
            let offset = target.offset();
            (offset < total).then(|| {
                Failure::refused(format!(
                    "the page of {} at offset {offset} is empty, but the list says it has {total} items: the rest of the list could not be read",
                    target.path
                ))
            })
        };
        let got = match page.get("data") {
            Some(Value::Array(_)) => {
                let data: Vec<Box<RawValue>> =
                    serde_json::from_str(raw_data(&answer, &target)?.get())
                        .map_err(|e| unreadable_page(&target, &e))?;
                let total = page.pointer("/meta/total").and_then(Value::as_u64);
                let this_page = data.first().map(|first| (first.get().to_owned(), total));
                if this_page.is_some() && this_page == last_page {
                    return Err(Failure::refused(format!(
                        "the page of {} after {} items begins with the item the page before it began with: the server ignores `offset` for this list, so the items after its first page cannot be listed",
                        target.path,
                        items.len()
                    )));
                }
                last_page = this_page;
                let got = data.len();
                items.extend(data);
                got
            }
            Some(Value::Null) => return empty_short_of_total().map_or(Ok(items), Err),
            Some(_) => {
                items.push(raw_data(&answer, &target)?);
                return Ok(items);
            }
            None => {
                return Err(Failure::refused(format!(
                    "the answer to {} has no `data`: it is not a Demand API list",
                    target.path
                )));
            }
        };
        if got == 0 {
            return empty_short_of_total().map_or(Ok(items), Err);
        }
        match next_page(&target, &page, got)? {
            Some(next) => target = next,
            None => return Ok(items),
        }
    }
    Err(Failure::refused(format!(
        "gave up after {MAX_PAGES} pages of {}",
        target.path
    )))
}

/// The `data` of a page, as Dynata wrote it. A page that names it twice
/// gives its last, as `serde_json::Value` (which the page's checks read)
/// and `jq` do: a derived struct would refuse it as a duplicate field.
fn raw_data(answer: &Answer, target: &Target) -> Result<Box<RawValue>, Failure> {
    serde_json::from_slice::<std::collections::HashMap<String, Box<RawValue>>>(&answer.body)
        .map_err(|e| unreadable_page(target, &e))?
        .remove("data")
        .ok_or_else(|| {
            Failure::refused(format!(
                "the answer to {} has no `data`: it is not a Demand API list",
                target.path
            ))
        })
}

fn unreadable_page(target: &Target, error: &serde_json::Error) -> Failure {
    Failure::refused(format!("a page of {} cannot be read: {error}", target.path))
}

/// The items of every page as one JSON array on stdout: on a terminal,
/// indented (and coloured); otherwise each item as Dynata sent it, as a
/// single answer is printed (see [`print_body`]), so that numbers past what
/// a float holds, decimals and key order reach a pipeline intact.
fn print_items(items: &[Box<RawValue>]) -> Result<(), Failure> {
    let mut joined = String::from("[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            joined.push(',');
        }
        joined.push_str(item.get());
    }
    joined.push(']');
    match serde_json::from_str::<Value>(&joined) {
        Ok(json) if std::io::stdout().is_terminal() => output::print_json(&json),
        _ => {
            joined.push('\n');
            output::write_stdout(joined.as_bytes())
        }
    }
}

/// The request for the page after `page` (which held `got` items), or
/// `None` at the end.
fn next_page(current: &Target, page: &Value, got: usize) -> Result<Option<Target>, Failure> {
    let mut target = current.clone();
    let meta = page.get("meta");
    let next = meta
        .and_then(|m| m.pointer("/links/next"))
        .and_then(Value::as_str)
        .filter(|next| !next.is_empty());
    if let Some(next) = next {
        let url = reqwest::Url::parse(next)
            .or_else(|_| reqwest::Url::parse(&format!("http://localhost{next}")))
            .map_err(|e| Failure::refused(format!("Dynata's next-page link is not a URL: {e}")))?;
        for (name, value) in url.query_pairs() {
            target.set(&name, value.into_owned());
        }
        if target.same_request_as(current) {
            return Err(Failure::refused(format!(
                "Dynata's next-page link asks for the page it came with ({}): stopped",
                current.path
            )));
        }
        return Ok(Some(target));
    }
    let total = meta.and_then(|m| m.get("total")).and_then(Value::as_u64);
    let next_offset = target.offset().saturating_add(got as u64);
    match total {
        Some(total) if next_offset < total => {
            target.set("offset", next_offset.to_string());
            Ok(Some(target))
        }
        _ => Ok(None),
    }
}

fn read_input(source: &str) -> Result<Vec<u8>, Failure> {
    if source == "-" {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .map_err(|e| Failure::io("read stdin", &e))?;
        Ok(bytes)
    } else {
        std::fs::read(source).map_err(|e| Failure::io(&format!("read {source}"), &e))
    }
}

/// A JSON body from a file or `-`, checked to be JSON before it is sent.
pub(crate) fn read_json(source: &str) -> Result<Vec<u8>, Failure> {
    let bytes = read_input(source)?;
    serde_json::from_slice::<Value>(&bytes)
        .map_err(|e| Failure::usage(format!("{source} is not JSON: {e}")))?;
    Ok(bytes)
}

/// `-f KEY=VALUE` pairs. An empty key (`-f =x`) is refused as a missing
/// `=` is: it would be sent as `{"": "x"}` or `?=x`, which no endpoint
/// takes, and is most likely a shell variable that expanded to nothing.
fn parse_fields(fields: &[String]) -> Result<Vec<(String, String)>, Failure> {
    fields
        .iter()
        .map(|field| {
            field
                .split_once('=')
                .filter(|(k, _)| !k.is_empty())
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .ok_or_else(|| Failure::usage(format!("-f takes KEY=VALUE, not {field:?}")))
        })
        .collect()
}

/// `dynata api`.
pub(crate) async fn run(session: &SessionClient, args: ApiArgs) -> Result<(), Failure> {
    let mut target = Target::parse_at(&args.path, session.client.base_url())?;
    let fields = parse_fields(&args.fields)?;
    let has_body = args.input.is_some() || !fields.is_empty();
    let method = match &args.method {
        Some(m) => Method::from_bytes(m.to_ascii_uppercase().as_bytes())
            .map_err(|_| Failure::usage(format!("invalid HTTP method {m:?}")))?,
        None if has_body && args.input.is_some() => Method::POST,
        None if has_body && !args.paginate => Method::POST,
        None => Method::GET,
    };
    let mut body = None;
    if let Some(input) = &args.input {
        // Sent as JSON, so refused here if it is not (as `projects create
        // --file` refuses it), rather than by Dynata.
        body = Some((read_json(input)?, "application/json"));
        target.query.extend(fields);
    } else if method == Method::GET || method == Method::DELETE || method == Method::HEAD {
        target.query.extend(fields);
    } else if !fields.is_empty() {
        let object: serde_json::Map<String, Value> = fields
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect();
        body = Some((
            serde_json::to_vec(&object).unwrap_or_default(),
            "application/json",
        ));
    }

    if args.paginate {
        if method != Method::GET {
            return Err(Failure::usage("--paginate follows GET lists only"));
        }
        if args.include {
            return Err(Failure::usage(
                "-i and --paginate cannot be combined: the answer is many pages",
            ));
        }
        let items = all_pages(session, &target).await?;
        return print_items(&items);
    }

    let answer = call(session, method, &target, body).await?;
    if args.include {
        output::write_stdout(format!("{}\n", answer.head).as_bytes())?;
    }
    print_body(&answer)?;
    if answer.ok() {
        Ok(())
    } else {
        Err(answer.refusal())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_queries() {
        let target = Target::parse("projects?state=LAUNCHED&limit=2").unwrap();
        assert_eq!(target.path, "/sample/v1/projects");
        assert_eq!(
            target.query,
            [
                ("state".into(), "LAUNCHED".into()),
                ("limit".into(), "2".into())
            ]
        );
        assert_eq!(Target::parse("/auth/x").unwrap().path, "/auth/x");
        let base = "https://api.uat.pe.dynata.com";
        let accept =
            Target::parse_at(&format!("{base}/sample/v1/events/7/accept?a=1"), base).unwrap();
        assert_eq!(accept.path, format!("{base}/sample/v1/events/7/accept"));
        assert_eq!(accept.query, [("a".to_owned(), "1".to_owned())]);
        assert_eq!(
            Target::parse_at(
                "HTTPS://u:p@API.UAT.PE.DYNATA.COM/sample/v1/projects#x",
                base
            )
            .unwrap()
            .path,
            format!("{base}/sample/v1/projects")
        );
        for elsewhere in [
            "https://evil.example/sample/v1/projects",
            "http://api.uat.pe.dynata.com/sample/v1/projects",
            "https://api.uat.pe.dynata.com:8443/sample/v1/projects",
        ] {
            let refused = Target::parse_at(elsewhere, base).expect_err(elsewhere);
            assert_eq!(refused.code, crate::failure::USAGE, "{elsewhere}");
        }
        assert_eq!(
            Target::parse_at("projects", base).unwrap().path,
            "/sample/v1/projects"
        );
    }

    #[test]
    fn the_next_page_keeps_limit_and_filters() {
        let first = Target::parse("projects?limit=2&state=LAUNCHED").unwrap();
        // Dynata's `next` link carries only the offset.
        let page = serde_json::json!({"meta": {"links": {"next": "https://api.dynata.com/sample/v1/projects?offset=2"}, "total": 5}});
        let next = next_page(&first, &page, 2).unwrap().unwrap();
        assert_eq!(next.path, "/sample/v1/projects");
        assert_eq!(
            next.query,
            [
                ("limit".into(), "2".into()),
                ("state".into(), "LAUNCHED".into()),
                ("offset".into(), "2".into())
            ]
        );
    }

    #[test]
    fn a_next_link_to_the_same_page_is_refused() {
        let current = Target::parse("projects?limit=2&offset=2").unwrap();
        // The same parameters, in another order.
        let page = serde_json::json!({"meta": {"links": {"next": "/sample/v1/projects?offset=2&limit=2"}, "total": 9}});
        let failure = next_page(&current, &page, 2).expect_err("a loop");
        assert!(
            failure.message.contains("page it came with"),
            "{}",
            failure.message
        );
    }

    #[test]
    fn without_a_next_link_the_offset_grows_until_the_total() {
        let target = Target::parse("projects?offset=4").unwrap();
        let page = serde_json::json!({"meta": {"total": 7}});
        let next = next_page(&target, &page, 2).unwrap().unwrap();
        assert_eq!(next.query, [("offset".into(), "6".into())]);
        assert!(
            next_page(&next, &page, 1).unwrap().is_none(),
            "6 + 1 = 7: the end"
        );
        let no_meta = serde_json::json!({"data": []});
        assert!(next_page(&target, &no_meta, 2).unwrap().is_none());
    }

    #[test]
    fn a_refusal_names_codes_and_request_id_but_not_an_echoed_header() {
        let answer = Answer {
            status: 404,
            request_id: Some("req-9".into()),
            retry_after: None,
            head: String::new(),
            body: br#"{"status":{"message":"fail","errors":[{"code":1001,"message":"no such project"},{"code":"x","message":"Authorization: Bearer abc"}]}}"#.to_vec(),
        };
        let failure = answer.refusal();
        assert_eq!(failure.code, REFUSED);
        assert_eq!(
            failure.message,
            "Dynata refused the request (status 404, request id req-9): [1001] no such project; [x]"
        );
    }
}
