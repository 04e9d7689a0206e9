//! The worker process: `fieldsync-server worker`. It caps its own address space first, then
//! answers requests from stdin on stdout until stdin closes. It is the only place in the
//! server where client-supplied Automerge bytes are parsed.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::sync::Arc;

use fieldsync_protocol::api::{ConflictValueView, ConflictView, ResponseView};
use fieldsync_protocol::document::{ChangeInfo, ResponseDoc};
use fieldsync_protocol::survey::{Survey, ValidationContext};
use serde_bytes::ByteBuf;

use super::protocol::{self, MAX_FRAME, MaterializeJob, Reply, Request, Verdict};

/// Run the worker loop. Returns when the server closes the pipe.
pub fn run(memory_bytes: u64) -> anyhow::Result<()> {
    // The limit is what turns "allocate gigabytes and take the machine down" into "this one
    // process dies and the pool starts another".
    rlimit::setrlimit(rlimit::Resource::AS, memory_bytes, memory_bytes)?;
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
            Ok(req) => handle(req, &mut cache),
            Err(why) => Reply::Failed(why),
        };
        drop(body);
        let frame = protocol::encode(&reply).map_err(anyhow::Error::msg)?;
        output.write_all(&frame)?;
        output.flush()?;
    }
}

/// Parsed survey versions, by definition text: parsing compiles every constraint's regex,
/// which costs far more than loading a response, and a worker sees the same few versions
/// over and over.
#[derive(Default)]
struct SurveyCache {
    surveys: HashMap<String, Arc<Survey>>,
}

impl SurveyCache {
    const LIMIT: usize = 64;

    fn get(&mut self, json: &str) -> Result<Arc<Survey>, String> {
        if let Some(s) = self.surveys.get(json) {
            return Ok(s.clone());
        }
        let survey = Arc::new(
            Survey::parse_json(json)
                .map_err(|e| format!("the survey version cannot be parsed: {e}"))?,
        );
        if self.surveys.len() >= Self::LIMIT {
            self.surveys.clear();
        }
        self.surveys.insert(json.to_owned(), survey.clone());
        Ok(survey)
    }
}

fn handle(req: Request, cache: &mut SurveyCache) -> Reply {
    match req {
        Request::Verify { docs } => Reply::Verified(docs.iter().map(|d| verify(d)).collect()),
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

fn verify(changes: &[ByteBuf]) -> Verdict {
    let result = guard(|| {
        if changes.is_empty() {
            return Err("no changes were sent for it".to_owned());
        }
        changes
            .iter()
            .enumerate()
            .map(|(i, bytes)| {
                ChangeInfo::decode(bytes)
                    .map(|info| ByteBuf::from(info.hash.0.to_vec()))
                    .map_err(|e| format!("change {} of {}: {e}", i + 1, changes.len()))
            })
            .collect()
    });
    match result {
        Ok(hashes) => Verdict::Ok(hashes),
        Err(why) => Verdict::Malformed(why),
    }
}

fn materialize(job: MaterializeJob, cache: &mut SurveyCache) -> Result<ResponseView, String> {
    let doc = ResponseDoc::from_changes(job.changes.iter().map(|c| c.as_slice()))
        .map_err(|e| format!("the response cannot be loaded: {e}"))?;
    let meta = doc
        .meta()
        .map_err(|e| format!("the response is incomplete: {e}"))?;
    let answers = doc
        .answers()
        .map_err(|e| format!("the answers cannot be read: {e}"))?;
    let conflicts = doc
        .conflicts()
        .map_err(|e| format!("the conflicts cannot be read: {e}"))?
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
    let errors = match &job.definition {
        Some(json) => {
            let survey = cache.get(json)?;
            let today = time::Date::parse(
                &job.today,
                &time::macros::format_description!("[year]-[month]-[day]"),
            )
            .map_err(|e| format!("bad date from the server: {e}"))?;
            survey.validate(&answers, &ValidationContext { today })
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
    })
}
