//! Reading a form file: an XLSForm workbook (`.xlsx`, `.xls`, read with calamine) or the
//! native JSON. Cells become text the way XLSForm's reference converter reads them: whole
//! numbers without a decimal part, booleans as `TRUE`/`FALSE`, dates as `YYYY-MM-DD HH:MM:SS`,
//! the value Excel computed for a formula; a sheet's data ends after a run of 60 empty rows,
//! its header after 20 empty cells.

use std::path::Path;

use calamine::{Data, Reader};
use fieldsync_protocol::survey::xlsform::{RawSheet, definition_from_sheets};
use fieldsync_protocol::survey::{DefinitionErrors, Survey, SurveyDefinition};

/// Why a form file could not be read or checked.
#[derive(Debug, thiserror::Error)]
pub enum FormFileError {
    #[error("cannot read {path}: {reason}")]
    Unreadable { path: String, reason: String },
    #[error("{path}: {errors}")]
    Invalid {
        path: String,
        errors: DefinitionErrors,
    },
}

const EMPTY_ROWS_END: usize = 60;
const EMPTY_HEADERS_END: usize = 20;

/// Reads and checks a form file.
pub fn load(path: &Path) -> Result<Survey, FormFileError> {
    let def = read(path)?;
    Survey::from_definition(def).map_err(|errors| FormFileError::Invalid {
        path: path.display().to_string(),
        errors,
    })
}

/// Reads a form file into its definition (not yet checked).
pub fn read(path: &Path) -> Result<SurveyDefinition, FormFileError> {
    let shown = path.display().to_string();
    let unreadable = |reason: String| FormFileError::Unreadable {
        path: shown.clone(),
        reason,
    };
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match ext.as_str() {
        "xlsx" | "xlsm" | "xls" => {
            let sheets = read_workbook(path).map_err(unreadable)?;
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("form")
                .to_owned();
            definition_from_sheets(&sheets, &stem).map_err(|errors| FormFileError::Invalid {
                path: shown.clone(),
                errors,
            })
        }
        "json" => {
            let text = std::fs::read_to_string(path).map_err(|e| unreadable(e.to_string()))?;
            let survey = Survey::parse_json(&text).map_err(|errors| FormFileError::Invalid {
                path: shown.clone(),
                errors,
            })?;
            Ok(survey.definition().clone())
        }
        _ => Err(unreadable(
            "not a form file; give an XLSForm workbook (.xlsx or .xls) or a JSON definition (.json)"
                .into(),
        )),
    }
}

fn read_workbook(path: &Path) -> Result<Vec<RawSheet>, String> {
    let mut book = calamine::open_workbook_auto(path)
        .map_err(|e| format!("{e}; is it an .xlsx or .xls workbook?"))?;
    let mut sheets = Vec::new();
    for name in book.sheet_names() {
        let range = book
            .worksheet_range(&name)
            .map_err(|e| format!("sheet `{name}`: {e}"))?;
        // The range starts at the first used cell: put every cell back at its row and column.
        let (row0, col0) = range
            .start()
            .map_or((0, 0), |(r, c)| (r as usize, c as usize));
        let mut rows: Vec<Vec<Option<String>>> = vec![Vec::new(); row0];
        let mut empty_run = 0;
        for cells in range.rows() {
            let mut row: Vec<Option<String>> = vec![None; col0];
            row.extend(cells.iter().map(cell_text));
            if row.iter().all(Option::is_none) {
                empty_run += 1;
                if empty_run > EMPTY_ROWS_END && !rows.is_empty() {
                    break;
                }
            } else {
                empty_run = 0;
            }
            rows.push(row);
        }
        if let Some(header) = rows.first_mut() {
            let mut empty = 0;
            let mut keep = header.len();
            for (i, c) in header.iter().enumerate() {
                if c.is_none() {
                    empty += 1;
                    if empty > EMPTY_HEADERS_END {
                        keep = i + 1 - empty;
                        break;
                    }
                } else {
                    empty = 0;
                }
            }
            header.truncate(keep);
        }
        sheets.push(RawSheet { name, rows });
    }
    Ok(sheets)
}

/// A cell as XLSForm reads it.
fn cell_text(d: &Data) -> Option<String> {
    let text = match d {
        Data::Empty | Data::Error(_) => return None,
        Data::String(s) => s.clone(),
        Data::Int(i) => i.to_string(),
        Data::Float(f) => number_text(*f),
        Data::Bool(b) => if *b { "TRUE" } else { "FALSE" }.to_owned(),
        Data::DateTime(dt) => excel_date_text(dt.as_f64(), dt.is_datetime())?,
        Data::DateTimeIso(s) | Data::DurationIso(s) => s.replace('T', " "),
    };
    let text = text.trim().to_owned();
    (!text.is_empty()).then_some(text)
}

fn number_text(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{}", f as i64)
    } else {
        f.to_string()
    }
}

/// An Excel serial date (days since 1899-12-30) as `YYYY-MM-DD HH:MM:SS`, or a time of day.
fn excel_date_text(serial: f64, _is_datetime: bool) -> Option<String> {
    // Excel's calendar ends in 9999: anything beyond is not a date.
    if !serial.is_finite() || !(0.0..3_000_000.0).contains(&serial) {
        return None;
    }
    let days = serial.floor();
    let seconds = ((serial - days) * 86_400.0).round() as i64;
    let (h, m, s) = (seconds / 3600 % 24, seconds / 60 % 60, seconds % 60);
    if days == 0.0 {
        return Some(format!("{h:02}:{m:02}:{s:02}"));
    }
    let epoch = time::macros::date!(1899 - 12 - 30);
    let date = epoch.checked_add(time::Duration::days(days as i64))?;
    Some(format!(
        "{:04}-{:02}-{:02} {h:02}:{m:02}:{s:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FORMS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures");

    /// The roster workbooks (written by `fixtures/forms/make.py` from the JSON, with a comment
    /// column, a blank row and headers in another case) read as the same form as the JSON.
    #[test]
    fn workbooks_read_as_the_json_they_were_made_from() {
        let json = load(Path::new(&format!("{FORMS}/surveys/household-roster.json")))
            .unwrap_or_else(|e| panic!("{e}"));
        for file in ["household-roster.xlsx", "household-roster.xls"] {
            let path = format!("{FORMS}/forms/{file}");
            let book = load(Path::new(&path)).unwrap_or_else(|e| panic!("{e}"));
            let mut def = book.definition().clone();
            for r in &mut def.survey {
                r.cells.remove("Notes for the team");
            }
            let rows = |d: &SurveyDefinition| -> Vec<_> {
                d.survey
                    .iter()
                    .filter(|r| !r.is_blank())
                    .map(|r| r.cells.clone())
                    .collect()
            };
            assert_eq!(rows(&def), rows(json.definition()), "{file}: survey sheet");
            assert_eq!(
                def.choices.iter().map(|r| &r.cells).collect::<Vec<_>>(),
                json.definition()
                    .choices
                    .iter()
                    .map(|r| &r.cells)
                    .collect::<Vec<_>>(),
                "{file}: choices"
            );
            assert_eq!(
                def.settings.cells,
                json.definition().settings.cells,
                "{file}: settings"
            );
            // Row numbers are the spreadsheet's: header 1, the blank row counted.
            assert_eq!(book.question("hh_name").map(|q| q.row), Some(5), "{file}");
            assert_eq!(book.question("n_members").map(|q| q.row), Some(9), "{file}");
        }
    }

    #[test]
    fn a_file_that_is_not_a_form_says_what_it_takes() {
        let e = read(Path::new(&format!("{FORMS}/forms/make.py"))).expect_err("not a form");
        assert!(e.to_string().contains(".xlsx or .xls"), "{e}");
        let e = read(Path::new("/nonexistent/form.xlsx")).expect_err("missing");
        assert!(
            e.to_string().contains("cannot read /nonexistent/form.xlsx"),
            "{e}"
        );
    }

    #[test]
    fn cells_read_as_xlsform_reads_them() {
        assert_eq!(cell_text(&Data::Float(1.0)).as_deref(), Some("1"));
        assert_eq!(cell_text(&Data::Float(2.5)).as_deref(), Some("2.5"));
        assert_eq!(cell_text(&Data::Bool(true)).as_deref(), Some("TRUE"));
        assert_eq!(
            cell_text(&Data::String("  x ".into())).as_deref(),
            Some("x")
        );
        assert_eq!(cell_text(&Data::String("   ".into())), None);
        assert_eq!(
            excel_date_text(45417.5, true).as_deref(),
            Some("2024-05-05 12:00:00")
        );
        assert_eq!(excel_date_text(0.25, false).as_deref(), Some("06:00:00"));
        assert_eq!(
            excel_date_text(1e20, true),
            None,
            "no panic on a huge serial"
        );
    }
}
