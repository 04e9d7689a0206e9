//! Who may sync, and storing what they push.

use std::collections::{HashMap, HashSet};

use fieldsync_protocol::api::Role;
use fieldsync_protocol::survey::Survey;
use fieldsync_protocol::wire::PullResponse;
use uuid::Uuid;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::storage::{Db, PullQuery, Pushed, VerifiedDoc};

/// Roles that push changes (support staff only read).
const WRITERS: &[Role] = &[Role::Admin, Role::Coordinator, Role::Ops, Role::Enumerator];

/// Refuse a caller that may not push, before its changes cost a sandbox.
pub fn may_push(caller: &Caller) -> Result<(), ApiError> {
    caller.require(WRITERS, "push changes")
}

/// Refuse a caller that may not pull: support staff read through the read endpoints.
pub fn may_pull(caller: &Caller) -> Result<(), ApiError> {
    if caller.role == Role::Support {
        return Err(ApiError::Forbidden(
            "support staff do not sync; use the read endpoints".into(),
        ));
    }
    Ok(())
}

/// Store documents the sandbox parsed; each is admitted or refused whole by the push policy
/// (`policy::admit_push`, applied inside the backend's transaction). A member's edit of a
/// response someone else collected is audited with the questions it touched.
pub async fn push(db: &Db, caller: Caller, mut docs: Vec<VerifiedDoc>) -> Result<Pushed, ApiError> {
    may_push(&caller)?;
    questions_touched(db, &caller, &mut docs).await?;
    Ok(db.push(caller, docs).await?)
}

/// Narrow each document's touched map keys (what the sandbox found its changes write) to the
/// question names of its survey version: what an audit entry of the edit names.
async fn questions_touched(
    db: &Db,
    caller: &Caller,
    docs: &mut [VerifiedDoc],
) -> Result<(), ApiError> {
    let mut names: HashMap<(Uuid, u32), Option<HashSet<String>>> = HashMap::new();
    for d in docs.iter_mut().filter(|d| !d.touched.is_empty()) {
        let key = (d.doc.survey_id, d.doc.survey_version);
        if let std::collections::hash_map::Entry::Vacant(slot) = names.entry(key) {
            let definition = db
                .survey_version(&caller.org_id, &key.0.to_string(), key.1)
                .await?;
            slot.insert(
                definition
                    .and_then(|(json, _)| Survey::parse_json(&json).ok())
                    .map(|s| s.questions().iter().map(|q| q.name.clone()).collect()),
            );
        }
        let known = names.get(&key).and_then(Option::as_ref);
        d.touched
            .retain(|k| known.is_some_and(|questions| questions.contains(k)));
    }
    Ok(())
}

/// One page of checked changes the caller may see, with its survey updates, answered with
/// this database's `incarnation`.
///
/// A cursor of another incarnation (the database was restored from a backup since the client
/// last pulled), or one past the last relay number handed out (the same, for a client that
/// never learnt the incarnation), means nothing here: the page starts from the beginning and
/// says `restarted`, so the client pushes again what the restored database may lack.
pub async fn pull(
    db: &Db,
    mut query: PullQuery,
    epoch: Option<&str>,
    incarnation: &str,
) -> Result<PullResponse, ApiError> {
    may_pull(&query.caller)?;
    let foreign = epoch.is_some_and(|e| e != incarnation);
    // A cursor of this incarnation is this database's: only a client that names none is
    // checked against the relay counter (one more read, off the usual path).
    let ahead = epoch.is_none()
        && query.cursor > 0
        && i64::try_from(query.cursor).unwrap_or(i64::MAX) > db.relay_counter().await?;
    if foreign || ahead {
        tracing::info!(
            cursor = query.cursor,
            foreign,
            "a client's cursor is not of this database (restored from a backup?); it pulls from the start and pushes again"
        );
        query.cursor = 0;
    }
    let mut page = db.pull(query).await?;
    page.epoch = Some(incarnation.to_owned());
    page.restarted = foreign || ahead;
    Ok(page)
}
