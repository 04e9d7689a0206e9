//! The audit log: who did what to which organisation, and when. Support access, member and
//! credential changes, survey publication and status changes are recorded here.

use rusqlite::{Connection, params};

use crate::storage::{AuditEntry, AuditEvent, StorageError, now_ms};

/// Append one entry.
pub fn record(conn: &Connection, e: &AuditEvent) -> Result<(), StorageError> {
    conn.prepare_cached(
        "INSERT INTO audit (org_id, at, actor_id, actor_role, action, target, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        e.org_id,
        now_ms(),
        e.actor_id,
        e.actor_role,
        e.action,
        e.target,
        e.detail
    ])?;
    Ok(())
}

/// The organisation's entries after `after_id`, oldest first, at most `limit`.
pub fn list(
    conn: &Connection,
    org_id: &str,
    after_id: i64,
    limit: u32,
) -> Result<Vec<AuditEntry>, StorageError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, at, actor_id, actor_role, action, target, detail FROM audit
         WHERE org_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![org_id, after_id, limit], |r| {
        Ok(AuditEntry {
            id: r.get(0)?,
            at: r.get(1)?,
            actor_id: r.get(2)?,
            actor_role: r.get(3)?,
            action: r.get(4)?,
            target: r.get(5)?,
            detail: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
