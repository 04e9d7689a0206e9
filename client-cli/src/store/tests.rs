//! Store round trips on a temporary home: create, edit, submit, outbox and acknowledgement,
//! pulled changes from another writer, conflicts and their resolution.

use fieldsync_protocol::api::Role;
use fieldsync_protocol::document::{ResponseDoc, Status, SurveyDoc, SurveyMeta};
use fieldsync_protocol::wire::{
    DocChanges, DocKind, DocPushResult, PROTOCOL_VERSION, PullResponse, PushOutcome, SurveyStatus,
    SurveyUpdate,
};
use fieldsync_protocol::{Answer, Answers};
use serde_bytes::ByteBuf;
use uuid::Uuid;

use super::*;

const PASS: &str = "a test passphrase";

fn page(docs: Vec<DocChanges>, surveys: Vec<SurveyUpdate>, cursor: u64) -> PullResponse {
    PullResponse {
        protocol: PROTOCOL_VERSION,
        docs,
        surveys,
        survey_states: vec![],
        cursor,
        more: false,
        refused: vec![],
    }
}

fn setup(home: &Path) -> (Store, Uuid) {
    let mut store = Store::create(home, PASS).expect("create");
    store
        .set_account(Account {
            server: "http://127.0.0.1:1".into(),
            token: "t".into(),
            org_id: Uuid::new_v4(),
            org_name: "Org".into(),
            principal_id: Uuid::new_v4(),
            name: "Enid".into(),
            role: Role::Enumerator,
        })
        .expect("account");
    let survey_id = Uuid::new_v4();
    let meta = SurveyMeta {
        survey_id,
        form_id: "household_survey".into(),
        title: "Household".into(),
    };
    let mut doc = SurveyDoc::new(&meta, vec![9u8; 16], 1).expect("survey doc");
    let text = include_str!("../../../fixtures/surveys/household-v1.json");
    doc.publish(1, text, 1).expect("publish");
    let update = SurveyUpdate {
        survey_id,
        status: SurveyStatus::Open,
        latest_version: 1,
        document: ByteBuf::from(doc.save()),
    };
    store
        .apply_pull(&page(vec![], vec![update], 1))
        .expect("pull survey");
    (store, survey_id)
}

fn refused_consent() -> Answers {
    let mut a = Answers::new();
    for (k, v) in [
        ("enumerator_name", "Amina"),
        ("interview_start", "2024-06-14T09:12:00+03:00"),
        ("interview_mode", "phone"),
        ("consent", "no"),
    ] {
        a.insert(k.into(), Answer::from(v));
    }
    a
}

#[test]
fn create_edit_submit_push_and_acknowledge() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut store, survey_id) = setup(dir.path());

    // A draft may be incomplete; a submitted response may not.
    let (draft, _) = store
        .create_response("household_survey", None, &Answers::new(), Status::Draft)
        .expect("draft");
    assert!(
        store
            .create_response("household_survey", None, &Answers::new(), Status::Submitted)
            .is_err()
    );
    assert!(
        store
            .edit_response(&draft, &[], Some(Status::Submitted))
            .is_err()
    );
    let edits: Vec<(String, Option<Answer>)> = refused_consent()
        .into_iter()
        .map(|(k, v)| (k, Some(v)))
        .collect();
    store
        .edit_response(&draft, &edits, Some(Status::Submitted))
        .expect("complete and submit");
    let r = store.response(&draft).expect("read back");
    assert_eq!(r.meta.status, Status::Submitted);
    assert_eq!(r.answers, refused_consent());
    assert!(r.pending && r.errors.is_empty());
    let prefix = &draft.to_string()[..8];
    assert_eq!(store.find_response(prefix).expect("prefix"), draft);

    // A batch-built response reads back too (its snapshot is a run of changes).
    let mut batch = store
        .create_batch(&survey_id.to_string(), None)
        .expect("batch");
    let id = batch
        .add(&mut store, &refused_consent(), Status::Submitted)
        .expect("add")
        .expect("valid");
    batch.commit(&mut store).expect("commit");
    assert_eq!(
        store.response(&id).expect("read").answers,
        refused_consent()
    );

    let out = store.outbox_batch(100, 1 << 20).expect("outbox");
    assert_eq!(out.len(), 2);
    let results: Vec<DocPushResult> = out
        .iter()
        .map(|d| DocPushResult {
            doc_id: d.doc_id,
            outcome: PushOutcome::Stored {
                new: d.changes.len() as u32,
                duplicate: 0,
            },
        })
        .collect();
    assert_eq!(store.acknowledge(&out, &results).expect("ack"), (2, 0));
    assert!(store.outbox_batch(100, 1 << 20).expect("outbox").is_empty());
    assert_eq!(store.status_report().expect("status").pending_responses, 0);
    drop(store);

    // The store reopens with the passphrase and refuses a wrong one.
    assert!(matches!(
        Store::open(dir.path(), "wrong"),
        Err(StoreError::Crypto(CryptoError::WrongPassphrase))
    ));
    let store = Store::open(dir.path(), PASS).expect("reopen");
    assert_eq!(
        store
            .list_responses(&ResponseFilter::default())
            .expect("list")
            .len(),
        2
    );
}

#[test]
fn concurrent_edits_conflict_until_resolved() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut store, _) = setup(dir.path());
    let (id, _) = store
        .create_response(
            "household_survey",
            None,
            &refused_consent(),
            Status::Submitted,
        )
        .expect("create");
    let (doc, _) = store.load_doc(&id).expect("load");
    // A coordinator's replica starts from the device's changes and edits concurrently.
    let mut theirs = ResponseDoc::load(&doc.clone().save())
        .expect("copy")
        .with_writer(vec![7u8; 16], "coordinator:Cora");
    let heads = theirs.heads();
    theirs
        .set_answer("comments", &Answer::from("theirs"), 10)
        .expect("their edit");
    let changes = theirs.changes_since(&heads);
    store
        .edit_response(
            &id,
            &[("comments".into(), Some(Answer::from("ours")))],
            None,
        )
        .expect("our edit");
    let r = store.response(&id).expect("read");
    let pulled = DocChanges {
        doc_id: id,
        kind: DocKind::Response,
        survey_id: r.meta.survey_id,
        survey_version: 1,
        changes: changes.into_iter().map(ByteBuf::from).collect(),
    };
    assert_eq!(
        store
            .apply_pull(&page(vec![pulled], vec![], 5))
            .expect("pull")
            .changed,
        1
    );
    assert_eq!(store.cursor().expect("cursor"), 5);
    let r = store.response(&id).expect("read");
    assert_eq!(r.conflicts.len(), 1);
    let authors: Vec<Option<String>> = r.conflicts[0]
        .values
        .iter()
        .map(|v| v.author.clone())
        .collect();
    assert!(
        authors.contains(&Some("coordinator:Cora".into())),
        "{authors:?}"
    );
    let listed = store
        .list_responses(&ResponseFilter {
            conflicted_only: true,
            ..ResponseFilter::default()
        })
        .expect("list");
    assert_eq!(listed.len(), 1);
    assert!(store.resolve(&id, "head_name", &Answer::from("x")).is_err());
    store
        .resolve(&id, "comments", &Answer::from("settled"))
        .expect("resolve");
    let r = store.response(&id).expect("read");
    assert!(r.conflicts.is_empty());
    assert_eq!(r.answers.get("comments"), Some(&Answer::from("settled")));
}

/// A pulled document whose changes cannot be read is set aside; the rest of the page is
/// applied and the cursor moves on, so one bad peer cannot stall every later sync.
#[test]
fn unreadable_pulled_document_is_set_aside_and_the_page_still_applies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut store, survey_id) = setup(dir.path());
    let good_id = Uuid::now_v7();
    let good = ResponseDoc::create(
        fieldsync_protocol::document::NewResponse {
            response_id: good_id,
            survey_id,
            survey_version: 1,
            author_device: "other-device".into(),
        },
        vec![5u8; 16],
        "enumerator:Other",
        &refused_consent(),
        Status::Submitted,
        1,
    )
    .expect("good doc")
    .all_changes();
    let bad_id = Uuid::now_v7();
    let docs = vec![
        DocChanges {
            doc_id: bad_id,
            kind: DocKind::Response,
            survey_id,
            survey_version: 1,
            changes: vec![ByteBuf::from(vec![0x85, 0x6f, 0x4a, 0x83, 1, 2, 3])],
        },
        DocChanges {
            doc_id: good_id,
            kind: DocKind::Response,
            survey_id,
            survey_version: 1,
            changes: good.into_iter().map(ByteBuf::from).collect(),
        },
    ];
    let applied = store.apply_pull(&page(docs, vec![], 9)).expect("pull");
    let (changed, unreadable) = (applied.changed, applied.unreadable);
    assert_eq!(changed, 1);
    assert_eq!(unreadable.len(), 1);
    assert_eq!(unreadable[0].0, bad_id);
    assert_eq!(store.cursor().expect("cursor"), 9);
    assert!(store.response(&good_id).is_ok());
    assert!(store.response(&bad_id).is_err());
}
