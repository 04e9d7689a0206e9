//! Table tests of the response document: creation, edits, reads, status, conflicts,
//! resolution, the change plumbing and tolerance of unexpected shapes.

use super::*;
use crate::document::ChangeInfo;
use automerge::ObjType;

pub(crate) const T0: i64 = 1_700_000_000_000;

pub(crate) fn actor(n: u8) -> [u8; 16] {
    [n; 16]
}

pub(crate) fn new_meta() -> NewResponse {
    NewResponse {
        response_id: Uuid::from_u128(0x0192_0000_0000_7000_8000_0000_0000_0001),
        survey_id: Uuid::from_u128(0x0192_0000_0000_7000_8000_0000_0000_00aa),
        survey_version: 3,
        author_device: "tablet-07".to_owned(),
    }
}

pub(crate) fn created() -> ResponseDoc {
    ResponseDoc::new(new_meta(), actor(1), "device:tablet-07", T0).expect("create")
}

/// A second replica of `doc`, writing as `actor(n)` labelled `label`.
pub(crate) fn replica(doc: &mut ResponseDoc, n: u8, label: &str) -> ResponseDoc {
    ResponseDoc::from_changes(doc.all_changes())
        .expect("replica")
        .with_writer(actor(n), label)
}

fn sync(a: &mut ResponseDoc, b: &mut ResponseDoc) {
    a.merge(b).expect("merge a");
    b.merge(a).expect("merge b");
}

#[test]
fn new_response_reads_back_its_meta() {
    let doc = created();
    let meta = doc.meta().expect("meta");
    let want = ResponseMeta {
        response_id: new_meta().response_id,
        survey_id: new_meta().survey_id,
        survey_version: 3,
        author_device: "tablet-07".to_owned(),
        created_at: T0,
        updated_at: T0,
        status: Status::Draft,
    };
    assert_eq!(meta, want);
    assert_eq!(doc.answers().expect("answers"), Answers::new());
    assert_eq!(doc.conflicts().expect("conflicts"), vec![]);
    let authors = doc.authors().expect("authors");
    assert_eq!(
        authors,
        BTreeMap::from([(
            ActorId::from(actor(1)).to_hex_string(),
            "device:tablet-07".to_owned()
        )])
    );
}

#[test]
fn edits_read_back() {
    enum Edit {
        Set(&'static str, Answer),
        Remove(&'static str),
    }
    use Edit::*;
    // (edits, expected answers afterwards)
    type Case = (Vec<Edit>, Vec<(&'static str, Answer)>);
    let cases: Vec<Case> = vec![
        (vec![], vec![]),
        (
            vec![Set("age", Answer::Integer(34))],
            vec![("age", Answer::Integer(34))],
        ),
        (
            vec![Set("height", Answer::Decimal(1.75))],
            vec![("height", Answer::Decimal(1.75))],
        ),
        (
            vec![Set("name", "Ama".into())],
            vec![("name", "Ama".into())],
        ),
        (vec![Set("name", "".into())], vec![("name", "".into())]),
        (
            vec![
                Set("age", Answer::Integer(34)),
                Set("age", Answer::Integer(35)),
            ],
            vec![("age", Answer::Integer(35))],
        ),
        (
            // A question may change kind (integer typed into a decimal question, say).
            vec![Set("x", Answer::Integer(2)), Set("x", Answer::Decimal(2.5))],
            vec![("x", Answer::Decimal(2.5))],
        ),
        (vec![Set("age", Answer::Integer(34)), Remove("age")], vec![]),
        (vec![Remove("never-set")], vec![]),
        (
            vec![
                Set("a", "1".into()),
                Set("b", Answer::Integer(2)),
                Remove("a"),
            ],
            vec![("b", Answer::Integer(2))],
        ),
    ];
    for (i, (edits, want)) in cases.into_iter().enumerate() {
        let mut doc = created();
        for (n, edit) in edits.iter().enumerate() {
            let now = T0 + 1 + n as i64;
            match edit {
                Set(q, v) => doc.set_answer(q, v, now),
                Remove(q) => doc.remove_answer(q, now),
            }
            .unwrap_or_else(|e| panic!("case {i}: {e}"));
        }
        let want: Answers = want.into_iter().map(|(q, v)| (q.to_owned(), v)).collect();
        assert_eq!(doc.answers().expect("answers"), want, "case {i}");
        for (q, v) in &want {
            assert_eq!(doc.answer(q).expect("answer").as_ref(), Some(v), "case {i}");
        }
        // The same state survives save/load.
        let loaded = ResponseDoc::load(&doc.save()).expect("load");
        assert_eq!(
            loaded.answers().expect("answers"),
            want,
            "case {i} after load"
        );
    }
}

#[test]
fn set_answers_is_one_change_and_bumps_updated_at() {
    let mut doc = created();
    let before = doc.all_changes().len();
    let answers: Answers = (0..30)
        .map(|i| (format!("q{i:02}"), Answer::Integer(i)))
        .collect();
    let hash = doc
        .set_answers(&answers, T0 + 500)
        .expect("set")
        .expect("a change");
    assert_eq!(doc.all_changes().len(), before + 1);
    assert_eq!(doc.heads(), vec![hash]);
    assert_eq!(doc.answers().expect("answers"), answers);
    assert_eq!(doc.meta().expect("meta").updated_at, T0 + 500);
    assert_eq!(doc.meta().expect("meta").created_at, T0);
}

#[test]
fn an_edit_that_changes_nothing_makes_no_change() {
    let mut doc = created();
    doc.set_answer("age", &Answer::Integer(34), T0 + 1)
        .expect("set");
    let heads = doc.heads();
    assert_eq!(
        doc.set_answer("age", &Answer::Integer(34), T0 + 2)
            .expect("set"),
        None
    );
    assert_eq!(doc.remove_answer("other", T0 + 3).expect("remove"), None);
    assert_eq!(doc.set_status(Status::Draft, T0 + 4).expect("status"), None);
    assert_eq!(
        doc.set_answers(Vec::<(&str, Answer)>::new(), T0 + 5)
            .expect("set"),
        None
    );
    assert_eq!(doc.heads(), heads);
    assert_eq!(doc.meta().expect("meta").updated_at, T0 + 1);
}

#[test]
fn status_moves_and_round_trips() {
    let mut doc = created();
    for (i, status) in Status::ALL.into_iter().enumerate() {
        doc.set_status(status, T0 + 10 + i as i64).expect("status");
        assert_eq!(doc.status().expect("status"), status);
        assert_eq!(doc.meta().expect("meta").status, status);
        assert_eq!(status.as_str().parse::<Status>().expect("parse"), status);
    }
    assert!(matches!(
        "accepted".parse::<Status>(),
        Err(DocError::BadValue { .. })
    ));
    // Documents written before review states say `reviewed`: an accepted response.
    assert_eq!(
        "reviewed".parse::<Status>().expect("parse"),
        Status::Approved
    );
}

#[test]
fn a_review_records_its_state_and_comment_and_an_edit_after_it_shows() {
    let mut doc = created();
    doc.set_status(Status::Submitted, T0 + 1).expect("submit");
    assert!(doc.set_review(Status::Edited, None, T0 + 2).is_err());
    doc.set_review(Status::HasIssues, Some("age looks wrong"), T0 + 2)
        .expect("review");
    assert_eq!(doc.status().expect("status"), Status::HasIssues);
    assert_eq!(
        doc.review_comment().expect("comment").as_deref(),
        Some("age looks wrong")
    );
    assert_eq!(Status::HasIssues.after_edit(), Status::Edited);
    assert_eq!(Status::Submitted.after_edit(), Status::Submitted);
    doc.set_review(Status::Approved, None, T0 + 3)
        .expect("approve");
    assert_eq!(doc.review_comment().expect("comment"), None);
    assert!(!Status::Draft.is_collected() && !Status::Discarded.is_collected());
    assert!(Status::Edited.is_collected());
}

#[test]
fn bad_edits_are_refused_and_leave_nothing_behind() {
    let mut doc = created();
    let heads = doc.heads();
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let err = doc
            .set_answer("h", &Answer::Decimal(bad), T0 + 1)
            .expect_err("refused");
        assert!(matches!(err, DocError::NonFiniteDecimal { ref question } if question == "h"));
        // A batch with one bad value writes none of it, not even the good ones before it.
        let batch = [("ok", Answer::Integer(1)), ("h", Answer::Decimal(bad))];
        assert!(doc.set_answers(batch, T0 + 2).is_err());
    }
    assert_eq!(doc.heads(), heads);
    assert_eq!(doc.answers().expect("answers"), Answers::new());
    // The next good edit does not carry leftovers of the refused ones.
    doc.set_answer("fine", &Answer::Integer(1), T0 + 3)
        .expect("set");
    assert_eq!(doc.answers().expect("answers").len(), 1);
}

#[test]
fn a_document_opened_without_a_writer_refuses_edits() {
    let mut doc = created();
    let mut loaded = ResponseDoc::load(&doc.save()).expect("load");
    let err = loaded
        .set_answer("a", &Answer::Integer(1), T0)
        .expect_err("no writer");
    assert!(matches!(err, DocError::NoWriter));
    let mut from = ResponseDoc::from_changes(doc.all_changes()).expect("from changes");
    assert!(matches!(
        from.set_status(Status::Submitted, T0),
        Err(DocError::NoWriter)
    ));
}

#[test]
fn each_writer_is_recorded_once_with_its_label() {
    let mut a = created();
    let mut b = replica(&mut a, 2, "member:alice");
    b.set_answer("q", &Answer::Integer(1), T0 + 1).expect("set");
    b.set_answer("q", &Answer::Integer(2), T0 + 2).expect("set");
    // A later session of the same actor with another label keeps the first label.
    let mut b2 = ResponseDoc::load(&b.save())
        .expect("load")
        .with_writer(actor(2), "member:bob");
    b2.set_answer("q", &Answer::Integer(3), T0 + 3)
        .expect("set");
    sync(&mut a, &mut b2);
    let authors = a.authors().expect("authors");
    let hex = |n| ActorId::from(actor(n)).to_hex_string();
    assert_eq!(
        authors,
        BTreeMap::from([
            (hex(1), "device:tablet-07".to_owned()),
            (hex(2), "member:alice".to_owned()),
        ])
    );
    // The label went into the same change as the first edit, not a change of its own.
    assert_eq!(a.all_changes().len(), 4);
}

#[test]
fn concurrent_edits_conflict_only_when_values_differ() {
    let hex = |n| ActorId::from(actor(n)).to_hex_string();
    // (device edit, coordinator edit, expected conflict values as (value, actor))
    type Edit = Option<Answer>;
    type Case = (Edit, Edit, Option<Vec<(Answer, u8)>>);
    let cases: Vec<Case> = vec![
        (
            Some(1.into_answer()),
            Some(2.into_answer()),
            Some(vec![(2.into_answer(), 2), (1.into_answer(), 1)]),
        ),
        (
            Some("a".into()),
            Some("b".into()),
            Some(vec![("b".into(), 2), ("a".into(), 1)]),
        ),
        (
            Some(1.into_answer()),
            Some(Answer::Decimal(1.0)),
            Some(vec![(Answer::Decimal(1.0), 2), (1.into_answer(), 1)]),
        ),
        // Same value on both sides: merged, nothing to resolve.
        (Some("same".into()), Some("same".into()), None),
        (Some(Answer::Decimal(0.5)), Some(Answer::Decimal(0.5)), None),
        // A removal concurrent with a set keeps the set value: not two values.
        (Some("kept".into()), None, None),
        (None, Some("kept".into()), None),
    ];
    for (i, (left, right, want)) in cases.into_iter().enumerate() {
        let mut a = created();
        a.set_answer("q", &Answer::Integer(0), T0 + 1)
            .expect("seed");
        let mut b = replica(&mut a, 2, "member:alice");
        let apply = |doc: &mut ResponseDoc, edit: &Edit| match edit {
            Some(v) => doc.set_answer("q", v, T0 + 2).expect("set"),
            None => doc.remove_answer("q", T0 + 2).expect("remove"),
        };
        apply(&mut a, &left);
        apply(&mut b, &right);
        sync(&mut a, &mut b);
        assert_eq!(a.heads(), b.heads(), "case {i}");
        for doc in [&a, &b] {
            let conflicts = doc.conflicts().expect("conflicts");
            match &want {
                None => assert_eq!(conflicts, vec![], "case {i}"),
                Some(values) => {
                    let labels = |n| match n {
                        1 => "device:tablet-07",
                        _ => "member:alice",
                    };
                    let want = vec![Conflict {
                        question: "q".to_owned(),
                        values: values
                            .iter()
                            .map(|(v, n)| ConflictValue {
                                value: v.clone(),
                                actor: hex(*n),
                                author: Some(labels(*n).to_owned()),
                            })
                            .collect(),
                    }];
                    assert_eq!(conflicts, want, "case {i}");
                    // The value shown is the first listed, on both replicas.
                    assert_eq!(
                        doc.answer("q").expect("answer"),
                        Some(values[0].0.clone()),
                        "case {i}"
                    );
                }
            }
        }
    }
}

trait IntoAnswer {
    fn into_answer(self) -> Answer;
}
impl IntoAnswer for i64 {
    fn into_answer(self) -> Answer {
        Answer::Integer(self)
    }
}

#[test]
fn edits_to_different_questions_merge_without_conflict() {
    let mut a = created();
    let mut b = replica(&mut a, 2, "member:alice");
    a.set_answer("name", &"Ama".into(), T0 + 5).expect("set");
    b.set_answer("age", &Answer::Integer(30), T0 + 9)
        .expect("set");
    b.set_status(Status::Approved, T0 + 9).expect("status");
    sync(&mut a, &mut b);
    let want: Answers = [
        ("age".to_owned(), Answer::Integer(30)),
        ("name".to_owned(), "Ama".into()),
    ]
    .into();
    for doc in [&a, &b] {
        assert_eq!(doc.answers().expect("answers"), want);
        assert_eq!(doc.conflicts().expect("conflicts"), vec![]);
        // `updated_at` is the latest edit, whichever op won the register.
        assert_eq!(doc.meta().expect("meta").updated_at, T0 + 9);
        assert_eq!(doc.status().expect("status"), Status::Approved);
    }
}

#[test]
fn resolve_clears_the_conflict_everywhere() {
    // Resolve with a new value, with the shown (winning) value, and with the other value.
    for pick in 0..3 {
        let mut a = created();
        let mut b = replica(&mut a, 2, "member:alice");
        let mut c = replica(&mut a, 3, "member:carol");
        a.set_answer("q", &"device".into(), T0 + 1).expect("set");
        b.set_answer("q", &"server".into(), T0 + 1).expect("set");
        sync(&mut a, &mut b);
        sync(&mut b, &mut c);
        let conflict = c.conflicts().expect("conflicts").remove(0);
        let value = match pick {
            0 => Answer::from("agreed"),
            n => conflict.values[n - 1].value.clone(),
        };
        c.resolve("q", &value, T0 + 2)
            .expect("resolve")
            .expect("a change");
        assert_eq!(c.conflicts().expect("conflicts"), vec![], "pick {pick}");
        // a has not heard yet: still conflicted.
        assert_eq!(a.conflicts().expect("conflicts").len(), 1);
        sync(&mut c, &mut b);
        sync(&mut b, &mut a);
        for doc in [&a, &b, &c] {
            assert_eq!(doc.conflicts().expect("conflicts"), vec![], "pick {pick}");
            assert_eq!(
                doc.answer("q").expect("answer"),
                Some(value.clone()),
                "pick {pick}"
            );
        }
    }
}

#[test]
fn changes_plumbing() {
    let mut a = created();
    let start = a.heads();
    a.set_answer("q1", &Answer::Integer(1), T0 + 1)
        .expect("set");
    a.set_answer("q2", &Answer::Integer(2), T0 + 2)
        .expect("set");
    let new = a.changes_since(&start);
    assert_eq!(new.len(), 2);
    let now = a.heads();
    assert_eq!(a.changes_since(&now), Vec::<Vec<u8>>::new());

    // ChangeInfo reads what the sync path dedupes by.
    let first = ChangeInfo::decode(&new[0]).expect("decode");
    let second = ChangeInfo::decode(&new[1]).expect("decode");
    assert_eq!(first.actor, ActorId::from(actor(1)));
    assert_eq!((first.seq, second.seq), (2, 3));
    assert_eq!(first.deps, start);
    assert_eq!(second.deps, vec![first.hash]);
    assert_eq!(a.heads(), vec![second.hash]);
    assert!(matches!(
        ChangeInfo::decode(b"not a change"),
        Err(DocError::BadChange(_))
    ));

    // Out of order: the second change waits for the first, then both apply; repeats are
    // harmless.
    let mut b = ResponseDoc::from_changes(a.changes_since(&[]).into_iter().take(1)).expect("b");
    b.apply_changes([&new[1]]).expect("apply");
    assert_eq!(b.missing_deps(), vec![first.hash]);
    assert_eq!(b.answers().expect("answers").len(), 0);
    b.apply_changes([&new[0]]).expect("apply");
    assert_eq!(b.missing_deps(), vec![]);
    b.apply_changes(&new).expect("apply again");
    b.apply_changes(a.all_changes()).expect("apply all again");
    assert_eq!(b.heads(), a.heads());
    assert_eq!(b.answers().expect("answers"), a.answers().expect("answers"));

    // A malformed change rejects the batch: the good change next to it is not applied.
    let mut c = ResponseDoc::from_changes(a.changes_since(&[]).into_iter().take(1)).expect("c");
    let err = c
        .apply_changes([new[0].clone(), b"junk".to_vec()])
        .expect_err("bad batch");
    assert!(matches!(err, DocError::BadChange(_)));
    assert_eq!(c.heads(), start);
}

/// Builds a document as a foreign peer might, starting from a valid response and then
/// writing raw Automerge values.
fn tampered(edit: impl FnOnce(&mut AutoCommit)) -> ResponseDoc {
    let mut doc = created();
    doc.set_answer("q", &Answer::Integer(1), T0 + 1)
        .expect("set");
    let mut raw = AutoCommit::load(&doc.save())
        .expect("raw")
        .with_actor(ActorId::from(actor(9)));
    edit(&mut raw);
    raw.commit();
    ResponseDoc {
        doc: raw,
        writer: None,
    }
}

fn answers_of(doc: &AutoCommit) -> ObjId {
    answers_map(doc).expect("answers map")
}

#[test]
fn unexpected_shapes_are_typed_errors() {
    type Tamper = fn(&mut AutoCommit);
    let wrong_type =
        |e: &DocError, field: &str| matches!(e, DocError::WrongType { field: f, .. } if f == field);
    // (tampering, which read, check)
    type Check = Box<dyn Fn(&DocError) -> bool>;
    let cases: Vec<(Tamper, &str, Check)> = vec![
        (
            |d| {
                let a = answers_of(d);
                d.put(&a, "q", true).expect("put");
            },
            "answers",
            Box::new(move |e| wrong_type(e, "answers.q")),
        ),
        (
            |d| {
                let a = answers_of(d);
                d.put(&a, "q", 5_u64).expect("put");
            },
            "answers",
            Box::new(move |e| wrong_type(e, "answers.q")),
        ),
        (
            |d| {
                let a = answers_of(d);
                d.put(&a, "q", ScalarValue::Null).expect("put");
            },
            "answer",
            Box::new(move |e| wrong_type(e, "answers.q")),
        ),
        (
            |d| {
                let a = answers_of(d);
                d.put_object(&a, "q", ObjType::Text).expect("put");
            },
            "answers",
            Box::new(move |e| wrong_type(e, "answers.q")),
        ),
        (
            |d| {
                let a = answers_of(d);
                d.put_object(&a, "q", ObjType::Text).expect("put");
            },
            "answer",
            Box::new(move |e| wrong_type(e, "answers.q")),
        ),
        (
            |d| {
                d.put(ROOT, "answers", "flat").expect("put");
            },
            "answers",
            Box::new(move |e| wrong_type(e, "answers")),
        ),
        (
            |d| {
                d.delete(ROOT, "answers").expect("del");
            },
            "conflicts",
            Box::new(|e| matches!(e, DocError::MissingField { field } if field == "answers")),
        ),
        (
            |d| {
                d.put(ROOT, "status", "accepted").expect("put");
            },
            "meta",
            Box::new(|e| matches!(e, DocError::BadValue { field, .. } if field == "status")),
        ),
        (
            |d| {
                d.put(ROOT, "status", 1_i64).expect("put");
            },
            "meta",
            Box::new(move |e| wrong_type(e, "status")),
        ),
        (
            |d| {
                d.put(ROOT, "survey_version", -1_i64).expect("put");
            },
            "meta",
            Box::new(
                |e| matches!(e, DocError::BadValue { field, .. } if field == "survey_version"),
            ),
        ),
        (
            |d| {
                d.put(ROOT, "survey_version", "3").expect("put");
            },
            "meta",
            Box::new(move |e| wrong_type(e, "survey_version")),
        ),
        (
            |d| {
                d.put(ROOT, "response_id", "nope").expect("put");
            },
            "meta",
            Box::new(|e| matches!(e, DocError::BadValue { field, .. } if field == "response_id")),
        ),
        (
            |d| {
                d.delete(ROOT, "survey_id").expect("del");
            },
            "meta",
            Box::new(|e| matches!(e, DocError::MissingField { field } if field == "survey_id")),
        ),
        (
            |d| {
                d.put(ROOT, "created_at", 1.5_f64).expect("put");
            },
            "meta",
            Box::new(move |e| wrong_type(e, "created_at")),
        ),
        (
            |d| {
                d.put_object(ROOT, "authors", ObjType::List).expect("put");
            },
            "authors",
            Box::new(move |e| wrong_type(e, "authors")),
        ),
    ];
    for (i, (tamper, read, check)) in cases.into_iter().enumerate() {
        let doc = tampered(tamper);
        let err = match read {
            "answers" => doc.answers().map(drop),
            "answer" => doc.answer("q").map(drop),
            "conflicts" => doc.conflicts().map(drop),
            "meta" => doc.meta().map(drop),
            "authors" => doc.authors().map(drop),
            other => panic!("unknown read {other}"),
        }
        .expect_err("a typed error");
        assert!(check(&err), "case {i}: got {err:?}");
        assert!(!err.to_string().ends_with('.'), "case {i}");
    }

    // A tolerated encoding: times as Int and versions as Uint.
    let doc = tampered(|d| {
        d.put(ROOT, "created_at", T0).expect("put");
        d.put(ROOT, "survey_version", 3_u64).expect("put");
    });
    let meta = doc.meta().expect("meta");
    assert_eq!((meta.created_at, meta.survey_version), (T0, 3));
}

#[test]
fn only_response_documents_of_a_known_schema_open() {
    let mut doc = created();
    let mut raw = AutoCommit::load(&doc.save()).expect("raw");
    raw.put(ROOT, "schema", 3_i64).expect("put");
    let err = ResponseDoc::load(&raw.save()).expect_err("newer schema");
    assert!(matches!(
        err,
        DocError::UnsupportedSchema {
            found: 3,
            supported: 2
        }
    ));
    raw.put(ROOT, "schema", 0_i64).expect("put");
    assert!(matches!(
        ResponseDoc::load(&raw.save()),
        Err(DocError::UnsupportedSchema { found: 0, .. })
    ));
    raw.put(ROOT, "schema", 1_i64).expect("put");
    raw.put(ROOT, "kind", "survey").expect("put");
    assert!(matches!(
        ResponseDoc::load(&raw.save()),
        Err(DocError::WrongKind { .. })
    ));
    assert!(matches!(
        ResponseDoc::load(b"\x85\x6f\x4a\x83garbage"),
        Err(DocError::Load(_))
    ));
    assert!(matches!(
        ResponseDoc::load(&AutoCommit::new().save()),
        Err(DocError::MissingField { .. })
    ));
    assert!(matches!(
        ResponseDoc::from_changes([b"junk"]),
        Err(DocError::BadChange(_))
    ));
    assert!(matches!(
        ResponseDoc::from_changes(Vec::<Vec<u8>>::new()),
        Err(DocError::MissingField { .. })
    ));
}
