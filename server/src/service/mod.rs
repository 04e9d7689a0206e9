//! The service layer: what the server does, with its rules, whichever storage backend is
//! underneath. Handlers (in [`crate::api`]) parse requests and call these; these check roles
//! and inputs, build what is to be stored (survey documents, credentials, audit entries) and
//! call one [`crate::storage::Storage`] operation, which is atomic. The rules a backend must
//! apply inside its own transaction (who may push what, which surveys a puller gets) are pure
//! functions in [`policy`], called by every backend.

pub mod media;
pub mod members;
pub mod orgs;
pub mod policy;
pub mod responses;
pub mod rights;
pub mod sessions;
pub mod surveys;
pub mod sync;

use fieldsync_protocol::crypto::{new_token, token_hash};

use crate::error::ApiError;
use crate::storage::{CredentialKind, NewCredential, StorageError, now_ms};

/// Parse a path id as a UUID; anything else is simply not found.
pub fn parse_id(id: &str, what: &str) -> Result<String, ApiError> {
    uuid::Uuid::parse_str(id)
        .map(|u| u.to_string())
        .map_err(|_| ApiError::NotFound(format!("no {what} {id:?}")))
}

/// One-time secrets expire if unused.
pub const ONE_TIME_TTL_MS: i64 = 7 * 24 * 3600 * 1000;

/// A new random token of `kind` (shown once) and the credential to store for it (its hash).
pub fn new_credential(kind: CredentialKind) -> Result<(String, NewCredential), StorageError> {
    let prefix = match kind {
        CredentialKind::Login => "fsl_",
        CredentialKind::Enroll => "fse_",
        CredentialKind::Session => "fss_",
        CredentialKind::Device => "fsd_",
    };
    let token = new_token(prefix)
        .map_err(|e| StorageError::Corrupt(format!("cannot generate a token: {e}")))?;
    let expires_at = match kind {
        CredentialKind::Login | CredentialKind::Enroll => Some(now_ms() + ONE_TIME_TTL_MS),
        CredentialKind::Session | CredentialKind::Device => None,
    };
    let credential = NewCredential {
        hash: token_hash(&token),
        kind,
        expires_at,
    };
    Ok((token, credential))
}
