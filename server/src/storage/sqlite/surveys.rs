//! Surveys: their immutable versions, status, assignments to enumerators, and the survey
//! documents devices receive (built by the service; stored here as bytes).

use fieldsync_protocol::api::SurveyInfo;
use fieldsync_protocol::wire::SurveyStatus;
use rusqlite::{Connection, OptionalExtension, params};
use uuid::Uuid;

use crate::service::policy::VisibleSurvey;
use crate::storage::{StorageError, SurveyGate, SurveyHead, SurveyWrite};

pub fn parse_status(s: &str) -> rusqlite::Result<SurveyStatus> {
    SurveyStatus::parse(s).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Text,
            format!("unknown survey status {s:?}").into(),
        )
    })
}

fn doc_error(e: impl std::fmt::Display) -> StorageError {
    StorageError::Corrupt(format!("survey document: {e}"))
}

/// The organisation's survey with `form_id`, as publishing needs it.
pub fn head(
    conn: &Connection,
    org_id: &str,
    form_id: &str,
) -> Result<Option<SurveyHead>, StorageError> {
    let row: Option<(String, u32, String, Vec<u8>)> = conn
        .prepare_cached(
            "SELECT id, latest_version, status, doc FROM surveys WHERE org_id = ?1 AND form_id = ?2",
        )?
        .query_row(params![org_id, form_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .optional()?;
    row.map(|(id, latest_version, status, doc)| {
        Ok(SurveyHead {
            id,
            latest_version,
            status: parse_status(&status)?,
            doc,
        })
    })
    .transpose()
}

/// Write a new version: the survey row (created with version 1) and the version's row.
pub fn write_version(
    conn: &Connection,
    org_id: &str,
    form_id: &str,
    w: &SurveyWrite,
) -> Result<(), StorageError> {
    if w.version == 1 {
        conn.execute(
            "INSERT INTO surveys (id, org_id, form_id, title, status, latest_version, doc, created_at)
             VALUES (?1, ?2, ?3, ?4, 'open', 1, ?5, ?6)",
            params![w.survey_id, org_id, form_id, w.title, w.doc, w.published_at],
        )?;
    } else {
        conn.execute(
            "UPDATE surveys SET latest_version = ?3, title = ?4, doc = ?5 WHERE id = ?1 AND org_id = ?2",
            params![w.survey_id, org_id, w.version, w.title, w.doc],
        )?;
    }
    conn.execute(
        "INSERT INTO survey_versions (survey_id, version, definition, published_at, published_by)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            w.survey_id,
            w.version,
            w.definition,
            w.published_at,
            w.published_by
        ],
    )?;
    Ok(())
}

/// Every version's definition, oldest first.
pub fn definitions(
    conn: &Connection,
    org_id: &str,
    survey_id: &str,
) -> Result<Vec<String>, StorageError> {
    let mut stmt = conn.prepare_cached(
        "SELECT v.definition FROM survey_versions v JOIN surveys s ON s.id = v.survey_id
         WHERE s.org_id = ?1 AND v.survey_id = ?2 ORDER BY v.version",
    )?;
    let rows = stmt.query_map([org_id, survey_id], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn versions_of(conn: &Connection, survey_id: &str) -> Result<Vec<u32>, StorageError> {
    let mut stmt = conn.prepare_cached(
        "SELECT version FROM survey_versions WHERE survey_id = ?1 ORDER BY version",
    )?;
    let rows = stmt.query_map([survey_id], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn info_row(conn: &Connection, r: &rusqlite::Row<'_>) -> Result<SurveyInfo, StorageError> {
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
) -> Result<Vec<SurveyInfo>, StorageError> {
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
) -> Result<Option<SurveyInfo>, StorageError> {
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
) -> Result<Option<(String, i64)>, StorageError> {
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
) -> Result<bool, StorageError> {
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
) -> Result<(), StorageError> {
    let survey_ok: bool = conn
        .prepare_cached("SELECT 1 FROM surveys WHERE org_id = ?1 AND id = ?2")?
        .query_row([org_id, survey_id], |_| Ok(()))
        .optional()?
        .is_some();
    if !survey_ok {
        return Err(StorageError::NotFound(format!(
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
        return Err(StorageError::NotFound(format!(
            "no enumerator {enumerator_id} in this organisation; `fieldsync member list` shows them"
        )));
    }
    conn.execute(
        "INSERT OR IGNORE INTO assignments (survey_id, principal_id) VALUES (?1, ?2)",
        [survey_id, enumerator_id],
    )?;
    Ok(())
}

/// The gate for one survey of the organisation, or `None` if there is no such survey.
pub fn gate(
    conn: &Connection,
    org_id: &str,
    survey_id: &str,
    principal_id: &str,
) -> Result<Option<SurveyGate>, StorageError> {
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

/// The surveys a puller may see, as they stand.
pub fn visible(
    conn: &Connection,
    org_id: &str,
    enumerator: Option<&str>,
) -> Result<Vec<VisibleSurvey>, StorageError> {
    let mut stmt = conn.prepare_cached(
        "SELECT s.id, s.status, s.latest_version FROM surveys s
         WHERE s.org_id = ?1
           AND (?2 IS NULL OR EXISTS (SELECT 1 FROM assignments a
                                      WHERE a.survey_id = s.id AND a.principal_id = ?2))",
    )?;
    let rows: Vec<(String, SurveyStatus, u32)> = stmt
        .query_map(params![org_id, enumerator], |r| {
            Ok((r.get(0)?, parse_status(&r.get::<_, String>(1)?)?, r.get(2)?))
        })?
        .collect::<Result<_, _>>()?;
    rows.into_iter()
        .map(|(id, status, latest_version)| {
            Ok(VisibleSurvey {
                id: Uuid::parse_str(&id).map_err(doc_error)?,
                status,
                latest_version,
            })
        })
        .collect()
}

/// A survey's Automerge document.
pub fn document(conn: &Connection, survey_id: &str) -> Result<Vec<u8>, StorageError> {
    Ok(conn
        .prepare_cached("SELECT doc FROM surveys WHERE id = ?1")?
        .query_row([survey_id], |r| r.get(0))?)
}
