//! Answer validation against a checked survey: types, choice lists, constraints, required and
//! relevance (inherited from groups). The same rules run on the device while the respondent
//! is still there and on the server after sync, so both sides agree on what a valid response
//! is. Expressions are evaluated by [`super::xpath`] over the response as a tree
//! ([`super::instance`]), as ODK evaluates them.

use std::fmt;

use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};

use super::definition::{Choice, Question, Requirement, Survey};
use super::instance::{
    Location, Node, ResponseTree, Role, answers_at, answers_at_mut, location_prefix, node_value,
};
use super::types::{ChoiceSource, QuestionType};
use super::xpath::Instance;
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

/// Per node of a [`ResponseTree`]: `None` when relevant, else why not.
type Relevance = Vec<Option<String>>;

/// A question's place in a response: the repeat instances above it (outermost first, as
/// repeat name and 0-based index) and its name. Top-level questions have no instances.
#[derive(Debug, Clone, Copy)]
pub struct At<'x> {
    pub instances: &'x [(String, usize)],
    pub question: &'x str,
}

impl<'x> At<'x> {
    /// A question outside any repeat.
    pub fn top(question: &'x str) -> Self {
        At {
            instances: &[],
            question,
        }
    }
}

impl Survey {
    /// Every problem with a set of answers: answers the form does not hold first, then in
    /// form order, each repeat instance in its place. Questions inside repeats are named with
    /// their instance, `members[2]/age`.
    pub fn validate(&self, answers: &Answers, ctx: &ValidationContext) -> Vec<ValidationError> {
        let mut errors = Vec::new();
        self.unknown_answers(answers, None, "", &mut errors);
        let mut tree = ResponseTree::new(self, answers, None);
        let hidden = self.walk(&mut tree, ctx, None);
        for (i, role) in tree.roles.clone().iter().enumerate() {
            let Role::Question(qi) = role else { continue };
            let q = &self.questions[*qi];
            let loc = tree.locations[i].clone();
            let shown = format!("{}{}", location_prefix(&loc), q.name);
            let given = answers_at(answers, &loc)
                .and_then(|a| a.get(&q.name))
                .filter(|a| !is_blank(a));
            if !q.qtype.holds_value() {
                if given.is_some() {
                    errors.push(note_answered(q, &shown));
                }
                continue;
            }
            let at = Node::Primary(i as u32);
            match (&hidden[i], given) {
                (Some(why), Some(_)) if q.qtype.is_asked() => errors.push(ValidationError::new(
                    &shown,
                    ValidationErrorKind::NotRelevant,
                    format!("answered although not relevant: {why}; remove the answer"),
                )),
                (None, None) if self.required_now(q, &tree, at, ctx) => {
                    errors.push(required(q, &shown));
                }
                (None, Some(value)) => {
                    if let Err(mut e) = self.check_value(q, value, &mut tree, at, ctx) {
                        e.question = shown;
                        errors.push(e);
                    }
                }
                _ => {}
            }
        }
        self.repeat_counts(&tree, &hidden, ctx, &mut errors);
        errors
    }

    /// Computes every calculation in form order (each sees the ones before it), and returns
    /// the answers with calculated values set: what a device stores with the response, so
    /// exports and the server see what it computed. A calculation that is not relevant, or
    /// whose value is empty, leaves no answer.
    pub fn calculate(&self, answers: &Answers, ctx: &ValidationContext) -> Answers {
        let mut out = answers.clone();
        if !self.questions.iter().any(|q| q.calculation.is_some()) {
            return out;
        }
        let mut tree = ResponseTree::new(self, answers, None);
        self.walk(&mut tree, ctx, Some(&mut out));
        out
    }

    /// `answers` without what the other answers make irrelevant (going back in an interview
    /// can hide questions answered earlier; removing one answer can hide another, so this
    /// repeats until nothing changes). A repeat that is not relevant loses its entries.
    pub fn drop_irrelevant(&self, answers: &Answers, ctx: &ValidationContext) -> Answers {
        let mut out = answers.clone();
        for _ in 0..=self.questions.len() {
            let mut tree = ResponseTree::new(self, &out, None);
            let hidden = self.walk(&mut tree, ctx, None);
            let mut changed = false;
            let mut hidden_entries: Vec<(Location, String, usize)> = Vec::new();
            for (i, role) in tree.roles.iter().enumerate() {
                if hidden[i].is_none() {
                    continue;
                }
                match role {
                    Role::Question(qi) if self.questions[*qi].qtype.is_asked() => {
                        let name = &self.questions[*qi].name;
                        if let Some(scope) = answers_at_mut(&mut out, &tree.locations[i]) {
                            changed |= scope.remove(name).is_some();
                        }
                    }
                    Role::Instance { repeat, index } => {
                        let loc = &tree.locations[i];
                        let parent = loc[..loc.len().saturating_sub(1)].to_vec();
                        hidden_entries.push((parent, repeat.clone(), *index));
                    }
                    _ => {}
                }
            }
            // Only the hidden entries go (highest index first, so the others keep theirs).
            hidden_entries.sort_by_key(|e| std::cmp::Reverse(e.2));
            for (parent, repeat, index) in hidden_entries {
                if let Some(Answer::Repeat(entries)) =
                    answers_at_mut(&mut out, &parent).and_then(|s| s.get_mut(&repeat))
                    && index < entries.len()
                {
                    entries.remove(index);
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        out
    }

    /// Whether `at` is asked given these answers, including every enclosing group and repeat.
    /// Unknown names are not relevant; a group's name asks about the group.
    pub fn is_relevant_at(&self, at: At<'_>, answers: &Answers, ctx: &ValidationContext) -> bool {
        let mut tree = ResponseTree::new(self, answers, None);
        let hidden = self.walk(&mut tree, ctx, None);
        match self.node_of(&tree, at) {
            Some(i) => hidden[i].is_none(),
            // A repeat (its entries are nodes, it has none of its own): relevant when the
            // container holding it at this place is, and its own expression, read from there,
            // is true.
            None => {
                let Some(g) = self.groups.get(at.question) else {
                    return false;
                };
                let Some(parent) = self.container_node(&tree, at.question, at.instances) else {
                    return false;
                };
                hidden[parent].is_none()
                    && g.relevant.as_ref().is_none_or(|e| {
                        false_reason(e, &tree, Node::Primary(parent as u32), ctx).is_none()
                    })
            }
        }
    }

    /// [`Survey::is_relevant_at`] for a question outside repeats.
    pub fn is_relevant(&self, name: &str, answers: &Answers, ctx: &ValidationContext) -> bool {
        self.is_relevant_at(At::top(name), answers, ctx)
    }

    /// Checks one answer as an interview would when it is entered: type, choice list and
    /// constraint (a blank answer only fails a required question). Relevance is not checked.
    pub fn check_answer_at(
        &self,
        at: At<'_>,
        value: &Answer,
        answers: &Answers,
        ctx: &ValidationContext,
    ) -> Result<(), ValidationError> {
        let q = self.answerable_question(at.question)?;
        let mut tree = ResponseTree::new(self, answers, None);
        let _ = self.walk(&mut tree, ctx, None);
        let node = self
            .node_of(&tree, at)
            .map_or(Node::Primary(1), |i| Node::Primary(i as u32));
        if is_blank(value) {
            return if self.required_now(q, &tree, node, ctx) {
                Err(required(q, &q.name))
            } else {
                Ok(())
            };
        }
        self.check_value(q, value, &mut tree, node, ctx)
    }

    /// [`Survey::check_answer_at`] for a question outside repeats.
    pub fn check_answer(
        &self,
        name: &str,
        value: &Answer,
        answers: &Answers,
        ctx: &ValidationContext,
    ) -> Result<(), ValidationError> {
        self.check_answer_at(At::top(name), value, answers, ctx)
    }

    /// Whether a question is required right now (a `required` expression is evaluated).
    pub fn is_required_at(&self, at: At<'_>, answers: &Answers, ctx: &ValidationContext) -> bool {
        let Some(q) = self.question(at.question) else {
            return false;
        };
        let mut tree = ResponseTree::new(self, answers, None);
        let _ = self.walk(&mut tree, ctx, None);
        let node = self
            .node_of(&tree, at)
            .map_or(Node::Primary(1), |i| Node::Primary(i as u32));
        self.required_now(q, &tree, node, ctx)
    }

    /// [`Survey::is_required_at`] for a question outside repeats.
    pub fn is_required(&self, name: &str, answers: &Answers, ctx: &ValidationContext) -> bool {
        self.is_required_at(At::top(name), answers, ctx)
    }

    /// How many instances `repeat_count` asks for at `instances` (the parent's place), if the
    /// repeat has one and it evaluates to a whole number.
    pub fn repeat_count_at(
        &self,
        repeat: &str,
        instances: &[(String, usize)],
        answers: &Answers,
        ctx: &ValidationContext,
    ) -> Option<usize> {
        let count = self.groups.get(repeat)?.repeat_count.as_ref()?;
        let mut tree = ResponseTree::new(self, answers, None);
        let _ = self.walk(&mut tree, ctx, None);
        let parent = self.container_node(&tree, repeat, instances)?;
        let n = count
            .evaluate_number(&tree, &ctx.eval(Node::Primary(parent as u32)))
            .ok()?;
        (n.is_finite() && n >= 0.0).then(|| n.round() as usize)
    }

    /// The node of the container that holds `repeat`'s instances at `instances`.
    fn container_node(
        &self,
        tree: &ResponseTree<'_>,
        repeat: &str,
        instances: &[(String, usize)],
    ) -> Option<usize> {
        let g = self.groups.get(repeat)?;
        (0..tree.roles.len()).find(|&i| {
            tree.locations[i] == instances
                && match (&tree.roles[i], g.parents.last()) {
                    (Role::Root, None) => i == 1,
                    (Role::Group(n), Some(p)) | (Role::Instance { repeat: n, .. }, Some(p)) => {
                        n == p
                    }
                    _ => false,
                }
        })
    }

    fn node_of(&self, tree: &ResponseTree<'_>, at: At<'_>) -> Option<usize> {
        let want_question = self.index.get(at.question).copied();
        (0..tree.roles.len()).find(|&i| {
            tree.locations[i] == at.instances
                && match &tree.roles[i] {
                    Role::Question(q) => Some(*q) == want_question,
                    Role::Group(g) => g == at.question,
                    _ => false,
                }
        })
    }

    /// Per node of `tree`: `None` when relevant, else why not.
    pub(super) fn relevance_of(
        &self,
        tree: &mut ResponseTree<'_>,
        ctx: &ValidationContext,
    ) -> Vec<Option<String>> {
        self.walk(tree, ctx, None)
    }

    /// Relevance of every node in document order, blanking what is not relevant so later
    /// expressions read it as unanswered (as in ODK); with `computed`, also every calculation,
    /// written into the tree as it goes and into `computed`.
    fn walk(
        &self,
        tree: &mut ResponseTree<'_>,
        ctx: &ValidationContext,
        mut computed: Option<&mut Answers>,
    ) -> Relevance {
        let n = tree.roles.len();
        let mut hidden: Relevance = vec![None; n];
        for i in 0..n {
            let node = Node::Primary(i as u32);
            let parent = tree.parent(node).and_then(|p| match p {
                Node::Primary(p) => Some(p as usize),
                Node::Secondary(_) => None,
            });
            let mut why = parent.and_then(|p| hidden.get(p).cloned().flatten());
            if why.is_none() {
                why = match &tree.roles[i] {
                    Role::Group(g) | Role::Instance { repeat: g, .. } => self
                        .groups
                        .get(g)
                        .and_then(|grp| grp.relevant.as_ref())
                        .and_then(|e| false_reason(e, tree, node, ctx))
                        .map(|r| format!("group `{g}` is not relevant ({r})")),
                    Role::Question(q) => self.questions[*q]
                        .relevant
                        .as_ref()
                        .and_then(|e| false_reason(e, tree, node, ctx)),
                    Role::Root => None,
                };
            }
            if let Role::Question(qi) = tree.roles[i] {
                let q = &self.questions[qi];
                if why.is_some() {
                    tree.set(node, NodeValue::Empty);
                }
                if let (Some(out), Some(calc), true) = (
                    computed.as_deref_mut(),
                    &q.calculation,
                    q.qtype.holds_value(),
                ) {
                    let value = if why.is_some() {
                        None
                    } else {
                        calc.evaluate_string(&*tree, &ctx.eval(node))
                            .ok()
                            .filter(|v| !v.is_empty())
                    };
                    tree.set(
                        node,
                        value.clone().map_or(NodeValue::Empty, NodeValue::Text),
                    );
                    if let Some(scope) = answers_at_mut(out, &tree.locations[i]) {
                        match value {
                            Some(v) => {
                                // Typed as its question: `integer` calculations store numbers.
                                let typed = match q.qtype {
                                    QuestionType::Integer | QuestionType::Decimal => {
                                        self.parse_input(&q.name, &v).unwrap_or(Answer::Text(v))
                                    }
                                    _ => Answer::Text(v),
                                };
                                scope.insert(q.name.clone(), typed);
                            }
                            None => {
                                scope.remove(&q.name);
                            }
                        }
                    }
                }
            }
            hidden[i] = why;
        }
        hidden
    }

    /// Answers at one scope (the form, or an instance of `repeat`) that the form does not
    /// hold there, and repeat values that are not lists of instances.
    fn unknown_answers(
        &self,
        answers: &Answers,
        repeat: Option<&str>,
        prefix: &str,
        errors: &mut Vec<ValidationError>,
    ) {
        for (name, value) in answers {
            let shown = format!("{prefix}{name}");
            if let Some(g) = self.groups.get(name)
                && g.repeat
                && self.enclosing_repeat(&g.parents) == repeat
            {
                match value {
                    Answer::Repeat(instances) => {
                        for (i, inst) in instances.iter().enumerate() {
                            let inner = format!("{prefix}{name}[{}]/", i + 1);
                            self.unknown_answers(&inst.answers, Some(name), &inner, errors);
                        }
                    }
                    _ => errors.push(ValidationError::new(
                        &shown,
                        ValidationErrorKind::WrongType,
                        format!("`{name}` is a repeat; give its entries as a list of objects"),
                    )),
                }
                continue;
            }
            match self.question(name) {
                Some(q) if q.repeat.as_deref() == repeat => {
                    if matches!(value, Answer::Repeat(_)) {
                        errors.push(ValidationError::new(
                            &shown,
                            ValidationErrorKind::WrongType,
                            format!("`{name}` is a question, not a repeat; give one value"),
                        ));
                    }
                }
                _ => {
                    let mut e = self.not_a_question(name);
                    e.question = shown;
                    errors.push(e);
                }
            }
        }
    }

    fn enclosing_repeat<'s>(&'s self, parents: &'s [String]) -> Option<&'s str> {
        parents
            .iter()
            .rev()
            .find(|p| self.groups.get(*p).is_some_and(|g| g.repeat))
            .map(String::as_str)
    }

    fn answerable_question(&self, name: &str) -> Result<&Question, ValidationError> {
        match self.question(name) {
            None => Err(self.not_a_question(name)),
            Some(q) if !q.qtype.holds_value() => Err(note_answered(q, name)),
            Some(q) => Ok(q),
        }
    }

    fn not_a_question(&self, name: &str) -> ValidationError {
        if let Some(g) = self.groups.get(name) {
            let what = if g.repeat { "repeat" } else { "group" };
            let hint = if g.repeat {
                " here; give its entries where the repeat is"
            } else {
                "; remove it"
            };
            ValidationError::new(
                name,
                ValidationErrorKind::NotAnswerable,
                format!("`{name}` is a {what}, which takes no answer{hint}"),
            )
        } else if let Some(r) = self.question(name).and_then(|q| q.repeat.as_deref()) {
            ValidationError::new(
                name,
                ValidationErrorKind::UnknownQuestion,
                format!("`{name}` is inside repeat `{r}`; give it in an entry of `{r}`"),
            )
        } else if self.question(name).is_some() {
            ValidationError::new(
                name,
                ValidationErrorKind::UnknownQuestion,
                format!("`{name}` is not inside this repeat; give it where the form asks it"),
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
        if !q.is_asked() {
            return false;
        }
        match &q.required {
            Requirement::Never => false,
            Requirement::Always => true,
            Requirement::When(x) => x.evaluate_bool(tree, &ctx.eval(at)).unwrap_or(true),
        }
    }

    /// Type, choice list and constraint of a non-blank answer.
    fn check_value(
        &self,
        q: &Question,
        value: &Answer,
        tree: &mut ResponseTree<'_>,
        at: Node,
        ctx: &ValidationContext,
    ) -> Result<(), ValidationError> {
        let list = self.choices_of(q);
        check_type(q, value, list)
            .map_err(|(kind, msg)| ValidationError::new(&q.name, kind, msg))?;
        let Some(c) = &q.constraint else {
            return Ok(());
        };
        // The answer being checked is `.`, whatever is stored.
        tree.set(at, node_value(&q.qtype, Some(value)));
        match c.evaluate_bool(&*tree, &ctx.eval(at)) {
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
                format!(
                    "the constraint `{}` could not be evaluated: {e}",
                    c.source()
                ),
            )),
        }
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

fn required(q: &Question, shown: &str) -> ValidationError {
    let message = match q.required_message.get(None) {
        Some(m) => m.to_owned(),
        None => format!("`{}` is required; answer it", q.label.text().trim()),
    };
    ValidationError::new(shown, ValidationErrorKind::Required, message)
}

fn note_answered(q: &Question, shown: &str) -> ValidationError {
    ValidationError::new(
        shown,
        ValidationErrorKind::NotAnswerable,
        format!("`{}` is a note, which takes no answer; remove it", q.name),
    )
}

fn is_blank(a: &Answer) -> bool {
    matches!(a, Answer::Text(s) if s.trim().is_empty())
}

mod answer_type;
mod places;

pub(crate) use answer_type::parse_datetime;
pub(super) use answer_type::{check_default, check_type};

#[cfg(test)]
#[path = "validate/edge_tests.rs"]
mod edge_tests;
#[cfg(test)]
#[path = "validate/repeat_tests.rs"]
mod repeat_tests;
#[cfg(test)]
mod tests;
