//! Respondents' rights: a person's data found, exported, erased, restricted, kept off the
//! contact list; survey retention; the audit chain verified. The person is named in the body
//! of a POST, never in a URL.

use axum::extract::{Path, State};
use fieldsync_protocol::api::{
    AuditVerification, DoNotContact, Retention, SubjectChanged, SubjectErase, SubjectExport,
    SubjectFound, SubjectQuery,
};

use super::Json;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::{AppState, service};

/// `POST /v1/subjects/find`.
pub async fn find(
    State(state): State<AppState>,
    caller: Caller,
    Json(q): Json<SubjectQuery>,
) -> Result<axum::Json<SubjectFound>, ApiError> {
    Ok(axum::Json(service::rights::find(&state, &caller, q).await?))
}

/// `POST /v1/subjects/export`.
pub async fn export(
    State(state): State<AppState>,
    caller: Caller,
    Json(q): Json<SubjectQuery>,
) -> Result<axum::Json<SubjectExport>, ApiError> {
    Ok(axum::Json(
        service::rights::export(&state, &caller, q).await?,
    ))
}

/// `POST /v1/subjects/erase`.
pub async fn erase(
    State(state): State<AppState>,
    caller: Caller,
    Json(req): Json<SubjectErase>,
) -> Result<axum::Json<SubjectChanged>, ApiError> {
    let q = SubjectQuery {
        value: req.value,
        survey_id: req.survey_id,
    };
    Ok(axum::Json(
        service::rights::erase(&state, &caller, q, &req.reason).await?,
    ))
}

/// `POST /v1/subjects/restrict`.
pub async fn restrict(
    State(state): State<AppState>,
    caller: Caller,
    Json(q): Json<SubjectQuery>,
) -> Result<axum::Json<SubjectChanged>, ApiError> {
    Ok(axum::Json(
        service::rights::restrict(&state, &caller, q, true).await?,
    ))
}

/// `POST /v1/subjects/unrestrict`.
pub async fn unrestrict(
    State(state): State<AppState>,
    caller: Caller,
    Json(q): Json<SubjectQuery>,
) -> Result<axum::Json<SubjectChanged>, ApiError> {
    Ok(axum::Json(
        service::rights::restrict(&state, &caller, q, false).await?,
    ))
}

/// `POST /v1/subjects/opt-out`.
pub async fn opt_out(
    State(state): State<AppState>,
    caller: Caller,
    Json(q): Json<SubjectQuery>,
) -> Result<axum::Json<DoNotContact>, ApiError> {
    Ok(axum::Json(
        service::rights::do_not_contact(&state, &caller, q, true).await?,
    ))
}

/// `POST /v1/subjects/opt-in`.
pub async fn opt_in(
    State(state): State<AppState>,
    caller: Caller,
    Json(q): Json<SubjectQuery>,
) -> Result<axum::Json<DoNotContact>, ApiError> {
    Ok(axum::Json(
        service::rights::do_not_contact(&state, &caller, q, false).await?,
    ))
}

/// `PUT /v1/surveys/{id}/retention`.
pub async fn retention(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(req): Json<Retention>,
) -> Result<axum::Json<Retention>, ApiError> {
    service::rights::set_retention(&state.db, &caller, &id, req.retention_seconds).await?;
    Ok(axum::Json(req))
}

/// `GET /v1/audit/verify`.
pub async fn verify_audit(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<axum::Json<AuditVerification>, ApiError> {
    Ok(axum::Json(
        service::rights::verify_audit(&state, &caller).await?,
    ))
}
