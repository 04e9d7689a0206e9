//! An interview kept between requests: a web form holds no interview in memory between one
//! page and the next; each page carries where the respondent is, and the server picks the
//! interview up from it.

use super::*;

/// Everything an interview knows but its survey and clock, to serialise (CBOR or JSON).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Snapshot {
    answers: Answers,
    pos: Option<Step>,
    trail: Vec<Step>,
    notes: Vec<(Location, usize)>,
    state: State,
    language: Option<String>,
    /// The respondent's offset from UTC, in seconds.
    offset: i32,
}

impl Snapshot {
    /// The answers so far.
    pub fn answers(&self) -> &Answers {
        &self.answers
    }
}

impl Interview {
    /// Where the interview is now, to pick it up later with [`Interview::restore`].
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            answers: self.answers.clone(),
            pos: self.pos.clone(),
            trail: self.trail.clone(),
            notes: self.notes.clone(),
            state: self.state,
            language: self.language.clone(),
            offset: self.offset.whole_seconds(),
        }
    }

    /// Pick up an interview of `survey` where `snapshot` left it. A snapshot names steps by
    /// their place in the form; one that the answers no longer have is passed over by the
    /// next screen as a step that no longer exists would be.
    pub fn restore(survey: Arc<Survey>, ctx: ValidationContext, snapshot: Snapshot) -> Interview {
        let mut iv = Interview {
            survey,
            ctx,
            answers: snapshot.answers,
            pos: snapshot.pos,
            trail: snapshot.trail,
            notes: snapshot.notes,
            state: snapshot.state,
            language: snapshot.language,
            offset: time::UtcOffset::from_whole_seconds(snapshot.offset)
                .unwrap_or(time::UtcOffset::UTC),
        };
        // A step past the form's end (a snapshot of another version) ends at the review.
        if iv.pos.as_ref().is_some_and(|p| !iv.steps().contains(p)) {
            iv.pos = None;
        }
        iv
    }

    /// The language labels are shown in.
    pub fn language(&self) -> Option<&str> {
        self.language.as_deref()
    }

    /// Read typed times in another offset from UTC from now on.
    pub fn set_offset(&mut self, offset: time::UtcOffset) {
        self.offset = offset;
    }

    /// Show labels in another language from now on.
    pub fn set_language(&mut self, language: Option<String>) {
        self.language = language;
    }

    /// The survey asked.
    pub fn survey(&self) -> &Arc<Survey> {
        &self.survey
    }
}
