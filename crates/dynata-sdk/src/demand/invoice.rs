//! Invoices: PDF bytes from the Demand API, checked to be a PDF.

use std::future::{Future, poll_fn};

use dynata_sample_api::{ByteStream, ResponseValue};
use reqwest::header::{CONTENT_TYPE, HeaderMap};

use super::SampleResult;
use crate::error::server_text;
use crate::response::{request_id, retry_after};
use crate::sample::refusal_in;
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
    /// The answer must be a whole PDF: `%PDF-` in its first kilobyte and
    /// `%%EOF` in its last (a document a proxy cut short is
    /// [`Error::Decode`]; a dropped connection is retried), labelled
    /// `application/pdf`, `application/octet-stream` or not at all. Dynata's
    /// error envelope, however it is labelled, is its refusal:
    /// [`Error::Rejected`] with its `errors[]`, whatever the status (a `429`
    /// is [`Error::RateLimited`], a `408` or `504` [`Error::Timeout`], as for
    /// every call). Anything else is
    /// [`Error::Decode`]: a body that is not a PDF is never handed back as
    /// one, for a caller to save over a good invoice.
    pub async fn sample_pdf<F, Fut>(&self, call: F) -> Result<Vec<u8>, Error>
    where
        F: Fn(dynata_sample_api::Client) -> Fut,
        Fut: Future<Output = SampleResult<ByteStream>>,
    {
        let (response, token) = self.call_sample(None, call).await?;
        pdf_in(response)
            .await
            .map_err(|error| error.without_secrets(&[token.secret_value()]))
    }
}

/// The PDF an answer holds, or why it holds none (see [`Client::sample_pdf`]).
async fn pdf_in(response: ResponseValue<ByteStream>) -> Result<Vec<u8>, Error> {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = read_all(response.into_inner())
        .await
        .map_err(|error| match error {
            Error::Decode { what, .. } => {
                Error::undecodable_answer(status, what, request_id(&headers))
            }
            other => other,
        })?;
    let media_type = media_type(&headers);
    let labelled_as_pdf = matches!(
        media_type.as_deref(),
        None | Some("application/pdf" | "application/octet-stream")
    );
    if labelled_as_pdf && starts_as_pdf(&body) {
        return if ends_as_pdf(&body) {
            Ok(body)
        } else {
            Err(Error::undecodable_answer(
                status,
                "the PDF ends before its end-of-file marker (`%%EOF`): it was cut short",
                request_id(&headers),
            ))
        };
    }
    // Not a PDF: Dynata's envelope, however it is labelled, is its
    // refusal; anything else is an answer that cannot be understood.
    if let Some(errors) = refusal_in(&body, true) {
        return Err(Error::refused(
            status,
            errors,
            request_id(&headers),
            retry_after(&headers),
        ));
    }
    // The type is the server's text, quoted only if it is safe to.
    let got = match media_type.as_deref().map(server_text) {
        None => "an unlabelled body".to_string(),
        Some(Some(shown)) => format!("`{shown}`"),
        Some(None) => "another type of content".to_string(),
    };
    Err(Error::undecodable_answer(
        status,
        format!("expected a PDF or Dynata's error envelope, got {got}"),
        request_id(&headers),
    ))
}

/// PDF readers look for the header (`%PDF-`) in the first kilobyte ...
fn starts_as_pdf(body: &[u8]) -> bool {
    has_marker(&body[..body.len().min(1024)], b"%PDF-")
}

/// ... and for the end-of-file marker (`%%EOF`) in the last: a document
/// without it was cut short (a dropped connection, a proxy's limit).
fn ends_as_pdf(body: &[u8]) -> bool {
    has_marker(&body[body.len().saturating_sub(1024)..], b"%%EOF")
}

fn has_marker(part: &[u8], marker: &[u8]) -> bool {
    part.windows(marker.len()).any(|window| window == marker)
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
