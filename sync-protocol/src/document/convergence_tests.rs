//! The universal claim about response documents, checked on random histories: any interleaving
//! of edits and syncs between replicas converges, and a conflict is reported exactly while
//! concurrent writes of different values stand, on every replica, until it is resolved.
//!
//! The expected conflicts come from an independent model of a multi-value register (each write
//! is live until a replica that saw it writes over it), not from `conflicts()` itself. The
//! model names writes by their Automerge op ids, read back after each local write.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::response::tests::{T0, created, replica};
use super::scalar::same_answer;
use super::{ActorId, ResponseDoc};
use crate::{Answer, Answers};

const QUESTIONS: [&str; 3] = ["q0", "q1", "q2"];
const REPLICAS: usize = 3;

/// A write's identity, ordered as Automerge orders concurrent ops (the greatest wins).
type WriteId = (u64, ActorId);

/// One replica's view of one question.
#[derive(Clone, Debug, Default)]
struct Register {
    seen: BTreeSet<WriteId>,
    live: BTreeMap<WriteId, Answer>,
}

impl Register {
    fn winner(&self) -> Option<(&WriteId, &Answer)> {
        self.live.iter().next_back()
    }

    fn conflicted(&self) -> bool {
        let mut values = self.live.values();
        match values.next() {
            Some(first) => values.any(|v| !same_answer(first, v)),
            None => false,
        }
    }

    /// A write survives a merge unless a replica that saw it has written over it.
    fn merge(&mut self, other: &Register) {
        let mut live = BTreeMap::new();
        for (id, value) in self.live.iter().chain(other.live.iter()) {
            let killed_here = self.seen.contains(id) && !self.live.contains_key(id);
            let killed_there = other.seen.contains(id) && !other.live.contains_key(id);
            if !killed_here && !killed_there {
                live.insert(id.clone(), value.clone());
            }
        }
        self.seen.extend(other.seen.iter().cloned());
        self.live = live;
    }
}

type Model = BTreeMap<&'static str, Register>;

#[derive(Clone, Debug)]
enum Step {
    Set(usize, usize, Answer),
    Remove(usize, usize),
    /// Several answers in one change.
    Batch(usize, BTreeMap<usize, Answer>),
    /// `to` receives every change of `from` it lacks.
    Sync {
        from: usize,
        to: usize,
    },
}

fn answer() -> impl Strategy<Value = Answer> {
    // Small pools, so that replicas often write the same value concurrently (not a conflict)
    // as well as different ones; 0.0 and -0.0 are equal answers.
    prop_oneof![
        (0_i64..3).prop_map(Answer::Integer),
        prop::sample::select(vec![0.5, 0.0, -0.0]).prop_map(Answer::Decimal),
        prop::sample::select(vec!["", "a", "b"]).prop_map(Answer::from),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    let replica = 0..REPLICAS;
    let question = 0..QUESTIONS.len();
    prop_oneof![
        4 => (replica.clone(), question.clone(), answer()).prop_map(|(r, q, a)| Step::Set(r, q, a)),
        1 => (replica.clone(), question.clone()).prop_map(|(r, q)| Step::Remove(r, q)),
        1 => (replica.clone(), prop::collection::btree_map(question, answer(), 1..3))
            .prop_map(|(r, b)| Step::Batch(r, b)),
        3 => (replica.clone(), replica).prop_map(|(from, to)| Step::Sync { from, to }),
    ]
}

/// Applies one local write to the model, mirroring Automerge's rule that writing the value a
/// key already shows supersedes only the other concurrent values, and writes nothing when
/// there are none.
fn model_set(doc: &ResponseDoc, reg: &mut Register, question: &str, value: &Answer) {
    match reg.winner() {
        Some((id, current)) if same_answer(current, value) => {
            let id = id.clone();
            reg.live.retain(|k, _| *k == id);
        }
        _ => {
            let ids = doc.value_ids(question);
            assert_eq!(ids.len(), 1, "a fresh write leaves one value");
            let (_, counter, actor) = &ids[0];
            let id = (*counter, actor.clone());
            reg.seen.insert(id.clone());
            reg.live = BTreeMap::from([(id, value.clone())]);
        }
    }
}

fn sync(docs: &mut [ResponseDoc], models: &mut [Model], from: usize, to: usize) {
    if from == to {
        return;
    }
    // As the sync engine does: the receiver's heads say what it has.
    let have = docs[to].heads();
    let changes = docs[from].changes_since(&have);
    docs[to].apply_changes(changes).expect("apply");
    assert_eq!(docs[to].missing_deps(), vec![]);
    let sender = models[from].clone();
    for q in QUESTIONS {
        let theirs = sender.get(q).cloned().unwrap_or_default();
        models[to].entry(q).or_default().merge(&theirs);
    }
}

fn full_exchange(docs: &mut [ResponseDoc], models: &mut [Model]) {
    for r in 1..REPLICAS {
        sync(docs, models, r, 0);
    }
    for r in 1..REPLICAS {
        sync(docs, models, 0, r);
    }
}

/// Checks a replica's answers and conflicts against its model.
fn check(doc: &ResponseDoc, model: &Model, r: usize) -> Result<(), TestCaseError> {
    let want: Answers = model
        .iter()
        .filter_map(|(q, reg)| reg.winner().map(|(_, v)| ((*q).to_owned(), v.clone())))
        .collect();
    prop_assert_eq!(doc.answers().expect("answers"), want, "replica {}", r);

    let conflicts = doc.conflicts().expect("conflicts");
    let got: Vec<&str> = conflicts.iter().map(|c| c.question.as_str()).collect();
    let want: Vec<&str> = model
        .iter()
        .filter(|(_, reg)| reg.conflicted())
        .map(|(q, _)| *q)
        .collect();
    prop_assert_eq!(got, want, "replica {}", r);
    for conflict in &conflicts {
        let reg = &model[conflict.question.as_str()];
        // Every live value with who wrote it, winner first.
        let want: Vec<(String, String)> = reg
            .live
            .iter()
            .rev()
            .map(|((_, actor), v)| (format!("{v:?}"), actor.to_hex_string()))
            .collect();
        let got: Vec<(String, String)> = conflict
            .values
            .iter()
            .map(|v| (format!("{:?}", v.value), v.actor.clone()))
            .collect();
        prop_assert_eq!(got, want, "replica {} question {}", r, &conflict.question);
        for value in &conflict.values {
            prop_assert!(value.author.is_some(), "every writer recorded a label");
        }
    }
    Ok(())
}

fn run(steps: Vec<Step>) -> Result<(), TestCaseError> {
    let mut first = created();
    let mut docs = vec![
        replica(&mut first, 11, "device:a"),
        replica(&mut first, 12, "device:b"),
        replica(&mut first, 13, "member:c"),
    ];
    let mut models: Vec<Model> = vec![Model::new(); REPLICAS];
    let mut now = T0;
    for step in steps {
        now += 1;
        match step {
            Step::Set(r, q, value) => {
                let question = QUESTIONS[q];
                docs[r].set_answer(question, &value, now).expect("set");
                let reg = models[r].entry(question).or_default();
                model_set(&docs[r], reg, question, &value);
            }
            Step::Remove(r, q) => {
                docs[r].remove_answer(QUESTIONS[q], now).expect("remove");
                models[r].entry(QUESTIONS[q]).or_default().live.clear();
            }
            Step::Batch(r, batch) => {
                let named: Vec<(&str, &Answer)> =
                    batch.iter().map(|(q, a)| (QUESTIONS[*q], a)).collect();
                docs[r]
                    .set_answers(named.iter().copied(), now)
                    .expect("batch");
                for (question, value) in named {
                    let reg = models[r].entry(question).or_default();
                    model_set(&docs[r], reg, question, value);
                }
            }
            Step::Sync { from, to } => sync(&mut docs, &mut models, from, to),
        }
        for (r, doc) in docs.iter().enumerate() {
            check(doc, &models[r], r)?;
        }
    }

    full_exchange(&mut docs, &mut models);
    check_same(&mut docs)?;
    let conflicts = docs[0].conflicts().expect("conflicts");
    for (r, doc) in docs.iter().enumerate() {
        check(doc, &models[r], r)?;
    }

    // One replica resolves every conflict (with each conflict's second value, so the winner
    // changes); once that is merged, no replica reports any conflict.
    now += 1;
    for conflict in &conflicts {
        let value = conflict.values[1].value.clone();
        docs[2]
            .resolve(&conflict.question, &value, now)
            .expect("resolve");
        let question = QUESTIONS
            .into_iter()
            .find(|q| *q == conflict.question)
            .expect("a known question");
        model_set(
            &docs[2],
            models[2].entry(question).or_default(),
            question,
            &value,
        );
    }
    full_exchange(&mut docs, &mut models);
    let heads = docs[0].heads();
    for (r, doc) in docs.iter_mut().enumerate() {
        prop_assert_eq!(doc.conflicts().expect("conflicts"), vec![], "replica {}", r);
        prop_assert_eq!(doc.heads(), heads.clone(), "replica {}", r);
        check(doc, &models[r], r)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn replicas_converge_and_report_conflicts_until_resolved(
        steps in prop::collection::vec(step(), 1..40)
    ) {
        run(steps)?;
    }
}

#[test]
fn unknown_heads_from_a_peer_yield_a_superset_that_applies_cleanly() {
    // The receiver may hold changes the sender has never seen; its heads then name hashes the
    // sender does not know. Automerge ignores those, so the sender sends everything it cannot
    // prove the receiver has (here: all of it); applying is idempotent, so this only costs
    // bytes. The sync engine should pass heads both sides know.
    let mut a = created();
    let mut b = replica(&mut a, 2, "member:b");
    a.set_answer("q0", &Answer::Integer(1), T0 + 1)
        .expect("set");
    b.set_answer("q1", &Answer::Integer(2), T0 + 1)
        .expect("set");
    let have = b.heads();
    let changes = a.changes_since(&have);
    assert_eq!(changes.len(), a.all_changes().len());
    b.apply_changes(changes).expect("apply");
    assert_eq!(b.answers().expect("answers").len(), 2);
    // With a head both know, only the new change travels.
    let mut c = replica(&mut a, 3, "member:c");
    let shared = c.heads();
    a.set_answer("q2", &Answer::Integer(3), T0 + 2)
        .expect("set");
    assert_eq!(a.changes_since(&shared).len(), 1);
}

/// Every replica has the same heads, answers and conflicts as the first.
pub(super) fn check_same(docs: &mut [ResponseDoc]) -> Result<(), TestCaseError> {
    let heads = docs[0].heads();
    let answers = docs[0].answers().expect("answers");
    let conflicts = docs[0].conflicts().expect("conflicts");
    for (r, doc) in docs.iter_mut().enumerate() {
        prop_assert_eq!(doc.heads(), heads.clone(), "replica {}", r);
        prop_assert_eq!(
            doc.answers().expect("answers"),
            answers.clone(),
            "replica {}",
            r
        );
        prop_assert_eq!(
            doc.conflicts().expect("conflicts"),
            conflicts.clone(),
            "replica {}",
            r
        );
    }
    Ok(())
}
