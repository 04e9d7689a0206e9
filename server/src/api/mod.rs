//! The HTTP API: the route table, the server-wide limits, and the CBOR body extractor and
//! responder. Handlers live in the submodules; each is an extractor or two, one call into the
//! store, and a mapped result.

mod members;
mod responses;
mod session;
mod surveys;
mod sync;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use fieldsync_protocol::cbor::Limits;
use fieldsync_protocol::wire::{CONTENT_TYPE, Message, WireError};

use crate::AppState;
use crate::error::{ApiError, CborError};

/// Build the router with every route and the server-wide limits.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/v1/login", post(session::login))
        .route("/v1/enroll", post(session::enroll))
        .route("/v1/logout", post(session::logout))
        .route("/v1/me", get(session::me))
        .route("/v1/members", get(members::list).post(members::create))
        .route("/v1/members/{id}/revoke", post(members::revoke))
        .route("/v1/enumerators", post(members::create_enumerator))
        .route("/v1/org/support-access", put(members::support_access))
        .route("/v1/audit", get(members::audit))
        .route("/v1/surveys", get(surveys::list).post(surveys::publish))
        .route("/v1/surveys/{id}", get(surveys::show))
        .route("/v1/surveys/{id}/versions/{version}", get(surveys::version))
        .route("/v1/surveys/{id}/status", put(surveys::set_status))
        .route("/v1/surveys/{id}/assignments", post(surveys::assign))
        .route("/v1/surveys/{id}/responses", get(responses::list))
        .route("/v1/surveys/{id}/export", get(responses::export))
        .route("/v1/responses/{id}", get(responses::show))
        .route("/v1/sync/push", post(sync::push))
        .route("/v1/sync/pull", post(sync::pull))
        .fallback(not_found)
        // Layers wrap every route above as one service: the concurrency semaphore lives in
        // the state and is shared, so the limit is server-wide, not per route.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            limit_concurrency,
        ))
        .layer(DefaultBodyLimit::max(state.settings.max_body))
        .with_state(state);
    Router::new().route("/healthz", get(health)).merge(api)
}

async fn health() -> &'static str {
    "ok"
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such endpoint; see the README for the API".into())
}

/// Admit at most `max_concurrency` requests at once across the whole server, and bound how
/// long each may take to produce its response. A request that cannot get a slot within the
/// queue wait is answered 503, so overload sheds load instead of piling up memory; one that
/// runs past the request timeout is answered 408 with the usual error body. (A streamed
/// export's body is not bounded: only the time to its first byte.)
async fn limit_concurrency(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let semaphore = Arc::clone(&state.concurrency);
    let permit = match semaphore.try_acquire_owned() {
        Ok(p) => p,
        Err(_) => match tokio::time::timeout(
            state.settings.queue_wait,
            Arc::clone(&state.concurrency).acquire_owned(),
        )
        .await
        {
            Ok(Ok(p)) => p,
            _ => {
                return ApiError::Unavailable(
                    "the server is at its concurrency limit; retry in a few seconds".into(),
                )
                .into_response();
            }
        },
    };
    let timeout = state.settings.request_timeout;
    let response = match tokio::time::timeout(timeout, next.run(req)).await {
        Ok(r) => r,
        Err(_) => ApiError::Timeout(format!(
            "the request took longer than {} seconds; retry, or send smaller batches",
            timeout.as_secs()
        ))
        .into_response(),
    };
    drop(permit);
    response
}

/// A CBOR request body, decoded within the sync limits.
#[derive(Debug)]
pub struct Cbor<T>(pub T);

impl<T: Message + Send> FromRequest<AppState> for Cbor<T> {
    type Rejection = CborError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, CborError> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| CborError(body_error(e)))?;
        let limits = Limits {
            max_bytes: state.settings.max_body,
            ..Limits::SYNC
        };
        T::from_cbor(&bytes, &limits).map(Cbor).map_err(|e| {
            CborError(match e {
                WireError::UnsupportedProtocol { .. } => {
                    ApiError::UnsupportedProtocol(e.to_string())
                }
                WireError::Decode(d) => ApiError::BadRequest(format!(
                    "the request body is not a valid fieldsync message: {d}"
                )),
            })
        })
    }
}

impl<T: Message> IntoResponse for Cbor<T> {
    fn into_response(self) -> Response {
        match self.0.to_cbor() {
            Ok(bytes) => {
                let mut resp = bytes.into_response();
                resp.headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
                resp
            }
            Err(e) => ApiError::Internal(e.to_string()).cbor().into_response(),
        }
    }
}

/// Map a body-reading failure: too large is 413, anything else a bad request.
pub(crate) fn body_error(e: BytesRejection) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::TooLarge(
            "the request body is larger than this server accepts; send smaller batches".into(),
        )
    } else {
        ApiError::BadRequest(format!("the request body could not be read: {e}"))
    }
}

/// A JSON request body whose errors are answered in the API's error format.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T: serde::de::DeserializeOwned + Send> FromRequest<AppState> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state).await.map_err(body_error)?;
        serde_json::from_slice(&bytes).map(Json).map_err(|e| {
            ApiError::BadRequest(format!("the request body is not the expected JSON: {e}"))
        })
    }
}

/// Parse a path id as a UUID; anything else is simply not found.
pub(crate) fn parse_id(id: &str, what: &str) -> Result<String, ApiError> {
    uuid::Uuid::parse_str(id)
        .map(|u| u.to_string())
        .map_err(|_| ApiError::NotFound(format!("no {what} {id:?}")))
}
