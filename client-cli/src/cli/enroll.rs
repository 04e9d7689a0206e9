//! `fieldsync enroll`: an enumerator's device exchanges its one-time enrollment code for a
//! device token, then syncs once so its assigned surveys arrive.

use fieldsync_client::client::{ApiClient, ClientError};
use fieldsync_client::engine;
use fieldsync_client::exit::Failure;
use fieldsync_client::store::{Account, Store};
use fieldsync_protocol::api::{EnrollRequest, SessionGrant};

use super::Settings;

/// Enroll this device with the one-time code a coordinator gave you, then fetch your surveys.
///
/// Creates the store in --home if it does not exist yet (asking for a new passphrase twice).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The server address, e.g. http://127.0.0.1:8470.
    /// (FIELDSYNC_SERVER, or `server` in config.toml, when not given.)
    #[arg(long, env = "FIELDSYNC_SERVER", value_name = "URL", value_parser = server_url)]
    server: Option<String>,
    /// The one-time enrollment code.
    #[arg(long, value_parser = non_empty)]
    code: String,
    /// A name for this device, shown to coordinators.
    #[arg(long, value_name = "NAME")]
    device_name: Option<String>,
}

pub fn run(args: Args, s: &Settings) -> anyhow::Result<u8> {
    let server = s.config.server(args.server)?;
    let mut store = s.open_or_create_store()?;
    store.may_bind_to(&server)?;
    let client = ApiClient::new(&server, None)?;
    let attempt = store.redeem_attempt(&args.code)?;
    let grant = client
        .enroll(&EnrollRequest {
            code: args.code,
            device_name: args.device_name,
            attempt: Some(attempt),
        })
        .map_err(|e| refused(e, "enrollment code", "ask a coordinator for a new code"))?;
    start_session(&mut store, &server, grant, s)
}

/// Remember the account, sync once, and report who this client now is.
pub fn start_session(
    store: &mut Store,
    server: &str,
    grant: SessionGrant,
    s: &Settings,
) -> anyhow::Result<u8> {
    let account = Account {
        server: server.trim_end_matches('/').to_owned(),
        token: grant.token,
        org_id: grant.org_id,
        org_name: grant.org_name,
        principal_id: grant.principal_id,
        name: grant.name,
        role: grant.role,
    };
    store.set_account(account.clone())?;
    let client = ApiClient::new(&account.server, Some(account.token.clone()))?;
    let bar = super::progress_bar(None);
    let sync = engine::sync(store, &client, &mut |_| bar.tick());
    bar.finish_and_clear();
    let surveys = store.surveys()?.len();
    let sync_error = match &sync {
        Ok(_) => None,
        Err(e) => {
            eprintln!(
                "warning: signed in, but the first sync failed: {e}; run `fieldsync sync` to fetch your surveys"
            );
            Some(e.to_string())
        }
    };
    if s.json {
        s.print_json(&serde_json::json!({
            "principal_id": account.principal_id,
            "name": account.name,
            "role": account.role,
            "org_id": account.org_id,
            "org_name": account.org_name,
            "server": account.server,
            "surveys": surveys,
            "sync": sync.as_ref().ok(),
            "sync_error": sync_error,
        }))?;
    } else {
        outln!(
            "signed in as {} ({}) in {} on {}",
            account.name,
            account.role,
            account.org_name,
            account.server
        );
        outln!("{surveys} survey(s) on this device");
    }
    Ok(0)
}

/// A refused one-time secret is an authentication failure with a next step, not the
/// "log in again" advice of an expired session.
pub fn refused(e: ClientError, what: &str, next: &str) -> anyhow::Error {
    match e {
        ClientError::Unauthenticated { .. } => Failure::Auth(format!(
            "the server refused this {what}: it is unknown, already used or expired; {next}"
        ))
        .into(),
        ClientError::Forbidden { message } => {
            Failure::Auth(format!("the server refused this {what}: {message}")).into()
        }
        other => other.into(),
    }
}

pub fn server_url(s: &str) -> Result<String, String> {
    if s.starts_with("http://") || s.starts_with("https://") {
        Ok(s.trim_end_matches('/').to_owned())
    } else {
        Err("the server address must start with http:// or https://".into())
    }
}

pub fn non_empty(s: &str) -> Result<String, String> {
    let t = s.trim();
    if t.is_empty() {
        Err("must not be empty".into())
    } else {
        Ok(t.to_owned())
    }
}
