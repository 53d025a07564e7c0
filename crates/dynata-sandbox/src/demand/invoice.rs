//! Invoices: a closed project's invoice, and a summary of invoiced
//! projects, each as a small one-page PDF written here (`application/pdf`;
//! errors stay JSON). Fetching a closed project's invoice issues it: the
//! project becomes `INVOICED`.

use std::fmt::Write as _;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::Call;
use super::envelope::{Answer, ApiError};
use super::fieldwork;
use super::listing::ListQuery;
use super::pricing::{CURRENCY, cents};
use super::projects::{CLOSED, INVOICED, Project};

pub(crate) fn project_invoice(call: &mut Call<'_>) -> Answer {
    let now = call.now;
    let id = call.param("extProjectId").to_owned();
    let project = call.demand.project_mut(&call.username, &id)?;
    if !matches!(project.state, CLOSED | INVOICED) {
        return Err(ApiError::invalid_state(
            "project",
            &id,
            format!(
                "no invoice for a project that is {}: close it first",
                project.state
            ),
        ));
    }
    if project.state == CLOSED {
        project.state = INVOICED;
        project.state_changed_at = now;
        project.updated_at = now;
    }
    let project = call.demand.project(&call.username, &id)?;
    let mut lines = vec![format!("Invoice for project {}", project.id)];
    lines.extend(invoice_lines(project, call));
    Ok(pdf_response(&lines))
}

fn invoice_lines(project: &Project, call: &Call<'_>) -> Vec<String> {
    let mut lines = Vec::new();
    let mut total = 0.0;
    for item in &project.line_items {
        let completes = fieldwork::counters(item, call.now).completes;
        let cpi = fieldwork::cost_per_interview(item);
        let amount = if item.purchase.is_some() {
            cents(cpi * completes as f64)
        } else {
            0.0
        };
        total += amount;
        lines.push(format!(
            "{}: {completes} completes x {cpi:.2} = {amount:.2} {CURRENCY}",
            item.id
        ));
    }
    lines.push(format!("Total: {:.2} {CURRENCY}", cents(total)));
    lines
}

pub(crate) fn summary(call: &mut Call<'_>) -> Answer {
    // The spec gives the summary paging parameters; a summary is one
    // document, so they are only checked.
    ListQuery::parse(&call.query, &[])?;
    let wanted: Option<Vec<&str>> = call
        .query
        .iter()
        .find(|(name, _)| name == "extProjectId")
        .map(|(_, ids)| ids.split(',').collect());
    let mut lines = vec!["Invoice summary".to_owned()];
    for project in &call.demand.account(&call.username).projects {
        if project.state != INVOICED
            || wanted
                .as_ref()
                .is_some_and(|ids| !ids.contains(&project.id.as_str()))
        {
            continue;
        }
        lines.push(String::new());
        lines.push(format!("Project {}", project.id));
        lines.extend(invoice_lines(project, call));
    }
    Ok(pdf_response(&lines))
}

fn pdf_response(lines: &[String]) -> Response {
    let mut response = (StatusCode::OK, pdf(lines)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(crate::reply::PDF_MEDIA_TYPE),
    );
    response
}

/// A one-page PDF 1.4 document showing `lines` in Helvetica, with a
/// correct cross-reference table (readers check the byte offsets).
pub(crate) fn pdf(lines: &[String]) -> Vec<u8> {
    let mut text = String::from("BT /F1 12 Tf 50 800 Td 16 TL");
    for line in lines.iter().take(48) {
        let _ = write!(text, " ({}) Tj T*", escape(line));
    }
    text.push_str(" ET");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] \
         /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>"
            .to_owned(),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_owned(),
        format!("<< /Length {} >>\nstream\n{text}\nendstream", text.len()),
    ];
    let mut out = String::from("%PDF-1.4\n");
    let mut offsets = Vec::new();
    for (index, object) in objects.iter().enumerate() {
        offsets.push(out.len());
        let _ = write!(out, "{} 0 obj\n{object}\nendobj\n", index + 1);
    }
    let xref = out.len();
    let _ = write!(out, "xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1);
    for offset in offsets {
        let _ = writeln!(out, "{offset:010} 00000 n ");
    }
    let _ = write!(
        out,
        "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
        objects.len() + 1
    );
    out.into_bytes()
}

/// PDF string escapes; what Helvetica's standard encoding lacks becomes `?`.
fn escape(line: &str) -> String {
    line.chars()
        .map(|c| match c {
            '(' | ')' | '\\' => format!("\\{c}"),
            ' '..='~' => c.to_string(),
            _ => "?".to_owned(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::pdf;

    /// Every offset in the cross-reference table points at its object, and
    /// `startxref` at the table: what a PDF reader checks first.
    #[test]
    fn the_cross_reference_table_is_exact() {
        let bytes = pdf(&["Invoice (test) \\ ünïcode".to_owned()]);
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.starts_with("%PDF-1.4\n") && text.ends_with("%%EOF\n"));
        let start: usize = text.lines().rev().nth(1).unwrap().parse().unwrap();
        assert!(text[start..].starts_with("xref\n0 6\n"));
        let entries: Vec<&str> = text[start..].lines().skip(3).take(5).collect();
        for (index, entry) in entries.iter().enumerate() {
            assert_eq!(entry.len(), 19, "{entry:?}"); // plus the newline: 20 bytes
            let offset: usize = entry[..10].parse().unwrap();
            assert!(text[offset..].starts_with(&format!("{} 0 obj\n", index + 1)));
        }
        assert!(text.contains("(Invoice \\(test\\) \\\\ ?n?code) Tj"));
        let length: usize = text
            .split("/Length ")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let stream = text.split_once(">>\nstream\n").unwrap().1;
        assert_eq!(&stream[length..length + 10], "\nendstream");
    }
}
