//! The rules of who may write what, as pure functions over what the database holds. Every
//! backend calls them inside its own transaction, so the rules are written once and hold
//! whichever backend is underneath.

use fieldsync_protocol::api::Role;
use fieldsync_protocol::document::Status;
use fieldsync_protocol::wire::{
    DocChanges, DocKind, DocPushResult, ErrorCode, KnownSurvey, PushOutcome, SurveyState,
    SurveyStatus,
};
use uuid::Uuid;

use crate::auth::Caller;
use crate::storage::{StoredDoc, SurveyGate};

/// What the push policy decided for one document.
#[derive(Debug)]
pub enum Admission {
    /// Refused whole, with this answer.
    Refuse(DocPushResult),
    /// A document already stored: store its new changes, unless `unless_new` is given: then
    /// the push may only repeat changes already stored, and is refused with this answer if
    /// any of them is new.
    Existing { unless_new: Option<DocPushResult> },
    /// A new document: create it (owned by the pusher), then store its changes.
    Create,
}

fn refusal(doc_id: Uuid, code: ErrorCode, message: impl Into<String>) -> DocPushResult {
    DocPushResult {
        doc_id,
        outcome: PushOutcome::Rejected {
            code,
            message: message.into(),
        },
    }
}

fn refuse(doc_id: Uuid, code: ErrorCode, message: impl Into<String>) -> Admission {
    Admission::Refuse(refusal(doc_id, code, message))
}

/// Whether `pusher` may push `doc`, given the document as stored (if it is), whether the
/// pusher's organisation erased it, and its survey's gate (`None`: no such survey in the
/// pusher's organisation).
pub fn admit_push(
    pusher: &Caller,
    doc: &DocChanges,
    stored: Option<&StoredDoc>,
    erased: bool,
    gate: Option<&SurveyGate>,
) -> Admission {
    let doc_id = doc.doc_id;
    if doc.kind != DocKind::Response {
        return refuse(
            doc_id,
            ErrorCode::Forbidden,
            "only the server writes survey documents; publish a new version instead",
        );
    }
    if erased {
        // Never stored again, whatever the pusher: an erased response must not come back from
        // a device that was offline when it was erased.
        return refuse(
            doc_id,
            ErrorCode::Erased,
            format!(
                "response {doc_id} was erased on the server (at the respondent's request, or when its survey's retention period ended) and cannot be stored again; this device deletes its copy"
            ),
        );
    }
    let is_device = pusher.role == Role::Enumerator;
    let survey_id = doc.survey_id.to_string();
    if let Some(stored) = stored {
        // Another organisation's document is "not found", never "forbidden": its existence is
        // not ours to reveal.
        if stored.org_id != pusher.org_id || (is_device && stored.owner_id != pusher.principal_id) {
            return refuse(
                doc_id,
                ErrorCode::NotFound,
                format!("no response {doc_id} is visible to you"),
            );
        }
        if stored.survey_id != survey_id || stored.survey_version != doc.survey_version {
            return refuse(
                doc_id,
                ErrorCode::Invalid,
                format!(
                    "response {doc_id} belongs to survey {} version {}; it cannot move to another survey or version",
                    stored.survey_id, stored.survey_version
                ),
            );
        }
        // A retry of changes already stored (say, after a lost acknowledgement) is still
        // acknowledged as duplicates: only new changes are refused.
        if stored.restricted {
            return Admission::Existing {
                unless_new: Some(refusal(
                    doc_id,
                    ErrorCode::Restricted,
                    format!(
                        "response {doc_id} is restricted at the respondent's request and takes no edits until an admin lifts the restriction; the edits stay on this device until then"
                    ),
                )),
            };
        }
        let approved =
            stored.status.as_deref().and_then(|s| s.parse().ok()) == Some(Status::Approved);
        if is_device && approved {
            return Admission::Existing {
                unless_new: Some(refusal(
                    doc_id,
                    ErrorCode::Forbidden,
                    format!(
                        "response {doc_id} was approved by a coordinator and takes no more changes from devices; ask a coordinator to change it or to mark it has_issues"
                    ),
                )),
            };
        }
        let unless_new = (is_device && matches!(gate, Some(g) if g.status == SurveyStatus::Closed))
            .then(|| {
                refusal(
                    doc_id,
                    ErrorCode::SurveyClosed,
                    "the survey is closed and takes no more changes from devices; ask a coordinator",
                )
            });
        return Admission::Existing { unless_new };
    }
    let Some(gate) = gate else {
        return refuse(
            doc_id,
            ErrorCode::NotFound,
            format!("no survey {} in this organisation", doc.survey_id),
        );
    };
    if is_device && !gate.assigned {
        return refuse(
            doc_id,
            ErrorCode::Forbidden,
            format!(
                "survey {} is not assigned to this device; ask a coordinator to assign it",
                doc.survey_id
            ),
        );
    }
    if gate.status == SurveyStatus::Closed {
        return refuse(
            doc_id,
            ErrorCode::SurveyClosed,
            format!(
                "survey {} is closed and takes no new responses; keep the response and ask a coordinator",
                doc.survey_id
            ),
        );
    }
    if doc.survey_version == 0 || doc.survey_version > gate.latest_version {
        return refuse(
            doc_id,
            ErrorCode::Invalid,
            format!(
                "survey {} has no version {}; sync to get the published versions",
                doc.survey_id, doc.survey_version
            ),
        );
    }
    Admission::Create
}

/// A survey a puller may see, as it stands.
#[derive(Clone, Debug)]
pub struct VisibleSurvey {
    pub id: Uuid,
    pub status: SurveyStatus,
    pub latest_version: u32,
}

/// Which survey documents a pulling client gets, and the states it learns: a client learns
/// the status of every survey it holds and gets a document it lacks or holds an older version
/// of; a survey that is not open is not sent to a client that does not have it (no new
/// downloads), but one that has it still learns its new versions and status.
pub fn survey_sync(
    visible: &[VisibleSurvey],
    known: &[KnownSurvey],
) -> (Vec<SurveyState>, Vec<VisibleSurvey>) {
    let mut states = Vec::new();
    let mut send = Vec::new();
    for s in visible {
        match known.iter().find(|k| k.survey_id == s.id) {
            Some(k) => {
                states.push(SurveyState {
                    survey_id: s.id,
                    status: s.status,
                });
                if k.latest_version >= s.latest_version {
                    continue;
                }
            }
            None if s.status != SurveyStatus::Open => continue,
            None => {}
        }
        send.push(s.clone());
    }
    (states, send)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(role: Role) -> Caller {
        Caller {
            principal_id: "p".into(),
            session: "s".into(),
            name: "n".into(),
            role,
            org_id: "o".into(),
        }
    }

    fn doc(survey: Uuid, version: u32) -> DocChanges {
        DocChanges {
            doc_id: Uuid::from_u128(1),
            kind: DocKind::Response,
            survey_id: survey,
            survey_version: version,
            changes: Vec::new(),
        }
    }

    fn code(a: Admission) -> Option<ErrorCode> {
        match a {
            Admission::Refuse(DocPushResult {
                outcome: PushOutcome::Rejected { code, .. },
                ..
            }) => Some(code),
            _ => None,
        }
    }

    /// The push rules, one case each: what a device may do to its own and others'
    /// documents, and how a closed survey treats new and retried changes.
    #[test]
    fn push_admission_follows_role_ownership_and_survey_status() {
        let survey = Uuid::from_u128(7);
        let open = SurveyGate {
            status: SurveyStatus::Open,
            latest_version: 2,
            assigned: true,
        };
        let closed = SurveyGate {
            status: SurveyStatus::Closed,
            ..open.clone()
        };
        let unassigned = SurveyGate {
            assigned: false,
            ..open.clone()
        };
        let stored = |org: &str, owner: &str| StoredDoc {
            org_id: org.into(),
            survey_id: survey.to_string(),
            owner_id: owner.into(),
            survey_version: 1,
            restricted: false,
            status: Some("submitted".into()),
        };
        let device = caller(Role::Enumerator);
        let coordinator = caller(Role::Coordinator);
        let admit = |c: &Caller, d: &DocChanges, s: Option<&StoredDoc>, g: Option<&SurveyGate>| {
            admit_push(c, d, s, false, g)
        };

        assert!(matches!(
            admit(&device, &doc(survey, 1), None, Some(&open)),
            Admission::Create
        ));
        assert_eq!(
            code(admit(&device, &doc(survey, 1), None, Some(&unassigned))),
            Some(ErrorCode::Forbidden)
        );
        assert!(matches!(
            admit(&coordinator, &doc(survey, 1), None, Some(&unassigned)),
            Admission::Create
        ));
        assert_eq!(
            code(admit(&device, &doc(survey, 1), None, None)),
            Some(ErrorCode::NotFound)
        );
        assert_eq!(
            code(admit(&device, &doc(survey, 3), None, Some(&open))),
            Some(ErrorCode::Invalid)
        );
        assert_eq!(
            code(admit(&device, &doc(survey, 0), None, Some(&open))),
            Some(ErrorCode::Invalid)
        );
        assert_eq!(
            code(admit(&coordinator, &doc(survey, 1), None, Some(&closed))),
            Some(ErrorCode::SurveyClosed)
        );

        let mine = stored("o", "p");
        let theirs = stored("o", "q");
        let foreign = stored("x", "p");
        assert!(matches!(
            admit(&device, &doc(survey, 1), Some(&mine), Some(&open)),
            Admission::Existing { unless_new: None }
        ));
        assert_eq!(
            code(admit(&device, &doc(survey, 1), Some(&theirs), Some(&open))),
            Some(ErrorCode::NotFound)
        );
        assert!(matches!(
            admit(&coordinator, &doc(survey, 1), Some(&theirs), Some(&open)),
            Admission::Existing { unless_new: None }
        ));
        assert_eq!(
            code(admit(
                &coordinator,
                &doc(survey, 1),
                Some(&foreign),
                Some(&open)
            )),
            Some(ErrorCode::NotFound)
        );
        assert_eq!(
            code(admit(&device, &doc(survey, 2), Some(&mine), Some(&open))),
            Some(ErrorCode::Invalid)
        );
        // Closed: a device may only repeat what is stored (new changes are refused with the
        // given answer); a coordinator may still correct.
        match admit(&device, &doc(survey, 1), Some(&mine), Some(&closed)) {
            Admission::Existing {
                unless_new: Some(refusal),
            } => assert_eq!(
                code(Admission::Refuse(refusal)),
                Some(ErrorCode::SurveyClosed)
            ),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            admit(&coordinator, &doc(survey, 1), Some(&theirs), Some(&closed)),
            Admission::Existing { unless_new: None }
        ));
        let mut survey_doc = doc(survey, 1);
        survey_doc.kind = DocKind::Survey;
        assert_eq!(
            code(admit(&coordinator, &survey_doc, None, Some(&open))),
            Some(ErrorCode::Forbidden)
        );

        // Erased: refused with its own code, whoever pushes it, whatever the survey says.
        for who in [&device, &coordinator] {
            assert_eq!(
                code(admit_push(who, &doc(survey, 1), None, true, Some(&open))),
                Some(ErrorCode::Erased)
            );
        }
        // Restricted: nothing new is stored, from anyone; repeats are still acknowledged.
        let frozen = StoredDoc {
            restricted: true,
            ..stored("o", "p")
        };
        for who in [&device, &coordinator] {
            match admit(who, &doc(survey, 1), Some(&frozen), Some(&open)) {
                Admission::Existing {
                    unless_new: Some(refusal),
                } => assert_eq!(
                    code(Admission::Refuse(refusal)),
                    Some(ErrorCode::Restricted)
                ),
                other => panic!("{other:?}"),
            }
        }
        // Approved (also under its old name): devices may not change it, coordinators may.
        for name in ["approved", "reviewed"] {
            let approved = StoredDoc {
                status: Some(name.into()),
                ..stored("o", "p")
            };
            match admit(&device, &doc(survey, 1), Some(&approved), Some(&open)) {
                Admission::Existing {
                    unless_new: Some(refusal),
                } => assert_eq!(code(Admission::Refuse(refusal)), Some(ErrorCode::Forbidden)),
                other => panic!("{other:?}"),
            }
            assert!(matches!(
                admit(&coordinator, &doc(survey, 1), Some(&approved), Some(&open)),
                Admission::Existing { unless_new: None }
            ));
        }
    }

    #[test]
    fn closing_surveys_reach_only_devices_that_hold_them() {
        let s = |n: u128, status| VisibleSurvey {
            id: Uuid::from_u128(n),
            status,
            latest_version: 2,
        };
        let visible = [
            s(1, SurveyStatus::Open),
            s(2, SurveyStatus::Closing),
            s(3, SurveyStatus::Closing),
        ];
        let known = [KnownSurvey {
            survey_id: Uuid::from_u128(3),
            latest_version: 1,
        }];
        let (states, send) = survey_sync(&visible, &known);
        assert_eq!(states.len(), 1);
        let sent: Vec<u128> = send.iter().map(|v| v.id.as_u128()).collect();
        assert_eq!(
            sent,
            vec![1, 3],
            "new open survey, and a new version of a held one"
        );
    }
}
