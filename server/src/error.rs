//! The one error type of the HTTP API. Each variant maps to a status code and a stable
//! [`ErrorCode`]; the body is an [`ErrorBody`], JSON on the management routes and CBOR on the
//! sync routes. Internal details are logged, never sent.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use fieldsync_protocol::wire::{CONTENT_TYPE, ErrorBody, ErrorCode, Message};
use uuid::Uuid;

use crate::keys::KeyError;
use crate::storage::StorageError;
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
    MethodNotAllowed(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Timeout(String),
    /// The response was erased and can never be written again.
    #[error("{0}")]
    Erased(String),
    /// The response's processing is restricted: no writes until it is lifted.
    #[error("{0}")]
    Restricted(String),
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
            ApiError::MethodNotAllowed(_) => ErrorCode::MethodNotAllowed,
            ApiError::Unavailable(_) => ErrorCode::Unavailable,
            ApiError::Timeout(_) => ErrorCode::Timeout,
            ApiError::Erased(_) => ErrorCode::Erased,
            ApiError::Restricted(_) => ErrorCode::Restricted,
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
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::Erased(_) => StatusCode::GONE,
            ApiError::Restricted(_) => StatusCode::LOCKED,
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

    /// Seconds a client should wait before trying again, for `Retry-After`: what a refusal
    /// says it waits for ("wait 42 seconds", "in a minute"), else a second for a rate limit
    /// and two for a busy server.
    fn retry_after(&self) -> Option<u64> {
        let (message, fallback) = match self {
            ApiError::RateLimited(m) => (m, 1),
            ApiError::Unavailable(m) => (m, 2),
            _ => return None,
        };
        let said = message.split("wait ").nth(1).and_then(|rest| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        });
        Some(said.unwrap_or(if message.contains("in a minute") {
            60
        } else {
            fallback
        }))
    }

    /// The same error with a CBOR body, for the sync routes.
    pub fn cbor(self) -> CborError {
        CborError(self)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.log();
        let status = self.status();
        let body = self.body();
        // JSON here; the router's outermost layer renders it again in the route's format
        // (CBOR on the sync routes), from the body attached below.
        let mut resp = render(status, &body, false);
        resp.extensions_mut().insert(body);
        if let Some(seconds) = self.retry_after() {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        resp
    }
}

/// An [`ApiError`] on a CBOR route. The router renders every error in its route's format, so
/// this is the same error; the type says which format a handler answers in.
#[derive(Debug)]
pub struct CborError(pub ApiError);

impl From<ApiError> for CborError {
    fn from(e: ApiError) -> Self {
        CborError(e)
    }
}

impl IntoResponse for CborError {
    fn into_response(self) -> Response {
        let mut resp = self.0.into_response();
        if let Some(body) = resp.extensions().get::<ErrorBody>().cloned() {
            let status = resp.status();
            let mut cbor = render(status, &body, true);
            cbor.extensions_mut().insert(body);
            if let Some(wait) = resp.headers_mut().remove(header::RETRY_AFTER) {
                cbor.headers_mut().insert(header::RETRY_AFTER, wait);
            }
            resp = cbor;
        }
        resp
    }
}

/// An error body as a response: CBOR or JSON.
pub fn render(status: StatusCode, body: &ErrorBody, cbor: bool) -> Response {
    if cbor && let Ok(bytes) = body.to_cbor() {
        let mut resp = (status, bytes).into_response();
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
        return resp;
    }
    (status, axum::Json(body)).into_response()
}

impl ApiError {
    /// The error for a response some layer below the handlers produced without an error body
    /// (an extractor's rejection, the router's method check): its status, and its text, which
    /// names what was wrong.
    pub fn from_status(
        status: StatusCode,
        method: &axum::http::Method,
        text: &str,
        allow: Option<String>,
    ) -> ApiError {
        let text = text.trim();
        let said = |fallback: &str| {
            if text.is_empty() {
                fallback.to_owned()
            } else {
                format!("{fallback}: {text}")
            }
        };
        match status {
            StatusCode::NOT_FOUND => ApiError::NotFound(
                "no such endpoint; GET /v1/openapi.json describes the API".into(),
            ),
            StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed(match allow {
                Some(allow) => format!("{method} is not allowed on this route; it accepts {allow}"),
                None => {
                    format!(
                        "{method} is not allowed on this route; GET /v1/openapi.json describes the API"
                    )
                }
            }),
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::TooLarge(
                "the request body is larger than this server accepts; send smaller batches".into(),
            ),
            StatusCode::REQUEST_TIMEOUT => ApiError::Timeout(said("the request took too long")),
            StatusCode::UNPROCESSABLE_ENTITY => ApiError::Invalid(said("the request is not valid")),
            StatusCode::TOO_MANY_REQUESTS => ApiError::RateLimited(said("too many requests")),
            StatusCode::SERVICE_UNAVAILABLE => {
                ApiError::Unavailable(said("the server is busy; retry shortly"))
            }
            s if s.is_server_error() => ApiError::Internal(said("unexpected server error")),
            _ => ApiError::BadRequest(said(
                "the request is not valid (check the path, the query and the body against the README)",
            )),
        }
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::NotFound(m) => ApiError::NotFound(m),
            StorageError::Conflict(m) => ApiError::Conflict(m),
            StorageError::Invalid(m) => ApiError::Invalid(m),
            StorageError::Busy(_) => {
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
            e @ PoolError::Penalized { .. } => ApiError::RateLimited(e.to_string()),
            other => ApiError::Internal(other.to_string()),
        }
    }
}
