//! `fieldsync logout`: revoke this client's session on the server and forget it locally;
//! the responses on the device stay.

use fieldsync_client::client::ClientError;

use super::Settings;

/// Log out: the server revokes this client's token; local data stays on the device.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args, s: &Settings) -> anyhow::Result<u8> {
    let mut store = s.open_store()?;
    let client = super::api(&store)?;
    match client.logout() {
        // Already revoked or expired: nothing left to revoke.
        Ok(()) | Err(ClientError::Unauthenticated { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    let pending = store.status_report()?.pending_responses;
    store.clear_account()?;
    if s.json {
        s.print_json(&serde_json::json!({ "logged_out": true, "pending_responses": pending }))?;
    } else {
        outln!("logged out; local data stays on this device");
        if pending > 0 {
            outln!("{pending} response(s) are not synced yet; log in or enroll again to sync them");
        }
    }
    Ok(0)
}
