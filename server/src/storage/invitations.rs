//! Email invitations in storage ([`InvitationStorage`], part of [`super::Storage`]).
//!
//! An invitation asks one person, by email, to answer one survey. It is stored once per
//! organisation, survey and address (the address's subject-index hash, the same hash the
//! do-not-contact list keeps), so sending a list again adds nobody twice. The address itself
//! is kept sealed with the organisation's key, for the sender. Each invitation's personal
//! token and opt-out token are kept as hashes, set when its email is sent; responses through
//! it are pushed as the survey's invitation link (a [`super::LinkRow`] of purpose
//! `invitations`, whose own token nobody is given).

use super::{AuditEvent, Result};

/// Where an invitation is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvitationStatus {
    /// Waiting to be sent (or to be tried again after a temporary failure).
    Pending,
    /// Claimed by a sender until its lease ends.
    Sending,
    Sent,
    /// The mail server refused it for good, or every try failed.
    Failed,
    /// On the do-not-contact list when its turn came: not sent.
    OptedOut,
}

impl InvitationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            InvitationStatus::Pending => "pending",
            InvitationStatus::Sending => "sending",
            InvitationStatus::Sent => "sent",
            InvitationStatus::Failed => "failed",
            InvitationStatus::OptedOut => "opted_out",
        }
    }

    pub fn parse(s: &str) -> Option<InvitationStatus> {
        [
            InvitationStatus::Pending,
            InvitationStatus::Sending,
            InvitationStatus::Sent,
            InvitationStatus::Failed,
            InvitationStatus::OptedOut,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

/// An invitation to add.
#[derive(Clone, Debug)]
pub struct NewInvitation {
    pub id: String,
    pub address_hash: [u8; 32],
    /// The address and the name to greet, sealed with the organisation's key.
    pub sealed: Vec<u8>,
}

/// An invitation as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct InvitationRow {
    pub id: String,
    pub org_id: String,
    pub survey_id: String,
    pub link_id: String,
    pub sealed: Vec<u8>,
    pub status: InvitationStatus,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub sent_at: Option<i64>,
    /// When a response was submitted through it, and which.
    pub used_at: Option<i64>,
    pub used_by: Option<String>,
}

/// How a try at sending ended.
#[derive(Clone, Debug)]
pub enum SendOutcome {
    /// About to be handed to the mail server with these tokens (kept before sending: an
    /// email that went out before a crash still works).
    Prepared {
        token_hash: [u8; 32],
        optout_hash: [u8; 32],
    },
    /// Handed to the mail server.
    Sent,
    /// Not sent; `retry_at` to try again then, `None` to give up.
    Failed {
        error: String,
        retry_at: Option<i64>,
    },
    OptedOut,
}

/// Counts of a survey's invitations by status, and the failures.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InvitationSummary {
    pub pending: u64,
    pub sent: u64,
    pub failed: u64,
    pub opted_out: u64,
    pub answered: u64,
    /// Failed invitations: id, sealed address, error.
    pub failures: Vec<(String, Vec<u8>, String)>,
}

/// Email invitations: see the module documentation.
#[async_trait::async_trait]
pub trait InvitationStorage {
    /// Add invitations to `survey_id` through `link_id`; those whose address the survey has
    /// already are left as they are. Returns how many were new.
    async fn add_invitations(
        &self,
        org_id: &str,
        survey_id: &str,
        link_id: &str,
        invitations: Vec<NewInvitation>,
        audit: AuditEvent,
    ) -> Result<u64>;

    /// Claim up to `limit` invitations due at `now` (pending and due, or sending with an
    /// ended lease) for `lease_ms`, of any organisation.
    async fn claim_invitations(
        &self,
        now: i64,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<InvitationRow>>;

    /// Record how a claimed invitation's try ended.
    async fn finish_invitation(&self, id: &str, outcome: SendOutcome) -> Result<()>;

    /// The invitation whose personal token has this hash, and whether it was sent.
    async fn invitation_by_token(&self, token_hash: [u8; 32]) -> Result<Option<InvitationRow>>;

    /// Mark an invitation answered by `response_id`, if it was not yet; `false` if it was
    /// (by that response or another).
    async fn use_invitation(&self, id: &str, response_id: &str, now: i64) -> Result<bool>;

    /// Give back [`InvitationStorage::use_invitation`] when the response was then not stored.
    async fn unuse_invitation(&self, id: &str) -> Result<()>;

    /// The invitation whose opt-out token has this hash: (organisation, address hash).
    async fn invitation_by_optout(
        &self,
        optout_hash: [u8; 32],
    ) -> Result<Option<(String, [u8; 32])>>;

    /// The counts of a survey's invitations.
    async fn invitation_summary(&self, org_id: &str, survey_id: &str) -> Result<InvitationSummary>;
}
