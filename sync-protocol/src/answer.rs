//! The value of one answer, shared by survey validation, the documents and the wire.
//!
//! Answers are scalars: whole numbers, decimals and text. Dates (`YYYY-MM-DD`), datetimes
//! (RFC 3339), `select_multiple` choices (space-separated names, as in XLSForm) and geopoints
//! (`"lat lon [alt [accuracy]]"`) are text in XLSForm's own encodings, so that an answer is always
//! one Automerge scalar and an export is a 1:1 copy. The one exception is a repeat: its value
//! is its instances, each with a stable id and its own answers (nested repeats included). In
//! JSON a repeat is an array of objects, each with its answers and optionally its `_id`.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// One answer value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum Answer {
    /// A whole number (`integer` questions; also accepted by `decimal` questions).
    Integer(i64),
    /// A decimal number (`decimal` questions).
    Decimal(f64),
    /// Text and every text-encoded type (select, date, datetime, geopoint).
    Text(String),
    /// The instances of a repeat, in order.
    Repeat(Vec<RepeatInstance>),
}

/// One instance of a repeat: a household member, a visit. Serialized as one map: `_id` (when
/// it has one) and its answers.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct RepeatInstance {
    /// Stable across replicas, so concurrent additions on two devices both survive and edits
    /// find their instance. Empty until the instance is first stored (the store assigns one).
    #[serde(rename = "_id", default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// The instance's answers by question name.
    #[serde(flatten)]
    pub answers: Answers,
}

/// The answers of one response, by question name.
pub type Answers = BTreeMap<String, Answer>;

// By hand rather than derived with `flatten`: serde writes a flattened struct as a map of
// unknown length, which CBOR encodes with an indefinite length, and fieldsync's CBOR reader
// (rightly) takes definite lengths only.
impl Serialize for RepeatInstance {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let with_id = !self.id.is_empty();
        let mut map = serializer.serialize_map(Some(self.answers.len() + usize::from(with_id)))?;
        if with_id {
            map.serialize_entry("_id", &self.id)?;
        }
        for (k, v) in &self.answers {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

// By hand too: the instance is one JSON object, its `_id` beside the answers (a map), which
// a derived schema of the flattened map would not say. It names `Answer` by reference only,
// so collecting the schemas does not recurse.
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for RepeatInstance {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Ref, Type};
        ObjectBuilder::new()
            .description(Some(
                "One instance of a repeat: its answers by question name, and `_id`, its stable id \
                 (absent until the instance is first stored).",
            ))
            .property("_id", ObjectBuilder::new().schema_type(Type::String))
            .additional_properties(Some(AdditionalProperties::RefOr(
                Ref::from_schema_name("Answer").into(),
            )))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for RepeatInstance {}

impl Answer {
    /// The value as text, the way an export writes it.
    pub fn to_text(&self) -> String {
        self.to_string()
    }

    /// The instances of a repeat answer.
    pub fn as_repeat(&self) -> Option<&[RepeatInstance]> {
        match self {
            Answer::Repeat(r) => Some(r),
            _ => None,
        }
    }

    /// The text of a text answer, `None` for numbers.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Answer::Text(s) => Some(s),
            _ => None,
        }
    }
}

impl fmt::Display for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Answer::Integer(i) => write!(f, "{i}"),
            Answer::Decimal(d) => write!(f, "{d}"),
            Answer::Text(s) => f.write_str(s),
            Answer::Repeat(r) => {
                let n = r.len();
                write!(f, "[{n} {}]", if n == 1 { "entry" } else { "entries" })
            }
        }
    }
}

impl From<&str> for Answer {
    fn from(s: &str) -> Self {
        Answer::Text(s.to_owned())
    }
}

impl From<String> for Answer {
    fn from(s: String) -> Self {
        Answer::Text(s)
    }
}

impl From<i64> for Answer {
    fn from(i: i64) -> Self {
        Answer::Integer(i)
    }
}

impl From<f64> for Answer {
    fn from(d: f64) -> Self {
        Answer::Decimal(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeat_round_trips_through_cbor_with_definite_lengths() {
        let mut inner = Answers::new();
        inner.insert("age".into(), Answer::Integer(4));
        let mut a = Answers::new();
        a.insert(
            "members".into(),
            Answer::Repeat(vec![
                RepeatInstance {
                    id: "a1".into(),
                    answers: inner.clone(),
                },
                RepeatInstance {
                    id: String::new(),
                    answers: inner,
                },
            ]),
        );
        let mut bytes = Vec::new();
        ciborium::into_writer(&a, &mut bytes).expect("encodes");
        crate::cbor::scan(&bytes, &crate::cbor::Limits::default()).expect("definite lengths");
        let back: Answers = ciborium::from_reader(bytes.as_slice()).expect("decodes");
        assert_eq!(back, a);
        let json = serde_json::to_value(&a).expect("json");
        assert_eq!(json["members"][0]["_id"], "a1");
        assert!(json["members"][1].get("_id").is_none());
        assert_eq!(serde_json::from_value::<Answers>(json).expect("back"), a);
    }
}
