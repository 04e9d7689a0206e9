//! The interview driven by scripted lines, as `fieldsync collect` drives it from stdin.

use std::sync::Arc;

use fieldsync_protocol::Answer;
use fieldsync_protocol::survey::ValidationContext;

use super::*;

fn interview() -> Interview {
    let survey = Arc::new(crate::input::tests::household());
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
    let survey = Arc::new(crate::input::tests::household());
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
