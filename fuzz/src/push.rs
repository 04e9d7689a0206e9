//! The push route driven in-process: one input is sent as the body of `POST /v1/sync/push`
//! through `fieldsync_server::router(state).oneshot(..)`, with a real worker pool, and its
//! answer is checked with `fieldsync_protocol::fuzz_targets::check_push_reply`. Whatever was
//! stored is then materialised at once (in the sandbox, where the Automerge bytes are applied)
//! and read back, so a fuzzed change reaches every step a real one takes.
//!
//! This file is shared: the fuzz targets `push_path` and `push_changes` use it through the
//! `fieldsync_fuzz` library, and the replay test `server/tests/server/fuzz_replay.rs` includes
//! it with `#[path]`, so both run the same code on the same corpus. It may use only crates that
//! both have: fieldsync-server and -protocol, axum, tokio, tower, http-body-util, serde_json,
//! uuid.

use std::path::PathBuf;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use fieldsync_protocol::cbor::Limits;
use fieldsync_protocol::fuzz_targets::{self as ft, PushClass};
use fieldsync_protocol::wire::{Message, PullRequest, PullResponse};
use fieldsync_server::AppState;
use fieldsync_server::worker::WorkerLimits;
use http_body_util::BodyExt;
use tower::ServiceExt;
use uuid::Uuid;

/// The worker limits of a fuzzed server: the defaults, but a request that keeps a worker busy
/// is cut off after 3 s instead of 20 (the crafted time bombs would cost 20 s each) and a
/// worker gets 256 MiB (allocation bombs die sooner). Shorter limits change no code path.
pub fn worker_limits() -> WorkerLimits {
    WorkerLimits {
        size: 2,
        memory_bytes: 256 * 1024 * 1024,
        check_memory_bytes: 256 * 1024 * 1024,
        timeout: Duration::from_secs(3),
        queue_timeout: fieldsync_server::worker::QUEUE_TIMEOUT,
    }
}

/// The `fieldsync-server` binary the worker pool starts (`fieldsync-server worker`):
/// `$FIELDSYNC_SERVER_BIN`, or the workspace's debug build (`cargo build -p fieldsync-server`).
pub fn server_bin() -> PathBuf {
    match std::env::var_os("FIELDSYNC_SERVER_BIN") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../target/debug/fieldsync-server"
        )),
    }
}

/// One request through the router: (status, body).
pub async fn send(
    state: &AppState,
    method: &str,
    path: &str,
    token: Option<&str>,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (u16, Vec<u8>) {
    let mut builder = Request::builder().method(method).uri(path);
    if let Some(t) = token {
        builder = builder.header("authorization", format!("Bearer {t}"));
    }
    if let Some(ct) = content_type {
        builder = builder.header("content-type", ct);
    }
    let request = builder
        .body(Body::from(body))
        .unwrap_or_else(|e| panic!("request: {e}"));
    let response = fieldsync_server::router(state.clone())
        .oneshot(request)
        .await
        .unwrap_or_else(|e| match e {});
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes().to_vec())
        .unwrap_or_else(|e| panic!("reading the answer's body failed: {e}"));
    (status, body)
}

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// How many status codes of each kind a run saw (for the report at the end).
#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub inputs: u64,
    pub stored: u64,
    pub statuses: std::collections::BTreeMap<u16, u64>,
    pub reads: std::collections::BTreeMap<u16, u64>,
    pub caller_switches: u64,
}

/// The organisation a push input is sent into.
#[derive(Debug)]
pub struct Target {
    /// The published survey; [`ft::SURVEY_PLACEHOLDER`] in an input becomes this id.
    pub survey: Uuid,
    /// Coordinators the inputs are pushed as, in turn: a caller whose inputs keep killing
    /// workers is refused for a minute (429), and the next one takes over.
    pub callers: Vec<String>,
    /// Pushes only the canary, so its pushes are never refused for the fuzzer's crashes.
    pub canary: String,
    /// Pulls, to check that what was stored is still served.
    pub reader: String,
    pub cursor: u64,
    /// The live response of `push_changes` and how many inputs went onto it.
    base: Option<(Uuid, u32)>,
    next: usize,
    pub tally: Tally,
}

impl Target {
    pub fn new(survey: Uuid, callers: Vec<String>, canary: String, reader: String) -> Target {
        assert!(!callers.is_empty(), "at least one caller");
        Target {
            survey,
            callers,
            canary,
            reader,
            cursor: 0,
            base: None,
            next: 0,
            tally: Tally::default(),
        }
    }

    /// The `push_path` property: `body` (with the placeholder survey replaced) as a push.
    pub async fn push_body(&mut self, state: &AppState, body: &[u8]) -> Result<PushClass, String> {
        let body = ft::with_survey(body, self.survey);
        self.push(state, body).await
    }

    /// The `push_changes` property: `bytes` as the changes of one well-formed push onto a
    /// live response, one that was pushed whole and reads; it must still read afterwards,
    /// whatever the changes were (a change that would break it is refused when it is checked).
    /// A new live response is started every [`BASE_USES`] inputs, so none grows without end.
    pub async fn push_changes(
        &mut self,
        state: &AppState,
        bytes: &[u8],
    ) -> Result<PushClass, String> {
        let base = self.base(state).await?;
        let body = ft::structured_push(bytes, base, self.survey, 1)
            .to_cbor()
            .map_err(|e| e.to_string())?;
        let class = self.push(state, body).await?;
        let (status, body) = self.read_back(state, base).await?;
        if status != 200 {
            return Err(format!(
                "response {base} read before these changes were pushed onto it, and now answers \
                 {status}: {}",
                String::from_utf8_lossy(&body)
            ));
        }
        Ok(class)
    }

    /// The live response `push_changes` inputs go onto: a real one, pushed by the canary caller.
    async fn base(&mut self, state: &AppState) -> Result<Uuid, String> {
        match self.base {
            Some((id, uses)) if uses < BASE_USES => {
                self.base = Some((id, uses + 1));
                Ok(id)
            }
            _ => {
                let id = self.canary_push(state).await?;
                self.base = Some((id, 1));
                Ok(id)
            }
        }
    }

    async fn push(&mut self, state: &AppState, body: Vec<u8>) -> Result<PushClass, String> {
        self.tally.inputs += 1;
        let mut switched = 0;
        let (status, reply) = loop {
            let token = self.callers[self.next].clone();
            let (status, reply) = send(
                state,
                "POST",
                "/v1/sync/push",
                Some(&token),
                Some("application/cbor"),
                body.clone(),
            )
            .await;
            if status == 429 && switched < self.callers.len() {
                self.next = (self.next + 1) % self.callers.len();
                self.tally.caller_switches += 1;
                switched += 1;
                continue;
            }
            break (status, reply);
        };
        *self.tally.statuses.entry(status).or_default() += 1;
        let class = ft::check_push_reply(&body, status, &reply)?;
        if let PushClass::Stored { new, .. } = class {
            self.tally.stored += u64::from(new);
            // What was stored is checked in the sandbox, then read back: neither may fail.
            let req = fieldsync_protocol::wire::PushRequest::from_cbor(
                &body,
                &Limits {
                    max_bytes: body.len().max(Limits::PUSH.max_bytes),
                    ..Limits::PUSH
                },
            )
            .map_err(|e| e.to_string())?;
            if new > 0 {
                drain(state).await?;
            }
            for doc in req.docs.iter().take(4) {
                self.read_back(state, doc.doc_id).await?;
            }
        }
        Ok(class)
    }

    /// `GET /v1/responses/{id}` after materialising: shown, not found (refused or another
    /// survey), unreadable (422) or not ready (503), never a 500. (status, body)
    async fn read_back(&mut self, state: &AppState, id: Uuid) -> Result<(u16, Vec<u8>), String> {
        let (status, body) = send(
            state,
            "GET",
            &format!("/v1/responses/{id}"),
            Some(&self.canary),
            None,
            Vec::new(),
        )
        .await;
        *self.tally.reads.entry(status).or_default() += 1;
        match status {
            200 | 404 | 422 | 503 => Ok((status, body)),
            _ => Err(format!(
                "reading back pushed document {id} answered {status}: {}",
                String::from_utf8_lossy(&body)
            )),
        }
    }

    /// Push a fresh real response as the canary caller, materialise it and read it: it must
    /// be stored whole and shown. Its id.
    async fn canary_push(&mut self, state: &AppState) -> Result<Uuid, String> {
        let doc = ft::canary_response(Uuid::new_v4(), self.survey, 1, now_ms());
        let body = fieldsync_protocol::wire::PushRequest {
            protocol: fieldsync_protocol::wire::PROTOCOL_VERSION,
            docs: vec![doc.clone()],
        }
        .to_cbor()
        .map_err(|e| e.to_string())?;
        let (status, reply) = send(
            state,
            "POST",
            "/v1/sync/push",
            Some(&self.canary),
            Some("application/cbor"),
            body,
        )
        .await;
        ft::check_canary_reply(&doc, status, &reply)?;
        drain(state).await?;
        let (shown, body) = self.read_back(state, doc.doc_id).await?;
        if shown != 200 {
            return Err(format!(
                "a known-good response reads as {shown}, not 200: {}",
                String::from_utf8_lossy(&body)
            ));
        }
        Ok(doc.doc_id)
    }

    /// The known-good push: a fresh real response must still be stored, materialised and
    /// shown, and a pull from where the last one ended must still answer.
    pub async fn canary(&mut self, state: &AppState) -> Result<(), String> {
        self.canary_push(state).await?;
        loop {
            let pull = PullRequest {
                protocol: fieldsync_protocol::wire::PROTOCOL_VERSION,
                cursor: self.cursor,
                limit: 1000,
                known_surveys: Vec::new(),
                epoch: None,
            };
            let (status, reply) = send(
                state,
                "POST",
                "/v1/sync/pull",
                Some(&self.reader),
                Some("application/cbor"),
                pull.to_cbor().map_err(|e| e.to_string())?,
            )
            .await;
            if status != 200 {
                return Err(format!(
                    "a pull after the fuzzed pushes answered {status}: {}",
                    String::from_utf8_lossy(&reply)
                ));
            }
            let page = PullResponse::from_cbor(&reply, &Limits::SYNC)
                .map_err(|e| format!("a pull answer does not decode: {e}"))?;
            self.cursor = page.cursor;
            if !page.more {
                return Ok(());
            }
        }
    }
}

/// Inputs of `push_changes` that go onto one live response before a new one is started.
pub const BASE_USES: u32 = 50;

/// Run the materialiser until nothing is queued (a few rounds at most).
pub async fn drain(state: &AppState) -> Result<(), String> {
    for _ in 0..8 {
        let n = fieldsync_server::materialize::drain_once(state)
            .await
            .map_err(|e| format!("the materialiser failed: {e}"))?;
        if n == 0 {
            return Ok(());
        }
    }
    Ok(())
}

/// Log in with a one-time token: the session token.
pub async fn login(state: &AppState, one_time: &str) -> String {
    let body = serde_json::json!({ "token": one_time }).to_string();
    let (status, reply) = send(
        state,
        "POST",
        "/v1/login",
        None,
        Some("application/json"),
        body.into_bytes(),
    )
    .await;
    assert_eq!(status, 200, "login: {}", String::from_utf8_lossy(&reply));
    let grant: fieldsync_protocol::api::SessionGrant =
        serde_json::from_slice(&reply).unwrap_or_else(|e| panic!("login answer: {e}"));
    grant.token
}

/// A fresh data directory with one organisation, the household survey published, and
/// `callers` coordinators: what the fuzz targets push into. Used by the fuzz targets only (the
/// replay test builds the same with its `Harness`).
pub async fn setup(state: &AppState, region: &str, callers: usize) -> Target {
    let created = fieldsync_server::service::orgs::create(&state.db, &state.keys, "Fuzz", region)
        .await
        .unwrap_or_else(|e| panic!("create org: {e}"));
    let admin = login(state, &created.admin_token).await;
    let definition = include_str!("../../fixtures/surveys/household-v1.json");
    let (status, reply) = send(
        state,
        "POST",
        "/v1/surveys",
        Some(&admin),
        Some("application/json"),
        definition.as_bytes().to_vec(),
    )
    .await;
    assert_eq!(status, 201, "publish: {}", String::from_utf8_lossy(&reply));
    let published: fieldsync_protocol::api::Published =
        serde_json::from_slice(&reply).unwrap_or_else(|e| panic!("publish answer: {e}"));
    let mut tokens = Vec::new();
    for i in 0..callers + 1 {
        let body = serde_json::json!({ "name": format!("Fuzz {i}"), "role": "coordinator" });
        let (status, reply) = send(
            state,
            "POST",
            "/v1/members",
            Some(&admin),
            Some("application/json"),
            body.to_string().into_bytes(),
        )
        .await;
        assert_eq!(status, 201, "member: {}", String::from_utf8_lossy(&reply));
        let member: fieldsync_protocol::api::CreatedMember =
            serde_json::from_slice(&reply).unwrap_or_else(|e| panic!("member answer: {e}"));
        tokens.push(login(state, &member.one_time_secret).await);
    }
    let reader = tokens.pop().unwrap_or_else(|| admin.clone());
    Target::new(published.survey_id, tokens, admin, reader)
}
