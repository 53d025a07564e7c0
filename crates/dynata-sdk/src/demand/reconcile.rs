//! The reconciliation upload, written by hand: progenitor 0.15 cannot
//! generate its `multipart/form-data` body, so the spec marks it
//! `x-codegen-skip`. The body is built here (a few lines, where reqwest's
//! `multipart` feature would add crates for MIME guessing the SDK does not
//! need).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

use reqwest::Method;
use reqwest::header::{ACCEPT, CONTENT_TYPE};

use crate::{Client, Error};

/// The media type of an `.xlsx` spreadsheet, which Dynata expects.
const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

impl Client {
    /// `POST /sample/v1/projects/{ext_project_id}/reconcile`: uploads a
    /// reconciliation spreadsheet (`.xlsx`) as `multipart/form-data`, the
    /// file in part `file` (named `file_name`) and `message` in part
    /// `message`, empty for `None` (Dynata requires the part). Returns the
    /// envelope's `data`.
    ///
    /// Sent through [`Client::send`]: a `401` renews the token and sends it
    /// once more; as a `POST` it is never retried after a transient failure.
    /// Errors as [`Client::get`]. A `file_name` with a quote, a backslash or
    /// a control character is refused with [`Error::InvalidRequest`] before anything
    /// is sent.
    pub async fn reconcile_project(
        &self,
        ext_project_id: &str,
        file_name: &str,
        file: impl Into<Vec<u8>>,
        message: Option<&str>,
    ) -> Result<serde_json::Map<String, serde_json::Value>, Error> {
        if file_name.is_empty()
            || file_name
                .chars()
                .any(|c| c.is_control() || c == '"' || c == '\\')
        {
            return Err(Error::invalid_request(
                "the file name must be non-empty, without quotes, backslashes or control characters",
            ));
        }
        // As the generated operations build their URLs: the id escaped as
        // one path segment, and refused if it is empty, `.` or `..`.
        let project = dynata_sample_api::path_segment(ext_project_id)
            .map_err(|e| Error::invalid_request(e.to_string()))?;
        let url = format!("{}/sample/v1/projects/{project}/reconcile", self.base_url());
        let file = file.into();
        let boundary = boundary_for(&file, message.unwrap_or_default());
        let body = multipart(&boundary, file_name, &file, message.unwrap_or_default());
        let request = self
            .http
            .request(Method::POST, url)
            .header(ACCEPT, "application/json")
            .header(
                CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body);
        // `data: null`, or none at all (a Go server's nil map), is an empty
        // record: the upload was accepted, and an error here would have the
        // caller upload it again.
        let page = self
            .send_enveloped::<Option<serde_json::Map<String, serde_json::Value>>>(request)
            .await?;
        Ok(page.data.unwrap_or_default())
    }
}

/// A boundary that occurs in neither part (RFC 2046 §5.1.1).
fn boundary_for(file: &[u8], message: &str) -> String {
    loop {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u8(0);
        let boundary = format!("dynata-sdk-{:016x}", hasher.finish());
        let occurs = |haystack: &[u8]| {
            haystack
                .windows(boundary.len())
                .any(|window| window == boundary.as_bytes())
        };
        if !occurs(file) && !occurs(message.as_bytes()) {
            return boundary;
        }
    }
}

/// The `multipart/form-data` body (RFC 7578): `file`, then `message`.
fn multipart(boundary: &str, file_name: &str, file: &[u8], message: &str) -> Vec<u8> {
    let mut body = Vec::with_capacity(file.len() + 512);
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\nContent-Type: {XLSX}\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(file);
    body.extend_from_slice(
        format!(
            "\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"message\"\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{message}"
        )
        .as_bytes(),
    );
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_boundary_never_occurs_in_the_parts() {
        let boundary = boundary_for(b"dynata-sdk-", "a note");
        assert!(boundary.starts_with("dynata-sdk-") && boundary.len() == 27);
        let body = multipart(&boundary, "r.xlsx", b"PK\x03\x04", "fix");
        let text = String::from_utf8_lossy(&body);
        assert_eq!(text.matches(&format!("--{boundary}")).count(), 3);
        assert!(text.ends_with(&format!("--{boundary}--\r\n")));
    }
}
