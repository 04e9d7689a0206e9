//! The background materialiser: right after a push commits, the changed responses are loaded
//! in the sandbox, validated against their survey version, and their summary (answers,
//! validation errors, conflicts) is written to the encrypted index that coordinators read.
//! Keeping this off the push path is what lets a device's push be acknowledged at the speed of
//! a durable insert, while "validated on arrival" still holds moments later.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::AppState;
use crate::storage::{DocMaterial, Queued, Settlement, StorageError};
use crate::worker::MaterializeJob;

/// Longest the materialiser keeps giving way to pushes before it takes a round anyway.
const MAX_DEFER: Duration = Duration::from_secs(5);
/// Documents taken from the queue per round.
const BATCH: u32 = 512;
/// Most documents in one worker request.
const CHUNK: usize = 128;

/// Run until `stop` is notified.
///
/// Acknowledging pushes comes first: while pushes are being handled the materialiser waits
/// (briefly, and never longer than [`MAX_DEFER`] in a row), so on a small machine a burst of
/// pushes is not slowed by validating what it just stored; it catches up right after.
pub async fn run(state: AppState, stop: Arc<Notify>) {
    let mut deferred_since: Option<Instant> = None;
    loop {
        if state.pushes_in_flight.load(Ordering::Relaxed) > 0
            && state.pulls_waiting.load(Ordering::Relaxed) == 0
        {
            let since = *deferred_since.get_or_insert_with(Instant::now);
            if since.elapsed() < MAX_DEFER {
                tokio::select! {
                    _ = stop.notified() => return,
                    _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                }
                continue;
            }
        }
        deferred_since = None;
        let worked = match drain_once(&state).await {
            Ok(n) => n > 0,
            Err(e) => {
                tracing::error!(error = %e, "materialiser round failed");
                false
            }
        };
        if worked {
            // More may be waiting; yield so requests keep priority, then go again.
            tokio::task::yield_now().await;
            continue;
        }
        tokio::select! {
            _ = stop.notified() => return,
            _ = state.materialize.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
        }
    }
}

/// Materialise one batch from the queue; returns how many documents were settled (a document
/// left queued because no worker was available does not count). The batch is read in one
/// go, sent to the workers in chunks (one chunk per worker at a time), and its summaries are
/// written in one transaction (one durable commit).
pub async fn drain_once(state: &AppState) -> Result<usize, StorageError> {
    let loaded = state.db.queued_material(BATCH).await?;
    if loaded.is_empty() {
        return Ok(0);
    }
    let today = time::OffsetDateTime::now_utc().date();
    let today = format!(
        "{:04}-{:02}-{:02}",
        today.year(),
        u8::from(today.month()),
        today.day()
    );
    let mut outcomes = Vec::with_capacity(loaded.len());
    let mut work = Vec::new();
    for (item, material) in loaded {
        match material {
            None => outcomes.push(Settlement::Gone(item.doc_id)),
            Some(m) => work.push((item, m)),
        }
    }
    // One chunk per worker in flight; each chunk is one request to one worker process.
    let chunk = work.len().div_ceil(state.workers.size()).clamp(1, CHUNK);
    let mut tasks = tokio::task::JoinSet::new();
    let mut rest = work;
    while !rest.is_empty() {
        let tail = rest.split_off(chunk.min(rest.len()));
        let part = std::mem::replace(&mut rest, tail);
        let st = state.clone();
        let today = today.clone();
        tasks.spawn(async move { materialize_chunk(&st, part, &today).await });
    }
    while let Some(r) = tasks.join_next().await {
        outcomes.extend(r.map_err(|_| StorageError::TaskFailed)?);
    }
    let processed = outcomes.len();
    if processed == 0 {
        return Ok(0);
    }
    state.db.settle(outcomes).await?;
    Ok(processed)
}

/// Materialise a chunk of documents in one worker request. When the pool is unavailable the
/// chunk yields no outcomes and stays queued for a later round.
async fn materialize_chunk(
    state: &AppState,
    mut work: Vec<(Queued, DocMaterial)>,
    today: &str,
) -> Vec<Settlement> {
    // The changes move into the jobs; settling needs only the material's ids and sequence.
    let mut jobs = Vec::with_capacity(work.len());
    let mut unusable = Vec::new();
    for (i, (item, m)) in work.iter_mut().enumerate() {
        let (Ok(doc_id), Ok(survey_id)) = (
            uuid::Uuid::parse_str(&item.doc_id),
            uuid::Uuid::parse_str(&m.survey_id),
        ) else {
            unusable.push(i);
            continue;
        };
        jobs.push(MaterializeJob {
            accepted: std::mem::take(&mut m.accepted),
            pending: m
                .pending
                .iter_mut()
                .map(|p| std::mem::take(&mut p.bytes))
                .collect(),
            doc_id,
            survey_id,
            survey_version: m.survey_version,
            definition: m.definition.clone(),
            today: today.to_owned(),
        });
    }
    if !unusable.is_empty() {
        // Ids are written by this server as UUIDs; anything else is a corrupt row, left queued
        // and logged rather than settled wrongly.
        tracing::error!(
            docs = unusable.len(),
            "queued documents with unreadable ids"
        );
        let mut i = 0;
        work.retain(|_| {
            let keep = !unusable.contains(&i);
            i += 1;
            keep
        });
    }
    let results = match state.workers.materialize(&jobs).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, docs = work.len(), "materialiser could not reach a worker");
            return Vec::new();
        }
    };
    drop(jobs);
    work.into_iter()
        .zip(results)
        .map(|((item, material), outcome)| {
            if let Err(reason) = &outcome {
                tracing::warn!(doc = %item.doc_id, %reason, "response could not be materialised");
            }
            Settlement::Done(Box::new((item, material, outcome)))
        })
        .collect()
}
