//! The background sender: claims due invitations under a lease, skips addresses on the
//! do-not-contact list, and mails each its personal link and its opt-out link. A temporary
//! failure (the mail server busy or unreachable, a 4xx answer) is tried again later, up to
//! [`MAX_ATTEMPTS`]; a permanent one (5xx: no such mailbox, refused) is reported as failed.

use std::sync::Arc;
use std::time::Duration;

use fieldsync_protocol::crypto::{new_token, token_hash};
use fieldsync_protocol::survey::Survey;
use lettre::message::Mailbox;
use lettre::message::header::{ContentType, Header, HeaderName, HeaderValue};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tokio::sync::Notify;

use super::MailArgs;
use crate::AppState;
use crate::storage::{InvitationRow, SendOutcome, now_ms};

/// Tries before an invitation that keeps failing for a temporary reason is given up.
pub const MAX_ATTEMPTS: u32 = 5;
/// How long a claimed invitation is a sender's.
const LEASE_MS: i64 = 300_000;
/// Invitations claimed at once: few enough that a batch whose every email waits out the
/// SMTP timeout (30 s) still ends within its lease, so no other instance claims them again.
const BATCH: u32 = 5;

/// The SMTP transport and what every email names.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    public_url: String,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("from", &self.from.to_string())
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// The mailer the settings describe: `Ok(None)` when they set no SMTP host.
    pub fn from_args(args: &MailArgs) -> Result<Option<Mailer>, String> {
        let Some(host) = args.smtp_host.as_deref() else {
            return Ok(None);
        };
        let from: Mailbox = args
            .smtp_from
            .as_deref()
            .ok_or("--smtp-host needs --smtp-from, the sender of invitations")?
            .parse()
            .map_err(|e| format!("--smtp-from: {e}; write `Survey team <surveys@example.org>`"))?;
        let public_url = args
            .public_url
            .as_deref()
            .ok_or("--smtp-host needs --public-url, the address respondents reach this server at")?
            .trim_end_matches('/')
            .to_owned();
        if !(public_url.starts_with("https://") || public_url.starts_with("http://")) {
            return Err(format!(
                "--public-url {public_url:?} must start with https://"
            ));
        }
        let builder = match args.smtp_tls.as_str() {
            "tls" => AsyncSmtpTransport::<Tokio1Executor>::relay(host),
            "none" => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
                host,
            )),
            _ => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host),
        }
        .map_err(|e| format!("--smtp-host {host}: {e}"))?;
        let mut builder = builder
            .port(args.smtp_port)
            .timeout(Some(Duration::from_secs(30)));
        if let (Some(user), Some(password)) = (&args.smtp_user, &args.smtp_password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(Some(Mailer {
            transport: builder.build(),
            from,
            public_url,
        }))
    }
}

/// `List-Unsubscribe`: mail programs show an unsubscribe button for it.
#[derive(Clone)]
struct ListUnsubscribe(String);

impl Header for ListUnsubscribe {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe")
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(ListUnsubscribe(s.to_owned()))
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

/// Send due invitations until `stop` is notified; woken early when invitations are added.
pub async fn run(state: AppState, stop: Arc<Notify>) {
    let Some(mailer) = state.mailer.clone() else {
        return;
    };
    loop {
        match state.db.claim_invitations(now_ms(), LEASE_MS, BATCH).await {
            Ok(batch) if !batch.is_empty() => {
                // A batch is mostly one survey's: its title is read once.
                let mut titles = std::collections::HashMap::new();
                for invitation in batch {
                    // Stopping: the rest of the batch waits out its lease and goes later.
                    if futures_util::FutureExt::now_or_never(stop.notified()).is_some() {
                        return;
                    }
                    send_one(&state, &mailer, invitation, &mut titles).await;
                }
                continue;
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot claim invitations to send"),
        }
        tokio::select! {
            () = state.invitations.notified() => {}
            () = tokio::time::sleep(Duration::from_secs(5)) => {}
            () = stop.notified() => return,
        }
    }
}

async fn send_one(
    state: &AppState,
    mailer: &Mailer,
    inv: InvitationRow,
    titles: &mut std::collections::HashMap<String, String>,
) {
    let outcome = match attempt(state, mailer, &inv, titles).await {
        Ok(outcome) => outcome,
        Err(e) => retry_or_fail(&inv, e),
    };
    let sent = matches!(outcome, SendOutcome::Sent);
    metrics::counter!(crate::metrics::INVITATIONS, "outcome" => match &outcome {
        SendOutcome::Sent => "sent",
        SendOutcome::OptedOut => "opted_out",
        SendOutcome::Failed { retry_at: Some(_), .. } => "retry",
        _ => "failed",
    })
    .increment(1);
    if let Err(e) = state.db.finish_invitation(&inv.id, outcome).await {
        tracing::warn!(error = %e, invitation = %inv.id, sent, "cannot record an invitation's outcome");
    }
}

fn retry_or_fail(inv: &InvitationRow, error: Failure) -> SendOutcome {
    let again = !error.permanent && inv.attempts + 1 < MAX_ATTEMPTS;
    SendOutcome::Failed {
        error: error.message,
        // 30 s, 1, 2, 4 minutes.
        retry_at: again.then(|| now_ms() + 30_000 * (1 << inv.attempts.min(10))),
    }
}

struct Failure {
    message: String,
    permanent: bool,
}

impl Failure {
    fn ours(message: impl std::fmt::Display) -> Failure {
        Failure {
            message: message.to_string(),
            permanent: false,
        }
    }
}

async fn attempt(
    state: &AppState,
    mailer: &Mailer,
    inv: &InvitationRow,
    titles: &mut std::collections::HashMap<String, String>,
) -> Result<SendOutcome, Failure> {
    let org = state
        .db
        .org(&inv.org_id)
        .await
        .map_err(Failure::ours)?
        .ok_or_else(|| Failure::ours("the organisation is gone"))?;
    let keys = crate::service::org_keys(&state.db, &state.keys, &org.id)
        .await
        .map_err(Failure::ours)?;
    let (email, name) =
        super::open_sealed(&keys, &inv.org_id, &inv.id, &inv.sealed).map_err(Failure::ours)?;
    let hash = super::address_hash(&keys, &email);
    let listed = state
        .db
        .do_not_contact(&inv.org_id, vec![hash])
        .await
        .map_err(Failure::ours)?;
    if !listed.is_empty() {
        return Ok(SendOutcome::OptedOut);
    }
    let link = state
        .db
        .links(&inv.org_id, Some(&inv.survey_id))
        .await
        .map_err(Failure::ours)?
        .into_iter()
        .find(|l| l.id == inv.link_id);
    if link.is_none_or(|l| l.revoked_at.is_some()) {
        return Ok(SendOutcome::Failed {
            error: "the survey's invitations were revoked".into(),
            retry_at: None,
        });
    }
    let title = match titles.get(&inv.survey_id) {
        Some(t) => t.clone(),
        None => {
            let t = survey_title(state, inv).await.map_err(Failure::ours)?;
            titles.insert(inv.survey_id.clone(), t.clone());
            t
        }
    };
    let token = new_token(crate::service::links::INVITATION_PREFIX).map_err(Failure::ours)?;
    let optout = new_token("fso_").map_err(Failure::ours)?;
    // The tokens are kept before the email goes: one sent just before a crash still works.
    state
        .db
        .finish_invitation(
            &inv.id,
            SendOutcome::Prepared {
                token_hash: token_hash(&token),
                optout_hash: token_hash(&optout),
            },
        )
        .await
        .map_err(Failure::ours)?;
    let to: Mailbox = email.parse().map_err(|e| Failure {
        message: format!("not an address: {e}"),
        permanent: true,
    })?;
    let link_url = format!("{}/f/{token}", mailer.public_url);
    let optout_url = format!("{}/o/{optout}", mailer.public_url);
    let greeting = name
        .as_deref()
        .map_or_else(|| "Hello,".to_owned(), |n| format!("Hello {n},"));
    let body = format!(
        "{greeting}\n\n{} invites you to answer the survey \"{title}\":\n\n{link_url}\n\n\
         The link is yours alone and takes one response. Please do not forward it.\n\n\
         To receive no more survey invitations from {}, open:\n{optout_url}\n",
        org.name, org.name
    );
    let message = Message::builder()
        .from(mailer.from.clone())
        .to(to)
        .subject(format!("Survey: {title}"))
        .header(ContentType::TEXT_PLAIN)
        .header(ListUnsubscribe(format!("<{optout_url}>")))
        .body(body)
        .map_err(|e| Failure {
            message: format!("cannot write the email: {e}"),
            permanent: true,
        })?;
    match mailer.transport.send(message).await {
        Ok(_) => Ok(SendOutcome::Sent),
        Err(e) => Err(Failure {
            message: e.to_string(),
            permanent: e.is_permanent(),
        }),
    }
}

async fn survey_title(state: &AppState, inv: &InvitationRow) -> Result<String, String> {
    let info = state
        .db
        .survey(&inv.org_id, &inv.survey_id, None)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the survey is gone")?;
    let (json, _) = state
        .db
        .survey_version(&inv.org_id, &inv.survey_id, info.latest_version)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("the survey has no version")?;
    Survey::parse_json(&json)
        .map(|s| s.title().to_owned())
        .map_err(|e| e.to_string())
}
