//! Survey links on PostgreSQL: see [`crate::storage::LinkStorage`].

use tokio_postgres::Row;

use super::Postgres;
use super::rows::{assign, create_principal, record, revoke_credentials_of};
use crate::storage::{AuditEvent, LinkRow, LinkStorage, NewLink, Result, StorageError, now_ms};

const LINK_COLUMNS: &str = "id, org_id, survey_id, principal_id, label, password_hash, expires_at,
    max_responses, single_use, responses, created_at, created_by, revoked_at, purpose";

fn count(n: Option<i32>) -> Result<Option<u32>> {
    n.map(|n| u32::try_from(n).map_err(|_| StorageError::Corrupt(format!("link count {n}"))))
        .transpose()
}

fn link_row(r: &Row) -> Result<LinkRow> {
    Ok(LinkRow {
        id: r.try_get(0)?,
        org_id: r.try_get(1)?,
        survey_id: r.try_get(2)?,
        principal_id: r.try_get(3)?,
        label: r.try_get(4)?,
        password_hash: r.try_get(5)?,
        expires_at: r.try_get(6)?,
        max_responses: count(r.try_get(7)?)?,
        single_use: r.try_get(8)?,
        responses: count(Some(r.try_get(9)?))?.unwrap_or(0),
        created_at: r.try_get(10)?,
        created_by: r.try_get(11)?,
        revoked_at: r.try_get(12)?,
        invitations: r.try_get::<_, String>(13)? == "invitations",
    })
}

#[async_trait::async_trait]
impl LinkStorage for Postgres {
    async fn create_link(&self, link: NewLink) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        create_principal(&tx, &link.principal).await?;
        assign(&tx, &link.org_id, &link.survey_id, &link.principal.id).await?;
        let max = link.max_responses.map(|m| m.min(i32::MAX as u32) as i32);
        tx.execute(
            "INSERT INTO links (id, org_id, survey_id, principal_id, label, token_hash,
                 password_hash, expires_at, max_responses, single_use, created_at, created_by,
                 purpose)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            &[
                &link.id,
                &link.org_id,
                &link.survey_id,
                &link.principal.id,
                &link.label,
                &&link.token_hash[..],
                &link.password_hash,
                &link.expires_at,
                &max,
                &link.single_use,
                &now_ms(),
                &link.created_by,
                &link.purpose(),
            ],
        )
        .await?;
        record(&tx, &self.keys, &link.audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn links(&self, org_id: &str, survey_id: Option<&str>) -> Result<Vec<LinkRow>> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {LINK_COLUMNS} FROM links
                     WHERE org_id = $1 AND ($2::TEXT IS NULL OR survey_id = $2)
                     ORDER BY created_at DESC, id DESC"
                ),
                &[&org_id, &survey_id],
            )
            .await?;
        rows.iter().map(link_row).collect()
    }

    async fn link_by_token(&self, token_hash: [u8; 32]) -> Result<Option<LinkRow>> {
        let client = self.client().await?;
        client
            .query_opt(
                &format!("SELECT {LINK_COLUMNS} FROM links WHERE token_hash = $1"),
                &[&&token_hash[..]],
            )
            .await?
            .map(|r| link_row(&r))
            .transpose()
    }

    async fn revoke_link(&self, org_id: &str, link_id: &str, audit: AuditEvent) -> Result<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let now = now_ms();
        let Some(r) = tx
            .query_opt(
                "UPDATE links SET revoked_at = coalesce(revoked_at, $3)
                 WHERE org_id = $1 AND id = $2 RETURNING principal_id",
                &[&org_id, &link_id, &now],
            )
            .await?
        else {
            return Ok(false);
        };
        let principal: String = r.try_get(0)?;
        tx.execute(
            "UPDATE principals SET revoked_at = coalesce(revoked_at, $2) WHERE id = $1",
            &[&principal, &now],
        )
        .await?;
        revoke_credentials_of(&tx, &principal).await?;
        record(&tx, &self.keys, &audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn take_link_place(&self, link_id: &str, now: i64) -> Result<bool> {
        let client = self.client().await?;
        let n = client
            .execute(
                "UPDATE links SET responses = responses + 1
                 WHERE id = $1 AND revoked_at IS NULL
                   AND (expires_at IS NULL OR $2 < expires_at)
                   AND (max_responses IS NULL OR responses < max_responses)",
                &[&link_id, &now],
            )
            .await?;
        Ok(n == 1)
    }

    async fn release_link_place(&self, link_id: &str) -> Result<()> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE links SET responses = responses - 1 WHERE id = $1 AND responses > 0",
                &[&link_id],
            )
            .await?;
        Ok(())
    }
}
