//! The sync path on PostgreSQL: storing pushed changes (encrypted, deduplicated by hash) and
//! paging checked changes out by relay number. See the module docs of [`super`] for why this
//! is safe with several instances on one database.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use fieldsync_protocol::api::Role;
use fieldsync_protocol::crypto::Cipher;
use fieldsync_protocol::wire::{
    DocChanges, DocPushResult, PullResponse, PushOutcome, SurveyUpdate,
};
use serde_bytes::ByteBuf;
use tokio_postgres::IsolationLevel;
use uuid::Uuid;

use super::backend::Tx;
use super::rows::{record, status_of, uuid_of};
use super::{Postgres, big, small};
use crate::auth::Caller;
use crate::keys::{KeyRing, OrgKeys, change_binding};
use crate::service::policy::{self, Admission, VisibleSurvey};
use crate::storage::edit_audit;
use crate::storage::{
    Page, PullQuery, Pushed, Result, StorageError, StoredDoc, SurveyGate, VerifiedDoc, now_ms,
    open_change, state,
};

/// The organisation key.
pub(super) async fn org_cipher(tx: &Tx<'_>, keys: &KeyRing, org_id: &str) -> Result<Arc<Cipher>> {
    Ok(org_keys(tx, keys, org_id).await?.cipher.clone())
}

/// The organisation key and the keys derived from it.
pub(super) async fn org_keys(tx: &Tx<'_>, keys: &KeyRing, org_id: &str) -> Result<Arc<OrgKeys>> {
    let stmt = tx
        .prepare_cached("SELECT wrapped_key FROM orgs WHERE id = $1")
        .await?;
    let wrapped: Vec<u8> = tx
        .query_opt(&stmt, &[&org_id])
        .await?
        .ok_or_else(|| StorageError::NotFound("no such organisation".into()))?
        .try_get(0)?;
    keys.org_keys(org_id, &wrapped)
        .map_err(|e| StorageError::Corrupt(e.to_string()))
}

fn corrupt(e: impl std::fmt::Display) -> StorageError {
    StorageError::Corrupt(e.to_string())
}

/// The gate of every survey the pushed documents name (`None`: not in this organisation).
async fn gates(
    tx: &Tx<'_>,
    org_id: &str,
    principal_id: &str,
    docs: &[VerifiedDoc],
) -> Result<HashMap<Uuid, Option<SurveyGate>>> {
    let mut out: HashMap<Uuid, Option<SurveyGate>> =
        docs.iter().map(|d| (d.doc.survey_id, None)).collect();
    let ids: Vec<String> = out.keys().map(Uuid::to_string).collect();
    let stmt = tx
        .prepare_cached(
            "SELECT s.id, s.status, s.latest_version,
                    EXISTS (SELECT 1 FROM assignments a WHERE a.survey_id = s.id AND a.principal_id = $3)
             FROM surveys s WHERE s.org_id = $1 AND s.id = ANY($2)",
        )
        .await?;
    for r in tx.query(&stmt, &[&org_id, &ids, &principal_id]).await? {
        out.insert(
            uuid_of(r.try_get(0)?)?,
            Some(SurveyGate {
                status: status_of(r.try_get(1)?)?,
                latest_version: small(r.try_get(2)?)?,
                assigned: r.try_get(3)?,
            }),
        );
    }
    Ok(out)
}

/// The stored document, locked until the push commits.
async fn locked_doc(tx: &Tx<'_>, id: &str) -> Result<Option<(StoredDoc, Vec<u8>)>> {
    let stmt = tx
        .prepare_cached(
            "SELECT org_id, survey_id, owner_id, survey_version, wrapped_key, restricted,
                    (SELECT i.status FROM response_index i WHERE i.doc_id = docs.id)
             FROM docs WHERE id = $1 FOR UPDATE",
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
                    restricted: r.try_get(5)?,
                    status: r.try_get(6)?,
                },
                r.try_get(4)?,
            ))
        })
        .transpose()
}

/// Which of `ids` the organisation erased.
async fn erased_among(tx: &Tx<'_>, org_id: &str, ids: &[String]) -> Result<HashSet<String>> {
    let stmt = tx
        .prepare_cached("SELECT doc_id FROM erased WHERE org_id = $1 AND doc_id = ANY($2)")
        .await?;
    tx.query(&stmt, &[&org_id, &ids])
        .await?
        .iter()
        .map(|r| Ok(r.try_get(0)?))
        .collect()
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
    /// Store a batch in one transaction; see [`crate::storage::Storage::push`]. A handful of
    /// statements per push, whatever its size: the documents are locked, read and created,
    /// and their changes looked up, numbered and inserted, each in one statement over arrays.
    pub(super) async fn push_batch(&self, caller: &Caller, docs: &[VerifiedDoc]) -> Result<Pushed> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let org_id = caller.org_id.as_str();
        let org = org_cipher(&tx, &self.keys, org_id).await?;
        let now = now_ms();
        let ids: Vec<String> = docs.iter().map(|d| d.doc.doc_id.to_string()).collect();

        // Lock the stored documents, in id order: every push takes its row locks in the same
        // order, so two pushes that share documents wait for each other, never deadlock.
        let mut stored: HashMap<String, (StoredDoc, Vec<u8>)> = HashMap::new();
        let lock = tx
            .prepare_cached(
                "SELECT id, org_id, survey_id, owner_id, survey_version, wrapped_key, restricted,
                        (SELECT i.status FROM response_index i WHERE i.doc_id = docs.id)
                 FROM docs WHERE id = ANY($1) ORDER BY id FOR UPDATE",
            )
            .await?;
        for r in tx.query(&lock, &[&ids]).await? {
            stored.insert(
                r.try_get(0)?,
                (
                    StoredDoc {
                        org_id: r.try_get(1)?,
                        survey_id: r.try_get(2)?,
                        owner_id: r.try_get(3)?,
                        survey_version: small(r.try_get(4)?)?,
                        restricted: r.try_get(6)?,
                        status: r.try_get(7)?,
                    },
                    r.try_get(5)?,
                ),
            );
        }
        let gates = gates(&tx, org_id, &caller.principal_id, docs).await?;
        let erased = erased_among(&tx, org_id, &ids).await?;
        // Which pushed changes are stored already.
        let (pair_docs, pair_hashes): (Vec<&str>, Vec<&[u8]>) = docs
            .iter()
            .zip(&ids)
            .filter(|(_, id)| stored.contains_key(*id))
            .flat_map(|(d, id)| d.hashes.iter().map(move |h| (id.as_str(), h.as_slice())))
            .unzip();
        let mut seen: HashMap<String, HashSet<Vec<u8>>> = HashMap::new();
        if !pair_docs.is_empty() {
            let stmt = tx
                .prepare_cached(
                    "SELECT c.doc_id, c.hash FROM changes c
                     JOIN unnest($1::text[], $2::bytea[]) AS p(doc_id, hash)
                       ON c.doc_id = p.doc_id AND c.hash = p.hash",
                )
                .await?;
            for r in tx.query(&stmt, &[&pair_docs, &pair_hashes]).await? {
                seen.entry(r.try_get(0)?).or_default().insert(r.try_get(1)?);
            }
        }

        // The policy, document by document; new documents get their keys.
        let mut results: Vec<Option<DocPushResult>> = (0..docs.len()).map(|_| None).collect();
        let mut ciphers: Vec<Option<Arc<Cipher>>> = (0..docs.len()).map(|_| None).collect();
        let mut create: Vec<(usize, Vec<u8>)> = Vec::new();
        for (i, VerifiedDoc { doc, hashes, .. }) in docs.iter().enumerate() {
            let existing = stored.get(&ids[i]);
            let gate = gates.get(&doc.survey_id).and_then(Option::as_ref);
            let gone = existing.is_none() && erased.contains(&ids[i]);
            match policy::admit_push(caller, doc, existing.map(|(d, _)| d), gone, gate) {
                Admission::Refuse(refusal) => results[i] = Some(refusal),
                Admission::Existing { unless_new } => {
                    let Some((_, wrapped)) = existing else {
                        return Err(corrupt(format!(
                            "the push policy took document {} for a stored one, and it is not",
                            ids[i]
                        )));
                    };
                    let new_change = hashes.iter().any(|h| !is_stored(&seen, &ids[i], h));
                    match unless_new {
                        Some(refusal) if new_change => results[i] = Some(refusal),
                        _ => {
                            ciphers[i] = Some(keys_doc(&self.keys, &org, org_id, &ids[i], wrapped)?)
                        }
                    }
                }
                Admission::Create => {
                    let (cipher, wrapped) = self
                        .keys
                        .new_doc_key(&org, org_id, &ids[i])
                        .map_err(corrupt)?;
                    ciphers[i] = Some(cipher);
                    create.push((i, wrapped));
                }
            }
        }
        if !create.is_empty() {
            let created = self
                .create_docs(&tx, caller, docs, &ids, &create, now)
                .await?;
            // The documents another push created meanwhile are locked one by one below: in id
            // order, as every push takes its locks, or two pushes of one batch (a retry racing
            // its original) can each hold a row the other waits for.
            let mut taken: Vec<usize> = create.iter().map(|(i, _)| *i).collect();
            taken.sort_by(|a, b| ids[*a].cmp(&ids[*b]));
            for i in &taken {
                if !created.contains(&ids[*i]) {
                    // Another push created it since we looked: decide again on its row.
                    self.keys.forget_doc(&ids[*i]);
                    ciphers[*i] = self
                        .admit(
                            &tx,
                            caller,
                            &docs[*i].doc,
                            &docs[*i].hashes,
                            gates.get(&docs[*i].doc.survey_id).and_then(Option::as_ref),
                            &org,
                            now,
                            &mut results[*i],
                        )
                        .await?;
                }
            }
        }

        // Number, seal and insert every new change at once.
        let mut new_changes: Vec<(usize, &ByteBuf, &ByteBuf)> = Vec::new();
        let mut counts = vec![(0u32, 0u32); docs.len()];
        for (i, VerifiedDoc { doc, hashes, .. }) in docs.iter().enumerate() {
            if ciphers[i].is_none() {
                continue;
            }
            let mut in_batch = HashSet::new();
            for (bytes, hash) in doc.changes.iter().zip(hashes) {
                if is_stored(&seen, &ids[i], hash) || !in_batch.insert(hash) {
                    counts[i].1 += 1;
                } else {
                    new_changes.push((i, bytes, hash));
                }
            }
        }
        let mut last_seq: Vec<Option<i64>> = vec![None; docs.len()];
        if !new_changes.is_empty() {
            let seqs: Vec<i64> = tx
                .query(
                    "SELECT nextval(pg_get_serial_sequence('changes', 'seq')) FROM generate_series(1, $1::bigint)",
                    &[&(new_changes.len() as i64)],
                )
                .await?
                .iter()
                .map(|r| r.try_get(0))
                .collect::<std::result::Result<_, _>>()?;
            let mut change_docs = Vec::with_capacity(seqs.len());
            let mut change_hashes = Vec::with_capacity(seqs.len());
            let mut payloads = Vec::with_capacity(seqs.len());
            for ((i, bytes, hash), seq) in new_changes.iter().zip(&seqs) {
                let cipher = ciphers[*i].as_ref().ok_or_else(|| corrupt("no cipher"))?;
                let sealed = cipher
                    .seal(&change_binding(org_id, &ids[*i], *seq), bytes)
                    .map_err(corrupt)?;
                change_docs.push(ids[*i].as_str());
                change_hashes.push(hash.as_slice());
                payloads.push(sealed.to_bytes());
            }
            let insert = tx
                .prepare_cached(
                    "INSERT INTO changes (seq, org_id, doc_id, hash, origin, payload)
                     SELECT seq, $2, doc_id, hash, $3, payload
                     FROM unnest($1::bigint[], $4::text[], $5::bytea[], $6::bytea[])
                          AS n(seq, doc_id, hash, payload)
                     ON CONFLICT (doc_id, hash) DO NOTHING
                     RETURNING seq",
                )
                .await?;
            let inserted: HashSet<i64> = tx
                .query(
                    &insert,
                    &[
                        &seqs,
                        &org_id,
                        &caller.session,
                        &change_docs,
                        &change_hashes,
                        &payloads,
                    ],
                )
                .await?
                .iter()
                .map(|r| r.try_get(0))
                .collect::<std::result::Result<_, _>>()?;
            for ((i, _, _), seq) in new_changes.iter().zip(&seqs) {
                if inserted.contains(seq) {
                    counts[*i].0 += 1;
                    last_seq[*i] = Some(last_seq[*i].map_or(*seq, |s: i64| s.max(*seq)));
                } else {
                    counts[*i].1 += 1;
                }
            }
        }
        // New changes end any lease a materialiser holds on their document: they must be
        // checked too.
        let (queue_docs, queue_seqs): (Vec<&str>, Vec<i64>) = last_seq
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.map(|s| (ids[i].as_str(), s)))
            .unzip();
        let stored_any = !queue_docs.is_empty();
        if stored_any {
            let stmt = tx
                .prepare_cached(
                    "INSERT INTO materialize_queue (doc_id, org_id, seq)
                     SELECT doc_id, $1, seq FROM unnest($2::text[], $3::bigint[]) AS q(doc_id, seq)
                     ON CONFLICT (doc_id) DO UPDATE SET seq = excluded.seq, claimed_until = NULL",
                )
                .await?;
            tx.execute(&stmt, &[&org_id, &queue_docs, &queue_seqs])
                .await?;
        }
        for (i, d) in docs.iter().enumerate() {
            let owner = stored.get(&ids[i]).map(|(s, _)| s.owner_id.as_str());
            if let Some(event) =
                owner.and_then(|o| edit_audit(caller, o, &ids[i], counts[i].0, &d.touched))
            {
                record(&tx, &self.keys, &event).await?;
            }
        }
        tx.commit().await?;
        let results = results
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                r.unwrap_or(DocPushResult {
                    doc_id: docs[i].doc.doc_id,
                    outcome: PushOutcome::Stored {
                        new: counts[i].0,
                        duplicate: counts[i].1,
                    },
                })
            })
            .collect();
        Ok(Pushed {
            results,
            stored_any,
        })
    }

    /// Insert new documents owned by the pusher; the ids actually inserted (an id another push
    /// created meanwhile is not).
    async fn create_docs(
        &self,
        tx: &Tx<'_>,
        caller: &Caller,
        docs: &[VerifiedDoc],
        ids: &[String],
        create: &[(usize, Vec<u8>)],
        now: i64,
    ) -> Result<HashSet<String>> {
        let new_ids: Vec<&str> = create.iter().map(|(i, _)| ids[*i].as_str()).collect();
        let surveys: Vec<String> = create
            .iter()
            .map(|(i, _)| docs[*i].doc.survey_id.to_string())
            .collect();
        let versions: Vec<i64> = create
            .iter()
            .map(|(i, _)| big(docs[*i].doc.survey_version))
            .collect();
        let wrapped: Vec<&[u8]> = create.iter().map(|(_, w)| w.as_slice()).collect();
        let stmt = tx
            .prepare_cached(
                "INSERT INTO docs (id, org_id, survey_id, survey_version, owner_id, wrapped_key, created_at)
                 SELECT id, $2, survey_id, survey_version, $3, wrapped_key, $4
                 FROM unnest($1::text[], $5::text[], $6::bigint[], $7::bytea[])
                      AS n(id, survey_id, survey_version, wrapped_key)
                 ORDER BY id
                 ON CONFLICT (id) DO NOTHING
                 RETURNING id",
            )
            .await?;
        tx.query(
            &stmt,
            &[
                &new_ids,
                &caller.org_id,
                &caller.principal_id,
                &now,
                &surveys,
                &versions,
                &wrapped,
            ],
        )
        .await?
        .iter()
        .map(|r| Ok(r.try_get(0)?))
        .collect()
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
            let gone = existing.is_none()
                && erased_among(tx, org_id, std::slice::from_ref(&id))
                    .await?
                    .contains(&id);
            let admission =
                policy::admit_push(caller, doc, existing.as_ref().map(|(d, _)| d), gone, gate);
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
        let last_notice: i64 = tx
            .query_opt(
                "SELECT relay FROM notices WHERE org_id = $1 ORDER BY relay DESC LIMIT 1",
                &[&org_id],
            )
            .await?
            .map(|r| r.try_get(0))
            .transpose()?
            .unwrap_or(0);
        let high = high.max(last_notice);
        let cursor = i64::try_from(q.cursor).unwrap_or(i64::MAX);
        let owner = (caller.role == Role::Enumerator).then_some(caller.principal_id.as_str());
        let mut page = Page::new(cursor, q.limit, q.max_bytes);
        // Notices go to every device of the organisation (ids only), as on SQLite.
        let end = if last_notice > cursor {
            let rows = tx
                .query(
                    "SELECT relay, doc_id, kind FROM notices
                     WHERE org_id = $1 AND relay > $2 AND relay <= $3 ORDER BY relay LIMIT $4",
                    &[&org_id, &cursor, &high, &big(q.limit)],
                )
                .await?
                .iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
                .collect::<Result<Vec<_>>>()?;
            page.notices(high, rows)?
        } else {
            high
        };
        if end > cursor {
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
                    &[&org_id, &cursor, &end, &origin, &owner, &big(q.limit)],
                )
                .await?;
            for r in rows {
                let relay: i64 = r.try_get(0)?;
                let doc_id: String = r.try_get(2)?;
                let parsed_id = uuid_of(&doc_id)?;
                if r.try_get::<_, i64>(3)? == state::REFUSED {
                    let hash: Vec<u8> = r.try_get(5)?;
                    let reason = match tx.query_opt(&reason_stmt, &[&doc_id, &hash]).await? {
                        Some(row) => Some(row.try_get(0)?),
                        None => None,
                    };
                    page.refused(relay, parsed_id, hash, reason);
                    continue;
                }
                let plain = open_change(
                    &self.keys,
                    &org,
                    org_id,
                    &doc_id,
                    r.try_get(8)?,
                    r.try_get(1)?,
                    r.try_get(4)?,
                )?;
                let survey_id = uuid_of(r.try_get(6)?)?;
                if !page.change(relay, parsed_id, survey_id, small(r.try_get(7)?)?, plain) {
                    break;
                }
            }
        }

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
        Ok(page.finish(high, surveys, survey_states))
    }
}

/// Whether a pushed change was found stored (in the map a push reads them into).
fn is_stored(seen: &HashMap<String, HashSet<Vec<u8>>>, doc_id: &str, hash: &[u8]) -> bool {
    seen.get(doc_id).is_some_and(|hashes| hashes.contains(hash))
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
