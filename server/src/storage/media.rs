//! Attachments in storage: the rows both backends keep and the operations on them
//! ([`MediaStorage`], part of [`super::Storage`]).
//!
//! A file is a *blob*: one per organisation and content address (an HMAC of the file's
//! SHA-256 under a key derived from the organisation key, see
//! [`crate::keys::OrgKeys::media_address`]), its chunks sealed with the file's own data key and
//! stored in order. A response's *attachment* names a blob and holds the blob's data key
//! wrapped by the response's data key. Every write is one transaction: an attachment and its
//! new blob appear together; a chunk and the blob's count of chunks move together; erasing a
//! response deletes its attachments and every blob no other attachment names. So no blob is
//! ever without an attachment, and no stored chunk is ever lost once acknowledged.
//!
//! Backends store what they are given: keys are wrapped and chunks sealed by the service
//! ([`crate::service::media`]).

use super::{Result, StoredDoc};

/// A response's attachment as stored, with the state of its blob.
#[derive(Clone, Debug, PartialEq)]
pub struct AttachmentRow {
    pub name: String,
    pub question: String,
    pub media_type: String,
    pub address: Vec<u8>,
    /// The blob's data key, wrapped by the response's data key.
    pub wrapped_key: Vec<u8>,
    pub size: u64,
    pub chunks: u32,
    /// Chunks stored so far (from the first).
    pub received: u32,
    /// Whether the response's answers name it, as last checked (`None`: not checked yet).
    pub referenced: Option<bool>,
}

impl AttachmentRow {
    pub fn complete(&self) -> bool {
        self.received == self.chunks
    }
}

/// What the service needs to decide about an attachment of a response.
#[derive(Clone, Debug)]
pub enum MediaTarget {
    /// The organisation has no such response.
    Missing,
    /// The response was erased.
    Erased,
    Found(Box<FoundTarget>),
}

#[derive(Clone, Debug)]
pub struct FoundTarget {
    pub doc: StoredDoc,
    /// The response's data key, wrapped by the organisation key, and that key wrapped by
    /// the master key.
    pub doc_key: Vec<u8>,
    pub org_key: Vec<u8>,
    /// The attachment of this name, if the response has one.
    pub attachment: Option<AttachmentRow>,
}

/// Another attachment of a blob, through which the blob's data key is reached.
#[derive(Clone, Debug)]
pub struct KeySource {
    pub doc_id: String,
    /// The attachment's name in that response.
    pub name: String,
    pub doc_key: Vec<u8>,
    pub wrapped_key: Vec<u8>,
}

/// An attachment to record.
#[derive(Clone, Debug)]
pub struct NewAttachment {
    pub org_id: String,
    pub doc_id: String,
    pub name: String,
    pub question: String,
    pub media_type: String,
    pub address: Vec<u8>,
    pub wrapped_key: Vec<u8>,
    pub size: u64,
    pub chunks: u32,
    /// The blob is new: its key was made for this attachment. If another offer created the
    /// blob meanwhile, nothing is written ([`Attached::BlobAppeared`]) and the service
    /// starts again from the blob's existing key.
    pub new_blob: bool,
}

/// What recording an attachment did.
#[derive(Clone, Debug, PartialEq)]
pub enum Attached {
    Done,
    /// The response already has an attachment of this name (another offer got there first).
    NameTaken,
    BlobAppeared,
}

/// What storing a chunk did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChunkStored {
    /// Stored; the blob now has this many chunks.
    Stored(u32),
    /// Already stored before (a retry); the blob has this many.
    Duplicate(u32),
    /// Not the next chunk: the blob has this many, send that one.
    OutOfOrder(u32),
    /// The blob is gone (its response was erased meanwhile).
    Gone,
}

/// Whether chunk `index` is the next of a blob that has `received` chunks (`None`: the
/// blob is gone): `Ok` to store it, or what to answer instead. Both backends decide so.
pub(crate) fn next_chunk(received: Option<u32>, index: u32) -> Result<u32, ChunkStored> {
    match received {
        None => Err(ChunkStored::Gone),
        Some(n) if index < n => Err(ChunkStored::Duplicate(n)),
        Some(n) if index > n => Err(ChunkStored::OutOfOrder(n)),
        Some(n) => Ok(n),
    }
}

/// The attachment operations of a backend.
#[async_trait::async_trait]
pub trait MediaStorage: Send + Sync {
    /// The response `doc_id` of the organisation, its keys and its attachment `name`.
    async fn media_target(&self, org_id: &str, doc_id: &str, name: &str) -> Result<MediaTarget>;
    /// The blob at `address`, if the organisation has it: its size, chunks, chunks received,
    /// and an attachment through which its key is reached.
    async fn blob_key(
        &self,
        org_id: &str,
        address: Vec<u8>,
    ) -> Result<Option<(u64, u32, u32, KeySource)>>;
    /// Record an attachment (and its blob, when new), in one transaction.
    async fn attach(&self, new: NewAttachment) -> Result<Attached>;
    /// Store chunk `index` of a blob if it is the next one, counting it in the same
    /// transaction.
    async fn put_chunk(
        &self,
        org_id: &str,
        address: Vec<u8>,
        index: u32,
        sealed: Vec<u8>,
    ) -> Result<ChunkStored>;
    /// Forget every chunk of a blob (its whole-file hash did not match the offer's).
    async fn reset_blob(&self, org_id: &str, address: Vec<u8>) -> Result<()>;
    /// One sealed chunk of a blob.
    async fn blob_chunk(
        &self,
        org_id: &str,
        address: Vec<u8>,
        index: u32,
    ) -> Result<Option<Vec<u8>>>;
    /// A response's attachments, by name.
    async fn attachments(&self, org_id: &str, doc_id: &str) -> Result<Vec<AttachmentRow>>;
    /// Delete attachments whose response no longer names them, and those no checked response
    /// ever named that were offered before `offered_before` (an upload for a change that
    /// never arrived), with every blob left without an attachment. Returns how many
    /// attachments went.
    async fn sweep_media(&self, offered_before: i64) -> Result<u64>;
}

/// Lower-case hex of a content address, where a binding needs it as text.
pub fn address_hex(address: &[u8]) -> String {
    address.iter().map(|b| format!("{b:02x}")).collect()
}
