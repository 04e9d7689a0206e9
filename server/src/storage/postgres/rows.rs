//! Rows and statements the operations share: the audit entry, principals and credentials,
//! organisations, assignments and survey listings.

use fieldsync_protocol::api::{MemberInfo, Role, SurveyInfo};
use fieldsync_protocol::wire::SurveyStatus;
use tokio_postgres::Row;
use uuid::Uuid;

use super::backend::Tx;
use super::small;
use crate::keys::KeyRing;
use crate::storage::{
    AuditEvent, NewCredential, NewPrincipal, Org, Principal, Result, Sealable, StorageError,
    chain_key, chain_of, now_ms,
};

/// Append one entry to its chain. The chain's head row is locked until commit, so entries
/// of one chain are sealed one after another whichever instance records them.
pub(super) async fn record(tx: &Tx<'_>, keys: &KeyRing, e: &AuditEvent) -> Result<()> {
    let chain = chain_of(e.org_id.as_deref());
    let wrapped: Option<Vec<u8>> = match &e.org_id {
        Some(org_id) => tx
            .query_opt("SELECT wrapped_key FROM orgs WHERE id = $1", &[org_id])
            .await?
            .map(|r| r.try_get(0))
            .transpose()?,
        None => None,
    };
    let key = chain_key(keys, e.org_id.as_deref(), wrapped.as_deref())?;
    tx.execute(
        "INSERT INTO audit_heads (chain, last_id, mac, entries) VALUES ($1, 0, '', 0)
         ON CONFLICT (chain) DO NOTHING",
        &[&chain],
    )
    .await?;
    let head = tx
        .query_one(
            "SELECT mac, entries FROM audit_heads WHERE chain = $1 FOR UPDATE",
            &[&chain],
        )
        .await?;
    let prev: Vec<u8> = head.try_get(0)?;
    let at = now_ms();
    let stmt = tx
        .prepare_cached(
            "INSERT INTO audit (org_id, at, actor_id, actor_role, action, target, detail)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .await?;
    let id: i64 = tx
        .query_one(
            &stmt,
            &[
                &e.org_id,
                &at,
                &e.actor_id,
                &e.actor_role,
                &e.action,
                &e.target,
                &e.detail,
            ],
        )
        .await?
        .try_get(0)?;
    let mac = Sealable::event(id, at, e).mac(&key, &prev);
    tx.execute(
        "UPDATE audit SET prev = $2, mac = $3 WHERE id = $1",
        &[&id, &prev, &mac],
    )
    .await?;
    tx.execute(
        "UPDATE audit_heads SET last_id = $2, mac = $3, entries = entries + 1 WHERE chain = $1",
        &[&chain, &id, &mac],
    )
    .await?;
    Ok(())
}

pub(super) fn role_of(s: &str) -> Result<Role> {
    Role::parse(s).ok_or_else(|| StorageError::Corrupt(format!("unknown role {s:?}")))
}

pub(super) fn status_of(s: &str) -> Result<SurveyStatus> {
    SurveyStatus::parse(s)
        .ok_or_else(|| StorageError::Corrupt(format!("unknown survey status {s:?}")))
}

pub(super) fn uuid_of(s: &str) -> Result<Uuid> {
    Uuid::parse_str(s).map_err(|e| StorageError::Corrupt(format!("stored id {s:?}: {e}")))
}

pub(super) fn principal_row(r: &Row) -> Result<Principal> {
    Ok(Principal {
        id: r.try_get(0)?,
        org_id: r.try_get(1)?,
        role: role_of(r.try_get(2)?)?,
        name: r.try_get(3)?,
    })
}

pub(super) fn member_row(r: &Row) -> Result<MemberInfo> {
    Ok(MemberInfo {
        id: uuid_of(r.try_get(0)?)?,
        name: r.try_get(1)?,
        role: role_of(r.try_get(2)?)?,
        created_at: r.try_get(3)?,
        revoked: r.try_get::<_, Option<i64>>(4)?.is_some(),
        device: r.try_get(5)?,
    })
}

pub(super) async fn org_row(tx: &Tx<'_>, org_id: &str) -> Result<Option<Org>> {
    let stmt = tx
        .prepare_cached(
            "SELECT id, name, region, support_access, wrapped_key FROM orgs WHERE id = $1",
        )
        .await?;
    tx.query_opt(&stmt, &[&org_id])
        .await?
        .map(|r| {
            Ok(Org {
                id: r.try_get(0)?,
                name: r.try_get(1)?,
                region: r.try_get(2)?,
                support_access: r.try_get(3)?,
                wrapped_key: r.try_get(4)?,
            })
        })
        .transpose()
}

pub(super) async fn insert_credential(
    tx: &Tx<'_>,
    principal_id: &str,
    c: &NewCredential,
) -> Result<()> {
    let stmt = tx
        .prepare_cached(
            "INSERT INTO credentials (hash, principal_id, kind, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .await?;
    tx.execute(
        &stmt,
        &[
            &&c.hash[..],
            &principal_id,
            &c.kind.as_str(),
            &now_ms(),
            &c.expires_at,
        ],
    )
    .await?;
    Ok(())
}

pub(super) async fn create_principal(tx: &Tx<'_>, p: &NewPrincipal) -> Result<()> {
    tx.execute(
        "INSERT INTO principals (id, org_id, role, name, created_at, created_by)
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            &p.id,
            &p.org_id,
            &p.role.as_str(),
            &p.name,
            &now_ms(),
            &p.created_by,
        ],
    )
    .await?;
    insert_credential(tx, &p.id, &p.credential).await
}

pub(super) async fn revoke_credentials_of(tx: &Tx<'_>, principal_id: &str) -> Result<()> {
    tx.execute(
        "UPDATE credentials SET revoked_at = coalesce(revoked_at, $2) WHERE principal_id = $1",
        &[&principal_id, &now_ms()],
    )
    .await?;
    Ok(())
}

pub(super) async fn assign(
    tx: &Tx<'_>,
    org_id: &str,
    survey_id: &str,
    enumerator_id: &str,
) -> Result<()> {
    let survey = tx
        .query_opt(
            "SELECT 1 FROM surveys WHERE org_id = $1 AND id = $2",
            &[&org_id, &survey_id],
        )
        .await?;
    if survey.is_none() {
        return Err(StorageError::NotFound(format!(
            "no survey {survey_id} in this organisation; run `fieldsync survey list`"
        )));
    }
    let enumerator = tx
        .query_opt(
            "SELECT 1 FROM principals WHERE org_id = $1 AND id = $2 AND role = 'enumerator'",
            &[&org_id, &enumerator_id],
        )
        .await?;
    if enumerator.is_none() {
        return Err(StorageError::NotFound(format!(
            "no enumerator {enumerator_id} in this organisation; `fieldsync member list` shows them"
        )));
    }
    tx.execute(
        "INSERT INTO assignments (survey_id, principal_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        &[&survey_id, &enumerator_id],
    )
    .await?;
    Ok(())
}

async fn survey_info(tx: &Tx<'_>, r: &Row) -> Result<SurveyInfo> {
    let id: String = r.try_get(0)?;
    let stmt = tx
        .prepare_cached("SELECT version FROM survey_versions WHERE survey_id = $1 ORDER BY version")
        .await?;
    let versions = tx
        .query(&stmt, &[&id])
        .await?
        .iter()
        .map(|v| small(v.try_get(0)?))
        .collect::<Result<_>>()?;
    Ok(SurveyInfo {
        id: uuid_of(&id)?,
        form_id: r.try_get(1)?,
        title: r.try_get(2)?,
        status: status_of(r.try_get(3)?)?,
        latest_version: small(r.try_get(4)?)?,
        versions,
    })
}

/// The surveys visible to `enumerator` (all, for `None`), optionally only `survey_id`.
pub(super) async fn survey_rows(
    tx: &Tx<'_>,
    org_id: &str,
    survey_id: Option<&str>,
    enumerator: Option<&str>,
) -> Result<Vec<SurveyInfo>> {
    let stmt = tx
        .prepare_cached(
            "SELECT s.id, s.form_id, s.title, s.status, s.latest_version FROM surveys s
             WHERE s.org_id = $1 AND ($2::text IS NULL OR s.id = $2)
               AND ($3::text IS NULL OR EXISTS (SELECT 1 FROM assignments a
                                                WHERE a.survey_id = s.id AND a.principal_id = $3))
             ORDER BY s.created_at, s.id",
        )
        .await?;
    let mut out = Vec::new();
    for r in tx.query(&stmt, &[&org_id, &survey_id, &enumerator]).await? {
        out.push(survey_info(tx, &r).await?);
    }
    Ok(out)
}
