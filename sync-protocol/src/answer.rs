//! The value of one answer, shared by survey validation, the documents and the wire.
//!
//! Answers are scalars: whole numbers, decimals and text. Dates (`YYYY-MM-DD`), datetimes
//! (RFC 3339), `select_multiple` choices (space-separated names, as in XLSForm) and geopoints
//! (`"lat lon [alt [accuracy]]"`) are text in XLSForm's own encodings, so that an answer is always
//! one Automerge scalar and an export is a 1:1 copy.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// One answer value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Answer {
    /// A whole number (`integer` questions; also accepted by `decimal` questions).
    Integer(i64),
    /// A decimal number (`decimal` questions).
    Decimal(f64),
    /// Text and every text-encoded type (select, date, datetime, geopoint).
    Text(String),
}

/// The answers of one response, by question name.
pub type Answers = BTreeMap<String, Answer>;

impl Answer {
    /// The value as text, the way an export writes it.
    pub fn to_text(&self) -> String {
        self.to_string()
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
