//! Made-up responses that a form accepts: for trying a form before the field (`fieldsync
//! survey sample`), and for testing every question of real forms end to end. Questions are
//! answered in form order as an interview would ask them: only when relevant, with values of
//! their type, choices from their (filtered) list, and candidates tried until the constraint
//! holds; repeats get as many entries as `repeat_count` says, or one to three.

use super::definition::{Question, Survey};
use super::instance::answers_at_mut;
use super::types::QuestionType;
use super::validate::{At, ValidationContext};
use crate::answer::{Answer, Answers, RepeatInstance};

/// A small deterministic generator (xorshift64*), so a seed gives the same responses.
#[derive(Debug, Clone)]
pub struct SampleRng(u64);

impl SampleRng {
    pub fn new(seed: u64) -> SampleRng {
        SampleRng(seed ^ 0x9E37_79B9_7F4A_7C15 | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

const NAMES: [&str; 8] = [
    "Amina", "Otieno", "Wanjiru", "Baraka", "Achieng", "Kamau", "Nia", "Juma",
];
const WORDS: [&str; 6] = ["yes", "well", "near the market", "none", "twice", "ok"];
/// Candidates tried per question before leaving it (optional) or giving up on it (required).
const TRIES: usize = 40;

impl Survey {
    /// One made-up response. Required questions whose constraint no candidate met are left
    /// unanswered, so the response may still have problems: callers validate it.
    pub fn sample(&self, rng: &mut SampleRng, ctx: &ValidationContext) -> Answers {
        let mut answers = Answers::new();
        self.sample_in(None, &Vec::new(), &mut answers, rng, ctx);
        self.calculate(&answers, ctx)
    }

    fn sample_in(
        &self,
        container: Option<&str>,
        at: &[(String, usize)],
        answers: &mut Answers,
        rng: &mut SampleRng,
        ctx: &ValidationContext,
    ) {
        let mut items: Vec<(usize, Result<usize, String>)> = self
            .questions
            .iter()
            .enumerate()
            .filter(|(_, q)| q.group.last().map(String::as_str) == container)
            .map(|(i, q)| (q.row, Ok(i)))
            .chain(
                self.groups()
                    .filter(|g| g.parents.last().map(String::as_str) == container)
                    .map(|g| (g.row, Err(g.name.clone()))),
            )
            .collect();
        items.sort_by_key(|(row, _)| *row);
        for (_, item) in items {
            match item {
                Ok(i) => {
                    let q = &self.questions[i];
                    let here = At {
                        instances: at,
                        question: &q.name,
                    };
                    if !q.is_asked() || !self.is_relevant_at(here, answers, ctx) {
                        continue;
                    }
                    if let Some(v) = self.sample_answer(q, at, answers, rng, ctx)
                        && let Some(scope) = answers_at_mut(answers, at)
                    {
                        scope.insert(q.name.clone(), v);
                    }
                    *answers = self.calculate(answers, ctx);
                }
                Err(g) => {
                    // A repeat_count may read calculations made before any answer.
                    *answers = self.calculate(answers, ctx);
                    let here = At {
                        instances: at,
                        question: &g,
                    };
                    if !self.is_relevant_at(here, answers, ctx) {
                        continue;
                    }
                    let Some(group) = self.group(&g) else {
                        continue;
                    };
                    if !group.repeat {
                        self.sample_in(Some(&g), at, answers, rng, ctx);
                        continue;
                    }
                    let n = match &group.repeat_count {
                        Some(_) => self
                            .repeat_count_at(&g, at, answers, ctx)
                            .unwrap_or(0)
                            .min(20),
                        None => 1 + rng.below(3),
                    };
                    if let Some(scope) = answers_at_mut(answers, at) {
                        let entries = (0..n)
                            .map(|_| RepeatInstance {
                                id: String::new(),
                                answers: Answers::new(),
                            })
                            .collect();
                        scope.insert(g.clone(), Answer::Repeat(entries));
                    }
                    for k in 0..n {
                        let mut inner = at.to_vec();
                        inner.push((g.clone(), k));
                        self.sample_in(Some(&g), &inner, answers, rng, ctx);
                    }
                }
            }
        }
    }

    /// A value `q` accepts at `at`, if one of the candidates is.
    fn sample_answer(
        &self,
        q: &Question,
        at: &[(String, usize)],
        answers: &Answers,
        rng: &mut SampleRng,
        ctx: &ValidationContext,
    ) -> Option<Answer> {
        let here = At {
            instances: at,
            question: &q.name,
        };
        let choices: Vec<String> = self
            .choices_at(here, answers, ctx)
            .into_iter()
            .map(|c| c.name.clone())
            .collect();
        for attempt in 0..TRIES {
            let text = candidate(q, &choices, attempt, rng, ctx)?;
            let Ok(v) = self.parse_input(&q.name, &text) else {
                continue;
            };
            if self.check_answer_at(here, &v, answers, ctx).is_ok() {
                return Some(v);
            }
        }
        None
    }
}

/// The `attempt`th candidate for a question of this type: small, typical values first, then
/// random ones.
fn candidate(
    q: &Question,
    choices: &[String],
    attempt: usize,
    rng: &mut SampleRng,
    ctx: &ValidationContext,
) -> Option<String> {
    use QuestionType as Q;
    const NUMBERS: [i64; 12] = [1, 2, 3, 5, 10, 18, 25, 42, 0, 100, 7, 60];
    // Typical values first, from a random one on, so samples differ; then random ones.
    let number = if attempt < NUMBERS.len() {
        NUMBERS[(attempt + rng.below(NUMBERS.len())) % NUMBERS.len()]
    } else {
        rng.below(1000) as i64
    };
    if matches!(q.qtype, Q::Text | Q::Barcode)
        && attempt.is_multiple_of(2)
        && let Some(pattern) = q
            .constraint
            .as_ref()
            .and_then(|c| regex_pattern(c.source()))
        && let Some(text) = matching(&pattern, rng)
    {
        return Some(text);
    }
    Some(match &q.qtype {
        Q::Text | Q::Barcode => match attempt {
            0..=7 => NAMES[(attempt + rng.below(NAMES.len())) % NAMES.len()].to_owned(),
            _ => WORDS[rng.below(WORDS.len())].to_owned(),
        },
        Q::Integer => number.to_string(),
        Q::Decimal => format!("{number}.5"),
        Q::Range => {
            let p = |k: &str, d: f64| {
                q.parameters
                    .get(k)
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(d)
            };
            let (start, end, step) = (p("start", 1.0), p("end", 10.0), p("step", 1.0));
            let steps = ((end - start) / step).abs().floor() as usize;
            let k = rng.below(steps + 1) as f64;
            format!(
                "{}",
                start + k * step * if end >= start { 1.0 } else { -1.0 }
            )
        }
        Q::SelectOne(_) => {
            if choices.is_empty() {
                return None;
            }
            choices[rng.below(choices.len())].clone()
        }
        Q::SelectMultiple(_) => {
            if choices.is_empty() {
                return None;
            }
            let mut picked: Vec<&String> = choices.iter().filter(|_| rng.below(2) == 0).collect();
            if picked.is_empty() {
                picked.push(&choices[rng.below(choices.len())]);
            }
            picked
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        }
        Q::Rank(_) => {
            let mut all: Vec<&String> = choices.iter().collect();
            for i in (1..all.len()).rev() {
                all.swap(i, rng.below(i + 1));
            }
            all.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")
        }
        Q::Date => {
            let back = time::Duration::days((rng.below(3650) as i64) * i64::from(attempt > 0));
            let d = ctx.today - back;
            format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
        }
        Q::DateTime => ctx
            .now
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        Q::Time => format!("{:02}:{:02}:00", 8 + rng.below(10), rng.below(60)),
        Q::GeoPoint => format!(
            "-1.{} 36.{} 1795 5",
            2000 + rng.below(999),
            8000 + rng.below(999)
        ),
        Q::GeoTrace => "-1.2921 36.8219 0 5;-1.2931 36.8229 0 5".to_owned(),
        Q::GeoShape => {
            "-1.2921 36.8219 0 5;-1.2931 36.8229 0 5;-1.2941 36.8219 0 5;-1.2921 36.8219 0 5"
                .to_owned()
        }
        Q::Acknowledge | Q::Trigger => "OK".to_owned(),
        Q::Note | Q::Media(_) | Q::Calculate | Q::Hidden | Q::Meta(_) => return None,
    })
}

/// The pattern of a `regex(., 'PATTERN')` in a constraint, if it has one.
fn regex_pattern(constraint: &str) -> Option<String> {
    let start = constraint.find("regex(")?;
    let rest = &constraint[start + "regex(".len()..];
    let quote_at = rest.find(['\'', '"'])?;
    let quote = rest[quote_at..].chars().next()?;
    let body = &rest[quote_at + 1..];
    let end = body.find(quote)?;
    Some(body[..end].to_owned())
}

/// A string the whole of which `pattern` matches (as ODK's `regex()` requires), built from
/// its syntax tree: the first branch of an alternation, the minimum of a repetition (at
/// least one), a random member of a class.
fn matching(pattern: &str, rng: &mut SampleRng) -> Option<String> {
    use regex_syntax::hir::{Class, HirKind};
    fn walk(
        h: &regex_syntax::hir::Hir,
        rng: &mut SampleRng,
        out: &mut String,
        depth: usize,
    ) -> Option<()> {
        if depth > 64 || out.len() > 4096 {
            return None;
        }
        match h.kind() {
            HirKind::Empty | HirKind::Look(_) => {}
            HirKind::Literal(l) => out.push_str(std::str::from_utf8(&l.0).ok()?),
            HirKind::Class(Class::Unicode(c)) => {
                let ranges = c.ranges();
                let r = ranges.get(rng.below(ranges.len()))?;
                let span = u32::from(r.end()) - u32::from(r.start());
                let pick = u32::from(r.start()) + (rng.below(span.min(25) as usize + 1) as u32);
                out.push(char::from_u32(pick).unwrap_or(r.start()));
            }
            HirKind::Class(Class::Bytes(c)) => {
                let r = c.ranges().first()?;
                out.push(char::from(r.start()));
            }
            HirKind::Repetition(rep) => {
                let n = rep.min.max(1).min(rep.max.unwrap_or(u32::MAX)).min(64);
                for _ in 0..n {
                    walk(&rep.sub, rng, out, depth + 1)?;
                }
            }
            HirKind::Capture(c) => walk(&c.sub, rng, out, depth + 1)?,
            HirKind::Concat(parts) => {
                for p in parts {
                    walk(p, rng, out, depth + 1)?;
                }
            }
            HirKind::Alternation(alts) => walk(alts.first()?, rng, out, depth + 1)?,
        }
        Some(())
    }
    let hir = regex_syntax::Parser::new().parse(pattern).ok()?;
    let mut out = String::new();
    walk(&hir, rng, &mut out, 0)?;
    Some(out)
}
