//! The read side of responses: the materialisation queue, the encrypted index the background
//! materialiser fills, and the queries coordinators use to list, read and export responses.

use std::sync::Arc;

use fieldsync_protocol::api::{ResponsePage, ResponseView};
use fieldsync_protocol::cbor;
use fieldsync_protocol::crypto::{Cipher, Sealed};
use fieldsync_protocol::document::Status;
use rusqlite::{Connection, OptionalExtension, params};
use serde_bytes::ByteBuf;

use super::sync::org_cipher;
use crate::keys::{KeyRing, change_binding, summary_binding};
use crate::storage::{
    CheckOutcome, DocMaterial, PendingChange, Queued, ResponseQuery, StorageError, Summary, now_ms,
    state,
};
use crate::worker::ChangeVerdict;

/// The next documents to materialise.
pub fn queued(conn: &Connection, limit: u32) -> Result<Vec<Queued>, StorageError> {
    let mut stmt = conn.prepare_cached(
        "SELECT doc_id, org_id, seq FROM materialize_queue ORDER BY seq LIMIT ?1",
    )?;
    let rows = stmt.query_map([limit], |r| {
        Ok(Queued {
            doc_id: r.get(0)?,
            org_id: r.get(1)?,
            seq: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn doc_cipher(
    conn: &Connection,
    keys: &KeyRing,
    org: &Cipher,
    org_id: &str,
    doc_id: &str,
) -> Result<Option<(Arc<Cipher>, String, u32)>, StorageError> {
    let row: Option<(Vec<u8>, String, u32)> = conn
        .prepare_cached(
            "SELECT wrapped_key, survey_id, survey_version FROM docs WHERE id = ?1 AND org_id = ?2",
        )?
        .query_row([doc_id, org_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    match row {
        Some((wrapped, survey_id, version)) => {
            let cipher = keys
                .doc_cipher(org, org_id, doc_id, &wrapped)
                .map_err(|e| StorageError::Corrupt(e.to_string()))?;
            Ok(Some((cipher, survey_id, version)))
        }
        None => Ok(None),
    }
}

/// Decrypt every change of a document that is accepted or still to be checked, with its
/// survey definition.
pub fn material(
    conn: &mut Connection,
    keys: &KeyRing,
    org_id: &str,
    doc_id: &str,
) -> Result<Option<DocMaterial>, StorageError> {
    let tx = conn.transaction()?;
    let org = org_cipher(&tx, keys, org_id)?;
    let Some((cipher, survey_id, survey_version)) = doc_cipher(&tx, keys, &org, org_id, doc_id)?
    else {
        return Ok(None);
    };
    let mut accepted = Vec::new();
    let mut pending = Vec::new();
    let mut upto_seq = 0;
    {
        let mut stmt = tx.prepare_cached(
            // By document only (its organisation was checked above), so the planner walks
            // changes_doc_seq instead of the whole organisation's sequence.
            "SELECT seq, payload, state, hash, origin FROM changes
             WHERE doc_id = ?1 AND state != 2 ORDER BY seq",
        )?;
        let mut rows = stmt.query([doc_id])?;
        while let Some(r) = rows.next()? {
            let seq: i64 = r.get(0)?;
            let sealed = Sealed::from_bytes(&r.get::<_, Vec<u8>>(1)?)
                .map_err(|e| StorageError::Corrupt(e.to_string()))?;
            let plain = cipher
                .open_owned(&change_binding(org_id, doc_id, seq), sealed)
                .map_err(|e| StorageError::Corrupt(format!("change {seq}: {e}")))?;
            let bytes = ByteBuf::from(plain.as_bytes().to_vec());
            if r.get::<_, i64>(2)? == state::ACCEPTED {
                accepted.push(bytes);
            } else {
                pending.push(PendingChange {
                    seq,
                    hash: r.get(3)?,
                    origin: r.get(4)?,
                    bytes,
                });
            }
            upto_seq = seq;
        }
    }
    let definition: Option<String> = tx
        .prepare_cached(
            "SELECT definition FROM survey_versions WHERE survey_id = ?1 AND version = ?2",
        )?
        .query_row(params![survey_id, survey_version], |r| r.get(0))
        .optional()?;
    tx.finish()?;
    Ok(Some(DocMaterial {
        accepted,
        pending,
        survey_id,
        survey_version,
        definition,
        upto_seq,
    }))
}

/// Record what checking and materialisation found: settle each pending change (accepted and
/// refused changes get the next relay numbers, so pulls see them in the order they settled),
/// write the summary, and take the document off the queue unless newer changes arrived
/// meanwhile.
pub fn save_summary(
    conn: &Connection,
    keys: &KeyRing,
    org_id: &str,
    doc_id: &str,
    material: &DocMaterial,
    outcome: &CheckOutcome,
) -> Result<(), StorageError> {
    let org = super::sync::org_keys(conn, keys, org_id)?;
    let Some((cipher, _, _)) = doc_cipher(conn, keys, &org.cipher, org_id, doc_id)? else {
        return Ok(());
    };
    let mut summary = settle_changes(conn, org_id, doc_id, material, outcome)?;
    if let Ok(checked) = outcome {
        let subjects = super::rights::index_subjects(
            conn,
            &org,
            org_id,
            doc_id,
            &material.survey_id,
            &checked.subjects,
        )?;
        summary.do_not_contact =
            !super::rights::do_not_contact(conn, org_id, &subjects)?.is_empty();
    }
    let plain = cbor::encode(&summary).map_err(|e| StorageError::Corrupt(e.to_string()))?;
    let sealed = cipher
        .seal(&summary_binding(org_id, doc_id, material.upto_seq), &plain)
        .map_err(|e| StorageError::Corrupt(e.to_string()))?;
    let (status, errors, conflicts) = match &summary.view {
        Some(v) => (v.status.clone(), v.errors.len(), v.conflicts.len()),
        None => ("unknown".to_owned(), 0, 0),
    };
    conn.prepare_cached(
        "INSERT INTO response_index (doc_id, org_id, survey_id, survey_version, status, error_count,
                                     conflict_count, broken, upto_seq, summary, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
         ON CONFLICT (doc_id) DO UPDATE SET status = excluded.status,
             error_count = excluded.error_count, conflict_count = excluded.conflict_count,
             broken = excluded.broken, upto_seq = excluded.upto_seq, summary = excluded.summary,
             updated_at = excluded.updated_at",
    )?
    .execute(params![
        doc_id,
        org_id,
        material.survey_id,
        material.survey_version,
        status,
        errors as i64,
        conflicts as i64,
        summary.broken.is_some() as i64,
        material.upto_seq,
        sealed.to_bytes(),
        now_ms()
    ])?;
    conn.prepare_cached("DELETE FROM materialize_queue WHERE doc_id = ?1 AND seq <= ?2")?
        .execute(params![doc_id, material.upto_seq])?;
    if let Ok(checked) = outcome {
        let settled = !conn
            .prepare_cached("SELECT 1 FROM materialize_queue WHERE doc_id = ?1")?
            .exists([doc_id])?;
        super::media::mark_referenced(conn, org_id, doc_id, &checked.media, settled)?;
    }
    Ok(())
}

/// Apply the checker's verdicts to the stored changes and say what the index should hold.
fn settle_changes(
    conn: &Connection,
    org_id: &str,
    doc_id: &str,
    material: &DocMaterial,
    outcome: &CheckOutcome,
) -> Result<Summary, StorageError> {
    let checked = match outcome {
        Ok(c) => c,
        Err(reason) => {
            // Nothing can be checked on top of accepted changes that no longer load: what
            // waits, waits (and blocks no pull); the response shows as unreadable.
            conn.prepare_cached("UPDATE changes SET state = 3 WHERE doc_id = ?1 AND state = 0")?
                .execute([doc_id])?;
            return Ok(Summary {
                view: None,
                broken: Some(reason.clone()),
                restricted: false,
                do_not_contact: false,
            });
        }
    };
    if checked.verdicts.len() != material.pending.len() {
        return Err(StorageError::Corrupt(format!(
            "the checker gave {} verdicts for {} changes of {doc_id}",
            checked.verdicts.len(),
            material.pending.len()
        )));
    }
    let mut relay: i64 = conn
        .prepare_cached("SELECT value FROM counters WHERE name = 'relay'")?
        .query_row([], |r| r.get(0))?;
    let start = relay;
    let now = now_ms();
    let mut first_refusal = None;
    for (change, verdict) in material.pending.iter().zip(&checked.verdicts) {
        match verdict {
            // Only a change still waiting to be settled is settled (and numbered), so settling
            // the same material twice changes nothing the second time.
            ChangeVerdict::Accepted => {
                let n = conn
                    .prepare_cached(
                        "UPDATE changes SET state = 1, relay = ?1 WHERE seq = ?2 AND state IN (0, 3)",
                    )?
                    .execute(params![relay + 1, change.seq])?;
                relay += n as i64;
            }
            ChangeVerdict::Refused(reason) => {
                let n = conn
                    .prepare_cached(
                        "UPDATE changes SET state = 2, relay = ?1 WHERE seq = ?2 AND state IN (0, 3)",
                    )?
                    .execute(params![relay + 1, change.seq])?;
                if n == 0 {
                    continue;
                }
                relay += 1;
                conn.prepare_cached(
                    "INSERT INTO refusals (doc_id, hash, org_id, origin, reason, at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
                )?
                .execute(params![
                    doc_id,
                    change.hash,
                    org_id,
                    change.origin,
                    reason,
                    now
                ])?;
                tracing::warn!(doc = %doc_id, seq = change.seq, %reason, "a pushed change was refused by its check");
                first_refusal.get_or_insert(reason.clone());
            }
            ChangeVerdict::Waiting => {
                conn.prepare_cached("UPDATE changes SET state = 3 WHERE seq = ?1 AND state = 0")?
                    .execute([change.seq])?;
            }
        }
    }
    if relay != start {
        conn.prepare_cached("UPDATE counters SET value = ?1 WHERE name = 'relay'")?
            .execute([relay])?;
    }
    let broken = crate::storage::unreadable_because(checked.view.is_some(), first_refusal);
    Ok(Summary {
        view: checked.view.clone(),
        broken,
        restricted: false,
        do_not_contact: false,
    })
}

fn open_summary(
    keys: &KeyRing,
    org: &Cipher,
    conn: &Connection,
    org_id: &str,
    doc_id: &str,
    upto_seq: i64,
    blob: &[u8],
) -> Result<Summary, StorageError> {
    let Some((cipher, _, _)) = doc_cipher(conn, keys, org, org_id, doc_id)? else {
        return Err(StorageError::NotFound("no such response".into()));
    };
    let sealed = Sealed::from_bytes(blob).map_err(|e| StorageError::Corrupt(e.to_string()))?;
    let plain = cipher
        .open_owned(&summary_binding(org_id, doc_id, upto_seq), sealed)
        .map_err(|e| StorageError::Corrupt(format!("summary of {doc_id}: {e}")))?;
    crate::storage::decode_summary(plain.as_bytes())
}

/// Decrypt one index row selected as `doc_id, upto_seq, summary`.
fn summary_row(
    keys: &KeyRing,
    org: &Cipher,
    conn: &Connection,
    org_id: &str,
    r: &rusqlite::Row<'_>,
) -> Result<(String, Summary), StorageError> {
    let doc_id: String = r.get(0)?;
    let summary = open_summary(
        keys,
        org,
        conn,
        org_id,
        &doc_id,
        r.get(1)?,
        &r.get::<_, Vec<u8>>(2)?,
    )?;
    Ok((doc_id, summary))
}

/// One page of a survey's materialised responses, ordered by id.
pub fn list(
    conn: &mut Connection,
    keys: &KeyRing,
    q: &ResponseQuery,
) -> Result<ResponsePage, StorageError> {
    let (org_id, survey_id, limit) = (q.org_id.as_str(), q.survey_id.as_str(), q.limit);
    let tx = conn.transaction()?;
    let org = org_cipher(&tx, keys, org_id)?;
    let mut items = Vec::new();
    {
        let mut stmt = tx.prepare_cached(
            "SELECT i.doc_id, i.upto_seq, i.summary, d.restricted
             FROM response_index i JOIN docs d ON d.id = i.doc_id
             WHERE i.org_id = ?1 AND i.survey_id = ?2 AND i.doc_id > ?3
               AND (?4 IS NULL OR i.status = ?4) AND (?5 IS NULL OR d.owner_id = ?5)
               AND (?6 = 0 OR i.error_count > 0 OR i.broken = 1) AND (?7 = 0 OR i.conflict_count > 0)
               AND (?9 = 1 OR d.restricted = 0)
             ORDER BY i.doc_id LIMIT ?8",
        )?;
        let mut rows = stmt.query(params![
            org_id,
            survey_id,
            q.after.as_deref().unwrap_or(""),
            q.status,
            q.owner,
            q.invalid_only as i64,
            q.conflicted_only as i64,
            limit,
            q.include_restricted as i64
        ])?;
        while let Some(r) = rows.next()? {
            let (doc_id, mut summary) = summary_row(keys, &org, &tx, org_id, r)?;
            summary.restricted = r.get::<_, i64>(3)? != 0;
            items.push(crate::storage::list_item(&doc_id, summary)?);
        }
    }
    let pending: i64 = tx
        .prepare_cached(
            "SELECT count(*) FROM materialize_queue q JOIN docs d ON d.id = q.doc_id
             WHERE q.org_id = ?1 AND d.survey_id = ?2 AND (?3 IS NULL OR d.owner_id = ?3)",
        )?
        .query_row(params![org_id, survey_id, q.owner], |r| r.get(0))?;
    tx.finish()?;
    let next = if items.len() as u32 >= limit {
        items.last().map(|i| i.id.to_string())
    } else {
        None
    };
    Ok(ResponsePage {
        items,
        next,
        pending: pending as u64,
    })
}

/// One response, decrypted, if the caller may see it. `Ok(Some(Err(reason)))` for a response
/// that is stored but could not be read, and `pending` when it is not materialised yet.
pub fn get(
    conn: &mut Connection,
    keys: &KeyRing,
    org_id: &str,
    doc_id: &str,
    owner: Option<&str>,
) -> Result<Option<Summary>, StorageError> {
    let tx = conn.transaction()?;
    let visible: Option<(String, i64)> = tx
        .prepare_cached("SELECT owner_id, restricted FROM docs WHERE id = ?1 AND org_id = ?2")?
        .query_row([doc_id, org_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let restricted = match (visible, owner) {
        (None, _) => return Ok(None),
        (Some((o, _)), Some(want)) if o != want => return Ok(None),
        (Some((_, restricted)), _) => restricted != 0,
    };
    let org = org_cipher(&tx, keys, org_id)?;
    let row: Option<(i64, Vec<u8>)> = tx
        .prepare_cached(
            "SELECT upto_seq, summary FROM response_index WHERE doc_id = ?1 AND org_id = ?2",
        )?
        .query_row([doc_id, org_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let mut out = match row {
        Some((upto, blob)) => open_summary(keys, &org, &tx, org_id, doc_id, upto, &blob)?,
        None => Summary {
            view: None,
            broken: None,
            restricted: false,
            do_not_contact: false,
        },
    };
    out.restricted = restricted;
    let out = Some(out);
    tx.finish()?;
    Ok(out)
}

/// One page of a survey's materialised responses for export, in id order.
pub fn export_page(
    conn: &mut Connection,
    keys: &KeyRing,
    org_id: &str,
    survey_id: &str,
    after: &str,
    limit: u32,
) -> Result<Vec<ResponseView>, StorageError> {
    let tx = conn.transaction()?;
    let org = org_cipher(&tx, keys, org_id)?;
    let mut out = Vec::new();
    {
        let mut stmt = tx.prepare_cached(
            // Restricted responses are never exported.
            "SELECT i.doc_id, i.upto_seq, i.summary FROM response_index i JOIN docs d ON d.id = i.doc_id
             WHERE i.org_id = ?1 AND i.survey_id = ?2 AND i.doc_id > ?3 AND i.broken = 0
               AND d.restricted = 0
             ORDER BY i.doc_id LIMIT ?4",
        )?;
        let mut rows = stmt.query(params![org_id, survey_id, after, limit])?;
        while let Some(r) = rows.next()? {
            let (_, summary) = summary_row(keys, &org, &tx, org_id, r)?;
            if let Some(view) = summary.view {
                out.push(view);
            }
        }
    }
    tx.finish()?;
    Ok(out)
}

/// How many of a survey's responses still wait for materialisation.
pub fn pending(conn: &Connection, org_id: &str, survey_id: &str) -> Result<u64, StorageError> {
    let n: i64 = conn
        .prepare_cached(
            "SELECT count(*) FROM materialize_queue q JOIN docs d ON d.id = q.doc_id
             WHERE q.org_id = ?1 AND d.survey_id = ?2",
        )?
        .query_row([org_id, survey_id], |r| r.get(0))?;
    Ok(n as u64)
}

/// See [`crate::storage::Storage::count_responses`].
pub fn count(
    conn: &Connection,
    org_id: &str,
    survey_id: &str,
    statuses: &[Status],
) -> Result<u64, StorageError> {
    let names = serde_json::to_string(&crate::storage::status_names(statuses))
        .map_err(|e| StorageError::Corrupt(e.to_string()))?;
    let n: i64 = conn
        .prepare_cached(
            "SELECT count(*) FROM response_index i JOIN docs d ON d.id = i.doc_id
             WHERE i.org_id = ?1 AND i.survey_id = ?2 AND i.broken = 0 AND d.restricted = 0
               AND i.status IN (SELECT value FROM json_each(?3))",
        )?
        .query_row(params![org_id, survey_id, names], |r| r.get(0))?;
    Ok(n as u64)
}

/// Take a document off the queue (it no longer exists).
pub fn forget_queued(conn: &Connection, doc_id: &str) -> Result<(), StorageError> {
    conn.prepare_cached("DELETE FROM materialize_queue WHERE doc_id = ?1")?
        .execute([doc_id])?;
    Ok(())
}
