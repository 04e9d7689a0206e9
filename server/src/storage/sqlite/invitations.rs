//! Email invitations on SQLite: see [`crate::storage::InvitationStorage`].

use rusqlite::{Connection, OptionalExtension, params};

use super::audit;
use crate::storage::{
    AuditEvent, InvitationRow, InvitationStatus, InvitationStorage, InvitationSummary,
    NewInvitation, Result, SendOutcome, StorageError, now_ms,
};

const COLUMNS: &str =
    "id, org_id, survey_id, link_id, sealed, status, attempts, last_error, sent_at, used_at,
     used_by";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(InvitationRow, String)> {
    Ok((
        InvitationRow {
            id: r.get(0)?,
            org_id: r.get(1)?,
            survey_id: r.get(2)?,
            link_id: r.get(3)?,
            sealed: r.get(4)?,
            status: InvitationStatus::Pending,
            attempts: r.get(6)?,
            last_error: r.get(7)?,
            sent_at: r.get(8)?,
            used_at: r.get(9)?,
            used_by: r.get(10)?,
        },
        r.get(5)?,
    ))
}

fn with_status((mut row, status): (InvitationRow, String)) -> Result<InvitationRow> {
    row.status = InvitationStatus::parse(&status)
        .ok_or_else(|| StorageError::Corrupt(format!("invitation status {status:?}")))?;
    Ok(row)
}

fn by(conn: &Connection, column: &str, hash: &[u8; 32]) -> Result<Option<InvitationRow>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM invitations WHERE {column} = ?1"
    ))?
    .query_row([&hash[..]], row)
    .optional()?
    .map(with_status)
    .transpose()
}

#[async_trait::async_trait]
impl InvitationStorage for super::Sqlite {
    async fn add_invitations(
        &self,
        org_id: &str,
        survey_id: &str,
        link_id: &str,
        invitations: Vec<NewInvitation>,
        audit: AuditEvent,
    ) -> Result<u64> {
        let keys = self.keys.clone();
        let (org_id, survey_id, link_id) =
            (org_id.to_owned(), survey_id.to_owned(), link_id.to_owned());
        self.store
            .write(move |tx| {
                let now = now_ms();
                let mut added = 0;
                let mut insert = tx.prepare_cached(
                    "INSERT INTO invitations (id, org_id, survey_id, link_id, address_hash, sealed,
                         due_at, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)
                     ON CONFLICT (org_id, survey_id, address_hash) DO NOTHING",
                )?;
                for i in &invitations {
                    added += insert.execute(params![
                        i.id,
                        org_id,
                        survey_id,
                        link_id,
                        &i.address_hash[..],
                        i.sealed,
                        now
                    ])? as u64;
                }
                drop(insert);
                if added > 0 {
                    audit::record(tx, &keys, &audit.detail(format!("{added} new")))?;
                }
                Ok(added)
            })
            .await
    }

    async fn claim_invitations(
        &self,
        now: i64,
        lease_ms: i64,
        limit: u32,
    ) -> Result<Vec<InvitationRow>> {
        self.store
            .write(move |tx| {
                let claimed = tx
                    .prepare_cached(&format!(
                        "UPDATE invitations SET status = 'sending', due_at = ?2
                         WHERE id IN (SELECT id FROM invitations
                                      WHERE status IN ('pending', 'sending') AND due_at <= ?1
                                      ORDER BY due_at, id LIMIT ?3)
                         RETURNING {COLUMNS}"
                    ))?
                    .query_map(params![now, now + lease_ms, limit], row)?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                claimed.into_iter().map(with_status).collect()
            })
            .await
    }

    async fn finish_invitation(&self, id: &str, outcome: SendOutcome) -> Result<()> {
        let id = id.to_owned();
        self.store
            .write(move |tx| {
                let now = now_ms();
                match outcome {
                    SendOutcome::Prepared {
                        token_hash,
                        optout_hash,
                    } => tx.execute(
                        "UPDATE invitations SET token_hash = ?2, optout_hash = ?3 WHERE id = ?1",
                        params![id, &token_hash[..], &optout_hash[..]],
                    )?,
                    SendOutcome::Sent => tx.execute(
                        "UPDATE invitations SET status = 'sent', sent_at = ?2,
                             attempts = attempts + 1, last_error = NULL
                         WHERE id = ?1",
                        params![id, now],
                    )?,
                    SendOutcome::Failed { error, retry_at } => tx.execute(
                        "UPDATE invitations SET status = ?2, due_at = ?3, last_error = ?4,
                             attempts = attempts + 1
                         WHERE id = ?1",
                        params![
                            id,
                            if retry_at.is_some() {
                                "pending"
                            } else {
                                "failed"
                            },
                            retry_at.unwrap_or(now),
                            error
                        ],
                    )?,
                    SendOutcome::OptedOut => tx.execute(
                        "UPDATE invitations SET status = 'opted_out' WHERE id = ?1",
                        [&id],
                    )?,
                };
                Ok(())
            })
            .await
    }

    async fn invitation_by_token(&self, token_hash: [u8; 32]) -> Result<Option<InvitationRow>> {
        self.store
            .read(move |c| by(c, "token_hash", &token_hash))
            .await
    }

    async fn use_invitation(&self, id: &str, response_id: &str, now: i64) -> Result<bool> {
        let (id, response_id) = (id.to_owned(), response_id.to_owned());
        self.store
            .write(move |tx| {
                Ok(tx.execute(
                    "UPDATE invitations SET used_at = ?2, used_by = ?3
                     WHERE id = ?1 AND used_at IS NULL",
                    params![id, now, response_id],
                )? == 1)
            })
            .await
    }

    async fn unuse_invitation(&self, id: &str) -> Result<()> {
        let id = id.to_owned();
        self.store
            .write(move |tx| {
                tx.execute(
                    "UPDATE invitations SET used_at = NULL, used_by = NULL WHERE id = ?1",
                    [&id],
                )?;
                Ok(())
            })
            .await
    }

    async fn invitation_by_optout(
        &self,
        optout_hash: [u8; 32],
    ) -> Result<Option<(String, [u8; 32])>> {
        self.store
            .read(move |c| {
                let found: Option<(String, Vec<u8>)> = c
                    .prepare_cached(
                        "SELECT org_id, address_hash FROM invitations WHERE optout_hash = ?1",
                    )?
                    .query_row([&optout_hash[..]], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                found
                    .map(|(org, hash)| {
                        <[u8; 32]>::try_from(hash.as_slice())
                            .map(|h| (org, h))
                            .map_err(|_| StorageError::Corrupt("an address hash".into()))
                    })
                    .transpose()
            })
            .await
    }

    async fn invitation_summary(&self, org_id: &str, survey_id: &str) -> Result<InvitationSummary> {
        let (org_id, survey_id) = (org_id.to_owned(), survey_id.to_owned());
        self.store
            .read(move |c| {
                let mut s = InvitationSummary::default();
                let mut stmt = c.prepare_cached(
                    "SELECT status, count(*), count(used_at) FROM invitations
                     WHERE org_id = ?1 AND survey_id = ?2 GROUP BY status",
                )?;
                let counts = stmt
                    .query_map([&org_id, &survey_id], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, i64>(2)?,
                        ))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                for (status, n, used) in counts {
                    let n = n as u64;
                    s.answered += used as u64;
                    match InvitationStatus::parse(&status) {
                        Some(InvitationStatus::Pending | InvitationStatus::Sending) => {
                            s.pending += n
                        }
                        Some(InvitationStatus::Sent) => s.sent += n,
                        Some(InvitationStatus::Failed) => s.failed += n,
                        Some(InvitationStatus::OptedOut) => s.opted_out += n,
                        None => return Err(StorageError::Corrupt(format!("status {status}"))),
                    }
                }
                s.failures = c
                    .prepare_cached(
                        "SELECT id, sealed, coalesce(last_error, '') FROM invitations
                         WHERE org_id = ?1 AND survey_id = ?2 AND status = 'failed'
                         ORDER BY created_at, id LIMIT 1000",
                    )?
                    .query_map([&org_id, &survey_id], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(s)
            })
            .await
    }
}
