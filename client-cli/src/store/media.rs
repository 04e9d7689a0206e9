//! Attachments on the device: files answering image, audio, video and file questions.
//!
//! A file is copied into the store at the moment it is attached, in chunks of
//! [`media::CHUNK_SIZE`], each sealed with the attachment's own data key; that key and the
//! file's SHA-256 are sealed with the store key. An attachment belongs to no response until a
//! response referencing it is saved (the same transaction links it); when a save leaves it
//! unreferenced (an answer replaced or cleared), it is deleted, and so is everything of a
//! response that is erased or discarded. Attachments nobody saved (an interview quit) are
//! swept after a day.
//!
//! Uploads are tracked per attachment: how many chunks the server has acknowledged, so
//! `status` can say how much is left without asking the server; the server's own count is
//! what an upload resumes from.

use std::io::Read;
use std::path::Path;

use fieldsync_protocol::Answers;
use fieldsync_protocol::crypto::{Binding, Cipher, KeyId, Purpose, Sealed, SecretKey};
use fieldsync_protocol::media::{self, Reference};
use fieldsync_protocol::survey::types::QuestionType;
use fieldsync_protocol::survey::{Question, Survey};
use rusqlite::{Connection, OptionalExtension, params};
use uuid::Uuid;

use super::{STORE_KEY_ID, Store, StoreError, now_ms};

/// Attachments saved with no response for this long are swept (an interview quit, a
/// crashed import).
const UNLINKED_FOR_MS: i64 = 24 * 3600 * 1000;
/// The version under which an attachment's digest record is sealed (chunks use their index).
const DIGEST_RECORD: u64 = u64::MAX;

/// A file just attached: the name the answer holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attached {
    pub name: String,
    pub size: u64,
    pub media_type: String,
}

/// An attachment waiting to be uploaded.
#[derive(Clone, Debug)]
pub struct MediaUpload {
    pub name: String,
    pub doc_id: Uuid,
    pub question: String,
    pub media_type: String,
    pub size: u64,
    pub chunks: u32,
    /// Chunks the server has acknowledged so far.
    pub sent: u32,
    pub sha256: Vec<u8>,
}

/// Attachments waiting, for `status`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct MediaBacklog {
    pub files: u64,
    pub bytes_left: u64,
}

impl Store {
    /// Copy the file at `path` into the store as the answer to `q` (an image, audio, video or
    /// file question), checking it against the question's limits first. The attachment
    /// belongs to no response until one that references it is saved.
    pub fn attach_file(&mut self, q: &Question, path: &Path) -> Result<Attached, StoreError> {
        let QuestionType::Media(kind) = q.qtype else {
            return Err(StoreError::Invalid(format!(
                "`{}` is not a media question; it takes no file",
                q.name
            )));
        };
        let shown = path.display();
        let unreadable = |e: std::io::Error| {
            StoreError::Invalid(format!("cannot read {shown}: {e}; check the path"))
        };
        let file_name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| StoreError::Invalid(format!("{shown} is not a file name")))?;
        let media_type = media::media_type_of(file_name).ok_or_else(|| {
            StoreError::Invalid(format!(
                "{shown}: fieldsync does not know the type of this file by its extension; \
                 use a file such as .jpg, .png, .m4a, .mp3, .mp4 or .pdf"
            ))
        })?;
        media::fits(kind, media_type)
            .map_err(|e| StoreError::Invalid(format!("{shown}: `{}` {e}", q.name)))?;
        let mut file = std::fs::File::open(path).map_err(unreadable)?;
        let meta = file.metadata().map_err(unreadable)?;
        if !meta.is_file() {
            return Err(StoreError::Invalid(format!("{shown} is not a file")));
        }
        let size = meta.len();
        if size == 0 {
            return Err(StoreError::Invalid(format!(
                "{shown} is empty; attach the file it should hold"
            )));
        }
        let limit = media::limit(q).unwrap_or(0);
        if size > limit {
            return Err(StoreError::Invalid(format!(
                "{shown} is {}; `{}` takes files of at most {}; attach a smaller file",
                media::show_size(size),
                q.name,
                media::show_size(limit)
            )));
        }
        let name = media::name_for(file_name, &random_tag()?)
            .ok_or_else(|| StoreError::Invalid(format!("{shown} has no usable file name")))?;
        let key = SecretKey::generate()?;
        let cipher = Cipher::new(&key)?;
        let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
        let chunks = media::chunk_count(size);
        let tx = self.immediate()?;
        let mut buf = vec![0u8; media::CHUNK_SIZE as usize];
        let mut total = 0u64;
        for index in 0..chunks {
            let want = media::chunk_len(size, index) as usize;
            file.read_exact(&mut buf[..want]).map_err(|e| {
                StoreError::Invalid(format!("{shown} changed while it was read: {e}"))
            })?;
            let chunk = &buf[..want];
            if index == 0
                && let Some(max) = media::max_pixels(q)
                && let Some((w, h)) = media::image_size(chunk)
                && w.max(h) > max
            {
                return Err(StoreError::Invalid(format!(
                    "{shown} is {w}×{h} pixels; `{}` takes images of at most {max} pixels on the longer side; resize it and attach it again",
                    q.name
                )));
            }
            digest.update(chunk);
            total += want as u64;
            let sealed = cipher.seal(&self.media_binding(&name, u64::from(index)), chunk)?;
            tx.prepare_cached("INSERT INTO media_chunks (name, idx, data) VALUES (?1, ?2, ?3)")?
                .execute(params![name, index, sealed.to_bytes()])?;
        }
        if total != size || file.read(&mut buf[..1]).map_err(unreadable)? != 0 {
            return Err(StoreError::Invalid(format!(
                "{shown} changed size while it was read; attach it again when nothing writes to it"
            )));
        }
        let sha256 = digest.finish();
        let digest_record =
            cipher.seal(&self.media_binding(&name, DIGEST_RECORD), sha256.as_ref())?;
        let wrapped = self.cipher.wrap_key(
            &Binding::new(Purpose::MediaKey, &self.store_id, &name, 0, STORE_KEY_ID),
            &key,
        )?;
        tx.prepare_cached(
            "INSERT INTO media (name, doc_id, question, media_type, size, chunks, wrapped_key,
                                digest, sent, added_at)
             VALUES (?1, NULL, ?2, ?3, ?4, ?5, ?6, ?7, 0, ?8)",
        )?
        .execute(params![
            name,
            q.name,
            media_type,
            size as i64,
            chunks,
            wrapped.to_bytes(),
            digest_record.to_bytes(),
            now_ms()
        ])?;
        tx.commit()?;
        Ok(Attached {
            name,
            size,
            media_type: media_type.to_owned(),
        })
    }

    fn media_binding<'a>(&'a self, name: &'a str, version: u64) -> Binding<'a> {
        Binding::new(Purpose::Media, &self.store_id, name, version, KeyId(1))
    }

    fn media_cipher(&self, name: &str, wrapped: &[u8]) -> Result<Cipher, StoreError> {
        let binding = Binding::new(Purpose::MediaKey, &self.store_id, name, 0, STORE_KEY_ID);
        let key = self
            .cipher
            .unwrap_key(&binding, &Sealed::from_bytes(wrapped)?)?;
        Ok(Cipher::new(&key)?)
    }

    /// Link the attachments `refs` (a saved response's references, see
    /// [`media_references`]) to response `doc_id` and delete those of the response it no
    /// longer references, in the caller's transaction. With `before` (an edit saved on this
    /// device: the references the response already had), a name that is neither on the
    /// device nor among `before` is refused, since no file would ever reach the server for
    /// it.
    pub(crate) fn link_media(
        &self,
        conn: &Connection,
        doc_id: &Uuid,
        refs: &[Reference],
        before: Option<&[Reference]>,
    ) -> Result<(), StoreError> {
        let doc = doc_id.to_string();
        for r in refs {
            let linked = conn
                .prepare_cached(
                    "UPDATE media SET doc_id = ?2
                     WHERE name = ?1 AND (doc_id IS NULL OR doc_id = ?2)",
                )?
                .execute(params![r.name, doc])?;
            let known = linked > 0 || before.is_none_or(|b| b.contains(r));
            if !known {
                return Err(StoreError::Invalid(format!(
                    "`{}` names attachment {:?}, which is not on this device; attach the file itself (give its path when `collect` asks, or in the answers file)",
                    r.question, r.name
                )));
            }
        }
        let names: Vec<&str> = refs.iter().map(|r| r.name.as_str()).collect();
        let mut stmt = conn.prepare_cached("SELECT name FROM media WHERE doc_id = ?1")?;
        let held: Vec<String> = stmt
            .query_map([&doc], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        for name in held.iter().filter(|n| !names.contains(&n.as_str())) {
            delete_media(conn, name)?;
        }
        Ok(())
    }

    /// Attachments of responses the server has (not refused), not yet uploaded whole.
    pub fn media_waiting(&self) -> Result<Vec<MediaUpload>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT m.name, m.doc_id, m.question, m.media_type, m.size, m.chunks, m.sent,
                    m.wrapped_key, m.digest
             FROM media m JOIN docs d ON d.id = m.doc_id
             WHERE m.uploaded = 0 AND m.failed IS NULL AND d.rejected IS NULL
             ORDER BY m.added_at, m.name",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, u32>(5)?,
                    r.get::<_, u32>(6)?,
                    r.get::<_, Vec<u8>>(7)?,
                    r.get::<_, Vec<u8>>(8)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(
                |(name, doc, question, media_type, size, chunks, sent, key, digest)| {
                    let cipher = self.media_cipher(&name, &key)?;
                    let sha256 = cipher
                        .open_owned(
                            &self.media_binding(&name, DIGEST_RECORD),
                            Sealed::from_bytes(&digest)?,
                        )?
                        .as_bytes()
                        .to_vec();
                    Ok(MediaUpload {
                        doc_id: doc.parse().map_err(|_| {
                            StoreError::Corrupt(format!("attachment {name}: bad id"))
                        })?,
                        name,
                        question,
                        media_type,
                        size: size as u64,
                        chunks,
                        sent,
                        sha256,
                    })
                },
            )
            .collect()
    }

    /// One chunk of an attachment, decrypted.
    pub fn media_chunk(&self, name: &str, index: u32) -> Result<Vec<u8>, StoreError> {
        let (wrapped, sealed): (Vec<u8>, Vec<u8>) = self
            .conn
            .prepare_cached(
                "SELECT m.wrapped_key, c.data FROM media m
                 JOIN media_chunks c ON c.name = m.name AND c.idx = ?2
                 WHERE m.name = ?1",
            )?
            .query_row(params![name, index], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?
            .ok_or_else(|| {
                StoreError::NotFound(format!("attachment {name} has no chunk {index} here"))
            })?;
        let cipher = self.media_cipher(name, &wrapped)?;
        Ok(cipher
            .open_owned(
                &self.media_binding(name, u64::from(index)),
                Sealed::from_bytes(&sealed)?,
            )?
            .as_bytes()
            .to_vec())
    }

    /// The whole file of an attachment held on this device, decrypted, written to `out`.
    pub fn write_media(&self, name: &str, out: &mut dyn std::io::Write) -> Result<u64, StoreError> {
        let chunks: u32 = self
            .conn
            .prepare_cached("SELECT chunks FROM media WHERE name = ?1")?
            .query_row([name], |r| r.get(0))
            .optional()?
            .ok_or_else(|| StoreError::NotFound(format!("no attachment {name} on this device")))?;
        let mut written = 0;
        for index in 0..chunks {
            let chunk = self.media_chunk(name, index)?;
            out.write_all(&chunk).map_err(|e| StoreError::Io {
                path: name.into(),
                source: e,
            })?;
            written += chunk.len() as u64;
        }
        Ok(written)
    }

    /// Record what the server holds of an attachment.
    pub fn media_progress(&self, name: &str, sent: u32, complete: bool) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("UPDATE media SET sent = ?2, uploaded = ?3 WHERE name = ?1")?
            .execute(params![name, sent, complete])?;
        Ok(())
    }

    /// Stop uploading an attachment the server refused for good (over its limit, a type the
    /// question does not take): it stays on the device, with the reason.
    pub fn media_refused(&self, name: &str, why: &str) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("UPDATE media SET failed = ?2 WHERE name = ?1")?
            .execute(params![name, why])?;
        Ok(())
    }

    /// Attachments still to upload, and their bytes the server has not acknowledged.
    pub fn media_backlog(&self) -> Result<MediaBacklog, StoreError> {
        let (files, bytes): (i64, i64) = self.conn.query_row(
            "SELECT count(*), coalesce(sum(max(size - sent * ?1, 0)), 0) FROM media
             WHERE doc_id IS NOT NULL AND uploaded = 0 AND failed IS NULL",
            [i64::from(media::CHUNK_SIZE)],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(MediaBacklog {
            files: files as u64,
            bytes_left: bytes as u64,
        })
    }

    /// Delete attachments no saved response references that were attached more than a day
    /// ago.
    pub fn sweep_unlinked_media(&self) -> Result<usize, StoreError> {
        let cutoff = now_ms() - UNLINKED_FOR_MS;
        let mut stmt = self
            .conn
            .prepare_cached("SELECT name FROM media WHERE doc_id IS NULL AND added_at < ?1")?;
        let names: Vec<String> = stmt
            .query_map([cutoff], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        for name in &names {
            delete_media(&self.conn, name)?;
        }
        Ok(names.len())
    }
}

/// The attachments `answers` reference, or `None` when the survey asks for no file (so
/// nothing needs linking).
pub(crate) fn media_references(survey: &Survey, answers: &Answers) -> Option<Vec<Reference>> {
    survey
        .questions()
        .iter()
        .any(|q| matches!(q.qtype, QuestionType::Media(_)))
        .then(|| media::references(survey, answers))
}

/// Delete every attachment of a response (erased, or a discarded draft), in the caller's
/// transaction.
pub(crate) fn delete_doc_media(conn: &Connection, doc_id: &str) -> Result<(), StoreError> {
    conn.prepare_cached(
        "DELETE FROM media_chunks WHERE name IN (SELECT name FROM media WHERE doc_id = ?1)",
    )?
    .execute([doc_id])?;
    conn.prepare_cached("DELETE FROM media WHERE doc_id = ?1")?
        .execute([doc_id])?;
    Ok(())
}

fn delete_media(conn: &Connection, name: &str) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM media_chunks WHERE name = ?1")?
        .execute([name])?;
    conn.prepare_cached("DELETE FROM media WHERE name = ?1")?
        .execute([name])?;
    Ok(())
}

/// Twelve random hex digits, which make an attachment's name unique (among a million files,
/// two share one with a chance of about one in 500).
fn random_tag() -> Result<String, StoreError> {
    let mut bytes = [0u8; 6];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| StoreError::Invalid("the system random generator failed".into()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
