//! The sync routes: batched push and paged pull of Automerge changes, CBOR both ways.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use axum::extract::State;
use fieldsync_protocol::wire::{
    DocChanges, PROTOCOL_VERSION, PullRequest, PullResponse, PushRequest, PushResponse,
};

use super::Cbor;
use crate::auth::Caller;
use crate::error::{ApiError, CborError};
use crate::storage::{PullQuery, VerifiedDoc};
use crate::worker::Verdict;
use crate::{AppState, service};

/// Most documents in one push.
pub const MAX_PUSH_DOCS: usize = 5_000;
/// Most changes in one push, and of one document in one push: with the item limit of the
/// push decoder, what bounds the memory a push takes beyond its bytes.
pub const MAX_PUSH_CHANGES: usize = 100_000;
pub const MAX_DOC_CHANGES: usize = fieldsync_protocol::wire::MAX_DOC_CHANGES_PER_PUSH;
/// Most changes in one pull page.
pub const MAX_PULL_LIMIT: u32 = 5_000;
/// Most change bytes in one pull page, and the least a page may be cut to under memory
/// pressure (a single larger change still goes out whole).
const MAX_PAGE_BYTES: usize = 8 * 1024 * 1024;
const MIN_PAGE_BYTES: usize = 256 * 1024;

/// `POST /v1/sync/push`: store a batch of changes; answered after the durable commit.
pub async fn push(
    State(state): State<AppState>,
    caller: Caller,
    Cbor(req): Cbor<PushRequest>,
) -> Result<Cbor<PushResponse>, CborError> {
    service::sync::may_push(&caller)?;
    let _in_flight = state.pushes.enter();
    if req.docs.len() > MAX_PUSH_DOCS {
        return Err(ApiError::BadRequest(format!(
            "a push holds at most {MAX_PUSH_DOCS} documents; this one has {}",
            req.docs.len()
        ))
        .into());
    }
    let total: usize = req.docs.iter().map(|d| d.changes.len()).sum();
    if total > MAX_PUSH_CHANGES {
        return Err(ApiError::BadRequest(format!(
            "a push holds at most {MAX_PUSH_CHANGES} changes; this one has {total}; send smaller batches"
        ))
        .into());
    }
    let mut seen = HashSet::with_capacity(req.docs.len());
    for d in &req.docs {
        if d.changes.len() > MAX_DOC_CHANGES {
            return Err(ApiError::BadRequest(format!(
                "document {} has {} changes in one push; at most {MAX_DOC_CHANGES} are accepted per document and push",
                d.doc_id,
                d.changes.len()
            ))
            .into());
        }
        if !seen.insert(d.doc_id) {
            return Err(ApiError::BadRequest(format!(
                "document {} appears twice in one push; send each document once per batch",
                d.doc_id
            ))
            .into());
        }
        if d.changes.is_empty() {
            return Err(ApiError::BadRequest(format!(
                "document {} has no changes; leave it out of the push",
                d.doc_id
            ))
            .into());
        }
    }
    let req_protocol = req.protocol;
    let verified = verify(&state, &caller, req.docs).await?;
    let (push_docs, push_bytes) = (
        verified.len(),
        verified
            .iter()
            .flat_map(|v| &v.doc.changes)
            .map(|c| c.len())
            .sum::<usize>(),
    );
    let pushed = service::sync::push(&state.db, caller, verified).await?;
    metrics::histogram!(crate::metrics::PUSH_DOCUMENTS).record(push_docs as f64);
    metrics::histogram!(crate::metrics::PUSH_BYTES).record(push_bytes as f64);
    if pushed.stored_any {
        state.materialize.notify_one();
    }
    Ok(Cbor(PushResponse {
        protocol: req_protocol.min(PROTOCOL_VERSION),
        results: pushed.results,
    }))
}

/// Counts one request in a gauge for as long as it lives: pulls waiting for checks (the
/// materialiser stops giving way to pushes while there are any).
struct Counted(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl Counted {
    fn enter(gauge: &std::sync::Arc<std::sync::atomic::AtomicUsize>) -> Counted {
        gauge.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Counted(gauge.clone())
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Longest a pull waits for changes others pushed to be checked before it answers without
/// them (they come with a later pull).
const PULL_SETTLE: Duration = Duration::from_secs(3);

/// `POST /v1/sync/pull`: one page of checked changes after the cursor, plus survey updates.
pub async fn pull(
    State(state): State<AppState>,
    caller: Caller,
    Cbor(req): Cbor<PullRequest>,
) -> Result<Cbor<PullResponse>, CborError> {
    service::sync::may_pull(&caller)?;
    let limit = req.limit.clamp(1, MAX_PULL_LIMIT);
    wait_for_checks(&state, &caller).await?;
    // A page's memory comes out of the in-flight budget like a request body: a page holds its
    // plaintext, its sealed rows and its encoding at once, about three times its bytes. Under
    // pressure pages get smaller instead of being refused.
    let (_budget, page_bytes) =
        super::reserve_up_to(&state, MAX_PAGE_BYTES * 3, MIN_PAGE_BYTES * 3)
            .await
            .ok_or_else(|| {
                ApiError::Unavailable(
                "the server is holding as much data in memory as it may; retry in a few seconds"
                    .into(),
            )
            })?;
    let page_bytes = page_bytes / 3;
    let protocol = req.protocol.min(PROTOCOL_VERSION);
    let mut response = service::sync::pull(
        &state.db,
        PullQuery {
            caller,
            cursor: req.cursor,
            limit,
            max_bytes: page_bytes,
            known_surveys: req.known_surveys,
        },
        req.epoch.as_deref(),
        &state.incarnation,
    )
    .await?;
    // A reader below version 3 would skip an erasure or restriction notice and move its
    // cursor past it, keeping a copy it must delete: it may not pull past one.
    if protocol < 3 && !response.notices.is_empty() {
        return Err(ApiError::UnsupportedProtocol(
            "responses this device may hold were erased or restricted at a respondent's request, and this version of fieldsync cannot apply that; upgrade fieldsync, then sync again".into(),
        )
        .into());
    }
    let changes = response.docs.iter().flat_map(|d| &d.changes);
    metrics::histogram!(crate::metrics::PULL_CHANGES).record(changes.clone().count() as f64);
    metrics::histogram!(crate::metrics::PULL_BYTES)
        .record(changes.map(|c| c.len()).sum::<usize>() as f64);
    // Answer in the version the client spoke; fields it does not know it ignores.
    response.protocol = protocol;
    Ok(Cbor(response))
}

/// Changes are relayed only once the sandbox has checked them (see `storage::state`).
/// A pull that could receive changes still being checked waits a moment for the materialiser,
/// which stops giving way to pushes while anyone waits, so that a pull right after another
/// client's push sees it.
async fn wait_for_checks(state: &AppState, caller: &Caller) -> Result<(), ApiError> {
    let started = Instant::now();
    let mut waiting: Option<Counted> = None;
    loop {
        let unchecked = state.db.unchecked_for(caller).await?;
        if !unchecked || started.elapsed() >= PULL_SETTLE {
            return Ok(());
        }
        waiting.get_or_insert_with(|| Counted::enter(&state.pulls_waiting));
        state.materialize.notify_one();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Parse pushed documents in the sandbox (the server process never touches Automerge bytes it
/// did not write): each document's change hashes and the map keys its changes write, or a
/// refusal of the whole batch naming the documents that do not parse.
pub(crate) async fn verify(
    state: &AppState,
    caller: &Caller,
    docs: Vec<DocChanges>,
) -> Result<Vec<VerifiedDoc>, ApiError> {
    // Parse in the sandbox: the server process never touches client Automerge bytes.
    let mut docs = docs;
    // Lend the change bytes to the verifier without copying them, then put them back.
    let changes: Vec<_> = docs
        .iter_mut()
        .map(|d| std::mem::take(&mut d.changes))
        .collect();
    // What an edit by a member touched is audited (a device edits only its own responses).
    let keys = caller.role != fieldsync_protocol::api::Role::Enumerator;
    let verdicts = state
        .workers
        .verify(&caller.principal_id, &changes, keys)
        .await;
    for (doc, c) in docs.iter_mut().zip(changes) {
        doc.changes = c;
    }
    let verdicts = verdicts.map_err(ApiError::from)?;
    let mut malformed = Vec::new();
    let mut verified = Vec::with_capacity(docs.len());
    for (doc, verdict) in docs.into_iter().zip(verdicts) {
        match verdict {
            Verdict::Ok { hashes, keys } => verified.push(VerifiedDoc {
                doc,
                hashes,
                touched: keys,
            }),
            Verdict::Malformed(why) => malformed.push((doc.doc_id, why)),
        }
    }
    if let Some((doc_id, why)) = malformed.first() {
        // Nothing of the batch is stored: the client drops or repairs the named documents
        // and pushes the rest again.
        tracing::info!(doc = %doc_id, count = malformed.len(), "push refused: malformed document data");
        return Err(ApiError::MalformedDocument {
            doc_id: *doc_id,
            message: format!(
                "{why}; nothing in this push was stored, push the other documents again without it"
            ),
            docs: malformed.clone(),
        });
    }
    Ok(verified)
}
