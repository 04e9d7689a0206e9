//! Members and enumerators of an organisation, revocation, the support-access switch and the
//! audit log.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use fieldsync_protocol::api::{CreatedMember, MemberInfo, NewEnumerator, NewMember, SupportAccess};
use serde::Deserialize;

use super::Json;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::storage::AuditEntry;
use crate::{AppState, service};

/// `GET /v1/members`.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<axum::Json<Vec<MemberInfo>>, ApiError> {
    Ok(axum::Json(
        service::members::list(&state.db, &caller).await?,
    ))
}

/// `POST /v1/members`: a coordinator, ops or (by an admin) another admin, with a one-time
/// login token.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(req): Json<NewMember>,
) -> Result<(StatusCode, axum::Json<CreatedMember>), ApiError> {
    let created = service::members::create(&state.db, &caller, req).await?;
    Ok((StatusCode::CREATED, axum::Json(created)))
}

/// `POST /v1/enumerators`: an enumerator with a one-time enrollment code, optionally assigned
/// to surveys.
pub async fn create_enumerator(
    State(state): State<AppState>,
    caller: Caller,
    Json(req): Json<NewEnumerator>,
) -> Result<(StatusCode, axum::Json<CreatedMember>), ApiError> {
    let created = service::members::create_enumerator(&state.db, &caller, req).await?;
    Ok((StatusCode::CREATED, axum::Json(created)))
}

/// `POST /v1/enumerators/{id}/code`: a new one-time enrollment code for an enumerator.
pub async fn reissue_code(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<CreatedMember>, ApiError> {
    Ok(axum::Json(
        service::members::reissue_code(&state.db, &caller, &id).await?,
    ))
}

/// `POST /v1/members/{id}/revoke`: revoke a member or device and all its tokens.
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    service::members::revoke(&state.db, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /v1/org/support-access`: only an organisation admin may switch support access.
pub async fn support_access(
    State(state): State<AppState>,
    caller: Caller,
    Json(req): Json<SupportAccess>,
) -> Result<axum::Json<SupportAccess>, ApiError> {
    service::members::set_support_access(&state.db, &caller, req.enabled).await?;
    Ok(axum::Json(req))
}

#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    #[serde(default)]
    after: i64,
    #[serde(default)]
    limit: Option<u32>,
}

/// `GET /v1/audit`: the organisation's audit log, for its admins.
pub async fn audit(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<AuditQuery>,
) -> Result<axum::Json<Vec<AuditEntry>>, ApiError> {
    Ok(axum::Json(
        service::members::audit_log(&state.db, &caller, q.after, q.limit).await?,
    ))
}
