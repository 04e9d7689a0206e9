//! `fieldsync export`: stream a survey's responses from the server to a file or stdout,
//! never holding the export in memory, and never leaving a half-written file behind.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use anyhow::Context;
use fieldsync_client::api::ExportFormat;

use super::Settings;

/// Export every response of a survey from the server as CSV or JSON Lines.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The survey id or form id.
    survey: String,
    /// The output format.
    #[arg(long, value_enum)]
    format: FormatArg,
    /// Write to this file (via FILE.partial, renamed when complete) instead of stdout.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum FormatArg {
    Csv,
    Jsonl,
}

pub fn run(args: Args, s: &Settings) -> anyhow::Result<u8> {
    let format = match args.format {
        FormatArg::Csv => ExportFormat::Csv,
        FormatArg::Jsonl => ExportFormat::Jsonl,
    };
    let store = s.open_store()?;
    let client = super::api(&store)?;
    let info = client.find_survey(&args.survey)?;
    let mut body = client.export(&info.id, format)?;
    let bytes = match &args.out {
        None => {
            let mut out = std::io::stdout().lock();
            let n = std::io::copy(&mut body, &mut out)
                .context("the export was interrupted; run it again")?;
            out.flush()?;
            n
        }
        Some(path) => {
            let mut partial = path.as_os_str().to_owned();
            partial.push(".partial");
            let partial = PathBuf::from(partial);
            // Plaintext answers: readable by the owner only.
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&partial)
                .with_context(|| format!("cannot create {}", partial.display()))?;
            let copied = std::io::copy(&mut body, &mut file)
                .context("the export was interrupted; run it again")
                .and_then(|n| {
                    file.sync_all()?;
                    Ok(n)
                });
            let n = match copied {
                Ok(n) => n,
                Err(e) => {
                    let _ = std::fs::remove_file(&partial);
                    return Err(e);
                }
            };
            std::fs::rename(&partial, path)
                .with_context(|| format!("cannot move the export to {}", path.display()))?;
            n
        }
    };
    if let Some(path) = &args.out {
        if s.json {
            s.print_json(&serde_json::json!({
                "survey_id": info.id, "form_id": info.form_id, "format": format.as_str(),
                "file": path, "bytes": bytes,
            }))?;
        } else {
            println!(
                "exported {} to {} ({bytes} bytes)",
                info.form_id,
                path.display()
            );
        }
    }
    Ok(0)
}
