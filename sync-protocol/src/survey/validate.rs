//! Answer validation against a checked survey: types, choice lists, constraints, required and
//! relevance. The same rules run on the device while the respondent is still there and on the
//! server after sync, so both sides agree on what a valid response is.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use time::Date;

use super::definition::{Choice, Question, QuestionType, Survey};
use super::expr::{Env, Expr, Value, parse_date, parse_datetime, parse_number};
use crate::answer::{Answer, Answers};

/// What validation needs from the caller; the crate reads no clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidationContext {
    /// The date `today()` returns.
    pub today: Date,
}

impl ValidationContext {
    pub fn new(today: Date) -> Self {
        ValidationContext { today }
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

impl Survey {
    /// Every problem with a set of answers, unknown answers first, then in form order.
    pub fn validate(&self, answers: &Answers, ctx: &ValidationContext) -> Vec<ValidationError> {
        let mut errors: Vec<ValidationError> = answers
            .keys()
            .filter(|name| self.question(name).is_none())
            .map(|name| self.not_a_question(name))
            .collect();
        let hidden = self.relevance(answers, ctx);
        for (q, why_hidden) in self.questions.iter().zip(&hidden) {
            let given = answers.get(&q.name).filter(|a| !is_blank(a));
            if q.qtype == QuestionType::Note {
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
                (None, None) if q.required => errors.push(required(q)),
                (None, Some(value)) => {
                    let env = AnswerEnv::new(self, answers, &hidden, ctx, Some((q, value)));
                    if let Err(e) = self.check_value(q, value, &env) {
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
        match self.index.get(name) {
            Some(&i) => self
                .relevance(answers, ctx)
                .get(i)
                .is_some_and(Option::is_none),
            None => self.groups.contains_key(name) && self.group_relevant(name, answers, ctx),
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
        if is_blank(value) {
            return if q.required { Err(required(q)) } else { Ok(()) };
        }
        let hidden = self.relevance(answers, ctx);
        let env = AnswerEnv::new(self, answers, &hidden, ctx, Some((q, value)));
        self.check_value(q, value, &env)
    }

    /// Turns what a user typed (or a CSV cell) into an answer of the question's kind: a number
    /// for integer and decimal questions, trimmed text otherwise, select_multiple names joined
    /// by single spaces. Only numbers are checked here; call [`Survey::check_answer`] next.
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
            QuestionType::Decimal => {
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
            QuestionType::SelectMultiple(_) => Ok(Answer::Text(
                text.split_whitespace().collect::<Vec<_>>().join(" "),
            )),
            _ => Ok(Answer::Text(text.to_owned())),
        }
    }

    fn answerable_question(&self, name: &str) -> Result<&Question, ValidationError> {
        match self.question(name) {
            None => Err(self.not_a_question(name)),
            Some(q) if q.qtype == QuestionType::Note => Err(note_answered(q)),
            Some(q) => Ok(q),
        }
    }

    fn not_a_question(&self, name: &str) -> ValidationError {
        if self.groups.contains_key(name) {
            ValidationError::new(
                name,
                ValidationErrorKind::NotAnswerable,
                format!("`{name}` is a group, which takes no answer; remove it"),
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

    /// Type, choice list and constraint of a non-blank answer.
    fn check_value(
        &self,
        q: &Question,
        value: &Answer,
        env: &AnswerEnv<'_>,
    ) -> Result<(), ValidationError> {
        let list = q.qtype.list().and_then(|l| self.choices(l));
        check_type(q, value, list)
            .map_err(|(kind, msg)| ValidationError::new(&q.name, kind, msg))?;
        if let Some(c) = &q.constraint
            && !c.is_true(env)
        {
            let message = match &q.constraint_message {
                Some(m) => m.clone(),
                None => format!("`{value}` does not satisfy the constraint `{}`", c.source()),
            };
            return Err(ValidationError::new(
                &q.name,
                ValidationErrorKind::Constraint,
                message,
            ));
        }
        Ok(())
    }

    /// Per question (form order): `None` when relevant, otherwise why not. A question that is
    /// not relevant counts as unanswered for every later expression, as in ODK.
    fn relevance(&self, answers: &Answers, ctx: &ValidationContext) -> Vec<Option<String>> {
        let mut hidden: Vec<Option<String>> = Vec::with_capacity(self.questions.len());
        let mut groups: HashMap<&str, Option<String>> = HashMap::new();
        for q in &self.questions {
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
                            let env = AnswerEnv::new(self, answers, &hidden, ctx, None);
                            false_reason(e, &env)
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
                let env = AnswerEnv::new(self, answers, &hidden, ctx, None);
                why = false_reason(e, &env);
            }
            hidden.push(why);
        }
        hidden
    }

    fn group_relevant(&self, name: &str, answers: &Answers, ctx: &ValidationContext) -> bool {
        // A group's relevance is read just before its first question; an empty group has no
        // questions, so evaluate it on the answers of every relevant question.
        let hidden = self.relevance(answers, ctx);
        let first = self
            .questions
            .iter()
            .position(|q| q.group.iter().any(|g| g == name));
        let before = first.map_or(hidden.as_slice(), |i| &hidden[..i]);
        let env = AnswerEnv::new(self, answers, before, ctx, None);
        let Some(group) = self.groups.get(name) else {
            return false;
        };
        group
            .parents
            .iter()
            .chain(std::iter::once(&group.name))
            .all(|g| {
                self.groups
                    .get(g)
                    .and_then(|grp| grp.relevant.as_ref())
                    .is_none_or(|e| e.is_true(&env))
            })
    }
}

fn false_reason(e: &Expr, env: &AnswerEnv<'_>) -> Option<String> {
    (!e.is_true(env)).then(|| format!("`{}` is false", e.source()))
}

fn required(q: &Question) -> ValidationError {
    ValidationError::new(
        &q.name,
        ValidationErrorKind::Required,
        format!("`{}` is required; answer it", q.label.trim()),
    )
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

/// Expression environment over a set of answers; questions found not relevant so far read as
/// unanswered.
struct AnswerEnv<'a> {
    survey: &'a Survey,
    answers: &'a Answers,
    hidden: &'a [Option<String>],
    today: Date,
    current: Option<(&'a Question, &'a Answer)>,
}

impl<'a> AnswerEnv<'a> {
    fn new(
        survey: &'a Survey,
        answers: &'a Answers,
        hidden: &'a [Option<String>],
        ctx: &ValidationContext,
        current: Option<(&'a Question, &'a Answer)>,
    ) -> Self {
        AnswerEnv {
            survey,
            answers,
            hidden,
            today: ctx.today,
            current,
        }
    }
}

impl Env for AnswerEnv<'_> {
    fn lookup(&self, name: &str) -> Value {
        let Some(&i) = self.survey.index.get(name) else {
            return Value::Str(String::new());
        };
        if self.hidden.get(i).is_some_and(Option::is_some) {
            return Value::Str(String::new());
        }
        // The answer being checked wins over the stored one, so `${self}` agrees with `.`.
        let current = self.current.filter(|(q, _)| q.name == name).map(|(_, a)| a);
        match (
            self.survey.questions.get(i),
            current.or_else(|| self.answers.get(name)),
        ) {
            (Some(q), Some(a)) => to_value(&q.qtype, a),
            _ => Value::Str(String::new()),
        }
    }

    fn current(&self) -> Value {
        match self.current {
            Some((q, a)) => to_value(&q.qtype, a),
            None => Value::Str(String::new()),
        }
    }

    fn today(&self) -> Date {
        self.today
    }
}

fn to_value(qtype: &QuestionType, a: &Answer) -> Value {
    match a {
        Answer::Integer(i) => Value::Num(*i as f64),
        Answer::Decimal(d) => Value::Num(*d),
        Answer::Text(s) => match qtype {
            QuestionType::Date => {
                parse_date(s.trim()).map_or_else(|| Value::Str(s.clone()), Value::Date)
            }
            _ => Value::Str(s.clone()),
        },
    }
}

/// Checks a `default` cell the way a typed answer is checked (constraints aside).
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
        QuestionType::Decimal => {
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
    let text = match (&q.qtype, value) {
        (QuestionType::Integer, Answer::Integer(_)) => return Ok(()),
        (QuestionType::Integer, other) => {
            return Err(wrong_type(format!(
                "expected a whole number, got {}",
                describe(other)
            )));
        }
        (QuestionType::Decimal, Answer::Integer(_)) => return Ok(()),
        (QuestionType::Decimal, Answer::Decimal(d)) if d.is_finite() => return Ok(()),
        (QuestionType::Decimal, other) => {
            return Err(wrong_type(format!(
                "expected a number, got {}",
                describe(other)
            )));
        }
        (QuestionType::Note, _) => {
            return Err((
                ValidationErrorKind::NotAnswerable,
                "a note takes no answer; remove it".into(),
            ));
        }
        (_, Answer::Text(s)) => s.as_str(),
        (t, other) => {
            return Err(wrong_type(format!(
                "expected {} as text, got {}",
                type_phrase(t),
                describe(other)
            )));
        }
    };
    let in_list = |name: &str| list.is_some_and(|l| l.iter().any(|c| c.name == name));
    let list_name = q.qtype.list().unwrap_or_default();
    match &q.qtype {
        QuestionType::SelectOne(_) => {
            let names: Vec<&str> = text.split_whitespace().collect();
            match names.as_slice() {
                [one] if in_list(one) => Ok(()),
                [one] => Err((
                    ValidationErrorKind::NotInList,
                    format!("`{one}` is not a choice of list `{list_name}`"),
                )),
                _ => Err(wrong_type(format!(
                    "select_one takes exactly one choice, got {text:?}"
                ))),
            }
        }
        QuestionType::SelectMultiple(_) => {
            let names: Vec<&str> = text.split_whitespace().collect();
            if let Some(bad) = names.iter().find(|n| !in_list(n)) {
                return Err((
                    ValidationErrorKind::NotInList,
                    format!("`{bad}` is not a choice of list `{list_name}`"),
                ));
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
        QuestionType::Date => match parse_date(text) {
            Some(_) => Ok(()),
            None => Err(wrong_type(format!(
                "{text:?} is not a date; write YYYY-MM-DD, e.g. 2024-03-31"
            ))),
        },
        QuestionType::DateTime => match parse_datetime(text) {
            Some(_) => Ok(()),
            None => Err(wrong_type(format!(
                "{text:?} is not a date and time; write RFC 3339, e.g. 2024-03-31T14:05:00+02:00"
            ))),
        },
        QuestionType::GeoPoint => check_geopoint(text).map_err(wrong_type),
        _ => Ok(()),
    }
}

fn type_phrase(t: &QuestionType) -> &'static str {
    match t {
        QuestionType::SelectOne(_) => "a choice name",
        QuestionType::SelectMultiple(_) => "space-separated choice names",
        QuestionType::Date => "a date",
        QuestionType::DateTime => "a date and time",
        QuestionType::GeoPoint => "a location",
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
