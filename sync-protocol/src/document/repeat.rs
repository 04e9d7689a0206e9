//! Repeats inside a response's `answers` (schema 2). Each instance is its own map under a key
//! `REPEAT#ID` of its own, so instances added concurrently on two replicas never meet at one
//! key and both survive a merge. This module owns that layout: instance keys and question
//! paths, the order of instances, the granular writes that keep concurrent edits inside
//! instances mergeable, and the recursive reads.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjId, ObjType, ReadDoc, ScalarValue, Value, ValueRef};
use uuid::Uuid;

use super::DocError;
use super::scalar::{
    Path, answer_from_ref, answer_from_value, answer_to_scalar, describe_object, describe_scalar,
    req_position, same_answer, wrong,
};
use crate::{Answer, Answers, RepeatInstance};

/// The key of an instance's position among its siblings.
pub(crate) const ORDER_KEY: &str = "_order";
/// Between a repeat's name and an instance's id in the instance's key.
const ID_SEP: char = '#';
/// Between the segments of a question path (`A#ID/B#ID2/Q`).
const PATH_SEP: char = '/';
/// How deeply repeats may nest. Forms nest a few levels; a crafted document could nest
/// thousands and exhaust a reader's stack.
pub(crate) const MAX_DEPTH: usize = 32;

/// One map of answers: the root `answers` map or an instance somewhere inside it.
#[derive(Clone, Debug)]
pub(crate) struct Level {
    pub(crate) obj: ObjId,
    /// Its key path in error messages: `answers`, `answers.members#ID`.
    field: String,
    /// Its prefix in question paths: empty, `members#ID/`.
    question: String,
    depth: usize,
}

impl Level {
    /// The root `answers` map.
    pub(crate) fn root(obj: ObjId) -> Self {
        Self {
            obj,
            field: "answers".to_owned(),
            question: String::new(),
            depth: 0,
        }
    }

    fn is_instance(&self) -> bool {
        self.depth > 0
    }

    /// The instance map `obj` stored at `key` of this level.
    pub(crate) fn child(&self, key: &str, obj: ObjId) -> Result<Level, DocError> {
        let field = format!("{}.{key}", self.field);
        if self.depth >= MAX_DEPTH {
            return Err(DocError::BadValue {
                field,
                reason: format!("repeats nest deeper than {MAX_DEPTH} levels"),
            });
        }
        Ok(Level {
            obj,
            field,
            question: format!("{}{key}{PATH_SEP}", self.question),
            depth: self.depth + 1,
        })
    }

    /// `key` of this level, for error messages.
    pub(crate) fn path<'a>(&'a self, key: &'a str) -> Path<'a> {
        Path(&self.field, key)
    }

    /// The question path of `key` of this level (`members#ID/age`).
    pub(crate) fn question(&self, key: &str) -> String {
        format!("{}{key}", self.question)
    }
}

/// An instance as stored.
#[derive(Clone, Debug)]
pub(crate) struct StoredInstance {
    pub(crate) id: String,
    /// `REPEAT#ID`.
    pub(crate) key: String,
    pub(crate) obj: ObjId,
    order: f64,
}

/// A scalar answer as stored.
#[derive(Clone, Debug)]
pub(crate) struct StoredScalar {
    pub(crate) key: String,
    pub(crate) answer: Answer,
    /// Whether the key holds concurrent values (which may still all be equal).
    pub(crate) conflict: bool,
}

/// Everything one level holds, checked.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    /// Scalar answers, in key order.
    pub(crate) scalars: Vec<StoredScalar>,
    /// Instances by repeat name, each list in display order.
    pub(crate) repeats: BTreeMap<String, Vec<StoredInstance>>,
}

/// Reads and checks every key of `level` (not the instances' contents).
pub(crate) fn scan(doc: &AutoCommit, level: &Level) -> Result<Scan, DocError> {
    let mut scan = Scan::default();
    for item in doc.map_range(&level.obj, ..) {
        let key: &str = &item.key;
        if level.is_instance() && key == ORDER_KEY {
            continue;
        }
        match key.split_once(ID_SEP) {
            Some((name, id)) => {
                let instance = instance_at(doc, level, key, (name, id), &item.value, item.id())?;
                scan.repeats
                    .entry(name.to_owned())
                    .or_default()
                    .push(instance);
            }
            None => scan.scalars.push(StoredScalar {
                answer: answer_from_ref(level.path(key), &item.value)?,
                key: key.to_owned(),
                conflict: item.conflict,
            }),
        }
    }
    for (name, instances) in &mut scan.repeats {
        if scan.scalars.iter().any(|s| s.key == *name) {
            return Err(clash(level, name));
        }
        sort_instances(instances);
    }
    Ok(scan)
}

/// Every answer of `level`, repeats with their instances in order, recursively.
pub(crate) fn read_answers(doc: &AutoCommit, level: &Level) -> Result<Answers, DocError> {
    let scan = scan(doc, level)?;
    let mut out: Answers = scan
        .scalars
        .into_iter()
        .map(|s| (s.key, s.answer))
        .collect();
    for (name, instances) in scan.repeats {
        let instances = read_instances(doc, level, instances)?;
        out.insert(name, Answer::Repeat(instances));
    }
    Ok(out)
}

/// The answer `name` of `level`: a scalar, a repeat's instances, or `None`.
pub(crate) fn read_answer(
    doc: &AutoCommit,
    level: &Level,
    name: &str,
) -> Result<Option<Answer>, DocError> {
    check_name(level, name)?;
    let scalar = match doc.get(&level.obj, name)? {
        Some((value, _)) => Some(answer_from_value(level.path(name), &value)?),
        None => None,
    };
    let instances = instances_of(doc, level, name)?;
    match (scalar, instances.is_empty()) {
        (scalar, true) => Ok(scalar),
        (Some(_), false) => Err(clash(level, name)),
        (None, false) => Ok(Some(Answer::Repeat(read_instances(doc, level, instances)?))),
    }
}

fn read_instances(
    doc: &AutoCommit,
    level: &Level,
    instances: Vec<StoredInstance>,
) -> Result<Vec<RepeatInstance>, DocError> {
    instances
        .into_iter()
        .map(|instance| {
            let child = level.child(&instance.key, instance.obj)?;
            Ok(RepeatInstance {
                answers: read_answers(doc, &child)?,
                id: instance.id,
            })
        })
        .collect()
}

/// A question path split into the instances it passes through and its last name.
#[derive(Debug)]
pub(crate) struct QuestionPath<'a> {
    /// `(repeat, id)` of each instance, outermost first.
    instances: Vec<(&'a str, &'a str)>,
    /// The question (or, for a removal, `REPEAT#ID`) inside the innermost instance.
    pub(crate) last: &'a str,
}

/// Splits `A#ID/B#ID2/Q`; a plain name is a path with no instances.
pub(crate) fn parse_path(path: &str) -> Result<QuestionPath<'_>, DocError> {
    let mut segments: Vec<&str> = path.split(PATH_SEP).collect();
    let last = segments.pop().unwrap_or_default();
    let instances = segments
        .into_iter()
        .map(|segment| match split_instance_key(segment) {
            Some(pair) => Ok(pair),
            None => Err(DocError::BadPath {
                path: path.to_owned(),
                reason: format!(
                    "`{segment}` is not a repeat instance; a path reads REPEAT#ID/…/QUESTION"
                ),
            }),
        })
        .collect::<Result<_, _>>()?;
    Ok(QuestionPath { instances, last })
}

/// The level holding the last name of `path`: the root, or the innermost instance it names.
pub(crate) fn locate(
    doc: &AutoCommit,
    root: Level,
    full: &str,
    path: &QuestionPath<'_>,
) -> Result<Level, DocError> {
    let mut level = root;
    for (repeat, id) in &path.instances {
        let key = format!("{repeat}{ID_SEP}{id}");
        level = match doc.get(&level.obj, key.as_str())? {
            Some((Value::Object(ObjType::Map), obj)) => level.child(&key, obj)?,
            Some((Value::Object(t), _)) => {
                return Err(wrong(level.path(&key), "a map", describe_object(t)));
            }
            Some((Value::Scalar(s), _)) => {
                return Err(wrong(level.path(&key), "a map", describe_scalar(&s)));
            }
            None => {
                return Err(DocError::BadPath {
                    path: full.to_owned(),
                    reason: format!(
                        "this copy holds no instance `{}`; it was never stored here or was deleted",
                        level.question(&key)
                    ),
                });
            }
        };
    }
    Ok(level)
}

/// What a write knows of the document's header, and what it did that the header cares about.
#[derive(Debug, Default)]
pub(crate) struct WriteLog {
    /// Whether the document may hold instances (schema 2), so that a scalar written at the top
    /// level must look for instances of its name to delete; a schema-1 document holds none,
    /// and skipping the look keeps the common write (and batch creation) as cheap as before.
    pub(crate) may_hold_instances: bool,
    /// A repeat instance was created (the document now needs schema 2).
    pub(crate) added_instance: bool,
}

/// Writes `value` as the answer `name` of `level`. A scalar is put, superseding every value
/// this replica sees (so writing a conflicted answer resolves it); a repeat is written
/// granularly (see [`write_repeat`]). Either replaces an answer of the other kind.
pub(crate) fn write_answer(
    doc: &mut AutoCommit,
    level: &Level,
    name: &str,
    value: &Answer,
    log: &mut WriteLog,
) -> Result<(), DocError> {
    check_name(level, name)?;
    match value {
        Answer::Repeat(instances) => write_repeat(doc, level, name, instances, log),
        scalar => {
            let stored = answer_to_scalar(&level.question(name), scalar)?;
            doc.put(&level.obj, name, stored)?;
            if log.may_hold_instances || level.is_instance() {
                delete_instances(doc, level, name)?;
            }
            Ok(())
        }
    }
}

/// The stored form of a scalar answer `name` written into a fresh `level` (checked as
/// [`write_answer`] checks it), or `None` for a repeat, which is written granularly.
pub(crate) fn fresh_scalar(
    level: &Level,
    name: &str,
    value: &Answer,
) -> Result<Option<ScalarValue>, DocError> {
    check_name(level, name)?;
    match value {
        Answer::Repeat(_) => Ok(None),
        scalar => answer_to_scalar(&level.question(name), scalar).map(Some),
    }
}

/// Removes the answer `name` of `level` (a scalar, or every instance of a repeat), or, when
/// `name` is `REPEAT#ID`, that one instance.
pub(crate) fn remove_answer(
    doc: &mut AutoCommit,
    level: &Level,
    name: &str,
) -> Result<(), DocError> {
    if name.contains(ID_SEP) {
        if split_instance_key(name).is_none() {
            return Err(bad_name(level, name));
        }
        doc.delete(&level.obj, name)?;
        return Ok(());
    }
    check_name(level, name)?;
    doc.delete(&level.obj, name)?;
    delete_instances(doc, level, name)
}

/// Writes a repeat's instances as the writer lists them, touching only what differs from what
/// this replica stores, so that concurrent edits elsewhere in the repeat survive the merge:
/// instances whose id is new (or empty: it gets a fresh one) are added, stored instances not
/// listed are deleted, kept instances get only their changed fields (a field whose shown
/// value is already the listed one is not written, so a conflict on it stays until resolved)
/// and their removed fields deleted; `_order` is written only where the order changed.
fn write_repeat(
    doc: &mut AutoCommit,
    level: &Level,
    name: &str,
    instances: &[RepeatInstance],
    log: &mut WriteLog,
) -> Result<(), DocError> {
    if doc.get(&level.obj, name)?.is_some() {
        doc.delete(&level.obj, name)?;
    }
    let stored = instances_of(doc, level, name)?;
    let ids = instance_ids(level, name, instances)?;
    let by_id: BTreeMap<&str, &StoredInstance> =
        stored.iter().map(|s| (s.id.as_str(), s)).collect();
    let listed: BTreeSet<&str> = ids.iter().map(String::as_str).collect();
    for instance in &stored {
        if !listed.contains(instance.id.as_str()) {
            doc.delete(&level.obj, instance.key.as_str())?;
        }
    }
    let current: Vec<Option<(f64, &str)>> = ids
        .iter()
        .map(|id| by_id.get(id.as_str()).map(|s| (s.order, s.id.as_str())))
        .collect();
    let orders = plan_orders(&current);
    for ((instance, id), order) in instances.iter().zip(&ids).zip(orders) {
        let key = format!("{name}{ID_SEP}{id}");
        let obj = match by_id.get(id.as_str()) {
            Some(kept) => {
                if kept.order != order {
                    doc.put(&kept.obj, ORDER_KEY, order)?;
                }
                kept.obj.clone()
            }
            None => {
                let obj = doc.put_object(&level.obj, key.as_str(), ObjType::Map)?;
                doc.put(&obj, ORDER_KEY, order)?;
                log.added_instance = true;
                log.may_hold_instances = true;
                obj
            }
        };
        let child = level.child(&key, obj)?;
        write_instance(doc, &child, &instance.answers, log)?;
    }
    Ok(())
}

/// Makes the instance at `level` hold exactly `answers`, writing only the differences.
fn write_instance(
    doc: &mut AutoCommit,
    level: &Level,
    answers: &Answers,
    log: &mut WriteLog,
) -> Result<(), DocError> {
    for (name, value) in answers {
        check_name(level, name)?;
        match value {
            Answer::Repeat(instances) => write_repeat(doc, level, name, instances, log)?,
            scalar => {
                let shown = match doc.get(&level.obj, name.as_str())? {
                    // A value this build cannot read is overwritten, not reported.
                    Some((value, _)) => answer_from_value(level.path(name), &value).ok(),
                    None => None,
                };
                if !shown.is_some_and(|shown| same_answer(&shown, scalar)) {
                    let stored = answer_to_scalar(&level.question(name), scalar)?;
                    doc.put(&level.obj, name.as_str(), stored)?;
                }
                delete_instances(doc, level, name)?;
            }
        }
    }
    let stale: Vec<String> = doc
        .map_range(&level.obj, ..)
        .filter_map(|item| {
            let key: &str = &item.key;
            let name = key.split_once(ID_SEP).map_or(key, |(name, _)| name);
            (key != ORDER_KEY && !answers.contains_key(name)).then(|| key.to_owned())
        })
        .collect();
    for key in stale {
        doc.delete(&level.obj, key.as_str())?;
    }
    Ok(())
}

/// Gives every instance without an id a fresh one (a hyphenated UUID v4), recursively, so that
/// a caller that goes on editing what it wrote knows its instances' ids up front.
pub fn assign_instance_ids(answers: &mut Answers) {
    for value in answers.values_mut() {
        if let Answer::Repeat(instances) = value {
            for instance in instances {
                if instance.id.is_empty() {
                    instance.id = fresh_id();
                }
                assign_instance_ids(&mut instance.answers);
            }
        }
    }
}

/// Whether any repeat in `answers` lists an instance.
pub(crate) fn has_instances(answers: &Answers) -> bool {
    answers
        .values()
        .any(|value| matches!(value, Answer::Repeat(instances) if !instances.is_empty()))
}

fn fresh_id() -> String {
    Uuid::new_v4().hyphenated().to_string()
}

/// The ids the listed instances are stored under: given ones checked, empty ones fresh.
fn instance_ids(
    level: &Level,
    name: &str,
    instances: &[RepeatInstance],
) -> Result<Vec<String>, DocError> {
    let mut seen = BTreeSet::new();
    instances
        .iter()
        .map(|instance| {
            let id = if instance.id.is_empty() {
                fresh_id()
            } else {
                instance.id.clone()
            };
            let key = format!("{name}{ID_SEP}{id}");
            if id.contains([ID_SEP, PATH_SEP]) {
                return Err(DocError::BadPath {
                    path: level.question(&key),
                    reason: "an instance id cannot contain `#` or `/`".to_owned(),
                });
            }
            if !seen.insert(id.clone()) {
                return Err(DocError::BadPath {
                    path: level.question(&key),
                    reason: "the repeat lists this instance twice".to_owned(),
                });
            }
            Ok(id)
        })
        .collect()
}

/// Refuses names that would be read back as something else.
fn check_name(level: &Level, name: &str) -> Result<(), DocError> {
    if name.contains([ID_SEP, PATH_SEP]) {
        return Err(bad_name(level, name));
    }
    if level.is_instance() && name == ORDER_KEY {
        return Err(DocError::BadPath {
            path: level.question(name),
            reason: "`_order` is reserved inside repeat instances for their position".to_owned(),
        });
    }
    Ok(())
}

fn bad_name(level: &Level, name: &str) -> DocError {
    DocError::BadPath {
        path: level.question(name),
        reason: "not a question name: `#` and `/` separate repeat instances and path segments; \
                 write a question inside an instance as REPEAT#ID/QUESTION"
            .to_owned(),
    }
}

fn clash(level: &Level, name: &str) -> DocError {
    DocError::BadValue {
        field: level.path(name).to_string(),
        reason: "it is both an answer and a repeat with instances".to_owned(),
    }
}

/// `REPEAT#ID` as `(repeat, id)`, when both are non-empty and the id has no further `#`.
fn split_instance_key(key: &str) -> Option<(&str, &str)> {
    match key.split_once(ID_SEP) {
        Some((repeat, id))
            if !repeat.is_empty() && !id.is_empty() && !id.contains([ID_SEP, PATH_SEP]) =>
        {
            Some((repeat, id))
        }
        _ => None,
    }
}

/// Checks one stored instance key and its map.
fn instance_at(
    doc: &AutoCommit,
    level: &Level,
    key: &str,
    (repeat, id): (&str, &str),
    value: &ValueRef<'_>,
    obj: ObjId,
) -> Result<StoredInstance, DocError> {
    let bad = |reason: &str| DocError::BadValue {
        field: level.path(key).to_string(),
        reason: reason.to_owned(),
    };
    if repeat.is_empty() {
        return Err(bad("an instance key needs the repeat's name before `#`"));
    }
    if id.is_empty() {
        return Err(bad("an instance key needs the instance's id after `#`"));
    }
    if id.contains([ID_SEP, PATH_SEP]) {
        return Err(bad("an instance id cannot contain `#` or `/`"));
    }
    match value {
        ValueRef::Object(ObjType::Map) => {}
        ValueRef::Object(t) => return Err(wrong(level.path(key), "a map", describe_object(*t))),
        ValueRef::Scalar(s) => {
            return Err(wrong(
                level.path(key),
                "a map",
                describe_scalar(&ScalarValue::from(s)),
            ));
        }
    }
    let field = level.path(key).to_string();
    let order = req_position(doc, &obj, Path(&field, ORDER_KEY))?;
    Ok(StoredInstance {
        id: id.to_owned(),
        key: key.to_owned(),
        obj,
        order,
    })
}

/// The stored instances of repeat `name` at `level`, in display order.
fn instances_of(
    doc: &AutoCommit,
    level: &Level,
    name: &str,
) -> Result<Vec<StoredInstance>, DocError> {
    // Every `name#…` key sorts between `name#` and `name$` ('$' follows '#').
    let range = format!("{name}{ID_SEP}")..format!("{name}$");
    let mut instances = doc
        .map_range(&level.obj, range)
        .map(|item| {
            let key: &str = &item.key;
            let (repeat, id) = key.split_once(ID_SEP).unwrap_or((key, ""));
            instance_at(doc, level, key, (repeat, id), &item.value, item.id())
        })
        .collect::<Result<Vec<_>, _>>()?;
    sort_instances(&mut instances);
    Ok(instances)
}

fn delete_instances(doc: &mut AutoCommit, level: &Level, name: &str) -> Result<(), DocError> {
    for instance in instances_of(doc, level, name)? {
        doc.delete(&level.obj, instance.key.as_str())?;
    }
    Ok(())
}

/// Display order: by `_order`, ties (concurrent additions) by id, the same on every replica.
fn sort_instances(instances: &mut [StoredInstance]) {
    instances.sort_by(|a, b| position_cmp((a.order, &a.id), (b.order, &b.id)));
}

fn position_cmp(a: (f64, &str), b: (f64, &str)) -> Ordering {
    a.0.total_cmp(&b.0).then_with(|| a.1.cmp(b.1))
}

/// Positions for instances in the order a writer lists them, given the stored position of
/// those already stored. The longest run of stored instances already in order keeps its
/// positions; the others (new or moved) go between their kept neighbours, after the last kept
/// one (max + 1, so that concurrent appends tie and sort by id) or before the first. When
/// floating point leaves no room between two neighbours, every instance is renumbered.
pub(crate) fn plan_orders(current: &[Option<(f64, &str)>]) -> Vec<f64> {
    let kept = longest_in_order(current);
    let n = current.len();
    let mut out = vec![0.0; n];
    let mut i = 0;
    while i < n {
        if let Some(order) = kept[i] {
            out[i] = order;
            i += 1;
            continue;
        }
        let start = i;
        while i < n && kept[i].is_none() {
            i += 1;
        }
        let low = start.checked_sub(1).and_then(|j| kept[j]);
        let high = kept.get(i).copied().flatten();
        let count = to_f64(i - start);
        for (j, slot) in out[start..i].iter_mut().enumerate() {
            let j = to_f64(j + 1);
            *slot = match (low, high) {
                (None, None) => j,
                (Some(low), None) => low + j,
                (None, Some(high)) => high - (count + 1.0 - j),
                (Some(low), Some(high)) => low + (high - low) * j / (count + 1.0),
            };
        }
    }
    let fits = (1..n).all(|j| out[j - 1] < out[j] || (kept[j - 1].is_some() && kept[j].is_some()));
    if fits {
        out
    } else {
        (1..=n).map(to_f64).collect()
    }
}

#[allow(clippy::cast_precision_loss)] // counts of instances are far below 2^52
fn to_f64(n: usize) -> f64 {
    n as f64
}

/// For each listed instance, its stored position if it belongs to the longest run of stored
/// instances whose positions already increase in list order (patience sorting).
fn longest_in_order(current: &[Option<(f64, &str)>]) -> Vec<Option<f64>> {
    let stored: Vec<(usize, (f64, &str))> = current
        .iter()
        .enumerate()
        .filter_map(|(i, c)| c.map(|key| (i, key)))
        .collect();
    // tails[k]: index into `stored` of the smallest tail of an increasing run of length k + 1.
    let mut tails: Vec<usize> = Vec::new();
    let mut prev: Vec<Option<usize>> = vec![None; stored.len()];
    for (s, (_, key)) in stored.iter().enumerate() {
        let pos = tails.partition_point(|&t| position_cmp(stored[t].1, *key) == Ordering::Less);
        if pos > 0 {
            prev[s] = Some(tails[pos - 1]);
        }
        if pos == tails.len() {
            tails.push(s);
        } else {
            tails[pos] = s;
        }
    }
    let mut kept = vec![None; current.len()];
    let mut at = tails.last().copied();
    while let Some(s) = at {
        let (i, (order, _)) = stored[s];
        kept[i] = Some(order);
        at = prev[s];
    }
    kept
}
