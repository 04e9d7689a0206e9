//! The HTTP API: the route table, the server-wide limits, and the CBOR body extractor and
//! responder. Handlers live in the submodules; each is an extractor or two, one call into the
//! store, and a mapped result.

pub mod health;
mod links;
mod media;
mod members;
mod openapi;
mod responses;
mod rights;
pub(crate) mod session;
mod surveys;
pub(crate) mod sync;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use fieldsync_protocol::cbor::Limits;
use fieldsync_protocol::wire::{CONTENT_TYPE, ErrorBody, Message, WireError};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, CborError};

/// Largest body of a sign-in request (login, enroll): a token or code and a device name.
const PUBLIC_BODY: usize = 16 * 1024;

/// Build the router with every route and the server-wide limits.
///
/// Admission, outermost first: every error becomes the documented body in its route's format
/// ([`render_errors`]); sign-in routes, the only ones without a token, have their own small
/// pool of slots and a small body limit ([`admit_public`]); every other route authenticates
/// from the headers before anything else, then takes a per-caller slot, a server-wide slot
/// and its body's size from the in-flight byte budget ([`admit_caller`]), so neither
/// unauthenticated clients nor one busy caller can take the capacity sync needs. Bodies are
/// read within the body timeout; headers within the header timeout (see `http`).
pub fn router(state: AppState) -> Router {
    // Web forms: no token, so the sign-in slots, and a body limit of their own.
    let web = crate::web::routes()
        .layer(middleware::from_fn_with_state(state.clone(), admit_public))
        .layer(DefaultBodyLimit::max(crate::web::MAX_POST));
    let public = Router::new()
        .route("/v1/login", post(session::login))
        .route("/v1/enroll", post(session::enroll))
        .layer(middleware::from_fn_with_state(state.clone(), admit_public))
        .layer(DefaultBodyLimit::max(PUBLIC_BODY));
    let authenticated = Router::new()
        .route("/v1/logout", post(session::logout))
        .route("/v1/me", get(session::me))
        .route("/v1/members", get(members::list).post(members::create))
        .route("/v1/members/{id}/revoke", post(members::revoke))
        .route("/v1/enumerators", post(members::create_enumerator))
        .route("/v1/enumerators/{id}/code", post(members::reissue_code))
        .route("/v1/org/support-access", put(members::support_access))
        .route("/v1/audit", get(members::audit))
        .route("/v1/audit/verify", get(rights::verify_audit))
        .route("/v1/subjects/find", post(rights::find))
        .route("/v1/subjects/export", post(rights::export))
        .route("/v1/subjects/erase", post(rights::erase))
        .route("/v1/subjects/restrict", post(rights::restrict))
        .route("/v1/subjects/unrestrict", post(rights::unrestrict))
        .route("/v1/subjects/opt-out", post(rights::opt_out))
        .route("/v1/subjects/opt-in", post(rights::opt_in))
        .route("/v1/surveys", get(surveys::list).post(surveys::publish))
        .route("/v1/surveys/{id}", get(surveys::show))
        .route("/v1/surveys/{id}/versions/{version}", get(surveys::version))
        .route("/v1/surveys/{id}/status", put(surveys::set_status))
        .route("/v1/surveys/{id}/assignments", post(surveys::assign))
        .route("/v1/surveys/{id}/links", post(links::create))
        .route(
            "/v1/surveys/{id}/invitations",
            get(links::invitations).post(links::invite),
        )
        .route("/v1/links", get(links::list))
        .route("/v1/links/{id}/revoke", post(links::revoke))
        .route("/v1/surveys/{id}/retention", put(rights::retention))
        .route("/v1/surveys/{id}/responses", get(responses::list))
        .route("/v1/surveys/{id}/export", get(responses::export))
        .route("/v1/responses/{id}", get(responses::show))
        .route("/v1/responses/{id}/media", get(media::list))
        .route("/v1/responses/{id}/media/{name}", get(media::download))
        .route("/v1/sync/push", post(sync::push))
        .route("/v1/sync/pull", post(sync::pull))
        .route("/v1/sync/media/offer", post(media::offer))
        .route("/v1/sync/media/chunk", post(media::chunk))
        // Layers wrap every route above as one service: the semaphores live in the state
        // and are shared, so the limits are server-wide, not per route.
        .layer(middleware::from_fn_with_state(state.clone(), admit_caller))
        .layer(DefaultBodyLimit::max(state.settings.max_body));
    Router::new()
        .route("/healthz", get(health::live))
        .route("/readyz", get(health::ready))
        .route("/v1/openapi.json", get(openapi::document))
        .merge(public)
        .merge(web)
        .merge(authenticated)
        .fallback(not_found)
        .layer(middleware::from_fn(render_errors))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such endpoint; GET /v1/openapi.json describes the API".into())
}

/// The id of one request, in its error body and its `x-request-id` header, so a user's report
/// can be matched with the server's log.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

impl RequestId {
    fn next() -> RequestId {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        static PREFIX: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
        // A random prefix per process, so ids from two runs of the server do not collide.
        let prefix = PREFIX.get_or_init(|| uuid::Uuid::new_v4().as_u128() as u32);
        RequestId(format!(
            "{prefix:08x}-{}",
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ))
    }
}

/// On an error response whose body is already what the route documents (the `/readyz`
/// verdict): [`render_errors`] leaves it as it is.
#[derive(Clone, Copy, Debug)]
pub(crate) struct KeepBody;

/// The kind of caller a request came from (its role, or `public` on the sign-in routes), put
/// on the response for the request's log line.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CallerKind(pub &'static str);

/// When a request's headers had arrived. The body must follow within the body timeout of this
/// moment, however long the request then waited for a slot, so a client that drips its body
/// holds its connection for at most header timeout + body timeout.
#[derive(Clone, Copy, Debug)]
struct Arrived(tokio::time::Instant);

/// Every error response leaves as the documented body, in the format of its route (CBOR on
/// `/v1/sync/`, JSON elsewhere), whoever produced it: a handler, an extractor's rejection
/// (a bad number in a path, a bad query value), the router's 405, a limit. A response without
/// an [`ErrorBody`] attached is given one from its status and text.
///
/// Every request is also logged here, once, at INFO (WARN for a server error) when its
/// response starts: its id, method, route template (never the path, which may hold ids, nor
/// the query), status, latency and the kind of caller. Every line the request causes carries
/// its id, from the span it runs in. An export's body streams on after its line.
async fn render_errors(mut req: Request, next: Next) -> Response {
    use tracing::Instrument;
    let started = tokio::time::Instant::now();
    let cbor = req.uri().path().starts_with("/v1/sync/");
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "(no route)".to_owned(), |p| p.as_str().to_owned());
    let id = RequestId::next();
    let span = tracing::info_span!("request", request_id = %id.0, caller = tracing::field::Empty);
    req.extensions_mut().insert(id.clone());
    req.extensions_mut().insert(Arrived(started));
    let response = next.run(req).instrument(span.clone()).await;
    let status = response.status();
    let caller = response
        .extensions()
        .get::<CallerKind>()
        .map_or("none", |k| k.0);
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    let (code, ms) = (status.as_u16(), (ms * 10.0).round() / 10.0);
    let method_label = method.as_str().to_owned();
    metrics::counter!(crate::metrics::HTTP_REQUESTS, "route" => route.clone(), "method" => method_label.clone(), "status" => code.to_string()).increment(1);
    metrics::histogram!(crate::metrics::HTTP_DURATION, "route" => route.clone(), "method" => method_label)
        .record(started.elapsed().as_secs_f64());
    // The request's own line names its id itself: it is written after its span has ended.
    let request_id = id.0.as_str();
    if status.is_server_error() {
        tracing::warn!(%request_id, %method, %route, status = code, ms, %caller, "request");
    } else {
        tracing::info!(%request_id, %method, %route, status = code, ms, %caller, "request");
    }
    let keep = response.extensions().get::<KeepBody>().is_some();
    let mut response = if !keep && (status.is_client_error() || status.is_server_error()) {
        let (mut parts, body) = response.into_parts();
        let mut error = match parts.extensions.remove::<ErrorBody>() {
            Some(e) => e,
            None => {
                let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
                let allow = parts
                    .headers
                    .get(header::ALLOW)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                ApiError::from_status(status, &method, &String::from_utf8_lossy(&text), allow)
                    .body()
            }
        };
        error.request_id = Some(id.0.clone());
        let mut rendered = crate::error::render(status, &error, cbor);
        for name in [header::ALLOW, header::RETRY_AFTER] {
            if let Some(v) = parts.headers.remove(&name) {
                rendered.headers_mut().insert(name, v);
            }
        }
        rendered
    } else {
        response
    };
    if let Ok(v) = HeaderValue::from_str(&id.0) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}

/// Wait for one permit of `semaphore`, at most the queue wait; `None` when the server is full.
async fn slot(
    state: &AppState,
    semaphore: &Arc<Semaphore>,
    n: u32,
) -> Option<OwnedSemaphorePermit> {
    match Arc::clone(semaphore).try_acquire_many_owned(n) {
        Ok(p) => Some(p),
        Err(_) => tokio::time::timeout(
            state.settings.queue_wait,
            Arc::clone(semaphore).acquire_many_owned(n),
        )
        .await
        .ok()
        .and_then(Result::ok),
    }
}

/// Reserve up to `max` bytes of the in-flight budget, as much as is free right now down to
/// `min`; if not even `min` is free, wait the queue wait for it. Returns the permit and the
/// bytes it holds.
pub(crate) async fn reserve_up_to(
    state: &AppState,
    max: usize,
    min: usize,
) -> Option<(OwnedSemaphorePermit, usize)> {
    let mut kib = u32::try_from(max.div_ceil(1024)).unwrap_or(u32::MAX);
    let floor = u32::try_from(min.div_ceil(1024))
        .unwrap_or(u32::MAX)
        .min(kib);
    while kib > floor {
        if let Ok(p) = Arc::clone(&state.inflight).try_acquire_many_owned(kib) {
            return Some((p, kib as usize * 1024));
        }
        kib /= 2;
    }
    slot(state, &state.inflight, floor)
        .await
        .map(|p| (p, floor as usize * 1024))
}

/// Sign-in routes: their own slots, the request timeout.
async fn admit_public(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(_slot) = slot(&state, &state.public_slots, 1).await else {
        return ApiError::Unavailable("too many sign-ins at once; retry in a few seconds".into())
            .into_response();
    };
    tracing::Span::current().record("caller", "public");
    let mut response = within_timeout(&state, next.run(req)).await;
    response.extensions_mut().insert(CallerKind("public"));
    response
}

/// Every route with a token: authenticate first (a bad token costs one index read and holds
/// nothing), then a per-caller slot, a server-wide slot and the body's bytes.
async fn admit_caller(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let caller = match Caller::from_request_parts(&mut parts, &state).await {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let kind = CallerKind(caller.role.as_str());
    tracing::Span::current().record("caller", kind.0);
    let mut response = admitted(&state, caller, parts, body, next).await;
    response.extensions_mut().insert(kind);
    response
}

/// The rest of [`admit_caller`], for a caller who authenticated.
async fn admitted(
    state: &AppState,
    caller: Caller,
    mut parts: axum::http::request::Parts,
    body: axum::body::Body,
    next: Next,
) -> Response {
    let Some(_mine) = state.callers.enter(&caller.principal_id) else {
        return ApiError::RateLimited(format!(
            "this caller already has {} requests in progress; wait for them before sending more",
            state.settings.max_per_caller
        ))
        .into_response();
    };
    let Some(_slot) = slot(state, &state.concurrency, 1).await else {
        return ApiError::Unavailable(
            "the server is at its concurrency limit; retry in a few seconds".into(),
        )
        .into_response();
    };
    // The body's declared size (or the most it may be) is reserved before it is read, so the
    // bodies held in memory at once stay under the in-flight budget.
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let has_body = !matches!(
        parts.method,
        axum::http::Method::GET | axum::http::Method::HEAD
    );
    let bytes = match (has_body, declared) {
        (false, _) => 0,
        (true, Some(n)) => n.min(state.settings.max_body),
        (true, None) => state.settings.max_body,
    };
    let kib = u32::try_from(bytes.div_ceil(1024)).unwrap_or(u32::MAX);
    let _bytes = if kib == 0 {
        None
    } else {
        match slot(state, &state.inflight, kib).await {
            Some(p) => Some(p),
            None => {
                return ApiError::Unavailable(
                    "the server is holding as many request bodies as it may; retry in a few seconds"
                        .into(),
                )
                .into_response();
            }
        }
    };
    parts.extensions.insert(caller);
    within_timeout(state, next.run(Request::from_parts(parts, body))).await
}

/// Bound how long a request may take to produce its response; one that runs past the request
/// timeout is answered 408. (A streamed export's body is bounded by the send timeout.)
async fn within_timeout(
    state: &AppState,
    response: impl std::future::Future<Output = Response>,
) -> Response {
    let timeout = state.settings.request_timeout;
    match tokio::time::timeout(timeout, response).await {
        Ok(r) => r,
        Err(_) => ApiError::Timeout(format!(
            "the request took longer than {} seconds; retry, or send smaller batches",
            timeout.as_secs()
        ))
        .into_response(),
    }
}

/// Requests in progress per caller.
#[derive(Debug)]
pub struct CallerSlots {
    max: usize,
    busy: Mutex<HashMap<String, usize>>,
}

impl CallerSlots {
    pub fn new(max: usize) -> CallerSlots {
        CallerSlots {
            max,
            busy: Mutex::new(HashMap::new()),
        }
    }

    fn enter(self: &Arc<Self>, principal: &str) -> Option<CallerSlot> {
        let mut busy = self.busy.lock().unwrap_or_else(|p| p.into_inner());
        let n = busy.entry(principal.to_owned()).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(CallerSlot {
            slots: Arc::clone(self),
            principal: principal.to_owned(),
        })
    }
}

/// One request of a caller in progress.
struct CallerSlot {
    slots: Arc<CallerSlots>,
    principal: String,
}

impl Drop for CallerSlot {
    fn drop(&mut self) {
        let mut busy = self.slots.busy.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = busy.get_mut(&self.principal) {
            *n -= 1;
            if *n == 0 {
                busy.remove(&self.principal);
            }
        }
    }
}

/// Read a request body within the body timeout (counted from the request's arrival) and the
/// body limit.
async fn read_body(req: Request, state: &AppState) -> Result<Bytes, ApiError> {
    let arrived = req
        .extensions()
        .get::<Arrived>()
        .map_or_else(tokio::time::Instant::now, |a| a.0);
    let deadline = arrived + state.settings.body_timeout;
    match tokio::time::timeout_at(deadline, Bytes::from_request(req, state)).await {
        Ok(r) => r.map_err(body_error),
        Err(_) => Err(ApiError::Timeout(format!(
            "the request body did not arrive within {} seconds; check the connection and retry",
            state.settings.body_timeout.as_secs()
        ))),
    }
}

/// A CBOR request body, decoded within the sync limits.
#[derive(Debug)]
pub struct Cbor<T>(pub T);

impl<T: Message + Send> FromRequest<AppState> for Cbor<T> {
    type Rejection = CborError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, CborError> {
        let bytes = read_body(req, state).await.map_err(CborError)?;
        // A message with its own, tighter byte bound (a media chunk) keeps it.
        let max_bytes = if T::LIMITS.max_bytes < Limits::SYNC.max_bytes {
            T::LIMITS.max_bytes.min(state.settings.max_body)
        } else {
            state.settings.max_body
        };
        let limits = Limits {
            max_bytes,
            ..T::LIMITS
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
        let bytes = read_body(req, state).await?;
        serde_json::from_slice(&bytes).map(Json).map_err(|e| {
            ApiError::BadRequest(format!("the request body is not the expected JSON: {e}"))
        })
    }
}
