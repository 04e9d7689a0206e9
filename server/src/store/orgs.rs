//! Organisations: creation (with the first admin and the organisation's key), reading, and the
//! support-access switch.

use fieldsync_protocol::api::Role;
use rusqlite::{Connection, OptionalExtension, params};
use uuid::Uuid;

use super::principals::{self, CredentialKind};
use super::{Store, StoreError, audit, now_ms};
use crate::keys::{KeyRing, ORG_KEY_ID};

/// An organisation row.
#[derive(Clone, Debug, PartialEq)]
pub struct Org {
    pub id: String,
    pub name: String,
    pub region: String,
    pub support_access: bool,
    pub wrapped_key: Vec<u8>,
}

/// What creating an organisation produced.
#[derive(Clone, Debug)]
pub struct CreatedOrg {
    pub org_id: String,
    pub admin_id: String,
    /// One-time login token of the first admin.
    pub admin_token: String,
}

/// Create an organisation in `region` with its key and a first admin.
pub fn create(
    store: &Store,
    keys: &KeyRing,
    name: &str,
    region: &str,
) -> Result<CreatedOrg, StoreError> {
    let org_id = Uuid::new_v4().to_string();
    let wrapped = keys
        .new_org_key(&org_id)
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let (name, region) = (name.to_owned(), region.to_owned());
    store.write_blocking(move |tx| {
        tx.execute(
            "INSERT INTO orgs (id, name, region, support_access, wrapped_key, key_id, created_at)
             VALUES (?1, ?2, ?3, 0, ?4, ?5, ?6)",
            params![org_id, name, region, wrapped, ORG_KEY_ID.0, now_ms()],
        )?;
        let admin_id = principals::create(tx, Some(&org_id), Role::Admin, "admin", None)?;
        let admin_token = principals::issue(tx, &admin_id, CredentialKind::Login)?;
        audit::record(
            tx,
            Some(&org_id),
            "cli",
            "operator",
            "org_created",
            Some(&org_id),
            Some(&name),
        )?;
        Ok(CreatedOrg {
            org_id: org_id.clone(),
            admin_id,
            admin_token,
        })
    })
}

/// An organisation by id.
pub fn get(conn: &Connection, org_id: &str) -> Result<Option<Org>, StoreError> {
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

/// Switch support access on or off.
pub fn set_support_access(
    conn: &Connection,
    org_id: &str,
    enabled: bool,
) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE orgs SET support_access = ?2 WHERE id = ?1",
        params![org_id, enabled as i64],
    )?;
    Ok(())
}
