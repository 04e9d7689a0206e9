//! `fieldsync media`: the files of a response (photos, recordings, documents), listed and
//! fetched from the server on demand. Devices never download other people's files.

use std::io::Write;
use std::path::PathBuf;

use fieldsync_client::client::ClientError;
use fieldsync_client::exit::Failure;
use fieldsync_protocol::media::{check_name, show_size};
use uuid::Uuid;

use super::Settings;

/// List and fetch the files of a response held on the server.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// List a response's files and whether each has arrived whole.
    List {
        /// The response id.
        response: Uuid,
    },
    /// Download a response's files (or one of them) into a folder.
    Get {
        /// The response id.
        response: Uuid,
        /// Only this file (its name, as `media list` shows it).
        name: Option<String>,
        /// The folder to write into (created if needed).
        #[arg(long, default_value = ".")]
        out: PathBuf,
    },
}

pub fn run(command: Command, s: &Settings) -> anyhow::Result<u8> {
    let store = s.open_store()?;
    let client = super::api(&store)?;
    match command {
        Command::List { response } => {
            let files = client.media(&response)?;
            if s.json {
                s.print_json(&files)?;
            } else if files.is_empty() {
                outln!("response {response} has no files on the server");
            } else {
                for f in &files {
                    outln!(
                        "{}  {}  {}  {}{}",
                        f.name,
                        f.question,
                        f.media_type,
                        show_size(f.size),
                        if f.stored { "" } else { "  (still arriving)" }
                    );
                }
            }
            Ok(0)
        }
        Command::Get {
            response,
            name,
            out,
        } => {
            let files = client.media(&response)?;
            let wanted: Vec<_> = match &name {
                Some(n) => {
                    let f = files.iter().find(|f| &f.name == n).ok_or_else(|| {
                        Failure::NotFound(format!(
                            "response {response} has no file {n:?}; `fieldsync media list {response}` lists them"
                        ))
                    })?;
                    vec![f.clone()]
                }
                None => files.into_iter().filter(|f| f.stored).collect(),
            };
            std::fs::create_dir_all(&out)
                .map_err(|e| Failure::Invalid(format!("cannot create {}: {e}", out.display())))?;
            let mut written = Vec::new();
            for f in wanted {
                // The name comes from the server: it must be a plain file name.
                check_name(&f.name).map_err(Failure::Invalid)?;
                let path = out.join(&f.name);
                let mut body = client.media_file(&response, &f.name)?;
                let mut tmp = tempfile::NamedTempFile::new_in(&out)?;
                let n = std::io::copy(&mut body, &mut tmp)?;
                if n != f.size {
                    return Err(ClientError::Offline {
                        server: client.base().to_owned(),
                        reason: format!(
                            "{} arrived with {n} of its {} bytes; nothing was written for it",
                            f.name, f.size
                        ),
                    }
                    .into());
                }
                tmp.as_file_mut().flush()?;
                tmp.as_file().sync_all()?;
                tmp.persist(&path)?;
                written.push(path);
            }
            if s.json {
                s.print_json(&written)?;
            } else {
                for p in &written {
                    outln!("{}", p.display());
                }
            }
            Ok(0)
        }
    }
}
