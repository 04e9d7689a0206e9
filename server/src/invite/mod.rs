//! Email invitations: a coordinator sends a survey's personal links to a list of people
//! (`fieldsync invite SURVEY --to FILE.csv`); the server records each address once per
//! survey and a background sender ([`send`]) mails them over SMTP, skipping the organisation's
//! do-not-contact list. Each email holds a personal, single-use link (`/f/fsi_…`) and an
//! opt-out link (`/o/fso_…`) that puts the address on that list. Sending is resumable (the
//! invitations wait in the database, claimed under a lease) and idempotent (a list sent again
//! adds nobody who has one).

pub mod send;

use fieldsync_protocol::api::{
    InvitationFailure, InvitationReport, InvitationsAdded, NewInvitations,
};
use fieldsync_protocol::crypto::{Binding, Purpose};

use crate::AppState;
use crate::auth::{Caller, MANAGERS};
use crate::error::ApiError;
use crate::keys::ORG_KEY_ID;
use crate::storage::{AuditEvent, NewInvitation, NewLink, StorageError};

/// Most people in one request (the CLI sends a longer list in parts).
pub const MAX_PER_REQUEST: usize = 1000;

/// How the server reaches its mail server (`serve` flags, `FIELDSYNC_*` variables, or the
/// configuration file).
#[derive(Clone, Debug, clap::Args)]
pub struct MailArgs {
    /// The address respondents reach this server at, for the links in invitations
    /// (`https://surveys.example.org`); invitations are refused until it is set.
    #[arg(long, env = "FIELDSYNC_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,

    /// The SMTP server invitations are sent through; invitations are refused until it is set.
    #[arg(long, env = "FIELDSYNC_SMTP_HOST", value_name = "HOST")]
    pub smtp_host: Option<String>,

    /// Its port (587 for STARTTLS, 465 for TLS, 25 without).
    #[arg(long, env = "FIELDSYNC_SMTP_PORT", default_value_t = 587)]
    pub smtp_port: u16,

    /// How the connection is secured: `starttls`, `tls`, or `none` (only for a relay on
    /// this machine or a test sink).
    #[arg(long, env = "FIELDSYNC_SMTP_TLS", default_value = "starttls",
        value_parser = ["starttls", "tls", "none"])]
    pub smtp_tls: String,

    /// The user to sign in to the SMTP server as, if it asks.
    #[arg(long, env = "FIELDSYNC_SMTP_USER", requires = "smtp_password")]
    pub smtp_user: Option<String>,

    /// Its password (prefer the variable or the configuration file to the command line).
    #[arg(
        long,
        env = "FIELDSYNC_SMTP_PASSWORD",
        requires = "smtp_user",
        hide_env_values = true
    )]
    pub smtp_password: Option<String>,

    /// The sender of invitations: `Survey team <surveys@example.org>`.
    #[arg(long, env = "FIELDSYNC_SMTP_FROM", value_name = "MAILBOX")]
    pub smtp_from: Option<String>,
}

fn seal_binding<'a>(org_id: &'a str, id: &'a str) -> Binding<'a> {
    Binding::new(Purpose::Invitation, org_id, id, 0, ORG_KEY_ID)
}

/// The hash the do-not-contact list and the invitations know an address by.
pub fn address_hash(keys: &crate::keys::OrgKeys, email: &str) -> [u8; 32] {
    let normalized =
        fieldsync_protocol::subject::normalize(email).unwrap_or_else(|| email.to_owned());
    keys.subject_hash(&normalized)
}

/// An invitation's address and name, opened.
pub fn open_sealed(
    keys: &crate::keys::OrgKeys,
    org_id: &str,
    id: &str,
    sealed: &[u8],
) -> Result<(String, Option<String>), StorageError> {
    let sealed = fieldsync_protocol::crypto::Sealed::from_bytes(sealed)
        .map_err(|e| StorageError::Corrupt(format!("invitation {id}: {e}")))?;
    let opened = keys
        .cipher
        .open(&seal_binding(org_id, id), &sealed)
        .map_err(|e| StorageError::Corrupt(format!("invitation {id}: {e}")))?;
    serde_json::from_slice(opened.as_bytes())
        .map_err(|e| StorageError::Corrupt(format!("invitation {id}: {e}")))
}

/// Add people to invite to a survey; the sender mails them in the background.
pub async fn add(
    state: &AppState,
    caller: &Caller,
    survey_id: &str,
    req: NewInvitations,
) -> Result<InvitationsAdded, ApiError> {
    caller.require(MANAGERS, "send survey invitations")?;
    if state.mailer.is_none() {
        return Err(ApiError::Unavailable(
            "this server sends no email: its operator must set --smtp-host, --smtp-from and --public-url".into(),
        ));
    }
    let survey_id = crate::service::parse_id(survey_id, "survey")?;
    if state
        .db
        .survey(&caller.org_id, &survey_id, None)
        .await?
        .is_none()
    {
        return Err(ApiError::NotFound(
            "no such survey; run `fieldsync survey list`".into(),
        ));
    }
    if req.invitees.len() > MAX_PER_REQUEST {
        return Err(ApiError::BadRequest(format!(
            "at most {MAX_PER_REQUEST} people per request; send the list in parts"
        )));
    }
    let mut problems = Vec::new();
    for (i, p) in req.invitees.iter().enumerate() {
        if p.email.trim().parse::<lettre::Address>().is_err() {
            problems.push(format!(
                "person {}: {:?} is not an email address",
                i + 1,
                p.email
            ));
        }
        if p.name
            .as_ref()
            .is_some_and(|n| n.chars().count() > 100 || n.chars().any(char::is_control))
        {
            problems.push(format!(
                "person {}: a name is at most 100 characters on one line",
                i + 1
            ));
        }
    }
    if !problems.is_empty() {
        let shown: Vec<&str> = problems.iter().take(20).map(String::as_str).collect();
        return Err(ApiError::Invalid(format!(
            "{} people cannot be invited; correct them and send the list again: {}",
            problems.len(),
            shown.join("; ")
        )));
    }
    crate::service::links::web_ready(&state.db, &caller.org_id, &survey_id).await?;
    let link = invitation_link(state, caller, &survey_id).await?;
    let keys = crate::service::org_keys(&state.db, &state.keys, &caller.org_id).await?;
    let total = req.invitees.len() as u64;
    let mut invitations = Vec::with_capacity(req.invitees.len());
    for p in req.invitees {
        let email = p.email.trim().to_owned();
        let id = uuid::Uuid::now_v7().to_string();
        let plain = serde_json::to_vec(&(email.clone(), p.name.map(|n| n.trim().to_owned())))
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        let sealed = keys
            .cipher
            .seal(&seal_binding(&caller.org_id, &id), &plain)
            .map_err(|e| ApiError::Internal(format!("cannot seal an address: {e}")))?
            .to_bytes();
        invitations.push(NewInvitation {
            id,
            address_hash: address_hash(&keys, &email),
            sealed,
        });
    }
    let audit = AuditEvent::by(caller, "invitations_added").target(&survey_id);
    let added = state
        .db
        .add_invitations(&caller.org_id, &survey_id, &link.id, invitations, audit)
        .await?;
    state.invitations.notify_one();
    Ok(InvitationsAdded {
        added,
        already: total - added,
    })
}

/// The survey's invitation link, created with its first invitations.
async fn invitation_link(
    state: &AppState,
    caller: &Caller,
    survey_id: &str,
) -> Result<crate::storage::LinkRow, ApiError> {
    let find = || async {
        Ok::<_, ApiError>(
            state
                .db
                .links(&caller.org_id, Some(survey_id))
                .await?
                .into_iter()
                .find(|l| l.invitations && l.revoked_at.is_none()),
        )
    };
    if let Some(l) = find().await? {
        return Ok(l);
    }
    // Its own token is never shown: each invitation has one of its own.
    let (_, base) = crate::service::links::link_record(caller, survey_id, "email invitations")?;
    state
        .db
        .create_link(NewLink {
            invitations: true,
            ..base
        })
        .await?;
    find()
        .await?
        .ok_or_else(|| ApiError::Internal("the invitation link just made is missing".into()))
}

/// Where a survey's invitations are, with the addresses that failed.
pub async fn report(
    state: &AppState,
    caller: &Caller,
    survey_id: &str,
) -> Result<InvitationReport, ApiError> {
    caller.require(MANAGERS, "follow survey invitations")?;
    let survey_id = crate::service::parse_id(survey_id, "survey")?;
    let s = state
        .db
        .invitation_summary(&caller.org_id, &survey_id)
        .await?;
    let keys = crate::service::org_keys(&state.db, &state.keys, &caller.org_id).await?;
    let mut failures = Vec::with_capacity(s.failures.len());
    for (id, sealed, error) in s.failures {
        let (email, _) = open_sealed(&keys, &caller.org_id, &id, &sealed)?;
        failures.push(InvitationFailure { email, error });
    }
    Ok(InvitationReport {
        pending: s.pending,
        sent: s.sent,
        failed: s.failed,
        opted_out: s.opted_out,
        answered: s.answered,
        failures,
    })
}
