//! `fieldsync import`: the ops batch path. Streams a CSV or JSON Lines file row by row,
//! validates every row, stores the valid ones as responses in transactions of [`BATCH`], and
//! reports the invalid ones by line, without ever holding the file in memory.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use fieldsync_client::exit::{self, Failure};
use fieldsync_client::input::{self, CsvColumns};
use fieldsync_client::store::{CreateBatch, Store, import_id};
use fieldsync_protocol::Answers;
use fieldsync_protocol::document::Status;
use fieldsync_protocol::survey::Survey;

use super::Settings;
use super::collect::{Invalid, ensure_local_survey, report_invalid};

/// Responses per transaction.
pub const BATCH: usize = 1000;

/// Import responses from a CSV file (a header of question names) or JSON Lines.
///
/// Every row is validated like a submitted interview; valid rows are stored as responses
/// (sent at the next `fieldsync sync`), invalid rows are reported with their line numbers
/// (the CSV header is line 1) and the command exits 6.
///
/// Safe to run again: each row is stored under an id of its own, from its `instanceID`,
/// `KEY`, `_uuid` or `response_id` column (key, in JSON Lines) when it has one, otherwise from
/// the survey and the row's answers; a row already on this device is counted, not stored
/// again. Fix the invalid rows and run the same command: only they are added.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The survey id or form id.
    survey: String,
    /// The file to import (`-` for stdin, with --format).
    file: PathBuf,
    /// The file format (default: from the file's extension).
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Store the rows as drafts instead of submitted responses.
    #[arg(long)]
    draft: bool,
    /// Check every row as an import would and report, storing nothing.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Csv,
    Jsonl,
}

fn format_of(path: &Path, given: Option<Format>) -> Result<Format, Failure> {
    if let Some(f) = given {
        return Ok(f);
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("csv") => Ok(Format::Csv),
        Some("jsonl" | "ndjson" | "json") => Ok(Format::Jsonl),
        _ => Err(Failure::Invalid(format!(
            "cannot tell the format of {} from its name; give --format csv or --format jsonl",
            path.display()
        ))),
    }
}

/// A buffered row: its line, its own id (if the file gives one), its answers or why it has
/// none.
type Row = (usize, Option<String>, Result<Answers, Vec<String>>);

/// The rows' destination: rows are buffered, built into responses on every core, and
/// committed [`BATCH`] at a time.
struct Sink<'a> {
    store: &'a mut Store,
    survey: &'a Survey,
    batch: CreateBatch,
    status: Status,
    rows: Vec<Row>,
    /// Check only: valid rows are counted, not stored.
    dry_run: bool,
    valid: u64,
    stored: u64,
    /// Valid rows this device held already (imported before).
    already: u64,
    invalid: Vec<Invalid>,
    bar: indicatif::ProgressBar,
}

impl Sink<'_> {
    fn row(
        &mut self,
        line: usize,
        row_id: Option<String>,
        answers: Result<Answers, Vec<String>>,
    ) -> anyhow::Result<()> {
        self.rows.push((line, row_id, answers));
        if self.rows.len() >= BATCH {
            self.flush()?;
        }
        Ok(())
    }

    /// Build the buffered rows in parallel, then write them in one transaction.
    fn flush(&mut self) -> anyhow::Result<()> {
        let rows = std::mem::take(&mut self.rows);
        let survey_id = self.batch.survey_id();
        let built = self
            .batch
            .prepare_all(self.survey, &rows, self.status, |(_, row_id, a)| {
                let answers = a.as_ref().ok()?;
                Some((
                    answers,
                    Some(import_id(&survey_id, row_id.as_deref(), answers)),
                ))
            })?;
        for ((line, _, parsed), built) in rows.into_iter().zip(built) {
            // A row is built exactly when it parsed.
            let result = match built {
                Some(Ok(p)) => Ok(p),
                Some(Err(errors)) => Err(errors.iter().map(|e| e.to_string()).collect()),
                None => Err(parsed.err().unwrap_or_default()),
            };
            match result {
                Ok(p) => {
                    self.valid += 1;
                    if !self.dry_run {
                        self.batch.push(p);
                    }
                }
                Err(errors) => self.invalid.push(Invalid { line, errors }),
            }
        }
        if !self.dry_run {
            let done = self.batch.commit(self.store)?;
            self.stored += done.stored as u64;
            self.already += done.already_held as u64;
        }
        Ok(())
    }
}

pub fn run(args: Args, s: &Settings) -> anyhow::Result<u8> {
    let format = format_of(&args.file, args.format)?;
    let (reader, size): (Box<dyn Read>, Option<u64>) = if args.file.as_os_str() == "-" {
        (Box::new(std::io::stdin()), None)
    } else {
        let f = File::open(&args.file).map_err(|e| {
            Failure::Invalid(format!(
                "cannot read {}: {e}; check the path",
                args.file.display()
            ))
        })?;
        let size = f.metadata().ok().map(|m| m.len());
        (Box::new(f), size)
    };
    let reader = BufReader::with_capacity(1 << 20, reader);
    let mut store = s.open_store()?;
    ensure_local_survey(&mut store, &args.survey)?;
    let batch = store.create_batch(&args.survey, None)?;
    let survey = store.survey_version(&batch.survey_id(), batch.version())?;
    let bar = super::progress_bar(size);
    let started = std::time::Instant::now();
    let mut sink = Sink {
        store: &mut store,
        survey: &survey,
        batch,
        rows: Vec::with_capacity(BATCH),
        status: if args.draft {
            Status::Draft
        } else {
            Status::Submitted
        },
        dry_run: args.dry_run,
        valid: 0,
        stored: 0,
        already: 0,
        invalid: Vec::new(),
        bar,
    };
    match format {
        Format::Csv => import_csv(reader, &survey, &mut sink)?,
        Format::Jsonl => import_jsonl(reader, &survey, &mut sink)?,
    }
    sink.flush()?;
    sink.bar.finish_and_clear();
    let elapsed = started.elapsed().as_secs_f64();
    let (valid, stored, already, mut invalid) =
        (sink.valid, sink.stored, sink.already, sink.invalid);
    invalid.sort_by_key(|i| i.line);
    report_invalid(&invalid);
    if s.json {
        s.print_json(&serde_json::json!({
            "valid": valid,
            "stored": stored,
            "already_stored": already,
            "invalid": invalid,
            "dry_run": args.dry_run,
        }))?;
    } else if args.dry_run {
        outln!(
            "checked {} row(s): {valid} valid, {} invalid; nothing was stored (run without --dry-run to import)",
            valid + invalid.len() as u64,
            invalid.len()
        );
    } else {
        let rate = if elapsed > 0.0 {
            stored as f64 / elapsed
        } else {
            0.0
        };
        let before = if already > 0 {
            format!(", {already} already stored by an earlier import (left as they were)")
        } else {
            String::new()
        };
        outln!(
            "stored {stored} response(s){before}, {} invalid, in {elapsed:.1} s ({rate:.0} rows/s); `fieldsync sync` sends them",
            invalid.len()
        );
    }
    Ok(if invalid.is_empty() { 0 } else { exit::INVALID })
}

fn import_csv(reader: impl Read, survey: &Survey, sink: &mut Sink<'_>) -> anyhow::Result<()> {
    let (reader, lines) = LineCounter::new(reader);
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(reader);
    let header = rdr
        .headers()
        .map_err(|e| Failure::Invalid(format!("cannot read the CSV header: {e}")))?
        .clone();
    let columns = CsvColumns::from_header(survey, header.iter()).map_err(|errors| {
        Failure::Invalid(format!(
            "the CSV header (line 1) does not match survey {}; nothing was imported:\n  {}",
            survey.form_id(),
            errors.join("\n  ")
        ))
    })?;
    let mut record = csv::StringRecord::new();
    let mut rows = 0u64;
    loop {
        let line = rdr.position().line() as usize;
        match rdr.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let line = record.position().map_or(line, |p| lines.line_at(p.byte()));
                let row_id = columns.row_id(record.iter());
                sink.row(line, row_id, columns.answers(survey, record.iter()))?;
            }
            Err(e) if e.is_io_error() => {
                return Err(anyhow::Error::new(e).context("reading the CSV file failed"));
            }
            Err(e) => {
                let line = e.position().map_or(line, |p| lines.line_at(p.byte()));
                sink.invalid.push(Invalid {
                    line,
                    errors: vec![e.to_string()],
                });
            }
        }
        rows += 1;
        if rows.is_multiple_of(1000) {
            sink.bar.set_position(rdr.position().byte());
        }
    }
    Ok(())
}

/// Line numbers of CSV records, counted from the bytes read: the csv crate's own count is one
/// short in a file with CRLF line ends (a record starts at the `\n` of the CR LF before it).
struct LineCounter<R> {
    inner: R,
    read: u64,
    seen: std::rc::Rc<std::cell::RefCell<Newlines>>,
}

/// Offsets of the newlines read but not yet passed by a record, and how many were passed.
#[derive(Default)]
struct Newlines {
    ahead: std::collections::VecDeque<u64>,
    passed: usize,
}

/// The reading end's view of a [`LineCounter`].
struct Lines(std::rc::Rc<std::cell::RefCell<Newlines>>);

impl<R: Read> LineCounter<R> {
    fn new(inner: R) -> (LineCounter<R>, Lines) {
        let seen = std::rc::Rc::default();
        let lines = Lines(std::rc::Rc::clone(&seen));
        (
            LineCounter {
                inner,
                read: 0,
                seen,
            },
            lines,
        )
    }
}

impl<R: Read> Read for LineCounter<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut seen = self.seen.borrow_mut();
        for (i, b) in buf[..n].iter().enumerate() {
            if *b == b'\n' {
                seen.ahead.push_back(self.read + i as u64);
            }
        }
        self.read += n as u64;
        Ok(n)
    }
}

impl Lines {
    /// The line of a record starting at byte `at`: one more than the newlines before its
    /// first character (the newline at `at` itself, for CR LF, included). Records come in
    /// order, so offsets passed are dropped.
    fn line_at(&self, at: u64) -> usize {
        let mut seen = self.0.borrow_mut();
        while seen.ahead.front().is_some_and(|&nl| nl <= at) {
            seen.ahead.pop_front();
            seen.passed += 1;
        }
        seen.passed + 1
    }
}

fn import_jsonl(reader: impl BufRead, survey: &Survey, sink: &mut Sink<'_>) -> anyhow::Result<()> {
    let mut bytes = 0u64;
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| {
            Failure::Invalid(format!("cannot read line {} of the file: {e}", i + 1))
        })?;
        bytes += line.len() as u64 + 1;
        if line.trim().is_empty() {
            continue;
        }
        let mut row_id = None;
        let answers = input::parse_line(&line)
            .map_err(|e| vec![e])
            .and_then(|mut v| {
                row_id = input::take_row_id(&mut v);
                input::answers_from_json(survey, &v)
            });
        sink.row(i + 1, row_id, answers)?;
        if i % 1000 == 0 {
            sink.bar.set_position(bytes);
        }
    }
    Ok(())
}
