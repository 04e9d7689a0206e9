//! A response's status: the enumerator's part of its life and the coordinator's review, as
//! stored in the document's `status` register.

use std::fmt;
use std::str::FromStr;

use super::DocError;

/// Where a response is in its life: the enumerator's part (draft, submitted, discarded) and
/// the coordinator's review, in ODK Central's terms (a submitted response is "received"
/// until reviewed; an edit after a review shows as `edited`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    /// Being filled in.
    Draft,
    /// Handed in by the enumerator (ODK Central: received, not yet reviewed).
    Submitted,
    /// A coordinator found problems and sent it back.
    HasIssues,
    /// A coordinator accepted it; devices may no longer change it.
    Approved,
    /// A coordinator refused it.
    Rejected,
    /// Changed after a review: it needs another look.
    Edited,
    /// Given up by its enumerator; kept out of exports.
    Discarded,
}

impl Status {
    /// Every status, in the order of a response's life.
    pub const ALL: [Status; 7] = [
        Status::Draft,
        Status::Submitted,
        Status::HasIssues,
        Status::Approved,
        Status::Rejected,
        Status::Edited,
        Status::Discarded,
    ];

    /// The name stored in the document and shown to users.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Draft => "draft",
            Status::Submitted => "submitted",
            Status::HasIssues => "has_issues",
            Status::Approved => "approved",
            Status::Rejected => "rejected",
            Status::Edited => "edited",
            Status::Discarded => "discarded",
        }
    }

    /// A coordinator's verdict (has issues, approved, rejected).
    pub fn is_review(self) -> bool {
        matches!(
            self,
            Status::HasIssues | Status::Approved | Status::Rejected
        )
    }

    /// Handed in and not given up: what an export holds unless asked otherwise.
    pub fn is_collected(self) -> bool {
        !matches!(self, Status::Draft | Status::Discarded)
    }

    /// The status after an edit of the answers: a reviewed response shows that it changed.
    pub fn after_edit(self) -> Status {
        if self.is_review() {
            Status::Edited
        } else {
            self
        }
    }

    /// The list of names, for messages: `draft, submitted, …`.
    pub fn names() -> String {
        Status::ALL.map(Status::as_str).join(", ")
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = DocError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(status) = Status::ALL.into_iter().find(|st| st.as_str() == s) {
            return Ok(status);
        }
        match s {
            // Written before review states existed: a reviewed response was an accepted one.
            "reviewed" => Ok(Status::Approved),
            other => Err(DocError::BadValue {
                field: "status".to_owned(),
                reason: format!(
                    "unknown status {other:?}; expected one of {}",
                    Status::names()
                ),
            }),
        }
    }
}
