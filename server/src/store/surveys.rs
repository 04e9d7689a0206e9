//! Surveys: publishing immutable versions, status, assignments to enumerators, and the survey
//! documents devices receive. The server is the only writer of survey documents, so it may
//! build and read them in-process: their bytes never come from a client.

use fieldsync_protocol::api::{Published, SurveyInfo};
use fieldsync_protocol::document::{SurveyDoc, SurveyMeta};
use fieldsync_protocol::survey::Survey;
use fieldsync_protocol::wire::{KnownSurvey, SurveyState, SurveyStatus, SurveyUpdate};
use rusqlite::{Connection, OptionalExtension, params};
use serde_bytes::ByteBuf;
use uuid::Uuid;

use super::{StoreError, now_ms};

pub fn parse_status(s: &str) -> rusqlite::Result<SurveyStatus> {
    SurveyStatus::parse(s).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Text,
            format!("unknown survey status {s:?}").into(),
        )
    })
}

fn doc_error(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("survey document: {e}"))
}

/// Publish a checked definition as the next version of the organisation's survey with the
/// same `form_id`, creating the survey on its first publication.
pub fn publish(
    conn: &Connection,
    org_id: &str,
    survey: &Survey,
    definition_json: &str,
    published_by: &str,
) -> Result<Published, StoreError> {
    let now = now_ms();
    let existing: Option<(String, u32, String, Vec<u8>)> = conn
        .prepare_cached(
            "SELECT id, latest_version, status, doc FROM surveys WHERE org_id = ?1 AND form_id = ?2",
        )?
        .query_row(params![org_id, survey.form_id()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .optional()?;
    let (survey_id, version, mut doc) = match existing {
        Some((id, latest, status, bytes)) => {
            if status == "closed" {
                return Err(StoreError::Conflict(format!(
                    "survey {} is closed; reopen it before publishing a new version",
                    survey.form_id()
                )));
            }
            let uuid = Uuid::parse_str(&id).map_err(doc_error)?;
            let doc = SurveyDoc::load(&bytes)
                .map_err(doc_error)?
                .with_writer(uuid.into_bytes().to_vec());
            (uuid, latest + 1, doc)
        }
        None => {
            let uuid = Uuid::new_v4();
            let meta = SurveyMeta {
                survey_id: uuid,
                form_id: survey.form_id().to_owned(),
                title: survey.title().to_owned(),
            };
            // The survey's own id is the server's actor for it: only this server writes it.
            let doc = SurveyDoc::new(&meta, uuid.into_bytes().to_vec(), now).map_err(doc_error)?;
            (uuid, 1, doc)
        }
    };
    doc.publish(version, definition_json, now)
        .map_err(doc_error)?;
    let bytes = doc.save();
    let id = survey_id.to_string();
    if version == 1 {
        conn.execute(
            "INSERT INTO surveys (id, org_id, form_id, title, status, latest_version, doc, created_at)
             VALUES (?1, ?2, ?3, ?4, 'open', 1, ?5, ?6)",
            params![id, org_id, survey.form_id(), survey.title(), bytes, now],
        )?;
    } else {
        conn.execute(
            "UPDATE surveys SET latest_version = ?3, title = ?4, doc = ?5 WHERE id = ?1 AND org_id = ?2",
            params![id, org_id, version, survey.title(), bytes],
        )?;
    }
    conn.execute(
        "INSERT INTO survey_versions (survey_id, version, definition, published_at, published_by)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![id, version, definition_json, now, published_by],
    )?;
    Ok(Published {
        survey_id,
        form_id: survey.form_id().to_owned(),
        version,
    })
}

fn versions_of(conn: &Connection, survey_id: &str) -> Result<Vec<u32>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT version FROM survey_versions WHERE survey_id = ?1 ORDER BY version",
    )?;
    let rows = stmt.query_map([survey_id], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn info_row(conn: &Connection, r: &rusqlite::Row<'_>) -> Result<SurveyInfo, StoreError> {
    let id: String = r.get(0)?;
    let versions = versions_of(conn, &id)?;
    Ok(SurveyInfo {
        id: Uuid::parse_str(&id).map_err(doc_error)?,
        form_id: r.get(1)?,
        title: r.get(2)?,
        status: parse_status(&r.get::<_, String>(3)?)?,
        latest_version: r.get(4)?,
        versions,
    })
}

/// The surveys a caller may see: all of the organisation's, or for an enumerator only those
/// assigned to it.
pub fn list(
    conn: &Connection,
    org_id: &str,
    enumerator: Option<&str>,
) -> Result<Vec<SurveyInfo>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT s.id, s.form_id, s.title, s.status, s.latest_version FROM surveys s
         WHERE s.org_id = ?1
           AND (?2 IS NULL OR EXISTS (SELECT 1 FROM assignments a
                                      WHERE a.survey_id = s.id AND a.principal_id = ?2))
         ORDER BY s.created_at, s.id",
    )?;
    let mut rows = stmt.query(params![org_id, enumerator])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(info_row(conn, r)?);
    }
    Ok(out)
}

/// One survey, if the caller may see it.
pub fn get(
    conn: &Connection,
    org_id: &str,
    survey_id: &str,
    enumerator: Option<&str>,
) -> Result<Option<SurveyInfo>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT s.id, s.form_id, s.title, s.status, s.latest_version FROM surveys s
         WHERE s.org_id = ?1 AND s.id = ?2
           AND (?3 IS NULL OR EXISTS (SELECT 1 FROM assignments a
                                      WHERE a.survey_id = s.id AND a.principal_id = ?3))",
    )?;
    let mut rows = stmt.query(params![org_id, survey_id, enumerator])?;
    match rows.next()? {
        Some(r) => Ok(Some(info_row(conn, r)?)),
        None => Ok(None),
    }
}

/// The definition JSON of one version and when it was published.
pub fn version(
    conn: &Connection,
    org_id: &str,
    survey_id: &str,
    version: u32,
) -> Result<Option<(String, i64)>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT v.definition, v.published_at FROM survey_versions v
             JOIN surveys s ON s.id = v.survey_id
             WHERE s.org_id = ?1 AND v.survey_id = ?2 AND v.version = ?3",
        )?
        .query_row(params![org_id, survey_id, version], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?)
}

/// Set a survey's status. Returns false if the organisation has no such survey.
pub fn set_status(
    conn: &Connection,
    org_id: &str,
    survey_id: &str,
    status: SurveyStatus,
) -> Result<bool, StoreError> {
    let n = conn.execute(
        "UPDATE surveys SET status = ?3 WHERE org_id = ?1 AND id = ?2",
        params![org_id, survey_id, status.as_str()],
    )?;
    Ok(n > 0)
}

/// Assign a survey to an enumerator of the same organisation.
pub fn assign(
    conn: &Connection,
    org_id: &str,
    survey_id: &str,
    enumerator_id: &str,
) -> Result<(), StoreError> {
    let survey_ok: bool = conn
        .prepare_cached("SELECT 1 FROM surveys WHERE org_id = ?1 AND id = ?2")?
        .query_row([org_id, survey_id], |_| Ok(()))
        .optional()?
        .is_some();
    if !survey_ok {
        return Err(StoreError::NotFound(format!(
            "no survey {survey_id} in this organisation; run `fieldsync survey list`"
        )));
    }
    let enumerator_ok: bool = conn
        .prepare_cached(
            "SELECT 1 FROM principals WHERE org_id = ?1 AND id = ?2 AND role = 'enumerator'",
        )?
        .query_row([org_id, enumerator_id], |_| Ok(()))
        .optional()?
        .is_some();
    if !enumerator_ok {
        return Err(StoreError::NotFound(format!(
            "no enumerator {enumerator_id} in this organisation; `fieldsync member list` shows them"
        )));
    }
    conn.execute(
        "INSERT OR IGNORE INTO assignments (survey_id, principal_id) VALUES (?1, ?2)",
        [survey_id, enumerator_id],
    )?;
    Ok(())
}

/// What a pushing device needs to know about a survey: its status and whether the caller may
/// write responses to it.
#[derive(Clone, Debug)]
pub struct SurveyGate {
    pub status: SurveyStatus,
    pub latest_version: u32,
    pub assigned: bool,
}

/// The gate for one survey of the organisation, or `None` if there is no such survey.
pub fn gate(
    conn: &Connection,
    org_id: &str,
    survey_id: &str,
    principal_id: &str,
) -> Result<Option<SurveyGate>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT s.status, s.latest_version,
                    EXISTS (SELECT 1 FROM assignments a WHERE a.survey_id = s.id AND a.principal_id = ?3)
             FROM surveys s WHERE s.org_id = ?1 AND s.id = ?2",
        )?
        .query_row(params![org_id, survey_id, principal_id], |r| {
            Ok(SurveyGate {
                status: parse_status(&r.get::<_, String>(0)?)?,
                latest_version: r.get(1)?,
                assigned: r.get::<_, i64>(2)? != 0,
            })
        })
        .optional()?)
}

/// The survey documents a pulling client lacks, and the status of those it has.
///
/// A survey that is `closing` is not sent to a device that does not have it yet (no new
/// downloads), but a device that has it still learns its new versions and status.
pub fn updates_for(
    conn: &Connection,
    org_id: &str,
    enumerator: Option<&str>,
    known: &[KnownSurvey],
) -> Result<(Vec<SurveyUpdate>, Vec<SurveyState>), StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT s.id, s.status, s.latest_version FROM surveys s
         WHERE s.org_id = ?1
           AND (?2 IS NULL OR EXISTS (SELECT 1 FROM assignments a
                                      WHERE a.survey_id = s.id AND a.principal_id = ?2))",
    )?;
    let visible: Vec<(String, SurveyStatus, u32)> = stmt
        .query_map(params![org_id, enumerator], |r| {
            Ok((r.get(0)?, parse_status(&r.get::<_, String>(1)?)?, r.get(2)?))
        })?
        .collect::<Result<_, _>>()?;
    let mut updates = Vec::new();
    let mut states = Vec::new();
    for (id, status, latest) in visible {
        let uuid = Uuid::parse_str(&id).map_err(doc_error)?;
        let held = known.iter().find(|k| k.survey_id == uuid);
        match held {
            Some(k) => {
                states.push(SurveyState {
                    survey_id: uuid,
                    status,
                });
                if k.latest_version >= latest {
                    continue;
                }
            }
            None if status != SurveyStatus::Open => continue,
            None => {}
        }
        let doc: Vec<u8> = conn
            .prepare_cached("SELECT doc FROM surveys WHERE id = ?1")?
            .query_row([&id], |r| r.get(0))?;
        updates.push(SurveyUpdate {
            survey_id: uuid,
            status,
            latest_version: latest,
            document: ByteBuf::from(doc),
        });
    }
    Ok((updates, states))
}
