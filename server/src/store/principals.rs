//! Members, devices and their credentials. Tokens are generated here and only their SHA-256
//! is stored; one-time secrets (login tokens, enrollment codes) are exchanged exactly once for
//! a revocable session or device token.

use fieldsync_protocol::api::{MemberInfo, Role};
use fieldsync_protocol::crypto::{new_token, token_hash};
use rusqlite::{Connection, OptionalExtension, params};
use uuid::Uuid;

use super::{Store, StoreError, now_ms};

/// One-time secrets expire if unused.
pub const ONE_TIME_TTL_MS: i64 = 7 * 24 * 3600 * 1000;

/// The kinds of credential.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredentialKind {
    /// One-time, exchanged at `POST /v1/login` for a session.
    Login,
    /// One-time, exchanged at `POST /v1/enroll` for a device token.
    Enroll,
    /// A member's revocable bearer token.
    Session,
    /// An enumerator device's revocable bearer token.
    Device,
}

impl CredentialKind {
    fn as_str(self) -> &'static str {
        match self {
            CredentialKind::Login => "login",
            CredentialKind::Enroll => "enroll",
            CredentialKind::Session => "session",
            CredentialKind::Device => "device",
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            CredentialKind::Login => "fsl_",
            CredentialKind::Enroll => "fse_",
            CredentialKind::Session => "fss_",
            CredentialKind::Device => "fsd_",
        }
    }
}

/// A principal as authentication sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Principal {
    pub id: String,
    pub org_id: Option<String>,
    pub role: Role,
    pub name: String,
}

/// What the support switch check needs of an organisation.
#[derive(Clone, Debug, PartialEq)]
pub struct OrgAccess {
    pub region: String,
    pub support_access: bool,
}

fn role_of(s: String) -> rusqlite::Result<Role> {
    Role::parse(&s).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Text,
            format!("unknown role {s:?}").into(),
        )
    })
}

/// The live principal behind a bearer token (session or device), if any.
pub fn authenticate(conn: &Connection, hash: &[u8; 32]) -> Result<Option<Principal>, StoreError> {
    let now = now_ms();
    let found = conn
        .prepare_cached(
            "SELECT p.id, p.org_id, p.role, p.name FROM credentials c
             JOIN principals p ON p.id = c.principal_id
             WHERE c.hash = ?1 AND c.kind IN ('session', 'device')
               AND c.revoked_at IS NULL AND (c.expires_at IS NULL OR c.expires_at > ?2)
               AND p.revoked_at IS NULL",
        )?
        .query_row(params![&hash[..], now], |r| {
            Ok(Principal {
                id: r.get(0)?,
                org_id: r.get(1)?,
                role: role_of(r.get(2)?)?,
                name: r.get(3)?,
            })
        })
        .optional()?;
    Ok(found)
}

/// The organisation's region and support switch.
pub fn org_access(conn: &Connection, org_id: &str) -> Result<Option<OrgAccess>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT region, support_access FROM orgs WHERE id = ?1")?
        .query_row([org_id], |r| {
            Ok(OrgAccess {
                region: r.get(0)?,
                support_access: r.get::<_, i64>(1)? != 0,
            })
        })
        .optional()?)
}

/// Create a principal; returns its id.
pub fn create(
    conn: &Connection,
    org_id: Option<&str>,
    role: Role,
    name: &str,
    created_by: Option<&str>,
) -> Result<String, StoreError> {
    let id = Uuid::new_v4().to_string();
    conn.execute(
        "INSERT INTO principals (id, org_id, role, name, created_at, created_by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![id, org_id, role.as_str(), name, now_ms(), created_by],
    )?;
    Ok(id)
}

/// Issue a new credential of `kind` for a principal; returns the token, shown once.
pub fn issue(
    conn: &Connection,
    principal_id: &str,
    kind: CredentialKind,
) -> Result<String, StoreError> {
    let token = new_token(kind.prefix())
        .map_err(|e| StoreError::Corrupt(format!("cannot generate a token: {e}")))?;
    let now = now_ms();
    let expires = match kind {
        CredentialKind::Login | CredentialKind::Enroll => Some(now + ONE_TIME_TTL_MS),
        CredentialKind::Session | CredentialKind::Device => None,
    };
    conn.prepare_cached(
        "INSERT INTO credentials (hash, principal_id, kind, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        &token_hash(&token)[..],
        principal_id,
        kind.as_str(),
        now,
        expires
    ])?;
    Ok(token)
}

/// Exchange a one-time secret of kind `from` for a new credential of kind `to`. Returns
/// `None` (and changes nothing) when the secret is unknown, used, expired or revoked.
pub fn redeem(
    conn: &Connection,
    secret: &str,
    from: CredentialKind,
    to: CredentialKind,
) -> Result<Option<(Principal, String)>, StoreError> {
    let hash = token_hash(secret);
    let now = now_ms();
    let found = conn
        .prepare_cached(
            "SELECT p.id, p.org_id, p.role, p.name FROM credentials c
             JOIN principals p ON p.id = c.principal_id
             WHERE c.hash = ?1 AND c.kind = ?2 AND c.used_at IS NULL AND c.revoked_at IS NULL
               AND (c.expires_at IS NULL OR c.expires_at > ?3) AND p.revoked_at IS NULL",
        )?
        .query_row(params![&hash[..], from.as_str(), now], |r| {
            Ok(Principal {
                id: r.get(0)?,
                org_id: r.get(1)?,
                role: role_of(r.get(2)?)?,
                name: r.get(3)?,
            })
        })
        .optional()?;
    let Some(principal) = found else {
        return Ok(None);
    };
    conn.execute(
        "UPDATE credentials SET used_at = ?2 WHERE hash = ?1",
        params![&hash[..], now],
    )?;
    let token = issue(conn, &principal.id, to)?;
    Ok(Some((principal, token)))
}

/// One member of an organisation.
pub fn get(
    conn: &Connection,
    org_id: &str,
    principal_id: &str,
) -> Result<Option<MemberInfo>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT id, name, role, created_at, revoked_at FROM principals
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
    })
}

/// Every member and enumerator of an organisation.
pub fn list(conn: &Connection, org_id: &str) -> Result<Vec<MemberInfo>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, name, role, created_at, revoked_at FROM principals
         WHERE org_id = ?1 ORDER BY created_at, id",
    )?;
    let rows = stmt.query_map([org_id], member_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Revoke a member or device and every credential it holds. Returns false if no such member.
pub fn revoke(conn: &Connection, org_id: &str, principal_id: &str) -> Result<bool, StoreError> {
    let now = now_ms();
    let n = conn.execute(
        "UPDATE principals SET revoked_at = coalesce(revoked_at, ?3) WHERE org_id = ?1 AND id = ?2",
        params![org_id, principal_id, now],
    )?;
    if n == 0 {
        return Ok(false);
    }
    conn.execute(
        "UPDATE credentials SET revoked_at = coalesce(revoked_at, ?2) WHERE principal_id = ?1",
        params![principal_id, now],
    )?;
    Ok(true)
}

/// Revoke one bearer token (a logout).
pub fn revoke_token(conn: &Connection, token: &str) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE credentials SET revoked_at = coalesce(revoked_at, ?2) WHERE hash = ?1",
        params![&token_hash(token)[..], now_ms()],
    )?;
    Ok(())
}

/// Create a support agent (no organisation) with a one-time login token.
pub fn create_support(store: &Store, name: &str) -> Result<(String, String), StoreError> {
    let name = name.to_owned();
    store.write_blocking(move |tx| {
        let id = create(tx, None, Role::Support, &name, None)?;
        let token = issue(tx, &id, CredentialKind::Login)?;
        Ok((id, token))
    })
}

/// Revoke a support agent and every credential it holds. Returns false if there is no such
/// support agent.
pub fn revoke_support(store: &Store, support_id: &str) -> Result<bool, StoreError> {
    let id = support_id.to_owned();
    store.write_blocking(move |tx| {
        let now = now_ms();
        let n = tx.execute(
            "UPDATE principals SET revoked_at = coalesce(revoked_at, ?2)
             WHERE id = ?1 AND role = 'support' AND org_id IS NULL",
            params![id, now],
        )?;
        if n == 0 {
            return Ok(false);
        }
        tx.execute(
            "UPDATE credentials SET revoked_at = coalesce(revoked_at, ?2) WHERE principal_id = ?1",
            params![id, now],
        )?;
        super::audit::record(
            tx,
            None,
            "cli",
            "operator",
            "support_revoked",
            Some(&id),
            None,
        )?;
        Ok(true)
    })
}
