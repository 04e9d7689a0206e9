//! Publishing survey versions, listing and showing surveys, status and assignments.

use axum::body::Bytes;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::StatusCode;
use fieldsync_protocol::api::{
    Assignment, Published, Role, StatusChange, SurveyInfo, SurveyVersion,
};
use fieldsync_protocol::survey::Survey;

use super::{Json, body_error, parse_id};
use crate::AppState;
use crate::auth::{Caller, MANAGERS};
use crate::error::ApiError;
use crate::store::{audit, surveys};

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

fn enumerator_filter(caller: &Caller) -> Option<String> {
    (caller.role == Role::Enumerator).then(|| caller.principal_id.clone())
}

/// `POST /v1/surveys`: publish a definition (JSON) as the next version of its survey.
pub async fn publish(
    State(state): State<AppState>,
    caller: Caller,
    DefinitionBody(text): DefinitionBody,
) -> Result<(StatusCode, axum::Json<Published>), ApiError> {
    caller.require(MANAGERS, "publish surveys")?;
    let survey = Survey::parse_json(&text).map_err(|errors| ApiError::InvalidSurvey {
        message: format!(
            "the survey definition has {} problem(s); fix every one and publish again",
            errors.0.len()
        ),
        details: errors.0.iter().map(|e| e.to_string()).collect(),
    })?;
    // Store the definition in its normalised serde form, so every reader parses the same text.
    let normalised = serde_json::to_string(survey.definition())
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let published = state
        .store
        .write(move |tx| {
            let p = surveys::publish(
                tx,
                &caller.org_id,
                &survey,
                &normalised,
                &caller.principal_id,
            )?;
            audit::record(
                tx,
                Some(&caller.org_id),
                &caller.principal_id,
                caller.role.as_str(),
                "survey_published",
                Some(&p.survey_id.to_string()),
                Some(&format!("version {}", p.version)),
            )?;
            Ok::<_, ApiError>(p)
        })
        .await?;
    Ok((StatusCode::CREATED, axum::Json(published)))
}

/// `GET /v1/surveys`.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<axum::Json<Vec<SurveyInfo>>, ApiError> {
    let enumerator = enumerator_filter(&caller);
    let list = state
        .store
        .read(move |c| {
            surveys::list(c, &caller.org_id, enumerator.as_deref()).map_err(ApiError::from)
        })
        .await?;
    Ok(axum::Json(list))
}

/// `GET /v1/surveys/{id}`.
pub async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<SurveyInfo>, ApiError> {
    let id = parse_id(&id, "survey")?;
    let enumerator = enumerator_filter(&caller);
    let info = state
        .store
        .read(move |c| {
            surveys::get(c, &caller.org_id, &id, enumerator.as_deref()).map_err(ApiError::from)
        })
        .await?
        .ok_or_else(|| ApiError::NotFound("no such survey; run `fieldsync survey list`".into()))?;
    Ok(axum::Json(info))
}

/// `GET /v1/surveys/{id}/versions/{version}`.
pub async fn version(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, version)): Path<(String, u32)>,
) -> Result<axum::Json<SurveyVersion>, ApiError> {
    let id = parse_id(&id, "survey")?;
    let enumerator = enumerator_filter(&caller);
    let survey_id = id.clone();
    let found = state
        .store
        .read(move |c| {
            if surveys::get(c, &caller.org_id, &id, enumerator.as_deref())?.is_none() {
                return Ok(None);
            }
            surveys::version(c, &caller.org_id, &id, version).map_err(ApiError::from)
        })
        .await?;
    let (definition, published_at) = found.ok_or_else(|| {
        ApiError::NotFound(format!("survey {survey_id} has no version {version}"))
    })?;
    Ok(axum::Json(SurveyVersion {
        survey_id: uuid::Uuid::parse_str(&survey_id)
            .map_err(|e| ApiError::Internal(e.to_string()))?,
        version,
        published_at,
        definition: serde_json::from_str(&definition)
            .map_err(|e| ApiError::Internal(format!("stored definition: {e}")))?,
    }))
}

/// `PUT /v1/surveys/{id}/status`.
pub async fn set_status(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(req): Json<StatusChange>,
) -> Result<axum::Json<StatusChange>, ApiError> {
    caller.require(MANAGERS, "change a survey's status")?;
    let id = parse_id(&id, "survey")?;
    state
        .store
        .write(move |tx| {
            if !surveys::set_status(tx, &caller.org_id, &id, req.status)? {
                return Err(ApiError::NotFound(
                    "no such survey; run `fieldsync survey list`".into(),
                ));
            }
            audit::record(
                tx,
                Some(&caller.org_id),
                &caller.principal_id,
                caller.role.as_str(),
                "survey_status",
                Some(&id),
                Some(req.status.as_str()),
            )?;
            Ok(())
        })
        .await?;
    Ok(axum::Json(req))
}

/// `POST /v1/surveys/{id}/assignments`.
pub async fn assign(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(req): Json<Assignment>,
) -> Result<StatusCode, ApiError> {
    caller.require(MANAGERS, "assign surveys")?;
    let id = parse_id(&id, "survey")?;
    state
        .store
        .write(move |tx| {
            let enumerator = req.enumerator_id.to_string();
            surveys::assign(tx, &caller.org_id, &id, &enumerator)?;
            audit::record(
                tx,
                Some(&caller.org_id),
                &caller.principal_id,
                caller.role.as_str(),
                "survey_assigned",
                Some(&id),
                Some(&enumerator),
            )?;
            Ok::<_, ApiError>(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
