//! The background materialiser: right after a push commits, the changed responses are loaded
//! in the sandbox, validated against their survey version, and their summary (answers,
//! validation errors, conflicts) is written to the encrypted index that coordinators read.
//! Keeping this off the push path is what lets a device's push be acknowledged at the speed of
//! a durable insert, while "validated on arrival" still holds moments later.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::AppState;
use crate::store::StoreError;
use crate::store::responses::{self, Queued, Summary};
use crate::worker::MaterializeJob;

/// Documents taken from the queue per round.
const BATCH: u32 = 256;

/// Run until `stop` is notified.
pub async fn run(state: AppState, stop: Arc<Notify>) {
    loop {
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
/// left queued because no worker was available does not count).
/// Summaries of the whole batch are written in one transaction (one durable commit).
pub async fn drain_once(state: &AppState) -> Result<usize, StoreError> {
    let batch = state.store.read(|c| responses::queued(c, BATCH)).await?;
    let n = batch.len();
    if n == 0 {
        return Ok(0);
    }
    // As many documents in flight as there are workers.
    let concurrency = state.workers.size();
    let mut tasks = tokio::task::JoinSet::new();
    let mut done = Vec::with_capacity(n);
    for item in batch {
        while tasks.len() >= concurrency {
            if let Some(r) = tasks.join_next().await {
                done.extend(r.map_err(|_| StoreError::TaskFailed)??);
            }
        }
        let st = state.clone();
        tasks.spawn(async move { one(&st, item).await });
    }
    while let Some(r) = tasks.join_next().await {
        done.extend(r.map_err(|_| StoreError::TaskFailed)??);
    }
    let processed = done.len();
    if processed == 0 {
        return Ok(0);
    }
    let keys = state.keys.clone();
    state
        .store
        .write(move |tx| {
            for outcome in &done {
                match outcome {
                    Outcome::Gone(doc_id) => {
                        tx.execute("DELETE FROM materialize_queue WHERE doc_id = ?1", [doc_id])?;
                    }
                    Outcome::Done(done) => {
                        let (item, material, summary) = &**done;
                        responses::save_summary(
                            tx,
                            &keys,
                            &item.org_id,
                            &item.doc_id,
                            material,
                            summary,
                        )?
                    }
                }
            }
            Ok::<_, StoreError>(())
        })
        .await?;
    Ok(processed)
}

/// What became of one queued document.
enum Outcome {
    /// The document no longer exists (erased): drop it from the queue.
    Gone(String),
    // Boxed: the material holds every change of the document.
    Done(Box<(Queued, responses::DocMaterial, Summary)>),
}

/// Materialise one document; `None` leaves it queued for a later round.
async fn one(state: &AppState, item: Queued) -> Result<Option<Outcome>, StoreError> {
    let keys = state.keys.clone();
    let (org_id, doc_id) = (item.org_id.clone(), item.doc_id.clone());
    let material = state
        .store
        .read(move |c| responses::material(c, &keys, &org_id, &doc_id))
        .await?;
    let Some(material) = material else {
        return Ok(Some(Outcome::Gone(item.doc_id)));
    };
    let today = time::OffsetDateTime::now_utc().date();
    let job = MaterializeJob {
        changes: material.changes.clone(),
        definition: material.definition.clone(),
        today: format!(
            "{:04}-{:02}-{:02}",
            today.year(),
            u8::from(today.month()),
            today.day()
        ),
    };
    let summary = match state.workers.materialize(job).await {
        Ok(Ok(view)) => {
            let mismatch = view.id.to_string() != item.doc_id
                || view.survey_id.to_string() != material.survey_id
                || view.survey_version != material.survey_version;
            let broken = mismatch.then(|| {
                "the document's own id, survey or version differs from what its device declared when pushing it"
                    .to_owned()
            });
            Summary {
                view: Some(view),
                broken,
            }
        }
        Ok(Err(reason)) => {
            tracing::warn!(doc = %item.doc_id, %reason, "response could not be materialised");
            Summary {
                view: None,
                broken: Some(reason),
            }
        }
        Err(e) => {
            // The pool itself is unavailable: leave the document queued for the next round.
            tracing::warn!(doc = %item.doc_id, error = %e, "materialiser could not reach a worker");
            return Ok(None);
        }
    };
    Ok(Some(Outcome::Done(Box::new((item, material, summary)))))
}
