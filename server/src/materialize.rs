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
/// Rounds overlap: while the workers check one round, the next is read (a reader connection,
/// leaving out the documents being checked) and the one before is written (the writer). The
/// reads and the writes never overlap each other: a reader always holding a snapshot would
/// keep every checkpoint from completing, and the write-ahead log would grow without end.
pub async fn run(state: AppState, stop: Arc<Notify>) {
    let mut deferred_since: Option<Instant> = None;
    let mut checking: Option<Checking> = None;
    // When the queue was last found empty: nothing waiting has waited longer than this.
    let mut last_empty = Instant::now();
    let lag = metrics::gauge!(crate::metrics::MATERIALIZER_LAG);
    loop {
        lag.set(last_empty.elapsed().as_secs_f64());
        if state.pushes.busy() && state.pulls_waiting.load(Ordering::Relaxed) == 0 {
            let since = *deferred_since.get_or_insert_with(Instant::now);
            if since.elapsed() < MAX_DEFER {
                // What was checked before the pushes came is written; nothing new starts.
                if let Some(round) = checking.take() {
                    round.settle(&state).await;
                    continue;
                }
                tokio::select! {
                    _ = stop.notified() => return,
                    _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                }
                continue;
            }
        }
        deferred_since = None;
        let none = HashSet::new();
        let busy = checking.as_ref().map_or(&none, |c| &c.docs);
        let next = match read_round(&state, busy).await {
            Ok(next) => next,
            Err(e) => {
                tracing::error!(error = %e, "materialiser could not read its queue");
                None
            }
        };
        let previous = checking.take();
        checking = next.map(|round| Checking::start(&state, round));
        let Some(previous) = previous else {
            if checking.is_some() {
                continue;
            }
            last_empty = Instant::now();
            lag.set(0.0);
            tokio::select! {
                _ = stop.notified() => return,
                _ = state.materialize.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            }
            continue;
        };
        // The last round is written while the workers check this one.
        previous.settle(&state).await;
        // More may be waiting; yield so requests keep priority, then go again.
        tokio::task::yield_now().await;
    }
}

/// A round read from the queue: documents gone since they were queued, and the rest to check.
struct Round {
    gone: Vec<Settlement>,
    work: Vec<(Queued, DocMaterial)>,
}

/// A round in the workers.
struct Checking {
    docs: HashSet<String>,
    task: tokio::task::JoinHandle<Vec<Settlement>>,
}

impl Checking {
    fn start(state: &AppState, round: Round) -> Checking {
        let docs = round.work.iter().map(|(q, _)| q.doc_id.clone()).collect();
        let state = state.clone();
        Checking {
            docs,
            task: tokio::spawn(async move { check_round(&state, round).await }),
        }
    }

    /// Wait for the workers, then write what they found in one transaction.
    async fn settle(self, state: &AppState) {
        match self.task.await {
            Ok(outcomes) if !outcomes.is_empty() => {
                let n = outcomes.len() as u64;
                if let Err(e) = state.db.settle(outcomes).await {
                    // Its documents stay queued and are checked again.
                    tracing::error!(error = %e, "materialiser could not record a round");
                } else {
                    metrics::counter!(crate::metrics::MATERIALIZED).increment(n);
                }
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "materialiser round stopped"),
        }
    }
}

/// Materialise one batch from the queue; returns how many documents were settled (a document
/// left queued because no worker was available does not count). The batch is read in one
/// go, sent to the workers in chunks (one chunk per worker at a time), and its summaries are
/// written in one transaction (one durable commit).
pub async fn drain_once(state: &AppState) -> Result<usize, StorageError> {
    let Some(round) = read_round(state, &HashSet::new()).await? else {
        return Ok(0);
    };
    let outcomes = check_round(state, round).await;
    let processed = outcomes.len();
    if processed > 0 {
        state.db.settle(outcomes).await?;
    }
    Ok(processed)
}

/// The next batch from the queue, none of the `busy` documents; `None` when nothing waits.
async fn read_round(
    state: &AppState,
    busy: &HashSet<String>,
) -> Result<Option<Round>, StorageError> {
    let loaded = state.db.queued_material(BATCH, busy).await?;
    if loaded.is_empty() {
        return Ok(None);
    }
    let mut round = Round {
        gone: Vec::new(),
        work: Vec::with_capacity(loaded.len()),
    };
    for (item, material) in loaded {
        match material {
            None => round.gone.push(Settlement::Gone(item.doc_id)),
            Some(m) => round.work.push((item, m)),
        }
    }
    Ok(Some(round))
}

/// Check a round in the workers: the outcomes to settle (a chunk no worker could take yields
/// none, and stays queued).
async fn check_round(state: &AppState, round: Round) -> Vec<Settlement> {
    let today = time::OffsetDateTime::now_utc().date();
    let today = format!(
        "{:04}-{:02}-{:02}",
        today.year(),
        u8::from(today.month()),
        today.day()
    );
    let Round {
        gone: mut outcomes,
        work,
    } = round;
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
        match r {
            Ok(settled) => outcomes.extend(settled),
            // Its documents stay queued and are checked again.
            Err(e) => tracing::error!(error = %e, "a materialiser chunk stopped"),
        }
    }
    outcomes
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
