//! Members and enumerators of an organisation, revocation, the support-access switch and the
//! audit log.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use fieldsync_protocol::api::{
    AuditRecord, CreatedMember, MemberInfo, NewEnumerator, NewMember, SupportAccess,
};
use serde::Deserialize;
use utoipa::IntoParams;

use super::Json;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::storage::AuditEntry;
use crate::{AppState, service};

/// `GET /v1/members`.
#[utoipa::path(
    get,
    path = "/v1/members",
    operation_id = "list_members",
    tag = "members",
    summary = "List the organisation's members and enumerators",
    description = "For admins, coordinators, ops and support staff.",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Every member and enumerator, revoked ones included",
            body = Vec<MemberInfo>),
        (status = 403, description = "An enumerator device cannot list members"),
    )
)]
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
#[utoipa::path(
    post,
    path = "/v1/members",
    operation_id = "create_member",
    tag = "members",
    summary = "Create a coordinator, ops or admin member",
    description = "For admins and coordinators; only an admin creates another admin. The \
        answer holds the member's one-time login token, shown only this once.",
    security(("bearer" = [])),
    request_body = NewMember,
    responses(
        (status = 201, description = "The member and its one-time login token",
            body = CreatedMember),
        (status = 403, description = "The caller may not create members, or not admins"),
        (status = 422, description = "The name is not 1 to 200 printable characters, or the \
            role is `enumerator` (use `POST /v1/enumerators`) or `support`"),
    )
)]
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
#[utoipa::path(
    post,
    path = "/v1/enumerators",
    operation_id = "create_enumerator",
    tag = "members",
    summary = "Create an enumerator and its enrollment code",
    description = "For admins and coordinators. The answer holds the one-time enrollment code \
        a device redeems with `POST /v1/enroll`, shown only this once.",
    security(("bearer" = [])),
    request_body = NewEnumerator,
    responses(
        (status = 201, description = "The enumerator and its one-time enrollment code",
            body = CreatedMember),
        (status = 403, description = "The caller may not create enumerators"),
        (status = 404, description = "A survey to assign is not in this organisation"),
        (status = 422, description = "The name is not 1 to 200 printable characters"),
    )
)]
pub async fn create_enumerator(
    State(state): State<AppState>,
    caller: Caller,
    Json(req): Json<NewEnumerator>,
) -> Result<(StatusCode, axum::Json<CreatedMember>), ApiError> {
    let created = service::members::create_enumerator(&state.db, &caller, req).await?;
    Ok((StatusCode::CREATED, axum::Json(created)))
}

/// `POST /v1/enumerators/{id}/code`: a new one-time enrollment code for an enumerator.
#[utoipa::path(
    post,
    path = "/v1/enumerators/{id}/code",
    operation_id = "reissue_enrollment_code",
    tag = "members",
    summary = "Issue a new enrollment code for an enumerator",
    description = "For admins and coordinators. Any unused code of the enumerator stops working.",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The enumerator's id")),
    responses(
        (status = 200, description = "The enumerator and its new one-time enrollment code",
            body = CreatedMember),
        (status = 403, description = "The caller may not issue enrollment codes"),
        (status = 404, description = "No enumerator with this id in the organisation"),
        (status = 422, description = "The enumerator was revoked"),
    )
)]
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
#[utoipa::path(
    post,
    path = "/v1/members/{id}/revoke",
    operation_id = "revoke_member",
    tag = "members",
    summary = "Revoke a member or enumerator and all its tokens",
    description = "For admins and coordinators; only an admin revokes an admin.",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The member's or enumerator's id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 403, description = "The caller may not revoke members, or not admins"),
        (status = 404, description = "No member with this id in the organisation"),
    )
)]
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    service::members::revoke(&state.db, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /v1/org/support-access`: only an organisation admin may switch support access.
#[utoipa::path(
    put,
    path = "/v1/org/support-access",
    operation_id = "set_support_access",
    tag = "members",
    summary = "Switch the operator's support staff's access on or off",
    description = "For admins. While it is off, support staff are refused (and the refusal is \
        audited).",
    security(("bearer" = [])),
    request_body = SupportAccess,
    responses(
        (status = 200, description = "The switch as set", body = SupportAccess),
        (status = 403, description = "Only an admin may switch support access"),
    )
)]
pub async fn support_access(
    State(state): State<AppState>,
    caller: Caller,
    Json(req): Json<SupportAccess>,
) -> Result<axum::Json<SupportAccess>, ApiError> {
    service::members::set_support_access(&state.db, &caller, req.enabled).await?;
    Ok(axum::Json(req))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Entries after this id (the last `id` of the previous page); from the start by default.
    #[serde(default)]
    after: i64,
    /// Entries per page, 1 to 5000 (500 by default).
    #[serde(default)]
    limit: Option<u32>,
}

/// `GET /v1/audit`: the organisation's audit log, for its admins.
// `AuditEntry` is a storage type; `AuditRecord` is its JSON shape (the same fields).
#[utoipa::path(
    get,
    path = "/v1/audit",
    operation_id = "read_audit_log",
    tag = "members",
    summary = "Read the organisation's audit log",
    description = "For admins. Oldest first, one page at a time.",
    security(("bearer" = [])),
    params(AuditQuery),
    responses(
        (status = 200, description = "A page of audit entries", body = Vec<AuditRecord>),
        (status = 400, description = "`after` or `limit` is not a number"),
        (status = 403, description = "Only an admin may read the audit log"),
    )
)]
pub async fn audit(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<AuditQuery>,
) -> Result<axum::Json<Vec<AuditEntry>>, ApiError> {
    Ok(axum::Json(
        service::members::audit_log(&state.db, &caller, q.after, q.limit).await?,
    ))
}
