//! Attachments on SQLite: see [`crate::storage::MediaStorage`] for what each operation keeps.

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::storage::{
    Attached, AttachmentRow, ChunkStored, FoundTarget, KeySource, MediaTarget, NewAttachment,
    Result, StoredDoc, now_ms,
};

const ATTACHMENT_COLUMNS: &str = "a.name, a.question, a.media_type, a.address, a.wrapped_key,
    b.size, b.chunks, b.received, a.referenced";

fn attachment_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AttachmentRow> {
    Ok(AttachmentRow {
        name: r.get(0)?,
        question: r.get(1)?,
        media_type: r.get(2)?,
        address: r.get(3)?,
        wrapped_key: r.get(4)?,
        size: r.get::<_, i64>(5)? as u64,
        chunks: r.get(6)?,
        received: r.get(7)?,
        referenced: r.get::<_, Option<bool>>(8)?,
    })
}

pub fn target(conn: &Connection, org_id: &str, doc_id: &str, name: &str) -> Result<MediaTarget> {
    let found = conn
        .prepare_cached(
            "SELECT d.org_id, d.survey_id, d.owner_id, d.survey_version, d.restricted,
                    d.wrapped_key, o.wrapped_key,
                    (SELECT i.status FROM response_index i WHERE i.doc_id = d.id)
             FROM docs d JOIN orgs o ON o.id = d.org_id
             WHERE d.id = ?1 AND d.org_id = ?2",
        )?
        .query_row([doc_id, org_id], |r| {
            Ok((
                StoredDoc {
                    org_id: r.get(0)?,
                    survey_id: r.get(1)?,
                    owner_id: r.get(2)?,
                    survey_version: r.get(3)?,
                    restricted: r.get(4)?,
                    status: r.get(7)?,
                },
                r.get::<_, Vec<u8>>(5)?,
                r.get::<_, Vec<u8>>(6)?,
            ))
        })
        .optional()?;
    let Some((doc, doc_key, org_key)) = found else {
        return Ok(if super::rights::is_erased(conn, org_id, doc_id)? {
            MediaTarget::Erased
        } else {
            MediaTarget::Missing
        });
    };
    let attachment = conn
        .prepare_cached(&format!(
            "SELECT {ATTACHMENT_COLUMNS} FROM attachments a
             JOIN blobs b ON b.org_id = a.org_id AND b.address = a.address
             WHERE a.org_id = ?1 AND a.doc_id = ?2 AND a.name = ?3"
        ))?
        .query_row([org_id, doc_id, name], attachment_row)
        .optional()?;
    Ok(MediaTarget::Found(Box::new(FoundTarget {
        doc,
        doc_key,
        org_key,
        attachment,
    })))
}

pub fn blob_key(
    conn: &Connection,
    org_id: &str,
    address: &[u8],
) -> Result<Option<(u64, u32, u32, KeySource)>> {
    Ok(conn
        .prepare_cached(
            "SELECT b.size, b.chunks, b.received, a.doc_id, d.wrapped_key, a.wrapped_key, a.name
             FROM blobs b
             JOIN attachments a ON a.org_id = b.org_id AND a.address = b.address
             JOIN docs d ON d.id = a.doc_id
             WHERE b.org_id = ?1 AND b.address = ?2
             LIMIT 1",
        )?
        .query_row(params![org_id, address], |r| {
            Ok((
                r.get::<_, i64>(0)? as u64,
                r.get(1)?,
                r.get(2)?,
                KeySource {
                    doc_id: r.get(3)?,
                    name: r.get(6)?,
                    doc_key: r.get(4)?,
                    wrapped_key: r.get(5)?,
                },
            ))
        })
        .optional()?)
}

pub fn attach(tx: &Transaction<'_>, new: &NewAttachment) -> Result<Attached> {
    let taken = tx
        .prepare_cached(
            "SELECT 1 FROM attachments WHERE org_id = ?1 AND doc_id = ?2 AND name = ?3",
        )?
        .exists([&new.org_id, &new.doc_id, &new.name])?;
    if taken {
        return Ok(Attached::NameTaken);
    }
    let exists = tx
        .prepare_cached("SELECT 1 FROM blobs WHERE org_id = ?1 AND address = ?2")?
        .exists(params![new.org_id, new.address])?;
    match (new.new_blob, exists) {
        (true, true) => return Ok(Attached::BlobAppeared),
        (false, false) => {
            return Err(crate::storage::StorageError::NotFound(
                "the stored file was erased meanwhile; offer it again".into(),
            ));
        }
        (true, false) => {
            tx.prepare_cached(
                "INSERT INTO blobs (org_id, address, size, chunks, received, created_at)
                 VALUES (?1, ?2, ?3, ?4, 0, ?5)",
            )?
            .execute(params![
                new.org_id,
                new.address,
                new.size as i64,
                new.chunks,
                now_ms()
            ])?;
        }
        (false, true) => {}
    }
    tx.prepare_cached(
        "INSERT INTO attachments (org_id, doc_id, name, question, media_type, address,
                                  wrapped_key, referenced, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL, ?8)",
    )?
    .execute(params![
        new.org_id,
        new.doc_id,
        new.name,
        new.question,
        new.media_type,
        new.address,
        new.wrapped_key,
        now_ms()
    ])?;
    Ok(Attached::Done)
}

pub fn put_chunk(
    tx: &Transaction<'_>,
    org_id: &str,
    address: &[u8],
    index: u32,
    sealed: &[u8],
) -> Result<ChunkStored> {
    let received: Option<u32> = tx
        .prepare_cached("SELECT received FROM blobs WHERE org_id = ?1 AND address = ?2")?
        .query_row(params![org_id, address], |r| r.get(0))
        .optional()?;
    if let Err(answer) = crate::storage::media::next_chunk(received, index) {
        return Ok(answer);
    }
    tx.prepare_cached(
        "INSERT INTO blob_chunks (org_id, address, idx, data) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![org_id, address, index, sealed])?;
    tx.prepare_cached("UPDATE blobs SET received = ?3 WHERE org_id = ?1 AND address = ?2")?
        .execute(params![org_id, address, index + 1])?;
    Ok(ChunkStored::Stored(index + 1))
}

pub fn reset_blob(tx: &Transaction<'_>, org_id: &str, address: &[u8]) -> Result<()> {
    tx.prepare_cached("DELETE FROM blob_chunks WHERE org_id = ?1 AND address = ?2")?
        .execute(params![org_id, address])?;
    tx.prepare_cached("UPDATE blobs SET received = 0 WHERE org_id = ?1 AND address = ?2")?
        .execute(params![org_id, address])?;
    Ok(())
}

pub fn blob_chunk(
    conn: &Connection,
    org_id: &str,
    address: &[u8],
    index: u32,
) -> Result<Option<Vec<u8>>> {
    Ok(conn
        .prepare_cached(
            "SELECT data FROM blob_chunks WHERE org_id = ?1 AND address = ?2 AND idx = ?3",
        )?
        .query_row(params![org_id, address, index], |r| r.get(0))
        .optional()?)
}

pub fn attachments(conn: &Connection, org_id: &str, doc_id: &str) -> Result<Vec<AttachmentRow>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {ATTACHMENT_COLUMNS} FROM attachments a
         JOIN blobs b ON b.org_id = a.org_id AND b.address = a.address
         WHERE a.org_id = ?1 AND a.doc_id = ?2 ORDER BY a.name"
    ))?;
    let rows = stmt.query_map([org_id, doc_id], attachment_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// After a response was checked: mark which of its attachments its answers name. Those it
/// does not name are released only when no newer change of it waits (`settled`): an upload
/// for a change still to be checked is not released by an older state of the response.
pub fn mark_referenced(
    conn: &Connection,
    org_id: &str,
    doc_id: &str,
    names: &[String],
    settled: bool,
) -> Result<()> {
    let held: Vec<String> = conn
        .prepare_cached("SELECT name FROM attachments WHERE org_id = ?1 AND doc_id = ?2")?
        .query_map([org_id, doc_id], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for name in held {
        let named = names.contains(&name);
        if named || settled {
            conn.prepare_cached(
                "UPDATE attachments SET referenced = ?4
                 WHERE org_id = ?1 AND doc_id = ?2 AND name = ?3",
            )?
            .execute(params![org_id, doc_id, name, named])?;
        }
    }
    Ok(())
}

/// Delete a response's attachments and the blobs no other attachment names (erasure).
pub fn delete_doc(tx: &Transaction<'_>, org_id: &str, doc_id: &str) -> Result<()> {
    let addresses: Vec<Vec<u8>> = tx
        .prepare_cached("SELECT address FROM attachments WHERE org_id = ?1 AND doc_id = ?2")?
        .query_map([org_id, doc_id], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    tx.prepare_cached("DELETE FROM attachments WHERE org_id = ?1 AND doc_id = ?2")?
        .execute([org_id, doc_id])?;
    for address in addresses {
        drop_if_unused(tx, org_id, &address)?;
    }
    Ok(())
}

fn drop_if_unused(tx: &Transaction<'_>, org_id: &str, address: &[u8]) -> Result<()> {
    let used = tx
        .prepare_cached("SELECT 1 FROM attachments WHERE org_id = ?1 AND address = ?2")?
        .exists(params![org_id, address])?;
    if !used {
        tx.prepare_cached("DELETE FROM blob_chunks WHERE org_id = ?1 AND address = ?2")?
            .execute(params![org_id, address])?;
        tx.prepare_cached("DELETE FROM blobs WHERE org_id = ?1 AND address = ?2")?
            .execute(params![org_id, address])?;
    }
    Ok(())
}

pub fn sweep(tx: &Transaction<'_>, offered_before: i64) -> Result<u64> {
    let gone: Vec<(String, String, String, Vec<u8>)> = tx
        .prepare_cached(
            "SELECT org_id, doc_id, name, address FROM attachments
             WHERE referenced = 0 OR (referenced IS NULL AND created_at < ?1)
             LIMIT 1000",
        )?
        .query_map([offered_before], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    for (org_id, doc_id, name, address) in &gone {
        tx.prepare_cached(
            "DELETE FROM attachments WHERE org_id = ?1 AND doc_id = ?2 AND name = ?3",
        )?
        .execute([org_id, doc_id, name])?;
        drop_if_unused(tx, org_id, address)?;
    }
    Ok(gone.len() as u64)
}

#[async_trait::async_trait]
impl crate::storage::MediaStorage for super::Sqlite {
    async fn media_target(&self, org_id: &str, doc_id: &str, name: &str) -> Result<MediaTarget> {
        let (o, d, n) = (org_id.to_owned(), doc_id.to_owned(), name.to_owned());
        self.store.read(move |c| target(c, &o, &d, &n)).await
    }

    async fn blob_key(
        &self,
        org_id: &str,
        address: Vec<u8>,
    ) -> Result<Option<(u64, u32, u32, KeySource)>> {
        let o = org_id.to_owned();
        self.store.read(move |c| blob_key(c, &o, &address)).await
    }

    async fn attach(&self, new: NewAttachment) -> Result<Attached> {
        self.store.write(move |tx| attach(tx, &new)).await
    }

    async fn put_chunk(
        &self,
        org_id: &str,
        address: Vec<u8>,
        index: u32,
        sealed: Vec<u8>,
    ) -> Result<ChunkStored> {
        let o = org_id.to_owned();
        self.store
            .write(move |tx| put_chunk(tx, &o, &address, index, &sealed))
            .await
    }

    async fn reset_blob(&self, org_id: &str, address: Vec<u8>) -> Result<()> {
        let o = org_id.to_owned();
        self.store
            .write(move |tx| reset_blob(tx, &o, &address))
            .await
    }

    async fn blob_chunk(
        &self,
        org_id: &str,
        address: Vec<u8>,
        index: u32,
    ) -> Result<Option<Vec<u8>>> {
        let o = org_id.to_owned();
        self.store
            .read(move |c| blob_chunk(c, &o, &address, index))
            .await
    }

    async fn attachments(&self, org_id: &str, doc_id: &str) -> Result<Vec<AttachmentRow>> {
        let (o, d) = (org_id.to_owned(), doc_id.to_owned());
        self.store.read(move |c| attachments(c, &o, &d)).await
    }

    async fn sweep_media(&self, offered_before: i64) -> Result<u64> {
        let swept = self
            .store
            .write(move |tx| sweep(tx, offered_before))
            .await?;
        if swept > 0 {
            self.scrub_log().await?;
        }
        Ok(swept)
    }
}
