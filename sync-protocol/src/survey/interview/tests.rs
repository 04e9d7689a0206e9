//! The interview driven by scripted lines, as `fieldsync collect` drives it from stdin.

use std::sync::Arc;

use crate::Answer;
use crate::survey::{Survey, ValidationContext};

use super::*;

fn household() -> Survey {
    let text = include_str!("../../../../fixtures/surveys/household-v1.json");
    match Survey::parse_json(text) {
        Ok(s) => s,
        Err(e) => panic!("fixture survey: {e}"),
    }
}

fn interview() -> Interview {
    let survey = Arc::new(household());
    Interview::new(
        survey,
        ValidationContext::new(time::macros::date!(2024 - 06 - 15)),
    )
}

/// Feed lines; return the name of the question shown before each line and the reply.
fn run(iv: &mut Interview, lines: &[&str]) -> Vec<(String, Reply)> {
    let mut out = Vec::new();
    for line in lines {
        let shown = match iv.screen() {
            Screen::Question { question, .. } => question.name.clone(),
            Screen::AddEntry { repeat, .. } => format!("<add {}?>", repeat.name),
            Screen::Review { .. } => "<review>".into(),
            Screen::ConfirmQuit => "<quit?>".into(),
            Screen::Done(o) => panic!("interview already ended ({o:?}) before {line:?}"),
        };
        let reply = iv.input(line);
        out.push((shown, reply));
    }
    out
}

fn current(iv: &mut Interview) -> String {
    match iv.screen() {
        Screen::Question { question, .. } => question.name.clone(),
        Screen::AddEntry { repeat, .. } => format!("<add {}?>", repeat.name),
        Screen::Review { .. } => "<review>".into(),
        Screen::ConfirmQuit => "<quit?>".into(),
        Screen::Done(o) => format!("<done {o:?}>"),
    }
}

const START: [&str; 4] = ["Amina", "2024-06-14T09:12:00+03:00", "", "-1.29 36.82"];

#[test]
fn refused_consent_skips_the_groups_and_submits() {
    let mut iv = interview();
    let mut lines = START.to_vec();
    lines.extend(["2", "", "y"]);
    let replies = run(&mut iv, &lines);
    let shown: Vec<&str> = replies.iter().map(|(q, _)| q.as_str()).collect();
    assert_eq!(
        shown,
        [
            "enumerator_name",
            "interview_start",
            "interview_mode",
            "location",
            "consent",
            "comments",
            "<review>"
        ]
    );
    assert!(replies.iter().all(|(_, r)| *r == Reply::Ok), "{replies:?}");
    assert_eq!(iv.outcome(), Some(Outcome::Submit));
    let answers = iv.answers_to_save();
    assert_eq!(
        answers.get("interview_mode"),
        Some(&Answer::from("in_person"))
    );
    assert_eq!(answers.get("consent"), Some(&Answer::from("no")));
    assert_eq!(answers.len(), 5, "{answers:?}");
}

#[test]
fn wrong_answers_are_caught_and_asked_again() {
    let mut iv = interview();
    let mut lines = START.to_vec();
    lines.extend(["yes", "J", "Joseph", "male", "", "12", "45"]);
    let replies = run(&mut iv, &lines);
    let problems: Vec<&str> = replies
        .iter()
        .filter(|(_, r)| *r != Reply::Ok)
        .map(|(q, _)| q.as_str())
        .collect();
    assert_eq!(problems, ["head_name", "head_age"]);
    let Some((_, Reply::Problem(msg))) = replies.iter().rev().nth(1) else {
        panic!("no problem for head_age: {replies:?}");
    };
    assert!(msg.contains("15"), "constraint message shown: {msg}");
    assert_eq!(current(&mut iv), "phone");
    assert_eq!(iv.answers().get("head_age"), Some(&Answer::Integer(45)));
}

#[test]
fn required_questions_cannot_be_skipped_but_optional_ones_can() {
    let mut iv = interview();
    let replies = run(&mut iv, &["", ":skip", "Amina"]);
    assert!(matches!(replies[0].1, Reply::Problem(_)));
    assert!(matches!(replies[1].1, Reply::Problem(_)));
    assert_eq!(current(&mut iv), "interview_start");
    let mut iv = interview();
    let mut lines = START.to_vec();
    lines.extend(["yes", "Joseph", "2", ":skip", "45", ""]);
    let replies = run(&mut iv, &lines);
    assert!(replies.iter().all(|(_, r)| *r == Reply::Ok), "{replies:?}");
    assert_eq!(current(&mut iv), "head_marital");
    assert!(!iv.answers().contains_key("head_dob"));
    assert!(!iv.answers().contains_key("phone"));
}

#[test]
fn choices_by_number_name_or_label_and_multiple_with_commas() {
    let mut iv = interview();
    let mut lines = START.to_vec();
    lines.extend([
        "Yes",
        "Joseph",
        "2",
        "",
        "45",
        "",
        "",
        "3",
        "4",
        "1",
        "2",
        "1, swahili",
    ]);
    let replies = run(&mut iv, &lines);
    assert!(replies.iter().all(|(_, r)| *r == Reply::Ok), "{replies:?}");
    let a = iv.answers();
    assert_eq!(a.get("consent"), Some(&Answer::from("yes")));
    assert_eq!(a.get("head_sex"), Some(&Answer::from("male")));
    assert_eq!(a.get("languages"), Some(&Answer::from("english swahili")));
}

#[test]
fn going_back_changes_an_answer_and_prunes_what_it_hides() {
    let mut iv = interview();
    let mut lines = START.to_vec();
    lines.extend(["yes", "Joseph", "<", "<", "no"]);
    let replies = run(&mut iv, &lines);
    assert!(replies.iter().all(|(_, r)| *r == Reply::Ok), "{replies:?}");
    // Back from head_sex to head_name, then to consent, now "no": the groups are skipped.
    assert_eq!(current(&mut iv), "comments");
    assert!(!iv.answers_to_save().contains_key("head_name"));
    assert_eq!(run(&mut iv, &["<"])[0].1, Reply::Ok);
    assert_eq!(current(&mut iv), "consent");
    let mut first = interview();
    assert!(matches!(run(&mut first, &["<"])[0].1, Reply::Problem(_)));
}

#[test]
fn quitting_needs_a_confirmation_and_save_keeps_a_draft() {
    let mut iv = interview();
    let replies = run(&mut iv, &["Amina", ":quit", "n", ":quit", "y"]);
    assert_eq!(replies[2].0, "<quit?>");
    assert!(matches!(replies[2].1, Reply::Problem(_)));
    assert_eq!(iv.outcome(), Some(Outcome::Discard));

    let mut iv = interview();
    let mut lines = START.to_vec();
    lines.extend(["yes", ":save"]);
    run(&mut iv, &lines);
    assert_eq!(iv.outcome(), Some(Outcome::Draft));
    let draft = iv.answers_to_save();

    // Resuming starts after the last answered question, and going back still works.
    let survey = Arc::new(household());
    let ctx = ValidationContext::new(time::macros::date!(2024 - 06 - 15));
    let mut resumed = Interview::resume(survey, ctx, draft);
    assert_eq!(current(&mut resumed), "head_name");
    run(&mut resumed, &["<"]);
    assert_eq!(current(&mut resumed), "consent");
}

#[test]
fn review_refuses_to_submit_with_problems_and_offers_a_draft() {
    let mut iv = interview();
    let mut lines = START.to_vec();
    lines.extend(["no", "", "maybe", "y"]);
    let replies = run(&mut iv, &lines);
    assert_eq!(replies[6].0, "<review>");
    assert!(matches!(replies[6].1, Reply::Problem(_)));
    assert_eq!(iv.outcome(), Some(Outcome::Submit));
    let mut iv = interview();
    let mut lines = START.to_vec();
    lines.extend(["no", "", "d"]);
    run(&mut iv, &lines);
    assert_eq!(iv.outcome(), Some(Outcome::Draft));
}

fn roster_interview(lang: Option<&str>) -> Interview {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/surveys/household-roster.json"
    );
    let survey = Survey::parse_json(&std::fs::read_to_string(path).expect("fixture"))
        .expect("roster parses");
    Interview::new(
        Arc::new(survey),
        ValidationContext::at(time::macros::datetime!(2026-03-02 09:30:00 UTC)),
    )
    .with_language(lang.map(str::to_owned))
}

#[test]
fn a_counted_repeat_asks_each_entry_with_its_own_labels_and_skip_logic() {
    let mut iv = roster_interview(None);
    let lines = [
        "Achieng", "north", "2", "2", // head, region, district (2nd of the north's), members
        "Achieng", "41", // first member: an adult, no school question
        "Otieno", "9", "1", // second: a child, asked about school
        "y",
    ];
    let replies = run(&mut iv, &lines);
    let shown: Vec<&str> = replies.iter().map(|(q, _)| q.as_str()).collect();
    assert_eq!(
        shown,
        [
            "hh_name",
            "region",
            "district",
            "n_members",
            "m_name",
            "m_age",
            "m_name",
            "m_age",
            "m_school",
            "<review>"
        ]
    );
    assert!(replies.iter().all(|(_, r)| *r == Reply::Ok), "{replies:?}");
    assert_eq!(iv.outcome(), Some(Outcome::Submit));
    let a = iv.answers_to_save();
    assert_eq!(
        a.get("district"),
        Some(&Answer::from("lakes")),
        "numbers index the filtered list"
    );
    let members = a
        .get("member")
        .and_then(Answer::as_repeat)
        .expect("entries");
    assert_eq!(members.len(), 2);
    assert_eq!(
        members[1].answers.get("m_school"),
        Some(&Answer::from("yes"))
    );
    assert!(!members[0].answers.contains_key("m_school"));
    assert_eq!(
        a.get("n_adults"),
        Some(&Answer::from("1")),
        "calculated as the answers came"
    );
}

#[test]
fn labels_follow_the_language_and_pipe_answers() {
    let mut iv = roster_interview(Some("Français (fr)"));
    run(&mut iv, &["Achieng", "1", "1", "1", "Otieno"]);
    match iv.screen() {
        Screen::Question { label, place, .. } => {
            assert_eq!(label, "Âge de Otieno");
            assert_eq!(place, ["Membre 1"]);
        }
        other => panic!("expected the age question, got {other:?}"),
    }
    // Going back into the entry and changing the count removes nothing typed.
    run(&mut iv, &["<", "<", "<"]);
    assert_eq!(current(&mut iv), "district");
}

#[test]
fn an_uncounted_repeat_asks_whether_to_add_entries() {
    let json = r#"{ "settings": { "form_id": "visits" }, "survey": [
        { "type": "begin_repeat", "name": "visit", "label": "Visit" },
        { "type": "date", "name": "on", "label": "Date of the visit", "required": "yes" },
        { "type": "end_repeat" },
        { "type": "calculate", "name": "visits", "calculation": "count(${visit})" } ] }"#;
    let survey = Arc::new(Survey::parse_json(json).expect("parses"));
    let mut iv = Interview::new(
        survey,
        ValidationContext::at(time::macros::datetime!(2026-03-02 09:30:00 UTC)),
    );
    let replies = run(&mut iv, &["y", "2026-03-01", "y", "today", "n", "y"]);
    let shown: Vec<&str> = replies.iter().map(|(q, _)| q.as_str()).collect();
    assert_eq!(
        shown,
        [
            "<add visit?>",
            "on",
            "<add visit?>",
            "on",
            "<add visit?>",
            "<review>"
        ]
    );
    let a = iv.answers_to_save();
    let visits = a.get("visit").and_then(Answer::as_repeat).expect("entries");
    assert_eq!(
        visits[1].answers.get("on"),
        Some(&Answer::from("2026-03-02"))
    );
    assert_eq!(a.get("visits"), Some(&Answer::from("2")));
}

#[test]
fn choices_coded_by_numbers_are_typed_by_their_code() {
    let json = r#"{ "settings": { "form_id": "codes" }, "survey": [
        { "type": "select_one yn", "name": "q", "label": "Q" } ],
        "choices": [ { "list_name": "yn", "name": "0", "label": "No" },
                     { "list_name": "yn", "name": "1", "label": "Yes" } ] }"#;
    let survey = Arc::new(Survey::parse_json(json).expect("parses"));
    let mut iv = Interview::new(
        survey,
        ValidationContext::new(time::macros::date!(2026 - 03 - 02)),
    );
    run(&mut iv, &["1"]);
    assert_eq!(
        iv.answers().get("q"),
        Some(&Answer::from("1")),
        "the code, not the second item"
    );
}

/// A web form drives the interview with actions and keeps no interview between pages: each
/// page restores it from the snapshot the last one left (through CBOR, as the page carries
/// it). It goes where the typed interview goes and keeps the same answers.
#[test]
fn actions_through_snapshots_follow_the_typed_interview() {
    let mut typed = interview();
    let mut lines = START.to_vec();
    lines.extend(["yes", "J", "Joseph", "male", "", "12", "45"]);
    run(&mut typed, &lines);

    let survey = Arc::new(household());
    let ctx = ValidationContext::new(time::macros::date!(2024 - 06 - 15));
    let mut snapshot = Interview::new(Arc::clone(&survey), ctx).snapshot();
    let mut shown = Vec::new();
    let mut problems = Vec::new();
    for line in lines {
        let mut bytes = Vec::new();
        ciborium::into_writer(&snapshot, &mut bytes).expect("encode");
        let back: Snapshot = ciborium::from_reader(bytes.as_slice()).expect("decode");
        let mut iv = Interview::restore(Arc::clone(&survey), ctx, back);
        shown.push(current(&mut iv));
        // The page posts the choice's name, never its menu number.
        if let Reply::Problem(m) = iv.act(Action::Answer(line)) {
            problems.push(m);
        }
        snapshot = iv.snapshot();
    }
    let mut iv = Interview::restore(Arc::clone(&survey), ctx, snapshot);
    assert_eq!(current(&mut iv), current(&mut typed));
    assert_eq!(iv.answers(), typed.answers());
    assert_eq!(
        problems.len(),
        2,
        "the short name and the age: {problems:?}"
    );
    assert!(shown.contains(&"head_age".to_string()), "{shown:?}");

    // Back, and a typed command is an answer like any other text on a web page.
    assert_eq!(iv.act(Action::Back), Reply::Ok);
    assert_eq!(current(&mut iv), "head_age");
    assert_eq!(iv.act(Action::Answer("46")), Reply::Ok);
    assert_eq!(iv.answers().get("head_age"), Some(&Answer::Integer(46)));
    assert!(matches!(iv.act(Action::Submit), Reply::Problem(_)));
}
