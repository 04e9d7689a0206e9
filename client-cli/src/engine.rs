//! The sync engine: push the outbox in batches, then pull pages until the server has nothing
//! more. Each step is durable on its own (an acknowledged batch leaves the outbox in one
//! transaction; a pulled page and its cursor are applied in one transaction), so a sync that
//! breaks anywhere resumes where it stopped, and repeating a step is harmless because the
//! server dedupes changes by hash and Automerge ignores changes it already has.
//!
//! The engine talks to the server through [`Transport`], so a mobile app can bring its own
//! HTTP stack and tests can inject failures.

use fieldsync_protocol::wire::{
    DocChanges, DocKind, ErrorCode, PROTOCOL_VERSION, PullRequest, PullResponse, PushOutcome,
    PushRequest, PushResponse,
};
use serde::Serialize;
use uuid::Uuid;

use fieldsync_protocol::media::{MediaChunk, MediaOffer, MediaStatus};
use serde_bytes::ByteBuf;

use crate::client::{ApiClient, ClientError};
use crate::store::{OutboxDoc, Store, StoreError};

/// Documents per push.
pub const PUSH_DOCS: usize = 1000;
/// Approximate change bytes per push.
pub const PUSH_BYTES: usize = 8 * 1024 * 1024;
/// Changes per pulled page.
pub const PULL_LIMIT: u32 = 2000;
/// Chunks between the device's records of an upload's progress.
const PROGRESS_EVERY: u32 = 8;

/// How the engine reaches the server.
pub trait Transport: Sync {
    fn push(&self, req: &PushRequest) -> Result<PushResponse, ClientError>;
    fn pull(&self, req: &PullRequest) -> Result<PullResponse, ClientError>;
    fn offer_media(&self, req: &MediaOffer) -> Result<MediaStatus, ClientError>;
    fn send_chunk(&self, req: &MediaChunk) -> Result<MediaStatus, ClientError>;
}

impl Transport for ApiClient {
    fn push(&self, req: &PushRequest) -> Result<PushResponse, ClientError> {
        ApiClient::push(self, req)
    }

    fn pull(&self, req: &PullRequest) -> Result<PullResponse, ClientError> {
        ApiClient::pull(self, req)
    }

    fn offer_media(&self, req: &MediaOffer) -> Result<MediaStatus, ClientError> {
        ApiClient::offer_media(self, req)
    }

    fn send_chunk(&self, req: &MediaChunk) -> Result<MediaStatus, ClientError> {
        ApiClient::send_chunk(self, req)
    }
}

/// Errors of a sync.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Where a sync is, for progress display.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// `done` of `total` documents pushed, and the change bytes they carried.
    Pushing { done: u64, total: u64, bytes: u64 },
    /// Documents and change bytes received so far, and the cursor reached.
    Pulling { docs: u64, bytes: u64, cursor: u64 },
    /// Attachment bytes the server holds of those waiting: `done` of `total`.
    Uploading { done: u64, total: u64 },
}

/// What a sync did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SyncReport {
    pub pushed_docs: u64,
    pub pushed_changes: u64,
    /// Bytes of the changes in acknowledged pushes.
    pub pushed_bytes: u64,
    pub duplicate_changes: u64,
    /// Documents the server refused, with its reason; they stay on the device.
    pub rejected: Vec<(Uuid, String)>,
    pub pulled_docs: u64,
    /// Bytes of the changes pulled.
    pub pulled_bytes: u64,
    /// Pulled documents whose changes could not be read, with the reason; they were set aside
    /// and the rest of the sync went on.
    pub unreadable: Vec<(Uuid, String)>,
    pub surveys_updated: u64,
    /// The survey versions that arrived.
    pub surveys_arrived: Vec<crate::store::SurveyArrival>,
    /// Responses that had no conflicting answers before this sync and have some now.
    pub new_conflicts: Vec<Uuid>,
    pub pages: u64,
    pub cursor: u64,
    /// Responses erased on the server (a respondent's right to erasure, or retention): this
    /// device's copies and waiting edits were deleted.
    pub erased: Vec<Uuid>,
    /// Attachments the server now holds whole, and the bytes sent for them.
    pub media_uploaded: u64,
    pub media_bytes_sent: u64,
    /// Attachments the server refused for good, with its reason; they stay on the device.
    pub media_refused: Vec<(String, String)>,
    /// Responses pushed again because the server was restored from a backup (it may have
    /// lacked what it had acknowledged).
    pub requeued: u64,
}

/// The request for one push batch.
pub fn plan_push(batch: &[OutboxDoc]) -> PushRequest {
    PushRequest {
        protocol: PROTOCOL_VERSION,
        docs: batch
            .iter()
            .map(|d| DocChanges {
                doc_id: d.doc_id,
                kind: DocKind::Response,
                survey_id: d.survey_id,
                survey_version: d.survey_version,
                changes: d.changes.clone(),
            })
            .collect(),
    }
}

/// Push everything waiting, then pull everything new.
pub fn sync(
    store: &mut Store,
    transport: &(dyn Transport + Sync),
    progress: &mut dyn FnMut(Progress),
) -> Result<SyncReport, SyncError> {
    let mut report = SyncReport::default();
    push_all(store, transport, progress, &mut report)?;
    // Responses first: each is acknowledged without waiting for its files.
    upload_media(store, transport, progress, &mut report)?;
    pull_all(store, transport, progress, &mut report)?;
    if report.requeued > 0 {
        // The server was restored from a backup and may lack what it acknowledged since:
        // everything held here was queued again, and goes now.
        push_all(store, transport, progress, &mut report)?;
        upload_media(store, transport, progress, &mut report)?;
    }
    store.record_sync()?;
    Ok(report)
}

/// Only pull (surveys and others' changes), pushing nothing: used to fetch a survey the device
/// lacks before an import or an interview.
pub fn pull(
    store: &mut Store,
    transport: &dyn Transport,
    progress: &mut dyn FnMut(Progress),
) -> Result<SyncReport, SyncError> {
    let mut report = SyncReport::default();
    pull_all(store, transport, progress, &mut report)?;
    Ok(report)
}

fn push_all(
    store: &mut Store,
    transport: &(dyn Transport + Sync),
    progress: &mut dyn FnMut(Progress),
    report: &mut SyncReport,
) -> Result<(), SyncError> {
    // Refusals that may have lifted (a survey reopened or assigned) are tried again.
    store.retry_refused()?;
    // Count what waits only when something does: a sync with nothing to push stays cheap.
    let mut total = None;
    let mut done = 0u64;
    // The outbox position handed out so far: the next batch starts after it.
    let mut after = 0i64;
    // One batch on the wire while the next is read and decrypted: client and server work at
    // the same time instead of taking turns.
    std::thread::scope(|scope| {
        let mut in_flight: Option<(Vec<OutboxDoc>, std::thread::ScopedJoinHandle<'_, _>)> = None;
        loop {
            let next = store.outbox_batch_after(after, PUSH_DOCS, PUSH_BYTES)?;
            if let Some((batch, handle)) = in_flight.take() {
                let result = handle.join().unwrap_or_else(|_| {
                    Err(ClientError::Protocol("the push thread stopped".into()))
                });
                let acknowledged = result.is_ok();
                let rescan = settle(store, &batch, result, report, &mut done)?;
                if acknowledged {
                    report.pushed_bytes += change_bytes(&batch);
                }
                progress(Progress::Pushing {
                    done,
                    total: total.unwrap_or(done),
                    bytes: report.pushed_bytes,
                });
                // The server refused the whole batch for one document (the others are still
                // waiting), or a document had more changes than one push carries (the rest
                // wait behind what was just acknowledged): look again from the start.
                let rest_waits = acknowledged && store.partly_acknowledged(&batch)?;
                if rescan || rest_waits {
                    after = 0;
                    continue;
                }
            }
            let Some(last) = next.last() else {
                return Ok(());
            };
            after = last.position;
            let total = match total {
                Some(t) => t,
                None => *total.insert(store.status_report()?.pending_responses),
            };
            progress(Progress::Pushing {
                done,
                total,
                bytes: report.pushed_bytes,
            });
            let request = plan_push(&next);
            let handle = scope.spawn(move || transport.push(&request));
            in_flight = Some((next, handle));
        }
    })
}

/// The bytes of the changes a batch carries.
fn change_bytes(batch: &[OutboxDoc]) -> u64 {
    batch
        .iter()
        .flat_map(|d| &d.changes)
        .map(|c| c.len() as u64)
        .sum()
}

/// Record the answer to one pushed batch. Returns whether the outbox must be scanned again
/// from the start (the batch was refused whole because of one malformed document).
fn settle(
    store: &mut Store,
    batch: &[OutboxDoc],
    result: Result<PushResponse, ClientError>,
    report: &mut SyncReport,
    done: &mut u64,
) -> Result<bool, SyncError> {
    match result {
        Ok(response) => {
            for r in &response.results {
                match &r.outcome {
                    PushOutcome::Stored { new, duplicate } => {
                        report.pushed_changes += u64::from(*new);
                        report.duplicate_changes += u64::from(*duplicate);
                    }
                    PushOutcome::Rejected {
                        code: ErrorCode::Erased,
                        ..
                    } => {}
                    PushOutcome::Rejected { message, .. } => {
                        report.rejected.push((r.doc_id, message.clone()));
                    }
                    // A newer server's outcome: not acknowledged, so pushed again next time.
                    PushOutcome::Unknown => {}
                }
            }
            let ack = store.acknowledge(batch, &response.results)?;
            let (stored, rejected) = (ack.stored, ack.rejected + ack.erased.len() as u64);
            report.erased.extend(ack.erased);
            report.pushed_docs += stored;
            *done += stored + rejected;
            if stored + rejected == 0 {
                // The server answered for none of the documents sent: stop rather than send
                // the same batch forever.
                return Err(ClientError::Protocol(
                    "the server acknowledged none of the pushed documents".into(),
                )
                .into());
            }
            Ok(false)
        }
        Err(ClientError::Rejected {
            code: ErrorCode::MalformedDocument,
            doc_id,
            message,
            docs,
            ..
        }) => {
            // The server stored nothing of this batch; set the named documents aside (they
            // stay on the device) and push the rest again. Every named document is set aside
            // at once; a refusal naming no document of this batch cannot be acted on, so the
            // sync stops with it instead of sending the same batch forever.
            let mut named: Vec<(Uuid, String)> =
                docs.into_iter().map(|f| (f.doc_id, f.message)).collect();
            if let Some(id) = doc_id
                && !named.iter().any(|(d, _)| *d == id)
            {
                named.insert(0, (id, message.clone()));
            }
            let in_batch: Vec<(Uuid, String)> = named
                .into_iter()
                .filter(|(id, _)| batch.iter().any(|d| d.doc_id == *id))
                .collect();
            if in_batch.is_empty() {
                return Err(ClientError::Protocol(format!(
                    "the server refused a push as malformed without naming any document in it ({message}); nothing was set aside, sync again later or report this to the operator"
                ))
                .into());
            }
            for (id, why) in in_batch {
                store.reject(&id, &why)?;
                report.rejected.push((id, why));
                *done += 1;
            }
            Ok(true)
        }
        Err(e) => Err(e.into()),
    }
}

fn pull_all(
    store: &mut Store,
    transport: &dyn Transport,
    progress: &mut dyn FnMut(Progress),
    report: &mut SyncReport,
) -> Result<(), SyncError> {
    let request = |cursor: u64, known_surveys, epoch: Option<String>| PullRequest {
        protocol: PROTOCOL_VERSION,
        cursor,
        limit: PULL_LIMIT,
        known_surveys,
        epoch,
    };
    let mut page = transport.pull(&request(
        store.cursor()?,
        store.known_surveys()?,
        store.epoch()?,
    ))?;
    loop {
        // The next page is asked for while this one is applied, so the server reads and the
        // device writes at the same time. Not past a page that brings surveys: the next
        // request names the surveys this device then holds. The cursor only moves when a
        // page is applied, so a failure anywhere resumes from the last page stored.
        let prefetch = page.more && page.surveys.is_empty();
        let known = if prefetch {
            Some(store.known_surveys()?)
        } else {
            None
        };
        let (applied, next) = std::thread::scope(|scope| {
            let next = known.map(|known| {
                let req = request(page.cursor, known, page.epoch.clone());
                scope.spawn(move || transport.pull(&req))
            });
            let applied = store.apply_pull(&page);
            let next = next.map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(ClientError::Protocol(
                        "the thread asking for the next page panicked".into(),
                    ))
                })
            });
            (applied, next)
        });
        let applied = applied?;
        report.unreadable.extend(applied.unreadable);
        report.rejected.extend(applied.refused);
        report.erased.extend(applied.erased);
        report.surveys_arrived.extend(applied.surveys);
        report.new_conflicts.extend(applied.new_conflicts);
        report.requeued += applied.requeued;
        report.pages += 1;
        report.pulled_docs += applied.changed as u64;
        report.pulled_bytes += page
            .docs
            .iter()
            .flat_map(|d| &d.changes)
            .map(|c| c.len() as u64)
            .sum::<u64>();
        report.surveys_updated += page.surveys.len() as u64;
        report.cursor = page.cursor;
        progress(Progress::Pulling {
            docs: report.pulled_docs,
            bytes: report.pulled_bytes,
            cursor: page.cursor,
        });
        if !page.more {
            return Ok(());
        }
        page = match next {
            Some(next) => next?,
            None => transport.pull(&request(
                store.cursor()?,
                store.known_surveys()?,
                store.epoch()?,
            ))?,
        };
    }
}

/// Upload every attachment waiting, each from the first chunk the server lacks. A file the
/// server refuses for good is set aside with the reason; one whose response the server does
/// not have (yet) waits for the next sync; a broken connection ends the sync, and the next
/// one resumes where the server's count stands.
fn upload_media(
    store: &mut Store,
    transport: &dyn Transport,
    progress: &mut dyn FnMut(Progress),
    report: &mut SyncReport,
) -> Result<(), SyncError> {
    store.sweep_unlinked_media()?;
    let waiting = store.media_waiting()?;
    if waiting.is_empty() {
        return Ok(());
    }
    let total: u64 = waiting.iter().map(|m| m.size).sum();
    let mut done = 0u64;
    for m in waiting {
        let offer = MediaOffer {
            protocol: PROTOCOL_VERSION,
            doc_id: m.doc_id,
            name: m.name.clone(),
            question: m.question.clone(),
            media_type: m.media_type.clone(),
            size: m.size,
            sha256: ByteBuf::from(m.sha256.clone()),
        };
        let held = |s: &MediaStatus| (u64::from(s.received) * u64::from(s.chunk_size)).min(m.size);
        // A conflict at the offer (the response holds another file of this name) is for good.
        let offered = transport.offer_media(&offer);
        let mut status = match refusal(offered, store, &m.name, report, Refusal::ConflictFinal)? {
            Some(status) => status,
            None => {
                done += m.size;
                continue;
            }
        };
        store.media_progress(&m.name, status.received, status.complete)?;
        progress(Progress::Uploading {
            done: done + held(&status),
            total,
        });
        // A chunk answered "out of order" (another upload of the same file moved on) is
        // followed by the server's count; a few in a row mean something else is wrong.
        let mut out_of_order = 0;
        while !status.complete {
            let index = status.received;
            let bytes = store.media_chunk(&m.name, index)?;
            let chunk = MediaChunk {
                protocol: PROTOCOL_VERSION,
                doc_id: m.doc_id,
                name: m.name.clone(),
                index,
                sha256: ByteBuf::from(
                    ring::digest::digest(&ring::digest::SHA256, &bytes)
                        .as_ref()
                        .to_vec(),
                ),
                bytes: ByteBuf::from(bytes),
            };
            let sent = chunk.bytes.len() as u64;
            let answer = match transport.send_chunk(&chunk) {
                Err(ClientError::Rejected {
                    code: ErrorCode::Conflict,
                    ..
                }) if out_of_order < 3 => {
                    out_of_order += 1;
                    transport.offer_media(&offer)
                }
                other => {
                    report.media_bytes_sent += sent;
                    other
                }
            };
            status = match refusal(answer, store, &m.name, report, Refusal::ConflictRetried)? {
                Some(s) => s,
                None => break,
            };
            // What the server holds is what an upload resumes from; the device's own count
            // is for `status` only, so it is written every few chunks, not at each (a
            // durable write per chunk would halve the upload's speed).
            if status.complete || status.received % PROGRESS_EVERY == 0 {
                store.media_progress(&m.name, status.received, status.complete)?;
            }
            progress(Progress::Uploading {
                done: done + held(&status),
                total,
            });
        }
        if status.complete {
            report.media_uploaded += 1;
        }
        done += m.size;
    }
    Ok(())
}

/// Whether a conflict refuses a file for good (at its offer: the name holds another file) or
/// ends the sync to be retried (chunks that kept arriving out of order).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Refusal {
    ConflictFinal,
    ConflictRetried,
}

/// The server's answer about an attachment, or `None` when it was refused: for good (set
/// aside, reported), or because its response is not on the server (tried again next sync).
fn refusal(
    answer: Result<MediaStatus, ClientError>,
    store: &Store,
    name: &str,
    report: &mut SyncReport,
    conflict: Refusal,
) -> Result<Option<MediaStatus>, SyncError> {
    match answer {
        Ok(status) => Ok(Some(status)),
        Err(ClientError::NotFound { .. }) => Ok(None),
        Err(ClientError::Rejected {
            code: ErrorCode::Erased | ErrorCode::Restricted | ErrorCode::NotFound,
            ..
        }) => Ok(None),
        Err(ClientError::Rejected { code, message, .. })
            if matches!(
                code,
                ErrorCode::TooLarge | ErrorCode::Invalid | ErrorCode::BadRequest
            ) || (matches!(code, ErrorCode::Conflict) && conflict == Refusal::ConflictFinal) =>
        {
            store.media_refused(name, &message)?;
            report.media_refused.push((name.to_owned(), message));
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}
