//! Repeat entries in an interview: adding one when asked, and `:delete`.

use super::*;

impl Interview {
    /// `:delete` inside a repeat entry: the entry goes, with its answers, and the interview
    /// goes on where the repeat asks for another entry.
    pub(super) fn delete_entry(&mut self) -> Reply {
        let Some(Step::Question { at, .. }) = self.pos.clone() else {
            return Reply::Problem(
                ":delete removes the repeat entry being answered; go to one of its questions"
                    .into(),
            );
        };
        let Some((repeat, index)) = at.last().cloned() else {
            return Reply::Problem(
                ":delete removes a repeat entry, and this question is not in one".into(),
            );
        };
        let parent: Location = at[..at.len() - 1].to_vec();
        let counted = self
            .survey
            .repeat_count_at(&repeat, &parent, &self.answers, &self.ctx);
        let entries = self
            .current_answer(&parent, &repeat)
            .and_then(Answer::as_repeat)
            .map_or(0, <[RepeatInstance]>::len);
        if counted.is_some_and(|n| entries <= n) {
            return Reply::Problem(format!(
                "`{repeat}` has as many entries as the form counts; change the answer it counts by instead"
            ));
        }
        if let Some(entries) = self.entries_mut(&parent, &repeat)
            && index < entries.len()
        {
            entries.remove(index);
        }
        self.answers = self.survey.calculate(&self.answers, &self.ctx);
        // Steps of the removed entry, and of entries after it whose places shifted, are gone
        // from the trail.
        let steps = self.steps();
        self.trail.retain(|s| steps.contains(s));
        self.pos = Some(Step::AddEntry { at: parent, repeat });
        self.notes.clear();
        Reply::Ok
    }

    pub(super) fn add_entry_input(&mut self, at: &Location, repeat: &str, line: &str) -> Reply {
        match line.to_ascii_lowercase().as_str() {
            "y" | "yes" => {
                if let Some(entries) = self.entries_mut(at, repeat) {
                    entries.push(RepeatInstance {
                        id: String::new(),
                        answers: Answers::new(),
                    });
                    let k = entries.len() - 1;
                    let mut inner = at.clone();
                    inner.push((repeat.to_owned(), k));
                    let first = self.steps().into_iter().find(|s| match s {
                        Step::Question { at, .. } | Step::RepeatStart { at, .. } => {
                            at.starts_with(&inner)
                        }
                        _ => false,
                    });
                    self.trail.push(Step::AddEntry {
                        at: at.clone(),
                        repeat: repeat.to_owned(),
                    });
                    self.notes.clear();
                    // An entry with nothing to ask (all hidden) comes straight back here.
                    if first.is_some() {
                        self.pos = first;
                    }
                }
                Reply::Ok
            }
            "n" | "no" | "" | ":skip" => {
                self.forward();
                Reply::Ok
            }
            _ => Reply::Problem(
                "type y to add an entry, n (or Enter) to go on, or < to go back".into(),
            ),
        }
    }
}
