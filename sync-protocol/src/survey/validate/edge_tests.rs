//! Edge cases of repeats, defaults and calculations found in review, each on a small form.
// A failed unwrap is a failed test, which is what a test should do.
#![allow(clippy::unwrap_used)]

use time::macros::datetime;

use super::*;
use crate::answer::RepeatInstance;
use crate::survey::DeviceValues;

fn ctx() -> ValidationContext {
    ValidationContext::at(datetime!(2026-03-02 09:30:00 UTC))
}

fn form(rows: &str) -> Survey {
    Survey::parse_json(&format!(
        r#"{{ "settings": {{ "form_id": "t" }}, "survey": [{rows}],
             "choices": [ {{ "list_name": "yn", "name": "yes", "label": "Yes" }},
                          {{ "list_name": "yn", "name": "no", "label": "No" }} ] }}"#
    ))
    .unwrap()
}

fn entry(pairs: &[(&str, Answer)]) -> RepeatInstance {
    RepeatInstance {
        id: String::new(),
        answers: pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
    }
}

#[test]
fn a_nested_repeat_is_relevant_by_its_own_entry() {
    let s = form(
        r#"{ "type": "begin_repeat", "name": "members", "label": "M" },
           { "type": "integer", "name": "age", "label": "Age" },
           { "type": "begin_group", "name": "adult", "label": "Adult", "relevant": "${age} >= 18" },
           { "type": "begin_repeat", "name": "jobs", "label": "J" },
           { "type": "text", "name": "job", "label": "Job" },
           { "type": "end_repeat" },
           { "type": "end_group" },
           { "type": "end_repeat" }"#,
    );
    let mut a = Answers::new();
    a.insert(
        "members".into(),
        Answer::Repeat(vec![
            entry(&[("age", Answer::Integer(5))]),
            entry(&[("age", Answer::Integer(40))]),
        ]),
    );
    let at = |k| vec![("members".to_owned(), k)];
    let first = at(0);
    let second = at(1);
    let jobs = |instances| At {
        instances,
        question: "jobs",
    };
    assert!(
        !s.is_relevant_at(jobs(&first), &a, &ctx()),
        "the child has no jobs"
    );
    assert!(
        s.is_relevant_at(jobs(&second), &a, &ctx()),
        "the adult's jobs are asked"
    );
}

#[test]
fn hiding_one_entry_drops_only_that_entry() {
    let s = form(
        r#"{ "type": "integer", "name": "limit", "label": "Limit" },
           { "type": "begin_repeat", "name": "visit", "label": "V" },
           { "type": "integer", "name": "n", "label": "N" },
           { "type": "begin_group", "name": "extra", "label": "E", "relevant": "${n} <= ${limit}" },
           { "type": "text", "name": "note_text", "label": "T" },
           { "type": "end_group" },
           { "type": "end_repeat" }"#,
    );
    let mut a = Answers::new();
    a.insert("limit".into(), Answer::Integer(2));
    a.insert(
        "visit".into(),
        Answer::Repeat(vec![
            entry(&[("n", Answer::Integer(1)), ("note_text", Answer::from("a"))]),
            entry(&[("n", Answer::Integer(5)), ("note_text", Answer::from("b"))]),
        ]),
    );
    let kept = s.drop_irrelevant(&a, &ctx());
    let v = kept.get("visit").and_then(Answer::as_repeat).unwrap();
    assert_eq!(v.len(), 2, "both entries stay: {kept:?}");
    assert_eq!(v[0].answers.get("note_text"), Some(&Answer::from("a")));
    assert!(
        !v[1].answers.contains_key("note_text"),
        "only the hidden answer goes"
    );
}

#[test]
fn dynamic_defaults_skip_what_is_not_relevant_and_submit_does_not_refill() {
    let s = form(
        r#"{ "type": "select_one yn", "name": "consent", "label": "Consent" },
           { "type": "date", "name": "visit", "label": "Visit", "default": "today()", "relevant": "${consent} = 'yes'" },
           { "type": "date", "name": "next", "label": "Next", "default": "today()" }"#,
    );
    let mut a = Answers::new();
    a.insert("consent".into(), Answer::from("no"));
    let created = s.complete(&a, &DeviceValues::default(), &ctx());
    assert!(!created.contains_key("visit"), "{created:?}");
    assert_eq!(created.get("next"), Some(&Answer::from("2026-03-02")));
    assert_eq!(s.validate(&created, &ctx()), []);
    let mut cleared = created.clone();
    cleared.remove("next");
    let handed_in = s.submitted(&cleared, &ctx());
    assert!(
        !handed_in.contains_key("next"),
        "an emptied optional answer stays empty"
    );
}

#[test]
fn calculations_are_typed_and_notes_with_calculations_store_nothing() {
    let s = form(
        r#"{ "type": "integer", "name": "n", "label": "N" },
           { "type": "integer", "name": "double", "calculation": "${n} * 2" },
           { "type": "note", "name": "shown", "label": "Twice: ${double}", "calculation": "${n} * 2" }"#,
    );
    let q = s.question("double").unwrap();
    assert!(!q.is_asked(), "a typed calculate is not asked");
    let mut a = Answers::new();
    a.insert("n".into(), Answer::Integer(21));
    let c = s.calculate(&a, &ctx());
    assert_eq!(c.get("double"), Some(&Answer::Integer(42)));
    assert!(!c.contains_key("shown"));
    assert_eq!(s.validate(&c, &ctx()), []);
}

#[test]
fn two_groups_of_one_name_are_refused() {
    let json = r#"{ "settings": { "form_id": "t" }, "survey": [
        { "type": "begin_group", "name": "a", "label": "A" },
        { "type": "begin_group", "name": "details", "label": "D" },
        { "type": "text", "name": "x", "label": "X" },
        { "type": "end_group" }, { "type": "end_group" },
        { "type": "begin_group", "name": "b", "label": "B" },
        { "type": "begin_group", "name": "details", "label": "D" },
        { "type": "text", "name": "y", "label": "Y" },
        { "type": "end_group" }, { "type": "end_group" } ] }"#;
    let e = Survey::parse_json(json).unwrap_err();
    assert_eq!(e.0.len(), 1, "{e}");
    assert_eq!(e.0[0].row, Some(7));
    assert!(
        e.0[0]
            .message
            .contains("a group named `details` is already on row 2"),
        "{e}"
    );
}
