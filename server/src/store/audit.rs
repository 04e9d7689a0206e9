//! The audit log: who did what to which organisation, and when. Support access, member and
//! credential changes, survey publication and status changes are recorded here.

use rusqlite::{Connection, params};
use serde::Serialize;

use super::{StoreError, now_ms};

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
}

/// Append one entry.
pub fn record(
    conn: &Connection,
    org_id: Option<&str>,
    actor_id: &str,
    actor_role: &str,
    action: &str,
    target: Option<&str>,
    detail: Option<&str>,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO audit (org_id, at, actor_id, actor_role, action, target, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        org_id,
        now_ms(),
        actor_id,
        actor_role,
        action,
        target,
        detail
    ])?;
    Ok(())
}

/// The organisation's entries after `after_id`, oldest first, at most `limit`.
pub fn list(
    conn: &Connection,
    org_id: &str,
    after_id: i64,
    limit: u32,
) -> Result<Vec<AuditEntry>, StoreError> {
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
