//! `fieldsync audit`: the organisation's audit log, and a check that nobody changed or removed
//! an entry (each entry is sealed into a chain the server keys; see ARCHITECTURE.md).

use fieldsync_protocol::api::{AuditRecord, AuditVerification};

use super::{Settings, format_ms};

/// The organisation's audit log (admins only).
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// List entries, oldest first.
    List {
        /// Only entries after this id (to page on from the last one shown).
        #[arg(long, default_value_t = 0)]
        after: i64,
        /// At most this many entries.
        #[arg(long, default_value_t = 500)]
        limit: u32,
    },
    /// Check every entry's seal and link; exits 1 naming the first entry changed or removed.
    Verify,
}

pub fn run(command: Command, s: &Settings) -> anyhow::Result<u8> {
    let store = s.open_store()?;
    let client = super::api(&store)?;
    match command {
        Command::List { after, limit } => {
            let entries: Vec<AuditRecord> =
                client.get_json(&format!("/v1/audit?after={after}&limit={limit}"))?;
            if s.json {
                s.print_json(&entries)?;
                return Ok(0);
            }
            for e in &entries {
                outln!(
                    "{:>8}  {}  {} {}  {}{}{}",
                    e.id,
                    format_ms(e.at),
                    e.actor_role.as_deref().unwrap_or("-"),
                    e.actor_id.as_deref().unwrap_or("-"),
                    e.action,
                    e.target
                        .as_deref()
                        .map(|t| format!(" {t}"))
                        .unwrap_or_default(),
                    e.detail
                        .as_deref()
                        .map(|d| format!(" ({d})"))
                        .unwrap_or_default(),
                );
            }
            if entries.len() as u32 >= limit
                && let Some(last) = entries.last()
            {
                outln!("more entries follow: --after {}", last.id);
            }
            Ok(0)
        }
        Command::Verify => {
            let v: AuditVerification = client.get_json("/v1/audit/verify")?;
            if s.json {
                s.print_json(&v)?;
            }
            match &v.problem {
                None => {
                    if !s.json {
                        outln!("the audit log is intact: {} entries verified", v.verified);
                        if v.unchained > 0 {
                            outln!(
                                "{} older entries were recorded before the log was chained and are not covered",
                                v.unchained
                            );
                        }
                    }
                    Ok(0)
                }
                Some(problem) => {
                    eprintln!(
                        "the audit log was tampered with: {problem} ({} entries verified before it)",
                        v.verified
                    );
                    Ok(fieldsync_client::exit::FAILURE)
                }
            }
        }
    }
}
