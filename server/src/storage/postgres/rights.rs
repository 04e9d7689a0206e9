//! Respondents' rights on PostgreSQL: the subject index, erasure, restriction, the
//! do-not-contact list, retention and the audit chain, as on SQLite (`sqlite/rights.rs`).
//!
//! Erasure and restriction number their notices from the relay counter, taken first and held
//! to commit as settlements hold it, so notices reach pullers in order with the changes. They
//! take it before any document row: settlements hold it while they check documents' rows, so
//! the other order could deadlock.
//!
//! PostgreSQL keeps deleted rows' bytes in dead tuples and in its write-ahead log until they
//! are overwritten; erasure runs VACUUM on the tables it touched, but what remains is only
//! unreadable because the document keys went with the rows (see ARCHITECTURE.md, "Erasure").

use super::backend::Tx;
use super::rows::record;
use super::{Postgres, big, small};
use crate::storage::{
    AuditEntry, AuditEvent, AuditHead, ErasedRecord, ErasureCause, Expired, Result,
    SubjectResponse, chain_of, now_ms,
};

/// Number one notice per document, from the relay counter (locked by the caller).
async fn notices(tx: &Tx<'_>, org_id: &str, doc_ids: &[String], kind: &str) -> Result<()> {
    if doc_ids.is_empty() {
        return Ok(());
    }
    let relay: i64 = tx
        .query_one(
            "UPDATE counters SET value = value + $1 WHERE name = 'relay' RETURNING value",
            &[&(doc_ids.len() as i64)],
        )
        .await?
        .try_get(0)?;
    let first = relay - doc_ids.len() as i64 + 1;
    tx.execute(
        "INSERT INTO notices (relay, org_id, doc_id, kind)
         SELECT $1 + n - 1, $2, d, $4 FROM unnest($3::text[]) WITH ORDINALITY AS u(d, n)",
        &[&first, &org_id, &doc_ids, &kind],
    )
    .await?;
    Ok(())
}

async fn lock_relay(tx: &Tx<'_>) -> Result<()> {
    tx.execute(
        "SELECT value FROM counters WHERE name = 'relay' FOR UPDATE",
        &[],
    )
    .await?;
    Ok(())
}

impl Postgres {
    pub(super) async fn subject_rows(
        &self,
        org_id: &str,
        subjects: &[[u8; 32]],
        survey_id: Option<&str>,
    ) -> Result<Vec<SubjectResponse>> {
        let client = self.client().await?;
        let subjects: Vec<&[u8]> = subjects.iter().map(|s| s.as_slice()).collect();
        client
            .query(
                "SELECT DISTINCT d.id, d.survey_id, d.survey_version, d.owner_id, d.created_at,
                        d.restricted
                 FROM subject_index s JOIN docs d ON d.id = s.doc_id
                 WHERE s.org_id = $1 AND s.subject = ANY($2)
                   AND ($3::text IS NULL OR s.survey_id = $3)
                 ORDER BY d.id",
                &[&org_id, &subjects, &survey_id],
            )
            .await?
            .iter()
            .map(|r| {
                Ok(SubjectResponse {
                    doc_id: r.try_get(0)?,
                    survey_id: r.try_get(1)?,
                    survey_version: small(r.try_get(2)?)?,
                    owner_id: r.try_get(3)?,
                    created_at: r.try_get(4)?,
                    restricted: r.try_get(5)?,
                })
            })
            .collect()
    }

    pub(super) async fn erase_docs(
        &self,
        org_id: &str,
        doc_ids: &[String],
        cause: ErasureCause,
        audit: &AuditEvent,
    ) -> Result<Vec<String>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        lock_relay(&tx).await?;
        let ids: Vec<String> = tx
            .query(
                "SELECT id FROM docs WHERE org_id = $1 AND id = ANY($2) ORDER BY id FOR UPDATE",
                &[&org_id, &doc_ids],
            )
            .await?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?;
        let mut told = ids.clone();
        if cause == ErasureCause::Restore {
            // Ids the restored database no longer holds are remembered too.
            let absent: Vec<String> = tx
                .query(
                    "INSERT INTO erased (doc_id, org_id, erased_at, cause)
                     SELECT d, $2, $3, $4 FROM unnest($1::text[]) AS d
                     WHERE d <> ALL($5)
                     ON CONFLICT (doc_id) DO NOTHING RETURNING doc_id",
                    &[&doc_ids, &org_id, &now_ms(), &cause.as_str(), &ids],
                )
                .await?
                .iter()
                .map(|r| r.try_get(0))
                .collect::<Result<_, _>>()?;
            notices(&tx, org_id, &absent, "erased").await?;
            told.extend(absent);
        }
        if !ids.is_empty() {
            super::media::delete_docs(&tx, org_id, &ids).await?;
            for statement in [
                "DELETE FROM changes WHERE doc_id = ANY($1)",
                "DELETE FROM refusals WHERE doc_id = ANY($1)",
                "DELETE FROM response_index WHERE doc_id = ANY($1)",
                "DELETE FROM materialize_queue WHERE doc_id = ANY($1)",
                "DELETE FROM subject_index WHERE doc_id = ANY($1)",
                "DELETE FROM docs WHERE id = ANY($1)",
            ] {
                tx.execute(statement, &[&ids]).await?;
            }
            tx.execute(
                "INSERT INTO erased (doc_id, org_id, erased_at, cause)
                 SELECT d, $2, $3, $4 FROM unnest($1::text[]) AS d",
                &[&ids, &org_id, &now_ms(), &cause.as_str()],
            )
            .await?;
            notices(&tx, org_id, &ids, "erased").await?;
        }
        record(&tx, &self.keys, audit).await?;
        tx.commit().await?;
        for id in &ids {
            self.keys.forget_doc(id);
        }
        let vacuum = !ids.is_empty();
        let ids = told;
        if vacuum {
            // Best effort: frees the dead rows for reuse; it does not overwrite them.
            if let Err(e) = client
                .batch_execute(
                    "VACUUM (SKIP_LOCKED) changes, refusals, response_index, subject_index, docs, \
                     attachments, blobs, blob_chunks",
                )
                .await
            {
                tracing::warn!(error = %e, "vacuum after an erasure failed");
            }
        }
        Ok(ids)
    }

    pub(super) async fn erased_page(&self, after: &str, limit: u32) -> Result<Vec<ErasedRecord>> {
        let client = self.client().await?;
        client
            .query(
                "SELECT org_id, doc_id, erased_at, cause FROM erased WHERE doc_id > $1
                 ORDER BY doc_id LIMIT $2",
                &[&after, &big(limit)],
            )
            .await?
            .iter()
            .map(|r| {
                Ok(ErasedRecord {
                    org_id: r.try_get(0)?,
                    doc_id: r.try_get(1)?,
                    erased_at: r.try_get(2)?,
                    cause: r.try_get(3)?,
                })
            })
            .collect()
    }

    pub(super) async fn restrict_docs(
        &self,
        org_id: &str,
        doc_ids: &[String],
        restricted: bool,
        audit: &AuditEvent,
    ) -> Result<Vec<String>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        lock_relay(&tx).await?;
        // Rows locked in id order, as pushes lock them, so the two never deadlock.
        tx.execute(
            "SELECT id FROM docs WHERE org_id = $1 AND id = ANY($2) ORDER BY id FOR UPDATE",
            &[&org_id, &doc_ids],
        )
        .await?;
        let mut changed: Vec<String> = tx
            .query(
                "UPDATE docs SET restricted = $3
                 WHERE org_id = $1 AND id = ANY($2) AND restricted <> $3 RETURNING id",
                &[&org_id, &doc_ids, &restricted],
            )
            .await?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?;
        changed.sort();
        let kind = if restricted {
            "restricted"
        } else {
            "unrestricted"
        };
        notices(&tx, org_id, &changed, kind).await?;
        record(&tx, &self.keys, audit).await?;
        tx.commit().await?;
        Ok(changed)
    }

    pub(super) async fn list_do_not_contact(
        &self,
        org_id: &str,
        subject: [u8; 32],
        listed: bool,
        audit: &AuditEvent,
    ) -> Result<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let n = if listed {
            tx.execute(
                "INSERT INTO do_not_contact (org_id, subject, at) VALUES ($1, $2, $3)
                 ON CONFLICT DO NOTHING",
                &[&org_id, &subject.as_slice(), &now_ms()],
            )
            .await?
        } else {
            tx.execute(
                "DELETE FROM do_not_contact WHERE org_id = $1 AND subject = $2",
                &[&org_id, &subject.as_slice()],
            )
            .await?
        };
        if n > 0 {
            record(&tx, &self.keys, audit).await?;
        }
        tx.commit().await?;
        Ok(n > 0)
    }

    pub(super) async fn listed_do_not_contact(
        &self,
        org_id: &str,
        subjects: &[[u8; 32]],
    ) -> Result<Vec<[u8; 32]>> {
        let client = self.client().await?;
        let wanted: Vec<&[u8]> = subjects.iter().map(|s| s.as_slice()).collect();
        let rows = client
            .query(
                "SELECT subject FROM do_not_contact WHERE org_id = $1 AND subject = ANY($2)",
                &[&org_id, &wanted],
            )
            .await?;
        let mut out = Vec::new();
        for r in rows {
            let bytes: Vec<u8> = r.try_get(0)?;
            if let Some(s) = subjects.iter().find(|s| s.as_slice() == bytes.as_slice()) {
                out.push(*s);
            }
        }
        Ok(out)
    }

    pub(super) async fn retention(
        &self,
        org_id: &str,
        survey_id: &str,
        retention_ms: Option<i64>,
        audit: &AuditEvent,
    ) -> Result<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let n = tx
            .execute(
                "UPDATE surveys SET retention_ms = $3 WHERE id = $1 AND org_id = $2",
                &[&survey_id, &org_id, &retention_ms],
            )
            .await?;
        if n > 0 {
            record(&tx, &self.keys, audit).await?;
        }
        tx.commit().await?;
        Ok(n > 0)
    }

    pub(super) async fn expired_rows(&self, now: i64, limit: u32) -> Result<Vec<Expired>> {
        let client = self.client().await?;
        client
            .query(
                "SELECT d.org_id, d.survey_id, d.id, d.created_at
                 FROM surveys s JOIN docs d ON d.survey_id = s.id
                 WHERE s.retention_ms IS NOT NULL AND d.created_at + s.retention_ms <= $1
                 ORDER BY d.created_at, d.id LIMIT $2",
                &[&now, &big(limit)],
            )
            .await?
            .iter()
            .map(|r| {
                Ok(Expired {
                    org_id: r.try_get(0)?,
                    survey_id: r.try_get(1)?,
                    doc_id: r.try_get(2)?,
                    received_at: r.try_get(3)?,
                })
            })
            .collect()
    }

    pub(super) async fn chain_page(
        &self,
        org_id: Option<&str>,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<AuditEntry>> {
        let client = self.client().await?;
        // Two statements rather than IS NOT DISTINCT FROM, which the index cannot serve.
        let sql = match org_id {
            Some(_) => {
                "SELECT id, at, actor_id, actor_role, action, target, detail, prev, mac FROM audit
                 WHERE org_id = $1 AND id > $2 ORDER BY id LIMIT $3"
            }
            None => {
                "SELECT id, at, actor_id, actor_role, action, target, detail, prev, mac FROM audit
                 WHERE org_id IS NULL AND $1::text IS NULL AND id > $2 ORDER BY id LIMIT $3"
            }
        };
        client
            .query(sql, &[&org_id, &after_id, &big(limit)])
            .await?
            .iter()
            .map(entry)
            .collect()
    }

    pub(super) async fn entries_about(
        &self,
        org_id: &str,
        targets: &[String],
    ) -> Result<Vec<AuditEntry>> {
        let client = self.client().await?;
        client
            .query(
                "SELECT id, at, actor_id, actor_role, action, target, detail, prev, mac FROM audit
                 WHERE org_id = $1 AND target = ANY($2) ORDER BY id",
                &[&org_id, &targets],
            )
            .await?
            .iter()
            .map(entry)
            .collect()
    }

    pub(super) async fn chain_head(&self, org_id: Option<&str>) -> Result<Option<AuditHead>> {
        let client = self.client().await?;
        client
            .query_opt(
                "SELECT last_id, mac, entries FROM audit_heads WHERE chain = $1",
                &[&chain_of(org_id)],
            )
            .await?
            .map(|r| {
                Ok(AuditHead {
                    last_id: r.try_get(0)?,
                    mac: r.try_get(1)?,
                    entries: r.try_get(2)?,
                })
            })
            .transpose()
    }
}

fn entry(r: &tokio_postgres::Row) -> Result<AuditEntry> {
    Ok(AuditEntry {
        id: r.try_get(0)?,
        at: r.try_get(1)?,
        actor_id: r.try_get(2)?,
        actor_role: r.try_get(3)?,
        action: r.try_get(4)?,
        target: r.try_get(5)?,
        detail: r.try_get(6)?,
        prev: r.try_get(7)?,
        mac: r.try_get(8)?,
    })
}
