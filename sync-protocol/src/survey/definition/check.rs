//! Checking a definition row by row, collecting every problem instead of stopping at the
//! first, so a coordinator can fix a whole form in one round. The rules are XLSForm's as
//! pyxform applies them; where fieldsync is stricter (an expression it cannot evaluate, a
//! name its answers could not be keyed by) the message says so.

use std::collections::{BTreeMap, HashMap};

use super::{Choice, DefaultValue, DefinitionError, DefinitionErrors, FormSettings, Group};
use super::{Question, Requirement, Sheet, Survey, SurveyDefinition, Text};
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
    b.identifying(&def.survey);
    let files = b.files(&def);
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
        files,
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

    fn default_language(&self) -> Option<&str> {
        self.settings.default_language.as_deref()
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
                        self.row_err(
                            r,
                            "name",
                            "missing name; name the attached file (without its extension)".into(),
                        );
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
                    self.row_err(
                        r,
                        "name",
                        "an audit row is always named `audit`; leave the name empty".into(),
                    );
                    continue;
                }
                (_, Some(QuestionType::Meta(MetaKind::Audit))) => "audit".to_owned(),
                (Some(n), _) => n.to_owned(),
                (None, Some(QuestionType::Note)) => format!("generated_note_name_{}", r.number),
                (None, _) => {
                    self.row_err(
                        r,
                        "name",
                        "missing name; every question, group and repeat needs a name".into(),
                    );
                    continue;
                }
            };
            let is_begin = matches!(row_type, RowType::BeginGroup | RowType::BeginRepeat);
            let open = |stack: &mut Vec<(String, bool, usize)>,
                        scopes: &mut Vec<HashMap<String, usize>>| {
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
            let scope = scope_names
                .last_mut()
                .expect("the form's scope is never popped");
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
                        self.warn(
                            Sheet::Survey,
                            Some(r.number),
                            "label",
                            format!("repeat `{name}` has no label"),
                        );
                    }
                } else if r.get("repeat_count").is_some() {
                    self.row_err(
                        r,
                        "repeat_count",
                        "repeat_count belongs on a begin_repeat row".into(),
                    );
                }
                if let Some(first) = self.groups.get(&name).map(|g| g.row) {
                    let msg = format!(
                        "a group named `{name}` is already on row {first}; fieldsync keeps groups by name, so rename one of them"
                    );
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
                let msg = format!(
                    "`{name}` is also the name of the question on row {first_row}; fieldsync stores answers by name, so rename one of them"
                );
                self.row_err(r, "name", msg);
                continue;
            }
            // A row with a calculation and nothing to show is a calculation of that type
            // (pyxform's "typed calculate"), not a question to ask.
            let computed = r.get("calculation").is_some() && label.is_empty() && hint.is_empty();
            let shown = (qtype.is_asked() && !computed) || qtype == QuestionType::Note;
            let has_media = r.cells.keys().any(|k| k.starts_with("media::"));
            if shown && label.is_empty() && hint.is_empty() && !has_media {
                self.row_err(
                    r,
                    "label",
                    format!("`{name}` has no label or hint; give it the text the enumerator sees"),
                );
            }
            self.question_rules(r, &qtype, &name);
            self.media_parameters(r, &qtype);
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
                identifying: false,
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
            if self.questions[idx]
                .qtype
                .select()
                .is_some_and(|s| s.or_other)
            {
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
                format!(
                    "{kind} `{name}` is never closed; add an {end} row after its last question"
                ),
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
                let msg = format!(
                    "the or_other answer of `{name}` is named `{other}`, which row {first} already uses; rename that row"
                );
                self.err(Sheet::Survey, Some(select.row), "type", msg);
                return;
            }
            scope.insert(other.clone(), select.row);
        }
        let relevant = XPath::parse(&format!("selected(${{{name}}}, 'other')")).ok();
        self.names
            .entry(other.clone())
            .or_default()
            .push(select.row);
        self.index
            .entry(other.clone())
            .or_insert(self.questions.len());
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
            let id = file
                .rsplit_once('.')
                .map_or(file.as_str(), |(stem, _)| stem);
            if self.choices.contains_key(id) {
                let msg = format!(
                    "the file `{file}` and the choice list `{id}` would both be instance `{id}`; rename the list or the file"
                );
                self.row_err(r, "type", msg);
            }
        }
        if let Some(s) = qtype.select() {
            match &s.source {
                ChoiceSource::List(list) => {
                    let Some(choices) = self.choices.get(list) else {
                        let msg = if self.choices.is_empty() {
                            format!(
                                "there is no choices sheet, so list `{list}` does not exist; add a choices sheet with list_name, name and label columns"
                            )
                        } else {
                            format!(
                                "unknown choice list `{list}`; add rows with list_name `{list}` to the choices sheet"
                            )
                        };
                        self.row_err(r, "type", msg);
                        return;
                    };
                    if matches!(qtype, QuestionType::SelectMultiple(_))
                        && let Some(c) = choices.iter().find(|c| c.name.contains(' '))
                    {
                        let msg = format!(
                            "choice `{}` of list `{list}` has a space in its name, which select_multiple cannot hold (its answer separates choices with spaces); use `_` instead",
                            c.name
                        );
                        self.row_err(r, "type", msg);
                    }
                }
                ChoiceSource::External(list) => {
                    if !self.external.contains_key(list) {
                        let msg = format!(
                            "select_one_external needs list `{list}` on an external_choices sheet (columns list_name and name); add it"
                        );
                        self.row_err(r, "type", msg);
                    }
                }
                ChoiceSource::File(_) => {}
            }
            if s.or_other && r.get("choice_filter").is_some() {
                self.row_err(
                    r,
                    "choice_filter",
                    "or_other cannot be used with a choice_filter; remove one of them".into(),
                );
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
            self.row_err(
                r,
                "calculation",
                format!("calculate `{name}` has no calculation; write the expression it computes"),
            );
        }
        if *qtype == QuestionType::Range {
            self.range_parameters(r);
        }
        if matches!(
            qtype,
            QuestionType::Meta(MetaKind::SubscriberId | MetaKind::SimSerial)
        ) {
            self.warn(
                Sheet::Survey,
                Some(r.number),
                "type",
                format!("{qtype} is no longer available on most devices and stays empty"),
            );
        }
    }

    fn range_parameters(&mut self, r: &Row) {
        let params = parameters(r.get("parameters"));
        let mut num = |key: &str, default: f64| match params.get(key) {
            None => Some(default),
            Some(v) => match v.parse::<f64>() {
                Ok(n) if n.is_finite() => Some(n),
                _ => {
                    self.row_err(
                        r,
                        "parameters",
                        format!("range parameter {key}=`{v}` is not a number"),
                    );
                    None
                }
            },
        };
        let (start, end, step) = (num("start", 1.0), num("end", 10.0), num("step", 1.0));
        if let (Some(start), Some(end), Some(step)) = (start, end, step) {
            if step == 0.0 {
                self.row_err(r, "parameters", "range step cannot be 0".into());
            } else if step.abs() > (end - start).abs() {
                self.row_err(
                    r,
                    "parameters",
                    format!("range step {step} is larger than the range {start} to {end}"),
                );
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
                        let msg = format!(
                            "`${{{name}}}` refers to no question of this form; check the name"
                        );
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
                            let msg = format!(
                                "default `{v}` is not a valid answer and will not be used: {msg}"
                            );
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

mod expressions;
mod sheets;
