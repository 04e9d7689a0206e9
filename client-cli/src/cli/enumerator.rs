//! `fieldsync enumerator`: create and list enumerators, and the one-time codes that enroll
//! their devices.

use fieldsync_protocol::api::{CreatedMember, NewEnumerator, Role};

use super::Settings;
use super::enroll::non_empty;

/// Manage enumerators (the people who collect on devices).
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Create an enumerator and print the one-time enrollment code for their device.
    Add {
        /// The enumerator's name.
        #[arg(value_parser = non_empty)]
        name: String,
        /// A survey to assign (id or form id); repeat for several.
        #[arg(long = "survey", value_name = "ID_OR_FORM_ID")]
        surveys: Vec<String>,
        /// Print only the enrollment code, for scripts: `CODE=$(fieldsync enumerator add NAME --quiet)`.
        #[arg(long)]
        quiet: bool,
    },
    /// List the organisation's enumerators.
    List,
    /// Issue a new one-time enrollment code (a code lost, or a new device); their unused
    /// older code stops working.
    Code {
        /// The enumerator's id, a unique prefix of it, or their name.
        enumerator: String,
        /// Print only the enrollment code.
        #[arg(long)]
        quiet: bool,
    },
}

pub fn run(command: Command, s: &Settings) -> anyhow::Result<u8> {
    let store = s.open_store()?;
    let client = super::api(&store)?;
    match command {
        Command::Add {
            name,
            surveys,
            quiet,
        } => {
            let mut ids = Vec::with_capacity(surveys.len());
            for key in &surveys {
                ids.push(client.find_survey(key)?.id);
            }
            let created = client.create_enumerator(&NewEnumerator { name, surveys: ids })?;
            print_code(&created, quiet, "created enumerator", client.base(), s)
        }
        Command::List => {
            let members = client.members()?;
            let enumerators: Vec<_> = members
                .iter()
                .filter(|m| m.role == Role::Enumerator)
                .collect();
            if s.json {
                s.print_json(&enumerators)?;
            } else if enumerators.is_empty() {
                outln!("no enumerators; `fieldsync enumerator add NAME` creates one");
            } else {
                outln!("{:<36}  {:<7}  {:<20}  NAME", "ID", "STATE", "ADDED");
                for m in enumerators {
                    let state = if m.revoked { "revoked" } else { "active" };
                    outln!(
                        "{:<36}  {:<7}  {:<20}  {}",
                        m.id,
                        state,
                        super::format_ms(m.created_at),
                        m.name
                    );
                }
            }
            Ok(0)
        }
        Command::Code { enumerator, quiet } => {
            let members = client.members()?;
            let who = super::member::find(&members, &enumerator, Some(Role::Enumerator))?;
            let created = client.reissue_code(&who.id)?;
            print_code(&created, quiet, "new code for enumerator", client.base(), s)
        }
    }
}

fn print_code(
    created: &CreatedMember,
    quiet: bool,
    what: &str,
    server: &str,
    s: &Settings,
) -> anyhow::Result<u8> {
    if quiet {
        outln!("{}", created.one_time_secret);
    } else if s.json {
        s.print_json(&serde_json::json!({
            "id": created.id,
            "name": created.name,
            "code": created.one_time_secret,
        }))?;
    } else {
        outln!("{what} {} with id {}", created.name, created.id);
        outln!(
            "one-time enrollment code (shown only once): {}",
            created.one_time_secret
        );
        outln!("on their device: fieldsync enroll --server {server} --code <CODE>");
    }
    Ok(0)
}
