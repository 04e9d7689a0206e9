//! Responses on the device: creating, editing, submitting, resolving conflicts, reading and
//! listing. Each operation is one transaction that writes the new document state and the new
//! changes to the outbox together, so a crash can never keep one without the other.

use fieldsync_protocol::api::Role;
use fieldsync_protocol::crypto::Purpose;
use fieldsync_protocol::document::{Conflict, ResponseDoc, ResponseMeta, Status};
use fieldsync_protocol::survey::{ValidationContext, ValidationError};
use fieldsync_protocol::{Answer, Answers};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use uuid::Uuid;

use super::batch::{HashedChange, hash_changes};
use super::media::{delete_doc_media, media_references};
use super::{Store, StoreError, now_ms, now_utc, today};

/// A response as the device shows it.
#[derive(Clone, Debug)]
pub struct LocalResponse {
    pub meta: ResponseMeta,
    pub answers: Answers,
    pub conflicts: Vec<Conflict>,
    pub errors: Vec<ValidationError>,
    /// Why the server refused it, if it did.
    pub rejected: Option<String>,
    /// Whether changes wait to be pushed.
    pub pending: bool,
}

/// One row of a response listing.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ResponseRow {
    pub id: Uuid,
    pub survey_id: Uuid,
    pub survey_version: u32,
    pub status: String,
    pub errors: u32,
    pub conflicts: u32,
    pub pending: bool,
    pub rejected: Option<String>,
    pub updated_at: i64,
    /// The answer to the survey's subject field (who the response is about), when a listing
    /// asked for it: it is inside the sealed document.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

/// What [`Store::discard`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Discarded {
    /// It never left this device and is gone.
    Deleted,
    /// The server holds it: marked discarded, which the next sync sends.
    Marked,
}

/// Filters for [`Store::list_responses`].
#[derive(Clone, Debug, Default)]
pub struct ResponseFilter {
    pub survey_id: Option<Uuid>,
    pub status: Option<Status>,
    pub conflicted_only: bool,
}

fn doc_err(id: &Uuid) -> impl Fn(fieldsync_protocol::document::DocError) -> StoreError + '_ {
    move |e| StoreError::Corrupt(format!("response {id}: {e}"))
}

impl Store {
    /// Start a new response on the survey's latest version (or `version`), with `answers`.
    /// A submitted response must be valid; a draft may be incomplete but its answers are still
    /// checked and its problems returned.
    pub fn create_response(
        &mut self,
        survey_key: &str,
        version: Option<u32>,
        answers: &Answers,
        status: Status,
    ) -> Result<(Uuid, Vec<ValidationError>), StoreError> {
        let mut batch = self.create_batch(survey_key, version)?;
        let result = batch.add(self, answers, status)?;
        let id = match result {
            Ok(id) => id,
            Err(errors) => {
                return Err(StoreError::Invalid(format!(
                    "the response is not valid: {}",
                    join_errors(&errors)
                )));
            }
        };
        let errors = batch.last_errors.clone();
        batch.commit(self)?;
        Ok((id, errors))
    }

    /// Apply answer edits (a `None` value removes the answer) and optionally a status change.
    /// Submitting requires the response to be valid.
    pub fn edit_response(
        &mut self,
        id: &Uuid,
        edits: &[(String, Option<Answer>)],
        status: Option<Status>,
    ) -> Result<Vec<ValidationError>, StoreError> {
        // The read of the current state and the write of the new one are one immediate
        // transaction: a sync in another process cannot slip in between and be overwritten.
        let tx = self.immediate()?;
        self.refuse_if_restricted(id)?;
        let (mut doc, rev) = self.load_doc(id)?;
        let meta = doc.meta().map_err(doc_err(id))?;
        self.may_edit(id, meta.status)?;
        let survey = self.survey_version(&meta.survey_id, meta.survey_version)?;
        for (name, _) in edits {
            let repeat = survey.group(name).is_some_and(|g| g.repeat);
            if survey.question(name).is_none() && !repeat {
                return Err(StoreError::Invalid(format!(
                    "survey version {} has no question {name:?}; `fieldsync survey show {} --version {}` lists them",
                    meta.survey_version, meta.survey_id, meta.survey_version
                )));
            }
        }
        let before = media_references(&survey, &doc.answers().map_err(doc_err(id))?);
        let heads = doc.heads();
        let now = now_ms();
        let (sets, removes): (Vec<_>, Vec<_>) = edits.iter().partition(|(_, v)| v.is_some());
        if !sets.is_empty() {
            doc.set_answers(
                sets.iter()
                    .filter_map(|(n, v)| v.as_ref().map(|v| (n.as_str(), v))),
                now,
            )
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        }
        for (name, _) in removes {
            doc.remove_answer(name, now)
                .map_err(|e| StoreError::Invalid(e.to_string()))?;
        }
        let mut answers = doc.answers().map_err(doc_err(id))?;
        // Calculations follow the edit, as they would on a device; handing a response in also
        // stamps `end` (and any metadata still missing).
        let ctx = ValidationContext::at(now_utc());
        let completed = if status == Some(Status::Submitted) {
            survey.submitted(&answers, &ctx)
        } else {
            survey.calculate(&answers, &ctx)
        };
        if completed != answers {
            let changed: Vec<(&str, &Answer)> = completed
                .iter()
                .filter(|(k, v)| answers.get(*k) != Some(*v))
                .map(|(k, v)| (k.as_str(), v))
                .collect();
            if !changed.is_empty() {
                doc.set_answers(changed, now)
                    .map_err(|e| StoreError::Invalid(e.to_string()))?;
            }
            for gone in answers.keys().filter(|k| !completed.contains_key(*k)) {
                doc.remove_answer(gone, now)
                    .map_err(|e| StoreError::Invalid(e.to_string()))?;
            }
            answers = doc.answers().map_err(doc_err(id))?;
        }
        let errors = survey.validate(&answers, &ValidationContext::new(today()));
        // A reviewed response that changes says so, until it is reviewed again.
        let status = status.or_else(|| {
            let edited = !edits.is_empty() && doc.heads() != heads;
            (edited && meta.status.is_review()).then(|| meta.status.after_edit())
        });
        if let Some(status) = status {
            if status != Status::Draft && !errors.is_empty() {
                return Err(StoreError::Invalid(format!(
                    "response {id} cannot be marked {status} while it has problems: {}",
                    join_errors(&errors)
                )));
            }
            doc.set_status(status, now)
                .map_err(|e| StoreError::Invalid(e.to_string()))?;
        }
        let changes = doc.changes_since(&heads);
        self.save_doc(&tx, id, &mut doc, rev + 1, errors.len(), true, None)?;
        self.add_outbox(&tx, id, &changes)?;
        if let (Some(before), Some(after)) = (before, media_references(&survey, &answers)) {
            self.link_media(&tx, id, &after, Some(&before))?;
        }
        tx.commit()?;
        Ok(errors)
    }

    /// Refuse an edit this client may not make: of a discarded response, or of an approved
    /// one from a device (the server would refuse it too).
    fn may_edit(&self, id: &Uuid, status: Status) -> Result<(), StoreError> {
        let device = self.account().is_none_or(|a| a.role == Role::Enumerator);
        match status {
            Status::Discarded => Err(StoreError::Invalid(format!(
                "response {id} was discarded; nothing of it is changed any more"
            ))),
            Status::Approved if device => Err(StoreError::Invalid(format!(
                "response {id} was approved by a coordinator and can no longer be changed from a device; ask a coordinator to mark it has_issues"
            ))),
            _ => Ok(()),
        }
    }

    /// Settle a conflicted answer on `value`, superseding every concurrent value.
    pub fn resolve(&mut self, id: &Uuid, question: &str, value: &Answer) -> Result<(), StoreError> {
        let tx = self.immediate()?;
        self.refuse_if_restricted(id)?;
        let (mut doc, rev) = self.load_doc(id)?;
        self.may_edit(id, doc.status().map_err(doc_err(id))?)?;
        let conflicts = doc.conflicts().map_err(doc_err(id))?;
        if !conflicts.iter().any(|c| c.question == question) {
            return Err(StoreError::NotFound(format!(
                "response {id} has no conflict on {question:?}; `fieldsync response conflicts {id}` lists them"
            )));
        }
        let meta = doc.meta().map_err(doc_err(id))?;
        let survey = self.survey_version(&meta.survey_id, meta.survey_version)?;
        let heads = doc.heads();
        doc.resolve(question, value, now_ms())
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        let answers = doc.answers().map_err(doc_err(id))?;
        let errors = survey.validate(&answers, &ValidationContext::new(today()));
        let changes = doc.changes_since(&heads);
        self.save_doc(&tx, id, &mut doc, rev + 1, errors.len(), true, None)?;
        self.add_outbox(&tx, id, &changes)?;
        if let Some(refs) = media_references(&survey, &answers) {
            // The value kept may be another device's attachment: not refused for that.
            self.link_media(&tx, id, &refs, None)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Give up a draft. One that never left this device (an interview the user quit) is
    /// removed with its outbox changes and files; one the server already holds is marked
    /// `discarded`, which the next sync carries everywhere (it stays out of exports). Anything
    /// but a draft is refused: a handed-in response is a coordinator's to reject.
    pub fn discard(&mut self, id: &Uuid) -> Result<Discarded, StoreError> {
        let tx = self.immediate()?;
        self.refuse_if_restricted(id)?;
        let (mut doc, rev) = self.load_doc(id)?;
        let status = doc.status().map_err(doc_err(id))?;
        if status != Status::Draft {
            return Err(StoreError::Invalid(format!(
                "response {id} is {status}, not a draft, so it is not discarded; a coordinator can mark it rejected (`fieldsync response review {id} --state rejected`)"
            )));
        }
        let key = id.to_string();
        let pending: i64 = self
            .conn
            .prepare_cached("SELECT count(*) FROM outbox WHERE doc_id = ?1")?
            .query_row([&key], |r| r.get(0))?;
        if pending as usize == doc.all_changes().len() {
            tx.execute("DELETE FROM outbox WHERE doc_id = ?1", [&key])?;
            tx.execute("DELETE FROM docs WHERE id = ?1", [&key])?;
            delete_doc_media(&tx, &key)?;
            tx.commit()?;
            return Ok(Discarded::Deleted);
        }
        self.write_status_change(tx, id, doc, rev, |doc| {
            doc.set_status(Status::Discarded, now_ms())
                .map(drop)
                .map_err(|e| e.to_string())
        })?;
        Ok(Discarded::Marked)
    }

    /// Record a coordinator's review (`status` one of has_issues, approved, rejected) with an
    /// optional comment.
    pub fn review(
        &mut self,
        id: &Uuid,
        status: Status,
        comment: Option<&str>,
    ) -> Result<(), StoreError> {
        let tx = self.immediate()?;
        self.refuse_if_restricted(id)?;
        let (doc, rev) = self.load_doc(id)?;
        let current = doc.status().map_err(doc_err(id))?;
        if matches!(current, Status::Draft | Status::Discarded) {
            return Err(StoreError::Invalid(format!(
                "response {id} is {current}; only handed-in responses are reviewed"
            )));
        }
        self.write_status_change(tx, id, doc, rev, |doc| {
            doc.set_review(status, comment, now_ms())
                .map(drop)
                .map_err(|e| e.to_string())
        })
    }

    /// Make one status edit of a loaded document, then store the new state and its change for
    /// the next sync and commit `tx`.
    fn write_status_change(
        &self,
        tx: rusqlite::Transaction<'_>,
        id: &Uuid,
        mut doc: ResponseDoc,
        rev: i64,
        change: impl FnOnce(&mut ResponseDoc) -> Result<(), String>,
    ) -> Result<(), StoreError> {
        let heads = doc.heads();
        change(&mut doc).map_err(StoreError::Invalid)?;
        let changes = doc.changes_since(&heads);
        let errors = self.errors_of(&doc, id)?;
        self.save_doc(&tx, id, &mut doc, rev + 1, errors, true, None)?;
        self.add_outbox(&tx, id, &changes)?;
        tx.commit()?;
        Ok(())
    }

    /// How many validation problems the document's answers have today.
    fn errors_of(&self, doc: &ResponseDoc, id: &Uuid) -> Result<usize, StoreError> {
        let meta = doc.meta().map_err(doc_err(id))?;
        let survey = self.survey_version(&meta.survey_id, meta.survey_version)?;
        let answers = doc.answers().map_err(doc_err(id))?;
        Ok(survey
            .validate(&answers, &ValidationContext::new(today()))
            .len())
    }

    /// One response's metadata, without validating it.
    pub fn response_meta(&self, id: &Uuid) -> Result<ResponseMeta, StoreError> {
        let (doc, _) = self.load_doc(id)?;
        doc.meta().map_err(doc_err(id))
    }

    /// The comment of the response's latest review, if any.
    pub fn review_comment(&self, id: &Uuid) -> Result<Option<String>, StoreError> {
        let (doc, _) = self.load_doc(id)?;
        doc.review_comment().map_err(doc_err(id))
    }

    /// One response, decoded.
    pub fn response(&mut self, id: &Uuid) -> Result<LocalResponse, StoreError> {
        let (doc, _) = self.load_doc(id)?;
        let meta = doc.meta().map_err(doc_err(id))?;
        let answers = doc.answers().map_err(doc_err(id))?;
        let conflicts = doc.conflicts().map_err(doc_err(id))?;
        let survey = self.survey_version(&meta.survey_id, meta.survey_version)?;
        let errors = survey.validate(&answers, &ValidationContext::new(today()));
        let key = id.to_string();
        let rejected: Option<String> = self
            .conn
            .prepare_cached("SELECT rejected FROM docs WHERE id = ?1")?
            .query_row([&key], |r| r.get(0))?;
        let pending = self
            .conn
            .prepare_cached("SELECT 1 FROM outbox WHERE doc_id = ?1 LIMIT 1")?
            .query_row([&key], |_| Ok(()))
            .optional()?
            .is_some();
        Ok(LocalResponse {
            meta,
            answers,
            conflicts,
            errors,
            rejected,
            pending,
        })
    }

    /// Responses on the device, newest first.
    pub fn list_responses(&self, filter: &ResponseFilter) -> Result<Vec<ResponseRow>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT d.id, d.survey_id, d.survey_version, d.status, d.error_count, d.conflict_count,
                    EXISTS (SELECT 1 FROM outbox o WHERE o.doc_id = d.id), d.rejected, d.updated_at
             FROM docs d
             WHERE (?1 IS NULL OR d.survey_id = ?1) AND (?2 IS NULL OR d.status = ?2)
               AND (?3 = 0 OR d.conflict_count > 0)
             ORDER BY d.updated_at DESC, d.id",
        )?;
        let rows = stmt.query_map(
            params![
                filter.survey_id.map(|s| s.to_string()),
                filter.status.map(|s| s.as_str()),
                filter.conflicted_only as i64
            ],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, u32>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, u32>(4)?,
                    r.get::<_, u32>(5)?,
                    r.get::<_, bool>(6)?,
                    r.get::<_, Option<String>>(7)?,
                    r.get::<_, i64>(8)?,
                ))
            },
        )?;
        let mut out = Vec::new();
        for row in rows {
            let (id, survey, version, status, errors, conflicts, pending, rejected, updated) = row?;
            let parse =
                |s: &str| Uuid::parse_str(s).map_err(|e| StoreError::Corrupt(e.to_string()));
            out.push(ResponseRow {
                id: parse(&id)?,
                survey_id: parse(&survey)?,
                survey_version: version,
                status,
                errors,
                conflicts,
                pending,
                rejected,
                updated_at: updated,
                subject: None,
            });
        }
        Ok(out)
    }

    /// A response by full id or by a unique prefix of at least 4 characters.
    pub fn find_response(&self, key: &str) -> Result<Uuid, StoreError> {
        if let Ok(id) = Uuid::parse_str(key) {
            return Ok(id);
        }
        if key.len() < 4 || !key.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            return Err(StoreError::NotFound(format!(
                "{key:?} is not a response id; `fieldsync response list` shows them"
            )));
        }
        let ids: Vec<String> = self
            .conn
            .prepare_cached("SELECT id FROM docs WHERE id LIKE ?1 || '%' LIMIT 2")?
            .query_map([key.to_ascii_lowercase()], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        match ids.as_slice() {
            [one] => Uuid::parse_str(one).map_err(|e| StoreError::Corrupt(e.to_string())),
            [] => Err(StoreError::NotFound(format!(
                "no response starting with {key:?} on this device; `fieldsync response list` shows them"
            ))),
            _ => Err(StoreError::Invalid(format!(
                "more than one response starts with {key:?}; give more characters"
            ))),
        }
    }

    pub(crate) fn load_doc(&self, id: &Uuid) -> Result<(ResponseDoc, i64), StoreError> {
        let key = id.to_string();
        let row: Option<(i64, Vec<u8>)> = self
            .conn
            .prepare_cached("SELECT rev, snapshot FROM docs WHERE id = ?1")?
            .query_row([&key], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let (rev, sealed) = row.ok_or_else(|| {
            StoreError::NotFound(format!(
                "no response {id} on this device; `fieldsync response list` shows them"
            ))
        })?;
        let plain = self.open_sealed(Purpose::Snapshot, &key, rev as u64, &sealed)?;
        let doc = ResponseDoc::load(&plain)
            .map_err(doc_err(id))?
            .with_writer(self.actor().to_vec(), &self.author_label());
        Ok((doc, rev))
    }

    /// Write a document's new state. `local` clears a previous rejection (the user changed it).
    ///
    /// `snapshot` is what to store for the document when the caller already has it in a form
    /// Automerge loads (a run of change chunks); otherwise the document is saved compactly.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn save_doc(
        &self,
        conn: &Connection,
        id: &Uuid,
        doc: &mut ResponseDoc,
        rev: i64,
        error_count: usize,
        local: bool,
        snapshot: Option<Vec<u8>>,
    ) -> Result<(), StoreError> {
        let meta = doc.meta().map_err(doc_err(id))?;
        let conflicts = doc.conflicts().map_err(doc_err(id))?.len();
        let snapshot = snapshot.unwrap_or_else(|| doc.save());
        let sealed = self.seal(Purpose::Snapshot, &id.to_string(), rev as u64, &snapshot)?;
        self.write_doc(conn, id, &meta, rev, error_count, conflicts, local, sealed)
    }

    /// Write a document's row: what the listing shows and its sealed snapshot. `local` clears
    /// a refusal (an edit here starts over).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn write_doc(
        &self,
        conn: &Connection,
        id: &Uuid,
        meta: &ResponseMeta,
        rev: i64,
        error_count: usize,
        conflicts: usize,
        local: bool,
        sealed: Vec<u8>,
    ) -> Result<(), StoreError> {
        let key = id.to_string();
        conn.prepare_cached(
            "INSERT INTO docs (id, survey_id, survey_version, status, error_count, conflict_count,
                               updated_at, rejected, rev, snapshot)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL, ?8, ?9)
             ON CONFLICT (id) DO UPDATE SET status = excluded.status,
                 error_count = excluded.error_count, conflict_count = excluded.conflict_count,
                 updated_at = excluded.updated_at,
                 rejected = CASE WHEN ?10 THEN NULL ELSE docs.rejected END,
                 rejected_final = CASE WHEN ?10 THEN 0 ELSE docs.rejected_final END,
                 rev = excluded.rev, snapshot = excluded.snapshot",
        )?
        .execute(params![
            key,
            meta.survey_id.to_string(),
            meta.survey_version,
            meta.status.as_str(),
            error_count as i64,
            conflicts as i64,
            meta.updated_at,
            rev,
            sealed,
            local
        ])?;
        Ok(())
    }

    pub(crate) fn add_outbox(
        &self,
        conn: &Connection,
        id: &Uuid,
        changes: &[Vec<u8>],
    ) -> Result<(), StoreError> {
        let hashed = hash_changes(id, changes.to_vec())?;
        self.add_hashed_outbox(conn, id, &hashed)
    }

    /// Like [`Store::add_outbox`] for changes whose hashes are already known.
    pub(super) fn add_hashed_outbox(
        &self,
        conn: &Connection,
        id: &Uuid,
        changes: &[HashedChange],
    ) -> Result<(), StoreError> {
        let key = id.to_string();
        let mut stmt = conn.prepare_cached(
            "INSERT OR IGNORE INTO outbox (doc_id, hash, change) VALUES (?1, ?2, ?3)",
        )?;
        for (hash, change) in changes {
            let what = outbox_binding(&key, hash);
            let sealed = self.seal(Purpose::Change, &what, 0, change)?;
            stmt.execute(params![key, &hash[..], sealed])?;
        }
        Ok(())
    }
}

/// What an outbox change is bound to: its document and its hash, so a sealed change cannot be
/// moved to another row.
pub(crate) fn outbox_binding(doc_id: &str, hash: &[u8]) -> String {
    let mut s = String::with_capacity(doc_id.len() + 1 + hash.len() * 2);
    s.push_str(doc_id);
    s.push(':');
    for b in hash {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

pub(crate) fn join_errors(errors: &[ValidationError]) -> String {
    errors
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}
