//! Frames between the server and its workers: a big-endian u32 length, then one CBOR message.
//! Internal to one binary, so both ends always agree; still bounded, because a worker that
//! was fed hostile data is not trusted either.

use fieldsync_protocol::api::ResponseView;
use fieldsync_protocol::cbor::{self, Limits};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

/// Largest frame either side accepts.
pub const MAX_FRAME: usize = 256 * 1024 * 1024;

const FRAME_LIMITS: Limits = Limits {
    max_bytes: MAX_FRAME,
    max_depth: 16,
    max_items: 64 * 1024 * 1024,
};

/// What the server asks of a worker.
#[derive(Debug, Deserialize)]
pub enum Request {
    /// Parse every change of each document (one inner list per document); with `keys`, also
    /// list the map keys they write.
    Verify {
        docs: Vec<Vec<ByteBuf>>,
        #[serde(default)]
        keys: bool,
    },
    /// Check each response's new changes against its accepted ones, then validate it.
    Materialize(Vec<MaterializeJob>),
}

/// The borrowed twin of [`Request`], so the server can send a batch without copying it.
#[derive(Debug, Serialize)]
pub enum RequestRef<'a> {
    Verify {
        docs: &'a [Vec<ByteBuf>],
        keys: bool,
    },
    Materialize(&'a [MaterializeJob]),
}

/// One response to check, load and validate.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MaterializeJob {
    /// The document's changes already accepted, in the order they were stored: they load.
    pub accepted: Vec<ByteBuf>,
    /// Changes not yet checked (or waiting for a dependency), in the order they were stored.
    pub pending: Vec<ByteBuf>,
    /// What the pushing client declared: the document must say the same about itself.
    pub doc_id: uuid::Uuid,
    pub survey_id: uuid::Uuid,
    pub survey_version: u32,
    /// The definition JSON of the survey version the response declares, if the server has it.
    pub definition: Option<String>,
    /// Today's date (`YYYY-MM-DD`, UTC) for `today()` in constraints.
    pub today: String,
}

/// The verdict on one document's changes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Verdict {
    /// Every change parsed: their hashes, in order, and (when asked for) the map keys they
    /// write, which name the questions an edit touched.
    Ok {
        hashes: Vec<ByteBuf>,
        keys: Vec<String>,
    },
    /// The document's data is malformed; the reason names what is wrong.
    Malformed(String),
}

/// What the check decided about one pending change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ChangeVerdict {
    /// The document loads and reads with it.
    Accepted,
    /// It would make the document unreadable (or say it is another document); why.
    Refused(String),
    /// It depends on a change the document does not have.
    Waiting,
}

/// The outcome of one materialise job.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Checked {
    /// One verdict per pending change, in order.
    pub verdicts: Vec<ChangeVerdict>,
    /// The response as it is with its accepted changes; `None` when none is accepted yet.
    pub view: Option<ResponseView>,
    /// The identifiers it holds (normalised answers of its survey's subject field and
    /// identifying questions), which settling turns into subject-index entries.
    #[serde(default)]
    pub subjects: Vec<String>,
    /// The attachments its answers name, which settling marks as referenced.
    #[serde(default)]
    pub media: Vec<String>,
}

/// What a worker answers.
#[derive(Debug, Serialize, Deserialize)]
pub enum Reply {
    Verified(Vec<Verdict>),
    /// One result per job, in order; an `Err` means the accepted changes themselves no longer
    /// load (which only data stored before schema 2 can do).
    Materialized(Vec<Result<Checked, String>>),
    /// The request itself could not be read.
    Failed(String),
}

/// Encode one frame, length prefix included.
pub fn encode<T: Serialize>(msg: &T) -> Result<Vec<u8>, String> {
    let body = cbor::encode(msg).map_err(|e| e.to_string())?;
    if body.len() > MAX_FRAME {
        return Err(format!("frame of {} bytes is over the limit", body.len()));
    }
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(&body);
    Ok(frame)
}

/// Decode a request body (without its length prefix).
pub fn decode_request(body: &[u8]) -> Result<Request, String> {
    cbor::decode(body, &FRAME_LIMITS).map_err(|e| e.to_string())
}

/// Decode a reply body (without its length prefix).
pub fn decode_reply(body: &[u8]) -> Result<Reply, String> {
    match cbor::decode(body, &FRAME_LIMITS) {
        Ok(Reply::Failed(why)) => Err(format!("the worker could not read the request: {why}")),
        Ok(reply) => Ok(reply),
        Err(e) => Err(format!("the worker's answer is not readable: {e}")),
    }
}
