//! Settling what the materialiser's checks found, on PostgreSQL: verdicts numbered under the
//! relay counter's lock, refusals, the index rows and the queue, in a few statements.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use fieldsync_protocol::cbor;
use fieldsync_protocol::crypto::Cipher;

use super::backend::Tx;
use super::sync::{keys_doc, org_cipher, org_keys};
use super::{Postgres, big};
use crate::keys::{OrgKeys, summary_binding};
use crate::storage::{
    CheckOutcome, DocMaterial, Queued, Result, Settlement, StorageError, Summary, now_ms, state,
};
use crate::worker::ChangeVerdict;

fn corrupt(e: impl std::fmt::Display) -> StorageError {
    StorageError::Corrupt(e.to_string())
}

impl Postgres {
    /// Record what checking found, in one transaction of a few statements, whatever the
    /// number of documents.
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
        let gone: Vec<&str> = settled
            .iter()
            .filter_map(|s| match s {
                Settlement::Gone(doc_id) => Some(doc_id.as_str()),
                Settlement::Done(_) => None,
            })
            .collect();
        if !gone.is_empty() {
            tx.execute(
                "DELETE FROM materialize_queue WHERE doc_id = ANY($1)",
                &[&gone],
            )
            .await?;
        }
        let done: Vec<&(Queued, DocMaterial, CheckOutcome)> = settled
            .iter()
            .filter_map(|s| match s {
                Settlement::Done(d) => Some(&**d),
                Settlement::Gone(_) => None,
            })
            .collect();
        if !done.is_empty() {
            self.settle_done(&tx, &done, &mut relay).await?;
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

    /// Settle the pending changes of checked documents (numbering them from `relay`), write
    /// their summaries, and take them off the queue unless newer changes arrived meanwhile.
    async fn settle_done(
        &self,
        tx: &Tx<'_>,
        done: &[&(Queued, DocMaterial, CheckOutcome)],
        relay: &mut i64,
    ) -> Result<()> {
        let ids: Vec<&str> = done.iter().map(|(q, _, _)| q.doc_id.as_str()).collect();
        let ciphers = self.doc_ciphers(tx, done).await?;
        // Verdicts, as arrays for one statement each.
        let (mut seqs, mut states, mut relays) = (Vec::new(), Vec::new(), Vec::new());
        let mut waiting: Vec<i64> = Vec::new();
        let mut unreadable: Vec<&str> = Vec::new();
        for (item, material, outcome) in done {
            let checked = match outcome {
                Ok(c) => c,
                Err(_) => {
                    unreadable.push(item.doc_id.as_str());
                    continue;
                }
            };
            if checked.verdicts.len() != material.pending.len() {
                return Err(corrupt(format!(
                    "the checker gave {} verdicts for {} changes of {}",
                    checked.verdicts.len(),
                    material.pending.len(),
                    item.doc_id
                )));
            }
            for (change, verdict) in material.pending.iter().zip(&checked.verdicts) {
                let state = match verdict {
                    ChangeVerdict::Accepted => state::ACCEPTED,
                    ChangeVerdict::Refused(_) => state::REFUSED,
                    ChangeVerdict::Waiting => {
                        waiting.push(change.seq);
                        continue;
                    }
                };
                *relay += 1;
                seqs.push(change.seq);
                states.push(state);
                relays.push(*relay);
            }
        }
        // Only a change still waiting to be settled is settled, so settling the same material
        // twice (a lease that ran out) changes nothing the second time; a number handed out to
        // a change settled meanwhile is simply never used.
        let settle = tx
            .prepare_cached(
                "UPDATE changes c SET state = v.state, relay = v.relay
                 FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS v(seq, state, relay)
                 WHERE c.seq = v.seq AND c.state IN (0, 3)
                 RETURNING c.seq",
            )
            .await?;
        let settled: std::collections::HashSet<i64> = tx
            .query(&settle, &[&seqs, &states, &relays])
            .await?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<std::result::Result<_, _>>()?;
        if !waiting.is_empty() {
            tx.execute(
                "UPDATE changes SET state = 3 WHERE seq = ANY($1) AND state = 0",
                &[&waiting],
            )
            .await?;
        }
        if !unreadable.is_empty() {
            // Nothing can be checked on top of accepted changes that no longer load: what
            // waits, waits (and blocks no pull).
            tx.execute(
                "UPDATE changes SET state = 3 WHERE doc_id = ANY($1) AND state = 0",
                &[&unreadable],
            )
            .await?;
        }
        let listed = self.index_subjects(tx, done, &ciphers).await?;
        // Refusals, and each document's summary.
        let now = now_ms();
        let mut index: IndexRows = IndexRows::default();
        for (item, material, outcome) in done {
            let (org_id, doc_id) = (item.org_id.as_str(), item.doc_id.as_str());
            let Some(cipher) = ciphers.get(doc_id) else {
                continue;
            };
            let summary = match outcome {
                Err(reason) => Summary {
                    view: None,
                    broken: Some(reason.clone()),
                    restricted: false,
                    do_not_contact: false,
                },
                Ok(checked) => {
                    let mut first_refusal = None;
                    for (change, verdict) in material.pending.iter().zip(&checked.verdicts) {
                        if let ChangeVerdict::Refused(reason) = verdict
                            && settled.contains(&change.seq)
                        {
                            tx.execute(
                                "INSERT INTO refusals (doc_id, hash, org_id, origin, reason, at)
                                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                                &[&doc_id, &change.hash, &org_id, &change.origin, reason, &now],
                            )
                            .await?;
                            tracing::warn!(doc = %doc_id, seq = change.seq, %reason, "a pushed change was refused by its check");
                            first_refusal.get_or_insert(reason.clone());
                        }
                    }
                    Summary {
                        broken: crate::storage::unreadable_because(
                            checked.view.is_some(),
                            first_refusal,
                        ),
                        view: checked.view.clone(),
                        restricted: false,
                        do_not_contact: listed.contains(doc_id),
                    }
                }
            };
            index.push(cipher, item, material, &summary)?;
        }
        let stmt = tx
            .prepare_cached(
                "INSERT INTO response_index (doc_id, org_id, survey_id, survey_version, status,
                     error_count, conflict_count, broken, upto_seq, summary, updated_at)
                 SELECT doc_id, org_id, survey_id, survey_version, status, error_count,
                        conflict_count, broken, upto_seq, summary, $10
                 FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[],
                             $6::bigint[], $7::bigint[], $8::boolean[], $9::bigint[], $11::bytea[])
                      AS r(doc_id, org_id, survey_id, survey_version, status, error_count,
                           conflict_count, broken, upto_seq, summary)
                 ON CONFLICT (doc_id) DO UPDATE SET status = excluded.status,
                     error_count = excluded.error_count, conflict_count = excluded.conflict_count,
                     broken = excluded.broken, upto_seq = excluded.upto_seq,
                     summary = excluded.summary, updated_at = excluded.updated_at",
            )
            .await?;
        tx.execute(
            &stmt,
            &[
                &index.doc_ids,
                &index.org_ids,
                &index.survey_ids,
                &index.versions,
                &index.statuses,
                &index.errors,
                &index.conflicts,
                &index.broken,
                &index.upto,
                &now_ms(),
                &index.summaries,
            ],
        )
        .await?;
        // Off the queue unless newer changes arrived meanwhile; then free to be claimed again
        // at once.
        tx.execute(
            "DELETE FROM materialize_queue q USING unnest($1::text[], $2::bigint[]) AS d(doc_id, upto)
             WHERE q.doc_id = d.doc_id AND q.seq <= d.upto",
            &[&index.doc_ids, &index.upto],
        )
        .await?;
        tx.execute(
            "UPDATE materialize_queue SET claimed_until = NULL WHERE doc_id = ANY($1)",
            &[&ids],
        )
        .await?;
        super::media::mark_referenced(tx, done).await?;
        Ok(())
    }

    /// Replace the subject-index entries of the checked documents that still exist; returns
    /// those that name a person on their organisation's do-not-contact list.
    async fn index_subjects(
        &self,
        tx: &Tx<'_>,
        done: &[&(Queued, DocMaterial, CheckOutcome)],
        existing: &HashMap<String, Arc<Cipher>>,
    ) -> Result<HashSet<String>> {
        let (mut ids, mut orgs, mut subjects, mut surveys) = (vec![], vec![], vec![], vec![]);
        let mut cleared: Vec<&str> = Vec::new();
        let mut org_keys_of: HashMap<&str, Arc<OrgKeys>> = HashMap::new();
        for (item, material, outcome) in done {
            let Ok(checked) = outcome else { continue };
            if !existing.contains_key(&item.doc_id) {
                continue;
            }
            cleared.push(&item.doc_id);
            if checked.subjects.is_empty() {
                continue;
            }
            let keys = match org_keys_of.get(item.org_id.as_str()) {
                Some(k) => k.clone(),
                None => {
                    let k = org_keys(tx, &self.keys, &item.org_id).await?;
                    org_keys_of.insert(&item.org_id, k.clone());
                    k
                }
            };
            for id in &checked.subjects {
                ids.push(item.doc_id.as_str());
                orgs.push(item.org_id.as_str());
                subjects.push(keys.subject_hash(id).to_vec());
                surveys.push(material.survey_id.as_str());
            }
        }
        if cleared.is_empty() {
            return Ok(HashSet::new());
        }
        tx.execute(
            "DELETE FROM subject_index WHERE doc_id = ANY($1)",
            &[&cleared],
        )
        .await?;
        if !ids.is_empty() {
            tx.execute(
                "INSERT INTO subject_index (org_id, subject, doc_id, survey_id)
                 SELECT * FROM unnest($1::text[], $2::bytea[], $3::text[], $4::text[])
                 ON CONFLICT DO NOTHING",
                &[&orgs, &subjects, &ids, &surveys],
            )
            .await?;
        }
        let listed = tx
            .query(
                "SELECT DISTINCT s.doc_id FROM subject_index s
                 JOIN do_not_contact n ON n.org_id = s.org_id AND n.subject = s.subject
                 WHERE s.doc_id = ANY($1)",
                &[&cleared],
            )
            .await?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?;
        Ok(listed)
    }

    /// The data keys of checked documents that still exist, by id.
    async fn doc_ciphers(
        &self,
        tx: &Tx<'_>,
        done: &[&(Queued, DocMaterial, CheckOutcome)],
    ) -> Result<HashMap<String, Arc<Cipher>>> {
        let queued_for: HashMap<&str, &str> = done
            .iter()
            .map(|(q, _, _)| (q.doc_id.as_str(), q.org_id.as_str()))
            .collect();
        let ids: Vec<&str> = queued_for.keys().copied().collect();
        let mut orgs: HashMap<String, Arc<Cipher>> = HashMap::new();
        let mut out = HashMap::new();
        for r in tx
            .query(
                "SELECT id, org_id, wrapped_key FROM docs WHERE id = ANY($1)",
                &[&ids],
            )
            .await?
        {
            let (id, org_id): (String, String) = (r.try_get(0)?, r.try_get(1)?);
            if queued_for.get(id.as_str()) != Some(&org_id.as_str()) {
                continue;
            }
            let org = match orgs.get(&org_id) {
                Some(c) => c.clone(),
                None => {
                    let c = org_cipher(tx, &self.keys, &org_id).await?;
                    orgs.insert(org_id.clone(), c.clone());
                    c
                }
            };
            let wrapped: Vec<u8> = r.try_get(2)?;
            out.insert(
                id.clone(),
                keys_doc(&self.keys, &org, &org_id, &id, &wrapped)?,
            );
        }
        Ok(out)
    }
}

/// Response index rows, as arrays for one statement.
#[derive(Default)]
struct IndexRows {
    doc_ids: Vec<String>,
    org_ids: Vec<String>,
    survey_ids: Vec<String>,
    versions: Vec<i64>,
    statuses: Vec<String>,
    errors: Vec<i64>,
    conflicts: Vec<i64>,
    broken: Vec<bool>,
    upto: Vec<i64>,
    summaries: Vec<Vec<u8>>,
}

impl IndexRows {
    /// Seal a document's summary and add its row.
    fn push(
        &mut self,
        cipher: &Cipher,
        item: &Queued,
        material: &DocMaterial,
        summary: &Summary,
    ) -> Result<()> {
        let (org_id, doc_id) = (item.org_id.as_str(), item.doc_id.as_str());
        let plain = cbor::encode(summary).map_err(corrupt)?;
        let sealed = cipher
            .seal(&summary_binding(org_id, doc_id, material.upto_seq), &plain)
            .map_err(corrupt)?;
        let (status, errors, conflicts) = match &summary.view {
            Some(v) => (v.status.clone(), v.errors.len(), v.conflicts.len()),
            None => ("unknown".to_owned(), 0, 0),
        };
        self.doc_ids.push(doc_id.to_owned());
        self.org_ids.push(org_id.to_owned());
        self.survey_ids.push(material.survey_id.clone());
        self.versions.push(big(material.survey_version));
        self.statuses.push(status);
        self.errors.push(errors as i64);
        self.conflicts.push(conflicts as i64);
        self.broken.push(summary.broken.is_some());
        self.upto.push(material.upto_seq);
        self.summaries.push(sealed.to_bytes());
        Ok(())
    }
}
