//! One survey response as one Automerge document, so that edits made offline on a device and
//! on the server merge, real conflicts stay visible with who wrote each value, and one
//! respondent's data can be exported or erased on its own.

use std::borrow::Borrow;
use std::collections::BTreeMap;

use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, ChangeHash, ObjId, ROOT, ReadDoc, ScalarValue};
use uuid::Uuid;

use super::change::{commit_options, parse_changes, raw_changes_since};
use super::repeat::{self, Level, WriteLog};
use super::scalar::{
    Path, answer_from_value, check_header, opt_str, req_int, req_map, req_max_time, req_str,
    req_time, same_answer,
};
pub use super::status::Status;
use super::{DocError, RESPONSE_SCHEMA_REPEATS};
use crate::{Answer, Answers};

pub(super) const KIND: &str = "response";
/// Root key of the latest review's comment (Str; absent when the review left none).
const REVIEW_COMMENT: &str = "review_comment";

/// What the creator of a response knows about it up front.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewResponse {
    /// The response's id.
    pub response_id: Uuid,
    /// The survey it answers.
    pub survey_id: Uuid,
    /// The survey version it is collected on; it stays valid on that version.
    pub survey_version: u32,
    /// The device that creates it.
    pub author_device: String,
}

/// What [`ResponseDoc::check_readable`] read from a response.
#[derive(Clone, Debug, PartialEq)]
pub struct Readable {
    pub meta: ResponseMeta,
    pub answers: Answers,
    pub conflicts: Vec<Conflict>,
}

/// A response's metadata as currently merged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseMeta {
    /// The response's id.
    pub response_id: Uuid,
    /// The survey it answers.
    pub survey_id: Uuid,
    /// The survey version it was collected on.
    pub survey_version: u32,
    /// The device that created it.
    pub author_device: String,
    /// When it was created, ms since the epoch.
    pub created_at: i64,
    /// The latest edit time any writer recorded, ms since the epoch.
    pub updated_at: i64,
    /// Where it is in its life.
    pub status: Status,
}

/// An answer that writers set concurrently to different values.
#[derive(Clone, Debug, PartialEq)]
pub struct Conflict {
    /// The question's name, or for a question inside a repeat instance its path
    /// `REPEAT#ID/QUESTION` (nested: `A#ID/B#ID2/QUESTION`), which [`ResponseDoc::resolve`]
    /// and [`ResponseDoc::answer`] accept.
    pub question: String,
    /// Every concurrent value, the one [`ResponseDoc::answers`] shows first, then the others in
    /// the same order on every replica.
    pub values: Vec<ConflictValue>,
}

/// One of the concurrent values of a conflicted answer, and who set it.
#[derive(Clone, Debug, PartialEq)]
pub struct ConflictValue {
    /// The value.
    pub value: Answer,
    /// The writer's actor id, in hex.
    pub actor: String,
    /// The label the writer recorded in `authors`, if any (e.g. `device:tablet-07`).
    pub author: Option<String>,
}

/// One response document.
///
/// Edits need a writer (an actor id and a label); a document opened with [`ResponseDoc::load`]
/// or [`ResponseDoc::from_changes`] has none until [`ResponseDoc::with_writer`], which is all a
/// reader such as the server's validator needs.
#[derive(Debug, Clone)]
pub struct ResponseDoc {
    pub(super) doc: AutoCommit,
    pub(super) writer: Option<Writer>,
}

#[derive(Debug, Clone)]
pub(super) struct Writer {
    pub(super) actor_hex: String,
    pub(super) label: String,
    /// Whether `authors` is known to hold this writer, so the check is made once per session
    /// rather than on every edit.
    pub(super) recorded: bool,
}

impl ResponseDoc {
    /// Creates a response as `actor` (the writer's per-install id), labelled `author_label` in
    /// `authors`, with status `draft` and no answers, at `now` (ms since the epoch).
    ///
    /// Only the creator calls this; every other replica starts from its changes.
    pub fn new(
        meta: NewResponse,
        actor: impl Into<ActorId>,
        author_label: &str,
        now: i64,
    ) -> Result<Self, DocError> {
        Self::create(
            meta,
            actor,
            author_label,
            &Answers::new(),
            Status::Draft,
            now,
        )
    }

    /// Opens a document from the bytes of [`ResponseDoc::save`], without a writer.
    pub fn load(bytes: &[u8]) -> Result<Self, DocError> {
        let doc = AutoCommit::load(bytes).map_err(DocError::Load)?;
        check_header(&doc, KIND, RESPONSE_SCHEMA_REPEATS)?;
        Ok(Self { doc, writer: None })
    }

    /// Builds a document from raw changes (all of them, starting with the creator's first),
    /// without a writer.
    pub fn from_changes<I, B>(changes: I) -> Result<Self, DocError>
    where
        I: IntoIterator<Item = B>,
        B: AsRef<[u8]>,
    {
        let mut doc = AutoCommit::new();
        doc.apply_changes(parse_changes(changes)?)?;
        check_header(&doc, KIND, RESPONSE_SCHEMA_REPEATS)?;
        Ok(Self { doc, writer: None })
    }

    /// Sets who makes the following edits: `actor` is the writer's per-install id, `label` the
    /// human name recorded in `authors` the first time this actor edits the document.
    ///
    /// One actor must not edit two copies of a document independently: its changes are
    /// numbered per actor, so the copies would no longer merge.
    pub fn with_writer(mut self, actor: impl Into<ActorId>, label: &str) -> Self {
        self.set_writer(actor, label);
        self
    }

    /// Like [`ResponseDoc::with_writer`], in place.
    pub fn set_writer(&mut self, actor: impl Into<ActorId>, label: &str) {
        let actor = actor.into();
        self.writer = Some(Writer {
            actor_hex: actor.to_hex_string(),
            label: label.to_owned(),
            recorded: false,
        });
        self.doc.set_actor(actor);
    }

    /// The whole document in Automerge's compact form.
    pub fn save(&mut self) -> Vec<u8> {
        self.doc.save()
    }

    /// The whole document saved without compressing its columns: what a check that it saves
    /// and loads again needs (the columns are the ones [`ResponseDoc::save`] writes; deflating
    /// them is lossless and costs most of the save), not what to store.
    pub fn save_uncompressed(&mut self) -> Vec<u8> {
        self.doc.save_nocompress()
    }

    // ---- edits: each is one change, or none when it would not change anything ----

    /// Sets one answer. Returns the new change's hash, or `None` when the answer already had
    /// this value (no change is made).
    ///
    /// `question` is a question name or a path into a repeat instance (`REPEAT#ID/QUESTION`,
    /// nested `A#ID/B#ID2/QUESTION`). A scalar value is put, superseding every value this
    /// replica sees. A repeat value ([`Answer::Repeat`]) is written granularly: listed
    /// instances with a new id (or none: they get a fresh UUID, shown by
    /// [`ResponseDoc::answers`]) are added, stored ones not listed are deleted, kept ones get
    /// only their changed and removed fields (an unchanged field that is in conflict stays in
    /// conflict; resolve it by its path) and a new `_order` where the order changed. An empty
    /// list removes the repeat. The first instance of a document moves it to schema 2.
    pub fn set_answer(
        &mut self,
        question: &str,
        value: &Answer,
        now: i64,
    ) -> Result<Option<ChangeHash>, DocError> {
        self.edit(now, |doc| {
            let mut log = write_log(doc)?;
            write_path(doc, question, value, &mut log)?;
            note_schema(doc, &log)
        })
    }

    /// Sets many answers in one change (a page of a form saved at once); each as
    /// [`ResponseDoc::set_answer`] writes it.
    pub fn set_answers<I, Q, A>(
        &mut self,
        answers: I,
        now: i64,
    ) -> Result<Option<ChangeHash>, DocError>
    where
        I: IntoIterator<Item = (Q, A)>,
        Q: AsRef<str>,
        A: Borrow<Answer>,
    {
        self.edit(now, |doc| {
            let mut log = write_log(doc)?;
            for (question, value) in answers {
                write_path(doc, question.as_ref(), value.borrow(), &mut log)?;
            }
            note_schema(doc, &log)
        })
    }

    /// Removes an answer (a question left blank again): a scalar, or every instance of a
    /// repeat. `question` may be a path (`REPEAT#ID/QUESTION`); a path ending in an instance
    /// (`REPEAT#ID`, `A#ID/B#ID2`) removes that one instance.
    pub fn remove_answer(
        &mut self,
        question: &str,
        now: i64,
    ) -> Result<Option<ChangeHash>, DocError> {
        self.edit(now, |doc| {
            let path = repeat::parse_path(question)?;
            let level = locate(doc, question, &path)?;
            repeat::remove_answer(doc, &level, path.last)
        })
    }

    /// Moves the response to `status`.
    pub fn set_status(&mut self, status: Status, now: i64) -> Result<Option<ChangeHash>, DocError> {
        self.edit(now, |doc| {
            doc.put(ROOT, "status", status.as_str())?;
            Ok(())
        })
    }

    /// Records a coordinator's review: `status` (a review state) and its comment (`None`
    /// clears an earlier one), in one change.
    pub fn set_review(
        &mut self,
        status: Status,
        comment: Option<&str>,
        now: i64,
    ) -> Result<Option<ChangeHash>, DocError> {
        if !status.is_review() {
            return Err(DocError::BadValue {
                field: "status".to_owned(),
                reason: format!("{status} is not a review; use has_issues, approved or rejected"),
            });
        }
        self.edit(now, |doc| {
            doc.put(ROOT, "status", status.as_str())?;
            match comment {
                Some(text) => doc.put(ROOT, REVIEW_COMMENT, text)?,
                None if doc.get(ROOT, REVIEW_COMMENT)?.is_some() => {
                    doc.delete(ROOT, REVIEW_COMMENT)?
                }
                None => {}
            }
            Ok(())
        })
    }

    /// Resolves a conflict on `question` (a name or a path, as [`Conflict::question`] lists it)
    /// by writing `value`.
    ///
    /// The write names every value this replica sees as its predecessor, so once merged it
    /// supersedes all of them on every replica and the conflict is gone. (A value written
    /// concurrently with the resolution is a new conflict, as it should be.) `value` may be one
    /// of the conflicting values or a new one.
    pub fn resolve(
        &mut self,
        question: &str,
        value: &Answer,
        now: i64,
    ) -> Result<Option<ChangeHash>, DocError> {
        // A put in Automerge already supersedes every value visible at that key; when `value`
        // equals the current winner Automerge writes only deletions of the others, which has
        // the same effect.
        self.set_answer(question, value, now)
    }

    /// Runs `ops` in one transaction and commits it as one change stamped with the writer's
    /// label (first time) and `updated_at`, or rolls it back when it failed or changed nothing.
    fn edit(
        &mut self,
        now: i64,
        ops: impl FnOnce(&mut AutoCommit) -> Result<(), DocError>,
    ) -> Result<Option<ChangeHash>, DocError> {
        let Self { doc, writer } = self;
        let writer = writer.as_mut().ok_or(DocError::NoWriter)?;
        let outcome = ops(doc).and_then(|()| {
            if doc.pending_ops() == 0 {
                // Automerge turned every write into a no-op (same value); keep it that way
                // rather than producing a change that only moves `updated_at`.
                return Ok(false);
            }
            if !writer.recorded {
                let authors = req_map(doc, &ROOT, Path("", "authors"))?;
                if doc.get(&authors, writer.actor_hex.as_str())?.is_none() {
                    doc.put(&authors, writer.actor_hex.as_str(), writer.label.as_str())?;
                }
            }
            doc.put(ROOT, "updated_at", ScalarValue::Timestamp(now))?;
            Ok(true)
        });
        match outcome {
            Ok(true) => {
                writer.recorded = true;
                Ok(doc.commit_with(commit_options(now)))
            }
            Ok(false) => {
                doc.rollback();
                Ok(None)
            }
            Err(e) => {
                doc.rollback();
                Err(e)
            }
        }
    }

    // ---- reads ----

    /// The response's metadata.
    pub fn meta(&self) -> Result<ResponseMeta, DocError> {
        let doc = &self.doc;
        let survey_version = req_int(doc, &ROOT, Path("", "survey_version"))?;
        let survey_version = u32::try_from(survey_version).map_err(|_| DocError::BadValue {
            field: "survey_version".to_owned(),
            reason: format!("{survey_version} is not a version number"),
        })?;
        Ok(ResponseMeta {
            response_id: req_uuid(doc, "response_id")?,
            survey_id: req_uuid(doc, "survey_id")?,
            survey_version,
            author_device: req_str(doc, &ROOT, Path("", "author_device"))?,
            created_at: req_time(doc, &ROOT, Path("", "created_at"))?,
            updated_at: req_max_time(doc, &ROOT, Path("", "updated_at"))?,
            status: req_str(doc, &ROOT, Path("", "status"))?.parse()?,
        })
    }

    /// The response's status.
    pub fn status(&self) -> Result<Status, DocError> {
        req_str(&self.doc, &ROOT, Path("", "status"))?.parse()
    }

    /// The comment of the latest review, if it left one.
    pub fn review_comment(&self) -> Result<Option<String>, DocError> {
        opt_str(&self.doc, &ROOT, Path("", REVIEW_COMMENT))
    }

    /// One answer, by name or by path into a repeat instance (`REPEAT#ID/QUESTION`); a
    /// repeat's name gives its instances. For a conflicted answer, Automerge's deterministic
    /// winner.
    pub fn answer(&self, question: &str) -> Result<Option<Answer>, DocError> {
        let path = repeat::parse_path(question)?;
        let level = locate(&self.doc, question, &path)?;
        repeat::read_answer(&self.doc, &level, path.last)
    }

    /// All answers; for a conflicted answer, Automerge's deterministic winner (the same on
    /// every replica holding the same changes). Each repeat is an [`Answer::Repeat`] with its
    /// instances in order (by `_order`, ties by id), each with its id and answers.
    pub fn answers(&self) -> Result<Answers, DocError> {
        repeat::read_answers(&self.doc, &Level::root(answers_map(&self.doc)?))
    }

    /// Answers that writers set concurrently to different values, with every value and who set
    /// it, ordered by question path; answers inside repeat instances included, named by their
    /// path. Concurrent writes of the same value are not a conflict, and neither are
    /// concurrent moves of one instance (its `_order`: the shown order is deterministic).
    pub fn conflicts(&self) -> Result<Vec<Conflict>, DocError> {
        let doc = &self.doc;
        let mut authors: Option<ObjId> = None;
        let mut conflicts = Vec::new();
        let mut pending = vec![Level::root(answers_map(doc)?)];
        while let Some(level) = pending.pop() {
            let scan = repeat::scan(doc, &level)?;
            // `map_range` flags keys holding several concurrent values, so only those pay for
            // `get_all`.
            for scalar in scan.scalars.iter().filter(|s| s.conflict) {
                if let Some(conflict) = conflict_at(doc, &level, &scalar.key, &mut authors)? {
                    conflicts.push(conflict);
                }
            }
            for instance in scan.repeats.into_values().flatten() {
                pending.push(level.child(&instance.key, instance.obj)?);
            }
        }
        conflicts.sort_by(|a, b| a.question.cmp(&b.question));
        Ok(conflicts)
    }

    /// Everyone who has written the document: actor id (hex) → label.
    pub fn authors(&self) -> Result<BTreeMap<String, String>, DocError> {
        let doc = &self.doc;
        let authors = req_map(doc, &ROOT, Path("", "authors"))?;
        let mut out = BTreeMap::new();
        for item in doc.map_range(&authors, ..) {
            let actor = item.key.to_string();
            if let Some(label) = author_label(doc, &authors, &actor)? {
                out.insert(actor, label);
            }
        }
        Ok(out)
    }

    // ---- changes, for the sync engine ----

    /// The hashes of the newest changes: everything in the document is one of them or an
    /// ancestor.
    pub fn heads(&mut self) -> Vec<ChangeHash> {
        self.doc.get_heads()
    }

    /// Raw bytes of every change that is not an ancestor of `heads`, dependencies first.
    ///
    /// Hashes this document does not hold are ignored, so heads naming changes unknown here
    /// yield everything not provably held by the peer (harmless, since applying is
    /// idempotent, but wasteful): pass heads both sides know.
    pub fn changes_since(&mut self, heads: &[ChangeHash]) -> Vec<Vec<u8>> {
        raw_changes_since(&mut self.doc, heads)
    }

    /// Raw bytes of every change, dependencies first.
    pub fn all_changes(&mut self) -> Vec<Vec<u8>> {
        raw_changes_since(&mut self.doc, &[])
    }

    /// [`ResponseDoc::all_changes`], each with its hash (known once a change is encoded, so
    /// nobody needs to parse the bytes again for it).
    pub fn all_changes_hashed(&mut self) -> Vec<(ChangeHash, Vec<u8>)> {
        self.doc
            .get_changes(&[])
            .iter()
            .map(|change| (change.hash(), change.raw_bytes().to_vec()))
            .collect()
    }

    /// Applies raw changes. Changes already present are skipped, so this is idempotent;
    /// changes whose dependencies are missing wait inside the document until those arrive
    /// (see [`ResponseDoc::missing_deps`]). A malformed change rejects the whole batch.
    pub fn apply_changes<I, B>(&mut self, changes: I) -> Result<(), DocError>
    where
        I: IntoIterator<Item = B>,
        B: AsRef<[u8]>,
    {
        self.doc.apply_changes(parse_changes(changes)?)?;
        Ok(())
    }

    /// Hashes of changes that applied changes depend on but this document does not have.
    pub fn missing_deps(&mut self) -> Vec<ChangeHash> {
        self.doc.get_missing_deps(&[])
    }

    /// An empty document, to apply a response's first changes to when checking them (it is
    /// not a response until those changes make it one; see [`ResponseDoc::check_readable`]).
    pub fn staging() -> Self {
        Self {
            doc: AutoCommit::new(),
            writer: None,
        }
    }

    /// Whether the change with this hash is part of the document (applied, not waiting for a
    /// dependency). Reads the change's metadata only: encoding the change itself to find it
    /// costs forty times as much.
    pub fn has_change(&mut self, hash: &ChangeHash) -> bool {
        self.doc.get_change_meta_by_hash(hash).is_some()
    }

    /// Reads everything a reader of a response reads (header, metadata, answers, conflicts,
    /// authors), so that a document that passes can be listed, shown, exported and synced;
    /// returns what it read, for a caller that goes on to show it.
    pub fn check_readable(&self) -> Result<Readable, DocError> {
        check_header(&self.doc, KIND, RESPONSE_SCHEMA_REPEATS)?;
        let meta = self.meta()?;
        let answers = self.answers()?;
        let conflicts = self.conflicts()?;
        self.authors()?;
        Ok(Readable {
            meta,
            answers,
            conflicts,
        })
    }

    /// Applies every change of `other` that this document lacks.
    pub fn merge(&mut self, other: &mut ResponseDoc) -> Result<(), DocError> {
        self.doc.merge(&mut other.doc)?;
        Ok(())
    }
}

#[cfg(test)]
impl ResponseDoc {
    /// Every concurrent value of `question` with the id (counter, actor) of the op that wrote
    /// it, for tests that model the register independently of `conflicts`.
    pub(crate) fn value_ids(&self, question: &str) -> Vec<(Answer, u64, ActorId)> {
        let answers = answers_map(&self.doc).expect("answers map");
        self.doc
            .get_all(&answers, question)
            .expect("get_all")
            .into_iter()
            .map(|(value, id)| match id {
                automerge::ObjId::Id(counter, actor, _) => (
                    answer_from_value(Path("answers", question), &value).expect("answer"),
                    counter,
                    actor,
                ),
                automerge::ObjId::Root => panic!("a value's id is never the root"),
            })
            .collect()
    }
}

fn answers_map(doc: &AutoCommit) -> Result<ObjId, DocError> {
    req_map(doc, &ROOT, Path("", "answers"))
}

/// The level holding the last name of `path`.
fn locate(
    doc: &AutoCommit,
    question: &str,
    path: &repeat::QuestionPath<'_>,
) -> Result<Level, DocError> {
    repeat::locate(doc, Level::root(answers_map(doc)?), question, path)
}

/// Writes `value` at the name or path `question`.
fn write_path(
    doc: &mut AutoCommit,
    question: &str,
    value: &Answer,
    log: &mut WriteLog,
) -> Result<(), DocError> {
    let path = repeat::parse_path(question)?;
    let level = locate(doc, question, &path)?;
    repeat::write_answer(doc, &level, path.last, value, log)
}

/// A log for an edit of `doc`, which may hold instances when its schema is 2 (the change that
/// stores a document's first instance also writes schema 2).
fn write_log(doc: &AutoCommit) -> Result<WriteLog, DocError> {
    Ok(WriteLog {
        may_hold_instances: req_int(doc, &ROOT, Path("", "schema"))? >= RESPONSE_SCHEMA_REPEATS,
        added_instance: false,
    })
}

/// Moves a document that just got its first repeat instance to schema 2, in the same change,
/// so that builds reading only schema 1 refuse it instead of misreading instances as answers.
fn note_schema(doc: &mut AutoCommit, log: &WriteLog) -> Result<(), DocError> {
    if log.added_instance && req_int(doc, &ROOT, Path("", "schema"))? < RESPONSE_SCHEMA_REPEATS {
        doc.put(ROOT, "schema", RESPONSE_SCHEMA_REPEATS)?;
    }
    Ok(())
}

/// The conflict at `key` of `level`, if its concurrent values are not all equal.
fn conflict_at(
    doc: &AutoCommit,
    level: &Level,
    key: &str,
    authors: &mut Option<ObjId>,
) -> Result<Option<Conflict>, DocError> {
    let mut values = Vec::new();
    // Automerge lists concurrent values oldest first and its winner last; show the winner
    // first, as the value `answers` reports.
    for (value, id) in doc.get_all(&level.obj, key)?.into_iter().rev() {
        values.push((answer_from_value(level.path(key), &value)?, id));
    }
    let Some((first, _)) = values.first() else {
        return Ok(None);
    };
    if values.iter().all(|(value, _)| same_answer(first, value)) {
        return Ok(None);
    }
    let authors = match authors {
        Some(id) => id.clone(),
        None => authors
            .insert(req_map(doc, &ROOT, Path("", "authors"))?)
            .clone(),
    };
    let values = values
        .into_iter()
        .map(|(value, id)| {
            let actor = match id {
                automerge::ObjId::Id(_, actor, _) => actor.to_hex_string(),
                // Root is an object id, never the id of a map entry's value.
                automerge::ObjId::Root => String::new(),
            };
            let author = author_label(doc, &authors, &actor)?;
            Ok(ConflictValue {
                value,
                actor,
                author,
            })
        })
        .collect::<Result<_, DocError>>()?;
    Ok(Some(Conflict {
        question: level.question(key),
        values,
    }))
}

fn req_uuid(doc: &AutoCommit, key: &'static str) -> Result<Uuid, DocError> {
    let text = req_str(doc, &ROOT, Path("", key))?;
    Uuid::parse_str(&text).map_err(|e| DocError::BadValue {
        field: key.to_owned(),
        reason: e.to_string(),
    })
}

/// The label an actor recorded, if it recorded one.
fn author_label(
    doc: &AutoCommit,
    authors: &ObjId,
    actor_hex: &str,
) -> Result<Option<String>, DocError> {
    opt_str(doc, authors, Path("authors", actor_hex))
}

#[cfg(test)]
pub(crate) mod tests;
