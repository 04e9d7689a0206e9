//! Repeats, calculations, choice filters and piped labels, on the household roster form
//! (`fixtures/surveys/household-roster.json`): a repeat counted by an answer, questions
//! relevant per entry, calculations over every entry.
// A failed unwrap is a failed test, which is what a test should do.
#![allow(clippy::unwrap_used)]

use time::macros::datetime;

use super::*;
use crate::answer::RepeatInstance;
use crate::survey::DeviceValues;

fn roster() -> Survey {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/surveys/household-roster.json"
    );
    Survey::parse_json(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn ctx() -> ValidationContext {
    ValidationContext::at(datetime!(2026-03-02 09:30:00 UTC))
}

fn member(name: &str, age: i64, school: Option<&str>) -> RepeatInstance {
    let mut answers = Answers::new();
    answers.insert("m_name".into(), Answer::from(name));
    answers.insert("m_age".into(), Answer::Integer(age));
    if let Some(s) = school {
        answers.insert("m_school".into(), Answer::from(s));
    }
    RepeatInstance {
        id: String::new(),
        answers,
    }
}

fn household(members: Vec<RepeatInstance>) -> Answers {
    let mut a = Answers::new();
    a.insert("hh_name".into(), Answer::from("Achieng"));
    a.insert("region".into(), Answer::from("north"));
    a.insert("district".into(), Answer::from("lakes"));
    a.insert("n_members".into(), Answer::Integer(members.len() as i64));
    a.insert("member".into(), Answer::Repeat(members));
    a
}

fn problems(s: &Survey, a: &Answers) -> Vec<(String, ValidationErrorKind)> {
    s.validate(a, &ctx())
        .into_iter()
        .map(|e| (e.question, e.kind))
        .collect()
}

#[test]
fn the_form_checks_with_its_repeat_languages_and_metadata() {
    let s = roster();
    assert!(s.warnings().is_empty(), "{:?}", s.warnings());
    assert_eq!(s.languages(), ["English (en)", "Français (fr)"]);
    let member = s.group("member").unwrap();
    assert!(member.repeat);
    assert_eq!(
        member.repeat_count.as_ref().map(XPath::source),
        Some("${n_members}")
    );
    assert_eq!(
        s.question("m_age").unwrap().repeat.as_deref(),
        Some("member")
    );
    assert_eq!(
        s.question("hh_name")
            .unwrap()
            .label
            .get(Some("Français (fr)")),
        Some("Nom du chef de ménage")
    );
}

#[test]
fn a_valid_household_with_its_members() {
    let s = roster();
    let a = s.calculate(
        &household(vec![
            member("Achieng", 41, None),
            member("Otieno", 9, Some("yes")),
        ]),
        &ctx(),
    );
    assert_eq!(problems(&s, &a), []);
    assert_eq!(a.get("n_adults"), Some(&Answer::from("1")));
    assert_eq!(a.get("oldest"), Some(&Answer::from("41")));
}

#[test]
fn every_entry_is_checked_in_its_place() {
    let s = roster();
    let a = household(vec![
        member("Achieng", 41, Some("no")),
        member("Otieno", 9, None),
        member("", 200, None),
    ]);
    assert_eq!(
        problems(&s, &a),
        [
            (
                "member[1]/m_school".to_owned(),
                ValidationErrorKind::NotRelevant
            ),
            ("member[3]/m_name".to_owned(), ValidationErrorKind::Required),
            (
                "member[3]/m_age".to_owned(),
                ValidationErrorKind::Constraint
            ),
        ],
        "the adult's school answer is not asked; the third entry's blank name is required \
         and its age out of range; the 9-year-old's optional school question may stay blank"
    );
    let mut a = household(vec![member("Achieng", 41, None)]);
    a.insert("n_members".into(), Answer::Integer(2));
    assert_eq!(
        problems(&s, &a),
        [("member".to_owned(), ValidationErrorKind::Constraint)],
        "repeat_count asks for two entries"
    );
}

#[test]
fn answers_in_the_wrong_place_are_named() {
    let s = roster();
    let mut a = household(vec![member("Achieng", 41, None)]);
    a.insert("m_age".into(), Answer::Integer(3));
    a.insert("hh_name".into(), Answer::Repeat(vec![]));
    let got = problems(&s, &a);
    assert!(
        got.contains(&("m_age".to_owned(), ValidationErrorKind::UnknownQuestion)),
        "{got:?}"
    );
    assert!(
        got.contains(&("hh_name".to_owned(), ValidationErrorKind::WrongType)),
        "{got:?}"
    );
}

#[test]
fn the_choice_filter_narrows_the_districts() {
    let s = roster();
    let mut a = household(vec![]);
    let names = |a: &Answers| -> Vec<String> {
        s.choices_at(At::top("district"), a, &ctx())
            .into_iter()
            .map(|c| c.name.clone())
            .collect()
    };
    assert_eq!(names(&a), ["hills", "lakes"]);
    a.insert("region".into(), Answer::from("south"));
    assert_eq!(names(&a), ["coast"]);
    a.remove("region");
    assert_eq!(names(&a), Vec::<String>::new(), "no region, no district");
}

#[test]
fn labels_pipe_the_answer_of_their_own_entry() {
    let s = roster();
    let a = household(vec![member("Achieng", 41, None), member("Otieno", 9, None)]);
    let q = s.question("m_age").unwrap();
    let second = vec![("member".to_owned(), 1)];
    let at = At {
        instances: &second,
        question: "m_age",
    };
    assert_eq!(s.pipe(q.label.text(), at, &a, &ctx()), "Age of Otieno");
    let top = s.question("n_members").unwrap();
    assert_eq!(
        s.pipe(top.label.text(), At::top("n_members"), &a, &ctx()),
        "How many people live in Achieng's household?"
    );
}

#[test]
fn complete_fills_metadata_and_calculations() {
    let s = roster();
    let device = DeviceValues {
        device_id: Some("tablet-7".into()),
        ..DeviceValues::default()
    };
    let a = s.complete(
        &household(vec![member("Achieng", 41, None)]),
        &device,
        &ctx(),
    );
    assert_eq!(
        a.get("started"),
        Some(&Answer::from("2026-03-02T09:30:00Z"))
    );
    assert_eq!(
        a.get("finished"),
        Some(&Answer::from("2026-03-02T09:30:00Z"))
    );
    assert_eq!(a.get("visit_day"), Some(&Answer::from("2026-03-02")));
    assert_eq!(a.get("device"), Some(&Answer::from("tablet-7")));
    assert_eq!(a.get("n_adults"), Some(&Answer::from("1")));
    assert_eq!(problems(&s, &a), []);
    // A later save keeps `start` and moves `end`.
    let later = ValidationContext::at(datetime!(2026-03-02 10:00:00 UTC));
    let again = s.complete(&a, &device, &later);
    assert_eq!(again.get("started"), a.get("started"));
    assert_eq!(
        again.get("finished"),
        Some(&Answer::from("2026-03-02T10:00:00Z"))
    );
}

#[test]
fn what_becomes_irrelevant_is_dropped() {
    let s = roster();
    let a = household(vec![member("Otieno", 9, Some("yes"))]);
    let mut older = a.clone();
    if let Some(Answer::Repeat(m)) = older.get_mut("member") {
        m[0].answers.insert("m_age".into(), Answer::Integer(30));
    }
    let kept = s.drop_irrelevant(&older, &ctx());
    let m = kept.get("member").and_then(Answer::as_repeat).unwrap();
    assert!(!m[0].answers.contains_key("m_school"), "{kept:?}");
    assert_eq!(s.drop_irrelevant(&a, &ctx()), a);
}

#[test]
fn sampled_responses_are_valid_and_cover_the_form() {
    use crate::survey::SampleRng;
    for file in [
        "household-roster.json",
        "household-v1.json",
        "health-facility.json",
    ] {
        let path = format!("{}/../fixtures/surveys/{file}", env!("CARGO_MANIFEST_DIR"));
        let s = Survey::parse_json(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let mut rng = SampleRng::new(7);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..20 {
            let a = s.sample(&mut rng, &ctx());
            assert_eq!(s.validate(&a, &ctx()), [], "{file}: {a:?}");
            let mut stack = vec![a];
            while let Some(scope) = stack.pop() {
                for (k, v) in scope {
                    if let Answer::Repeat(entries) = v {
                        stack.extend(entries.into_iter().map(|e| e.answers));
                    }
                    seen.insert(k);
                }
            }
        }
        let asked: Vec<&str> = s
            .questions()
            .iter()
            .filter(|q| q.is_asked())
            .map(|q| q.name.as_str())
            .collect();
        let missing: Vec<&&str> = asked.iter().filter(|q| !seen.contains(**q)).collect();
        assert!(
            missing.is_empty(),
            "{file}: never answered in 20 samples: {missing:?}"
        );
    }
}

#[test]
fn external_choices_are_filtered_by_the_answers() {
    let json = r#"{ "settings": { "form_id": "ext" }, "survey": [
        { "type": "select_one region", "name": "region", "label": "Region" },
        { "type": "select_one_external town", "name": "town", "label": "Town", "choice_filter": "region=${region}" } ],
        "choices": [ { "list_name": "region", "name": "north", "label": "North" },
                     { "list_name": "region", "name": "south", "label": "South" } ],
        "external_choices": [
            { "list_name": "town", "name": "gulu", "label": "Gulu", "region": "north" },
            { "list_name": "town", "name": "mbarara", "label": "Mbarara", "region": "south" } ] }"#;
    let s = Survey::parse_json(json).unwrap();
    let mut a = Answers::new();
    a.insert("region".into(), Answer::from("south"));
    let names: Vec<&str> = s
        .choices_at(At::top("town"), &a, &ctx())
        .into_iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(names, ["mbarara"]);
}

#[test]
fn a_reference_to_a_refused_row_names_that_row() {
    let json = r#"{ "settings": { "form_id": "bad" }, "survey": [
        { "type": "txt", "name": "a", "label": "A" },
        { "type": "text", "name": "b", "label": "B is ${a}", "relevant": "${a} != ''" } ] }"#;
    let e = Survey::parse_json(json).unwrap_err();
    let shown = e.to_string();
    assert_eq!(e.0.len(), 3, "{shown}");
    assert!(shown.contains("unknown type `txt`"), "{shown}");
    assert!(
        shown.contains("`${a}` refers to row 1, whose type is refused"),
        "{shown}"
    );
    assert!(!shown.contains("check the name"), "{shown}");
}
