//! `fieldsync status`: what waits to be synced and what needs attention, from the local store
//! alone (works offline).

use super::{Settings, format_ms};

/// Show pending changes, the last sync, and responses that are invalid, conflicted or refused.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args, s: &Settings) -> anyhow::Result<u8> {
    let store = s.open_store()?;
    let r = store.status_report()?;
    if s.json {
        s.print_json(&r)?;
        return Ok(0);
    }
    match (&r.account, &r.server) {
        (Some(a), Some(server)) => outln!("signed in as {a} on {server}"),
        _ => outln!("not signed in; run `fieldsync enroll` or `fieldsync login`"),
    }
    outln!(
        "last sync: {}",
        r.last_sync_at.map_or_else(|| "never".to_owned(), format_ms)
    );
    outln!(
        "waiting to sync: {} response(s) ({} change(s))",
        r.pending_responses,
        r.pending_changes
    );
    outln!(
        "files waiting to upload: {} ({} left to send)",
        r.media_waiting,
        fieldsync_protocol::media::show_size(r.media_bytes_left)
    );
    outln!("responses on this device: {}", r.responses);
    outln!("  invalid (handed in with problems): {}", r.invalid);
    outln!("  with conflicts: {}", r.conflicted);
    outln!("  refused by the server: {}", r.rejected);
    outln!(
        "  restricted at the respondent's request (no edits): {}",
        r.restricted
    );
    if r.media_refused > 0 {
        outln!(
            "  files refused by the server: {} (`fieldsync sync` named them and why)",
            r.media_refused
        );
    }
    Ok(0)
}
