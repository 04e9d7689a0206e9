//! `fieldsync org`: the organisation's own settings.

use fieldsync_protocol::api::SupportAccess;
use reqwest::Method;

use super::Settings;

/// The organisation's settings (admins only).
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Let the operator's support staff into the organisation's data, or keep them out
    /// (every support request is audited, allowed or refused).
    SupportAccess {
        #[arg(value_enum)]
        state: Switch,
    },
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Switch {
    On,
    Off,
}

pub fn run(command: Command, s: &Settings) -> anyhow::Result<u8> {
    let store = s.open_store()?;
    let client = super::api(&store)?;
    match command {
        Command::SupportAccess { state } => {
            let enabled = matches!(state, Switch::On);
            let answer: SupportAccess = client.send_json(
                Method::PUT,
                "/v1/org/support-access",
                &SupportAccess { enabled },
            )?;
            if s.json {
                s.print_json(&answer)?;
            } else if answer.enabled {
                outln!(
                    "support access is on: the operator's support staff can act in this organisation (audited)"
                );
            } else {
                outln!(
                    "support access is off: support staff are refused (their attempts are audited)"
                );
            }
        }
    }
    Ok(0)
}
