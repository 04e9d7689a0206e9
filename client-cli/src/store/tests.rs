//! Store round trips on a temporary home: create, edit, submit, outbox and acknowledgement,
//! pulled changes from another writer, conflicts and their resolution.

use fieldsync_protocol::api::Role;
use fieldsync_protocol::document::{ResponseDoc, Status, SurveyDoc, SurveyMeta};
use fieldsync_protocol::wire::{
    DocChanges, DocKind, DocPushResult, ErrorCode, MAX_DOC_CHANGES_PER_PUSH, PROTOCOL_VERSION,
    PullRequest, PullResponse, PushOutcome, PushRequest, PushResponse, SurveyStatus, SurveyUpdate,
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
        notices: vec![],
        epoch: None,
        restarted: false,
    }
}

fn setup(home: &Path) -> (Store, Uuid) {
    setup_with(
        home,
        "household_survey",
        include_str!("../../../fixtures/surveys/household-v1.json"),
    )
}

/// A store with an account and one survey (`text`, published as version 1).
fn setup_with(home: &Path, form_id: &str, text: &str) -> (Store, Uuid) {
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
        form_id: form_id.into(),
        title: "Household".into(),
    };
    let mut doc = SurveyDoc::new(&meta, vec![9u8; 16], 1).expect("survey doc");
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
    let ack = store.acknowledge(&out, &results).expect("ack");
    assert_eq!((ack.stored, ack.rejected, ack.erased.len()), (2, 0, 0));
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

/// A server scripted per request, for the sync engine: the first push answers `first_push`,
/// later pushes store everything; pulls answer `pull`. It records what each push sent.
struct Scripted {
    first_push: std::sync::Mutex<Option<crate::client::ClientError>>,
    pushes: std::sync::Mutex<Vec<Vec<Uuid>>>,
    pull: PullResponse,
}

impl crate::engine::Transport for Scripted {
    fn push(
        &self,
        req: &fieldsync_protocol::wire::PushRequest,
    ) -> Result<fieldsync_protocol::wire::PushResponse, crate::client::ClientError> {
        let ids: Vec<Uuid> = req.docs.iter().map(|d| d.doc_id).collect();
        let calls = {
            let mut pushes = self.pushes.lock().expect("lock");
            pushes.push(ids.clone());
            pushes.len()
        };
        if calls > 5 {
            return Err(crate::client::ClientError::Protocol(
                "pushed in a loop".into(),
            ));
        }
        if let Some(e) = self.first_push.lock().expect("lock").take() {
            return Err(e);
        }
        Ok(fieldsync_protocol::wire::PushResponse {
            protocol: PROTOCOL_VERSION,
            results: ids
                .into_iter()
                .map(|doc_id| DocPushResult {
                    doc_id,
                    outcome: PushOutcome::Stored {
                        new: 1,
                        duplicate: 0,
                    },
                })
                .collect(),
        })
    }

    fn pull(
        &self,
        _: &fieldsync_protocol::wire::PullRequest,
    ) -> Result<PullResponse, crate::client::ClientError> {
        Ok(self.pull.clone())
    }

    fn offer_media(
        &self,
        _: &fieldsync_protocol::media::MediaOffer,
    ) -> Result<fieldsync_protocol::media::MediaStatus, crate::client::ClientError> {
        Err(crate::client::ClientError::Protocol(
            "this scripted server takes no files".into(),
        ))
    }

    fn send_chunk(
        &self,
        _: &fieldsync_protocol::media::MediaChunk,
    ) -> Result<fieldsync_protocol::media::MediaStatus, crate::client::ClientError> {
        Err(crate::client::ClientError::Protocol(
            "this scripted server takes no files".into(),
        ))
    }
}

fn malformed(doc_id: Option<Uuid>, docs: &[Uuid]) -> crate::client::ClientError {
    crate::client::ClientError::Rejected {
        status: 422,
        code: fieldsync_protocol::wire::ErrorCode::MalformedDocument,
        message: "bad data".into(),
        doc_id,
        details: vec![],
        docs: docs
            .iter()
            .map(|id| fieldsync_protocol::wire::DocFault {
                doc_id: *id,
                message: format!("{id} is bad"),
            })
            .collect(),
        protocols: None,
    }
}

fn three_submitted(store: &mut Store) -> Vec<Uuid> {
    (0..3)
        .map(|_| {
            store
                .create_response(
                    "household_survey",
                    None,
                    &refused_consent(),
                    Status::Submitted,
                )
                .expect("create")
                .0
        })
        .collect()
}

#[test]
fn a_refused_batch_sets_aside_every_document_it_names_and_pushes_the_rest() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut store, _) = setup(dir.path());
    let ids = three_submitted(&mut store);
    let server = Scripted {
        first_push: std::sync::Mutex::new(Some(malformed(Some(ids[0]), &[ids[0], ids[2]]))),
        pushes: std::sync::Mutex::new(Vec::new()),
        pull: page(vec![], vec![], 1),
    };
    let report = crate::engine::sync(&mut store, &server, &mut |_| {}).expect("sync");
    let pushes = server.pushes.lock().expect("lock").clone();
    assert_eq!(pushes.len(), 2, "one refused push, one retry: {pushes:?}");
    assert_eq!(
        pushes[1],
        vec![ids[1]],
        "both named documents are left out at once"
    );
    assert_eq!(report.rejected.len(), 2);
    assert_eq!(store.status_report().expect("status").rejected, 2);
}

#[test]
fn a_refusal_naming_no_document_of_the_batch_stops_the_sync_instead_of_looping() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut store, _) = setup(dir.path());
    three_submitted(&mut store);
    let stranger = Uuid::new_v4();
    let server = Scripted {
        first_push: std::sync::Mutex::new(Some(malformed(Some(stranger), &[stranger]))),
        pushes: std::sync::Mutex::new(Vec::new()),
        pull: page(vec![], vec![], 1),
    };
    let err = crate::engine::sync(&mut store, &server, &mut |_| {}).expect_err("sync stops");
    assert_eq!(
        server.pushes.lock().expect("lock").len(),
        1,
        "no second push of the same batch"
    );
    assert!(
        err.to_string().contains("without naming any document"),
        "{err}"
    );
    assert_eq!(
        store.status_report().expect("status").pending_responses,
        3,
        "nothing lost"
    );
}

#[test]
fn a_change_the_server_refused_after_storing_it_sets_its_document_aside() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut store, _) = setup(dir.path());
    let ids = three_submitted(&mut store);
    let mut notice = page(vec![], vec![], 7);
    notice.refused = vec![fieldsync_protocol::wire::RefusedChange {
        doc_id: ids[1],
        hash: ByteBuf::from(vec![1; 32]),
        reason: "it would make the response unreadable".into(),
    }];
    let server = Scripted {
        first_push: std::sync::Mutex::new(None),
        pushes: std::sync::Mutex::new(Vec::new()),
        pull: notice,
    };
    let report = crate::engine::sync(&mut store, &server, &mut |_| {}).expect("sync");
    assert_eq!(report.rejected.len(), 1);
    assert_eq!(report.rejected[0].0, ids[1]);
    assert!(report.rejected[0].1.contains("unreadable"));
    let status = store.status_report().expect("status");
    assert_eq!(status.rejected, 1, "the document is set aside and listed");
    assert_eq!(
        store.cursor().expect("cursor"),
        7,
        "with the cursor, in one transaction"
    );
    assert!(store.response(&ids[1]).is_ok(), "and kept on the device");
}

#[test]
fn a_new_response_takes_last_saved_defaults_metadata_and_calculations() {
    let dir = tempfile::tempdir().expect("tempdir");
    let form = r#"{ "settings": { "form_id": "visits" }, "survey": [
        { "type": "start", "name": "started" },
        { "type": "username", "name": "who" },
        { "type": "text", "name": "village", "label": "Village", "default": "${last-saved#village}" },
        { "type": "integer", "name": "n", "label": "N" },
        { "type": "calculate", "name": "double", "calculation": "${n} * 2" } ] }"#;
    let (mut store, _) = setup_with(dir.path(), "visits", form);
    let mut first = Answers::new();
    first.insert("village".into(), Answer::from("Kisumu"));
    first.insert("n".into(), Answer::Integer(2));
    let (a, _) = store
        .create_response("visits", None, &first, Status::Submitted)
        .expect("first");
    let a = store.response(&a).expect("read").answers;
    assert_eq!(a.get("double"), Some(&Answer::from("4")));
    assert_eq!(a.get("who"), Some(&Answer::from("Enid")));
    assert!(a.get("started").is_some_and(|s| s.to_text().ends_with('Z')));
    let mut second = Answers::new();
    second.insert("n".into(), Answer::Integer(5));
    let (b, _) = store
        .create_response("visits", None, &second, Status::Draft)
        .expect("second");
    let b = store.response(&b).expect("read").answers;
    assert_eq!(
        b.get("village"),
        Some(&Answer::from("Kisumu")),
        "the last saved answer"
    );
    assert_eq!(b.get("double"), Some(&Answer::from("10")));
}

#[test]
fn an_imported_row_has_the_same_id_every_time() {
    use fieldsync_protocol::{Answer, Answers};
    let survey = Uuid::from_u128(7);
    let answers: Answers = [("name".to_owned(), Answer::from("Ama"))].into();
    let id = super::import_id(&survey, None, &answers);
    assert_eq!(id, super::import_id(&survey, None, &answers));
    assert_eq!(id.get_version_num(), 8);
    assert_ne!(id, super::import_id(&Uuid::from_u128(8), None, &answers));
    let other: Answers = [("name".to_owned(), Answer::from("Kofi"))].into();
    assert_ne!(id, super::import_id(&survey, None, &other));
    // The row's own id wins: a UUID as it is (ODK's `uuid:` prefix too), any other text hashed.
    let own = "6f1c2a4e-8b3d-4c5e-9f60-0a1b2c3d4e5f";
    for text in [own.to_owned(), format!("uuid:{own}")] {
        assert_eq!(
            super::import_id(&survey, Some(&text), &answers).to_string(),
            own
        );
    }
    let keyed = super::import_id(&survey, Some("row-17"), &answers);
    assert_eq!(keyed, super::import_id(&survey, Some("row-17"), &other));
    assert_ne!(keyed, id);
}

/// A document with more waiting changes than a server takes in one push (10,000 per
/// document) goes over several pushes, oldest changes first, instead of a push the server
/// refuses whole at every sync; a document over the batch's byte budget goes a part at a time.
#[test]
fn a_long_backlog_of_one_document_goes_over_several_pushes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut store, _) = setup(dir.path());
    let (id, _) = store
        .create_response("household_survey", None, &Answers::new(), Status::Draft)
        .expect("draft");
    let (mut doc, _) = store.load_doc(&id).expect("load");
    let heads = doc.heads();
    for i in 0..(MAX_DOC_CHANGES_PER_PUSH as i64 + 40) {
        doc.set_answer("comments", &Answer::Text(format!("edit {i}")), 1_000 + i)
            .expect("edit");
    }
    let edits = doc.changes_since(&heads);
    {
        let tx = store.immediate().expect("tx");
        store.add_outbox(&tx, &id, &edits).expect("queue");
        tx.commit().expect("commit");
    }
    let waiting = store.outbox_batch(100, usize::MAX).expect("outbox");
    let first = &waiting[0];
    assert_eq!(first.changes.len(), MAX_DOC_CHANGES_PER_PUSH);
    assert!(first.partial);
    // A small byte budget still sends something, and says more waits.
    let small = store.outbox_batch(100, 1024).expect("outbox");
    assert!(small[0].partial && !small[0].changes.is_empty());
    assert!(small[0].changes.len() < first.changes.len());

    // A sync sends it all, never more of one document than a push may carry.
    let queued: i64 = store
        .conn
        .query_row("SELECT count(*) FROM outbox", [], |r| r.get(0))
        .expect("count");
    let server = CountingServer::default();
    crate::engine::sync(&mut store, &server, &mut |_| {}).expect("sync");
    let pushes = server.pushes.lock().expect("pushes").clone();
    assert_eq!(pushes.len(), 2, "{pushes:?}");
    assert!(
        pushes.iter().all(|n| *n <= MAX_DOC_CHANGES_PER_PUSH),
        "{pushes:?}"
    );
    assert_eq!(
        pushes.iter().sum::<usize>() as i64,
        queued,
        "every change goes, once"
    );
    assert!(
        store
            .outbox_batch(100, usize::MAX)
            .expect("outbox")
            .is_empty()
    );
}

/// A server that stores every push it may accept, refuses as a real one does a document with
/// too many changes, and counts the changes of each push.
#[derive(Default)]
struct CountingServer {
    pushes: std::sync::Mutex<Vec<usize>>,
}

impl crate::engine::Transport for CountingServer {
    fn push(&self, req: &PushRequest) -> Result<PushResponse, crate::client::ClientError> {
        if let Some(d) = req
            .docs
            .iter()
            .find(|d| d.changes.len() > MAX_DOC_CHANGES_PER_PUSH)
        {
            return Err(crate::client::ClientError::Rejected {
                status: 400,
                code: ErrorCode::BadRequest,
                message: format!("document {} has too many changes in one push", d.doc_id),
                doc_id: None,
                details: vec![],
                docs: vec![],
                protocols: None,
            });
        }
        self.pushes
            .lock()
            .expect("pushes")
            .push(req.docs.iter().map(|d| d.changes.len()).sum());
        Ok(PushResponse {
            protocol: PROTOCOL_VERSION,
            results: req
                .docs
                .iter()
                .map(|d| DocPushResult {
                    doc_id: d.doc_id,
                    outcome: PushOutcome::Stored {
                        new: d.changes.len() as u32,
                        duplicate: 0,
                    },
                })
                .collect(),
        })
    }

    fn pull(&self, _: &PullRequest) -> Result<PullResponse, crate::client::ClientError> {
        Ok(page(vec![], vec![], 0))
    }

    fn offer_media(
        &self,
        _: &fieldsync_protocol::media::MediaOffer,
    ) -> Result<fieldsync_protocol::media::MediaStatus, crate::client::ClientError> {
        Err(crate::client::ClientError::Protocol("no files here".into()))
    }

    fn send_chunk(
        &self,
        _: &fieldsync_protocol::media::MediaChunk,
    ) -> Result<fieldsync_protocol::media::MediaStatus, crate::client::ClientError> {
        Err(crate::client::ClientError::Protocol("no files here".into()))
    }
}
