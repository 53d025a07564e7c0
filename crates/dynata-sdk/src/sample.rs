//! The `/sample/v1` response envelope, decoded into typed values and errors.

use std::collections::BTreeMap;

use reqwest::{Method, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::error::server_text;
use crate::response::{describe_json_error, read_at_most, request_id, retry_after, summarize};
use crate::retry::Failure;
use crate::{Client, Error};

/// The largest `/sample/v1` response body [`Client::get`] reads.
pub const MAX_ENVELOPE_BYTES: usize = 16 * 1024 * 1024;

impl Client {
    /// `GET path` (as for [`Client::request`]: relative to the base URL, or
    /// an absolute URL on its origin such as a [`Links::next`]) and decode
    /// the `/sample/v1` envelope: `data` into `T`, the paging links into
    /// [`Page::links`]. A `status.message` of `"fail"`, or
    /// an error status with Dynata's envelope, is [`Error::Rejected`] with
    /// its `errors[]`, unless its status says more: `429` is
    /// [`Error::RateLimited`], `408` and `504` [`Error::Timeout`], envelope
    /// or not. An error status whose body is not the envelope (a
    /// gateway's HTML page or `{"message": …}`) is an error by its status
    /// ([`Error::Api`], [`Error::RateLimited`] with its `Retry-After`,
    /// [`Error::Timeout`]); a `2xx` one is [`Error::Decode`]. Every error
    /// Dynata answered keeps the `x-request-id` header. A `data: null`
    /// (Dynata's Go server's empty list) is an empty list where `T` asks for
    /// a list (a sequence, or a newtype around one), and otherwise read as
    /// `serde_json` reads `null`.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<Page<T>, Error> {
        self.send_enveloped(self.request(Method::GET, path)).await
    }

    /// [`Client::send`], the answer decoded as [`Client::get`] decodes it.
    /// The body is read inside the retry engine: a connection that drops
    /// (or times out) mid-body is retried like one that never answered,
    /// and an error read from it quotes nothing of the token the request
    /// was sent with.
    pub(crate) async fn send_enveloped<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<Page<T>, Error> {
        self.send_then(request, |answered| async {
            let response = match answered {
                Ok(response) => response,
                Err(failure) => {
                    // A transient status: what its body says is the call's
                    // error if no retry is left.
                    let (mut failure, answer) = failure.take_answer();
                    if let Some(response) = answer
                        && let Err(error) = decode_envelope::<T>(response).await
                    {
                        failure.error = error;
                    }
                    return Err(failure);
                }
            };
            decode_envelope(response).await.map_err(Failure::of)
        })
        .await
    }

    /// `GET /sample/v1/users/info`: the logged-in user. The smallest
    /// authenticated call, and a good "do my credentials work?" check.
    pub async fn users_info(&self) -> Result<UserInfo, Error> {
        Ok(self.get::<UserInfo>("/sample/v1/users/info").await?.data)
    }
}

/// One value of a `/sample/v1` response, with what came around it.
///
/// Build one in your own tests with [`Page::new`], then set the fields.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Page<T> {
    /// The envelope's `data`.
    pub data: T,
    /// `meta.links`, for paging.
    pub links: Links,
    /// `meta.total`: how many records the whole list has, if the answer
    /// says (a whole number).
    pub total: Option<i64>,
    /// The `x-request-id` response header.
    pub request_id: Option<String>,
}

impl<T> Page<T> {
    /// A page holding `data`, with no links and no request id.
    pub fn new(data: T) -> Self {
        Page {
            data,
            links: Links::default(),
            total: None,
            request_id: None,
        }
    }
}

/// `meta.links` of a `/sample/v1` response: URLs of other pages.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct Links {
    /// The first page.
    pub first: Option<String>,
    /// The last page.
    pub last: Option<String>,
    /// The next page, if there is one (never empty). Dynata's links carry
    /// only `?offset=N`, not the request's filters or `limit`.
    pub next: Option<String>,
    /// The previous page, if there is one.
    pub prev: Option<String>,
    /// This page.
    #[serde(rename = "self")]
    pub this: Option<String>,
}

impl Links {
    /// An empty link (a Go server's string with no value) is none: following
    /// `""` would ask for the API's root.
    fn without_empty(self) -> Self {
        let link = |link: Option<String>| link.filter(|url| !url.is_empty());
        Links {
            first: link(self.first),
            last: link(self.last),
            next: link(self.next),
            prev: link(self.prev),
            this: link(self.this),
        }
    }
}

/// One entry of a `/sample/v1` envelope's `status.errors`. Its texts are
/// Dynata's, kept only when they cannot be an echo of the request (see
/// [`Error`]); build one in tests with `ApiErrorDetail::default()`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApiErrorDetail {
    /// Dynata's error code (a number or a string on the wire).
    pub code: Option<String>,
    /// What went wrong.
    pub message: Option<String>,
    /// What it concerns: its type and id ("project p1"), or whichever
    /// Dynata sent.
    pub resource: Option<String>,
}

/// The logged-in user, from `GET /sample/v1/users/info`. Build one in tests
/// with `UserInfo::default()`, then set the fields.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(from = "UserInfoWire")]
#[non_exhaustive]
pub struct UserInfo {
    /// The user's name: `userName` on the wire (Dynata's Swagger document),
    /// or `username` (what Dynata's Go client reads).
    pub username: Option<String>,
    /// Every other field, as Dynata sent it.
    pub other: BTreeMap<String, serde_json::Value>,
}

/// `/users/info` as sent: the sources disagree on the name's spelling, so
/// both are read (`userName` first).
#[derive(Deserialize)]
struct UserInfoWire {
    #[serde(rename = "userName", default)]
    user_name: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(flatten)]
    other: BTreeMap<String, serde_json::Value>,
}

impl From<UserInfoWire> for UserInfo {
    fn from(wire: UserInfoWire) -> Self {
        UserInfo {
            username: wire.user_name.or(wire.username),
            other: wire.other,
        }
    }
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    data: serde_json::Value,
    #[serde(default)]
    status: Option<Status>,
    #[serde(default)]
    meta: Option<Meta>,
    /// A gateway's error text, when the gateway answered and not the API.
    #[serde(default)]
    message: Option<String>,
}

// Every part is optional and may be `null`: the generated types accept that
// too, and a good answer must not fail here for a missing decoration.
#[derive(Deserialize)]
struct Status {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    errors: Option<Vec<serde_json::Value>>,
}

/// Dynata's `errors[]` if `body` is its envelope refusing the request: its
/// `status.message` is `"fail"`, or, for an `error_status`, it has a
/// `status` at all. Read as [`Client::get`] reads it (a code may be a
/// number or a string), for the typed calls' answers that the generated
/// types, stricter, could not decode.
#[cfg(feature = "demand")]
pub(crate) fn refusal_in(body: &[u8], error_status: bool) -> Option<Vec<ApiErrorDetail>> {
    #[derive(Deserialize)]
    struct StatusOnly {
        #[serde(default)]
        status: Option<Status>,
    }
    let status = serde_json::from_slice::<StatusOnly>(body).ok()?.status?;
    let failed = status.message.as_deref().is_some_and(is_failure_message);
    (failed || error_status).then(|| {
        let errors = status.errors.unwrap_or_default();
        errors.iter().map(ApiErrorDetail::from_json).collect()
    })
}

#[derive(Deserialize)]
struct Meta {
    #[serde(default)]
    links: Option<Links>,
    /// Read as any value, so that an odd one (a string, a fraction) costs
    /// the total, not the page.
    #[serde(default)]
    total: Option<serde_json::Value>,
}

async fn decode_envelope<T: DeserializeOwned>(response: Response) -> Result<Page<T>, Error> {
    let status = response.status().as_u16();
    let request_id = request_id(response.headers());
    let retry_after = retry_after(response.headers());
    let undecodable = |what: String, request_id: Option<String>| {
        Error::undecodable_answer(status, what, request_id)
    };
    let body = read_at_most(response, MAX_ENVELOPE_BYTES)
        .await
        .map_err(|error| match error {
            // An error status is read by its status whatever its size (a
            // gateway's page), as the generated clients read it.
            Error::Decode { what, .. } if status >= 400 => {
                Error::from_status(status, format!("({what})"), request_id.clone(), retry_after)
            }
            Error::Decode { what, .. } => undecodable(what, request_id.clone()),
            other => other,
        })?;
    // Only an object: serde would also read an array as the struct's fields
    // in order, and take a bare list's first element for `data`.
    let object = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    let envelope = object
        .then(|| serde_json::from_slice::<Envelope>(&body).ok())
        .flatten();
    let Some(envelope) = envelope else {
        // Not the envelope (a gateway's page): the status says what it means.
        return Err(match status {
            200..=299 => {
                let what = format!(
                    "the answer is not the /sample/v1 envelope: {}",
                    summarize(&body)
                );
                // A proxy's or captive portal's page is not Dynata's
                // answer: it says nothing of whether Dynata carried the
                // request out.
                if crate::response::looks_like_html(&body) {
                    Error::Decode {
                        what,
                        status: None,
                        request_id,
                    }
                } else {
                    undecodable(what, request_id)
                }
            }
            _ => Error::from_status(status, summarize(&body), request_id, retry_after),
        });
    };
    let success = (200..300).contains(&status);
    let Some(envelope_status) = envelope.status else {
        if success {
            return decoded(status, envelope.data, envelope.meta, request_id);
        }
        // A gateway's `{"message": …}`: not Dynata's refusal.
        return Err(gateway_error(
            status,
            envelope.message.as_deref(),
            request_id,
            retry_after,
        ));
    };
    let failed = envelope_status
        .message
        .as_deref()
        .is_some_and(is_failure_message);
    if failed || !success {
        let errors = envelope_status.errors.unwrap_or_default();
        return Err(Error::refused(
            status,
            errors.iter().map(ApiErrorDetail::from_json).collect(),
            request_id,
            retry_after,
        ));
    }
    decoded(status, envelope.data, envelope.meta, request_id)
}

/// A successful envelope's `data` as `T`, with its links.
fn decoded<T: DeserializeOwned>(
    status: u16,
    data: serde_json::Value,
    meta: Option<Meta>,
    request_id: Option<String>,
) -> Result<Page<T>, Error> {
    // Dynata's Go server sends an empty list as `null`: where `T` refuses
    // `null`, it is offered `NullAsEmptyList`, an empty list only where a
    // list is asked for (a record of default fields would take `[]`).
    let was_null = data.is_null();
    let read = serde_json::from_value(data).or_else(|error| {
        if was_null {
            T::deserialize(NullAsEmptyList).map_err(|_| error)
        } else {
            Err(error)
        }
    });
    let data = match read {
        Ok(data) => data,
        Err(error) => {
            return Err(Error::undecodable_answer(
                status,
                format!(
                    "`data` does not have the expected shape: {}",
                    describe_json_error(&error)
                ),
                request_id,
            ));
        }
    };
    let (links, total) = meta.map_or((None, None), |meta| (meta.links, meta.total));
    Ok(Page {
        data,
        total: total.as_ref().and_then(serde_json::Value::as_i64),
        links: links.map(Links::without_empty).unwrap_or_default(),
        request_id,
    })
}

/// A JSON `null`, read exactly as `serde_json` reads `null`, except where
/// a sequence is asked for (directly, or through a newtype around one):
/// there it is an empty one. Whatever else refuses `null` still does (a
/// record, even one with default fields; a map; a tuple; an untagged enum,
/// which asks for any value and so cannot be told to want a list).
struct NullAsEmptyList;

/// The methods of [`NullAsEmptyList`] that read it as `serde_json` reads
/// `null`.
macro_rules! read_as_null {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {$(
        fn $method<V: serde::de::Visitor<'de>>(
            self,
            $($arg: $ty,)*
            visitor: V,
        ) -> Result<V::Value, Self::Error> {
            serde_json::Value::Null.$method($($arg,)* visitor)
        }
    )*};
}

impl<'de> serde::Deserializer<'de> for NullAsEmptyList {
    type Error = serde_json::Error;

    fn deserialize_seq<V: serde::de::Visitor<'de>>(
        self,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_seq(serde::de::value::SeqDeserializer::new(
            std::iter::empty::<()>(),
        ))
    }

    /// A newtype around a list (`struct Projects(Vec<Project>)`) is a list.
    fn deserialize_newtype_struct<V: serde::de::Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        visitor.visit_newtype_struct(self)
    }

    read_as_null! {
        deserialize_any(); deserialize_bool(); deserialize_i8(); deserialize_i16();
        deserialize_i32(); deserialize_i64(); deserialize_i128(); deserialize_u8();
        deserialize_u16(); deserialize_u32(); deserialize_u64(); deserialize_u128();
        deserialize_f32(); deserialize_f64(); deserialize_char(); deserialize_str();
        deserialize_string(); deserialize_bytes(); deserialize_byte_buf(); deserialize_option();
        deserialize_unit();
        deserialize_unit_struct(name: &'static str);
        deserialize_tuple(len: usize);
        deserialize_tuple_struct(name: &'static str, len: usize);
        deserialize_map();
        deserialize_struct(name: &'static str, fields: &'static [&'static str]);
        deserialize_enum(name: &'static str, variants: &'static [&'static str]);
        deserialize_identifier(); deserialize_ignored_any();
    }
}

/// The error for a `4xx`/`5xx` whose JSON body is not Dynata's envelope
/// (no `status`: a gateway's `{"message": …}`): an error by its status, with
/// the gateway's message when it is safe to show.
pub(crate) fn gateway_error(
    status: u16,
    message: Option<&str>,
    request_id: Option<String>,
    retry_after: Option<std::time::Duration>,
) -> Error {
    let summary = message
        .and_then(server_text)
        .unwrap_or_else(|| "(a JSON body without Dynata's envelope)".into());
    Error::from_status(status, summary, request_id, retry_after)
}

/// Whether a `/sample/v1` envelope's `status.message` reports a failure:
/// Dynata answers some refusals with a `2xx` status and `"fail"` there (case
/// is ignored: Dynata's own clients disagree on it). [`Client::get`] and the
/// typed calls apply it for you; it is public for callers that read
/// envelopes themselves, after [`Client::send`].
pub fn is_failure_message(message: &str) -> bool {
    message.eq_ignore_ascii_case("fail")
}

impl ApiErrorDetail {
    /// One entry of an envelope's `status.errors` as Dynata sent it, each
    /// text kept only when it cannot be an echo of the request (a token
    /// quoted back by a proxy): for callers that read envelopes after
    /// [`Client::send`] and show the errors.
    pub fn from_json(value: &serde_json::Value) -> Self {
        // A string, or a number (Dynata's codes are either on the wire).
        let text = |value: &serde_json::Value| match value {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        };
        let field = |name: &str| text(value.get(name)?).and_then(|t| server_text(&t));
        // `{"type": …, "id": …}` as Dynata sends it; a bare string or number
        // as some of its sources do.
        let resource = match value.get("resource") {
            Some(serde_json::Value::Object(resource)) => {
                let part = |name: &str| resource.get(name).and_then(text);
                describe_resource(part("type").as_deref(), part("id").as_deref())
            }
            _ => field("resource"),
        };
        ApiErrorDetail {
            code: field("code"),
            message: field("message"),
            resource,
        }
    }
}

/// An error's `resource` as [`ApiErrorDetail::resource`] shows it: its type
/// and id ("project p1"), or whichever it has, if [`server_text`] keeps it.
pub(crate) fn describe_resource(kind: Option<&str>, id: Option<&str>) -> Option<String> {
    // The id is read as an id: a UUID is one long word, which `server_text`
    // withholds as a possible token, and with it which item it was.
    // But a refusal may quote what the request sent, and a request body
    // carries secrets of its own (`endLinks.securityKey1`, ...): an id is
    // shown only if no run of it between `-_.:` is longer than a word
    // `server_text` keeps (a UUID's longest is 12), as a random key's is.
    let shown_id = |id: &str| {
        crate::error::server_id(id, crate::error::MAX_RESOURCE_ID)
            .filter(|id| {
                id.split(['-', '_', '.', ':'])
                    .all(|run| run.len() <= crate::error::MAX_WORD)
            })
            .or_else(|| server_text(id))
    };
    match (kind, id) {
        (Some(kind), Some(id)) => Some(format!("{} {}", server_text(kind)?, shown_id(id)?)),
        (Some(only), None) => server_text(only),
        (None, Some(id)) => shown_id(id),
        (None, None) => None,
    }
}
