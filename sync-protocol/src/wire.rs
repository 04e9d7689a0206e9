//! The CBOR wire messages exchanged by client and server during sync, and the stable error
//! body every failed request carries.
//!
//! Sync moves Automerge *changes*, in batches across many documents per round trip:
//!
//! * **push** — the client sends [`PushRequest`]: for each document it changed, the raw change
//!   bytes it has not yet seen acknowledged. The server answers [`PushResponse`] only after the
//!   changes are durably committed; pushing the same changes again is harmless (the server
//!   dedupes by change hash and reports them as `duplicate`).
//! * **pull** — the client sends [`PullRequest`] with its cursor (the last per-organisation
//!   sequence number it has applied) and the survey versions it already holds. The server
//!   answers [`PullResponse`]: a page of changes after the cursor that the caller may see, the
//!   survey documents whose versions the client lacks, the next cursor and whether more pages
//!   follow. A client with nothing to do sends one small pull and gets an empty page back.
//!
//! # Versions
//!
//! Every message carries the protocol version it is written in. Each side speaks a range,
//! [`MIN_PROTOCOL_VERSION`]`..=`[`PROTOCOL_VERSION`], and reads any message in its range:
//!
//! * a client sends its newest version; a server answers in the request's version (the lower
//!   of the two), so a client that has been offline across a server upgrade keeps syncing;
//! * a server refuses a version above its range with [`ErrorCode::UnsupportedProtocol`] and
//!   names its range in [`ErrorBody::protocols`]; a client that speaks a version in that
//!   range retries in it (a client newer than the server degrades, it is not stranded);
//! * within a version, fields are only ever added, optional and defaulted, so an older reader
//!   ignores what it does not know; an [`ErrorCode`] or [`PushOutcome`] a reader does not know
//!   reads as `Unknown` (a generic, non-final failure whose message is still shown);
//! * error bodies are written at version 1, which every reader accepts.
//!
//! Version 2 added [`PullResponse::refused`] (changes the server stored but refused after
//! checking them) and [`ErrorBody::docs`] (every document at fault in a refused request).
//! Version 3 added [`PullResponse::notices`] (responses erased or restricted at a
//! respondent's request, which a device must apply to its own copy) and the push refusals
//! [`ErrorCode::Erased`] and [`ErrorCode::Restricted`]. A server never lets a reader below
//! version 3 pull past a notice it could not understand.
//!
//! Binary fields are CBOR byte strings, never arrays of integers. Decode with
//! [`crate::cbor::decode`], which bounds untrusted input.

use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use uuid::Uuid;

use crate::cbor::{self, DecodeError, EncodeError, Limits};

/// The newest version of this wire format, the one this build writes by default.
pub const PROTOCOL_VERSION: u16 = 3;
/// The oldest version this build still reads and answers in.
pub const MIN_PROTOCOL_VERSION: u16 = 1;

/// Most changes of one document in one push: a server refuses a push with more, and a client
/// sends a document's longer backlog over several pushes.
pub const MAX_DOC_CHANGES_PER_PUSH: usize = 10_000;
/// The version error bodies are written in: their layout has not changed since version 1, and
/// every reader accepts it.
pub const ERROR_BODY_VERSION: u16 = 1;

/// The media type of every CBOR body.
pub const CONTENT_TYPE: &str = "application/cbor";

/// Raw bytes of one Automerge change.
pub type ChangeBytes = ByteBuf;

/// Which kind of document a set of changes belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocKind {
    /// A survey response, written by devices and coordinators.
    Response,
    /// A survey and its published versions, written only by the server.
    Survey,
}

/// Changes of one document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DocChanges {
    pub doc_id: Uuid,
    pub kind: DocKind,
    /// The survey the document belongs to (for a survey document, its own id).
    pub survey_id: Uuid,
    /// The survey version a response was collected on (for a survey document, its latest).
    pub survey_version: u32,
    pub changes: Vec<ChangeBytes>,
}

/// A batch of local changes sent to the server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PushRequest {
    pub protocol: u16,
    pub docs: Vec<DocChanges>,
}

/// What became of one pushed document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case", from = "RawOutcome")]
pub enum PushOutcome {
    /// Every change is durably stored: `new` were stored by this request, `duplicate` were
    /// already there.
    Stored { new: u32, duplicate: u32 },
    /// Nothing of this document was stored; the reason says what to do.
    Rejected { code: ErrorCode, message: String },
    /// An outcome added by a newer server: treated as "not acknowledged", so the changes stay
    /// in the outbox and are sent again at the next sync.
    Unknown,
}

/// What a [`PushOutcome`] is read from: every field any outcome has, so that an outcome of a
/// newer server (with fields of its own) reads as [`PushOutcome::Unknown`] instead of failing
/// the whole answer.
#[derive(Deserialize)]
struct RawOutcome {
    outcome: String,
    #[serde(default)]
    new: u32,
    #[serde(default)]
    duplicate: u32,
    code: Option<ErrorCode>,
    message: Option<String>,
}

impl From<RawOutcome> for PushOutcome {
    fn from(raw: RawOutcome) -> Self {
        match raw.outcome.as_str() {
            "stored" => PushOutcome::Stored {
                new: raw.new,
                duplicate: raw.duplicate,
            },
            "rejected" => PushOutcome::Rejected {
                code: raw.code.unwrap_or(ErrorCode::Unknown),
                message: raw.message.unwrap_or_default(),
            },
            _ => PushOutcome::Unknown,
        }
    }
}

/// The result for one document of a push.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DocPushResult {
    pub doc_id: Uuid,
    // Not `#[serde(flatten)]`: flattening makes serde write indefinite-length maps, which the
    // bounded decoder refuses.
    pub outcome: PushOutcome,
}

/// The server's answer to a push, sent after the commit is durable.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PushResponse {
    pub protocol: u16,
    /// One entry per pushed document, in request order.
    pub results: Vec<DocPushResult>,
}

/// A survey version the client already holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownSurvey {
    pub survey_id: Uuid,
    pub latest_version: u32,
}

/// A request for the next page of changes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PullRequest {
    pub protocol: u16,
    /// The last sequence number applied, 0 for a fresh client.
    pub cursor: u64,
    /// The most changes the client wants in this page; the server may send fewer.
    pub limit: u32,
    /// Surveys the client holds, so the server sends only newer versions.
    pub known_surveys: Vec<KnownSurvey>,
    /// The database `cursor` belongs to (the `epoch` of an earlier answer); none before the
    /// first pull. A server restored from a backup has another, and restarts the client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<String>,
}

/// A survey's state as the server sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SurveyStatus {
    /// Downloads and new responses allowed.
    Open,
    /// No new downloads; responses are still accepted.
    Closing,
    /// New responses are refused; nothing already accepted is touched.
    Closed,
}

impl SurveyStatus {
    /// The status as stored and shown: `open`, `closing` or `closed`.
    pub fn as_str(self) -> &'static str {
        match self {
            SurveyStatus::Open => "open",
            SurveyStatus::Closing => "closing",
            SurveyStatus::Closed => "closed",
        }
    }

    /// The status named `s`, if any.
    pub fn parse(s: &str) -> Option<SurveyStatus> {
        [
            SurveyStatus::Open,
            SurveyStatus::Closing,
            SurveyStatus::Closed,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }
}

/// A survey document the client lacks or holds an old version of.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SurveyUpdate {
    pub survey_id: Uuid,
    pub status: SurveyStatus,
    pub latest_version: u32,
    /// The whole survey document as saved by the server (its only writer), small enough to
    /// send whole; the client replaces its copy with it.
    pub document: ByteBuf,
}

/// A survey the client holds whose status changed, or that it may no longer use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SurveyState {
    pub survey_id: Uuid,
    pub status: SurveyStatus,
}

/// One page of changes after the cursor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PullResponse {
    pub protocol: u16,
    pub docs: Vec<DocChanges>,
    /// Survey documents with versions the client does not have.
    pub surveys: Vec<SurveyUpdate>,
    /// Status of every survey the client listed in `known_surveys` that it may still see.
    pub survey_states: Vec<SurveyState>,
    /// Where the next pull starts; store it only after applying this page.
    pub cursor: u64,
    /// Whether another page is waiting.
    pub more: bool,
    /// Changes this client pushed that the server stored, then refused when it checked them
    /// (they would have made their document unreadable). The document stays as it was before
    /// them on the server; the client sets its copy aside. Since version 2.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<RefusedChange>,
    /// What happened to responses at a respondent's request since the cursor, in order: a
    /// device deletes its copy of an erased response (and anything waiting to be pushed for
    /// it) and stops editing a restricted one until it is lifted. Since version 3.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notices: Vec<DocNotice>,
    /// Which database the cursor numbers belong to: a random id of the server's database,
    /// new each time it is restored from a backup. The client keeps it with the cursor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<String>,
    /// The client's cursor did not belong to this database (it was restored from a backup,
    /// or the cursor is ahead of anything it holds): this page starts from the beginning,
    /// and the server may lack changes it once acknowledged. The client pushes again
    /// everything it holds (the server keeps what it lacks and ignores the rest) and keeps
    /// pulling from this page's cursor.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub restarted: bool,
}

/// What happened to one response on the server, for every device that may hold a copy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocNotice {
    pub doc_id: Uuid,
    pub kind: NoticeKind,
}

/// The kinds of [`DocNotice`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    /// The response was erased (the respondent's right to erasure, or its survey's retention
    /// period ended): delete every copy; the server refuses it for ever.
    Erased,
    /// Processing is restricted: keep the response, but make no edits until it is lifted.
    Restricted,
    /// The restriction was lifted.
    Unrestricted,
    /// A kind added by a newer server; ignored.
    #[serde(other)]
    Unknown,
}

/// A pushed change the server's checks refused after storing it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusedChange {
    pub doc_id: Uuid,
    /// The change's hash.
    pub hash: ByteBuf,
    /// What was wrong with it, for a person.
    pub reason: String,
}

/// One document at fault in a refused request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DocFault {
    pub doc_id: Uuid,
    pub message: String,
}

/// The protocol versions a peer speaks, both ends included.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProtocolRange {
    pub min: u16,
    pub max: u16,
}

impl ProtocolRange {
    /// The range this build speaks.
    pub const OURS: ProtocolRange = ProtocolRange {
        min: MIN_PROTOCOL_VERSION,
        max: PROTOCOL_VERSION,
    };

    pub fn contains(self, version: u16) -> bool {
        (self.min..=self.max).contains(&version)
    }

    /// The newest version both this build and a peer speaking `other` understand.
    pub fn common(self, other: ProtocolRange) -> Option<u16> {
        let top = self.max.min(other.max);
        (top >= self.min.max(other.min)).then_some(top)
    }
}

/// Stable machine-readable error codes. New codes may be added; existing ones never change
/// meaning, and a code this build does not know reads as [`ErrorCode::Unknown`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The body is not a valid message (bad CBOR, wrong shape, over a limit).
    BadRequest,
    /// The peer speaks another protocol version.
    UnsupportedProtocol,
    /// No credentials, or credentials that are unknown, revoked or expired.
    Unauthenticated,
    /// Valid credentials without the right for this action.
    Forbidden,
    /// Nothing with this id exists for the caller.
    NotFound,
    /// The request conflicts with the current state (for example a duplicate name).
    Conflict,
    /// The body is larger than the server accepts.
    TooLarge,
    /// Too many attempts; wait before trying again.
    RateLimited,
    /// A document's Automerge data is malformed; `doc_id` names it.
    MalformedDocument,
    /// The survey is closed and takes no new responses.
    SurveyClosed,
    /// A survey definition has problems; `details` lists every one.
    InvalidSurvey,
    /// Invalid input other than the above; the message says what was wrong.
    Invalid,
    /// The route exists but not with this method.
    MethodNotAllowed,
    /// The server is overloaded or shutting down; retry later.
    Unavailable,
    /// The request took longer than the server allows; retry, or send less at once.
    Timeout,
    /// Something went wrong on the server; it has been logged.
    Internal,
    /// The response was erased on the server and can never be stored again: the device
    /// deletes its copy. Since version 3.
    Erased,
    /// The response's processing is restricted: the server takes no edits of it until an
    /// admin lifts the restriction; the device keeps them waiting. Since version 3.
    Restricted,
    /// A code added by a newer peer. Readers treat it as a failure that may pass (retry later)
    /// and show the message, which still says what to do.
    #[serde(other)]
    Unknown,
}

/// The body of every failed request, CBOR on sync routes and JSON elsewhere.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    pub protocol: u16,
    pub code: ErrorCode,
    /// A sentence for a person: what was wrong and what to do.
    pub message: String,
    /// The document at fault, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doc_id: Option<Uuid>,
    /// Every individual problem, when there are several (for example survey definition errors).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
    /// Every document at fault, when the request was refused because of documents (the first
    /// is also `doc_id`). Since version 2.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub docs: Vec<DocFault>,
    /// The versions the server speaks, on [`ErrorCode::UnsupportedProtocol`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocols: Option<ProtocolRange>,
    /// The server's id for the request, to quote when reporting a problem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl ErrorBody {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorBody {
            protocol: ERROR_BODY_VERSION,
            code,
            message: message.into(),
            doc_id: None,
            details: Vec::new(),
            docs: Vec::new(),
            protocols: None,
            request_id: None,
        }
    }
}

/// Errors decoding a wire message.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WireError {
    #[error(transparent)]
    Decode(#[from] DecodeError),
    #[error(
        "peer speaks protocol version {got}, this build speaks {MIN_PROTOCOL_VERSION} to {PROTOCOL_VERSION}; upgrade the older side"
    )]
    UnsupportedProtocol { got: u16 },
}

/// Messages that carry a protocol version, so decoding can check it.
pub trait Message: Serialize + serde::de::DeserializeOwned {
    /// The decoding limits a receiver applies to this message (the byte limit may be lowered
    /// further by the receiver's settings).
    const LIMITS: Limits = Limits::SYNC;

    fn protocol(&self) -> u16;

    /// Write this message in another protocol version (see the module docs on versions).
    fn set_protocol(&mut self, version: u16);

    /// Encode as CBOR.
    fn to_cbor(&self) -> Result<Vec<u8>, EncodeError> {
        cbor::encode(self)
    }

    /// Decode untrusted bytes within `limits` and check that the protocol version is one this
    /// build speaks.
    fn from_cbor(bytes: &[u8], limits: &Limits) -> Result<Self, WireError> {
        let msg: Self = cbor::decode(bytes, limits)?;
        if !ProtocolRange::OURS.contains(msg.protocol()) {
            return Err(WireError::UnsupportedProtocol {
                got: msg.protocol(),
            });
        }
        Ok(msg)
    }
}

macro_rules! message {
    ($($t:ty),*) => {$(
        impl Message for $t {
            fn protocol(&self) -> u16 {
                self.protocol
            }

            fn set_protocol(&mut self, version: u16) {
                self.protocol = version;
            }
        }
    )*};
}
pub(crate) use message;

impl Message for PushRequest {
    const LIMITS: Limits = Limits::PUSH;

    fn protocol(&self) -> u16 {
        self.protocol
    }

    fn set_protocol(&mut self, version: u16) {
        self.protocol = version;
    }
}

message!(PushResponse, PullRequest, PullResponse, ErrorBody);

#[cfg(test)]
mod tests {
    use super::*;

    fn golden_path(name: &str) -> String {
        format!("{}/../fixtures/golden/{name}", env!("CARGO_MANIFEST_DIR"))
    }

    /// The message frozen in `fixtures/golden/push-request-v1.cbor` (version 1, which this
    /// build still reads: the push request has not changed since).
    fn golden_push() -> PushRequest {
        PushRequest {
            protocol: 1,
            docs: vec![DocChanges {
                doc_id: Uuid::from_u128(0x0192_3c4a_5b6c_7d8e_9fa0_b1c2_d3e4_f506),
                kind: DocKind::Response,
                survey_id: Uuid::from_u128(0x0192_3c4a_0000_7000_8000_0000_0000_0001),
                survey_version: 2,
                changes: vec![
                    ByteBuf::from(vec![0x85, 0x6f, 0x4a, 0x83, 0x01]),
                    ByteBuf::from(vec![0xde, 0xad, 0xbe, 0xef]),
                ],
            }],
        }
    }

    /// Set `FIELDSYNC_WRITE_GOLDEN=1` to rewrite the file after a deliberate format change, and
    /// commit it together with the new PROTOCOL_VERSION.
    #[test]
    fn golden_push_request_decodes() {
        let path = golden_path("push-request-v1.cbor");
        if std::env::var_os("FIELDSYNC_WRITE_GOLDEN").is_some() {
            let bytes = golden_push().to_cbor().expect("encodes");
            std::fs::write(&path, bytes).expect("write golden");
        }
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
        let msg = PushRequest::from_cbor(&bytes, &Limits::SYNC).expect("golden decodes");
        assert_eq!(msg, golden_push());
        // Encoding is deterministic: the same message gives the same bytes, so a format change
        // shows up here as a failing test, not as silent drift.
        assert_eq!(msg.to_cbor().expect("encodes"), bytes);
    }

    #[test]
    fn binary_fields_are_byte_strings() {
        let bytes = golden_push().to_cbor().expect("encodes");
        // 0x45 = byte string of length 5 holding the first change; an array of integers would
        // start 0x85 instead.
        let needle = [0x45, 0x85, 0x6f, 0x4a, 0x83, 0x01];
        assert!(bytes.windows(needle.len()).any(|w| w == needle));
    }

    #[test]
    fn round_trips() {
        let pull = PullResponse {
            protocol: PROTOCOL_VERSION,
            docs: golden_push().docs,
            surveys: vec![SurveyUpdate {
                survey_id: Uuid::from_u128(7),
                status: SurveyStatus::Closing,
                latest_version: 3,
                document: ByteBuf::from(vec![1, 2, 3]),
            }],
            survey_states: vec![SurveyState {
                survey_id: Uuid::from_u128(8),
                status: SurveyStatus::Closed,
            }],
            cursor: 1234,
            more: true,
            refused: vec![RefusedChange {
                doc_id: Uuid::from_u128(9),
                hash: ByteBuf::from(vec![7; 32]),
                reason: "it would break its document".into(),
            }],
            notices: vec![
                DocNotice {
                    doc_id: Uuid::from_u128(10),
                    kind: NoticeKind::Erased,
                },
                DocNotice {
                    doc_id: Uuid::from_u128(11),
                    kind: NoticeKind::Restricted,
                },
            ],
            epoch: Some("0b5e".into()),
            restarted: true,
        };
        let back = PullResponse::from_cbor(&pull.to_cbor().expect("encodes"), &Limits::SYNC);
        assert_eq!(back, Ok(pull));
        // A notice kind a newer server adds reads as Unknown, and the page still reads.
        let newer: NoticeKind = serde_json::from_str("\"anonymised\"").expect("reads");
        assert_eq!(newer, NoticeKind::Unknown);

        let resp = PushResponse {
            protocol: PROTOCOL_VERSION,
            results: vec![
                DocPushResult {
                    doc_id: Uuid::from_u128(1),
                    outcome: PushOutcome::Stored {
                        new: 2,
                        duplicate: 1,
                    },
                },
                DocPushResult {
                    doc_id: Uuid::from_u128(2),
                    outcome: PushOutcome::Rejected {
                        code: ErrorCode::SurveyClosed,
                        message: "survey is closed".into(),
                    },
                },
            ],
        };
        let back = PushResponse::from_cbor(&resp.to_cbor().expect("encodes"), &Limits::SYNC);
        assert_eq!(back, Ok(resp));

        let mut err = ErrorBody::new(ErrorCode::MalformedDocument, "bad change");
        err.doc_id = Some(Uuid::from_u128(3));
        let back = ErrorBody::from_cbor(&err.to_cbor().expect("encodes"), &Limits::SYNC);
        assert_eq!(back, Ok(err));
    }

    #[test]
    fn versions_in_range_are_read_and_unknown_codes_and_outcomes_are_not_errors() {
        let mut msg = golden_push();
        for v in MIN_PROTOCOL_VERSION..=PROTOCOL_VERSION {
            msg.set_protocol(v);
            let back = PushRequest::from_cbor(&msg.to_cbor().expect("encodes"), &Limits::SYNC);
            assert_eq!(back.map(|m| m.protocol), Ok(v));
        }
        // A newer server's error code and push outcome, as CBOR a future build would write.
        let future_error = cbor::encode(&serde_json::json!({
            "protocol": 1, "code": "quota_exceeded", "message": "wait until tomorrow"
        }))
        .expect("encodes");
        let body = ErrorBody::from_cbor(&future_error, &Limits::SYNC).expect("reads");
        assert_eq!(body.code, ErrorCode::Unknown);
        assert_eq!(body.message, "wait until tomorrow");
        #[derive(Serialize)]
        struct FutureOutcome {
            outcome: &'static str,
            until: u32,
        }
        #[derive(Serialize)]
        struct FutureResult {
            doc_id: Uuid,
            outcome: FutureOutcome,
        }
        #[derive(Serialize)]
        struct FuturePush {
            protocol: u16,
            results: Vec<FutureResult>,
        }
        let future_push = cbor::encode(&FuturePush {
            protocol: 2,
            results: vec![FutureResult {
                doc_id: Uuid::from_u128(1),
                outcome: FutureOutcome {
                    outcome: "deferred",
                    until: 5,
                },
            }],
        })
        .expect("encodes");
        let resp = PushResponse::from_cbor(&future_push, &Limits::SYNC).expect("reads");
        assert_eq!(resp.results[0].outcome, PushOutcome::Unknown);
    }

    #[test]
    fn protocol_ranges_meet_at_the_newest_shared_version() {
        let ours = ProtocolRange { min: 1, max: 2 };
        assert_eq!(ours.common(ProtocolRange { min: 1, max: 1 }), Some(1));
        assert_eq!(ours.common(ProtocolRange { min: 2, max: 5 }), Some(2));
        assert_eq!(ours.common(ProtocolRange { min: 3, max: 5 }), None);
        assert!(!ours.contains(3) && ours.contains(1));
    }

    #[test]
    fn other_protocol_versions_are_refused() {
        let mut msg = golden_push();
        msg.protocol = 99;
        let r = PushRequest::from_cbor(&msg.to_cbor().expect("encodes"), &Limits::SYNC);
        assert_eq!(r, Err(WireError::UnsupportedProtocol { got: 99 }));
    }

    #[test]
    fn truncated_messages_are_errors() {
        let bytes = golden_push().to_cbor().expect("encodes");
        for cut in 0..bytes.len() {
            assert!(PushRequest::from_cbor(&bytes[..cut], &Limits::SYNC).is_err());
        }
    }
}
