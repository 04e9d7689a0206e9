//! Files attached to a form: the CSV and GeoJSON files its questions choose from
//! (`select_one_from_file villages.csv`) and its expressions read (`pulldata('prices', …)`,
//! `csv-external`). They travel inside the definition (`files`, by file name, as text), so a
//! device holds them with the survey and works offline. Each file is a secondary instance
//! named by the file's name without its extension (`instance('villages')/root/item`), its
//! rows the items and its columns their fields, as in ODK.

use std::collections::BTreeMap;

use super::definition::{Choice, SurveyDefinition};
use super::sheet::{Row, SheetKind, normalise_header};
use super::types::{ChoiceSource, QuestionType, RowType, parse_type};

/// The most a form's files may hold together (label media counted in base64): they travel
/// with every copy of the survey.
pub const MAX_FILES_BYTES: usize = 12 * 1024 * 1024;

/// A file a form needs, and the row that needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeededFile {
    pub name: String,
    /// The survey-sheet row (1-based, as numbered in the definition).
    pub row: usize,
    /// What uses it: `select_one_from_file`, `pulldata`, `csv-external`.
    pub by: &'static str,
}

/// The parsed files of a form: each file's rows as instance items, and the choices of the
/// files selects choose from.
#[derive(Debug, Clone, Default)]
pub struct FormFiles {
    /// By instance id (the file name without its extension): rows of (column, value).
    pub(crate) instances: BTreeMap<String, Vec<Vec<(String, String)>>>,
    /// By file name.
    pub(crate) choices: BTreeMap<String, Vec<Choice>>,
}

/// The instance id of an attached file: its name without the extension.
pub fn instance_id(file: &str) -> &str {
    file.rsplit_once('.').map_or(file, |(stem, _)| stem)
}

/// Every file the definition's rows name, in row order, each once.
pub fn needed(def: &SurveyDefinition) -> Vec<NeededFile> {
    let mut out: Vec<NeededFile> = Vec::new();
    let mut add = |name: String, row: usize, by: &'static str| {
        if !out.iter().any(|n| n.name == name) {
            out.push(NeededFile { name, row, by });
        }
    };
    for r in &def.survey {
        if let Some(t) = r.get("type")
            && let Ok(rt) = parse_type(t)
        {
            match rt {
                RowType::Question(q) => {
                    if let Some(s) = q.select()
                        && let ChoiceSource::File(file) = &s.source
                    {
                        let by = if matches!(q, QuestionType::SelectMultiple(_)) {
                            "select_multiple_from_file"
                        } else {
                            "select_one_from_file"
                        };
                        add(file.clone(), r.number, by);
                    }
                }
                RowType::External { csv } => {
                    if let Some(name) = r.get("name") {
                        let (file, by) = if csv {
                            (format!("{name}.csv"), "csv-external")
                        } else {
                            (format!("{name}.xml"), "xml-external")
                        };
                        add(file, r.number, by);
                    }
                }
                _ => {}
            }
        }
        for cell in r.cells.values() {
            for id in pulldata_ids(cell) {
                add(format!("{id}.csv"), r.number, "pulldata");
            }
        }
        label_media(r, &mut add);
    }
    for r in &def.choices {
        label_media(r, &mut add);
    }
    out
}

/// The files a row's `media::image`, `media::audio`, … columns name (any language).
fn label_media(r: &Row, add: &mut impl FnMut(String, usize, &'static str)) {
    for (key, file) in &r.cells {
        if let Some(kind) = key.strip_prefix("media::") {
            let by = match kind.split("::").next() {
                Some("audio") => "label audio",
                Some("video") => "label video",
                _ => "label image",
            };
            if !file.trim().is_empty() {
                add(file.trim().to_owned(), r.number, by);
            }
        }
    }
}

/// Whether a file a form needs is one of its label media (sent as bytes, not text).
pub fn is_label_media(need: &NeededFile) -> bool {
    need.by.starts_with("label ")
}

/// A label media file's bytes, from the definition's base64.
pub fn media_bytes(def: &SurveyDefinition, name: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let text = def.media.get(name)?;
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

/// A label media file as the definition holds it.
pub fn encode_media(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The instance ids `pulldata('ID', …)` calls in an expression name.
fn pulldata_ids(cell: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut rest = cell;
    while let Some(at) = rest.find("pulldata(") {
        rest = &rest[at + "pulldata(".len()..];
        let arg = rest.trim_start();
        let Some(quote) = arg.chars().next().filter(|c| *c == '\'' || *c == '"') else {
            continue;
        };
        if let Some(end) = arg[1..].find(quote) {
            ids.push(arg[1..1 + end].to_owned());
        }
    }
    ids
}

/// Parse a form's files; every problem, each naming its file.
pub(crate) fn parse(def: &SurveyDefinition) -> (FormFiles, Vec<String>) {
    let mut files = FormFiles::default();
    let mut problems = Vec::new();
    let total: usize = def
        .files
        .values()
        .chain(def.media.values())
        .map(String::len)
        .sum();
    if total > MAX_FILES_BYTES {
        problems.push(format!(
            "the form's files hold {total} bytes; at most {MAX_FILES_BYTES} travel with a survey"
        ));
        return (files, problems);
    }
    for name in def.media.keys() {
        if media_bytes(def, name).is_none() {
            problems.push(format!(
                "{name}: a label media file must be given in base64"
            ));
        }
    }
    let selected: Vec<String> = needed(def)
        .into_iter()
        .filter(|n| n.by.ends_with("_from_file"))
        .map(|n| n.name)
        .collect();
    for (name, text) in &def.files {
        let lower = name.to_ascii_lowercase();
        let rows = if lower.ends_with(".csv") {
            parse_csv(text)
        } else if lower.ends_with(".geojson") {
            parse_geojson(text)
        } else if lower.ends_with(".xml") {
            // Kept with the survey; not read by expressions yet.
            continue;
        } else {
            problems.push(format!("{name}: a form's files are .csv, .geojson or .xml"));
            continue;
        };
        let rows = match rows {
            Ok(rows) => rows,
            Err(e) => {
                problems.push(format!("{name}: {e}"));
                continue;
            }
        };
        if selected.contains(name) {
            match choices_of(name, &rows) {
                Ok(c) => {
                    files.choices.insert(name.clone(), c);
                }
                Err(e) => problems.push(format!("{name}: {e}")),
            }
        }
        files.instances.insert(instance_id(name).to_owned(), rows);
    }
    (files, problems)
}

/// The choices of a file a select chooses from: its `name` column, its labels (`label`, or
/// `label::LANGUAGE`), and every other column for choice filters.
fn choices_of(file: &str, rows: &[Vec<(String, String)>]) -> Result<Vec<Choice>, String> {
    let mut out = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        let cells: BTreeMap<String, String> = row
            .iter()
            .map(|(k, v)| (normalise_header(SheetKind::Choices, k), v.clone()))
            .collect();
        let r = Row::new(i + 2, cells);
        let Some(name) = r.get("name") else {
            return Err(format!(
                "row {} has no `name`; a file that {file} choices come from needs a name column",
                i + 2
            ));
        };
        let mut choice = Choice {
            name: name.to_owned(),
            label: super::definition::Text::default(),
            columns: BTreeMap::new(),
        };
        for (k, v) in &r.cells {
            if k == "label" {
                choice.label.default = Some(v.clone());
            } else if let Some(lang) = k.strip_prefix("label::") {
                choice.label.translations.insert(lang.to_owned(), v.clone());
            } else if k != "name" {
                choice.columns.insert(k.clone(), v.clone());
            }
        }
        out.push(choice);
    }
    Ok(out)
}

/// A CSV file (RFC 4180: quoted fields, doubled quotes, CRLF or LF) as rows of
/// (header, value), the header row first.
fn parse_csv(text: &str) -> Result<Vec<Vec<(String, String)>>, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut records: Vec<Vec<String>> = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    let mut line = 1;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => {
                if c == '\n' {
                    line += 1;
                }
                field.push(c);
            }
            (false, '"') if field.is_empty() => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\r') if chars.peek() == Some(&'\n') => {}
            (false, '\n') => {
                line += 1;
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, c) => field.push(c),
        }
    }
    if quoted {
        return Err(format!("a quoted field is not closed (from line {line})"));
    }
    if !field.is_empty() || !record.is_empty() {
        record.push(field);
        records.push(record);
    }
    let mut records = records
        .into_iter()
        .filter(|r| !(r.len() == 1 && r[0].trim().is_empty()));
    let header: Vec<String> = records
        .next()
        .ok_or("the file is empty; it needs a header row")?
        .into_iter()
        .map(|h| h.trim().to_owned())
        .collect();
    if header.iter().any(String::is_empty) {
        return Err("a column of the header row has no name".into());
    }
    Ok(records
        .map(|r| {
            header
                .iter()
                .cloned()
                .zip(
                    r.into_iter()
                        .map(|v| v.trim().to_owned())
                        .chain(std::iter::repeat(String::new())),
                )
                .collect()
        })
        .collect())
}

/// A GeoJSON feature collection as rows: `geometry` as ODK writes it (`lat lon 0 0`, points
/// joined by `;`), `name` from the feature's `id` (or its `id` property), `label` from its
/// `title` property (or `name`), and every other property.
fn parse_geojson(text: &str) -> Result<Vec<Vec<(String, String)>>, String> {
    use serde_json::Value;
    let doc: Value = serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
    let features = doc
        .get("features")
        .and_then(Value::as_array)
        .ok_or("not a GeoJSON FeatureCollection (no `features` array)")?;
    let text_of = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    let mut rows = Vec::with_capacity(features.len());
    for (i, f) in features.iter().enumerate() {
        let props = f.get("properties").and_then(Value::as_object);
        let mut row: Vec<(String, String)> = Vec::new();
        let id = f
            .get("id")
            .map(text_of)
            .or_else(|| props.and_then(|p| p.get("id")).map(text_of))
            .filter(|s| !s.is_empty())
            .ok_or(format!("feature {} has no id", i + 1))?;
        row.push(("name".into(), id));
        let label = props
            .and_then(|p| p.get("title").or_else(|| p.get("name")))
            .map(text_of)
            .unwrap_or_default();
        row.push(("label".into(), label));
        row.push(("geometry".into(), geometry(f.get("geometry"))));
        for (k, v) in props.into_iter().flatten() {
            if !matches!(k.as_str(), "id" | "title" | "geometry" | "name" | "label") {
                row.push((k.clone(), text_of(v)));
            }
        }
        rows.push(row);
    }
    Ok(rows)
}

fn geometry(g: Option<&serde_json::Value>) -> String {
    fn points(v: &serde_json::Value, out: &mut Vec<String>) {
        match v.as_array() {
            Some(a) if a.first().is_some_and(serde_json::Value::is_number) => {
                let n = |i: usize| a.get(i).and_then(serde_json::Value::as_f64).unwrap_or(0.0);
                // GeoJSON is longitude first; ODK writes latitude first.
                out.push(format!("{} {} 0 0", n(1), n(0)));
            }
            Some(a) => a.iter().for_each(|x| points(x, out)),
            None => {}
        }
    }
    let mut out = Vec::new();
    if let Some(c) = g.and_then(|g| g.get("coordinates")) {
        points(c, &mut out);
    }
    out.join(";")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::answer::{Answer, Answers};
    use crate::survey::{At, Survey, ValidationContext};

    const FORM: &str = include_str!("../../../fixtures/surveys/market-prices.json");

    fn media(name: &str) -> String {
        let path = format!(
            "{}/../fixtures/surveys/market-media/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn with_files(names: &[&str]) -> Result<Survey, crate::survey::DefinitionErrors> {
        let mut def: serde_json::Value = serde_json::from_str(FORM).expect("json");
        let files: serde_json::Map<String, serde_json::Value> = names
            .iter()
            .map(|n| ((*n).to_owned(), media(n).into()))
            .collect();
        def["files"] = files.into();
        Survey::parse_json(&def.to_string())
    }

    fn ctx() -> ValidationContext {
        ValidationContext::new(time::macros::date!(2026 - 12 - 01))
    }

    #[test]
    fn the_files_a_form_uses_are_named_once_with_their_rows() {
        let def = crate::survey::json::parse_definition(FORM).expect("definition");
        let needed: Vec<(String, &str)> =
            needed(&def).into_iter().map(|n| (n.name, n.by)).collect();
        assert_eq!(
            needed,
            vec![
                ("markets.csv".to_owned(), "select_one_from_file"),
                ("commodities.geojson".to_owned(), "select_one_from_file"),
                ("commodity.png".to_owned(), "label image"),
                ("prices.csv".to_owned(), "pulldata"),
            ]
        );
        assert_eq!(
            pulldata_ids("pulldata( \"a\", 'x') + pulldata('b','y')"),
            ["a", "b"]
        );
    }

    #[test]
    fn csv_and_geojson_files_read_as_odk_reads_them() {
        let rows = parse_csv(&media("markets.csv")).expect("csv");
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[2][1], ("label".into(), "Mbarara \"Central\"".into()));
        assert_eq!(rows[0][2], ("district".into(), "north".into()));
        assert!(parse_csv("a,b\n\"open,1\n").is_err());
        let features = parse_geojson(&media("commodities.geojson")).expect("geojson");
        assert_eq!(features[0][0], ("name".into(), "d1".into()));
        assert_eq!(features[0][2], ("geometry".into(), "2.78 32.3 0 0".into()));
        assert_eq!(features[1][0], ("name".into(), "d2".into()));
        assert_eq!(features[1][1], ("label".into(), "Mbarara depot".into()));
    }

    #[test]
    fn a_select_from_a_file_offers_its_filtered_choices_and_pulldata_reads_a_file() {
        let survey = with_files(&["markets.csv", "commodities.geojson", "prices.csv"])
            .unwrap_or_else(|e| panic!("{e}"));
        let mut answers = Answers::new();
        answers.insert("district".into(), Answer::Text("north".into()));
        let shown: Vec<&str> = survey
            .choices_at(At::top("market"), &answers, &ctx())
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(shown, ["gulu", "lira"]);
        let depots = survey.choices_of(survey.question("depot").expect("depot"));
        assert_eq!(depots.map(<[_]>::len), Some(2));
        // A market of the file is a valid answer; a name the file does not hold is not.
        answers.insert("market".into(), Answer::Text("mbarara-x".into()));
        answers.insert("commodity".into(), Answer::Text("beans".into()));
        answers.insert("observed_price".into(), Answer::Decimal(3000.0));
        let computed = survey.calculate(&answers, &ctx());
        assert_eq!(
            computed
                .get("reference_price")
                .map(Answer::to_text)
                .as_deref(),
            Some("3400")
        );
        let errors = survey.validate(&computed, &ctx());
        assert!(errors.iter().any(|e| e.question == "market"), "{errors:?}");
        let mut good = computed.clone();
        good.insert("market".into(), Answer::Text("gulu".into()));
        assert!(survey.validate(&good, &ctx()).is_empty());
        good.insert("observed_price".into(), Answer::Decimal(20_000.0));
        let errors = survey.validate(&survey.calculate(&good, &ctx()), &ctx());
        assert!(
            errors.iter().any(|e| e.question == "observed_price"),
            "{errors:?}"
        );
    }

    #[test]
    fn a_broken_or_unusable_file_is_a_problem_of_the_form() {
        let mut def: serde_json::Value = serde_json::from_str(FORM).expect("json");
        def["files"] = serde_json::json!({
            "markets.csv": "label,district\nGulu,north\n",
            "commodities.geojson": "{\"features\": 3}",
            "prices.csv": "commodity,price\n",
        });
        let err = Survey::parse_json(&def.to_string()).expect_err("refused");
        let text = err.to_string();
        assert!(
            text.contains("markets.csv") && text.contains("name"),
            "{text}"
        );
        assert!(text.contains("commodities.geojson"), "{text}");
    }
}
