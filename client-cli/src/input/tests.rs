//! Table tests of the input parsers against the household fixture survey.

use fieldsync_protocol::survey::{Survey, ValidationContext};
use fieldsync_protocol::{Answer, Answers};
use serde_json::json;

use super::*;

pub(crate) fn household() -> Survey {
    let text = include_str!("../../../fixtures/surveys/household-v1.json");
    match Survey::parse_json(text) {
        Ok(s) => s,
        Err(e) => panic!("fixture survey: {e}"),
    }
}

fn ctx() -> ValidationContext {
    ValidationContext::new(time::macros::date!(2024 - 06 - 15))
}

#[test]
fn assignments() {
    let check = |input: &str, expected: Result<(&str, &str), ()>| {
        let got = parse_assignment(input);
        match expected {
            Ok((n, v)) => assert_eq!(got, Ok((n.to_owned(), v.to_owned())), "{input}"),
            Err(()) => assert!(got.is_err(), "{input} should be refused"),
        }
    };
    check("hh_size=4", Ok(("hh_size", "4")));
    check("comments=a=b", Ok(("comments", "a=b")));
    check("comments=", Ok(("comments", "")));
    check(" name =x y", Ok(("name", "x y")));
    check("=4", Err(()));
    check("hh_size", Err(()));
}

#[test]
fn edits_are_parsed_and_checked_together() {
    let s = household();
    let mut current = Answers::new();
    current.insert("consent".into(), "yes".into());
    current.insert("hh_size".into(), Answer::Integer(6));
    let sets = vec![("children_under5".to_owned(), "2".to_owned())];
    let edits = edits_from_args(&s, &current, &sets, &["comments".to_owned()], &ctx());
    assert_eq!(
        edits,
        Ok(vec![
            ("children_under5".to_owned(), Some(Answer::Integer(2))),
            ("comments".to_owned(), None)
        ])
    );
    // A cross-question constraint sees the other new values; errors are all reported.
    let sets = vec![
        ("hh_size".to_owned(), "2".to_owned()),
        ("children_under5".to_owned(), "3".to_owned()),
        ("rooms".to_owned(), "many".to_owned()),
    ];
    let errors = edits_from_args(&s, &current, &sets, &["nope".to_owned()], &ctx())
        .expect_err("invalid edits");
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!(errors.iter().any(|e| e.starts_with("rooms:")));
    assert!(errors.iter().any(|e| e.starts_with("nope:")));
    assert!(errors.iter().any(|e| e.starts_with("children_under5:")));
}

#[test]
fn json_answers() {
    let s = household();
    let answers = answers_from_json(
        &s,
        &json!({"hh_size": 4, "monthly_rent": "4500.5", "languages": ["english", "french"],
                "comments": null, "head_name": "  Ann  "}),
    )
    .expect("valid");
    assert_eq!(answers.get("hh_size"), Some(&Answer::Integer(4)));
    assert_eq!(answers.get("monthly_rent"), Some(&Answer::Decimal(4500.5)));
    assert_eq!(
        answers.get("languages"),
        Some(&Answer::from("english french"))
    );
    assert_eq!(answers.get("head_name"), Some(&Answer::from("Ann")));
    assert!(!answers.contains_key("comments"));

    let errors = answers_from_json(
        &s,
        &json!({"hh_size": "four", "consent": ["yes"], "rooms": true, "ghost": 1}),
    )
    .expect_err("invalid");
    assert_eq!(errors.len(), 4, "{errors:?}");
    assert!(answers_from_json(&s, &json!([1, 2])).is_err());
}

#[test]
fn answer_files_single_object_or_json_lines() {
    let single = "\n{\n  \"a\": 1,\n  \"b\": 2\n}\n";
    let docs = split_documents(single);
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0].0, 2);
    assert!(docs[0].1.is_ok());

    let lines = "{\"a\":1}\n\n{\"a\":2,}\n{\"a\":3}\n";
    let docs = split_documents(lines);
    let shape: Vec<(usize, bool)> = docs.iter().map(|(l, r)| (*l, r.is_ok())).collect();
    assert_eq!(shape, vec![(1, true), (3, false), (4, true)]);

    let broken = "{\n  \"a\": 1,\n  \"b\": \n}\n";
    let docs = split_documents(broken);
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0].0, 4);
    assert!(docs[0].1.is_err());
}

#[test]
fn csv_header_and_rows() {
    let s = household();
    let cols = CsvColumns::from_header(&s, ["response_id", "hh_size", "comments", "languages"])
        .expect("valid header");
    let answers = cols
        .answers(&s, ["x", "3", "", "english  swahili"])
        .expect("valid row");
    let mut expected = Answers::new();
    expected.insert("hh_size".into(), Answer::Integer(3));
    expected.insert("languages".into(), "english swahili".into());
    assert_eq!(answers, expected);

    let errors = cols
        .answers(&s, ["x", "3.5", "", ""])
        .expect_err("not an integer");
    assert_eq!(errors.len(), 1);
    assert!(errors[0].starts_with("hh_size:"), "{errors:?}");
    assert!(cols.answers(&s, ["x", "3"]).is_err());

    let errors = CsvColumns::from_header(&s, ["hh_size", "intro", "bogus", "hh_size"])
        .expect_err("bad header");
    assert_eq!(errors.len(), 3, "{errors:?}");
}
