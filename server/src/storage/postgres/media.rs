//! Attachments on PostgreSQL, as on SQLite (`sqlite/media.rs`). Instances share the database,
//! so the blob row is the lock: recording an attachment of an existing blob, storing a chunk
//! and dropping a blob nobody names all lock it first, so a blob is never dropped while
//! another response is being attached to it, and two uploads of one chunk store it once.

use tokio_postgres::Row;

use super::backend::Tx;
use super::{Postgres, big, small};
use crate::storage::{
    Attached, AttachmentRow, CheckOutcome, ChunkStored, DocMaterial, FoundTarget, KeySource,
    MediaStorage, MediaTarget, NewAttachment, Queued, Result, StorageError, StoredDoc, now_ms,
};

const ATTACHMENT_COLUMNS: &str = "a.name, a.question, a.media_type, a.address, a.wrapped_key,
    b.size, b.chunks, b.received, a.referenced";

fn attachment_row(r: &Row) -> Result<AttachmentRow> {
    Ok(AttachmentRow {
        name: r.try_get(0)?,
        question: r.try_get(1)?,
        media_type: r.try_get(2)?,
        address: r.try_get(3)?,
        wrapped_key: r.try_get(4)?,
        size: r.try_get::<_, i64>(5)? as u64,
        chunks: small(r.try_get(6)?)?,
        received: small(r.try_get(7)?)?,
        referenced: r.try_get(8)?,
    })
}

/// After a batch of responses was checked: mark the attachments their answers name, and
/// release those of the responses that left the queue (no newer change waits) which their
/// answers no longer name (see `sqlite/media.rs`).
pub(super) async fn mark_referenced(
    tx: &Tx<'_>,
    done: &[&(Queued, DocMaterial, CheckOutcome)],
) -> Result<()> {
    let (mut orgs, mut docs, mut names) = (Vec::new(), Vec::new(), Vec::new());
    let (mut checked_orgs, mut checked_docs) = (Vec::new(), Vec::new());
    for (item, _, outcome) in done {
        let Ok(checked) = outcome else { continue };
        checked_orgs.push(item.org_id.as_str());
        checked_docs.push(item.doc_id.as_str());
        for name in &checked.media {
            orgs.push(item.org_id.as_str());
            docs.push(item.doc_id.as_str());
            names.push(name.as_str());
        }
    }
    if checked_docs.is_empty() {
        return Ok(());
    }
    if !names.is_empty() {
        tx.execute(
            "UPDATE attachments a SET referenced = true
             FROM unnest($1::text[], $2::text[], $3::text[]) AS r(org_id, doc_id, name)
             WHERE a.org_id = r.org_id AND a.doc_id = r.doc_id AND a.name = r.name",
            &[&orgs, &docs, &names],
        )
        .await?;
    }
    tx.execute(
        "UPDATE attachments a SET referenced = false
         FROM unnest($1::text[], $2::text[]) AS d(org_id, doc_id)
         WHERE a.org_id = d.org_id AND a.doc_id = d.doc_id
           AND NOT EXISTS (SELECT 1 FROM materialize_queue q WHERE q.doc_id = d.doc_id)
           AND NOT EXISTS (SELECT 1 FROM unnest($3::text[], $4::text[]) AS r(doc_id, name)
                           WHERE r.doc_id = a.doc_id AND r.name = a.name)",
        &[&checked_orgs, &checked_docs, &docs, &names],
    )
    .await?;
    Ok(())
}

/// Delete the attachments of erased responses and the blobs no other attachment names.
pub(super) async fn delete_docs(tx: &Tx<'_>, org_id: &str, doc_ids: &[String]) -> Result<()> {
    let addresses: Vec<Vec<u8>> = tx
        .query(
            "DELETE FROM attachments WHERE org_id = $1 AND doc_id = ANY($2) RETURNING address",
            &[&org_id, &doc_ids],
        )
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
    drop_unused(tx, org_id, addresses).await
}

async fn drop_unused(tx: &Tx<'_>, org_id: &str, mut addresses: Vec<Vec<u8>>) -> Result<()> {
    addresses.sort();
    addresses.dedup();
    if addresses.is_empty() {
        return Ok(());
    }
    let unused: Vec<Vec<u8>> = tx
        .query(
            "SELECT b.address FROM blobs b
             WHERE b.org_id = $1 AND b.address = ANY($2)
               AND NOT EXISTS (SELECT 1 FROM attachments a
                               WHERE a.org_id = b.org_id AND a.address = b.address)
             ORDER BY b.address FOR UPDATE OF b",
            &[&org_id, &addresses],
        )
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
    // Locked, and still unnamed once the lock is held (an attachment recorded meanwhile
    // commits before the lock is granted).
    tx.execute(
        "DELETE FROM blob_chunks c WHERE c.org_id = $1 AND c.address = ANY($2)
           AND NOT EXISTS (SELECT 1 FROM attachments a
                           WHERE a.org_id = c.org_id AND a.address = c.address)",
        &[&org_id, &unused],
    )
    .await?;
    tx.execute(
        "DELETE FROM blobs b WHERE b.org_id = $1 AND b.address = ANY($2)
           AND NOT EXISTS (SELECT 1 FROM attachments a
                           WHERE a.org_id = b.org_id AND a.address = b.address)",
        &[&org_id, &unused],
    )
    .await?;
    Ok(())
}

#[async_trait::async_trait]
impl MediaStorage for Postgres {
    async fn media_target(&self, org_id: &str, doc_id: &str, name: &str) -> Result<MediaTarget> {
        let client = self.client().await?;
        let found = client
            .query_opt(
                "SELECT d.org_id, d.survey_id, d.owner_id, d.survey_version, d.restricted,
                        d.wrapped_key, o.wrapped_key,
                        (SELECT i.status FROM response_index i WHERE i.doc_id = d.id)
                 FROM docs d JOIN orgs o ON o.id = d.org_id
                 WHERE d.id = $1 AND d.org_id = $2",
                &[&doc_id, &org_id],
            )
            .await?;
        let Some(r) = found else {
            let erased = client
                .query_opt(
                    "SELECT 1 FROM erased WHERE doc_id = $1 AND org_id = $2",
                    &[&doc_id, &org_id],
                )
                .await?
                .is_some();
            return Ok(if erased {
                MediaTarget::Erased
            } else {
                MediaTarget::Missing
            });
        };
        let doc = StoredDoc {
            org_id: r.try_get(0)?,
            survey_id: r.try_get(1)?,
            owner_id: r.try_get(2)?,
            survey_version: small(r.try_get(3)?)?,
            restricted: r.try_get(4)?,
            status: r.try_get(7)?,
        };
        let attachment = client
            .query_opt(
                &format!(
                    "SELECT {ATTACHMENT_COLUMNS} FROM attachments a
                     JOIN blobs b ON b.org_id = a.org_id AND b.address = a.address
                     WHERE a.org_id = $1 AND a.doc_id = $2 AND a.name = $3"
                ),
                &[&org_id, &doc_id, &name],
            )
            .await?
            .map(|r| attachment_row(&r))
            .transpose()?;
        Ok(MediaTarget::Found(Box::new(FoundTarget {
            doc,
            doc_key: r.try_get(5)?,
            org_key: r.try_get(6)?,
            attachment,
        })))
    }

    async fn blob_key(
        &self,
        org_id: &str,
        address: Vec<u8>,
    ) -> Result<Option<(u64, u32, u32, KeySource)>> {
        let client = self.client().await?;
        client
            .query_opt(
                "SELECT b.size, b.chunks, b.received, a.doc_id, d.wrapped_key, a.wrapped_key, a.name
                 FROM blobs b
                 JOIN attachments a ON a.org_id = b.org_id AND a.address = b.address
                 JOIN docs d ON d.id = a.doc_id
                 WHERE b.org_id = $1 AND b.address = $2
                 LIMIT 1",
                &[&org_id, &address],
            )
            .await?
            .map(|r| {
                Ok((
                    r.try_get::<_, i64>(0)? as u64,
                    small(r.try_get(1)?)?,
                    small(r.try_get(2)?)?,
                    KeySource {
                        doc_id: r.try_get(3)?,
                        name: r.try_get(6)?,
                        doc_key: r.try_get(4)?,
                        wrapped_key: r.try_get(5)?,
                    },
                ))
            })
            .transpose()
    }

    async fn attach(&self, new: NewAttachment) -> Result<Attached> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // The response must still exist (an erasure locks it first).
        let live = tx
            .query_opt(
                "SELECT 1 FROM docs WHERE id = $1 AND org_id = $2 FOR SHARE",
                &[&new.doc_id, &new.org_id],
            )
            .await?
            .is_some();
        if !live {
            return Err(StorageError::NotFound(format!(
                "no response {} in your organisation",
                new.doc_id
            )));
        }
        if new.new_blob {
            let created = tx
                .execute(
                    "INSERT INTO blobs (org_id, address, size, chunks, received, created_at)
                     VALUES ($1, $2, $3, $4, 0, $5) ON CONFLICT DO NOTHING",
                    &[
                        &new.org_id,
                        &new.address,
                        &(new.size as i64),
                        &big(new.chunks),
                        &now_ms(),
                    ],
                )
                .await?;
            if created == 0 {
                return Ok(Attached::BlobAppeared);
            }
        } else {
            let locked = tx
                .query_opt(
                    "SELECT 1 FROM blobs WHERE org_id = $1 AND address = $2 FOR UPDATE",
                    &[&new.org_id, &new.address],
                )
                .await?
                .is_some();
            if !locked {
                return Err(StorageError::NotFound(
                    "the stored file was erased meanwhile; offer it again".into(),
                ));
            }
        }
        let inserted = tx
            .execute(
                "INSERT INTO attachments (org_id, doc_id, name, question, media_type, address,
                                          wrapped_key, referenced, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, $8) ON CONFLICT DO NOTHING",
                &[
                    &new.org_id,
                    &new.doc_id,
                    &new.name,
                    &new.question,
                    &new.media_type,
                    &new.address,
                    &new.wrapped_key,
                    &now_ms(),
                ],
            )
            .await?;
        if inserted == 0 {
            return Ok(Attached::NameTaken);
        }
        tx.commit().await?;
        Ok(Attached::Done)
    }

    async fn put_chunk(
        &self,
        org_id: &str,
        address: Vec<u8>,
        index: u32,
        sealed: Vec<u8>,
    ) -> Result<ChunkStored> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let received = tx
            .query_opt(
                "SELECT received FROM blobs WHERE org_id = $1 AND address = $2 FOR UPDATE",
                &[&org_id, &address],
            )
            .await?;
        let received = received.map(|r| small(r.try_get(0)?)).transpose()?;
        if let Err(answer) = crate::storage::media::next_chunk(received, index) {
            return Ok(answer);
        }
        tx.execute(
            "INSERT INTO blob_chunks (org_id, address, idx, data) VALUES ($1, $2, $3, $4)",
            &[&org_id, &address, &big(index), &sealed],
        )
        .await?;
        tx.execute(
            "UPDATE blobs SET received = $3 WHERE org_id = $1 AND address = $2",
            &[&org_id, &address, &big(index + 1)],
        )
        .await?;
        tx.commit().await?;
        Ok(ChunkStored::Stored(index + 1))
    }

    async fn reset_blob(&self, org_id: &str, address: Vec<u8>) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "SELECT 1 FROM blobs WHERE org_id = $1 AND address = $2 FOR UPDATE",
            &[&org_id, &address],
        )
        .await?;
        tx.execute(
            "DELETE FROM blob_chunks WHERE org_id = $1 AND address = $2",
            &[&org_id, &address],
        )
        .await?;
        tx.execute(
            "UPDATE blobs SET received = 0 WHERE org_id = $1 AND address = $2",
            &[&org_id, &address],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn blob_chunk(
        &self,
        org_id: &str,
        address: Vec<u8>,
        index: u32,
    ) -> Result<Option<Vec<u8>>> {
        let client = self.client().await?;
        client
            .query_opt(
                "SELECT data FROM blob_chunks WHERE org_id = $1 AND address = $2 AND idx = $3",
                &[&org_id, &address, &big(index)],
            )
            .await?
            .map(|r| Ok(r.try_get(0)?))
            .transpose()
    }

    async fn attachments(&self, org_id: &str, doc_id: &str) -> Result<Vec<AttachmentRow>> {
        let client = self.client().await?;
        client
            .query(
                &format!(
                    "SELECT {ATTACHMENT_COLUMNS} FROM attachments a
                     JOIN blobs b ON b.org_id = a.org_id AND b.address = a.address
                     WHERE a.org_id = $1 AND a.doc_id = $2 ORDER BY a.name"
                ),
                &[&org_id, &doc_id],
            )
            .await?
            .iter()
            .map(attachment_row)
            .collect()
    }

    async fn sweep_media(&self, offered_before: i64) -> Result<u64> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let gone: Vec<(String, Vec<u8>)> = tx
            .query(
                "DELETE FROM attachments WHERE ctid IN (
                     SELECT ctid FROM attachments
                     WHERE referenced = false OR (referenced IS NULL AND created_at < $1)
                     LIMIT 1000 FOR UPDATE SKIP LOCKED)
                 RETURNING org_id, address",
                &[&offered_before],
            )
            .await?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<_>>()?;
        let mut by_org: std::collections::BTreeMap<&str, Vec<Vec<u8>>> = Default::default();
        for (org, address) in &gone {
            by_org.entry(org).or_default().push(address.clone());
        }
        for (org, addresses) in by_org {
            drop_unused(&tx, org, addresses).await?;
        }
        tx.commit().await?;
        Ok(gone.len() as u64)
    }
}
