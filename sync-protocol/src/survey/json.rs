//! Reading the native JSON definition: XLSForm's sheets as arrays of row objects keyed by
//! column. Column names go through the same normalisation as a workbook's headers; a cell may
//! be text, a number or a boolean (`"required": true`), and anything else is reported with its
//! sheet, row and column.

use std::collections::BTreeMap;

use serde_json::Value;

use super::definition::{DefinitionError, DefinitionErrors, Sheet, SurveyDefinition};
use super::sheet::{Row, SheetKind, normalise_header, plain_quotes};

const TOP_LEVEL: [&str; 7] = [
    "settings",
    "survey",
    "choices",
    "external_choices",
    "entities",
    "files",
    "media",
];

pub(super) fn parse_definition(text: &str) -> Result<SurveyDefinition, DefinitionErrors> {
    let doc: Value = serde_json::from_str(text).map_err(|e| {
        one(format!(
            "not valid JSON: {e}; fix the syntax at that position"
        ))
    })?;
    let Value::Object(mut top) = doc else {
        return Err(one(
            "expected a JSON object with `settings`, `survey` and `choices`".into(),
        ));
    };
    let mut errors = Vec::new();
    for key in top.keys().filter(|k| !TOP_LEVEL.contains(&k.as_str())) {
        errors.push(err(
            Sheet::Document,
            None,
            Some(key.clone()),
            format!(
                "unknown top-level field `{key}`; expected {}",
                TOP_LEVEL.join(", ")
            ),
        ));
    }
    let settings = match top.remove("settings") {
        None => {
            errors.push(err(
                Sheet::Settings,
                None,
                None,
                "missing `settings` object; it needs at least `form_id`".into(),
            ));
            Row::default()
        }
        Some(v) => row(v, Sheet::Settings, None, &mut errors),
    };
    let mut sheet = |name: &str, sheet: Sheet, required: bool| {
        rows(top.remove(name), sheet, required, &mut errors)
    };
    let survey = sheet("survey", Sheet::Survey, true);
    let choices = sheet("choices", Sheet::Choices, false);
    let external_choices = sheet("external_choices", Sheet::ExternalChoices, false);
    let entities = sheet("entities", Sheet::Entities, false);
    let files = files_of(top.remove("files"), "files", &mut errors);
    let media = files_of(top.remove("media"), "media", &mut errors);
    if !errors.is_empty() {
        return Err(DefinitionErrors(errors));
    }
    Ok(SurveyDefinition {
        settings,
        survey,
        choices,
        external_choices,
        entities,
        files,
        media,
    })
}

/// `files` (or `media`): an object of file name to the file's text (base64 for media).
fn files_of(
    value: Option<Value>,
    field: &str,
    errors: &mut Vec<DefinitionError>,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    match value {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (name, v) in map {
                match v {
                    Value::String(text) => {
                        out.insert(name, text);
                    }
                    _ => errors.push(err(
                        Sheet::Document,
                        None,
                        Some(field.into()),
                        format!("file `{name}` must be given as text"),
                    )),
                }
            }
        }
        Some(_) => errors.push(err(
            Sheet::Document,
            None,
            Some(field.into()),
            format!("`{field}` must be an object of file names to their text"),
        )),
    }
    out
}

fn kind(sheet: Sheet) -> SheetKind {
    match sheet {
        Sheet::Settings | Sheet::Document => SheetKind::Settings,
        Sheet::Survey => SheetKind::Survey,
        Sheet::Choices => SheetKind::Choices,
        Sheet::ExternalChoices => SheetKind::ExternalChoices,
        Sheet::Entities => SheetKind::Entities,
    }
}

fn rows(
    value: Option<Value>,
    sheet: Sheet,
    required: bool,
    errors: &mut Vec<DefinitionError>,
) -> Vec<Row> {
    let items = match value {
        None if required => {
            errors.push(err(
                sheet,
                None,
                None,
                format!("missing `{sheet}` array; add the form's rows"),
            ));
            return Vec::new();
        }
        None | Some(Value::Null) => return Vec::new(),
        Some(Value::Array(items)) => items,
        Some(_) => {
            errors.push(err(
                sheet,
                None,
                None,
                format!("`{sheet}` must be an array of row objects"),
            ));
            return Vec::new();
        }
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, v)| row(v, sheet, Some(i + 1), errors))
        .collect()
}

/// One row object as cells keyed by normalised column.
fn row(
    value: Value,
    sheet: Sheet,
    number: Option<usize>,
    errors: &mut Vec<DefinitionError>,
) -> Row {
    let Value::Object(fields) = value else {
        errors.push(err(
            sheet,
            number,
            None,
            "expected an object of column names and cells".into(),
        ));
        return Row::default();
    };
    let mut cells = BTreeMap::new();
    let mut written_as: BTreeMap<String, String> = BTreeMap::new();
    for (key, v) in fields {
        let column = normalise_header(kind(sheet), &key);
        let text = match v {
            Value::Null => continue,
            Value::String(s) => s,
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => match (n.as_i64(), n.as_f64()) {
                (Some(i), _) => i.to_string(),
                (None, Some(f)) => f.to_string(),
                (None, None) => n.to_string(),
            },
            Value::Array(_) | Value::Object(_) => {
                errors.push(err(
                    sheet,
                    number,
                    Some(key.clone()),
                    format!("the cell `{key}` must be text, a number or true/false"),
                ));
                continue;
            }
        };
        if let Some(first) = written_as.insert(column.clone(), key.clone()) {
            errors.push(err(
                sheet,
                number,
                Some(key.clone()),
                format!("`{key}` and `{first}` are the same column `{column}`; keep one"),
            ));
            continue;
        }
        cells.insert(column, plain_quotes(text.trim()));
    }
    Row::new(number.unwrap_or(1), cells)
}

fn err(
    sheet: Sheet,
    row: Option<usize>,
    field: Option<String>,
    message: String,
) -> DefinitionError {
    DefinitionError {
        sheet,
        row,
        field,
        message,
    }
}

fn one(message: String) -> DefinitionErrors {
    DefinitionErrors(vec![err(Sheet::Document, None, None, message)])
}
