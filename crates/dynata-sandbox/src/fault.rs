//! Faults a test can inject, the per-operation queues that hold them, and what
//! each fault looks like on the wire.

use std::collections::VecDeque;
use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::operation::Operation;
use crate::reply;

/// A way for the sandbox to misbehave on a request, as gateways, proxies and
/// networks in front of Dynata's API do.
///
/// Queue faults with [`Sandbox::inject`](crate::Sandbox::inject) or over
/// HTTP with `POST /__sandbox/faults` (see the crate's README).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Answer with this status and a gateway-style body
    /// `{"message": "<reason phrase>"}` (`application/json`). Codes outside
    /// `200..=599` are answered as `500`.
    Status(u16),
    /// Answer `429 Too Many Requests` with a `Retry-After` header of
    /// `retry_after` in whole seconds, rounded up.
    RateLimited {
        /// How long the client is told to wait.
        retry_after: Duration,
    },
    /// Answer `503 Service Unavailable` (`{"message": "Service
    /// Unavailable"}`) with a `Retry-After` header of `retry_after` in
    /// whole seconds, rounded up: a maintenance window, or a gateway
    /// shedding load, that says when to come back.
    Unavailable {
        /// How long the client is told to wait.
        retry_after: Duration,
    },
    /// Answer `502 Bad Gateway` with a `text/html` page, as a load balancer
    /// does when the service behind it is down.
    HtmlBadGateway,
    /// Wait this long, then answer normally (measured with tokio's clock, so
    /// paused test time skips it).
    Delay(Duration),
    /// Close the TCP connection with a reset (`RST`) and no HTTP response;
    /// the client sees a connection error. The request was received (and is
    /// counted) but not acted on.
    ResetConnection,
    /// A body cut short. On the auth API: `200` with the token pair's media
    /// type and truncated JSON such as `{"accessToken": "abc` (`logout`,
    /// whose success has no body, gets it as `application/json`); the
    /// request is not acted on. On the Demand API (`/sample/v1`): the
    /// request is carried out, and its own answer, with its own status
    /// (`201` for a creation) and headers, arrives cut off halfway (JSON
    /// that does not parse, a PDF without its `%%EOF`), as when a proxy
    /// drops the end of Dynata's answer: a client cannot tell whether a
    /// `POST` took effect from the answer, and must look it up.
    MalformedBody,
    /// Carry the request out, then close the connection with a reset before
    /// any answer: the request took effect (a project created, a refresh
    /// token spent, a session revoked) and the client sees a connection
    /// error, as when a proxy or the network drops Dynata's answer. A
    /// client cannot tell from that error whether a `POST` took effect; a
    /// refresh whose answer was lost spent its refresh token.
    AnswerLost,
    /// Answer as the identity server (Keycloak) does when it no longer
    /// honours a session: `400`
    /// `{"error": "invalid_grant", "errorDescription": "..."}`
    /// (`application/vnd.auth.error+json`), with the description Keycloak
    /// gives for the operation (see the crate's README). The session is not
    /// touched: its tokens stay live, so a test sees how a client copes with
    /// a credential error it could not have predicted.
    InvalidGrant,
}

/// What a handler does about the fault at the head of its queue.
pub(crate) enum Action {
    Respond(Response),
    Delay(Duration),
    Reset,
    /// Do the work, then this to its answer.
    AfterWork(AfterWork),
}

/// What a fault does to the answer of work it let happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AfterWork {
    /// Half of the answer's body, with its status and headers.
    CutShort,
    /// No answer: the connection is reset.
    Reset,
}

impl Fault {
    pub(crate) fn action(self, operation: Operation) -> Action {
        match self {
            Fault::Status(code) => {
                let status = StatusCode::from_u16(code)
                    .ok()
                    .filter(|s| (200..=599).contains(&s.as_u16()))
                    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                Action::Respond(reply::gateway(status))
            }
            Fault::RateLimited { retry_after } => {
                Action::Respond(asking_to_wait(StatusCode::TOO_MANY_REQUESTS, retry_after))
            }
            Fault::Unavailable { retry_after } => {
                Action::Respond(asking_to_wait(StatusCode::SERVICE_UNAVAILABLE, retry_after))
            }
            Fault::HtmlBadGateway => Action::Respond(
                (
                    StatusCode::BAD_GATEWAY,
                    [(header::CONTENT_TYPE, "text/html")],
                    BAD_GATEWAY_PAGE,
                )
                    .into_response(),
            ),
            Fault::Delay(duration) => Action::Delay(duration),
            Fault::ResetConnection => Action::Reset,
            // The Demand API cuts its own answer short; the auth API's is a
            // token pair cut short, the request not acted on.
            Fault::MalformedBody if !operation.is_auth() => Action::AfterWork(AfterWork::CutShort),
            Fault::MalformedBody => {
                let media_type = match operation {
                    Operation::Logout => reply::JSON_MEDIA_TYPE,
                    _ => reply::TOKEN_MEDIA_TYPE,
                };
                Action::Respond(
                    (
                        StatusCode::OK,
                        [(header::CONTENT_TYPE, media_type)],
                        r#"{"accessToken": "abc"#,
                    )
                        .into_response(),
                )
            }
            Fault::AnswerLost => Action::AfterWork(AfterWork::Reset),
            Fault::InvalidGrant => Action::Respond(reply::auth_error(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                invalid_grant_description(operation),
            )),
        }
    }
}

/// The gateway's answer with `status` and a `Retry-After` of `retry_after`
/// in whole seconds, rounded up.
fn asking_to_wait(status: StatusCode, retry_after: Duration) -> Response {
    // Rounded up; `Duration::MAX` ("never") saturates, not wraps.
    let secs = retry_after
        .as_secs()
        .saturating_add(u64::from(retry_after.subsec_nanos() > 0));
    let mut response = reply::gateway(status);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    response
}

/// What Keycloak says with `invalid_grant` on each operation.
fn invalid_grant_description(operation: Operation) -> &'static str {
    match operation {
        // An account disabled by an administrator: a 400, unlike a wrong
        // password's 401.
        Operation::Login => "Account disabled",
        Operation::ExchangeCode => "Code not valid",
        _ => "Session not active",
    }
}

// What nginx sends; load balancers' pages look much the same.
const BAD_GATEWAY_PAGE: &str = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n\
<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n\
</body>\r\n</html>\r\n";

/// Pending faults per operation, first in first out. A fault injected `n`
/// times is one entry with a count, so a huge `times` costs no memory.
/// Behind the queue, an operation may have a steady rate of faults.
pub(crate) struct FaultQueues {
    queues: [VecDeque<(Fault, u32)>; Operation::ALL.len()],
    steady: [Option<SteadyFaults>; Operation::ALL.len()],
}

/// One request in `one_in` fails, with `faults` in turn: counted by the
/// sandbox itself, so the rate holds however the test's tasks are scheduled.
struct SteadyFaults {
    one_in: u64,
    faults: Vec<Fault>,
    seen: u64,
}

impl SteadyFaults {
    fn next(&mut self) -> Option<Fault> {
        self.seen += 1;
        if !self.seen.is_multiple_of(self.one_in) {
            return None;
        }
        let played = self.seen / self.one_in - 1;
        let index = usize::try_from(played % self.faults.len() as u64).unwrap_or_default();
        self.faults.get(index).cloned()
    }
}

impl Default for FaultQueues {
    fn default() -> Self {
        FaultQueues {
            queues: std::array::from_fn(|_| VecDeque::new()),
            steady: std::array::from_fn(|_| None),
        }
    }
}

impl FaultQueues {
    pub(crate) fn push(&mut self, operation: Operation, fault: Fault, times: u32) {
        if times > 0 {
            self.queues[operation.index()].push_back((fault, times));
        }
    }

    /// From now on one request in `one_in` fails with `faults` in turn;
    /// `one_in == 0` or no faults ends the steady rate.
    pub(crate) fn set_steady(&mut self, operation: Operation, one_in: u32, faults: Vec<Fault>) {
        self.steady[operation.index()] = (one_in > 0 && !faults.is_empty()).then(|| SteadyFaults {
            one_in: u64::from(one_in),
            faults,
            seen: 0,
        });
    }

    /// The fault the next request to `operation` meets, if any: a queued one
    /// first. Every request counts towards the steady rate.
    pub(crate) fn pop(&mut self, operation: Operation) -> Option<Fault> {
        let steady = self.steady[operation.index()]
            .as_mut()
            .and_then(SteadyFaults::next);
        let queue = &mut self.queues[operation.index()];
        let Some((fault, left)) = queue.front_mut() else {
            return steady;
        };
        *left -= 1;
        if *left == 0 {
            queue.pop_front().map(|(fault, _)| fault)
        } else {
            Some(fault.clone())
        }
    }

    /// How many faulted requests are still to come for the operation from
    /// its queue (a steady rate is not counted).
    pub(crate) fn pending(&self, operation: Operation) -> u64 {
        self.queues[operation.index()]
            .iter()
            .map(|(_, times)| u64::from(*times))
            .sum()
    }

    pub(crate) fn clear(&mut self) {
        self.queues.iter_mut().for_each(VecDeque::clear);
        self.steady.iter_mut().for_each(|steady| *steady = None);
    }
}
