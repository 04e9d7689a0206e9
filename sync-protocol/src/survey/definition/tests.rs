//! Table tests for definition checking, driven by `fixtures/surveys`.
// A failed unwrap is a failed test, which is what a test should do.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use serde::Deserialize;

use super::*;
use crate::survey::sheet::Row;
use crate::survey::xpath::XPath;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/surveys");

fn load(file: &str) -> Survey {
    let path = format!("{FIXTURES}/{file}");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    Survey::parse_json(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[derive(Deserialize, Debug)]
struct ExpectedError {
    sheet: Sheet,
    row: Option<usize>,
    field: Option<String>,
    /// A fragment of the message.
    message: String,
}

/// Parses `text` and compares every reported problem, in order, with `expected`: same sheet,
/// row and field, and a message containing the expected fragment. An empty `expected` means
/// the definition must load.
fn check(label: &str, text: &str, expected: &[ExpectedError]) {
    let errors = match Survey::parse_json(text) {
        Ok(_) if expected.is_empty() => return,
        Ok(_) => panic!("{label}: loaded, expected {expected:#?}"),
        Err(e) => e,
    };
    let shown = errors.to_string();
    assert_eq!(errors.0.len(), expected.len(), "{label}: {shown}");
    for (got, want) in errors.0.iter().zip(expected) {
        assert_eq!(
            (got.sheet, got.row, got.field.as_deref()),
            (want.sheet, want.row, want.field.as_deref()),
            "{label}: {shown}"
        );
        assert!(
            got.message.contains(&want.message),
            "{label}: {got} lacks {:?}",
            want.message
        );
    }
}

#[test]
fn invalid_fixtures_report_every_problem() {
    let expected_text =
        std::fs::read_to_string(format!("{FIXTURES}/invalid/expected.json")).unwrap();
    let expected: BTreeMap<String, Vec<ExpectedError>> =
        serde_json::from_str(&expected_text).unwrap();
    let mut files: Vec<String> = std::fs::read_dir(format!("{FIXTURES}/invalid"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "expected.json")
        .collect();
    files.sort();
    assert_eq!(
        files,
        expected.keys().cloned().collect::<Vec<_>>(),
        "every invalid fixture has expectations"
    );
    for (file, want) in &expected {
        assert!(!want.is_empty(), "{file} must expect errors");
        let text = std::fs::read_to_string(format!("{FIXTURES}/invalid/{file}")).unwrap();
        check(file, &text, want);
    }
}

/// A definition around `rows` with a `yes_no` list.
fn form(rows: &str) -> String {
    format!(
        r#"{{ "settings": {{ "form_id": "t" }}, "survey": [{rows}],
             "choices": [ {{ "list_name": "yes_no", "name": "yes", "label": "Yes" }},
                          {{ "list_name": "yes_no", "name": "no", "label": "No" }} ] }}"#
    )
}

fn e(sheet: Sheet, row: Option<usize>, field: Option<&str>, message: &str) -> ExpectedError {
    ExpectedError {
        sheet,
        row,
        field: field.map(str::to_owned),
        message: message.to_owned(),
    }
}

fn row(n: usize, field: &str, message: &str) -> ExpectedError {
    e(Sheet::Survey, Some(n), Some(field), message)
}

const A: &str = r#"{ "type": "integer", "name": "a", "label": "A" }"#;

#[test]
fn inline_definitions() {
    let cases: Vec<(&str, String, Vec<ExpectedError>)> = vec![
        ("minimal", form(A), vec![]),
        (
            "every type and spelling",
            form(&format!(
                r#"{A},
                {{ "type": "  begin group ", "name": "g", "label": "G", "relevant": "${{a}} > 1" }},
                {{ "type": "select_one   yes_no", "name": "b.c-d_e", "label": "S", "required": "YES" }},
                {{ "type": "select_multiple yes_no", "name": "_m", "label": "M", "default": "yes  no" }},
                {{ "type": "date", "name": "dt", "label": "D", "default": "2024-01-31", "constraint": ". <= today()" }},
                {{ "type": "datetime", "name": "ts", "label": "T", "required": false }},
                {{ "type": "geopoint", "name": "gp", "label": "G", "required": "" }},
                {{ "type": "decimal", "name": "dec", "label": "Dec", "default": "2.5", "required": "no" }},
                {{ "type": "text", "name": "t", "label": "T", "default": "hello", "required": "False" }},
                {{ "type": "note", "name": "n", "label": "N", "required": "no", "relevant": "${{a}} = 1" }},
                {{ "type": "end group", "name": "g" }}"#
            )),
            vec![],
        ),
        (
            "constraint may refer to a later question and to itself",
            form(&format!(r#"{A}, {{ "type": "integer", "name": "b", "label": "B", "constraint": ". < ${{c}} and ${{b}} > 0" }}, {{ "type": "integer", "name": "c", "label": "C" }}"#)),
            vec![],
        ),
        (
            "media limits a device can apply",
            form(&format!(
                r#"{A},
                {{ "type": "image", "name": "p", "label": "P", "parameters": "max-pixels=1024 max-size=5MB" }},
                {{ "type": "video", "name": "v", "label": "V", "parameters": "max-size=2GB" }},
                {{ "type": "audio", "name": "au", "label": "Au", "parameters": "max-size=lots max-pixels=10" }}"#
            )),
            vec![
                row(3, "parameters", "more than fieldsync takes"),
                row(4, "parameters", "is not a size"),
                row(4, "parameters", "on an image question"),
            ],
        ),
        (
            "dot in relevant",
            form(&format!(r#"{A}, {{ "type": "text", "name": "b", "label": "B", "relevant": ". > 1" }}"#)),
            vec![],
        ),
        (
            "parse error carries its column",
            form(&format!(r#"{A}, {{ "type": "text", "name": "b", "label": "B", "relevant": "${{a}} > 1 or [" }}"#)),
            vec![row(2, "relevant", "column 13")],
        ),
        (
            "an end row's other cells are ignored, as XLSForm does",
            form(&format!(r#"{{ "type": "begin_group", "name": "g" }}, {A}, {{ "type": "end_group", "name": "not_g", "constraint": ". > 1" }}"#)),
            vec![],
        ),
        (
            "group name clashes with a question",
            form(&format!(r#"{A}, {{ "type": "begin_group", "name": "a", "label": "A" }}, {{ "type": "end_group" }}"#)),
            vec![row(2, "name", "the name `a` is already used on row 1 in the same group")],
        ),
        (
            "relevant may refer to a group (its text is its answers')",
            form(&format!(r#"{{ "type": "begin_group", "name": "g" }}, {A}, {{ "type": "end_group" }}, {{ "type": "text", "name": "b", "label": "B", "relevant": "${{g}} = ''" }}"#)),
            vec![],
        ),
        (
            "constraint message without constraint is harmless",
            form(r#"{ "type": "text", "name": "b", "label": "B", "constraint_message": "Too short" }"#),
            vec![],
        ),
        (
            "select on unknown list and default checked against the list",
            form(r#"{ "type": "select_one colours", "name": "c", "label": "C" }, { "type": "select_one yes_no", "name": "y", "label": "Y", "default": "oui" }"#),
            vec![row(1, "type", "unknown choice list `colours`")],
        ),
        (
            "the same question name in two groups is refused: answers are stored by name",
            form(&format!(r#"{{ "type": "begin_group", "name": "g" }}, {A}, {{ "type": "end_group" }}, {{ "type": "begin_group", "name": "h" }}, {A}, {{ "type": "end_group" }}, {{ "type": "text", "name": "b", "label": "B", "relevant": "${{a}} = 1" }}"#)),
            vec![row(5, "name", "`a` is also the name of the question on row 2"), row(7, "relevant", "`${a}` is ambiguous: rows 2, 5")],
        ),
        (
            "subject_field names a group",
            r#"{ "settings": { "form_id": "t", "subject_field": "g" }, "survey": [ { "type": "begin_group", "name": "g" }, { "type": "text", "name": "a", "label": "A" }, { "type": "end_group" } ] }"#.to_owned(),
            vec![e(Sheet::Settings, None, Some("subject_field"), "subject_field `g` is not a question of this survey")],
        ),
        (
            "survey must be an array",
            r#"{ "settings": { "form_id": "t" }, "survey": {} }"#.to_owned(),
            vec![e(Sheet::Survey, None, None, "`survey` must be an array of row objects")],
        ),
        (
            "missing sheets",
            r#"{ }"#.to_owned(),
            vec![e(Sheet::Settings, None, None, "missing `settings` object"), e(Sheet::Survey, None, None, "missing `survey` array")],
        ),
        (
            "not an object",
            r#"[1, 2]"#.to_owned(),
            vec![e(Sheet::Document, None, None, "expected a JSON object with `settings`, `survey` and `choices`")],
        ),
        (
            "wrong value type is reported on its row",
            form(r#"{ "type": "text", "name": "a", "label": [5] }"#),
            vec![e(Sheet::Survey, Some(1), Some("label"), "the cell `label` must be text, a number or true/false")],
        ),
        ("empty input", String::new(), vec![e(Sheet::Document, None, None, "not valid JSON: EOF while parsing")]),
    ];
    for (label, text, expected) in cases {
        check(label, &text, &expected);
    }
}

#[test]
fn household_v1_shape() {
    let s = load("household-v1.json");
    assert_eq!(s.form_id(), "household_survey");
    assert_eq!(s.title(), "Household Living Conditions Survey");
    assert_eq!(s.version(), Some("2024.1"));
    assert_eq!(s.subject_field(), Some("head_name"));
    assert_eq!(s.questions().len(), 31);
    assert_eq!(s.answerable().count(), 28);
    assert!(s.answerable().all(|q| q.qtype != QuestionType::Note));
    assert!(s.warnings().is_empty(), "{:?}", s.warnings());
    let names: Vec<&str> = s
        .questions()
        .iter()
        .take(4)
        .map(|q| q.name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "intro",
            "enumerator_name",
            "interview_start",
            "interview_mode"
        ]
    );

    let rooms = s.question("rooms").unwrap();
    assert_eq!(rooms.qtype, QuestionType::Integer);
    assert!(matches!(rooms.required, Requirement::Always));
    assert_eq!(rooms.group, ["household", "dwelling"]);
    assert_eq!(rooms.row, 27);
    assert_eq!(
        rooms.constraint.as_ref().map(XPath::source),
        Some(". >= 1 and . <= 30")
    );
    assert_eq!(
        rooms.constraint_message.get(None),
        Some("Enter between 1 and 30 rooms.")
    );

    let mode = s.question("interview_mode").unwrap();
    assert_eq!(mode.qtype.list(), Some("mode"));
    assert!(matches!(mode.qtype, QuestionType::SelectOne(_)));
    assert_eq!(mode.static_default(), Some("in_person"));
    assert!(mode.group.is_empty());
    let location = s.question("location").unwrap();
    assert_eq!(
        location.relevant.as_ref().map(XPath::source),
        Some("${interview_mode} = 'in_person'")
    );
    assert!(!location.hint.is_empty());
    let assets = s.question("assets").unwrap();
    assert!(matches!(assets.qtype, QuestionType::SelectMultiple(_)));
    assert_eq!(assets.qtype.list(), Some("assets"));
    assert!(!s.question("comments").unwrap().required.is_possible());
    assert!(
        s.question("household").is_none(),
        "groups are not questions"
    );
    assert_eq!(s.group("dwelling").unwrap().parents, ["household"]);

    let water = s.choices("water").unwrap();
    assert_eq!(water.len(), 5);
    assert_eq!(water[0].name, "piped_dwelling");
    assert_eq!(water[0].display(), "Piped into dwelling");
    assert!(s.choices("nope").is_none());
}

#[test]
fn fixtures_load_and_round_trip() {
    for file in [
        "household-v1.json",
        "household-v2.json",
        "health-facility.json",
    ] {
        let s = load(file);
        let json = serde_json::to_string(s.definition()).unwrap();
        let again = Survey::parse_json(&json).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(again.definition(), s.definition(), "{file}");
        let rebuilt = Survey::from_definition(s.definition().clone()).unwrap();
        assert_eq!(rebuilt.questions().len(), s.questions().len());
    }
    let hf = load("health-facility.json");
    assert_eq!(hf.subject_field(), Some("incharge_name"));
    assert_eq!(hf.answerable().count(), 22);
    assert_eq!(hf.question("maternity_beds").unwrap().group, ["maternity"]);
    assert_eq!(hf.question("doctors").unwrap().group, ["staffing"]);
}

#[test]
fn household_v2_changes_match_the_readme() {
    let v1 = load("household-v1.json");
    let v2 = load("household-v2.json");
    assert_eq!(v1.form_id(), v2.form_id());
    assert_eq!(v2.version(), Some("2024.2"));
    let names = |s: &Survey| {
        s.answerable()
            .map(|q| q.name.clone())
            .collect::<std::collections::BTreeSet<_>>()
    };
    let (n1, n2) = (names(&v1), names(&v2));
    assert_eq!(n1.difference(&n2).collect::<Vec<_>>(), ["head_marital"]);
    assert_eq!(
        n2.difference(&n1).collect::<Vec<_>>(),
        ["internet_access", "members_over65"]
    );
    let age = |s: &Survey| {
        s.question("head_age")
            .and_then(|q| q.constraint.as_ref())
            .map(|c| c.source().to_owned())
    };
    assert_eq!(age(&v1).as_deref(), Some(". >= 15 and . <= 120"));
    assert_eq!(age(&v2).as_deref(), Some(". >= 18 and . <= 120"));
    assert_eq!(
        v2.question("internet_access").unwrap().group,
        ["household", "dwelling"]
    );
    assert_eq!(v2.question("members_over65").unwrap().group, ["household"]);
}

#[test]
fn a_definition_built_in_code_is_checked_too() {
    let row = |n: usize, cells: &[(&str, &str)]| {
        Row::new(
            n,
            cells
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    };
    let def = SurveyDefinition {
        settings: row(1, &[("form_id", "coded")]),
        survey: vec![
            row(
                1,
                &[
                    ("type", "integer"),
                    ("name", "n"),
                    ("label", "N"),
                    ("required", "yes"),
                ],
            ),
            row(
                2,
                &[
                    ("type", "text"),
                    ("name", "m"),
                    ("label", "M"),
                    ("relevant", "${n} > "),
                ],
            ),
        ],
        ..SurveyDefinition::default()
    };
    let err = Survey::from_definition(def.clone()).unwrap_err();
    assert_eq!(err.0.len(), 1, "{err}");
    assert_eq!(
        (err.0[0].row, err.0[0].field.as_deref()),
        (Some(2), Some("relevant"))
    );
    assert!(err.0[0].message.contains("ends too early"), "{err}");
    let mut fixed = def;
    fixed.survey[1]
        .cells
        .insert("relevant".into(), "${n} > 2".into());
    let s = Survey::from_definition(fixed).unwrap();
    assert_eq!(
        s.title(),
        "coded",
        "the form id stands in for a missing title"
    );
    assert!(matches!(
        s.question("n").unwrap().required,
        Requirement::Always
    ));
}

#[test]
fn errors_display_with_their_place() {
    let cases = [
        (
            DefinitionError {
                sheet: Sheet::Survey,
                row: Some(7),
                field: Some("constraint".into()),
                message: "unknown function `foo()`".into(),
            },
            "survey row 7 (constraint): unknown function `foo()`",
        ),
        (
            DefinitionError {
                sheet: Sheet::Settings,
                row: None,
                field: Some("form_id".into()),
                message: "missing form_id".into(),
            },
            "settings (form_id): missing form_id",
        ),
        (
            DefinitionError {
                sheet: Sheet::Choices,
                row: Some(2),
                field: None,
                message: "x".into(),
            },
            "choices row 2: x",
        ),
        (
            DefinitionError {
                sheet: Sheet::Document,
                row: None,
                field: None,
                message: "not valid JSON".into(),
            },
            "document: not valid JSON",
        ),
    ];
    for (err, shown) in cases {
        assert_eq!(err.to_string(), shown);
    }
}
