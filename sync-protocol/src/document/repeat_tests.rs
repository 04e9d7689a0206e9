//! Repeats in response documents (schema 2) on one replica: round trips through create and
//! edits, instance ids, order, paths into instances, the schema bump, refused names and ids,
//! and `same_answer` for repeats.

use automerge::{AutoCommit, ROOT, ReadDoc, ScalarValue, Value};

use super::repeat::plan_orders;
use super::response::tests::{T0, actor, created, new_meta};
use super::scalar::same_answer;
use super::{DocError, ResponseDoc, Status, assign_instance_ids};
use crate::{Answer, Answers, RepeatInstance};

pub(crate) fn inst(id: &str, answers: Vec<(&str, Answer)>) -> RepeatInstance {
    RepeatInstance {
        id: id.to_owned(),
        answers: answers_of(answers),
    }
}

pub(crate) fn answers_of(answers: Vec<(&str, Answer)>) -> Answers {
    answers
        .into_iter()
        .map(|(q, a)| (q.to_owned(), a))
        .collect()
}

pub(crate) fn members(doc: &ResponseDoc) -> Vec<RepeatInstance> {
    match doc.answer("members").expect("answer") {
        Some(Answer::Repeat(list)) => list,
        None => Vec::new(),
        Some(other) => panic!("members is {other:?}"),
    }
}

pub(crate) fn ids(list: &[RepeatInstance]) -> Vec<&str> {
    list.iter().map(|i| i.id.as_str()).collect()
}

/// The `schema` a document's root holds.
pub(crate) fn schema_of(doc: &mut ResponseDoc) -> i64 {
    let raw = AutoCommit::load(&doc.save()).expect("raw");
    match raw.get(ROOT, "schema").expect("get") {
        Some((Value::Scalar(s), _)) => match s.as_ref() {
            ScalarValue::Int(i) => *i,
            other => panic!("schema is {other:?}"),
        },
        other => panic!("schema is {other:?}"),
    }
}

pub(crate) fn sync(a: &mut ResponseDoc, b: &mut ResponseDoc) {
    a.merge(b).expect("merge a");
    b.merge(a).expect("merge b");
}

pub(crate) fn household() -> Answers {
    answers_of(vec![
        ("village", "Kpong".into()),
        (
            "members",
            Answer::Repeat(vec![
                inst(
                    "m1",
                    vec![
                        ("name", "Ama".into()),
                        ("age", Answer::Integer(34)),
                        (
                            "visits",
                            Answer::Repeat(vec![
                                inst("v1", vec![("date", "2025-01-02".into())]),
                                inst("v2", vec![("date", "2025-02-03".into())]),
                            ]),
                        ),
                    ],
                ),
                inst("m2", vec![("name", "Kofi".into()), ("height", 1.2.into())]),
            ]),
        ),
    ])
}

pub(crate) fn created_with(answers: &Answers) -> ResponseDoc {
    ResponseDoc::create(
        new_meta(),
        actor(1),
        "device:tablet-07",
        answers,
        Status::Draft,
        T0,
    )
    .expect("create")
}

#[test]
fn create_with_nested_repeats_reads_back_in_order_and_after_load() {
    let want = household();
    let mut doc = created_with(&want);
    assert_eq!(doc.answers().expect("answers"), want);
    assert_eq!(doc.all_changes().len(), 1, "create is one change");
    assert_eq!(schema_of(&mut doc), 2);
    let loaded = ResponseDoc::load(&doc.save()).expect("load");
    assert_eq!(loaded.answers().expect("answers"), want);
    assert_eq!(
        loaded.check_readable().expect("readable").meta.status,
        Status::Draft
    );
    // A repeat's name and paths into instances read too.
    assert_eq!(
        loaded.answer("members").expect("answer"),
        want.get("members").cloned()
    );
    assert_eq!(
        loaded.answer("members#m1/age").expect("answer"),
        Some(Answer::Integer(34))
    );
    assert_eq!(
        loaded.answer("members#m1/visits#v2/date").expect("answer"),
        Some("2025-02-03".into())
    );
    assert_eq!(loaded.answer("members#m2/age").expect("answer"), None);
}

#[test]
fn schema_1_is_kept_until_the_first_instance() {
    // Without repeats, documents stay readable by builds that only know schema 1.
    let mut doc = created_with(&answers_of(vec![("q", Answer::Integer(1))]));
    assert_eq!(schema_of(&mut doc), 1);
    doc.set_answer("q", &Answer::Integer(2), T0 + 1)
        .expect("set");
    // An empty repeat is no instance: nothing is written at all.
    assert_eq!(
        doc.set_answer("members", &Answer::Repeat(vec![]), T0 + 2)
            .expect("set"),
        None
    );
    assert_eq!(schema_of(&mut doc), 1);
    let hash = doc
        .set_answer("members", &Answer::Repeat(vec![inst("", vec![])]), T0 + 3)
        .expect("set")
        .expect("a change");
    assert_eq!(
        doc.heads(),
        vec![hash],
        "the bump is part of the edit's change"
    );
    assert_eq!(schema_of(&mut doc), 2);
    // Removing every instance later keeps schema 2.
    doc.remove_answer("members", T0 + 4).expect("remove");
    assert_eq!(schema_of(&mut doc), 2);
    assert_eq!(doc.answers().expect("answers").get("members"), None);
    // A document created with an empty repeat holds none: schema 1.
    let mut empty = created_with(&answers_of(vec![("members", Answer::Repeat(vec![]))]));
    assert_eq!(schema_of(&mut empty), 1);
    assert_eq!(empty.answers().expect("answers"), Answers::new());
}

#[test]
fn empty_ids_get_fresh_uuids_that_reads_show() {
    let mut doc = created_with(&answers_of(vec![(
        "members",
        Answer::Repeat(vec![
            inst("", vec![("name", "Ama".into())]),
            inst("", vec![]),
        ]),
    )]));
    let list = members(&doc);
    assert_eq!(list.len(), 2);
    for instance in &list {
        let id = uuid::Uuid::parse_str(&instance.id).expect("a uuid");
        assert_eq!(id.get_version_num(), 4);
        assert_eq!(instance.id, id.hyphenated().to_string());
    }
    assert_ne!(list[0].id, list[1].id);
    // The order is the listed order, whatever the ids.
    assert_eq!(list[0].answers, answers_of(vec![("name", "Ama".into())]));
    // Writing back what was read changes nothing.
    assert_eq!(
        doc.set_answer("members", &Answer::Repeat(list.clone()), T0 + 1)
            .expect("set"),
        None
    );

    // Or assign them up front.
    let mut answers = answers_of(vec![(
        "members",
        Answer::Repeat(vec![inst(
            "",
            vec![(
                "visits",
                Answer::Repeat(vec![inst("", vec![]), inst("keep", vec![])]),
            )],
        )]),
    )]);
    assign_instance_ids(&mut answers);
    let Some(Answer::Repeat(list)) = answers.get("members") else {
        panic!("members")
    };
    assert!(!list[0].id.is_empty());
    let Some(Answer::Repeat(visits)) = list[0].answers.get("visits") else {
        panic!("visits")
    };
    assert!(!visits[0].id.is_empty());
    assert_eq!(visits[1].id, "keep");
    doc.set_answers(&answers, T0 + 2).expect("set");
    assert_eq!(doc.answers().expect("answers"), answers);
}

#[test]
fn list_writes_add_delete_reorder_and_edit_granularly() {
    let start = household();
    type Case = (&'static str, Vec<RepeatInstance>);
    let cases: Vec<Case> = vec![
        (
            "edit a field, add one, remove one, delete a nested instance",
            vec![
                inst(
                    "m1",
                    vec![
                        ("name", "Ama".into()),
                        ("age", Answer::Integer(35)),
                        ("alive", "yes".into()),
                        (
                            "visits",
                            Answer::Repeat(vec![inst("v2", vec![("date", "2025-02-03".into())])]),
                        ),
                    ],
                ),
                inst("m2", vec![("name", "Kofi".into())]),
                inst("m3", vec![("name", "Esi".into())]),
            ],
        ),
        (
            "delete the first",
            vec![inst(
                "m2",
                vec![("name", "Kofi".into()), ("height", 1.2.into())],
            )],
        ),
        (
            "reverse",
            vec![
                inst("m2", vec![("name", "Kofi".into()), ("height", 1.2.into())]),
                inst("m1", vec![("name", "Ama".into())]),
            ],
        ),
        (
            "insert in the middle and at the front",
            vec![
                inst("m0", vec![]),
                inst("m1", vec![]),
                inst("mid", vec![("name", "Yaw".into())]),
                inst("m2", vec![]),
            ],
        ),
        (
            "a scalar answer becomes a nested repeat and back",
            vec![inst(
                "m1",
                vec![("age", Answer::Repeat(vec![inst("a", vec![])]))],
            )],
        ),
    ];
    for (what, list) in cases {
        let mut doc = created_with(&start);
        let value = Answer::Repeat(list.clone());
        doc.set_answer("members", &value, T0 + 1)
            .expect(what)
            .expect("a change");
        let mut want = start.clone();
        want.insert("members".to_owned(), value.clone());
        assert_eq!(doc.answers().expect("answers"), want, "{what}");
        let loaded = ResponseDoc::load(&doc.save()).expect("load");
        assert_eq!(
            loaded.answers().expect("answers"),
            want,
            "{what} after load"
        );
        // The same write again is no change.
        assert_eq!(
            doc.set_answer("members", &value, T0 + 2).expect(what),
            None,
            "{what}"
        );
    }
    // And an instance's field goes from a repeat back to a scalar.
    let mut doc = created_with(&start);
    doc.set_answer("members#m1/visits", &"none".into(), T0 + 1)
        .expect("set");
    assert_eq!(
        doc.answer("members#m1/visits").expect("answer"),
        Some("none".into())
    );
}

#[test]
fn path_edits_and_removals_reach_into_instances() {
    let mut doc = created_with(&household());
    doc.set_answer("members#m2/name", &"Kofi Mensah".into(), T0 + 1)
        .expect("set");
    doc.set_answers(
        [
            ("members#m1/visits#v1/date", Answer::from("2025-01-03")),
            ("village", Answer::from("Ada")),
        ],
        T0 + 2,
    )
    .expect("set");
    doc.remove_answer("members#m2/height", T0 + 3)
        .expect("remove");
    doc.remove_answer("members#m1/visits#v2", T0 + 4)
        .expect("remove one instance");
    let want = answers_of(vec![
        ("village", "Ada".into()),
        (
            "members",
            Answer::Repeat(vec![
                inst(
                    "m1",
                    vec![
                        ("name", "Ama".into()),
                        ("age", Answer::Integer(34)),
                        (
                            "visits",
                            Answer::Repeat(vec![inst("v1", vec![("date", "2025-01-03".into())])]),
                        ),
                    ],
                ),
                inst("m2", vec![("name", "Kofi Mensah".into())]),
            ]),
        ),
    ]);
    assert_eq!(doc.answers().expect("answers"), want);
    // Removing a repeat by name deletes every instance, nested ones with them.
    doc.remove_answer("members", T0 + 5).expect("remove");
    assert_eq!(
        doc.answers().expect("answers"),
        answers_of(vec![("village", "Ada".into())])
    );
    // A scalar written over a repeat's name replaces its instances.
    let mut doc = created_with(&household());
    doc.set_answer("members", &Answer::Integer(0), T0 + 1)
        .expect("set");
    assert_eq!(
        doc.answer("members").expect("answer"),
        Some(Answer::Integer(0))
    );
    doc.set_answer("members", &Answer::Repeat(vec![inst("n", vec![])]), T0 + 2)
        .expect("set");
    assert_eq!(ids(&members(&doc)), vec!["n"]);
}

#[test]
fn bad_names_paths_and_ids_are_refused_and_write_nothing() {
    let mut doc = created_with(&household());
    let heads = doc.heads();
    let before = doc.answers().expect("answers");
    let bad_path = |e: &DocError, p: &str| matches!(e, DocError::BadPath { path, .. } if path == p);
    let repeat = |list: Vec<RepeatInstance>| Answer::Repeat(list);
    type Case = (&'static str, Answer, &'static str);
    let cases: Vec<Case> = vec![
        ("a#b", Answer::Integer(1), "a#b"),
        ("members#m1", Answer::Integer(1), "members#m1"),
        ("members#m1/_order", Answer::Integer(1), "members#m1/_order"),
        ("members#gone/age", Answer::Integer(1), "members#gone/age"),
        ("members/age", Answer::Integer(1), "members/age"),
        ("#x/age", Answer::Integer(1), "#x/age"),
        ("members#/age", Answer::Integer(1), "members#/age"),
        (
            "members",
            repeat(vec![inst("a", vec![]), inst("a", vec![])]),
            "members#a",
        ),
        ("members", repeat(vec![inst("a/b", vec![])]), "members#a/b"),
        ("members", repeat(vec![inst("a#b", vec![])]), "members#a#b"),
        (
            "members",
            repeat(vec![inst("m1", vec![("_order", Answer::Integer(1))])]),
            "members#m1/_order",
        ),
        (
            "members",
            repeat(vec![inst("m1", vec![("x#y", Answer::Integer(1))])]),
            "members#m1/x#y",
        ),
    ];
    for (question, value, path) in cases {
        let err = doc
            .set_answer(question, &value, T0 + 1)
            .expect_err(question);
        assert!(bad_path(&err, path), "{question}: got {err:?}");
        assert!(!err.to_string().ends_with('.'), "{question}");
    }
    for question in ["a#b/c", "members#gone/age", "members#m1/_order"] {
        assert!(
            matches!(doc.answer(question), Err(DocError::BadPath { .. })),
            "{question}"
        );
    }
    assert!(matches!(
        doc.remove_answer("members#gone/age", T0 + 1),
        Err(DocError::BadPath { .. })
    ));
    assert!(matches!(
        doc.remove_answer("members#", T0 + 1),
        Err(DocError::BadPath { .. })
    ));
    // A non-finite decimal inside an instance names its path.
    let err = doc
        .set_answer("members#m1/age", &Answer::Decimal(f64::NAN), T0 + 1)
        .expect_err("nan");
    assert!(
        matches!(&err, DocError::NonFiniteDecimal { question } if question == "members#m1/age"),
        "{err:?}"
    );
    // A batch with one bad value writes none of it.
    assert!(
        doc.set_answers(
            [
                ("village", Answer::from("new")),
                ("members#gone/age", Answer::Integer(1))
            ],
            T0 + 1
        )
        .is_err()
    );
    assert_eq!(doc.heads(), heads);
    assert_eq!(doc.answers().expect("answers"), before);
    // `_order` is an ordinary question name at the top level, as in schema 1.
    doc.set_answer("_order", &Answer::Integer(3), T0 + 2)
        .expect("set");
    assert_eq!(
        doc.answer("_order").expect("answer"),
        Some(Answer::Integer(3))
    );
}

#[test]
fn positions_keep_what_is_in_order_and_fit_the_rest_between() {
    type Case = (Vec<Option<(f64, &'static str)>>, Vec<f64>);
    let cases: Vec<Case> = vec![
        (vec![], vec![]),
        (vec![None, None], vec![1.0, 2.0]),
        // Appends go after the greatest: max + 1.
        (
            vec![Some((1.0, "a")), Some((5.0, "b")), None],
            vec![1.0, 5.0, 6.0],
        ),
        // Before the first.
        (vec![None, None, Some((1.0, "a"))], vec![-1.0, 0.0, 1.0]),
        // Between two.
        (
            vec![Some((1.0, "a")), None, Some((2.0, "b"))],
            vec![1.0, 1.5, 2.0],
        ),
        // A move rewrites only the moved instance (the longest run in order stays).
        (
            vec![Some((3.0, "c")), Some((1.0, "a")), Some((2.0, "b"))],
            vec![0.0, 1.0, 2.0],
        ),
        (
            vec![Some((2.0, "b")), Some((3.0, "c")), Some((1.0, "a"))],
            vec![2.0, 3.0, 4.0],
        ),
        // Tied positions (concurrent appends) stay when in id order...
        (vec![Some((2.0, "a")), Some((2.0, "b"))], vec![2.0, 2.0]),
        // ...and one moves when listed against it.
        (vec![Some((2.0, "b")), Some((2.0, "a"))], vec![1.0, 2.0]),
        // No room between tied neighbours: everything renumbered.
        (
            vec![Some((2.0, "a")), None, Some((2.0, "b"))],
            vec![1.0, 2.0, 3.0],
        ),
        // No room left in floating point: renumbered.
        (
            vec![Some((1.0, "a")), None, Some((1.0 + f64::EPSILON, "b"))],
            vec![1.0, 2.0, 3.0],
        ),
    ];
    for (current, want) in cases {
        assert_eq!(plan_orders(&current), want, "{current:?}");
    }
}

#[test]
fn many_inserts_at_one_place_keep_the_listed_order() {
    let mut doc = created();
    let mut list = vec![inst("first", vec![]), inst("last", vec![])];
    for n in 0..80 {
        // Always insert just before `last`, halving the gap each time until it runs out.
        list.insert(list.len() - 1, inst(&format!("i{n:02}"), vec![]));
        doc.set_answer("members", &Answer::Repeat(list.clone()), T0 + n)
            .expect("set");
        assert_eq!(ids(&members(&doc)), ids(&list), "after {n}");
    }
}

#[test]
fn same_answer_compares_repeats_by_ids_and_answers() {
    let one = |id: &str, age: Answer| Answer::Repeat(vec![inst(id, vec![("age", age)])]);
    type Case = (Answer, Answer, bool);
    let cases: Vec<Case> = vec![
        (
            one("a", Answer::Integer(1)),
            one("a", Answer::Integer(1)),
            true,
        ),
        (
            one("a", Answer::Decimal(0.0)),
            one("a", Answer::Decimal(-0.0)),
            true,
        ),
        (
            one("a", Answer::Integer(1)),
            one("b", Answer::Integer(1)),
            false,
        ),
        (
            one("a", Answer::Integer(1)),
            one("a", Answer::Decimal(1.0)),
            false,
        ),
        (one("a", Answer::Integer(1)), Answer::Repeat(vec![]), false),
        (
            Answer::Repeat(vec![inst("a", vec![]), inst("b", vec![])]),
            Answer::Repeat(vec![inst("b", vec![]), inst("a", vec![])]),
            false,
        ),
        (
            Answer::Repeat(vec![inst("a", vec![])]),
            Answer::Repeat(vec![inst("a", vec![("x", Answer::Integer(1))])]),
            false,
        ),
        (Answer::Repeat(vec![]), Answer::Text(String::new()), false),
    ];
    for (a, b, want) in cases {
        assert_eq!(same_answer(&a, &b), want, "{a:?} vs {b:?}");
        assert_eq!(same_answer(&b, &a), want, "{b:?} vs {a:?}");
    }
}
