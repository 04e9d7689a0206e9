//! Checking a definition row by row, collecting every problem instead of stopping at the
//! first, so a coordinator can fix a whole form in one round.

use std::collections::{BTreeMap, HashMap};

use super::{
    Choice, ChoiceRow, DefinitionError, Group, Question, QuestionType, Required, Settings, Sheet,
    SurveyRow,
};
use crate::survey::expr::{Expr, is_valid_name};
use crate::survey::validate;

const SUPPORTED_TYPES: &str = "supported: text, integer, decimal, select_one LIST, \
     select_multiple LIST, date, datetime, geopoint, note, begin_group, end_group";

/// A row whose expressions are checked once every name is known.
pub(super) struct Pending {
    row: usize,
    /// `Some(index)` for a question, `None` for a group.
    question: Option<usize>,
    name: String,
}

#[derive(Default)]
pub(super) struct Builder {
    pub(super) errors: Vec<DefinitionError>,
    pub(super) questions: Vec<Question>,
    pub(super) index: HashMap<String, usize>,
    pub(super) groups: HashMap<String, Group>,
    pub(super) choices: BTreeMap<String, Vec<Choice>>,
}

fn present(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

impl Builder {
    fn err(&mut self, sheet: Sheet, row: Option<usize>, field: &str, message: String) {
        self.errors.push(DefinitionError {
            sheet,
            row,
            field: Some(field.to_owned()),
            message,
        });
    }

    fn row_err(&mut self, row: usize, field: &str, message: String) {
        self.err(Sheet::Survey, Some(row), field, message);
    }

    pub(super) fn settings(&mut self, s: &Settings) {
        if s.form_id.trim().is_empty() {
            self.err(
                Sheet::Settings,
                None,
                "form_id",
                "missing form_id; give the form a stable identifier such as `household_survey`"
                    .into(),
            );
        } else if s.form_id.chars().any(char::is_whitespace) {
            self.err(
                Sheet::Settings,
                None,
                "form_id",
                format!("form_id `{}` contains spaces; use `_` instead", s.form_id),
            );
        }
    }

    pub(super) fn choices(&mut self, rows: &[ChoiceRow]) {
        let mut first_row: HashMap<(&str, &str), usize> = HashMap::new();
        for (i, c) in rows.iter().enumerate() {
            let row = Some(i + 1);
            let mut ok = true;
            if c.list_name.trim().is_empty() {
                self.err(
                    Sheet::Choices,
                    row,
                    "list_name",
                    "missing list_name; name the list this choice belongs to".into(),
                );
                ok = false;
            }
            if c.name.trim().is_empty() {
                self.err(
                    Sheet::Choices,
                    row,
                    "name",
                    "missing choice name; it is the value stored in answers".into(),
                );
                ok = false;
            } else if c.name.chars().any(char::is_whitespace) {
                self.err(
                    Sheet::Choices,
                    row,
                    "name",
                    format!("choice name `{}` contains spaces; select_multiple answers separate choices with spaces, so use `_` instead", c.name),
                );
                ok = false;
            }
            if present(&c.label).is_none() {
                self.err(
                    Sheet::Choices,
                    row,
                    "label",
                    "missing label; every choice needs text to show".into(),
                );
            }
            if !ok {
                continue;
            }
            if let Some(first) = first_row.insert((&c.list_name, &c.name), i + 1) {
                self.err(
                    Sheet::Choices,
                    row,
                    "name",
                    format!("duplicate choice `{}` in list `{}` (first on choices row {first}); choice names must be unique within a list", c.name, c.list_name),
                );
                continue;
            }
            self.choices
                .entry(c.list_name.clone())
                .or_default()
                .push(Choice {
                    name: c.name.clone(),
                    label: c.label.clone().unwrap_or_default(),
                });
        }
    }

    /// Structure: types, names, groups, per-type field rules. Returns the rows whose
    /// expressions and defaults still need checking.
    pub(super) fn rows(&mut self, rows: &[SurveyRow]) -> Vec<Pending> {
        let mut pending = Vec::new();
        let mut stack: Vec<(String, usize)> = Vec::new();
        let mut first_row: HashMap<String, usize> = HashMap::new();
        for (i, r) in rows.iter().enumerate() {
            let row = i + 1;
            let kind = r.row_type.split_whitespace().collect::<Vec<_>>();
            let name = r.name.trim();
            match kind.as_slice() {
                ["end_group"] | ["end", "group"] => {
                    self.end_group(r, row, &mut stack);
                    continue;
                }
                ["begin_group"] | ["begin", "group"] => {
                    if self.name(r, row, &mut first_row) {
                        self.no_answer_fields(r, row, "a group");
                        self.groups.insert(
                            name.to_owned(),
                            Group {
                                name: name.to_owned(),
                                label: present(&r.label).map(str::to_owned),
                                relevant: None,
                                parents: stack.iter().map(|(n, _)| n.clone()).collect(),
                                row,
                            },
                        );
                        pending.push(Pending {
                            row,
                            question: None,
                            name: name.to_owned(),
                        });
                    }
                    stack.push((name.to_owned(), row));
                    continue;
                }
                _ => {}
            }
            let qtype = self.question_type(&kind, &r.row_type, row);
            let name_ok = self.name(r, row, &mut first_row);
            let required = self.required(r, row);
            if present(&r.label).is_none() {
                self.row_err(
                    row,
                    "label",
                    "missing label; every question and note needs text to show".into(),
                );
            }
            let Some(qtype) = qtype else { continue };
            if qtype == QuestionType::Note {
                self.no_answer_fields(r, row, "a note");
            }
            if !name_ok {
                continue;
            }
            let idx = self.questions.len();
            self.index.insert(name.to_owned(), idx);
            self.questions.push(Question {
                name: name.to_owned(),
                label: r.label.clone().unwrap_or_default(),
                hint: r.hint.clone(),
                qtype,
                required,
                group: stack.iter().map(|(n, _)| n.clone()).collect(),
                default: present(&r.default).map(str::to_owned),
                constraint_message: present(&r.constraint_message).map(str::to_owned),
                relevant: None,
                constraint: None,
                row,
            });
            pending.push(Pending {
                row,
                question: Some(idx),
                name: name.to_owned(),
            });
        }
        for (name, row) in stack {
            self.row_err(row, "type", format!("begin_group `{name}` is never closed; add an end_group row after its last question"));
        }
        pending
    }

    fn end_group(&mut self, r: &SurveyRow, row: usize, stack: &mut Vec<(String, usize)>) {
        let name = r.name.trim();
        match stack.pop() {
            None => self.row_err(row, "type", "end_group without a matching begin_group; remove it or add the begin_group".into()),
            Some((open, _)) if !name.is_empty() && name != open => self.row_err(
                row,
                "name",
                format!("end_group `{name}` closes group `{open}`; groups must be closed innermost first"),
            ),
            Some(_) => {}
        }
        let extra = [
            ("label", r.label.is_some()),
            ("hint", r.hint.is_some()),
            ("required", r.required.is_some()),
            ("relevant", r.relevant.is_some()),
            ("constraint", r.constraint.is_some()),
            ("constraint_message", r.constraint_message.is_some()),
            ("default", r.default.is_some()),
        ];
        for (field, set) in extra {
            if set {
                self.row_err(
                    row,
                    field,
                    format!(
                        "end_group takes only type and name; move `{field}` to the begin_group row"
                    ),
                );
            }
        }
    }

    /// Rejects answer-only fields on a row that takes no answer.
    fn no_answer_fields(&mut self, r: &SurveyRow, row: usize, what: &str) {
        if present(&r.constraint).is_some() {
            self.row_err(
                row,
                "constraint",
                format!(
                    "{what} takes no answer, so it cannot have a constraint; put it on a question"
                ),
            );
        }
        if present(&r.constraint_message).is_some() {
            self.row_err(
                row,
                "constraint_message",
                format!("{what} takes no answer, so it cannot have a constraint_message"),
            );
        }
        if matches!(required_value(r), Ok(true)) {
            self.row_err(
                row,
                "required",
                format!("{what} takes no answer, so it cannot be required"),
            );
        }
        if present(&r.default).is_some() {
            self.row_err(
                row,
                "default",
                format!("{what} takes no answer, so it cannot have a default"),
            );
        }
    }

    fn question_type(&mut self, kind: &[&str], raw: &str, row: usize) -> Option<QuestionType> {
        let t = match kind {
            ["text"] => QuestionType::Text,
            ["integer"] => QuestionType::Integer,
            ["decimal"] => QuestionType::Decimal,
            ["date"] => QuestionType::Date,
            ["datetime"] => QuestionType::DateTime,
            ["geopoint"] => QuestionType::GeoPoint,
            ["note"] => QuestionType::Note,
            [sel @ ("select_one" | "select_multiple"), list] => {
                if !self.choices.contains_key(*list) {
                    self.row_err(
                        row,
                        "type",
                        format!(
                            "unknown choice list `{list}`; add choices rows with list_name `{list}`"
                        ),
                    );
                    return None;
                }
                if *sel == "select_one" {
                    QuestionType::SelectOne((*list).to_owned())
                } else {
                    QuestionType::SelectMultiple((*list).to_owned())
                }
            }
            [sel @ ("select_one" | "select_multiple")] => {
                self.row_err(
                    row,
                    "type",
                    format!("`{sel}` needs a choice list: write `{sel} LIST_NAME`"),
                );
                return None;
            }
            [] => {
                self.row_err(row, "type", format!("missing type; {SUPPORTED_TYPES}"));
                return None;
            }
            _ => {
                self.row_err(
                    row,
                    "type",
                    format!("unknown type `{}`; {SUPPORTED_TYPES}", raw.trim()),
                );
                return None;
            }
        };
        Some(t)
    }

    /// Checks the name of a question or group; returns whether it can be indexed.
    fn name(&mut self, r: &SurveyRow, row: usize, first_row: &mut HashMap<String, usize>) -> bool {
        let name = r.name.trim();
        if name.is_empty() {
            self.row_err(
                row,
                "name",
                "missing name; every question and group needs a unique name".into(),
            );
            return false;
        }
        if !is_valid_name(name) {
            self.row_err(
                row,
                "name",
                format!("bad name `{name}`; start with a letter or `_` and use only letters, digits, `_`, `-` and `.`"),
            );
            return false;
        }
        if let Some(first) = first_row.get(name) {
            self.row_err(row, "name", format!("duplicate name `{name}` (first on survey row {first}); names must be unique across the form, groups included"));
            return false;
        }
        first_row.insert(name.to_owned(), row);
        true
    }

    fn required(&mut self, r: &SurveyRow, row: usize) -> bool {
        match required_value(r) {
            Ok(b) => b,
            Err(text) => {
                self.row_err(
                    row,
                    "required",
                    format!("`{text}` is not a yes/no value; write true, false, \"yes\" or \"no\""),
                );
                false
            }
        }
    }

    pub(super) fn expressions_and_defaults(&mut self, rows: &[SurveyRow], pending: Vec<Pending>) {
        for p in pending {
            let Some(r) = rows.get(p.row - 1) else {
                continue;
            };
            let relevant = self.expression(r.relevant.as_ref(), p.row, "relevant", &p.name);
            let constraint = match p.question {
                Some(_) => self.expression(r.constraint.as_ref(), p.row, "constraint", &p.name),
                None => None,
            };
            match p.question.and_then(|i| self.questions.get_mut(i)) {
                Some(q) => {
                    q.relevant = relevant;
                    q.constraint = constraint;
                }
                None => {
                    if let Some(g) = self.groups.get_mut(&p.name) {
                        g.relevant = relevant;
                    }
                }
            }
            if let Some(q) = p.question.and_then(|i| self.questions.get(i))
                && q.qtype != QuestionType::Note
                && let Some(default) = &q.default
            {
                let list = q
                    .qtype
                    .list()
                    .and_then(|l| self.choices.get(l))
                    .map(Vec::as_slice);
                if let Err(msg) = validate::check_default(q, default, list) {
                    self.row_err(
                        p.row,
                        "default",
                        format!("default `{default}` is not valid: {msg}"),
                    );
                }
            }
        }
    }

    fn expression(
        &mut self,
        text: Option<&String>,
        row: usize,
        field: &str,
        own: &str,
    ) -> Option<Expr> {
        let text = text.map(|t| t.trim()).filter(|t| !t.is_empty())?;
        let expr = match Expr::parse(text) {
            Ok(e) => e,
            Err(e) => {
                self.row_err(row, field, e.to_string());
                return None;
            }
        };
        let mut ok = true;
        if field == "relevant" && expr.uses_current() {
            self.row_err(row, field, "`.` (the answer being checked) is only allowed in constraint; refer to questions as `${name}`".into());
            ok = false;
        }
        let mut seen = Vec::new();
        for name in expr.references() {
            if seen.contains(&name) {
                continue;
            }
            seen.push(name);
            let problem = if field == "relevant" && name == own {
                Some(format!(
                    "relevant refers to its own question `${{{name}}}`; relevance cannot depend on the answer it controls"
                ))
            } else if self.groups.contains_key(name) {
                Some(format!(
                    "`${{{name}}}` is a group, which has no answer; refer to a question"
                ))
            } else {
                match self.index.get(name).and_then(|&i| self.questions.get(i)) {
                    None => Some(format!(
                        "unknown question `${{{name}}}`; check the spelling against the survey names"
                    )),
                    Some(q) if q.qtype == QuestionType::Note => Some(format!(
                        "`${{{name}}}` is a note, which has no answer; refer to a question"
                    )),
                    Some(_) => None,
                }
            };
            if let Some(message) = problem {
                self.row_err(row, field, message);
                ok = false;
            }
        }
        ok.then_some(expr)
    }

    pub(super) fn subject_field(&mut self, s: &Settings) {
        let Some(name) = s.subject_field.as_deref() else {
            return;
        };
        let problem = match self.index.get(name).and_then(|&i| self.questions.get(i)) {
            None => format!(
                "subject_field `{name}` is not a question of this survey; name the question that identifies the respondent"
            ),
            Some(q) if q.qtype == QuestionType::Note => {
                format!("subject_field `{name}` is a note, which has no answer; name a question")
            }
            Some(_) => return,
        };
        self.err(Sheet::Settings, None, "subject_field", problem);
    }
}

/// The `required` cell as a bool, or the text that is not one.
fn required_value(r: &SurveyRow) -> Result<bool, String> {
    match &r.required {
        None => Ok(false),
        Some(Required::Bool(b)) => Ok(*b),
        Some(Required::Text(t)) => match t.trim().to_ascii_lowercase().as_str() {
            "yes" | "true" => Ok(true),
            "no" | "false" | "" => Ok(false),
            _ => Err(t.clone()),
        },
    }
}
