//! The interview as a pure state machine: which question comes next (skip logic, notes),
//! what a typed line means (an answer, a choice number, a navigation command), and whether
//! the answer is acceptable while the respondent is still there. It reads no terminal and
//! writes nothing, so `fieldsync collect` is a thin loop around it and tests drive it with
//! scripted lines.
//!
//! Commands at any prompt: `<` or `:back` (previous question), `:save` (keep as a draft and
//! stop), `:skip` (leave an optional question unanswered), `:quit` (stop without saving, after
//! a confirmation). An empty line keeps the current answer, takes the default, or skips an
//! optional question.

use std::sync::Arc;

use fieldsync_protocol::survey::{
    Choice, Question, QuestionType, Survey, ValidationContext, ValidationError, ValidationErrorKind,
};
use fieldsync_protocol::{Answer, Answers};

/// How an interview ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Hand the response in.
    Submit,
    /// Keep it as a draft to continue later.
    Draft,
    /// Throw it away.
    Discard,
}

/// What the interview shows now and waits on.
#[derive(Debug)]
pub enum Screen<'a> {
    /// A question to answer, after the notes passed on the way to it.
    Question {
        question: &'a Question,
        /// 1-based position among the questions that take an answer.
        number: usize,
        total: usize,
        notes: Vec<&'a Question>,
        current: Option<&'a Answer>,
        choices: &'a [Choice],
    },
    /// `:quit` asks for a confirmation.
    ConfirmQuit,
    /// The end: the answers in form order and any problem left, then submit or draft.
    Review {
        notes: Vec<&'a Question>,
        answers: Vec<(&'a Question, &'a Answer)>,
        errors: Vec<ValidationError>,
    },
    /// Finished.
    Done(Outcome),
}

/// What became of one typed line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// Accepted; show the next screen.
    Ok,
    /// Not accepted; show the message and ask again.
    Problem(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Asking,
    Review,
    ConfirmQuit { from_review: bool },
    Done(Outcome),
}

/// One interview over one survey version.
#[derive(Debug)]
pub struct Interview {
    survey: Arc<Survey>,
    ctx: ValidationContext,
    answers: Answers,
    /// Index into `survey.questions()` of the question being asked.
    pos: usize,
    /// Questions answered (or skipped) on the way here, for going back.
    trail: Vec<usize>,
    /// Notes passed since the last question, to show before the next one.
    notes: Vec<usize>,
    state: State,
}

impl Interview {
    /// A new interview with no answers.
    pub fn new(survey: Arc<Survey>, ctx: ValidationContext) -> Interview {
        Interview::resume(survey, ctx, Answers::new())
    }

    /// Continue a draft: start after the last question it answers.
    pub fn resume(survey: Arc<Survey>, ctx: ValidationContext, answers: Answers) -> Interview {
        let mut iv = Interview {
            survey,
            ctx,
            answers,
            pos: 0,
            trail: Vec::new(),
            notes: Vec::new(),
            state: State::Asking,
        };
        let last_answered = iv
            .survey
            .questions()
            .iter()
            .rposition(|q| iv.answers.contains_key(&q.name));
        if let Some(last) = last_answered {
            loop {
                iv.advance();
                if iv.state != State::Asking || iv.pos > last {
                    break;
                }
                iv.forward();
            }
            iv.notes.clear();
        }
        iv
    }

    /// The answers so far.
    pub fn answers(&self) -> &Answers {
        &self.answers
    }

    /// How it ended, once it has.
    pub fn outcome(&self) -> Option<Outcome> {
        match self.state {
            State::Done(o) => Some(o),
            _ => None,
        }
    }

    /// The answers to keep: without answers to questions that the other answers make
    /// irrelevant (going back can hide questions answered earlier).
    pub fn answers_to_save(&self) -> Answers {
        let mut answers = self.answers.clone();
        // Removing one hidden answer can hide another (chained skip logic); a few rounds settle.
        for _ in 0..self.survey.questions().len().max(1) {
            let hidden: Vec<String> = self
                .survey
                .validate(&answers, &self.ctx)
                .into_iter()
                .filter(|e| e.kind == ValidationErrorKind::NotRelevant)
                .map(|e| e.question)
                .collect();
            if hidden.is_empty() {
                break;
            }
            for name in hidden {
                answers.remove(&name);
            }
        }
        answers
    }

    /// The current screen, after moving past questions that are not asked.
    pub fn screen(&mut self) -> Screen<'_> {
        self.advance();
        let questions = self.survey.questions();
        let notes = || {
            self.notes
                .iter()
                .filter_map(|&i| questions.get(i))
                .collect()
        };
        match self.state {
            State::Done(o) => Screen::Done(o),
            State::ConfirmQuit { .. } => Screen::ConfirmQuit,
            State::Review => Screen::Review {
                notes: notes(),
                answers: questions
                    .iter()
                    .filter_map(|q| self.answers.get(&q.name).map(|a| (q, a)))
                    .collect(),
                errors: self.survey.validate(&self.answers, &self.ctx),
            },
            State::Asking => {
                let Some(question) = questions.get(self.pos) else {
                    return Screen::Done(Outcome::Draft);
                };
                let answerable = |q: &&Question| q.qtype.is_asked();
                Screen::Question {
                    question,
                    number: questions[..self.pos].iter().filter(answerable).count() + 1,
                    total: questions.iter().filter(answerable).count(),
                    notes: notes(),
                    current: self.answers.get(&question.name),
                    choices: question
                        .qtype
                        .list()
                        .and_then(|l| self.survey.choices(l))
                        .unwrap_or(&[]),
                }
            }
        }
    }

    /// Take one typed line (without its line ending).
    pub fn input(&mut self, line: &str) -> Reply {
        self.advance();
        let line = line.trim();
        match self.state {
            State::Done(_) => Reply::Ok,
            State::ConfirmQuit { from_review } => {
                if matches!(line.to_ascii_lowercase().as_str(), "y" | "yes") {
                    self.state = State::Done(Outcome::Discard);
                    Reply::Ok
                } else {
                    self.state = if from_review {
                        State::Review
                    } else {
                        State::Asking
                    };
                    Reply::Problem("not quitting; carry on".into())
                }
            }
            State::Review => self.review_input(line),
            State::Asking => self.question_input(line),
        }
    }

    fn review_input(&mut self, line: &str) -> Reply {
        match line.to_ascii_lowercase().as_str() {
            "y" | "yes" | "submit" => {
                let errors = self.survey.validate(&self.answers, &self.ctx);
                if errors.is_empty() {
                    self.state = State::Done(Outcome::Submit);
                    Reply::Ok
                } else {
                    Reply::Problem(format!(
                        "cannot submit while these problems remain: {}; go back with `<` to fix them, or type d to keep a draft",
                        join(&errors)
                    ))
                }
            }
            "d" | "draft" | ":save" => {
                self.state = State::Done(Outcome::Draft);
                Reply::Ok
            }
            "<" | ":back" => self.back(),
            ":quit" => {
                self.state = State::ConfirmQuit { from_review: true };
                Reply::Ok
            }
            _ => {
                Reply::Problem("type y to submit, d to keep it as a draft, or < to go back".into())
            }
        }
    }

    fn question_input(&mut self, line: &str) -> Reply {
        let Some(q) = self.survey.questions().get(self.pos).cloned() else {
            return Reply::Ok;
        };
        match line {
            "<" | ":back" => return self.back(),
            ":save" => {
                self.state = State::Done(Outcome::Draft);
                return Reply::Ok;
            }
            ":quit" => {
                self.state = State::ConfirmQuit { from_review: false };
                return Reply::Ok;
            }
            ":skip" => {
                if self.survey.is_required(&q.name, &self.answers, &self.ctx) {
                    return Reply::Problem(format!(
                        "`{}` is required and cannot be skipped; answer it, or type :save to keep a draft",
                        q.name
                    ));
                }
                self.answers.remove(&q.name);
                self.forward();
                return Reply::Ok;
            }
            _ => {}
        }
        if is_command(line) {
            return Reply::Problem(format!(
                "unknown command `{line}`; use < (back), :save, :skip or :quit"
            ));
        }
        if line.is_empty() {
            if let Some(current) = self.answers.get(&q.name).cloned() {
                // Keeping an answer re-checks it: an earlier answer may have changed.
                return match self
                    .survey
                    .check_answer(&q.name, &current, &self.answers, &self.ctx)
                {
                    Ok(()) => {
                        self.forward();
                        Reply::Ok
                    }
                    Err(e) => Reply::Problem(e.message),
                };
            }
            if let Some(default) = q.static_default() {
                return self.accept(&q, default);
            }
            if self.survey.is_required(&q.name, &self.answers, &self.ctx) {
                return Reply::Problem(
                    "an answer is required; type it, or :save to keep a draft".to_string(),
                );
            }
            self.forward();
            return Reply::Ok;
        }
        self.accept(&q, line)
    }

    fn accept(&mut self, q: &Question, typed: &str) -> Reply {
        let choices = q
            .qtype
            .list()
            .and_then(|l| self.survey.choices(l))
            .unwrap_or(&[]);
        let text = match &q.qtype {
            QuestionType::SelectOne(_) => resolve_choice(choices, typed).to_owned(),
            QuestionType::SelectMultiple(_) => typed
                .split(|c: char| c.is_whitespace() || c == ',')
                .filter(|t| !t.is_empty())
                .map(|t| resolve_choice(choices, t))
                .collect::<Vec<_>>()
                .join(" "),
            _ => typed.to_owned(),
        };
        let answer = match self.survey.parse_input(&q.name, &text) {
            Ok(a) => a,
            Err(e) => return Reply::Problem(e.message),
        };
        if let Err(e) = self
            .survey
            .check_answer(&q.name, &answer, &self.answers, &self.ctx)
        {
            return Reply::Problem(e.message);
        }
        self.answers.insert(q.name.clone(), answer);
        self.forward();
        Reply::Ok
    }

    /// Move past questions that are not asked: irrelevant ones lose their answer, notes are
    /// collected to show before the next question.
    fn advance(&mut self) {
        if self.state != State::Asking {
            return;
        }
        let questions = self.survey.questions();
        while let Some(q) = questions.get(self.pos) {
            if !self.survey.is_relevant(&q.name, &self.answers, &self.ctx) {
                self.answers.remove(&q.name);
            } else if q.qtype == QuestionType::Note {
                if !self.notes.contains(&self.pos) {
                    self.notes.push(self.pos);
                }
            } else if q.qtype.is_asked() {
                return;
            }
            // Not asked: calculations and device values are filled in, not typed.
            self.pos += 1;
        }
        self.state = State::Review;
    }

    fn forward(&mut self) {
        self.trail.push(self.pos);
        self.pos += 1;
        self.notes.clear();
    }

    fn back(&mut self) -> Reply {
        match self.trail.pop() {
            Some(p) => {
                self.pos = p;
                self.notes.clear();
                self.state = State::Asking;
                Reply::Ok
            }
            None => Reply::Problem("this is the first question; there is nothing before it".into()),
        }
    }
}

fn is_command(line: &str) -> bool {
    line.strip_prefix(':')
        .is_some_and(|rest| !rest.is_empty() && rest.chars().all(|c| c.is_ascii_alphabetic()))
}

/// A typed choice: its name, its number in the list, or its label (any case).
fn resolve_choice<'a>(choices: &'a [Choice], typed: &'a str) -> &'a str {
    if choices.iter().any(|c| c.name == typed) {
        return typed;
    }
    if let Ok(n) = typed.parse::<usize>()
        && let Some(c) = n.checked_sub(1).and_then(|i| choices.get(i))
    {
        return &c.name;
    }
    choices
        .iter()
        .find(|c| c.label.text().eq_ignore_ascii_case(typed))
        .map_or(typed, |c| c.name.as_str())
}

fn join(errors: &[ValidationError]) -> String {
    errors
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

/// What kind of answer a question expects, in words.
pub fn type_hint(qtype: &QuestionType) -> &'static str {
    match qtype {
        QuestionType::Text => "text",
        QuestionType::Integer => "whole number",
        QuestionType::Decimal => "number, use . for decimals",
        QuestionType::SelectOne(_) => "choose one: its number or name",
        QuestionType::SelectMultiple(_) => {
            "choose any: numbers or names separated by spaces or commas"
        }
        QuestionType::Date => "date, YYYY-MM-DD",
        QuestionType::DateTime => "date and time, e.g. 2024-06-14T09:12:00+03:00",
        QuestionType::GeoPoint => "latitude longitude [altitude [accuracy]]",
        QuestionType::Note => "note",
        QuestionType::Range => "number in the range",
        QuestionType::Rank(_) => "every choice in your order: numbers or names",
        QuestionType::Acknowledge | QuestionType::Trigger => "type OK",
        QuestionType::Time => "time, HH:MM",
        QuestionType::GeoTrace => "points `lat lon` separated by ;",
        QuestionType::GeoShape => "at least 3 points `lat lon` separated by ;",
        QuestionType::Barcode => "the code",
        QuestionType::Media(_) => "a file name",
        QuestionType::Calculate | QuestionType::Hidden | QuestionType::Meta(_) => "filled in",
    }
}

#[cfg(test)]
mod tests;
