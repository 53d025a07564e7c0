//! [`Envelope`]: what every `/sample/v1` answer has in common, so that code
//! above this crate (the SDK's error mapping and paging) can read `status`,
//! `meta` and `data` of any generated response type.
//!
//! OpenAPI 3.0 has no generics, so the spec declares one envelope schema per
//! answer and progenitor generates one struct per schema; the list below
//! implements the trait for each. A unit test compares it with the generated
//! file, so a new envelope in the spec cannot be forgotten here.

use crate::types;

/// A `/sample/v1` answer: `{data, meta?, status?}`.
pub trait Envelope {
    /// The type of `data`: one record, or a `Vec` of them for a list.
    type Data;

    /// `status`: `message` is `"success"` or `"fail"`, with `errors[]`.
    fn status(&self) -> Option<&types::ResponseStatus>;

    /// `meta`: paging information, present on lists.
    fn meta(&self) -> Option<&types::Meta>;

    /// `data`, by value.
    fn into_data(self) -> Self::Data;
}

macro_rules! envelopes {
    ($($envelope:ident => $data:ty,)*) => {
        $(
            impl Envelope for types::$envelope {
                type Data = $data;

                fn status(&self) -> Option<&types::ResponseStatus> {
                    self.status.as_ref()
                }

                fn meta(&self) -> Option<&types::Meta> {
                    self.meta.as_ref()
                }

                fn into_data(self) -> Self::Data {
                    self.data
                }
            }
        )*

        /// The names of the types above, for the test that compares them
        /// with the generated file.
        #[cfg(test)]
        const ENVELOPES: &[&str] = &[$(stringify!($envelope)),*];
    };
}

type JsonObject = serde_json::Map<String, serde_json::Value>;

envelopes! {
    AttributeListResponse => Vec<types::Attribute>,
    BuyResponse => Vec<types::BuyResult>,
    ClosedProjectResponse => types::ClosedProject,
    CompanyUserListResponse => Vec<types::CompanyUser>,
    CountryListResponse => Vec<types::Country>,
    DeleteTemplateResponse => Option<serde_json::Value>,
    DetailedLineItemReportResponse => types::DetailedLineItemReport,
    DetailedProjectReportResponse => types::DetailedProjectReport,
    EventListResponse => Vec<types::Event>,
    EventResponse => types::Event,
    FeasibilityResponse => Vec<types::FeasibilityItem>,
    LineItemListResponse => Vec<types::LineItemHeader>,
    LineItemResponse => types::LineItem,
    ProjectListResponse => Vec<types::ProjectHeader>,
    ProjectPermissionsResponse => types::ProjectPermissions,
    ProjectReportListResponse => Vec<types::ProjectReport>,
    ProjectReportResponse => types::ProjectReport,
    ProjectResponse => types::Project,
    QuotaCellResponse => types::ChangedQuotaCell,
    ReconcileResponse => Option<JsonObject>,
    RoleListResponse => Vec<types::Role>,
    SourceListResponse => Vec<types::SampleSourceGroup>,
    StudyMetadataResponse => types::StudyMetadata,
    SurveyEndLinksResponse => crate::SurveyEndLinks,
    SurveyTopicListResponse => Vec<types::SurveyTopic>,
    TeamListResponse => Vec<types::Team>,
    TemplateListResponse => Vec<types::Template>,
    TemplateResponse => types::Template,
    UserDetailsResponse => types::UserDetails,
    UserInfoResponse => types::UserInfo,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every generated type with the envelope's three fields, by name.
    fn generated_envelopes() -> Vec<String> {
        let source = include_str!("generated.rs");
        let types = &source[..source.find("pub mod builder").expect("a builder module")];
        let mut found = Vec::new();
        let mut rest = types;
        while let Some(start) = rest.find("pub struct ") {
            rest = &rest[start + "pub struct ".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            let body_end = rest.find("\n    }").unwrap_or(rest.len());
            let body = &rest[..body_end];
            let has = |field: &str| body.contains(&format!("pub {field}: "));
            if has("data") && has("meta") && has("status") && !body.contains("pub message: ") {
                found.push(name);
            }
        }
        found.sort();
        found
    }

    #[test]
    fn every_generated_envelope_implements_the_trait() {
        let mut listed: Vec<String> = ENVELOPES.iter().map(|s| s.to_string()).collect();
        listed.sort();
        assert_eq!(
            generated_envelopes(),
            listed,
            "add the new envelope type to the list in envelope.rs"
        );
    }

    #[test]
    fn an_envelope_reads_status_meta_and_data() {
        let envelope: types::ProjectListResponse = serde_json::from_value(serde_json::json!({
            "data": [],
            "meta": {"total": 3},
            "status": {"message": "fail", "errors": [{"code": "1", "message": "m"}]},
        }))
        .expect("decodes");
        assert_eq!(envelope.meta().and_then(|m| m.total), Some(3));
        let status = envelope.status().expect("a status");
        assert_eq!(status.message.as_deref(), Some("fail"));
        assert_eq!(status.errors.as_ref().map(Vec::len), Some(1));
        assert!(envelope.into_data().is_empty());
    }
}
