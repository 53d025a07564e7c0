//! The generated types (and the hand-written ones the spec's schemas are
//! replaced by) against the spec's component schemas: see
//! `dynata_tests::schema_drift` for what must agree. Open enums are compared
//! by their `x-extensible-enum` values, closed ones by their `enum` values.

use dynata_sample_api::types;
use dynata_tests::schema_drift::{
    assert_agrees, generated_schema, spec_document, spec_schemas, summarize,
};

fn spec() -> serde_json::Map<String, serde_json::Value> {
    spec_schemas("dynata-sample.yaml")
}

/// From one list of every type the spec's schemas become: `check_every_type`,
/// which checks each against the schema of the same name and returns the
/// names checked, and `decode_as`, which decodes a value as the type of a
/// schema named at run time.
macro_rules! every_type {
    ($($($segment:ident)::+,)*) => {
        fn check_every_type() -> Vec<String> {
            let spec = spec();
            let mut checked = Vec::new();
            $(
                let name = [$(stringify!($segment)),+].last().copied().unwrap_or_default();
                assert_agrees::<$($segment)::+>(&spec, name);
                checked.push(name.to_string());
            )*
            checked
        }

        fn decode_as(schema: &str, value: &serde_json::Value) -> Result<(), String> {
            $(
                let name = [$(stringify!($segment)),+].last().copied().unwrap_or_default();
                if schema == name {
                    return serde_json::from_value::<$($segment)::+>(value.clone())
                        .map(drop)
                        .map_err(|e| e.to_string());
                }
            )*
            Err(format!("no type is listed for schema {schema}"))
        }
    };
}

every_type!(
    dynata_sample_api::Timestamp,
    dynata_sample_api::Secret,
    dynata_sample_api::SurveyEndLinks,
    types::Meta,
    types::Links,
    types::ResponseStatus,
    types::ErrorInfo,
    types::ErrorResource,
    types::ApiError,
    types::ProjectState,
    types::LineItemState,
    types::FeasibilityStatus,
    types::DeliveryType,
    types::SecurityLevel,
    types::EventType,
    types::RepriceReason,
    types::AttributeType,
    types::AttributeState,
    types::TemplateState,
    types::QuotaCellStatus,
    types::TargetingOperator,
    types::ExclusionType,
    types::Device,
    types::TargetType,
    types::CostType,
    types::BillingType,
    types::QuotaCellAction,
    types::ProjectScope,
    types::UserInfo,
    types::UserApplication,
    types::UserDetails,
    types::UserCompany,
    types::UserTeam,
    types::CompanyUser,
    types::Team,
    types::Role,
    types::RoleAction,
    types::ProjectPermissions,
    types::CurrentUserPermissions,
    types::PermittedUser,
    types::PermittedTeam,
    types::UpsertPermissions,
    types::UserGrant,
    types::TeamGrant,
    types::Country,
    types::Language,
    types::Attribute,
    types::AttributeOption,
    types::AttributeCategory,
    types::CategoryLabel,
    types::SurveyTopic,
    types::SampleSourceGroup,
    types::SampleSource,
    types::SampleSourceCategory,
    types::StudyMetadata,
    types::StudyMetadataCategory,
    types::MetadataItem,
    types::ProjectHeader,
    types::Author,
    types::Billing,
    types::Project,
    types::ProjectCategory,
    types::Exclusions,
    types::ClosedProject,
    types::BuyResult,
    types::ProjectReport,
    types::LineItemReport,
    types::DetailedProjectReport,
    types::DetailedLineItemReport,
    types::DetailedStats,
    types::ProjectCost,
    types::LineItemCost,
    types::CostLine,
    types::QuotaGroupReport,
    types::QuotaCellReport,
    types::LineItemHeader,
    types::LineItem,
    types::UrlParameter,
    types::FieldSchedule,
    types::Target,
    types::LineItemSource,
    types::EndLinks,
    types::QuotaPlan,
    types::QuotaGroup,
    types::QuotaCell,
    types::TargetingAttribute,
    types::FeasibilityItem,
    types::Feasibility,
    types::ValueCount,
    types::FeasibleQuotaCell,
    types::Quote,
    types::QuoteLine,
    types::Event,
    types::EventResource,
    types::NumberChange,
    types::StateChange,
    types::EventActions,
    types::EventDetails,
    types::EventReason,
    types::Template,
    types::TemplateCriteria,
    types::CreateProject,
    types::CreateLineItem,
    types::UpdateLineItem,
    types::UpdateProjectLineItem,
    types::UpdateProject,
    types::BuyItem,
    types::BuyRequest,
    types::UserInfoResponse,
    types::UserDetailsResponse,
    types::CompanyUserListResponse,
    types::TeamListResponse,
    types::RoleListResponse,
    types::CountryListResponse,
    types::AttributeListResponse,
    types::SurveyTopicListResponse,
    types::SourceListResponse,
    types::StudyMetadataResponse,
    types::ProjectListResponse,
    types::ProjectResponse,
    types::ProjectReportResponse,
    types::ProjectReportListResponse,
    types::DetailedProjectReportResponse,
    types::LineItemListResponse,
    types::LineItemResponse,
    types::DetailedLineItemReportResponse,
    types::FeasibilityResponse,
    types::ProjectPermissionsResponse,
    types::SurveyEndLinksResponse,
    types::EventListResponse,
    types::EventResponse,
    types::TemplateListResponse,
    types::TemplateResponse,
    types::BuyResponse,
    types::ClosedProjectResponse,
    types::QuotaCellResponse,
    types::ChangedQuotaCell,
    types::ReconcileResponse,
    types::DeleteTemplateResponse,
);

#[test]
fn every_component_schema_agrees_with_its_type() {
    let mut checked = check_every_type();
    checked.sort();
    let mut in_spec: Vec<String> = spec().keys().cloned().collect();
    in_spec.sort();
    assert_eq!(
        in_spec, checked,
        "a component schema was added or removed: list its type in check_every_type"
    );
}

#[test]
fn the_summary_notices_a_changed_open_enum_or_array() {
    // Guards the checker on what the auth spec does not have: a value added
    // to an open enum, and an array whose items change type.
    let spec = spec();
    let mut edited = spec["LineItemState"].clone();
    edited["x-extensible-enum"]
        .as_array_mut()
        .expect("values")
        .push("ON_HOLD".into());
    assert_ne!(
        summarize(&generated_schema::<types::LineItemState>()),
        summarize(&edited)
    );
    let mut edited = spec["Project"].clone();
    edited["properties"]["notificationEmails"]["items"] = serde_json::json!({"type": "integer"});
    assert_ne!(
        summarize(&generated_schema::<types::Project>()),
        summarize(&edited)
    );
}

/// Every `examples` entry of a media type whose schema is a `$ref`, as
/// `(where, schema name, value)`.
fn examples(
    value: &serde_json::Value,
    at: &str,
    found: &mut Vec<(String, String, serde_json::Value)>,
) {
    match value {
        serde_json::Value::Object(map) => {
            let schema = map
                .get("schema")
                .and_then(|s| s.get("$ref"))
                .and_then(serde_json::Value::as_str)
                .and_then(|r| r.rsplit('/').next());
            if let (Some(schema), Some(serde_json::Value::Object(named))) =
                (schema, map.get("examples"))
            {
                for (name, example) in named {
                    found.push((
                        format!("{at}/{name}"),
                        schema.to_string(),
                        example["value"].clone(),
                    ));
                }
            }
            for (key, inner) in map {
                examples(inner, &format!("{at}/{key}"), found);
            }
        }
        serde_json::Value::Array(items) => {
            for (index, inner) in items.iter().enumerate() {
                examples(inner, &format!("{at}/{index}"), found);
            }
        }
        _ => {}
    }
}

#[test]
fn every_example_in_the_spec_decodes_as_its_schema() {
    let mut found = Vec::new();
    examples(&spec_document("dynata-sample.yaml"), "", &mut found);
    // The main flow: create (request and answer), feasibility (two), buy
    // (request and answer), launch, report, events, close, the invoice's
    // error, and the shared error.
    assert!(found.len() >= 12, "the walk found only {found:#?}");
    let failures: Vec<String> = found
        .iter()
        .filter_map(|(at, schema, value)| {
            decode_as(schema, value)
                .err()
                .map(|e| format!("{at} as {schema}: {e}"))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
