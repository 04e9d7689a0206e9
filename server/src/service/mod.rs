//! The service layer: what the server does, with its rules, whichever storage backend is
//! underneath. Handlers (in [`crate::api`]) parse requests and call these; these check roles
//! and inputs, build what is to be stored (survey documents, credentials, audit entries) and
//! call one [`crate::storage::Storage`] operation, which is atomic. The rules a backend must
//! apply inside its own transaction (who may push what, which surveys a puller gets) are pure
//! functions in [`policy`], called by every backend.

pub mod links;
pub mod media;
pub mod members;
pub mod orgs;
pub mod policy;
pub mod responses;
pub mod rights;
pub mod sessions;
pub mod surveys;
pub mod sync;

use fieldsync_protocol::crypto::{new_short_code, new_token, token_hash};

use crate::error::ApiError;
use crate::storage::{CredentialKind, NewCredential, StorageError, now_ms};

/// An organisation's key and the keys derived from it (its cipher, the subject index).
pub async fn org_keys(
    db: &crate::storage::Db,
    keys: &crate::keys::KeyRing,
    org_id: &str,
) -> Result<std::sync::Arc<crate::keys::OrgKeys>, ApiError> {
    let org = db
        .org(org_id)
        .await?
        .ok_or_else(|| ApiError::NotFound("no such organisation".into()))?;
    keys.org_keys(&org.id, &org.wrapped_key)
        .map_err(|e| ApiError::Internal(format!("organisation key: {e}")))
}

/// Parse a path id as a UUID; anything else is simply not found.
pub fn parse_id(id: &str, what: &str) -> Result<String, ApiError> {
    uuid::Uuid::parse_str(id)
        .map(|u| u.to_string())
        .map_err(|_| ApiError::NotFound(format!("no {what} {id:?}")))
}

/// One-time secrets expire if unused.
pub const ONE_TIME_TTL_MS: i64 = 7 * 24 * 3600 * 1000;

/// A new random token of `kind` (shown once) and the credential to store for it (its hash).
/// Enrollment codes are short (a coordinator reads one out over the phone); every other
/// token is 256 random bits.
pub fn new_credential(kind: CredentialKind) -> Result<(String, NewCredential), StorageError> {
    let token = match kind {
        CredentialKind::Enroll => new_short_code(),
        _ => new_token(prefix_of(kind)),
    }
    .map_err(|e| StorageError::Corrupt(format!("cannot generate a token: {e}")))?;
    Ok(credential_for(kind, token))
}

/// The token a retried exchange of `secret` gets: derived from the secret and the client's
/// attempt id, so the same exchange sent again (its answer lost on a bad link) finds the
/// credential its first try stored, and gets the same session. Nobody without both the
/// one-time secret and the attempt id (sent only in the request) can compute it.
pub fn retry_token(kind: CredentialKind, secret: &str, attempt: &str) -> (String, NewCredential) {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for part in [
        b"fieldsync redeem retry".as_slice(),
        secret.as_bytes(),
        attempt.as_bytes(),
    ] {
        ctx.update(&(part.len() as u64).to_be_bytes());
        ctx.update(part);
    }
    let hex: String = ctx
        .finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    credential_for(kind, format!("{}{hex}", prefix_of(kind)))
}

fn prefix_of(kind: CredentialKind) -> &'static str {
    match kind {
        CredentialKind::Login => "fsl_",
        CredentialKind::Enroll => "fse_",
        CredentialKind::Session => "fss_",
        CredentialKind::Device => "fsd_",
    }
}

fn credential_for(kind: CredentialKind, token: String) -> (String, NewCredential) {
    let expires_at = match kind {
        CredentialKind::Login | CredentialKind::Enroll => Some(now_ms() + ONE_TIME_TTL_MS),
        CredentialKind::Session | CredentialKind::Device => None,
    };
    let credential = NewCredential {
        hash: token_hash(&token),
        kind,
        expires_at,
    };
    (token, credential)
}
