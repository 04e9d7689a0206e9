//! The writer thread: the only owner of the write connection, committing in groups.
//!
//! Writes arrive as jobs on a channel. The thread takes every job waiting (up to a bound), runs
//! each inside its own savepoint of ONE transaction, commits once, and only then answers each
//! job. A job that fails rolls back to its savepoint and leaves the others untouched, so every
//! job is still atomic on its own; what the group shares is the one durable flush of the commit.
//! Two hundred devices pushing at once thus cost a few fsyncs instead of two hundred, and no
//! acknowledgement is sent before the commit that holds its changes is on disk.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{Receiver, Sender};

use rusqlite::{Connection, Transaction, TransactionBehavior};

use crate::storage::StorageError;

/// Most jobs committed together.
const MAX_GROUP: usize = 64;

/// What a job decided, and how to tell its caller once the commit's fate is known.
pub(super) struct Settle {
    /// Whether the job's writes stay (its savepoint is released) or go (rolled back).
    pub ok: bool,
    /// Called after the commit with its outcome.
    pub deliver: Box<dyn FnOnce(Result<(), String>) + Send>,
}

/// One write: runs against the group's transaction.
pub(super) type Job = Box<dyn FnOnce(&Transaction<'_>) -> Settle + Send>;

/// Start the writer thread on `conn`; it ends when every sender is dropped.
pub(super) fn spawn(conn: Connection) -> std::io::Result<Sender<Job>> {
    let (tx, rx) = std::sync::mpsc::channel::<Job>();
    std::thread::Builder::new()
        .name("fieldsync-db-writer".into())
        .spawn(move || run(conn, rx))?;
    Ok(tx)
}

/// Queue `job` for the writer thread (counted in the queue-depth gauge until it is taken).
pub(super) fn submit(jobs: &Sender<Job>, job: Job) -> Result<(), StorageError> {
    let depth = metrics::gauge!(crate::metrics::WRITE_QUEUE);
    depth.increment(1.0);
    jobs.send(job).map_err(|_| {
        depth.decrement(1.0);
        StorageError::TaskFailed
    })
}

fn run(mut conn: Connection, rx: Receiver<Job>) {
    let depth = metrics::gauge!(crate::metrics::WRITE_QUEUE);
    let mut leftover: Vec<Job> = Vec::new();
    loop {
        let mut jobs = std::mem::take(&mut leftover);
        let carried = jobs.len();
        if jobs.is_empty() {
            match rx.recv() {
                Ok(first) => jobs.push(first),
                Err(_) => return,
            }
        }
        while jobs.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        depth.decrement((jobs.len() - carried) as f64);
        let started = std::time::Instant::now();
        let size = jobs.len();
        leftover = commit_group(&mut conn, jobs);
        metrics::histogram!(crate::metrics::WRITE_GROUP).record((size - leftover.len()) as f64);
        metrics::histogram!(crate::metrics::COMMIT_DURATION)
            .record(started.elapsed().as_secs_f64());
    }
}

/// Run `jobs` in one transaction and commit it. Returns the jobs not run, when the group had
/// to be abandoned (they go into the next group).
fn commit_group(conn: &mut Connection, jobs: Vec<Job>) -> Vec<Job> {
    let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => {
            tracing::error!(error = %e, "cannot begin a write transaction");
            // Dropping the jobs drops their reply channels: each caller sees the write fail.
            return Vec::new();
        }
    };
    let mut deliveries = Vec::with_capacity(jobs.len());
    let mut jobs = jobs.into_iter();
    let mut abandoned = None;
    for job in jobs.by_ref() {
        if let Err(e) = tx.execute_batch("SAVEPOINT job") {
            tracing::error!(error = %e, "cannot open a savepoint");
            continue;
        }
        // A panicking job is rolled back like a failed one; its caller sees the write fail.
        let settle = catch_unwind(AssertUnwindSafe(|| job(&tx))).ok();
        let keep = settle.as_ref().is_some_and(|s| s.ok);
        let end = if keep {
            tx.execute_batch("RELEASE job")
        } else {
            tx.execute_batch("ROLLBACK TO job; RELEASE job")
        };
        if let Some(s) = settle {
            deliveries.push(s.deliver);
        }
        if let Err(e) = end {
            // What this job wrote can no longer be told apart from what the others wrote, so
            // none of the group may be committed: roll it all back and say so to every caller
            // (none of them has been answered yet).
            tracing::error!(error = %e, "cannot close a savepoint; abandoning the whole group");
            abandoned = Some(format!(
                "a write in the same group could not be undone ({e}); nothing of it was stored, retry"
            ));
            break;
        }
    }
    if let Some(why) = abandoned {
        if let Err(e) = tx.rollback() {
            tracing::error!(error = %e, "rolling back an abandoned group failed");
        }
        for deliver in deliveries {
            deliver(Err(why.clone()));
        }
        return jobs.collect();
    }
    let outcome = tx.commit().map_err(|e| e.to_string());
    if let Err(e) = &outcome {
        tracing::error!(error = %e, "commit failed; the group's writes were rolled back");
    }
    for deliver in deliveries {
        deliver(outcome.clone());
    }
    Vec::new()
}

/// Wrap a caller's closure as a job whose result reaches `reply` after the commit.
pub(super) fn job<T, E, F>(f: F, reply: impl FnOnce(Result<T, E>) + Send + 'static) -> Job
where
    T: Send + 'static,
    E: From<StorageError> + Send + 'static,
    F: FnOnce(&Transaction<'_>) -> Result<T, E> + Send + 'static,
{
    Box::new(move |tx| {
        let out = f(tx);
        Settle {
            ok: out.is_ok(),
            deliver: Box::new(move |commit| {
                let result = match commit {
                    Ok(()) => out,
                    Err(e) => Err(E::from(StorageError::CommitFailed(e))),
                };
                reply(result);
            }),
        }
    })
}
