//! `fieldsync enumerator`: create an enumerator and the one-time code that enrolls their
//! device.

use fieldsync_protocol::api::NewEnumerator;

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
}

pub fn run(command: Command, s: &Settings) -> anyhow::Result<u8> {
    let Command::Add {
        name,
        surveys,
        quiet,
    } = command;
    let store = s.open_store()?;
    let client = super::api(&store)?;
    let mut ids = Vec::with_capacity(surveys.len());
    for key in &surveys {
        ids.push(client.find_survey(key)?.id);
    }
    let created = client.create_enumerator(&NewEnumerator { name, surveys: ids })?;
    if quiet {
        outln!("{}", created.one_time_secret);
    } else if s.json {
        s.print_json(&serde_json::json!({
            "id": created.id,
            "name": created.name,
            "code": created.one_time_secret,
        }))?;
    } else {
        outln!("created enumerator {} with id {}", created.name, created.id);
        outln!(
            "one-time enrollment code (shown only once): {}",
            created.one_time_secret
        );
        outln!(
            "on their device: fieldsync enroll --server {} --code <CODE>",
            client.base()
        );
    }
    Ok(0)
}
