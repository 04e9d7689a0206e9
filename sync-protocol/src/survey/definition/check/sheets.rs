//! The settings sheet, the choice lists (`choices` and `external_choices`), the form's
//! languages and the subject field.

use super::*;

impl Builder {
    pub(super) fn settings(&mut self, row: &Row) {
        let get = |c: &str| row.get(c).map(str::to_owned);
        let form_id = get("form_id").unwrap_or_default();
        if form_id.is_empty() {
            self.err(
                Sheet::Settings,
                None,
                "form_id",
                "missing form_id; give the form a stable identifier such as `household_survey`"
                    .into(),
            );
        }
        let allow = match row.get("allow_choice_duplicates") {
            None => false,
            Some(v) => yes_no(v).unwrap_or_else(|| {
                self.err(
                    Sheet::Settings,
                    None,
                    "allow_choice_duplicates",
                    format!("`{v}` is not yes or no"),
                );
                false
            }),
        };
        self.settings = FormSettings {
            form_id,
            form_title: get("form_title"),
            version: get("version"),
            default_language: get("default_language"),
            instance_name: None,
            allow_choice_duplicates: allow,
            style: get("style"),
            public_key: get("public_key"),
            submission_url: get("submission_url"),
            subject_field: get("subject_field"),
        };
    }

    /// The choices (or external choices) sheet: lists by name, with every problem.
    pub(super) fn read_choices(
        &mut self,
        rows: &[Row],
        sheet: Sheet,
    ) -> BTreeMap<String, Vec<Choice>> {
        let mut lists: BTreeMap<String, Vec<Choice>> = BTreeMap::new();
        let mut first_row: HashMap<(String, String), usize> = HashMap::new();
        let default_language = self.settings.default_language.clone();
        for r in rows.iter().filter(|r| !r.is_blank()) {
            let Some(list) = r.get("list_name") else {
                // XLSForm skips rows without a list name (often notes to the author).
                continue;
            };
            let Some(name) = r.get("name") else {
                self.err(
                    sheet,
                    Some(r.number),
                    "name",
                    format!(
                        "choice of list `{list}` has no name; the name is the value stored in \
                         answers"
                    ),
                );
                continue;
            };
            let label = text_of(r, "label", default_language.as_deref());
            let has_media = r.cells.keys().any(|k| k.starts_with("media::"));
            if label.is_empty() && !has_media {
                self.warn(
                    sheet,
                    Some(r.number),
                    "label",
                    format!("choice `{name}` of list `{list}` has no label; its name is shown"),
                );
            }
            let key = (list.to_owned(), name.to_owned());
            if let Some(first) = first_row.get(&key) {
                if !self.settings.allow_choice_duplicates {
                    self.err(
                        sheet,
                        Some(r.number),
                        "name",
                        format!(
                            "duplicate choice `{name}` in list `{list}` (first on row {first}); \
                             give it another name, or set allow_choice_duplicates to yes in \
                             the settings sheet"
                        ),
                    );
                    continue;
                }
            } else {
                first_row.insert(key, r.number);
            }
            let columns = r
                .cells
                .iter()
                .filter(|(k, v)| {
                    !v.trim().is_empty()
                        && !matches!(k.as_str(), "list_name" | "name")
                        && !k.starts_with("label")
                        && !k.starts_with("media::")
                })
                .map(|(k, v)| (k.clone(), v.trim().to_owned()))
                .collect();
            lists.entry(list.to_owned()).or_default().push(Choice {
                name: name.to_owned(),
                label,
                columns,
            });
        }
        lists
    }

    pub(super) fn choices(&mut self, rows: &[Row], sheet: Sheet) {
        self.choices = self.read_choices(rows, sheet);
    }

    pub(super) fn warn(&mut self, sheet: Sheet, row: Option<usize>, field: &str, message: String) {
        self.warnings.push(DefinitionError {
            sheet,
            row,
            field: Some(field.to_owned()),
            message,
        });
    }

    /// `max-size` and `max-pixels` of a media question: values a device can apply, within the
    /// kind's own limit.
    pub(super) fn media_parameters(&mut self, r: &Row, qtype: &QuestionType) {
        let QuestionType::Media(kind) = qtype else {
            return;
        };
        let params = parameters(r.get("parameters"));
        if let Some(v) = params.get("max-size") {
            let ceiling = crate::media::default_limit(*kind);
            match crate::media::parse_size(v) {
                Some(n) if n > 0 && n <= ceiling => {}
                Some(n) if n > ceiling => self.row_err(
                    r,
                    "parameters",
                    format!(
                        "max-size={v} is more than fieldsync takes for a {qtype} answer ({}); give at most that",
                        crate::media::show_size(ceiling)
                    ),
                ),
                _ => self.row_err(
                    r,
                    "parameters",
                    format!("max-size={v} is not a size; write bytes or KB, MB, GB, e.g. max-size=10MB"),
                ),
            }
        }
        if let Some(v) = params.get("max-pixels")
            && (*kind != crate::survey::types::MediaKind::Image
                || v.parse::<u32>().map_or(true, |n| n == 0))
        {
            self.row_err(
                r,
                "parameters",
                format!(
                    "max-pixels={v} must be a whole number of pixels above 0, on an image question"
                ),
            );
        }
    }

    /// The form's attached files, parsed; a file that does not parse is a problem of the form.
    pub(super) fn files(&mut self, def: &SurveyDefinition) -> crate::survey::files::FormFiles {
        let (files, problems) = crate::survey::files::parse(def);
        for p in problems {
            self.err(Sheet::Document, None, "files", p);
        }
        files
    }

    pub(super) fn external_choices(&mut self, rows: &[Row]) {
        self.external = self.read_choices(rows, Sheet::ExternalChoices);
    }

    pub(super) fn subject_field(&mut self) {
        let Some(name) = self.settings.subject_field.clone() else {
            return;
        };
        let problem = match self.index.get(&name).and_then(|&i| self.questions.get(i)) {
            None => format!(
                "subject_field `{name}` is not a question of this survey; name the question that identifies the respondent"
            ),
            Some(q) if !q.qtype.holds_value() => {
                format!("subject_field `{name}` is a note, which has no answer; name a question")
            }
            Some(q) if q.repeat.is_some() => format!(
                "subject_field `{name}` is inside a repeat; name a question asked once per response"
            ),
            Some(_) => return,
        };
        self.err(Sheet::Settings, None, "subject_field", problem);
    }

    /// `identifying` cells: yes/no, on questions that hold a value.
    pub(super) fn identifying(&mut self, rows: &[Row]) {
        for r in rows {
            let Some(cell) = r.get("identifying") else {
                continue;
            };
            let flag = match yes_no(cell) {
                Some(flag) => flag,
                None => {
                    let msg = format!("`{cell}` is not yes or no");
                    self.err(Sheet::Survey, Some(r.number), "identifying", msg);
                    continue;
                }
            };
            let question = r.get("name").and_then(|n| self.index.get(n).copied());
            match question.and_then(|i| self.questions.get_mut(i)) {
                Some(q) if q.qtype.holds_value() => q.identifying = flag,
                _ if !flag => {}
                _ => {
                    let msg = "only a question with an answer can be identifying; remove `identifying` from this row".to_owned();
                    self.err(Sheet::Survey, Some(r.number), "identifying", msg);
                }
            }
        }
    }

    /// Languages used by any translatable column, the default first.
    pub(super) fn languages(&self, def: &SurveyDefinition) -> Vec<String> {
        let mut langs: Vec<String> = Vec::new();
        for r in def.survey.iter().chain(&def.choices) {
            for k in r.cells.keys() {
                if let Some((_, lang)) = crate::survey::sheet::language_of(k)
                    && !langs.iter().any(|l| l == lang)
                {
                    langs.push(lang.to_owned());
                }
            }
        }
        langs.sort();
        if let Some(d) = &self.settings.default_language
            && let Some(pos) = langs.iter().position(|l| l == d)
        {
            let d = langs.remove(pos);
            langs.insert(0, d);
        }
        langs
    }
}
