//! Reading responses: who sees which (a device only its own, of surveys assigned to it), one
//! response as stored, and what an export holds.

use fieldsync_protocol::api::{ResponsePage, ResponseView, Role};
use fieldsync_protocol::survey::Survey;

use super::parse_id;
use crate::auth::{Caller, READERS};
use crate::error::ApiError;
use crate::storage::{Db, ResponseQuery};

/// The owner a caller is limited to: an enumerator device sees only the documents it made.
pub fn owner_scope(caller: &Caller) -> Option<String> {
    (caller.role == Role::Enumerator).then(|| caller.principal_id.clone())
}

/// The survey must exist in the caller's organisation (and be assigned, for a device).
pub async fn visible_survey(db: &Db, caller: &Caller, survey_id: &str) -> Result<(), ApiError> {
    let enumerator = owner_scope(caller);
    db.survey(&caller.org_id, survey_id, enumerator.as_deref())
        .await?
        .map(|_| ())
        .ok_or_else(|| ApiError::NotFound("no such survey; run `fieldsync survey list`".into()))
}

/// Filters of a listing, as the caller gave them.
#[derive(Clone, Debug, Default)]
pub struct Listing {
    pub status: Option<String>,
    pub invalid_only: bool,
    pub conflicted_only: bool,
    pub after: Option<String>,
    pub limit: Option<u32>,
}

/// One page of a survey's responses the caller may see.
pub async fn list(
    db: &Db,
    caller: &Caller,
    survey_id: &str,
    listing: Listing,
) -> Result<ResponsePage, ApiError> {
    let survey_id = parse_id(survey_id, "survey")?;
    visible_survey(db, caller, &survey_id).await?;
    if let Some(s) = &listing.status
        && !["draft", "submitted", "reviewed"].contains(&s.as_str())
    {
        return Err(ApiError::Invalid(format!(
            "unknown status {s:?}; use draft, submitted or reviewed"
        )));
    }
    Ok(db
        .responses(ResponseQuery {
            org_id: caller.org_id.clone(),
            survey_id,
            status: listing.status,
            owner: owner_scope(caller),
            invalid_only: listing.invalid_only,
            conflicted_only: listing.conflicted_only,
            include_restricted: caller.role == Role::Admin,
            after: listing.after,
            limit: listing.limit.unwrap_or(500).clamp(1, 5000),
        })
        .await?)
}

/// One response, decrypted, if the caller may see it and it is readable.
pub async fn show(db: &Db, caller: &Caller, doc_id: &str) -> Result<ResponseView, ApiError> {
    let id = parse_id(doc_id, "response")?;
    let owner = owner_scope(caller);
    let summary = db
        .response(&caller.org_id, &id, owner.as_deref())
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no response {id} is visible to you")))?;
    if summary.restricted && caller.role != Role::Admin {
        return Err(ApiError::Forbidden(format!(
            "response {id} is restricted at the respondent's request; only an admin can see it until the restriction is lifted"
        )));
    }
    let warnings = summary.warnings();
    match (summary.view, summary.broken) {
        (Some(mut view), None) => {
            view.warnings = warnings;
            Ok(view)
        }
        (_, Some(reason)) => Err(ApiError::Invalid(format!(
            "response {id} is stored but cannot be read: {reason}"
        ))),
        (None, None) => Err(ApiError::Unavailable(format!(
            "response {id} was received and is still being processed; try again in a moment"
        ))),
    }
}

/// What an export of a survey holds, if the caller may export it: the survey's id, and its
/// question names across every version in form order (the first version's order, then
/// questions added by later versions where they first appear).
pub async fn export_columns(
    db: &Db,
    caller: &Caller,
    survey_id: &str,
) -> Result<(String, Vec<String>), ApiError> {
    caller.require(READERS, "export responses")?;
    let survey_id = parse_id(survey_id, "survey")?;
    visible_survey(db, caller, &survey_id).await?;
    let mut columns: Vec<String> = Vec::new();
    for json in db.survey_definitions(&caller.org_id, &survey_id).await? {
        let survey = Survey::parse_json(&json)
            .map_err(|e| ApiError::Internal(format!("stored definition does not parse: {e}")))?;
        // Answers inside repeats are not columns of the main table (`fieldsync export`
        // writes them as tables of their own, from the JSON Lines export).
        for q in survey.answerable().filter(|q| q.repeat.is_none()) {
            if !columns.iter().any(|c| c == &q.name) {
                columns.push(q.name.clone());
            }
        }
    }
    Ok((survey_id, columns))
}
