//! `fieldsync invite`: email a survey's personal links to a list of people.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use fieldsync_protocol::api::{InvitationReport, Invitee, NewInvitations};

use super::{Failure, Settings};

/// People per request (the server's limit).
const CHUNK: usize = 1000;

/// Email each person in a CSV file a personal, single-use link to a survey. The file has an
/// `email` column and may have a `name` column. Each address is invited once per survey:
/// running it again with the same or a longer list sends only to the new addresses. People
/// on the organisation's do-not-contact list are skipped, and counted.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The survey (id or form id).
    survey: String,
    /// The CSV file of people to invite.
    #[arg(long, value_name = "FILE.csv")]
    to: PathBuf,
    /// Return once the server has the list, without waiting for the emails to go.
    #[arg(long)]
    no_wait: bool,
}

/// The people in a CSV file with an `email` column (and perhaps `name`).
fn read(path: &PathBuf) -> anyhow::Result<Vec<Invitee>> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|e| Failure::Invalid(format!("cannot read {}: {e}", path.display())))?;
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| Failure::Invalid(format!("{}: {e}", path.display())))?
        .iter()
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    let Some(email) = headers.iter().position(|h| h == "email") else {
        return Err(Failure::Invalid(format!(
            "{} has no `email` column; its first line names the columns: email,name",
            path.display()
        ))
        .into());
    };
    let name = headers.iter().position(|h| h == "name");
    let mut out = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| Failure::Invalid(format!("{}: {e}", path.display())))?;
        let address = record.get(email).unwrap_or_default().to_owned();
        if address.is_empty() {
            return Err(Failure::Invalid(format!(
                "{} line {}: no email address",
                path.display(),
                i + 2
            ))
            .into());
        }
        out.push(Invitee {
            email: address,
            name: name
                .and_then(|n| record.get(n))
                .filter(|n| !n.is_empty())
                .map(str::to_owned),
        });
    }
    Ok(out)
}

pub fn run(args: Args, s: &Settings) -> anyhow::Result<u8> {
    let people = read(&args.to)?;
    let store = s.open_store()?;
    let client = super::api(&store)?;
    let survey = client.find_survey(&args.survey)?;
    let (mut added, mut already) = (0, 0);
    for chunk in people.chunks(CHUNK) {
        let r = client.invite(
            &survey.id,
            &NewInvitations {
                invitees: chunk.to_vec(),
            },
        )?;
        added += r.added;
        already += r.already;
    }
    let mut report = client.invitations(&survey.id)?;
    if !args.no_wait {
        let started = Instant::now();
        let mut shown = None;
        while report.pending > 0 {
            if !s.json && shown != Some(report.pending) {
                eprintln!(
                    "sending: {} sent, {} to go ({}s)",
                    report.sent,
                    report.pending,
                    started.elapsed().as_secs()
                );
                shown = Some(report.pending);
            }
            std::thread::sleep(Duration::from_millis(500));
            report = client.invitations(&survey.id)?;
        }
    }
    if s.json {
        s.print_json(&serde_json::json!({
            "added": added,
            "already_invited": already,
            "report": report,
        }))?;
    } else {
        describe(&survey.form_id, added, already, &report);
    }
    Ok(0)
}

fn describe(form_id: &str, added: u64, already: u64, r: &InvitationReport) {
    outln!("{added} new invitations to {form_id} ({already} of the list were invited before)");
    outln!(
        "all invitations to {form_id}: {} sent, {} answered, {} skipped (on the do-not-contact list), {} failed, {} waiting",
        r.sent,
        r.answered,
        r.opted_out,
        r.failed,
        r.pending
    );
    for f in &r.failures {
        outln!("  not sent to {}: {}", f.email, f.error);
    }
}
