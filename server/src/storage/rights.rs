//! What storage keeps for respondents' rights, whatever the backend: the rows a subject
//! request finds, the causes of erasure, and the audit chain (each entry's MAC covers the
//! entry and the MAC before it, so a changed, removed or reordered entry is detected).

use ring::hmac;
use serde::Serialize;

use super::{AuditEntry, AuditEvent, Result, StorageError};
use crate::auth::Caller;
use crate::keys::KeyRing;

/// A response the subject index found for a person.
#[derive(Clone, Debug, PartialEq)]
pub struct SubjectResponse {
    pub doc_id: String,
    pub survey_id: String,
    pub survey_version: u32,
    pub owner_id: String,
    /// When the server first received it.
    pub created_at: i64,
    pub restricted: bool,
}

/// Why a response was erased.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErasureCause {
    /// At the respondent's request (`subject erase`).
    Request,
    /// Its survey's retention period ended (the purge).
    Retention,
    /// Applied again after a backup was restored: ids the restored database does not hold
    /// are remembered as erased too, so no device can push them back.
    Restore,
}

impl ErasureCause {
    pub fn as_str(self) -> &'static str {
        match self {
            ErasureCause::Request => "erasure",
            ErasureCause::Retention => "retention",
            ErasureCause::Restore => "restore",
        }
    }
}

/// One erased response, as `fieldsync-server admin erasures` lists them (ids only).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ErasedRecord {
    pub org_id: String,
    pub doc_id: String,
    pub erased_at: i64,
    pub cause: String,
}

/// A response past its survey's retention period.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Expired {
    pub org_id: String,
    pub survey_id: String,
    pub doc_id: String,
    /// When the server first received it.
    pub received_at: i64,
}

/// The audit entry of a member's edit of a response someone else collected (a correction),
/// when `new` changes of it were stored: who (the entry's actor), when, which response and
/// which questions, never the values.
pub(crate) fn edit_audit(
    pusher: &Caller,
    owner_id: &str,
    doc_id: &str,
    new: u32,
    touched: &[String],
) -> Option<AuditEvent> {
    if new == 0 || owner_id == pusher.principal_id {
        return None;
    }
    let detail = if touched.is_empty() {
        "no answer changed (status or metadata only)".to_owned()
    } else {
        format!("questions: {}", touched.join(", "))
    };
    Some(
        AuditEvent::by(pusher, "response_edited")
            .target(doc_id)
            .detail(detail),
    )
}

/// Where an audit chain ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditHead {
    pub last_id: i64,
    pub mac: Vec<u8>,
    pub entries: i64,
}

/// The chain an entry belongs to: its organisation's, or `""` for entries of none.
pub(crate) fn chain_of(org_id: Option<&str>) -> &str {
    org_id.unwrap_or("")
}

/// The key of `org_id`'s chain (`wrapped`: its organisation key as stored).
pub(crate) fn chain_key(
    keys: &KeyRing,
    org_id: Option<&str>,
    wrapped: Option<&[u8]>,
) -> Result<hmac::Key> {
    let org = match (org_id, wrapped) {
        (Some(id), Some(w)) => Some((id, w)),
        (Some(id), None) => {
            return Err(StorageError::NotFound(format!("no organisation {id}")));
        }
        (None, _) => None,
    };
    keys.audit_key(org)
        .map_err(|e| StorageError::Corrupt(e.to_string()))
}

/// The fields one entry's MAC covers.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sealable<'a> {
    pub id: i64,
    pub at: i64,
    pub org_id: Option<&'a str>,
    pub actor_id: Option<&'a str>,
    pub actor_role: Option<&'a str>,
    pub action: &'a str,
    pub target: Option<&'a str>,
    pub detail: Option<&'a str>,
}

impl<'a> Sealable<'a> {
    pub(crate) fn event(id: i64, at: i64, e: &'a AuditEvent) -> Sealable<'a> {
        Sealable {
            id,
            at,
            org_id: e.org_id.as_deref(),
            actor_id: Some(&e.actor_id),
            actor_role: Some(&e.actor_role),
            action: &e.action,
            target: e.target.as_deref(),
            detail: e.detail.as_deref(),
        }
    }

    pub(crate) fn entry(org_id: Option<&'a str>, e: &'a AuditEntry) -> Sealable<'a> {
        Sealable {
            id: e.id,
            at: e.at,
            org_id,
            actor_id: e.actor_id.as_deref(),
            actor_role: e.actor_role.as_deref(),
            action: &e.action,
            target: e.target.as_deref(),
            detail: e.detail.as_deref(),
        }
    }

    /// The MAC of this entry after `prev` (the previous entry's MAC, empty for the first):
    /// every field length-prefixed, absent ones marked as such, so no two entries encode
    /// alike.
    pub(crate) fn mac(&self, key: &hmac::Key, prev: &[u8]) -> Vec<u8> {
        let mut ctx = hmac::Context::with_key(key);
        let mut field = |bytes: Option<&[u8]>| match bytes {
            Some(b) => {
                ctx.update(&(b.len() as u32).to_be_bytes());
                ctx.update(b);
            }
            None => ctx.update(&u32::MAX.to_be_bytes()),
        };
        field(Some(b"fieldsync audit entry, version 1"));
        field(Some(&self.id.to_be_bytes()));
        field(Some(&self.at.to_be_bytes()));
        for text in [
            self.org_id,
            self.actor_id,
            self.actor_role,
            Some(self.action),
            self.target,
            self.detail,
        ] {
            field(text.map(str::as_bytes));
        }
        field(Some(prev));
        ctx.sign().as_ref().to_vec()
    }
}

/// What verifying a chain found.
pub type ChainReport = fieldsync_protocol::api::AuditVerification;

/// Checks a chain entry by entry, oldest first (fed page by page).
pub(crate) struct ChainCheck<'a> {
    key: hmac::Key,
    org_id: Option<&'a str>,
    prev: Vec<u8>,
    last_id: i64,
    report: ChainReport,
}

impl<'a> ChainCheck<'a> {
    pub(crate) fn new(key: hmac::Key, org_id: Option<&'a str>) -> ChainCheck<'a> {
        ChainCheck {
            key,
            org_id,
            prev: Vec::new(),
            last_id: 0,
            report: ChainReport::default(),
        }
    }

    /// Check the next entry; false once a problem is found (nothing later is trusted).
    pub(crate) fn feed(&mut self, e: &AuditEntry) -> bool {
        if self.report.problem.is_some() {
            return false;
        }
        let (Some(prev), Some(mac)) = (&e.prev, &e.mac) else {
            if self.report.verified > 0 {
                self.report.problem = Some(format!(
                    "entry {} has no seal, after sealed entries: it was inserted or its seal removed",
                    e.id
                ));
                return false;
            }
            self.report.unchained += 1;
            self.last_id = e.id;
            return true;
        };
        if *prev != self.prev {
            self.report.problem = Some(format!(
                "entry {} does not follow the entry before it: an entry between {} and {} was removed or changed",
                e.id, self.last_id, e.id
            ));
            return false;
        }
        if Sealable::entry(self.org_id, e).mac(&self.key, prev) != *mac {
            self.report.problem = Some(format!("entry {} was changed after it was recorded", e.id));
            return false;
        }
        self.prev = mac.clone();
        self.last_id = e.id;
        self.report.verified += 1;
        true
    }

    /// The verdict, given where the chain's head says it ends.
    pub(crate) fn finish(mut self, head: Option<AuditHead>) -> ChainReport {
        if self.report.problem.is_none() {
            let (last, entries) = head
                .as_ref()
                .map_or((0, 0), |h| (h.last_id, h.entries as u64));
            let head_mac = head.map(|h| h.mac).unwrap_or_default();
            if last != self.last_id && (self.report.verified > 0 || last != 0)
                || entries != self.report.verified
                || head_mac != self.prev
            {
                self.report.problem = Some(format!(
                    "the log ends at entry {} but was last written at entry {last} ({entries} sealed entries, {} found): entries were removed from its end",
                    self.last_id, self.report.verified
                ));
            }
        }
        self.report
    }
}
