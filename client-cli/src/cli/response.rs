//! `fieldsync response`: list, show, correct, submit, discard, review and settle conflicts of
//! the responses held on this device.

use fieldsync_client::exit::Failure;
use fieldsync_client::input::{edits_from_args, parse_assignment};
use fieldsync_client::store::{Discarded, LocalResponse, ResponseFilter, Store, today};
use fieldsync_protocol::api::Role;
use fieldsync_protocol::document::Status;
use fieldsync_protocol::survey::ValidationContext;
use fieldsync_protocol::survey::types::QuestionType;

use super::collected::Collected;
use super::{Settings, format_ms};

/// List, show, edit, submit, discard, review responses and settle their conflicts.
///
/// A RESPONSE may be the full id or a unique prefix of at least 4 characters.
///
/// Statuses: draft, submitted (what ODK Central calls received), has_issues, approved and
/// rejected (a coordinator's review), edited (changed after a review), discarded.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// List the responses on this device, newest first.
    List {
        /// Only this survey (id or form id).
        #[arg(long)]
        survey: Option<String>,
        /// Only responses with this status.
        #[arg(long, value_enum)]
        status: Option<StatusArg>,
        /// Only responses with conflicting answers.
        #[arg(long)]
        conflicted: bool,
        #[command(flatten)]
        when: Collected,
    },
    /// Show one response: answers in form order, status, problems, conflicts, sync state.
    Show {
        /// The response id or a unique prefix.
        id: String,
    },
    /// Change answers of a response (each value is checked like an interview answer).
    Edit {
        /// The response id or a unique prefix.
        id: String,
        /// Set an answer; repeat for several.
        #[arg(long = "set", value_name = "NAME=VALUE", value_parser = parse_assignment)]
        set: Vec<(String, String)>,
        /// Remove an answer; repeat for several.
        #[arg(long = "unset", value_name = "NAME")]
        unset: Vec<String>,
    },
    /// Hand in a draft (it must be complete and valid).
    Submit {
        /// The response id or a unique prefix.
        id: String,
    },
    /// Give up a draft: one that never left this device is deleted, one already synced is
    /// marked discarded everywhere at the next sync (and stays out of exports).
    Discard {
        /// The response id or a unique prefix.
        id: String,
    },
    /// Review a handed-in response (coordinators and admins): approved (devices can no longer
    /// change it), has_issues (sent back to be fixed) or rejected, with a comment.
    Review {
        /// The response id or a unique prefix.
        id: String,
        /// The verdict.
        #[arg(long, value_enum, default_value = "approved")]
        state: ReviewArg,
        /// What the enumerator should know (shown with the response).
        #[arg(long)]
        comment: Option<String>,
    },
    /// Show conflicting answers (of one response, or of every conflicted response) and who
    /// set each value.
    Conflicts {
        /// The response id or a unique prefix.
        id: Option<String>,
    },
    /// Settle a conflicting answer on one value.
    Resolve {
        /// The response id or a unique prefix.
        id: String,
        /// The question whose answer is in conflict.
        name: String,
        /// The value to keep (may be one of the conflicting values or a new one).
        #[arg(long)]
        value: String,
    },
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum StatusArg {
    Draft,
    Submitted,
    #[value(name = "has_issues", alias = "has-issues")]
    HasIssues,
    Approved,
    Rejected,
    Edited,
    Discarded,
}

impl From<StatusArg> for Status {
    fn from(s: StatusArg) -> Status {
        match s {
            StatusArg::Draft => Status::Draft,
            StatusArg::Submitted => Status::Submitted,
            StatusArg::HasIssues => Status::HasIssues,
            StatusArg::Approved => Status::Approved,
            StatusArg::Rejected => Status::Rejected,
            StatusArg::Edited => Status::Edited,
            StatusArg::Discarded => Status::Discarded,
        }
    }
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum ReviewArg {
    Approved,
    #[value(name = "has_issues", alias = "has-issues")]
    HasIssues,
    Rejected,
}

impl From<ReviewArg> for Status {
    fn from(s: ReviewArg) -> Status {
        match s {
            ReviewArg::Approved => Status::Approved,
            ReviewArg::HasIssues => Status::HasIssues,
            ReviewArg::Rejected => Status::Rejected,
        }
    }
}

pub fn run(command: Command, s: &Settings) -> anyhow::Result<u8> {
    if let Command::Edit { set, unset, .. } = &command
        && set.is_empty()
        && unset.is_empty()
    {
        return Err(Failure::Invalid(
            "nothing to change; give --set NAME=VALUE or --unset NAME".into(),
        )
        .into());
    }
    let mut store = s.open_store()?;
    match command {
        Command::List {
            survey,
            status,
            conflicted,
            when,
        } => list(&mut store, survey, status, conflicted, &when, s),
        Command::Show { id } => {
            let id = store.find_response(&id)?;
            let r = store.response(&id)?;
            show(&store, &r, s)
        }
        Command::Edit { id, set, unset } => {
            let id = store.find_response(&id)?;
            let r = store.response(&id)?;
            let survey = store.survey_version(&r.meta.survey_id, r.meta.survey_version)?;
            let ctx = ValidationContext::new(today());
            // A file given for a media question is attached; the answer is its name.
            let mut set = set;
            for (name, value) in &mut set {
                if let Some(q) = survey
                    .question(name)
                    .filter(|q| matches!(q.qtype, QuestionType::Media(_)))
                {
                    *value = store
                        .attach_file(q, std::path::Path::new(value.as_str()))?
                        .name;
                }
            }
            let edits = edits_from_args(&survey, &r.answers, &set, &unset, &ctx)
                .map_err(|errors| Failure::Invalid(errors.join("\n")))?;
            if r.meta.status != Status::Draft {
                // A handed-in response must stay valid.
                let mut after = r.answers.clone();
                for (name, value) in &edits {
                    match value {
                        Some(v) => after.insert(name.clone(), v.clone()),
                        None => after.remove(name),
                    };
                }
                let problems = survey.validate(&after, &ctx);
                if !problems.is_empty() {
                    let list: Vec<String> = problems.iter().map(|e| e.to_string()).collect();
                    return Err(Failure::Invalid(format!(
                        "response {id} is {} and this change would leave it with problems; nothing was changed:\n{}",
                        r.meta.status,
                        list.join("\n")
                    ))
                    .into());
                }
            }
            store.edit_response(&id, &edits, None)?;
            done(&mut store, &id, "changed", s)
        }
        Command::Submit { id } => {
            let id = store.find_response(&id)?;
            store.edit_response(&id, &[], Some(Status::Submitted))?;
            done(&mut store, &id, "submitted", s)
        }
        Command::Discard { id } => {
            let id = store.find_response(&id)?;
            let what = store.discard(&id)?;
            if s.json {
                s.print_json(&serde_json::json!({
                    "id": id,
                    "deleted": what == Discarded::Deleted,
                    "status": "discarded",
                }))?;
            } else if what == Discarded::Deleted {
                outln!("discarded draft {id}; it never left this device and is gone");
            } else {
                outln!(
                    "discarded draft {id}; `fieldsync sync` tells the server, which keeps it out of exports"
                );
            }
            Ok(0)
        }
        Command::Review { id, state, comment } => {
            let role = store.require_account()?.role;
            if !matches!(role, Role::Coordinator | Role::Admin) {
                return Err(Failure::Auth(format!(
                    "only coordinators and admins review responses; this client is signed in as {role}"
                ))
                .into());
            }
            let id = store.find_response(&id)?;
            let state = Status::from(state);
            store.review(&id, state, comment.as_deref())?;
            done(&mut store, &id, &format!("marked {state}"), s)
        }
        Command::Conflicts { id } => conflicts(&mut store, id, s),
        Command::Resolve { id, name, value } => {
            let id = store.find_response(&id)?;
            let r = store.response(&id)?;
            let survey = store.survey_version(&r.meta.survey_id, r.meta.survey_version)?;
            let answer = survey
                .parse_typed(&name, &value, fieldsync_client::store::now_local())
                .map_err(|e| Failure::Invalid(e.to_string()))?;
            survey
                .check_answer(&name, &answer, &r.answers, &ValidationContext::new(today()))
                .map_err(|e| Failure::Invalid(e.to_string()))?;
            store.resolve(&id, &name, &answer)?;
            done(&mut store, &id, "resolved", s)
        }
    }
}

fn list(
    store: &mut Store,
    survey: Option<String>,
    status: Option<StatusArg>,
    conflicted: bool,
    when: &Collected,
    s: &Settings,
) -> anyhow::Result<u8> {
    let survey_id = match survey {
        Some(key) => Some(store.find_survey(&key)?.id),
        None => None,
    };
    let (since, until) = when.bounds()?;
    let mut rows = store.list_responses(&ResponseFilter {
        survey_id,
        status: status.map(Status::from),
        conflicted_only: conflicted,
    })?;
    if !when.is_empty() {
        // Where and when a response was started is inside its (sealed) document.
        let mut metas = Vec::with_capacity(rows.len());
        for r in rows {
            metas.push((store.response_meta(&r.id)?, r));
        }
        let authors: Vec<String> = metas.iter().map(|(m, _)| m.author_device.clone()).collect();
        let collectors = when.collectors(store, &authors)?;
        rows = metas
            .into_iter()
            .filter(|(meta, _)| {
                since.is_none_or(|t| meta.created_at >= t)
                    && until.is_none_or(|t| meta.created_at < t)
                    && collectors
                        .as_ref()
                        .is_none_or(|c| c.contains(&meta.author_device))
            })
            .map(|(_, r)| r)
            .collect();
    }
    fill_subjects(store, &mut rows)?;
    if s.json {
        s.print_json(&rows)?;
        return Ok(0);
    }
    if rows.is_empty() {
        outln!("no responses");
        return Ok(0);
    }
    let forms: std::collections::HashMap<_, _> = store
        .surveys()?
        .into_iter()
        .map(|v| (v.id, v.form_id))
        .collect();
    let all: Vec<String> = store
        .list_responses(&ResponseFilter::default())?
        .iter()
        .map(|r| r.id.to_string())
        .collect();
    let ids: Vec<String> = rows.iter().map(|r| r.id.to_string()).collect();
    let short = short_ids(all, &ids);
    let width = short.iter().map(String::len).max().unwrap_or(8);
    let subjects = rows.iter().any(|r| r.subject.is_some());
    outln!(
        "{:<width$}  {:<20}  {:<12}  {:<10}  {:>6}  {:>9}  {:<7}  {:<24}{}",
        "ID",
        "SURVEY",
        "VERSION",
        "STATUS",
        "ERRORS",
        "CONFLICTS",
        "SYNC",
        "UPDATED",
        if subjects { "  SUBJECT" } else { "" }
    );
    for (r, short) in rows.iter().zip(&short) {
        let sync = if r.rejected.is_some() {
            "refused"
        } else if r.pending {
            "pending"
        } else {
            "synced"
        };
        let form = forms
            .get(&r.survey_id)
            .cloned()
            .unwrap_or_else(|| r.survey_id.to_string());
        let subject = match &r.subject {
            Some(s) if subjects => format!("  {}", clip(s, 30)),
            _ => String::new(),
        };
        outln!(
            "{:<width$}  {:<20}  {:<12}  {:<10}  {:>6}  {:>9}  {:<7}  {:<24}{}",
            short,
            form,
            super::survey::version_name(store, &r.survey_id, r.survey_version),
            r.status,
            r.errors,
            r.conflicts,
            sync,
            format_ms(r.updated_at),
            subject
        );
    }
    Ok(0)
}

/// The subject field's answer of each listed response whose survey names one (`subject_field`
/// in its settings): who the response is about, so that people can tell rows apart.
fn fill_subjects(
    store: &mut Store,
    rows: &mut [fieldsync_client::store::ResponseRow],
) -> anyhow::Result<()> {
    let mut fields: std::collections::HashMap<(uuid::Uuid, u32), Option<String>> =
        std::collections::HashMap::new();
    for r in rows {
        let key = (r.survey_id, r.survey_version);
        if let std::collections::hash_map::Entry::Vacant(e) = fields.entry(key) {
            let survey = store.survey_version(&r.survey_id, r.survey_version)?;
            e.insert(survey.subject_field().map(str::to_owned));
        }
        if let Some(Some(field)) = fields.get(&key) {
            let answers = store.response(&r.id)?.answers;
            r.subject = Some(answers.get(field).map(|a| a.to_text()).unwrap_or_default());
        }
    }
    Ok(())
}

/// `text` on one line and at most `max` characters (an ellipsis marks a cut).
fn clip(text: &str, max: usize) -> String {
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() <= max {
        return line;
    }
    let mut cut: String = line.chars().take(max - 1).collect();
    cut.push('…');
    cut
}

/// For each of `shown`, its shortest prefix (8 characters at least) that no other id in `all`
/// starts with: what `response list` prints, and what every command taking an id accepts.
fn short_ids(mut all: Vec<String>, shown: &[String]) -> Vec<String> {
    all.sort_unstable();
    let common = |a: &str, b: &str| a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
    shown
        .iter()
        .map(|id| {
            let at = all.binary_search(id).unwrap_or_else(|i| i);
            let before = at.checked_sub(1).map_or(0, |i| common(&all[i], id));
            let after = all
                .get(at + 1)
                .filter(|next| *next != id)
                .map_or(0, |next| common(next, id));
            let len = (before.max(after) + 1).clamp(8, id.len());
            id[..len].to_owned()
        })
        .collect()
}

fn to_json(store: &Store, r: &LocalResponse) -> anyhow::Result<serde_json::Value> {
    let survey = store.survey_version(&r.meta.survey_id, r.meta.survey_version)?;
    let answers: Vec<serde_json::Value> = survey
        .questions()
        .iter()
        .filter_map(|q| {
            r.answers.get(&q.name).map(
                |a| serde_json::json!({"name": q.name, "label": q.label.text().trim(), "value": a}),
            )
        })
        .collect();
    let conflicts: Vec<serde_json::Value> = r
        .conflicts
        .iter()
        .map(|c| {
            let values: Vec<serde_json::Value> = c
                .values
                .iter()
                .map(
                    |v| serde_json::json!({"value": v.value, "actor": v.actor, "author": v.author}),
                )
                .collect();
            serde_json::json!({"question": c.question, "values": values})
        })
        .collect();
    Ok(serde_json::json!({
        "id": r.meta.response_id,
        "survey_id": r.meta.survey_id,
        "survey_version": r.meta.survey_version,
        "status": r.meta.status.as_str(),
        "review_comment": store.review_comment(&r.meta.response_id)?,
        "author_device": r.meta.author_device,
        "created_at": r.meta.created_at,
        "updated_at": r.meta.updated_at,
        "answers": answers,
        "errors": r.errors,
        "conflicts": conflicts,
        "pending": r.pending,
        "rejected": r.rejected,
    }))
}

fn show(store: &Store, r: &LocalResponse, s: &Settings) -> anyhow::Result<u8> {
    if s.json {
        s.print_json(&to_json(store, r)?)?;
        return Ok(0);
    }
    let survey = store.survey_version(&r.meta.survey_id, r.meta.survey_version)?;
    outln!("response {}", r.meta.response_id);
    outln!(
        "survey {} ({}) version {}",
        survey.form_id(),
        r.meta.survey_id,
        super::survey::version_name(store, &r.meta.survey_id, r.meta.survey_version)
    );
    outln!("status {}", r.meta.status);
    if let Some(comment) = store.review_comment(&r.meta.response_id)? {
        outln!("review comment: {comment}");
    }
    outln!(
        "created {}, updated {}",
        format_ms(r.meta.created_at),
        format_ms(r.meta.updated_at)
    );
    let sync = match (&r.rejected, r.pending) {
        (Some(why), _) => format!("refused by the server: {why}; edit it to send it again"),
        (None, true) => "changes waiting to be synced".to_owned(),
        (None, false) => "synced".to_owned(),
    };
    outln!("sync: {sync}");
    outln!("answers:");
    for q in survey.questions() {
        if let Some(a) = r.answers.get(&q.name) {
            outln!("  {} ({}): {a}", q.label.text().trim(), q.name);
        }
    }
    for e in &r.errors {
        outln!("problem: {e}");
    }
    for c in &r.conflicts {
        print_conflict(&c.question, c);
    }
    Ok(0)
}

fn print_conflict(question: &str, c: &fieldsync_protocol::document::Conflict) {
    outln!("conflict on {question}:");
    for v in &c.values {
        let who = v.author.as_deref().unwrap_or(&v.actor);
        outln!("  {} (set by {who})", v.value);
    }
}

fn conflicts(store: &mut Store, id: Option<String>, s: &Settings) -> anyhow::Result<u8> {
    let ids = match id {
        Some(key) => vec![store.find_response(&key)?],
        None => store
            .list_responses(&ResponseFilter {
                conflicted_only: true,
                ..ResponseFilter::default()
            })?
            .into_iter()
            .map(|r| r.id)
            .collect(),
    };
    let mut all = Vec::new();
    for id in ids {
        all.push(store.response(&id)?);
    }
    if s.json {
        let docs: Vec<serde_json::Value> = all
            .iter()
            .map(|r| {
                to_json(store, r).map(|mut v| {
                    serde_json::json!({"id": r.meta.response_id, "conflicts": v["conflicts"].take()})
                })
            })
            .collect::<Result<_, _>>()?;
        s.print_json(&docs)?;
        return Ok(0);
    }
    let mut any = false;
    for r in &all {
        if r.conflicts.is_empty() {
            continue;
        }
        any = true;
        outln!("response {}", r.meta.response_id);
        for c in &r.conflicts {
            print_conflict(&c.question, c);
        }
        outln!(
            "  settle with: fieldsync response resolve {} NAME --value VALUE",
            r.meta.response_id
        );
    }
    if !any {
        outln!("no conflicts");
    }
    Ok(0)
}

fn done(store: &mut Store, id: &uuid::Uuid, what: &str, s: &Settings) -> anyhow::Result<u8> {
    let r = store.response(id)?;
    if s.json {
        s.print_json(&to_json(store, &r)?)?;
    } else {
        outln!(
            "{what} response {id} (now {}, {} problem(s)); `fieldsync sync` sends the change",
            r.meta.status,
            r.errors.len()
        );
        for e in &r.errors {
            outln!("problem: {e}");
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn short_ids_are_the_shortest_unique_prefixes() {
        let all: Vec<String> = [
            "01a23553-a978-7487-b780-a85c3c51be72",
            "01a23553-a978-7487-b780-a85dfe89c0d5",
            "7f000000-0000-4000-8000-000000000000",
        ]
        .map(String::from)
        .to_vec();
        let short = super::short_ids(all.clone(), &all);
        assert_eq!(
            short,
            [
                "01a23553-a978-7487-b780-a85c",
                "01a23553-a978-7487-b780-a85d",
                "7f000000"
            ]
        );
        for (s, id) in short.iter().zip(&all) {
            assert_eq!(
                all.iter().filter(|o| o.starts_with(s.as_str())).count(),
                1,
                "{id}"
            );
        }
    }
}
