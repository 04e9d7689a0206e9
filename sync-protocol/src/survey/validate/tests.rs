//! Table tests for answer validation, driven by `fixtures/answers`.
// A failed unwrap is a failed test, which is what a test should do.
#![allow(clippy::unwrap_used)]

use serde::Deserialize;
use time::macros::date;

use super::*;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures");

fn ctx() -> ValidationContext {
    ValidationContext::new(date!(2024 - 06 - 15))
}

fn load_survey(file: &str) -> Survey {
    let path = format!("{FIXTURES}/surveys/{file}");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    Survey::parse_json(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[derive(Deserialize)]
struct CaseFile {
    survey: String,
    today: String,
    cases: std::collections::BTreeMap<String, Case>,
}

#[derive(Deserialize)]
struct Case {
    answers: Answers,
    expected: Vec<Expected>,
}

#[derive(Deserialize, Debug, PartialEq)]
struct Expected {
    question: String,
    kind: ValidationErrorKind,
}

/// Runs every case of `fixtures/answers/<file>`: the errors (question and kind, in order) must
/// be exactly the expected ones, and each must carry a message.
fn check_answer_file(file: &str) {
    let path = format!("{FIXTURES}/answers/{file}");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let cases: CaseFile = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    let survey = load_survey(&cases.survey);
    let today =
        super::super::xpath::convert::parse_date(&cases.today).expect("fixture today is a date");
    let ctx = ValidationContext::new(today);
    assert!(cases.cases.len() >= 5, "{path}: too few cases");
    let mut failures = Vec::new();
    for (name, case) in &cases.cases {
        let errors = survey.validate(&case.answers, &ctx);
        let got: Vec<Expected> = errors
            .iter()
            .map(|e| Expected {
                question: e.question.clone(),
                kind: e.kind,
            })
            .collect();
        if got != case.expected {
            let shown: Vec<String> = errors.iter().map(|e| format!("{:?} {e}", e.kind)).collect();
            failures.push(format!(
                "{name}:\n    expected {:?}\n    got {shown:#?}",
                case.expected
            ));
        }
        for e in &errors {
            assert!(
                !e.message.is_empty(),
                "{name}: empty message for {}",
                e.question
            );
        }
    }
    assert!(failures.is_empty(), "{file}:\n{}", failures.join("\n"));
}

#[test]
fn household_v1_answer_fixtures() {
    check_answer_file("household-v1.json");
}

#[test]
fn household_v2_answer_fixtures() {
    check_answer_file("household-v2.json");
}

#[test]
fn health_facility_answer_fixtures() {
    check_answer_file("health-facility.json");
}

/// A survey with one question of every type, to check answers one at a time.
fn all_types() -> Survey {
    let text = r#"{
      "settings": { "form_id": "all_types" },
      "survey": [
        { "type": "text", "name": "t", "label": "T" },
        { "type": "integer", "name": "i", "label": "I" },
        { "type": "decimal", "name": "d", "label": "D" },
        { "type": "select_one yn", "name": "s1", "label": "S1" },
        { "type": "select_multiple crops", "name": "sm", "label": "SM" },
        { "type": "date", "name": "dt", "label": "Date" },
        { "type": "datetime", "name": "ts", "label": "Datetime" },
        { "type": "geopoint", "name": "g", "label": "G" },
        { "type": "note", "name": "n", "label": "N" },
        { "type": "begin_group", "name": "grp", "label": "Group" },
        { "type": "integer", "name": "req", "label": "Required one", "required": true,
          "constraint": ". > ${i}" },
        { "type": "end_group" }
      ],
      "choices": [
        { "list_name": "yn", "name": "yes", "label": "Yes" },
        { "list_name": "yn", "name": "no", "label": "No" },
        { "list_name": "crops", "name": "maize", "label": "Maize" },
        { "list_name": "crops", "name": "beans", "label": "Beans" },
        { "list_name": "crops", "name": "sweet_potato", "label": "Sweet potato" }
      ]
    }"#;
    Survey::parse_json(text).unwrap_or_else(|e| panic!("{e}"))
}

/// `check_answer` on one value: `None` means accepted, otherwise the kind and a message
/// fragment.
fn check(name: &str, value: Answer, expected: Option<(ValidationErrorKind, &str)>) {
    let survey = all_types();
    let answers = Answers::from([("i".to_owned(), Answer::Integer(5))]);
    let got = survey.check_answer(name, &value, &answers, &ctx());
    match (got, expected) {
        (Ok(()), None) => {}
        (Err(e), Some((kind, fragment))) => {
            assert_eq!(e.kind, kind, "{name} = {value:?}: {e}");
            assert_eq!(e.question, name);
            assert!(
                e.message.contains(fragment),
                "{name} = {value:?}: {:?} lacks {fragment:?}",
                e.message
            );
        }
        (got, expected) => panic!("{name} = {value:?}: got {got:?}, expected {expected:?}"),
    }
}

#[test]
fn answer_types() {
    use ValidationErrorKind::*;
    let text = |s: &str| Answer::Text(s.to_owned());
    check("t", text("anything at all"), None);
    check(
        "t",
        Answer::Integer(3),
        Some((WrongType, "expected text as text, got the number 3")),
    );
    check("i", Answer::Integer(-7), None);
    check(
        "i",
        Answer::Decimal(7.0),
        Some((WrongType, "expected a whole number, got the number 7")),
    );
    check(
        "i",
        text("7"),
        Some((WrongType, "expected a whole number, got text \"7\"")),
    );
    check("d", Answer::Decimal(7.25), None);
    check("d", Answer::Integer(7), None);
    check(
        "d",
        Answer::Decimal(f64::NAN),
        Some((WrongType, "expected a number")),
    );
    check(
        "d",
        Answer::Decimal(f64::INFINITY),
        Some((WrongType, "expected a number")),
    );
    check(
        "d",
        text("7.25"),
        Some((WrongType, "expected a number, got text")),
    );
    check("s1", text("yes"), None);
    check("s1", text(" no "), None);
    check(
        "s1",
        text("maybe"),
        Some((NotInList, "`maybe` is not a choice of list `yn`")),
    );
    check(
        "s1",
        text("yes no"),
        Some((WrongType, "select_one takes exactly one choice")),
    );
    check(
        "s1",
        Answer::Integer(1),
        Some((WrongType, "expected a choice name as text")),
    );
    check("sm", text("maize"), None);
    check("sm", text("maize beans sweet_potato"), None);
    check(
        "sm",
        text("maize rice beans"),
        Some((NotInList, "`rice` is not a choice of list `crops`")),
    );
    check(
        "sm",
        text("beans beans"),
        Some((WrongType, "choice `beans` is selected twice")),
    );
    check("dt", text("2024-02-29"), None);
    check(
        "dt",
        text("2023-02-29"),
        Some((WrongType, "is not a date; write YYYY-MM-DD")),
    );
    check("dt", text("15/06/2024"), Some((WrongType, "is not a date")));
    check("ts", text("2024-06-15T10:30:00+03:00"), None);
    check("ts", text("2024-06-15T10:30:00.250Z"), None);
    check(
        "ts",
        text("2024-06-15"),
        Some((WrongType, "write RFC 3339")),
    );
    check("g", text("-1.2921 36.8219"), None);
    check("g", text("-1.2921 36.8219 1795"), None);
    check("g", text("-1.2921 36.8219 1795 4.5"), None);
    check("g", text("90 180 0 0"), None);
    check("g", text("-90 -180"), None);
    check("g", text("-1.2921"), Some((WrongType, "is not a location")));
    check(
        "g",
        text("1 2 3 4 5"),
        Some((WrongType, "is not a location")),
    );
    check(
        "g",
        text("north east"),
        Some((WrongType, "is not a location")),
    );
    check(
        "g",
        text("-1,29 36,82"),
        Some((WrongType, "is not a location")),
    );
    check(
        "g",
        text("90.5 10"),
        Some((WrongType, "latitude 90.5 is out of range")),
    );
    check(
        "g",
        text("10 -180.1"),
        Some((WrongType, "longitude -180.1 is out of range")),
    );
    check(
        "g",
        text("10 10 100 -1"),
        Some((WrongType, "accuracy cannot be negative")),
    );
    check("n", text("x"), Some((NotAnswerable, "`n` is a note")));
    check("grp", text("x"), Some((NotAnswerable, "`grp` is a group")));
    check(
        "nope",
        text("x"),
        Some((UnknownQuestion, "no question `nope` in survey `all_types`")),
    );
    // Blank answers: fine unless required.
    check("t", text(""), None);
    check(
        "req",
        text("  "),
        Some((Required, "`Required one` is required")),
    );
    // Constraints see other answers (`${i}` is 5 here).
    check("req", Answer::Integer(6), None);
    check(
        "req",
        Answer::Integer(5),
        Some((Constraint, "`5` does not satisfy the constraint `. > ${i}`")),
    );
}

#[test]
fn constraint_message_is_used_when_given() {
    let survey = load_survey("household-v1.json");
    let err = survey
        .check_answer("head_age", &Answer::Integer(12), &Answers::new(), &ctx())
        .unwrap_err();
    assert_eq!(err.kind, ValidationErrorKind::Constraint);
    assert_eq!(
        err.message,
        "The head of household must be between 15 and 120 years old."
    );
    assert_eq!(
        err.to_string(),
        "head_age: The head of household must be between 15 and 120 years old."
    );
    // A constraint sees the other answers passed in...
    let mut answers = Answers::from([
        ("consent".to_owned(), Answer::Text("yes".into())),
        ("hh_size".to_owned(), Answer::Integer(3)),
    ]);
    assert!(
        survey
            .check_answer("children_under5", &Answer::Integer(3), &answers, &ctx())
            .is_ok()
    );
    assert!(
        survey
            .check_answer("children_under5", &Answer::Integer(4), &answers, &ctx())
            .is_err()
    );
    // ...but an answer that is not relevant reads as unanswered, so the comparison is false.
    answers.insert("consent".to_owned(), Answer::Text("no".into()));
    assert!(
        survey
            .check_answer("children_under5", &Answer::Integer(3), &answers, &ctx())
            .is_err()
    );
    // `today()` comes from the context, not a clock.
    let dob = Answer::Text("2024-06-16".into());
    assert!(
        survey
            .check_answer("head_dob", &dob, &answers, &ctx())
            .is_err()
    );
    let tomorrow = ValidationContext::new(date!(2024 - 06 - 16));
    assert!(
        survey
            .check_answer("head_dob", &dob, &answers, &tomorrow)
            .is_ok()
    );
}

#[test]
fn relevance_including_groups() {
    let survey = load_survey("household-v1.json");
    let answers = |pairs: &[(&str, &str)]| -> Answers {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Answer::Text((*v).to_owned())))
            .collect()
    };
    let none = Answers::new();
    let cases: &[(&str, Answers, bool)] = &[
        ("enumerator_name", none.clone(), true),
        ("head_name", none.clone(), false),
        ("head_name", answers(&[("consent", "yes")]), true),
        ("head_name", answers(&[("consent", "no")]), false),
        ("respondent", answers(&[("consent", "yes")]), true),
        (
            "dwelling",
            answers(&[("consent", "yes"), ("interview_mode", "phone")]),
            false,
        ),
        // Nested: dwelling needs in-person mode and, through `household`, consent.
        (
            "rooms",
            answers(&[("consent", "yes"), ("interview_mode", "in_person")]),
            true,
        ),
        (
            "rooms",
            answers(&[("consent", "no"), ("interview_mode", "in_person")]),
            false,
        ),
        (
            "rooms",
            answers(&[("consent", "yes"), ("interview_mode", "phone")]),
            false,
        ),
        (
            "water_minutes",
            answers(&[
                ("consent", "yes"),
                ("interview_mode", "in_person"),
                ("water_source", "piped_dwelling"),
            ]),
            false,
        ),
        (
            "water_minutes",
            answers(&[
                ("consent", "yes"),
                ("interview_mode", "in_person"),
                ("water_source", "borehole"),
            ]),
            true,
        ),
        (
            "language_other",
            answers(&[("consent", "yes"), ("languages", "english other")]),
            true,
        ),
        (
            "language_other",
            answers(&[("consent", "yes"), ("languages", "english")]),
            false,
        ),
        // A hidden answer counts as unanswered downstream.
        (
            "aid_source",
            answers(&[("consent", "no"), ("received_aid", "yes")]),
            false,
        ),
        (
            "aid_source",
            answers(&[("consent", "yes"), ("received_aid", "yes")]),
            true,
        ),
        ("no_such_question", answers(&[("consent", "yes")]), false),
    ];
    for (name, answers, expected) in cases {
        assert_eq!(
            survey.is_relevant(name, answers, &ctx()),
            *expected,
            "{name} with {answers:?}"
        );
    }
}

#[test]
fn parse_input_converts_typed_text() {
    let survey = all_types();
    let cases: &[(&str, &str, Result<Answer, &str>)] = &[
        ("i", " 42 ", Ok(Answer::Integer(42))),
        ("i", "-3", Ok(Answer::Integer(-3))),
        ("i", "4.5", Err("`4.5` is not a whole number")),
        ("i", "", Err("`` is not a whole number")),
        ("i", "99999999999999999999", Err("is not a whole number")),
        ("d", "12.5", Ok(Answer::Decimal(12.5))),
        ("d", "12", Ok(Answer::Decimal(12.0))),
        ("d", "-0.5", Ok(Answer::Decimal(-0.5))),
        ("d", "12,5", Err("use `.` as the decimal separator")),
        ("d", "1e3", Err("`1e3` is not a number")),
        ("d", "NaN", Err("`NaN` is not a number")),
        (
            "t",
            "  Joseph  Mwangi ",
            Ok(Answer::Text("Joseph  Mwangi".into())),
        ),
        ("s1", " yes ", Ok(Answer::Text("yes".into()))),
        (
            "sm",
            " maize   beans\tsweet_potato ",
            Ok(Answer::Text("maize beans sweet_potato".into())),
        ),
        ("dt", "2024-06-15 ", Ok(Answer::Text("2024-06-15".into()))),
        ("g", " -1.29 36.82 ", Ok(Answer::Text("-1.29 36.82".into()))),
        ("g", "-1.29, 36.82", Ok(Answer::Text("-1.29 36.82".into()))),
        (
            "g",
            "-1.29,36.82, 1650, 5",
            Ok(Answer::Text("-1.29 36.82 1650 5".into())),
        ),
        ("g", "north, south", Ok(Answer::Text("north, south".into()))),
        ("n", "x", Err("is a note")),
        ("nope", "x", Err("no question `nope`")),
    ];
    for (name, input, expected) in cases {
        let got = survey.parse_input(name, input);
        match (got, expected) {
            (Ok(a), Ok(b)) => assert_eq!(&a, b, "{name} {input:?}"),
            (Err(e), Err(fragment)) => {
                assert!(
                    e.message.contains(fragment),
                    "{name} {input:?}: {:?} lacks {fragment:?}",
                    e.message
                )
            }
            (got, _) => panic!("{name} {input:?}: unexpected {got:?}"),
        }
    }
}

#[test]
fn validation_errors_serialize_for_storage() {
    let e = ValidationError {
        question: "head_age".into(),
        kind: ValidationErrorKind::NotInList,
        message: "`x` is not a choice of list `y`".into(),
    };
    let json = serde_json::to_string(&e).unwrap();
    assert_eq!(
        json,
        r#"{"question":"head_age","kind":"not_in_list","message":"`x` is not a choice of list `y`"}"#
    );
    assert_eq!(serde_json::from_str::<ValidationError>(&json).unwrap(), e);
    assert_eq!(ValidationErrorKind::NotRelevant.to_string(), "not_relevant");
}

#[test]
fn messages_name_the_cause() {
    let survey = load_survey("household-v1.json");
    let answers: Answers = [("consent", "no"), ("head_name", "Joseph")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), Answer::Text(v.to_owned())))
        .collect();
    let errors = survey.validate(&answers, &ctx());
    let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert!(
        messages.contains(&"head_name: answered although not relevant: group `respondent` is not relevant (`${consent} = 'yes'` is false); remove the answer".to_owned()),
        "{messages:#?}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m.starts_with("enumerator_name: `Enumerator name` is required")),
        "{messages:#?}"
    );
}

fn any_answer() -> impl proptest::strategy::Strategy<Value = Answer> {
    use proptest::prelude::*;
    prop_oneof![
        any::<i64>().prop_map(Answer::Integer),
        any::<f64>().prop_map(Answer::Decimal),
        "\\PC{0,20}".prop_map(Answer::Text),
        "(yes|no|in_person|phone|other|english|none|radio|2024-06-1[0-9]|-?[0-9]{1,3}(\\.[0-9])?| ){0,4}"
            .prop_map(Answer::Text),
    ]
}

proptest::proptest! {
    // Keep failures in the test output rather than in files outside the fixtures.
    #![proptest_config(proptest::test_runner::Config {
        failure_persistence: None,
        ..proptest::test_runner::Config::default()
    })]

    /// Any answers at all, under any question name: validation reports, never panics, and
    /// `check_answer` agrees that an accepted answer is accepted.
    #[test]
    fn arbitrary_answers_never_panic(
        picks in proptest::collection::vec((0usize..40, any_answer()), 0..30)
    ) {
        let survey = load_survey("household-v1.json");
        let names: Vec<String> = survey
            .questions()
            .iter()
            .map(|q| q.name.clone())
            .chain(["household".to_owned(), "nope".to_owned()])
            .collect();
        let answers: Answers = picks
            .into_iter()
            .map(|(i, a)| (names[i % names.len()].clone(), a))
            .collect();
        let errors = survey.validate(&answers, &ctx());
        for (name, value) in &answers {
            let flagged = errors.iter().any(|e| &e.question == name);
            // check_answer judges one answer as an interview asks it: only relevant questions,
            // never notes (validate lets a blank note answer pass; check_answer refuses notes).
            if !flagged
                && survey.question(name).is_some_and(|q| q.qtype != QuestionType::Note)
                && survey.is_relevant(name, &answers, &ctx())
            {
                proptest::prop_assert!(survey.check_answer(name, value, &answers, &ctx()).is_ok());
            }
            let _ = survey.parse_input(name, &value.to_text());
            let _ = survey.is_relevant(name, &answers, &ctx());
        }
    }
}

#[test]
fn typed_dates_and_times_take_words_and_the_devices_local_forms() {
    let survey = all_types();
    // 2026-12-01 08:40:05.250 on a device one hour east of UTC.
    let now = time::macros::datetime!(2026-12-01 08:40:05.250 +01:00);
    let typed = |name: &str, input: &str| match survey.parse_typed(name, input, now) {
        Ok(Answer::Text(t)) => t,
        other => panic!("{name} {input:?}: {other:?}"),
    };
    assert_eq!(typed("dt", "today"), "2026-12-01");
    assert_eq!(typed("dt", " Yesterday "), "2026-11-30");
    assert_eq!(typed("dt", "now"), "2026-12-01");
    assert_eq!(typed("dt", "2024-06-15"), "2024-06-15");
    assert_eq!(typed("ts", "now"), "2026-12-01T08:40:05.250+01:00");
    assert_eq!(
        typed("ts", "2026-11-30 17:05"),
        "2026-11-30T17:05:00.000+01:00"
    );
    // An explicit offset is kept as typed.
    assert_eq!(typed("ts", "2026-11-30T17:05:00Z"), "2026-11-30T17:05:00Z");
    assert_eq!(typed("g", "-1.29, 36.82"), "-1.29 36.82");
    // Whatever the result, it is an answer the question takes.
    for (name, input) in [("dt", "today"), ("ts", "now"), ("ts", "2026-11-30 17:05")] {
        let value = survey.parse_typed(name, input, now).expect("parsed");
        assert!(
            survey
                .check_answer(name, &value, &Answers::new(), &ctx())
                .is_ok(),
            "{name} {input:?} -> {value:?}"
        );
    }
    assert_eq!(
        survey.parse_typed("i", "today", now).unwrap_err().kind,
        ValidationErrorKind::WrongType
    );
}
