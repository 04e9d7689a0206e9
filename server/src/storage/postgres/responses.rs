//! The materialiser's queue and settlement, and the response index, on PostgreSQL.

use std::sync::Arc;

use fieldsync_protocol::api::{ResponseListItem, ResponsePage, ResponseView};
use fieldsync_protocol::cbor::{self, Limits};
use fieldsync_protocol::crypto::{Cipher, Sealed};
use serde_bytes::ByteBuf;
use tokio_postgres::IsolationLevel;
use tokio_postgres::types::ToSql;

use super::backend::{Tx, uuid_of};
use super::sync::{keys_doc, org_cipher};
use super::{Postgres, big, small};
use crate::keys::{change_binding, summary_binding};
use crate::storage::{
    CheckOutcome, DocMaterial, PendingChange, Queued, ResponseQuery, Result, Settlement,
    StorageError, Summary, now_ms, state,
};
use crate::worker::ChangeVerdict;

/// How long a materialiser's claim on a queued document lasts: long enough to check a batch,
/// short enough that a document claimed by an instance that died is soon checked by another.
const LEASE_MS: i64 = 30_000;

fn corrupt(e: impl std::fmt::Display) -> StorageError {
    StorageError::Corrupt(e.to_string())
}

/// A read transaction that sees one snapshot.
async fn snapshot(client: &mut deadpool_postgres::Client) -> Result<Tx<'_>> {
    Ok(client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?)
}

async fn doc_cipher(
    tx: &Tx<'_>,
    pg: &Postgres,
    org: &Cipher,
    org_id: &str,
    doc_id: &str,
) -> Result<Option<(Arc<Cipher>, String, u32)>> {
    let stmt = tx
        .prepare_cached(
            "SELECT wrapped_key, survey_id, survey_version FROM docs WHERE id = $1 AND org_id = $2",
        )
        .await?;
    match tx.query_opt(&stmt, &[&doc_id, &org_id]).await? {
        Some(r) => {
            let wrapped: Vec<u8> = r.try_get(0)?;
            let cipher = keys_doc(&pg.keys, org, org_id, doc_id, &wrapped)?;
            Ok(Some((cipher, r.try_get(1)?, small(r.try_get(2)?)?)))
        }
        None => Ok(None),
    }
}

async fn open_summary(
    tx: &Tx<'_>,
    pg: &Postgres,
    org: &Cipher,
    org_id: &str,
    doc_id: &str,
    upto_seq: i64,
    blob: &[u8],
) -> Result<Summary> {
    let Some((cipher, _, _)) = doc_cipher(tx, pg, org, org_id, doc_id).await? else {
        return Err(StorageError::NotFound("no such response".into()));
    };
    let sealed = Sealed::from_bytes(blob).map_err(corrupt)?;
    let plain = cipher
        .open_owned(&summary_binding(org_id, doc_id, upto_seq), sealed)
        .map_err(|e| corrupt(format!("summary of {doc_id}: {e}")))?;
    let limits = Limits {
        max_bytes: 64 * 1024 * 1024,
        ..Limits::SYNC
    };
    cbor::decode(plain.as_bytes(), &limits).map_err(corrupt)
}

fn list_item(doc_id: &str, summary: Summary) -> Result<ResponseListItem> {
    let id = uuid_of(doc_id)?;
    Ok(match summary.view {
        Some(v) => ResponseListItem {
            id,
            survey_version: v.survey_version,
            status: v.status,
            valid: v.errors.is_empty() && summary.broken.is_none(),
            errors: v.errors,
            conflicts: v.conflicts.into_iter().map(|c| c.question).collect(),
            broken: summary.broken,
            updated_at: v.updated_at,
        },
        None => ResponseListItem {
            id,
            survey_version: 0,
            status: "unknown".into(),
            valid: false,
            errors: Vec::new(),
            conflicts: Vec::new(),
            broken: summary.broken,
            updated_at: 0,
        },
    })
}

impl Postgres {
    /// Claim up to `limit` queued documents no other materialiser holds, and load them.
    pub(super) async fn claim_queued(
        &self,
        limit: u32,
    ) -> Result<Vec<(Queued, Option<DocMaterial>)>> {
        let mut client = self.client().await?;
        let now = now_ms();
        let claimed: Vec<Queued> = {
            let tx = client.transaction().await?;
            let rows = tx
                .query(
                    "UPDATE materialize_queue q SET claimed_until = $1
                     FROM (SELECT doc_id FROM materialize_queue
                           WHERE claimed_until IS NULL OR claimed_until < $2
                           ORDER BY seq LIMIT $3 FOR UPDATE SKIP LOCKED) c
                     WHERE q.doc_id = c.doc_id
                     RETURNING q.doc_id, q.org_id, q.seq",
                    &[&(now + LEASE_MS), &now, &big(limit)],
                )
                .await?;
            tx.commit().await?;
            let mut claimed = rows
                .iter()
                .map(|r| {
                    Ok(Queued {
                        doc_id: r.try_get(0)?,
                        org_id: r.try_get(1)?,
                        seq: r.try_get(2)?,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            claimed.sort_by_key(|q| q.seq);
            claimed
        };
        let mut out = Vec::with_capacity(claimed.len());
        for item in claimed {
            let material = self.material(&mut client, &item).await?;
            out.push((item, material));
        }
        Ok(out)
    }

    /// Every change of a document that is accepted or still to be checked, decrypted, with
    /// its survey definition, from one snapshot.
    async fn material(
        &self,
        client: &mut deadpool_postgres::Client,
        item: &Queued,
    ) -> Result<Option<DocMaterial>> {
        let (org_id, doc_id) = (item.org_id.as_str(), item.doc_id.as_str());
        let tx = snapshot(client).await?;
        let org = org_cipher(&tx, &self.keys, org_id).await?;
        let Some((cipher, survey_id, survey_version)) =
            doc_cipher(&tx, self, &org, org_id, doc_id).await?
        else {
            return Ok(None);
        };
        let stmt = tx
            .prepare_cached(
                "SELECT seq, payload, state, hash, origin FROM changes
                 WHERE doc_id = $1 AND state <> 2 ORDER BY seq",
            )
            .await?;
        let mut accepted = Vec::new();
        let mut pending = Vec::new();
        let mut upto_seq = 0;
        for r in tx.query(&stmt, &[&doc_id]).await? {
            let seq: i64 = r.try_get(0)?;
            let sealed = Sealed::from_bytes(r.try_get(1)?).map_err(corrupt)?;
            let plain = cipher
                .open_owned(&change_binding(org_id, doc_id, seq), sealed)
                .map_err(|e| corrupt(format!("change {seq}: {e}")))?;
            let bytes = ByteBuf::from(plain.as_bytes().to_vec());
            if r.try_get::<_, i64>(2)? == state::ACCEPTED {
                accepted.push(bytes);
            } else {
                pending.push(PendingChange {
                    seq,
                    hash: r.try_get(3)?,
                    origin: r.try_get(4)?,
                    bytes,
                });
            }
            upto_seq = seq;
        }
        let definition: Option<String> = tx
            .query_opt(
                "SELECT definition FROM survey_versions WHERE survey_id = $1 AND version = $2",
                &[&survey_id, &big(survey_version)],
            )
            .await?
            .map(|r| r.try_get(0))
            .transpose()?;
        tx.commit().await?;
        Ok(Some(DocMaterial {
            accepted,
            pending,
            survey_id,
            survey_version,
            definition,
            upto_seq,
        }))
    }

    /// Record what checking found, in one transaction.
    pub(super) async fn settle_all(&self, settled: &[Settlement]) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // The relay counter's row lock, held to commit, is what makes relay numbers commit in
        // the order they are handed out (see the module docs).
        let mut relay: i64 = tx
            .query_one(
                "SELECT value FROM counters WHERE name = 'relay' FOR UPDATE",
                &[],
            )
            .await?
            .try_get(0)?;
        let start = relay;
        for s in settled {
            match s {
                Settlement::Gone(doc_id) => {
                    tx.execute("DELETE FROM materialize_queue WHERE doc_id = $1", &[doc_id])
                        .await?;
                }
                Settlement::Done(done) => {
                    let (item, material, outcome) = &**done;
                    self.save_summary(&tx, item, material, outcome, &mut relay)
                        .await?;
                }
            }
        }
        if relay != start {
            tx.execute(
                "UPDATE counters SET value = $1 WHERE name = 'relay'",
                &[&relay],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn save_summary(
        &self,
        tx: &Tx<'_>,
        item: &Queued,
        material: &DocMaterial,
        outcome: &CheckOutcome,
        relay: &mut i64,
    ) -> Result<()> {
        let (org_id, doc_id) = (item.org_id.as_str(), item.doc_id.as_str());
        let org = org_cipher(tx, &self.keys, org_id).await?;
        let Some((cipher, _, _)) = doc_cipher(tx, self, &org, org_id, doc_id).await? else {
            return Ok(());
        };
        let summary = settle_changes(tx, org_id, doc_id, material, outcome, relay).await?;
        let plain = cbor::encode(&summary).map_err(corrupt)?;
        let sealed = cipher
            .seal(&summary_binding(org_id, doc_id, material.upto_seq), &plain)
            .map_err(corrupt)?;
        let (status, errors, conflicts) = match &summary.view {
            Some(v) => (v.status.clone(), v.errors.len(), v.conflicts.len()),
            None => ("unknown".to_owned(), 0, 0),
        };
        let stmt = tx
            .prepare_cached(
                "INSERT INTO response_index (doc_id, org_id, survey_id, survey_version, status,
                     error_count, conflict_count, broken, upto_seq, summary, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                 ON CONFLICT (doc_id) DO UPDATE SET status = excluded.status,
                     error_count = excluded.error_count, conflict_count = excluded.conflict_count,
                     broken = excluded.broken, upto_seq = excluded.upto_seq,
                     summary = excluded.summary, updated_at = excluded.updated_at",
            )
            .await?;
        tx.execute(
            &stmt,
            &[
                &doc_id,
                &org_id,
                &material.survey_id,
                &big(material.survey_version),
                &status,
                &(errors as i64),
                &(conflicts as i64),
                &summary.broken.is_some(),
                &material.upto_seq,
                &sealed.to_bytes(),
                &now_ms(),
            ],
        )
        .await?;
        // Off the queue unless newer changes arrived meanwhile; then it is free to be claimed
        // again at once.
        tx.execute(
            "DELETE FROM materialize_queue WHERE doc_id = $1 AND seq <= $2",
            &[&doc_id, &material.upto_seq],
        )
        .await?;
        tx.execute(
            "UPDATE materialize_queue SET claimed_until = NULL WHERE doc_id = $1",
            &[&doc_id],
        )
        .await?;
        Ok(())
    }

    /// One page of a survey's materialised responses, ordered by id.
    pub(super) async fn list_responses(&self, q: &ResponseQuery) -> Result<ResponsePage> {
        let mut client = self.client().await?;
        let tx = snapshot(&mut client).await?;
        let org_id = q.org_id.as_str();
        let org = org_cipher(&tx, &self.keys, org_id).await?;
        let stmt = tx
            .prepare_cached(
                "SELECT i.doc_id, i.upto_seq, i.summary FROM response_index i
                 JOIN docs d ON d.id = i.doc_id
                 WHERE i.org_id = $1 AND i.survey_id = $2 AND i.doc_id > $3
                   AND ($4::text IS NULL OR i.status = $4) AND ($5::text IS NULL OR d.owner_id = $5)
                   AND (NOT $6 OR i.error_count > 0 OR i.broken) AND (NOT $7 OR i.conflict_count > 0)
                 ORDER BY i.doc_id LIMIT $8",
            )
            .await?;
        let after = q.after.clone().unwrap_or_default();
        let params: [&(dyn ToSql + Sync); 8] = [
            &org_id,
            &q.survey_id,
            &after,
            &q.status,
            &q.owner,
            &q.invalid_only,
            &q.conflicted_only,
            &big(q.limit),
        ];
        let mut items = Vec::new();
        for r in tx.query(&stmt, &params).await? {
            let doc_id: String = r.try_get(0)?;
            let summary = open_summary(
                &tx,
                self,
                &org,
                org_id,
                &doc_id,
                r.try_get(1)?,
                r.try_get(2)?,
            )
            .await?;
            items.push(list_item(&doc_id, summary)?);
        }
        let pending: i64 = tx
            .query_one(
                "SELECT count(*) FROM materialize_queue q JOIN docs d ON d.id = q.doc_id
                 WHERE q.org_id = $1 AND d.survey_id = $2 AND ($3::text IS NULL OR d.owner_id = $3)",
                &[&org_id, &q.survey_id, &q.owner],
            )
            .await?
            .try_get(0)?;
        tx.commit().await?;
        let next = if items.len() as u32 >= q.limit {
            items.last().map(|i| i.id.to_string())
        } else {
            None
        };
        Ok(ResponsePage {
            items,
            next,
            pending: pending as u64,
        })
    }

    /// One response's summary, if the caller may see it.
    pub(super) async fn one_response(
        &self,
        org_id: &str,
        doc_id: &str,
        owner: Option<&str>,
    ) -> Result<Option<Summary>> {
        let mut client = self.client().await?;
        let tx = snapshot(&mut client).await?;
        let visible: Option<String> = tx
            .query_opt(
                "SELECT owner_id FROM docs WHERE id = $1 AND org_id = $2",
                &[&doc_id, &org_id],
            )
            .await?
            .map(|r| r.try_get(0))
            .transpose()?;
        match (visible, owner) {
            (None, _) => return Ok(None),
            (Some(o), Some(want)) if o != want => return Ok(None),
            _ => {}
        }
        let org = org_cipher(&tx, &self.keys, org_id).await?;
        let row = tx
            .query_opt(
                "SELECT upto_seq, summary FROM response_index WHERE doc_id = $1 AND org_id = $2",
                &[&doc_id, &org_id],
            )
            .await?;
        let out = match row {
            Some(r) => Some(
                open_summary(
                    &tx,
                    self,
                    &org,
                    org_id,
                    doc_id,
                    r.try_get(0)?,
                    r.try_get(1)?,
                )
                .await?,
            ),
            None => Some(Summary {
                view: None,
                broken: None,
            }),
        };
        tx.commit().await?;
        Ok(out)
    }

    /// One page of a survey's readable responses for export, in id order.
    pub(super) async fn export_rows(
        &self,
        org_id: &str,
        survey_id: &str,
        after: &str,
        limit: u32,
    ) -> Result<Vec<ResponseView>> {
        let mut client = self.client().await?;
        let tx = snapshot(&mut client).await?;
        let org = org_cipher(&tx, &self.keys, org_id).await?;
        let stmt = tx
            .prepare_cached(
                "SELECT doc_id, upto_seq, summary FROM response_index
                 WHERE org_id = $1 AND survey_id = $2 AND doc_id > $3 AND NOT broken
                 ORDER BY doc_id LIMIT $4",
            )
            .await?;
        let mut out = Vec::new();
        for r in tx
            .query(&stmt, &[&org_id, &survey_id, &after, &big(limit)])
            .await?
        {
            let doc_id: String = r.try_get(0)?;
            let summary = open_summary(
                &tx,
                self,
                &org,
                org_id,
                &doc_id,
                r.try_get(1)?,
                r.try_get(2)?,
            )
            .await?;
            if let Some(view) = summary.view {
                out.push(view);
            }
        }
        tx.commit().await?;
        Ok(out)
    }

    /// How many of a survey's responses still wait for materialisation.
    pub(super) async fn pending_count(&self, org_id: &str, survey_id: &str) -> Result<u64> {
        let client = self.client().await?;
        let n: i64 = client
            .query_one(
                "SELECT count(*) FROM materialize_queue q JOIN docs d ON d.id = q.doc_id
                 WHERE q.org_id = $1 AND d.survey_id = $2",
                &[&org_id, &survey_id],
            )
            .await?
            .try_get(0)?;
        Ok(n as u64)
    }
}

/// Apply the checker's verdicts to the stored changes, numbering the settled ones from
/// `relay`, and say what the index should hold.
async fn settle_changes(
    tx: &Tx<'_>,
    org_id: &str,
    doc_id: &str,
    material: &DocMaterial,
    outcome: &CheckOutcome,
    relay: &mut i64,
) -> Result<Summary> {
    let checked = match outcome {
        Ok(c) => c,
        Err(reason) => {
            tx.execute(
                "UPDATE changes SET state = 3 WHERE doc_id = $1 AND state = 0",
                &[&doc_id],
            )
            .await?;
            return Ok(Summary {
                view: None,
                broken: Some(reason.clone()),
            });
        }
    };
    if checked.verdicts.len() != material.pending.len() {
        return Err(corrupt(format!(
            "the checker gave {} verdicts for {} changes of {doc_id}",
            checked.verdicts.len(),
            material.pending.len()
        )));
    }
    let settle = tx
        .prepare_cached(
            "UPDATE changes SET state = $1, relay = $2 WHERE seq = $3 AND state IN (0, 3)",
        )
        .await?;
    let now = now_ms();
    let mut first_refusal = None;
    for (change, verdict) in material.pending.iter().zip(&checked.verdicts) {
        match verdict {
            ChangeVerdict::Accepted => {
                let n = tx
                    .execute(&settle, &[&state::ACCEPTED, &(*relay + 1), &change.seq])
                    .await?;
                *relay += n as i64;
            }
            ChangeVerdict::Refused(reason) => {
                let n = tx
                    .execute(&settle, &[&state::REFUSED, &(*relay + 1), &change.seq])
                    .await?;
                if n == 0 {
                    continue;
                }
                *relay += 1;
                tx.execute(
                    "INSERT INTO refusals (doc_id, hash, org_id, origin, reason, at)
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                    &[&doc_id, &change.hash, &org_id, &change.origin, reason, &now],
                )
                .await?;
                tracing::warn!(doc = %doc_id, seq = change.seq, %reason, "a pushed change was refused by its check");
                first_refusal.get_or_insert(reason.clone());
            }
            ChangeVerdict::Waiting => {
                tx.execute(
                    "UPDATE changes SET state = 3 WHERE seq = $1 AND state = 0",
                    &[&change.seq],
                )
                .await?;
            }
        }
    }
    let broken = match (&checked.view, first_refusal) {
        (Some(_), _) => None,
        (None, Some(reason)) => Some(format!(
            "nothing readable has been pushed for it; its changes were refused: {reason}"
        )),
        (None, None) => Some(
            "its changes depend on changes the server does not have; the device that made them must sync"
                .to_owned(),
        ),
    };
    Ok(Summary {
        view: checked.view.clone(),
        broken,
    })
}
