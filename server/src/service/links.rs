//! Survey links: who may create, list and revoke them, and what opening one requires.
//! Tokens are made here and only their hashes go to storage; passwords only as Argon2id
//! hashes, computed and checked off the async threads.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use fieldsync_protocol::api::{CreatedLink, LinkInfo, NewLink as NewLinkRequest, Role};
use fieldsync_protocol::crypto::{new_token, token_hash};

use crate::auth::{Caller, MANAGERS};
use crate::error::ApiError;
use crate::storage::{
    AuditEvent, CredentialKind, Db, InvitationRow, LinkRow, NewLink, NewPrincipal, StorageError,
    now_ms,
};

/// The prefix of link tokens (what a leaked one is recognised by).
const LINK_PREFIX: &str = "fsf_";

/// Shortest password a link may have.
pub const MIN_PASSWORD: usize = 8;

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::BadRequest(msg.into())
}

/// Create a link to one of the caller's organisation's surveys.
pub async fn create(
    db: &Db,
    caller: &Caller,
    survey_id: &str,
    req: NewLinkRequest,
) -> Result<CreatedLink, ApiError> {
    caller.require(MANAGERS, "create survey links")?;
    let survey_id = super::parse_id(survey_id, "survey")?;
    if db.survey(&caller.org_id, &survey_id, None).await?.is_none() {
        return Err(ApiError::NotFound(
            "no such survey; run `fieldsync survey list`".into(),
        ));
    }
    web_ready(db, &caller.org_id, &survey_id).await?;
    let label = req.label.as_deref().map(str::trim).unwrap_or("web link");
    if label.is_empty() || label.chars().count() > 100 || label.chars().any(char::is_control) {
        return Err(bad(
            "a link's label is 1 to 100 characters without line breaks",
        ));
    }
    let now = now_ms();
    if req.expires_at.is_some_and(|e| e <= now) {
        return Err(bad(
            "the expiry is in the past; give a later date with --expires",
        ));
    }
    let max_responses = match (req.single_use, req.max_responses) {
        (_, Some(0)) => return Err(bad("--max-responses must be at least 1")),
        (true, Some(n)) if n > 1 => {
            return Err(bad(
                "a single-use link takes one response; leave out --max-responses or --single-use",
            ));
        }
        (true, _) => Some(1),
        (false, m) => m,
    };
    let password_hash = match req.password {
        None => None,
        Some(p) if p.chars().count() < MIN_PASSWORD => {
            return Err(bad(format!(
                "a link's password needs at least {MIN_PASSWORD} characters"
            )));
        }
        Some(p) => Some(hash_password(p).await?),
    };
    let (token, base) = link_record(caller, &survey_id, label)?;
    let link = NewLink {
        password_hash,
        expires_at: req.expires_at,
        max_responses,
        single_use: req.single_use,
        ..base
    };
    let id = link.id.clone();
    db.create_link(link).await?;
    let created = db
        .links(&caller.org_id, Some(&survey_id))
        .await?
        .into_iter()
        .find(|l| l.id == id)
        .ok_or_else(|| StorageError::Corrupt("a link just created is missing".into()))?;
    Ok(CreatedLink {
        link: info(&created, now)?,
        path: format!("/f/{token}"),
    })
}

/// Refuse a survey a web form cannot collect: one that asks for files (photos, audio, …),
/// which only the app can attach.
pub async fn web_ready(db: &Db, org_id: &str, survey_id: &str) -> Result<(), ApiError> {
    let Some(info) = db.survey(org_id, survey_id, None).await? else {
        return Err(ApiError::NotFound(
            "no such survey; run `fieldsync survey list`".into(),
        ));
    };
    let Some((json, _)) = db
        .survey_version(org_id, survey_id, info.latest_version)
        .await?
    else {
        return Ok(());
    };
    let survey = fieldsync_protocol::survey::Survey::parse_json(&json)
        .map_err(|e| ApiError::Internal(format!("a published survey does not parse: {e}")))?;
    if let Some(q) = survey
        .questions()
        .iter()
        .find(|q| matches!(q.qtype, fieldsync_protocol::survey::QuestionType::Media(_)))
    {
        return Err(ApiError::Invalid(format!(
            "survey {} asks for a file at `{}`, which a web form cannot take; collect it with the app",
            info.form_id, q.name
        )));
    }
    Ok(())
}

/// A new link of the caller's organisation to a survey, open to anyone with its token
/// (returned, shown once) until changed, and its principal: an enumerator assigned to the
/// survey, with a device credential whose token nobody is ever given (web responses are
/// pushed as it by the server itself, never with a bearer token).
pub fn link_record(
    caller: &Caller,
    survey_id: &str,
    label: &str,
) -> Result<(String, NewLink), StorageError> {
    let token = new_token(LINK_PREFIX)
        .map_err(|e| StorageError::Corrupt(format!("cannot generate a token: {e}")))?;
    let (_, credential) = super::new_credential(CredentialKind::Device)?;
    let id = uuid::Uuid::now_v7().to_string();
    let link = NewLink {
        id: id.clone(),
        org_id: caller.org_id.clone(),
        survey_id: survey_id.to_owned(),
        label: label.to_owned(),
        invitations: false,
        token_hash: token_hash(&token),
        password_hash: None,
        expires_at: None,
        max_responses: None,
        single_use: false,
        created_by: caller.name.clone(),
        principal: NewPrincipal {
            id: uuid::Uuid::now_v7().to_string(),
            org_id: Some(caller.org_id.clone()),
            role: Role::Enumerator,
            name: format!("{label} (web)"),
            created_by: Some(caller.principal_id.clone()),
            credential,
            assign: Vec::new(),
            audit: None,
        },
        audit: AuditEvent::by(caller, "link_created")
            .target(&id)
            .detail(survey_id),
    };
    Ok((token, link))
}

/// The links of the caller's organisation (of one survey, or all).
pub async fn list(
    db: &Db,
    caller: &Caller,
    survey_id: Option<&str>,
) -> Result<Vec<LinkInfo>, ApiError> {
    caller.require(MANAGERS, "list survey links")?;
    let survey_id = survey_id
        .map(|s| super::parse_id(s, "survey"))
        .transpose()?;
    let now = now_ms();
    db.links(&caller.org_id, survey_id.as_deref())
        .await?
        .iter()
        .map(|l| info(l, now))
        .collect()
}

/// Revoke a link: it stops opening at once, and its principal is revoked.
pub async fn revoke(db: &Db, caller: &Caller, link_id: &str) -> Result<(), ApiError> {
    caller.require(MANAGERS, "revoke survey links")?;
    let link_id = super::parse_id(link_id, "link")?;
    let audit = AuditEvent::by(caller, "link_revoked").target(&link_id);
    if !db.revoke_link(&caller.org_id, &link_id, audit).await? {
        return Err(ApiError::NotFound(
            "no such link; run `fieldsync link list`".into(),
        ));
    }
    Ok(())
}

fn info(l: &LinkRow, now: i64) -> Result<LinkInfo, ApiError> {
    let uuid = |s: &str| {
        uuid::Uuid::parse_str(s).map_err(|e| StorageError::Corrupt(format!("link id {s}: {e}")))
    };
    Ok(LinkInfo {
        id: uuid(&l.id)?,
        survey_id: uuid(&l.survey_id)?,
        label: l.label.clone(),
        password: l.password_hash.is_some(),
        expires_at: l.expires_at,
        max_responses: l.max_responses,
        single_use: l.single_use,
        responses: l.responses,
        created_at: l.created_at,
        created_by: l.created_by.clone(),
        revoked_at: l.revoked_at,
        open: l.open_at(now),
    })
}

/// The link a web form's token names, and the invitation when the token is a personal one
/// from an email, if it has the shape of one (anything else is not looked up). An
/// invitation's token is known only once its email was prepared.
pub async fn by_token(
    db: &Db,
    token: &str,
) -> Result<Option<(LinkRow, Option<InvitationRow>)>, ApiError> {
    if token.len() > 128
        || !token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Ok(None);
    }
    if token.starts_with(LINK_PREFIX) {
        return Ok(db
            .link_by_token(token_hash(token))
            .await?
            .filter(|l| !l.invitations)
            .map(|l| (l, None)));
    }
    if !token.starts_with(INVITATION_PREFIX) {
        return Ok(None);
    }
    let Some(inv) = db.invitation_by_token(token_hash(token)).await? else {
        return Ok(None);
    };
    let link = db
        .links(&inv.org_id, Some(&inv.survey_id))
        .await?
        .into_iter()
        .find(|l| l.id == inv.link_id);
    Ok(link.map(|l| (l, Some(inv))))
}

/// The prefix of personal invitation tokens.
pub const INVITATION_PREFIX: &str = "fsi_";

/// Argon2id with the crate's defaults (19 MiB, 2 passes), on a blocking thread.
async fn hash_password(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
        argon2::Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| ApiError::Internal(format!("cannot hash the password: {e}")))
    })
    .await
    .map_err(|e| ApiError::Internal(format!("password hashing stopped: {e}")))?
}

/// Spend the time a password check takes, for a token that is no link: a wrong password for
/// a link that does not exist takes as long to refuse as one for a link that does.
pub async fn burn_password_check(password: String) {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let hash = match DUMMY.get() {
        Some(h) => h.clone(),
        None => match hash_password("fieldsync: no such link".into()).await {
            Ok(h) => DUMMY.get_or_init(|| h).clone(),
            Err(_) => return,
        },
    };
    password_matches(hash, password).await;
}

/// Whether `password` is the one `hash` was made from (on a blocking thread). A hash that
/// cannot be read matches nothing.
pub async fn password_matches(hash: String, password: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash).is_ok_and(|h| {
            argon2::Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
    })
    .await
    .unwrap_or(false)
}
