//! Survey links: creating, listing and revoking the web-form links of a survey.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use fieldsync_protocol::api::{CreatedLink, LinkInfo, NewLink};
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
