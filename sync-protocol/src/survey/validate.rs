//! Answer validation against a checked survey: types, choice lists, constraints, required and
//! relevance (inherited from groups). The same rules run on the device while the respondent
//! is still there and on the server after sync, so both sides agree on what a valid response
//! is. Expressions are evaluated by [`super::xpath`] over the response as a tree
//! ([`super::instance`]), as ODK evaluates them.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};

use super::definition::{Choice, Question, Requirement, Survey};
use super::instance::{Node, ResponseTree, node_value};
use super::types::{ChoiceSource, QuestionType};
use super::xpath::convert::{parse_date, parse_number, parse_time};
use super::xpath::{EvalContext, NodeValue, XPath};
use crate::answer::{Answer, Answers};

/// What validation needs from the caller; the crate reads no clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidationContext {
    /// The date `today()` returns.
    pub today: Date,
    /// The instant `now()` returns.
    pub now: OffsetDateTime,
}

impl ValidationContext {
    /// A context on `today`, at its midnight UTC.
    pub fn new(today: Date) -> Self {
        ValidationContext {
            today,
            now: today.midnight().assume_utc(),
        }
    }

    /// A context at the instant `now`.
    pub fn at(now: OffsetDateTime) -> Self {
        ValidationContext {
            today: now.date(),
            now,
        }
    }

    fn eval(&self, context: Node) -> EvalContext<Node> {
        EvalContext {
            context,
            now: self.now,
            random_seed: 0,
        }
    }
}

/// Why an answer (or a missing one) is not acceptable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValidationErrorKind {
    /// The value does not fit the question type (or is malformed, or out of range).
    WrongType,
    /// A relevant required question has no answer.
    Required,
    /// The question's constraint is false for this answer.
    Constraint,
    /// A select answer names a choice that is not in the question's list.
    NotInList,
    /// An answer to a question that is not relevant (itself or an enclosing group).
    NotRelevant,
    /// An answer keyed by a name that is not in the survey.
    UnknownQuestion,
    /// An answer to a note or a group, which take none.
    NotAnswerable,
}

impl fmt::Display for ValidationErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ValidationErrorKind::WrongType => "wrong_type",
            ValidationErrorKind::Required => "required",
            ValidationErrorKind::Constraint => "constraint",
            ValidationErrorKind::NotInList => "not_in_list",
            ValidationErrorKind::NotRelevant => "not_relevant",
            ValidationErrorKind::UnknownQuestion => "unknown_question",
            ValidationErrorKind::NotAnswerable => "not_answerable",
        })
    }
}

/// One problem with one answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{question}: {message}")]
pub struct ValidationError {
    pub question: String,
    pub kind: ValidationErrorKind,
    pub message: String,
}

impl ValidationError {
    fn new(question: &str, kind: ValidationErrorKind, message: String) -> Self {
        ValidationError {
            question: question.to_owned(),
            kind,
            message,
        }
    }
}

/// Relevance of every question, in form order: `None` when relevant, else why not.
type Relevance = Vec<Option<String>>;

impl Survey {
    /// Every problem with a set of answers, unknown answers first, then in form order.
    pub fn validate(&self, answers: &Answers, ctx: &ValidationContext) -> Vec<ValidationError> {
        let mut errors: Vec<ValidationError> = answers
            .keys()
            .filter(|name| self.question(name).is_none_or(|q| q.repeat.is_some()))
            .map(|name| self.not_a_question(name))
            .collect();
        let mut tree = ResponseTree::new(self, answers, None);
        let hidden = self.relevance(&mut tree, ctx);
        for (i, (q, why_hidden)) in self.questions.iter().zip(&hidden).enumerate() {
            if q.repeat.is_some() {
                continue;
            }
            let given = answers.get(&q.name).filter(|a| !is_blank(a));
            if !q.qtype.holds_value() {
                if given.is_some() {
                    errors.push(note_answered(q));
                }
                continue;
            }
            match (why_hidden, given) {
                (Some(why), Some(_)) => errors.push(ValidationError::new(
                    &q.name,
                    ValidationErrorKind::NotRelevant,
                    format!("answered although not relevant: {why}; remove the answer"),
                )),
                (None, None) if self.required_now(q, &tree, tree.context_of(i), ctx) => {
                    errors.push(required(q));
                }
                (None, Some(value)) => {
                    if let Err(e) = self.check_value(i, q, value, &mut tree, ctx) {
                        errors.push(e);
                    }
                }
                _ => {}
            }
        }
        errors
    }

    /// Whether `name` is asked given these answers, including every enclosing group. Unknown
    /// names are not relevant.
    pub fn is_relevant(&self, name: &str, answers: &Answers, ctx: &ValidationContext) -> bool {
        let mut tree = ResponseTree::new(self, answers, None);
        let hidden = self.relevance(&mut tree, ctx);
        match self.index.get(name) {
            Some(&i) => hidden.get(i).is_some_and(Option::is_none),
            None => {
                self.groups.contains_key(name) && self.group_relevant(name, &tree, ctx, &hidden)
            }
        }
    }

    /// Checks one answer as an interview would when it is entered: type, choice list and
    /// constraint (a blank answer only fails a required question). Relevance is not checked.
    pub fn check_answer(
        &self,
        name: &str,
        value: &Answer,
        answers: &Answers,
        ctx: &ValidationContext,
    ) -> Result<(), ValidationError> {
        let q = self.answerable_question(name)?;
        let i = self.index[name];
        let mut tree = ResponseTree::new(self, answers, None);
        let _ = self.relevance(&mut tree, ctx);
        if is_blank(value) {
            return if self.required_now(q, &tree, tree.context_of(i), ctx) {
                Err(required(q))
            } else {
                Ok(())
            };
        }
        self.check_value(i, q, value, &mut tree, ctx)
    }

    /// Whether a question is required right now (a `required` expression is evaluated).
    pub fn is_required(&self, name: &str, answers: &Answers, ctx: &ValidationContext) -> bool {
        let Some(&i) = self.index.get(name) else {
            return false;
        };
        let mut tree = ResponseTree::new(self, answers, None);
        let _ = self.relevance(&mut tree, ctx);
        self.required_now(&self.questions[i], &tree, tree.context_of(i), ctx)
    }

    /// Turns what a user typed (or a CSV cell) into an answer of the question's kind: a number
    /// for integer, decimal and range questions, trimmed text otherwise, select_multiple
    /// names joined by single spaces. Only numbers are checked here; call
    /// [`Survey::check_answer`] next.
    pub fn parse_input(&self, name: &str, input: &str) -> Result<Answer, ValidationError> {
        let q = self.answerable_question(name)?;
        let text = input.trim();
        let wrong =
            |message: String| ValidationError::new(name, ValidationErrorKind::WrongType, message);
        match &q.qtype {
            QuestionType::Integer => text.parse::<i64>().map(Answer::Integer).map_err(|_| {
                wrong(format!(
                    "`{text}` is not a whole number; type digits only, e.g. 42"
                ))
            }),
            QuestionType::Decimal | QuestionType::Range => {
                let n = parse_number(text.strip_prefix('+').unwrap_or(text));
                if n.is_finite() {
                    Ok(Answer::Decimal(n))
                } else if text.contains(',') {
                    Err(wrong(format!(
                        "`{text}` is not a number; use `.` as the decimal separator, e.g. 12.5"
                    )))
                } else {
                    Err(wrong(format!(
                        "`{text}` is not a number; type digits with an optional `.`, e.g. 12.5"
                    )))
                }
            }
            QuestionType::SelectMultiple(_) | QuestionType::Rank(_) => Ok(Answer::Text(
                text.split_whitespace().collect::<Vec<_>>().join(" "),
            )),
            _ => Ok(Answer::Text(text.to_owned())),
        }
    }

    fn answerable_question(&self, name: &str) -> Result<&Question, ValidationError> {
        match self.question(name) {
            None => Err(self.not_a_question(name)),
            Some(q) if q.repeat.is_some() => Err(self.not_a_question(name)),
            Some(q) if !q.qtype.holds_value() => Err(note_answered(q)),
            Some(q) => Ok(q),
        }
    }

    fn not_a_question(&self, name: &str) -> ValidationError {
        if let Some(g) = self.groups.get(name) {
            let what = if g.repeat { "repeat" } else { "group" };
            ValidationError::new(
                name,
                ValidationErrorKind::NotAnswerable,
                format!("`{name}` is a {what}, which takes no answer; remove it"),
            )
        } else if let Some(r) = self.question(name).and_then(|q| q.repeat.as_deref()) {
            ValidationError::new(
                name,
                ValidationErrorKind::UnknownQuestion,
                format!("`{name}` is inside repeat `{r}`; give it as part of a repeat instance"),
            )
        } else {
            ValidationError::new(
                name,
                ValidationErrorKind::UnknownQuestion,
                format!(
                    "no question `{name}` in survey `{}`; check the name or the survey version",
                    self.form_id()
                ),
            )
        }
    }

    fn required_now(
        &self,
        q: &Question,
        tree: &ResponseTree<'_>,
        at: Node,
        ctx: &ValidationContext,
    ) -> bool {
        match &q.required {
            Requirement::Never => false,
            Requirement::Always => true,
            Requirement::When(x) => x.evaluate_bool(tree, &ctx.eval(at)).unwrap_or(true),
        }
    }

    /// Type, choice list and constraint of a non-blank answer.
    fn check_value(
        &self,
        i: usize,
        q: &Question,
        value: &Answer,
        tree: &mut ResponseTree<'_>,
        ctx: &ValidationContext,
    ) -> Result<(), ValidationError> {
        let list = q.qtype.list().and_then(|l| self.choices(l));
        check_type(q, value, list)
            .map_err(|(kind, msg)| ValidationError::new(&q.name, kind, msg))?;
        let Some(c) = &q.constraint else {
            return Ok(());
        };
        // The answer being checked is `.`, whatever is stored.
        let at = tree.context_of(i);
        tree.set(at, node_value(&q.qtype, Some(value)));
        let verdict = c.evaluate_bool(&*tree, &ctx.eval(at));
        match verdict {
            Ok(true) => Ok(()),
            Ok(false) => {
                let message = match q.constraint_message.get(None) {
                    Some(m) => m.to_owned(),
                    None => format!("`{value}` does not satisfy the constraint `{}`", c.source()),
                };
                Err(ValidationError::new(
                    &q.name,
                    ValidationErrorKind::Constraint,
                    message,
                ))
            }
            Err(e) => Err(ValidationError::new(
                &q.name,
                ValidationErrorKind::Constraint,
                format!("the constraint `{}` could not be evaluated: {e}", c.source()),
            )),
        }
    }

    /// Per question (form order): `None` when relevant, otherwise why not. A question that is
    /// not relevant reads as unanswered for every later expression, as in ODK; so does
    /// everything in a group that is not.
    fn relevance(&self, tree: &mut ResponseTree<'_>, ctx: &ValidationContext) -> Relevance {
        let mut hidden: Relevance = Vec::with_capacity(self.questions.len());
        let mut groups: std::collections::HashMap<&str, Option<String>> = Default::default();
        for (i, q) in self.questions.iter().enumerate() {
            let mut why = None;
            for g in &q.group {
                if !groups.contains_key(g.as_str()) {
                    let parent_hidden = self.groups.get(g).and_then(|grp| {
                        grp.parents
                            .iter()
                            .find_map(|p| groups.get(p.as_str()).cloned().flatten())
                    });
                    let own = self
                        .groups
                        .get(g)
                        .and_then(|grp| grp.relevant.as_ref())
                        .and_then(|e| {
                            false_reason(e, tree, tree.group_node(g), ctx)
                                .map(|r| format!("group `{g}` is not relevant ({r})"))
                        });
                    groups.insert(g.as_str(), parent_hidden.or(own));
                }
                if why.is_none() {
                    why = groups.get(g.as_str()).cloned().flatten();
                }
            }
            if why.is_none()
                && let Some(e) = &q.relevant
            {
                why = false_reason(e, tree, tree.context_of(i), ctx);
            }
            if why.is_some() {
                tree.set(tree.context_of(i), NodeValue::Empty);
            }
            hidden.push(why);
        }
        hidden
    }

    fn group_relevant(
        &self,
        name: &str,
        tree: &ResponseTree<'_>,
        ctx: &ValidationContext,
        hidden: &Relevance,
    ) -> bool {
        let Some(group) = self.groups.get(name) else {
            return false;
        };
        // A group holding a relevant question is relevant; an empty one is evaluated.
        let first = self
            .questions
            .iter()
            .position(|q| q.group.iter().any(|g| g == name));
        if let Some(i) = first
            && hidden[i].is_none()
        {
            return true;
        }
        group
            .parents
            .iter()
            .chain(std::iter::once(&group.name))
            .all(|g| {
                self.groups
                    .get(g)
                    .and_then(|grp| grp.relevant.as_ref())
                    .is_none_or(|e| false_reason(e, tree, tree.group_node(g), ctx).is_none())
            })
    }
}

/// Why a relevance expression hides its question, or `None` when it is true. An expression
/// that cannot be evaluated hides nothing: the question is asked.
fn false_reason(
    e: &XPath,
    tree: &ResponseTree<'_>,
    at: Node,
    ctx: &ValidationContext,
) -> Option<String> {
    match e.evaluate_bool(tree, &ctx.eval(at)) {
        Ok(true) | Err(_) => None,
        Ok(false) => Some(format!("`{}` is false", e.source())),
    }
}

fn required(q: &Question) -> ValidationError {
    let message = match q.required_message.get(None) {
        Some(m) => m.to_owned(),
        None => format!("`{}` is required; answer it", q.label.text().trim()),
    };
    ValidationError::new(&q.name, ValidationErrorKind::Required, message)
}

fn note_answered(q: &Question) -> ValidationError {
    ValidationError::new(
        &q.name,
        ValidationErrorKind::NotAnswerable,
        format!("`{}` is a note, which takes no answer; remove it", q.name),
    )
}

fn is_blank(a: &Answer) -> bool {
    matches!(a, Answer::Text(s) if s.trim().is_empty())
}

/// RFC 3339, or ODK's dateTime without seconds' fraction or offset (read as UTC).
pub(crate) fn parse_datetime(s: &str) -> Option<OffsetDateTime> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(dt) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some(dt);
    }
    let (date, clock) = s.split_once('T')?;
    let date = parse_date(date)?;
    let (clock, _) = parse_time(clock)?;
    Some(date.with_time(clock).assume_utc())
}

/// Checks a static `default` the way a typed answer is checked (constraints aside).
pub(super) fn check_default(
    q: &Question,
    default: &str,
    list: Option<&[Choice]>,
) -> Result<(), String> {
    let value = match &q.qtype {
        QuestionType::Integer => Answer::Integer(
            default
                .trim()
                .parse()
                .map_err(|_| "expected a whole number".to_owned())?,
        ),
        QuestionType::Decimal | QuestionType::Range => {
            let n = parse_number(default);
            if !n.is_finite() {
                return Err("expected a number such as 12.5".into());
            }
            Answer::Decimal(n)
        }
        _ => Answer::Text(default.trim().to_owned()),
    };
    check_type(q, &value, list).map_err(|(_, m)| m)
}

fn describe(a: &Answer) -> String {
    match a {
        Answer::Integer(i) => format!("the number {i}"),
        Answer::Decimal(d) => format!("the number {d}"),
        Answer::Text(s) => format!("text {s:?}"),
    }
}

type TypeError = (ValidationErrorKind, String);

fn wrong_type(msg: String) -> TypeError {
    (ValidationErrorKind::WrongType, msg)
}

/// Whether `value` fits the question's type and choice list.
pub(super) fn check_type(
    q: &Question,
    value: &Answer,
    list: Option<&[Choice]>,
) -> Result<(), TypeError> {
    use QuestionType as Q;
    let text = match (&q.qtype, value) {
        (Q::Integer, Answer::Integer(_)) => return Ok(()),
        (Q::Integer, other) => {
            return Err(wrong_type(format!(
                "expected a whole number, got {}",
                describe(other)
            )));
        }
        (Q::Decimal | Q::Range, Answer::Integer(i)) => return check_range(q, *i as f64),
        (Q::Decimal | Q::Range, Answer::Decimal(d)) if d.is_finite() => {
            return check_range(q, *d);
        }
        (Q::Decimal | Q::Range, other) => {
            return Err(wrong_type(format!(
                "expected a number, got {}",
                describe(other)
            )));
        }
        (Q::Note, _) => {
            return Err((
                ValidationErrorKind::NotAnswerable,
                "a note takes no answer; remove it".into(),
            ));
        }
        (_, Answer::Text(s)) => s.as_str(),
        // Computed and device-filled values may be numbers.
        (Q::Calculate | Q::Hidden | Q::Meta(_), _) => return Ok(()),
        (t, other) => {
            return Err(wrong_type(format!(
                "expected {} as text, got {}",
                type_phrase(t),
                describe(other)
            )));
        }
    };
    let known = |name: &str| list.is_none_or(|l| l.iter().any(|c| c.name == name));
    let or_other = q.qtype.select().is_some_and(|s| s.or_other);
    let in_list = |name: &str| known(name) || (or_other && name == "other");
    let list_name = q.qtype.select().map_or("", |s| s.source.name());
    let from_list = q
        .qtype
        .select()
        .is_some_and(|s| matches!(s.source, ChoiceSource::List(_)));
    match &q.qtype {
        Q::SelectOne(_) if !from_list => Ok(()),
        Q::SelectOne(_) => {
            let text = text.trim();
            if in_list(text) {
                Ok(())
            } else if text.contains(char::is_whitespace) {
                Err(wrong_type(format!(
                    "select_one takes exactly one choice, got {text:?}"
                )))
            } else {
                Err((
                    ValidationErrorKind::NotInList,
                    format!("`{text}` is not a choice of list `{list_name}`"),
                ))
            }
        }
        Q::SelectMultiple(_) | Q::Rank(_) => {
            let names: Vec<&str> = text.split_whitespace().collect();
            if from_list || matches!(q.qtype, Q::Rank(_)) {
                let shown = q.qtype.list().unwrap_or(list_name);
                if let Some(bad) = names.iter().find(|n| !in_list(n)) {
                    return Err((
                        ValidationErrorKind::NotInList,
                        format!("`{bad}` is not a choice of list `{shown}`"),
                    ));
                }
            }
            let dup = names
                .iter()
                .enumerate()
                .find(|(i, n)| names[..*i].contains(n));
            if let Some((_, dup)) = dup {
                return Err(wrong_type(format!(
                    "choice `{dup}` is selected twice; list each choice once"
                )));
            }
            Ok(())
        }
        Q::Date => match parse_date(text) {
            Some(_) => Ok(()),
            None => Err(wrong_type(format!(
                "{text:?} is not a date; write YYYY-MM-DD, e.g. 2024-03-31"
            ))),
        },
        Q::DateTime => match parse_datetime(text) {
            Some(_) => Ok(()),
            None => Err(wrong_type(format!(
                "{text:?} is not a date and time; write RFC 3339, e.g. 2024-03-31T14:05:00+02:00"
            ))),
        },
        Q::Time => match parse_time(text) {
            Some(_) => Ok(()),
            None => Err(wrong_type(format!(
                "{text:?} is not a time; write HH:MM or HH:MM:SS, e.g. 14:05"
            ))),
        },
        Q::GeoPoint | Q::Meta(super::types::MetaKind::StartGeopoint) => {
            check_geopoint(text).map_err(wrong_type)
        }
        Q::GeoTrace | Q::GeoShape => {
            let points: Vec<&str> = text.split(';').map(str::trim).filter(|p| !p.is_empty()).collect();
            let min = if q.qtype == Q::GeoShape { 3 } else { 2 };
            if points.len() < min {
                return Err(wrong_type(format!(
                    "a {} needs at least {min} points separated by `;`",
                    q.qtype
                )));
            }
            points
                .iter()
                .try_for_each(|p| check_geopoint(p))
                .map_err(wrong_type)
        }
        Q::Acknowledge | Q::Trigger if text != "OK" => Err(wrong_type(format!(
            "{text:?} is not an acknowledgement; the answer is `OK`"
        ))),
        _ => Ok(()),
    }
}

/// A range answer within its bounds and on its steps.
fn check_range(q: &Question, n: f64) -> Result<(), TypeError> {
    if q.qtype != QuestionType::Range {
        return Ok(());
    }
    let p = |k: &str, d: f64| q.parameters.get(k).and_then(|v| v.parse().ok()).unwrap_or(d);
    let (start, end, step) = (p("start", 1.0), p("end", 10.0), p("step", 1.0));
    let (lo, hi) = if start <= end { (start, end) } else { (end, start) };
    if n < lo || n > hi {
        return Err(wrong_type(format!("{n} is outside the range {lo} to {hi}")));
    }
    let steps = (n - start) / step;
    if (steps - steps.round()).abs() > 1e-9 {
        return Err(wrong_type(format!(
            "{n} is not on a step of {step} from {start}"
        )));
    }
    Ok(())
}

fn type_phrase(t: &QuestionType) -> &'static str {
    match t {
        QuestionType::SelectOne(_) => "a choice name",
        QuestionType::SelectMultiple(_) | QuestionType::Rank(_) => "space-separated choice names",
        QuestionType::Date => "a date",
        QuestionType::DateTime => "a date and time",
        QuestionType::Time => "a time",
        QuestionType::GeoPoint | QuestionType::GeoTrace | QuestionType::GeoShape => "a location",
        _ => "text",
    }
}

fn check_geopoint(text: &str) -> Result<(), String> {
    const SHAPE: &str = "write `latitude longitude [altitude [accuracy]]` in decimal degrees and metres, e.g. `-1.2921 36.8219 1795 5`";
    let parts: Vec<f64> = text.split_whitespace().map(parse_number).collect();
    if !(2..=4).contains(&parts.len()) || parts.iter().any(|p| !p.is_finite()) {
        return Err(format!("{text:?} is not a location; {SHAPE}"));
    }
    let (lat, lon) = (parts[0], parts[1]);
    if !(-90.0..=90.0).contains(&lat) {
        return Err(format!(
            "latitude {lat} is out of range; it must be between -90 and 90"
        ));
    }
    if !(-180.0..=180.0).contains(&lon) {
        return Err(format!(
            "longitude {lon} is out of range; it must be between -180 and 180"
        ));
    }
    if parts.get(3).is_some_and(|acc| *acc < 0.0) {
        return Err("accuracy cannot be negative; it is a radius in metres".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests;
