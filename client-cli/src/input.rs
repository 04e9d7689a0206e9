//! Turning what users hand the CLI (`NAME=VALUE` arguments, JSON answer files, JSON Lines,
//! CSV rows) into typed [`Answers`] for one survey version, with every problem reported in
//! words a user can act on. Pure functions, so the batch paths and the tests share them.

use fieldsync_protocol::survey::{QuestionType, Survey, ValidationContext};
use fieldsync_protocol::{Answer, Answers, RepeatInstance};

/// Columns an export writes besides the questions; an import ignores them, so an export can
/// be imported again.
pub const EXPORT_META_COLUMNS: [&str; 8] = [
    "response_id",
    "survey_version",
    "status",
    "author_device",
    "enumerator",
    "device_name",
    "created_at",
    "updated_at",
];

/// Columns (CSV) or keys (JSON Lines) that name a row's own id: ours, ODK's and Kobo's. A row
/// with an id is imported under it, so importing the same file again stores nothing twice.
pub const ID_COLUMNS: [&str; 5] = [
    "response_id",
    "instanceID",
    "meta/instanceID",
    "KEY",
    "_uuid",
];

/// Take a row's own id out of a JSON Lines object (the first of [`ID_COLUMNS`] it holds as a
/// non-empty string), leaving the answers.
pub fn take_row_id(value: &mut serde_json::Value) -> Option<String> {
    let map = value.as_object_mut()?;
    let mut found = None;
    for key in ID_COLUMNS {
        if let Some(v) = map.remove(key)
            && found.is_none()
        {
            found = v
                .as_str()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned);
        }
    }
    found
}

/// Split a `NAME=VALUE` argument (the value may contain `=` and may be empty).
pub fn parse_assignment(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => {
            Ok((name.trim().to_owned(), value.to_owned()))
        }
        _ => Err(format!(
            "`{s}` is not NAME=VALUE; write the question name, `=`, then the answer"
        )),
    }
}

/// The edits for `response edit`: every `--set` value parsed and checked for its question
/// (against the answers it will join), every `--unset` a removal. All problems at once.
pub fn edits_from_args(
    survey: &Survey,
    current: &Answers,
    sets: &[(String, String)],
    unsets: &[String],
    ctx: &ValidationContext,
) -> Result<Vec<(String, Option<Answer>)>, Vec<String>> {
    let mut errors = Vec::new();
    let mut edits = Vec::new();
    let mut after = current.clone();
    let mut parsed = Vec::new();
    for (name, value) in sets {
        match survey.parse_typed(name, value, crate::store::now_local()) {
            Ok(answer) => {
                after.insert(name.clone(), answer.clone());
                parsed.push((name.clone(), answer));
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    for name in unsets {
        if survey.question(name).is_none() {
            errors.push(format!(
                "{name}: no question `{name}` in survey `{}`",
                survey.form_id()
            ));
        }
        after.remove(name);
    }
    for (name, answer) in parsed {
        if let Err(e) = survey.check_answer(&name, &answer, &after, ctx) {
            errors.push(e.to_string());
        }
        edits.push((name, Some(answer)));
    }
    edits.extend(unsets.iter().map(|n| (n.clone(), None)));
    if errors.is_empty() {
        Ok(edits)
    } else {
        Err(errors)
    }
}

/// The answers of one JSON object: numbers and strings go through the question's own input
/// parsing, a `select_multiple` may also be an array of choice names, a repeat is an array of
/// objects (its entries, each with its own answers and optionally its `_id`), `null` is no
/// answer. Type, choice and constraint checks happen later, on the whole response.
pub fn answers_from_json(
    survey: &Survey,
    value: &serde_json::Value,
) -> Result<Answers, Vec<String>> {
    let mut errors = Vec::new();
    let answers = answers_in(survey, value, "", &mut errors);
    if errors.is_empty() {
        Ok(answers)
    } else {
        Err(errors)
    }
}

fn answers_in(
    survey: &Survey,
    value: &serde_json::Value,
    prefix: &str,
    errors: &mut Vec<String>,
) -> Answers {
    let mut answers = Answers::new();
    let serde_json::Value::Object(map) = value else {
        errors.push(format!(
            "{prefix}expected a JSON object of question names to answers, found {}",
            json_kind(value)
        ));
        return answers;
    };
    for (name, v) in map {
        if survey.group(name).is_some_and(|g| g.repeat) {
            let serde_json::Value::Array(entries) = v else {
                if !v.is_null() {
                    errors.push(format!(
                        "{prefix}{name}: a repeat takes a list of entries, each an object of answers"
                    ));
                }
                continue;
            };
            let instances = entries
                .iter()
                .enumerate()
                .map(|(i, entry)| {
                    let inner = format!("{prefix}{name}[{}]/", i + 1);
                    let id = entry
                        .get("_id")
                        .and_then(|v| v.as_str())
                        .unwrap_or_default()
                        .to_owned();
                    let mut entry = entry.clone();
                    if let Some(obj) = entry.as_object_mut() {
                        obj.remove("_id");
                    }
                    RepeatInstance {
                        id,
                        answers: answers_in(survey, &entry, &inner, errors),
                    }
                })
                .collect();
            answers.insert(name.clone(), Answer::Repeat(instances));
            continue;
        }
        let text = match v {
            serde_json::Value::Null => continue,
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Array(items) => {
                let is_multi = matches!(
                    survey.question(name).map(|q| &q.qtype),
                    Some(QuestionType::SelectMultiple(_) | QuestionType::Rank(_))
                );
                let names: Option<Vec<&str>> = items.iter().map(|i| i.as_str()).collect();
                match names {
                    Some(names) if is_multi => names.join(" "),
                    _ => {
                        errors.push(format!(
                            "{prefix}{name}: a list is only accepted for a select_multiple or rank question (choice names) or a repeat (entries)"
                        ));
                        continue;
                    }
                }
            }
            other => {
                errors.push(format!(
                    "{prefix}{name}: {} is not an answer; give a number or a string",
                    json_kind(other)
                ));
                continue;
            }
        };
        match survey.parse_input(name, &text) {
            Ok(answer) => {
                answers.insert(name.clone(), answer);
            }
            Err(e) => errors.push(format!("{prefix}{e}")),
        }
    }
    answers
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "true/false",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "an object",
    }
}

/// One JSON document of an answers file and the line it starts on.
pub type Document = (usize, Result<serde_json::Value, String>);

/// The documents of an answers file: one JSON object (possibly spread over many lines), or
/// JSON Lines (one object per non-blank line; a bad line does not hide the others).
pub fn split_documents(text: &str) -> Vec<Document> {
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(text) {
        return vec![(first_line(text), Ok(value))];
    }
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l))
        .filter(|(_, l)| !l.trim().is_empty())
        .collect();
    // A multi-line document whose first line is not JSON on its own is one broken object, not
    // JSON Lines: report serde's own position once.
    let first_alone = lines
        .first()
        .is_some_and(|(_, l)| serde_json::from_str::<serde_json::Value>(l).is_ok());
    if !first_alone && let Err(e) = serde_json::from_str::<serde_json::Value>(text) {
        return vec![(e.line().max(1), Err(format!("not valid JSON: {e}")))];
    }
    lines.into_iter().map(|(n, l)| (n, parse_line(l))).collect()
}

/// One line of JSON Lines.
pub fn parse_line(line: &str) -> Result<serde_json::Value, String> {
    serde_json::from_str(line).map_err(|e| format!("not valid JSON: {e}"))
}

fn first_line(text: &str) -> usize {
    text.lines()
        .position(|l| !l.trim().is_empty())
        .map_or(1, |i| i + 1)
}

/// How the columns of a CSV file map to questions.
#[derive(Clone, Debug)]
pub struct CsvColumns {
    /// Per column: the question it answers, or `None` for an ignored export column.
    columns: Vec<Option<String>>,
    /// The column holding each row's own id ([`ID_COLUMNS`]), if the file has one.
    id_column: Option<usize>,
}

impl CsvColumns {
    /// Check a header row: every column must name a question that takes an answer (or be one
    /// of the export's own columns), and no question may appear twice.
    pub fn from_header<'h>(
        survey: &Survey,
        header: impl IntoIterator<Item = &'h str>,
    ) -> Result<CsvColumns, Vec<String>> {
        let mut columns = Vec::new();
        let mut errors = Vec::new();
        let mut id_column = None;
        for (i, raw) in header.into_iter().enumerate() {
            let name = raw.trim().trim_start_matches('\u{feff}');
            let column = i + 1;
            if survey.question(name).is_none() && ID_COLUMNS.contains(&name) {
                id_column.get_or_insert(i);
                columns.push(None);
                continue;
            }
            match survey.question(name) {
                Some(q) if q.qtype == QuestionType::Note => {
                    errors.push(format!(
                        "column {column} `{name}` is a note, which takes no answer; remove the column"
                    ));
                    columns.push(None);
                }
                Some(_) => {
                    if columns.iter().flatten().any(|c: &String| c == name) {
                        errors.push(format!(
                            "column {column} `{name}` appears twice; keep one of them"
                        ));
                    }
                    columns.push(Some(name.to_owned()));
                }
                None if EXPORT_META_COLUMNS.contains(&name) => columns.push(None),
                None => {
                    errors.push(format!(
                        "column {column} `{name}` is not a question of survey `{}`; `fieldsync survey show {}` lists them",
                        survey.form_id(),
                        survey.form_id()
                    ));
                    columns.push(None);
                }
            }
        }
        if errors.is_empty() {
            Ok(CsvColumns { columns, id_column })
        } else {
            Err(errors)
        }
    }

    /// The row's own id (its cell in the id column), if the file has one and the cell is not
    /// empty.
    pub fn row_id<'r>(&self, row: impl IntoIterator<Item = &'r str>) -> Option<String> {
        let cell = row.into_iter().nth(self.id_column?)?.trim();
        (!cell.is_empty()).then(|| cell.to_owned())
    }

    /// The answers of one row; an empty cell is no answer. Too many or too few cells is an
    /// error.
    pub fn answers<'r>(
        &self,
        survey: &Survey,
        row: impl IntoIterator<Item = &'r str>,
    ) -> Result<Answers, Vec<String>> {
        let mut answers = Answers::new();
        let mut errors = Vec::new();
        let mut cells = row.into_iter();
        let mut count = 0;
        for column in &self.columns {
            let Some(cell) = cells.next() else { break };
            count += 1;
            let Some(name) = column else { continue };
            if cell.trim().is_empty() {
                continue;
            }
            match survey.parse_input(name, cell) {
                Ok(answer) => {
                    answers.insert(name.clone(), answer);
                }
                Err(e) => errors.push(e.to_string()),
            }
        }
        count += cells.count();
        if count != self.columns.len() {
            return Err(vec![format!(
                "the row has {count} cells but the header has {} columns",
                self.columns.len()
            )]);
        }
        if errors.is_empty() {
            Ok(answers)
        } else {
            Err(errors)
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
