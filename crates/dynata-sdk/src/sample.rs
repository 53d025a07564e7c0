//! Authenticated calls to the rest of Dynata's API (`/sample/v1/...`): the
//! bearer token attached as a sensitive header, one retry after a `401`, and
//! the `/sample/v1` response envelope decoded into typed values and errors.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderValue};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::error::is_transient_status;
use crate::transport::{request_id, retry_after, summarize};
use crate::{AccessToken, Client, Error};

/// The largest `/sample/v1` response body [`Client::get`] reads.
pub const MAX_ENVELOPE_BYTES: usize = 16 * 1024 * 1024;

impl Client {
    /// A request to `path`, relative to the environment's base URL (for
    /// example `"/sample/v1/projects"`), with `Accept: application/json`.
    /// Send it with [`Client::send`], which adds the token.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let url = format!("{}/{}", self.base_url(), path.trim_start_matches('/'));
        self.http
            .request(method, url)
            .header(ACCEPT, "application/json")
    }

    /// Sends `request` with `Authorization: Bearer <token>` (marked
    /// sensitive, so it never shows in logs).
    ///
    /// - On a `401` the token is invalidated (only if it is still the current
    ///   one, so a burst of `401`s causes one refresh) and the request is sent
    ///   once more with a new token. A second `401`, or a `401` for a request
    ///   whose body cannot be replayed (a stream), is [`Error::Api`] with
    ///   status 401.
    /// - Idempotent requests (`GET`, `HEAD`, `PUT`, `DELETE`, `OPTIONS`) with
    ///   a replayable body are retried after transient failures (connection
    ///   errors, timeouts, `408`, `429`, `5xx`) under the client's
    ///   [`crate::RetryPolicy`], honouring `Retry-After`. A `POST` is never
    ///   retried: it may have had its effect.
    ///
    /// Any other status is returned as it came, for the caller to read.
    pub async fn send(&self, request: RequestBuilder) -> Result<Response, Error> {
        let mut request = request
            .build()
            .map_err(|e| Error::config(format!("invalid request: {e}")))?;
        let idempotent = matches!(
            *request.method(),
            Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS
        );
        let policy = self.retry_policy();
        let (mut attempt, mut waited, mut renewed_after_401) = (1u32, Duration::ZERO, false);
        loop {
            let replay = request.try_clone();
            let token = self.access_token().await?;
            let (last, retry_after) = match self.send_with(request, &token).await {
                Ok(response) if response.status() == StatusCode::UNAUTHORIZED => {
                    self.invalidate(&token);
                    match replay {
                        Some(replay) if !renewed_after_401 => {
                            tracing::info!("401 from Dynata; retrying once with a new token");
                            renewed_after_401 = true;
                            request = replay;
                            continue;
                        }
                        _ => return Err(unauthorized(response).await),
                    }
                }
                Ok(response) if is_transient_status(response.status().as_u16()) => {
                    let retry_after = retry_after(response.headers());
                    (Ok(response), retry_after)
                }
                Ok(response) => return Ok(response),
                Err(error) if error.is_transient() => (Err(error), None),
                Err(error) => return Err(error),
            };
            let wait = policy.next_wait(attempt, waited, retry_after);
            let (Some(replay), true, Some(wait)) = (replay, idempotent, wait) else {
                return last;
            };
            tracing::warn!(
                attempt,
                wait_ms = wait.as_millis() as u64,
                "transient failure of an authenticated call; retrying"
            );
            self.clock().sleep(wait).await;
            (request, attempt, waited) = (replay, attempt + 1, waited.saturating_add(wait));
        }
    }

    /// Adds `Authorization: Bearer <token>` (sensitive) to `request`, logging
    /// in or refreshing first if needed. This is the hook for other clients:
    /// a progenitor-generated client of another Dynata spec can call it from
    /// `with_pre_hook_async`, or from `ClientHooks::pre`, with a `Client` as
    /// its inner value.
    pub async fn authorize(&self, request: &mut reqwest::Request) -> Result<AccessToken, Error> {
        let token = self.access_token().await?;
        request.headers_mut().insert(AUTHORIZATION, bearer(&token)?);
        Ok(token)
    }

    /// `GET path` and decode the `/sample/v1` envelope: `data` into `T`, the
    /// paging links into [`Page::links`]. A `status.message` of `"fail"`, or
    /// an error status, is [`Error::Rejected`] with Dynata's `errors[]`; a
    /// body that is not the envelope (a gateway's HTML page) is
    /// [`Error::Api`]. Every error keeps the `x-request-id` header.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<Page<T>, Error> {
        let response = self.send(self.request(Method::GET, path)).await?;
        decode_envelope(response).await
    }

    /// `GET /sample/v1/users/info`: the logged-in user. The smallest
    /// authenticated call, and a good "do my credentials work?" check.
    pub async fn users_info(&self) -> Result<UserInfo, Error> {
        Ok(self.get::<UserInfo>("/sample/v1/users/info").await?.data)
    }

    async fn send_with(
        &self,
        mut request: reqwest::Request,
        token: &AccessToken,
    ) -> Result<Response, Error> {
        request.headers_mut().insert(AUTHORIZATION, bearer(token)?);
        self.http.execute(request).await.map_err(Error::transport)
    }
}

fn bearer(token: &AccessToken) -> Result<HeaderValue, Error> {
    let mut value = HeaderValue::try_from(format!("Bearer {}", token.secret()))
        .map_err(|_| Error::decode("the access token has characters a header cannot carry"))?;
    value.set_sensitive(true);
    Ok(value)
}

async fn unauthorized(response: Response) -> Error {
    let request_id = request_id(response.headers());
    let body = read_at_most(response, 64 * 1024).await.unwrap_or_default();
    Error::Api {
        status: 401,
        summary: summarize(&body),
        request_id,
    }
}

/// One value of a `/sample/v1` response, with what came around it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Page<T> {
    /// The envelope's `data`.
    pub data: T,
    /// `meta.links`, for paging.
    pub links: Links,
    /// The `x-request-id` response header.
    pub request_id: Option<String>,
}

/// `meta.links` of a `/sample/v1` response: URLs of other pages.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct Links {
    /// The first page.
    pub first: Option<String>,
    /// The last page.
    pub last: Option<String>,
    /// The next page, if there is one.
    pub next: Option<String>,
    /// The previous page, if there is one.
    pub prev: Option<String>,
    /// This page.
    #[serde(rename = "self")]
    pub this: Option<String>,
}

/// One entry of a `/sample/v1` envelope's `status.errors`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApiErrorDetail {
    /// Dynata's error code (a number or a string on the wire).
    pub code: Option<String>,
    /// What went wrong.
    pub message: Option<String>,
    /// What it concerns.
    pub resource: Option<String>,
}

/// The logged-in user, from `GET /sample/v1/users/info`.
#[derive(Debug, Clone, Deserialize)]
#[non_exhaustive]
pub struct UserInfo {
    /// The user's name.
    pub username: Option<String>,
    /// Every other field, as Dynata sent it.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_json::Value>,
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    data: serde_json::Value,
    #[serde(default)]
    status: Option<Status>,
    #[serde(default)]
    meta: Option<Meta>,
}

#[derive(Deserialize)]
struct Status {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    errors: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct Meta {
    #[serde(default)]
    links: Links,
}

async fn decode_envelope<T: DeserializeOwned>(response: Response) -> Result<Page<T>, Error> {
    let status = response.status().as_u16();
    let request_id = request_id(response.headers());
    let body = read_at_most(response, MAX_ENVELOPE_BYTES).await?;
    let Ok(envelope) = serde_json::from_slice::<Envelope>(&body) else {
        return Err(Error::Api {
            status,
            summary: summarize(&body),
            request_id,
        });
    };
    let failed = envelope.status.as_ref().and_then(|s| s.message.as_deref()) == Some("fail");
    if failed || !(200..300).contains(&status) {
        let errors = envelope.status.map(|s| s.errors).unwrap_or_default();
        return Err(Error::Rejected {
            status,
            errors: errors.iter().map(error_detail).collect(),
            request_id,
        });
    }
    let data = serde_json::from_value(envelope.data)
        .map_err(|e| Error::decode(format!("`data` does not have the expected shape: {e}")))?;
    Ok(Page {
        data,
        links: envelope.meta.map(|m| m.links).unwrap_or_default(),
        request_id,
    })
}

fn error_detail(value: &serde_json::Value) -> ApiErrorDetail {
    let field = |name: &str| match value.get(name)? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Null => None,
        other => Some(other.to_string()),
    };
    ApiErrorDetail {
        code: field("code"),
        message: field("message"),
        resource: field("resource"),
    }
}

/// The body, or an error if it is larger than `limit`: a misbehaving server
/// must not exhaust the caller's memory.
async fn read_at_most(mut response: Response, limit: usize) -> Result<Vec<u8>, Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(Error::transport)? {
        if body.len() + chunk.len() > limit {
            return Err(Error::decode(format!(
                "the response body is over {limit} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
