//! Crafted Automerge changes (fixtures/hostile/, each a real input that makes automerge 0.12
//! panic or abort) pushed through the real sandbox: a push is acknowledged once stored, but a
//! change that would break its document is refused when the materialiser checks it, so a
//! readable response stays readable, exactly as it was; the poison is never relayed to another
//! client or exported; and the session that pushed it is told at its next pull.

use axum::http::StatusCode;
use fieldsync_protocol::api::ResponseView;
use fieldsync_protocol::document::{ChangeInfo, ResponseDoc};
use fieldsync_protocol::wire::{DocChanges, PullResponse, PushOutcome};
use serde_bytes::ByteBuf;
use uuid::Uuid;

use super::common::*;

fn hostile(name: &str) -> Vec<u8> {
    let path = format!("{}/../fixtures/hostile/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

/// The same document header as `doc`, carrying only `change`.
fn with_change(doc: &DocChanges, change: Vec<u8>) -> DocChanges {
    DocChanges {
        changes: vec![ByteBuf::from(change)],
        ..doc.clone()
    }
}

async fn show(h: &Harness, token: &str, id: Uuid) -> (StatusCode, Option<ResponseView>) {
    let r = h
        .send(Req::get(format!("/v1/responses/{id}")).token(token))
        .await;
    let view = (r.status == StatusCode::OK).then(|| r.json());
    (r.status, view)
}

fn relayed(pages: &[PullResponse], id: Uuid) -> Vec<Vec<u8>> {
    pages
        .iter()
        .flat_map(|p| &p.docs)
        .filter(|d| d.doc_id == id)
        .flat_map(|d| d.changes.iter().map(|c| c.to_vec()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_change_cannot_make_a_readable_response_unreadable() {
    let (h, org, survey) = Harness::with_household().await;
    let (_, reader) = h
        .member(&org, fieldsync_protocol::api::Role::Ops, "Reader")
        .await;
    let good = response(survey, 1, &[&[("head_name", text("Amina"))]]);
    let id = good.doc_id;
    h.push_ok(&org.coordinator, vec![good.clone()]).await;
    h.materialize().await;
    let (status, before) = show(&h, &org.admin, id).await;
    assert_eq!(status, StatusCode::OK);
    let before = before.expect("view");

    // 18 bytes that decode as a change and make automerge panic when any document loads them.
    let poison = hostile("poison-change.bin");
    let resp = h
        .push_ok(&org.coordinator, vec![with_change(&good, poison.clone())])
        .await;
    assert_eq!(
        resp.results[0].outcome,
        PushOutcome::Stored {
            new: 1,
            duplicate: 0
        },
        "stored changes are acknowledged; checking them is the materialiser's job"
    );
    h.materialize().await;

    // The response reads exactly as before, in show, listing and export.
    let (status, after) = show(&h, &org.admin, id).await;
    assert_eq!(status, StatusCode::OK, "the response must stay readable");
    let after = after.expect("view");
    assert_eq!(after.answers, before.answers);
    assert_eq!(after.updated_at, before.updated_at);
    let r = h
        .send(
            Req::get(format!(
                "/v1/surveys/{survey}/export?format=jsonl&status=all"
            ))
            .token(&org.admin),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text().contains(&id.to_string()), "still exported");
    assert!(r.text().contains("Amina"));

    // Another client pulls the good changes and never the poison.
    let pages = h.pull_pages(&reader).await;
    let got = relayed(&pages, id);
    assert_eq!(got.len(), good.changes.len());
    assert!(
        !got.contains(&poison),
        "the poison change must not be relayed"
    );
    let mut doc = ResponseDoc::from_changes(&got).expect("what is relayed loads");
    assert_eq!(doc.all_changes().len(), good.changes.len());

    // The session that pushed it is told, once, naming the document.
    let pages = h.pull_pages(&org.coordinator).await;
    let notices: Vec<_> = pages.iter().flat_map(|p| &p.refused).collect();
    assert_eq!(notices.len(), 1, "{notices:?}");
    assert_eq!(notices[0].doc_id, id);
    assert_eq!(
        notices[0].hash.to_vec(),
        ChangeInfo::decode(&poison)
            .expect("decodes")
            .hash
            .0
            .to_vec()
    );
    assert!(
        pages.iter().all(|p| p.docs.is_empty()),
        "own changes are not sent back"
    );
    let cursor = pages.last().expect("a page").cursor;
    let again: PullResponse = h
        .send(
            Req::post("/v1/sync/pull")
                .token(&org.coordinator)
                .cbor(&pull_request(cursor, 1000)),
        )
        .await
        .cbor();
    assert!(
        again.refused.is_empty(),
        "a notice is delivered once per cursor"
    );

    // The response is not stuck: a real edit after the poison is accepted and relayed.
    let mut edit = ResponseDoc::from_changes(&good.changes).expect("loads");
    edit.set_writer(vec![7u8; 16], "member:coordinator");
    let heads = edit.heads();
    edit.set_answer("head_name", &text("Amina Odhiambo"), now_ms())
        .expect("edit");
    let next = edit.changes_since(&heads);
    h.push_ok(
        &org.coordinator,
        vec![DocChanges {
            changes: next.iter().cloned().map(ByteBuf::from).collect(),
            ..good.clone()
        }],
    )
    .await;
    h.materialize().await;
    let (_, edited) = show(&h, &org.admin, id).await;
    assert_eq!(
        edited.expect("view").answers.get("head_name"),
        Some(&text("Amina Odhiambo"))
    );
    let got = relayed(&h.pull_pages(&reader).await, id);
    assert_eq!(got.len(), good.changes.len() + next.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_document_made_of_crashing_changes_is_never_relayed_or_exported() {
    let (h, org, survey) = Harness::with_household().await;
    let (_, reader) = h
        .member(&org, fieldsync_protocol::api::Role::Ops, "Reader")
        .await;
    let template = response(survey, 1, &[]);
    // The poison panics the checker; the allocation bomb aborts it (it asks for gigabytes
    // under the worker's address-space limit), which the pool survives by checking alone.
    let mut ids = Vec::new();
    for name in ["poison-change.bin", "alloc-bomb-change.bin"] {
        let doc = DocChanges {
            doc_id: Uuid::new_v4(),
            ..with_change(&template, hostile(name))
        };
        ids.push(doc.doc_id);
        let r = h.push(&org.coordinator, vec![doc]).await;
        // Parsing at push time may already refuse it (422); if it is stored, the check must
        // refuse it.
        assert!(
            r.status == StatusCode::OK || r.status == StatusCode::UNPROCESSABLE_ENTITY,
            "{name}: {}",
            r.status
        );
    }
    let fine = response(survey, 1, &[&[("head_name", text("Fine"))]]);
    h.push_ok(&org.coordinator, vec![fine.clone()]).await;
    h.materialize().await;

    let pages = h.pull_pages(&reader).await;
    for id in &ids {
        assert!(relayed(&pages, *id).is_empty(), "{id} must not be relayed");
    }
    assert_eq!(relayed(&pages, fine.doc_id).len(), fine.changes.len());
    let r = h
        .send(
            Req::get(format!(
                "/v1/surveys/{survey}/export?format=jsonl&status=all"
            ))
            .token(&org.admin),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.text().lines().count(),
        1,
        "only the good response is exported"
    );
    for id in &ids {
        let (status, _) = show(&h, &org.admin, *id).await;
        assert_ne!(status, StatusCode::OK, "{id} has nothing readable to show");
    }
    // And the server still works for everyone.
    let again = response(survey, 1, &[&[("head_name", text("Later"))]]);
    h.push_ok(&org.coordinator, vec![again]).await;
}
