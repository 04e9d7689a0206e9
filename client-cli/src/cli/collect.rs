//! `fieldsync collect`: an interview on the terminal (or driven line by line through stdin),
//! the continuation of a draft, or responses read from an answers file. The interview logic
//! is [`fieldsync_client::interview`]; this file only shows screens and reads lines.

use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};

use fieldsync_client::engine;
use fieldsync_client::exit::Failure;
use fieldsync_client::input;
use fieldsync_client::interview::{
    Interview, Outcome, Reply, Screen, is_command, menu_numbers, type_hint,
};
use fieldsync_client::store::{LocalSurvey, Store, StoreError, now_utc};
use fieldsync_protocol::Answers;
use fieldsync_protocol::document::Status;
use fieldsync_protocol::survey::types::QuestionType;
use fieldsync_protocol::survey::{Question, Survey, ValidationContext};
use fieldsync_protocol::wire::SurveyStatus;
use serde::Serialize;
use uuid::Uuid;

use super::Settings;

/// Collect a response: an interview one question at a time, or many responses from a file.
///
/// At any prompt: `<` or `:back` goes back one question, `:save` keeps a draft and stops,
/// `:skip` leaves an optional question unanswered, `:quit` stops without saving. An empty
/// line keeps the current answer or takes the default. Works with answers piped into stdin,
/// one line per answer.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The survey id or form id.
    survey: String,
    /// Continue a draft (its id or a unique prefix), on the draft's own survey version.
    #[arg(long, value_name = "RESPONSE_ID", conflicts_with = "answers")]
    resume: Option<String>,
    /// Read answers instead of asking: a JSON object, or JSON Lines for many responses
    /// (`-` for stdin). Every valid object becomes a submitted response.
    #[arg(long, value_name = "FILE")]
    answers: Option<PathBuf>,
    /// With --answers: keep the responses as drafts instead of submitting them.
    #[arg(long, requires = "answers")]
    draft: bool,
    /// Show labels in this language of the form (as its columns name it, e.g.
    /// `French (fr)` or just `fr`); the form's default language otherwise.
    #[arg(long, value_name = "LANGUAGE", conflicts_with = "answers")]
    lang: Option<String>,
}

/// One rejected response of an answers file.
#[derive(Debug, Serialize)]
pub struct Invalid {
    pub line: usize,
    pub errors: Vec<String>,
}

pub fn run(args: Args, s: &Settings) -> anyhow::Result<u8> {
    if let Some(path) = &args.answers {
        let text = read_answers_file(path)?;
        // Files named in the answers are found beside the answers file.
        let base = match path.parent() {
            Some(dir) if path.as_os_str() != "-" && !dir.as_os_str().is_empty() => dir.to_owned(),
            _ => PathBuf::from("."),
        };
        return from_file(&args.survey, &text, &base, args.draft, s);
    }
    let mut store = s.open_store()?;
    let lang = args.lang.as_deref();
    match &args.resume {
        Some(id) => resume(&mut store, &args.survey, id, lang, s),
        None => interview(&mut store, &args.survey, lang, s),
    }
}

fn read_answers_file(path: &std::path::Path) -> anyhow::Result<String> {
    let mut text = String::new();
    let read = if path.as_os_str() == "-" {
        std::io::stdin().read_to_string(&mut text).map(|_| ())
    } else {
        std::fs::File::open(path).and_then(|mut f| f.read_to_string(&mut text).map(|_| ()))
    };
    read.map_err(|e| {
        Failure::Invalid(format!(
            "cannot read the answers file {}: {e}; check the path",
            path.display()
        ))
    })?;
    Ok(text)
}

/// The survey from this device; if it is missing, pull once (it may have just been assigned
/// or published) and look again.
pub fn ensure_local_survey(store: &mut Store, key: &str) -> anyhow::Result<LocalSurvey> {
    match store.find_survey(key) {
        Ok(found) => return Ok(found),
        Err(StoreError::NotFound(_)) if store.account().is_some() => {}
        Err(e) => return Err(e.into()),
    }
    let client = super::api(store)?;
    if let Err(e) = engine::pull(store, &client, &mut |_| {}) {
        eprintln!("warning: could not fetch surveys from the server: {e}");
    }
    Ok(store.find_survey(key)?)
}

/// The form's language that `wanted` names: its full name, or its code in parentheses.
fn pick_language(survey: &Survey, wanted: Option<&str>) -> anyhow::Result<Option<String>> {
    let Some(wanted) = wanted else {
        return Ok(None);
    };
    let langs = survey.languages();
    let found = langs.iter().find(|l| {
        l.eq_ignore_ascii_case(wanted)
            || l.rsplit_once('(')
                .is_some_and(|(_, code)| code.trim_end_matches(')').eq_ignore_ascii_case(wanted))
    });
    match found {
        Some(l) => Ok(Some(l.clone())),
        None if langs.is_empty() => Err(Failure::Invalid(format!(
            "this form has labels in one language only; leave out --lang {wanted}"
        ))
        .into()),
        None => Err(Failure::Invalid(format!(
            "the form has no language `{wanted}`; it has: {}",
            langs.join(", ")
        ))
        .into()),
    }
}

fn interview(store: &mut Store, key: &str, lang: Option<&str>, s: &Settings) -> anyhow::Result<u8> {
    ensure_local_survey(store, key)?;
    // Refuses a closed survey and a missing account before a single question is asked.
    let batch = store.create_batch(key, None)?;
    let survey = store.survey_version(&batch.survey_id(), batch.version())?;
    let language = pick_language(&survey, lang)?;
    let ctx = ValidationContext::at(now_utc());
    let iv = Interview::new(survey, ctx)
        .with_language(language)
        .with_offset(fieldsync_client::store::local_offset());
    let draft = Autosave::new(key, batch.version(), None, Answers::new());
    run_interview(store, key, s, iv, draft)
}

fn resume(
    store: &mut Store,
    key: &str,
    response: &str,
    lang: Option<&str>,
    s: &Settings,
) -> anyhow::Result<u8> {
    let survey_info = ensure_local_survey(store, key)?;
    let id = store.find_response(response)?;
    let local = store.response(&id)?;
    if local.meta.survey_id != survey_info.id {
        return Err(Failure::Invalid(format!(
            "response {id} belongs to survey {}, not {key}",
            local.meta.survey_id
        ))
        .into());
    }
    if local.meta.status != Status::Draft {
        return Err(Failure::Invalid(format!(
            "response {id} is {}, not a draft; change it with `fieldsync response edit {id} --set NAME=VALUE`",
            local.meta.status
        ))
        .into());
    }
    if survey_info.status == SurveyStatus::Closed {
        eprintln!(
            "warning: survey {} is closed; the server will refuse this response until a coordinator reopens it",
            survey_info.form_id
        );
    }
    let survey = store.survey_version(&local.meta.survey_id, local.meta.survey_version)?;
    let language = pick_language(&survey, lang)?;
    let ctx = ValidationContext::at(now_utc());
    let draft = Autosave::new(
        key,
        local.meta.survey_version,
        Some(id),
        local.answers.clone(),
    );
    let iv = Interview::resume(survey, ctx, local.answers)
        .with_language(language)
        .with_offset(fieldsync_client::store::local_offset());
    run_interview(store, key, s, iv, draft)
}

/// Keeps the interview on disk as a draft after every answer, so a flat battery or a killed
/// terminal loses nothing typed.
struct Autosave {
    key: String,
    version: u32,
    id: Option<Uuid>,
    /// The answers as last written.
    saved: Answers,
    /// Whether this interview created the draft (and may remove it if the user discards).
    created: bool,
}

impl Autosave {
    fn new(key: &str, version: u32, id: Option<Uuid>, saved: Answers) -> Autosave {
        Autosave {
            key: key.to_owned(),
            version,
            id,
            saved,
            created: false,
        }
    }

    /// Write what changed since the last save. Returns the answers as stored when something
    /// was written: with the device's own values (metadata, calculations) and the ids given
    /// to new repeat entries, which the interview takes over so the next save edits those
    /// entries instead of adding them again.
    fn save(&mut self, store: &mut Store, answers: &Answers) -> anyhow::Result<Option<Answers>> {
        if *answers == self.saved {
            return Ok(None);
        }
        let id = match self.id {
            None => {
                let (id, _) =
                    store.create_response(&self.key, Some(self.version), answers, Status::Draft)?;
                self.id = Some(id);
                self.created = true;
                id
            }
            Some(id) => {
                store.edit_response(&id, &diff(&self.saved, answers), None)?;
                id
            }
        };
        self.saved = store.response(&id)?.answers;
        Ok(Some(self.saved.clone()))
    }
}

/// Drive the interview to its end, keeping its draft, then settle it.
fn run_interview(
    store: &mut Store,
    key: &str,
    s: &Settings,
    mut iv: Interview,
    mut draft: Autosave,
) -> anyhow::Result<u8> {
    let mut keeper = Keeper {
        store,
        draft: &mut draft,
    };
    let outcome = drive(&mut iv, s, &mut keeper)?;
    finish(store, key, s, draft, outcome, iv.answers_to_save())
}

/// What a running interview writes to the store: its draft after every answer, and the
/// files attached to media questions.
struct Keeper<'a> {
    store: &'a mut Store,
    draft: &'a mut Autosave,
}

impl Keeper<'_> {
    fn save(&mut self, answers: &Answers) -> anyhow::Result<Option<Answers>> {
        self.draft.save(self.store, answers)
    }

    /// Copy the file a line names into the store; the attachment name is the answer.
    fn attach(&mut self, q: &Question, typed: &str) -> Result<String, String> {
        let path = typed_path(typed);
        match self.store.attach_file(q, &path) {
            Ok(a) => Ok(a.name),
            Err(StoreError::Invalid(m)) => Err(m),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// A path as typed at a prompt: quotes a terminal adds around a dropped file removed, and a
/// leading `~/` meaning the home directory.
fn typed_path(typed: &str) -> PathBuf {
    let t = typed.trim();
    let t = ['"', '\'']
        .iter()
        .find_map(|q| t.strip_prefix(*q).and_then(|r| r.strip_suffix(*q)))
        .unwrap_or(t);
    match (t.strip_prefix("~/"), dirs::home_dir()) {
        (Some(rest), Some(home)) => home.join(rest),
        _ => PathBuf::from(t),
    }
}

/// The media question the interview is asking, when `line` answers it (not a command, not
/// empty): such a line is the path of the file to attach.
fn file_question(iv: &mut Interview, line: &str) -> Option<Question> {
    let t = line.trim();
    if t.is_empty() || t == "<" || is_command(t) {
        return None;
    }
    match iv.screen() {
        Screen::Question { question, .. } if matches!(question.qtype, QuestionType::Media(_)) => {
            Some(question.clone())
        }
        _ => None,
    }
}

/// Settle the interview: submit, keep the draft, or discard it.
fn finish(
    store: &mut Store,
    key: &str,
    s: &Settings,
    mut draft: Autosave,
    outcome: Option<Outcome>,
    answers: Answers,
) -> anyhow::Result<u8> {
    let Some(outcome) = outcome else {
        return Ok(0);
    };
    match outcome {
        Outcome::Discard => {
            if let (Some(id), true) = (draft.id, draft.created) {
                store.discard(&id)?;
            }
            discarded(s)
        }
        Outcome::Draft | Outcome::Submit => {
            draft.save(store, &answers)?;
            let id = match draft.id {
                Some(id) => id,
                // Nothing was answered: an empty draft is still what the user asked for.
                None => {
                    store
                        .create_response(key, Some(draft.version), &answers, Status::Draft)?
                        .0
                }
            };
            if outcome == Outcome::Submit {
                store
                    .edit_response(&id, &[], Some(Status::Submitted))
                    .map_err(|e| match e {
                        StoreError::Invalid(m) => Failure::Invalid(format!(
                            "{m}; the answers are kept as draft {id}, continue with `fieldsync collect {key} --resume {id}`"
                        ))
                        .into(),
                        other => anyhow::Error::from(other),
                    })?;
            }
            saved(store, key, &id, s)
        }
    }
}

/// The edits that turn `before` into `after`.
fn diff(before: &Answers, after: &Answers) -> Vec<(String, Option<fieldsync_protocol::Answer>)> {
    let mut edits: Vec<_> = after
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), Some(v.clone())))
        .collect();
    edits.extend(
        before
            .keys()
            .filter(|k| !after.contains_key(*k))
            .map(|k| (k.clone(), None)),
    );
    edits
}

fn discarded(s: &Settings) -> anyhow::Result<u8> {
    if s.json {
        s.print_json(&serde_json::json!({ "id": null, "status": "discarded" }))?;
    } else {
        outln!("quit without saving; nothing was stored");
    }
    Ok(0)
}

fn saved(store: &mut Store, key: &str, id: &Uuid, s: &Settings) -> anyhow::Result<u8> {
    let r = store.response(id)?;
    if s.json {
        s.print_json(&serde_json::json!({
            "id": id,
            "status": r.meta.status.as_str(),
            "survey_id": r.meta.survey_id,
            "survey_version": r.meta.survey_version,
            "errors": r.errors,
        }))?;
    } else if r.meta.status == Status::Draft {
        outln!("saved draft {id}");
        outln!("continue it with: fieldsync collect {key} --resume {id}");
    } else {
        outln!("submitted response {id}; `fieldsync sync` sends it to the server");
    }
    Ok(0)
}

/// Show screens and feed lines until the interview ends. `None` when input ended before any
/// answer (nothing to keep).
fn drive(
    iv: &mut Interview,
    s: &Settings,
    keeper: &mut Keeper<'_>,
) -> anyhow::Result<Option<Outcome>> {
    let mut out: Box<dyn Write> = if s.json {
        Box::new(std::io::stderr())
    } else {
        Box::new(std::io::stdout())
    };
    let stdin = std::io::stdin();
    // Piped answers are not echoed by a terminal: echo them so the transcript reads well.
    let echo = !std::io::IsTerminal::is_terminal(&stdin);
    let mut lines = stdin.lock().lines();
    loop {
        if let Some(outcome) = show(iv.screen(), &mut out)? {
            return Ok(Some(outcome));
        }
        write!(out, "> ")?;
        out.flush()?;
        let Some(line) = lines.next() else {
            writeln!(out)?;
            if iv.answers().is_empty() {
                eprintln!("input ended before any answer; nothing was stored");
                return Ok(None);
            }
            eprintln!("input ended; keeping the answers so far as a draft");
            return Ok(Some(Outcome::Draft));
        };
        let line = line?;
        if echo {
            writeln!(out, "{line}")?;
        }
        let line = match file_question(iv, &line) {
            Some(q) => match keeper.attach(&q, &line) {
                Ok(name) => {
                    writeln!(out, "  attached as {name}")?;
                    name
                }
                Err(message) => {
                    writeln!(out, "  ! {message}")?;
                    continue;
                }
            },
            None => line,
        };
        iv.set_clock(fieldsync_client::store::now_utc());
        if let Reply::Problem(message) = iv.input(&line) {
            writeln!(out, "  ! {message}")?;
        }
        if let Some(stored) = keeper.save(&iv.answers_to_save())? {
            iv.adopt(stored);
        }
    }
}

/// Print one screen; the outcome when the interview has ended.
fn show(screen: Screen<'_>, out: &mut dyn Write) -> anyhow::Result<Option<Outcome>> {
    match screen {
        Screen::Done(o) => return Ok(Some(o)),
        Screen::ConfirmQuit => {
            writeln!(
                out,
                "quit without saving? every answer of this interview is lost (y/N)"
            )?;
        }
        Screen::Question {
            question: q,
            label,
            hint,
            place,
            number,
            total,
            notes,
            current,
            choices,
            required,
        } => {
            for n in notes {
                writeln!(out, "\n  note: {n}")?;
            }
            if !place.is_empty() {
                writeln!(out, "\n  -- {} --", place.join(" / "))?;
            }
            let star = if required { " *" } else { "" };
            writeln!(out, "\n[{number}/{total}] {label}{star}")?;
            if let Some(h) = hint {
                writeln!(out, "  {h}")?;
            }
            // A terminal shows no picture or sound: it names the form's file, which
            // `fieldsync survey files` saves.
            for (kind, file) in &q.media {
                writeln!(out, "  ({kind}: {})", file.text())?;
            }
            writeln!(out, "  ({}: {})", q.name, type_hint(&q.qtype))?;
            let plain: Vec<&fieldsync_protocol::survey::Choice> =
                choices.iter().map(|(c, _)| *c).collect();
            let numbered = menu_numbers(&plain);
            for (i, (c, label)) in choices.iter().enumerate() {
                if numbered {
                    writeln!(out, "    {}) {label} [{}]", i + 1, c.name)?;
                } else {
                    writeln!(out, "    [{}] {label}", c.name)?;
                }
            }
            if let Some(a) = current {
                writeln!(out, "  current answer: {a} (Enter keeps it)")?;
            } else if let Some(d) = q.static_default() {
                writeln!(out, "  default: {d} (Enter takes it)")?;
            } else if !required {
                writeln!(out, "  optional (Enter or :skip leaves it blank)")?;
            }
        }
        Screen::AddEntry {
            repeat,
            place,
            entries,
            notes,
        } => {
            for n in notes {
                writeln!(out, "\n  note: {n}")?;
            }
            if !place.is_empty() {
                writeln!(out, "\n  -- {} --", place.join(" / "))?;
            }
            let label = repeat.label.get(None).unwrap_or(&repeat.name);
            let another = if entries == 0 { "an" } else { "another" };
            writeln!(
                out,
                "\n{label}: {entries} so far. Add {another} entry? (y/N)"
            )?;
        }
        Screen::Review {
            notes,
            answers,
            errors,
        } => {
            for n in notes {
                writeln!(out, "\n  note: {n}")?;
            }
            writeln!(out, "\nsummary:")?;
            for (label, a) in answers {
                writeln!(out, "  {label}: {a}")?;
            }
            for e in &errors {
                writeln!(out, "  problem: {e}")?;
            }
            writeln!(
                out,
                "submit now? y = submit, d = keep as a draft, < = go back"
            )?;
        }
    }
    Ok(None)
}

/// `--answers`: every valid object becomes a response, all in transactions of
/// [`BATCH`] responses; invalid ones are reported by line.
fn from_file(key: &str, text: &str, base: &Path, draft: bool, s: &Settings) -> anyhow::Result<u8> {
    let docs = input::split_documents(text);
    let mut store = s.open_store()?;
    ensure_local_survey(&mut store, key)?;
    let mut batch = store.create_batch(key, None)?;
    let survey = store.survey_version(&batch.survey_id(), batch.version())?;
    let status = if draft {
        Status::Draft
    } else {
        Status::Submitted
    };
    let mut ids = Vec::new();
    let mut invalid = Vec::new();
    for (line, doc) in docs {
        let answers = match doc.map_err(|e| vec![e]).and_then(|mut v| {
            attach_in_json(&mut store, &survey, &mut v, base)?;
            input::answers_from_json(&survey, &v)
        }) {
            Ok(a) => a,
            Err(errors) => {
                invalid.push(Invalid { line, errors });
                continue;
            }
        };
        match batch.add(&mut store, &answers, status)? {
            Ok(id) => ids.push(id),
            Err(errors) => invalid.push(Invalid {
                line,
                errors: errors.iter().map(|e| e.to_string()).collect(),
            }),
        }
        if batch.len() >= super::import::BATCH {
            batch.commit(&mut store)?;
        }
    }
    batch.commit(&mut store)?;
    report_invalid(&invalid);
    if s.json {
        s.print_json(&serde_json::json!({
            "stored": ids.len(),
            "invalid": invalid,
            "ids": ids,
        }))?;
    } else {
        let what = if draft {
            "draft(s)"
        } else {
            "submitted response(s)"
        };
        outln!("stored {} {what}", ids.len());
        for id in &ids {
            outln!("{id}");
        }
    }
    Ok(if invalid.is_empty() {
        0
    } else {
        fieldsync_client::exit::INVALID
    })
}

/// Replace each file path an answers object gives a media question (in repeat entries too)
/// by the attachment the file becomes. Relative paths are found from `base`.
fn attach_in_json(
    store: &mut Store,
    survey: &Survey,
    value: &mut serde_json::Value,
    base: &Path,
) -> Result<(), Vec<String>> {
    let serde_json::Value::Object(map) = value else {
        return Ok(());
    };
    let mut errors = Vec::new();
    for (name, v) in map.iter_mut() {
        if let serde_json::Value::Array(entries) = v
            && survey.group(name).is_some_and(|g| g.repeat)
        {
            for entry in entries {
                if let Err(e) = attach_in_json(store, survey, entry, base) {
                    errors.extend(e);
                }
            }
            continue;
        }
        let Some(q) = survey
            .question(name)
            .filter(|q| matches!(q.qtype, QuestionType::Media(_)))
        else {
            continue;
        };
        let serde_json::Value::String(path) = v else {
            continue;
        };
        let path = base.join(typed_path(path));
        match store.attach_file(q, &path) {
            Ok(a) => *v = serde_json::Value::String(a.name),
            Err(StoreError::Invalid(m)) => errors.push(m),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Every invalid entry on stderr, one error per line, with its line number.
pub fn report_invalid(invalid: &[Invalid]) {
    for i in invalid {
        for e in &i.errors {
            eprintln!("line {}: {e}", i.line);
        }
    }
    if !invalid.is_empty() {
        eprintln!(
            "{} invalid entr{} not stored; fix them and run the command again for those lines",
            invalid.len(),
            if invalid.len() == 1 {
                "y was"
            } else {
                "ies were"
            }
        );
    }
}
