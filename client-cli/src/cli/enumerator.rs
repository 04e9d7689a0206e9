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
        #[arg(long, conflicts_with = "qr")]
        quiet: bool,
        /// Also draw the server and code as a QR code, for a device with a camera.
        #[arg(long)]
        qr: bool,
    },
    /// List the organisation's enumerators.
    List,
    /// Issue a new one-time enrollment code (a code lost, or a new device); their unused
    /// older code stops working.
    Code {
        /// The enumerator's id, a unique prefix of it, or their name.
        enumerator: String,
        /// Print only the enrollment code.
        #[arg(long, conflicts_with = "qr")]
        quiet: bool,
        /// Also draw the server and code as a QR code.
        #[arg(long)]
        qr: bool,
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
            qr,
        } => {
            let mut ids = Vec::with_capacity(surveys.len());
            for key in &surveys {
                ids.push(client.find_survey(key)?.id);
            }
            let created = client.create_enumerator(&NewEnumerator { name, surveys: ids })?;
            print_code(&created, quiet, qr, "created enumerator", client.base(), s)
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
                let width = enumerators
                    .iter()
                    .filter_map(|m| m.device.as_deref())
                    .map(str::len)
                    .max()
                    .unwrap_or(0)
                    .max(6);
                outln!(
                    "{:<36}  {:<7}  {:<20}  {:<width$}  NAME",
                    "ID",
                    "STATE",
                    "ADDED",
                    "DEVICE"
                );
                for m in enumerators {
                    let state = if m.revoked { "revoked" } else { "active" };
                    outln!(
                        "{:<36}  {:<7}  {:<20}  {:<width$}  {}",
                        m.id,
                        state,
                        super::format_ms(m.created_at),
                        m.device.as_deref().unwrap_or("-"),
                        m.name
                    );
                }
            }
            Ok(0)
        }
        Command::Code {
            enumerator,
            quiet,
            qr,
        } => {
            let members = client.members()?;
            let who = super::member::find(&members, &enumerator, Some(Role::Enumerator))?;
            let created = client.reissue_code(&who.id)?;
            print_code(
                &created,
                quiet,
                qr,
                "new code for enumerator",
                client.base(),
                s,
            )
        }
    }
}

fn print_code(
    created: &CreatedMember,
    quiet: bool,
    qr: bool,
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
    if qr && !quiet {
        // Drawn on stderr with --json, so stdout stays one JSON document.
        let drawing = qr_drawing(&enroll_link(server, &created.one_time_secret))?;
        if s.json {
            eprintln!("{drawing}");
        } else {
            outln!("{drawing}");
        }
    }
    Ok(0)
}

/// What the QR code holds: the server and the code, as a link an app can take.
fn enroll_link(server: &str, code: &str) -> String {
    format!("fieldsync:enroll?server={server}&code={code}")
}

/// `text` as a QR code in the terminal, two rows of modules per line of text, with its quiet
/// zone. Drawn for the usual dark terminal: dark modules are the background, light ones are
/// blocks (on a light terminal it shows inverted, which phone scanners read too).
fn qr_drawing(text: &str) -> anyhow::Result<String> {
    let code = qrcode::QrCode::new(text.as_bytes())
        .map_err(|e| anyhow::anyhow!("cannot draw the code as a QR code: {e}"))?;
    Ok(code
        .render::<qrcode::render::unicode::Dense1x2>()
        .dark_color(qrcode::render::unicode::Dense1x2::Light)
        .light_color(qrcode::render::unicode::Dense1x2::Dark)
        .quiet_zone(true)
        .build())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_qr_drawing_has_one_line_per_two_rows_of_modules() {
        let link = super::enroll_link("http://127.0.0.1:8470", "K7QF9-XMA2P-4TNRD");
        let drawing = super::qr_drawing(&link).expect("drawn");
        let code = qrcode::QrCode::new(link.as_bytes()).expect("code");
        // The quiet zone is 4 modules on each side.
        let rows = code.width() + 8;
        assert_eq!(drawing.lines().count(), rows.div_ceil(2));
        assert!(drawing.lines().all(|l| l.chars().count() == rows));
    }
}
