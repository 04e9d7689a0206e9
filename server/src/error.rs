//! The one error type of the HTTP API. Each variant maps to a status code and a stable
//! [`ErrorCode`]; the body is an [`ErrorBody`], JSON on the management routes and CBOR on the
//! sync routes. Internal details are logged, never sent.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use fieldsync_protocol::wire::{CONTENT_TYPE, ErrorBody, ErrorCode, Message};
use uuid::Uuid;

use crate::keys::KeyError;
use crate::store::StoreError;
use crate::worker::PoolError;

/// An error answered to a client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    RateLimited(String),
    #[error("document {doc_id}: {message}")]
    MalformedDocument {
        doc_id: Uuid,
        message: String,
        /// Every malformed document of the request, with what is wrong with it.
        docs: Vec<(Uuid, String)>,
    },
    #[error("{0}")]
    SurveyClosed(String),
    #[error("{message}")]
    InvalidSurvey {
        message: String,
        details: Vec<String>,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    UnsupportedProtocol(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Timeout(String),
    /// Logged in full; the client sees only that something went wrong.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn code(&self) -> ErrorCode {
        match self {
            ApiError::BadRequest(_) => ErrorCode::BadRequest,
            ApiError::Unauthenticated(_) => ErrorCode::Unauthenticated,
            ApiError::Forbidden(_) => ErrorCode::Forbidden,
            ApiError::NotFound(_) => ErrorCode::NotFound,
            ApiError::Conflict(_) => ErrorCode::Conflict,
            ApiError::TooLarge(_) => ErrorCode::TooLarge,
            ApiError::RateLimited(_) => ErrorCode::RateLimited,
            ApiError::MalformedDocument { .. } => ErrorCode::MalformedDocument,
            ApiError::SurveyClosed(_) => ErrorCode::SurveyClosed,
            ApiError::InvalidSurvey { .. } => ErrorCode::InvalidSurvey,
            ApiError::Invalid(_) => ErrorCode::Invalid,
            ApiError::UnsupportedProtocol(_) => ErrorCode::UnsupportedProtocol,
            ApiError::Unavailable(_) => ErrorCode::Unavailable,
            ApiError::Timeout(_) => ErrorCode::Timeout,
            ApiError::Internal(_) => ErrorCode::Internal,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) | ApiError::UnsupportedProtocol(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) | ApiError::SurveyClosed(_) => StatusCode::CONFLICT,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::MalformedDocument { .. }
            | ApiError::InvalidSurvey { .. }
            | ApiError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The body sent to the client.
    pub fn body(&self) -> ErrorBody {
        let message = match self {
            ApiError::Internal(_) => {
                "the server hit an internal error and logged it; retry, and tell the operator if it persists"
                    .to_owned()
            }
            other => other.to_string(),
        };
        let mut body = ErrorBody::new(self.code(), message);
        match self {
            ApiError::MalformedDocument { doc_id, docs, .. } => {
                body.doc_id = Some(*doc_id);
                body.details = docs.iter().map(|(id, w)| format!("{id}: {w}")).collect();
                body.docs = docs
                    .iter()
                    .map(|(id, w)| fieldsync_protocol::wire::DocFault {
                        doc_id: *id,
                        message: w.clone(),
                    })
                    .collect();
            }
            ApiError::InvalidSurvey { details, .. } => body.details = details.clone(),
            ApiError::UnsupportedProtocol(_) => {
                body.protocols = Some(fieldsync_protocol::wire::ProtocolRange::OURS);
            }
            _ => {}
        }
        body
    }

    fn log(&self) {
        match self {
            ApiError::Internal(detail) => tracing::error!(%detail, "internal error"),
            ApiError::Unavailable(detail) => tracing::warn!(%detail, "unavailable"),
            _ => {}
        }
    }

    /// The same error with a CBOR body, for the sync routes.
    pub fn cbor(self) -> CborError {
        CborError(self)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.log();
        (self.status(), axum::Json(self.body())).into_response()
    }
}

/// An [`ApiError`] answered with a CBOR body.
#[derive(Debug)]
pub struct CborError(pub ApiError);

impl From<ApiError> for CborError {
    fn from(e: ApiError) -> Self {
        CborError(e)
    }
}

impl IntoResponse for CborError {
    fn into_response(self) -> Response {
        self.0.log();
        match self.0.body().to_cbor() {
            Ok(bytes) => {
                let mut resp = (self.0.status(), bytes).into_response();
                resp.headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
                resp
            }
            Err(_) => self.0.into_response(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(m) => ApiError::NotFound(m),
            StoreError::Conflict(m) => ApiError::Conflict(m),
            StoreError::Invalid(m) => ApiError::Invalid(m),
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(err, _))
                if err.code == rusqlite::ErrorCode::DatabaseBusy =>
            {
                ApiError::Unavailable("the database is busy; retry shortly".into())
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<KeyError> for ApiError {
    fn from(e: KeyError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

impl From<PoolError> for ApiError {
    fn from(e: PoolError) -> Self {
        match e {
            PoolError::Busy => {
                ApiError::Unavailable("document checkers are busy; retry shortly".into())
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<rusqlite::Error> for ApiError {
    fn from(e: rusqlite::Error) -> Self {
        ApiError::from(StoreError::from(e))
    }
}
