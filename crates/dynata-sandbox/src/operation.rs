//! The operations the sandbox serves, and the names the admin API uses for them.
//! Counters and fault queues are indexed by operation.

use std::fmt;

/// Declares the operations once: variant, admin name, method, path, doc.
/// Everything that lists or indexes operations is generated from this table,
/// so adding a route cannot leave a counter or a name behind.
macro_rules! operations {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal, $method:literal, $path:literal; )*) => {
        /// An operation of Dynata's API that the sandbox emulates.
        ///
        /// Used to read request counters ([`Sandbox::count`](crate::Sandbox::count))
        /// and to aim faults ([`Sandbox::inject`](crate::Sandbox::inject)).
        /// The Demand API's operations are named after the `operationId`s of
        /// `openapi/dynata-sample.yaml`, in camel case.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Operation {
            $( $(#[$doc])* $variant, )*
        }

        impl Operation {
            /// Every operation, in the order the admin API lists them.
            pub const ALL: [Operation; [$($name),*].len()] = [$(Operation::$variant),*];

            /// The operation's name in the admin API, such as `login`,
            /// `usersInfo` or `createProject`.
            pub fn name(self) -> &'static str {
                match self {
                    $( Operation::$variant => $name, )*
                }
            }

            /// The HTTP method and path the operation is served at (path
            /// parameters in braces, such as `{extProjectId}`).
            pub fn route(self) -> (&'static str, &'static str) {
                match self {
                    $( Operation::$variant => ($method, $path), )*
                }
            }
        }
    };
}

operations! {
    /// `POST /auth/v1/token/password`: log in with a username and password.
    Login = "login", "POST", "/auth/v1/token/password";
    /// `POST /auth/v1/token/refresh`: trade a refresh token for a new pair.
    Refresh = "refresh", "POST", "/auth/v1/token/refresh";
    /// `POST /auth/v1/logout`: end the session.
    Logout = "logout", "POST", "/auth/v1/logout";
    /// `POST /auth/v1/token/code`: the authorization-code grant.
    ExchangeCode = "exchangeCode", "POST", "/auth/v1/token/code";
    /// `GET /sample/v1/users/info`: the logged-in user, behind a bearer token.
    UsersInfo = "usersInfo", "GET", "/sample/v1/users/info";
    /// `GET /sample/v1/user`: the caller with companies and teams.
    GetUser = "getUser", "GET", "/sample/v1/user";
    /// `GET /sample/v1/users`: the users of the caller's company.
    ListCompanyUsers = "listCompanyUsers", "GET", "/sample/v1/users";
    /// `GET /sample/v1/teams`.
    ListTeams = "listTeams", "GET", "/sample/v1/teams";
    /// `GET /sample/v1/roles`.
    ListRoles = "listRoles", "GET", "/sample/v1/roles";
    /// `GET /sample/v1/countries`.
    ListCountries = "listCountries", "GET", "/sample/v1/countries";
    /// `GET /sample/v1/attributes/{countryCode}/{languageCode}`.
    ListAttributes = "listAttributes", "GET", "/sample/v1/attributes/{countryCode}/{languageCode}";
    /// `GET /sample/v1/categories/surveyTopics`.
    ListSurveyTopics = "listSurveyTopics", "GET", "/sample/v1/categories/surveyTopics";
    /// `GET /sample/v1/sources`.
    ListSources = "listSources", "GET", "/sample/v1/sources";
    /// `GET /sample/v1/studyMetadata`.
    GetStudyMetadata = "getStudyMetadata", "GET", "/sample/v1/studyMetadata";
    /// `GET /sample/v1/projects`.
    ListProjects = "listProjects", "GET", "/sample/v1/projects";
    /// `POST /sample/v1/projects`.
    CreateProject = "createProject", "POST", "/sample/v1/projects";
    /// `GET /sample/v1/projects/report`.
    ListProjectReports = "listProjectReports", "GET", "/sample/v1/projects/report";
    /// `GET /sample/v1/projects/invoices/summary` (a PDF).
    GetInvoicesSummaryPdf = "getInvoicesSummaryPdf", "GET", "/sample/v1/projects/invoices/summary";
    /// `GET /sample/v1/projects/{extProjectId}`.
    GetProject = "getProject", "GET", "/sample/v1/projects/{extProjectId}";
    /// `POST /sample/v1/projects/{extProjectId}`: a partial update.
    UpdateProject = "updateProject", "POST", "/sample/v1/projects/{extProjectId}";
    /// `GET /sample/v1/projects/{extProjectId}/report`.
    GetProjectReport = "getProjectReport", "GET", "/sample/v1/projects/{extProjectId}/report";
    /// `GET /sample/v1/projects/{extProjectId}/detailedReport`.
    GetProjectDetailedReport = "getProjectDetailedReport", "GET", "/sample/v1/projects/{extProjectId}/detailedReport";
    /// `GET /sample/v1/projects/{extProjectId}/feasibility`.
    GetFeasibility = "getFeasibility", "GET", "/sample/v1/projects/{extProjectId}/feasibility";
    /// `GET /sample/v1/projects/{extProjectId}/invoices` (a PDF).
    GetInvoicePdf = "getInvoicePdf", "GET", "/sample/v1/projects/{extProjectId}/invoices";
    /// `GET /sample/v1/projects/{extProjectId}/permissions`.
    GetProjectPermissions = "getProjectPermissions", "GET", "/sample/v1/projects/{extProjectId}/permissions";
    /// `POST /sample/v1/projects/{extProjectId}/permissions`.
    UpsertProjectPermissions = "upsertProjectPermissions", "POST", "/sample/v1/projects/{extProjectId}/permissions";
    /// `POST /sample/v1/projects/{extProjectId}/buy`.
    BuyProject = "buyProject", "POST", "/sample/v1/projects/{extProjectId}/buy";
    /// `POST /sample/v1/projects/{extProjectId}/close`.
    CloseProject = "closeProject", "POST", "/sample/v1/projects/{extProjectId}/close";
    /// `POST /sample/v1/projects/{extProjectId}/reconcile`.
    ReconcileProject = "reconcileProject", "POST", "/sample/v1/projects/{extProjectId}/reconcile";
    /// `GET /sample/v1/projects/{extProjectId}/surveys/{surveyId}/links`.
    GetSurveyEndLinks = "getSurveyEndLinks", "GET", "/sample/v1/projects/{extProjectId}/surveys/{surveyId}/links";
    /// `GET /sample/v1/projects/{extProjectId}/lineItems`.
    ListLineItems = "listLineItems", "GET", "/sample/v1/projects/{extProjectId}/lineItems";
    /// `POST /sample/v1/projects/{extProjectId}/lineItems`.
    CreateLineItem = "createLineItem", "POST", "/sample/v1/projects/{extProjectId}/lineItems";
    /// `GET /sample/v1/projects/{extProjectId}/lineItems/{extLineItemId}`.
    GetLineItem = "getLineItem", "GET", "/sample/v1/projects/{extProjectId}/lineItems/{extLineItemId}";
    /// `POST /sample/v1/projects/{extProjectId}/lineItems/{extLineItemId}`: a partial update.
    UpdateLineItem = "updateLineItem", "POST", "/sample/v1/projects/{extProjectId}/lineItems/{extLineItemId}";
    /// `GET /sample/v1/projects/{extProjectId}/lineItems/{extLineItemId}/detailedReport`.
    GetLineItemDetailedReport = "getLineItemDetailedReport", "GET", "/sample/v1/projects/{extProjectId}/lineItems/{extLineItemId}/detailedReport";
    /// `POST /sample/v1/projects/{extProjectId}/lineItems/{extLineItemId}/launch`.
    LaunchLineItem = "launchLineItem", "POST", "/sample/v1/projects/{extProjectId}/lineItems/{extLineItemId}/launch";
    /// `POST /sample/v1/projects/{extProjectId}/lineItems/{extLineItemId}/pause`.
    PauseLineItem = "pauseLineItem", "POST", "/sample/v1/projects/{extProjectId}/lineItems/{extLineItemId}/pause";
    /// `POST /sample/v1/projects/{extProjectId}/lineItems/{extLineItemId}/close`.
    CloseLineItem = "closeLineItem", "POST", "/sample/v1/projects/{extProjectId}/lineItems/{extLineItemId}/close";
    /// `POST .../lineItems/{extLineItemId}/quotaCells/{quotaCellId}/{action}`.
    SetQuotaCellStatus = "setQuotaCellStatus", "POST", "/sample/v1/projects/{extProjectId}/lineItems/{extLineItemId}/quotaCells/{quotaCellId}/{action}";
    /// `GET /sample/v1/events`.
    ListEvents = "listEvents", "GET", "/sample/v1/events";
    /// `GET /sample/v1/events/{eventId}`.
    GetEvent = "getEvent", "GET", "/sample/v1/events/{eventId}";
    /// `POST /sample/v1/events/{eventId}/accept`.
    AcceptEvent = "acceptEvent", "POST", "/sample/v1/events/{eventId}/accept";
    /// `POST /sample/v1/events/{eventId}/reject`.
    RejectEvent = "rejectEvent", "POST", "/sample/v1/events/{eventId}/reject";
    /// `POST /sample/v1/templates/quotaPlan`.
    CreateTemplate = "createTemplate", "POST", "/sample/v1/templates/quotaPlan";
    /// `GET /sample/v1/templates/quotaPlan/{countryCode}/{languageCode}`.
    ListTemplates = "listTemplates", "GET", "/sample/v1/templates/quotaPlan/{countryCode}/{languageCode}";
    /// `POST /sample/v1/templates/quotaPlan/{templateId}`.
    UpdateTemplate = "updateTemplate", "POST", "/sample/v1/templates/quotaPlan/{templateId}";
    /// `DELETE /sample/v1/templates/quotaPlan/{templateId}`.
    DeleteTemplate = "deleteTemplate", "DELETE", "/sample/v1/templates/quotaPlan/{templateId}";
}

impl Operation {
    pub(crate) fn from_name(name: &str) -> Option<Operation> {
        Operation::ALL.into_iter().find(|op| op.name() == name)
    }

    pub(crate) fn index(self) -> usize {
        // ALL lists the variants in declaration order.
        self as usize
    }

    /// Whether the operation is one of the auth API's, answered by the
    /// identity server rather than behind the gateway.
    pub(crate) fn is_auth(self) -> bool {
        self.route().1.starts_with("/auth/")
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
