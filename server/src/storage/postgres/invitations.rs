//! Email invitations on PostgreSQL: see [`crate::storage::InvitationStorage`]. Claims take
//! rows with `FOR UPDATE SKIP LOCKED`, so several instances' senders never send one twice
//! while its lease lasts.

use tokio_postgres::Row;

use super::Postgres;
use super::rows::record;
use crate::storage::{
    AuditEvent, InvitationRow, InvitationStatus, InvitationStorage, InvitationSummary,
    NewInvitation, Result, SendOutcome, StorageError, now_ms,
};

const COLUMNS: &str =
    "id, org_id, survey_id, link_id, sealed, status, attempts, last_error, sent_at, used_at,
     used_by";

fn row(r: &Row) -> Result<InvitationRow> {
    let status: String = r.try_get(5)?;
    Ok(InvitationRow {
        id: r.try_get(0)?,
        org_id: r.try_get(1)?,
        survey_id: r.try_get(2)?,
        link_id: r.try_get(3)?,
        sealed: r.try_get(4)?,
        status: InvitationStatus::parse(&status)
            .ok_or_else(|| StorageError::Corrupt(format!("invitation status {status:?}")))?,
        attempts: u32::try_from(r.try_get::<_, i32>(6)?).unwrap_or(0),
        last_error: r.try_get(7)?,
        sent_at: r.try_get(8)?,
        used_at: r.try_get(9)?,
        used_by: r.try_get(10)?,
    })
}

#[async_trait::async_trait]
impl InvitationStorage for Postgres {
    async fn add_invitations(
        &self,
        org_id: &str,
        survey_id: &str,
        link_id: &str,
        invitations: Vec<NewInvitation>,
        audit: AuditEvent,
    ) -> Result<u64> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let now = now_ms();
        let insert = tx
            .prepare(
                "INSERT INTO invitations (id, org_id, survey_id, link_id, address_hash, sealed,
                     due_at, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
                 ON CONFLICT (org_id, survey_id, address_hash) DO NOTHING",
            )
            .await?;
        let mut added = 0;
        for i in &invitations {
            added += tx
                .execute(
                    &insert,
                    &[
                        &i.id,
                        &org_id,
                        &survey_id,
                        &link_id,
                        &&i.address_hash[..],
                        &i.sealed,
                        &now,
                    ],
                )
                .await?;
        }
        if added > 0 {
            record(&tx, &self.keys, &audit.detail(format!("{added} new"))).await?;
        }
        tx.commit().await?;
        Ok(added)
    }

    async fn claim_invitations(
        &self,
        now: i64,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<InvitationRow>> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "UPDATE invitations SET status = 'sending', due_at = $2
                     WHERE id IN (SELECT id FROM invitations
                                  WHERE status IN ('pending', 'sending') AND due_at <= $1
                                  ORDER BY due_at, id LIMIT $3 FOR UPDATE SKIP LOCKED)
                     RETURNING {COLUMNS}"
                ),
                &[&now, &(now + lease_ms), &i64::from(limit)],
            )
            .await?;
        rows.iter().map(row).collect()
    }

    async fn finish_invitation(&self, id: &str, outcome: SendOutcome) -> Result<()> {
        let client = self.client().await?;
        let now = now_ms();
        match outcome {
            SendOutcome::Prepared {
                token_hash,
                optout_hash,
            } => {
                client
                    .execute(
                        "UPDATE invitations SET token_hash = $2, optout_hash = $3 WHERE id = $1",
                        &[&id, &&token_hash[..], &&optout_hash[..]],
                    )
                    .await?
            }
            SendOutcome::Sent => {
                client
                    .execute(
                        "UPDATE invitations SET status = 'sent', sent_at = $2,
                             attempts = attempts + 1, last_error = NULL
                         WHERE id = $1",
                        &[&id, &now],
                    )
                    .await?
            }
            SendOutcome::Failed { error, retry_at } => {
                let status = if retry_at.is_some() {
                    "pending"
                } else {
                    "failed"
                };
                client
                    .execute(
                        "UPDATE invitations SET status = $2, due_at = $3, last_error = $4,
                             attempts = attempts + 1
                         WHERE id = $1",
                        &[&id, &status, &retry_at.unwrap_or(now), &error],
                    )
                    .await?
            }
            SendOutcome::OptedOut => {
                client
                    .execute(
                        "UPDATE invitations SET status = 'opted_out' WHERE id = $1",
                        &[&id],
                    )
                    .await?
            }
        };
        Ok(())
    }

    async fn invitation_by_token(&self, token_hash: [u8; 32]) -> Result<Option<InvitationRow>> {
        let client = self.client().await?;
        client
            .query_opt(
                &format!("SELECT {COLUMNS} FROM invitations WHERE token_hash = $1"),
                &[&&token_hash[..]],
            )
            .await?
            .map(|r| row(&r))
            .transpose()
    }

    async fn use_invitation(&self, id: &str, response_id: &str, now: i64) -> Result<bool> {
        let client = self.client().await?;
        Ok(client
            .execute(
                "UPDATE invitations SET used_at = $2, used_by = $3
                 WHERE id = $1 AND used_at IS NULL",
                &[&id, &now, &response_id],
            )
            .await?
            == 1)
    }

    async fn unuse_invitation(&self, id: &str) -> Result<()> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE invitations SET used_at = NULL, used_by = NULL WHERE id = $1",
                &[&id],
            )
            .await?;
        Ok(())
    }

    async fn invitation_by_optout(
        &self,
        optout_hash: [u8; 32],
    ) -> Result<Option<(String, [u8; 32])>> {
        let client = self.client().await?;
        let Some(r) = client
            .query_opt(
                "SELECT org_id, address_hash FROM invitations WHERE optout_hash = $1",
                &[&&optout_hash[..]],
            )
            .await?
        else {
            return Ok(None);
        };
        let hash: Vec<u8> = r.try_get(1)?;
        let hash = <[u8; 32]>::try_from(hash.as_slice())
            .map_err(|_| StorageError::Corrupt("an address hash".into()))?;
        Ok(Some((r.try_get(0)?, hash)))
    }

    async fn invitation_summary(&self, org_id: &str, survey_id: &str) -> Result<InvitationSummary> {
        let client = self.client().await?;
        let mut s = InvitationSummary::default();
        for r in client
            .query(
                "SELECT status, count(*), count(used_at) FROM invitations
                 WHERE org_id = $1 AND survey_id = $2 GROUP BY status",
                &[&org_id, &survey_id],
            )
            .await?
        {
            let status: String = r.try_get(0)?;
            let n = r.try_get::<_, i64>(1)? as u64;
            s.answered += r.try_get::<_, i64>(2)? as u64;
            match InvitationStatus::parse(&status) {
                Some(InvitationStatus::Pending | InvitationStatus::Sending) => s.pending += n,
                Some(InvitationStatus::Sent) => s.sent += n,
                Some(InvitationStatus::Failed) => s.failed += n,
                Some(InvitationStatus::OptedOut) => s.opted_out += n,
                None => return Err(StorageError::Corrupt(format!("status {status}"))),
            }
        }
        for r in client
            .query(
                "SELECT id, sealed, coalesce(last_error, '') FROM invitations
                 WHERE org_id = $1 AND survey_id = $2 AND status = 'failed'
                 ORDER BY created_at, id LIMIT 1000",
                &[&org_id, &survey_id],
            )
            .await?
        {
            s.failures
                .push((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?));
        }
        Ok(s)
    }
}
