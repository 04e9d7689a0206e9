//! Shared harnesses: an in-process router over a fresh data directory (no socket), a real
//! `fieldsync-server` process on port 0, organisations with one caller of every role, and
//! real Automerge responses to push.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use fieldsync_protocol::Answer;
use fieldsync_protocol::api::{
    CreatedMember, NewEnumerator, NewMember, Published, Role, SessionGrant,
};
use fieldsync_protocol::cbor::Limits;
use fieldsync_protocol::document::{NewResponse, ResponseDoc};
use fieldsync_protocol::wire::{
    DocChanges, DocKind, ErrorBody, Message, PROTOCOL_VERSION, PullRequest, PullResponse,
    PushRequest, PushResponse,
};
use fieldsync_server::service::orgs;
use fieldsync_server::settings::Settings;
use fieldsync_server::storage::Database;
use fieldsync_server::worker::WorkerLimits;
use fieldsync_server::{AppState, StateConfig};
use http_body_util::BodyExt;
use serde_bytes::ByteBuf;
use tower::ServiceExt;
use uuid::Uuid;

pub const REGION: &str = "eu-central";
pub const BIN: &str = env!("CARGO_BIN_EXE_fieldsync-server");

/// A fixture file's text.
pub fn fixture(rel: &str) -> String {
    let path = format!("{}/../fixtures/{rel}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

/// The household v1 definition with its form id and title replaced, so that one
/// organisation's survey can be told apart from another's in a response body.
pub fn household_v1_as(form_id: &str, title: &str) -> String {
    let mut def: serde_json::Value =
        serde_json::from_str(&fixture("surveys/household-v1.json")).expect("fixture is JSON");
    def["settings"]["form_id"] = form_id.into();
    def["settings"]["form_title"] = title.into();
    def.to_string()
}

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    fieldsync_server::storage::now_ms()
}

/// A status and body of one answered request.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Vec<u8>,
    /// The Content-Type header, if any.
    pub content_type: Option<String>,
}

impl Reply {
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> T {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "{} body is not the expected JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn cbor<T: Message>(&self) -> T {
        T::from_cbor(&self.body, &Limits::SYNC)
            .unwrap_or_else(|e| panic!("{} body is not the expected CBOR: {e}", self.status))
    }

    /// The error body, JSON or CBOR.
    pub fn error(&self) -> ErrorBody {
        serde_json::from_slice(&self.body)
            .ok()
            .or_else(|| ErrorBody::from_cbor(&self.body, &Limits::SYNC).ok())
            .unwrap_or_else(|| {
                panic!(
                    "{} body is not an error body: {}",
                    self.status,
                    String::from_utf8_lossy(&self.body)
                )
            })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// How to send one request (to the router or over HTTP).
#[derive(Debug, Clone)]
pub struct Req {
    pub method: &'static str,
    pub path: String,
    pub token: Option<String>,
    pub org_header: Option<String>,
    pub content_type: Option<&'static str>,
    pub body: Vec<u8>,
}

impl Req {
    pub fn new(method: &'static str, path: impl Into<String>) -> Req {
        Req {
            method,
            path: path.into(),
            token: None,
            org_header: None,
            content_type: None,
            body: Vec::new(),
        }
    }

    pub fn get(path: impl Into<String>) -> Req {
        Req::new("GET", path)
    }

    pub fn post(path: impl Into<String>) -> Req {
        Req::new("POST", path)
    }

    pub fn put(path: impl Into<String>) -> Req {
        Req::new("PUT", path)
    }

    pub fn token(mut self, token: &str) -> Req {
        self.token = Some(token.to_owned());
        self
    }

    pub fn maybe_token(mut self, token: Option<&str>) -> Req {
        self.token = token.map(str::to_owned);
        self
    }

    pub fn org(mut self, org: Option<&str>) -> Req {
        self.org_header = org.map(str::to_owned);
        self
    }

    pub fn json(mut self, value: &serde_json::Value) -> Req {
        self.content_type = Some("application/json");
        self.body = value.to_string().into_bytes();
        self
    }

    pub fn raw(mut self, content_type: &'static str, body: Vec<u8>) -> Req {
        self.content_type = Some(content_type);
        self.body = body;
        self
    }

    pub fn cbor<T: Message>(self, msg: &T) -> Req {
        self.raw("application/cbor", msg.to_cbor().expect("encodes"))
    }
}

/// The router over a fresh data directory, driven with `oneshot`.
#[derive(Debug)]
pub struct Harness {
    pub dir: tempfile::TempDir,
    pub database: Database,
    pub state: AppState,
    /// Stops the background materialiser when the harness goes.
    _materialiser: StopOnDrop,
}

/// Notifies the background materialiser to stop when dropped.
#[derive(Debug)]
struct StopOnDrop(std::sync::Arc<tokio::sync::Notify>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.notify_one();
    }
}

impl Harness {
    /// A harness with organisation "Acme" that has published the household survey v1.
    pub async fn with_household() -> (Harness, Org, Uuid) {
        Harness::with_household_on(&TestDb::Sqlite).await
    }

    /// The same, on a fresh database of `db`'s kind.
    pub async fn with_household_on(db: &TestDb) -> (Harness, Org, Uuid) {
        let h = Harness::new_on(db).await;
        let org = h.org("Acme").await;
        let survey = h
            .publish(&org.admin, &fixture("surveys/household-v1.json"))
            .await
            .survey_id;
        (h, org, survey)
    }

    /// On the embedded SQLite.
    pub async fn new() -> Harness {
        Harness::on(&TestDb::Sqlite, Settings::for_region(REGION)).await
    }

    pub async fn with_settings(settings: Settings) -> Harness {
        Harness::on(&TestDb::Sqlite, settings).await
    }

    /// On a fresh database of `db`'s kind, with the default settings.
    pub async fn new_on(db: &TestDb) -> Harness {
        Harness::on(db, Settings::for_region(REGION)).await
    }

    /// On a fresh database of `db`'s kind.
    pub async fn on(db: &TestDb, settings: Settings) -> Harness {
        Harness::open(db, settings, true).await
    }

    /// On SQLite, without the background materialiser: the caller drains it itself.
    pub async fn without_materialiser() -> Harness {
        Harness::open(&TestDb::Sqlite, Settings::for_region(REGION), false).await
    }

    async fn open(db: &TestDb, settings: Settings, materialise: bool) -> Harness {
        let dir = tempfile::tempdir().expect("tempdir");
        let database = db.fresh(dir.path()).await;
        let state = AppState::open(StateConfig {
            database: database.clone(),
            master_key: dir.path().join("master.key"),
            worker_exe: PathBuf::from(BIN),
            worker_limits: WorkerLimits {
                memory_bytes: 512 * 1024 * 1024,
                ..WorkerLimits::default()
            },
            settings,
        })
        .await
        .expect("open state");
        // As in the real server, the materialiser runs beside the router: pulls relay only
        // what it has checked.
        let stop = std::sync::Arc::new(tokio::sync::Notify::new());
        if materialise {
            tokio::spawn(fieldsync_server::materialize::run(
                state.clone(),
                stop.clone(),
            ));
        }
        Harness {
            dir,
            database,
            state,
            _materialiser: StopOnDrop(stop),
        }
    }

    pub async fn send(&self, req: Req) -> Reply {
        let mut builder = Request::builder().method(req.method).uri(&req.path);
        if let Some(t) = &req.token {
            builder = builder.header("authorization", format!("Bearer {t}"));
        }
        if let Some(o) = &req.org_header {
            builder = builder.header("x-fieldsync-org", o);
        }
        if let Some(ct) = req.content_type {
            builder = builder.header("content-type", ct);
        }
        let request = builder.body(Body::from(req.body)).expect("request");
        let response = fieldsync_server::router(self.state.clone())
            .oneshot(request)
            .await
            .expect("router is infallible");
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes()
            .to_vec();
        Reply {
            status,
            body,
            content_type,
        }
    }

    /// Create an organisation with a caller of every role (and a support agent).
    pub async fn org(&self, name: &str) -> Org {
        let created = orgs::create(&self.state.db, &self.state.keys, name, REGION)
            .await
            .expect("create org");
        let admin = self.login(&created.admin_token).await.token;
        let mut org = Org {
            id: created.org_id,
            name: name.to_owned(),
            admin_id: created.admin_id,
            admin,
            coordinator: String::new(),
            coordinator_id: String::new(),
            ops: String::new(),
            enumerator: String::new(),
            enumerator_id: String::new(),
        };
        let (id, token) = self.member(&org, Role::Coordinator, "Coordinator").await;
        (org.coordinator_id, org.coordinator) = (id, token);
        org.ops = self.member(&org, Role::Ops, "Ops").await.1;
        let (id, token) = self.enumerator(&org, "Enumerator", &[]).await;
        (org.enumerator_id, org.enumerator) = (id, token);
        org
    }

    pub async fn login(&self, one_time: &str) -> SessionGrant {
        let r = self
            .send(Req::post("/v1/login").json(&serde_json::json!({ "token": one_time })))
            .await;
        assert_eq!(r.status, StatusCode::OK, "login: {}", r.text());
        r.json()
    }

    /// A new member with a live session: (id, session token).
    pub async fn member(&self, org: &Org, role: Role, name: &str) -> (String, String) {
        let r = self
            .send(
                Req::post("/v1/members").token(&org.admin).json(
                    &serde_json::to_value(NewMember {
                        name: name.into(),
                        role,
                    })
                    .expect("json"),
                ),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "create member: {}", r.text());
        let created: CreatedMember = r.json();
        let grant = self.login(&created.one_time_secret).await;
        (created.id.to_string(), grant.token)
    }

    /// A new enrolled enumerator device: (id, device token).
    pub async fn enumerator(&self, org: &Org, name: &str, surveys: &[Uuid]) -> (String, String) {
        let r = self
            .send(
                Req::post("/v1/enumerators").token(&org.admin).json(
                    &serde_json::to_value(NewEnumerator {
                        name: name.into(),
                        surveys: surveys.to_vec(),
                    })
                    .expect("json"),
                ),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::CREATED,
            "create enumerator: {}",
            r.text()
        );
        let created: CreatedMember = r.json();
        let r = self
            .send(
                Req::post("/v1/enroll")
                    .json(&serde_json::json!({ "code": created.one_time_secret })),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "enroll: {}", r.text());
        let grant: SessionGrant = r.json();
        (created.id.to_string(), grant.token)
    }

    /// A support agent with a live session token.
    pub async fn support(&self, name: &str) -> (String, String) {
        let (id, one_time) = orgs::create_support(&self.state.db, name)
            .await
            .expect("support");
        (id, self.login(&one_time).await.token)
    }

    pub async fn publish(&self, token: &str, definition: &str) -> Published {
        let r = self
            .send(
                Req::post("/v1/surveys")
                    .token(token)
                    .raw("application/json", definition.as_bytes().to_vec()),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "publish: {}", r.text());
        r.json()
    }

    pub async fn assign(&self, token: &str, survey: Uuid, enumerator_id: &str) {
        let r = self
            .send(
                Req::post(format!("/v1/surveys/{survey}/assignments"))
                    .token(token)
                    .json(&serde_json::json!({ "enumerator_id": enumerator_id })),
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "assign: {}", r.text());
    }

    pub async fn push(&self, token: &str, docs: Vec<DocChanges>) -> Reply {
        self.send(
            Req::post("/v1/sync/push")
                .token(token)
                .cbor(&push_request(docs)),
        )
        .await
    }

    /// Push and insist on success.
    pub async fn push_ok(&self, token: &str, docs: Vec<DocChanges>) -> PushResponse {
        let r = self.push(token, docs).await;
        assert_eq!(r.status, StatusCode::OK, "push: {:?}", r.error());
        r.cbor()
    }

    /// Pull every page from cursor 0.
    pub async fn pull_all(&self, token: &str) -> Vec<DocChanges> {
        self.pull_pages(token)
            .await
            .into_iter()
            .flat_map(|p| p.docs)
            .collect()
    }

    /// Every page from cursor 0, whole (refusal notices included).
    pub async fn pull_pages(&self, token: &str) -> Vec<PullResponse> {
        let mut cursor = 0;
        let mut pages = Vec::new();
        loop {
            let r = self
                .send(
                    Req::post("/v1/sync/pull")
                        .token(token)
                        .cbor(&pull_request(cursor, 1000)),
                )
                .await;
            assert_eq!(r.status, StatusCode::OK, "pull: {:?}", r.error());
            let page: PullResponse = r.cbor();
            cursor = page.cursor;
            let more = page.more;
            pages.push(page);
            if !more {
                return pages;
            }
        }
    }

    /// Run the background materialiser until its queue is empty.
    pub async fn materialize(&self) {
        // Until the queue is empty: a document the background materialiser has claimed is not
        // claimable here (on PostgreSQL, where claims are leases), so wait for it to settle.
        let started = std::time::Instant::now();
        while started.elapsed() < Duration::from_secs(60) {
            let n = fieldsync_server::materialize::drain_once(&self.state)
                .await
                .expect("materialise");
            if n == 0 {
                if self.count("materialize_queue").await == 0 {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        panic!("the materialiser never drained its queue");
    }

    /// How many rows `table` holds, whatever the backend.
    pub async fn count(&self, table: &str) -> i64 {
        let sql = format!("SELECT count(*) FROM {table}");
        match &self.database {
            Database::Sqlite(path) => rusqlite::Connection::open(path)
                .and_then(|c| c.query_row(&sql, [], |r| r.get(0)))
                .expect("count"),
            Database::Postgres(url) => {
                let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                    .await
                    .expect("connect");
                tokio::spawn(connection);
                client.query_one(&sql, &[]).await.expect("count").get(0)
            }
        }
    }

    /// Run a query on the SQLite database file itself.
    pub fn db<T>(&self, f: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T>) -> T {
        let conn =
            rusqlite::Connection::open(self.dir.path().join("fieldsync.sqlite")).expect("open db");
        f(&conn).expect("query")
    }
}

/// An organisation and a session for each of its roles.
#[derive(Debug, Clone)]
pub struct Org {
    pub id: String,
    pub name: String,
    pub admin_id: String,
    pub admin: String,
    pub coordinator_id: String,
    pub coordinator: String,
    pub ops: String,
    pub enumerator_id: String,
    pub enumerator: String,
}

pub fn push_request(docs: Vec<DocChanges>) -> PushRequest {
    PushRequest {
        protocol: PROTOCOL_VERSION,
        docs,
    }
}

pub fn pull_request(cursor: u64, limit: u32) -> PullRequest {
    PullRequest {
        protocol: PROTOCOL_VERSION,
        cursor,
        limit,
        known_surveys: Vec::new(),
        epoch: None,
    }
}

/// A new response on `survey`/`version` with one change per answer page, as a device makes
/// it: the creating change, then each page of answers.
pub fn response(survey: Uuid, version: u32, pages: &[&[(&str, Answer)]]) -> DocChanges {
    response_with(
        Uuid::new_v4(),
        *Uuid::new_v4().as_bytes(),
        now_ms(),
        survey,
        version,
        pages,
    )
}

/// [`response`] with a chosen id, actor and clock, so the same document can be built again
/// byte for byte.
pub fn response_with(
    id: Uuid,
    actor: [u8; 16],
    now: i64,
    survey: Uuid,
    version: u32,
    pages: &[&[(&str, Answer)]],
) -> DocChanges {
    let mut doc = ResponseDoc::new(
        NewResponse {
            response_id: id,
            survey_id: survey,
            survey_version: version,
            author_device: "device:test".into(),
        },
        actor.to_vec(),
        "device:test",
        now,
    )
    .expect("new response");
    for (i, page) in pages.iter().enumerate() {
        doc.set_answers(
            page.iter().map(|(q, a)| (*q, a.clone())),
            now + 1 + i as i64,
        )
        .expect("set answers");
    }
    DocChanges {
        doc_id: id,
        kind: DocKind::Response,
        survey_id: survey,
        survey_version: version,
        changes: doc.all_changes().into_iter().map(ByteBuf::from).collect(),
    }
}

pub fn text(s: &str) -> Answer {
    Answer::Text(s.to_owned())
}

/// Whether `needle` occurs in `hay`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

#[path = "common/contract.rs"]
pub mod contract;
#[path = "common/databases.rs"]
mod databases;
#[path = "common/real.rs"]
mod real;

pub use databases::*;
pub use real::*;
