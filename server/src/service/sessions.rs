//! Who is calling, and the one-time secrets exchanged for tokens: authentication, login,
//! enrollment, logout.

use fieldsync_protocol::api::{Role, SessionGrant, WhoAmI};
use fieldsync_protocol::crypto::token_hash;

use super::new_credential;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::storage::{AuditEvent, CredentialKind, Db, Redeem};

fn uuid(s: &str) -> Result<uuid::Uuid, ApiError> {
    uuid::Uuid::parse_str(s).map_err(|e| ApiError::Internal(format!("stored id {s:?}: {e}")))
}

/// The caller behind a bearer token. Support staff name the organisation they act on
/// (`org_header`); they are refused while its support switch is off or it is in another
/// region, and every request they make (`action`) is audited first, refused or not.
pub async fn authenticate(
    db: &Db,
    token: &str,
    org_header: Option<String>,
    region: &str,
    action: String,
) -> Result<Caller, ApiError> {
    let hash = token_hash(token);
    let session = hash[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>();
    let Some(p) = db.authenticate(hash).await? else {
        return Err(ApiError::Unauthenticated(
            "this token is unknown, revoked or expired; log in again or ask an admin for a new one"
                .into(),
        ));
    };
    if p.role != Role::Support {
        let org_id = p.org_id.ok_or_else(|| {
            ApiError::Unauthenticated("this token belongs to no organisation".into())
        })?;
        return Ok(Caller {
            principal_id: p.id,
            session,
            name: p.name,
            role: p.role,
            org_id,
        });
    }
    let Some(org_id) = org_header else {
        return Err(ApiError::BadRequest(format!(
            "support staff must name the organisation in the {} header",
            crate::auth::ORG_HEADER
        )));
    };
    let org = db
        .org(&org_id)
        .await?
        .filter(|o| o.region == region)
        .ok_or_else(|| ApiError::NotFound("no such organisation".into()))?;
    let allowed = org.support_access;
    let what = if allowed {
        "support_access"
    } else {
        "support_access_refused"
    };
    db.record_audit(AuditEvent {
        org_id: Some(org_id.clone()),
        actor_id: p.id.clone(),
        actor_role: "support".to_owned(),
        action: what.to_owned(),
        target: Some(action),
        detail: None,
    })
    .await?;
    if !allowed {
        return Err(ApiError::Forbidden(
            "this organisation has switched off support access; an organisation admin can switch it on"
                .into(),
        ));
    }
    Ok(Caller {
        principal_id: p.id,
        session,
        name: p.name,
        role: p.role,
        org_id,
    })
}

/// Exchange a one-time secret of kind `from` for a new token of kind `to`. `None` when the
/// secret is unknown, used, expired or revoked (the caller counts the failure).
pub async fn redeem(
    db: &Db,
    region: &str,
    secret: &str,
    from: CredentialKind,
    to: CredentialKind,
    client: Option<String>,
    attempt: Option<&str>,
) -> Result<Option<SessionGrant>, ApiError> {
    let (token, credential) = match attempt {
        Some(attempt) => super::retry_token(to, secret, attempt),
        None => new_credential(to)?,
    };
    let action = match to {
        CredentialKind::Device => "device_enrolled",
        _ => "login",
    };
    let Some(found) = db
        .redeem(Redeem {
            hash: token_hash(secret),
            from,
            new: credential,
            region: region.to_owned(),
            action: action.to_owned(),
            client,
        })
        .await?
    else {
        return Ok(None);
    };
    let p = found.principal;
    Ok(Some(match found.org {
        // Support agents log in without an organisation.
        None => SessionGrant {
            token,
            org_id: uuid::Uuid::nil(),
            org_name: String::new(),
            principal_id: uuid(&p.id)?,
            name: p.name,
            role: p.role,
        },
        Some(org) => SessionGrant {
            token,
            org_id: uuid(&org.id)?,
            org_name: org.name,
            principal_id: uuid(&p.id)?,
            name: p.name,
            role: p.role,
        },
    }))
}

/// Revoke the token the caller is using.
pub async fn logout(db: &Db, caller: &Caller, token: &str) -> Result<(), ApiError> {
    db.revoke_credential(token_hash(token), AuditEvent::by(caller, "logout"))
        .await?;
    Ok(())
}

/// Who the caller is.
pub async fn me(db: &Db, caller: &Caller) -> Result<WhoAmI, ApiError> {
    let org = db
        .org(&caller.org_id)
        .await?
        .ok_or_else(|| ApiError::NotFound("no such organisation".into()))?;
    Ok(WhoAmI {
        principal_id: uuid(&caller.principal_id)?,
        name: caller.name.clone(),
        role: caller.role,
        org_id: uuid(&org.id)?,
        org_name: org.name,
        region: org.region,
        support_access: org.support_access,
    })
}
