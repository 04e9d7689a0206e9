//! Survey links: web forms people answer in a browser at `/f/{token}`, without an account.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// `POST /v1/surveys/{id}/links`: a new link to the survey.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewLink {
    /// What the link is for, shown in `link list` and as the collector of its responses
    /// (default: "web link").
    #[serde(default)]
    pub label: Option<String>,
    /// A password respondents must type before the form opens (kept as an Argon2id hash).
    #[serde(default)]
    pub password: Option<String>,
    /// When the link stops taking responses, in milliseconds since the Unix epoch.
    #[serde(default)]
    pub expires_at: Option<i64>,
    /// At most this many responses.
    #[serde(default)]
    pub max_responses: Option<u32>,
    /// One response, then the link closes (a personal link).
    #[serde(default)]
    pub single_use: bool,
}

/// A link as listed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LinkInfo {
    pub id: Uuid,
    pub survey_id: Uuid,
    pub label: String,
    /// Whether respondents must type a password.
    pub password: bool,
    pub expires_at: Option<i64>,
    pub max_responses: Option<u32>,
    pub single_use: bool,
    /// Responses submitted through it.
    pub responses: u32,
    pub created_at: i64,
    /// The member who created it.
    pub created_by: String,
    pub revoked_at: Option<i64>,
    /// Whether it takes responses now (not revoked, expired or full).
    pub open: bool,
}

/// A new link and its address: the token is shown once and never again (only its hash is
/// kept).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedLink {
    pub link: LinkInfo,
    /// The link's path on the server: `/f/{token}`.
    pub path: String,
}

/// One person to invite by email.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Invitee {
    pub email: String,
    /// The name to greet them by.
    #[serde(default)]
    pub name: Option<String>,
}

/// `POST /v1/surveys/{id}/invitations`: people to invite (at most 1000 per request).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewInvitations {
    pub invitees: Vec<Invitee>,
}

/// What became of a list sent: how many were new, and how many the survey had already.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InvitationsAdded {
    pub added: u64,
    pub already: u64,
}

/// An invitation that could not be sent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InvitationFailure {
    pub email: String,
    /// What the mail server said.
    pub error: String,
}

/// `GET /v1/surveys/{id}/invitations`: where a survey's invitations are.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InvitationReport {
    /// Waiting to be sent, or to be tried again.
    pub pending: u64,
    pub sent: u64,
    pub failed: u64,
    /// Not sent: the person asked to receive no survey invitations.
    pub opted_out: u64,
    /// Answered through their personal link.
    pub answered: u64,
    pub failures: Vec<InvitationFailure>,
}
