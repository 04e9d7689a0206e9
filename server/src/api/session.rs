//! Logging in, enrolling devices, logging out and `me`: the only routes that take a one-time
//! secret instead of a bearer token, and so the ones behind the attempt limiter.

use axum::extract::FromRequestParts;
use axum::extract::State;
use axum::http::request::Parts;
use fieldsync_protocol::api::{EnrollRequest, LoginRequest, Role, SessionGrant, WhoAmI};

use super::Json;
use crate::AppState;
use crate::auth::{Caller, client_ip};
use crate::error::ApiError;
use crate::store::principals::{self, CredentialKind};
use crate::store::{audit, orgs};

/// The client address, for the attempt limiter.
#[derive(Debug)]
pub struct ClientIp(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(client_ip(&parts.extensions)))
    }
}

fn uuid(s: &str) -> Result<uuid::Uuid, ApiError> {
    uuid::Uuid::parse_str(s).map_err(|e| ApiError::Internal(format!("stored id {s:?}: {e}")))
}

async fn redeem(
    state: &AppState,
    ip: Option<std::net::IpAddr>,
    secret: String,
    from: CredentialKind,
    to: CredentialKind,
    client: Option<String>,
) -> Result<SessionGrant, ApiError> {
    state.limiter.check(ip)?;
    if secret.is_empty() || secret.len() > 256 {
        state.limiter.failed(ip);
        return Err(ApiError::Unauthenticated(
            "that token or code is not valid; check it and try again".into(),
        ));
    }
    let region = state.settings.region.clone();
    let grant = state
        .store
        .write(move |tx| {
            let Some((p, token)) = principals::redeem(tx, &secret, from, to)? else {
                return Ok(None);
            };
            let (Some(org_id), true) = (p.org_id.clone(), p.role != Role::Support) else {
                // Support agents log in without an organisation.
                audit::record(
                    tx,
                    None,
                    &p.id,
                    p.role.as_str(),
                    "login",
                    None,
                    client.as_deref(),
                )?;
                return Ok(Some(SessionGrant {
                    token,
                    org_id: uuid::Uuid::nil(),
                    org_name: String::new(),
                    principal_id: uuid(&p.id)?,
                    name: p.name,
                    role: p.role,
                }));
            };
            let org = orgs::get(tx, &org_id)?
                .filter(|o| o.region == region)
                .ok_or_else(|| ApiError::NotFound("no such organisation".into()))?;
            let action = match to {
                CredentialKind::Device => "device_enrolled",
                _ => "login",
            };
            audit::record(
                tx,
                Some(&org_id),
                &p.id,
                p.role.as_str(),
                action,
                Some(&p.id),
                client.as_deref(),
            )?;
            Ok::<_, ApiError>(Some(SessionGrant {
                token,
                org_id: uuid(&org_id)?,
                org_name: org.name,
                principal_id: uuid(&p.id)?,
                name: p.name,
                role: p.role,
            }))
        })
        .await?;
    match grant {
        Some(g) => Ok(g),
        None => {
            state.limiter.failed(ip);
            Err(ApiError::Unauthenticated(
                "that token or code is unknown, already used or expired; ask an admin for a new one"
                    .into(),
            ))
        }
    }
}

/// `POST /v1/login`: exchange a one-time login token for a session token.
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
    )
    .await?;
    Ok(axum::Json(grant))
}

/// `POST /v1/enroll`: exchange an enrollment code for a device token.
pub async fn enroll(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Json(req): Json<EnrollRequest>,
) -> Result<axum::Json<SessionGrant>, ApiError> {
    let grant = redeem(
        &state,
        ip,
        req.code.trim().to_owned(),
        CredentialKind::Enroll,
        CredentialKind::Device,
        req.device_name,
    )
    .await?;
    Ok(axum::Json(grant))
}

/// `POST /v1/logout`: revoke the token this request carries.
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
    state
        .store
        .write(move |tx| {
            principals::revoke_token(tx, &token)?;
            audit::record(
                tx,
                Some(&caller.org_id),
                &caller.principal_id,
                caller.role.as_str(),
                "logout",
                None,
                None,
            )?;
            Ok::<_, ApiError>(())
        })
        .await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// `GET /v1/me`.
pub async fn me(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<axum::Json<WhoAmI>, ApiError> {
    let org_id = caller.org_id.clone();
    let org = state
        .store
        .read(move |c| orgs::get(c, &org_id).map_err(ApiError::from))
        .await?
        .ok_or_else(|| ApiError::NotFound("no such organisation".into()))?;
    Ok(axum::Json(WhoAmI {
        principal_id: uuid(&caller.principal_id)?,
        name: caller.name,
        role: caller.role,
        org_id: uuid(&org.id)?,
        org_name: org.name,
        region: org.region,
        support_access: org.support_access,
    }))
}
