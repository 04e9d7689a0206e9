//! The documented exit codes of the `fieldsync` binary and the one function that maps any
//! error chain of the client core onto them, so every command fails the same way.

use fieldsync_protocol::crypto::CryptoError;
use fieldsync_protocol::wire::ErrorCode;

use crate::client::ClientError;
use crate::engine::SyncError;
use crate::store::StoreError;

/// Everything went well.
pub const OK: u8 = 0;
/// Any failure without a more specific code.
pub const FAILURE: u8 = 1;
/// A usage error (clap's own code).
pub const USAGE: u8 = 2;
/// The server could not be reached (nothing was lost).
pub const UNREACHABLE: u8 = 3;
/// Authentication or permission refused: unknown, revoked or expired token, forbidden action,
/// or no account on this device yet.
pub const AUTH: u8 = 4;
/// Wrong or missing passphrase.
pub const PASSPHRASE: u8 = 5;
/// Invalid input: a bad file, invalid responses or rows, a bad survey definition, a closed
/// survey.
pub const INVALID: u8 = 6;
/// Not found: an unknown survey, response or member.
pub const NOT_FOUND: u8 = 7;
/// The output was closed before the command finished writing it (`| head`): 128 + SIGPIPE,
/// what a shell reports for other tools that SIGPIPE ends.
pub const CLOSED: u8 = 141;

/// The name of an exit status, as `--json` errors give it in `code`.
pub fn name_of(code: u8) -> &'static str {
    match code {
        OK => "ok",
        USAGE => "usage",
        UNREACHABLE => "unreachable",
        AUTH => "auth",
        PASSPHRASE => "passphrase",
        INVALID => "invalid",
        NOT_FOUND => "not_found",
        CLOSED => "closed",
        _ => "failure",
    }
}

/// A failure found by the interface itself (not by the store or the server), already
/// classified.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Auth(String),
    #[error("{0}")]
    Passphrase(String),
}

/// The exit code for an error and its whole chain of causes: the first link that has a
/// specific meaning decides.
pub fn code_for(error: &(dyn std::error::Error + 'static)) -> u8 {
    let mut link: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = link {
        if let Some(code) = classify(e) {
            return code;
        }
        link = e.source();
    }
    FAILURE
}

fn classify(e: &(dyn std::error::Error + 'static)) -> Option<u8> {
    if let Some(f) = e.downcast_ref::<Failure>() {
        return Some(match f {
            Failure::Invalid(_) => INVALID,
            Failure::NotFound(_) => NOT_FOUND,
            Failure::Auth(_) => AUTH,
            Failure::Passphrase(_) => PASSPHRASE,
        });
    }
    if let Some(s) = e.downcast_ref::<SyncError>() {
        return match s {
            SyncError::Client(c) => classify_client(c),
            SyncError::Store(s) => classify_store(s),
        };
    }
    if let Some(c) = e.downcast_ref::<ClientError>() {
        return classify_client(c);
    }
    if let Some(s) = e.downcast_ref::<StoreError>() {
        return classify_store(s);
    }
    if let Some(c) = e.downcast_ref::<CryptoError>() {
        return classify_crypto(c);
    }
    None
}

fn classify_client(e: &ClientError) -> Option<u8> {
    Some(match e {
        ClientError::Offline { .. } => UNREACHABLE,
        ClientError::Unauthenticated { .. } | ClientError::Forbidden { .. } => AUTH,
        ClientError::NotFound { .. } => NOT_FOUND,
        ClientError::Rejected { code, .. } => match code {
            ErrorCode::Unauthenticated | ErrorCode::Forbidden => AUTH,
            ErrorCode::NotFound => NOT_FOUND,
            ErrorCode::BadRequest
            | ErrorCode::Conflict
            | ErrorCode::TooLarge
            | ErrorCode::MalformedDocument
            | ErrorCode::SurveyClosed
            | ErrorCode::InvalidSurvey
            | ErrorCode::Invalid => INVALID,
            ErrorCode::Unavailable | ErrorCode::Timeout | ErrorCode::RateLimited => UNREACHABLE,
            _ => FAILURE,
        },
        ClientError::Protocol(_) | ClientError::Untrusted { .. } => FAILURE,
    })
}

fn classify_store(e: &StoreError) -> Option<u8> {
    match e {
        StoreError::Crypto(c) => classify_crypto(c),
        StoreError::Missing(_) | StoreError::NotLoggedIn => Some(AUTH),
        StoreError::NotFound(_) => Some(NOT_FOUND),
        StoreError::Invalid(_) => Some(INVALID),
        _ => Some(FAILURE),
    }
}

fn classify_crypto(e: &CryptoError) -> Option<u8> {
    match e {
        CryptoError::WrongPassphrase | CryptoError::EmptyPassphrase => Some(PASSPHRASE),
        _ => Some(FAILURE),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("while doing something")]
    struct Context(#[source] Box<dyn std::error::Error + Send + Sync>);

    fn check(e: impl std::error::Error + Send + Sync + 'static, expected: u8) {
        assert_eq!(code_for(&e), expected, "{e}");
        let wrapped = Context(Box::new(e));
        assert_eq!(code_for(&wrapped), expected, "wrapped {wrapped}");
    }

    #[test]
    fn every_kind_of_error_has_its_code() {
        check(
            ClientError::Offline {
                server: "http://x".into(),
                reason: "refused".into(),
            },
            UNREACHABLE,
        );
        check(
            ClientError::Unauthenticated {
                message: "revoked".into(),
            },
            AUTH,
        );
        check(
            ClientError::Forbidden {
                message: "no".into(),
            },
            AUTH,
        );
        check(
            ClientError::NotFound {
                message: "no".into(),
            },
            NOT_FOUND,
        );
        for (code, expected) in [
            (ErrorCode::InvalidSurvey, INVALID),
            (ErrorCode::SurveyClosed, INVALID),
            (ErrorCode::Unavailable, UNREACHABLE),
            // Too many requests at once, or sign-ins refused for a minute: try again later.
            (ErrorCode::RateLimited, UNREACHABLE),
            (ErrorCode::Internal, FAILURE),
            // A code added by a newer server is an ordinary failure, not a crash or a hang.
            (ErrorCode::Unknown, FAILURE),
        ] {
            check(
                ClientError::Rejected {
                    status: 422,
                    code,
                    message: "m".into(),
                    doc_id: None,
                    details: vec![],
                    docs: vec![],
                    protocols: None,
                },
                expected,
            );
        }
        check(StoreError::Crypto(CryptoError::WrongPassphrase), PASSPHRASE);
        check(StoreError::NotFound("x".into()), NOT_FOUND);
        check(StoreError::Invalid("x".into()), INVALID);
        check(StoreError::NotLoggedIn, AUTH);
        check(StoreError::Corrupt("x".into()), FAILURE);
        check(
            SyncError::Client(ClientError::Offline {
                server: "s".into(),
                reason: "r".into(),
            }),
            UNREACHABLE,
        );
        check(SyncError::Store(StoreError::Invalid("x".into())), INVALID);
        check(Failure::Passphrase("set it".into()), PASSPHRASE);
        check(std::io::Error::other("disk"), FAILURE);
    }
}
