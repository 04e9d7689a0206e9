//! Survey documents held by the device: every published version it received, so that a draft
//! started on an old version still opens and validates on that version.

use fieldsync_protocol::Answers;
use fieldsync_protocol::survey::DeviceValues;
use std::sync::Arc;

use fieldsync_protocol::crypto::Purpose;
use fieldsync_protocol::document::SurveyDoc;
use fieldsync_protocol::survey::Survey;
use fieldsync_protocol::wire::{KnownSurvey, SurveyState, SurveyStatus, SurveyUpdate};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use uuid::Uuid;

use super::{Store, StoreError};

/// A survey as the device knows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LocalSurvey {
    pub id: Uuid,
    pub form_id: String,
    pub title: String,
    pub status: SurveyStatus,
    pub latest_version: u32,
    pub versions: Vec<u32>,
}

fn parse_status(s: &str) -> Result<SurveyStatus, StoreError> {
    SurveyStatus::parse(s)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown survey status {s:?}")))
}

impl Store {
    fn load_survey_doc(
        &self,
        id: &str,
    ) -> Result<Option<(SurveyDoc, SurveyStatus, u32)>, StoreError> {
        let row: Option<(String, u32, i64, Vec<u8>)> = self
            .conn
            .prepare_cached("SELECT status, latest_version, rev, doc FROM surveys WHERE id = ?1")?
            .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .optional()?;
        let Some((status, latest, rev, sealed)) = row else {
            return Ok(None);
        };
        let plain = self.open_sealed(Purpose::Snapshot, id, rev as u64, &sealed)?;
        let doc = SurveyDoc::load(&plain)
            .map_err(|e| StoreError::Corrupt(format!("survey {id}: {e}")))?;
        Ok(Some((doc, parse_status(&status)?, latest)))
    }

    fn local_survey(&self, id: &str) -> Result<Option<LocalSurvey>, StoreError> {
        let Some((doc, status, latest)) = self.load_survey_doc(id)? else {
            return Ok(None);
        };
        let meta = doc
            .meta()
            .map_err(|e| StoreError::Corrupt(format!("survey {id}: {e}")))?;
        let versions = doc
            .versions()
            .map_err(|e| StoreError::Corrupt(format!("survey {id}: {e}")))?
            .into_iter()
            .map(|v| v.version)
            .collect();
        Ok(Some(LocalSurvey {
            id: meta.survey_id,
            form_id: meta.form_id,
            title: meta.title,
            status,
            latest_version: latest,
            versions,
        }))
    }

    /// Every survey on this device.
    pub fn surveys(&self) -> Result<Vec<LocalSurvey>, StoreError> {
        let ids: Vec<String> = self
            .conn
            .prepare_cached("SELECT id FROM surveys ORDER BY id")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(s) = self.local_survey(&id)? {
                out.push(s);
            }
        }
        out.sort_by(|a, b| a.form_id.cmp(&b.form_id));
        Ok(out)
    }

    /// A survey by id or by form id.
    pub fn find_survey(&self, key: &str) -> Result<LocalSurvey, StoreError> {
        if let Ok(id) = Uuid::parse_str(key)
            && let Some(s) = self.local_survey(&id.to_string())?
        {
            return Ok(s);
        }
        for s in self.surveys()? {
            if s.form_id == key {
                return Ok(s);
            }
        }
        Err(StoreError::NotFound(format!(
            "no survey {key:?} on this device; run `fieldsync sync` to fetch assigned surveys, and `fieldsync survey list` to see them"
        )))
    }

    pub(crate) fn survey_definition_json(
        &self,
        id: &str,
        version: u32,
    ) -> Result<String, StoreError> {
        let (doc, _, _) = self.load_survey_doc(id)?.ok_or_else(|| {
            StoreError::NotFound(format!(
                "no survey {id} on this device; run `fieldsync sync`"
            ))
        })?;
        doc.definition(version)
            .map_err(|e| StoreError::Corrupt(format!("survey {id}: {e}")))?
            .ok_or_else(|| {
                StoreError::NotFound(format!(
                    "survey {id} has no version {version} on this device; run `fieldsync sync`"
                ))
            })
    }

    /// One version of a survey, parsed.
    pub fn survey_version(&self, id: &Uuid, version: u32) -> Result<Arc<Survey>, StoreError> {
        self.cached_survey(&id.to_string(), version)
    }

    /// The surveys this device holds, for a pull request.
    pub fn known_surveys(&self) -> Result<Vec<KnownSurvey>, StoreError> {
        let rows: Vec<(String, u32)> = self
            .conn
            .prepare_cached("SELECT id, latest_version FROM surveys")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        rows.into_iter()
            .map(|(id, latest_version)| {
                Ok(KnownSurvey {
                    survey_id: Uuid::parse_str(&id)
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    latest_version,
                })
            })
            .collect()
    }

    /// Store a survey document received from the server, replacing the older copy.
    pub(crate) fn put_survey(
        &self,
        conn: &Connection,
        update: &SurveyUpdate,
    ) -> Result<(), StoreError> {
        // The server is the survey document's only writer; check that it loads before keeping it.
        SurveyDoc::load(&update.document).map_err(|e| {
            StoreError::Invalid(format!(
                "the server sent an unreadable survey document: {e}"
            ))
        })?;
        let id = update.survey_id.to_string();
        let rev: i64 = conn
            .prepare_cached("SELECT rev FROM surveys WHERE id = ?1")?
            .query_row([&id], |r| r.get(0))
            .optional()?
            .unwrap_or(0)
            + 1;
        let sealed = self.seal(Purpose::Snapshot, &id, rev as u64, &update.document)?;
        conn.prepare_cached(
            "INSERT INTO surveys (id, status, latest_version, rev, doc) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (id) DO UPDATE SET status = excluded.status,
                 latest_version = excluded.latest_version, rev = excluded.rev, doc = excluded.doc",
        )?
        .execute(params![
            id,
            update.status.as_str(),
            update.latest_version,
            rev,
            sealed
        ])?;
        Ok(())
    }

    /// Record a survey's current status as the server reported it.
    pub(crate) fn set_survey_state(
        &self,
        conn: &Connection,
        state: &SurveyState,
    ) -> Result<(), StoreError> {
        conn.prepare_cached("UPDATE surveys SET status = ?2 WHERE id = ?1")?
            .execute(params![state.survey_id.to_string(), state.status.as_str()])?;
        Ok(())
    }
}

/// What a device fills into the responses it makes.
impl Store {
    /// The answers of the response of `survey` saved last on this device, for
    /// `${last-saved#x}` defaults (none when there is no such response).
    pub(crate) fn last_saved(&mut self, survey: &Uuid) -> Result<Answers, StoreError> {
        let last: Option<String> = self
            .conn
            .query_row(
                "SELECT id FROM docs WHERE survey_id = ?1 ORDER BY updated_at DESC, id DESC LIMIT 1",
                params![survey.to_string()],
                |r| r.get(0),
            )
            .optional()?;
        let Some(id) = last.and_then(|s| Uuid::parse_str(&s).ok()) else {
            return Ok(Answers::new());
        };
        let (doc, _) = self.load_doc(&id)?;
        Ok(doc.answers().unwrap_or_default())
    }

    /// What the metadata questions of a response made here are filled with.
    pub(crate) fn device_values(&self) -> DeviceValues {
        DeviceValues {
            device_id: self.account().map(|a| a.principal_id.to_string()),
            username: self.account().map(|a| a.name.clone()),
            ..DeviceValues::default()
        }
    }
}
