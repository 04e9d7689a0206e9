//! The worker process: `fieldsync-server worker`. It caps its own address space first, then
//! answers requests from stdin on stdout until stdin closes. It is the only place in the
//! server where client-supplied Automerge bytes are parsed.

use std::io::{self, Read, Write};
use std::sync::Arc;

use fieldsync_protocol::api::{ConflictValueView, ConflictView, ResponseView};
use fieldsync_protocol::document::{
    ChangeHash, ChangeInfo, DocError, Readable, ResponseDoc, map_keys,
};
use fieldsync_protocol::survey::{Survey, ValidationContext};
use serde_bytes::ByteBuf;

use super::protocol::{
    self, ChangeVerdict, Checked, MAX_FRAME, MaterializeJob, Reply, Request, Verdict,
};

/// Run the worker loop. Returns when the server closes the pipe.
pub fn run(memory_bytes: u64, check_memory_bytes: u64) -> anyhow::Result<()> {
    // The limit is what turns "allocate gigabytes and take the machine down" into "this one
    // process dies and the pool starts another". The hard limit is the larger of the two;
    // each request lowers or raises the soft limit to its own (an unprivileged process may
    // move its soft limit anywhere below its hard one).
    let hard = memory_bytes.max(check_memory_bytes);
    rlimit::setrlimit(rlimit::Resource::AS, hard, hard)?;
    // A worker that dies on hostile input must not leave the answers it held in a core file.
    rlimit::setrlimit(rlimit::Resource::CORE, 0, 0)?;
    quiet_panics();
    let limits = Limits {
        hard,
        check: check_memory_bytes.min(hard),
        materialize: memory_bytes.min(hard),
    };
    let stdin = io::stdin();
    let stdout = io::stdout();
    let mut input = stdin.lock();
    let mut output = stdout.lock();
    let mut cache = SurveyCache::default();
    loop {
        let mut len = [0u8; 4];
        match input.read_exact(&mut len) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        let len = u32::from_be_bytes(len) as usize;
        if len > MAX_FRAME {
            anyhow::bail!("request frame of {len} bytes is over the limit");
        }
        let mut body = vec![0u8; len];
        input.read_exact(&mut body)?;
        let reply = match protocol::decode_request(&body) {
            Ok(req) => {
                let soft = match req {
                    Request::Verify { .. } => limits.check,
                    Request::Materialize(_) => limits.materialize,
                };
                rlimit::setrlimit(rlimit::Resource::AS, soft, limits.hard)?;
                handle(req, &mut cache)
            }
            Err(why) => Reply::Failed(why),
        };
        drop(body);
        let frame = protocol::encode(&reply).map_err(anyhow::Error::msg)?;
        output.write_all(&frame)?;
        output.flush()?;
    }
}

/// The worker's address-space limits, in bytes.
struct Limits {
    hard: u64,
    check: u64,
    materialize: u64,
}

/// Panics on hostile input are expected and caught; each is logged as one short line (never
/// a backtrace, whatever `RUST_BACKTRACE` says, and never more than a few per worker), so a
/// flood of crafted pushes cannot flood the server's log.
fn quiet_panics() {
    use std::sync::atomic::{AtomicU32, Ordering};
    static LOGGED: AtomicU32 = AtomicU32::new(0);
    std::panic::set_hook(Box::new(|info| {
        if LOGGED.fetch_add(1, Ordering::Relaxed) < 5 {
            let what = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_default();
            let what: String = what.chars().take(160).collect();
            let at = info
                .location()
                .map(|l| format!("{}:{}", l.file(), l.line()))
                .unwrap_or_default();
            eprintln!("fieldsync-server worker: input made the parser panic at {at}: {what}");
        }
    }));
}

/// Parsed survey versions, by definition text: parsing compiles every constraint's regex,
/// which costs far more than loading a response, and a worker sees the same few versions
/// over and over. Found by comparing the text (definitions differ in length almost always,
/// and comparing equal ones is a memcmp), which is cheaper than hashing kilobytes per job.
#[derive(Default)]
struct SurveyCache {
    surveys: Vec<(String, Arc<Survey>)>,
}

impl SurveyCache {
    const LIMIT: usize = 64;

    fn get(&mut self, json: &str) -> Result<Arc<Survey>, String> {
        if let Some((_, s)) = self.surveys.iter().find(|(text, _)| text == json) {
            return Ok(s.clone());
        }
        let survey = Arc::new(
            Survey::parse_json(json)
                .map_err(|e| format!("the survey version cannot be parsed: {e}"))?,
        );
        if self.surveys.len() >= Self::LIMIT {
            self.surveys.clear();
        }
        self.surveys.push((json.to_owned(), survey.clone()));
        Ok(survey)
    }
}

fn handle(req: Request, cache: &mut SurveyCache) -> Reply {
    match req {
        Request::Verify { docs, keys } => {
            Reply::Verified(docs.iter().map(|d| verify(d, keys)).collect())
        }
        Request::Materialize(jobs) => Reply::Materialized(
            jobs.into_iter()
                .map(|job| guard(|| materialize(job, cache)))
                .collect(),
        ),
    }
}

/// Turn a panic inside automerge into an error for this one document. (An allocation failure
/// still aborts the process; the pool handles that.)
fn guard<T>(f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .unwrap_or_else(|_| Err("the document's data made the parser fail".to_owned()))
}

fn verify(changes: &[ByteBuf], want_keys: bool) -> Verdict {
    let result = guard(|| {
        if changes.is_empty() {
            return Err("no changes were sent for it".to_owned());
        }
        let mut keys: Vec<String> = Vec::new();
        let hashes = changes
            .iter()
            .enumerate()
            .map(|(i, bytes)| {
                let at = |e: DocError| format!("change {} of {}: {e}", i + 1, changes.len());
                let info = ChangeInfo::decode(bytes).map_err(at)?;
                if want_keys {
                    for k in map_keys(bytes).map_err(at)? {
                        if !keys.contains(&k) {
                            keys.push(k);
                        }
                    }
                }
                Ok(ByteBuf::from(info.hash.0.to_vec()))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok((hashes, keys))
    });
    match result {
        Ok((hashes, keys)) => Verdict::Ok { hashes, keys },
        Err(why) => Verdict::Malformed(why),
    }
}

/// Check a response's pending changes one way or another, then build what a coordinator sees
/// from the accepted ones. The rule: a change is accepted only if the document, with every
/// change accepted before it and this one, loads and reads as the response its pusher said it
/// was; otherwise it is refused and the document stays exactly as it was.
fn materialize(job: MaterializeJob, cache: &mut SurveyCache) -> Result<Checked, String> {
    let base = if job.accepted.is_empty() {
        None
    } else {
        // Accepted changes loaded before; if they no longer do (data stored before schema 2),
        // nothing can be checked on top of them.
        let doc = guard(|| {
            ResponseDoc::from_changes(job.accepted.iter().map(|c| c.as_slice()))
                .map_err(|e| format!("the response cannot be loaded: {e}"))
        })?;
        Some(doc)
    };
    let hashes: Vec<Option<ChangeHash>> = job
        .pending
        .iter()
        .map(|c| ChangeInfo::decode(c).ok().map(|i| i.hash))
        .collect();
    // The common case first: everything new applies at once. What the check read is what
    // the view shows.
    let whole = guard(|| {
        let mut doc = base.clone().unwrap_or_else(ResponseDoc::staging);
        doc.apply_changes(job.pending.iter().map(|c| c.as_slice()))
            .map_err(|e| e.to_string())?;
        let read = check(&mut doc, &job)?;
        Ok((doc, read))
    });
    let (doc, read, verdicts) = match whole {
        Ok((mut doc, read)) => {
            let verdicts = hashes
                .iter()
                .map(|h| match h {
                    Some(h) if doc.has_change(h) => ChangeVerdict::Accepted,
                    _ => ChangeVerdict::Waiting,
                })
                .collect();
            (Some(doc), Some(read), verdicts)
        }
        Err(_) => {
            let (doc, verdicts) = one_by_one(base, &job, &hashes);
            (doc, None, verdicts)
        }
    };
    let Some(doc) = doc else {
        return Ok(Checked {
            verdicts,
            view: None,
            subjects: Vec::new(),
            media: Vec::new(),
        });
    };
    let read = match read {
        Some(read) => read,
        None => guard(|| read_back(&doc))?,
    };
    let survey = job
        .definition
        .as_deref()
        .map(|json| cache.get(json))
        .transpose()?;
    let mut view = guard(|| view_of(read, &job, survey.as_deref()))?;
    view.review_comment = guard(|| {
        doc.review_comment()
            .map_err(|e| format!("the review comment cannot be read: {e}"))
    })?;
    let (subjects, media) = match &survey {
        Some(survey) => {
            let media = fieldsync_protocol::media::references(survey, &view.answers)
                .into_iter()
                .map(|r| r.name)
                .collect();
            (
                fieldsync_protocol::subject::identifiers(survey, &view.answers),
                media,
            )
        }
        None => (Vec::new(), Vec::new()),
    };
    Ok(Checked {
        verdicts,
        view: Some(view),
        subjects,
        media,
    })
}

/// Apply pending changes one at a time, keeping each only if the document still reads.
fn one_by_one(
    base: Option<ResponseDoc>,
    job: &MaterializeJob,
    hashes: &[Option<ChangeHash>],
) -> (Option<ResponseDoc>, Vec<ChangeVerdict>) {
    let mut current = base;
    let mut verdicts = Vec::with_capacity(job.pending.len());
    for (change, hash) in job.pending.iter().zip(hashes) {
        let Some(hash) = hash else {
            verdicts.push(ChangeVerdict::Refused(
                "it is not a readable Automerge change".into(),
            ));
            continue;
        };
        let attempt = guard(|| {
            let mut doc = current.clone().unwrap_or_else(ResponseDoc::staging);
            doc.apply_changes([change.as_slice()])
                .map_err(|e| format!("applying it fails: {e}"))?;
            if !doc.has_change(hash) {
                return Ok(None);
            }
            check(&mut doc, job)?;
            Ok(Some(doc))
        });
        match attempt {
            Ok(Some(doc)) => {
                current = Some(doc);
                verdicts.push(ChangeVerdict::Accepted);
            }
            Ok(None) => verdicts.push(ChangeVerdict::Waiting),
            Err(why) => verdicts.push(ChangeVerdict::Refused(why)),
        }
    }
    (current, verdicts)
}

/// The document must read as a response, and as the one its pusher declared; and what every
/// replica does with it next must work too: list its changes (what the server relays and a
/// client pushes), save it and load the saved bytes again (what a client stores). Some
/// crafted changes apply cleanly and only break those. The save is uncompressed: the same
/// columns a client's compressed save writes, without deflating them (lossless, and most of
/// the cost). Returns what it read.
fn check(doc: &mut ResponseDoc, job: &MaterializeJob) -> Result<Readable, String> {
    let read = doc
        .check_readable()
        .map_err(|e| format!("the response would not be readable with it: {e}"))?;
    doc.all_changes();
    let saved = doc.save_uncompressed();
    ResponseDoc::load(&saved)
        .map_err(|e| format!("the response would not load again once saved: {e}"))?;
    let meta = &read.meta;
    if meta.response_id != job.doc_id
        || meta.survey_id != job.survey_id
        || meta.survey_version != job.survey_version
    {
        return Err(format!(
            "with it the document says it is response {} of survey {} version {}, but it was pushed as {} of {} version {}",
            meta.response_id,
            meta.survey_id,
            meta.survey_version,
            job.doc_id,
            job.survey_id,
            job.survey_version
        ));
    }
    Ok(read)
}

/// Read a document the check did not just read (the accepted changes alone, when none of
/// the pending ones could be taken).
fn read_back(doc: &ResponseDoc) -> Result<Readable, String> {
    Ok(Readable {
        meta: doc
            .meta()
            .map_err(|e| format!("the response is incomplete: {e}"))?,
        answers: doc
            .answers()
            .map_err(|e| format!("the answers cannot be read: {e}"))?,
        conflicts: doc
            .conflicts()
            .map_err(|e| format!("the conflicts cannot be read: {e}"))?,
    })
}

fn view_of(
    read: Readable,
    job: &MaterializeJob,
    survey: Option<&Survey>,
) -> Result<ResponseView, String> {
    let Readable {
        meta,
        answers,
        conflicts,
    } = read;
    let conflicts = conflicts
        .into_iter()
        .map(|c| ConflictView {
            question: c.question,
            values: c
                .values
                .into_iter()
                .map(|v| ConflictValueView {
                    value: v.value,
                    actor: v.actor,
                    author: v.author,
                })
                .collect(),
        })
        .collect();
    let errors = match survey {
        Some(survey) => {
            let today = time::Date::parse(
                &job.today,
                &time::macros::format_description!("[year]-[month]-[day]"),
            )
            .map_err(|e| format!("bad date from the server: {e}"))?;
            survey.validate(&answers, &ValidationContext::new(today))
        }
        None => Vec::new(),
    };
    Ok(ResponseView {
        id: meta.response_id,
        survey_id: meta.survey_id,
        survey_version: meta.survey_version,
        author_device: meta.author_device,
        created_at: meta.created_at,
        updated_at: meta.updated_at,
        status: meta.status.as_str().to_owned(),
        answers,
        errors,
        conflicts,
        warnings: Vec::new(),
        review_comment: None,
    })
}
