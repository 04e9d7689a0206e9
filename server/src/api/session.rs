//! Logging in, enrolling devices, logging out and `me`: the only routes that take a one-time
//! secret instead of a bearer token, and so the ones behind the attempt limiter.

use axum::extract::FromRequestParts;
use axum::extract::State;
use axum::http::request::Parts;
use fieldsync_protocol::api::{EnrollRequest, LoginRequest, SessionGrant, WhoAmI};

use super::Json;
use crate::auth::{Caller, client_ip};
use crate::error::ApiError;
use crate::storage::CredentialKind;
use crate::{AppState, service};

/// The client address, for the attempt limiter.
#[derive(Debug)]
pub struct ClientIp(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(client_ip(&parts.extensions)))
    }
}

/// The longest name a device or client may give itself, in characters.
const MAX_CLIENT_NAME: usize = 64;

async fn redeem(
    state: &AppState,
    ip: Option<std::net::IpAddr>,
    secret: String,
    from: CredentialKind,
    to: CredentialKind,
    client: Option<String>,
    attempt: Option<String>,
) -> Result<SessionGrant, ApiError> {
    state.limiter.check(&state.db, ip, &secret).await?;
    // The name a device or client gives itself is shown in listings and exports.
    let client = client
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty());
    if let Some(c) = &client
        && (c.chars().count() > MAX_CLIENT_NAME || c.chars().any(char::is_control))
    {
        return Err(ApiError::BadRequest(format!(
            "a device or client name is at most {MAX_CLIENT_NAME} characters, on one line; \
             choose a shorter one such as tablet-07"
        )));
    }
    if let Some(a) = &attempt
        && !(16..=64).contains(&a.len())
    {
        return Err(ApiError::BadRequest(
            "attempt must be 16 to 64 characters; send a fresh random id and keep it for retries"
                .into(),
        ));
    }
    if secret.is_empty() || secret.len() > 256 {
        state.limiter.failed(&state.db, ip, &secret).await;
        return Err(ApiError::Unauthenticated(
            "that token or code is not valid; check it and try again".into(),
        ));
    }
    let grant = service::sessions::redeem(
        &state.db,
        &state.settings.region,
        &secret,
        from,
        to,
        client,
        attempt.as_deref(),
    )
    .await?;
    match grant {
        Some(g) => Ok(g),
        None => {
            state.limiter.failed(&state.db, ip, &secret).await;
            Err(ApiError::Unauthenticated(
                "that token or code is unknown, already used or expired; ask an admin for a new one"
                    .into(),
            ))
        }
    }
}

/// `POST /v1/login`: exchange a one-time login token for a session token.
#[utoipa::path(
    post,
    path = "/v1/login",
    operation_id = "login",
    tag = "session",
    summary = "Exchange a one-time login token for a session token",
    description = "No bearer token: the one-time login token from `POST /v1/members` is the \
        credential. Failed attempts are counted per address and token tried.",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "The session: its bearer token and who it belongs to",
            body = SessionGrant),
        (status = 400, description = "A client name over 64 characters or on several lines, \
            or an `attempt` outside 16 to 64 characters"),
        (status = 401, description = "The token is unknown, already used or expired"),
        (status = 429, description = "Too many failed attempts from this address, or with \
            this secret; wait and retry"),
        (status = 503, description = "Too many sign-ins at once, or the database is busy"),
        (status = 408, description = "The request or its body took longer than the server allows"),
    )
)]
pub async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Json(req): Json<LoginRequest>,
) -> Result<axum::Json<SessionGrant>, ApiError> {
    let grant = redeem(
        &state,
        ip,
        req.token.trim().to_owned(),
        CredentialKind::Login,
        CredentialKind::Session,
        req.client_name,
        req.attempt,
    )
    .await?;
    Ok(axum::Json(grant))
}

/// `POST /v1/enroll`: exchange an enrollment code for a device token.
#[utoipa::path(
    post,
    path = "/v1/enroll",
    operation_id = "enroll",
    tag = "session",
    summary = "Exchange an enrollment code for a device token",
    description = "No bearer token: the one-time enrollment code from `POST /v1/enumerators` \
        is the credential (typed in any case, with or without its dashes). Failed attempts are \
        counted per address and code tried.",
    request_body = EnrollRequest,
    responses(
        (status = 200, description = "The device's bearer token and the enumerator it belongs to",
            body = SessionGrant),
        (status = 400, description = "A device name over 64 characters or on several lines, \
            or an `attempt` outside 16 to 64 characters"),
        (status = 401, description = "The code is unknown, already used or expired"),
        (status = 429, description = "Too many failed attempts from this address, or with \
            this secret; wait and retry"),
        (status = 503, description = "Too many sign-ins at once, or the database is busy"),
        (status = 408, description = "The request or its body took longer than the server allows"),
    )
)]
pub async fn enroll(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Json(req): Json<EnrollRequest>,
) -> Result<axum::Json<SessionGrant>, ApiError> {
    // A short code is hashed in its written form, however it was typed.
    let code = fieldsync_protocol::crypto::canonical_code(&req.code)
        .unwrap_or_else(|| req.code.trim().to_owned());
    let grant = redeem(
        &state,
        ip,
        code,
        CredentialKind::Enroll,
        CredentialKind::Device,
        req.device_name,
        req.attempt,
    )
    .await?;
    Ok(axum::Json(grant))
}

/// `POST /v1/logout`: revoke the token this request carries.
#[utoipa::path(
    post,
    path = "/v1/logout",
    operation_id = "logout",
    tag = "session",
    summary = "Revoke the bearer token of this request",
    security(("bearer" = [])),
    responses((status = 204, description = "The token is revoked"))
)]
pub async fn logout(
    State(state): State<AppState>,
    caller: Caller,
    headers: axum::http::HeaderMap,
) -> Result<axum::http::StatusCode, ApiError> {
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_owned())
        .unwrap_or_default();
    service::sessions::logout(&state.db, &caller, &token).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// `GET /v1/me`.
#[utoipa::path(
    get,
    path = "/v1/me",
    operation_id = "who_am_i",
    tag = "session",
    summary = "Who the caller is, in which organisation",
    security(("bearer" = [])),
    responses((status = 200, description = "The caller and its organisation", body = WhoAmI))
)]
pub async fn me(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<axum::Json<WhoAmI>, ApiError> {
    Ok(axum::Json(service::sessions::me(&state.db, &caller).await?))
}
