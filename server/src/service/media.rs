//! Attachments: who may upload a file for a response and what it must be, the keys that
//! protect it, and reading it back.
//!
//! A device offers a file of a response the server holds ([`offer`]): the file must answer a
//! media question of the response's survey version with a type and size that question takes
//! ([`fieldsync_protocol::media`], the same rules the device applies). Its content address is
//! an HMAC of its SHA-256 under the organisation's media key; a file the organisation already
//! holds is not sent again (its data key is unwrapped through another response's attachment
//! and wrapped again for this one). Chunks arrive in order ([`chunk`]), each checked against
//! its SHA-256 and its expected length before it is sealed and stored; the last one is stored
//! only once the whole file, read back, has the SHA-256 the offer declared.

use std::sync::Arc;

use fieldsync_protocol::api::{MediaInfo, Role};
use fieldsync_protocol::crypto::{Binding, Cipher, KeyId, Purpose, Sealed, SecretKey};
use fieldsync_protocol::media::{self, MediaChunk, MediaOffer, MediaStatus};
use fieldsync_protocol::survey::Survey;
use fieldsync_protocol::survey::types::QuestionType;
use fieldsync_protocol::wire::PROTOCOL_VERSION;
use uuid::Uuid;

use crate::auth::{Caller, READERS};
use crate::error::ApiError;
use crate::keys::{DOC_KEY_ID, KeyRing};
use crate::storage::{
    Attached, AttachmentRow, ChunkStored, Db, FoundTarget, MediaTarget, NewAttachment, StoredDoc,
    address_hex,
};

/// Key id of an attachment's data key (the chunks it seals).
const MEDIA_KEY_ID: KeyId = KeyId(1);

/// The binding of an attachment's data key, wrapped by its response's data key.
fn media_key_binding<'a>(org_id: &'a str, what: &'a str) -> Binding<'a> {
    Binding::new(Purpose::MediaKey, org_id, what, 0, DOC_KEY_ID)
}

/// The binding of one chunk of a blob.
fn chunk_binding<'a>(org_id: &'a str, address: &'a str, index: u32) -> Binding<'a> {
    Binding::new(
        Purpose::Media,
        org_id,
        address,
        u64::from(index),
        MEDIA_KEY_ID,
    )
}

/// Refuse a caller that may not upload files (support staff only read).
fn may_upload(caller: &Caller) -> Result<(), ApiError> {
    super::sync::may_push(caller)
}

/// The response an upload is for, if the caller may attach files to it.
async fn writable(
    db: &Db,
    caller: &Caller,
    doc_id: &Uuid,
    name: &str,
) -> Result<Box<FoundTarget>, ApiError> {
    let id = doc_id.to_string();
    let found = match db.media_target(&caller.org_id, &id, name).await? {
        MediaTarget::Found(found) => found,
        MediaTarget::Erased => {
            return Err(ApiError::Erased(format!(
                "response {id} was erased on the server; its files are not stored"
            )));
        }
        MediaTarget::Missing => return Err(not_visible(&id)),
    };
    let StoredDoc {
        owner_id,
        restricted,
        ..
    } = &found.doc;
    if caller.role == Role::Enumerator && *owner_id != caller.principal_id {
        return Err(not_visible(&id));
    }
    if *restricted {
        return Err(ApiError::Restricted(format!(
            "response {id} is restricted at the respondent's request and takes no new files until an admin lifts the restriction; the file stays on this device"
        )));
    }
    Ok(found)
}

fn not_visible(id: &str) -> ApiError {
    ApiError::NotFound(format!(
        "no response {id} is visible to you; sync the response before its files"
    ))
}

/// The response's data key.
fn doc_cipher(
    keys: &KeyRing,
    org_id: &str,
    doc_id: &str,
    found: &FoundTarget,
) -> Result<Arc<Cipher>, ApiError> {
    let org = keys.org_keys(org_id, &found.org_key)?;
    Ok(keys.doc_cipher(&org.cipher, org_id, doc_id, &found.doc_key)?)
}

fn status(row: &AttachmentRow) -> MediaStatus {
    MediaStatus {
        protocol: PROTOCOL_VERSION,
        name: row.name.clone(),
        chunk_size: media::CHUNK_SIZE,
        chunks: row.chunks,
        received: row.received,
        complete: row.complete(),
    }
}

/// Check an offer against the response's survey version: a media question of that name,
/// a type it takes, a size within its limit.
async fn check_offer(
    db: &Db,
    caller: &Caller,
    doc: &StoredDoc,
    offer: &MediaOffer,
) -> Result<(), ApiError> {
    media::check_name(&offer.name).map_err(ApiError::Invalid)?;
    if offer.sha256.len() != 32 {
        return Err(ApiError::BadRequest(
            "sha256 must be the 32 bytes of the file's SHA-256".into(),
        ));
    }
    let (json, _) = db
        .survey_version(&caller.org_id, &doc.survey_id, doc.survey_version)
        .await?
        .ok_or_else(|| ApiError::Internal(format!("survey version of {} missing", offer.doc_id)))?;
    let survey = Survey::parse_json(&json)
        .map_err(|e| ApiError::Internal(format!("stored survey does not parse: {e}")))?;
    let q = survey.question(&offer.question).ok_or_else(|| {
        ApiError::Invalid(format!(
            "survey version {} has no question `{}`",
            doc.survey_version, offer.question
        ))
    })?;
    let QuestionType::Media(kind) = q.qtype else {
        return Err(ApiError::Invalid(format!(
            "`{}` is a {} question and takes no file",
            q.name, q.qtype
        )));
    };
    let named = media::media_type_of(&offer.name).unwrap_or("");
    if named != offer.media_type {
        return Err(ApiError::Invalid(format!(
            "{} is named as {named} but offered as {}; offer it with its own type",
            offer.name, offer.media_type
        )));
    }
    media::fits(kind, &offer.media_type)
        .map_err(|e| ApiError::Invalid(format!("`{}` {e}", q.name)))?;
    let limit = media::limit(q).unwrap_or(0);
    if offer.size == 0 {
        return Err(ApiError::Invalid(format!("{} is empty", offer.name)));
    }
    if offer.size > limit {
        return Err(ApiError::TooLarge(format!(
            "{} is {}; `{}` takes files of at most {}",
            offer.name,
            media::show_size(offer.size),
            q.name,
            media::show_size(limit)
        )));
    }
    Ok(())
}

/// `offer`: record the attachment (or find it recorded) and say what the server holds of it.
pub async fn offer(
    db: &Db,
    keys: &KeyRing,
    caller: &Caller,
    offer: MediaOffer,
) -> Result<MediaStatus, ApiError> {
    may_upload(caller)?;
    let org_id = caller.org_id.as_str();
    let doc_id = offer.doc_id.to_string();
    // Another offer of the same new file may create its blob between our look and our
    // write; then we look again and use the file's existing key.
    for attempt in 0..4 {
        let found = writable(db, caller, &offer.doc_id, &offer.name).await?;
        let org = keys.org_keys(org_id, &found.org_key)?;
        let address = org.media_address(&offer.sha256);
        if let Some(row) = &found.attachment {
            if row.address != address {
                return Err(ApiError::Conflict(format!(
                    "response {doc_id} already holds another file named {}; attach this one under a new name",
                    offer.name
                )));
            }
            return Ok(status(row));
        }
        if attempt == 3 {
            break;
        }
        check_offer(db, caller, &found.doc, &offer).await?;
        let (key, new_blob) = match db.blob_key(org_id, address.clone()).await? {
            Some((size, _, _, _)) if size != offer.size => {
                return Err(ApiError::Invalid(format!(
                    "{} is offered as {} bytes, but the file with its SHA-256 has {size}; check the file",
                    offer.name, offer.size
                )));
            }
            Some((_, _, _, source)) => {
                let via = keys.doc_cipher(&org.cipher, org_id, &source.doc_id, &source.doc_key)?;
                let what = format!("{}/{}", source.doc_id, source.name);
                let key = via
                    .unwrap_key(
                        &media_key_binding(org_id, &what),
                        &Sealed::from_bytes(&source.wrapped_key).map_err(internal)?,
                    )
                    .map_err(internal)?;
                (key, false)
            }
            None => (SecretKey::generate().map_err(internal)?, true),
        };
        let cipher = doc_cipher(keys, org_id, &doc_id, &found)?;
        let what = format!("{doc_id}/{}", offer.name);
        let wrapped = cipher
            .wrap_key(&media_key_binding(org_id, &what), &key)
            .map_err(internal)?;
        // Whatever happened (recorded, or another offer got there first), the next look
        // finds the attachment or starts again.
        let _: Attached = db
            .attach(NewAttachment {
                org_id: org_id.to_owned(),
                doc_id: doc_id.clone(),
                name: offer.name.clone(),
                question: offer.question.clone(),
                media_type: offer.media_type.clone(),
                address,
                wrapped_key: wrapped.to_bytes(),
                size: offer.size,
                chunks: media::chunk_count(offer.size),
                new_blob,
            })
            .await?;
    }
    Err(ApiError::Unavailable(
        "the file is being offered by several uploads at once; retry shortly".into(),
    ))
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(e.to_string())
}

/// The attachment's data key.
fn media_cipher(
    keys: &KeyRing,
    org_id: &str,
    doc_id: &str,
    found: &FoundTarget,
    row: &AttachmentRow,
) -> Result<Cipher, ApiError> {
    let doc = doc_cipher(keys, org_id, doc_id, found)?;
    let what = format!("{doc_id}/{}", row.name);
    let key = doc
        .unwrap_key(
            &media_key_binding(org_id, &what),
            &Sealed::from_bytes(&row.wrapped_key).map_err(internal)?,
        )
        .map_err(internal)?;
    Cipher::new(&key).map_err(internal)
}

/// `chunk`: check and store the next chunk of an offered attachment.
pub async fn chunk(
    db: &Db,
    keys: &KeyRing,
    caller: &Caller,
    chunk: MediaChunk,
) -> Result<MediaStatus, ApiError> {
    may_upload(caller)?;
    let org_id = caller.org_id.as_str();
    let doc_id = chunk.doc_id.to_string();
    let found = writable(db, caller, &chunk.doc_id, &chunk.name).await?;
    let Some(row) = found.attachment.clone() else {
        return Err(ApiError::NotFound(format!(
            "response {doc_id} has no file {} offered; offer it before sending its chunks",
            chunk.name
        )));
    };
    if chunk.index < row.received || row.complete() {
        // Stored before (the acknowledgement was lost): nothing to do.
        return Ok(status(&row));
    }
    if chunk.index > row.received {
        return Err(ApiError::Conflict(format!(
            "chunk {} of {} arrived out of order; the server holds {} chunk(s), send chunk {} next",
            chunk.index, chunk.name, row.received, row.received
        )));
    }
    let want = media::chunk_len(row.size, chunk.index);
    if chunk.bytes.len() as u64 != want {
        return Err(ApiError::Invalid(format!(
            "chunk {} of {} has {} bytes; it must have {want}",
            chunk.index,
            chunk.name,
            chunk.bytes.len()
        )));
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, &chunk.bytes);
    if digest.as_ref() != chunk.sha256.as_slice() {
        return Err(ApiError::Invalid(format!(
            "chunk {} of {} does not match its SHA-256 (damaged on the way); send it again",
            chunk.index, chunk.name
        )));
    }
    let cipher = media_cipher(keys, org_id, &doc_id, &found, &row)?;
    let address = address_hex(&row.address);
    let last = chunk.index + 1 == row.chunks;
    if last {
        // The whole file, read back, must be the one offered before it counts as stored.
        let mut whole = ring::digest::Context::new(&ring::digest::SHA256);
        for index in 0..chunk.index {
            whole.update(&open_chunk(db, &cipher, org_id, &row, &address, index).await?);
        }
        whole.update(&chunk.bytes);
        let org = keys.org_keys(org_id, &found.org_key)?;
        if org.media_address(whole.finish().as_ref()) != row.address {
            db.reset_blob(org_id, row.address.clone()).await?;
            return Err(ApiError::Invalid(format!(
                "{} does not match the SHA-256 it was offered with; the server dropped what it had of it; offer it again",
                chunk.name
            )));
        }
    }
    let sealed = cipher
        .seal(&chunk_binding(org_id, &address, chunk.index), &chunk.bytes)
        .map_err(internal)?;
    let received = match db
        .put_chunk(org_id, row.address.clone(), chunk.index, sealed.to_bytes())
        .await?
    {
        ChunkStored::Stored(n) | ChunkStored::Duplicate(n) => n,
        ChunkStored::OutOfOrder(n) => {
            return Err(ApiError::Conflict(format!(
                "chunk {} of {} arrived out of order; the server holds {n} chunk(s), send chunk {n} next",
                chunk.index, chunk.name
            )));
        }
        ChunkStored::Gone => return Err(not_visible(&doc_id)),
    };
    Ok(MediaStatus {
        received,
        complete: received == row.chunks,
        ..status(&row)
    })
}

async fn open_chunk(
    db: &Db,
    cipher: &Cipher,
    org_id: &str,
    row: &AttachmentRow,
    address: &str,
    index: u32,
) -> Result<Vec<u8>, ApiError> {
    let sealed = db
        .blob_chunk(org_id, row.address.clone(), index)
        .await?
        .ok_or_else(|| internal(format!("chunk {index} of {} is missing", row.name)))?;
    let opened = cipher
        .open_owned(
            &chunk_binding(org_id, address, index),
            Sealed::from_bytes(&sealed).map_err(internal)?,
        )
        .map_err(internal)?;
    Ok(opened.as_bytes().to_vec())
}

/// Who may read a response's files: those who may read it.
async fn readable(db: &Db, caller: &Caller, doc_id: &str) -> Result<Box<FoundTarget>, ApiError> {
    caller.require(READERS, "download files")?;
    // The same rules as reading the response itself (restriction included).
    super::responses::show(db, caller, doc_id).await?;
    match db.media_target(&caller.org_id, doc_id, "").await? {
        MediaTarget::Found(found) => Ok(found),
        _ => Err(not_visible(doc_id)),
    }
}

/// A response's files.
pub async fn list(db: &Db, caller: &Caller, doc_id: &str) -> Result<Vec<MediaInfo>, ApiError> {
    let id = super::parse_id(doc_id, "response")?;
    readable(db, caller, &id).await?;
    Ok(db
        .attachments(&caller.org_id, &id)
        .await?
        .into_iter()
        .map(info)
        .collect())
}

/// A stored attachment as the API lists it.
pub fn info(a: AttachmentRow) -> MediaInfo {
    MediaInfo {
        stored: a.complete(),
        name: a.name,
        question: a.question,
        media_type: a.media_type,
        size: a.size,
    }
}

/// One stored file of a response, read chunk by chunk.
pub struct MediaReader {
    db: Db,
    cipher: Cipher,
    org_id: String,
    address: String,
    pub row: AttachmentRow,
    next: u32,
}

impl std::fmt::Debug for MediaReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaReader")
            .field("name", &self.row.name)
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

impl MediaReader {
    /// The next chunk, decrypted; `None` after the last.
    pub async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, ApiError> {
        if self.next >= self.row.chunks {
            return Ok(None);
        }
        let index = self.next;
        self.next += 1;
        open_chunk(
            &self.db,
            &self.cipher,
            &self.org_id,
            &self.row,
            &self.address,
            index,
        )
        .await
        .map(Some)
    }
}

/// Open a stored file of a response for reading.
pub async fn open(
    db: &Db,
    keys: &KeyRing,
    caller: &Caller,
    doc_id: &str,
    name: &str,
) -> Result<MediaReader, ApiError> {
    let id = super::parse_id(doc_id, "response")?;
    let found = readable(db, caller, &id).await?;
    let row = db
        .attachments(&caller.org_id, &id)
        .await?
        .into_iter()
        .find(|a| a.name == name)
        .ok_or_else(|| ApiError::NotFound(format!("response {id} has no file {name:?}")))?;
    if !row.complete() {
        return Err(ApiError::Unavailable(format!(
            "{name} of response {id} is still being uploaded ({} of {} chunks); try again later",
            row.received, row.chunks
        )));
    }
    let cipher = media_cipher(keys, &caller.org_id, &id, &found, &row)?;
    Ok(MediaReader {
        db: db.clone(),
        cipher,
        org_id: caller.org_id.clone(),
        address: address_hex(&row.address),
        row,
        next: 0,
    })
}

/// How long a file offered for a response whose checked answers never named it is kept (its
/// referencing change may still be on its way, from a device that pushed it elsewhere).
pub const UNNAMED_GRACE_MS: i64 = 7 * 24 * 3600 * 1000;

/// Delete files their responses no longer name (an answer replaced or cleared) and files no
/// checked answer named within [`UNNAMED_GRACE_MS`] of their offer; returns how many
/// attachments went. Run with the retention purge.
pub async fn sweep(db: &Db, now: i64) -> Result<u64, crate::storage::StorageError> {
    let mut total = 0;
    loop {
        let n = db.sweep_media(now - UNNAMED_GRACE_MS).await?;
        total += n;
        if n < 1000 {
            return Ok(total);
        }
    }
}
