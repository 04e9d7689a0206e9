//! Survey lifecycle through the router: a closed survey refuses new responses and keeps what it
//! accepted, a new version leaves the old one readable and its responses valid on it, and a bad
//! definition is refused with every one of its problems listed.

use axum::http::StatusCode;
use fieldsync_protocol::Answers;
use fieldsync_protocol::api::{ResponsePage, ResponseView, SurveyInfo, SurveyVersion};
use fieldsync_protocol::wire::{
    DocChanges, ErrorCode, KnownSurvey, PROTOCOL_VERSION, PullRequest, PullResponse, PushOutcome,
    SurveyStatus,
};
use uuid::Uuid;

use super::common::*;

fn rejected_code(outcome: &PushOutcome) -> Option<ErrorCode> {
    match outcome {
        PushOutcome::Rejected { code, .. } => Some(code.clone()),
        PushOutcome::Stored { .. } | PushOutcome::Unknown => None,
    }
}

async fn set_status(h: &Harness, token: &str, survey: Uuid, status: &str) {
    let r = h
        .send(
            Req::put(format!("/v1/surveys/{survey}/status"))
                .token(token)
                .json(&serde_json::json!({ "status": status })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "status: {}", r.text());
}

async fn show(h: &Harness, token: &str, id: Uuid) -> ResponseView {
    let r = h
        .send(Req::get(format!("/v1/responses/{id}")).token(token))
        .await;
    assert_eq!(r.status, StatusCode::OK, "show: {}", r.text());
    r.json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_survey_refuses_new_responses_and_keeps_every_accepted_one() {
    for db in test_databases() {
        let h = Harness::new_on(&db).await;
        let org = h.org("Acme").await;
        let survey = h
            .publish(&org.coordinator, &fixture("surveys/household-v1.json"))
            .await
            .survey_id;
        h.assign(&org.coordinator, survey, &org.enumerator_id).await;
        let accepted = response(survey, 1, &[&[("head_name", text("Joseph Mwangi"))]]);
        h.push_ok(&org.enumerator, vec![accepted.clone()]).await;
        h.materialize().await;
        let before = show(&h, &org.coordinator, accepted.doc_id).await;

        set_status(&h, &org.coordinator, survey, "closed").await;

        // New responses are refused, from a device and from a coordinator alike.
        let late = response(survey, 1, &[&[("head_name", text("Too Late"))]]);
        for token in [&org.enumerator, &org.coordinator] {
            let resp = h.push_ok(token, vec![late.clone()]).await;
            assert_eq!(
                rejected_code(&resp.results[0].outcome),
                Some(ErrorCode::SurveyClosed)
            );
        }
        // A device's further edits to an accepted response are refused too, and change nothing.
        let mut edit = accepted.clone();
        edit.changes = response(survey, 1, &[&[("head_name", text("Edited"))]]).changes;
        let resp = h.push_ok(&org.enumerator, vec![edit]).await;
        assert_eq!(
            rejected_code(&resp.results[0].outcome),
            Some(ErrorCode::SurveyClosed)
        );
        // Re-sending what was already accepted is still just a duplicate.
        let resp = h.push_ok(&org.enumerator, vec![accepted.clone()]).await;
        assert_eq!(
            resp.results[0].outcome,
            PushOutcome::Stored {
                new: 0,
                duplicate: 2
            }
        );

        h.materialize().await;
        assert_eq!(
            show(&h, &org.coordinator, accepted.doc_id).await,
            before,
            "the accepted response changed"
        );
        let r = h
            .send(Req::get(format!("/v1/responses/{}", late.doc_id)).token(&org.coordinator))
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let pulled = h.pull_all(&org.admin).await;
        assert_eq!(pulled.len(), 1);
        assert_eq!(
            pulled[0].changes, accepted.changes,
            "stored changes were touched"
        );
        let page: ResponsePage = h
            .send(Req::get(format!("/v1/surveys/{survey}/responses")).token(&org.coordinator))
            .await
            .json();
        assert_eq!(page.items.len(), 1);

        // The device learns the survey is closed at its next pull.
        let pull = PullRequest {
            protocol: PROTOCOL_VERSION,
            cursor: 0,
            limit: 100,
            known_surveys: vec![KnownSurvey {
                survey_id: survey,
                latest_version: 1,
            }],
            epoch: None,
        };
        let page: PullResponse = h
            .send(
                Req::post("/v1/sync/pull")
                    .token(&org.enumerator)
                    .cbor(&pull),
            )
            .await
            .cbor();
        assert_eq!(page.survey_states.len(), 1);
        assert_eq!(page.survey_states[0].status, SurveyStatus::Closed);

        // Reopened, it takes responses again.
        set_status(&h, &org.coordinator, survey, "open").await;
        let resp = h.push_ok(&org.enumerator, vec![late]).await;
        assert!(
            rejected_code(&resp.results[0].outcome).is_none(),
            "{:?}",
            resp.results
        );
    }
}

fn fixture_answers(file: &str, case: &str) -> Answers {
    let v: serde_json::Value = serde_json::from_str(&fixture(file)).expect("answers fixture");
    serde_json::from_value(v["cases"][case]["answers"].clone()).expect("answers")
}

fn response_with_answers(survey: Uuid, version: u32, answers: &Answers) -> DocChanges {
    let page: Vec<(&str, fieldsync_protocol::Answer)> = answers
        .iter()
        .map(|(q, a)| (q.as_str(), a.clone()))
        .collect();
    response(survey, version, &[&page])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_v2_keeps_v1_readable_and_v1_responses_valid_on_v1() {
    for db in test_databases() {
        let h = Harness::new_on(&db).await;
        let org = h.org("Acme").await;
        let v1 = h
            .publish(&org.coordinator, &fixture("surveys/household-v1.json"))
            .await;
        assert_eq!(v1.version, 1);
        // A device collects on v1 before v2 is published...
        let head_16 = fixture_answers(
            "answers/household-v1.json",
            "valid_head_age_16_allowed_in_v1",
        );
        let on_v1_early = response_with_answers(v1.survey_id, 1, &head_16);
        h.push_ok(&org.coordinator, vec![on_v1_early.clone()]).await;

        let v2 = h
            .publish(&org.coordinator, &fixture("surveys/household-v2.json"))
            .await;
        assert_eq!((v2.survey_id, v2.version), (v1.survey_id, 2));
        let survey = v1.survey_id;

        // ...and another device, still on v1, syncs after v2 is out.
        let on_v1_late = response_with_answers(survey, 1, &head_16);
        let on_v2 = response_with_answers(survey, 2, &head_16);
        let resp = h
            .push_ok(&org.coordinator, vec![on_v1_late.clone(), on_v2.clone()])
            .await;
        assert!(
            resp.results
                .iter()
                .all(|r| matches!(r.outcome, PushOutcome::Stored { .. })),
            "{:?}",
            resp.results
        );

        // Both versions stay readable, each as published.
        let info: SurveyInfo = h
            .send(Req::get(format!("/v1/surveys/{survey}")).token(&org.coordinator))
            .await
            .json();
        assert_eq!(
            (info.latest_version, info.versions.clone()),
            (2, vec![1, 2])
        );
        for (n, version) in [(1, "2024.1"), (2, "2024.2")] {
            let r = h
                .send(Req::get(format!("/v1/surveys/{survey}/versions/{n}")).token(&org.ops))
                .await;
            assert_eq!(r.status, StatusCode::OK);
            let v: SurveyVersion = r.json();
            assert_eq!(v.definition["settings"]["version"], version);
        }
        let r = h
            .send(Req::get(format!("/v1/surveys/{survey}/versions/3")).token(&org.ops))
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        // A response may not claim a version that does not exist.
        let resp = h
            .push_ok(&org.coordinator, vec![response(survey, 3, &[])])
            .await;
        assert_eq!(
            rejected_code(&resp.results[0].outcome),
            Some(ErrorCode::Invalid)
        );

        // v1 responses are validated against v1 (a 16-year-old head is fine there), the v2 one
        // against v2 (where it is not).
        h.materialize().await;
        for doc in [&on_v1_early, &on_v1_late] {
            let view = show(&h, &org.coordinator, doc.doc_id).await;
            assert_eq!(view.survey_version, 1);
            assert!(
                view.errors.is_empty(),
                "v1 response judged by another version: {:?}",
                view.errors
            );
        }
        let view = show(&h, &org.coordinator, on_v2.doc_id).await;
        assert!(
            view.errors.iter().any(|e| e.question == "head_age"),
            "{:?}",
            view.errors
        );

        // The export has a column for every question of either version.
        let r = h
            .send(
                Req::get(format!("/v1/surveys/{survey}/export?format=csv&status=all"))
                    .token(&org.coordinator),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
        let body = r.text();
        let header = body.lines().next().expect("header");
        for column in [
            "head_marital",
            "members_over65",
            "internet_access",
            "head_age",
        ] {
            assert!(
                header.split(',').any(|c| c == column),
                "no {column} column: {header}"
            );
        }
        assert_eq!(body.lines().count(), 1 + 3);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_definition_is_refused_with_every_problem_listed() {
    let h = Harness::new().await;
    let org = h.org("Acme").await;
    let expected: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&fixture("surveys/invalid/expected.json")).expect("expected.json");
    assert!(expected.len() >= 10);
    for (file, problems) in &expected {
        let problems = problems.as_array().expect("list");
        let body = fixture(&format!("surveys/invalid/{file}"));
        let r = h
            .send(
                Req::post("/v1/surveys")
                    .token(&org.coordinator)
                    .raw("application/json", body.into_bytes()),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{file}: {}",
            r.text()
        );
        let err = r.error();
        assert_eq!(err.code, ErrorCode::InvalidSurvey, "{file}");
        assert_eq!(
            err.details.len(),
            problems.len(),
            "{file}: {:#?}",
            err.details
        );
        for (detail, want) in err.details.iter().zip(problems) {
            let fragment = want["message"].as_str().expect("message");
            assert!(
                detail.contains(fragment),
                "{file}: {detail:?} does not say {fragment:?}"
            );
        }
        assert!(
            err.message.contains(&problems.len().to_string()),
            "{file}: {}",
            err.message
        );
    }
    // Nothing was published.
    let list: Vec<SurveyInfo> = h
        .send(Req::get("/v1/surveys").token(&org.coordinator))
        .await
        .json();
    assert!(list.is_empty(), "{list:?}");
}
