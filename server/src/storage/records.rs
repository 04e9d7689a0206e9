//! The records the [`super::Storage`] trait takes and returns: audit events, organisations,
//! principals and credentials, survey versions, pushed and stored documents, materialiser
//! work, listing queries.

use fieldsync_protocol::api::{Published, Role};
use fieldsync_protocol::wire::{DocChanges, DocPushResult, KnownSurvey, SurveyStatus};
use serde::Serialize;
use serde_bytes::ByteBuf;

use super::Result;
use crate::auth::Caller;
use crate::worker::Checked;

/// One audit entry to record.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditEvent {
    pub org_id: Option<String>,
    pub actor_id: String,
    pub actor_role: String,
    pub action: String,
    pub target: Option<String>,
    pub detail: Option<String>,
}

impl AuditEvent {
    /// An event by `caller` in its organisation.
    pub fn by(caller: &Caller, action: &str) -> AuditEvent {
        AuditEvent {
            org_id: Some(caller.org_id.clone()),
            actor_id: caller.principal_id.clone(),
            actor_role: caller.role.as_str().to_owned(),
            action: action.to_owned(),
            target: None,
            detail: None,
        }
    }

    /// An event by the operator at the command line.
    pub fn operator(org_id: Option<&str>, action: &str) -> AuditEvent {
        AuditEvent {
            org_id: org_id.map(str::to_owned),
            actor_id: "cli".to_owned(),
            actor_role: "operator".to_owned(),
            action: action.to_owned(),
            target: None,
            detail: None,
        }
    }

    /// An event by a respondent through a link in an email (an opt-out).
    pub fn respondent(org_id: &str, action: &str) -> AuditEvent {
        AuditEvent {
            org_id: Some(org_id.to_owned()),
            actor_id: "respondent".to_owned(),
            actor_role: "respondent".to_owned(),
            action: action.to_owned(),
            target: None,
            detail: None,
        }
    }

    pub fn target(mut self, target: impl Into<String>) -> AuditEvent {
        self.target = Some(target.into());
        self
    }

    pub fn detail(mut self, detail: impl Into<String>) -> AuditEvent {
        self.detail = Some(detail.into());
        self
    }
}

/// One audit entry as listed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AuditEntry {
    pub id: i64,
    pub at: i64,
    pub actor_id: Option<String>,
    pub actor_role: Option<String>,
    pub action: String,
    pub target: Option<String>,
    pub detail: Option<String>,
    /// The previous entry's MAC in its chain, and this entry's (`None` for entries recorded
    /// before the log was chained).
    #[serde(skip)]
    pub prev: Option<Vec<u8>>,
    #[serde(skip)]
    pub mac: Option<Vec<u8>>,
}

/// A new organisation.
#[derive(Clone, Debug)]
pub struct NewOrg {
    pub id: String,
    pub name: String,
    pub region: String,
    /// The organisation key, wrapped by the instance's master key.
    pub wrapped_key: Vec<u8>,
    pub key_id: u32,
    pub audit: AuditEvent,
}

/// An organisation.
/// One organisation as `fieldsync-server admin list-orgs` shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OrgListing {
    pub id: String,
    pub name: String,
    pub region: String,
    pub support_access: bool,
    pub created_at: i64,
    /// Members and devices not revoked.
    pub active_principals: i64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Org {
    pub id: String,
    pub name: String,
    pub region: String,
    pub support_access: bool,
    pub wrapped_key: Vec<u8>,
}

/// The kinds of credential.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredentialKind {
    /// One-time, exchanged at `POST /v1/login` for a session.
    Login,
    /// One-time, exchanged at `POST /v1/enroll` for a device token.
    Enroll,
    /// A member's revocable bearer token.
    Session,
    /// An enumerator device's revocable bearer token.
    Device,
}

impl CredentialKind {
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialKind::Login => "login",
            CredentialKind::Enroll => "enroll",
            CredentialKind::Session => "session",
            CredentialKind::Device => "device",
        }
    }

    /// Exchanged once for another credential (a login token, an enrollment code).
    pub fn is_one_time(self) -> bool {
        matches!(self, CredentialKind::Login | CredentialKind::Enroll)
    }
}

/// A credential to store: only the SHA-256 of its token is kept.
#[derive(Clone, Debug)]
pub struct NewCredential {
    pub hash: [u8; 32],
    pub kind: CredentialKind,
    pub expires_at: Option<i64>,
}

/// A principal as authentication sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Principal {
    pub id: String,
    pub org_id: Option<String>,
    pub role: Role,
    pub name: String,
}

/// A principal to create, with its first credential.
#[derive(Clone, Debug)]
pub struct NewPrincipal {
    pub id: String,
    /// None for support staff.
    pub org_id: Option<String>,
    pub role: Role,
    pub name: String,
    pub created_by: Option<String>,
    pub credential: NewCredential,
    /// Surveys to assign (enumerators); each must exist in the organisation.
    pub assign: Vec<String>,
    pub audit: Option<AuditEvent>,
}

/// Exchanging a one-time secret: if a live, unused credential of kind `from` has this hash,
/// it is marked used and `new` is stored for its principal, and the exchange is audited as
/// `action` (detail: the client's name). A principal of an organisation outside `region`
/// is "no such organisation", and nothing changes.
#[derive(Clone, Debug)]
pub struct Redeem {
    pub hash: [u8; 32],
    pub from: CredentialKind,
    pub new: NewCredential,
    pub region: String,
    pub action: String,
    pub client: Option<String>,
}

impl Redeem {
    /// The device name to remember on the principal: what a device enrolling names itself.
    pub fn device_name(&self) -> Option<&str> {
        (self.from == CredentialKind::Enroll)
            .then_some(self.client.as_deref())
            .flatten()
    }
}

/// What redeeming found: the principal, and its organisation (none for support staff).
#[derive(Clone, Debug)]
pub struct Redeemed {
    pub principal: Principal,
    pub org: Option<Org>,
}

/// A survey as publishing sees it.
#[derive(Clone, Debug)]
pub struct SurveyHead {
    pub id: String,
    pub latest_version: u32,
    pub status: SurveyStatus,
    /// The survey's Automerge document.
    pub doc: Vec<u8>,
}

/// What publishing writes: the new version and the survey's document with it.
#[derive(Clone, Debug)]
pub struct SurveyWrite {
    pub survey_id: String,
    pub version: u32,
    /// The form's own version label.
    pub label: Option<String>,
    pub title: String,
    pub doc: Vec<u8>,
    pub definition: String,
    pub published_by: String,
    pub published_at: i64,
    pub audit: AuditEvent,
}

/// What a publication comes to: a new version to write, or the same definition published
/// before (nothing is written).
#[derive(Clone, Debug)]
pub enum Publication {
    New(Box<SurveyWrite>),
    Unchanged(Published),
}

/// Decides a publication from the survey as it stands (see [`Storage::publish`]).
pub type PublishPlan = Box<dyn FnOnce(Option<SurveyHead>) -> Result<Publication> + Send>;

/// What a pushing device needs to know about a survey: its status and whether the caller may
/// write responses to it.
#[derive(Clone, Debug)]
pub struct SurveyGate {
    pub status: SurveyStatus,
    pub latest_version: u32,
    pub assigned: bool,
}

/// A stored response document as the push policy sees it.
#[derive(Clone, Debug)]
pub struct StoredDoc {
    pub org_id: String,
    pub survey_id: String,
    pub owner_id: String,
    pub survey_version: u32,
    /// Processing restricted at the respondent's request: no edits.
    pub restricted: bool,
    /// Its status as last materialised (`approved`, …), if it has been.
    pub status: Option<String>,
}

/// One pushed document whose changes the sandbox parsed successfully.
#[derive(Debug)]
pub struct VerifiedDoc {
    pub doc: DocChanges,
    /// The hash of each change, in the same order as `doc.changes`.
    pub hashes: Vec<ByteBuf>,
    /// The questions the changes set or remove, for the audit of an edit of someone else's
    /// response (filled for members' pushes only).
    pub touched: Vec<String>,
}

/// What a push stored.
#[derive(Debug)]
pub struct Pushed {
    pub results: Vec<DocPushResult>,
    /// Whether any new change was stored (the materialiser has work).
    pub stored_any: bool,
}

/// A pull: `caller` (whose own session's changes are skipped, and refusals of them told),
/// `cursor`, at most `limit` changes or `max_bytes` of them, and the surveys it holds.
#[derive(Clone, Debug)]
pub struct PullQuery {
    pub caller: Caller,
    pub cursor: u64,
    pub limit: u32,
    pub max_bytes: usize,
    pub known_surveys: Vec<KnownSurvey>,
}

/// Where a stored change is in its checking.
pub mod state {
    /// Stored, not yet checked by the sandbox: not relayed.
    pub const UNCHECKED: i64 = 0;
    /// Its document loads with it: relayed and materialised.
    pub const ACCEPTED: i64 = 1;
    /// It would break its document: never relayed; its pusher is told.
    pub const REFUSED: i64 = 2;
    /// It depends on a change the server does not have (yet): checked again when its
    /// document next changes.
    pub const WAITING: i64 = 3;
}

/// A document waiting to be materialised.
#[derive(Clone, Debug)]
pub struct Queued {
    pub doc_id: String,
    pub org_id: String,
    pub seq: i64,
}

/// Everything the sandbox needs to check and materialise one document.
#[derive(Debug)]
pub struct DocMaterial {
    /// Changes already accepted, in storage order (they load).
    pub accepted: Vec<ByteBuf>,
    /// Changes not checked yet, or waiting for a dependency, in storage order.
    pub pending: Vec<PendingChange>,
    pub survey_id: String,
    pub survey_version: u32,
    pub definition: Option<String>,
    pub upto_seq: i64,
}

/// One change the checker has yet to settle.
#[derive(Debug)]
pub struct PendingChange {
    pub seq: i64,
    pub hash: Vec<u8>,
    pub origin: String,
    pub bytes: ByteBuf,
}

/// What checking one document found: a verdict per pending change and the response as its
/// accepted changes make it, or why its accepted changes no longer load.
pub type CheckOutcome = std::result::Result<Checked, String>;

/// What became of one queued document.
#[derive(Debug)]
pub enum Settlement {
    /// The document no longer exists (erased): drop it from the queue.
    Gone(String),
    /// Settle each pending change (accepted and refused changes get the next relay numbers,
    /// so pulls see them in the order they settled), write the summary, and take the
    /// document off the queue unless newer changes arrived meanwhile.
    // Boxed: the material holds every change of the document.
    Done(Box<(Queued, DocMaterial, CheckOutcome)>),
}

/// Listing a survey's responses, one page after `after` (ids in order).
#[derive(Clone, Debug, Default)]
pub struct ResponseQuery {
    pub org_id: String,
    pub survey_id: String,
    pub status: Option<String>,
    /// Only responses owned by this principal (enumerator devices see only their own).
    pub owner: Option<String>,
    /// Only responses with validation errors.
    pub invalid_only: bool,
    /// Only responses with conflicts.
    pub conflicted_only: bool,
    /// Restricted responses too (admins only).
    pub include_restricted: bool,
    pub after: Option<String>,
    pub limit: u32,
}
