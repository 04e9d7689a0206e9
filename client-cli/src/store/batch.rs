//! Creating responses in batches: the import path, and the single-response path too.
//! Building a response ([`CreateBatch::prepare`]) needs no store, so an import builds on every
//! core ([`CreateBatch::prepare_all`]) and writes on one, a thousand to a transaction.

use fieldsync_protocol::Answers;
use fieldsync_protocol::crypto::Purpose;
use fieldsync_protocol::document::{NewResponse, ResponseDoc, Status};
use fieldsync_protocol::survey::{
    DeviceValues, Survey, ValidationContext, ValidationError, ValidationErrorKind,
};
use fieldsync_protocol::wire::SurveyStatus;
use rusqlite::{Connection, params};
use uuid::Uuid;

use super::media::media_references;
use super::{Store, StoreError, now_ms, now_utc, today};

impl Store {
    /// Prepare to create many responses of one survey in one transaction (the import path).
    pub fn create_batch(
        &mut self,
        survey_key: &str,
        version: Option<u32>,
    ) -> Result<CreateBatch, StoreError> {
        let survey = self.find_survey(survey_key)?;
        if survey.status == SurveyStatus::Closed {
            return Err(StoreError::Invalid(format!(
                "survey {} is closed and takes no new responses; ask a coordinator",
                survey.form_id
            )));
        }
        let version = version.unwrap_or(survey.latest_version);
        if !survey.versions.contains(&version) {
            return Err(StoreError::NotFound(format!(
                "survey {} has no version {version} on this device; run `fieldsync sync`",
                survey.form_id
            )));
        }
        let account = self.require_account()?;
        let principal = account.principal_id.to_string();
        let mut device_values = self.device_values();
        device_values.last_saved = self.last_saved(&survey.id)?;
        Ok(CreateBatch {
            survey_id: survey.id,
            version,
            device_values,
            device: principal,
            actor: self.actor().to_vec(),
            label: self.author_label(),
            today: today(),
            pending: Vec::new(),
            last_errors: Vec::new(),
        })
    }

    /// Write a response built by [`CreateBatch::prepare`] as revision 1.
    fn insert_prepared(
        &self,
        conn: &Connection,
        p: &Prepared,
        survey_id: &Uuid,
        version: u32,
    ) -> Result<(), StoreError> {
        let key = p.id.to_string();
        let sealed = self.seal(Purpose::Snapshot, &key, 1, &p.snapshot)?;
        conn.prepare_cached(
            "INSERT INTO docs (id, survey_id, survey_version, status, error_count, conflict_count,
                               updated_at, rejected, rev, snapshot)
             VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, NULL, 1, ?7)",
        )?
        .execute(params![
            key,
            survey_id.to_string(),
            version,
            p.status.as_str(),
            p.errors.len() as i64,
            p.updated_at,
            sealed
        ])?;
        self.add_hashed_outbox(conn, &p.id, &p.changes)?;
        if let Some(refs) = &p.media {
            self.link_media(conn, &p.id, refs, Some(&[]))?;
        }
        Ok(())
    }
}

/// What [`CreateBatch::commit`] wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Committed {
    /// New responses stored.
    pub stored: usize,
    /// Responses left out because this device already holds their id.
    pub already_held: usize,
}

/// The id an imported row is stored under, the same every time the row is imported: the
/// row's own id when it is a UUID (`uuid:` prefix allowed, as ODK writes it); otherwise a
/// UUID (version 8) from a SHA-256 of the survey and the row's id text, or, for a row without
/// one, its answers. So two rows with the same answers and no id are one response.
pub fn import_id(survey_id: &Uuid, row_id: Option<&str>, answers: &Answers) -> Uuid {
    if let Some(text) = row_id {
        let bare = text.strip_prefix("uuid:").unwrap_or(text);
        if let Ok(id) = Uuid::parse_str(bare) {
            return id;
        }
    }
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(b"fieldsync import row\0");
    ctx.update(survey_id.as_bytes());
    match row_id {
        Some(text) => {
            ctx.update(b"id\0");
            ctx.update(text.as_bytes());
        }
        None => {
            ctx.update(b"answers\0");
            // Answers are a sorted map: the same answers serialise to the same bytes.
            ctx.update(&serde_json::to_vec(answers).unwrap_or_default());
        }
    }
    let digest = ctx.finish();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest.as_ref()[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// A change's hash and its bytes.
pub(super) type HashedChange = (Vec<u8>, Vec<u8>);

/// Each change with its hash.
pub(super) fn hash_changes(
    id: &Uuid,
    changes: Vec<Vec<u8>>,
) -> Result<Vec<HashedChange>, StoreError> {
    changes
        .into_iter()
        .map(|change| {
            let info = fieldsync_protocol::document::ChangeInfo::decode(&change)
                .map_err(|e| StoreError::Corrupt(format!("a new change of {id}: {e}")))?;
            Ok((info.hash.0.to_vec(), change))
        })
        .collect()
}

/// Responses of one survey version created in one transaction: the import path, and the
/// single-response path too. Building a response ([`CreateBatch::prepare`]) needs no store,
/// so an import can build on several threads and write on one.
#[derive(Debug)]
pub struct CreateBatch {
    survey_id: Uuid,
    version: u32,
    /// What the metadata questions are filled with.
    device_values: DeviceValues,
    device: String,
    actor: Vec<u8>,
    label: String,
    today: time::Date,
    pending: Vec<Prepared>,
    pub(super) last_errors: Vec<ValidationError>,
}

/// A row built: the response, or why it is not valid.
pub type Built = Result<Prepared, Vec<ValidationError>>;

/// One response validated and built, ready to be written.
#[derive(Debug)]
pub struct Prepared {
    id: Uuid,
    snapshot: Vec<u8>,
    /// (hash, change bytes)
    changes: Vec<HashedChange>,
    errors: Vec<ValidationError>,
    status: Status,
    updated_at: i64,
    /// The attachments it references, if its survey asks for files.
    media: Option<Vec<fieldsync_protocol::media::Reference>>,
}

impl Prepared {
    /// The new response's id.
    pub fn id(&self) -> Uuid {
        self.id
    }
}

impl CreateBatch {
    /// The survey version the batch writes to.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The survey id.
    pub fn survey_id(&self) -> Uuid {
        self.survey_id
    }

    /// Validate and stage one response. Returns its id, or its validation errors (a submitted
    /// response must be valid; a draft only needs well-typed answers).
    pub fn add(
        &mut self,
        store: &mut Store,
        answers: &Answers,
        status: Status,
    ) -> Result<Result<Uuid, Vec<ValidationError>>, StoreError> {
        let survey = store.survey_version(&self.survey_id, self.version)?;
        Ok(self.prepare(&survey, answers, None, status)?.map(|p| {
            let id = p.id;
            self.push(p);
            id
        }))
    }

    /// Validate and build one response of this batch's survey version (`survey` must be it)
    /// without touching the store, under `id` if given (a fresh time-ordered id otherwise). A
    /// draft may lack required answers or break constraints, but its answers must fit their
    /// questions.
    pub fn prepare(
        &self,
        survey: &Survey,
        answers: &Answers,
        id: Option<Uuid>,
        status: Status,
    ) -> Result<Result<Prepared, Vec<ValidationError>>, StoreError> {
        // Metadata, defaults nobody is asked and calculations are stored with the response.
        let ctx = ValidationContext::at(now_utc());
        let completed = survey.complete(answers, &self.device_values, &ctx);
        let answers = &completed;
        let errors = survey.validate(answers, &ValidationContext::new(self.today));
        let blocking: Vec<ValidationError> = match status {
            Status::Draft => errors
                .iter()
                .filter(|e| {
                    matches!(
                        e.kind,
                        ValidationErrorKind::WrongType
                            | ValidationErrorKind::NotInList
                            | ValidationErrorKind::UnknownQuestion
                            | ValidationErrorKind::NotAnswerable
                    )
                })
                .cloned()
                .collect(),
            _ => errors.clone(),
        };
        if !blocking.is_empty() {
            return Ok(Err(blocking));
        }
        // Time-ordered ids: every index keyed by response id grows at its end, on the device and
        // on the server, instead of touching a random page per insert.
        let id = id.unwrap_or_else(Uuid::now_v7);
        let now = now_ms();
        // One change holds the whole new response: metadata, answers and status, written
        // without building the document.
        let changes: Vec<HashedChange> = ResponseDoc::create_changes(
            NewResponse {
                response_id: id,
                survey_id: self.survey_id,
                survey_version: self.version,
                author_device: self.device.clone(),
            },
            self.actor.clone(),
            &self.label,
            answers,
            status,
            now,
        )
        .map_err(|e| StoreError::Invalid(e.to_string()))?
        .into_iter()
        .map(|(hash, bytes)| (hash.0.to_vec(), bytes))
        .collect();
        // Automerge loads a run of change chunks as well as a saved document, and compacting
        // a fresh document costs more than building it; the next edit saves it compactly.
        let snapshot = changes
            .iter()
            .flat_map(|(_, c)| c.iter().copied())
            .collect();
        Ok(Ok(Prepared {
            id,
            snapshot,
            changes,
            errors,
            status,
            updated_at: now,
            media: media_references(survey, answers),
        }))
    }

    /// [`CreateBatch::prepare`] every row on every core, keeping their order: `answers` gives a
    /// row's answers and the id to store it under (`None`: a fresh one), or `None` for a row
    /// that failed before (it stays `None`).
    pub fn prepare_all<T: Sync>(
        &self,
        survey: &Survey,
        rows: &[T],
        status: Status,
        answers: impl Fn(&T) -> Option<(&Answers, Option<Uuid>)> + Sync,
    ) -> Result<Vec<Option<Built>>, StoreError> {
        super::par_map(rows, |row| {
            answers(row)
                .map(|(a, id)| self.prepare(survey, a, id, status))
                .transpose()
        })?
        .into_iter()
        .collect()
    }

    /// Stage a response built by [`CreateBatch::prepare`].
    pub fn push(&mut self, p: Prepared) {
        self.last_errors = p.errors.clone();
        self.pending.push(p);
    }

    /// How many responses are staged.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Write every staged response and its changes in one durable transaction, except those
    /// whose id this device already holds (a row imported before, or twice in one file).
    pub fn commit(&mut self, store: &mut Store) -> Result<Committed, StoreError> {
        let staged = std::mem::take(&mut self.pending);
        let mut done = Committed::default();
        let tx = store.immediate()?;
        let mut seen = std::collections::HashSet::with_capacity(staged.len());
        for p in &staged {
            let held = tx
                .prepare_cached("SELECT 1 FROM docs WHERE id = ?1")?
                .exists([p.id.to_string()])?;
            if held || !seen.insert(p.id) {
                done.already_held += 1;
                continue;
            }
            store.insert_prepared(&tx, p, &self.survey_id, self.version)?;
            done.stored += 1;
        }
        tx.commit()?;
        Ok(done)
    }
}
