//! The sync path's storage: storing pushed changes (encrypted, deduplicated by hash, numbered
//! by the storage sequence) and paging them out again to pulling clients once the sandbox has
//! checked them (numbered by the relay sequence, see [`state`]).
//!
//! Nothing here parses Automerge: by the time changes reach [`push`] the worker pool has
//! parsed them in its sandbox and returned their hashes; the materialiser later checks, in the
//! sandbox, that each document still loads with its new changes, and only then are they
//! relayed.

use std::collections::HashMap;
use std::sync::Arc;

use fieldsync_protocol::api::Role;
use fieldsync_protocol::crypto::{Cipher, Sealed};
use fieldsync_protocol::wire::{
    DocChanges, DocKind, DocPushResult, ErrorCode, PROTOCOL_VERSION, PullResponse, PushOutcome,
    RefusedChange, SurveyStatus,
};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde_bytes::ByteBuf;
use uuid::Uuid;

use super::{StoreError, now_ms, surveys};
use crate::auth::Caller;
use crate::keys::{KeyRing, change_binding};

/// One pushed document whose changes the sandbox parsed successfully.
#[derive(Debug)]
pub struct VerifiedDoc {
    pub doc: DocChanges,
    /// The hash of each change, in the same order as `doc.changes`.
    pub hashes: Vec<ByteBuf>,
}

/// The organisation key, resolved once per request.
pub fn org_cipher(
    conn: &Connection,
    keys: &KeyRing,
    org_id: &str,
) -> Result<Arc<Cipher>, StoreError> {
    let wrapped: Vec<u8> = conn
        .prepare_cached("SELECT wrapped_key FROM orgs WHERE id = ?1")?
        .query_row([org_id], |r| r.get(0))
        .optional()?
        .ok_or_else(|| StoreError::NotFound("no such organisation".into()))?;
    keys.org_cipher(org_id, &wrapped)
        .map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn rejected(doc_id: Uuid, code: ErrorCode, message: impl Into<String>) -> DocPushResult {
    DocPushResult {
        doc_id,
        outcome: PushOutcome::Rejected {
            code,
            message: message.into(),
        },
    }
}

/// Store a batch of verified documents in one transaction. Each document is accepted whole
/// or rejected whole; the caller commits, then acknowledges.
pub fn push(
    tx: &Transaction<'_>,
    keys: &KeyRing,
    caller: &Caller,
    origin: &str,
    docs: &[VerifiedDoc],
) -> Result<(Vec<DocPushResult>, bool), StoreError> {
    let org_id = caller.org_id.as_str();
    let org = org_cipher(tx, keys, org_id)?;
    let mut next_seq: i64 = tx
        .prepare_cached("SELECT coalesce(max(seq), 0) + 1 FROM changes")?
        .query_row([], |r| r.get(0))?;
    let now = now_ms();
    let mut results = Vec::with_capacity(docs.len());
    let mut stored_any = false;
    let mut gates: HashMap<Uuid, Option<surveys::SurveyGate>> = HashMap::new();

    for VerifiedDoc { doc, hashes } in docs {
        let doc_id = doc.doc_id;
        if doc.kind != DocKind::Response {
            results.push(rejected(
                doc_id,
                ErrorCode::Forbidden,
                "only the server writes survey documents; publish a new version instead",
            ));
            continue;
        }
        let id = doc_id.to_string();
        let survey_id = doc.survey_id.to_string();
        let gate = match gates.get(&doc.survey_id) {
            Some(g) => g.clone(),
            None => {
                let g = surveys::gate(tx, org_id, &survey_id, &caller.principal_id)?;
                gates.insert(doc.survey_id, g.clone());
                g
            }
        };
        let existing: Option<(String, String, String, i64, Vec<u8>)> = tx
            .prepare_cached(
                "SELECT org_id, survey_id, owner_id, survey_version, wrapped_key FROM docs WHERE id = ?1",
            )?
            .query_row([&id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
            .optional()?;
        let is_device = caller.role == Role::Enumerator;
        let cipher = match existing {
            Some((doc_org, doc_survey, owner, version, wrapped)) => {
                // Another organisation's document is "not found", never "forbidden": its
                // existence is not ours to reveal.
                if doc_org != org_id || (is_device && owner != caller.principal_id) {
                    results.push(rejected(
                        doc_id,
                        ErrorCode::NotFound,
                        format!("no response {doc_id} is visible to you"),
                    ));
                    continue;
                }
                if doc_survey != survey_id || version != i64::from(doc.survey_version) {
                    results.push(rejected(
                        doc_id,
                        ErrorCode::Invalid,
                        format!(
                            "response {doc_id} belongs to survey {doc_survey} version {version}; it cannot move to another survey or version"
                        ),
                    ));
                    continue;
                }
                // A retry of changes already stored (say, after a lost acknowledgement) is
                // still acknowledged as duplicates: only new changes are refused.
                if is_device
                    && matches!(&gate, Some(g) if g.status == SurveyStatus::Closed)
                    && has_new_change(tx, &id, hashes)?
                {
                    results.push(rejected(
                        doc_id,
                        ErrorCode::SurveyClosed,
                        "the survey is closed and takes no more changes from devices; ask a coordinator",
                    ));
                    continue;
                }
                keys.doc_cipher(&org, org_id, &id, &wrapped)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?
            }
            None => {
                let Some(gate) = &gate else {
                    results.push(rejected(
                        doc_id,
                        ErrorCode::NotFound,
                        format!("no survey {} in this organisation", doc.survey_id),
                    ));
                    continue;
                };
                if is_device && !gate.assigned {
                    results.push(rejected(
                        doc_id,
                        ErrorCode::Forbidden,
                        format!("survey {} is not assigned to this device; ask a coordinator to assign it", doc.survey_id),
                    ));
                    continue;
                }
                if gate.status == SurveyStatus::Closed {
                    results.push(rejected(
                        doc_id,
                        ErrorCode::SurveyClosed,
                        format!("survey {} is closed and takes no new responses; keep the response and ask a coordinator", doc.survey_id),
                    ));
                    continue;
                }
                if doc.survey_version == 0 || doc.survey_version > gate.latest_version {
                    results.push(rejected(
                        doc_id,
                        ErrorCode::Invalid,
                        format!(
                            "survey {} has no version {}; sync to get the published versions",
                            doc.survey_id, doc.survey_version
                        ),
                    ));
                    continue;
                }
                let (cipher, wrapped) = keys
                    .new_doc_key(&org, org_id, &id)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                tx.prepare_cached(
                    "INSERT INTO docs (id, org_id, survey_id, survey_version, owner_id, wrapped_key, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?
                .execute(params![
                    id,
                    org_id,
                    survey_id,
                    doc.survey_version,
                    caller.principal_id,
                    wrapped,
                    now
                ])?;
                cipher
            }
        };

        let (mut new, mut duplicate) = (0u32, 0u32);
        let mut last_seq = None;
        for (bytes, hash) in doc.changes.iter().zip(hashes) {
            let seen = tx
                .prepare_cached("SELECT 1 FROM changes WHERE doc_id = ?1 AND hash = ?2")?
                .query_row(params![id, hash.as_slice()], |_| Ok(()))
                .optional()?
                .is_some();
            if seen {
                duplicate += 1;
                continue;
            }
            let seq = next_seq;
            let sealed = cipher
                .seal(&change_binding(org_id, &id, seq), bytes)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            tx.prepare_cached(
                "INSERT INTO changes (seq, org_id, doc_id, hash, origin, payload)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                seq,
                org_id,
                id,
                hash.as_slice(),
                origin,
                sealed.to_bytes()
            ])?;
            next_seq += 1;
            new += 1;
            last_seq = Some(seq);
        }
        if let Some(seq) = last_seq {
            tx.prepare_cached(
                "INSERT INTO materialize_queue (doc_id, org_id, seq) VALUES (?1, ?2, ?3)
                 ON CONFLICT (doc_id) DO UPDATE SET seq = excluded.seq",
            )?
            .execute(params![id, org_id, seq])?;
            stored_any = true;
        }
        results.push(DocPushResult {
            doc_id,
            outcome: PushOutcome::Stored { new, duplicate },
        });
    }
    Ok((results, stored_any))
}

/// Whether any of `hashes` is not stored yet for the document.
fn has_new_change(
    tx: &Transaction<'_>,
    doc_id: &str,
    hashes: &[ByteBuf],
) -> Result<bool, StoreError> {
    let mut stmt = tx.prepare_cached("SELECT 1 FROM changes WHERE doc_id = ?1 AND hash = ?2")?;
    for hash in hashes {
        if !stmt.exists(params![doc_id, hash.as_slice()])? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Where a stored change is in its checking (the `changes.state` column).
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

/// Whether changes pushed by others that this caller could pull are still being checked. A
/// pull waits (bounded) for them, so that what one client pushed is in the next pull of the
/// others, not one materialiser round later.
pub fn unchecked_for(conn: &Connection, caller: &Caller, origin: &str) -> Result<bool, StoreError> {
    let owner = (caller.role == Role::Enumerator).then_some(caller.principal_id.as_str());
    Ok(conn
        .prepare_cached(
            // Written as two ranges around the caller's own origin, so the partial index skips
            // the caller's own unchecked changes instead of walking them.
            "SELECT 1 FROM (
                 SELECT doc_id FROM changes WHERE org_id = ?1 AND state = 0 AND origin < ?2
                 UNION ALL
                 SELECT doc_id FROM changes WHERE org_id = ?1 AND state = 0 AND origin > ?2
             ) c JOIN docs d ON d.id = c.doc_id
             WHERE ?3 IS NULL OR d.owner_id = ?3
             LIMIT 1",
        )?
        .exists(params![caller.org_id, origin, owner])?)
}

/// One page of checked changes after `cursor` that the caller may see, excluding what this
/// same client session pushed itself, and the notices of this session's changes that the
/// checks refused. The page ends after `limit` changes or once it holds `max_bytes` of them.
pub fn pull(
    conn: &mut Connection,
    keys: &KeyRing,
    caller: &Caller,
    origin: &str,
    cursor: u64,
    limit: u32,
    max_bytes: usize,
) -> Result<PullResponse, StoreError> {
    let org_id = caller.org_id.as_str();
    // One read transaction: the high-water mark and the page come from the same snapshot.
    let tx = conn.transaction()?;
    let org = org_cipher(&tx, keys, org_id)?;
    let high: i64 = tx
        // Written as ORDER BY … LIMIT 1 so SQLite reads one entry at the end of the
        // organisation's index range instead of walking the range (max() with a WHERE does).
        .prepare_cached(
            "SELECT relay FROM changes WHERE org_id = ?1 AND relay IS NOT NULL
             ORDER BY relay DESC LIMIT 1",
        )?
        .query_row([org_id], |r| r.get(0))
        .optional()?
        .unwrap_or(0);
    let cursor = i64::try_from(cursor).unwrap_or(i64::MAX);
    let owner = (caller.role == Role::Enumerator).then_some(caller.principal_id.as_str());
    let mut docs: Vec<DocChanges> = Vec::new();
    let mut refused = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut last = cursor;
    let mut count = 0u32;
    let mut bytes = 0usize;
    if high > cursor {
        let mut stmt = tx.prepare_cached(
            "SELECT c.relay, c.seq, c.doc_id, c.state, c.payload, c.hash,
                    d.survey_id, d.survey_version, d.wrapped_key
             FROM changes c JOIN docs d ON d.id = c.doc_id
             WHERE c.org_id = ?1 AND c.relay > ?2 AND c.relay <= ?3
               AND ((c.state = 1 AND c.origin != ?4) OR (c.state = 2 AND c.origin = ?4))
               AND (?5 IS NULL OR d.owner_id = ?5)
             ORDER BY c.relay LIMIT ?6",
        )?;
        let mut reason_stmt =
            tx.prepare_cached("SELECT reason FROM refusals WHERE doc_id = ?1 AND hash = ?2")?;
        let mut rows = stmt.query(params![org_id, cursor, high, origin, owner, limit])?;
        while let Some(r) = rows.next()? {
            let relay: i64 = r.get(0)?;
            let seq: i64 = r.get(1)?;
            let doc_id: String = r.get(2)?;
            let parsed_id =
                Uuid::parse_str(&doc_id).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            last = relay;
            count += 1;
            if r.get::<_, i64>(3)? == state::REFUSED {
                let hash: Vec<u8> = r.get(5)?;
                let reason: String = reason_stmt
                    .query_row(params![doc_id, hash], |r| r.get(0))
                    .optional()?
                    .unwrap_or_else(|| "the server's checks refused it".to_owned());
                refused.push(RefusedChange {
                    doc_id: parsed_id,
                    hash: ByteBuf::from(hash),
                    reason,
                });
                continue;
            }
            let payload: Vec<u8> = r.get(4)?;
            let sealed =
                Sealed::from_bytes(&payload).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let cipher = keys
                .doc_cipher(&org, org_id, &doc_id, &r.get::<_, Vec<u8>>(8)?)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let plain = cipher
                .open_owned(&change_binding(org_id, &doc_id, seq), sealed)
                .map_err(|e| StoreError::Corrupt(format!("change {seq}: {e}")))?;
            let slot = match index.get(&doc_id) {
                Some(&i) => i,
                None => {
                    let survey_id: String = r.get(6)?;
                    docs.push(DocChanges {
                        doc_id: parsed_id,
                        kind: DocKind::Response,
                        survey_id: Uuid::parse_str(&survey_id)
                            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                        survey_version: r.get(7)?,
                        changes: Vec::new(),
                    });
                    index.insert(doc_id, docs.len() - 1);
                    docs.len() - 1
                }
            };
            bytes += plain.as_bytes().len();
            docs[slot]
                .changes
                .push(ByteBuf::from(plain.as_bytes().to_vec()));
            if bytes >= max_bytes {
                // Pages are bounded in bytes too, whatever the change count asked for.
                break;
            }
        }
    }
    // A short page means everything up to the high-water mark was examined, including rows the
    // caller may not see, so the next pull starts after all of them.
    let more = (count >= limit || bytes >= max_bytes) && last < high;
    let next = if more { last } else { high.max(cursor) };
    tx.finish()?;
    Ok(PullResponse {
        protocol: PROTOCOL_VERSION,
        docs,
        surveys: Vec::new(),
        survey_states: Vec::new(),
        cursor: next as u64,
        more,
        refused,
    })
}
