//! `fieldsync subject`: a respondent's rights, by the identifier their responses hold (the
//! survey's subject field or a question marked identifying): find, export, erase, restrict,
//! and the do-not-contact list. Admins only; every request is audited, without the
//! identifier.

use std::io::{BufRead, IsTerminal, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use fieldsync_client::client::ApiClient;
use fieldsync_client::exit::Failure;
use fieldsync_protocol::Answer;
use fieldsync_protocol::api::{
    DoNotContact, SubjectChanged, SubjectErase, SubjectExport, SubjectFound, SubjectMatch,
    SubjectQuery,
};
use reqwest::Method;

use super::{Settings, format_ms};

/// The person: an identifier as entered in their responses, or `-` to read it from the
/// first line of standard input (so it stays out of shell history and process lists).
#[derive(Debug, clap::Args)]
pub struct Person {
    /// The identifier (a name, an ID number), or `-` for standard input.
    value: String,
    /// Only responses of this survey (id or form id).
    #[arg(long)]
    survey: Option<String>,
}

/// A respondent's rights: find, export, erase or restrict everything held about a person.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// List the person's responses across surveys and versions.
    Find(Person),
    /// Write everything held about the person (answers, and what was done with them) to a
    /// JSON file and a CSV file beside it.
    Export {
        #[command(flatten)]
        person: Person,
        /// The JSON file to write; the CSV gets the same name with `.csv`.
        #[arg(long)]
        out: PathBuf,
    },
    /// Erase the person's responses for ever, on the server and on every device at its next
    /// sync. Asks for confirmation unless --yes is given.
    Erase {
        #[command(flatten)]
        person: Person,
        /// Why (recorded in the audit log; must not name the person).
        #[arg(long)]
        reason: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// Restrict processing: keep the responses but refuse edits and leave them out of
    /// exports and listings (admins still see them) until lifted.
    Restrict(Person),
    /// Lift a restriction.
    Unrestrict(Person),
    /// Put the person on the do-not-contact list: no invitation reaches them, and new
    /// responses naming them are flagged.
    OptOut(Person),
    /// Take the person off the do-not-contact list.
    OptIn(Person),
}

impl Person {
    fn query(&self, client: &ApiClient) -> anyhow::Result<SubjectQuery> {
        let value = if self.value == "-" {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("cannot read the identifier from standard input")?;
            line.trim_end_matches(['\r', '\n']).to_owned()
        } else {
            self.value.clone()
        };
        if value.trim().is_empty() {
            return Err(Failure::Invalid(
                "the identifier is empty; give the value the person's responses hold".into(),
            )
            .into());
        }
        let survey_id = match &self.survey {
            Some(key) => Some(client.find_survey(key)?.id),
            None => None,
        };
        Ok(SubjectQuery { value, survey_id })
    }
}

pub fn run(command: Command, s: &Settings) -> anyhow::Result<u8> {
    let store = s.open_store()?;
    let client = super::api(&store)?;
    match command {
        Command::Find(p) => {
            let found: SubjectFound =
                client.send_json(Method::POST, "/v1/subjects/find", &p.query(&client)?)?;
            if s.json {
                s.print_json(&found)?;
            } else {
                print_found(&found.responses);
                if found.do_not_contact {
                    outln!("this person is on the do-not-contact list");
                }
            }
        }
        Command::Export { person, out } => {
            let export: SubjectExport =
                client.send_json(Method::POST, "/v1/subjects/export", &person.query(&client)?)?;
            let csv_path = out.with_extension("csv");
            write_export(&export, &out, &csv_path)?;
            let files = save_files(&client, &export, &out)?;
            if s.json {
                s.print_json(&serde_json::json!({
                    "responses": export.responses.len(),
                    "json": out,
                    "csv": csv_path,
                    "files": files,
                }))?;
            } else {
                outln!(
                    "wrote {} response(s) held about the person to {} and {}",
                    export.responses.len(),
                    out.display(),
                    csv_path.display()
                );
                if let Some(first) = files.first()
                    && let Some(dir) = first.parent()
                {
                    outln!("and their {} file(s) to {}", files.len(), dir.display());
                }
            }
        }
        Command::Erase {
            person,
            reason,
            yes,
        } => {
            let q = person.query(&client)?;
            if !yes {
                let found: SubjectFound =
                    client.send_json(Method::POST, "/v1/subjects/find", &q)?;
                if found.responses.is_empty() {
                    outln!("no responses are held about this person; nothing to erase");
                    return Ok(0);
                }
                confirm_erasure(found.responses.len())?;
            }
            let erased: SubjectChanged = client.send_json(
                Method::POST,
                "/v1/subjects/erase",
                &SubjectErase {
                    value: q.value,
                    reason,
                    survey_id: q.survey_id,
                },
            )?;
            if s.json {
                s.print_json(&erased)?;
            } else {
                outln!(
                    "erased {} response(s); devices delete their copies at their next sync",
                    erased.responses.len()
                );
                for id in &erased.responses {
                    outln!("  {id}");
                }
            }
        }
        Command::Restrict(p) => changed(s, &client, "/v1/subjects/restrict", &p, "restricted")?,
        Command::Unrestrict(p) => changed(
            s,
            &client,
            "/v1/subjects/unrestrict",
            &p,
            "no longer restricted",
        )?,
        Command::OptOut(p) => listing(s, &client, "/v1/subjects/opt-out", &p)?,
        Command::OptIn(p) => listing(s, &client, "/v1/subjects/opt-in", &p)?,
    }
    Ok(0)
}

fn print_found(found: &[SubjectMatch]) {
    if found.is_empty() {
        outln!("no responses are held about this person");
        return;
    }
    outln!("{} response(s):", found.len());
    for m in found {
        outln!(
            "  {}  survey {} v{}  collected by {}  received {}{}",
            m.response_id,
            m.survey_id,
            m.survey_version,
            m.collected_by,
            format_ms(m.received_at),
            if m.restricted { "  (restricted)" } else { "" }
        );
    }
}

fn changed(
    s: &Settings,
    client: &ApiClient,
    path: &str,
    person: &Person,
    now: &str,
) -> anyhow::Result<()> {
    let changed: SubjectChanged = client.send_json(Method::POST, path, &person.query(client)?)?;
    if s.json {
        s.print_json(&changed)?;
    } else if changed.found == 0 {
        outln!("no responses are held about this person");
    } else {
        outln!(
            "{} of {} response(s) are now {now}; devices learn it at their next sync",
            changed.responses.len(),
            changed.found
        );
    }
    Ok(())
}

fn listing(s: &Settings, client: &ApiClient, path: &str, person: &Person) -> anyhow::Result<()> {
    let answer: DoNotContact = client.send_json(Method::POST, path, &person.query(client)?)?;
    if s.json {
        s.print_json(&answer)?;
    } else {
        let state = if answer.listed { "on" } else { "off" };
        let change = if answer.changed { "now" } else { "already" };
        outln!("the person is {change} {state} the do-not-contact list");
    }
    Ok(())
}

/// Ask on the terminal before erasing; refuse without one (scripts pass --yes).
fn confirm_erasure(count: usize) -> anyhow::Result<()> {
    if !std::io::stdin().is_terminal() {
        return Err(Failure::Invalid(format!(
            "this erases {count} response(s) for ever; there is no terminal to confirm on, so add --yes"
        ))
        .into());
    }
    eprint!(
        "this erases {count} response(s) for ever, here and on every device; type `erase` to continue: "
    );
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    if line.trim() != "erase" {
        return Err(Failure::Invalid("not confirmed; nothing was erased".into()).into());
    }
    Ok(())
}

/// The JSON as the server sent it, and a CSV with one row per answer and per processing
/// entry.
fn write_export(export: &SubjectExport, json: &Path, csv_path: &Path) -> anyhow::Result<()> {
    let text = serde_json::to_vec_pretty(export)?;
    std::fs::write(json, text).with_context(|| format!("cannot write {}", json.display()))?;
    let mut w = csv::Writer::from_path(csv_path)
        .with_context(|| format!("cannot write {}", csv_path.display()))?;
    w.write_record([
        "response_id",
        "survey_id",
        "survey_version",
        "collected_by",
        "received_at",
        "kind",
        "name",
        "value",
        "at",
        "by",
    ])?;
    for r in &export.responses {
        let f = &r.found;
        let lead = [
            f.response_id.to_string(),
            f.survey_id.to_string(),
            f.survey_version.to_string(),
            f.collected_by.to_string(),
            format_ms(f.received_at),
        ];
        let mut row = |kind: &str, name: &str, value: &str, at: String, by: &str| {
            let mut rec: Vec<String> = lead.to_vec();
            rec.extend([kind.into(), name.into(), value.into(), at, by.into()]);
            w.write_record(&rec)
        };
        if let Some(view) = &r.view {
            let mut flat = Vec::new();
            flatten("", &view.answers, &mut flat);
            for (name, value) in flat {
                row(
                    "answer",
                    &name,
                    &value,
                    format_ms(view.updated_at),
                    &view.author_device,
                )?;
            }
        }
        if let Some(why) = &r.unreadable {
            row("unreadable", "", why, String::new(), "")?;
        }
        for f in &r.files {
            let what = format!("{}, {} bytes", f.media_type, f.size);
            row("file", &f.question, &f.name, String::new(), &what)?;
        }
        for p in &r.processing {
            let by = format!(
                "{} {}",
                p.actor_role.as_deref().unwrap_or(""),
                p.actor_id.as_deref().unwrap_or("")
            );
            row(
                "processing",
                &p.action,
                p.detail.as_deref().unwrap_or(""),
                format_ms(p.at),
                by.trim(),
            )?;
        }
    }
    w.flush()?;
    Ok(())
}

/// Download every stored file of the export's responses into `OUT-files/RESPONSE/NAME`.
fn save_files(
    client: &fieldsync_client::client::ApiClient,
    export: &SubjectExport,
    out: &Path,
) -> anyhow::Result<Vec<std::path::PathBuf>> {
    let mut dir = out.as_os_str().to_owned();
    dir.push("-files");
    let dir = std::path::PathBuf::from(dir);
    let mut saved = Vec::new();
    for r in &export.responses {
        for f in r.files.iter().filter(|f| f.stored) {
            fieldsync_protocol::media::check_name(&f.name)
                .map_err(fieldsync_client::exit::Failure::Invalid)?;
            let id = r.found.response_id;
            let folder = dir.join(id.to_string());
            std::fs::create_dir_all(&folder)
                .with_context(|| format!("cannot create {}", folder.display()))?;
            let path = folder.join(&f.name);
            let mut body = client.media_file(&id, &f.name)?;
            // The person's own data in plaintext: readable by the owner only.
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&path)
                .with_context(|| format!("cannot write {}", path.display()))?;
            std::io::copy(&mut body, &mut file)
                .with_context(|| format!("{} was interrupted; export again", f.name))?;
            saved.push(path);
        }
    }
    Ok(saved)
}

/// Answers as `name` / `repeat[2].name` paths and their text.
fn flatten(prefix: &str, answers: &fieldsync_protocol::Answers, out: &mut Vec<(String, String)>) {
    for (name, answer) in answers {
        match answer {
            Answer::Repeat(entries) => {
                for (i, e) in entries.iter().enumerate() {
                    flatten(&format!("{prefix}{name}[{}].", i + 1), &e.answers, out);
                }
            }
            a => out.push((format!("{prefix}{name}"), a.to_text())),
        }
    }
}
