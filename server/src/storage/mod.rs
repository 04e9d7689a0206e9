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

mod invitations;
mod links;
mod media;
mod page;
pub mod postgres;
mod records;
mod rights;
pub mod sqlite;
mod summary;

pub use invitations::{
    InvitationRow, InvitationStatus, InvitationStorage, InvitationSummary, NewInvitation,
    SendOutcome,
};
pub use links::{LinkRow, LinkStorage, NewLink};
pub use media::{
    Attached, AttachmentRow, ChunkStored, FoundTarget, KeySource, MediaStorage, MediaTarget,
    NewAttachment, address_hex,
};
pub(crate) use page::{Page, open_change};
pub use records::*;
pub use rights::{AuditHead, ChainReport, ErasedRecord, ErasureCause, Expired, SubjectResponse};
pub(crate) use rights::{ChainCheck, Sealable, chain_key, chain_of, edit_audit};
pub use summary::Summary;
pub(crate) use summary::{decode_summary, list_item, unreadable_because};

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use fieldsync_protocol::api::{MemberInfo, Published, ResponsePage, ResponseView, SurveyInfo};
use fieldsync_protocol::document::Status;
use fieldsync_protocol::wire::{PullResponse, SurveyStatus};

use crate::auth::Caller;
use crate::keys::KeyRing;

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
/// The names the response index holds for `statuses` (approved responses reviewed before
/// statuses had names of their own are stored as `reviewed`).
pub(crate) fn status_names(statuses: &[Status]) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = statuses.iter().map(|s| s.as_str()).collect();
    if statuses.contains(&Status::Approved) {
        names.push("reviewed");
    }
    names
}

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
    let operator_audit = db.operator_audit_key().await?;
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
    if let Some(wrapped) = operator_audit {
        keys.adopt_operator_audit(&wrapped)
            .map_err(|e| StorageError::Corrupt(format!("the operator audit key: {e}")))?;
    }
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
pub trait Storage:
    MediaStorage + LinkStorage + InvitationStorage + Send + Sync + std::fmt::Debug
{
    /// Record the instance's region on first use, and refuse any other region afterwards
    /// ([`StorageError::WrongRegion`]): an organisation's data, keys and backups stay in the
    /// region it was created in.
    async fn pin_region(&self, region: &str) -> Result<()>;
    /// Whether the database answers a read, and (SQLite) the writer thread a write
    /// transaction: what `/readyz` checks.
    async fn ready(&self) -> Result<()>;
    /// Record `check` (sealed by the master key, see [`KeyRing::check_value`]) on first use
    /// and return what is recorded, so that an instance started with another master key is
    /// refused before it writes anything the others cannot read.
    async fn pin_master_key(&self, check: Vec<u8>) -> Result<Vec<u8>>;
    /// This database's incarnation: a random id recorded on first use (`candidate`), or
    /// replaced by `candidate` when `replace` (after a restore). Pull cursors belong to it.
    async fn incarnation(&self, candidate: &str, replace: bool) -> Result<String>;
    /// The last relay number handed out: no cursor of this database is beyond it.
    async fn relay_counter(&self) -> Result<i64>;
    /// The operator audit chain's seed a master-key rotation stored, wrapped by the master key.
    async fn operator_audit_key(&self) -> Result<Option<Vec<u8>>>;
    /// Store a master-key rotation: every organisation's rewrapped key, the new key's check
    /// value and the operator chain's seed, in one transaction.
    async fn rewrap(&self, rotation: crate::keys::Rotation) -> Result<()>;

    // --- organisations ---

    /// Create an organisation with its first admin (and that admin's one-time login).
    async fn create_org(&self, org: NewOrg, admin: NewPrincipal) -> Result<()>;
    async fn org(&self, org_id: &str) -> Result<Option<Org>>;
    /// Every organisation on this server, oldest first (for the operator's command line).
    async fn orgs(&self) -> Result<Vec<OrgListing>>;
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
    /// A further credential for an existing principal, with its audit entry. A one-time one
    /// (an enrollment code issued again) revokes the principal's unused ones of its kind.
    async fn issue_credential(
        &self,
        principal_id: &str,
        credential: NewCredential,
        audit: AuditEvent,
    ) -> Result<()>;
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
    /// How many of a survey's exportable responses (readable, not restricted) have one of
    /// `statuses`: the rows of an export narrowed by status only.
    async fn count_responses(
        &self,
        org_id: &str,
        survey_id: &str,
        statuses: Vec<Status>,
    ) -> Result<u64>;

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
