//! Organisations: their rows (name, region, support switch, wrapped key).

use rusqlite::{Connection, OptionalExtension, params};

use crate::storage::{NewOrg, Org, OrgListing, StorageError, now_ms};

/// Insert a new organisation.
pub fn insert(conn: &Connection, org: &NewOrg) -> Result<(), StorageError> {
    conn.execute(
        "INSERT INTO orgs (id, name, region, support_access, wrapped_key, key_id, created_at)
         VALUES (?1, ?2, ?3, 0, ?4, ?5, ?6)",
        params![
            org.id,
            org.name,
            org.region,
            org.wrapped_key,
            org.key_id,
            now_ms()
        ],
    )?;
    Ok(())
}

/// An organisation by id.
pub fn get(conn: &Connection, org_id: &str) -> Result<Option<Org>, StorageError> {
    Ok(conn
        .prepare_cached(
            "SELECT id, name, region, support_access, wrapped_key FROM orgs WHERE id = ?1",
        )?
        .query_row([org_id], |r| {
            Ok(Org {
                id: r.get(0)?,
                name: r.get(1)?,
                region: r.get(2)?,
                support_access: r.get::<_, i64>(3)? != 0,
                wrapped_key: r.get(4)?,
            })
        })
        .optional()?)
}

/// Every organisation, oldest first, with its count of live principals.
pub fn list(conn: &Connection) -> Result<Vec<OrgListing>, StorageError> {
    let mut stmt = conn.prepare_cached(
        "SELECT o.id, o.name, o.region, o.support_access, o.created_at,
                (SELECT count(*) FROM principals p WHERE p.org_id = o.id AND p.revoked_at IS NULL)
         FROM orgs o ORDER BY o.created_at, o.id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(OrgListing {
            id: r.get(0)?,
            name: r.get(1)?,
            region: r.get(2)?,
            support_access: r.get::<_, i64>(3)? != 0,
            created_at: r.get(4)?,
            active_principals: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Switch support access on or off.
pub fn set_support_access(
    conn: &Connection,
    org_id: &str,
    enabled: bool,
) -> Result<(), StorageError> {
    conn.execute(
        "UPDATE orgs SET support_access = ?2 WHERE id = ?1",
        params![org_id, enabled as i64],
    )?;
    Ok(())
}
