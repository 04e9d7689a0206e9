//! Survey definitions: XLSForm's sheets (`settings`, `survey`, `choices`, and the optional
//! `external_choices` and `entities`) as rows of cells, whether read from a workbook or from
//! the native JSON, and the checked [`Survey`] built from them. A definition is checked
//! completely when loaded and every problem is reported with its sheet, row and column, so
//! that one round of fixes is enough and nothing broken ever reaches a device.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::{Deserialize, Serialize};

use super::sheet::Row;
use super::types::QuestionType;
use super::xpath::XPath;
use crate::answer::{Answer, Answers};

/// The raw definition, exactly as stored and published: XLSForm's sheets, each a list of rows
/// keyed by normalised column (see [`super::sheet`]), so that an XLSForm import is a 1:1
/// mapping and every column is kept, even those fieldsync does not use yet.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SurveyDefinition {
    /// The one row of the `settings` sheet.
    #[serde(default)]
    pub settings: Row,
    /// The `survey` sheet, in form order.
    pub survey: Vec<Row>,
    /// The `choices` sheet.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub choices: Vec<Row>,
    /// The `external_choices` sheet (`select_one_external`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub external_choices: Vec<Row>,
    /// The `entities` sheet, kept for forms that declare entities.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entities: Vec<Row>,
    /// Files attached to the form (CSV, GeoJSON, XML) by file name, as text: what
    /// `select_one_from_file`, `pulldata()` and `csv-external` read (see [`super::files`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub files: BTreeMap<String, String>,
    /// Images, audio and video shown with labels (`media::image` columns), by file name, in
    /// base64: they travel with the survey like `files`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub media: BTreeMap<String, String>,
}

/// Text in the form's languages: a label, a hint, a message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Text {
    /// The unsuffixed column, or the default language's.
    pub default: Option<String>,
    /// By language, as written in the column suffix (`Français (fr)`).
    pub translations: BTreeMap<String, String>,
}

impl Text {
    /// The text in `language`, falling back to the default language, then to any language.
    pub fn get(&self, language: Option<&str>) -> Option<&str> {
        language
            .and_then(|l| self.translations.get(l))
            .or(self.default.as_ref())
            .or_else(|| self.translations.values().next())
            .map(String::as_str)
    }

    /// The text in the default language (or any), empty when there is none.
    pub fn text(&self) -> &str {
        self.get(None).unwrap_or_default()
    }

    pub fn is_empty(&self) -> bool {
        self.default.is_none() && self.translations.is_empty()
    }
}

/// When a question must be answered.
#[derive(Debug, Clone)]
pub enum Requirement {
    Never,
    Always,
    /// While this expression is true.
    When(XPath),
}

impl Requirement {
    /// Whether it can ever be required.
    pub fn is_possible(&self) -> bool {
        !matches!(self, Requirement::Never)
    }
}

/// A `default` cell.
#[derive(Debug, Clone)]
pub enum DefaultValue {
    /// An answer written as the user would type it.
    Value(String),
    /// An expression evaluated when the response is created (`today()`, `${last-saved#x}`).
    Dynamic(XPath),
}

/// A checked question: everything that holds a value or is shown (notes, calculations and
/// metadata included), but not groups and repeats.
#[derive(Debug, Clone)]
pub struct Question {
    pub name: String,
    pub label: Text,
    pub hint: Text,
    pub guidance_hint: Text,
    /// `media::image`, `media::audio`, … by media kind.
    pub media: BTreeMap<String, Text>,
    pub qtype: QuestionType,
    pub required: Requirement,
    pub required_message: Text,
    /// Enclosing groups and repeats, outermost first.
    pub group: Vec<String>,
    /// The innermost enclosing repeat.
    pub repeat: Option<String>,
    pub default: Option<DefaultValue>,
    pub constraint_message: Text,
    pub relevant: Option<XPath>,
    pub constraint: Option<XPath>,
    pub calculation: Option<XPath>,
    /// For a select from a choice list: `instance('LIST')/root/item[FILTER]`, the items shown.
    pub choice_filter: Option<XPath>,
    /// `read_only`: never changed by the enumerator.
    pub read_only: bool,
    /// `identifying`: its answer names the respondent (or a person in a repeat entry), so
    /// data-subject requests find the response by it (see [`crate::subject`]).
    pub identifying: bool,
    /// Questions whose change recomputes this one (`trigger`).
    pub trigger: Vec<String>,
    /// `appearance` words.
    pub appearance: Vec<String>,
    /// `parameters` as `key=value` pairs.
    pub parameters: BTreeMap<String, String>,
    /// Expressions interpolated into the label and hint (`${name}` piping).
    pub piped: Vec<String>,
    /// The row in the `survey` sheet (spreadsheet row, or 1-based JSON index).
    pub row: usize,
}

impl Question {
    /// Whether the enumerator is asked it: not a note, a device value or a calculation (a
    /// question with a calculation and no label is one, as in XLSForm), and not read-only.
    pub fn is_asked(&self) -> bool {
        self.qtype.is_asked()
            && !self.read_only
            && !(self.calculation.is_some() && self.label.is_empty() && self.hint.is_empty())
    }

    /// The default written as an answer, if it is not an expression.
    pub fn static_default(&self) -> Option<&str> {
        match &self.default {
            Some(DefaultValue::Value(v)) => Some(v),
            _ => None,
        }
    }
}

/// A checked `begin_group` … `end_group` or `begin_repeat` … `end_repeat` block.
#[derive(Debug, Clone)]
pub struct Group {
    pub name: String,
    pub label: Text,
    pub hint: Text,
    pub relevant: Option<XPath>,
    /// Enclosing groups and repeats, outermost first.
    pub parents: Vec<String>,
    /// A repeat: instances are added by the enumerator or counted by `repeat_count`.
    pub repeat: bool,
    pub repeat_count: Option<XPath>,
    pub appearance: Vec<String>,
    /// The row of the begin row.
    pub row: usize,
}

/// One entry of a choice list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub name: String,
    pub label: Text,
    /// Other columns (what a `choice_filter` tests), as written.
    pub columns: BTreeMap<String, String>,
}

impl Choice {
    /// The label in the default language, or the name when it has none.
    pub fn display(&self) -> &str {
        self.label.get(None).unwrap_or(&self.name)
    }
}

/// Where a definition problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sheet {
    /// The file as a whole (syntax, top-level fields, sheets).
    Document,
    Settings,
    Survey,
    Choices,
    ExternalChoices,
    Entities,
}

impl fmt::Display for Sheet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Sheet::Settings => "settings",
            Sheet::Survey => "survey",
            Sheet::Choices => "choices",
            Sheet::ExternalChoices => "external_choices",
            Sheet::Entities => "entities",
            Sheet::Document => "document",
        })
    }
}

/// One problem in a survey definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefinitionError {
    pub sheet: Sheet,
    /// The row: the spreadsheet row for a workbook, the 1-based index in a JSON array.
    pub row: Option<usize>,
    /// The column.
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

/// The checked `settings` sheet.
#[derive(Debug, Clone, Default)]
pub struct FormSettings {
    pub form_id: String,
    pub form_title: Option<String>,
    pub version: Option<String>,
    pub default_language: Option<String>,
    pub instance_name: Option<XPath>,
    pub allow_choice_duplicates: bool,
    pub style: Option<String>,
    pub public_key: Option<String>,
    pub submission_url: Option<String>,
    /// The question that identifies the respondent, for data-subject requests.
    pub subject_field: Option<String>,
}

/// A checked survey: the definition plus its questions, groups and repeats, choice lists and
/// parsed expressions. Build it with [`Survey::parse_json`] or [`Survey::from_definition`].
#[derive(Debug, Clone)]
pub struct Survey {
    pub(super) definition: SurveyDefinition,
    pub(super) settings: FormSettings,
    pub(super) questions: Vec<Question>,
    pub(super) index: HashMap<String, usize>,
    pub(super) groups: HashMap<String, Group>,
    /// Groups and repeats in form order.
    pub(super) group_order: Vec<String>,
    pub(super) choices: BTreeMap<String, Vec<Choice>>,
    /// Lists of the `external_choices` sheet (`select_one_external`).
    pub(super) external_choices: BTreeMap<String, Vec<Choice>>,
    pub(super) languages: Vec<String>,
    pub(super) warnings: Vec<DefinitionError>,
    /// The attached files, parsed.
    pub(super) files: super::files::FormFiles,
    /// The choice lists as secondary instances, built on first use.
    pub(super) secondary: std::sync::OnceLock<std::sync::Arc<super::instance::Secondary>>,
}

impl Survey {
    /// Parses and checks a JSON definition, reporting every problem found.
    pub fn parse_json(text: &str) -> Result<Survey, DefinitionErrors> {
        let def = super::json::parse_definition(text)?;
        Survey::from_definition(def)
    }

    /// Checks a definition, reporting every problem found.
    pub fn from_definition(def: SurveyDefinition) -> Result<Survey, DefinitionErrors> {
        check::build(def)
    }

    /// The choice lists as the secondary instances expressions read.
    pub(super) fn secondary(&self) -> std::sync::Arc<super::instance::Secondary> {
        std::sync::Arc::clone(
            self.secondary
                .get_or_init(|| std::sync::Arc::new(super::instance::Secondary::build(self))),
        )
    }

    /// The raw definition, to store or publish.
    pub fn definition(&self) -> &SurveyDefinition {
        &self.definition
    }

    /// The definition as the native JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(&self.definition).unwrap_or_default()
    }

    /// The checked settings.
    pub fn settings(&self) -> &FormSettings {
        &self.settings
    }

    pub fn form_id(&self) -> &str {
        &self.settings.form_id
    }

    /// The form title, or the form id when it has none.
    pub fn title(&self) -> &str {
        self.settings
            .form_title
            .as_deref()
            .unwrap_or(self.form_id())
    }

    /// The author's version label.
    pub fn version(&self) -> Option<&str> {
        self.settings.version.as_deref()
    }

    /// The question identifying the respondent.
    pub fn subject_field(&self) -> Option<&str> {
        self.settings.subject_field.as_deref()
    }

    /// The questions whose answers identify a person: the subject field first, then every
    /// question marked `identifying`, in form order.
    pub fn identifying(&self) -> Vec<&Question> {
        let subject = self.subject_field().and_then(|n| self.question(n));
        subject
            .into_iter()
            .chain(
                self.questions
                    .iter()
                    .filter(|q| q.identifying && Some(q.name.as_str()) != self.subject_field()),
            )
            .collect()
    }

    /// The languages of the form's labels, default first.
    pub fn languages(&self) -> &[String] {
        &self.languages
    }

    /// What the check found worth saying that does not stop the form (as pyxform warns).
    pub fn warnings(&self) -> &[DefinitionError] {
        &self.warnings
    }

    /// Questions in form order (notes, calculations and metadata included; groups excluded).
    pub fn questions(&self) -> &[Question] {
        &self.questions
    }

    /// Every answer `q` has in `answers`: one at most, or one per entry of the repeats
    /// enclosing it (outermost first), in entry order.
    pub fn answers_of<'a>(&self, q: &Question, answers: &'a Answers) -> Vec<&'a Answer> {
        let repeats: Vec<&str> = q
            .group
            .iter()
            .filter(|g| self.group(g).is_some_and(|g| g.repeat))
            .map(String::as_str)
            .collect();
        let mut level = vec![answers];
        for repeat in repeats {
            level = level
                .into_iter()
                .flat_map(|a| {
                    a.get(repeat)
                        .and_then(Answer::as_repeat)
                        .unwrap_or_default()
                })
                .map(|entry| &entry.answers)
                .collect();
        }
        level.into_iter().filter_map(|a| a.get(&q.name)).collect()
    }

    pub fn question(&self, name: &str) -> Option<&Question> {
        self.index.get(name).and_then(|&i| self.questions.get(i))
    }

    /// Questions that hold a value (everything but notes): the columns of an export.
    pub fn answerable(&self) -> impl Iterator<Item = &Question> {
        self.questions.iter().filter(|q| q.qtype.holds_value())
    }

    pub fn choices(&self, list: &str) -> Option<&[Choice]> {
        self.choices.get(list).map(Vec::as_slice)
    }

    /// The choices a select question offers before any filter: its list's, or its file's
    /// when the form was published with that file.
    pub fn choices_of(&self, q: &Question) -> Option<&[Choice]> {
        match q.qtype.select().map(|s| &s.source) {
            Some(super::types::ChoiceSource::File(file)) => {
                self.files.choices.get(file).map(Vec::as_slice)
            }
            _ => q.qtype.list().and_then(|l| self.choices(l)),
        }
    }

    /// A group or repeat by name.
    pub fn group(&self, name: &str) -> Option<&Group> {
        self.groups.get(name)
    }

    /// Groups and repeats in form order.
    pub fn groups(&self) -> impl Iterator<Item = &Group> {
        self.group_order.iter().filter_map(|n| self.groups.get(n))
    }
}

mod check;
#[cfg(test)]
mod tests;
