//! JSON bodies of the management API (organisations, members, enrollment, surveys, responses),
//! shared by server and client so that both sides agree on every field.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Answer;
use crate::Answers;
use crate::survey::ValidationError;
use crate::wire::SurveyStatus;

mod links;
pub use links::{
    CreatedLink, InvitationFailure, InvitationReport, InvitationsAdded, Invitee, LinkInfo,
    NewInvitations, NewLink,
};

/// A member's role within an organisation. Support staff belong to no organisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Coordinator,
    Ops,
    Enumerator,
    Support,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Coordinator => "coordinator",
            Role::Ops => "ops",
            Role::Enumerator => "enumerator",
            Role::Support => "support",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        [
            Role::Admin,
            Role::Coordinator,
            Role::Ops,
            Role::Enumerator,
            Role::Support,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `POST /v1/login`: exchange a one-time login token for a session token.
#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoginRequest {
    pub token: String,
    /// A name for this client, recorded with the session (e.g. a host name).
    #[serde(default)]
    pub client_name: Option<String>,
    /// A random id the client keeps until the exchange succeeds: the same request sent again
    /// within [`REDEEM_RETRY_MINUTES`] of the first (its answer lost) gets the same session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<String>,
}

/// How long after a one-time secret was used a retry of the same exchange still succeeds.
pub const REDEEM_RETRY_MINUTES: i64 = 10;

/// `POST /v1/enroll`: an enumerator's device exchanges its enrollment code for a device token.
#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EnrollRequest {
    pub code: String,
    #[serde(default)]
    pub device_name: Option<String>,
    /// As [`LoginRequest::attempt`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<String>,
}

/// The answer to login and enroll: the bearer token to use from now on.
#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionGrant {
    pub token: String,
    pub org_id: Uuid,
    pub org_name: String,
    pub principal_id: Uuid,
    pub name: String,
    pub role: Role,
}

/// `GET /v1/me`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WhoAmI {
    pub principal_id: Uuid,
    pub name: String,
    pub role: Role,
    pub org_id: Uuid,
    pub org_name: String,
    pub region: String,
    pub support_access: bool,
}

/// `POST /v1/members`: create a coordinator, ops or admin member.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewMember {
    pub name: String,
    pub role: Role,
}

/// `POST /v1/enumerators`: create an enumerator and its enrollment code.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewEnumerator {
    pub name: String,
    #[serde(default)]
    pub surveys: Vec<Uuid>,
}

/// A new member or enumerator and its one-time secret (a login token or an enrollment code),
/// shown once and never again.
#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedMember {
    pub id: Uuid,
    pub name: String,
    pub role: Role,
    pub one_time_secret: String,
}

/// The header an export carries when its row count is known before it streams (the filter
/// narrows by status only, which the server's index counts): what a progress bar needs.
pub const EXPORT_TOTAL_HEADER: &str = "x-fieldsync-total";

/// A member as listed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MemberInfo {
    pub id: Uuid,
    pub name: String,
    pub role: Role,
    pub created_at: i64,
    pub revoked: bool,
    /// The name the device enrolled as this principal gave itself (`enroll --device-name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
}

/// `PUT /v1/org/support-access`.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SupportAccess {
    pub enabled: bool,
}

/// `POST /v1/surveys/{id}/assignments`.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Assignment {
    pub enumerator_id: Uuid,
}

/// `PUT /v1/surveys/{id}/status`.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StatusChange {
    pub status: SurveyStatus,
}

/// The answer to publishing a survey definition.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Published {
    pub survey_id: Uuid,
    pub form_id: String,
    /// The server's number for the version.
    pub version: u32,
    /// The form's own version (its `version` setting), if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The same definition was published before (as `version`): nothing changed.
    #[serde(default)]
    pub unchanged: bool,
}

/// A survey as listed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SurveyInfo {
    pub id: Uuid,
    pub form_id: String,
    pub title: String,
    pub status: SurveyStatus,
    pub latest_version: u32,
    pub versions: Vec<u32>,
}

/// `GET /v1/surveys/{id}/versions/{n}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SurveyVersion {
    pub survey_id: Uuid,
    pub version: u32,
    pub published_at: i64,
    /// The definition as published (the JSON document).
    pub definition: serde_json::Value,
}

/// A concurrent value of a conflicted answer, and who set it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConflictValueView {
    pub value: Answer,
    pub actor: String,
    pub author: Option<String>,
}

/// An answer set concurrently to different values.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConflictView {
    pub question: String,
    pub values: Vec<ConflictValueView>,
}

/// One response as the server materialised it from its changes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResponseView {
    pub id: Uuid,
    pub survey_id: Uuid,
    pub survey_version: u32,
    pub author_device: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub status: String,
    /// The answers by question name.
    // A type alias: without this the schema would be named after `BTreeMap`.
    #[cfg_attr(feature = "openapi", schema(value_type = std::collections::BTreeMap<String, Answer>))]
    pub answers: Answers,
    pub errors: Vec<ValidationError>,
    pub conflicts: Vec<ConflictView>,
    /// What a coordinator should know before acting on it (it names a person on the
    /// do-not-contact list).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// The latest review's comment, if it left one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_comment: Option<String>,
}

/// The warning on a response that names a person on the organisation's do-not-contact list.
pub const DO_NOT_CONTACT_WARNING: &str =
    "it names a person on the do-not-contact list: do not contact them about it";

/// One row of `GET /v1/surveys/{id}/responses`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResponseListItem {
    pub id: Uuid,
    pub survey_version: u32,
    pub status: String,
    pub valid: bool,
    /// Validation errors, question and message only.
    pub errors: Vec<ValidationError>,
    /// Names of conflicted questions.
    pub conflicts: Vec<String>,
    /// Set when the document could not be read at all; the message says why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broken: Option<String>,
    pub updated_at: i64,
    /// Processing is restricted at the respondent's request (listed to admins only).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub restricted: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// A page of the response list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ResponsePage {
    pub items: Vec<ResponseListItem>,
    /// Pass as `after` to get the next page; absent on the last page.
    pub next: Option<String>,
    /// Responses received but not yet materialised (they appear shortly).
    pub pending: u64,
}

// Secrets never reach a log through `{:?}`: these bodies print everything but the secret.

impl std::fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginRequest")
            .field("token", &"***")
            .field("client_name", &self.client_name)
            .finish()
    }
}

impl std::fmt::Debug for EnrollRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnrollRequest")
            .field("code", &"***")
            .field("device_name", &self.device_name)
            .finish()
    }
}

impl std::fmt::Debug for SessionGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionGrant")
            .field("token", &"***")
            .field("org_id", &self.org_id)
            .field("principal_id", &self.principal_id)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for CreatedMember {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedMember")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("role", &self.role)
            .field("one_time_secret", &"***")
            .finish()
    }
}

/// A person, named by an identifier, for the `POST /v1/subjects/…` requests (in the body,
/// never in a URL, so it stays out of logs). The server compares it normalised (see
/// [`crate::subject::normalize`]) and keeps only a keyed hash of it.
#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SubjectQuery {
    pub value: String,
    /// Only responses of this survey.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub survey_id: Option<Uuid>,
}

/// `POST /v1/subjects/erase`: the person and why (recorded in the audit log, so it must not
/// contain the identifier).
#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SubjectErase {
    pub value: String,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub survey_id: Option<Uuid>,
}

impl std::fmt::Debug for SubjectQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubjectQuery")
            .field("value", &"***")
            .field("survey_id", &self.survey_id)
            .finish()
    }
}

impl std::fmt::Debug for SubjectErase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubjectErase")
            .field("value", &"***")
            .field("survey_id", &self.survey_id)
            .finish_non_exhaustive()
    }
}

/// One response held about a person.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SubjectMatch {
    pub response_id: Uuid,
    pub survey_id: Uuid,
    pub survey_version: u32,
    /// The member or device that collected it.
    pub collected_by: Uuid,
    /// When the server first received it (ms since the epoch).
    pub received_at: i64,
    pub restricted: bool,
}

/// `POST /v1/subjects/find`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SubjectFound {
    pub responses: Vec<SubjectMatch>,
    /// The person asked not to be contacted.
    pub do_not_contact: bool,
}

/// One entry of the processing record: what was done with a response, by whom, when.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditRecord {
    pub id: i64,
    pub at: i64,
    pub actor_id: Option<String>,
    pub actor_role: Option<String>,
    pub action: String,
    pub target: Option<String>,
    pub detail: Option<String>,
}

/// Everything held about one response of a person.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SubjectRecord {
    #[serde(rename = "response")]
    pub found: SubjectMatch,
    /// Its answers and metadata, when it is readable.
    pub view: Option<ResponseView>,
    /// Why it could not be read, when it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreadable: Option<String>,
    /// The audit entries about it (edits, restriction), oldest first.
    pub processing: Vec<AuditRecord>,
    /// The files it holds (photos, recordings), fetched with `GET /v1/responses/{id}/media/…`.
    #[serde(default)]
    pub files: Vec<MediaInfo>,
}

/// `POST /v1/subjects/export`: the answer to a person's right of access.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SubjectExport {
    pub exported_at: i64,
    pub responses: Vec<SubjectRecord>,
    pub do_not_contact: bool,
}

/// What erasing, restricting or lifting changed: the responses, by id.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SubjectChanged {
    pub responses: Vec<Uuid>,
    /// Responses found for the person (some may have been in that state already).
    pub found: u32,
}

/// `POST /v1/subjects/opt-out` and `/opt-in`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DoNotContact {
    /// Whether the person is on the list now.
    pub listed: bool,
    /// Whether this request changed it.
    pub changed: bool,
}

/// `PUT /v1/surveys/{id}/retention`: how long responses are kept after the server first
/// received them; `None` keeps them until erased.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Retention {
    pub retention_seconds: Option<u64>,
}

/// `GET /v1/audit/verify`: whether the organisation's audit chain is intact.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditVerification {
    /// Entries whose seal and link were checked.
    pub verified: u64,
    /// Entries recorded before the log was chained (an upgrade), not covered.
    pub unchained: u64,
    /// The first thing wrong, naming the entry; `None` when the chain is intact.
    pub problem: Option<String>,
}

/// One file of a response (`GET /v1/responses/{id}/media`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MediaInfo {
    /// The attachment name, as the answer holds it.
    pub name: String,
    pub question: String,
    pub media_type: String,
    pub size: u64,
    /// Uploaded whole and checked (otherwise still arriving).
    pub stored: bool,
}

/// A filter's time bound as ms since the epoch: `YYYY-MM-DD` is the start of that UTC day (or,
/// with `end_of_day`, the start of the next, so the day is included), anything else must be
/// an RFC 3339 instant. The error says what to write instead.
pub fn time_bound(text: &str, end_of_day: bool) -> Result<i64, String> {
    let text = text.trim();
    let day = time::macros::format_description!("[year]-[month]-[day]");
    if let Ok(date) = time::Date::parse(text, &day) {
        let date = if end_of_day {
            date.next_day().unwrap_or(date)
        } else {
            date
        };
        return Ok(date.midnight().assume_utc().unix_timestamp() * 1000);
    }
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
        .map_err(|_| {
            format!(
                "{text:?} is not a date; write YYYY-MM-DD or a time like 2026-12-01T08:40:00+01:00"
            )
        })
}
