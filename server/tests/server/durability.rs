//! Durability of the real server: it is killed with SIGKILL at random moments while a client
//! pushes batches, many times over; after every restart each acknowledged change is present
//! exactly once and the database passes `PRAGMA integrity_check`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::http::StatusCode;
use fieldsync_protocol::wire::{DocChanges, PushOutcome, PushResponse};
use uuid::Uuid;

use super::common::*;

const ROUNDS: usize = 15;

/// A tiny xorshift generator: random kill moments without another dependency; the seed is
/// printed so a failing run can be replayed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Push batches until the connection fails (the server was killed) or `stop` is set; return
/// every change the server acknowledged as stored.
fn push_until_killed(
    url: String,
    token: String,
    survey: Uuid,
    stop: Arc<AtomicBool>,
) -> Vec<(Uuid, Vec<u8>)> {
    let client = Server::client();
    let mut acked = Vec::new();
    let mut batch_no = 0;
    while !stop.load(Ordering::SeqCst) && batch_no < 500 {
        batch_no += 1;
        let docs: Vec<DocChanges> = (0..40)
            .map(|i| {
                response(
                    survey,
                    1,
                    &[
                        &[(
                            "enumerator_name",
                            text(&format!("batch {batch_no} doc {i}")),
                        )],
                        &[("head_name", text("Durable Head"))],
                    ],
                )
            })
            .collect();
        let body = fieldsync_protocol::wire::Message::to_cbor(&push_request(docs.clone()))
            .expect("encodes");
        let sent = client
            .post(format!("{url}/v1/sync/push"))
            .bearer_auth(&token)
            .header("content-type", "application/cbor")
            .body(body)
            .send()
            .and_then(|r| Ok((r.status(), r.bytes()?)));
        let Ok((status, bytes)) = sent else { break };
        if status.as_u16() != StatusCode::OK.as_u16() {
            break;
        }
        let resp: PushResponse = Reply {
            status: StatusCode::OK,
            body: bytes.to_vec(),
            content_type: None,
        }
        .cbor();
        for (result, doc) in resp.results.iter().zip(&docs) {
            assert_eq!(result.doc_id, doc.doc_id);
            assert!(
                matches!(result.outcome, PushOutcome::Stored { .. }),
                "{:?}",
                result.outcome
            );
            acked.extend(doc.changes.iter().map(|c| (doc.doc_id, c.to_vec())));
        }
    }
    acked
}

fn integrity_check(db: &std::path::Path) {
    // Opening read-write lets SQLite recover the WAL the way the next server start would.
    let conn = rusqlite::Connection::open(db).expect("open killed server's database");
    let result: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check");
    assert_eq!(result, "ok", "database damaged after SIGKILL");
}

#[test]
fn every_acknowledged_change_survives_sigkill_at_random_moments_exactly_once() {
    let Served {
        dir,
        mut server,
        admin,
        coordinator,
        survey,
    } = served(&[], &[]);
    let data = dir.path().join("data");
    let client = Server::client();

    let seed = u64::from(std::process::id()) << 20 ^ now_ms() as u64 | 1;
    eprintln!("durability seed {seed}");
    let mut rng = Rng(seed);
    let mut acked: BTreeSet<(Uuid, Vec<u8>)> = BTreeSet::new();
    for round in 0..ROUNDS {
        let stop = Arc::new(AtomicBool::new(false));
        let pusher = {
            let (url, token, stop) = (server.url.clone(), admin.clone(), stop.clone());
            std::thread::spawn(move || push_until_killed(url, token, survey, stop))
        };
        std::thread::sleep(Duration::from_millis(10 + rng.below(400)));
        server.kill();
        stop.store(true, Ordering::SeqCst);
        let got = pusher.join().expect("pusher thread");
        eprintln!(
            "round {round}: {} changes acknowledged before the kill",
            got.len()
        );
        acked.extend(got);

        integrity_check(&data.join("fieldsync.sqlite"));
        server = Server::start(&data, &[]);
        // Pull everything with another session: each acknowledged change exactly once.
        let mut count: BTreeMap<(Uuid, Vec<u8>), u32> = BTreeMap::new();
        for d in pull_all_http(&server, &client, &coordinator) {
            for c in d.changes {
                *count.entry((d.doc_id, c.to_vec())).or_default() += 1;
            }
        }
        let twice: Vec<_> = count
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(k, _)| k.0)
            .collect();
        assert!(
            twice.is_empty(),
            "round {round}: changes present more than once in {twice:?}"
        );
        let missing = acked.iter().filter(|k| !count.contains_key(*k)).count();
        assert_eq!(
            missing, 0,
            "round {round}: {missing} acknowledged changes lost (seed {seed})"
        );
    }
    assert!(!acked.is_empty(), "no push was ever acknowledged");
}
