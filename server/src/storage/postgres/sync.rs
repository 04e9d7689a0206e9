//! The sync path on PostgreSQL: storing pushed changes (encrypted, deduplicated by hash) and
//! paging checked changes out by relay number. See the module docs of [`super`] for why this
//! is safe with several instances on one database.

use std::collections::HashMap;
use std::sync::Arc;

use fieldsync_protocol::api::Role;
use fieldsync_protocol::crypto::{Cipher, Sealed};
use fieldsync_protocol::wire::{
    DocChanges, DocKind, DocPushResult, PROTOCOL_VERSION, PullResponse, PushOutcome, RefusedChange,
    SurveyUpdate,
};
use serde_bytes::ByteBuf;
use tokio_postgres::IsolationLevel;
use uuid::Uuid;

use super::backend::{Tx, status_of, uuid_of};
use super::{Postgres, big, small};
use crate::auth::Caller;
use crate::keys::{KeyRing, change_binding};
use crate::service::policy::{self, Admission, VisibleSurvey};
use crate::storage::{
    PullQuery, Pushed, Result, StorageError, StoredDoc, SurveyGate, VerifiedDoc, now_ms, state,
};

/// The organisation key.
pub(super) async fn org_cipher(tx: &Tx<'_>, keys: &KeyRing, org_id: &str) -> Result<Arc<Cipher>> {
    let stmt = tx
        .prepare_cached("SELECT wrapped_key FROM orgs WHERE id = $1")
        .await?;
    let wrapped: Vec<u8> = tx
        .query_opt(&stmt, &[&org_id])
        .await?
        .ok_or_else(|| StorageError::NotFound("no such organisation".into()))?
        .try_get(0)?;
    keys.org_cipher(org_id, &wrapped)
        .map_err(|e| StorageError::Corrupt(e.to_string()))
}

fn corrupt(e: impl std::fmt::Display) -> StorageError {
    StorageError::Corrupt(e.to_string())
}

async fn gate(
    tx: &Tx<'_>,
    org_id: &str,
    survey_id: &str,
    principal_id: &str,
) -> Result<Option<SurveyGate>> {
    let stmt = tx
        .prepare_cached(
            "SELECT s.status, s.latest_version,
                    EXISTS (SELECT 1 FROM assignments a WHERE a.survey_id = s.id AND a.principal_id = $3)
             FROM surveys s WHERE s.org_id = $1 AND s.id = $2",
        )
        .await?;
    tx.query_opt(&stmt, &[&org_id, &survey_id, &principal_id])
        .await?
        .map(|r| {
            Ok(SurveyGate {
                status: status_of(r.try_get(0)?)?,
                latest_version: small(r.try_get(1)?)?,
                assigned: r.try_get(2)?,
            })
        })
        .transpose()
}

/// The stored document, locked until the push commits.
async fn locked_doc(tx: &Tx<'_>, id: &str) -> Result<Option<(StoredDoc, Vec<u8>)>> {
    let stmt = tx
        .prepare_cached(
            "SELECT org_id, survey_id, owner_id, survey_version, wrapped_key FROM docs
             WHERE id = $1 FOR UPDATE",
        )
        .await?;
    tx.query_opt(&stmt, &[&id])
        .await?
        .map(|r| {
            Ok((
                StoredDoc {
                    org_id: r.try_get(0)?,
                    survey_id: r.try_get(1)?,
                    owner_id: r.try_get(2)?,
                    survey_version: small(r.try_get(3)?)?,
                },
                r.try_get(4)?,
            ))
        })
        .transpose()
}

async fn has_new_change(tx: &Tx<'_>, doc_id: &str, hashes: &[ByteBuf]) -> Result<bool> {
    let stmt = tx
        .prepare_cached("SELECT 1 FROM changes WHERE doc_id = $1 AND hash = $2")
        .await?;
    for hash in hashes {
        if tx
            .query_opt(&stmt, &[&doc_id, &hash.as_slice()])
            .await?
            .is_none()
        {
            return Ok(true);
        }
    }
    Ok(false)
}

impl Postgres {
    /// Store a batch in one transaction; see [`crate::storage::Storage::push`].
    pub(super) async fn push_batch(&self, caller: &Caller, docs: &[VerifiedDoc]) -> Result<Pushed> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let org_id = caller.org_id.as_str();
        let org = org_cipher(&tx, &self.keys, org_id).await?;
        let now = now_ms();
        let mut gates: HashMap<Uuid, Option<SurveyGate>> = HashMap::new();
        let mut results: Vec<Option<DocPushResult>> = (0..docs.len()).map(|_| None).collect();
        let mut stored_any = false;
        // Documents in id order: every push takes its row locks in the same order, so two
        // pushes that share documents wait for each other instead of deadlocking.
        let mut order: Vec<usize> = (0..docs.len()).collect();
        order.sort_by_key(|&i| docs[i].doc.doc_id);
        let next_seq = tx
            .prepare_cached("SELECT nextval(pg_get_serial_sequence('changes', 'seq'))")
            .await?;
        let seen = tx
            .prepare_cached("SELECT 1 FROM changes WHERE doc_id = $1 AND hash = $2")
            .await?;
        let insert = tx
            .prepare_cached(
                "INSERT INTO changes (seq, org_id, doc_id, hash, origin, payload)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (doc_id, hash) DO NOTHING",
            )
            .await?;
        for i in order {
            let VerifiedDoc { doc, hashes } = &docs[i];
            let id = doc.doc_id.to_string();
            let gate = match gates.get(&doc.survey_id) {
                Some(g) => g.clone(),
                None => {
                    let g = gate(
                        &tx,
                        org_id,
                        &doc.survey_id.to_string(),
                        &caller.principal_id,
                    )
                    .await?;
                    gates.insert(doc.survey_id, g.clone());
                    g
                }
            };
            let Some(cipher) = self
                .admit(
                    &tx,
                    caller,
                    doc,
                    hashes,
                    gate.as_ref(),
                    &org,
                    now,
                    &mut results[i],
                )
                .await?
            else {
                continue;
            };
            let (mut new, mut duplicate) = (0u32, 0u32);
            let mut last_seq = None;
            for (bytes, hash) in doc.changes.iter().zip(hashes) {
                if tx
                    .query_opt(&seen, &[&id, &hash.as_slice()])
                    .await?
                    .is_some()
                {
                    duplicate += 1;
                    continue;
                }
                let seq: i64 = tx.query_one(&next_seq, &[]).await?.try_get(0)?;
                let sealed = cipher
                    .seal(&change_binding(org_id, &id, seq), bytes)
                    .map_err(corrupt)?;
                let n = tx
                    .execute(
                        &insert,
                        &[
                            &seq,
                            &org_id,
                            &id,
                            &hash.as_slice(),
                            &caller.session,
                            &sealed.to_bytes(),
                        ],
                    )
                    .await?;
                if n == 0 {
                    duplicate += 1;
                    continue;
                }
                new += 1;
                last_seq = Some(seq);
            }
            if let Some(seq) = last_seq {
                // New changes end any lease a materialiser holds on the document: they must
                // be checked too.
                tx.execute(
                    "INSERT INTO materialize_queue (doc_id, org_id, seq) VALUES ($1, $2, $3)
                     ON CONFLICT (doc_id) DO UPDATE SET seq = excluded.seq, claimed_until = NULL",
                    &[&id, &org_id, &seq],
                )
                .await?;
                stored_any = true;
            }
            results[i] = Some(DocPushResult {
                doc_id: doc.doc_id,
                outcome: PushOutcome::Stored { new, duplicate },
            });
        }
        tx.commit().await?;
        Ok(Pushed {
            results: results
                .into_iter()
                .map(|r| r.ok_or_else(|| corrupt("a pushed document got no answer")))
                .collect::<Result<_>>()?,
            stored_any,
        })
    }

    /// Apply the push policy to one document, creating it if it is new. The document's
    /// cipher when its changes may be stored; otherwise the refusal is put in `answer`.
    #[allow(clippy::too_many_arguments)]
    async fn admit(
        &self,
        tx: &Tx<'_>,
        caller: &Caller,
        doc: &DocChanges,
        hashes: &[ByteBuf],
        gate: Option<&SurveyGate>,
        org: &Cipher,
        now: i64,
        answer: &mut Option<DocPushResult>,
    ) -> Result<Option<Arc<Cipher>>> {
        let org_id = caller.org_id.as_str();
        let id = doc.doc_id.to_string();
        // Twice at most: a document another instance created since we looked is then stored.
        for _ in 0..2 {
            let existing = locked_doc(tx, &id).await?;
            let admission =
                policy::admit_push(caller, doc, existing.as_ref().map(|(d, _)| d), gate);
            match (admission, existing) {
                (Admission::Refuse(refusal), _) => {
                    *answer = Some(refusal);
                    return Ok(None);
                }
                (Admission::Existing { unless_new }, Some((_, wrapped))) => {
                    if let Some(refusal) = unless_new
                        && has_new_change(tx, &id, hashes).await?
                    {
                        *answer = Some(refusal);
                        return Ok(None);
                    }
                    return keys_doc(&self.keys, org, org_id, &id, &wrapped).map(Some);
                }
                (Admission::Existing { .. }, None) => {
                    return Err(corrupt(format!(
                        "the push policy took document {id} for a stored one, and it is not"
                    )));
                }
                (Admission::Create, _) => {
                    let (cipher, wrapped) =
                        self.keys.new_doc_key(org, org_id, &id).map_err(corrupt)?;
                    let stmt = tx
                        .prepare_cached(
                            "INSERT INTO docs (id, org_id, survey_id, survey_version, owner_id, wrapped_key, created_at)
                             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING",
                        )
                        .await?;
                    let n = tx
                        .execute(
                            &stmt,
                            &[
                                &id,
                                &org_id,
                                &doc.survey_id.to_string(),
                                &big(doc.survey_version),
                                &caller.principal_id,
                                &wrapped,
                                &now,
                            ],
                        )
                        .await?;
                    if n == 1 {
                        return Ok(Some(cipher));
                    }
                    // Created meanwhile by another push: decide again on the stored row.
                    self.keys.forget_doc(&id);
                }
            }
        }
        Err(StorageError::Busy(format!(
            "document {} is being created by another push; retry",
            doc.doc_id
        )))
    }

    /// Whether changes others pushed, that this caller could pull, wait to be checked.
    pub(super) async fn any_unchecked_for(&self, caller: &Caller) -> Result<bool> {
        let client = self.client().await?;
        let owner = (caller.role == Role::Enumerator).then_some(caller.principal_id.as_str());
        let stmt = client
            .prepare_cached(
                "SELECT 1 FROM (
                     SELECT doc_id FROM changes WHERE org_id = $1 AND state = 0 AND origin < $2
                     UNION ALL
                     SELECT doc_id FROM changes WHERE org_id = $1 AND state = 0 AND origin > $2
                 ) c JOIN docs d ON d.id = c.doc_id
                 WHERE $3::text IS NULL OR d.owner_id = $3
                 LIMIT 1",
            )
            .await?;
        Ok(client
            .query_opt(&stmt, &[&caller.org_id, &caller.session, &owner])
            .await?
            .is_some())
    }

    /// One page of checked changes after the cursor, with survey updates, from one snapshot.
    pub(super) async fn pull_page(&self, q: &PullQuery) -> Result<PullResponse> {
        let mut client = self.client().await?;
        let tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let caller = &q.caller;
        let org_id = caller.org_id.as_str();
        let origin = caller.session.as_str();
        let org = org_cipher(&tx, &self.keys, org_id).await?;
        let high: i64 = tx
            .query_opt(
                "SELECT relay FROM changes WHERE org_id = $1 AND relay IS NOT NULL
                 ORDER BY relay DESC LIMIT 1",
                &[&org_id],
            )
            .await?
            .map(|r| r.try_get(0))
            .transpose()?
            .unwrap_or(0);
        let cursor = i64::try_from(q.cursor).unwrap_or(i64::MAX);
        let owner = (caller.role == Role::Enumerator).then_some(caller.principal_id.as_str());
        let mut docs: Vec<DocChanges> = Vec::new();
        let mut refused = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut last = cursor;
        let mut count = 0u32;
        let mut bytes = 0usize;
        if high > cursor {
            let stmt = tx
                .prepare_cached(
                    "SELECT c.relay, c.seq, c.doc_id, c.state, c.payload, c.hash,
                            d.survey_id, d.survey_version, d.wrapped_key
                     FROM changes c JOIN docs d ON d.id = c.doc_id
                     WHERE c.org_id = $1 AND c.relay > $2 AND c.relay <= $3
                       AND ((c.state = 1 AND c.origin <> $4) OR (c.state = 2 AND c.origin = $4))
                       AND ($5::text IS NULL OR d.owner_id = $5)
                     ORDER BY c.relay LIMIT $6",
                )
                .await?;
            let reason_stmt = tx
                .prepare_cached("SELECT reason FROM refusals WHERE doc_id = $1 AND hash = $2")
                .await?;
            let rows = tx
                .query(
                    &stmt,
                    &[&org_id, &cursor, &high, &origin, &owner, &big(q.limit)],
                )
                .await?;
            for r in rows {
                let relay: i64 = r.try_get(0)?;
                let seq: i64 = r.try_get(1)?;
                let doc_id: String = r.try_get(2)?;
                let parsed_id = uuid_of(&doc_id)?;
                last = relay;
                count += 1;
                let hash: Vec<u8> = r.try_get(5)?;
                if r.try_get::<_, i64>(3)? == state::REFUSED {
                    let reason: String = match tx.query_opt(&reason_stmt, &[&doc_id, &hash]).await?
                    {
                        Some(row) => row.try_get(0)?,
                        None => "the server's checks refused it".to_owned(),
                    };
                    refused.push(RefusedChange {
                        doc_id: parsed_id,
                        hash: ByteBuf::from(hash),
                        reason,
                    });
                    continue;
                }
                let payload: Vec<u8> = r.try_get(4)?;
                let sealed = Sealed::from_bytes(&payload).map_err(corrupt)?;
                let wrapped: Vec<u8> = r.try_get(8)?;
                let cipher = keys_doc(&self.keys, &org, org_id, &doc_id, &wrapped)?;
                let plain = cipher
                    .open_owned(&change_binding(org_id, &doc_id, seq), sealed)
                    .map_err(|e| corrupt(format!("change {seq}: {e}")))?;
                let slot = match index.get(&doc_id) {
                    Some(&i) => i,
                    None => {
                        docs.push(DocChanges {
                            doc_id: parsed_id,
                            kind: DocKind::Response,
                            survey_id: uuid_of(r.try_get(6)?)?,
                            survey_version: small(r.try_get(7)?)?,
                            changes: Vec::new(),
                        });
                        index.insert(doc_id, docs.len() - 1);
                        docs.len() - 1
                    }
                };
                bytes += plain.as_bytes().len();
                docs[slot]
                    .changes
                    .push(ByteBuf::from(plain.as_bytes().to_vec()));
                if bytes >= q.max_bytes {
                    break;
                }
            }
        }
        let more = (count >= q.limit || bytes >= q.max_bytes) && last < high;
        let next = if more { last } else { high.max(cursor) };

        let visible = tx
            .query(
                "SELECT s.id, s.status, s.latest_version FROM surveys s
                 WHERE s.org_id = $1
                   AND ($2::text IS NULL OR EXISTS (SELECT 1 FROM assignments a
                                                    WHERE a.survey_id = s.id AND a.principal_id = $2))",
                &[&org_id, &owner],
            )
            .await?
            .iter()
            .map(|r| {
                Ok(VisibleSurvey {
                    id: uuid_of(r.try_get(0)?)?,
                    status: status_of(r.try_get(1)?)?,
                    latest_version: small(r.try_get(2)?)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let (survey_states, send) = policy::survey_sync(&visible, &q.known_surveys);
        let mut surveys = Vec::with_capacity(send.len());
        for s in send {
            let doc: Vec<u8> = tx
                .query_one(
                    "SELECT doc FROM surveys WHERE id = $1",
                    &[&s.id.to_string()],
                )
                .await?
                .try_get(0)?;
            surveys.push(SurveyUpdate {
                survey_id: s.id,
                status: s.status,
                latest_version: s.latest_version,
                document: ByteBuf::from(doc),
            });
        }
        tx.commit().await?;
        Ok(PullResponse {
            protocol: PROTOCOL_VERSION,
            docs,
            surveys,
            survey_states,
            cursor: next as u64,
            more,
            refused,
        })
    }
}

/// A document's cipher from its wrapped key.
pub(super) fn keys_doc(
    keys: &KeyRing,
    org: &Cipher,
    org_id: &str,
    doc_id: &str,
    wrapped: &[u8],
) -> Result<Arc<Cipher>> {
    keys.doc_cipher(org, org_id, doc_id, wrapped)
        .map_err(corrupt)
}
