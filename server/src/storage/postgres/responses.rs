//! The materialiser's queue and settlement, and the response index, on PostgreSQL.

use std::collections::HashMap;
use std::sync::Arc;

use fieldsync_protocol::api::{ResponsePage, ResponseView};
use fieldsync_protocol::crypto::{Cipher, Sealed};
use fieldsync_protocol::document::Status;
use serde_bytes::ByteBuf;
use tokio_postgres::IsolationLevel;
use tokio_postgres::types::ToSql;

use super::backend::Tx;
use super::sync::{keys_doc, org_cipher};
use super::{Postgres, big, small};
use crate::keys::{change_binding, summary_binding};
use crate::storage::{
    DocMaterial, PendingChange, Queued, ResponseQuery, Result, StorageError, Summary, now_ms, state,
};

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
    crate::storage::decode_summary(plain.as_bytes())
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
        self.materials(&mut client, claimed).await
    }

    /// Every change of each document that is accepted or still to be checked, decrypted,
    /// with its survey definition, from one snapshot and a few statements for all of them.
    async fn materials(
        &self,
        client: &mut deadpool_postgres::Client,
        claimed: Vec<Queued>,
    ) -> Result<Vec<(Queued, Option<DocMaterial>)>> {
        if claimed.is_empty() {
            return Ok(Vec::new());
        }
        let tx = snapshot(client).await?;
        let ids: Vec<&str> = claimed.iter().map(|q| q.doc_id.as_str()).collect();
        let queued_for: HashMap<&str, &str> = claimed
            .iter()
            .map(|q| (q.doc_id.as_str(), q.org_id.as_str()))
            .collect();
        // The documents (of the organisation they were queued for) and their keys.
        let mut docs: HashMap<String, (Arc<Cipher>, String, u32)> = HashMap::new();
        let mut orgs: HashMap<String, Arc<Cipher>> = HashMap::new();
        let rows = tx
            .query(
                "SELECT id, org_id, wrapped_key, survey_id, survey_version FROM docs WHERE id = ANY($1)",
                &[&ids],
            )
            .await?;
        for r in rows {
            let (id, org_id): (String, String) = (r.try_get(0)?, r.try_get(1)?);
            if queued_for.get(id.as_str()) != Some(&org_id.as_str()) {
                continue;
            }
            let org = match orgs.get(&org_id) {
                Some(c) => c.clone(),
                None => {
                    let c = org_cipher(&tx, &self.keys, &org_id).await?;
                    orgs.insert(org_id.clone(), c.clone());
                    c
                }
            };
            let wrapped: Vec<u8> = r.try_get(2)?;
            let cipher = keys_doc(&self.keys, &org, &org_id, &id, &wrapped)?;
            docs.insert(id, (cipher, r.try_get(3)?, small(r.try_get(4)?)?));
        }
        let mut materials: HashMap<String, DocMaterial> = docs
            .iter()
            .map(|(id, (_, survey_id, version))| {
                (
                    id.clone(),
                    DocMaterial {
                        accepted: Vec::new(),
                        pending: Vec::new(),
                        survey_id: survey_id.clone(),
                        survey_version: *version,
                        definition: None,
                        upto_seq: 0,
                    },
                )
            })
            .collect();
        let stmt = tx
            .prepare_cached(
                "SELECT doc_id, seq, payload, state, hash, origin FROM changes
                 WHERE doc_id = ANY($1) AND state <> 2 ORDER BY doc_id, seq",
            )
            .await?;
        for r in tx.query(&stmt, &[&ids]).await? {
            let doc_id: String = r.try_get(0)?;
            let (Some((cipher, _, _)), Some(m)) = (docs.get(&doc_id), materials.get_mut(&doc_id))
            else {
                continue;
            };
            let org_id = queued_for.get(doc_id.as_str()).copied().unwrap_or_default();
            let seq: i64 = r.try_get(1)?;
            let sealed = Sealed::from_bytes(r.try_get(2)?).map_err(corrupt)?;
            let plain = cipher
                .open_owned(&change_binding(org_id, &doc_id, seq), sealed)
                .map_err(|e| corrupt(format!("change {seq}: {e}")))?;
            let bytes = ByteBuf::from(plain.as_bytes().to_vec());
            if r.try_get::<_, i64>(3)? == state::ACCEPTED {
                m.accepted.push(bytes);
            } else {
                m.pending.push(PendingChange {
                    seq,
                    hash: r.try_get(4)?,
                    origin: r.try_get(5)?,
                    bytes,
                });
            }
            m.upto_seq = seq;
        }
        let (survey_ids, versions): (Vec<&str>, Vec<i64>) = materials
            .values()
            .map(|m| (m.survey_id.as_str(), big(m.survey_version)))
            .unzip();
        let definitions: HashMap<(String, i64), String> = tx
            .query(
                "SELECT v.survey_id, v.version, v.definition FROM survey_versions v
                 JOIN unnest($1::text[], $2::bigint[]) AS w(survey_id, version)
                   ON v.survey_id = w.survey_id AND v.version = w.version",
                &[&survey_ids, &versions],
            )
            .await?
            .iter()
            .map(|r| Ok(((r.try_get(0)?, r.try_get(1)?), r.try_get(2)?)))
            .collect::<Result<_>>()?;
        tx.commit().await?;
        Ok(claimed
            .into_iter()
            .map(|item| {
                let material = materials.remove(&item.doc_id).map(|mut m| {
                    m.definition = definitions
                        .get(&(m.survey_id.clone(), big(m.survey_version)))
                        .cloned();
                    m
                });
                (item, material)
            })
            .collect())
    }

    /// One page of a survey's materialised responses, ordered by id.
    pub(super) async fn list_responses(&self, q: &ResponseQuery) -> Result<ResponsePage> {
        let mut client = self.client().await?;
        let tx = snapshot(&mut client).await?;
        let org_id = q.org_id.as_str();
        let org = org_cipher(&tx, &self.keys, org_id).await?;
        let stmt = tx
            .prepare_cached(
                "SELECT i.doc_id, i.upto_seq, i.summary, d.restricted FROM response_index i
                 JOIN docs d ON d.id = i.doc_id
                 WHERE i.org_id = $1 AND i.survey_id = $2 AND i.doc_id > $3
                   AND ($4::text IS NULL OR i.status = $4) AND ($5::text IS NULL OR d.owner_id = $5)
                   AND (NOT $6 OR i.error_count > 0 OR i.broken) AND (NOT $7 OR i.conflict_count > 0)
                   AND ($9 OR NOT d.restricted)
                 ORDER BY i.doc_id LIMIT $8",
            )
            .await?;
        let after = q.after.clone().unwrap_or_default();
        let params: [&(dyn ToSql + Sync); 9] = [
            &org_id,
            &q.survey_id,
            &after,
            &q.status,
            &q.owner,
            &q.invalid_only,
            &q.conflicted_only,
            &big(q.limit),
            &q.include_restricted,
        ];
        let mut items = Vec::new();
        for r in tx.query(&stmt, &params).await? {
            let doc_id: String = r.try_get(0)?;
            let mut summary = open_summary(
                &tx,
                self,
                &org,
                org_id,
                &doc_id,
                r.try_get(1)?,
                r.try_get(2)?,
            )
            .await?;
            summary.restricted = r.try_get(3)?;
            items.push(crate::storage::list_item(&doc_id, summary)?);
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
        let visible: Option<(String, bool)> = tx
            .query_opt(
                "SELECT owner_id, restricted FROM docs WHERE id = $1 AND org_id = $2",
                &[&doc_id, &org_id],
            )
            .await?
            .map(|r| Ok::<_, StorageError>((r.try_get(0)?, r.try_get(1)?)))
            .transpose()?;
        let restricted = match (visible, owner) {
            (None, _) => return Ok(None),
            (Some((o, _)), Some(want)) if o != want => return Ok(None),
            (Some((_, restricted)), _) => restricted,
        };
        let org = org_cipher(&tx, &self.keys, org_id).await?;
        let row = tx
            .query_opt(
                "SELECT upto_seq, summary FROM response_index WHERE doc_id = $1 AND org_id = $2",
                &[&doc_id, &org_id],
            )
            .await?;
        let mut out = match row {
            Some(r) => {
                open_summary(
                    &tx,
                    self,
                    &org,
                    org_id,
                    doc_id,
                    r.try_get(0)?,
                    r.try_get(1)?,
                )
                .await?
            }
            None => Summary {
                view: None,
                broken: None,
                restricted: false,
                do_not_contact: false,
            },
        };
        out.restricted = restricted;
        tx.commit().await?;
        Ok(Some(out))
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
                // Restricted responses are never exported.
                "SELECT i.doc_id, i.upto_seq, i.summary FROM response_index i
                 JOIN docs d ON d.id = i.doc_id
                 WHERE i.org_id = $1 AND i.survey_id = $2 AND i.doc_id > $3 AND NOT i.broken
                   AND NOT d.restricted
                 ORDER BY i.doc_id LIMIT $4",
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

    pub(super) async fn status_count(
        &self,
        org_id: &str,
        survey_id: &str,
        statuses: &[Status],
    ) -> Result<u64> {
        let names = crate::storage::status_names(statuses);
        let client = self.client().await?;
        let n: i64 = client
            .query_one(
                "SELECT count(*) FROM response_index i JOIN docs d ON d.id = i.doc_id
                 WHERE i.org_id = $1 AND i.survey_id = $2 AND NOT i.broken AND NOT d.restricted
                   AND i.status = ANY($3)",
                &[&org_id, &survey_id, &names],
            )
            .await?
            .try_get(0)?;
        Ok(n as u64)
    }
}
