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
use super::xpath::Instance;
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

    /// `text` (a label, hint or message) with every `${name}` replaced by that answer as seen
    /// from `at` (inside a repeat entry, the entry's own answer), as ODK shows piped labels.
    pub fn pipe(&self, text: &str, at: At<'_>, answers: &Answers, ctx: &ValidationContext) -> String {
        if !text.contains("${") {
            return text.to_owned();
        }
        let mut tree = ResponseTree::new(self, answers, None);
        let _ = self.walk(&mut tree, ctx, None);
        let node = self
            .node_of(&tree, at)
            .map_or(Node::Primary(1), |i| Node::Primary(i as u32));
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start..];
            let Some(end) = after.find('}') else {
                out.push_str(after);
                rest = "";
                break;
            };
            let reference = &after[..=end];
            let value = XPath::parse(reference)
                .ok()
                .and_then(|x| x.evaluate_string(&tree, &ctx.eval(node)).ok())
                .unwrap_or_default();
            out.push_str(&value);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        out
    }

    /// The choices a select question offers at `at`: its list, narrowed by its
    /// `choice_filter` for the answers so far (a filter that cannot be evaluated shows all).
    pub fn choices_at(
        &self,
        at: At<'_>,
        answers: &Answers,
        ctx: &ValidationContext,
    ) -> Vec<&super::definition::Choice> {
        let Some(q) = self.question(at.question) else {
            return Vec::new();
        };
        if let Some(super::types::ChoiceSource::External(list)) = q.qtype.select().map(|s| &s.source)
        {
            // An external list's filter reads its own columns against the answers: evaluated
            // per choice with the question's place as context.
            return self.external_choices_at(q, list, at, answers, ctx);
        }
        let all = q.qtype.list().and_then(|l| self.choices(l)).unwrap_or_default();
        let Some(filter) = &q.choice_filter else {
            return all.iter().collect();
        };
        let mut tree = ResponseTree::new(self, answers, None);
        let _ = self.walk(&mut tree, ctx, None);
        let node = self
            .node_of(&tree, at)
            .map_or(Node::Primary(1), |i| Node::Primary(i as u32));
        let Ok(super::xpath::Value::Nodes(items)) = filter.evaluate(&tree, &ctx.eval(node)) else {
            return all.iter().collect();
        };
        let names: std::collections::HashSet<String> = items
            .iter()
            .filter_map(|item| {
                tree.children(*item)
                    .into_iter()
                    .find(|c| tree.name(*c) == "name")
                    .map(|c| super::xpath::convert::node_string(&tree.value(c)))
            })
            .collect();
        all.iter().filter(|c| names.contains(&c.name)).collect()
    }

    fn external_choices_at(
        &self,
        q: &Question,
        list: &str,
        at: At<'_>,
        answers: &Answers,
        ctx: &ValidationContext,
    ) -> Vec<&super::definition::Choice> {
        let all = self.external_choices.get(list).map(Vec::as_slice).unwrap_or_default();
        let Some(filter) = &q.choice_filter else {
            return all.iter().collect();
        };
        // The filter as written: `${x}` are answers, bare names the choice's columns.
        all.iter()
            .filter(|c| {
                let mut text = filter.source().to_owned();
                for (col, value) in &c.columns {
                    text = replace_name(&text, col, &format!("'{}'", value.replace('\'', "")));
                }
                text = replace_name(&text, "name", &format!("'{}'", c.name.replace('\'', "")));
                XPath::parse(&text)
                    .ok()
                    .and_then(|x| {
                        let mut tree = ResponseTree::new(self, answers, None);
                        let _ = self.walk(&mut tree, ctx, None);
                        let node = self
                            .node_of(&tree, at)
                            .map_or(Node::Primary(1), |i| Node::Primary(i as u32));
                        x.evaluate_bool(&tree, &ctx.eval(node)).ok()
                    })
                    .unwrap_or(true)
            })
            .collect()
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
                if let (Some(out), Some(calc), true) =
                    (computed.as_deref_mut(), &q.calculation, q.qtype.holds_value())
                {
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

    /// Repeats with a `repeat_count` must hold that many instances where they are relevant.
    fn repeat_counts(
        &self,
        tree: &ResponseTree<'_>,
        hidden: &Relevance,
        ctx: &ValidationContext,
        errors: &mut Vec<ValidationError>,
    ) {
        for g in self.groups().filter(|g| g.repeat) {
            let Some(count) = &g.repeat_count else { continue };
            for (p, role) in tree.roles.iter().enumerate() {
                let holds = match (role, g.parents.last()) {
                    (Role::Root, None) => p == 1,
                    (Role::Group(n), Some(parent))
                    | (Role::Instance { repeat: n, .. }, Some(parent)) => n == parent,
                    _ => false,
                };
                if !holds || hidden[p].is_some() {
                    continue;
                }
                let Ok(want) = count.evaluate_number(tree, &ctx.eval(Node::Primary(p as u32)))
                else {
                    continue;
                };
                if !want.is_finite() || want < 0.0 {
                    continue;
                }
                let have = tree.nodes_children(p)
                    .iter()
                    .filter(|c| matches!(&tree.roles[**c as usize], Role::Instance { repeat, .. } if *repeat == g.name))
                    .count();
                let want = want.round() as usize;
                if have != want {
                    let at = format!("{}{}", location_prefix(&tree.locations[p]), g.name);
                    errors.push(ValidationError::new(
                        &at,
                        ValidationErrorKind::Constraint,
                        format!(
                            "`{}` has {have} entries but the form asks for {want} (repeat_count `{}`)",
                            g.name,
                            count.source()
                        ),
                    ));
                }
            }
        }
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
        let list = q.qtype.list().and_then(|l| self.choices(l));
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
                format!("the constraint `{}` could not be evaluated: {e}", c.source()),
            )),
        }
    }
}

/// `text` with the bare name `name` (not inside `${…}` or quotes, not part of a longer name)
/// replaced by `with`.
fn replace_name(text: &str, name: &str, with: &str) -> String {
    let is_name = |c: char| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ':');
    let mut out = String::new();
    let mut chars = text.char_indices().peekable();
    let mut quote: Option<char> = None;
    let mut in_ref = false;
    let mut prev: Option<char> = None;
    while let Some((i, c)) = chars.next() {
        match (quote, c) {
            (Some(q), _) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '$') if text[i..].starts_with("${") => in_ref = true,
            (None, '}') if in_ref => in_ref = false,
            (None, _) if !in_ref && text[i..].starts_with(name) && !prev.is_some_and(is_name) => {
                let after = text[i + name.len()..].chars().next();
                if !after.is_some_and(is_name) {
                    out.push_str(with);
                    for _ in 1..name.chars().count() {
                        chars.next();
                    }
                    prev = name.chars().last();
                    continue;
                }
            }
            _ => {}
        }
        out.push(c);
        prev = Some(c);
    }
    out
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
        Answer::Repeat(r) => format!("a list of {} entries", r.len()),
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
        (_, Answer::Repeat(_)) => {
            return Err(wrong_type(format!(
                "expected {}, got a list of entries (only a repeat takes those)",
                type_phrase(&q.qtype)
            )));
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
#[cfg(test)]
#[path = "validate/repeat_tests.rs"]
mod repeat_tests;
#[cfg(test)]
#[path = "validate/edge_tests.rs"]
mod edge_tests;
