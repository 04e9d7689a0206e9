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
#[utoipa::path(
    post,
    path = "/v1/subjects/find",
    operation_id = "find_subject",
    tag = "subjects",
    summary = "Find the responses held about a person",
    description = "For admins. The person is named in the body, never in the URL; the request is audited, without the identifier.",
    security(("bearer" = [])),
    request_body = SubjectQuery,
    responses(
        (status = 200, description = "The person's responses, and whether they are on the do-not-contact list", body = SubjectFound),
        (status = 403, description = "Only an admin may act on a person's data"),
        (status = 422, description = "The identifier is empty once normalised"),
    )
)]
pub async fn find(
    State(state): State<AppState>,
    caller: Caller,
    Json(q): Json<SubjectQuery>,
) -> Result<axum::Json<SubjectFound>, ApiError> {
    Ok(axum::Json(service::rights::find(&state, &caller, q).await?))
}

/// `POST /v1/subjects/export`.
#[utoipa::path(
    post,
    path = "/v1/subjects/export",
    operation_id = "export_subject",
    tag = "subjects",
    summary = "Export everything held about a person (right of access)",
    description = "For admins. The person is named in the body, never in the URL; the request is audited, without the identifier.",
    security(("bearer" = [])),
    request_body = SubjectQuery,
    responses(
        (status = 200, description = "Each response with its answers, files and processing record", body = SubjectExport),
        (status = 403, description = "Only an admin may act on a person's data"),
        (status = 422, description = "The identifier is empty once normalised"),
    )
)]
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
#[utoipa::path(
    post,
    path = "/v1/subjects/erase",
    operation_id = "erase_subject",
    tag = "subjects",
    summary = "Erase every response held about a person, for ever",
    description = "For admins. The person is named in the body, never in the URL; the request is audited, without the identifier.",
    security(("bearer" = [])),
    request_body = SubjectErase,
    responses(
        (status = 200, description = "The responses erased", body = SubjectChanged),
        (status = 403, description = "Only an admin may act on a person's data"),
        (status = 422, description = "The identifier is empty once normalised, or the reason is not 1 to 500 printable characters or contains the identifier"),
    )
)]
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
#[utoipa::path(
    post,
    path = "/v1/subjects/restrict",
    operation_id = "restrict_subject",
    tag = "subjects",
    summary = "Restrict processing of a person's responses",
    description = "For admins. The person is named in the body, never in the URL; the request is audited, without the identifier.",
    security(("bearer" = [])),
    request_body = SubjectQuery,
    responses(
        (status = 200, description = "The responses newly restricted", body = SubjectChanged),
        (status = 403, description = "Only an admin may act on a person's data"),
        (status = 422, description = "The identifier is empty once normalised"),
    )
)]
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
#[utoipa::path(
    post,
    path = "/v1/subjects/unrestrict",
    operation_id = "unrestrict_subject",
    tag = "subjects",
    summary = "Lift the restriction of a person's responses",
    description = "For admins. The person is named in the body, never in the URL; the request is audited, without the identifier.",
    security(("bearer" = [])),
    request_body = SubjectQuery,
    responses(
        (status = 200, description = "The responses whose restriction was lifted", body = SubjectChanged),
        (status = 403, description = "Only an admin may act on a person's data"),
        (status = 422, description = "The identifier is empty once normalised"),
    )
)]
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
#[utoipa::path(
    post,
    path = "/v1/subjects/opt-out",
    operation_id = "opt_out_subject",
    tag = "subjects",
    summary = "Put a person on the do-not-contact list",
    description = "For admins. The person is named in the body, never in the URL; the request is audited, without the identifier.",
    security(("bearer" = [])),
    request_body = SubjectQuery,
    responses(
        (status = 200, description = "Whether the person is listed now, and whether this changed it", body = DoNotContact),
        (status = 403, description = "Only an admin may act on a person's data"),
        (status = 422, description = "The identifier is empty once normalised"),
    )
)]
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
#[utoipa::path(
    post,
    path = "/v1/subjects/opt-in",
    operation_id = "opt_in_subject",
    tag = "subjects",
    summary = "Take a person off the do-not-contact list",
    description = "For admins. The person is named in the body, never in the URL; the request is audited, without the identifier.",
    security(("bearer" = [])),
    request_body = SubjectQuery,
    responses(
        (status = 200, description = "Whether the person is listed now, and whether this changed it", body = DoNotContact),
        (status = 403, description = "Only an admin may act on a person's data"),
        (status = 422, description = "The identifier is empty once normalised"),
    )
)]
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
#[utoipa::path(
    put,
    path = "/v1/surveys/{id}/retention",
    operation_id = "set_survey_retention",
    tag = "subjects",
    summary = "Set how long a survey's responses are kept",
    description = "For admins. Responses past the period (counted from when the server first \
        received them) are erased by the server's purge; `null` keeps them until erased.",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "The survey's id")),
    request_body = Retention,
    responses(
        (status = 200, description = "The retention as set", body = Retention),
        (status = 403, description = "Only an admin may set a survey's retention"),
        (status = 404, description = "No such survey in the organisation"),
        (status = 422, description = "A retention of 0 seconds"),
    )
)]
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
#[utoipa::path(
    get,
    path = "/v1/audit/verify",
    operation_id = "verify_audit_log",
    tag = "members",
    summary = "Verify the organisation's audit chain",
    description = "For admins. Checks every entry's seal and link, and that the chain ends \
        where its head says.",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "What was checked and the first problem, if any",
            body = AuditVerification),
        (status = 403, description = "Only an admin may verify the audit log"),
    )
)]
pub async fn verify_audit(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<axum::Json<AuditVerification>, ApiError> {
    Ok(axum::Json(
        service::rights::verify_audit(&state, &caller).await?,
    ))
}
