//! `fieldsync export --format zip`: the survey's CSV tables (as ODK lays them out) and every
//! file its responses hold under `media/`, named as their answers name them, streamed from
//! the server one file at a time into the zip, so an export of any size needs the memory of a
//! small one.

use std::io::{BufRead, Write};
use std::path::Path;

use anyhow::Context;
use fieldsync_client::api::ExportFilter;
use fieldsync_client::client::{ApiClient, ClientError};
use fieldsync_client::export_tables::{TableOptions, Tables};
use fieldsync_protocol::api::SurveyInfo;
use fieldsync_protocol::media::check_name;
use fieldsync_protocol::survey::Survey;
use fieldsync_protocol::wire::ErrorCode;

use super::Settings;

pub fn zip(
    client: &ApiClient,
    info: &SurveyInfo,
    filter: &ExportFilter,
    survey: &Survey,
    options: TableOptions,
    out: &Path,
    s: &Settings,
) -> anyhow::Result<u8> {
    let scratch = tempfile::tempdir().context("cannot make a scratch directory for the tables")?;
    let mut t = Tables::new(survey, options, scratch.path())?;
    // The files to fetch, one `response name` line each, kept on disk, not in memory.
    let list_path = scratch.path().join("media.list");
    let mut list = std::io::BufWriter::new(std::fs::File::create(&list_path)?);
    super::export::each_row(client, info, filter, |row| {
        t.add(&row).map_err(|e| anyhow::anyhow!("{e}"))?;
        let id = row
            .get("response_id")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_owned();
        for name in t.media_names(&row) {
            writeln!(list, "{id} {name}")?;
        }
        Ok(())
    })?;
    list.flush()?;
    drop(list);
    let responses = t.responses();

    let (partial, file) = super::export::create_partial(out)?;
    let written = write_zip(client, t, &list_path, file);
    let (files, missing) = match written {
        Ok(done) => done,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    std::fs::rename(&partial, out)
        .with_context(|| format!("cannot move the export to {}", out.display()))?;
    for (id, name, why) in &missing {
        eprintln!("warning: {name} of response {id} is not in the export: {why}");
    }
    if s.json {
        s.print_json(&serde_json::json!({
            "survey_id": info.id, "form_id": info.form_id, "format": "zip",
            "file": out, "responses": responses, "media": files,
            "media_missing": missing.len(),
        }))?;
    } else {
        outln!(
            "exported {responses} responses of {} with {files} file(s) to {}",
            info.form_id,
            out.display()
        );
    }
    Ok(0)
}

/// A file the export could not include: the response, the name, and why.
type Missing = (String, String, String);

/// The tables, then each listed file under `media/` (a name two responses share goes under
/// `media/RESPONSE/` the second time). Files still uploading are left out and reported.
fn write_zip(
    client: &ApiClient,
    tables: Tables<'_>,
    list: &Path,
    file: std::fs::File,
) -> anyhow::Result<(u64, Vec<Missing>)> {
    let mut zip = zip::ZipWriter::new(std::io::BufWriter::new(file));
    tables.write_tables(&mut zip)?;
    let mut written = std::collections::HashSet::new();
    let mut missing = Vec::new();
    let mut files = 0u64;
    for line in std::io::BufReader::new(std::fs::File::open(list)?).lines() {
        let line = line?;
        let Some((id, name)) = line.split_once(' ') else {
            continue;
        };
        if check_name(name).is_err() {
            missing.push((id.into(), name.into(), "not a file name".into()));
            continue;
        }
        let response: uuid::Uuid = id.parse().context("a response id in the export")?;
        let mut body = match client.media_file(&response, name) {
            Ok(body) => body,
            Err(ClientError::NotFound { message })
            | Err(ClientError::Rejected {
                code: ErrorCode::Unavailable | ErrorCode::NotFound,
                message,
                ..
            }) => {
                missing.push((id.into(), name.into(), message));
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let path = if written.insert(name.to_owned()) {
            format!("media/{name}")
        } else {
            format!("media/{id}/{name}")
        };
        // Photos and recordings are compressed already: stored as they are.
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .large_file(body.content_length().unwrap_or(0) >= u64::from(u32::MAX));
        zip.start_file(path, options)?;
        std::io::copy(&mut body, &mut zip)
            .with_context(|| format!("{name} was interrupted; run the export again"))?;
        files += 1;
    }
    let inner = zip.finish()?;
    let file = inner.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    Ok((files, missing))
}
