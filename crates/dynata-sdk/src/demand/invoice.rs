//! Invoices: PDF bytes from the Demand API, checked to be a PDF.

use std::future::{Future, poll_fn};

use dynata_sample_api::{ByteStream, ResponseValue, types};
use reqwest::header::{CONTENT_TYPE, HeaderMap};

use super::{SampleResult, details};
use crate::error::server_text;
use crate::response::request_id;
use crate::{Client, Error};

/// The largest invoice the client reads; the generated client's own cap
/// ([`dynata_sample_api::MAX_RESPONSE_BYTES`]) applies first.
const MAX_PDF_BYTES: usize = dynata_sample_api::MAX_RESPONSE_BYTES;

impl Client {
    /// A closed project's invoice (`get_invoice_pdf`): the PDF's bytes.
    ///
    /// Errors as [`Client::sample_pdf`].
    pub async fn invoice_pdf(&self, ext_project_id: &str) -> Result<Vec<u8>, Error> {
        self.sample_pdf(|api| {
            let ext_project_id = ext_project_id.to_string();
            async move {
                api.get_invoice_pdf()
                    .ext_project_id(ext_project_id)
                    .send()
                    .await
            }
        })
        .await
    }

    /// Calls an operation that answers a PDF (`get_invoice_pdf`,
    /// `get_invoices_summary_pdf`) and returns its bytes, with the `401`
    /// renewal and retries of [`Client::sample`].
    ///
    /// The answer must say `Content-Type: application/pdf` (or be
    /// `application/octet-stream`, or unlabelled, and start as a PDF does,
    /// with `%PDF-`). A JSON answer is Dynata's error envelope:
    /// [`Error::Rejected`] with its `errors[]`, whatever the status. Anything
    /// else is [`Error::Decode`].
    pub async fn sample_pdf<F, Fut>(&self, call: F) -> Result<Vec<u8>, Error>
    where
        F: Fn(dynata_sample_api::Client) -> Fut,
        Fut: Future<Output = SampleResult<ByteStream>>,
    {
        let response: ResponseValue<ByteStream> = self.call_sample(call).await?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = read_all(response.into_inner()).await?;
        let media_type = media_type(&headers);
        let is_pdf = body.starts_with(b"%PDF-");
        match media_type.as_deref() {
            Some("application/pdf") => Ok(body),
            None | Some("application/octet-stream") if is_pdf => Ok(body),
            Some(json) if json == "application/json" || json.ends_with("+json") => {
                Err(rejected_json(status, &headers, &body))
            }
            // The type is the server's text, quoted only if it is safe to.
            other => Err(Error::decode(format!(
                "expected a PDF, got {}",
                match other.map(server_text) {
                    None => "an unlabelled body".to_string(),
                    Some(Some(shown)) => format!("`{shown}`"),
                    Some(None) => "another type of content".to_string(),
                }
            ))),
        }
    }
}

/// A JSON body where a PDF was expected: Dynata's error envelope, or else
/// an answer that cannot be understood.
fn rejected_json(status: u16, headers: &HeaderMap, body: &[u8]) -> Error {
    match serde_json::from_slice::<types::ApiError>(body) {
        Ok(types::ApiError {
            status: Some(envelope_status),
            ..
        }) => Error::Rejected {
            status,
            errors: details(&envelope_status),
            request_id: request_id(headers),
        },
        _ => Error::decode("expected a PDF, got JSON that is not Dynata's error envelope"),
    }
}

/// `Content-Type` without parameters, in lower case.
fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(CONTENT_TYPE)?.to_str().ok()?;
    let essence = value.split(';').next()?.trim().to_ascii_lowercase();
    (!essence.is_empty()).then_some(essence)
}

async fn read_all(stream: ByteStream) -> Result<Vec<u8>, Error> {
    let mut stream = stream.into_inner();
    let mut body = Vec::new();
    while let Some(chunk) = poll_fn(|cx| stream.as_mut().poll_next(cx)).await {
        let chunk = chunk.map_err(Error::transport)?;
        if body.len() + chunk.len() > MAX_PDF_BYTES {
            return Err(Error::decode(format!(
                "the PDF is over {MAX_PDF_BYTES} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
