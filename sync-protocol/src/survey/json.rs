//! Reading a definition from JSON one sheet row at a time, so that a typo in a field name is
//! reported with its sheet and row (serde alone would stop at the first one and only give a
//! line and column).

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::definition::{
    ChoiceRow, DefinitionError, DefinitionErrors, Settings, Sheet, SurveyDefinition, SurveyRow,
};

const TOP_LEVEL: [&str; 3] = ["settings", "survey", "choices"];

pub(super) fn parse_definition(text: &str) -> Result<SurveyDefinition, DefinitionErrors> {
    let doc: Value = serde_json::from_str(text).map_err(|e| {
        one(
            Sheet::Document,
            None,
            None,
            format!("not valid JSON: {e}; fix the syntax at that position"),
        )
    })?;
    let Value::Object(mut top) = doc else {
        return Err(one(
            Sheet::Document,
            None,
            None,
            "expected a JSON object with `settings`, `survey` and `choices`".into(),
        ));
    };
    let mut errors = Vec::new();
    for key in top.keys().filter(|k| !TOP_LEVEL.contains(&k.as_str())) {
        errors.push(DefinitionError {
            sheet: Sheet::Document,
            row: None,
            field: Some(key.clone()),
            message: format!(
                "unknown top-level field `{key}`; expected `settings`, `survey` and `choices`"
            ),
        });
    }

    let settings = match top.remove("settings") {
        None => {
            errors.push(err(
                Sheet::Settings,
                None,
                None,
                "missing `settings` object; it needs at least `form_id`".into(),
            ));
            None
        }
        Some(v) => item::<Settings>(v, Sheet::Settings, None, &mut errors),
    };
    let survey = rows::<SurveyRow>(top.remove("survey"), Sheet::Survey, true, &mut errors);
    let choices = rows::<ChoiceRow>(top.remove("choices"), Sheet::Choices, false, &mut errors);

    match (settings, survey, choices) {
        (Some(settings), Some(survey), Some(choices)) if errors.is_empty() => {
            Ok(SurveyDefinition {
                settings,
                survey,
                choices,
            })
        }
        _ => Err(DefinitionErrors(errors)),
    }
}

fn rows<T: DeserializeOwned>(
    value: Option<Value>,
    sheet: Sheet,
    required: bool,
    errors: &mut Vec<DefinitionError>,
) -> Option<Vec<T>> {
    let items = match value {
        None if required => {
            errors.push(err(
                sheet,
                None,
                None,
                format!("missing `{sheet}` array; add the form's rows"),
            ));
            return None;
        }
        None | Some(Value::Null) => return Some(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => {
            errors.push(err(
                sheet,
                None,
                None,
                format!("`{sheet}` must be an array of row objects"),
            ));
            return None;
        }
    };
    let mut out = Vec::with_capacity(items.len());
    let mut ok = true;
    for (i, v) in items.into_iter().enumerate() {
        match item::<T>(v, sheet, Some(i + 1), errors) {
            Some(row) => out.push(row),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn item<T: DeserializeOwned>(
    value: Value,
    sheet: Sheet,
    row: Option<usize>,
    errors: &mut Vec<DefinitionError>,
) -> Option<T> {
    match serde_json::from_value(value) {
        Ok(v) => Some(v),
        Err(e) => {
            let message = e.to_string();
            let (field, message) = if message.contains("untagged enum Required") {
                (
                    Some("required".to_owned()),
                    "`required` must be true, false, \"yes\" or \"no\"".to_owned(),
                )
            } else if message.starts_with("unknown field") {
                (
                    quoted_field(&message),
                    format!("{message}; fix the spelling or remove it"),
                )
            } else if message.starts_with("missing field") {
                (
                    quoted_field(&message),
                    format!("{message}; add it to the row"),
                )
            } else {
                (None, message)
            };
            errors.push(err(sheet, row, field, message));
            None
        }
    }
}

/// The field serde names in "unknown field `x`" / "missing field `x`".
fn quoted_field(message: &str) -> Option<String> {
    let rest = message
        .strip_prefix("unknown field `")
        .or_else(|| message.strip_prefix("missing field `"))?;
    rest.split('`').next().map(str::to_owned)
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

fn one(
    sheet: Sheet,
    row: Option<usize>,
    field: Option<String>,
    message: String,
) -> DefinitionErrors {
    DefinitionErrors(vec![err(sheet, row, field, message)])
}
