//! Publishing survey versions, listing and showing surveys, status and assignments.

use axum::body::Bytes;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::StatusCode;
use fieldsync_protocol::api::{Assignment, Published, StatusChange, SurveyInfo, SurveyVersion};

use super::{Json, body_error};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::{AppState, service};

/// The raw definition text of a publish request.
#[derive(Debug)]
pub struct DefinitionBody(String);

impl FromRequest<AppState> for DefinitionBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state).await.map_err(body_error)?;
        String::from_utf8(bytes.to_vec())
            .map(DefinitionBody)
            .map_err(|_| ApiError::BadRequest("the survey definition is not UTF-8 text".into()))
    }
}

/// `POST /v1/surveys`: publish a definition (JSON) as the next version of its survey.
#[utoipa::path(
    post,
    path = "/v1/surveys",
    operation_id = "publish_survey",
    tag = "surveys",
    summary = "Publish a survey definition as the next version of its survey",
    description = "For admins and coordinators. The body is the survey definition (the native \
        JSON form, as `fieldsync survey publish` sends it); its form id names the survey, which \
        is created on its first publication. A definition already published is not published \
        again: the answer names its version, with `unchanged`.",
    security(("bearer" = [])),
    request_body(content = Object, content_type = "application/json",
        description = "The survey definition"),
    responses(
        (status = 201, description = "The version published (or, with `unchanged`, the \
            version that already has this definition)", body = Published),
        (status = 400, description = "The body is not UTF-8 text"),
        (status = 403, description = "The caller may not publish surveys"),
        (status = 409, description = "The survey is closed, or its version label is already \
            published with another definition"),
        (status = 422, description = "The definition has problems (`details` lists each), or \
            uses files it was not published with"),
    )
)]
pub async fn publish(
    State(state): State<AppState>,
    caller: Caller,
    DefinitionBody(text): DefinitionBody,
) -> Result<(StatusCode, axum::Json<Published>), ApiError> {
    let published = service::surveys::publish(&state.db, &caller, &text).await?;
    Ok((StatusCode::CREATED, axum::Json(published)))
}

/// `GET /v1/surveys`.
#[utoipa::path(
    get,
    path = "/v1/surveys",
    operation_id = "list_surveys",
    tag = "surveys",
    summary = "List the surveys the caller may see",
    description = "Every survey of the organisation; for an enumerator device, the surveys \
        assigned to it.",
    security(("bearer" = [])),
    responses((status = 200, description = "The surveys", body = Vec<SurveyInfo>))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<axum::Json<Vec<SurveyInfo>>, ApiError> {
    Ok(axum::Json(
        service::surveys::list(&state.db, &caller).await?,
    ))
}

/// `GET /v1/surveys/{id}`.
#[utoipa::path(
    get,
    path = "/v1/surveys/{id}",
    operation_id = "show_survey",
    tag = "surveys",
    summary = "Show one survey",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The survey's id")),
    responses(
        (status = 200, description = "The survey", body = SurveyInfo),
        (status = 404, description = "No such survey visible to the caller"),
    )
)]
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<SurveyInfo>, ApiError> {
    Ok(axum::Json(
        service::surveys::show(&state.db, &caller, &id).await?,
    ))
}

/// `GET /v1/surveys/{id}/versions/{version}`.
#[utoipa::path(
    get,
    path = "/v1/surveys/{id}/versions/{version}",
    operation_id = "show_survey_version",
    tag = "surveys",
    summary = "Get one published version's definition",
    security(("bearer" = [])),
    params(
        ("id" = uuid::Uuid, Path, description = "The survey's id"),
        ("version" = u32, Path, description = "The server's version number, from 1"),
    ),
    responses(
        (status = 200, description = "The definition as published", body = SurveyVersion),
        (status = 400, description = "The version is not a number"),
        (status = 404, description = "No such survey visible to the caller, or no such version"),
    )
)]
pub async fn version(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, version)): Path<(String, u32)>,
) -> Result<axum::Json<SurveyVersion>, ApiError> {
    Ok(axum::Json(
        service::surveys::version(&state.db, &caller, &id, version).await?,
    ))
}

/// `PUT /v1/surveys/{id}/status`.
#[utoipa::path(
    put,
    path = "/v1/surveys/{id}/status",
    operation_id = "set_survey_status",
    tag = "surveys",
    summary = "Open, close or start closing a survey",
    description = "For admins and coordinators.",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The survey's id")),
    request_body = StatusChange,
    responses(
        (status = 200, description = "The status as set", body = StatusChange),
        (status = 403, description = "The caller may not change a survey's status"),
        (status = 404, description = "No such survey in the organisation"),
    )
)]
pub async fn set_status(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(req): Json<StatusChange>,
) -> Result<axum::Json<StatusChange>, ApiError> {
    service::surveys::set_status(&state.db, &caller, &id, req.status).await?;
    Ok(axum::Json(req))
}

/// `POST /v1/surveys/{id}/assignments`.
#[utoipa::path(
    post,
    path = "/v1/surveys/{id}/assignments",
    operation_id = "assign_survey",
    tag = "surveys",
    summary = "Assign a survey to an enumerator",
    description = "For admins and coordinators. Assigning twice is not an error.",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The survey's id")),
    request_body = Assignment,
    responses(
        (status = 204, description = "Assigned"),
        (status = 403, description = "The caller may not assign surveys"),
        (status = 404, description = "No such survey, or no such enumerator, in the organisation"),
    )
)]
pub async fn assign(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(req): Json<Assignment>,
) -> Result<StatusCode, ApiError> {
    service::surveys::assign(&state.db, &caller, &id, &req.enumerator_id.to_string()).await?;
    Ok(StatusCode::NO_CONTENT)
}
