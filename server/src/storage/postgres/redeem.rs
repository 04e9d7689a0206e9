//! Redeeming a one-time secret (a login token, an enrollment code) for a new credential, on
//! PostgreSQL: the secret is locked while it is used, so of two instances redeeming it at once
//! the second finds it used, and a retry of an exchange that succeeded gets the same answer.

use super::Postgres;
use super::rows::{insert_credential, org_row, principal_row, record};
use crate::storage::{AuditEvent, Redeem, Redeemed, Result, StorageError, now_ms};

impl Postgres {
    /// See [`crate::storage::Storage::redeem`].
    pub(super) async fn redeem_secret(&self, r: Redeem) -> Result<Option<Redeemed>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let now = now_ms();
        // FOR UPDATE: of two instances redeeming one secret at once, the second waits, then
        // finds it used.
        let found = tx
            .query_opt(
                "SELECT p.id, p.org_id, p.role, p.name FROM credentials c
                 JOIN principals p ON p.id = c.principal_id
                 WHERE c.hash = $1 AND c.kind = $2 AND c.used_at IS NULL AND c.revoked_at IS NULL
                   AND (c.expires_at IS NULL OR c.expires_at > $3) AND p.revoked_at IS NULL
                 FOR UPDATE OF c",
                &[&&r.hash[..], &r.from.as_str(), &now],
            )
            .await?;
        let (row, retry) = match found {
            Some(row) => (row, false),
            None => {
                // A retry of an exchange that succeeded moments ago (see the SQLite backend).
                let since = now - fieldsync_protocol::api::REDEEM_RETRY_MINUTES * 60_000;
                let again = tx
                    .query_opt(
                        "SELECT p.id, p.org_id, p.role, p.name FROM credentials c
                         JOIN principals p ON p.id = c.principal_id
                         WHERE c.hash = $1 AND c.kind = $2 AND c.used_at >= $3
                           AND c.revoked_at IS NULL AND p.revoked_at IS NULL
                           AND EXISTS (SELECT 1 FROM credentials n WHERE n.hash = $4
                                       AND n.principal_id = p.id AND n.revoked_at IS NULL)",
                        &[&&r.hash[..], &r.from.as_str(), &since, &&r.new.hash[..]],
                    )
                    .await?;
                match again {
                    Some(row) => (row, true),
                    None => return Ok(None),
                }
            }
        };
        let principal = principal_row(&row)?;
        let org = match &principal.org_id {
            Some(org_id) => Some(
                org_row(&tx, org_id)
                    .await?
                    .filter(|o| o.region == r.region)
                    .ok_or_else(|| StorageError::NotFound("no such organisation".into()))?,
            ),
            None => None,
        };
        if !retry {
            tx.execute(
                "UPDATE credentials SET used_at = $2 WHERE hash = $1",
                &[&&r.hash[..], &now],
            )
            .await?;
            insert_credential(&tx, &principal.id, &r.new).await?;
        }
        if let Some(device) = r.device_name() {
            tx.execute(
                "UPDATE principals SET device_name = $2 WHERE id = $1",
                &[&principal.id, &device],
            )
            .await?;
        }
        record(
            &tx,
            &self.keys,
            &AuditEvent {
                org_id: principal.org_id.clone(),
                actor_id: principal.id.clone(),
                actor_role: principal.role.as_str().to_owned(),
                action: if retry {
                    format!("{}_retried", r.action)
                } else {
                    r.action.clone()
                },
                target: principal.org_id.as_ref().map(|_| principal.id.clone()),
                detail: r.client.clone(),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(Some(Redeemed { principal, org }))
    }
}
