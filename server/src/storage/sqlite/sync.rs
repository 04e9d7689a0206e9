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
use fieldsync_protocol::crypto::Cipher;
use fieldsync_protocol::wire::{DocPushResult, PullResponse, PushOutcome, SurveyUpdate};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde_bytes::ByteBuf;
use uuid::Uuid;

use super::surveys;
use crate::auth::Caller;
use crate::keys::{KeyRing, OrgKeys, change_binding};
use crate::service::policy::{self, Admission};
use crate::storage::{
    Page, PullQuery, Pushed, StorageError, StoredDoc, SurveyGate, VerifiedDoc, edit_audit, now_ms,
    open_change, state,
};

/// The organisation key, resolved once per request.
pub fn org_cipher(
    conn: &Connection,
    keys: &KeyRing,
    org_id: &str,
) -> Result<Arc<Cipher>, StorageError> {
    Ok(org_keys(conn, keys, org_id)?.cipher.clone())
}

/// The organisation key and the keys derived from it.
pub fn org_keys(
    conn: &Connection,
    keys: &KeyRing,
    org_id: &str,
) -> Result<Arc<OrgKeys>, StorageError> {
    let wrapped: Vec<u8> = conn
        .prepare_cached("SELECT wrapped_key FROM orgs WHERE id = ?1")?
        .query_row([org_id], |r| r.get(0))
        .optional()?
        .ok_or_else(|| StorageError::NotFound("no such organisation".into()))?;
    keys.org_keys(org_id, &wrapped)
        .map_err(|e| StorageError::Corrupt(e.to_string()))
}

/// Store a batch of verified documents in one transaction. Each document is accepted whole
/// or rejected whole; the caller commits, then acknowledges.
pub fn push(
    tx: &Transaction<'_>,
    keys: &KeyRing,
    caller: &Caller,
    docs: &[VerifiedDoc],
) -> Result<Pushed, StorageError> {
    let org_id = caller.org_id.as_str();
    let origin = caller.session.as_str();
    let org = org_cipher(tx, keys, org_id)?;
    // From a counter, never `max(seq) + 1`: erasure deletes changes, and a number handed out
    // once must never be handed out again.
    let first_seq: i64 = tx
        .prepare_cached("SELECT value + 1 FROM counters WHERE name = 'seq'")?
        .query_row([], |r| r.get(0))?;
    let mut next_seq = first_seq;
    let now = now_ms();
    let mut results = Vec::with_capacity(docs.len());
    let mut stored_any = false;
    let mut gates: HashMap<Uuid, Option<SurveyGate>> = HashMap::new();

    for VerifiedDoc {
        doc,
        hashes,
        touched,
    } in docs
    {
        let doc_id = doc.doc_id;
        let id = doc_id.to_string();
        let gate = match gates.get(&doc.survey_id) {
            Some(g) => g.clone(),
            None => {
                let g =
                    surveys::gate(tx, org_id, &doc.survey_id.to_string(), &caller.principal_id)?;
                gates.insert(doc.survey_id, g.clone());
                g
            }
        };
        let existing: Option<(StoredDoc, Vec<u8>)> = tx
            .prepare_cached(
                "SELECT org_id, survey_id, owner_id, survey_version, wrapped_key, restricted,
                        (SELECT i.status FROM response_index i WHERE i.doc_id = docs.id)
                 FROM docs WHERE id = ?1",
            )?
            .query_row([&id], |r| {
                Ok((
                    StoredDoc {
                        org_id: r.get(0)?,
                        survey_id: r.get(1)?,
                        owner_id: r.get(2)?,
                        survey_version: r.get(3)?,
                        restricted: r.get::<_, i64>(5)? != 0,
                        status: r.get(6)?,
                    },
                    r.get(4)?,
                ))
            })
            .optional()?;
        let erased = existing.is_none() && super::rights::is_erased(tx, org_id, &id)?;
        let admission = policy::admit_push(
            caller,
            doc,
            existing.as_ref().map(|(d, _)| d),
            erased,
            gate.as_ref(),
        );
        let owner = existing.as_ref().map(|(d, _)| d.owner_id.clone());
        let cipher = match (admission, existing) {
            (Admission::Refuse(answer), _) => {
                results.push(answer);
                continue;
            }
            (
                Admission::Existing {
                    unless_new: Some(answer),
                },
                Some(_),
            ) if has_new_change(tx, &id, hashes)? => {
                results.push(answer);
                continue;
            }
            (Admission::Existing { .. }, Some((_, wrapped))) => keys
                .doc_cipher(&org, org_id, &id, &wrapped)
                .map_err(|e| StorageError::Corrupt(e.to_string()))?,
            (Admission::Existing { .. }, None) => {
                return Err(StorageError::Corrupt(format!(
                    "the push policy took document {id} for a stored one, and it is not"
                )));
            }
            (Admission::Create, _) => {
                let (cipher, wrapped) = keys
                    .new_doc_key(&org, org_id, &id)
                    .map_err(|e| StorageError::Corrupt(e.to_string()))?;
                tx.prepare_cached(
                    "INSERT INTO docs (id, org_id, survey_id, survey_version, owner_id, wrapped_key, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?
                .execute(params![
                    id,
                    org_id,
                    doc.survey_id.to_string(),
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
                .map_err(|e| StorageError::Corrupt(e.to_string()))?;
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
        if let Some(event) = owner.and_then(|o| edit_audit(caller, &o, &id, new, touched)) {
            super::audit::record(tx, keys, &event)?;
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
    if next_seq != first_seq {
        tx.prepare_cached("UPDATE counters SET value = ?1 WHERE name = 'seq'")?
            .execute([next_seq - 1])?;
    }
    Ok(Pushed {
        results,
        stored_any,
    })
}

/// Whether any of `hashes` is not stored yet for the document.
fn has_new_change(
    tx: &Transaction<'_>,
    doc_id: &str,
    hashes: &[ByteBuf],
) -> Result<bool, StorageError> {
    let mut stmt = tx.prepare_cached("SELECT 1 FROM changes WHERE doc_id = ?1 AND hash = ?2")?;
    for hash in hashes {
        if !stmt.exists(params![doc_id, hash.as_slice()])? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Whether changes pushed by others that this caller could pull are still being checked. A
/// pull waits (bounded) for them, so that what one client pushed is in the next pull of the
/// others, not one materialiser round later.
pub fn unchecked_for(conn: &Connection, caller: &Caller) -> Result<bool, StorageError> {
    let origin = caller.session.as_str();
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
    q: &PullQuery,
) -> Result<PullResponse, StorageError> {
    let (caller, limit, max_bytes) = (&q.caller, q.limit, q.max_bytes);
    let org_id = caller.org_id.as_str();
    let origin = caller.session.as_str();
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
    let last_notice: i64 = tx
        .prepare_cached("SELECT relay FROM notices WHERE org_id = ?1 ORDER BY relay DESC LIMIT 1")?
        .query_row([org_id], |r| r.get(0))
        .optional()?
        .unwrap_or(0);
    let high = high.max(last_notice);
    let cursor = i64::try_from(q.cursor).unwrap_or(i64::MAX);
    let owner = (caller.role == Role::Enumerator).then_some(caller.principal_id.as_str());
    let mut page = Page::new(cursor, limit, max_bytes);
    // Notices go to every device of the organisation (they hold ids only): one that never
    // had the response ignores it.
    let end = if last_notice > cursor {
        let rows = tx
            .prepare_cached(
                "SELECT relay, doc_id, kind FROM notices
                 WHERE org_id = ?1 AND relay > ?2 AND relay <= ?3 ORDER BY relay LIMIT ?4",
            )?
            .query_map(params![org_id, cursor, high, limit], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        page.notices(high, rows)?
    } else {
        high
    };
    if end > cursor {
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
        let mut rows = stmt.query(params![org_id, cursor, end, origin, owner, limit])?;
        while let Some(r) = rows.next()? {
            let relay: i64 = r.get(0)?;
            let doc_id: String = r.get(2)?;
            let parsed_id =
                Uuid::parse_str(&doc_id).map_err(|e| StorageError::Corrupt(e.to_string()))?;
            if r.get::<_, i64>(3)? == state::REFUSED {
                let hash: Vec<u8> = r.get(5)?;
                let reason = reason_stmt
                    .query_row(params![doc_id, hash], |r| r.get(0))
                    .optional()?;
                page.refused(relay, parsed_id, hash, reason);
                continue;
            }
            let plain = open_change(
                keys,
                &org,
                org_id,
                &doc_id,
                &r.get::<_, Vec<u8>>(8)?,
                r.get(1)?,
                &r.get::<_, Vec<u8>>(4)?,
            )?;
            let survey_id: String = r.get(6)?;
            let survey_id =
                Uuid::parse_str(&survey_id).map_err(|e| StorageError::Corrupt(e.to_string()))?;
            if !page.change(relay, parsed_id, survey_id, r.get(7)?, plain) {
                break;
            }
        }
    }
    let (survey_states, send) =
        policy::survey_sync(&surveys::visible(&tx, org_id, owner)?, &q.known_surveys);
    let mut updates = Vec::with_capacity(send.len());
    for s in send {
        updates.push(SurveyUpdate {
            survey_id: s.id,
            status: s.status,
            latest_version: s.latest_version,
            document: ByteBuf::from(surveys::document(&tx, &s.id.to_string())?),
        });
    }
    tx.finish()?;
    Ok(page.finish(high, updates, survey_states))
}
