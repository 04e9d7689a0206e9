//! Test data: answer sets from `fixtures/answers/`, JSON Lines and CSV in and out, value
//! comparison, and searching files for a string.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::bins::fixture;

/// One response's answers, by question name.
pub type Answers = Map<String, Value>;

/// Every case of `fixtures/answers/FILE`, by case name.
pub fn cases(file: &str) -> BTreeMap<String, Answers> {
    let path = fixture(&format!("answers/{file}"));
    let text = std::fs::read_to_string(&path).expect("read answers fixture");
    let doc: Value = serde_json::from_str(&text).expect("answers fixture is JSON");
    doc["cases"]
        .as_object()
        .expect("answers fixture has cases")
        .iter()
        .map(|(name, case)| {
            let answers = case["answers"]
                .as_object()
                .expect("case has answers")
                .clone();
            (name.clone(), answers)
        })
        .collect()
}

/// The answers of one case of `fixtures/answers/FILE`.
pub fn case(file: &str, name: &str) -> Answers {
    cases(file)
        .remove(name)
        .unwrap_or_else(|| panic!("no case {name} in answers/{file}"))
}

/// JSON Lines, one object per line.
pub fn jsonl(rows: &[Answers]) -> String {
    let mut out = String::new();
    for row in rows {
        out.push_str(&serde_json::to_string(row).expect("serialise answers"));
        out.push('\n');
    }
    out
}

/// Parse JSON Lines (blank lines skipped).
pub fn parse_jsonl(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("line {} is not JSON ({e}): {l}", i + 1))
        })
        .collect()
}

/// A parsed CSV file: its header and its records as maps from column to cell.
#[derive(Debug)]
pub struct Csv {
    pub header: Vec<String>,
    pub rows: Vec<HashMap<String, String>>,
}

/// Parse CSV text with a header line.
pub fn parse_csv(text: &str) -> Csv {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .expect("CSV has a header")
        .iter()
        .map(str::to_owned)
        .collect();
    let rows = reader
        .records()
        .map(|r| {
            let r = r.expect("well-formed CSV record");
            header
                .iter()
                .cloned()
                .zip(r.iter().map(str::to_owned))
                .collect()
        })
        .collect();
    Csv { header, rows }
}

/// Whether two answer values are the same answer: numbers by value (so `4500`, `4500.0` and
/// `"4500"` agree, since CSV has no types), text exactly.
pub fn same_value(a: &Value, b: &Value) -> bool {
    fn number(v: &Value) -> Option<f64> {
        match v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }
    match (a, b) {
        (Value::String(x), Value::String(y)) => x == y,
        _ => match (number(a), number(b)) {
            (Some(x), Some(y)) => (x - y).abs() < 1e-9,
            _ => a == b,
        },
    }
}

/// Assert that `actual` holds exactly the answers `expected`, comparing values with
/// [`same_value`]; `what` names the response in the failure message.
pub fn assert_answers(expected: &Answers, actual: &Answers, what: &str) {
    let mut problems = Vec::new();
    for (name, want) in expected {
        match actual.get(name) {
            None => problems.push(format!("{name}: missing, expected {want}")),
            Some(got) if !same_value(want, got) => {
                problems.push(format!("{name}: expected {want}, got {got}"))
            }
            Some(_) => {}
        }
    }
    for (name, got) in actual {
        if !expected.contains_key(name) && !got.is_null() {
            problems.push(format!("{name}: unexpected answer {got}"));
        }
    }
    assert!(
        problems.is_empty(),
        "answers of {what} differ:\n  {}",
        problems.join("\n  ")
    );
}

/// Assert that a CSV record holds the answers `expected` (as text) and nothing else among
/// `questions`.
pub fn assert_csv_answers(
    expected: &Answers,
    row: &HashMap<String, String>,
    questions: &[String],
    what: &str,
) {
    let mut problems = Vec::new();
    for q in questions {
        let got = row.get(q).map(String::as_str).unwrap_or("");
        match expected.get(q) {
            Some(want) if !same_value(want, &Value::String(got.to_owned())) => {
                problems.push(format!("{q}: expected {want}, got {got:?}"));
            }
            Some(_) => {}
            None if !got.is_empty() => problems.push(format!("{q}: unexpected {got:?}")),
            None => {}
        }
    }
    assert!(
        problems.is_empty(),
        "exported CSV row of {what} differs:\n  {}",
        problems.join("\n  ")
    );
}

/// Every file under `dir` (recursively) whose bytes contain `needle`.
pub fn files_containing(dir: &Path, needle: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path)
                && contains(&bytes, needle.as_bytes())
            {
                found.push(path);
            }
        }
    }
    found
}

/// Every file under `dir`, recursively (to show what a search looked at).
pub fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// Whether `haystack` contains `needle`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Valid `household-v1` answers for `n` respondents, numbered from `first`: the fixture's
/// valid cases in turn, each with its own enumerator name (the key tests match rows by),
/// head of household, numbers and comment.
pub fn household_v1(first: usize, n: usize) -> Vec<Answers> {
    let all = cases("household-v1.json");
    let bases = [
        "valid_complete_in_person",
        "valid_phone_interview_skips_dwelling_and_location",
        "valid_other_language_owned_piped",
        "valid_refused_consent_only_screening",
    ]
    .map(|name| all[name].clone());
    (first..first + n)
        .map(|i| {
            let mut a = bases[i % bases.len()].clone();
            a.insert(
                "enumerator_name".into(),
                format!("Enumerator {i:05}").into(),
            );
            a.insert(
                "comments".into(),
                format!("Row {i}, said \"fine\"; visit ok").into(),
            );
            if a.get("consent").and_then(Value::as_str) == Some("yes") {
                a.insert(
                    "head_name".into(),
                    format!("Head Of Household {i:05}").into(),
                );
                a.insert("head_age".into(), (18 + (i % 80) as i64).into());
                let hh = 2 + (i % 9) as i64;
                a.insert("hh_size".into(), hh.into());
                a.insert("children_under5".into(), (i as i64 % hh).into());
                a.insert("children_school".into(), ((i as i64 + 1) % hh).into());
                a.insert(
                    "monthly_income".into(),
                    (1000 + (i % 500) as i64 * 7).into(),
                );
                if a.contains_key("rooms") {
                    a.insert("rooms".into(), (1 + (i % 30) as i64).into());
                }
                if a.contains_key("monthly_rent") {
                    a.insert(
                        "monthly_rent".into(),
                        serde_json::json!(100.0 + (i % 97) as f64 + 0.5),
                    );
                }
            }
            a
        })
        .collect()
}

/// The answer of `a` to `question` as a CSV cell (empty when unanswered).
pub fn cell(a: &Answers, question: &str) -> String {
    match a.get(question) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// CSV text with a header of `questions` and one record per answer set.
pub fn to_csv(questions: &[&str], rows: &[Answers]) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(questions).expect("write CSV header");
    for row in rows {
        w.write_record(questions.iter().map(|q| cell(row, q)))
            .expect("write CSV record");
    }
    String::from_utf8(w.into_inner().expect("flush CSV")).expect("CSV is UTF-8")
}

/// The answerable question names of `household-v1`, in form order.
pub const HOUSEHOLD_V1_QUESTIONS: [&str; 28] = [
    "enumerator_name",
    "interview_start",
    "interview_mode",
    "location",
    "consent",
    "head_name",
    "head_sex",
    "head_dob",
    "head_age",
    "phone",
    "head_marital",
    "head_education",
    "hh_size",
    "children_under5",
    "children_school",
    "languages",
    "language_other",
    "dwelling_type",
    "dwelling_tenure",
    "monthly_rent",
    "rooms",
    "water_source",
    "water_minutes",
    "assets",
    "monthly_income",
    "received_aid",
    "aid_source",
    "comments",
];

/// Answers of exported JSON Lines rows by `key_question` (which must be unique), checking
/// that every row has an `answers` object and a `response_id`.
pub fn by_answer(rows: &[Value], key_question: &str) -> HashMap<String, (String, Answers)> {
    let mut map = HashMap::new();
    for row in rows {
        let id = row["response_id"]
            .as_str()
            .unwrap_or_else(|| panic!("exported row without response_id: {row}"))
            .to_owned();
        let answers = row["answers"]
            .as_object()
            .unwrap_or_else(|| panic!("exported row without answers: {row}"))
            .clone();
        let key = cell(&answers, key_question);
        let previous = map.insert(key.clone(), (id, answers));
        assert!(
            previous.is_none(),
            "two exported rows have {key_question} = {key:?}"
        );
    }
    map
}

/// The answers of a `response show --json` object as a map by question name. The CLI lists
/// them in form order as `[{"name", "label", "value"}]`; a plain map is accepted too.
pub fn answers_of(shown: &Value) -> Answers {
    match &shown["answers"] {
        Value::Object(map) => map.clone(),
        Value::Array(items) => items
            .iter()
            .map(|item| {
                let name = item["name"]
                    .as_str()
                    .unwrap_or_else(|| panic!("answer without a name: {item}"));
                (name.to_owned(), item["value"].clone())
            })
            .collect(),
        other => panic!("no answers in {shown}: {other}"),
    }
}

/// A metadata field (`survey_version`, `status`, ...) of a `response show --json` object,
/// whether the CLI nests it under `meta` or puts it at the top level.
pub fn meta(shown: &Value, key: &str) -> Value {
    match shown.get("meta").and_then(|m| m.get(key)) {
        Some(v) => v.clone(),
        None => shown.get(key).cloned().unwrap_or(Value::Null),
    }
}
