//! The steps of a form for the answers so far, in form order: questions (in their repeat
//! entries), and the start, "add another entry?" and end of every repeat; reading and
//! writing the answers at a step's place.

use super::*;

impl Interview {
    /// Every step of the form for the current answers, in form order.
    pub(super) fn steps(&self) -> Vec<Step> {
        let mut out = Vec::new();
        self.steps_in(None, &Vec::new(), &mut out);
        out
    }

    pub(super) fn steps_in(&self, container: Option<&str>, at: &Location, out: &mut Vec<Step>) {
        let survey = &*self.survey;
        // Items of this container in form order: questions and groups by row.
        let mut items: Vec<(usize, Result<usize, &Group>)> = survey
            .questions()
            .iter()
            .enumerate()
            .filter(|(_, q)| q.group.last().map(String::as_str) == container)
            .map(|(i, q)| (q.row, Ok(i)))
            .chain(
                survey
                    .groups()
                    .filter(|g| g.parents.last().map(String::as_str) == container)
                    .map(|g| (g.row, Err(g))),
            )
            .collect();
        items.sort_by_key(|(row, _)| *row);
        for (_, item) in items {
            match item {
                Ok(index) => out.push(Step::Question {
                    at: at.clone(),
                    index,
                }),
                Err(g) if !g.repeat => self.steps_in(Some(&g.name), at, out),
                Err(g) => {
                    out.push(Step::RepeatStart {
                        at: at.clone(),
                        repeat: g.name.clone(),
                    });
                    let entries = answers_at(&self.answers, at)
                        .and_then(|a| a.get(&g.name))
                        .and_then(Answer::as_repeat)
                        .map_or(0, <[RepeatInstance]>::len);
                    for k in 0..entries {
                        let mut inner = at.clone();
                        inner.push((g.name.clone(), k));
                        self.steps_in(Some(&g.name), &inner, out);
                    }
                    if g.repeat_count.is_none() {
                        out.push(Step::AddEntry {
                            at: at.clone(),
                            repeat: g.name.clone(),
                        });
                    }
                    out.push(Step::RepeatEnd {
                        at: at.clone(),
                        repeat: g.name.clone(),
                    });
                }
            }
        }
    }

    pub(super) fn is_answered(&self, step: &Step) -> bool {
        match step {
            Step::Question { at, index } => {
                let q = &self.survey.questions()[*index];
                q.is_asked()
                    && answers_at(&self.answers, at).is_some_and(|a| a.contains_key(&q.name))
            }
            _ => false,
        }
    }

    pub(super) fn question_at<'s, 't>(
        &'s self,
        step: &'t Step,
    ) -> Option<(&'t Location, &'s Question)> {
        match step {
            Step::Question { at, index } => Some((at, &self.survey.questions()[*index])),
            _ => None,
        }
    }

    pub(super) fn current_answer(&self, at: &Location, name: &str) -> Option<&Answer> {
        answers_at(&self.answers, at).and_then(|a| a.get(name))
    }

    pub(super) fn set_answer(&mut self, at: &Location, name: &str, value: Option<Answer>) {
        if let Some(scope) = answers_at_mut(&mut self.answers, at) {
            match value {
                Some(v) => {
                    scope.insert(name.to_owned(), v);
                }
                None => {
                    scope.remove(name);
                }
            }
        }
    }

    /// The entries of `repeat` at `at`, creating the list when it has none.
    pub(super) fn entries_mut(
        &mut self,
        at: &Location,
        repeat: &str,
    ) -> Option<&mut Vec<RepeatInstance>> {
        let scope = answers_at_mut(&mut self.answers, at)?;
        let slot = scope
            .entry(repeat.to_owned())
            .or_insert_with(|| Answer::Repeat(Vec::new()));
        match slot {
            Answer::Repeat(v) => Some(v),
            _ => None,
        }
    }

    /// Labels of the groups and entries around `at` and `question`, outermost first.
    pub(super) fn place(&self, at: &Location, parents: &[String]) -> Vec<String> {
        let mut entry = at.iter();
        parents
            .iter()
            .filter_map(|p| {
                let g = self.survey.group(p)?;
                let label = match g.label.get(self.language.as_deref()) {
                    Some(l) => l.to_owned(),
                    None => g.name.clone(),
                };
                if g.repeat {
                    let k = entry.next().map_or(0, |(_, k)| *k);
                    Some(format!("{label} {}", k + 1))
                } else {
                    g.label.get(None).map(|_| label)
                }
            })
            .collect()
    }
}
