//! The scenarios: each measures one path and returns a result row (figures as rates, ratios and
//! bytes) plus correctness checks that must hold at any size.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::bail;
use fieldsync_client::client::{ApiClient, ClientError};
use fieldsync_client::engine::{self, Transport};
use fieldsync_client::store::{Account, Store};
use fieldsync_protocol::api::{
    CreatedMember, EnrollRequest, LoginRequest, NewEnumerator, Published, ResponsePage,
    SessionGrant,
};
use fieldsync_protocol::document::Status;
use fieldsync_protocol::media::{MediaChunk, MediaOffer, MediaStatus};
use fieldsync_protocol::wire::{Message, PullRequest, PullResponse, PushRequest, PushResponse};
use fieldsync_protocol::{Answer, Answers};
use serde_json::Value;
use uuid::Uuid;

use crate::Args;
use crate::server::{
    Server, create_org, dir_bytes, fresh_postgres, postgres_bytes, reset_own_peak, vm_hwm,
};

pub(crate) const PASSPHRASE: &str = "bench passphrase for fieldsync";
const SURVEY: &str = include_str!("../../fixtures/surveys/household-v1.json");

/// One scenario's figures.
pub(crate) struct Row {
    scenario: &'static str,
    size: usize,
    figures: serde_json::Map<String, Value>,
}

impl Row {
    pub(crate) fn new(scenario: &'static str, size: usize) -> Row {
        Row {
            scenario,
            size,
            figures: serde_json::Map::new(),
        }
    }

    pub(crate) fn set(&mut self, key: &str, value: impl Into<Value>) -> &mut Self {
        self.figures.insert(key.to_owned(), value.into());
        self
    }

    fn print(&self) {
        let mut obj = serde_json::Map::new();
        obj.insert("scenario".into(), self.scenario.into());
        obj.insert("size".into(), self.size.into());
        obj.extend(self.figures.clone());
        println!("{}", Value::Object(obj));
    }
}

pub(crate) fn per_sec(count: usize, elapsed: Duration) -> f64 {
    round(count as f64 / elapsed.as_secs_f64().max(1e-9))
}

pub(crate) fn round(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// A transport that counts bytes on the wire and times each request.
pub(crate) struct Counting<'a> {
    client: &'a ApiClient,
    pub(crate) up: AtomicU64,
    down: AtomicU64,
    pub(crate) requests: AtomicU64,
    pub(crate) latencies: Mutex<Vec<Duration>>,
}

impl<'a> Counting<'a> {
    pub(crate) fn new(client: &'a ApiClient) -> Self {
        Counting {
            client,
            up: AtomicU64::new(0),
            down: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            latencies: Mutex::new(Vec::new()),
        }
    }

    fn count<Req: Message, Resp: Message>(
        &self,
        req: &Req,
        call: impl FnOnce() -> Result<Resp, ClientError>,
    ) -> Result<Resp, ClientError> {
        // Encoding is deterministic, so re-encoding gives exactly the bytes that were sent.
        let up = req.to_cbor().map(|b| b.len() as u64).unwrap_or(0);
        self.up.fetch_add(up, Ordering::Relaxed);
        let start = Instant::now();
        let resp = call()?;
        if let Ok(mut l) = self.latencies.lock() {
            l.push(start.elapsed());
        }
        self.requests.fetch_add(1, Ordering::Relaxed);
        let down = resp.to_cbor().map(|b| b.len() as u64).unwrap_or(0);
        self.down.fetch_add(down, Ordering::Relaxed);
        Ok(resp)
    }
}

impl Transport for Counting<'_> {
    fn push(&self, req: &PushRequest) -> Result<PushResponse, ClientError> {
        self.count(req, || self.client.push(req))
    }

    fn pull(&self, req: &PullRequest) -> Result<PullResponse, ClientError> {
        self.count(req, || self.client.pull(req))
    }

    fn offer_media(&self, req: &MediaOffer) -> Result<MediaStatus, ClientError> {
        self.count(req, || self.client.offer_media(req))
    }

    fn send_chunk(&self, req: &MediaChunk) -> Result<MediaStatus, ClientError> {
        self.count(req, || self.client.send_chunk(req))
    }
}

/// The organisation every scenario works in, on one or more server instances.
pub(crate) struct Org {
    /// The first instance: publishing, the device of the push scenario.
    server: Server,
    /// Every instance (the first one again first).
    pub(crate) urls: Vec<String>,
    others: Vec<Server>,
    /// The PostgreSQL database, when the run is on one.
    database: Option<String>,
    pub(crate) admin: ApiClient,
    pub(crate) admin_grant: SessionGrant,
    pub(crate) survey: Published,
    pub(crate) root: tempfile::TempDir,
}

fn setup(args: &Args) -> anyhow::Result<Org> {
    let root = tempfile::tempdir()?;
    let data = root.path().join("server");
    let database = args.postgres.as_deref().map(fresh_postgres).transpose()?;
    let mut flags = Vec::new();
    if let Some(url) = &database {
        // Every instance on one database shares one master key.
        flags.extend([
            "--database".to_owned(),
            url.clone(),
            "--master-key".to_owned(),
            root.path().join("master.key").display().to_string(),
        ]);
    }
    let token = create_org(&data, &flags)?;
    let server = Server::start(&data, &flags)?;
    let others = (1..args.instances)
        .map(|i| Server::start(&root.path().join(format!("server-{i}")), &flags))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let urls = std::iter::once(server.url.clone())
        .chain(others.iter().map(|s| s.url.clone()))
        .collect();
    let anon = ApiClient::new(&server.url, None)?;
    let grant: SessionGrant = anon.send_json(
        reqwest::Method::POST,
        "/v1/login",
        &LoginRequest {
            token,
            client_name: Some("bench".into()),
            attempt: None,
        },
    )?;
    let admin = ApiClient::new(&server.url, Some(grant.token.clone()))?;
    let survey: Published = admin.post_text("/v1/surveys", SURVEY.to_owned())?;
    Ok(Org {
        server,
        urls,
        others,
        database,
        admin,
        admin_grant: grant,
        survey,
        root,
    })
}

impl Org {
    /// The largest peak memory of any instance, and of any of their workers.
    pub(crate) fn peak_memory(&self) -> (u64, u64) {
        std::iter::once(&self.server)
            .chain(&self.others)
            .map(Server::peak_memory)
            .fold((0, 0), |(a, b), (x, y)| (a.max(x), b.max(y)))
    }
}

pub(crate) fn account(url: &str, g: &SessionGrant) -> Account {
    Account {
        server: url.to_owned(),
        token: g.token.clone(),
        org_id: g.org_id,
        org_name: g.org_name.clone(),
        principal_id: g.principal_id,
        name: g.name.clone(),
        role: g.role,
    }
}

/// An enrolled device with the survey, in its own client home, syncing with instance `at`
/// (modulo the instances).
pub(crate) fn new_device(org: &Org, name: &str, at: usize) -> anyhow::Result<(Store, ApiClient)> {
    let url = &org.urls[at % org.urls.len()];
    let created: CreatedMember = org.admin.send_json(
        reqwest::Method::POST,
        "/v1/enumerators",
        &NewEnumerator {
            name: name.to_owned(),
            surveys: vec![org.survey.survey_id],
        },
    )?;
    let anon = ApiClient::new(url, None)?;
    let grant: SessionGrant = anon.send_json(
        reqwest::Method::POST,
        "/v1/enroll",
        &EnrollRequest {
            code: created.one_time_secret,
            device_name: Some(name.to_owned()),
            attempt: None,
        },
    )?;
    let mut store = Store::create(&org.root.path().join(format!("home-{name}")), PASSPHRASE)?;
    store.set_account(account(url, &grant))?;
    let client = ApiClient::new(url, Some(grant.token))?;
    engine::sync(&mut store, &client, &mut |_| {})?;
    Ok((store, client))
}

/// A valid 26-answer household response; text answers vary with `i`.
fn answers(i: usize) -> Answers {
    let mut a = Answers::new();
    let text = |s: String| Answer::Text(s);
    a.insert(
        "enumerator_name".into(),
        text(format!("Enumerator {}", i % 97)),
    );
    a.insert(
        "interview_start".into(),
        text("2024-06-14T09:12:00+03:00".into()),
    );
    a.insert("interview_mode".into(), text("in_person".into()));
    a.insert(
        "location".into(),
        text(format!("-1.{:04} 36.8219 1795 6.5", i % 10_000)),
    );
    a.insert("consent".into(), text("yes".into()));
    a.insert("head_name".into(), text(format!("Respondent number {i}")));
    a.insert(
        "head_sex".into(),
        text(
            if i.is_multiple_of(2) {
                "male"
            } else {
                "female"
            }
            .into(),
        ),
    );
    a.insert("head_dob".into(), text("1975-03-02".into()));
    a.insert("head_age".into(), Answer::Integer(49));
    a.insert("phone".into(), text(format!("07{:08}", i % 100_000_000)));
    a.insert("head_marital".into(), text("married".into()));
    a.insert("head_education".into(), text("secondary".into()));
    a.insert("hh_size".into(), Answer::Integer(6));
    a.insert("children_under5".into(), Answer::Integer(1));
    a.insert("children_school".into(), Answer::Integer(3));
    a.insert("languages".into(), text("swahili english".into()));
    a.insert("dwelling_type".into(), text("house".into()));
    a.insert("dwelling_tenure".into(), text("rented".into()));
    a.insert(
        "monthly_rent".into(),
        Answer::Decimal(4500.0 + (i % 100) as f64),
    );
    a.insert("rooms".into(), Answer::Integer(2));
    a.insert("water_source".into(), text("public_tap".into()));
    a.insert("water_minutes".into(), Answer::Decimal(25.5));
    a.insert("assets".into(), text("radio mobile_phone bicycle".into()));
    a.insert(
        "monthly_income".into(),
        Answer::Integer(18_000 + i as i64 % 1000),
    );
    a.insert("received_aid".into(), text("no".into()));
    a.insert(
        "comments".into(),
        text(format!("Interview {i}: respondent was friendly.")),
    );
    a
}

/// Collect `n` responses through the path `fieldsync import` takes: rows built on every core,
/// 1000 per transaction.
pub(crate) fn import(store: &mut Store, survey: &str, n: usize) -> anyhow::Result<()> {
    let mut batch = store.create_batch(survey, None)?;
    let version = store.survey_version(&batch.survey_id(), batch.version())?;
    for start in (0..n).step_by(1000) {
        let rows: Vec<Answers> = (start..n.min(start + 1000)).map(answers).collect();
        let built = batch.prepare_all(&version, &rows, Status::Submitted, |a| Some((a, None)))?;
        for (i, b) in built.into_iter().enumerate() {
            match b {
                Some(Ok(p)) => batch.push(p),
                other => bail!("generated response {} is invalid: {other:?}", start + i),
            }
        }
        batch.commit(store)?;
    }
    Ok(())
}

/// Wait until the server has materialised everything pushed (bounded).
pub(crate) fn wait_materialised(org: &Org, expect_at_least: usize) -> anyhow::Result<Duration> {
    let start = Instant::now();
    loop {
        let page: ResponsePage = org.admin.get_json(&format!(
            "/v1/surveys/{}/responses?limit=1",
            org.survey.survey_id
        ))?;
        if page.pending == 0 && !page.items.is_empty() || expect_at_least == 0 {
            return Ok(start.elapsed());
        }
        if start.elapsed() > Duration::from_secs(1800) {
            bail!("the server did not finish materialising within 30 minutes");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub(crate) fn check(ok: &mut bool, cond: bool, what: &str) {
    if !cond {
        eprintln!("CHECK FAILED: {what}");
        *ok = false;
    }
}

/// Run every scenario; returns whether every correctness check held.
pub fn run(args: &Args) -> anyhow::Result<bool> {
    let mut ok = true;
    let mut rows = Vec::new();
    let org = setup(args)?;
    let survey_key = org.survey.survey_id.to_string();
    let n = args.n();

    // collect: one at a time, then the import batch path.
    let (mut device, device_client) = new_device(&org, "main", 0)?;
    let one = args.one_at_a_time();
    let start = Instant::now();
    for i in 0..one {
        device.create_response(&survey_key, None, &answers(i), Status::Submitted)?;
    }
    let one_rate = per_sec(one, start.elapsed());
    let start = Instant::now();
    import(&mut device, &survey_key, n)?;
    let batch_rate = per_sec(n, start.elapsed());
    let mut row = Row::new("collect", n);
    row.set("one_at_a_time_per_sec", one_rate)
        .set("one_at_a_time_count", one)
        .set("import_per_sec", batch_rate);
    rows.push(row);

    // push: everything in the device store.
    let total = n + one;
    let status = device.status_report()?;
    check(
        &mut ok,
        status.pending_responses as usize == total,
        "all collected responses wait in the outbox",
    );
    reset_own_peak();
    let counting = Counting::new(&device_client);
    let start = Instant::now();
    let report = engine::sync(&mut device, &counting, &mut |_| {})?;
    let push_time = start.elapsed();
    let client_peak = vm_hwm(std::process::id()).unwrap_or(0);
    let (server_peak, worker_peak) = org.peak_memory();
    check(
        &mut ok,
        report.pushed_docs as usize == total,
        "every pushed response is acknowledged",
    );
    check(
        &mut ok,
        report.rejected.is_empty(),
        "no response is rejected",
    );
    check(
        &mut ok,
        device.status_report()?.pending_responses == 0,
        "the outbox is empty after push",
    );
    let push_rate = per_sec(total, push_time);
    let push_bytes_per_response = counting.up.load(Ordering::Relaxed) as f64 / total as f64;
    let mut row = Row::new("push", total);
    row.set("responses_per_sec", push_rate)
        .set("seconds", round(push_time.as_secs_f64()))
        .set("requests", counting.requests.load(Ordering::Relaxed))
        .set("bytes_up_per_response", round(push_bytes_per_response))
        .set("client_peak_rss_mib", round(client_peak as f64 / 1048576.0))
        .set("server_peak_rss_mib", round(server_peak as f64 / 1048576.0))
        .set("worker_peak_rss_mib", round(worker_peak as f64 / 1048576.0));
    rows.push(row);

    // materialisation (the background validation right after push).
    let materialise = wait_materialised(&org, total)?;
    let mut row = Row::new("materialise", total);
    row.set("seconds_after_push", round(materialise.as_secs_f64()))
        .set(
            "responses_per_sec_lower_bound",
            per_sec(total, push_time + materialise),
        );
    rows.push(row);

    // pull: a fresh coordinator client pulls everything.
    let mut coordinator = Store::create(&org.root.path().join("home-coordinator"), PASSPHRASE)?;
    // From another instance than the one the device pushed to, when there are several.
    let pull_url = &org.urls[1 % org.urls.len()];
    coordinator.set_account(account(pull_url, &org.admin_grant))?;
    let puller = ApiClient::new(pull_url, Some(org.admin_grant.token.clone()))?;
    reset_own_peak();
    let counting = Counting::new(&puller);
    let start = Instant::now();
    let report = engine::sync(&mut coordinator, &counting, &mut |_| {})?;
    let pull_time = start.elapsed();
    let client_peak = vm_hwm(std::process::id()).unwrap_or(0);
    let local = coordinator.status_report()?.responses as usize;
    check(
        &mut ok,
        local == total,
        "the coordinator pulled every response exactly once",
    );
    let pull_rate = per_sec(report.pulled_docs as usize, pull_time);
    let mut row = Row::new("pull", total);
    row.set("responses_per_sec", pull_rate)
        .set("seconds", round(pull_time.as_secs_f64()))
        .set("pages", report.pages)
        .set(
            "bytes_down_per_response",
            round(counting.down.load(Ordering::Relaxed) as f64 / total as f64),
        )
        .set("client_peak_rss_mib", round(client_peak as f64 / 1048576.0));
    rows.push(row);

    // no-op sync: both sides hold everything.
    let counting = Counting::new(&puller);
    let start = Instant::now();
    let report = engine::sync(&mut coordinator, &counting, &mut |_| {})?;
    let noop = start.elapsed();
    check(
        &mut ok,
        report.pulled_docs == 0 && report.pushed_docs == 0,
        "a no-op sync moves nothing",
    );
    let mut row = Row::new("noop_sync", total);
    row.set("ms", round(noop.as_secs_f64() * 1000.0))
        .set("round_trips", counting.requests.load(Ordering::Relaxed))
        .set(
            "bytes",
            counting.up.load(Ordering::Relaxed) + counting.down.load(Ordering::Relaxed),
        );
    rows.push(row);

    // at rest: bytes per response on both sides versus the plain JSON of the answers.
    let json_bytes: usize = (0..total)
        .map(|i| {
            serde_json::to_vec(&answers(i))
                .map(|v| v.len())
                .unwrap_or(0)
        })
        .sum();
    let device_home = org.root.path().join("home-main");
    let mut row = Row::new("at_rest", total);
    row.set(
        "plain_json_bytes_per_response",
        round(json_bytes as f64 / total as f64),
    )
    .set(
        "client_bytes_per_response",
        round(dir_bytes(&device_home) as f64 / total as f64),
    )
    .set(
        "coordinator_client_bytes_per_response",
        round(dir_bytes(&org.root.path().join("home-coordinator")) as f64 / total as f64),
    )
    .set(
        "server_bytes_per_response",
        round(
            match &org.database {
                Some(url) => postgres_bytes(url)?,
                None => org.server.disk_bytes(),
            } as f64
                / total as f64,
        ),
    );
    rows.push(row);

    // baseline: the raw cost of inserting the same payload bytes into SQLite.
    // The same payload size as one pushed response on the wire (its change plus framing).
    let payload = (push_bytes_per_response as usize).max(64);
    let baseline_rate = sqlite_baseline(org.root.path(), total, payload)?;
    let mut row = Row::new("baseline", total);
    row.set("payload_bytes", payload)
        .set("sqlite_rows_per_sec", baseline_rate)
        .set(
            "push_fraction_of_ceiling",
            round(push_rate / baseline_rate.max(1.0) * 1000.0) / 1000.0,
        );
    rows.push(row);

    if !args.skip_devices {
        rows.push(crate::devices::many_devices(
            &org,
            args,
            &mut ok,
            &mut coordinator,
            total,
        )?);
    }
    if !args.skip_media {
        rows.push(crate::media::attachments(&org, args, &mut ok)?);
    }
    if args.peer.is_some() {
        let ours = crate::peer::Ours {
            import_per_sec: batch_rate,
            push_per_sec: push_rate,
            pull_per_sec: pull_rate,
            noop_ms: noop.as_secs_f64() * 1000.0,
        };
        let run = crate::peer::run(
            &org.root.path().join("peer"),
            (0..total).map(|i| serde_json::to_value(answers(i)).unwrap_or_default()),
        )?;
        rows.extend(crate::peer::rows(&run, &ours, &mut ok));
    }

    let backend = if org.database.is_some() {
        "postgres"
    } else {
        "sqlite"
    };
    for r in &mut rows {
        r.set("backend", backend).set("instances", org.urls.len());
    }
    for r in &rows {
        r.print();
    }
    print_table(&rows);
    Ok(ok)
}

fn sqlite_baseline(dir: &Path, rows: usize, payload: usize) -> anyhow::Result<f64> {
    let path = dir.join("baseline.sqlite");
    let mut conn = rusqlite::Connection::open(&path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute_batch(
        "CREATE TABLE changes (seq INTEGER PRIMARY KEY, doc_id TEXT NOT NULL, hash BLOB NOT NULL, payload BLOB NOT NULL, UNIQUE (doc_id, hash))",
    )?;
    let blob = vec![0xa5u8; payload];
    let start = Instant::now();
    let mut i = 0;
    while i < rows {
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO changes (doc_id, hash, payload) VALUES (?1, ?2, ?3)",
            )?;
            for _ in 0..1000.min(rows - i) {
                // Time-ordered ids, as the client generates them.
                let id = Uuid::now_v7();
                stmt.execute(rusqlite::params![id.to_string(), &id.as_bytes()[..], &blob])?;
                i += 1;
            }
        }
        tx.commit()?;
    }
    Ok(per_sec(rows, start.elapsed()))
}

fn print_table(rows: &[Row]) {
    eprintln!();
    eprintln!("{:<14} {:>8}  figures", "scenario", "size");
    for r in rows {
        let figures = r
            .figures
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("  ");
        eprintln!("{:<14} {:>8}  {}", r.scenario, r.size, figures);
    }
}
