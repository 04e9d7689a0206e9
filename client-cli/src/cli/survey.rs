//! `fieldsync survey`: publish definitions, list and show surveys, assign them to enumerators
//! and open or close them.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use fieldsync_client::client::ClientError;
use fieldsync_client::exit::Failure;
use fieldsync_client::form_file;
use fieldsync_client::interview::type_hint;
use fieldsync_client::store::{LocalSurvey, Store, StoreError};
use fieldsync_protocol::api::SurveyInfo;
use fieldsync_protocol::survey::{Survey, files};
use fieldsync_protocol::wire::SurveyStatus;
use uuid::Uuid;

use super::Settings;

/// Publish, list, show, assign and open or close surveys.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Publish a form (an XLSForm .xlsx or .xls workbook, or the JSON definition) as the
    /// next version of its form.
    Publish {
        /// The form file.
        file: PathBuf,
        /// The folder holding the files the form uses (choice CSVs and GeoJSON of
        /// select_one_from_file, pulldata and csv-external CSVs); the form file's own folder
        /// if not given.
        #[arg(long, value_name = "DIR")]
        media: Option<PathBuf>,
    },
    /// Check a form offline (no server, no home): every problem with its sheet, row and
    /// column; exit 0 when it is accepted.
    Check {
        /// The form file (.xlsx, .xls or .json).
        file: PathBuf,
    },
    /// Print made-up responses the form accepts, as JSON Lines for `collect --answers`: for
    /// trying a form before the field. Questions are answered only when relevant, with
    /// values of their type that meet their constraints; repeats get entries.
    Sample {
        /// The form file (.xlsx, .xls or .json).
        file: PathBuf,
        /// How many responses.
        #[arg(long, default_value_t = 5)]
        count: usize,
        /// Seed: the same seed gives the same responses.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Convert a form to fieldsync's JSON definition (after checking it).
    Convert {
        /// The form file (.xlsx, .xls or .json).
        file: PathBuf,
        /// Where to write the JSON.
        #[arg(long)]
        out: PathBuf,
    },
    /// List surveys (from the server for coordinators, from this device for enumerators).
    List,
    /// Show a survey's questions: types, labels, skip logic and constraints.
    Show {
        /// The survey id or form id.
        survey: String,
        /// A published version (default: the latest).
        #[arg(long)]
        version: Option<u32>,
    },
    /// Save the files published with a survey version (choice CSVs, GeoJSON, label images
    /// and audio) into a folder, from this device's copy (works offline).
    Files {
        /// The survey id or form id.
        survey: String,
        /// A published version (default: the latest).
        #[arg(long)]
        version: Option<u32>,
        /// The folder to write into (created if needed).
        #[arg(long)]
        out: PathBuf,
    },
    /// Assign a survey to an enumerator, so it reaches their device at its next sync.
    Assign {
        /// The survey id or form id.
        survey: String,
        /// The enumerator's id (from `fieldsync enumerator add` or `fieldsync member list`).
        enumerator_id: Uuid,
    },
    /// Open, start closing (no new downloads) or close (no new responses) a survey.
    Status {
        /// The survey id or form id.
        survey: String,
        /// The new status.
        #[arg(value_enum)]
        status: NewStatus,
    },
    /// Keep a survey's responses only this long after the server first received them (then
    /// they are erased, as a respondent's erasure is), or `off` to keep them until erased.
    Retention {
        /// The survey id or form id.
        survey: String,
        /// A period such as `365d`, `12h`, `30m` or `90s`, or `off`.
        #[arg(value_parser = parse_period)]
        period: Period,
    },
}

/// A retention period in seconds, or none.
#[derive(Clone, Copy, Debug)]
pub struct Period(Option<u64>);

fn parse_period(text: &str) -> Result<Period, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("off") {
        return Ok(Period(None));
    }
    super::parse_seconds(text)
        .map(|s| Period(Some(s)))
        .map_err(|e| format!("{e}, or off to keep responses"))
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum NewStatus {
    Open,
    Closing,
    Closed,
}

impl From<NewStatus> for SurveyStatus {
    fn from(s: NewStatus) -> SurveyStatus {
        match s {
            NewStatus::Open => SurveyStatus::Open,
            NewStatus::Closing => SurveyStatus::Closing,
            NewStatus::Closed => SurveyStatus::Closed,
        }
    }
}

pub fn status_name(s: SurveyStatus) -> &'static str {
    match s {
        SurveyStatus::Open => "open",
        SurveyStatus::Closing => "closing",
        SurveyStatus::Closed => "closed",
    }
}

pub fn run(command: Command, s: &Settings) -> anyhow::Result<u8> {
    match command {
        Command::Publish { file, media } => publish(&file, media.as_deref(), s),
        Command::Check { file } => check(&file, s),
        Command::Convert { file, out } => convert(&file, &out, s),
        Command::Sample { file, count, seed } => sample(&file, count, seed),
        Command::List => list(s),
        Command::Show { survey, version } => show(&survey, version, s),
        Command::Files {
            survey,
            version,
            out,
        } => save_files(&survey, version, &out, s),
        Command::Assign {
            survey,
            enumerator_id,
        } => {
            let store = s.open_store()?;
            let client = super::api(&store)?;
            let info = client.find_survey(&survey)?;
            client.assign(&info.id, enumerator_id)?;
            if s.json {
                s.print_json(&serde_json::json!({
                    "survey_id": info.id, "form_id": info.form_id, "enumerator_id": enumerator_id,
                }))?;
            } else {
                outln!(
                    "assigned {} to {enumerator_id}; it reaches their device at its next sync",
                    info.form_id
                );
            }
            Ok(0)
        }
        Command::Status { survey, status } => {
            let store = s.open_store()?;
            let client = super::api(&store)?;
            let info = client.find_survey(&survey)?;
            let status = SurveyStatus::from(status);
            client.set_survey_status(&info.id, status)?;
            if s.json {
                s.print_json(&serde_json::json!({
                    "survey_id": info.id, "form_id": info.form_id, "status": status,
                }))?;
            } else {
                outln!("{} is now {}", info.form_id, status_name(status));
            }
            Ok(0)
        }
        Command::Retention { survey, period } => {
            let store = s.open_store()?;
            let client = super::api(&store)?;
            let info = client.find_survey(&survey)?;
            let body = fieldsync_protocol::api::Retention {
                retention_seconds: period.0,
            };
            let _: fieldsync_protocol::api::Retention = client.send_json(
                reqwest::Method::PUT,
                &format!("/v1/surveys/{}/retention", info.id),
                &body,
            )?;
            if s.json {
                s.print_json(&serde_json::json!({
                    "survey_id": info.id, "retention_seconds": period.0,
                }))?;
            } else {
                match period.0 {
                    Some(secs) => outln!(
                        "{} keeps responses {secs} s after they reach the server; older ones are erased by the server's purge",
                        info.form_id
                    ),
                    None => outln!("{} keeps responses until they are erased", info.form_id),
                }
            }
            Ok(0)
        }
    }
}

/// Reads and checks a form file; an invalid one is a usage failure with every problem.
fn load_form(file: &std::path::Path) -> anyhow::Result<Survey> {
    form_file::load(file).map_err(|e| Failure::Invalid(e.to_string()).into())
}

fn check(file: &std::path::Path, s: &Settings) -> anyhow::Result<u8> {
    let survey = load_form(file)?;
    let questions = survey.questions().len();
    let groups = survey.groups().count();
    if s.json {
        s.print_json(&serde_json::json!({
            "form_id": survey.form_id(),
            "title": survey.title(),
            "version": survey.version(),
            "questions": questions,
            "groups": groups,
            "languages": survey.languages(),
            "warnings": survey.warnings(),
        }))?;
    } else {
        outln!(
            "{}: {} ({}) is a valid form: {questions} questions, {groups} groups and repeats",
            file.display(),
            survey.title(),
            survey.form_id()
        );
        for w in survey.warnings() {
            outln!("  warning: {w}");
        }
        let def = survey.definition();
        for need in files::needed(def)
            .into_iter()
            .filter(|n| !def.files.contains_key(&n.name) && !def.media.contains_key(&n.name))
        {
            outln!(
                "  uses {} (survey row {}, {}): publish with the file beside the form or in --media DIR",
                need.name,
                need.row,
                need.by
            );
        }
    }
    Ok(0)
}

fn sample(file: &std::path::Path, count: usize, seed: u64) -> anyhow::Result<u8> {
    use std::io::Write;
    let survey = load_form(file)?;
    let ctx = fieldsync_protocol::survey::ValidationContext::at(fieldsync_client::store::now_utc());
    let mut rng = fieldsync_protocol::survey::SampleRng::new(seed);
    let mut out = super::out::stdout();
    let mut incomplete = 0;
    for _ in 0..count {
        let answers = survey.sample(&mut rng, &ctx);
        if !survey.validate(&answers, &ctx).is_empty() {
            incomplete += 1;
        }
        writeln!(out, "{}", serde_json::to_string(&answers)?)?;
    }
    if incomplete > 0 {
        eprintln!(
            "warning: {incomplete} of {count} responses still have problems (a constraint no \
             made-up value met); `collect --answers` lists them"
        );
    }
    Ok(0)
}

fn convert(file: &std::path::Path, out: &std::path::Path, s: &Settings) -> anyhow::Result<u8> {
    let survey = load_form(file)?;
    std::fs::write(out, survey.to_json() + "\n")
        .with_context(|| format!("cannot write {}", out.display()))?;
    if s.json {
        s.print_json(&serde_json::json!({"form_id": survey.form_id(), "out": out}))?;
    } else {
        outln!("wrote {} ({})", out.display(), survey.form_id());
    }
    Ok(0)
}

fn publish(
    file: &std::path::Path,
    media: Option<&std::path::Path>,
    s: &Settings,
) -> anyhow::Result<u8> {
    let survey = with_files(load_form(file)?, file, media)?;
    let text = survey.to_json();
    let store = s.open_store()?;
    let published = super::api(&store)?.publish_survey(text)?;
    let named = match &published.label {
        Some(label) => format!("version {label} (number {})", published.version),
        None => format!("version {}", published.version),
    };
    if s.json {
        s.print_json(&published)?;
    } else if published.unchanged {
        outln!(
            "{} {named} already has exactly this definition; nothing was published (change the form and its `version` setting to publish a new version)",
            published.form_id
        );
    } else {
        outln!(
            "published {} {named} (survey id {})",
            published.form_id,
            published.survey_id
        );
    }
    Ok(0)
}

/// The form with the files it uses, read from `media` (or the form file's folder): every
/// missing file is named with the row that needs it, and nothing is published without it.
fn with_files(
    survey: Survey,
    file: &std::path::Path,
    media: Option<&std::path::Path>,
) -> anyhow::Result<Survey> {
    let mut def = survey.definition().clone();
    let dir = media
        .map(std::path::Path::to_path_buf)
        .or_else(|| file.parent().map(std::path::Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."));
    let mut problems = Vec::new();
    for need in files::needed(&def) {
        if def.files.contains_key(&need.name) || def.media.contains_key(&need.name) {
            continue;
        }
        let path = dir.join(&need.name);
        match std::fs::read(&path) {
            Ok(bytes) if files::is_label_media(&need) => {
                def.media.insert(need.name, files::encode_media(&bytes));
            }
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => {
                    def.files.insert(need.name, text);
                }
                Err(_) => problems.push(format!(
                    "{} is not UTF-8 text; save it as UTF-8 CSV or GeoJSON",
                    path.display()
                )),
            },
            Err(e) => problems.push(format!(
                "survey row {} ({}) uses {}, but {} cannot be read ({e}); put the file there or name its folder with --media DIR",
                need.row,
                need.by,
                need.name,
                path.display()
            )),
        }
    }
    if !problems.is_empty() {
        return Err(Failure::Invalid(problems.join("\n")).into());
    }
    Survey::from_definition(def).map_err(|e| Failure::Invalid(e.to_string()).into())
}

fn list(s: &Settings) -> anyhow::Result<u8> {
    let store = s.open_store()?;
    let surveys: Vec<SurveyInfo> = if super::is_manager(&store) {
        match super::api(&store)?.surveys() {
            Ok(list) => list,
            Err(e @ ClientError::Offline { .. }) => {
                eprintln!("warning: {e}; showing the surveys on this device");
                local_list(&store)?
            }
            Err(e) => return Err(e.into()),
        }
    } else {
        local_list(&store)?
    };
    if s.json {
        s.print_json(&surveys)?;
    } else if surveys.is_empty() {
        outln!("no surveys yet; publish one, or run `fieldsync sync` to fetch assigned surveys");
    } else {
        outln!(
            "{:<36}  {:<24}  {:<7}  {:<16}  TITLE",
            "ID",
            "FORM ID",
            "STATUS",
            "VERSION"
        );
        for v in &surveys {
            outln!(
                "{:<36}  {:<24}  {:<7}  {:<16}  {}",
                v.id,
                v.form_id,
                status_name(v.status),
                version_name(&store, &v.id, v.latest_version),
                v.title
            );
        }
    }
    Ok(0)
}

/// How a version is shown: the form's own version with its number (`2024.1 (1)`), or the
/// number alone when the form sets none (or this device does not hold that version).
pub fn version_name(store: &Store, survey_id: &uuid::Uuid, version: u32) -> String {
    let label = store
        .survey_version(survey_id, version)
        .ok()
        .and_then(|s| s.version().map(str::to_owned));
    match label {
        Some(label) => format!("{label} ({version})"),
        None => version.to_string(),
    }
}

fn local_list(store: &Store) -> anyhow::Result<Vec<SurveyInfo>> {
    Ok(store.surveys()?.into_iter().map(info_of).collect())
}

fn info_of(l: LocalSurvey) -> SurveyInfo {
    SurveyInfo {
        id: l.id,
        form_id: l.form_id,
        title: l.title,
        status: l.status,
        latest_version: l.latest_version,
        versions: l.versions,
    }
}

/// A survey version from this device, or (for a manager) from the server.
pub fn load_version(
    store: &Store,
    key: &str,
    version: Option<u32>,
) -> anyhow::Result<(SurveyInfo, u32, Arc<Survey>)> {
    match store.find_survey(key) {
        Ok(local) => {
            let v = version.unwrap_or(local.latest_version);
            let survey = store.survey_version(&local.id, v)?;
            return Ok((info_of(local), v, survey));
        }
        Err(StoreError::NotFound(_)) if super::is_manager(store) => {}
        Err(e) => return Err(e.into()),
    }
    let client = super::api(store)?;
    let info = client.find_survey(key)?;
    let v = version.unwrap_or(info.latest_version);
    let published = client.survey_version(&info.id, v)?;
    let survey = Survey::parse_json(&published.definition.to_string())
        .context("the server sent a survey definition this client cannot read")?;
    Ok((info, v, Arc::new(survey)))
}

fn save_files(
    key: &str,
    version: Option<u32>,
    out: &std::path::Path,
    s: &Settings,
) -> anyhow::Result<u8> {
    let store = s.open_store()?;
    let (_, _, survey) = load_version(&store, key, version)?;
    let def = survey.definition();
    std::fs::create_dir_all(out)
        .map_err(|e| Failure::Invalid(format!("cannot create {}: {e}", out.display())))?;
    let mut written = Vec::new();
    let texts = def
        .files
        .iter()
        .map(|(n, t)| (n, Some(t.clone().into_bytes())));
    let media = def.media.keys().map(|n| (n, files::media_bytes(def, n)));
    for (name, bytes) in texts.chain(media) {
        // A plain file name only: the names come from the survey's author.
        let plain = std::path::Path::new(name)
            .file_name()
            .is_some_and(|f| f == name.as_str());
        let Some(bytes) = bytes.filter(|_| plain) else {
            eprintln!("warning: {name:?} is not a plain file name or cannot be read; skipped");
            continue;
        };
        let path = out.join(name);
        std::fs::write(&path, bytes)
            .map_err(|e| Failure::Invalid(format!("cannot write {}: {e}", path.display())))?;
        written.push(path);
    }
    if s.json {
        s.print_json(&written)?;
    } else if written.is_empty() {
        outln!("{} was published without files", survey.form_id());
    } else {
        for p in &written {
            outln!("{}", p.display());
        }
    }
    Ok(0)
}

fn show(key: &str, version: Option<u32>, s: &Settings) -> anyhow::Result<u8> {
    let store = s.open_store()?;
    let (info, v, survey) = load_version(&store, key, version)?;
    let questions: Vec<serde_json::Value> = survey
        .questions()
        .iter()
        .map(|q| {
            let choices: Vec<serde_json::Value> = survey
                .choices_of(q)
                .unwrap_or(&[])
                .iter()
                .map(|c| serde_json::json!({"name": c.name, "label": c.display()}))
                .collect();
            serde_json::json!({
                "name": q.name,
                "type": q.qtype.to_string(),
                "label": q.label.text(),
                "hint": q.hint.get(None),
                "required": q.required.is_possible(),
                "group": q.group,
                "relevant": q.relevant.as_ref().map(|e| e.source()),
                "constraint": q.constraint.as_ref().map(|e| e.source()),
                "constraint_message": q.constraint_message.get(None),
                "default": q.static_default(),
                "choices": choices,
            })
        })
        .collect();
    if s.json {
        return s
            .print_json(&serde_json::json!({
                "survey_id": info.id,
                "form_id": info.form_id,
                "title": survey.title(),
                "status": info.status,
                "version": v,
                "label": survey.version(),
                "versions": info.versions,
                "questions": questions,
            }))
            .map(|()| 0);
    }
    let shown = match survey.version() {
        Some(label) => format!("{label} (number {v})"),
        None => format!("number {v}"),
    };
    outln!(
        "{} ({}) version {shown} of {:?}, {}",
        survey.title(),
        info.form_id,
        info.versions,
        status_name(info.status)
    );
    outln!("survey id {}", info.id);
    for (i, q) in survey.questions().iter().enumerate() {
        let required = if q.required.is_possible() {
            ", required"
        } else {
            ""
        };
        let group = if q.group.is_empty() {
            String::new()
        } else {
            format!(" [{}]", q.group.join("/"))
        };
        outln!("\n{:>3}. {} ({}{required}){group}", i + 1, q.name, q.qtype);
        outln!("     {}", q.label.text().trim());
        if let Some(h) = q.hint.get(None) {
            outln!("     hint: {h}");
        }
        if q.is_asked() {
            outln!("     answer: {}", type_hint(&q.qtype));
        }
        if let Some(list) = q.qtype.list().and_then(|l| survey.choices(l)) {
            for (n, c) in list.iter().enumerate() {
                outln!("       {}) {} = {}", n + 1, c.name, c.display());
            }
        }
        if let Some(e) = &q.relevant {
            outln!("     asked when: {}", e.source());
        }
        if let Some(e) = &q.constraint {
            outln!("     constraint: {}", e.source());
            if let Some(m) = q.constraint_message.get(None) {
                outln!("       ({m})");
            }
        }
        if let Some(d) = q.static_default() {
            outln!("     default: {d}");
        }
    }
    Ok(0)
}
