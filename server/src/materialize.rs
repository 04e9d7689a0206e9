//! The background materialiser: right after a push commits, the changed responses are loaded
//! in the sandbox, validated against their survey version, and their summary (answers,
//! validation errors, conflicts) is written to the encrypted index that coordinators read.
//! Keeping this off the push path is what lets a device's push be acknowledged at the speed of
//! a durable insert, while "validated on arrival" still holds moments later.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
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
/// How long after a push ends the materialiser still gives way: a device sends its next batch
/// as soon as the previous one is acknowledged, and a round started in that gap would take
/// the workers from it.
const PUSH_GAP: Duration = Duration::from_millis(100);

/// Pushes being handled, and when the last one ended.
#[derive(Clone, Debug)]
pub struct PushActivity {
    in_flight: Arc<AtomicUsize>,
    /// Milliseconds after `epoch` at which the last push ended.
    last_end: Arc<AtomicU64>,
    epoch: Instant,
}

impl Default for PushActivity {
    fn default() -> Self {
        PushActivity {
            in_flight: Arc::default(),
            last_end: Arc::default(),
            epoch: Instant::now(),
        }
    }
}

impl PushActivity {
    /// Count a push for as long as the guard lives.
    pub fn enter(&self) -> PushGuard {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        PushGuard(self.clone())
    }

    /// Whether a push is being handled or one ended moments ago.
    pub fn busy(&self) -> bool {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return true;
        }
        let last = self.last_end.load(Ordering::Relaxed);
        last > 0 && self.epoch.elapsed().as_millis() < u128::from(last) + PUSH_GAP.as_millis()
    }
}

/// One push being handled (see [`PushActivity::enter`]).
#[derive(Debug)]
pub struct PushGuard(PushActivity);

impl Drop for PushGuard {
    fn drop(&mut self) {
        let now = self.0.epoch.elapsed().as_millis().max(1) as u64;
        self.0.last_end.store(now, Ordering::Relaxed);
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Run until `stop` is notified.
///
/// Acknowledging pushes comes first: while pushes are being handled, or one ended less than
/// [`PUSH_GAP`] ago, the materialiser waits (briefly, and never longer than [`MAX_DEFER`] in a
/// row), so on a small machine a burst of pushes is not slowed by validating what it just
/// stored; it catches up right after.
///
/// Rounds overlap: while one round's summaries are written (the writer thread), the next is
/// read (a reader connection) and checked (the workers), its documents kept apart from the
/// round being written; round after round the three work at once instead of taking turns.
pub async fn run(state: AppState, stop: Arc<Notify>) {
    let mut deferred_since: Option<Instant> = None;
    let mut settling: Option<Settling> = None;
    loop {
        if state.pushes.busy() && state.pulls_waiting.load(Ordering::Relaxed) == 0 {
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
        let busy = settling
            .as_ref()
            .map(|s| s.docs.clone())
            .unwrap_or_default();
        let checked = match check_round(&state, &busy).await {
            Ok(checked) => checked,
            Err(e) => {
                tracing::error!(error = %e, "materialiser round failed");
                Vec::new()
            }
        };
        // Rounds commit in order: the previous one first.
        if let Some(previous) = settling.take() {
            previous.finish().await;
        }
        if !checked.is_empty() {
            settling = Some(Settling::start(&state, checked));
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

/// A round whose outcomes are being written.
struct Settling {
    docs: HashSet<String>,
    task: tokio::task::JoinHandle<Result<(), StorageError>>,
}

impl Settling {
    fn start(state: &AppState, outcomes: Vec<Settlement>) -> Settling {
        let docs = outcomes
            .iter()
            .map(|s| match s {
                Settlement::Gone(doc_id) => doc_id.clone(),
                Settlement::Done(done) => done.0.doc_id.clone(),
            })
            .collect();
        let db = state.db.clone();
        Settling {
            docs,
            task: tokio::spawn(async move { db.settle(outcomes).await }),
        }
    }

    async fn finish(self) {
        match self.task.await {
            Ok(Ok(())) => {}
            // Its documents stay queued and are checked again.
            Ok(Err(e)) => tracing::error!(error = %e, "materialiser could not record a round"),
            Err(e) => tracing::error!(error = %e, "materialiser round stopped"),
        }
    }
}

/// Materialise one batch from the queue; returns how many documents were settled (a document
/// left queued because no worker was available does not count). The batch is read in one
/// go, sent to the workers in chunks (one chunk per worker at a time), and its summaries are
/// written in one transaction (one durable commit).
pub async fn drain_once(state: &AppState) -> Result<usize, StorageError> {
    let outcomes = check_round(state, &HashSet::new()).await?;
    let processed = outcomes.len();
    if processed > 0 {
        state.db.settle(outcomes).await?;
    }
    Ok(processed)
}

/// Read a batch from the queue (none of the `busy` documents) and check it in the workers:
/// the outcomes to settle.
async fn check_round(
    state: &AppState,
    busy: &HashSet<String>,
) -> Result<Vec<Settlement>, StorageError> {
    let loaded = state.db.queued_material(BATCH, busy).await?;
    if loaded.is_empty() {
        return Ok(Vec::new());
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
    Ok(outcomes)
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
