//! Checking a definition row by row, collecting every problem instead of stopping at the
//! first, so a coordinator can fix a whole form in one round. The rules are XLSForm's as
//! pyxform applies them; where fieldsync is stricter (an expression it cannot evaluate, a
//! name its answers could not be keyed by) the message says so.

use std::collections::{BTreeMap, HashMap};

use super::{
    Choice, DefaultValue, DefinitionError, DefinitionErrors, FormSettings, Group, Question,
    Requirement, Sheet, Survey, SurveyDefinition, Text,
};
use crate::survey::sheet::{Row, plain_quotes};
use crate::survey::types::{ChoiceSource, MetaKind, QuestionType, RowType, parse_type};
use crate::survey::validate;
use crate::survey::xpath::XPath;

/// Builds the checked survey, or every problem with the definition.
pub(super) fn build(def: SurveyDefinition) -> Result<Survey, DefinitionErrors> {
    let mut b = Builder::default();
    b.settings(&def.settings);
    b.choices(&def.choices, Sheet::Choices);
    b.external_choices(&def.external_choices);
    let pending = b.rows(&def.survey);
    b.expressions(&def.settings, &def.survey, pending);
    b.subject_field();
    b.errors.sort_by_key(|e| (e.sheet, e.row));
    if !b.errors.is_empty() {
        return Err(DefinitionErrors(b.errors));
    }
    let languages = b.languages(&def);
    Ok(Survey {
        definition: def,
        settings: b.settings,
        questions: b.questions,
        index: b.index,
        groups: b.groups,
        group_order: b.group_order,
        choices: b.choices,
        external_choices: b.external,
        languages,
        warnings: b.warnings,
        secondary: Default::default(),
    })
}

/// A row whose expressions are checked once every name is known.
struct Pending {
    row_index: usize,
    /// `Some(index)` for a question, `None` for a group or repeat.
    question: Option<usize>,
    name: String,
}

#[derive(Default)]
struct Builder {
    errors: Vec<DefinitionError>,
    warnings: Vec<DefinitionError>,
    settings: FormSettings,
    questions: Vec<Question>,
    index: HashMap<String, usize>,
    groups: HashMap<String, Group>,
    group_order: Vec<String>,
    choices: BTreeMap<String, Vec<Choice>>,
    external: BTreeMap<String, Vec<Choice>>,
    /// Every name on the survey sheet and its rows, for references.
    names: HashMap<String, Vec<usize>>,
    /// Names of rows refused for their type, so a reference to one says so.
    refused: HashMap<String, usize>,
}

/// XLSForm's yes/no cells.
pub(crate) fn yes_no(cell: &str) -> Option<bool> {
    match cell.trim() {
        "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "true()" | "1" => Some(true),
        "no" | "No" | "NO" | "false" | "False" | "FALSE" | "false()" | "0" => Some(false),
        _ => None,
    }
}

/// Whether `name` is an XML name, as XLSForm requires of every question, group and choice
/// column: a letter or `_` first, then letters, digits, `_`, `-` and `.`.
pub(crate) fn is_xml_name(name: &str) -> bool {
    let mut chars = name.chars();
    let start = |c: char| c == '_' || c.is_alphabetic();
    let rest = |c: char| start(c) || c.is_numeric() || matches!(c, '-' | '.' | ':' | '\u{b7}');
    chars.next().is_some_and(start) && chars.all(rest)
}

fn text_of(row: &Row, column: &str, default_language: Option<&str>) -> Text {
    let mut t = Text::default();
    for (lang, value) in row.variants(column) {
        match lang {
            None => t.default = Some(value.to_owned()),
            Some(l) => {
                t.translations.insert(l.to_owned(), value.to_owned());
            }
        }
    }
    // The default language's column stands in for the unsuffixed one.
    if t.default.is_none()
        && let Some(d) = default_language.and_then(|l| t.translations.get(l))
    {
        t.default = Some(d.clone());
    }
    t
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

    fn row_err(&mut self, row: &Row, field: &str, message: String) {
        self.err(Sheet::Survey, Some(row.number), field, message);
    }

    fn warn(&mut self, sheet: Sheet, row: Option<usize>, field: &str, message: String) {
        self.warnings.push(DefinitionError {
            sheet,
            row,
            field: Some(field.to_owned()),
            message,
        });
    }

    fn default_language(&self) -> Option<&str> {
        self.settings.default_language.as_deref()
    }

    fn settings(&mut self, row: &Row) {
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
    fn read_choices(&mut self, rows: &[Row], sheet: Sheet) -> BTreeMap<String, Vec<Choice>> {
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

    fn choices(&mut self, rows: &[Row], sheet: Sheet) {
        self.choices = self.read_choices(rows, sheet);
    }

    fn external_choices(&mut self, rows: &[Row]) {
        self.external = self.read_choices(rows, Sheet::ExternalChoices);
    }

    /// Structure: types, names, groups and repeats, per-type column rules. Returns the rows
    /// whose expressions still need checking.
    fn rows(&mut self, rows: &[Row]) -> Vec<Pending> {
        let mut pending = Vec::new();
        // Open groups and repeats: (name, is_repeat, row).
        let mut stack: Vec<(String, bool, usize)> = Vec::new();
        // Names per scope (the enclosing group or repeat), as XLSForm requires.
        let mut scope_names: Vec<HashMap<String, usize>> = vec![HashMap::new()];
        let mut repeat_names: HashMap<String, usize> = HashMap::new();
        for (i, r) in rows.iter().enumerate() {
            if r.is_blank() {
                continue;
            }
            if r.get("disabled").and_then(yes_no) == Some(true) {
                continue;
            }
            let Some(type_cell) = r.get("type") else {
                if r.get("name").is_none() && r.get("label").is_none() {
                    continue; // a comment row
                }
                self.row_err(
                    r,
                    "type",
                    "row has a name or label but no type; give it a type such as text".into(),
                );
                continue;
            };
            let row_type = match parse_type(&plain_quotes(type_cell)) {
                Ok(t) => t,
                Err(e) => {
                    self.row_err(r, "type", e.to_string());
                    if let Some(name) = r.get("name") {
                        self.refused.insert(name.to_owned(), r.number);
                    }
                    continue;
                }
            };
            match row_type {
                RowType::EndGroup | RowType::EndRepeat => {
                    let repeat = row_type == RowType::EndRepeat;
                    let what = if repeat { "end_repeat" } else { "end_group" };
                    match stack.last() {
                        Some((_, open_repeat, _)) if *open_repeat == repeat => {
                            stack.pop();
                            scope_names.pop();
                        }
                        Some((open, open_repeat, open_row)) => {
                            let open_kind = if *open_repeat { "repeat" } else { "group" };
                            let msg = format!(
                                "{what} closes {open_kind} `{open}` (row {open_row}); close \
                                 the innermost {open_kind} first"
                            );
                            self.row_err(r, "type", msg);
                        }
                        None => self.row_err(
                            r,
                            "type",
                            format!(
                                "{what} without a matching begin; remove it or add the begin row"
                            ),
                        ),
                    }
                    continue;
                }
                RowType::External { .. } => {
                    // Declares a file attached to the form; its name is the instance id.
                    if r.get("name").is_none() {
                        self.row_err(r, "name", "missing name; name the attached file (without its extension)".into());
                    }
                    continue;
                }
                _ => {}
            }
            let qtype = match &row_type {
                RowType::Question(q) => Some(q.clone()),
                _ => None,
            };
            let name = match (r.get("name"), &qtype) {
                (Some(n), Some(QuestionType::Meta(MetaKind::Audit))) if n != "audit" => {
                    self.row_err(r, "name", "an audit row is always named `audit`; leave the name empty".into());
                    continue;
                }
                (_, Some(QuestionType::Meta(MetaKind::Audit))) => "audit".to_owned(),
                (Some(n), _) => n.to_owned(),
                (None, Some(QuestionType::Note)) => format!("generated_note_name_{}", r.number),
                (None, _) => {
                    self.row_err(r, "name", "missing name; every question, group and repeat needs a name".into());
                    continue;
                }
            };
            let is_begin = matches!(row_type, RowType::BeginGroup | RowType::BeginRepeat);
            let open = |stack: &mut Vec<(String, bool, usize)>, scopes: &mut Vec<HashMap<String, usize>>| {
                if is_begin {
                    stack.push((name.clone(), row_type == RowType::BeginRepeat, r.number));
                    scopes.push(HashMap::new());
                }
            };
            if matches!(name.as_str(), "_order" | "_id") && stack.iter().any(|(_, rep, _)| *rep) {
                self.row_err(r, "name", format!("`{name}` is reserved inside repeats (fieldsync stores repeat entries with it); rename the question"));
                open(&mut stack, &mut scope_names);
                continue;
            }
            if !is_xml_name(&name) {
                self.row_err(
                    r,
                    "name",
                    format!(
                        "bad name `{name}`; start with a letter or `_` and use only letters, \
                         digits, `_`, `-` and `.`"
                    ),
                );
                open(&mut stack, &mut scope_names);
                continue;
            }
            let scope = scope_names.last_mut().expect("the form's scope is never popped");
            if let Some(first) = scope.get(&name) {
                let msg = format!(
                    "the name `{name}` is already used on row {first} in the same group; names \
                     must be unique within their group"
                );
                self.row_err(r, "name", msg);
                open(&mut stack, &mut scope_names);
                continue;
            }
            scope.insert(name.clone(), r.number);
            self.names.entry(name.clone()).or_default().push(r.number);
            let parents: Vec<String> = stack.iter().map(|(n, _, _)| n.clone()).collect();
            let label = text_of(r, "label", self.default_language());
            let hint = text_of(r, "hint", self.default_language());
            if matches!(row_type, RowType::BeginGroup | RowType::BeginRepeat) {
                let repeat = row_type == RowType::BeginRepeat;
                if repeat {
                    if let Some(first) = repeat_names.insert(name.clone(), r.number) {
                        self.row_err(r, "name", format!("a repeat named `{name}` is already on row {first}; repeat names must be unique in the form"));
                    }
                    if label.is_empty() {
                        self.warn(Sheet::Survey, Some(r.number), "label", format!("repeat `{name}` has no label"));
                    }
                } else if r.get("repeat_count").is_some() {
                    self.row_err(r, "repeat_count", "repeat_count belongs on a begin_repeat row".into());
                }
                if let Some(first) = self.groups.get(&name).map(|g| g.row) {
                    let msg = format!("a group named `{name}` is already on row {first}; fieldsync keeps groups by name, so rename one of them");
                    self.row_err(r, "name", msg);
                    stack.push((name, repeat, r.number));
                    scope_names.push(HashMap::new());
                    continue;
                }
                self.groups.insert(
                    name.clone(),
                    Group {
                        name: name.clone(),
                        label,
                        hint,
                        relevant: None,
                        parents,
                        repeat,
                        repeat_count: None,
                        appearance: words(r.get("appearance")),
                        row: r.number,
                    },
                );
                self.group_order.push(name.clone());
                pending.push(Pending {
                    row_index: i,
                    question: None,
                    name: name.clone(),
                });
                stack.push((name, repeat, r.number));
                scope_names.push(HashMap::new());
                continue;
            }
            let Some(qtype) = qtype else { continue };
            // Answers are stored by name, so two questions cannot share one even in different
            // groups (XLSForm allows that; it keys by path).
            if let Some(&first) = self.index.get(&name) {
                let first_row = self.questions[first].row;
                let msg = format!("`{name}` is also the name of the question on row {first_row}; fieldsync stores answers by name, so rename one of them");
                self.row_err(r, "name", msg);
                continue;
            }
            // A row with a calculation and nothing to show is a calculation of that type
            // (pyxform's "typed calculate"), not a question to ask.
            let computed = r.get("calculation").is_some() && label.is_empty() && hint.is_empty();
            let shown = (qtype.is_asked() && !computed) || qtype == QuestionType::Note;
            let has_media = r.cells.keys().any(|k| k.starts_with("media::"));
            if shown && label.is_empty() && hint.is_empty() && !has_media {
                self.row_err(r, "label", format!("`{name}` has no label or hint; give it the text the enumerator sees"));
            }
            self.question_rules(r, &qtype, &name);
            let repeat = stack
                .iter()
                .rev()
                .find(|(_, is_repeat, _)| *is_repeat)
                .map(|(n, _, _)| n.clone());
            let media = ["image", "big-image", "audio", "video"]
                .into_iter()
                .filter_map(|m| {
                    let t = text_of(r, &format!("media::{m}"), self.default_language());
                    (!t.is_empty()).then(|| (m.to_owned(), t))
                })
                .collect();
            let idx = self.questions.len();
            self.index.entry(name.clone()).or_insert(idx);
            self.questions.push(Question {
                name: name.clone(),
                label,
                hint,
                guidance_hint: text_of(r, "guidance_hint", self.default_language()),
                media,
                qtype,
                required: Requirement::Never,
                required_message: text_of(r, "required_message", self.default_language()),
                group: parents,
                repeat,
                default: None,
                constraint_message: text_of(r, "constraint_message", self.default_language()),
                relevant: None,
                constraint: None,
                calculation: None,
                choice_filter: None,
                read_only: false,
                trigger: Vec::new(),
                appearance: words(r.get("appearance")),
                parameters: BTreeMap::new(),
                piped: Vec::new(),
                row: r.number,
            });
            pending.push(Pending {
                row_index: i,
                question: Some(idx),
                name: name.clone(),
            });
            if self.questions[idx].qtype.select().is_some_and(|s| s.or_other) {
                self.or_other(idx, &name, &mut scope_names);
            }
        }
        for (name, repeat, row) in stack {
            let (kind, end) = if repeat {
                ("begin_repeat", "end_repeat")
            } else {
                ("begin_group", "end_group")
            };
            self.err(
                Sheet::Survey,
                Some(row),
                "type",
                format!("{kind} `{name}` is never closed; add an {end} row after its last question"),
            );
        }
        pending
    }

    /// The text question XLSForm adds after a select with `or_other`: `NAME_other`, asked when
    /// `other` is chosen.
    fn or_other(&mut self, idx: usize, name: &str, scope_names: &mut [HashMap<String, usize>]) {
        let other = format!("{name}_other");
        let select = self.questions[idx].clone();
        // The list gains an `other` choice, as XLSForm adds it (unless the list has one).
        if let Some(list) = select.qtype.list().and_then(|l| self.choices.get_mut(l))
            && !list.iter().any(|c| c.name == "other")
        {
            list.push(Choice {
                name: "other".into(),
                label: Text {
                    default: Some("Other".into()),
                    translations: BTreeMap::new(),
                },
                columns: BTreeMap::new(),
            });
        }
        if let Some(scope) = scope_names.last_mut() {
            if let Some(first) = scope.get(&other) {
                let msg = format!("the or_other answer of `{name}` is named `{other}`, which row {first} already uses; rename that row");
                self.err(Sheet::Survey, Some(select.row), "type", msg);
                return;
            }
            scope.insert(other.clone(), select.row);
        }
        let relevant = XPath::parse(&format!("selected(${{{name}}}, 'other')")).ok();
        self.names.entry(other.clone()).or_default().push(select.row);
        self.index.entry(other.clone()).or_insert(self.questions.len());
        self.questions.push(Question {
            name: other,
            label: Text {
                default: Some("Specify other.".into()),
                translations: BTreeMap::new(),
            },
            qtype: QuestionType::Text,
            relevant,
            appearance: Vec::new(),
            parameters: BTreeMap::new(),
            ..select
        });
    }

    /// Rules that depend on a question's type alone.
    fn question_rules(&mut self, r: &Row, qtype: &QuestionType, name: &str) {
        if let Some(cell) = r.get("parameters")
            && let Some(bad) = cell
                .split([' ', ',', ';'])
                .find(|p| !p.trim().is_empty() && !p.contains('='))
        {
            self.row_err(r, "parameters", format!("`{bad}` is not a parameter; write key=value pairs such as `start=0 end=10 step=1`"));
        }
        if let Some(s) = qtype.select()
            && let ChoiceSource::File(file) = &s.source
        {
            let id = file.rsplit_once('.').map_or(file.as_str(), |(stem, _)| stem);
            if self.choices.contains_key(id) {
                let msg = format!("the file `{file}` and the choice list `{id}` would both be instance `{id}`; rename the list or the file");
                self.row_err(r, "type", msg);
            }
        }
        if let Some(s) = qtype.select() {
            match &s.source {
                ChoiceSource::List(list) => {
                    let Some(choices) = self.choices.get(list) else {
                        let msg = if self.choices.is_empty() {
                            format!("there is no choices sheet, so list `{list}` does not exist; add a choices sheet with list_name, name and label columns")
                        } else {
                            format!("unknown choice list `{list}`; add rows with list_name `{list}` to the choices sheet")
                        };
                        self.row_err(r, "type", msg);
                        return;
                    };
                    if matches!(qtype, QuestionType::SelectMultiple(_))
                        && let Some(c) = choices.iter().find(|c| c.name.contains(' '))
                    {
                        let msg = format!("choice `{}` of list `{list}` has a space in its name, which select_multiple cannot hold (its answer separates choices with spaces); use `_` instead", c.name);
                        self.row_err(r, "type", msg);
                    }
                }
                ChoiceSource::External(list) => {
                    if !self.external.contains_key(list) {
                        let msg = format!("select_one_external needs list `{list}` on an external_choices sheet (columns list_name and name); add it");
                        self.row_err(r, "type", msg);
                    }
                }
                ChoiceSource::File(_) => {}
            }
            if s.or_other && r.get("choice_filter").is_some() {
                self.row_err(r, "choice_filter", "or_other cannot be used with a choice_filter; remove one of them".into());
            }
        }
        if let QuestionType::Rank(list) = qtype
            && !self.choices.contains_key(list)
        {
            self.row_err(r, "type", format!("unknown choice list `{list}`; add rows with list_name `{list}` to the choices sheet"));
        }
        if *qtype == QuestionType::Calculate
            && r.get("calculation").is_none()
            && r.get("default").is_none()
        {
            self.row_err(r, "calculation", format!("calculate `{name}` has no calculation; write the expression it computes"));
        }
        if *qtype == QuestionType::Range {
            self.range_parameters(r);
        }
        if matches!(
            qtype,
            QuestionType::Meta(MetaKind::SubscriberId | MetaKind::SimSerial)
        ) {
            self.warn(Sheet::Survey, Some(r.number), "type", format!("{qtype} is no longer available on most devices and stays empty"));
        }
    }

    fn range_parameters(&mut self, r: &Row) {
        let params = parameters(r.get("parameters"));
        let mut num = |key: &str, default: f64| match params.get(key) {
            None => Some(default),
            Some(v) => match v.parse::<f64>() {
                Ok(n) if n.is_finite() => Some(n),
                _ => {
                    self.row_err(r, "parameters", format!("range parameter {key}=`{v}` is not a number"));
                    None
                }
            },
        };
        let (start, end, step) = (num("start", 1.0), num("end", 10.0), num("step", 1.0));
        if let (Some(start), Some(end), Some(step)) = (start, end, step) {
            if step == 0.0 {
                self.row_err(r, "parameters", "range step cannot be 0".into());
            } else if step.abs() > (end - start).abs() {
                self.row_err(r, "parameters", format!("range step {step} is larger than the range {start} to {end}"));
            }
        }
    }

    /// Expressions, defaults and references, once every name is known.
    fn expressions(&mut self, settings: &Row, rows: &[Row], pending: Vec<Pending>) {
        if let Some(cell) = settings.get("instance_name") {
            self.settings.instance_name = match XPath::parse(cell) {
                Ok(x) => {
                    let unknown: Vec<String> = x
                        .references()
                        .into_iter()
                        .map(|re| re.name)
                        .filter(|n| !self.names.contains_key(n))
                        .collect();
                    for name in unknown {
                        let msg = format!("`${{{name}}}` refers to no question of this form; check the name");
                        self.err(Sheet::Settings, None, "instance_name", msg);
                    }
                    Some(x)
                }
                Err(e) => {
                    self.err(Sheet::Settings, None, "instance_name", e.to_string());
                    None
                }
            };
        }
        for p in pending {
            let r = &rows[p.row_index];
            let relevant = self.expression(r, "relevant");
            match p.question {
                None => {
                    let count = self.expression(r, "repeat_count");
                    if let Some(g) = self.groups.get_mut(&p.name) {
                        g.relevant = relevant;
                        g.repeat_count = count;
                    }
                    self.piping(r);
                }
                Some(qi) => {
                    let qtype = self.questions[qi].qtype.clone();
                    let constraint = self.expression(r, "constraint");
                    let calculation = self.expression(r, "calculation");
                    let choice_filter = self.choice_filter(r, &qtype);
                    let required = self.requirement(r, "required");
                    let read_only = !matches!(self.requirement(r, "read_only"), Requirement::Never);
                    let default = self.default_value(r, &qtype);
                    if let Some(DefaultValue::Value(v)) = &default {
                        let q = &self.questions[qi];
                        let list = q.qtype.list().and_then(|l| self.choices.get(l));
                        // XLSForm does not check static defaults; one that is not a valid
                        // answer is offered but not taken, so it is a warning here.
                        if let Err(msg) = validate::check_default(q, v, list.map(Vec::as_slice)) {
                            let msg = format!("default `{v}` is not a valid answer and will not be used: {msg}");
                            self.warn(Sheet::Survey, Some(r.number), "default", msg);
                        }
                    }
                    let trigger = self.trigger(r);
                    let piped = self.piping(r);
                    let q = &mut self.questions[qi];
                    q.relevant = relevant;
                    q.constraint = constraint;
                    q.calculation = calculation;
                    q.choice_filter = choice_filter;
                    q.required = required;
                    q.read_only = read_only;
                    q.default = default;
                    q.trigger = trigger;
                    q.piped = piped;
                    q.parameters = parameters(r.get("parameters"));
                }
            }
        }
    }

    /// A `choice_filter`, as the expression that selects the shown choices:
    /// `instance('LIST')/root/item[FILTER]`, so that inside the filter a bare name is a column
    /// of the choice and `${name}` an answer, as in ODK.
    fn choice_filter(&mut self, r: &Row, qtype: &QuestionType) -> Option<XPath> {
        let cell = r.get("choice_filter")?;
        let plain = self.parse_at(r, "choice_filter", cell)?;
        let Some(list) = qtype.list() else {
            // A select from a file or external list: kept as written, applied by whoever
            // holds the file.
            return Some(plain);
        };
        let composed = format!("instance('{list}')/root/item[{cell}]");
        match XPath::parse(&composed) {
            Ok(x) => Some(x),
            Err(e) => {
                self.row_err(r, "choice_filter", e.to_string());
                None
            }
        }
    }

    /// Parses the expression in `column` and checks its references.
    fn expression(&mut self, r: &Row, column: &str) -> Option<XPath> {
        let cell = r.get(column)?;
        self.parse_at(r, column, cell)
    }

    fn parse_at(&mut self, r: &Row, column: &str, cell: &str) -> Option<XPath> {
        match XPath::parse(cell) {
            Ok(x) => self.references_ok(r, column, &x).then_some(x),
            Err(e) => {
                self.row_err(r, column, format!("{e}"));
                None
            }
        }
    }

    /// Every `${name}` must name exactly one row of the survey sheet.
    fn references_ok(&mut self, r: &Row, column: &str, x: &XPath) -> bool {
        let mut ok = true;
        let mut seen: Vec<String> = Vec::new();
        for reference in x.references() {
            let name = reference.name.clone();
            if seen.contains(&name) {
                continue;
            }
            seen.push(name.clone());
            let rows = self.names.get(&name).cloned().unwrap_or_default();
            match rows.as_slice() {
                [] => {
                    let msg = match self.refused.get(&name) {
                        Some(row) => format!("`${{{name}}}` refers to row {row}, whose type is refused; fix that row first"),
                        None => format!("`${{{name}}}` refers to no question, group or repeat of this form; check the name against the survey sheet's name column"),
                    };
                    self.row_err(r, column, msg);
                    ok = false;
                }
                [_] => {}
                several => {
                    let list = several.iter().map(usize::to_string).collect::<Vec<_>>().join(", ");
                    let msg = format!("`${{{name}}}` is ambiguous: rows {list} are all named `{name}`; rename one so the reference names one row");
                    self.row_err(r, column, msg);
                    ok = false;
                }
            }
        }
        ok
    }

    /// `required` and `read_only`: yes/no, or an expression.
    fn requirement(&mut self, r: &Row, column: &str) -> Requirement {
        let Some(cell) = r.get(column) else {
            return Requirement::Never;
        };
        match yes_no(cell) {
            Some(true) => Requirement::Always,
            Some(false) => Requirement::Never,
            None => match self.parse_at(r, column, cell) {
                Some(x) => Requirement::When(x),
                None => Requirement::Never,
            },
        }
    }

    /// A static default, or a dynamic one (an expression) as XLSForm tells them apart.
    fn default_value(&mut self, r: &Row, qtype: &QuestionType) -> Option<DefaultValue> {
        let cell = r.get("default")?;
        if is_dynamic_default(cell, qtype) {
            return self.parse_at(r, "default", cell).map(DefaultValue::Dynamic);
        }
        Some(DefaultValue::Value(cell.to_owned()))
    }

    /// `trigger`: `${a}` or several, space-separated.
    fn trigger(&mut self, r: &Row) -> Vec<String> {
        let Some(cell) = r.get("trigger") else {
            return Vec::new();
        };
        match XPath::parse(cell) {
            Ok(x) if self.references_ok(r, "trigger", &x) => {
                x.references().into_iter().map(|re| re.name).collect()
            }
            Ok(_) => Vec::new(),
            Err(_) => {
                self.row_err(r, "trigger", format!("`{cell}` is not a list of references; write `${{question}}`, or several separated by spaces"));
                Vec::new()
            }
        }
    }

    /// `${name}` references in labels, hints and messages: each must name one row.
    fn piping(&mut self, r: &Row) -> Vec<String> {
        let mut out = Vec::new();
        let cells: Vec<(String, String)> = r
            .cells
            .iter()
            .filter(|(k, v)| {
                v.contains("${")
                    && ["label", "hint", "guidance_hint", "constraint_message", "required_message"]
                        .iter()
                        .any(|c| k.as_str() == *c || k.starts_with(&format!("{c}::")))
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (column, text) in cells {
            for name in piped_names(&text) {
                match name {
                    Ok(name) => {
                        let found = self.names.get(&name).map_or(0, Vec::len);
                        if found == 0 {
                            let msg = match self.refused.get(&name) {
                                Some(row) => format!("`${{{name}}}` in the text refers to row {row}, whose type is refused; fix that row first"),
                                None => format!("`${{{name}}}` in the text refers to no question of this form; check the name"),
                            };
                            self.row_err(r, &column, msg);
                        } else if found > 1 {
                            self.row_err(r, &column, format!("`${{{name}}}` in the text is ambiguous: several rows are named `{name}`"));
                        } else if !out.contains(&name) {
                            out.push(name);
                        }
                    }
                    Err(bad) => {
                        self.row_err(r, &column, format!("`{bad}` is not a reference; write `${{name}}` with a question name"));
                    }
                }
            }
        }
        out
    }

    fn subject_field(&mut self) {
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

    /// Languages used by any translatable column, the default first.
    fn languages(&self, def: &SurveyDefinition) -> Vec<String> {
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

/// Whether a default is an expression: XLSForm counts one with a function call, a reference,
/// a predicate, a union or arithmetic (a `-` in a date or location is not arithmetic).
fn is_dynamic_default(cell: &str, qtype: &QuestionType) -> bool {
    if cell.contains("${") || cell.contains('[') || cell.contains('|') {
        return true;
    }
    let dashes_are_text = matches!(
        qtype,
        QuestionType::Date
            | QuestionType::DateTime
            | QuestionType::Time
            | QuestionType::GeoPoint
            | QuestionType::GeoTrace
            | QuestionType::GeoShape
    );
    let function_call = cell.char_indices().filter(|(_, c)| *c == '(').any(|(i, _)| {
        cell[..i]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '-' || c == '_')
    });
    let chars: Vec<char> = cell.chars().collect();
    let minus = chars.iter().enumerate().any(|(i, &c)| {
        if c != '-' {
            return false;
        }
        let before = i.checked_sub(1).and_then(|j| chars.get(j));
        let after = chars.get(i + 1);
        let operand_end = |c: Option<&char>| c.is_some_and(|c| c.is_ascii_digit() || *c == ')');
        let spaced = before.is_some_and(|c| c.is_whitespace()) && after.is_some_and(|c| c.is_whitespace());
        spaced || (operand_end(before) && after.is_some_and(|c| c.is_ascii_digit() || *c == '('))
    });
    function_call
        || cell.split_whitespace().any(|w| w == "div" || w == "mod")
        || cell.contains('+')
        || cell.contains('*')
        || (minus && !dashes_are_text)
}

/// `${name}` references in label text; `Err` for a `${…}` that is not a name.
fn piped_names(text: &str) -> Vec<Result<String, String>> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end) => {
                let inner = after[..end].trim();
                let name = inner.strip_prefix("last-saved#").unwrap_or(inner);
                if is_xml_name(name) {
                    out.push(Ok(name.to_owned()));
                } else {
                    out.push(Err(format!("${{{inner}}}")));
                }
                rest = &after[end + 1..];
            }
            None => {
                out.push(Err(rest[start..].chars().take(20).collect()));
                break;
            }
        }
    }
    out
}

/// `appearance` words.
fn words(cell: Option<&str>) -> Vec<String> {
    cell.map(|c| c.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// `parameters`: `key=value` pairs separated by spaces, commas or semicolons.
pub(crate) fn parameters(cell: Option<&str>) -> BTreeMap<String, String> {
    let Some(cell) = cell else {
        return BTreeMap::new();
    };
    cell.split([' ', ',', ';'])
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            Some((k.trim().to_lowercase(), v.trim().to_owned()))
        })
        .filter(|(k, _)| !k.is_empty())
        .collect()
}
