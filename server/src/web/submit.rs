//! Handing in a web response: the answers become an ordinary response document, checked in
//! the sandbox and pushed as the link's principal, exactly as a device's would be.

use fieldsync_protocol::document::{NewResponse, ResponseDoc, Status};
use fieldsync_protocol::survey::interview::Interview;
use fieldsync_protocol::survey::{DeviceValues, ValidationContext};
use fieldsync_protocol::wire::{DocChanges, DocKind, PushOutcome};

use super::{FormState, Opened, html, page};
use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::service;
use axum::http::StatusCode;
use axum::response::Response;

pub(super) async fn submit(
    state: &AppState,
    o: &Opened,
    st: &FormState,
    iv: &Interview,
) -> Result<Response, ApiError> {
    // Stamped with the time the review was reached: the same page sent again builds the
    // same change, which the server already holds.
    let at = st.reviewed_at.unwrap_or_else(crate::storage::now_ms);
    let when = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(at) * 1_000_000)
        .unwrap_or_else(|_| time::OffsetDateTime::now_utc());
    let ctx = ValidationContext::at(when);
    let device = DeviceValues {
        device_id: Some(format!("web:{}", o.link.id)),
        ..DeviceValues::default()
    };
    let answers = o.survey.complete(&iv.answers_to_save(), &device, &ctx);
    let errors = o.survey.validate(&answers, &ctx);
    if !errors.is_empty() {
        // The review passed, but what is filled in at submission (metadata, calculations at
        // this time) broke a rule: say which, and let the respondent go back.
        let list: Vec<String> = errors.iter().map(ToString::to_string).collect();
        return Ok(html(
            StatusCode::UNPROCESSABLE_ENTITY,
            page::message(
                &o.title,
                "Your answers need a change",
                &format!("{}. Go back and change them.", list.join("; ")),
            ),
        ));
    }
    let caller = Caller {
        principal_id: o.link.principal_id.clone(),
        session: format!("web-{}", o.link.id),
        name: o.link.label.clone(),
        role: fieldsync_protocol::api::Role::Enumerator,
        org_id: o.link.org_id.clone(),
    };
    let survey_id = uuid::Uuid::parse_str(&o.link.survey_id)
        .map_err(|e| ApiError::Internal(format!("link survey id: {e}")))?;
    // The actor is the response's own id: one writer per web response.
    let actor = st.response_id.as_bytes().to_vec();
    let changes = ResponseDoc::create_changes(
        NewResponse {
            response_id: st.response_id,
            survey_id,
            survey_version: st.survey_version,
            // The link's principal, as a device names itself: exports name the link as the
            // collector.
            author_device: o.link.principal_id.clone(),
        },
        actor,
        &o.link.label,
        &answers,
        Status::Submitted,
        at,
    )
    .map_err(|e| ApiError::Internal(format!("cannot build the response: {e}")))?;
    let doc = DocChanges {
        doc_id: st.response_id,
        kind: DocKind::Response,
        survey_id,
        survey_version: st.survey_version,
        changes: changes.into_iter().map(|(_, bytes)| bytes.into()).collect(),
    };
    let now = crate::storage::now_ms();
    // A personal invitation takes one response: the first submission claims it (the same
    // page sent again finds it claimed; its changes are duplicates the server already has).
    let claimed = match &o.invitation {
        Some(i) => {
            state
                .db
                .use_invitation(&i.id, &st.response_id.to_string(), now)
                .await?
        }
        None => false,
    };
    if !state.db.take_link_place(&o.link.id, now).await? {
        release(state, o, claimed, false).await;
        return Ok(super::closed());
    }
    let outcome = push(state, caller, doc).await;
    match outcome {
        Ok(PushOutcome::Stored { new, .. }) => {
            if new == 0 {
                // Sent again: the response was already in; its place was counted then.
                release(state, o, false, true).await;
            }
            Ok(html(
                StatusCode::OK,
                page::message(
                    &o.title,
                    "Thank you",
                    "Your answers were received. You can close this page.",
                ),
            ))
        }
        Ok(PushOutcome::Rejected { code, message }) => {
            release(state, o, claimed, true).await;
            if code == fieldsync_protocol::wire::ErrorCode::SurveyClosed {
                return Ok(super::closed());
            }
            tracing::info!(link = %o.link.id, "a web response was refused: {message}");
            Ok(html(
                StatusCode::CONFLICT,
                page::message(
                    &o.title,
                    "Your answers could not be accepted",
                    "The survey no longer takes them as they are. Ask whoever sent you the link.",
                ),
            ))
        }
        Ok(PushOutcome::Unknown) => {
            release(state, o, claimed, true).await;
            Err(ApiError::Internal(
                "a push outcome this server does not know".into(),
            ))
        }
        Err(e) => {
            release(state, o, claimed, true).await;
            Err(e)
        }
    }
}

/// Give back what a submission took (the invitation it claimed, the place on the link) when
/// its response was not stored, or was stored before.
async fn release(state: &AppState, o: &Opened, invitation: bool, place: bool) {
    if let (true, Some(i)) = (invitation, &o.invitation) {
        let _ = state.db.unuse_invitation(&i.id).await;
    }
    if place {
        let _ = state.db.release_link_place(&o.link.id).await;
    }
}

async fn push(state: &AppState, caller: Caller, doc: DocChanges) -> Result<PushOutcome, ApiError> {
    let _in_flight = state.pushes.enter();
    let verified = crate::api::sync::verify(state, &caller, vec![doc]).await?;
    let pushed = service::sync::push(&state.db, caller, verified).await?;
    if pushed.stored_any {
        state.materialize.notify_one();
    }
    pushed
        .results
        .into_iter()
        .next()
        .map(|r| r.outcome)
        .ok_or_else(|| ApiError::Internal("a push answered nothing".into()))
}
