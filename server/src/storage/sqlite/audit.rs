//! The audit log: who did what to which organisation, and when. Support access, member and
//! credential changes, survey publication and status changes, and every respondent's-rights
//! action are recorded here, each entry sealed into its chain (see `storage::rights`).

use rusqlite::{Connection, OptionalExtension, params};

use super::rights::audit_head;
use crate::keys::KeyRing;
use crate::storage::{AuditEntry, AuditEvent, Sealable, StorageError, chain_key, chain_of, now_ms};

/// Append one entry to its chain.
pub fn record(conn: &Connection, keys: &KeyRing, e: &AuditEvent) -> Result<(), StorageError> {
    let chain = chain_of(e.org_id.as_deref());
    let wrapped: Option<Vec<u8>> = match &e.org_id {
        Some(org_id) => conn
            .prepare_cached("SELECT wrapped_key FROM orgs WHERE id = ?1")?
            .query_row([org_id], |r| r.get(0))
            .optional()?,
        None => None,
    };
    let key = chain_key(keys, e.org_id.as_deref(), wrapped.as_deref())?;
    let head = audit_head(conn, chain)?;
    let at = now_ms();
    conn.prepare_cached(
        "INSERT INTO audit (org_id, at, actor_id, actor_role, action, target, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        e.org_id,
        at,
        e.actor_id,
        e.actor_role,
        e.action,
        e.target,
        e.detail
    ])?;
    let id = conn.last_insert_rowid();
    let prev = head.as_ref().map(|h| h.mac.clone()).unwrap_or_default();
    let mac = Sealable::event(id, at, e).mac(&key, &prev);
    conn.prepare_cached("UPDATE audit SET prev = ?2, mac = ?3 WHERE id = ?1")?
        .execute(params![id, prev, mac])?;
    conn.prepare_cached(
        "INSERT INTO audit_heads (chain, last_id, mac, entries) VALUES (?1, ?2, ?3, 1)
         ON CONFLICT (chain) DO UPDATE SET last_id = excluded.last_id, mac = excluded.mac,
             entries = entries + 1",
    )?
    .execute(params![chain, id, mac])?;
    Ok(())
}

/// The entries of one chain (an organisation's, or of none) after `after_id`, oldest first, at
/// most `limit`, with their seals.
pub fn list(
    conn: &Connection,
    org_id: Option<&str>,
    after_id: i64,
    limit: u32,
) -> Result<Vec<AuditEntry>, StorageError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, at, actor_id, actor_role, action, target, detail, prev, mac FROM audit
         WHERE org_id IS ?1 AND id > ?2 ORDER BY id LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![org_id, after_id, limit], entry)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The organisation's entries about any of `targets`, oldest first.
pub fn about(
    conn: &Connection,
    org_id: &str,
    targets: &[String],
) -> Result<Vec<AuditEntry>, StorageError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, at, actor_id, actor_role, action, target, detail, prev, mac FROM audit
         WHERE org_id = ?1 AND target = ?2 ORDER BY id",
    )?;
    let mut out = Vec::new();
    for target in targets {
        let rows = stmt.query_map(params![org_id, target], entry)?;
        for row in rows {
            out.push(row?);
        }
    }
    out.sort_by_key(|e| e.id);
    Ok(out)
}

fn entry(r: &rusqlite::Row<'_>) -> rusqlite::Result<AuditEntry> {
    Ok(AuditEntry {
        id: r.get(0)?,
        at: r.get(1)?,
        actor_id: r.get(2)?,
        actor_role: r.get(3)?,
        action: r.get(4)?,
        target: r.get(5)?,
        detail: r.get(6)?,
        prev: r.get(7)?,
        mac: r.get(8)?,
    })
}
