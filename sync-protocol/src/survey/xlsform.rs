//! From a workbook's sheets to a definition, as XLSForm reads a workbook: sheet names are
//! case-insensitive and sheets XLSForm does not know are ignored (a workbook of one sheet is
//! that sheet's survey); the first row holds the column headers; blank rows are skipped but
//! counted, so every problem names the row a user sees in the spreadsheet. Reading the file
//! itself (`.xlsx`, `.xls`) is the caller's: this module takes cells as text.

use std::collections::BTreeMap;

use super::definition::{DefinitionError, DefinitionErrors, Sheet, SurveyDefinition};
use super::sheet::{Row, SheetKind, normalise_header, plain_quotes};

/// One sheet as read from a workbook: its name and its rows of cells as text (`None` for an
/// empty cell), the header row first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawSheet {
    pub name: String,
    pub rows: Vec<Vec<Option<String>>>,
}

fn sheet_kind(name: &str) -> Option<(Sheet, SheetKind)> {
    Some(match name.trim().to_lowercase().as_str() {
        "survey" => (Sheet::Survey, SheetKind::Survey),
        "choices" => (Sheet::Choices, SheetKind::Choices),
        "settings" => (Sheet::Settings, SheetKind::Settings),
        "external_choices" => (Sheet::ExternalChoices, SheetKind::ExternalChoices),
        "entities" => (Sheet::Entities, SheetKind::Entities),
        _ => return None,
    })
}

/// The definition in a workbook's sheets. `file_stem` stands in for a missing form_id, as
/// XLSForm uses the file name.
pub fn definition_from_sheets(
    sheets: &[RawSheet],
    file_stem: &str,
) -> Result<SurveyDefinition, DefinitionErrors> {
    let mut def = SurveyDefinition::default();
    let mut errors = Vec::new();
    let mut seen_survey = false;
    let only = sheets.len() == 1;
    for s in sheets {
        let (sheet, kind) = match sheet_kind(&s.name) {
            Some(k) => k,
            None if only => (Sheet::Survey, SheetKind::Survey),
            None => continue,
        };
        let rows = read_rows(s, sheet, kind, &mut errors);
        match sheet {
            Sheet::Survey => {
                seen_survey = true;
                def.survey = rows;
            }
            Sheet::Choices => def.choices = rows,
            Sheet::ExternalChoices => def.external_choices = rows,
            Sheet::Entities => def.entities = rows,
            Sheet::Settings => {
                def.settings = rows.into_iter().find(|r| !r.is_blank()).unwrap_or_default();
            }
            Sheet::Document => {}
        }
    }
    if !seen_survey {
        let names: Vec<&str> = sheets.iter().map(|s| s.name.as_str()).collect();
        let hint = names
            .iter()
            .find(|n| close_to(&n.to_lowercase(), "survey"))
            .map(|n| format!(" (is `{n}` meant to be `survey`?)"))
            .unwrap_or_default();
        errors.push(DefinitionError {
            sheet: Sheet::Document,
            row: None,
            field: None,
            message: format!(
                "the workbook has no sheet named `survey`{hint}; its sheets are: {}",
                names.join(", ")
            ),
        });
    }
    if !errors.is_empty() {
        return Err(DefinitionErrors(errors));
    }
    if def.settings.get("form_id").is_none() {
        def.settings.cells.insert(
            "form_id".into(),
            file_stem.replace(char::is_whitespace, "_"),
        );
    }
    Ok(def)
}

fn read_rows(
    s: &RawSheet,
    sheet: Sheet,
    kind: SheetKind,
    errors: &mut Vec<DefinitionError>,
) -> Vec<Row> {
    let Some((header, data)) = s.rows.split_first() else {
        return Vec::new();
    };
    let mut columns: Vec<Option<String>> = Vec::with_capacity(header.len());
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (i, h) in header.iter().enumerate() {
        let Some(h) = h.as_deref().map(str::trim).filter(|h| !h.is_empty()) else {
            columns.push(None);
            continue;
        };
        let column = normalise_header(kind, h);
        if let Some(first) = seen.insert(column.clone(), i) {
            errors.push(DefinitionError {
                sheet,
                row: Some(1),
                field: Some(h.to_owned()),
                message: format!(
                    "columns {} and {} are both `{column}`; remove one",
                    column_letter(first),
                    column_letter(i)
                ),
            });
            columns.push(None);
            continue;
        }
        columns.push(Some(column));
    }
    data.iter()
        .enumerate()
        .map(|(i, cells)| {
            let mut row = BTreeMap::new();
            for (col, cell) in columns.iter().zip(cells) {
                if let (Some(col), Some(text)) = (col, cell) {
                    let text = text.trim().replace('\u{a0}', " ");
                    if !text.is_empty() {
                        row.insert(col.clone(), plain_quotes(&text));
                    }
                }
            }
            Row::new(i + 2, row)
        })
        .collect()
}

/// Spreadsheet column letters: 0 → A, 26 → AA.
pub fn column_letter(mut i: usize) -> String {
    let mut out = Vec::new();
    loop {
        out.push(b'A' + (i % 26) as u8);
        if i < 26 {
            break;
        }
        i = i / 26 - 1;
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

/// Whether two short names differ by at most two edits.
fn close_to(a: &str, b: &str) -> bool {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()] <= 2
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sheet(name: &str, rows: &[&[&str]]) -> RawSheet {
        RawSheet {
            name: name.into(),
            rows: rows
                .iter()
                .map(|r| {
                    r.iter()
                        .map(|c| (!c.is_empty()).then(|| (*c).to_owned()))
                        .collect()
                })
                .collect(),
        }
    }

    #[test]
    fn sheets_and_headers_are_read_as_xlsform_does() {
        let def = definition_from_sheets(
            &[
                sheet(
                    "Survey",
                    &[
                        &["Type", "Name", "Label::English (en)", "", "Relevance"],
                        &["text", "q1", "Question", "ignored", ""],
                        &["", "", "", "", ""],
                        &["integer", "q2", "Age", "", "${q1} != \u{2018}x\u{2019}"],
                    ],
                ),
                sheet("Notes to self", &[&["anything"]]),
            ],
            "my form",
        )
        .expect("reads");
        assert_eq!(def.survey.len(), 3);
        assert_eq!(def.survey[0].number, 2);
        assert_eq!(def.survey[2].number, 4);
        assert_eq!(def.survey[0].get("label::English (en)"), Some("Question"));
        assert_eq!(def.survey[2].get("relevant"), Some("${q1} != 'x'"));
        assert_eq!(def.settings.get("form_id"), Some("my_form"));
    }

    #[test]
    fn a_missing_survey_sheet_is_named_with_a_likely_misspelling() {
        let e = definition_from_sheets(&[sheet("surveys", &[]), sheet("choices", &[])], "f")
            .expect_err("no survey");
        assert!(
            e.to_string().contains("`surveys` meant to be `survey`"),
            "{e}"
        );
    }

    #[test]
    fn duplicate_headers_are_refused() {
        let e = definition_from_sheets(
            &[sheet(
                "survey",
                &[&["type", "name", "Type"], &["text", "a", ""]],
            )],
            "f",
        )
        .expect_err("duplicate");
        assert!(
            e.to_string().contains("columns A and C are both `type`"),
            "{e}"
        );
    }

    #[test]
    fn column_letters() {
        assert_eq!(column_letter(0), "A");
        assert_eq!(column_letter(25), "Z");
        assert_eq!(column_letter(26), "AA");
        assert_eq!(column_letter(27), "AB");
    }
}
