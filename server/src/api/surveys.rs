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
pub async fn publish(
    State(state): State<AppState>,
    caller: Caller,
    DefinitionBody(text): DefinitionBody,
) -> Result<(StatusCode, axum::Json<Published>), ApiError> {
    let published = service::surveys::publish(&state.db, &caller, &text).await?;
    Ok((StatusCode::CREATED, axum::Json(published)))
}

/// `GET /v1/surveys`.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<axum::Json<Vec<SurveyInfo>>, ApiError> {
    Ok(axum::Json(
        service::surveys::list(&state.db, &caller).await?,
    ))
}

/// `GET /v1/surveys/{id}`.
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
pub async fn assign(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(req): Json<Assignment>,
) -> Result<StatusCode, ApiError> {
    service::surveys::assign(&state.db, &caller, &id, &req.enumerator_id.to_string()).await?;
    Ok(StatusCode::NO_CONTENT)
}
