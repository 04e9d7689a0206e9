//! The universal claim about repeats, checked on random histories: three replicas adding,
//! editing, moving and deleting instances (nested ones too) and top-level answers, exchanging
//! changes in random order at random points, end with identical answers and conflicts; every
//! instance added and never deleted survives everywhere (and no deleted one comes back); and
//! once one replica resolves every listed conflict and that is merged, none lists any.

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::ResponseDoc;
use super::convergence_tests::check_same;
use super::response::tests::{T0, created, replica};
use crate::{Answer, RepeatInstance};

const REPLICAS: usize = 3;
const FIELDS: [&str; 2] = ["f0", "f1"];
const TOP: [&str; 2] = ["q0", "q1"];

#[derive(Clone, Debug)]
enum Step {
    /// Appends a member with `f0 = value`.
    Add(usize, Answer),
    /// Appends a visit to the `pick`th member.
    AddNested(usize, usize, bool),
    /// Sets a field of the `pick`th instance (members and visits, depth first), by its path or
    /// by writing the whole member list back.
    Edit {
        r: usize,
        pick: usize,
        field: usize,
        value: Answer,
        by_list: bool,
    },
    /// Deletes the `pick`th instance, by its path or by writing the list without it.
    Delete(usize, usize, bool),
    /// Moves the `pick`th member to the front.
    Move(usize, usize),
    SetTop(usize, usize, Answer),
    /// `to` receives every change of `from` it lacks.
    Sync {
        from: usize,
        to: usize,
    },
}

fn value() -> impl Strategy<Value = Answer> {
    // Small pools, so that concurrent writes are often equal (no conflict) as well as not.
    prop_oneof![
        (0_i64..3).prop_map(Answer::Integer),
        prop::sample::select(vec!["a", "b"]).prop_map(Answer::from),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    let r = 0..REPLICAS;
    // Small picks, so that replicas often edit the same instances.
    let pick = 0_usize..3;
    prop_oneof![
        2 => (r.clone(), value()).prop_map(|(r, v)| Step::Add(r, v)),
        2 => (r.clone(), pick.clone(), any::<bool>()).prop_map(|(r, p, l)| Step::AddNested(r, p, l)),
        8 => (r.clone(), pick.clone(), 0..FIELDS.len(), value(), any::<bool>()).prop_map(
            |(r, pick, field, value, by_list)| Step::Edit { r, pick, field, value, by_list }
        ),
        1 => (r.clone(), pick.clone(), any::<bool>()).prop_map(|(r, p, l)| Step::Delete(r, p, l)),
        1 => (r.clone(), pick).prop_map(|(r, p)| Step::Move(r, p)),
        2 => (r.clone(), 0..TOP.len(), value()).prop_map(|(r, q, v)| Step::SetTop(r, q, v)),
        4 => (r.clone(), r).prop_map(|(from, to)| Step::Sync { from, to }),
    ]
}

/// The history's bookkeeping: what was added where, and what was ever deleted.
#[derive(Debug, Default)]
struct Ledger {
    next: u32,
    /// Each added instance by its id path: `[member]` or `[member, visit]`.
    added: Vec<Vec<String>>,
    deleted: BTreeSet<String>,
}

impl Ledger {
    /// A fresh id; a bijective scramble of a counter, so that ids do not sort in creation
    /// order and ties between concurrent appends are broken every which way.
    fn id(&mut self, r: usize) -> String {
        self.next += 1;
        format!("{:04x}-{r}", self.next.wrapping_mul(40_503) % 65_536)
    }

    fn expected(&self) -> BTreeSet<Vec<String>> {
        self.added
            .iter()
            .filter(|path| path.iter().all(|id| !self.deleted.contains(id)))
            .cloned()
            .collect()
    }
}

fn members(doc: &ResponseDoc) -> Vec<RepeatInstance> {
    match doc.answer("members").expect("members") {
        Some(Answer::Repeat(list)) => list,
        None => Vec::new(),
        Some(other) => panic!("members is {other:?}"),
    }
}

fn visits(member: &RepeatInstance) -> Vec<RepeatInstance> {
    match member.answers.get("visits") {
        Some(Answer::Repeat(list)) => list.clone(),
        None => Vec::new(),
        Some(other) => panic!("visits is {other:?}"),
    }
}

/// Every instance as `(member index, visit index)`, depth first.
fn instances(list: &[RepeatInstance]) -> Vec<(usize, Option<usize>)> {
    let mut out = Vec::new();
    for (m, member) in list.iter().enumerate() {
        out.push((m, None));
        out.extend((0..visits(member).len()).map(|v| (m, Some(v))));
    }
    out
}

fn id_paths(doc: &ResponseDoc) -> BTreeSet<Vec<String>> {
    let mut out = BTreeSet::new();
    for member in members(doc) {
        for visit in visits(&member) {
            out.insert(vec![member.id.clone(), visit.id]);
        }
        out.insert(vec![member.id]);
    }
    out
}

fn write_members(doc: &mut ResponseDoc, list: Vec<RepeatInstance>, now: i64) {
    doc.set_answer("members", &Answer::Repeat(list), now)
        .expect("write members");
}

fn apply(doc: &mut ResponseDoc, ledger: &mut Ledger, r: usize, step: Step, now: i64) {
    let mut list = members(doc);
    match step {
        Step::Add(_, value) => {
            let id = ledger.id(r);
            ledger.added.push(vec![id.clone()]);
            list.push(RepeatInstance {
                id,
                answers: [("f0".to_owned(), value)].into(),
            });
            write_members(doc, list, now);
        }
        Step::AddNested(_, pick, by_list) => {
            if list.is_empty() {
                return;
            }
            let m = pick % list.len();
            let id = ledger.id(r);
            ledger.added.push(vec![list[m].id.clone(), id.clone()]);
            let mut visits = visits(&list[m]);
            visits.push(RepeatInstance {
                id,
                answers: Default::default(),
            });
            if by_list {
                list[m]
                    .answers
                    .insert("visits".to_owned(), Answer::Repeat(visits));
                write_members(doc, list, now);
            } else {
                let path = format!("members#{}/visits", list[m].id);
                doc.set_answer(&path, &Answer::Repeat(visits), now)
                    .expect("add nested");
            }
        }
        Step::Edit {
            pick,
            field,
            value,
            by_list,
            ..
        } => {
            let all = instances(&list);
            if all.is_empty() {
                return;
            }
            let (m, v) = all[pick % all.len()];
            let field = FIELDS[field].to_owned();
            if by_list {
                match v {
                    None => {
                        list[m].answers.insert(field, value);
                    }
                    Some(v) => {
                        let mut nested = visits(&list[m]);
                        nested[v].answers.insert(field, value);
                        list[m]
                            .answers
                            .insert("visits".to_owned(), Answer::Repeat(nested));
                    }
                }
                write_members(doc, list, now);
            } else {
                let path = match v {
                    None => format!("members#{}/{field}", list[m].id),
                    Some(v) => format!(
                        "members#{}/visits#{}/{field}",
                        list[m].id,
                        visits(&list[m])[v].id
                    ),
                };
                doc.set_answer(&path, &value, now).expect("edit");
            }
        }
        Step::Delete(_, pick, by_list) => {
            let all = instances(&list);
            if all.is_empty() {
                return;
            }
            let (m, v) = all[pick % all.len()];
            let member = list[m].id.clone();
            match (v, by_list) {
                (None, true) => {
                    ledger.deleted.insert(list.remove(m).id);
                    write_members(doc, list, now);
                }
                (None, false) => {
                    ledger.deleted.insert(member.clone());
                    doc.remove_answer(&format!("members#{member}"), now)
                        .expect("delete");
                }
                (Some(v), true) => {
                    let mut nested = visits(&list[m]);
                    ledger.deleted.insert(nested.remove(v).id);
                    list[m]
                        .answers
                        .insert("visits".to_owned(), Answer::Repeat(nested));
                    write_members(doc, list, now);
                }
                (Some(v), false) => {
                    let visit = visits(&list[m])[v].id.clone();
                    ledger.deleted.insert(visit.clone());
                    doc.remove_answer(&format!("members#{member}/visits#{visit}"), now)
                        .expect("delete nested");
                }
            }
        }
        Step::Move(_, pick) => {
            if list.is_empty() {
                return;
            }
            let member = list.remove(pick % list.len());
            list.insert(0, member);
            let want: Vec<String> = list.iter().map(|i| i.id.clone()).collect();
            write_members(doc, list, now);
            let got: Vec<String> = members(doc).into_iter().map(|i| i.id).collect();
            assert_eq!(got, want, "a local move shows as written");
        }
        Step::SetTop(_, q, value) => {
            doc.set_answer(TOP[q], &value, now).expect("set top");
        }
        Step::Sync { .. } => unreachable!("handled by the caller"),
    }
}

fn sync(docs: &mut [ResponseDoc], from: usize, to: usize) {
    if from == to {
        return;
    }
    let have = docs[to].heads();
    let changes = docs[from].changes_since(&have);
    docs[to].apply_changes(changes).expect("apply");
}

fn full_exchange(docs: &mut [ResponseDoc]) {
    for r in 1..REPLICAS {
        sync(docs, r, 0);
    }
    for r in 1..REPLICAS {
        sync(docs, 0, r);
    }
}

fn run(steps: Vec<Step>) -> Result<(), TestCaseError> {
    let mut first = created();
    let mut docs = vec![
        replica(&mut first, 11, "device:a"),
        replica(&mut first, 12, "device:b"),
        replica(&mut first, 13, "member:c"),
    ];
    let mut ledger = Ledger::default();
    let mut now = T0;
    for step in steps {
        now += 1;
        match step {
            Step::Sync { from, to } => sync(&mut docs, from, to),
            Step::Add(r, _)
            | Step::AddNested(r, ..)
            | Step::Edit { r, .. }
            | Step::Delete(r, ..)
            | Step::Move(r, _)
            | Step::SetTop(r, ..) => apply(&mut docs[r], &mut ledger, r, step, now),
        }
        for doc in &docs {
            doc.check_readable().expect("every replica stays readable");
        }
    }

    full_exchange(&mut docs);
    check_same(&mut docs)?;
    let want = ledger.expected();
    for (r, doc) in docs.iter().enumerate() {
        prop_assert_eq!(id_paths(doc), want.clone(), "replica {}", r);
    }
    let conflicts = docs[0].conflicts().expect("conflicts");
    for conflict in &conflicts {
        // Every listed path reads, showing the first listed value.
        prop_assert_eq!(
            docs[0].answer(&conflict.question).expect("path reads"),
            Some(conflict.values[0].value.clone())
        );
    }

    // One replica resolves every conflict (with its second value, so the shown value
    // changes); once merged, no replica lists any, and they still agree.
    now += 1;
    for conflict in &conflicts {
        let value = conflict.values[1].value.clone();
        docs[2]
            .resolve(&conflict.question, &value, now)
            .expect("resolve");
        prop_assert_eq!(
            docs[2].answer(&conflict.question).expect("answer"),
            Some(value)
        );
    }
    full_exchange(&mut docs);
    check_same(&mut docs)?;
    for (r, doc) in docs.iter().enumerate() {
        prop_assert_eq!(doc.conflicts().expect("conflicts"), vec![], "replica {}", r);
        prop_assert_eq!(id_paths(doc), want.clone(), "replica {}", r);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn replicas_editing_repeats_converge_keep_instances_and_settle_conflicts(
        steps in prop::collection::vec(step(), 1..60)
    ) {
        run(steps)?;
    }
}
