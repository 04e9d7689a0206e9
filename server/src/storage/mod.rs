//! Storage: the domain operations the server needs of its database, as one trait
//! ([`Storage`]), and the backends that implement it (today [`sqlite`], the embedded default).
//!
//! Nothing outside a backend sees SQL, a connection or a driver's error: handlers call the
//! service layer ([`crate::service`]), which holds the policy (roles, assignments, survey
//! status, version rules) once and calls these operations. Each operation is atomic: it
//! commits whole or not at all, and a write returns only after its commit is durable.
//!
//! Every operation that changes something an organisation's admins must be able to see later
//! takes the [`AuditEvent`] to record with it, in the same transaction.

mod media;
mod page;
pub mod postgres;
mod rights;
pub mod sqlite;
mod summary;

pub use media::{
    Attached, AttachmentRow, ChunkStored, FoundTarget, KeySource, MediaStorage, MediaTarget,
    NewAttachment, address_hex,
};
pub(crate) use page::{Page, open_change};
pub use rights::{AuditHead, ChainReport, ErasedRecord, ErasureCause, Expired, SubjectResponse};
pub(crate) use rights::{ChainCheck, Sealable, chain_key, chain_of, edit_audit};
pub use summary::Summary;
pub(crate) use summary::{decode_summary, list_item, unreadable_because};

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use fieldsync_protocol::api::{
    MemberInfo, Published, ResponsePage, ResponseView, Role, SurveyInfo,
};
use fieldsync_protocol::wire::{
    DocChanges, DocPushResult, KnownSurvey, PullResponse, SurveyStatus,
};
use serde::Serialize;
use serde_bytes::ByteBuf;

use crate::auth::Caller;
use crate::keys::KeyRing;
use crate::worker::Checked;

/// The storage every request handler and background job uses; cheap to clone.
pub type Db = Arc<dyn Storage>;

/// Which database an instance uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Database {
    /// The embedded default: one SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL server, by URL (`postgres://user:password@host:port/dbname`); several
    /// instances may share it.
    Postgres(String),
}

impl std::fmt::Display for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Database::Sqlite(path) => write!(f, "{}", path.display()),
            Database::Postgres(url) => f.write_str(&postgres::redact(url)),
        }
    }
}

/// Open `database` (creating or upgrading its schema) and pin it to `region`.
pub async fn open(database: &Database, keys: Arc<KeyRing>, region: &str) -> Result<Db> {
    let db: Db = match database {
        Database::Sqlite(path) => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| {
                    StorageError::Backend(format!("cannot create {}: {e}", dir.display()))
                })?;
            }
            let (path, keys) = (path.clone(), keys.clone());
            let sqlite = tokio::task::spawn_blocking(move || sqlite::Sqlite::open(&path, keys))
                .await
                .map_err(|_| StorageError::TaskFailed)??;
            Arc::new(sqlite)
        }
        Database::Postgres(url) => Arc::new(postgres::Postgres::connect(url, keys.clone()).await?),
    };
    db.pin_region(region).await?;
    db.pin_master_key(
        keys.check_value()
            .map_err(|e| StorageError::Corrupt(e.to_string()))?,
    )
    .await
    .and_then(|stored| {
        if keys.verify_check_value(&stored) {
            Ok(())
        } else {
            Err(StorageError::WrongMasterKey {
                location: database.to_string(),
            })
        }
    })?;
    Ok(db)
}

/// Errors from storage, whatever the backend. The service maps them onto API errors.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    /// The database could not take the operation now (locked, too many connections); the
    /// caller may retry.
    #[error("the database is busy: {0}")]
    Busy(String),
    #[error("database error: {0}")]
    Backend(String),
    #[error(
        "database {location} was written by a newer fieldsync-server (schema {found}); upgrade this binary"
    )]
    NewerSchema { location: String, found: String },
    #[error(
        "data directory {location} belongs to region {pinned:?}, not {requested:?}; start with --region {pinned} or use the {requested} instance's data directory"
    )]
    WrongRegion {
        location: String,
        pinned: String,
        requested: String,
    },
    #[error(
        "database {location} was set up with another master key; start with the master key file its other instances use (--master-key)"
    )]
    WrongMasterKey { location: String },
    #[error("stored data could not be decrypted or decoded: {0}")]
    Corrupt(String),
    #[error("the database task stopped unexpectedly")]
    TaskFailed,
    #[error("the database could not commit: {0}")]
    CommitFailed(String),
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// Milliseconds since the Unix epoch, the unit of every stored time.
pub fn now_ms() -> i64 {
    let now = time::OffsetDateTime::now_utc();
    (now.unix_timestamp_nanos() / 1_000_000) as i64
}

/// The domain operations of the server's database.
#[async_trait::async_trait]
pub trait Storage: MediaStorage + Send + Sync + std::fmt::Debug {
    /// Record the instance's region on first use, and refuse any other region afterwards
    /// ([`StorageError::WrongRegion`]): an organisation's data, keys and backups stay in the
    /// region it was created in.
    async fn pin_region(&self, region: &str) -> Result<()>;
    /// Record `check` (sealed by the master key, see [`KeyRing::check_value`]) on first use
    /// and return what is recorded, so that an instance started with another master key is
    /// refused before it writes anything the others cannot read.
    async fn pin_master_key(&self, check: Vec<u8>) -> Result<Vec<u8>>;

    // --- organisations ---

    /// Create an organisation with its first admin (and that admin's one-time login).
    async fn create_org(&self, org: NewOrg, admin: NewPrincipal) -> Result<()>;
    async fn org(&self, org_id: &str) -> Result<Option<Org>>;
    async fn set_support_access(
        &self,
        org_id: &str,
        enabled: bool,
        audit: AuditEvent,
    ) -> Result<()>;

    // --- principals and credentials ---

    /// The live principal behind a session or device token, if any.
    async fn authenticate(&self, token_hash: [u8; 32]) -> Result<Option<Principal>>;
    /// Exchange a one-time secret for a new credential, exactly once (see [`Redeem`]).
    async fn redeem(&self, redeem: Redeem) -> Result<Option<Redeemed>>;
    /// Create a principal with its first credential, its survey assignments and its audit
    /// entry.
    async fn create_principal(&self, new: NewPrincipal) -> Result<()>;
    /// A further credential for an existing principal (a device enrolled again).
    async fn issue_credential(&self, principal_id: &str, credential: NewCredential) -> Result<()>;
    async fn member(&self, org_id: &str, principal_id: &str) -> Result<Option<MemberInfo>>;
    async fn members(&self, org_id: &str) -> Result<Vec<MemberInfo>>;
    /// Revoke a member or device and every credential it holds; false if no such member.
    async fn revoke_member(
        &self,
        org_id: &str,
        principal_id: &str,
        audit: AuditEvent,
    ) -> Result<bool>;
    /// Revoke one token (a logout).
    async fn revoke_credential(&self, token_hash: [u8; 32], audit: AuditEvent) -> Result<()>;
    /// Revoke a support agent (no organisation) and its credentials; false if none.
    async fn revoke_support(&self, support_id: &str, audit: AuditEvent) -> Result<bool>;

    /// Failed sign-in attempts from `client` (an address) in its current window: when the
    /// window started, and how many. Shared by every instance on the database.
    async fn sign_in_failures(&self, client: &str) -> Result<Option<(i64, u32)>>;
    /// Count one failed sign-in from `client`; a window older than `window_ms` starts over.
    /// Windows that have ended are forgotten.
    async fn record_sign_in_failure(&self, client: &str, window_ms: i64) -> Result<()>;

    // --- the audit log ---

    async fn record_audit(&self, event: AuditEvent) -> Result<()>;
    /// The organisation's entries after `after_id`, oldest first.
    async fn audit_log(&self, org_id: &str, after_id: i64, limit: u32) -> Result<Vec<AuditEntry>>;
    /// The organisation's entries about any of `targets` (a response's processing record),
    /// oldest first.
    async fn audit_about(&self, org_id: &str, targets: Vec<String>) -> Result<Vec<AuditEntry>>;

    // --- surveys ---

    /// Publish the next version of the organisation's survey with `form_id`: `plan` is given
    /// the survey as it stands (none on its first publication) and says what to write; the
    /// read and the write are one transaction, so two publications never get one number.
    async fn publish(&self, org_id: &str, form_id: &str, plan: PublishPlan) -> Result<Published>;
    /// The surveys a caller may see: all of the organisation's, or an enumerator's assigned
    /// ones.
    async fn surveys(&self, org_id: &str, enumerator: Option<&str>) -> Result<Vec<SurveyInfo>>;
    async fn survey(
        &self,
        org_id: &str,
        survey_id: &str,
        enumerator: Option<&str>,
    ) -> Result<Option<SurveyInfo>>;
    /// One version's definition JSON and when it was published.
    async fn survey_version(
        &self,
        org_id: &str,
        survey_id: &str,
        version: u32,
    ) -> Result<Option<(String, i64)>>;
    /// Every version's definition JSON, oldest first.
    async fn survey_definitions(&self, org_id: &str, survey_id: &str) -> Result<Vec<String>>;
    /// False if the organisation has no such survey.
    async fn set_survey_status(
        &self,
        org_id: &str,
        survey_id: &str,
        status: SurveyStatus,
        audit: AuditEvent,
    ) -> Result<bool>;
    /// Assign a survey to an enumerator of the same organisation (idempotent).
    async fn assign(
        &self,
        org_id: &str,
        survey_id: &str,
        enumerator_id: &str,
        audit: AuditEvent,
    ) -> Result<()>;

    // --- sync ---

    /// Store a batch of verified documents in one transaction, each admitted or refused whole
    /// by [`crate::service::policy::admit_push`]; the answer comes after the durable commit.
    /// A change already stored for its document is acknowledged as a duplicate, wherever it
    /// was pushed before.
    async fn push(&self, pusher: Caller, docs: Vec<VerifiedDoc>) -> Result<Pushed>;
    /// One page of checked changes after a cursor, with the survey updates, from one
    /// snapshot (see [`PullQuery`]).
    async fn pull(&self, query: PullQuery) -> Result<PullResponse>;
    /// Whether changes others pushed, that this caller could pull, still wait to be checked.
    async fn unchecked_for(&self, caller: &Caller) -> Result<bool>;

    // --- the materialiser ---

    /// Claim up to `limit` queued documents, none of those in `busy` (documents this
    /// materialiser is still checking or settling), and load what the sandbox needs to check
    /// them.
    async fn queued_material(
        &self,
        limit: u32,
        busy: &HashSet<String>,
    ) -> Result<Vec<(Queued, Option<DocMaterial>)>>;
    /// Record what checking found (see [`Settlement`]), in one transaction.
    async fn settle(&self, settled: Vec<Settlement>) -> Result<()>;

    // --- responses ---

    async fn responses(&self, query: ResponseQuery) -> Result<ResponsePage>;
    /// One response's summary, if the caller (an owner, for a device) may see it.
    async fn response(
        &self,
        org_id: &str,
        doc_id: &str,
        owner: Option<&str>,
    ) -> Result<Option<Summary>>;
    /// One page of a survey's readable responses for export, in id order.
    async fn export_page(
        &self,
        org_id: &str,
        survey_id: &str,
        after: &str,
        limit: u32,
    ) -> Result<Vec<ResponseView>>;
    /// How many of a survey's responses still wait for materialisation.
    async fn pending(&self, org_id: &str, survey_id: &str) -> Result<u64>;

    // --- respondents' rights ---

    /// The organisation's responses whose subject index holds any of `subjects` (see
    /// [`crate::keys::OrgKeys::subject_hash`]), of one survey if given, in id order.
    async fn subject_responses(
        &self,
        org_id: &str,
        subjects: Vec<[u8; 32]>,
        survey_id: Option<String>,
    ) -> Result<Vec<SubjectResponse>>;
    /// Erase responses: delete every row of them, their wrapped document keys included (what
    /// is left anywhere is ciphertext nobody can open), remember their ids so a push of one is
    /// refused for ever, and number an erasure notice for devices. Returns the ids erased
    /// (those the organisation had; with [`ErasureCause::Restore`], also those it did not hold
    /// and had not remembered as erased, which are remembered and noticed). When it returns, the backend has cleared what its own
    /// files kept of them as far as it can (SQLite: zeroed pages, checkpointed write-ahead
    /// log).
    async fn erase(
        &self,
        org_id: &str,
        doc_ids: Vec<String>,
        cause: ErasureCause,
        audit: AuditEvent,
    ) -> Result<Vec<String>>;
    /// One page of erased responses (ids only), in id order after `after`: the list an
    /// operator applies again to a restored backup.
    async fn erased(&self, after: &str, limit: u32) -> Result<Vec<ErasedRecord>>;
    /// Restrict processing of responses, or lift it, numbering a notice for devices for each
    /// that changed; returns those.
    async fn set_restricted(
        &self,
        org_id: &str,
        doc_ids: Vec<String>,
        restricted: bool,
        audit: AuditEvent,
    ) -> Result<Vec<String>>;
    /// Put a person on the do-not-contact list or take them off; false if nothing changed.
    async fn set_do_not_contact(
        &self,
        org_id: &str,
        subject: [u8; 32],
        listed: bool,
        audit: AuditEvent,
    ) -> Result<bool>;
    /// Which of `subjects` are on the do-not-contact list.
    async fn do_not_contact(&self, org_id: &str, subjects: Vec<[u8; 32]>) -> Result<Vec<[u8; 32]>>;
    /// Set how long a survey's responses are kept (`None`: until erased); false if no such
    /// survey.
    async fn set_retention(
        &self,
        org_id: &str,
        survey_id: &str,
        retention_ms: Option<i64>,
        audit: AuditEvent,
    ) -> Result<bool>;
    /// Responses past their survey's retention period at `now`, oldest first, at most
    /// `limit`, of every organisation.
    async fn expired(&self, now: i64, limit: u32) -> Result<Vec<Expired>>;
    /// One page of an audit chain (an organisation's, or of no organisation) after `after_id`,
    /// with each entry's seal.
    async fn audit_chain(
        &self,
        org_id: Option<&str>,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<AuditEntry>>;
    /// Where an audit chain ends, if anything was recorded in it.
    async fn audit_head(&self, org_id: Option<&str>) -> Result<Option<AuditHead>>;
}

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
