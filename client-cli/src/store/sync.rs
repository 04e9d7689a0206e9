//! The store's side of a sync: reading the outbox in batches, recording what the server
//! acknowledged or refused, and merging pulled pages, each page in one transaction together
//! with the cursor that follows it, so an interrupted sync resumes exactly where it stopped.

use fieldsync_protocol::crypto::Purpose;
use fieldsync_protocol::document::{ResponseDoc, ResponseMeta};
use fieldsync_protocol::survey::ValidationContext;
use fieldsync_protocol::wire::{
    DocPushResult, ErrorCode, MAX_DOC_CHANGES_PER_PUSH, NoticeKind, PullResponse, PushOutcome,
};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use serde_bytes::ByteBuf;
use uuid::Uuid;

use super::responses::outbox_binding;
use super::{Store, StoreError, now_ms, today};

/// One document's unacknowledged changes.
#[derive(Clone, Debug)]
pub struct OutboxDoc {
    pub doc_id: Uuid,
    pub survey_id: Uuid,
    pub survey_version: u32,
    pub changes: Vec<ByteBuf>,
    /// The outbox hashes of `changes`, to delete on acknowledgement.
    pub hashes: Vec<Vec<u8>>,
    /// Where the document stands in the outbox (its oldest waiting change), so the next batch
    /// can start after it while this one is still on the wire.
    pub position: i64,
    /// More of its changes wait than one push may carry (a server takes at most
    /// [`MAX_DOC_CHANGES_PER_PUSH`] per document, and a batch about its byte budget): the rest
    /// go in a later push, once these are acknowledged.
    pub partial: bool,
}

/// Most changes in one push batch (the server accepts at most 100,000).
pub const PUSH_CHANGES: usize = 50_000;

/// What applying one pulled page did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PullApplied {
    /// Pulled documents that changed here.
    pub changed: usize,
    /// Pulled documents set aside as unreadable, with the reason.
    pub unreadable: Vec<(Uuid, String)>,
    /// Documents of this device whose pushed changes the server refused after checking them
    /// (set aside here until someone looks), with the reason.
    pub refused: Vec<(Uuid, String)>,
    /// Responses erased on the server that this device held: deleted here too.
    pub erased: Vec<Uuid>,
    /// Survey versions that arrived.
    pub surveys: Vec<SurveyArrival>,
    /// Responses that had no conflicting answers before this page and have some now.
    pub new_conflicts: Vec<Uuid>,
    /// The server was restored from a backup: the responses queued to be pushed again.
    pub requeued: u64,
}

/// A survey version a sync brought.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SurveyArrival {
    pub survey_id: Uuid,
    pub form_id: String,
    /// The version number responses refer to, and the form's own version (its `version`
    /// setting), if it has one.
    pub version: u32,
    pub label: Option<String>,
}

/// What the server's answer to one push batch did here.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Acknowledged {
    /// Documents whose changes the server stored.
    pub stored: u64,
    /// Documents it refused (their changes stay here).
    pub rejected: u64,
    /// Documents it refused because they were erased there: deleted here.
    pub erased: Vec<Uuid>,
}

/// Delete every trace of a response from the store: its document and anything waiting to be
/// pushed for it (the connection zeroes what it deletes). False if it was not here.
fn erase_local(conn: &rusqlite::Connection, id: &str) -> Result<bool, StoreError> {
    conn.prepare_cached("DELETE FROM outbox WHERE doc_id = ?1")?
        .execute([id])?;
    super::media::delete_doc_media(conn, id)?;
    Ok(conn
        .prepare_cached("DELETE FROM docs WHERE id = ?1")?
        .execute([id])?
        > 0)
}

/// A document merged with pulled changes, ready to store: its next revision, the snapshot to
/// store, what the listing shows of it and its answers (validated once its survey is known).
struct Merged {
    rev: i64,
    snapshot: Vec<u8>,
    meta: ResponseMeta,
    conflicts: usize,
    answers: fieldsync_protocol::Answers,
}

/// Merge pulled `changes` into the stored document (`existing`: its revision and plaintext
/// snapshot), or build it from them. Any failure is the document's own: a reason comes back.
fn merge_pulled(existing: Option<(i64, &[u8])>, changes: &[ByteBuf]) -> Result<Merged, String> {
    let (mut rd, rev, snapshot) = match existing {
        Some((rev, plain)) => {
            let mut rd = ResponseDoc::load(plain).map_err(|e| format!("stored copy: {e}"))?;
            rd.apply_changes(changes.iter().map(|c| c.as_slice()))
                .map_err(|e| format!("its new changes: {e}"))?;
            (rd, rev + 1, None)
        }
        None => {
            let rd = ResponseDoc::from_changes(changes.iter().map(|c| c.as_slice()))
                .map_err(|e| format!("its changes: {e}"))?;
            // Automerge loads a run of change chunks as it loads a saved document, and
            // compacting costs more than the pull itself; the next local edit saves it
            // compactly.
            let run = changes.iter().flat_map(|c| c.iter().copied()).collect();
            (rd, 1, Some(run))
        }
    };
    let meta = rd.meta().map_err(|e| e.to_string())?;
    let answers = rd.answers().map_err(|e| e.to_string())?;
    let conflicts = rd.conflicts().map_err(|e| e.to_string())?.len();
    let snapshot = snapshot.unwrap_or_else(|| rd.save());
    Ok(Merged {
        rev,
        snapshot,
        meta,
        conflicts,
        answers,
    })
}

/// What `fieldsync status` shows.
#[derive(Clone, Debug, Serialize)]
pub struct StatusReport {
    pub server: Option<String>,
    pub account: Option<String>,
    pub pending_responses: u64,
    pub pending_changes: u64,
    pub last_sync_at: Option<i64>,
    pub responses: u64,
    pub invalid: u64,
    pub conflicted: u64,
    pub rejected: u64,
    /// Responses whose processing the server restricted (no edits until lifted).
    pub restricted: u64,
    /// Attachments waiting to be uploaded, and their bytes the server has not acknowledged.
    pub media_waiting: u64,
    pub media_bytes_left: u64,
    /// Attachments the server refused for good.
    pub media_refused: u64,
}

impl Store {
    /// The next documents with unacknowledged changes (not those the server refused until
    /// they are edited again), up to `max_docs` documents and about `max_bytes` of changes.
    pub fn outbox_batch(
        &self,
        max_docs: usize,
        max_bytes: usize,
    ) -> Result<Vec<OutboxDoc>, StoreError> {
        self.outbox_batch_after(0, max_docs, max_bytes)
    }

    /// Like [`Store::outbox_batch`], for documents whose position is after `after` (the last
    /// position of a batch still in flight).
    pub fn outbox_batch_after(
        &self,
        after: i64,
        max_docs: usize,
        max_bytes: usize,
    ) -> Result<Vec<OutboxDoc>, StoreError> {
        let ids: Vec<(String, String, u32, i64)> = self
            .conn
            .prepare_cached(
                // A document's position is its oldest waiting change. Walking the outbox
                // from `after` in id order and keeping each document's first row finds the
                // next batch in the rows it returns; grouping the whole outbox instead made
                // every batch cost the outbox's size (and a long push quadratic).
                "SELECT o.doc_id, d.survey_id, d.survey_version, o.id
                 FROM outbox o JOIN docs d ON d.id = o.doc_id
                 WHERE o.id > ?2 AND d.rejected IS NULL
                   AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.doc_id = o.doc_id AND p.id < o.id)
                 ORDER BY o.id LIMIT ?1",
            )?
            .query_map(params![max_docs as i64, after], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?
            .collect::<Result<_, _>>()?;
        let mut out = Vec::with_capacity(ids.len());
        let mut bytes = 0usize;
        let mut count = 0usize;
        let mut stmt = self.conn.prepare_cached(
            "SELECT hash, change FROM outbox WHERE doc_id = ?1 ORDER BY id LIMIT ?2",
        )?;
        for (doc_id, survey_id, version, position) in ids {
            if (bytes >= max_bytes || count >= PUSH_CHANGES) && !out.is_empty() {
                break;
            }
            // One row past the per-document limit tells whether more wait.
            let rows: Vec<(Vec<u8>, Vec<u8>)> = stmt
                .query_map(params![&doc_id, MAX_DOC_CHANGES_PER_PUSH as i64 + 1], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?
                .collect::<Result<_, _>>()?;
            let waiting = rows.len();
            let mut changes = Vec::with_capacity(rows.len());
            let mut hashes = Vec::with_capacity(rows.len());
            let mut doc_bytes = 0usize;
            // Oldest first (the outbox is in the order the changes were made), so what is
            // sent never depends on what is left for later.
            for (hash, sealed) in rows {
                if changes.len() == MAX_DOC_CHANGES_PER_PUSH
                    || (!changes.is_empty() && doc_bytes >= max_bytes)
                {
                    break;
                }
                let plain =
                    self.open_sealed(Purpose::Change, &outbox_binding(&doc_id, &hash), 0, &sealed)?;
                doc_bytes += plain.len();
                count += 1;
                changes.push(ByteBuf::from(plain.to_vec()));
                hashes.push(hash);
            }
            bytes += doc_bytes;
            let partial = changes.len() < waiting;
            let parse =
                |s: &str| Uuid::parse_str(s).map_err(|e| StoreError::Corrupt(e.to_string()));
            out.push(OutboxDoc {
                doc_id: parse(&doc_id)?,
                survey_id: parse(&survey_id)?,
                survey_version: version,
                changes,
                hashes,
                position,
                partial,
            });
        }
        Ok(out)
    }

    /// Whether a document of `sent` carried only part of its changes and the server took
    /// that part (so the rest can go now).
    pub fn partly_acknowledged(&self, sent: &[OutboxDoc]) -> Result<bool, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT 1 FROM outbox WHERE doc_id = ?1 AND hash = ?2")?;
        for d in sent.iter().filter(|d| d.partial) {
            let Some(first) = d.hashes.first() else {
                continue;
            };
            if !stmt.exists(params![d.doc_id.to_string(), first])? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Record the server's answer to a push of `sent`: stored changes leave the outbox,
    /// refused documents are marked with the reason (their changes stay until edited), and
    /// documents the server erased are deleted here with everything waiting for them.
    pub fn acknowledge(
        &mut self,
        sent: &[OutboxDoc],
        results: &[DocPushResult],
    ) -> Result<Acknowledged, StoreError> {
        let tx = self.immediate()?;
        let (mut stored, mut rejected) = (0, 0);
        let mut erased = Vec::new();
        for result in results {
            let Some(doc) = sent.iter().find(|d| d.doc_id == result.doc_id) else {
                continue;
            };
            let id = doc.doc_id.to_string();
            match &result.outcome {
                PushOutcome::Stored { .. } => {
                    let mut del =
                        tx.prepare_cached("DELETE FROM outbox WHERE doc_id = ?1 AND hash = ?2")?;
                    for hash in &doc.hashes {
                        del.execute(params![id, hash])?;
                    }
                    stored += 1;
                }
                PushOutcome::Rejected {
                    code: ErrorCode::Erased,
                    ..
                } => {
                    erase_local(&tx, &id)?;
                    erased.push(doc.doc_id);
                }
                PushOutcome::Rejected { code, message } => {
                    if *code == ErrorCode::Restricted {
                        tx.prepare_cached("UPDATE docs SET restricted = 1 WHERE id = ?1")?
                            .execute([&id])?;
                    }
                    self.mark_rejected(&tx, &doc.doc_id, message, false)?;
                    rejected += 1;
                }
                // An outcome this build does not know: the changes stay in the outbox.
                PushOutcome::Unknown => {}
            }
        }
        tx.commit()?;
        if !erased.is_empty() {
            self.forget_deleted()?;
        }
        Ok(Acknowledged {
            stored,
            rejected,
            erased,
        })
    }

    /// After deleting erased responses: copy the write-ahead log into the (zeroed) database
    /// pages and empty it, so no older frame still holds them. Another command reading this
    /// home can hold the log for a moment; if it keeps it, the store remembers and empties the
    /// log the next time it is opened. The deletion itself is already committed either way.
    pub(crate) fn forget_deleted(&self) -> Result<(), StoreError> {
        for _ in 0..20 {
            let busy: i64 = self
                .conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
            if busy == 0 {
                self.conn
                    .execute("DELETE FROM meta WHERE key = 'wal_scrub_pending'", [])?;
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES ('wal_scrub_pending', x'01')
             ON CONFLICT (key) DO NOTHING",
            [],
        )?;
        Ok(())
    }

    /// A response whose processing the server restricted takes no edits here either.
    pub(crate) fn refuse_if_restricted(&self, id: &Uuid) -> Result<(), StoreError> {
        let restricted = self
            .conn
            .prepare_cached("SELECT 1 FROM docs WHERE id = ?1 AND restricted = 1")?
            .exists([id.to_string()])?;
        if restricted {
            return Err(StoreError::Invalid(format!(
                "response {id} is restricted at the respondent's request and cannot be edited until an admin lifts the restriction (`fieldsync subject unrestrict`); sync to learn when it is lifted"
            )));
        }
        Ok(())
    }

    /// Keep a document's changes but stop pushing it for the rest of this sync; a refusal that
    /// is not `final` is tried again at the next sync (the survey may have been reopened or
    /// assigned meanwhile), a final one only after the document is edited.
    pub fn mark_rejected(
        &self,
        conn: &rusqlite::Connection,
        id: &Uuid,
        reason: &str,
        last: bool,
    ) -> Result<(), StoreError> {
        conn.prepare_cached("UPDATE docs SET rejected = ?2, rejected_final = ?3 WHERE id = ?1")?
            .execute(params![id.to_string(), reason, last as i64])?;
        Ok(())
    }

    /// Mark one document refused as malformed (a 422 naming it): final until it is edited.
    pub fn reject(&mut self, id: &Uuid, reason: &str) -> Result<(), StoreError> {
        self.mark_rejected(&self.conn, id, reason, true)
    }

    /// Make every refusal that is not final eligible for pushing again.
    pub fn retry_refused(&mut self) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE docs SET rejected = NULL WHERE rejected IS NOT NULL AND rejected_final = 0",
            [],
        )?;
        Ok(())
    }

    /// The pull cursor: the last server sequence number applied.
    pub fn cursor(&self) -> Result<u64, StoreError> {
        let raw = self.meta("cursor")?.unwrap_or_else(|| b"0".to_vec());
        String::from_utf8_lossy(&raw)
            .parse()
            .map_err(|_| StoreError::Corrupt("bad cursor".into()))
    }

    /// Merge one pulled page and move the cursor, in one transaction. Returns how many
    /// response documents changed.
    pub fn apply_pull(&mut self, page: &PullResponse) -> Result<PullApplied, StoreError> {
        if page.docs.is_empty()
            && page.surveys.is_empty()
            && page.refused.is_empty()
            && page.notices.is_empty()
            && !page.restarted
            && page
                .epoch
                .as_deref()
                .is_none_or(|e| self.epoch().ok().flatten().as_deref() == Some(e))
            && self.page_changes_nothing(page)?
        {
            // A no-op sync writes nothing (and so waits for no disk flush).
            return Ok(PullApplied::default());
        }
        let tx = self.immediate()?;
        let requeued = if page.restarted {
            self.queue_everything_again(&tx)?
        } else {
            0
        };
        if let Some(epoch) = &page.epoch {
            self.set_epoch(&tx, epoch)?;
        }
        let mut arrived = Vec::with_capacity(page.surveys.len());
        for update in &page.surveys {
            self.put_survey(&tx, update)?;
            let survey = self.survey_version(&update.survey_id, update.latest_version)?;
            arrived.push(SurveyArrival {
                survey_id: update.survey_id,
                form_id: survey.form_id().to_owned(),
                version: update.latest_version,
                label: survey.version().map(str::to_owned),
            });
        }
        for state in &page.survey_states {
            self.set_survey_state(&tx, state)?;
        }
        // Read what is stored of each document, merge and validate on every core, write in
        // this one transaction.
        let mut stored = Vec::with_capacity(page.docs.len());
        let mut conflicted_before = Vec::with_capacity(page.docs.len());
        for doc in &page.docs {
            let key = doc.doc_id.to_string();
            let existing: Option<(i64, Vec<u8>, i64)> = tx
                .prepare_cached("SELECT rev, snapshot, conflict_count FROM docs WHERE id = ?1")?
                .query_row([&key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()?;
            conflicted_before.push(existing.as_ref().is_some_and(|e| e.2 > 0));
            stored.push(match existing {
                Some((rev, sealed, _)) => Some((
                    rev,
                    self.open_sealed(Purpose::Snapshot, &key, rev as u64, &sealed)?,
                )),
                None => None,
            });
        }
        let work: Vec<_> = page.docs.iter().zip(&stored).collect();
        // Changes that another device wrote can be unreadable (a bug or a hostile peer):
        // set that one document aside, keep the rest of the page, and move on, rather
        // than stop every later sync at this page.
        let merged = super::par_map(&work, |(doc, existing)| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                merge_pulled(existing.as_ref().map(|(r, p)| (*r, &p[..])), &doc.changes)
            }))
            .unwrap_or_else(|_| Err("reading its changes failed".to_owned()))
        })?;
        drop(work);
        drop(stored);
        // A coordinator may hold responses of surveys it has not pulled yet: not validated.
        let mut surveys = std::collections::HashMap::new();
        for m in merged.iter().flatten() {
            let key = (m.meta.survey_id, m.meta.survey_version);
            if let std::collections::hash_map::Entry::Vacant(e) = surveys.entry(key) {
                match self.survey_version(&key.0, key.1) {
                    Ok(survey) => e.insert(Some(survey)),
                    Err(StoreError::NotFound(_)) => e.insert(None),
                    Err(e) => return Err(e),
                };
            }
        }
        let ctx = ValidationContext::new(today());
        let errors = super::par_map(&merged, |m| match m {
            Ok(m) => surveys
                .get(&(m.meta.survey_id, m.meta.survey_version))
                .and_then(Option::as_ref)
                .map_or(0, |survey| survey.validate(&m.answers, &ctx).len()),
            Err(_) => 0,
        })?;
        let mut changed = 0;
        let mut unreadable = Vec::new();
        let mut new_conflicts = Vec::new();
        for (((doc, merged), errors), before) in page
            .docs
            .iter()
            .zip(merged)
            .zip(errors)
            .zip(conflicted_before)
        {
            match merged {
                Ok(m) => {
                    if m.conflicts > 0 && !before {
                        new_conflicts.push(doc.doc_id);
                    }
                    let sealed = self.seal(
                        Purpose::Snapshot,
                        &doc.doc_id.to_string(),
                        m.rev as u64,
                        &m.snapshot,
                    )?;
                    self.write_doc(
                        &tx,
                        &doc.doc_id,
                        &m.meta,
                        m.rev,
                        errors,
                        m.conflicts,
                        false,
                        sealed,
                    )?;
                    changed += 1;
                }
                Err(reason) => unreadable.push((doc.doc_id, reason)),
            }
        }
        // The server refused some of this device's changes after acknowledging them: its copy
        // of the document holds changes the server's does not, so it is set aside (it stays
        // here, listed by `status`) instead of being edited further on a diverged base. Recorded
        // in the same transaction as the cursor, so the notice cannot be lost.
        let mut refused: Vec<(Uuid, String)> = Vec::new();
        for notice in &page.refused {
            if refused.iter().any(|(id, _)| *id == notice.doc_id) {
                continue;
            }
            let reason = format!(
                "the server refused a change to it after checking it ({}); the response stays on this device, tell your coordinator",
                notice.reason
            );
            self.mark_rejected(&tx, &notice.doc_id, &reason, true)?;
            refused.push((notice.doc_id, reason));
        }
        // What happened on the server at a respondent's request, after the changes of this
        // page (which come before it in relay order).
        let mut erased = Vec::new();
        for notice in &page.notices {
            let id = notice.doc_id.to_string();
            match notice.kind {
                NoticeKind::Erased => {
                    if erase_local(&tx, &id)? {
                        erased.push(notice.doc_id);
                    }
                }
                NoticeKind::Restricted | NoticeKind::Unrestricted => {
                    let restricted = notice.kind == NoticeKind::Restricted;
                    tx.prepare_cached("UPDATE docs SET restricted = ?2 WHERE id = ?1")?
                        .execute(params![id, restricted as i64])?;
                    if !restricted {
                        // Edits kept while it was restricted may be pushed again.
                        tx.prepare_cached(
                            "UPDATE docs SET rejected = NULL WHERE id = ?1 AND rejected_final = 0",
                        )?
                        .execute([&id])?;
                    }
                }
                NoticeKind::Unknown => {}
            }
        }
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('cursor', ?1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [page.cursor.to_string().into_bytes()],
        )?;
        tx.commit()?;
        if !erased.is_empty() {
            self.forget_deleted()?;
        }
        Ok(PullApplied {
            changed,
            unreadable,
            refused,
            erased,
            surveys: arrived,
            new_conflicts,
            requeued,
        })
    }

    /// Whether a page without documents leaves the cursor and every survey status as they are.
    fn page_changes_nothing(&self, page: &PullResponse) -> Result<bool, StoreError> {
        if page.cursor != self.cursor()? {
            return Ok(false);
        }
        let mut stmt = self
            .conn
            .prepare_cached("SELECT status FROM surveys WHERE id = ?1")?;
        for state in &page.survey_states {
            let current: Option<String> = stmt
                .query_row([state.survey_id.to_string()], |r| r.get(0))
                .optional()?;
            if current.as_deref() != Some(state.status.as_str()) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Record a completed sync. Losing this one timestamp in a power cut is harmless, so it is
    /// written without waiting for the disk (WAL with `synchronous=NORMAL`), keeping a sync with
    /// nothing to do free of flushes.
    pub fn record_sync(&mut self) -> Result<(), StoreError> {
        self.conn.pragma_update(None, "synchronous", "NORMAL")?;
        let written = self.conn.execute(
            "INSERT INTO meta (key, value) VALUES ('last_sync_at', ?1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [now_ms().to_string().into_bytes()],
        );
        self.conn.pragma_update(None, "synchronous", "FULL")?;
        written?;
        Ok(())
    }

    /// What waits to be pushed, when the last sync was, and which responses need attention.
    pub fn status_report(&self) -> Result<StatusReport, StoreError> {
        let count = |sql: &str| -> Result<u64, StoreError> {
            Ok(self.conn.query_row(sql, [], |r| r.get::<_, i64>(0))? as u64)
        };
        let backlog = self.media_backlog()?;
        let last_sync_at = self
            .meta("last_sync_at")?
            .and_then(|v| String::from_utf8_lossy(&v).parse().ok());
        Ok(StatusReport {
            server: self.account.as_ref().map(|a| a.server.clone()),
            account: self
                .account
                .as_ref()
                .map(|a| format!("{} ({}) in {}", a.name, a.role, a.org_name)),
            pending_responses: count("SELECT count(DISTINCT doc_id) FROM outbox")?,
            pending_changes: count("SELECT count(*) FROM outbox")?,
            last_sync_at,
            responses: count("SELECT count(*) FROM docs")?,
            invalid: count(
                "SELECT count(*) FROM docs WHERE error_count > 0 AND status != 'draft'",
            )?,
            conflicted: count("SELECT count(*) FROM docs WHERE conflict_count > 0")?,
            rejected: count("SELECT count(*) FROM docs WHERE rejected IS NOT NULL")?,
            restricted: count("SELECT count(*) FROM docs WHERE restricted = 1")?,
            media_waiting: backlog.files,
            media_bytes_left: backlog.bytes_left,
            media_refused: count("SELECT count(*) FROM media WHERE failed IS NOT NULL")?,
        })
    }
}
