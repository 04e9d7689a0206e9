//! Who may sync, and storing what they push.

use fieldsync_protocol::api::Role;
use fieldsync_protocol::wire::PullResponse;

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
/// (`policy::admit_push`, applied inside the backend's transaction).
pub async fn push(db: &Db, caller: Caller, docs: Vec<VerifiedDoc>) -> Result<Pushed, ApiError> {
    may_push(&caller)?;
    Ok(db.push(caller, docs).await?)
}

/// One page of checked changes the caller may see, with its survey updates.
pub async fn pull(db: &Db, query: PullQuery) -> Result<PullResponse, ApiError> {
    may_pull(&query.caller)?;
    Ok(db.pull(query).await?)
}
