//! Survey definitions: the XLSForm-shaped JSON a coordinator writes (`settings`, `survey` and
//! `choices` sheets) and the checked [`Survey`] built from it. A definition is checked
//! completely when loaded and every problem is reported with its sheet, row and field, so that
//! one round of fixes is enough and nothing broken ever reaches a device.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::{Deserialize, Serialize};

use super::expr::Expr;

/// The raw definition, exactly as stored and published; it mirrors XLSForm's three sheets so
/// that an XLSForm import is a 1:1 mapping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SurveyDefinition {
    /// The `settings` sheet.
    pub settings: Settings,
    /// The `survey` sheet, in form order.
    pub survey: Vec<SurveyRow>,
    /// The `choices` sheet.
    #[serde(default)]
    pub choices: Vec<ChoiceRow>,
}

/// The `settings` sheet.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Stable identifier shared by every version of the form.
    #[serde(default)]
    pub form_id: String,
    /// Human title; the form id stands in when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub form_title: Option<String>,
    /// The author's label for this version (free text; ordering is the server's business).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The question that identifies the respondent, used to answer data-subject requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_field: Option<String>,
}

/// One row of the `survey` sheet.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SurveyRow {
    /// `text`, `integer`, `select_one LIST`, `begin_group`, …
    #[serde(rename = "type")]
    pub row_type: String,
    /// The question or group name (optional on `end_group`).
    #[serde(default)]
    pub name: String,
    /// Text shown to the enumerator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Extra guidance shown under the label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// A bool or XLSForm's `yes`/`no`/`true`/`false`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required: Option<Required>,
    /// When the question (or group) is asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relevant: Option<String>,
    /// A condition on the answer `.`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constraint: Option<String>,
    /// Shown when the constraint fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constraint_message: Option<String>,
    /// Pre-filled answer, written as the user would type it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
}

/// The `required` cell: JSON bool or XLSForm text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Required {
    /// `true` / `false`.
    Bool(bool),
    /// `"yes"`, `"no"`, `"true"`, `"false"` (any case) or empty.
    Text(String),
}

/// One row of the `choices` sheet.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChoiceRow {
    /// The list this choice belongs to (`select_one LIST`).
    #[serde(default)]
    pub list_name: String,
    /// The value stored in answers.
    #[serde(default)]
    pub name: String,
    /// Text shown to the enumerator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// What kind of answer a question takes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum QuestionType {
    Text,
    Integer,
    Decimal,
    /// One choice from the named list.
    SelectOne(String),
    /// Any number of choices from the named list, space-separated.
    SelectMultiple(String),
    /// `YYYY-MM-DD`.
    Date,
    /// RFC 3339.
    DateTime,
    /// `lat lon [alt [accuracy]]`.
    GeoPoint,
    /// Text shown to the enumerator; takes no answer.
    Note,
}

impl QuestionType {
    /// The choice list of a select question.
    pub fn list(&self) -> Option<&str> {
        match self {
            QuestionType::SelectOne(l) | QuestionType::SelectMultiple(l) => Some(l),
            _ => None,
        }
    }
}

impl fmt::Display for QuestionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QuestionType::Text => f.write_str("text"),
            QuestionType::Integer => f.write_str("integer"),
            QuestionType::Decimal => f.write_str("decimal"),
            QuestionType::SelectOne(l) => write!(f, "select_one {l}"),
            QuestionType::SelectMultiple(l) => write!(f, "select_multiple {l}"),
            QuestionType::Date => f.write_str("date"),
            QuestionType::DateTime => f.write_str("datetime"),
            QuestionType::GeoPoint => f.write_str("geopoint"),
            QuestionType::Note => f.write_str("note"),
        }
    }
}

/// A checked question (groups are not questions; notes are, though they take no answer).
#[derive(Debug, Clone)]
pub struct Question {
    pub name: String,
    pub label: String,
    pub hint: Option<String>,
    pub qtype: QuestionType,
    pub required: bool,
    /// Enclosing group names, outermost first.
    pub group: Vec<String>,
    /// Pre-filled answer as typed; valid for the question's type.
    pub default: Option<String>,
    pub constraint_message: Option<String>,
    pub relevant: Option<Expr>,
    pub constraint: Option<Expr>,
    /// 1-based row in the `survey` sheet.
    pub row: usize,
}

/// A checked `begin_group` … `end_group` block.
#[derive(Debug, Clone)]
pub struct Group {
    pub name: String,
    pub label: Option<String>,
    pub relevant: Option<Expr>,
    /// Enclosing group names, outermost first.
    pub parents: Vec<String>,
    /// 1-based row of `begin_group` in the `survey` sheet.
    pub row: usize,
}

/// One entry of a choice list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub name: String,
    pub label: String,
}

/// Where a definition problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sheet {
    /// The JSON document as a whole (syntax, top-level fields).
    Document,
    Settings,
    Survey,
    Choices,
}

impl fmt::Display for Sheet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Sheet::Settings => "settings",
            Sheet::Survey => "survey",
            Sheet::Choices => "choices",
            Sheet::Document => "document",
        })
    }
}

/// One problem in a survey definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefinitionError {
    pub sheet: Sheet,
    /// 1-based index in the sheet's array.
    pub row: Option<usize>,
    pub field: Option<String>,
    pub message: String,
}

impl std::error::Error for DefinitionError {}

impl fmt::Display for DefinitionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.sheet)?;
        if let Some(row) = self.row {
            write!(f, " row {row}")?;
        }
        if let Some(field) = &self.field {
            write!(f, " ({field})")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem found in a survey definition, in sheet order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefinitionErrors(pub Vec<DefinitionError>);

impl std::error::Error for DefinitionErrors {}

impl fmt::Display for DefinitionErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        let s = if n == 1 { "" } else { "s" };
        write!(
            f,
            "survey definition has {n} problem{s}; fix and load it again:"
        )?;
        for e in &self.0 {
            write!(f, "\n  {e}")?;
        }
        Ok(())
    }
}

/// A checked survey: the definition plus its questions, groups, choice lists and parsed
/// expressions. Build it with [`Survey::parse_json`] or [`Survey::from_definition`].
#[derive(Debug, Clone)]
pub struct Survey {
    pub(super) definition: SurveyDefinition,
    pub(super) questions: Vec<Question>,
    pub(super) index: HashMap<String, usize>,
    pub(super) groups: HashMap<String, Group>,
    pub(super) choices: BTreeMap<String, Vec<Choice>>,
}

impl Survey {
    /// Parses and checks a JSON definition, reporting every problem found.
    pub fn parse_json(text: &str) -> Result<Survey, DefinitionErrors> {
        let def = super::json::parse_definition(text)?;
        Survey::from_definition(def)
    }

    /// Checks a definition, reporting every problem found.
    pub fn from_definition(def: SurveyDefinition) -> Result<Survey, DefinitionErrors> {
        let mut b = check::Builder::default();
        b.settings(&def.settings);
        b.choices(&def.choices);
        let pending = b.rows(&def.survey);
        b.expressions_and_defaults(&def.survey, pending);
        b.subject_field(&def.settings);
        if !b.errors.is_empty() {
            // Row order reads like the sheet; the checks themselves run in several passes.
            b.errors.sort_by_key(|e| (e.sheet, e.row));
            return Err(DefinitionErrors(b.errors));
        }
        Ok(Survey {
            definition: def,
            questions: b.questions,
            index: b.index,
            groups: b.groups,
            choices: b.choices,
        })
    }

    /// The raw definition, to store or publish.
    pub fn definition(&self) -> &SurveyDefinition {
        &self.definition
    }

    pub fn form_id(&self) -> &str {
        &self.definition.settings.form_id
    }

    /// The form title, or the form id when it has none.
    pub fn title(&self) -> &str {
        self.definition
            .settings
            .form_title
            .as_deref()
            .unwrap_or(self.form_id())
    }

    /// The author's version label.
    pub fn version(&self) -> Option<&str> {
        self.definition.settings.version.as_deref()
    }

    /// The question identifying the respondent.
    pub fn subject_field(&self) -> Option<&str> {
        self.definition.settings.subject_field.as_deref()
    }

    /// Questions in form order (notes included, groups excluded).
    pub fn questions(&self) -> &[Question] {
        &self.questions
    }

    pub fn question(&self, name: &str) -> Option<&Question> {
        self.index.get(name).and_then(|&i| self.questions.get(i))
    }

    /// Questions that take an answer (everything but notes): the columns of an export.
    pub fn answerable(&self) -> impl Iterator<Item = &Question> {
        self.questions
            .iter()
            .filter(|q| q.qtype != QuestionType::Note)
    }

    pub fn choices(&self, list: &str) -> Option<&[Choice]> {
        self.choices.get(list).map(Vec::as_slice)
    }

    /// A group by name.
    pub fn group(&self, name: &str) -> Option<&Group> {
        self.groups.get(name)
    }
}

mod check;
#[cfg(test)]
mod tests;
