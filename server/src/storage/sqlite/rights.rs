//! Respondents' rights in SQLite: the subject index, erasure, restriction, the do-not-contact
//! list, retention, the notices devices pull, and the audit chain's head.
//!
//! Erasure deletes rows on a connection with `secure_delete` on (SQLite overwrites what it
//! frees with zeros), and the backend checkpoints the write-ahead log afterwards, so the
//! database's files keep no copy of an erased response or its key.

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::keys::OrgKeys;
use crate::storage::{
    AuditHead, ErasedRecord, ErasureCause, Expired, StorageError, SubjectResponse, now_ms,
};

type Result<T> = std::result::Result<T, StorageError>;

/// The next number of the relay sequence (the pull cursor), taken for a notice.
pub fn next_relay(tx: &Transaction<'_>) -> Result<i64> {
    Ok(tx
        .prepare_cached(
            "UPDATE counters SET value = value + 1 WHERE name = 'relay' RETURNING value",
        )?
        .query_row([], |r| r.get(0))?)
}

fn notice(tx: &Transaction<'_>, org_id: &str, doc_id: &str, kind: &str) -> Result<()> {
    let relay = next_relay(tx)?;
    tx.prepare_cached("INSERT INTO notices (relay, org_id, doc_id, kind) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![relay, org_id, doc_id, kind])?;
    Ok(())
}

/// Replace a response's subject-index entries with the hashes of `identifiers`; returns the
/// hashes.
pub fn index_subjects(
    conn: &Connection,
    org: &OrgKeys,
    org_id: &str,
    doc_id: &str,
    survey_id: &str,
    identifiers: &[String],
) -> Result<Vec<[u8; 32]>> {
    conn.prepare_cached("DELETE FROM subject_index WHERE doc_id = ?1")?
        .execute([doc_id])?;
    if identifiers.is_empty() {
        return Ok(Vec::new());
    }
    let mut insert = conn.prepare_cached(
        "INSERT INTO subject_index (org_id, subject, doc_id, survey_id) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT DO NOTHING",
    )?;
    let hashes: Vec<[u8; 32]> = identifiers.iter().map(|id| org.subject_hash(id)).collect();
    for hash in &hashes {
        insert.execute(params![org_id, hash, doc_id, survey_id])?;
    }
    Ok(hashes)
}

pub fn subject_responses(
    conn: &Connection,
    org_id: &str,
    subjects: &[[u8; 32]],
    survey_id: Option<&str>,
) -> Result<Vec<SubjectResponse>> {
    let mut stmt = conn.prepare_cached(
        "SELECT d.id, d.survey_id, d.survey_version, d.owner_id, d.created_at, d.restricted
         FROM subject_index s JOIN docs d ON d.id = s.doc_id
         WHERE s.org_id = ?1 AND s.subject = ?2 AND (?3 IS NULL OR s.survey_id = ?3)",
    )?;
    let mut out: Vec<SubjectResponse> = Vec::new();
    for subject in subjects {
        let rows = stmt.query_map(params![org_id, subject, survey_id], |r| {
            Ok(SubjectResponse {
                doc_id: r.get(0)?,
                survey_id: r.get(1)?,
                survey_version: r.get(2)?,
                owner_id: r.get(3)?,
                created_at: r.get(4)?,
                restricted: r.get::<_, i64>(5)? != 0,
            })
        })?;
        for row in rows {
            let row = row?;
            if !out.iter().any(|o| o.doc_id == row.doc_id) {
                out.push(row);
            }
        }
    }
    out.sort_by(|a, b| a.doc_id.cmp(&b.doc_id));
    Ok(out)
}

/// Delete every row of the organisation's responses `doc_ids`, remember them as erased and
/// number a notice for each; returns those that existed.
pub fn erase(
    tx: &Transaction<'_>,
    org_id: &str,
    doc_ids: &[String],
    cause: ErasureCause,
) -> Result<Vec<String>> {
    let now = now_ms();
    let mut erased = Vec::new();
    for doc_id in doc_ids {
        let exists = tx
            .prepare_cached("SELECT 1 FROM docs WHERE id = ?1 AND org_id = ?2")?
            .exists([doc_id, org_id])?;
        if !exists {
            if cause == ErasureCause::Restore && remember(tx, org_id, doc_id, now, cause)? {
                notice(tx, org_id, doc_id, "erased")?;
                erased.push(doc_id.clone());
            }
            continue;
        }
        super::media::delete_doc(tx, org_id, doc_id)?;
        for table in [
            "DELETE FROM changes WHERE doc_id = ?1",
            "DELETE FROM refusals WHERE doc_id = ?1",
            "DELETE FROM response_index WHERE doc_id = ?1",
            "DELETE FROM materialize_queue WHERE doc_id = ?1",
            "DELETE FROM subject_index WHERE doc_id = ?1",
            "DELETE FROM docs WHERE id = ?1",
        ] {
            tx.prepare_cached(table)?.execute([doc_id])?;
        }
        remember(tx, org_id, doc_id, now, cause)?;
        notice(tx, org_id, doc_id, "erased")?;
        erased.push(doc_id.clone());
    }
    Ok(erased)
}

/// Remember a response as erased; false if it already was.
fn remember(
    tx: &Transaction<'_>,
    org_id: &str,
    doc_id: &str,
    now: i64,
    cause: ErasureCause,
) -> Result<bool> {
    Ok(tx
        .prepare_cached(
            "INSERT INTO erased (doc_id, org_id, erased_at, cause) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (doc_id) DO NOTHING",
        )?
        .execute(params![doc_id, org_id, now, cause.as_str()])?
        > 0)
}

pub fn erased_page(conn: &Connection, after: &str, limit: u32) -> Result<Vec<ErasedRecord>> {
    let mut stmt = conn.prepare_cached(
        "SELECT org_id, doc_id, erased_at, cause FROM erased WHERE doc_id > ?1
         ORDER BY doc_id LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![after, limit], |r| {
        Ok(ErasedRecord {
            org_id: r.get(0)?,
            doc_id: r.get(1)?,
            erased_at: r.get(2)?,
            cause: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}

/// Whether the organisation erased this response.
pub fn is_erased(conn: &Connection, org_id: &str, doc_id: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM erased WHERE doc_id = ?1 AND org_id = ?2")?
        .exists([doc_id, org_id])?)
}

pub fn set_restricted(
    tx: &Transaction<'_>,
    org_id: &str,
    doc_ids: &[String],
    restricted: bool,
) -> Result<Vec<String>> {
    let mut changed = Vec::new();
    for doc_id in doc_ids {
        let n = tx
            .prepare_cached(
                "UPDATE docs SET restricted = ?3 WHERE id = ?1 AND org_id = ?2 AND restricted != ?3",
            )?
            .execute(params![doc_id, org_id, restricted as i64])?;
        if n > 0 {
            let kind = if restricted {
                "restricted"
            } else {
                "unrestricted"
            };
            notice(tx, org_id, doc_id, kind)?;
            changed.push(doc_id.clone());
        }
    }
    Ok(changed)
}

pub fn set_do_not_contact(
    tx: &Transaction<'_>,
    org_id: &str,
    subject: &[u8; 32],
    listed: bool,
) -> Result<bool> {
    let n = if listed {
        tx.prepare_cached(
            "INSERT INTO do_not_contact (org_id, subject, at) VALUES (?1, ?2, ?3)
             ON CONFLICT DO NOTHING",
        )?
        .execute(params![org_id, subject, now_ms()])?
    } else {
        tx.prepare_cached("DELETE FROM do_not_contact WHERE org_id = ?1 AND subject = ?2")?
            .execute(params![org_id, subject])?
    };
    Ok(n > 0)
}

pub fn do_not_contact(
    conn: &Connection,
    org_id: &str,
    subjects: &[[u8; 32]],
) -> Result<Vec<[u8; 32]>> {
    let mut stmt =
        conn.prepare_cached("SELECT 1 FROM do_not_contact WHERE org_id = ?1 AND subject = ?2")?;
    let mut out = Vec::new();
    for s in subjects {
        if stmt.exists(params![org_id, s])? {
            out.push(*s);
        }
    }
    Ok(out)
}

pub fn set_retention(
    tx: &Transaction<'_>,
    org_id: &str,
    survey_id: &str,
    retention_ms: Option<i64>,
) -> Result<bool> {
    Ok(tx
        .prepare_cached("UPDATE surveys SET retention_ms = ?3 WHERE id = ?1 AND org_id = ?2")?
        .execute(params![survey_id, org_id, retention_ms])?
        > 0)
}

pub fn expired(conn: &Connection, now: i64, limit: u32) -> Result<Vec<Expired>> {
    let mut stmt = conn.prepare_cached(
        "SELECT d.org_id, d.survey_id, d.id, d.created_at
         FROM surveys s JOIN docs d ON d.survey_id = s.id
         WHERE s.retention_ms IS NOT NULL AND d.created_at + s.retention_ms <= ?1
         ORDER BY d.created_at, d.id LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![now, limit], |r| {
        Ok(Expired {
            org_id: r.get(0)?,
            survey_id: r.get(1)?,
            doc_id: r.get(2)?,
            received_at: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}

pub fn audit_head(conn: &Connection, chain: &str) -> Result<Option<AuditHead>> {
    Ok(conn
        .prepare_cached("SELECT last_id, mac, entries FROM audit_heads WHERE chain = ?1")?
        .query_row([chain], |r| {
            Ok(AuditHead {
                last_id: r.get(0)?,
                mac: r.get(1)?,
                entries: r.get(2)?,
            })
        })
        .optional()?)
}
