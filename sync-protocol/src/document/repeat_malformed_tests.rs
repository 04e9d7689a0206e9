//! Repeat layouts that fieldsync never writes (a foreign or broken peer's) are refused by every
//! read with a typed error naming the key path, never a panic and never a silently wrong
//! answer.

use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, ObjId, ObjType, ROOT, ReadDoc, ScalarValue};

use super::repeat::MAX_DEPTH;
use super::repeat_tests::{answers_of, inst};
use super::response::tests::{T0, actor, new_meta};
use super::{DocError, ResponseDoc, Status};
use crate::Answer;

/// A schema-2 response holding `members#m1` (with a field) and nothing else odd, rewritten by
/// a raw Automerge writer.
fn tampered(edit: impl FnOnce(&mut AutoCommit, &ObjId, &ObjId)) -> ResponseDoc {
    let answers = answers_of(vec![(
        "members",
        Answer::Repeat(vec![inst("m1", vec![("age", Answer::Integer(3))])]),
    )]);
    let mut doc = ResponseDoc::create(
        new_meta(),
        actor(1),
        "device:t",
        &answers,
        Status::Draft,
        T0,
    )
    .expect("create");
    let mut raw = AutoCommit::load(&doc.save())
        .expect("raw")
        .with_actor(ActorId::from(actor(9)));
    let map = match raw.get(ROOT, "answers").expect("get") {
        Some((_, id)) => id,
        None => panic!("no answers"),
    };
    let m1 = match raw.get(&map, "members#m1").expect("get") {
        Some((_, id)) => id,
        None => panic!("no instance"),
    };
    edit(&mut raw, &map, &m1);
    raw.commit();
    ResponseDoc::load(&raw.save()).expect("the header still loads")
}

#[test]
fn malformed_repeat_layouts_are_typed_errors_with_their_path() {
    type Tamper = fn(&mut AutoCommit, &ObjId, &ObjId);
    #[derive(Debug)]
    enum Want {
        WrongType(&'static str),
        Missing(&'static str),
        Bad(&'static str),
    }
    use Want::*;
    let cases: Vec<(&str, Tamper, Want)> = vec![
        (
            "an instance that is a scalar",
            |d, a, _| d.put(a, "members#m2", "x").expect("put"),
            WrongType("answers.members#m2"),
        ),
        (
            "an instance that is a list",
            |d, a, _| {
                d.put_object(a, "members#m2", ObjType::List)
                    .map(drop)
                    .expect("put")
            },
            WrongType("answers.members#m2"),
        ),
        (
            "an instance without `_order`",
            |d, _, m| d.delete(m, "_order").expect("del"),
            Missing("answers.members#m1._order"),
        ),
        (
            "an `_order` that is text",
            |d, _, m| d.put(m, "_order", "1").expect("put"),
            WrongType("answers.members#m1._order"),
        ),
        (
            "an `_order` that is a map",
            |d, _, m| {
                d.put_object(m, "_order", ObjType::Map)
                    .map(drop)
                    .expect("put")
            },
            WrongType("answers.members#m1._order"),
        ),
        (
            "an `_order` that is NaN",
            |d, _, m| d.put(m, "_order", f64::NAN).expect("put"),
            Bad("answers.members#m1._order"),
        ),
        (
            "an `_order` that is infinite",
            |d, _, m| d.put(m, "_order", f64::INFINITY).expect("put"),
            Bad("answers.members#m1._order"),
        ),
        (
            "an instance key with an empty id",
            |d, a, _| {
                d.put_object(a, "members#", ObjType::Map)
                    .map(drop)
                    .expect("put")
            },
            Bad("answers.members#"),
        ),
        (
            "an instance key with an empty repeat name",
            |d, a, _| d.put_object(a, "#m9", ObjType::Map).map(drop).expect("put"),
            Bad("answers.#m9"),
        ),
        (
            "an instance id holding a path separator",
            |d, a, _| {
                d.put_object(a, "members#a/b", ObjType::Map)
                    .map(drop)
                    .expect("put")
            },
            Bad("answers.members#a/b"),
        ),
        (
            "a nested instance key with an empty id",
            |d, _, m| {
                d.put_object(m, "visits#", ObjType::Map)
                    .map(drop)
                    .expect("put")
            },
            Bad("answers.members#m1.visits#"),
        ),
        (
            "a nested instance that is a counter",
            |d, _, m| d.put(m, "visits#v", ScalarValue::counter(1)).expect("put"),
            WrongType("answers.members#m1.visits#v"),
        ),
        (
            "an answer inside an instance of the wrong type",
            |d, _, m| d.put(m, "age", true).expect("put"),
            WrongType("answers.members#m1.age"),
        ),
        (
            "an answer inside an instance that is a text object",
            |d, _, m| {
                d.put_object(m, "age", ObjType::Text)
                    .map(drop)
                    .expect("put")
            },
            WrongType("answers.members#m1.age"),
        ),
        (
            "a name that is both an answer and a repeat",
            |d, a, _| d.put(a, "members", 1_i64).expect("put"),
            Bad("answers.members"),
        ),
        (
            "a name inside an instance that is both",
            |d, _, m| {
                d.put(m, "visits", 1_i64).expect("put");
                let v = d.put_object(m, "visits#v", ObjType::Map).expect("put");
                d.put(&v, "_order", 1.0).expect("put");
            },
            Bad("answers.members#m1.visits"),
        ),
    ];
    for (what, tamper, want) in cases {
        let doc = tampered(tamper);
        let reads: [(&str, Result<(), DocError>); 4] = [
            ("answers", doc.answers().map(drop)),
            ("answer", doc.answer("members").map(drop)),
            ("conflicts", doc.conflicts().map(drop)),
            ("check_readable", doc.check_readable().map(drop)),
        ];
        for (read, result) in reads {
            // `answer("members")` only reads that repeat; an odd key elsewhere is not its.
            if read == "answer" && what.contains("empty repeat name") {
                assert!(result.is_ok(), "{what}: {read}");
                continue;
            }
            let err = result.expect_err(what);
            let ok = match (&want, &err) {
                (WrongType(f), DocError::WrongType { field, .. }) => field == f,
                (Missing(f), DocError::MissingField { field }) => field == f,
                (Bad(f), DocError::BadValue { field, .. }) => field == f,
                _ => false,
            };
            assert!(ok, "{what}: {read}: want {want:?}, got {err:?}");
            assert!(!err.to_string().ends_with('.'), "{what}");
        }
    }
}

#[test]
fn tolerated_positions_read() {
    // Other Automerge writers may store a position as an integer.
    let puts: [fn(&mut AutoCommit, &ObjId); 2] = [
        |d, m| d.put(m, "_order", 1_i64).expect("put"),
        |d, m| d.put(m, "_order", 1_u64).expect("put"),
    ];
    for put in puts {
        let doc = tampered(|d, _, m| put(d, m));
        let Some(Answer::Repeat(list)) = doc.answer("members").expect("answer") else {
            panic!("members")
        };
        assert_eq!(list[0].id, "m1");
        assert_eq!(list[0].answers.get("age"), Some(&Answer::Integer(3)));
    }
}

#[test]
fn repeats_nested_too_deeply_are_refused_not_a_stack_overflow() {
    let nest = |depth: usize| {
        tampered(move |d, _, m| {
            let mut at = m.clone();
            for n in 1..depth {
                at = d
                    .put_object(&at, format!("r#{n}"), ObjType::Map)
                    .expect("put");
                d.put(&at, "_order", 1.0).expect("put");
            }
        })
    };
    // MAX_DEPTH levels read...
    nest(MAX_DEPTH).answers().expect("deepest allowed");
    nest(MAX_DEPTH).conflicts().expect("deepest allowed");
    // ...one more is refused by every read.
    let doc = nest(MAX_DEPTH + 1);
    for err in [
        doc.answers().map(drop).expect_err("too deep"),
        doc.conflicts().map(drop).expect_err("too deep"),
        doc.answer("members").map(drop).expect_err("too deep"),
    ] {
        assert!(
            matches!(&err, DocError::BadValue { reason, .. } if reason.contains("nest deeper")),
            "{err:?}"
        );
    }
}

#[test]
fn edits_on_a_malformed_repeat_are_refused_and_write_nothing() {
    let mut doc =
        tampered(|d, _, m| d.put(m, "_order", "x").expect("put")).with_writer(actor(2), "member:b");
    let heads = doc.heads();
    let err = doc
        .set_answer("members", &Answer::Repeat(vec![]), T0 + 1)
        .expect_err("malformed");
    assert!(matches!(err, DocError::WrongType { .. }), "{err:?}");
    assert_eq!(doc.heads(), heads);
}
