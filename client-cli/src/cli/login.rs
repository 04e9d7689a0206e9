//! `fieldsync login`: a coordinator, ops or admin member exchanges a one-time login token for
//! a session on this client.

use fieldsync_client::client::ApiClient;
use fieldsync_protocol::api::LoginRequest;

use super::Settings;
use super::enroll::{non_empty, refused, server_url, start_session};

/// Log in as a coordinator, ops or admin member with the one-time token you were given.
///
/// Creates the store in --home if it does not exist yet, then syncs once.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The server address, e.g. http://127.0.0.1:8470.
    /// (FIELDSYNC_SERVER, or `server` in config.toml, when not given.)
    #[arg(long, env = "FIELDSYNC_SERVER", value_name = "URL", value_parser = server_url)]
    server: Option<String>,
    /// The one-time login token.
    #[arg(long, value_parser = non_empty)]
    token: String,
}

pub fn run(args: Args, s: &Settings) -> anyhow::Result<u8> {
    let server = s.config.server(args.server)?;
    let mut store = s.open_or_create_store()?;
    store.may_bind_to(&server)?;
    let client = ApiClient::new(&server, None)?;
    let client_name = std::env::var("HOSTNAME").ok();
    let attempt = store.redeem_attempt(&args.token)?;
    let grant = client
        .login(&LoginRequest {
            token: args.token,
            client_name,
            attempt: Some(attempt),
        })
        .map_err(|e| refused(e, "login token", "ask an admin for a new one"))?;
    start_session(&mut store, &server, grant, s)
}
