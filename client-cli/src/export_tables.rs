//! CSV tables from a survey's JSON Lines export, the way ODK exports forms with repeats: a
//! main table with one row per response (`KEY` is the response id) and one table per repeat
//! with one row per entry (`PARENT_KEY` names the row it belongs to, `KEY` is
//! `PARENT_KEY/REPEAT[n]`), in a zip. Options split a select_multiple into a column per
//! choice (`q/choice`, 1 or 0), a geopoint into latitude, longitude, altitude and accuracy
//! (`q-Latitude`, …), and write choice labels instead of names. Rows go to temporary files as
//! they stream in, so an export of any size needs little memory.

use std::collections::BTreeMap;
use std::io::{BufWriter, Seek, Write};

use fieldsync_protocol::survey::{Question, QuestionType, Survey};
use serde_json::Value;

/// How to lay the tables out.
#[derive(Debug, Clone, Default)]
pub struct TableOptions {
    /// A column per choice of a select_multiple, 1 when chosen.
    pub split_select_multiple: bool,
    /// Latitude, longitude, altitude and accuracy of a geopoint in their own columns.
    pub split_geopoint: bool,
    /// Choice labels instead of choice names.
    pub labels: bool,
    /// The language of the labels (the form's default otherwise).
    pub language: Option<String>,
    /// The zone times are written in, as ISO 8601.
    pub zone: fieldsync_protocol::zone::Zone,
}

/// The response columns of the main table before its questions.
pub const META: [&str; 8] = [
    "KEY",
    "survey_version",
    "status",
    "author_device",
    "enumerator",
    "device_name",
    "created_at",
    "updated_at",
];

struct Table {
    file_name: String,
    questions: Vec<usize>,
    rows: csv::Writer<BufWriter<std::fs::File>>,
    path: std::path::PathBuf,
}

/// The tables being written.
pub struct Tables<'a> {
    survey: &'a Survey,
    options: TableOptions,
    main: Table,
    /// By repeat name.
    repeats: BTreeMap<String, Table>,
    responses: usize,
}

impl std::fmt::Debug for Tables<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tables")
            .field("repeats", &self.repeats.keys().collect::<Vec<_>>())
            .field("responses", &self.responses)
            .finish()
    }
}

impl<'a> Tables<'a> {
    /// Empty tables for `survey`, their rows kept in `dir` until [`Tables::finish`].
    pub fn new(
        survey: &'a Survey,
        options: TableOptions,
        dir: &std::path::Path,
    ) -> std::io::Result<Self> {
        let form = survey.form_id().to_owned();
        let holds = |q: &Question| q.qtype.holds_value();
        let main_questions: Vec<usize> = (0..survey.questions().len())
            .filter(|&i| {
                let q = &survey.questions()[i];
                holds(q) && q.repeat.is_none()
            })
            .collect();
        let mut t = Tables {
            survey,
            main: Table::create(dir, &format!("{form}.csv"), main_questions)?,
            repeats: BTreeMap::new(),
            options,
            responses: 0,
        };
        let header: Vec<String> = META
            .iter()
            .map(|s| (*s).to_owned())
            .chain(t.question_columns(&t.main.questions))
            .collect();
        t.main.rows.write_record(&header)?;
        for g in survey.groups().filter(|g| g.repeat) {
            let qs: Vec<usize> = (0..survey.questions().len())
                .filter(|&i| {
                    let q = &survey.questions()[i];
                    holds(q) && q.repeat.as_deref() == Some(g.name.as_str())
                })
                .collect();
            let mut table = Table::create(dir, &format!("{form}-{}.csv", g.name), qs)?;
            let header: Vec<String> = ["PARENT_KEY", "KEY"]
                .iter()
                .map(|s| (*s).to_owned())
                .chain(t.question_columns(&table.questions))
                .collect();
            table.rows.write_record(&header)?;
            t.repeats.insert(g.name.clone(), table);
        }
        Ok(t)
    }

    /// Whether the form has repeats (so its export is several tables).
    pub fn has_repeats(&self) -> bool {
        !self.repeats.is_empty()
    }

    /// Responses added so far.
    pub fn responses(&self) -> usize {
        self.responses
    }

    fn question_columns(&self, questions: &[usize]) -> Vec<String> {
        let mut out = Vec::new();
        for &i in questions {
            let q = &self.survey.questions()[i];
            match &q.qtype {
                QuestionType::SelectMultiple(_) if self.options.split_select_multiple => {
                    for c in q
                        .qtype
                        .list()
                        .and_then(|l| self.survey.choices(l))
                        .unwrap_or_default()
                    {
                        out.push(format!("{}/{}", q.name, c.name));
                    }
                }
                QuestionType::GeoPoint if self.options.split_geopoint => {
                    for part in ["Latitude", "Longitude", "Altitude", "Accuracy"] {
                        out.push(format!("{}-{part}", q.name));
                    }
                }
                _ => out.push(q.name.clone()),
            }
        }
        out
    }

    fn cells(&self, questions: &[usize], answers: &serde_json::Map<String, Value>) -> Vec<String> {
        let mut out = Vec::new();
        for &i in questions {
            let q = &self.survey.questions()[i];
            let text = match answers.get(&q.name) {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
            };
            let list = q
                .qtype
                .list()
                .and_then(|l| self.survey.choices(l))
                .unwrap_or_default();
            match &q.qtype {
                QuestionType::SelectMultiple(_) if self.options.split_select_multiple => {
                    let chosen: Vec<&str> = text.split_whitespace().collect();
                    for c in list {
                        let cell = if text.is_empty() {
                            ""
                        } else if chosen.contains(&c.name.as_str()) {
                            "1"
                        } else {
                            "0"
                        };
                        out.push(cell.to_owned());
                    }
                }
                QuestionType::GeoPoint if self.options.split_geopoint => {
                    let parts: Vec<&str> = text.split_whitespace().collect();
                    for k in 0..4 {
                        out.push(parts.get(k).copied().unwrap_or_default().to_owned());
                    }
                }
                QuestionType::SelectOne(_) | QuestionType::SelectMultiple(_)
                    if self.options.labels =>
                {
                    let label = |name: &str| {
                        list.iter()
                            .find(|c| c.name == name)
                            .and_then(|c| c.label.get(self.options.language.as_deref()))
                            .unwrap_or(name)
                            .to_owned()
                    };
                    out.push(
                        text.split_whitespace()
                            .map(label)
                            .collect::<Vec<_>>()
                            .join(" "),
                    );
                }
                _ => out.push(text),
            }
        }
        out
    }

    /// One line of the JSON Lines export.
    pub fn add(&mut self, row: &Value) -> Result<(), String> {
        let key = row
            .get("response_id")
            .and_then(Value::as_str)
            .ok_or("an export row without a response_id")?
            .to_owned();
        let empty = serde_json::Map::new();
        let answers = row
            .get("answers")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let mut record: Vec<String> = vec![key.clone()];
        for meta in &META[1..] {
            record.push(match row.get(*meta) {
                None | Some(Value::Null) => String::new(),
                Some(Value::Number(ms)) if meta.ends_with("_at") => ms
                    .as_i64()
                    .map_or_else(|| ms.to_string(), |ms| self.options.zone.format_ms(ms)),
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
            });
        }
        record.extend(self.cells(&self.main.questions, answers));
        self.main
            .rows
            .write_record(&record)
            .map_err(|e| e.to_string())?;
        self.add_entries(&key, answers)?;
        self.responses += 1;
        Ok(())
    }

    /// The entries of every repeat in `answers`, and theirs, as rows of their tables.
    fn add_entries(
        &mut self,
        parent: &str,
        answers: &serde_json::Map<String, Value>,
    ) -> Result<(), String> {
        for (name, value) in answers {
            let Value::Array(entries) = value else {
                continue;
            };
            if !self.repeats.contains_key(name) {
                continue;
            }
            for (k, entry) in entries.iter().enumerate() {
                let Some(fields) = entry.as_object() else {
                    continue;
                };
                let key = format!("{parent}/{name}[{}]", k + 1);
                let questions = self.repeats[name].questions.clone();
                let mut record = vec![parent.to_owned(), key.clone()];
                record.extend(self.cells(&questions, fields));
                if let Some(t) = self.repeats.get_mut(name) {
                    t.rows.write_record(&record).map_err(|e| e.to_string())?;
                }
                self.add_entries(&key, fields)?;
            }
        }
        Ok(())
    }

    /// The main table alone, as CSV.
    pub fn finish_csv(self, out: &mut dyn Write) -> std::io::Result<()> {
        let path = self.main.finish()?;
        std::io::copy(&mut std::fs::File::open(path)?, out)?;
        Ok(())
    }

    /// Every table in a zip.
    pub fn finish_zip<W: Write + Seek>(self, out: W) -> std::io::Result<W> {
        let mut zip = zip::ZipWriter::new(out);
        self.write_tables(&mut zip)?;
        zip.finish().map_err(std::io::Error::other)
    }

    /// Every table into `zip`, which the caller may add to and must finish.
    pub fn write_tables<W: Write + Seek>(self, zip: &mut zip::ZipWriter<W>) -> std::io::Result<()> {
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        let tables = std::iter::once(self.main).chain(self.repeats.into_values());
        for t in tables {
            let name = t.file_name.clone();
            let path = t.finish()?;
            zip.start_file(name, options)
                .map_err(std::io::Error::other)?;
            std::io::copy(&mut std::fs::File::open(path)?, zip)?;
        }
        Ok(())
    }

    /// The attachment names an export row's answers hold (media questions, repeat entries
    /// included).
    pub fn media_names(&self, row: &Value) -> Vec<String> {
        let mut found = Vec::new();
        if let Some(answers) = row.get("answers").and_then(Value::as_object) {
            self.collect_media(answers, &mut found);
        }
        found
    }

    fn collect_media(&self, answers: &serde_json::Map<String, Value>, found: &mut Vec<String>) {
        for (name, value) in answers {
            match value {
                Value::Array(entries) => {
                    for entry in entries.iter().filter_map(Value::as_object) {
                        self.collect_media(entry, found);
                    }
                }
                Value::String(file)
                    if !file.is_empty()
                        && self
                            .survey
                            .question(name)
                            .is_some_and(|q| matches!(q.qtype, QuestionType::Media(_))) =>
                {
                    found.push(file.clone());
                }
                _ => {}
            }
        }
    }
}

impl Table {
    fn create(
        dir: &std::path::Path,
        file_name: &str,
        questions: Vec<usize>,
    ) -> std::io::Result<Table> {
        let path = dir.join(format!("{}.part", sanitize(file_name)));
        let file = std::fs::File::create(&path)?;
        Ok(Table {
            file_name: file_name.to_owned(),
            questions,
            rows: csv::Writer::from_writer(BufWriter::new(file)),
            path,
        })
    }

    fn finish(mut self) -> std::io::Result<std::path::PathBuf> {
        self.rows.flush()?;
        Ok(self.path)
    }
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roster() -> Survey {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../fixtures/surveys/household-roster.json"
        );
        Survey::parse_json(&std::fs::read_to_string(path).expect("fixture")).expect("parses")
    }

    fn rows(line: &str) -> Vec<Value> {
        line.lines()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect()
    }

    #[test]
    fn repeats_become_tables_joined_by_keys() {
        let s = roster();
        let dir = tempfile::tempdir().expect("tempdir");
        let mut t = Tables::new(&s, TableOptions::default(), dir.path()).expect("tables");
        assert!(t.has_repeats());
        for r in rows(
            r#"{"response_id":"r1","survey_version":1,"status":"submitted","answers":{"hh_name":"Achieng","n_members":2,"member":[{"_id":"a","m_name":"Achieng","m_age":41},{"_id":"b","m_name":"Otieno","m_age":9,"m_school":"yes"}]}}
{"response_id":"r2","survey_version":1,"status":"draft","answers":{"hh_name":"Wanjiru"}}"#,
        ) {
            t.add(&r).expect("row");
        }
        let zipped = t
            .finish_zip(std::io::Cursor::new(Vec::new()))
            .expect("zip")
            .into_inner();
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zipped)).expect("archive");
        let mut read = |name: &str| {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut archive.by_name(name).expect(name), &mut text)
                .expect("read");
            text
        };
        let main = read("household_roster.csv");
        let mut lines = main.lines();
        let header = lines.next().expect("header");
        assert!(
            header.starts_with(
                "KEY,survey_version,status,author_device,enumerator,device_name,created_at,updated_at,"
            ),
            "{header}"
        );
        assert!(
            !header.contains("m_age"),
            "entry questions are in their own table: {header}"
        );
        assert!(lines.next().expect("r1").starts_with("r1,1,submitted,"));
        let members = read("household_roster-member.csv");
        assert_eq!(
            members.lines().collect::<Vec<_>>(),
            [
                "PARENT_KEY,KEY,m_name,m_age,m_school",
                "r1,r1/member[1],Achieng,41,",
                "r1,r1/member[2],Otieno,9,yes",
            ]
        );
    }

    #[test]
    fn options_split_selects_and_write_labels() {
        let json = r#"{ "settings": { "form_id": "f" }, "survey": [
            { "type": "select_multiple crops", "name": "grown", "label": "Crops" },
            { "type": "select_one crops", "name": "main", "label": "Main crop" },
            { "type": "geopoint", "name": "farm", "label": "Farm" } ],
            "choices": [ { "list_name": "crops", "name": "maize", "label": "Maize" },
                         { "list_name": "crops", "name": "beans", "label": "Beans" } ] }"#;
        let s = Survey::parse_json(json).expect("parses");
        let dir = tempfile::tempdir().expect("tempdir");
        let options = TableOptions {
            split_select_multiple: true,
            split_geopoint: true,
            labels: true,
            language: None,
            zone: Default::default(),
        };
        let mut t = Tables::new(&s, options, dir.path()).expect("tables");
        t.add(&serde_json::json!({"response_id": "r1", "answers": {"grown": "beans", "main": "beans", "farm": "-1.29 36.82 1795 5"}}))
            .expect("row");
        let mut out = Vec::new();
        t.finish_csv(&mut out).expect("csv");
        let text = String::from_utf8(out).expect("utf-8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "KEY,survey_version,status,author_device,enumerator,device_name,created_at,updated_at,grown/maize,grown/beans,main,farm-Latitude,farm-Longitude,farm-Altitude,farm-Accuracy"
        );
        assert_eq!(lines[1], "r1,,,,,,,,0,1,Beans,-1.29,36.82,1795,5");
    }
}
