//! Survey links in storage: the rows both backends keep and the operations on them
//! ([`LinkStorage`], part of [`super::Storage`]).
//!
//! A link lets people without an account answer one survey in a browser at
//! `/f/{token}`. Only the SHA-256 of the token is stored, and the Argon2id hash of its
//! password when it has one. Each link has its own principal, an enumerator assigned to the
//! link's survey that has no usable credential: the web form pushes the responses it
//! collects as that principal, so a web response is owned, checked, relayed, exported and
//! erased like any device's. Revoking the link revokes its principal.

use super::{AuditEvent, NewPrincipal, Result};

/// A link to record, with its principal (created in the same transaction).
#[derive(Clone, Debug)]
pub struct NewLink {
    pub id: String,
    pub org_id: String,
    pub survey_id: String,
    pub label: String,
    /// The survey's email invitations go through it (each with its own token); its own
    /// token is never given out.
    pub invitations: bool,
    pub token_hash: [u8; 32],
    /// Argon2id, in the PHC string format.
    pub password_hash: Option<String>,
    pub expires_at: Option<i64>,
    /// At most this many responses (a single-use link: 1).
    pub max_responses: Option<u32>,
    pub single_use: bool,
    pub created_by: String,
    pub principal: NewPrincipal,
    pub audit: AuditEvent,
}

impl NewLink {
    /// The `purpose` column: `link` or `invitations`.
    pub fn purpose(&self) -> &'static str {
        if self.invitations {
            "invitations"
        } else {
            "link"
        }
    }
}

/// A link as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct LinkRow {
    pub id: String,
    pub org_id: String,
    pub survey_id: String,
    /// The principal its responses are pushed as.
    pub principal_id: String,
    pub label: String,
    /// See [`NewLink::invitations`].
    pub invitations: bool,
    pub password_hash: Option<String>,
    pub expires_at: Option<i64>,
    pub max_responses: Option<u32>,
    pub single_use: bool,
    /// Responses submitted through it so far.
    pub responses: u32,
    pub created_at: i64,
    pub created_by: String,
    pub revoked_at: Option<i64>,
}

impl LinkRow {
    /// Whether it still takes responses at `now` (not revoked, not expired, not full).
    pub fn open_at(&self, now: i64) -> bool {
        self.revoked_at.is_none()
            && self.expires_at.is_none_or(|e| now < e)
            && self.max_responses.is_none_or(|m| self.responses < m)
    }
}

/// Survey links: see the module documentation. Each write is one transaction with its audit
/// entry.
#[async_trait::async_trait]
pub trait LinkStorage {
    /// Store a link and its principal (assigned to the link's survey).
    async fn create_link(&self, link: NewLink) -> Result<()>;

    /// The links of an organisation, of one survey or all, newest first.
    async fn links(&self, org_id: &str, survey_id: Option<&str>) -> Result<Vec<LinkRow>>;

    /// The link whose token has this hash, revoked or not.
    async fn link_by_token(&self, token_hash: [u8; 32]) -> Result<Option<LinkRow>>;

    /// Revoke a link of the organisation and its principal; `false` if it has no such link.
    async fn revoke_link(&self, org_id: &str, link_id: &str, audit: AuditEvent) -> Result<bool>;

    /// Count one more response against the link, if it is still open at `now` (see
    /// [`LinkRow::open_at`]); `false` and nothing changes if not. Two respondents
    /// submitting at once to a link with one place left: one of them gets it.
    async fn take_link_place(&self, link_id: &str, now: i64) -> Result<bool>;

    /// Give back a place taken by [`LinkStorage::take_link_place`] whose response was then
    /// not stored.
    async fn release_link_place(&self, link_id: &str) -> Result<()>;
}
