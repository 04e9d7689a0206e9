//! Typed reads of Automerge values shared by both documents: every place a peer's unexpected
//! shape can surface goes through here, so it becomes a `DocError` rather than a panic.

use std::borrow::Cow;
use std::fmt;

use automerge::{
    AutoCommit, ObjId, ObjType, ReadDoc, ScalarValue, ScalarValueRef, Value, ValueRef,
};

use super::DocError;
use crate::{Answer, Answers, RepeatInstance};

/// A key path for error messages, formatted only when an error is actually built.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Path<'a>(pub(crate) &'a str, pub(crate) &'a str);

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str(self.1)
        } else {
            write!(f, "{}.{}", self.0, self.1)
        }
    }
}

pub(crate) fn missing(path: Path<'_>) -> DocError {
    DocError::MissingField {
        field: path.to_string(),
    }
}

pub(crate) fn wrong(path: Path<'_>, expected: &'static str, found: String) -> DocError {
    DocError::WrongType {
        field: path.to_string(),
        expected,
        found,
    }
}

pub(crate) fn describe_scalar(s: &ScalarValue) -> String {
    let name = match s {
        ScalarValue::Bytes(_) => "bytes",
        ScalarValue::Str(_) => "a string",
        ScalarValue::Int(_) => "an int",
        ScalarValue::Uint(_) => "a uint",
        ScalarValue::F64(_) => "an f64",
        ScalarValue::Counter(_) => "a counter",
        ScalarValue::Timestamp(_) => "a timestamp",
        ScalarValue::Boolean(_) => "a boolean",
        ScalarValue::Unknown { .. } => "a value of unknown type",
        ScalarValue::Null => "null",
    };
    name.to_owned()
}

pub(crate) fn describe_object(t: ObjType) -> String {
    format!("a {t:?} object").to_lowercase()
}

fn describe(value: &Value<'_>) -> String {
    match value {
        Value::Object(t) => describe_object(*t),
        Value::Scalar(s) => describe_scalar(s),
    }
}

/// The winning value at `key`, or `MissingField`.
fn get<'d>(doc: &'d AutoCommit, obj: &ObjId, path: Path<'_>) -> Result<Value<'d>, DocError> {
    match doc.get(obj, path.1)? {
        Some((value, _)) => Ok(value),
        None => Err(missing(path)),
    }
}

/// A string at `key`, or `None` when the key is absent.
pub(crate) fn opt_str(
    doc: &AutoCommit,
    obj: &ObjId,
    path: Path<'_>,
) -> Result<Option<String>, DocError> {
    match doc.get(obj, path.1)? {
        None => Ok(None),
        Some((Value::Scalar(s), _)) => match s.as_ref() {
            ScalarValue::Str(text) => Ok(Some(text.to_string())),
            other => Err(wrong(path, "a string", describe_scalar(other))),
        },
        Some((other, _)) => Err(wrong(path, "a string", describe(&other))),
    }
}

/// A string at `key`.
pub(crate) fn req_str(doc: &AutoCommit, obj: &ObjId, path: Path<'_>) -> Result<String, DocError> {
    opt_str(doc, obj, path)?.ok_or_else(|| missing(path))
}

/// An integer at `key` (Int, or Uint that fits an i64).
pub(crate) fn req_int(doc: &AutoCommit, obj: &ObjId, path: Path<'_>) -> Result<i64, DocError> {
    let value = get(doc, obj, path)?;
    match &value {
        Value::Scalar(s) => match s.as_ref() {
            ScalarValue::Int(i) => Ok(*i),
            ScalarValue::Uint(u) => i64::try_from(*u).map_err(|_| DocError::BadValue {
                field: path.to_string(),
                reason: format!("{u} is out of range"),
            }),
            other => Err(wrong(path, "an int", describe_scalar(other))),
        },
        other => Err(wrong(path, "an int", describe(other))),
    }
}

/// A finite number at `key` (F64, or an integer), for positions such as a repeat instance's
/// `_order`.
pub(crate) fn req_position(doc: &AutoCommit, obj: &ObjId, path: Path<'_>) -> Result<f64, DocError> {
    let value = get(doc, obj, path)?;
    let n = match &value {
        Value::Scalar(s) => match s.as_ref() {
            ScalarValue::F64(d) => *d,
            #[allow(clippy::cast_precision_loss)]
            ScalarValue::Int(i) => *i as f64,
            #[allow(clippy::cast_precision_loss)]
            ScalarValue::Uint(u) => *u as f64,
            other => return Err(wrong(path, "an f64", describe_scalar(other))),
        },
        other => return Err(wrong(path, "an f64", describe(other))),
    };
    if n.is_finite() {
        Ok(n)
    } else {
        Err(DocError::BadValue {
            field: path.to_string(),
            reason: format!("{n} is not a finite position"),
        })
    }
}

fn time_of(value: &Value<'_>, path: Path<'_>) -> Result<i64, DocError> {
    match value {
        Value::Scalar(s) => match s.as_ref() {
            ScalarValue::Timestamp(t) | ScalarValue::Int(t) => Ok(*t),
            other => Err(wrong(path, "a timestamp", describe_scalar(other))),
        },
        other => Err(wrong(path, "a timestamp", describe(other))),
    }
}

/// A time in ms at `key` (Timestamp, or Int).
pub(crate) fn req_time(doc: &AutoCommit, obj: &ObjId, path: Path<'_>) -> Result<i64, DocError> {
    time_of(&get(doc, obj, path)?, path)
}

/// The latest of the concurrently written times at `key`: for "last updated" the newest
/// write is the truthful answer, whichever op Automerge picks as the winner.
pub(crate) fn req_max_time(doc: &AutoCommit, obj: &ObjId, path: Path<'_>) -> Result<i64, DocError> {
    let mut latest = None;
    for (value, _) in doc.get_all(obj, path.1)? {
        let t = time_of(&value, path)?;
        latest = Some(latest.map_or(t, |l: i64| l.max(t)));
    }
    latest.ok_or_else(|| missing(path))
}

/// The id of the map at `key`.
pub(crate) fn req_map(doc: &AutoCommit, obj: &ObjId, path: Path<'_>) -> Result<ObjId, DocError> {
    match doc.get(obj, path.1)? {
        Some((Value::Object(ObjType::Map), id)) => Ok(id),
        Some((other, _)) => Err(wrong(path, "a map", describe(&other))),
        None => Err(missing(path)),
    }
}

/// Checks `schema` (1 to `newest`) and `kind` at the root, so that a document of another kind
/// or of a newer layout is refused before any field is trusted. Returns the schema.
pub(crate) fn check_header(
    doc: &AutoCommit,
    kind: &'static str,
    newest: i64,
) -> Result<i64, DocError> {
    let root = automerge::ROOT;
    let schema = req_int(doc, &root, Path("", "schema"))?;
    if schema > newest || schema < 1 {
        return Err(DocError::UnsupportedSchema {
            found: schema,
            supported: newest,
        });
    }
    let found = req_str(doc, &root, Path("", "kind"))?;
    if found != kind {
        return Err(DocError::WrongKind {
            expected: kind,
            found,
        });
    }
    Ok(schema)
}

/// The Automerge scalar an answer is stored as (a repeat is not one: see `super::repeat`).
pub(crate) fn answer_to_scalar(question: &str, answer: &Answer) -> Result<ScalarValue, DocError> {
    Ok(match answer {
        Answer::Integer(i) => ScalarValue::Int(*i),
        Answer::Decimal(d) if d.is_finite() => ScalarValue::F64(*d),
        Answer::Decimal(_) => {
            return Err(DocError::NonFiniteDecimal {
                question: question.to_owned(),
            });
        }
        Answer::Text(s) => ScalarValue::Str(s.as_str().into()),
        Answer::Repeat(_) => {
            return Err(DocError::BadPath {
                path: question.to_owned(),
                reason: "a repeat's instances are maps, not one value".to_owned(),
            });
        }
    })
}

const ANSWER_TYPES: &str = "a string, an int or an f64";

/// An answer read through `get`/`get_all`, at `path` (e.g. `answers`, `q`).
pub(crate) fn answer_from_value(path: Path<'_>, value: &Value<'_>) -> Result<Answer, DocError> {
    match value {
        Value::Scalar(s) => match s.as_ref() {
            ScalarValue::Str(text) => Ok(Answer::Text(text.to_string())),
            ScalarValue::Int(i) => Ok(Answer::Integer(*i)),
            ScalarValue::F64(d) => Ok(Answer::Decimal(*d)),
            other => Err(wrong(path, ANSWER_TYPES, describe_scalar(other))),
        },
        other => Err(wrong(path, ANSWER_TYPES, describe(other))),
    }
}

/// An answer read through `map_range`, which hands out borrowed values.
pub(crate) fn answer_from_ref(path: Path<'_>, value: &ValueRef<'_>) -> Result<Answer, DocError> {
    match value {
        ValueRef::Scalar(ScalarValueRef::Str(text)) => Ok(Answer::Text(Cow::to_string(text))),
        ValueRef::Scalar(ScalarValueRef::Int(i)) => Ok(Answer::Integer(*i)),
        ValueRef::Scalar(ScalarValueRef::F64(d)) => Ok(Answer::Decimal(*d)),
        ValueRef::Scalar(other) => Err(wrong(
            path,
            ANSWER_TYPES,
            describe_scalar(&ScalarValue::from(other)),
        )),
        ValueRef::Object(t) => Err(wrong(path, ANSWER_TYPES, describe_object(*t))),
    }
}

/// Whether two answers are the same value, as far as a conflict is concerned: same kind and
/// same content. Decimals compare as Automerge compares them when it decides that a write is a
/// no-op (`==`, so `0.0` equals `-0.0`), plus identical bits so that a NaN a peer wrote still
/// equals itself. Repeats are the same when they list the same instance ids in the same order
/// with the same answers.
pub(crate) fn same_answer(a: &Answer, b: &Answer) -> bool {
    match (a, b) {
        (Answer::Integer(x), Answer::Integer(y)) => x == y,
        (Answer::Decimal(x), Answer::Decimal(y)) => x == y || x.to_bits() == y.to_bits(),
        (Answer::Text(x), Answer::Text(y)) => x == y,
        (Answer::Repeat(x), Answer::Repeat(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(i, j)| same_instance(i, j))
        }
        _ => false,
    }
}

fn same_instance(a: &RepeatInstance, b: &RepeatInstance) -> bool {
    a.id == b.id && same_answers(&a.answers, &b.answers)
}

/// [`same_answer`] for every answer of two maps.
pub(crate) fn same_answers(a: &Answers, b: &Answers) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|((qa, va), (qb, vb))| qa == qb && same_answer(va, vb))
}
