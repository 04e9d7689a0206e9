//! `fieldsync export`: stream a survey's responses from the server to a file or stdout,
//! never holding the export in memory, and never leaving a half-written file behind.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use anyhow::Context;
use fieldsync_client::api::{ExportFilter, ExportFormat};
use fieldsync_client::export_tables::{TableOptions, Tables};
use fieldsync_protocol::zone::Zone;

use super::Settings;

/// Export every response of a survey from the server as CSV or JSON Lines. A form with
/// repeats exports as CSV the way ODK does: a zip with the main table and one table per
/// repeat, joined by KEY and PARENT_KEY (`--out` names the zip). `--format zip` writes those
/// tables and every file the responses hold under `media/`, by the name their answers give.
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
    /// CSV: a column per choice of a select_multiple (`q/choice`, 1 when chosen).
    #[arg(long)]
    split_select_multiple: bool,
    /// CSV: latitude, longitude, altitude and accuracy of a geopoint in their own columns.
    #[arg(long)]
    split_geopoint: bool,
    /// CSV: choice labels instead of choice names.
    #[arg(long)]
    labels: bool,
    /// CSV with --labels: the language of the labels.
    #[arg(long, value_name = "LANGUAGE", requires = "labels")]
    lang: Option<String>,
    /// Only these statuses (repeat or comma-separate; `all` for every one). By default every
    /// handed-in response: no drafts, nothing discarded.
    #[arg(long, value_name = "STATUS", value_delimiter = ',')]
    status: Vec<String>,
    #[command(flatten)]
    when: super::collected::Collected,
    /// CSV: write times (created_at, updated_at) as ISO 8601 in this zone: an IANA name such
    /// as Africa/Nairobi, an offset such as +03:00, `local` for this machine's zone, or UTC
    /// (the default). JSON Lines keeps them as ms since the epoch.
    #[arg(long, value_name = "ZONE", value_parser = zone)]
    tz: Option<Zone>,
}

fn zone(text: &str) -> Result<Zone, String> {
    if text.trim().eq_ignore_ascii_case("local") {
        // This machine's zone (TZ, or /etc/localtime).
        return Ok(Zone::of(
            jiff::tz::TimeZone::system(),
            jiff::Timestamp::now(),
        ));
    }
    Zone::parse(text)
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum FormatArg {
    Csv,
    Jsonl,
    /// The CSV tables and a `media/` folder with every attached file.
    Zip,
}

pub fn run(args: Args, s: &Settings) -> anyhow::Result<u8> {
    let format = match args.format {
        FormatArg::Csv | FormatArg::Zip => ExportFormat::Csv,
        FormatArg::Jsonl => ExportFormat::Jsonl,
    };
    // Dates are checked here, before anything is asked of the server.
    args.when.bounds()?;
    let filter = ExportFilter {
        statuses: args.status.clone(),
        since: args.when.since.clone(),
        until: args.when.until.clone(),
        device: args.when.device.clone(),
        enumerator: args.when.enumerator.clone(),
        tz: args.tz.as_ref().map(|z| z.name().to_owned()),
    };
    let store = s.open_store()?;
    let client = super::api(&store)?;
    let info = client.find_survey(&args.survey)?;
    if matches!(args.format, FormatArg::Zip) {
        let (_, _, survey) = super::survey::load_version(&store, &info.id.to_string(), None)?;
        let options = table_options(&args);
        let Some(out) = args.out.as_deref() else {
            return Err(fieldsync_client::exit::Failure::Invalid(
                "a zip export is written to a file; name it with --out FILE.zip".into(),
            )
            .into());
        };
        return super::export_media::zip(&client, &info, &filter, &survey, options, out, s);
    }
    if matches!(args.format, FormatArg::Csv) {
        let (_, _, survey) = super::survey::load_version(&store, &info.id.to_string(), None)?;
        let options = table_options(&args);
        let has_repeats = survey.groups().any(|g| g.repeat);
        let reshaped = options.split_select_multiple || options.split_geopoint || options.labels;
        if has_repeats || reshaped {
            let out = args.out.as_deref();
            return tables(&client, &info, &filter, &survey, options, out, s);
        }
    }
    let response = client.export(&info.id, format, &filter)?;
    let bar = export_bar(total_of(&response));
    let mut body = RowCounter::new(response, format == ExportFormat::Csv, bar.clone());
    let bytes = match &args.out {
        None => {
            let mut out = super::out::stdout();
            let n = std::io::copy(&mut body, &mut out)
                .context("the export was interrupted; run it again")?;
            out.flush()?;
            n
        }
        Some(path) => {
            let (partial, mut file) = create_partial(path)?;
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
    bar.finish_and_clear();
    let rows = body.rows();
    if let Some(path) = &args.out {
        if s.json {
            s.print_json(&serde_json::json!({
                "survey_id": info.id, "form_id": info.form_id, "format": format.as_str(),
                "file": path, "bytes": bytes, "responses": rows,
            }))?;
        } else {
            outln!(
                "exported {rows} response(s) of {} to {} ({})",
                info.form_id,
                path.display(),
                fieldsync_protocol::media::show_size(bytes)
            );
        }
    } else if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        eprintln!("exported {rows} response(s) of {}", info.form_id);
    }
    Ok(0)
}

/// The rows the server says an export holds, when it knows before streaming.
pub(super) fn total_of(response: &reqwest::blocking::Response) -> Option<u64> {
    response
        .headers()
        .get(fieldsync_protocol::api::EXPORT_TOTAL_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// A bar with rows and an ETA when the total is known, else a counting spinner (hidden
/// unless stderr is a terminal).
pub(super) fn export_bar(total: Option<u64>) -> indicatif::ProgressBar {
    let bar = super::progress_bar(total);
    let template = match total {
        Some(_) => "{bar:30} {pos}/{len} responses exported ({per_sec}, {eta} left)",
        None => "{spinner} {pos} responses exported ({per_sec})",
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(template)
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    bar
}

/// Counts the responses of an export as it streams by (and shows them on the progress bar):
/// lines of JSON Lines, or records of CSV after its header (a newline inside a quoted answer
/// is not a record's end).
struct RowCounter<R> {
    inner: R,
    csv: bool,
    in_quotes: bool,
    lines: u64,
    bar: indicatif::ProgressBar,
}

impl<R> RowCounter<R> {
    fn new(inner: R, csv: bool, bar: indicatif::ProgressBar) -> Self {
        RowCounter {
            inner,
            csv,
            in_quotes: false,
            lines: 0,
            bar,
        }
    }

    /// Responses seen so far.
    fn rows(&self) -> u64 {
        if self.csv {
            self.lines.saturating_sub(1)
        } else {
            self.lines
        }
    }
}

impl<R: std::io::Read> std::io::Read for RowCounter<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        for &b in &buf[..n] {
            match b {
                // A doubled quote inside a quoted field toggles twice: no change.
                b'"' if self.csv => self.in_quotes = !self.in_quotes,
                b'\n' if !self.in_quotes => self.lines += 1,
                _ => {}
            }
        }
        self.bar.set_position(self.rows());
        Ok(n)
    }
}

/// Every row of the server's JSON Lines export of `info`, streamed, one at a time.
pub(super) fn each_row(
    client: &fieldsync_client::client::ApiClient,
    info: &fieldsync_protocol::api::SurveyInfo,
    filter: &ExportFilter,
    mut f: impl FnMut(serde_json::Value) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    use std::io::BufRead;
    let body = client.export(&info.id, ExportFormat::Jsonl, filter)?;
    let bar = export_bar(total_of(&body));
    for line in std::io::BufReader::new(body).lines() {
        let line = line.context("the export was interrupted; run it again")?;
        if line.trim().is_empty() {
            continue;
        }
        f(serde_json::from_str(&line)
            .context("the server sent an export line that is not JSON")?)?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(())
}

fn table_options(args: &Args) -> TableOptions {
    TableOptions {
        split_select_multiple: args.split_select_multiple,
        split_geopoint: args.split_geopoint,
        labels: args.labels,
        language: args.lang.clone(),
        zone: args.tz.clone().unwrap_or_default(),
    }
}

/// `PATH.partial`, created empty and readable by its owner only (an export holds answers in
/// plaintext): written whole, then renamed to `PATH`.
pub(super) fn create_partial(path: &std::path::Path) -> anyhow::Result<(PathBuf, std::fs::File)> {
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&partial)
        .with_context(|| format!("cannot create {}", partial.display()))?;
    Ok((partial, file))
}

/// The CSV export built here from the server's JSON Lines: reshaped columns, or a zip of
/// tables for a form with repeats.
fn tables(
    client: &fieldsync_client::client::ApiClient,
    info: &fieldsync_protocol::api::SurveyInfo,
    filter: &ExportFilter,
    survey: &fieldsync_protocol::survey::Survey,
    options: TableOptions,
    out: Option<&std::path::Path>,
    s: &Settings,
) -> anyhow::Result<u8> {
    let scratch = tempfile::tempdir().context("cannot make a scratch directory for the tables")?;
    let mut t = Tables::new(survey, options, scratch.path())?;
    if t.has_repeats() && out.is_none() {
        return Err(fieldsync_client::exit::Failure::Invalid(format!(
            "{} has repeats, so its CSV export is a zip of tables; name it with --out FILE.zip",
            info.form_id
        ))
        .into());
    }
    each_row(client, info, filter, |row| {
        t.add(&row).map_err(|e| anyhow::anyhow!("{e}"))
    })?;
    let responses = t.responses();
    let zipped = t.has_repeats();
    match out {
        None => {
            let mut stdout = super::out::stdout();
            t.finish_csv(&mut stdout)?;
            stdout.flush()?;
        }
        Some(path) => {
            let (partial, file) = create_partial(path)?;
            let written = if zipped {
                t.finish_zip(file).and_then(|f| f.sync_all())
            } else {
                let mut w = std::io::BufWriter::new(file);
                t.finish_csv(&mut w)
                    .and_then(|()| w.into_inner().map_err(|e| e.into_error()))
                    .and_then(|f| f.sync_all())
            };
            if let Err(e) = written {
                let _ = std::fs::remove_file(&partial);
                return Err(anyhow::Error::from(e).context("cannot write the export"));
            }
            std::fs::rename(&partial, path)
                .with_context(|| format!("cannot move the export to {}", path.display()))?;
            if s.json {
                s.print_json(&serde_json::json!({
                    "survey_id": info.id, "form_id": info.form_id, "format": if zipped { "zip" } else { "csv" },
                    "file": path, "responses": responses,
                }))?;
            } else {
                let what = if zipped { "tables (zip)" } else { "CSV" };
                outln!(
                    "exported {responses} responses of {} as {what} to {}",
                    info.form_id,
                    path.display()
                );
            }
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    #[test]
    fn rows_are_counted_as_records_not_lines() {
        let csv = "a,b\n1,\"two\nlines\"\n2,\"say \"\"hi\"\"\"\n";
        let mut c = super::RowCounter::new(csv.as_bytes(), true, indicatif::ProgressBar::hidden());
        std::io::copy(&mut c, &mut std::io::sink()).expect("read");
        assert_eq!(c.rows(), 2);
        let jsonl = "{}\n{}\n{}\n";
        let mut c =
            super::RowCounter::new(jsonl.as_bytes(), false, indicatif::ProgressBar::hidden());
        let mut s = String::new();
        c.read_to_string(&mut s).expect("read");
        assert_eq!(c.rows(), 3);
    }
}
