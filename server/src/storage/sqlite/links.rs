//! Survey links on SQLite: see [`crate::storage::LinkStorage`].

use rusqlite::{Connection, OptionalExtension, params};

use super::{audit, principals, surveys};
use crate::storage::{AuditEvent, LinkRow, LinkStorage, NewLink, Result};

const LINK_COLUMNS: &str = "id, org_id, survey_id, principal_id, label, password_hash, expires_at,
    max_responses, single_use, responses, created_at, created_by, revoked_at, purpose";

fn link_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<LinkRow> {
    Ok(LinkRow {
        id: r.get(0)?,
        org_id: r.get(1)?,
        survey_id: r.get(2)?,
        principal_id: r.get(3)?,
        label: r.get(4)?,
        password_hash: r.get(5)?,
        expires_at: r.get(6)?,
        max_responses: r.get(7)?,
        single_use: r.get(8)?,
        responses: r.get(9)?,
        created_at: r.get(10)?,
        created_by: r.get(11)?,
        revoked_at: r.get(12)?,
        invitations: r.get::<_, String>(13)? == "invitations",
    })
}

fn list(conn: &Connection, org_id: &str, survey_id: Option<&str>) -> Result<Vec<LinkRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {LINK_COLUMNS} FROM links
         WHERE org_id = ?1 AND (?2 IS NULL OR survey_id = ?2)
         ORDER BY created_at DESC, id DESC"
    ))?;
    let rows = stmt
        .query_map(params![org_id, survey_id], link_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

fn by_token(conn: &Connection, hash: &[u8; 32]) -> Result<Option<LinkRow>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {LINK_COLUMNS} FROM links WHERE token_hash = ?1"
        ))?
        .query_row([&hash[..]], link_row)
        .optional()?)
}

#[async_trait::async_trait]
impl LinkStorage for super::Sqlite {
    async fn create_link(&self, link: NewLink) -> Result<()> {
        let keys = self.keys.clone();
        self.store
            .write(move |tx| {
                principals::create(tx, &link.principal)?;
                surveys::assign(tx, &link.org_id, &link.survey_id, &link.principal.id)?;
                tx.execute(
                    "INSERT INTO links (id, org_id, survey_id, principal_id, label, token_hash,
                         password_hash, expires_at, max_responses, single_use, created_at,
                         created_by, purpose)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                    params![
                        link.id,
                        link.org_id,
                        link.survey_id,
                        link.principal.id,
                        link.label,
                        &link.token_hash[..],
                        link.password_hash,
                        link.expires_at,
                        link.max_responses,
                        link.single_use,
                        crate::storage::now_ms(),
                        link.created_by,
                        link.purpose(),
                    ],
                )?;
                audit::record(tx, &keys, &link.audit)
            })
            .await
    }

    async fn links(&self, org_id: &str, survey_id: Option<&str>) -> Result<Vec<LinkRow>> {
        let (org_id, survey_id) = (org_id.to_owned(), survey_id.map(str::to_owned));
        self.store
            .read(move |c| list(c, &org_id, survey_id.as_deref()))
            .await
    }

    async fn link_by_token(&self, token_hash: [u8; 32]) -> Result<Option<LinkRow>> {
        self.store.read(move |c| by_token(c, &token_hash)).await
    }

    async fn revoke_link(&self, org_id: &str, link_id: &str, audit: AuditEvent) -> Result<bool> {
        let (org_id, link_id) = (org_id.to_owned(), link_id.to_owned());
        self.write_audited_if(audit, move |tx| {
            let principal: Option<String> = tx
                .query_row(
                    "UPDATE links SET revoked_at = coalesce(revoked_at, ?3)
                     WHERE org_id = ?1 AND id = ?2 RETURNING principal_id",
                    params![org_id, link_id, crate::storage::now_ms()],
                    |r| r.get(0),
                )
                .optional()?;
            match principal {
                Some(p) => principals::revoke(tx, &org_id, &p),
                None => Ok(false),
            }
        })
        .await
    }

    async fn take_link_place(&self, link_id: &str, now: i64) -> Result<bool> {
        let link_id = link_id.to_owned();
        self.store
            .write(move |tx| {
                let n = tx.execute(
                    "UPDATE links SET responses = responses + 1
                     WHERE id = ?1 AND revoked_at IS NULL
                       AND (expires_at IS NULL OR ?2 < expires_at)
                       AND (max_responses IS NULL OR responses < max_responses)",
                    params![link_id, now],
                )?;
                Ok(n == 1)
            })
            .await
    }

    async fn release_link_place(&self, link_id: &str) -> Result<()> {
        let link_id = link_id.to_owned();
        self.store
            .write(move |tx| {
                tx.execute(
                    "UPDATE links SET responses = responses - 1 WHERE id = ?1 AND responses > 0",
                    [&link_id],
                )?;
                Ok(())
            })
            .await
    }
}
