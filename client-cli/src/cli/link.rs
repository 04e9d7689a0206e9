//! `fieldsync link`: web-form links to a survey, for respondents without the app.

use anyhow::Context;
use fieldsync_protocol::api::{CreatedLink, LinkInfo, NewLink};
use uuid::Uuid;

use super::{Failure, Settings};

/// Web-form links: people answer a survey in a browser at the link, without an account.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Create a link to a survey and print its address (shown once: only its hash is kept).
    Create {
        /// The survey (id or form id).
        survey: String,
        /// What the link is for (shown in `link list` and as the collector of its responses).
        #[arg(long)]
        label: Option<String>,
        /// Ask for a password respondents must type before the form opens (at least 8
        /// characters; without a terminal it is read from FIELDSYNC_LINK_PASSWORD).
        #[arg(long)]
        password: bool,
        /// The last day the link takes responses (YYYY-MM-DD, through the end of that day
        /// here), or an RFC 3339 time.
        #[arg(long, value_name = "DATE", value_parser = parse_expiry)]
        expires: Option<i64>,
        /// At most this many responses.
        #[arg(long, value_name = "N")]
        max_responses: Option<u32>,
        /// One response, then the link closes.
        #[arg(long)]
        single_use: bool,
    },
    /// List the organisation's links (of one survey with --survey).
    List {
        /// Only this survey's links (id or form id).
        #[arg(long)]
        survey: Option<String>,
    },
    /// Revoke a link: it stops opening at once; its responses stay.
    Revoke {
        /// The link's id (or a unique prefix of it).
        link: String,
    },
}

pub fn run(command: Command, s: &Settings) -> anyhow::Result<u8> {
    let store = s.open_store()?;
    let client = super::api(&store)?;
    match command {
        Command::Create {
            survey,
            label,
            password,
            expires,
            max_responses,
            single_use,
        } => {
            let survey = client.find_survey(&survey)?;
            let password = if password {
                Some(link_password()?)
            } else {
                None
            };
            let created = client.create_link(
                &survey.id,
                &NewLink {
                    label,
                    password,
                    expires_at: expires,
                    max_responses,
                    single_use,
                },
            )?;
            let url = format!("{}{}", client.base().trim_end_matches('/'), created.path);
            if s.json {
                s.print_json(&serde_json::json!({ "link": created.link, "url": url }))?;
            } else {
                describe_created(&created, &survey.form_id, &url);
            }
            Ok(0)
        }
        Command::List { survey } => {
            let survey = survey.map(|k| client.find_survey(&k)).transpose()?;
            let links = client.links(survey.as_ref().map(|s| &s.id))?;
            if s.json {
                s.print_json(&links)?;
            } else if links.is_empty() {
                outln!("no links; `fieldsync link create SURVEY` creates one");
            } else {
                outln!(
                    "{:<36}  {:<8}  {:<9}  {:<20}  LABEL",
                    "ID",
                    "STATE",
                    "RESPONSES",
                    "EXPIRES"
                );
                for l in &links {
                    outln!(
                        "{:<36}  {:<8}  {:<9}  {:<20}  {}{}",
                        l.id,
                        state(l),
                        match l.max_responses {
                            Some(m) => format!("{}/{m}", l.responses),
                            None => l.responses.to_string(),
                        },
                        l.expires_at.map_or_else(|| "-".into(), super::format_ms),
                        l.label,
                        if l.password { " (password)" } else { "" }
                    );
                }
            }
            Ok(0)
        }
        Command::Revoke { link } => {
            let links = client.links(None)?;
            let id = find(&links, &link)?;
            client.revoke_link(&id)?;
            if !s.json {
                outln!("revoked link {id}; it no longer opens");
            }
            Ok(0)
        }
    }
}

fn describe_created(created: &CreatedLink, form_id: &str, url: &str) {
    let l = &created.link;
    outln!("created link {} to survey {form_id}", l.id);
    outln!("  {url}");
    let mut rules = Vec::new();
    if l.password {
        rules.push("asks for the password".to_string());
    }
    if let Some(e) = l.expires_at {
        rules.push(format!("closes at {}", super::format_ms(e)));
    }
    if l.single_use {
        rules.push("takes one response".to_string());
    } else if let Some(m) = l.max_responses {
        rules.push(format!("takes at most {m} responses"));
    }
    if !rules.is_empty() {
        outln!("  it {}", rules.join(", "));
    }
    outln!("  the address is shown only now; anyone who has it can answer the survey");
}

fn state(l: &LinkInfo) -> &'static str {
    if l.revoked_at.is_some() {
        "revoked"
    } else if l.open {
        "open"
    } else {
        "closed"
    }
}

/// A link by its id or a unique prefix of it.
fn find(links: &[LinkInfo], key: &str) -> anyhow::Result<Uuid> {
    let key = key.trim().to_ascii_lowercase();
    let matching: Vec<&LinkInfo> = links
        .iter()
        .filter(|l| !key.is_empty() && l.id.to_string().starts_with(&key))
        .collect();
    match matching.as_slice() {
        [one] => Ok(one.id),
        [] => Err(Failure::NotFound(format!(
            "no link {key:?}; `fieldsync link list` shows the links"
        ))
        .into()),
        _ => Err(Failure::Invalid(format!(
            "{} links start with {key:?}; give more of the id",
            matching.len()
        ))
        .into()),
    }
}

fn link_password() -> anyhow::Result<String> {
    if let Ok(p) = std::env::var("FIELDSYNC_LINK_PASSWORD")
        && !p.is_empty()
    {
        return Ok(p);
    }
    if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        return Err(Failure::Invalid(
            "--password needs a terminal to ask on, or FIELDSYNC_LINK_PASSWORD".into(),
        )
        .into());
    }
    let first = rpassword::prompt_password("password for the link: ")
        .context("cannot read the password; set FIELDSYNC_LINK_PASSWORD")?;
    let again = rpassword::prompt_password("type it again: ")
        .context("cannot read the password; set FIELDSYNC_LINK_PASSWORD")?;
    if first != again {
        return Err(
            Failure::Invalid("the two passwords differ; run the command again".into()).into(),
        );
    }
    Ok(first)
}

/// `--expires`: a day (the link takes responses through its end, in this machine's zone) or
/// an RFC 3339 time; as milliseconds since the epoch.
fn parse_expiry(text: &str) -> Result<i64, String> {
    use time::format_description::well_known::Rfc3339;
    let t = text.trim();
    if let Ok(at) = time::OffsetDateTime::parse(t, &Rfc3339) {
        return Ok((at.unix_timestamp_nanos() / 1_000_000) as i64);
    }
    let day = time::Date::parse(t, time::macros::format_description!("[year]-[month]-[day]"))
        .map_err(|_| format!("{t:?} is neither a date (YYYY-MM-DD) nor an RFC 3339 time"))?;
    let end = day
        .next_day()
        .ok_or_else(|| format!("{t:?} is too far away"))?
        .midnight()
        .assume_offset(fieldsync_client::store::local_offset());
    Ok((end.unix_timestamp_nanos() / 1_000_000) as i64)
}
