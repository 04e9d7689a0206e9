//! Several `fieldsync-server` processes on one PostgreSQL database behave as one server:
//! devices push to any instance (as behind a load balancer), coordinators pull from any, the
//! same push sent to two instances at once is stored once, and a pull cursor never skips a
//! change that committed late on another instance. One instance killed with SIGKILL loses
//! nothing it acknowledged, and the others keep serving.
//!
//! These run only when the run has a PostgreSQL server (`common::databases`; always on CI).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use fieldsync_protocol::api::{CreatedMember, SessionGrant};
use fieldsync_protocol::wire::{DocChanges, PullResponse, PushOutcome, PushResponse};
use fieldsync_server::storage::Database;
use uuid::Uuid;

use super::common::*;

const INSTANCES: usize = 3;
const DEVICES: usize = 50;
const BATCHES: usize = 4;
const DOCS_PER_BATCH: usize = 3;

/// A change as the tests track it: its document and its bytes.
type Change = (Uuid, Vec<u8>);

/// A tiny xorshift generator (no dependency); the seed is printed for replays.
struct Rng(u64);

impl Rng {
    fn seeded(salt: u64) -> Rng {
        Rng((u64::from(std::process::id()) << 20
            ^ now_ms() as u64
            ^ salt.wrapping_mul(0x9e37_79b9))
            | 1)
    }

    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// Three servers on one fresh PostgreSQL database, sharing one master key, with an
/// organisation, its admin session and the household survey published.
struct Cluster {
    _dir: tempfile::TempDir,
    servers: Vec<Server>,
    admin: String,
    survey: Uuid,
    /// Each instance's flags, to restart one.
    flags: Vec<String>,
}

fn cluster(url: &str) -> Cluster {
    cluster_with(url, &[])
}

fn cluster_with(url: &str, extra: &[&str]) -> Cluster {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("master.key");
    let flags = vec![
        "--database".to_owned(),
        url.to_owned(),
        "--master-key".to_owned(),
        key.display().to_string(),
    ];
    let flag_refs: Vec<&str> = flags.iter().map(String::as_str).collect();
    let admin_once = create_org_on(&dir.path().join("admin"), &flag_refs);
    let serve_flags: Vec<&str> = flag_refs.iter().chain(extra).copied().collect();
    let servers: Vec<Server> = (0..INSTANCES)
        .map(|i| Server::start(&dir.path().join(format!("instance-{i}")), &serve_flags))
        .collect();
    let client = Server::client();
    let admin = login_http(&servers[1], &client, &admin_once);
    let survey = publish_http(
        &servers[2],
        &client,
        &admin,
        &fixture("surveys/household-v1.json"),
    )
    .survey_id;
    Cluster {
        _dir: dir,
        servers,
        admin,
        survey,
        flags,
    }
}

/// `admin create-org` against the shared database: the admin's one-time token.
fn create_org_on(data: &Path, flags: &[&str]) -> String {
    let out = std::process::Command::new(BIN)
        .args([
            "admin",
            "create-org",
            "--name",
            "Ministry",
            "--quiet",
            "--data",
        ])
        .arg(data)
        .args(flags)
        .output()
        .expect("run admin create-org");
    assert!(
        out.status.success(),
        "create-org: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// An enumerator assigned to the survey, enrolled through `server`: its device token.
fn device(
    server: &Server,
    client: &reqwest::blocking::Client,
    admin: &str,
    survey: Uuid,
    n: usize,
) -> String {
    let r = server.send(
        client,
        Req::post("/v1/enumerators")
            .token(admin)
            .json(&serde_json::json!({ "name": format!("Device {n}"), "surveys": [survey] })),
    );
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "create enumerator: {}",
        r.text()
    );
    let code = r.json::<CreatedMember>().one_time_secret;
    let r = server.send(
        client,
        Req::post("/v1/enroll").json(&serde_json::json!({ "code": code })),
    );
    assert_eq!(r.status, StatusCode::OK, "enroll: {}", r.text());
    r.json::<SessionGrant>().token
}

fn batch(survey: Uuid, device: usize, n: usize) -> Vec<DocChanges> {
    (0..DOCS_PER_BATCH)
        .map(|i| {
            response(
                survey,
                1,
                &[
                    &[(
                        "enumerator_name",
                        text(&format!("device {device} batch {n} doc {i}")),
                    )],
                    &[("head_name", text("Head of household"))],
                ],
            )
        })
        .collect()
}

/// Push `docs` to `url`; the acknowledged changes, or `None` when the instance did not
/// answer (killed, or refusing connections).
fn push(
    client: &reqwest::blocking::Client,
    url: &str,
    token: &str,
    docs: &[DocChanges],
) -> Option<Vec<Change>> {
    let body =
        fieldsync_protocol::wire::Message::to_cbor(&push_request(docs.to_vec())).expect("encodes");
    let r = client
        .post(format!("{url}/v1/sync/push"))
        .bearer_auth(token)
        .header("content-type", "application/cbor")
        .body(body)
        .send()
        .ok()?;
    if r.status().as_u16() == 503 {
        return None;
    }
    assert_eq!(r.status().as_u16(), 200, "push to {url}");
    let reply = Reply {
        status: StatusCode::OK,
        body: r.bytes().ok()?.to_vec(),
        content_type: None,
    };
    let resp: PushResponse = reply.cbor();
    let mut acked = Vec::new();
    for (result, doc) in resp.results.iter().zip(docs) {
        assert_eq!(result.doc_id, doc.doc_id);
        assert!(
            matches!(result.outcome, PushOutcome::Stored { .. }),
            "{:?}",
            result.outcome
        );
        acked.extend(doc.changes.iter().map(|c| (doc.doc_id, c.to_vec())));
    }
    Some(acked)
}

/// A coordinator that pulls from random instances, keeping its cursor across them, and
/// counts how often it received each change.
struct Puller {
    token: String,
    cursor: u64,
    got: BTreeMap<Change, u32>,
}

impl Puller {
    /// One round of pages from `url` until the server says there is no more; false if the
    /// instance did not answer.
    fn pull(&mut self, client: &reqwest::blocking::Client, url: &str) -> bool {
        loop {
            let body = fieldsync_protocol::wire::Message::to_cbor(&pull_request(self.cursor, 500))
                .expect("encodes");
            let Ok(r) = client
                .post(format!("{url}/v1/sync/pull"))
                .bearer_auth(&self.token)
                .header("content-type", "application/cbor")
                .body(body)
                .send()
            else {
                return false;
            };
            if r.status().as_u16() == 503 {
                return false;
            }
            assert_eq!(r.status().as_u16(), 200, "pull from {url}");
            let Ok(bytes) = r.bytes() else { return false };
            let page: PullResponse = Reply {
                status: StatusCode::OK,
                body: bytes.to_vec(),
                content_type: None,
            }
            .cbor();
            for d in page.docs {
                for c in d.changes {
                    *self.got.entry((d.doc_id, c.to_vec())).or_default() += 1;
                }
            }
            self.cursor = page.cursor;
            if !page.more {
                return true;
            }
        }
    }
}

/// Devices push to random live instances, each batch until one instance acknowledges it
/// (as a device retries); some batches go to two instances at once. Every acknowledged
/// change is returned.
fn push_from_devices(
    urls: Arc<Vec<String>>,
    live: Arc<Vec<AtomicBool>>,
    tokens: Vec<String>,
    survey: Uuid,
) -> BTreeSet<Change> {
    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let threads: Vec<_> = tokens
        .into_iter()
        .enumerate()
        .map(|(d, token)| {
            let (urls, live, acked) = (urls.clone(), live.clone(), acked.clone());
            std::thread::spawn(move || {
                let client = Server::client();
                let mut rng = Rng::seeded(d as u64);
                for n in 0..BATCHES {
                    let docs = batch(survey, d, n);
                    if d % 10 == 0 {
                        // The same batch to two instances at once: stored once.
                        let (a, b) = (rng.below(urls.len()), rng.below(urls.len()));
                        let twice: Vec<_> = [a, b]
                            .into_iter()
                            .map(|i| {
                                let (url, token, docs) =
                                    (urls[i].clone(), token.clone(), docs.clone());
                                std::thread::spawn(move || {
                                    push(&Server::client(), &url, &token, &docs)
                                })
                            })
                            .collect();
                        for t in twice {
                            if let Some(got) = t.join().expect("push thread") {
                                acked.lock().expect("acked").extend(got);
                            }
                        }
                    }
                    for attempt in 0.. {
                        assert!(attempt < 200, "device {d}: no instance took batch {n}");
                        let i = rng.below(urls.len());
                        if !live[i].load(Ordering::SeqCst) {
                            continue;
                        }
                        if let Some(got) = push(&client, &urls[i], &token, &docs) {
                            acked.lock().expect("acked").extend(got);
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("device thread");
    }
    Arc::try_unwrap(acked)
        .expect("threads done")
        .into_inner()
        .expect("acked")
}

/// Coordinators pull from random live instances until `done`, then until they hold `want`.
fn pull_during(
    urls: Arc<Vec<String>>,
    live: Arc<Vec<AtomicBool>>,
    tokens: Vec<String>,
    done: Arc<AtomicBool>,
) -> Vec<std::thread::JoinHandle<Puller>> {
    tokens
        .into_iter()
        .enumerate()
        .map(|(p, token)| {
            let (urls, live, done) = (urls.clone(), live.clone(), done.clone());
            std::thread::spawn(move || {
                let client = Server::client();
                let mut rng = Rng::seeded(1000 + p as u64);
                let mut puller = Puller {
                    token,
                    cursor: 0,
                    got: BTreeMap::new(),
                };
                while !done.load(Ordering::SeqCst) {
                    let i = rng.below(urls.len());
                    if live[i].load(Ordering::SeqCst) {
                        puller.pull(&client, &urls[i]);
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                puller
            })
        })
        .collect()
}

/// After the pushes: every acknowledged change is stored exactly once, and every puller
/// (going on from where it was, on random live instances) ends up with every one of them,
/// each received once.
fn check_everything_arrives(
    cluster: &Cluster,
    database: &str,
    acked: &BTreeSet<Change>,
    pullers: Vec<Puller>,
    live: &[AtomicBool],
) {
    let stored = stored_changes(database);
    assert_eq!(
        stored,
        acked.len() as i64,
        "every acknowledged change is stored exactly once"
    );
    let client = Server::client();
    let mut rng = Rng::seeded(7);
    for mut puller in pullers {
        wait_for(Duration::from_secs(120), || {
            let i = rng.below(cluster.servers.len());
            if live[i].load(Ordering::SeqCst) {
                puller.pull(&client, &cluster.servers[i].url);
            }
            let have: BTreeSet<&Change> = puller.got.keys().collect();
            acked.iter().all(|c| have.contains(c)).then_some(())
        });
        let twice: Vec<_> = puller.got.iter().filter(|(_, n)| **n > 1).collect();
        assert!(
            twice.is_empty(),
            "a puller received {} changes more than once",
            twice.len()
        );
        assert_eq!(
            puller.got.len(),
            acked.len(),
            "a puller holds exactly the acknowledged changes"
        );
    }
}

fn stored_changes(database: &str) -> i64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let (client, connection) = tokio_postgres::connect(database, tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(connection);
        client
            .query_one("SELECT count(*) FROM changes", &[])
            .await
            .expect("count")
            .get(0)
    })
}

fn fresh_database() -> Option<String> {
    let base = postgres()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    match rt.block_on(TestDb::Postgres(base).fresh(Path::new("/nonexistent"))) {
        Database::Postgres(url) => Some(url),
        Database::Sqlite(_) => None,
    }
}

/// Three instances, 50 devices pushing to random ones and coordinators pulling from random
/// ones during the pushes: every acknowledged change is stored once and reaches every puller
/// once. A pull cursor that skipped changes committed late on another instance would leave a
/// puller short; one that went back would deliver a change twice.
#[test]
fn three_instances_on_one_database_behave_as_one_server() {
    let Some(database) = fresh_database() else {
        eprintln!("no FIELDSYNC_TEST_POSTGRES: several instances need PostgreSQL; not run here");
        return;
    };
    let c = cluster(&database);
    let client = Server::client();
    let urls: Arc<Vec<String>> = Arc::new(c.servers.iter().map(|s| s.url.clone()).collect());
    let live: Arc<Vec<AtomicBool>> =
        Arc::new((0..INSTANCES).map(|_| AtomicBool::new(true)).collect());
    let tokens: Vec<String> = (0..DEVICES)
        .map(|d| device(&c.servers[d % INSTANCES], &client, &c.admin, c.survey, d))
        .collect();
    let coordinators: Vec<String> = (0..INSTANCES)
        .map(|i| coordinator_http(&c.servers[i], &client, &c.admin))
        .collect();
    let done = Arc::new(AtomicBool::new(false));
    let pullers = pull_during(urls.clone(), live.clone(), coordinators, done.clone());
    let acked = push_from_devices(urls, live.clone(), tokens, c.survey);
    done.store(true, Ordering::SeqCst);
    let pullers: Vec<Puller> = pullers
        .into_iter()
        .map(|t| t.join().expect("puller"))
        .collect();
    let docs: BTreeSet<Uuid> = acked.iter().map(|(d, _)| *d).collect();
    assert_eq!(
        docs.len(),
        DEVICES * BATCHES * DOCS_PER_BATCH,
        "every batch was acknowledged"
    );
    check_everything_arrives(&c, &database, &acked, pullers, &live);
}

/// One instance is killed with SIGKILL while devices push: the others keep serving (devices
/// retry there), nothing any instance acknowledged is lost, and documents the killed
/// instance had claimed for checking are checked by another once its lease runs out.
#[test]
fn an_instance_killed_during_pushes_loses_nothing_and_the_others_keep_serving() {
    let Some(database) = fresh_database() else {
        eprintln!("no FIELDSYNC_TEST_POSTGRES: several instances need PostgreSQL; not run here");
        return;
    };
    let mut c = cluster(&database);
    let client = Server::client();
    let urls: Arc<Vec<String>> = Arc::new(c.servers.iter().map(|s| s.url.clone()).collect());
    let live: Arc<Vec<AtomicBool>> =
        Arc::new((0..INSTANCES).map(|_| AtomicBool::new(true)).collect());
    let tokens: Vec<String> = (0..DEVICES / 2)
        .map(|d| device(&c.servers[d % INSTANCES], &client, &c.admin, c.survey, d))
        .collect();
    let coordinators = vec![coordinator_http(&c.servers[0], &client, &c.admin)];
    let done = Arc::new(AtomicBool::new(false));
    let pullers = pull_during(urls.clone(), live.clone(), coordinators, done.clone());
    let pushing = {
        let (urls, live, survey) = (urls.clone(), live.clone(), c.survey);
        std::thread::spawn(move || push_from_devices(urls, live, tokens, survey))
    };
    std::thread::sleep(Duration::from_millis(400));
    live[1].store(false, Ordering::SeqCst);
    c.servers[1].kill();
    let acked = pushing.join().expect("pushes");
    done.store(true, Ordering::SeqCst);
    let pullers: Vec<Puller> = pullers
        .into_iter()
        .map(|t| t.join().expect("puller"))
        .collect();
    check_everything_arrives(&c, &database, &acked, pullers, &live);
    // The killed instance comes back on the same database and serves what the others stored.
    let flags: Vec<&str> = c.flags.iter().map(String::as_str).collect();
    let again = Server::start(&c._dir.path().join("instance-1"), &flags);
    let pulled: usize = pull_all_http(&again, &client, &c.admin)
        .iter()
        .map(|d| d.changes.len())
        .sum();
    assert_eq!(
        pulled,
        acked.len(),
        "the restarted instance serves every change"
    );
}

/// Failed sign-ins are counted in the database: guesses spread over instances are limited
/// as if they went to one.
#[test]
fn failed_sign_ins_on_any_instance_count_on_every_instance() {
    let Some(database) = fresh_database() else {
        eprintln!("no FIELDSYNC_TEST_POSTGRES: several instances need PostgreSQL; not run here");
        return;
    };
    let c = cluster_with(&database, &["--login-attempts", "3"]);
    let client = Server::client();
    let guess = |server: &Server| {
        server
            .send(
                &client,
                Req::post("/v1/login").json(&serde_json::json!({ "token": "fsl_guessed" })),
            )
            .status
    };
    for server in &c.servers {
        assert_eq!(guess(server), StatusCode::UNAUTHORIZED);
    }
    for server in &c.servers {
        assert_eq!(
            guess(server),
            StatusCode::TOO_MANY_REQUESTS,
            "three failures, one on each instance, are the limit on all of them"
        );
    }
}
