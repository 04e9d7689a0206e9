//! Members, devices and support staff, and their credentials: only the SHA-256 of each token
//! is stored.

use fieldsync_protocol::api::{MemberInfo, Role};
use rusqlite::{Connection, OptionalExtension, params};
use uuid::Uuid;

use crate::storage::{
    CredentialKind, NewCredential, NewPrincipal, Principal, StorageError, now_ms,
};

fn role_of(s: String) -> rusqlite::Result<Role> {
    Role::parse(&s).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Text,
            format!("unknown role {s:?}").into(),
        )
    })
}

fn principal_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Principal> {
    Ok(Principal {
        id: r.get(0)?,
        org_id: r.get(1)?,
        role: role_of(r.get(2)?)?,
        name: r.get(3)?,
    })
}

/// The live principal behind a bearer token (session or device), if any.
pub fn authenticate(conn: &Connection, hash: &[u8; 32]) -> Result<Option<Principal>, StorageError> {
    Ok(conn
        .prepare_cached(
            "SELECT p.id, p.org_id, p.role, p.name FROM credentials c
             JOIN principals p ON p.id = c.principal_id
             WHERE c.hash = ?1 AND c.kind IN ('session', 'device')
               AND c.revoked_at IS NULL AND (c.expires_at IS NULL OR c.expires_at > ?2)
               AND p.revoked_at IS NULL",
        )?
        .query_row(params![&hash[..], now_ms()], principal_row)
        .optional()?)
}

/// Insert a principal and its first credential.
pub fn create(conn: &Connection, p: &NewPrincipal) -> Result<(), StorageError> {
    conn.execute(
        "INSERT INTO principals (id, org_id, role, name, created_at, created_by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            p.id,
            p.org_id,
            p.role.as_str(),
            p.name,
            now_ms(),
            p.created_by
        ],
    )?;
    insert_credential(conn, &p.id, &p.credential)
}

/// Store a credential for a principal.
pub fn insert_credential(
    conn: &Connection,
    principal_id: &str,
    c: &NewCredential,
) -> Result<(), StorageError> {
    conn.prepare_cached(
        "INSERT INTO credentials (hash, principal_id, kind, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        &c.hash[..],
        principal_id,
        c.kind.as_str(),
        now_ms(),
        c.expires_at
    ])?;
    Ok(())
}

/// Mark a live one-time credential of kind `from` used and store `new` for its principal;
/// with `true` when this was a retry of an exchange that already succeeded (nothing changed).
/// `None` (and nothing changed) when the secret is unknown, used, expired or revoked.
pub fn redeem(
    conn: &Connection,
    hash: &[u8; 32],
    from: CredentialKind,
    new: &NewCredential,
) -> Result<Option<(Principal, bool)>, StorageError> {
    let now = now_ms();
    let found = conn
        .prepare_cached(
            "SELECT p.id, p.org_id, p.role, p.name FROM credentials c
             JOIN principals p ON p.id = c.principal_id
             WHERE c.hash = ?1 AND c.kind = ?2 AND c.used_at IS NULL AND c.revoked_at IS NULL
               AND (c.expires_at IS NULL OR c.expires_at > ?3) AND p.revoked_at IS NULL",
        )?
        .query_row(params![&hash[..], from.as_str(), now], principal_row)
        .optional()?;
    let Some(principal) = found else {
        return Ok(retried(conn, hash, from, new)?.map(|p| (p, true)));
    };
    conn.execute(
        "UPDATE credentials SET used_at = ?2 WHERE hash = ?1",
        params![&hash[..], now],
    )?;
    insert_credential(conn, &principal.id, new)?;
    Ok(Some((principal, false)))
}

/// A retry of an exchange that succeeded moments ago: the secret was used within the retry
/// window and the credential it gave is the one this retry would give (see
/// `service::retry_token`), still live. Nothing changes; the caller answers as before.
fn retried(
    conn: &Connection,
    hash: &[u8; 32],
    from: CredentialKind,
    new: &NewCredential,
) -> Result<Option<Principal>, StorageError> {
    let since = now_ms() - fieldsync_protocol::api::REDEEM_RETRY_MINUTES * 60_000;
    Ok(conn
        .prepare_cached(
            "SELECT p.id, p.org_id, p.role, p.name FROM credentials c
             JOIN principals p ON p.id = c.principal_id
             WHERE c.hash = ?1 AND c.kind = ?2 AND c.used_at >= ?3 AND c.revoked_at IS NULL
               AND p.revoked_at IS NULL
               AND EXISTS (SELECT 1 FROM credentials n WHERE n.hash = ?4
                           AND n.principal_id = p.id AND n.revoked_at IS NULL)",
        )?
        .query_row(
            params![&hash[..], from.as_str(), since, &new.hash[..]],
            principal_row,
        )
        .optional()?)
}

/// One member of an organisation.
pub fn get(
    conn: &Connection,
    org_id: &str,
    principal_id: &str,
) -> Result<Option<MemberInfo>, StorageError> {
    Ok(conn
        .prepare_cached(
            "SELECT id, name, role, created_at, revoked_at, device_name FROM principals
             WHERE org_id = ?1 AND id = ?2",
        )?
        .query_row([org_id, principal_id], member_row)
        .optional()?)
}

fn member_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<MemberInfo> {
    let id: String = r.get(0)?;
    Ok(MemberInfo {
        id: Uuid::parse_str(&id).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into())
        })?,
        name: r.get(1)?,
        role: role_of(r.get(2)?)?,
        created_at: r.get(3)?,
        revoked: r.get::<_, Option<i64>>(4)?.is_some(),
        device: r.get(5)?,
    })
}

/// Every member and enumerator of an organisation.
pub fn list(conn: &Connection, org_id: &str) -> Result<Vec<MemberInfo>, StorageError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, name, role, created_at, revoked_at, device_name FROM principals
         WHERE org_id = ?1 ORDER BY created_at, id",
    )?;
    let rows = stmt.query_map([org_id], member_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Revoke a member or device and every credential it holds. Returns false if no such member.
pub fn revoke(conn: &Connection, org_id: &str, principal_id: &str) -> Result<bool, StorageError> {
    let n = conn.execute(
        "UPDATE principals SET revoked_at = coalesce(revoked_at, ?3) WHERE org_id = ?1 AND id = ?2",
        params![org_id, principal_id, now_ms()],
    )?;
    if n == 0 {
        return Ok(false);
    }
    revoke_credentials_of(conn, principal_id)?;
    Ok(true)
}

fn revoke_credentials_of(conn: &Connection, principal_id: &str) -> Result<(), StorageError> {
    conn.execute(
        "UPDATE credentials SET revoked_at = coalesce(revoked_at, ?2) WHERE principal_id = ?1",
        params![principal_id, now_ms()],
    )?;
    Ok(())
}

/// Revoke one bearer token (a logout).
pub fn revoke_token(conn: &Connection, hash: &[u8; 32]) -> Result<(), StorageError> {
    conn.execute(
        "UPDATE credentials SET revoked_at = coalesce(revoked_at, ?2) WHERE hash = ?1",
        params![&hash[..], now_ms()],
    )?;
    Ok(())
}

/// Revoke a support agent and every credential it holds. Returns false if there is no such
/// support agent.
pub fn revoke_support(conn: &Connection, support_id: &str) -> Result<bool, StorageError> {
    let n = conn.execute(
        "UPDATE principals SET revoked_at = coalesce(revoked_at, ?2)
         WHERE id = ?1 AND role = 'support' AND org_id IS NULL",
        params![support_id, now_ms()],
    )?;
    if n == 0 {
        return Ok(false);
    }
    revoke_credentials_of(conn, support_id)?;
    Ok(true)
}

/// Failed sign-ins from `client` in its current window: (window start, count).
pub fn sign_in_failures(
    conn: &Connection,
    client: &str,
) -> Result<Option<(i64, u32)>, StorageError> {
    Ok(conn
        .prepare_cached("SELECT window_start, failures FROM login_failures WHERE client = ?1")?
        .query_row([client], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}

/// Count one failed sign-in from `client`, starting a new window when the last one ended.
pub fn record_sign_in_failure(
    conn: &Connection,
    client: &str,
    window_ms: i64,
) -> Result<(), StorageError> {
    let now = now_ms();
    conn.prepare_cached("DELETE FROM login_failures WHERE window_start <= ?1")?
        .execute([now - window_ms])?;
    conn.prepare_cached(
        "INSERT INTO login_failures (client, window_start, failures) VALUES (?1, ?2, 1)
         ON CONFLICT (client) DO UPDATE SET failures = failures + 1",
    )?
    .execute(params![client, now])?;
    Ok(())
}
