//! The sandbox for untrusted Automerge bytes. automerge can panic, or allocate gigabytes and
//! abort the process, on a few dozen crafted bytes, and `catch_unwind` cannot stop an
//! allocation failure. So the server process never parses client-supplied Automerge data:
//! it hands it to a small pool of worker processes (this same binary, `fieldsync-server
//! worker`), each with an address-space limit it sets on itself and a per-request time limit
//! the pool enforces by killing it. A worker that dies is replaced by the next request.
//!
//! Workers speak length-prefixed CBOR frames over stdin/stdout ([`protocol`]).
//!
//! When a batch kills a worker, the pool cannot tell which document did it, so it splits the
//! batch in halves and retries each (a crash costs a few milliseconds and log2(batch) retries);
//! a single document that still kills a worker is reported as malformed and the rest proceed.

mod child;
pub mod protocol;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_bytes::ByteBuf;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::Semaphore;

pub use child::run as run_worker;
pub use protocol::{ChangeVerdict, Checked, MaterializeJob, Verdict};
use protocol::{MAX_FRAME, Reply, RequestRef};

/// Bounds on each worker.
#[derive(Clone, Debug)]
pub struct WorkerLimits {
    /// How many workers run at most.
    pub size: usize,
    /// Address-space limit of each worker while it materialises, bytes.
    pub memory_bytes: u64,
    /// Address-space limit while it parses a push, bytes.
    pub check_memory_bytes: u64,
    /// Longest time one request may take before its worker is killed.
    pub timeout: Duration,
    /// Longest time a request waits for a free worker before the server answers 503.
    pub queue_timeout: Duration,
}

/// Longest time a request waits for a free worker before the server answers 503.
pub const QUEUE_TIMEOUT: Duration = Duration::from_secs(30);

impl Default for WorkerLimits {
    /// The limits of `serve` without flags (written once, on its flags).
    fn default() -> Self {
        crate::settings::ServeArgs::defaults("eu-central").worker_limits()
    }
}

/// Failures of the pool itself (not of a document).
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error("all document checkers are busy")]
    Busy,
    #[error(
        "pushes from this caller crashed the document checker {crashes} times in the last minute; wait {wait_secs} seconds, and check what this device sends"
    )]
    Penalized { crashes: u32, wait_secs: u64 },
    #[error("could not start a document checker ({exe}): {source}")]
    Spawn { exe: String, source: std::io::Error },
    #[error("document checker protocol error: {0}")]
    Protocol(String),
}

/// Why one call to a worker failed.
#[derive(Debug)]
enum CallError {
    /// The worker died, timed out or broke the protocol: the input is suspect.
    Died(String),
    Pool(PoolError),
}

struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

/// Inputs of one caller that may kill a checker within [`CRASH_WINDOW`] before that caller's
/// pushes are refused until the window has passed.
const CRASH_LIMIT: u32 = 3;
const CRASH_WINDOW: Duration = Duration::from_secs(60);

/// A pool of sandboxed worker processes.
///
/// Fair to callers: a push's parsing is keyed by its caller, and one caller holds at most one
/// worker at a time, so a device flooding the pool with inputs that take a worker down waits
/// its turn behind everyone else instead of starving them; a caller whose inputs keep killing
/// workers is refused for a while, so the flood costs it, not the pool.
pub struct WorkerPool {
    exe: PathBuf,
    limits: WorkerLimits,
    idle: Mutex<Vec<Worker>>,
    permits: Semaphore,
    per_caller: Mutex<HashMap<String, Arc<Semaphore>>>,
    crashes: Mutex<HashMap<String, (Instant, u32)>>,
}

impl std::fmt::Debug for WorkerPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerPool")
            .field("exe", &self.exe)
            .field("limits", &self.limits)
            .finish()
    }
}

impl WorkerPool {
    /// A pool that starts `exe worker` processes on demand.
    pub fn new(exe: PathBuf, limits: WorkerLimits) -> WorkerPool {
        let permits = Semaphore::new(limits.size.max(1));
        WorkerPool {
            exe,
            limits,
            idle: Mutex::new(Vec::new()),
            permits,
            per_caller: Mutex::new(HashMap::new()),
            crashes: Mutex::new(HashMap::new()),
        }
    }

    /// How many workers run at most.
    pub fn size(&self) -> usize {
        self.limits.size.max(1)
    }

    /// Whether a checker answers: an empty check on an idle worker, or on one started for
    /// it. Every worker busy counts as working.
    pub async fn ready(&self) -> Result<(), String> {
        match self
            .call(RequestRef::Verify {
                docs: &[],
                keys: false,
            })
            .await
        {
            Ok(Reply::Verified(v)) if v.is_empty() => Ok(()),
            Ok(_) => Err("a document checker answered an empty check wrongly".into()),
            Err(CallError::Pool(PoolError::Busy)) => Ok(()),
            Err(CallError::Pool(e)) => Err(e.to_string()),
            Err(CallError::Died(why)) => Err(format!("a document checker died: {why}")),
        }
    }

    /// Parse every change of every document in the sandbox, for `caller`. The outer result
    /// fails only if the pool cannot work at all (or refuses this caller for now); each
    /// document gets its own verdict, in order.
    pub async fn verify(
        &self,
        caller: &str,
        docs: &[Vec<ByteBuf>],
        keys: bool,
    ) -> Result<Vec<Verdict>, PoolError> {
        self.check_penalty(caller)?;
        let _turn = self.caller_turn(caller).await?;
        let mut out = Vec::with_capacity(docs.len());
        // An explicit stack of index ranges still to check, instead of recursion; the first
        // half of a split is pushed last so verdicts come out in request order.
        let mut pending = vec![(0, docs.len())];
        let started = std::time::Instant::now();
        while let Some((start, end)) = pending.pop() {
            let batch = &docs[start..end];
            let n = batch.len();
            if n == 0 {
                continue;
            }
            // A batch that keeps killing or hanging workers must not hold the pool for minutes
            // while it is split: past the budget the push is answered "busy, retry later" (503),
            // which marks nothing, rather than occupying the checkers any longer.
            if started.elapsed() > self.limits.timeout.saturating_mul(2) {
                tracing::warn!(
                    docs = docs.len(),
                    "checking a push took too long; refused as busy"
                );
                return Err(PoolError::Busy);
            }
            match self.call(RequestRef::Verify { docs: batch, keys }).await {
                Ok(Reply::Verified(verdicts)) if verdicts.len() == n => out.extend(verdicts),
                Ok(_) => {
                    return Err(PoolError::Protocol(
                        "worker answered a verify with the wrong reply".into(),
                    ));
                }
                Err(CallError::Pool(e)) => return Err(e),
                Err(CallError::Died(why)) if n == 1 => {
                    tracing::warn!(%why, "a document killed its checker");
                    self.record_crash(caller);
                    out.push(Verdict::Malformed(
                        "its changes crashed the document checker (malformed Automerge data)"
                            .into(),
                    ));
                }
                Err(CallError::Died(why)) => {
                    tracing::warn!(%why, docs = n, "a batch killed its checker; retrying in halves");
                    self.record_crash(caller);
                    self.check_penalty(caller)?;
                    let mid = start + n / 2;
                    pending.push((mid, end));
                    pending.push((start, mid));
                }
            }
        }
        Ok(out)
    }

    /// Check responses' pending changes in the sandbox, load and validate each, and return
    /// what a coordinator sees, one result per job in order. An inner `Err(reason)` means the
    /// document's accepted changes no longer load. A job that kills its worker is found by
    /// splitting the batch, like [`WorkerPool::verify`]; within that one job, its pending
    /// changes are then tried one at a time, so the change that kills the checker is refused
    /// and the others are still accepted.
    pub async fn materialize(
        &self,
        jobs: &[MaterializeJob],
    ) -> Result<Vec<Result<Checked, String>>, PoolError> {
        let mut out = Vec::with_capacity(jobs.len());
        let mut pending = vec![(0, jobs.len())];
        while let Some((start, end)) = pending.pop() {
            let batch = &jobs[start..end];
            let n = batch.len();
            if n == 0 {
                continue;
            }

            match self.call(RequestRef::Materialize(batch)).await {
                Ok(Reply::Materialized(results)) if results.len() == n => out.extend(results),
                Ok(_) => {
                    return Err(PoolError::Protocol(
                        "worker answered a materialize with the wrong reply".into(),
                    ));
                }
                Err(CallError::Pool(e)) => return Err(e),
                Err(CallError::Died(why)) if n == 1 => {
                    tracing::warn!(%why, "a response's changes killed its checker; checking them one by one");
                    out.push(self.materialize_each(&batch[0]).await?);
                }
                Err(CallError::Died(why)) => {
                    tracing::warn!(%why, docs = n, "a materialise batch killed its checker; retrying in halves");
                    let mid = start + n / 2;
                    pending.push((mid, end));
                    pending.push((start, mid));
                }
            }
        }
        Ok(out)
    }

    /// One job whose pending changes killed a checker: try them one at a time on top of what
    /// is accepted so far; the ones that kill it again are refused.
    async fn materialize_each(
        &self,
        job: &MaterializeJob,
    ) -> Result<Result<Checked, String>, PoolError> {
        let mut accepted = job.accepted.clone();
        let mut verdicts = Vec::with_capacity(job.pending.len());
        let mut view = None;
        let mut subjects = Vec::new();
        let mut media = Vec::new();
        for change in &job.pending {
            let single = MaterializeJob {
                accepted: accepted.clone(),
                pending: vec![change.clone()],
                ..job.clone()
            };
            match self
                .call(RequestRef::Materialize(std::slice::from_ref(&single)))
                .await
            {
                Ok(Reply::Materialized(mut results)) if results.len() == 1 => match results.pop() {
                    Some(Ok(checked)) => {
                        let verdict = checked
                            .verdicts
                            .into_iter()
                            .next()
                            .unwrap_or(ChangeVerdict::Waiting);
                        if verdict == ChangeVerdict::Accepted {
                            accepted.push(change.clone());
                        }
                        if checked.view.is_some() {
                            view = checked.view;
                            subjects = checked.subjects;
                            media = checked.media;
                        }
                        verdicts.push(verdict);
                    }
                    Some(Err(why)) => return Ok(Err(why)),
                    None => unreachable_reply()?,
                },
                Ok(_) => unreachable_reply()?,
                Err(CallError::Pool(e)) => return Err(e),
                Err(CallError::Died(why)) => {
                    tracing::warn!(%why, "a change killed its checker; refused");
                    verdicts.push(ChangeVerdict::Refused(
                        "checking it crashed the document checker (malformed Automerge data)"
                            .into(),
                    ));
                }
            }
        }
        if view.is_none() && !accepted.is_empty() {
            // Nothing new was kept: the view is the document as it already was.
            let unchanged = MaterializeJob {
                accepted,
                pending: Vec::new(),
                ..job.clone()
            };
            match self
                .call(RequestRef::Materialize(std::slice::from_ref(&unchanged)))
                .await
            {
                Ok(Reply::Materialized(mut results)) if results.len() == 1 => match results.pop() {
                    Some(Ok(checked)) => {
                        view = checked.view;
                        subjects = checked.subjects;
                        media = checked.media;
                    }
                    Some(Err(why)) => return Ok(Err(why)),
                    None => unreachable_reply()?,
                },
                Ok(_) => unreachable_reply()?,
                Err(CallError::Pool(e)) => return Err(e),
                Err(CallError::Died(why)) => {
                    return Ok(Err(format!(
                        "reading the document crashed the document checker: {why}"
                    )));
                }
            }
        }
        Ok(Ok(Checked {
            verdicts,
            view,
            subjects,
            media,
        }))
    }

    /// Wait for this caller's turn: one worker at a time per caller.
    async fn caller_turn(
        &self,
        caller: &str,
    ) -> Result<tokio::sync::OwnedSemaphorePermit, PoolError> {
        let sem = {
            let mut map = self.per_caller.lock().unwrap_or_else(|p| p.into_inner());
            if map.len() > 10_000 {
                // Forget callers with no request in flight, so the map stays small.
                map.retain(|_, s| Arc::strong_count(s) > 1);
            }
            map.entry(caller.to_owned())
                .or_insert_with(|| Arc::new(Semaphore::new(1)))
                .clone()
        };
        tokio::time::timeout(self.limits.queue_timeout, sem.acquire_owned())
            .await
            .map_err(|_| PoolError::Busy)?
            .map_err(|_| PoolError::Busy)
    }

    fn record_crash(&self, caller: &str) {
        let mut map = self.crashes.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > 10_000 {
            map.retain(|_, (since, _)| since.elapsed() < CRASH_WINDOW);
        }
        let entry = map.entry(caller.to_owned()).or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= CRASH_WINDOW {
            *entry = (Instant::now(), 0);
        }
        entry.1 += 1;
    }

    fn check_penalty(&self, caller: &str) -> Result<(), PoolError> {
        let map = self.crashes.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(caller) {
            Some((since, crashes)) if *crashes >= CRASH_LIMIT && since.elapsed() < CRASH_WINDOW => {
                Err(PoolError::Penalized {
                    crashes: *crashes,
                    wait_secs: (CRASH_WINDOW - since.elapsed()).as_secs().max(1),
                })
            }
            _ => Ok(()),
        }
    }

    async fn call(&self, req: RequestRef<'_>) -> Result<Reply, CallError> {
        let _permit = tokio::time::timeout(self.limits.queue_timeout, self.permits.acquire())
            .await
            .map_err(|_| CallError::Pool(PoolError::Busy))?
            .map_err(|_| CallError::Pool(PoolError::Busy))?;
        let _busy = crate::metrics::InProgress::enter(crate::metrics::WORKERS_BUSY);
        let pooled = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut worker = match pooled {
            Some(w) => w,
            None => self.spawn().map_err(CallError::Pool)?,
        };
        let frame = protocol::encode(&req).map_err(|e| CallError::Pool(PoolError::Protocol(e)))?;
        match tokio::time::timeout(self.limits.timeout, exchange(&mut worker, &frame)).await {
            Ok(Ok(reply)) => {
                self.idle
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(worker);
                Ok(reply)
            }
            Ok(Err(why)) => {
                metrics::counter!(crate::metrics::WORKER_CRASHES).increment(1);
                let status = reap(worker).await;
                Err(CallError::Died(format!("{why} ({status})")))
            }
            Err(_) => {
                metrics::counter!(crate::metrics::WORKER_TIMEOUTS).increment(1);
                let status = reap(worker).await;
                Err(CallError::Died(format!(
                    "took longer than {:?} and was stopped ({status})",
                    self.limits.timeout
                )))
            }
        }
    }

    fn spawn(&self) -> Result<Worker, PoolError> {
        let mut child = Command::new(&self.exe)
            .arg("worker")
            .arg("--memory-bytes")
            .arg(self.limits.memory_bytes.to_string())
            .arg("--check-memory-bytes")
            .arg(self.limits.check_memory_bytes.to_string())
            // A panic on hostile input prints one line, never a backtrace.
            .env("RUST_BACKTRACE", "0")
            .env("RUST_LIB_BACKTRACE", "0")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| PoolError::Spawn {
                exe: self.exe.display().to_string(),
                source,
            })?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        match (stdin, stdout) {
            (Some(stdin), Some(stdout)) => Ok(Worker {
                child,
                stdin,
                stdout: BufReader::new(stdout),
            }),
            _ => Err(PoolError::Protocol("worker started without pipes".into())),
        }
    }
}

fn unreachable_reply() -> Result<(), PoolError> {
    Err(PoolError::Protocol(
        "worker answered a materialize with the wrong reply".into(),
    ))
}

async fn exchange(worker: &mut Worker, frame: &[u8]) -> Result<Reply, String> {
    worker
        .stdin
        .write_all(frame)
        .await
        .map_err(|e| format!("writing to the worker failed: {e}"))?;
    worker
        .stdin
        .flush()
        .await
        .map_err(|e| format!("writing to the worker failed: {e}"))?;
    let len = worker
        .stdout
        .read_u32()
        .await
        .map_err(|e| format!("the worker exited or closed its output: {e}"))?;
    if len as usize > MAX_FRAME {
        return Err(format!("the worker sent an oversized frame of {len} bytes"));
    }
    let mut buf = vec![0u8; len as usize];
    worker
        .stdout
        .read_exact(&mut buf)
        .await
        .map_err(|e| format!("the worker's answer was cut short: {e}"))?;
    protocol::decode_reply(&buf)
}

async fn reap(mut worker: Worker) -> String {
    let _ = worker.child.start_kill();
    match worker.child.wait().await {
        Ok(status) => status.to_string(),
        Err(e) => format!("could not collect the worker's exit status: {e}"),
    }
}
