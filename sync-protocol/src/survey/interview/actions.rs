//! The interview driven by actions rather than typed lines: what a web page's fields and
//! buttons send.

use super::*;

/// What a respondent can do on a screen, for front ends that are not a line of text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action<'a> {
    /// The answer to the question shown (empty: keep the current answer, take the default,
    /// or pass an optional question), as its text; several choices separated by spaces.
    Answer(&'a str),
    /// Leave an optional question unanswered.
    Skip,
    /// Go back to the previous question.
    Back,
    /// At the end of a repeat: add another entry, or go on.
    AddEntry(bool),
    /// Remove the repeat entry being answered.
    Delete,
    /// On the review: hand the response in.
    Submit,
}

impl Interview {
    /// Do what a respondent chose on a screen that is not typed line by line (a web page:
    /// an answer field and buttons). An answer is taken as written: choice names, never menu
    /// numbers or commands.
    pub fn act(&mut self, action: Action<'_>) -> Reply {
        self.advance();
        match (self.state, action) {
            (State::Done(_), _) => Reply::Ok,
            (_, Action::Back) => self.back(),
            (State::Review, Action::Submit) => self.review_input("submit"),
            (State::Review | State::ConfirmQuit { .. }, _) => {
                Reply::Problem("submit, or go back to change an answer".into())
            }
            (State::Asking, Action::Submit) => {
                Reply::Problem("answer the questions left before submitting".into())
            }
            (State::Asking, Action::Delete) => self.delete_entry(),
            (State::Asking, Action::AddEntry(add)) => match self.pos.clone() {
                Some(Step::AddEntry { at, repeat }) => {
                    self.add_entry_input(&at, &repeat, if add { "y" } else { "n" })
                }
                _ => Reply::Problem("this is not the end of a repeat".into()),
            },
            (State::Asking, Action::Skip) => match self.pos.clone() {
                Some(step @ Step::Question { .. }) => self.question_input(&step, ":skip"),
                _ => Reply::Problem("there is no question to skip here".into()),
            },
            (State::Asking, Action::Answer(text)) => match self.pos.clone() {
                Some(step @ Step::Question { .. }) => {
                    if text.trim().is_empty() {
                        self.question_input(&step, "")
                    } else {
                        let Some((at, q)) =
                            self.question_at(&step).map(|(a, q)| (a.clone(), q.clone()))
                        else {
                            return Reply::Ok;
                        };
                        self.accept(&at, &q, text.trim())
                    }
                }
                _ => Reply::Problem("there is no question to answer here".into()),
            },
        }
    }
}
