//! The authentication step on its own, for a `reqwest-middleware` stack of
//! your own (feature `middleware`).

use std::fmt;
use std::sync::{Arc, PoisonError};

use reqwest::{Request, Response};
use reqwest_middleware::{Middleware, Next};

use crate::authenticated::{
    Replays, SentTo, Unauthorized, is_idempotent, remove_echoed_token_from,
};
use crate::error::fails_the_same_again;
use crate::retry::Failure;
use crate::{Client, Error};

/// Does for every request what [`Client::send`] does: adds
/// `Authorization: Bearer <token>` (sensitive) for the environment's origin
/// only, renews the token once after a `401` and sends the request again, and
/// retries idempotent requests after transient failures. Unlike `send`, it
/// hands back a last `401` as the response it is, since middleware is
/// transparent, and an error of a middleware below it (a circuit breaker of
/// yours) as it came, neither retried nor wrapped. A network failure that
/// ends the call (its retries spent, or a `POST`'s) is handed back as
/// reqwest's own error too ([`reqwest_middleware::Error::Reqwest`]), so that
/// a retry or metrics layer above reads `is_timeout()` and `is_connect()`.
/// Every other failure is [`reqwest_middleware::Error::Middleware`] holding
/// an [`Error`]; a request for another origin fails with [`Error::InvalidRequest`].
/// As with `send`, a header of an answer that quotes the access token the
/// request was sent with (a gateway echoing it) is removed.
///
/// The HTTP client under the stack is yours, with its proxy settings:
/// `reqwest::Client::new()` reads `HTTP_PROXY`. For a plain `http`
/// environment (a sandbox on loopback) build it with
/// `reqwest::Client::builder().no_proxy()`, as the SDK's own client is
/// built, or the proxy sees every request's token in clear. Build it after
/// the [`Client`], or call [`crate::auth_api::ensure_crypto_provider`]
/// first: with the `rustls` feature, reqwest has no crypto provider until
/// one of them installs *ring*, and panics without one.
///
/// ```no_run
/// # fn demo(client: dynata_sdk::Client) {
/// let http = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
///     .with(dynata_sdk::AuthMiddleware::new(client))
///     .build();
/// # let _ = http;
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct AuthMiddleware {
    client: Client,
}

impl AuthMiddleware {
    /// Authenticates requests with `client`'s session.
    pub fn new(client: Client) -> Self {
        AuthMiddleware { client }
    }
}

#[async_trait::async_trait]
impl Middleware for AuthMiddleware {
    async fn handle(
        &self,
        request: Request,
        extensions: &mut http::Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        self.client
            .check_origin(&request)
            .map_err(reqwest_middleware::Error::middleware)?;
        let idempotent = is_idempotent(request.method());
        let requests = Replays::new(request);
        let replayable = requests.replayable();
        // Attempts take turns with the extensions; they never overlap.
        let extensions = tokio::sync::Mutex::new(extensions);
        let client = &self.client;
        // The error of the stack below, kept whole to hand back as it came
        // if it ends the call: a middleware's own (which ends it at once),
        // or reqwest's. The engine is told of it by an error whose source
        // is `Below`, so that the error that ends the call is known to be
        // that one by identity, not a renewal's that came after it (found
        // by review: the text of a renewal's timeout was the same).
        let passed_on = std::sync::Mutex::new(None::<(Arc<Below>, reqwest_middleware::Error)>);
        client
            .call_authenticated(idempotent && replayable, replayable, None, |token| {
                let (request, next, extensions) = (requests.next(), next.clone(), &extensions);
                let passed_on = &passed_on;
                async move {
                    let mut request = request?;
                    client
                        .attach_bearer(&mut request, &token)
                        .map_err(Failure::fatal)?;
                    let to = SentTo::of(&request);
                    let mut extensions = extensions.lock().await;
                    // The client below is the caller's: its redirects are
                    // seen only in a changed URL.
                    let sent = match next.run(request, &mut extensions).await {
                        Ok(response) => Ok(response),
                        Err(below) => {
                            let marker = Arc::new(Below(below.to_string()));
                            let told = Error::Transport {
                                message: below.to_string(),
                                source: Some(marker.clone()),
                            };
                            // A middleware's own error ends the call, and
                            // so does a redirect loop; a network failure
                            // may be retried.
                            let fatal = match &below {
                                reqwest_middleware::Error::Middleware(_) => true,
                                reqwest_middleware::Error::Reqwest(e) => fails_the_same_again(e),
                            };
                            *passed_on.lock().unwrap_or_else(PoisonError::into_inner) =
                                Some((marker, below));
                            if fatal {
                                return Err(Failure::fatal(told));
                            }
                            Err(told)
                        }
                    };
                    let mut answered = client
                        .classify(sent, &to, false, Unauthorized::IsAnAnswer)
                        .await;
                    remove_echoed_token_from(&mut answered, &token);
                    answered
                }
            })
            .await
            .map_err(|error| {
                let passed_on = passed_on
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .take();
                // Handed back only if it is what ended the call, not a
                // renewal's failure that came after it.
                let ended_it = |marker: &Arc<Below>| match &error {
                    Error::Transport {
                        source: Some(source),
                        ..
                    } => std::ptr::addr_eq(Arc::as_ptr(source), Arc::as_ptr(marker)),
                    _ => false,
                };
                match passed_on {
                    Some((marker, below)) if ended_it(&marker) => below,
                    _ => reqwest_middleware::Error::middleware(error),
                }
            })
    }
}

/// What the engine is told of a failure of the stack below (its text), as
/// the source of the error that stands for it.
#[derive(Debug)]
struct Below(String);

impl fmt::Display for Below {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Below {}
