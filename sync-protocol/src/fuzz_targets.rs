//! The properties checked by the fuzz targets in `fuzz/`, as plain functions, so that the
//! ordinary test suite replays the committed corpus (`fuzz/corpus/`) through the very same code
//! (`server/tests/server/fuzz_replay.rs`). Each function takes one input and returns `Err` with
//! a sentence when a property is violated; a panic is a failure too. No I/O here: callers pass
//! the bytes (and, for the push route, the answer the server gave).
//!
//! * [`wire_decode`]: every sync message type decoded with its own [`Message::LIMITS`];
//!   whatever decodes re-encodes, within the same limits, to a message that decodes equal.
//! * [`change_info`]: [`ChangeInfo::decode`], the parse the server's sandboxed worker runs on
//!   every pushed change. automerge panics on crafted changes (`fixtures/hostile/`); a panic
//!   inside it is expected and reported, not a failure (the worker catches it the same way).
//! * [`check_push_reply`]: what the push route may answer to a body: 200 with one result per
//!   document, or an error body whose code matches its status; never a 500.
//! * [`structured_push`]: turns fuzz bytes into the change bytes of a well-formed push, so a
//!   fuzzer gets past the CBOR layer to the Automerge parsing in the sandbox.

use std::cell::Cell;
use std::fmt::Debug;
use std::panic::{self, AssertUnwindSafe};

use serde_bytes::ByteBuf;
use uuid::Uuid;

use crate::Answer;
use crate::cbor::{self, Limits};
use crate::document::{ChangeInfo, NewResponse, ResponseDoc};
use crate::wire::{
    DocChanges, DocKind, DocPushResult, ErrorBody, ErrorCode, Message, PROTOCOL_VERSION,
    PullRequest, PullResponse, PushOutcome, PushRequest, PushResponse, WireError,
};

// ---------------------------------------------------------------------------------------------
// wire_decode

/// What one input did in [`wire_decode`]: the message types it decoded as.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WireReport {
    pub decoded: Vec<&'static str>,
}

/// The most heap one decode of `len` bytes may hold at its peak, beyond what was allocated
/// before: linear in the input. The structural scan refuses every length that claims more
/// entries than there are bytes left, so a few bytes can never reserve gigabytes; what is left
/// is serde reserving a vector for the declared entries before it reads them, at most 64 bytes
/// of struct per entry (a `DocChanges`), and an entry takes at least one byte. So 4,000 zero
/// bytes declared as `docs` reserve 256 KB and fail on the first. The fuzz target measures the
/// peak with a counting allocator.
pub const fn alloc_budget(len: usize) -> usize {
    64 * 1024 + 128 * len
}

/// Decode `bytes` as every sync message type with its own limits, and check each that decodes.
pub fn wire_decode(bytes: &[u8]) -> Result<WireReport, String> {
    let mut report = WireReport::default();
    type Check = fn(&[u8]) -> Result<bool, String>;
    let types: [(&'static str, Check); 5] = [
        ("PushRequest", round_trip::<PushRequest>),
        ("PushResponse", round_trip::<PushResponse>),
        ("PullRequest", round_trip::<PullRequest>),
        ("PullResponse", round_trip::<PullResponse>),
        ("ErrorBody", round_trip::<ErrorBody>),
    ];
    for (name, check) in types {
        if check(bytes).map_err(|e| format!("{name}: {e}"))? {
            report.decoded.push(name);
        }
    }
    Ok(report)
}

/// One message type: decode, and if that works, encode again and decode that.
fn round_trip<M: Message + PartialEq + Debug>(bytes: &[u8]) -> Result<bool, String> {
    let limits = M::LIMITS;
    let scanned = cbor::scan(bytes, &limits);
    let msg = match (M::from_cbor(bytes, &limits), scanned) {
        (Ok(msg), Ok(())) => msg,
        (Ok(msg), Err(e)) => {
            return Err(format!(
                "decoded although the structural scan refuses the bytes ({e}): {msg:?}"
            ));
        }
        // The scan runs first: its refusal is the decoder's answer, word for word.
        (Err(WireError::Decode(d)), Err(s)) if d == s => return Ok(false),
        (Err(e), Err(s)) => {
            return Err(format!(
                "the scan refused with `{s}` but the decoder answered `{e}`"
            ));
        }
        (Err(_), Ok(())) => return Ok(false),
    };
    let again = msg
        .to_cbor()
        .map_err(|e| format!("decoded message does not encode: {e}"))?;
    if again.len() > 4 * bytes.len() + 64 {
        return Err(format!(
            "{} input bytes decoded to a message of {} bytes",
            bytes.len(),
            again.len()
        ));
    }
    // What a peer writes back must pass the same receiver's limits.
    let back = M::from_cbor(&again, &limits).map_err(|e| {
        format!("re-encoded message does not decode: {e}; message {msg:?}, bytes {again:02x?}")
    })?;
    if back != msg {
        return Err(format!(
            "re-encoded message decodes to another value: {msg:?} became {back:?}"
        ));
    }
    let third = back
        .to_cbor()
        .map_err(|e| format!("message does not encode a second time: {e}"))?;
    if third != again {
        return Err(format!(
            "encoding is not deterministic: {again:02x?} then {third:02x?}"
        ));
    }
    Ok(true)
}

// ---------------------------------------------------------------------------------------------
// change_info

/// What [`ChangeInfo::decode`] did with one input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeOutcome {
    /// It read as a change.
    Decoded,
    /// automerge refused it with an error.
    Refused,
    /// automerge panicked on it: expected for crafted input, which is why the server runs
    /// this only in its sandboxed worker (whose `guard` catches it the same way).
    AutomergePanicked,
}

thread_local! {
    static EXPECTING_PANIC: Cell<bool> = const { Cell::new(false) };
}

/// Whether the current thread is inside [`catch_automerge_panic`]: a panic hook that aborts
/// (libFuzzer's) consults this to let an expected automerge panic unwind instead.
pub fn expecting_panic() -> bool {
    EXPECTING_PANIC.with(Cell::get)
}

/// Run `f`, turning a panic into `None`. Only for calls into automerge on untrusted bytes.
pub fn catch_automerge_panic<T>(f: impl FnOnce() -> T) -> Option<T> {
    let before = EXPECTING_PANIC.with(|c| c.replace(true));
    let result = panic::catch_unwind(AssertUnwindSafe(f)).ok();
    EXPECTING_PANIC.with(|c| c.set(before));
    result
}

/// Decode `bytes` as one change, twice: the worker's verdict on a change (and the hash the
/// server stores it under) must not depend on anything but the bytes.
pub fn change_info(bytes: &[u8]) -> Result<ChangeOutcome, String> {
    let Some(first) = catch_automerge_panic(|| ChangeInfo::decode(bytes)) else {
        return Ok(ChangeOutcome::AutomergePanicked);
    };
    let second = catch_automerge_panic(|| ChangeInfo::decode(bytes))
        .ok_or("automerge panicked on the second decode only")?;
    match (first, second) {
        (Ok(a), Ok(b)) if a == b => Ok(ChangeOutcome::Decoded),
        (Err(a), Err(b)) if a.to_string() == b.to_string() => Ok(ChangeOutcome::Refused),
        (a, b) => Err(format!(
            "two decodes of the same bytes differ: {a:?} then {b:?}"
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// The push route

/// The survey id written into push seeds. The fuzz harness publishes a survey whose id it
/// cannot choose, and replaces these 16 bytes with that id wherever they occur in an input
/// ([`with_survey`]), so a seed's documents belong to a survey that exists.
pub const SURVEY_PLACEHOLDER: Uuid = Uuid::from_u128(0x5eed_5eed_5eed_4eed_9eed_5eed_5eed_5eed);

/// `bytes` with every occurrence of [`SURVEY_PLACEHOLDER`]'s bytes replaced by `survey`'s.
pub fn with_survey(bytes: &[u8], survey: Uuid) -> Vec<u8> {
    let (from, to) = (SURVEY_PLACEHOLDER.into_bytes(), survey.into_bytes());
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i..].starts_with(&from) {
            out.extend_from_slice(&to);
            i += from.len();
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

/// The magic bytes every Automerge chunk starts with.
pub const CHUNK_MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];

/// Most changes [`structured_push`] makes of one input.
pub const MAX_STRUCTURED_CHANGES: usize = 64;

/// Split fuzz bytes into change bytes: a new change starts at every chunk magic after the
/// first byte, so several changes written one after the other come apart again. Never empty.
pub fn split_changes(bytes: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 1;
    while i + CHUNK_MAGIC.len() <= bytes.len() && out.len() + 1 < MAX_STRUCTURED_CHANGES {
        if bytes[i..].starts_with(&CHUNK_MAGIC) {
            out.push(&bytes[start..i]);
            start = i;
        }
        i += 1;
    }
    out.push(&bytes[start..]);
    out
}

/// A document id that depends only on the input, so the same input is the same document.
pub fn doc_id_for(bytes: &[u8]) -> Uuid {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest.as_ref()[..16]);
    uuid::Builder::from_random_bytes(id).into_uuid()
}

/// A well-formed push of the response `doc_id` of `survey` version `version` whose change
/// bytes are `bytes` ([`split_changes`]).
pub fn structured_push(bytes: &[u8], doc_id: Uuid, survey: Uuid, version: u32) -> PushRequest {
    PushRequest {
        protocol: PROTOCOL_VERSION,
        docs: vec![DocChanges {
            doc_id,
            kind: DocKind::Response,
            survey_id: survey,
            survey_version: version,
            changes: split_changes(bytes)
                .into_iter()
                .map(|c| ByteBuf::from(c.to_vec()))
                .collect(),
        }],
    }
}

/// What the push route did with one body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushClass {
    /// 200; how many changes were newly stored, over all documents.
    Stored { new: u32, rejected_docs: usize },
    /// An error answer: its status and code.
    Refused { status: u16, code: ErrorCode },
}

/// The status an error code is answered with (the server's `ApiError::status`, restated: a
/// code answered with another status is a bug either side of the wire would trip over).
fn status_of(code: &ErrorCode) -> Option<u16> {
    Some(match code {
        ErrorCode::BadRequest | ErrorCode::UnsupportedProtocol => 400,
        ErrorCode::Unauthenticated => 401,
        ErrorCode::Forbidden => 403,
        ErrorCode::NotFound => 404,
        ErrorCode::MethodNotAllowed => 405,
        ErrorCode::Timeout => 408,
        ErrorCode::Conflict | ErrorCode::SurveyClosed => 409,
        ErrorCode::Erased => 410,
        ErrorCode::Restricted => 423,
        ErrorCode::TooLarge => 413,
        ErrorCode::MalformedDocument | ErrorCode::InvalidSurvey | ErrorCode::Invalid => 422,
        ErrorCode::RateLimited => 429,
        ErrorCode::Unavailable => 503,
        ErrorCode::Internal | ErrorCode::Unknown => return None,
    })
}

/// Check the push route's answer (`status`, `body`) to the request body `request`.
///
/// Allowed: 200 with a [`PushResponse`] holding one result per pushed document, in order; or
/// a 4xx or 503 with an [`ErrorBody`] whose code is the one for that status. Never a 500 (or
/// any other 5xx), never an answer the client cannot read. A body the protocol's own decoder
/// refuses must be refused as a bad request, and one it reads must not be refused as unreadable.
pub fn check_push_reply(request: &[u8], status: u16, body: &[u8]) -> Result<PushClass, String> {
    let limits = Limits {
        max_bytes: request.len().max(Limits::PUSH.max_bytes),
        ..PushRequest::LIMITS
    };
    let decoded = PushRequest::from_cbor(request, &limits);
    if status == 200 {
        let req = decoded
            .map_err(|e| format!("the server stored a body the protocol decoder refuses: {e}"))?;
        let resp = PushResponse::from_cbor(body, &Limits::SYNC)
            .map_err(|e| format!("200 with a body that is not a push response: {e}"))?;
        if resp.protocol != req.protocol.min(PROTOCOL_VERSION) {
            return Err(format!(
                "answered in protocol {} to a push in {}",
                resp.protocol, req.protocol
            ));
        }
        let ids: Vec<Uuid> = resp.results.iter().map(|r| r.doc_id).collect();
        let want: Vec<Uuid> = req.docs.iter().map(|d| d.doc_id).collect();
        if ids != want {
            return Err(format!(
                "results are for documents {ids:?}, the push held {want:?}"
            ));
        }
        let mut new = 0u32;
        let mut rejected_docs = 0;
        for (r, d) in resp.results.iter().zip(&req.docs) {
            match &r.outcome {
                PushOutcome::Stored { new: n, duplicate } => {
                    if (*n as usize) + (*duplicate as usize) != d.changes.len() {
                        return Err(format!(
                            "document {}: {n} new + {duplicate} duplicate changes, {} pushed",
                            d.doc_id,
                            d.changes.len()
                        ));
                    }
                    new += n;
                }
                PushOutcome::Rejected { code, .. } => {
                    if status_of(code).is_none() {
                        return Err(format!("document {} rejected with {code:?}", d.doc_id));
                    }
                    rejected_docs += 1;
                }
                PushOutcome::Unknown => {
                    return Err(format!(
                        "document {}: an outcome of no known kind",
                        d.doc_id
                    ));
                }
            }
        }
        return Ok(PushClass::Stored { new, rejected_docs });
    }
    if !(400..500).contains(&status) && status != 503 {
        return Err(format!(
            "status {status} (only 200, 4xx or 503 are allowed): {}",
            String::from_utf8_lossy(body)
        ));
    }
    let err = ErrorBody::from_cbor(body, &Limits::SYNC)
        .map_err(|e| format!("{status} with a body that is not a CBOR error body: {e}"))?;
    match status_of(&err.code) {
        Some(s) if s == status => {}
        _ => {
            return Err(format!(
                "{status} answered with code {:?}: {}",
                err.code, err.message
            ));
        }
    }
    match &decoded {
        Err(e) if !matches!(status, 400 | 401 | 413) => {
            return Err(format!(
                "a body the decoder refuses ({e}) was answered {status} {:?}, not as a bad request",
                err.code
            ));
        }
        Ok(_) if err.message.contains("not a valid fieldsync message") => {
            return Err(format!(
                "a body the decoder reads was refused as unreadable: {}",
                err.message
            ));
        }
        _ => {}
    }
    if err.code == ErrorCode::MalformedDocument {
        let req = decoded
            .as_ref()
            .map_err(|e| format!("malformed document in a body the decoder refuses ({e})"))?;
        let named = err
            .doc_id
            .ok_or("a malformed-document answer names no document")?;
        if !req.docs.iter().any(|d| d.doc_id == named) {
            return Err(format!(
                "the malformed document {named} was not in the push"
            ));
        }
        if err.docs.is_empty() || err.docs[0].doc_id != named {
            return Err("the malformed document is not first in `docs`".into());
        }
    }
    Ok(PushClass::Refused {
        status,
        code: err.code,
    })
}

/// A real response of `survey` `version`, created by a fresh actor at `now` (ms since the
/// epoch) with one page of answers: the known-good push that must keep working whatever the
/// fuzzer sent before.
pub fn canary_response(id: Uuid, survey: Uuid, version: u32, now: i64) -> DocChanges {
    let mut doc = ResponseDoc::new(
        NewResponse {
            response_id: id,
            survey_id: survey,
            survey_version: version,
            author_device: "device:fuzz-canary".into(),
        },
        id.as_bytes().to_vec(),
        "device:fuzz-canary",
        now,
    )
    .unwrap_or_else(|e| panic!("a canary response is built from valid parts: {e}"));
    doc.set_answers([("head_name", Answer::Text("Canary".into()))], now + 1)
        .unwrap_or_else(|e| panic!("a canary answer is valid: {e}"));
    DocChanges {
        doc_id: id,
        kind: DocKind::Response,
        survey_id: survey,
        survey_version: version,
        changes: doc.all_changes().into_iter().map(ByteBuf::from).collect(),
    }
}

/// Check the answer to a canary push of `doc`: 200, and every change newly stored.
pub fn check_canary_reply(doc: &DocChanges, status: u16, body: &[u8]) -> Result<(), String> {
    if status != 200 {
        let why = ErrorBody::from_cbor(body, &Limits::SYNC)
            .map(|e| format!("{:?}: {}", e.code, e.message))
            .unwrap_or_else(|_| String::from_utf8_lossy(body).into_owned());
        return Err(format!("a known-good push was answered {status}: {why}"));
    }
    let resp = PushResponse::from_cbor(body, &Limits::SYNC)
        .map_err(|e| format!("a known-good push got an unreadable answer: {e}"))?;
    let want = DocPushResult {
        doc_id: doc.doc_id,
        outcome: PushOutcome::Stored {
            new: doc.changes.len() as u32,
            duplicate: 0,
        },
    };
    if resp.results != [want.clone()] {
        return Err(format!(
            "a known-good push gave {:?}, not {want:?}",
            resp.results
        ));
    }
    Ok(())
}

mod seeds;

pub use seeds::{NOT_IN_PROCESS, Seed, seeds};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_each_magic() {
        let a = [&CHUNK_MAGIC[..], &[1, 2]].concat();
        let b = [&CHUNK_MAGIC[..], &[3]].concat();
        let both = [a.as_slice(), b.as_slice()].concat();
        assert_eq!(split_changes(&both), vec![&a[..], &b[..]]);
        let nothing: &[u8] = &[];
        assert_eq!(split_changes(nothing), vec![nothing]);
        assert_eq!(split_changes(&CHUNK_MAGIC), vec![&CHUNK_MAGIC[..]]);
        let many = CHUNK_MAGIC.repeat(200);
        assert_eq!(split_changes(&many).len(), MAX_STRUCTURED_CHANGES);
    }

    #[test]
    fn placeholder_is_replaced() {
        let real = Uuid::from_u128(42);
        let push = structured_push(b"x", doc_id_for(b"x"), SURVEY_PLACEHOLDER, 1)
            .to_cbor()
            .expect("encodes");
        let back =
            PushRequest::from_cbor(&with_survey(&push, real), &Limits::PUSH).expect("decodes");
        assert_eq!(back.docs[0].survey_id, real);
    }

    #[test]
    fn every_seed_passes_its_own_property() {
        for seed in seeds(&[], &[]) {
            if seed.target == "wire_decode" {
                wire_decode(&seed.bytes).unwrap_or_else(|e| panic!("{}: {e}", seed.name));
            }
        }
    }
}
