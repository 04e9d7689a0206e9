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
