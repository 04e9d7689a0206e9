//! Organisations and support staff, as the operator creates them at the command line.

use fieldsync_protocol::api::Role;
use uuid::Uuid;

use super::new_credential;
use crate::keys::{KeyRing, ORG_KEY_ID};
use crate::storage::{AuditEvent, CredentialKind, Db, NewOrg, NewPrincipal, StorageError};

/// What creating an organisation produced.
#[derive(Clone, Debug)]
pub struct CreatedOrg {
    pub org_id: String,
    pub admin_id: String,
    /// One-time login token of the first admin.
    pub admin_token: String,
}

/// Create an organisation in `region` with its key and a first admin.
pub async fn create(
    db: &Db,
    keys: &KeyRing,
    name: &str,
    region: &str,
) -> Result<CreatedOrg, StorageError> {
    let org_id = Uuid::new_v4().to_string();
    let wrapped_key = keys
        .new_org_key(&org_id)
        .map_err(|e| StorageError::Corrupt(e.to_string()))?;
    let admin_id = Uuid::new_v4().to_string();
    let (admin_token, credential) = new_credential(CredentialKind::Login)?;
    db.create_org(
        NewOrg {
            id: org_id.clone(),
            name: name.to_owned(),
            region: region.to_owned(),
            wrapped_key,
            key_id: ORG_KEY_ID.0,
            audit: AuditEvent::operator(Some(&org_id), "org_created")
                .target(org_id.clone())
                .detail(name),
        },
        NewPrincipal {
            id: admin_id.clone(),
            org_id: Some(org_id.clone()),
            role: Role::Admin,
            name: "admin".to_owned(),
            created_by: None,
            credential,
            assign: Vec::new(),
            audit: None,
        },
    )
    .await?;
    Ok(CreatedOrg {
        org_id,
        admin_id,
        admin_token,
    })
}

/// Create a support agent (no organisation) with a one-time login token: (id, token).
pub async fn create_support(db: &Db, name: &str) -> Result<(String, String), StorageError> {
    let id = Uuid::new_v4().to_string();
    let (token, credential) = new_credential(CredentialKind::Login)?;
    db.create_principal(NewPrincipal {
        id: id.clone(),
        org_id: None,
        role: Role::Support,
        name: name.to_owned(),
        created_by: None,
        credential,
        assign: Vec::new(),
        audit: None,
    })
    .await?;
    Ok((id, token))
}

/// Revoke a support agent and every credential it holds; false if there is none.
pub async fn revoke_support(db: &Db, support_id: &str) -> Result<bool, StorageError> {
    db.revoke_support(
        support_id,
        AuditEvent::operator(None, "support_revoked").target(support_id),
    )
    .await
}
