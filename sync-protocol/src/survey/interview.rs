//! The interview as a pure state machine: which question comes next (skip logic, notes,
//! groups, repeat entries), what a typed line means (an answer, a choice number, a navigation
//! command), and whether the answer is acceptable while the respondent is still there. It
//! reads no terminal and writes nothing, so `fieldsync collect` is a thin loop around it and
//! tests drive it with scripted lines.
//!
//! Commands at any prompt: `<` or `:back` (previous question), `:save` (keep as a draft and
//! stop), `:skip` (leave an optional question unanswered), `:quit` (stop without saving, after
//! a confirmation). An empty line keeps the current answer, takes the default, or skips an
//! optional question. At the end of a repeat the interview asks whether to add another entry
//! (`y`/`n`), unless the form counts the entries (`repeat_count`); `:delete` at a question of
//! an entry removes that entry.

use std::sync::Arc;

use crate::survey::{
    At, Choice, Group, Location, Question, QuestionType, Survey, ValidationContext,
    ValidationError, answers_at, answers_at_mut,
};
use crate::{Answer, Answers, RepeatInstance};

/// How an interview ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
    /// A question to answer, after the notes passed on the way to it (their text already in
    /// the interview's language, answers piped in).
    Question {
        question: &'a Question,
        /// The label and hint in the interview's language, answers piped in.
        label: String,
        hint: Option<String>,
        /// Where it is: the labels of its groups and repeat entries, outermost first
        /// (`["Household", "Member 2"]`).
        place: Vec<String>,
        /// 1-based position among the questions asked so far and left.
        number: usize,
        total: usize,
        notes: Vec<String>,
        current: Option<&'a Answer>,
        /// The choices offered (narrowed by the question's choice filter), each with its
        /// label in the interview's language.
        choices: Vec<(&'a Choice, String)>,
        /// Whether it must be answered now.
        required: bool,
    },
    /// Whether to add an entry to a repeat (another household member).
    AddEntry {
        repeat: &'a Group,
        place: Vec<String>,
        /// Entries it has so far.
        entries: usize,
        notes: Vec<String>,
    },
    /// `:quit` asks for a confirmation.
    ConfirmQuit,
    /// The end: the answers in form order (label, with its entry, and value) and any problem
    /// left, then submit or draft.
    Review {
        notes: Vec<String>,
        answers: Vec<(String, String)>,
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

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
enum State {
    Asking,
    Review,
    ConfirmQuit { from_review: bool },
    Done(Outcome),
}

/// One step of the form, in form order, for the answers as they are now.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
enum Step {
    /// Question `index` of `survey.questions()`, in the repeat entries `at`.
    Question { at: Location, index: usize },
    /// The start of repeat `repeat` where its entries go (`at` is the parent's place).
    RepeatStart { at: Location, repeat: String },
    /// Whether to add another entry.
    AddEntry { at: Location, repeat: String },
    /// The end of the repeat.
    RepeatEnd { at: Location, repeat: String },
}

/// One interview over one survey version.
#[derive(Debug)]
pub struct Interview {
    survey: Arc<Survey>,
    ctx: ValidationContext,
    answers: Answers,
    /// The step being asked; `None` past the last step.
    pos: Option<Step>,
    /// Steps answered (or skipped) on the way here, for going back.
    trail: Vec<Step>,
    /// Notes passed since the last question (and their places), to show before the next one.
    notes: Vec<(Location, usize)>,
    state: State,
    /// The language labels are shown in (`None`: the form's default).
    language: Option<String>,
    /// The respondent's offset from UTC: what `now`, `today()` and typed local times mean.
    offset: time::UtcOffset,
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
            pos: None,
            trail: Vec::new(),
            notes: Vec::new(),
            state: State::Asking,
            language: None,
            offset: time::UtcOffset::UTC,
        };
        iv.pos = iv.steps().into_iter().next();
        let steps = iv.steps();
        let last_answered = steps.iter().rposition(|s| iv.is_answered(s));
        if let Some(last) = last_answered {
            let target = steps[last].clone();
            loop {
                iv.advance();
                let here = iv.pos.clone();
                if iv.state != State::Asking || here.is_none() {
                    break;
                }
                let steps = iv.steps();
                let (Some(h), Some(t)) = (
                    here.as_ref()
                        .and_then(|h| steps.iter().position(|s| s == h)),
                    steps.iter().position(|s| *s == target),
                ) else {
                    break;
                };
                if h > t {
                    break;
                }
                iv.forward();
            }
            iv.notes.clear();
        }
        iv
    }

    /// Read typed times and dates in the respondent's `offset` from UTC (the default is UTC).
    pub fn with_offset(mut self, offset: time::UtcOffset) -> Interview {
        self.offset = offset;
        self
    }

    /// Show labels in `language` (one of [`Survey::languages`]).
    pub fn with_language(mut self, language: Option<String>) -> Interview {
        self.language = language;
        self
    }

    /// Text of a label, hint or message in the interview's language, answers piped in.
    fn text(&self, t: &crate::survey::Text, at: &Location, q: &str) -> Option<String> {
        let raw = t.get(self.language.as_deref())?;
        Some(
            self.survey
                .pipe(raw, Self::at_of(at, q), &self.answers, &self.ctx)
                .trim()
                .to_owned(),
        )
    }

    /// Take over the answers as they were stored (with the ids given to new repeat entries
    /// and the values the device fills in), keeping the interview where it is.
    pub fn adopt(&mut self, stored: Answers) {
        self.answers = stored;
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
        self.survey.drop_irrelevant(&self.answers, &self.ctx)
    }

    fn at_of<'x>(at: &'x Location, question: &'x str) -> At<'x> {
        At {
            instances: at,
            question,
        }
    }

    /// The current screen, after moving past steps that are not asked.
    pub fn screen(&mut self) -> Screen<'_> {
        self.advance();
        let questions = self.survey.questions();
        let notes: Vec<String> = self
            .notes
            .iter()
            .filter_map(|(at, i)| {
                let q = questions.get(*i)?;
                self.text(&q.label, at, &q.name)
            })
            .collect();
        match self.state {
            State::Done(o) => Screen::Done(o),
            State::ConfirmQuit { .. } => Screen::ConfirmQuit,
            State::Review => Screen::Review {
                notes,
                answers: self.summary(),
                errors: self.survey.validate(&self.answers_to_save(), &self.ctx),
            },
            State::Asking => match self.pos.clone() {
                None => Screen::Done(Outcome::Draft),
                Some(Step::AddEntry { at, repeat }) => {
                    let Some(g) = self.survey.group(&repeat) else {
                        return Screen::Done(Outcome::Draft);
                    };
                    let entries = self
                        .current_answer(&at, &repeat)
                        .and_then(Answer::as_repeat)
                        .map_or(0, <[RepeatInstance]>::len);
                    Screen::AddEntry {
                        repeat: g,
                        place: self.place(&at, &g.parents),
                        entries,
                        notes,
                    }
                }
                Some(step) => {
                    let Some((at, question)) = self.question_at(&step) else {
                        return Screen::Done(Outcome::Draft);
                    };
                    let steps = self.steps();
                    let asked: Vec<&Step> = steps
                        .iter()
                        .filter(|s| self.question_at(s).is_some_and(|(_, q)| q.is_asked()))
                        .collect();
                    let number = asked.iter().position(|s| **s == step).map_or(1, |i| i + 1);
                    let required = self.survey.is_required_at(
                        Self::at_of(at, &question.name),
                        &self.answers,
                        &self.ctx,
                    );
                    Screen::Question {
                        question,
                        label: self
                            .text(&question.label, at, &question.name)
                            .unwrap_or_default(),
                        hint: self.text(&question.hint, at, &question.name),
                        required,
                        place: self.place(at, &question.group),
                        number,
                        total: asked.len(),
                        notes,
                        current: self.current_answer(at, &question.name),
                        choices: self
                            .survey
                            .choices_at(Self::at_of(at, &question.name), &self.answers, &self.ctx)
                            .into_iter()
                            .map(|c| {
                                let label = c
                                    .label
                                    .get(self.language.as_deref())
                                    .unwrap_or(&c.name)
                                    .trim()
                                    .to_owned();
                                (c, label)
                            })
                            .collect(),
                    }
                }
            },
        }
    }

    /// The answers in form order, each with its entry: for the review.
    fn summary(&self) -> Vec<(String, String)> {
        let kept = self.answers_to_save();
        self.steps()
            .iter()
            .filter_map(|s| {
                let (at, q) = self.question_at(s)?;
                if !q.is_asked() {
                    return None;
                }
                let a = answers_at(&kept, at)?.get(&q.name)?;
                let mut place = self.place(at, &q.group);
                place.push(
                    self.text(&q.label, at, &q.name)
                        .unwrap_or_else(|| q.name.clone()),
                );
                Some((place.join(" / "), self.shown_value(at, q, a, &kept)))
            })
            .collect()
    }

    /// An answer as the respondent reads it: a choice by its label in the interview's
    /// language, anything else as stored.
    fn shown_value(&self, at: &Location, q: &Question, a: &Answer, answers: &Answers) -> String {
        if !matches!(
            q.qtype,
            QuestionType::SelectOne(_) | QuestionType::SelectMultiple(_) | QuestionType::Rank(_)
        ) {
            return a.to_string();
        }
        let choices = self
            .survey
            .choices_at(Self::at_of(at, &q.name), answers, &self.ctx);
        a.to_text()
            .split_whitespace()
            .map(|name| {
                choices
                    .iter()
                    .find(|c| c.name == name)
                    .and_then(|c| c.label.get(self.language.as_deref()))
                    .map_or_else(|| name.to_owned(), |l| l.trim().to_owned())
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Move the interview's clock to `now`: what `now`, `today()` and `now()` mean for the
    /// next answer (an interview can last an hour).
    pub fn set_clock(&mut self, now: time::OffsetDateTime) {
        self.ctx = ValidationContext::at(now);
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
            State::Asking => self.step_input(line),
        }
    }

    fn review_input(&mut self, line: &str) -> Reply {
        match line.to_ascii_lowercase().as_str() {
            "y" | "yes" | "submit" => {
                let errors = self.survey.validate(&self.answers_to_save(), &self.ctx);
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

    fn step_input(&mut self, line: &str) -> Reply {
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
            ":delete" => return self.delete_entry(),
            _ => {}
        }
        match self.pos.clone() {
            Some(Step::AddEntry { at, repeat }) => self.add_entry_input(&at, &repeat, line),
            Some(step @ Step::Question { .. }) => self.question_input(&step, line),
            _ => Reply::Ok,
        }
    }

    fn question_input(&mut self, step: &Step, line: &str) -> Reply {
        let Some((at, q)) = self.question_at(step).map(|(a, q)| (a.clone(), q.clone())) else {
            return Reply::Ok;
        };
        let required =
            self.survey
                .is_required_at(Self::at_of(&at, &q.name), &self.answers, &self.ctx);
        if line == ":skip" {
            if required {
                return Reply::Problem(format!(
                    "`{}` is required and cannot be skipped; answer it, or type :save to keep a draft",
                    q.name
                ));
            }
            self.set_answer(&at, &q.name, None);
            self.forward();
            return Reply::Ok;
        }
        if is_command(line) {
            return Reply::Problem(format!(
                "unknown command `{line}`; use < (back), :save, :skip, :delete (a repeat entry) or :quit"
            ));
        }
        if line.is_empty() {
            if let Some(current) = self.current_answer(&at, &q.name).cloned() {
                // Keeping an answer re-checks it: an earlier answer may have changed.
                return match self.survey.check_answer_at(
                    Self::at_of(&at, &q.name),
                    &current,
                    &self.answers,
                    &self.ctx,
                ) {
                    Ok(()) => {
                        self.forward();
                        Reply::Ok
                    }
                    Err(e) => Reply::Problem(e.message),
                };
            }
            if let Some(default) = q.static_default() {
                return self.accept(&at, &q, default);
            }
            if required {
                return Reply::Problem(
                    "an answer is required; type it, or :save to keep a draft".to_string(),
                );
            }
            self.forward();
            return Reply::Ok;
        }
        self.accept(&at, &q, line)
    }

    fn accept(&mut self, at: &Location, q: &Question, typed: &str) -> Reply {
        let survey = Arc::clone(&self.survey);
        let choices = survey.choices_at(Self::at_of(at, &q.name), &self.answers, &self.ctx);
        let choices = choices.as_slice();
        let text = match &q.qtype {
            QuestionType::SelectOne(_) => resolve_choice(choices, typed).to_owned(),
            QuestionType::SelectMultiple(_) | QuestionType::Rank(_) => typed
                .split(|c: char| c.is_whitespace() || c == ',')
                .filter(|t| !t.is_empty())
                .map(|t| resolve_choice(choices, t))
                .collect::<Vec<_>>()
                .join(" "),
            _ => typed.to_owned(),
        };
        // `now`, `today` and local times are the interview's clock in the respondent's offset.
        let now = self.ctx.now.to_offset(self.offset);
        let answer = match self.survey.parse_typed(&q.name, &text, now) {
            Ok(a) => a,
            Err(e) => return Reply::Problem(e.message),
        };
        if let Err(e) =
            self.survey
                .check_answer_at(Self::at_of(at, &q.name), &answer, &self.answers, &self.ctx)
        {
            return Reply::Problem(e.message);
        }
        self.set_answer(at, &q.name, Some(answer));
        // Calculations follow every answer, so later questions and labels see them.
        self.answers = self.survey.calculate(&self.answers, &self.ctx);
        self.forward();
        Reply::Ok
    }

    /// Move past steps that are not asked: irrelevant questions lose their answer, notes are
    /// collected to show before the next question, repeats that are not relevant are passed
    /// whole, and a counted repeat gets its entries.
    fn advance(&mut self) {
        if self.state != State::Asking {
            return;
        }
        for _ in 0..100_000 {
            let Some(step) = self.pos.clone() else {
                self.state = State::Review;
                return;
            };
            match &step {
                Step::Question { at, index } => {
                    let q = self.survey.questions()[*index].clone();
                    let relevant = self.survey.is_relevant_at(
                        Self::at_of(at, &q.name),
                        &self.answers,
                        &self.ctx,
                    );
                    if !relevant {
                        if q.qtype.is_asked() {
                            self.set_answer(at, &q.name, None);
                        }
                    } else if q.qtype == QuestionType::Note {
                        let note = (at.clone(), *index);
                        if !self.notes.contains(&note) {
                            self.notes.push(note);
                        }
                    } else if q.is_asked() {
                        return;
                    }
                    // Not asked: calculations and device values are filled in, not typed.
                }
                Step::RepeatStart { at, repeat } => {
                    // A repeat_count may read calculations made before any answer.
                    self.answers = self.survey.calculate(&self.answers, &self.ctx);
                    let relevant = self.survey.is_relevant_at(
                        Self::at_of(at, repeat),
                        &self.answers,
                        &self.ctx,
                    );
                    if !relevant {
                        self.pos = self.step_after_end(at, repeat);
                        continue;
                    }
                    if let Some(n) =
                        self.survey
                            .repeat_count_at(repeat, at, &self.answers, &self.ctx)
                        && let Some(entries) = self.entries_mut(at, repeat)
                    {
                        // Up to the count, adding empty entries; extra entries go only if
                        // nothing was answered in them.
                        while entries.len() < n.min(10_000) {
                            entries.push(RepeatInstance {
                                id: String::new(),
                                answers: Answers::new(),
                            });
                        }
                        while entries.len() > n
                            && entries.last().is_some_and(|e| e.answers.is_empty())
                        {
                            entries.pop();
                        }
                    }
                }
                Step::AddEntry { .. } => return,
                Step::RepeatEnd { .. } => {}
            }
            self.pos = self.next_step(&step);
        }
    }

    fn next_step(&self, step: &Step) -> Option<Step> {
        let steps = self.steps();
        let i = steps.iter().position(|s| s == step)?;
        steps.get(i + 1).cloned()
    }

    fn step_after_end(&self, at: &Location, repeat: &str) -> Option<Step> {
        let end = Step::RepeatEnd {
            at: at.clone(),
            repeat: repeat.to_owned(),
        };
        self.next_step(&end)
    }

    fn forward(&mut self) {
        if let Some(step) = self.pos.clone() {
            self.pos = self.next_step(&step);
            self.trail.push(step);
        }
        self.notes.clear();
    }

    fn back(&mut self) -> Reply {
        let steps = self.steps();
        while let Some(p) = self.trail.pop() {
            // A step that no longer exists (its entry was removed) is passed over.
            if steps.contains(&p) {
                self.pos = Some(p);
                self.notes.clear();
                self.state = State::Asking;
                return Reply::Ok;
            }
        }
        Reply::Problem("this is the first question; there is nothing before it".into())
    }
}

mod actions;
mod entries;
mod snapshot;
mod steps;
mod words;

pub use actions::Action;
pub use snapshot::Snapshot;

pub use words::is_command;
use words::{join, resolve_choice};
pub use words::{menu_numbers, type_hint};

#[cfg(test)]
mod tests;
