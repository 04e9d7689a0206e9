//! The opt-out link of an invitation email (`/o/{token}`): opening it asks for a
//! confirmation (mail scanners open links; they do not press buttons), and the confirmation
//! puts the address on the organisation's do-not-contact list, so no invitation of any of its
//! surveys is sent there again. The address itself is never shown or logged.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use fieldsync_protocol::crypto::token_hash;

use super::{html, page};
use crate::AppState;
use crate::storage::AuditEvent;

const PREFIX: &str = "fso_";

async fn found(state: &AppState, token: &str) -> Option<(String, [u8; 32])> {
    if !token.starts_with(PREFIX) || token.len() > 128 {
        return None;
    }
    state
        .db
        .invitation_by_optout(token_hash(token))
        .await
        .ok()
        .flatten()
}

fn gone() -> Response {
    html(
        StatusCode::NOT_FOUND,
        page::message(
            "Invitations",
            "This link is not known",
            "It may have been mistyped. Nothing was changed.",
        ),
    )
}

/// `GET /o/{token}`: what the button does.
pub async fn ask(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    if found(&state, &token).await.is_none() {
        return gone();
    }
    html(
        StatusCode::OK,
        page::layout(
            "Stop survey invitations",
            &format!(
                "<h1>Stop survey invitations</h1><p>Press the button and this address will \
                 receive no more survey invitations from the organisation that sent it.</p>\
                 <form method=\"post\" action=\"/o/{}\"><button type=\"submit\" class=\"primary\">\
                 Stop invitations</button></form>",
                page::esc(&token)
            ),
        ),
    )
}

/// `POST /o/{token}`: put the address on the do-not-contact list.
pub async fn confirm(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let Some((org_id, hash)) = found(&state, &token).await else {
        return gone();
    };
    let audit = AuditEvent::respondent(&org_id, "subject_opt_out").detail("invitation email");
    if let Err(e) = state
        .db
        .set_do_not_contact(&org_id, hash, true, audit)
        .await
    {
        tracing::warn!(error = %e, "an opt-out could not be recorded");
        return html(
            StatusCode::SERVICE_UNAVAILABLE,
            page::message(
                "Try again",
                "That did not work",
                "Nothing was changed. Open the link again in a minute.",
            ),
        );
    }
    html(
        StatusCode::OK,
        page::message(
            "Invitations stopped",
            "Done",
            "This address will receive no more survey invitations from this organisation.",
        ),
    )
}
