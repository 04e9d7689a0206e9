//! Members and enumerators of an organisation, revocation, the support-access switch and the
//! audit log.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use fieldsync_protocol::api::{
    CreatedMember, MemberInfo, NewEnumerator, NewMember, Role, SupportAccess,
};
use serde::Deserialize;

use super::{Json, parse_id};
use crate::AppState;
use crate::auth::{Caller, MANAGERS};
use crate::error::ApiError;
use crate::store::audit::{self, AuditEntry};
use crate::store::principals::{self, CredentialKind};
use crate::store::{orgs, surveys};

fn check_name(name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.len() > 200 || name.chars().any(char::is_control) {
        return Err(ApiError::Invalid(
            "a name must be 1 to 200 printable characters".into(),
        ));
    }
    Ok(name.to_owned())
}

/// `GET /v1/members`.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<axum::Json<Vec<MemberInfo>>, ApiError> {
    caller.require(
        &[Role::Admin, Role::Coordinator, Role::Ops, Role::Support],
        "list members",
    )?;
    let org = caller.org_id.clone();
    let members = state
        .store
        .read(move |c| principals::list(c, &org).map_err(ApiError::from))
        .await?;
    Ok(axum::Json(members))
}

/// `POST /v1/members`: a coordinator, ops or (by an admin) another admin, with a one-time
/// login token.
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(req): Json<NewMember>,
) -> Result<(StatusCode, axum::Json<CreatedMember>), ApiError> {
    caller.require(MANAGERS, "create members")?;
    match req.role {
        Role::Coordinator | Role::Ops => {}
        Role::Admin if caller.role == Role::Admin => {}
        Role::Admin => {
            return Err(ApiError::Forbidden(
                "only an admin can create another admin".into(),
            ));
        }
        Role::Enumerator => {
            return Err(ApiError::Invalid(
                "enumerators are created with `fieldsync enumerator add` (POST /v1/enumerators)"
                    .into(),
            ));
        }
        Role::Support => {
            return Err(ApiError::Invalid(
                "support staff are created by the operator with `fieldsync-server admin create-support`".into(),
            ));
        }
    }
    let name = check_name(&req.name)?;
    let role = req.role;
    let created = state
        .store
        .write(move |tx| {
            let id = principals::create(
                tx,
                Some(&caller.org_id),
                role,
                &name,
                Some(&caller.principal_id),
            )?;
            let token = principals::issue(tx, &id, CredentialKind::Login)?;
            audit::record(
                tx,
                Some(&caller.org_id),
                &caller.principal_id,
                caller.role.as_str(),
                "member_created",
                Some(&id),
                Some(role.as_str()),
            )?;
            Ok::<_, ApiError>(CreatedMember {
                id: uuid::Uuid::parse_str(&id).map_err(|e| ApiError::Internal(e.to_string()))?,
                name,
                role,
                one_time_secret: token,
            })
        })
        .await?;
    Ok((StatusCode::CREATED, axum::Json(created)))
}

/// `POST /v1/enumerators`: an enumerator with a one-time enrollment code, optionally assigned
/// to surveys.
pub async fn create_enumerator(
    State(state): State<AppState>,
    caller: Caller,
    Json(req): Json<NewEnumerator>,
) -> Result<(StatusCode, axum::Json<CreatedMember>), ApiError> {
    caller.require(MANAGERS, "create enumerators")?;
    let name = check_name(&req.name)?;
    let created = state
        .store
        .write(move |tx| {
            let id = principals::create(
                tx,
                Some(&caller.org_id),
                Role::Enumerator,
                &name,
                Some(&caller.principal_id),
            )?;
            for survey in &req.surveys {
                surveys::assign(tx, &caller.org_id, &survey.to_string(), &id)?;
            }
            let code = principals::issue(tx, &id, CredentialKind::Enroll)?;
            audit::record(
                tx,
                Some(&caller.org_id),
                &caller.principal_id,
                caller.role.as_str(),
                "enumerator_created",
                Some(&id),
                None,
            )?;
            Ok::<_, ApiError>(CreatedMember {
                id: uuid::Uuid::parse_str(&id).map_err(|e| ApiError::Internal(e.to_string()))?,
                name,
                role: Role::Enumerator,
                one_time_secret: code,
            })
        })
        .await?;
    Ok((StatusCode::CREATED, axum::Json(created)))
}

/// `POST /v1/members/{id}/revoke`: revoke a member or device and all its tokens.
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require(MANAGERS, "revoke members")?;
    let id = parse_id(&id, "member")?;
    state
        .store
        .write(move |tx| {
            let target = principals::get(tx, &caller.org_id, &id)?.ok_or_else(|| {
                ApiError::NotFound(format!("no member {id} in this organisation"))
            })?;
            if target.role == Role::Admin && caller.role != Role::Admin {
                return Err(ApiError::Forbidden(
                    "only an admin can revoke an admin".into(),
                ));
            }
            principals::revoke(tx, &caller.org_id, &id)?;
            audit::record(
                tx,
                Some(&caller.org_id),
                &caller.principal_id,
                caller.role.as_str(),
                "member_revoked",
                Some(&id),
                None,
            )?;
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /v1/org/support-access`: only an organisation admin may switch support access.
pub async fn support_access(
    State(state): State<AppState>,
    caller: Caller,
    Json(req): Json<SupportAccess>,
) -> Result<axum::Json<SupportAccess>, ApiError> {
    caller.require(&[Role::Admin], "switch support access")?;
    state
        .store
        .write(move |tx| {
            orgs::set_support_access(tx, &caller.org_id, req.enabled)?;
            let action = if req.enabled {
                "support_access_on"
            } else {
                "support_access_off"
            };
            audit::record(
                tx,
                Some(&caller.org_id),
                &caller.principal_id,
                caller.role.as_str(),
                action,
                None,
                None,
            )?;
            Ok::<_, ApiError>(())
        })
        .await?;
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
    caller.require(&[Role::Admin], "read the audit log")?;
    let limit = q.limit.unwrap_or(500).clamp(1, 5000);
    let org = caller.org_id.clone();
    let entries = state
        .store
        .read(move |c| audit::list(c, &org, q.after, limit).map_err(ApiError::from))
        .await?;
    Ok(axum::Json(entries))
}
