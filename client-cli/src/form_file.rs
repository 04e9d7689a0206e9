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
        let (row0, col0) = range.start().map_or((0, 0), |(r, c)| (r as usize, c as usize));
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

    #[test]
    fn cells_read_as_xlsform_reads_them() {
        assert_eq!(cell_text(&Data::Float(1.0)).as_deref(), Some("1"));
        assert_eq!(cell_text(&Data::Float(2.5)).as_deref(), Some("2.5"));
        assert_eq!(cell_text(&Data::Bool(true)).as_deref(), Some("TRUE"));
        assert_eq!(cell_text(&Data::String("  x ".into())).as_deref(), Some("x"));
        assert_eq!(cell_text(&Data::String("   ".into())), None);
        assert_eq!(
            excel_date_text(45417.5, true).as_deref(),
            Some("2024-05-05 12:00:00")
        );
        assert_eq!(excel_date_text(0.25, false).as_deref(), Some("06:00:00"));
    }
}
