//! Survey links: creating, listing and revoking the web-form links of a survey.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use fieldsync_protocol::api::{
    CreatedLink, InvitationReport, InvitationsAdded, LinkInfo, NewInvitations, NewLink,
};
use serde::Deserialize;

use super::Json;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::{AppState, service};

/// `POST /v1/surveys/{id}/links`.
#[utoipa::path(
    post,
    path = "/v1/surveys/{id}/links",
    operation_id = "create_link",
    tag = "links",
    summary = "Create a web-form link to a survey",
    description = "For admins and coordinators. The answer holds the link's path \
        (`/f/{token}`) once; only the token's hash is kept. A password is kept as an Argon2id \
        hash. Responses submitted through the link are ordinary responses, collected by the \
        link.",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The survey's id")),
    request_body = NewLink,
    responses(
        (status = 201, description = "The link, with its path", body = CreatedLink),
        (status = 400, description = "A label, password, expiry or limit that cannot be used"),
        (status = 403, description = "The caller may not create links"),
        (status = 404, description = "No such survey"),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(req): Json<NewLink>,
) -> Result<(StatusCode, axum::Json<CreatedLink>), ApiError> {
    let created = service::links::create(&state.db, &caller, &id, req).await?;
    Ok((StatusCode::CREATED, axum::Json(created)))
}

/// Which links to list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only this survey's links.
    pub survey: Option<String>,
}

/// `GET /v1/links`.
#[utoipa::path(
    get,
    path = "/v1/links",
    operation_id = "list_links",
    tag = "links",
    summary = "List the organisation's survey links",
    description = "Newest first, revoked ones too (with `revoked_at`); `open` says whether a \
        link takes responses now.",
    security(("bearer" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "The links", body = Vec<LinkInfo>),
        (status = 403, description = "The caller may not list links"),
        (status = 404, description = "The survey named is not a survey id"),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> Result<axum::Json<Vec<LinkInfo>>, ApiError> {
    Ok(axum::Json(
        service::links::list(&state.db, &caller, q.survey.as_deref()).await?,
    ))
}

/// `POST /v1/links/{id}/revoke`.
#[utoipa::path(
    post,
    path = "/v1/links/{id}/revoke",
    operation_id = "revoke_link",
    tag = "links",
    summary = "Revoke a survey link",
    description = "The link stops opening at once; responses already submitted stay.",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The link's id")),
    responses(
        (status = 204, description = "Revoked (revoking again changes nothing)"),
        (status = 403, description = "The caller may not revoke links"),
        (status = 404, description = "No such link"),
    )
)]
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    service::links::revoke(&state.db, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/surveys/{id}/invitations`.
#[utoipa::path(
    post,
    path = "/v1/surveys/{id}/invitations",
    operation_id = "add_invitations",
    tag = "links",
    summary = "Invite people to answer a survey by email",
    description = "For admins and coordinators, on a server with SMTP settings. Each address \
        is recorded once per survey (sending a list again adds nobody twice) and mailed in the \
        background with a personal single-use link and an opt-out link; addresses on the \
        organisation's do-not-contact list are skipped. Follow with `GET` on the same path.",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The survey's id")),
    request_body = NewInvitations,
    responses(
        (status = 202, description = "Recorded; sending goes on in the background", body = InvitationsAdded),
        (status = 400, description = "More than 1000 people in one request"),
        (status = 403, description = "The caller may not send invitations"),
        (status = 404, description = "No such survey"),
        (status = 422, description = "Addresses or names that cannot be used, each named"),
        (status = 503, description = "The server has no SMTP settings"),
    )
)]
pub async fn invite(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(req): Json<NewInvitations>,
) -> Result<(StatusCode, axum::Json<InvitationsAdded>), ApiError> {
    let added = crate::invite::add(&state, &caller, &id, req).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(added)))
}

/// `GET /v1/surveys/{id}/invitations`.
#[utoipa::path(
    get,
    path = "/v1/surveys/{id}/invitations",
    operation_id = "invitation_report",
    tag = "links",
    summary = "Where a survey's email invitations are",
    description = "Counts by state, and each address that could not be sent with the mail \
        server's reason.",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The survey's id")),
    responses(
        (status = 200, description = "The counts and failures", body = InvitationReport),
        (status = 403, description = "The caller may not follow invitations"),
    )
)]
pub async fn invitations(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<InvitationReport>, ApiError> {
    Ok(axum::Json(
        crate::invite::report(&state, &caller, &id).await?,
    ))
}
