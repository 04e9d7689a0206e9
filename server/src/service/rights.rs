//! Respondents' rights: finding a person's responses, exporting everything held about them,
//! erasing, restricting, the do-not-contact list, retention and its purge, and verifying the
//! audit chain. Every request is an organisation admin's and is audited; the audit holds ids,
//! actions and counts, never an identifier or an answer.

use std::collections::BTreeMap;

use fieldsync_protocol::api::{
    AuditRecord, AuditVerification, DoNotContact, Role, SubjectChanged, SubjectExport,
    SubjectFound, SubjectMatch, SubjectQuery, SubjectRecord,
};
use fieldsync_protocol::subject::normalize;
use uuid::Uuid;

use super::parse_id;
use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::keys::KeyRing;
use crate::storage::{
    AuditEntry, AuditEvent, ChainCheck, Db, ErasureCause, Expired, StorageError, SubjectResponse,
    chain_key, now_ms,
};

/// Longest reason an erasure may give.
const MAX_REASON: usize = 500;
/// Audit entries read per page while verifying a chain.
const VERIFY_PAGE: u32 = 5_000;
/// Expired responses erased per purge round (per transaction).
const PURGE_BATCH: u32 = 1_000;

fn admin_only(caller: &Caller, what: &str) -> Result<(), ApiError> {
    caller.require(&[Role::Admin], what)
}

/// The person's subject-index key in the caller's organisation.
async fn subject_hash(
    db: &Db,
    keys: &KeyRing,
    caller: &Caller,
    value: &str,
) -> Result<[u8; 32], ApiError> {
    let normalized = normalize(value).ok_or_else(|| {
        ApiError::Invalid(
            "the identifier is empty; give the value the survey's subject field holds (for example the respondent's name or ID number)".into(),
        )
    })?;
    let keys = super::org_keys(db, keys, &caller.org_id).await?;
    Ok(keys.subject_hash(&normalized))
}

/// The responses held about the person named in `q`, and their subject-index key.
async fn matches(
    state: &AppState,
    caller: &Caller,
    q: &SubjectQuery,
) -> Result<([u8; 32], Vec<SubjectResponse>), ApiError> {
    let hash = subject_hash(&state.db, &state.keys, caller, &q.value).await?;
    let survey = match q.survey_id {
        Some(id) => Some(parse_id(&id.to_string(), "survey")?),
        None => None,
    };
    let found = state
        .db
        .subject_responses(&caller.org_id, vec![hash], survey)
        .await?;
    Ok((hash, found))
}

fn uuid(s: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(s).map_err(|e| ApiError::Internal(format!("stored id {s:?}: {e}")))
}

fn to_match(r: &SubjectResponse) -> Result<SubjectMatch, ApiError> {
    Ok(SubjectMatch {
        response_id: uuid(&r.doc_id)?,
        survey_id: uuid(&r.survey_id)?,
        survey_version: r.survey_version,
        collected_by: uuid(&r.owner_id)?,
        received_at: r.created_at,
        restricted: r.restricted,
    })
}

fn count(n: usize) -> String {
    format!("{n} response(s)")
}

/// `subject find`: the person's responses across surveys and versions.
pub async fn find(
    state: &AppState,
    caller: &Caller,
    q: SubjectQuery,
) -> Result<SubjectFound, ApiError> {
    admin_only(caller, "look up a person's data")?;
    let (hash, found) = matches(state, caller, &q).await?;
    let listed = listed_and_audited(state, caller, hash, "subject_find", found.len()).await?;
    Ok(SubjectFound {
        responses: found.iter().map(to_match).collect::<Result<_, _>>()?,
        do_not_contact: listed,
    })
}

/// `subject export`: everything held about the person, with the processing record of each
/// response.
pub async fn export(
    state: &AppState,
    caller: &Caller,
    q: SubjectQuery,
) -> Result<SubjectExport, ApiError> {
    admin_only(caller, "export a person's data")?;
    let (hash, found) = matches(state, caller, &q).await?;
    let ids: Vec<String> = found.iter().map(|r| r.doc_id.clone()).collect();
    let mut processing: BTreeMap<String, Vec<AuditRecord>> = BTreeMap::new();
    for e in state.db.audit_about(&caller.org_id, ids).await? {
        if let Some(target) = e.target.clone() {
            processing.entry(target).or_default().push(record_of(e));
        }
    }
    let mut responses = Vec::with_capacity(found.len());
    for r in &found {
        let summary = state.db.response(&caller.org_id, &r.doc_id, None).await?;
        let (view, unreadable) = match summary {
            Some(s) => match (s.view, s.broken) {
                (None, None) => (
                    None,
                    Some("it is still being processed; export again in a moment".into()),
                ),
                (view, broken) => (view, broken),
            },
            None => (None, Some("it was erased while the export ran".into())),
        };
        let files = state
            .db
            .attachments(&caller.org_id, &r.doc_id)
            .await?
            .into_iter()
            .map(super::media::info)
            .collect();
        responses.push(SubjectRecord {
            found: to_match(r)?,
            view,
            unreadable,
            processing: processing.remove(&r.doc_id).unwrap_or_default(),
            files,
        });
    }
    let listed = listed_and_audited(state, caller, hash, "subject_export", found.len()).await?;
    Ok(SubjectExport {
        exported_at: now_ms(),
        responses,
        do_not_contact: listed,
    })
}

/// Whether the person is on the do-not-contact list; records that `action` was done about
/// `found` responses of theirs.
async fn listed_and_audited(
    state: &AppState,
    caller: &Caller,
    hash: [u8; 32],
    action: &str,
    found: usize,
) -> Result<bool, ApiError> {
    let listed = !state
        .db
        .do_not_contact(&caller.org_id, vec![hash])
        .await?
        .is_empty();
    state
        .db
        .record_audit(AuditEvent::by(caller, action).detail(count(found)))
        .await?;
    Ok(listed)
}

fn record_of(e: AuditEntry) -> AuditRecord {
    AuditRecord {
        id: e.id,
        at: e.at,
        actor_id: e.actor_id,
        actor_role: e.actor_role,
        action: e.action,
        target: e.target,
        detail: e.detail,
    }
}

/// `subject erase`: every response held about the person, for ever. The reason goes to the
/// audit log, so it may not contain the identifier.
pub async fn erase(
    state: &AppState,
    caller: &Caller,
    q: SubjectQuery,
    reason: &str,
) -> Result<SubjectChanged, ApiError> {
    admin_only(caller, "erase a person's data")?;
    let reason = reason.trim();
    if reason.is_empty()
        || reason.chars().count() > MAX_REASON
        || reason.chars().any(char::is_control)
    {
        return Err(ApiError::Invalid(format!(
            "give a reason of 1 to {MAX_REASON} printable characters (for example \"erasure request of 2026-11-30, ticket 4411\")"
        )));
    }
    if let (Some(r), Some(v)) = (normalize(reason), normalize(&q.value))
        && r.contains(&v)
    {
        return Err(ApiError::Invalid(
            "the reason contains the person's identifier, and the audit log must never hold it; describe the request without naming the person".into(),
        ));
    }
    let (_, found) = matches(state, caller, &q).await?;
    let ids: Vec<String> = found.iter().map(|r| r.doc_id.clone()).collect();
    let erased = state
        .db
        .erase(
            &caller.org_id,
            ids,
            ErasureCause::Request,
            AuditEvent::by(caller, "subject_erase")
                .detail(format!("{}; reason: {reason}", count(found.len()))),
        )
        .await?;
    Ok(SubjectChanged {
        responses: erased.iter().map(|id| uuid(id)).collect::<Result<_, _>>()?,
        found: found.len() as u32,
    })
}

/// `subject restrict` / `unrestrict`.
pub async fn restrict(
    state: &AppState,
    caller: &Caller,
    q: SubjectQuery,
    restricted: bool,
) -> Result<SubjectChanged, ApiError> {
    admin_only(caller, "restrict processing of a person's data")?;
    let (_, found) = matches(state, caller, &q).await?;
    let action = if restricted {
        "subject_restrict"
    } else {
        "subject_unrestrict"
    };
    // One entry per response, so each response's processing record shows it (a person has
    // a handful of responses, not thousands).
    let mut changed = Vec::new();
    for r in &found {
        changed.extend(
            state
                .db
                .set_restricted(
                    &caller.org_id,
                    vec![r.doc_id.clone()],
                    restricted,
                    AuditEvent::by(caller, action).target(r.doc_id.clone()),
                )
                .await?,
        );
    }
    Ok(SubjectChanged {
        responses: changed
            .iter()
            .map(|id| uuid(id))
            .collect::<Result<_, _>>()?,
        found: found.len() as u32,
    })
}

/// `subject opt-out` / `opt-in`: the do-not-contact list.
pub async fn do_not_contact(
    state: &AppState,
    caller: &Caller,
    q: SubjectQuery,
    listed: bool,
) -> Result<DoNotContact, ApiError> {
    admin_only(caller, "change the do-not-contact list")?;
    let hash = subject_hash(&state.db, &state.keys, caller, &q.value).await?;
    let action = if listed {
        "subject_opt_out"
    } else {
        "subject_opt_in"
    };
    let changed = state
        .db
        .set_do_not_contact(&caller.org_id, hash, listed, AuditEvent::by(caller, action))
        .await?;
    Ok(DoNotContact { listed, changed })
}

/// `audit verify`: walk the organisation's chain and check every seal and link, and that it
/// ends where its head says.
pub async fn verify_audit(
    state: &AppState,
    caller: &Caller,
) -> Result<AuditVerification, ApiError> {
    admin_only(caller, "verify the audit log")?;
    let org = state
        .db
        .org(&caller.org_id)
        .await?
        .ok_or_else(|| ApiError::NotFound("no such organisation".into()))?;
    Ok(verify_chain(&state.db, &state.keys, Some((&org.id, &org.wrapped_key))).await?)
}

/// Verify one chain: an organisation's (its id and wrapped key), or that of no organisation.
pub async fn verify_chain(
    db: &Db,
    keys: &KeyRing,
    org: Option<(&str, &[u8])>,
) -> Result<AuditVerification, StorageError> {
    let org_id = org.map(|(id, _)| id);
    let key = chain_key(keys, org_id, org.map(|(_, w)| w))?;
    let mut check = ChainCheck::new(key, org_id);
    let mut after = 0;
    'pages: loop {
        let page = db.audit_chain(org_id, after, VERIFY_PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        for e in &page {
            if !check.feed(e) {
                break 'pages;
            }
        }
        if page.len() < VERIFY_PAGE as usize {
            break;
        }
    }
    Ok(check.finish(db.audit_head(org_id).await?))
}

/// How long a survey's responses are kept (`None`: until erased).
pub async fn set_retention(
    db: &Db,
    caller: &Caller,
    survey_id: &str,
    seconds: Option<u64>,
) -> Result<(), ApiError> {
    admin_only(caller, "set a survey's retention period")?;
    let survey_id = parse_id(survey_id, "survey")?;
    let ms = match seconds {
        Some(0) => {
            return Err(ApiError::Invalid(
                "a retention period must be at least one second; use `off` to keep responses until erased".into(),
            ));
        }
        Some(s) => Some(i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX)),
        None => None,
    };
    let detail = match seconds {
        Some(s) => format!("{s} s"),
        None => "off".to_owned(),
    };
    let found = db
        .set_retention(
            &caller.org_id,
            &survey_id,
            ms,
            AuditEvent::by(caller, "survey_retention")
                .target(survey_id.clone())
                .detail(detail),
        )
        .await?;
    if !found {
        return Err(ApiError::NotFound(
            "no such survey; run `fieldsync survey list`".into(),
        ));
    }
    Ok(())
}

/// Responses past their survey's retention period at `now` (at most `limit`).
pub async fn expired(db: &Db, now: i64, limit: u32) -> Result<Vec<Expired>, StorageError> {
    db.expired(now, limit).await
}

/// Erase every response past its survey's retention period, as erasure does; returns how many
/// were erased. Run by the server on a schedule and by `fieldsync-server admin purge`.
pub async fn purge(db: &Db, now: i64, actor: &str) -> Result<u64, StorageError> {
    let mut total = 0u64;
    loop {
        let batch = db.expired(now, PURGE_BATCH).await?;
        if batch.is_empty() {
            return Ok(total);
        }
        let mut by_org: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for e in &batch {
            by_org
                .entry(e.org_id.clone())
                .or_default()
                .push(e.doc_id.clone());
        }
        let mut erased_now = 0;
        for (org_id, ids) in by_org {
            let n = ids.len();
            let audit = AuditEvent {
                org_id: Some(org_id.clone()),
                actor_id: actor.to_owned(),
                actor_role: "operator".to_owned(),
                action: "retention_purge".to_owned(),
                target: None,
                detail: Some(count(n)),
            };
            erased_now += db
                .erase(&org_id, ids, ErasureCause::Retention, audit)
                .await?
                .len();
        }
        total += erased_now as u64;
        if erased_now == 0 || batch.len() < PURGE_BATCH as usize {
            return Ok(total);
        }
    }
}
