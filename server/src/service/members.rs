//! Members and enumerators of an organisation, revocation and the support-access switch.

use fieldsync_protocol::api::{CreatedMember, MemberInfo, NewEnumerator, NewMember, Role};
use uuid::Uuid;

use super::new_credential;
use crate::auth::{Caller, MANAGERS};
use crate::error::ApiError;
use crate::storage::{AuditEntry, AuditEvent, CredentialKind, Db, NewPrincipal};

fn check_name(name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.len() > 200 || name.chars().any(char::is_control) {
        return Err(ApiError::Invalid(
            "a name must be 1 to 200 printable characters".into(),
        ));
    }
    Ok(name.to_owned())
}

/// A coordinator, ops or (by an admin) another admin, with a one-time login token.
pub async fn create(db: &Db, caller: &Caller, req: NewMember) -> Result<CreatedMember, ApiError> {
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
    let id = Uuid::new_v4();
    let (secret, credential) = new_credential(CredentialKind::Login)?;
    db.create_principal(NewPrincipal {
        id: id.to_string(),
        org_id: Some(caller.org_id.clone()),
        role: req.role,
        name: name.clone(),
        created_by: Some(caller.principal_id.clone()),
        credential,
        assign: Vec::new(),
        audit: Some(
            AuditEvent::by(caller, "member_created")
                .target(id.to_string())
                .detail(req.role.as_str()),
        ),
    })
    .await?;
    Ok(CreatedMember {
        id,
        name,
        role: req.role,
        one_time_secret: secret,
    })
}

/// An enumerator with a one-time enrollment code, optionally assigned to surveys.
pub async fn create_enumerator(
    db: &Db,
    caller: &Caller,
    req: NewEnumerator,
) -> Result<CreatedMember, ApiError> {
    caller.require(MANAGERS, "create enumerators")?;
    let name = check_name(&req.name)?;
    let id = Uuid::new_v4();
    let (code, credential) = new_credential(CredentialKind::Enroll)?;
    db.create_principal(NewPrincipal {
        id: id.to_string(),
        org_id: Some(caller.org_id.clone()),
        role: Role::Enumerator,
        name: name.clone(),
        created_by: Some(caller.principal_id.clone()),
        credential,
        assign: req.surveys.iter().map(Uuid::to_string).collect(),
        audit: Some(AuditEvent::by(caller, "enumerator_created").target(id.to_string())),
    })
    .await?;
    Ok(CreatedMember {
        id,
        name,
        role: Role::Enumerator,
        one_time_secret: code,
    })
}

/// A new one-time enrollment code for an enumerator whose code was lost (or whose device was
/// replaced); any code of theirs not yet used stops working.
pub async fn reissue_code(db: &Db, caller: &Caller, id: &str) -> Result<CreatedMember, ApiError> {
    caller.require(MANAGERS, "issue enrollment codes")?;
    let id = super::parse_id(id, "enumerator")?;
    let target = db
        .member(&caller.org_id, &id)
        .await?
        .filter(|m| m.role == Role::Enumerator)
        .ok_or_else(|| ApiError::NotFound(format!("no enumerator {id} in this organisation")))?;
    if target.revoked {
        return Err(ApiError::Invalid(format!(
            "enumerator {} was revoked; add them again with `fieldsync enumerator add`",
            target.name
        )));
    }
    let (code, credential) = new_credential(CredentialKind::Enroll)?;
    db.issue_credential(
        &id,
        credential,
        AuditEvent::by(caller, "enrollment_code_issued").target(id.clone()),
    )
    .await?;
    Ok(CreatedMember {
        id: target.id,
        name: target.name,
        role: Role::Enumerator,
        one_time_secret: code,
    })
}

/// Revoke a member or device and all its tokens; only an admin revokes an admin.
pub async fn revoke(db: &Db, caller: &Caller, id: &str) -> Result<(), ApiError> {
    caller.require(MANAGERS, "revoke members")?;
    let id = &super::parse_id(id, "member")?;
    // A principal's role never changes, so checking it before revoking cannot race.
    let target = db
        .member(&caller.org_id, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no member {id} in this organisation")))?;
    if target.role == Role::Admin && caller.role != Role::Admin {
        return Err(ApiError::Forbidden(
            "only an admin can revoke an admin".into(),
        ));
    }
    db.revoke_member(
        &caller.org_id,
        id,
        AuditEvent::by(caller, "member_revoked").target(id),
    )
    .await?;
    Ok(())
}

/// Switch support access; only an organisation admin may.
pub async fn set_support_access(db: &Db, caller: &Caller, enabled: bool) -> Result<(), ApiError> {
    caller.require(&[Role::Admin], "switch support access")?;
    let action = if enabled {
        "support_access_on"
    } else {
        "support_access_off"
    };
    db.set_support_access(&caller.org_id, enabled, AuditEvent::by(caller, action))
        .await?;
    Ok(())
}

/// Every member and enumerator of the caller's organisation.
pub async fn list(db: &Db, caller: &Caller) -> Result<Vec<MemberInfo>, ApiError> {
    caller.require(
        &[Role::Admin, Role::Coordinator, Role::Ops, Role::Support],
        "list members",
    )?;
    Ok(db.members(&caller.org_id).await?)
}

/// The organisation's audit log after entry `after`, for its admins.
pub async fn audit_log(
    db: &Db,
    caller: &Caller,
    after: i64,
    limit: Option<u32>,
) -> Result<Vec<AuditEntry>, ApiError> {
    caller.require(&[Role::Admin], "read the audit log")?;
    let limit = limit.unwrap_or(500).clamp(1, 5000);
    Ok(db.audit_log(&caller.org_id, after, limit).await?)
}
