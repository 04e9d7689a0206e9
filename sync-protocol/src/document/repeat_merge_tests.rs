//! Repeats edited on several replicas: concurrent additions (top level and nested) all
//! survive in one order, list writes keep edits they did not see, a deletion wins over a
//! concurrent edit, conflicts inside instances are listed by path and resolve, concurrent
//! moves agree, and the schema bump merges.

use super::repeat_tests::{created_with, household, ids, inst, members, schema_of, sync};
use super::response::tests::{T0, actor, created, replica};
use super::{ActorId, Conflict, ConflictValue, DocError};
use crate::Answer;

#[test]
fn a_concurrent_bump_and_schema_1_edits_merge_to_schema_2() {
    let mut a = created();
    let mut b = replica(&mut a, 2, "member:b");
    a.set_answer("members", &Answer::Repeat(vec![inst("x", vec![])]), T0 + 1)
        .expect("set");
    b.set_answer("q", &Answer::Integer(1), T0 + 1).expect("set");
    let mut c = replica(&mut a, 3, "member:c");
    c.set_answer(
        "members",
        &Answer::Repeat(vec![inst("x", vec![]), inst("y", vec![])]),
        T0 + 1,
    )
    .expect("set");
    sync(&mut a, &mut b);
    sync(&mut b, &mut c);
    sync(&mut a, &mut b);
    for doc in [&mut a, &mut b, &mut c] {
        assert_eq!(schema_of(doc), 2);
        assert_eq!(ids(&members(doc)), vec!["x", "y"]);
    }
}

#[test]
fn concurrent_additions_both_survive_in_the_same_order_everywhere() {
    let mut a = created_with(&household());
    let mut b = replica(&mut a, 2, "member:b");
    let mut list_a = members(&a);
    list_a.push(inst("zz-from-a", vec![("name", "Esi".into())]));
    a.set_answer("members", &Answer::Repeat(list_a), T0 + 1)
        .expect("a");
    let mut list_b = members(&b);
    list_b.push(inst("aa-from-b", vec![("name", "Yaw".into())]));
    b.set_answer("members", &Answer::Repeat(list_b), T0 + 1)
        .expect("b");
    // Nested instances added concurrently inside the same member survive too.
    a.set_answer(
        "members#m1/visits",
        &Answer::Repeat(vec![
            inst("v1", vec![("date", "2025-01-02".into())]),
            inst("v2", vec![("date", "2025-02-03".into())]),
            inst("va", vec![]),
        ]),
        T0 + 2,
    )
    .expect("a nested");
    b.set_answer(
        "members#m1/visits",
        &Answer::Repeat(vec![
            inst("v1", vec![("date", "2025-01-02".into())]),
            inst("v2", vec![("date", "2025-02-03".into())]),
            inst("vb", vec![]),
        ]),
        T0 + 2,
    )
    .expect("b nested");
    sync(&mut a, &mut b);
    assert_eq!(a.answers().expect("a"), b.answers().expect("b"));
    // Both appended at max + 1: the tie is broken by id.
    assert_eq!(
        ids(&members(&a)),
        vec!["m1", "m2", "aa-from-b", "zz-from-a"]
    );
    let Some(Answer::Repeat(visits)) = a.answer("members#m1/visits").expect("visits") else {
        panic!("visits")
    };
    assert_eq!(ids(&visits), vec!["v1", "v2", "va", "vb"]);
    assert_eq!(a.conflicts().expect("conflicts"), vec![]);
}

#[test]
fn a_list_write_keeps_concurrent_edits_it_did_not_see() {
    let mut a = created_with(&household());
    let mut b = replica(&mut a, 2, "member:b");
    // b edits one member's age and adds a visit; a, not having seen it, rewrites the list to
    // rename the other member and move it first.
    b.set_answer("members#m1/age", &Answer::Integer(40), T0 + 1)
        .expect("b");
    b.set_answer(
        "members#m1/visits",
        &Answer::Repeat(vec![
            inst("v1", vec![("date", "2025-01-02".into())]),
            inst("v2", vec![("date", "2025-02-03".into())]),
            inst("v3", vec![]),
        ]),
        T0 + 1,
    )
    .expect("b");
    let mut list = members(&a);
    list.reverse();
    list[0].answers.insert("name".to_owned(), "Kofi A.".into());
    a.set_answer("members", &Answer::Repeat(list), T0 + 1)
        .expect("a");
    sync(&mut a, &mut b);
    let got = members(&a);
    assert_eq!(ids(&got), vec!["m2", "m1"]);
    assert_eq!(got[0].answers.get("name"), Some(&"Kofi A.".into()));
    assert_eq!(got[1].answers.get("age"), Some(&Answer::Integer(40)));
    let Some(Answer::Repeat(visits)) = got[1].answers.get("visits") else {
        panic!("visits")
    };
    assert_eq!(ids(visits), vec!["v1", "v2", "v3"]);
    assert_eq!(a.conflicts().expect("conflicts"), vec![]);
    assert_eq!(a.answers().expect("a"), b.answers().expect("b"));
}

#[test]
fn an_instance_deleted_on_one_replica_and_edited_on_another_is_gone() {
    let mut a = created_with(&household());
    let mut b = replica(&mut a, 2, "member:b");
    a.remove_answer("members#m1", T0 + 1).expect("delete");
    b.set_answer("members#m1/age", &Answer::Integer(50), T0 + 1)
        .expect("edit");
    b.set_answer("members#m1/visits#v1/date", &"2025-09-09".into(), T0 + 1)
        .expect("edit nested");
    sync(&mut a, &mut b);
    for doc in [&a, &b] {
        assert_eq!(ids(&members(doc)), vec!["m2"]);
        assert_eq!(doc.conflicts().expect("conflicts"), vec![]);
        assert!(matches!(
            doc.answer("members#m1/age"),
            Err(DocError::BadPath { .. })
        ));
    }
}

#[test]
fn conflicts_inside_instances_are_listed_by_path_and_resolve() {
    let hex = |n| ActorId::from(actor(n)).to_hex_string();
    let mut a = created_with(&household());
    let mut b = replica(&mut a, 2, "member:alice");
    let mut c = replica(&mut a, 3, "member:carol");
    a.set_answer("members#m1/age", &Answer::Integer(35), T0 + 1)
        .expect("a");
    a.set_answer("members#m1/visits#v2/date", &"2025-02-04".into(), T0 + 1)
        .expect("a");
    a.set_answer("village", &"Ada".into(), T0 + 1).expect("a");
    b.set_answer("members#m1/age", &Answer::Integer(36), T0 + 1)
        .expect("b");
    b.set_answer("members#m1/visits#v2/date", &"2025-02-05".into(), T0 + 1)
        .expect("b");
    b.set_answer("village", &"Ho".into(), T0 + 1).expect("b");
    // Same value on both sides: not a conflict.
    a.set_answer("members#m2/name", &"Kofi B.".into(), T0 + 1)
        .expect("a");
    b.set_answer("members#m2/name", &"Kofi B.".into(), T0 + 1)
        .expect("b");
    sync(&mut a, &mut b);
    let value = |v: Answer, n: u8, label: &str| ConflictValue {
        value: v,
        actor: hex(n),
        author: Some(label.to_owned()),
    };
    let want = vec![
        Conflict {
            question: "members#m1/age".to_owned(),
            values: vec![
                value(Answer::Integer(36), 2, "member:alice"),
                value(Answer::Integer(35), 1, "device:tablet-07"),
            ],
        },
        Conflict {
            question: "members#m1/visits#v2/date".to_owned(),
            values: vec![
                value("2025-02-05".into(), 2, "member:alice"),
                value("2025-02-04".into(), 1, "device:tablet-07"),
            ],
        },
        Conflict {
            question: "village".to_owned(),
            values: vec![
                value("Ho".into(), 2, "member:alice"),
                value("Ada".into(), 1, "device:tablet-07"),
            ],
        },
    ];
    for doc in [&a, &b] {
        assert_eq!(doc.conflicts().expect("conflicts"), want);
        // The shown value is the first listed, by path and in `answers`.
        assert_eq!(
            doc.answer("members#m1/age").expect("answer"),
            Some(Answer::Integer(36))
        );
        assert_eq!(
            members(doc)[0].answers.get("age"),
            Some(&Answer::Integer(36))
        );
    }
    // A list write that leaves a conflicted field as shown does not settle it silently.
    let list = members(&a);
    a.set_answer("members", &Answer::Repeat(list), T0 + 2)
        .expect("rewrite");
    assert_eq!(a.conflicts().expect("conflicts").len(), 3);
    // Resolving by path, on a third replica, settles it everywhere.
    sync(&mut b, &mut c);
    for conflict in c.conflicts().expect("conflicts") {
        let pick = conflict.values[1].value.clone();
        c.resolve(&conflict.question, &pick, T0 + 3)
            .expect("resolve")
            .expect("a change");
    }
    assert_eq!(c.conflicts().expect("conflicts"), vec![]);
    sync(&mut c, &mut a);
    sync(&mut a, &mut b);
    for doc in [&a, &b, &c] {
        assert_eq!(doc.conflicts().expect("conflicts"), vec![]);
        assert_eq!(
            doc.answer("members#m1/age").expect("answer"),
            Some(Answer::Integer(35))
        );
        assert_eq!(doc.answer("village").expect("answer"), Some("Ada".into()));
    }
}

#[test]
fn concurrent_moves_of_one_instance_are_no_conflict_and_agree() {
    let mut a = created_with(&household());
    let mut b = replica(&mut a, 2, "member:b");
    let mut list = members(&a);
    list.push(inst("m3", vec![]));
    a.set_answer("members", &Answer::Repeat(list.clone()), T0 + 1)
        .expect("a");
    sync(&mut a, &mut b);
    // a moves m3 first, b moves m1 last.
    let moved_a = vec![list[2].clone(), list[0].clone(), list[1].clone()];
    let moved_b = vec![list[1].clone(), list[2].clone(), list[0].clone()];
    a.set_answer("members", &Answer::Repeat(moved_a), T0 + 2)
        .expect("a");
    b.set_answer("members", &Answer::Repeat(moved_b), T0 + 2)
        .expect("b");
    sync(&mut a, &mut b);
    assert_eq!(a.answers().expect("a"), b.answers().expect("b"));
    assert_eq!(ids(&members(&a)), vec!["m3", "m2", "m1"]);
    assert_eq!(a.conflicts().expect("conflicts"), vec![]);
}
