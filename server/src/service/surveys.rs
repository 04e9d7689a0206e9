//! Publishing survey versions, their status and assignments. The server is the only writer
//! of survey documents, so it builds them in-process: their bytes never come from a client.

use fieldsync_protocol::api::{Published, SurveyInfo, SurveyVersion};
use fieldsync_protocol::document::{SurveyDoc, SurveyMeta};
use fieldsync_protocol::survey::Survey;
use fieldsync_protocol::wire::SurveyStatus;
use uuid::Uuid;

use crate::auth::{Caller, MANAGERS};
use crate::error::ApiError;
use crate::storage::{AuditEvent, Db, Publication, StorageError, SurveyHead, SurveyWrite, now_ms};

fn doc_error(e: impl std::fmt::Display) -> StorageError {
    StorageError::Corrupt(format!("survey document: {e}"))
}

/// Publish a definition (JSON) as the next version of its survey, creating the survey on its
/// first publication. A closed survey takes no new version. The form's own `version` setting
/// names a version as ODK does: a label already published with another definition is
/// refused, and a definition already published (under any label, or none) is not published
/// again: the answer says which version it is.
pub async fn publish(db: &Db, caller: &Caller, text: &str) -> Result<Published, ApiError> {
    caller.require(MANAGERS, "publish surveys")?;
    let survey = Survey::parse_json(text).map_err(|errors| ApiError::InvalidSurvey {
        message: format!(
            "the survey definition has {} problem(s); fix every one and publish again",
            errors.0.len()
        ),
        details: errors.0.iter().map(|e| e.to_string()).collect(),
    })?;
    let missing: Vec<String> = fieldsync_protocol::survey::files::needed(survey.definition())
        .into_iter()
        .filter(|n| {
            let def = survey.definition();
            !def.files.contains_key(&n.name) && !def.media.contains_key(&n.name)
        })
        .map(|n| {
            format!(
                "survey row {}: {} uses {}, which was not published with the form",
                n.row, n.by, n.name
            )
        })
        .collect();
    if !missing.is_empty() {
        return Err(ApiError::InvalidSurvey {
            message: format!(
                "the form uses {} file(s) it was not published with; publish it with `fieldsync survey publish FORM --media DIR` (DIR holding them)",
                missing.len()
            ),
            details: missing,
        });
    }
    // Store the definition in its normalised serde form, so every reader parses the same text.
    let definition = serde_json::to_string(survey.definition())
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let (form_id, title) = (survey.form_id().to_owned(), survey.title().to_owned());
    let label = survey.version().map(str::to_owned);
    let audit = AuditEvent::by(caller, "survey_published");
    let by = caller.principal_id.clone();
    let plan_form = form_id.clone();
    let plan = Box::new(move |head: Option<SurveyHead>| {
        let now = now_ms();
        let (survey_id, version, mut doc) = match head {
            Some(head) => {
                if head.status == SurveyStatus::Closed {
                    return Err(StorageError::Conflict(format!(
                        "survey {plan_form} is closed; reopen it before publishing a new version"
                    )));
                }
                let uuid = Uuid::parse_str(&head.id).map_err(doc_error)?;
                let doc = SurveyDoc::load(&head.doc)
                    .map_err(doc_error)?
                    .with_writer(uuid.into_bytes().to_vec());
                if let Some(same) = published_before(&doc, &definition, label.as_deref())? {
                    return Ok(Publication::Unchanged(Published {
                        survey_id: uuid,
                        form_id: plan_form.clone(),
                        version: same,
                        label: label.clone(),
                        unchanged: true,
                    }));
                }
                (uuid, head.latest_version + 1, doc)
            }
            None => {
                let uuid = Uuid::new_v4();
                let meta = SurveyMeta {
                    survey_id: uuid,
                    form_id: plan_form.clone(),
                    title: title.clone(),
                };
                // The survey's own id is the server's actor for it: only this server writes it.
                let doc =
                    SurveyDoc::new(&meta, uuid.into_bytes().to_vec(), now).map_err(doc_error)?;
                (uuid, 1, doc)
            }
        };
        doc.publish(version, &definition, now).map_err(doc_error)?;
        Ok(Publication::New(Box::new(SurveyWrite {
            survey_id: survey_id.to_string(),
            version,
            label: label.clone(),
            title,
            doc: doc.save(),
            definition,
            published_by: by,
            published_at: now,
            audit: audit.target(survey_id.to_string()).detail(match &label {
                Some(l) => format!("version {version} ({l})"),
                None => format!("version {version}"),
            }),
        })))
    });
    Ok(db.publish(&caller.org_id, &form_id, plan).await?)
}

/// The version already published with this definition, if any; a refusal when the form's
/// version label is published with a different definition.
fn published_before(
    doc: &SurveyDoc,
    definition: &str,
    label: Option<&str>,
) -> Result<Option<u32>, StorageError> {
    for v in doc.versions().map_err(doc_error)? {
        let Some(stored) = doc.definition(v.version).map_err(doc_error)? else {
            continue;
        };
        if stored == definition {
            return Ok(Some(v.version));
        }
        let Some(label) = label else { continue };
        let stored_label = serde_json::from_str::<serde_json::Value>(&stored)
            .ok()
            .and_then(|d| d["settings"]["version"].as_str().map(str::to_owned));
        if stored_label.as_deref() == Some(label) {
            return Err(StorageError::Conflict(format!(
                "version {label} of this form is already published (as version {}) with a different definition; change the form's `version` setting (for example to {label}.1 or today's date) and publish again",
                v.version
            )));
        }
    }
    Ok(None)
}

/// Set a survey's status.
pub async fn set_status(
    db: &Db,
    caller: &Caller,
    survey_id: &str,
    status: SurveyStatus,
) -> Result<(), ApiError> {
    caller.require(MANAGERS, "change a survey's status")?;
    let survey_id = &super::parse_id(survey_id, "survey")?;
    let audit = AuditEvent::by(caller, "survey_status")
        .target(survey_id)
        .detail(status.as_str());
    if !db
        .set_survey_status(&caller.org_id, survey_id, status, audit)
        .await?
    {
        return Err(ApiError::NotFound(
            "no such survey; run `fieldsync survey list`".into(),
        ));
    }
    Ok(())
}

/// Assign a survey to an enumerator of the caller's organisation.
pub async fn assign(
    db: &Db,
    caller: &Caller,
    survey_id: &str,
    enumerator_id: &str,
) -> Result<(), ApiError> {
    caller.require(MANAGERS, "assign surveys")?;
    let survey_id = &super::parse_id(survey_id, "survey")?;
    let audit = AuditEvent::by(caller, "survey_assigned")
        .target(survey_id)
        .detail(enumerator_id);
    db.assign(&caller.org_id, survey_id, enumerator_id, audit)
        .await?;
    Ok(())
}

/// The surveys the caller may see: all of its organisation's, or a device's assigned ones.
pub async fn list(db: &Db, caller: &Caller) -> Result<Vec<SurveyInfo>, ApiError> {
    let enumerator = super::responses::owner_scope(caller);
    Ok(db.surveys(&caller.org_id, enumerator.as_deref()).await?)
}

/// One survey, if the caller may see it.
pub async fn show(db: &Db, caller: &Caller, survey_id: &str) -> Result<SurveyInfo, ApiError> {
    let id = super::parse_id(survey_id, "survey")?;
    let enumerator = super::responses::owner_scope(caller);
    db.survey(&caller.org_id, &id, enumerator.as_deref())
        .await?
        .ok_or_else(|| ApiError::NotFound("no such survey; run `fieldsync survey list`".into()))
}

/// One version's definition, if the caller may see the survey.
pub async fn version(
    db: &Db,
    caller: &Caller,
    survey_id: &str,
    version: u32,
) -> Result<SurveyVersion, ApiError> {
    let id = super::parse_id(survey_id, "survey")?;
    let enumerator = super::responses::owner_scope(caller);
    let found = match db
        .survey(&caller.org_id, &id, enumerator.as_deref())
        .await?
    {
        Some(_) => db.survey_version(&caller.org_id, &id, version).await?,
        None => None,
    };
    let (definition, published_at) =
        found.ok_or_else(|| ApiError::NotFound(format!("survey {id} has no version {version}")))?;
    Ok(SurveyVersion {
        survey_id: Uuid::parse_str(&id).map_err(|e| ApiError::Internal(e.to_string()))?,
        version,
        published_at,
        definition: serde_json::from_str(&definition)
            .map_err(|e| ApiError::Internal(format!("stored definition: {e}")))?,
    })
}
