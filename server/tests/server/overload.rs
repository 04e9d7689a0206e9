//! The real server under attack: slow clients that never finish their headers or bodies,
//! exports that are never read, floods of tiny changes, and floods of inputs that kill the
//! document checker. While each runs, a legitimate client's sync completes (within a generous
//! bound) and the server's memory stays under its stated ceiling. Counts decide pass or fail;
//! the only timing is the bound on the legitimate client's latency.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use fieldsync_protocol::api::CreatedMember;
use fieldsync_protocol::wire::{DocChanges, Message};
use serde_bytes::ByteBuf;
use uuid::Uuid;

use super::common::*;

/// The memory ceiling these tests hold the server to, in MiB: the README's figure for the
/// settings used here (128 MiB of bodies in flight, default caches) with room to spare.
const CEILING_MIB: u64 = 700;
/// The generous bound on a legitimate request's latency while an attack runs.
const LEGIT_BOUND: Duration = Duration::from_secs(30);

fn member_http(
    server: &Server,
    client: &reqwest::blocking::Client,
    admin: &str,
    name: &str,
) -> String {
    let r = server.send(
        client,
        Req::post("/v1/members")
            .token(admin)
            .json(&serde_json::json!({ "name": name, "role": "coordinator" })),
    );
    assert_eq!(r.status, StatusCode::CREATED, "create member: {}", r.text());
    login_http(server, client, &r.json::<CreatedMember>().one_time_secret)
}

/// A server with an organisation, a coordinator and the household survey.
fn setup(extra: &[&str]) -> (tempfile::TempDir, Server, String, String, Uuid) {
    let s = served(extra, &[]);
    (s.dir, s.server, s.admin, s.coordinator, s.survey)
}

/// One push and one pull of a legitimate client; how long they took.
fn legit_sync(server: &Server, token: &str, survey: Uuid) -> Duration {
    let client = Server::client();
    let started = Instant::now();
    let doc = response(survey, 1, &[&[("head_name", text("Legit"))]]);
    let r = server.send(
        &client,
        Req::post("/v1/sync/push")
            .token(token)
            .cbor(&push_request(vec![doc])),
    );
    assert_eq!(r.status, StatusCode::OK, "legit push: {}", r.text());
    let r = server.send(
        &client,
        Req::post("/v1/sync/pull")
            .token(token)
            .cbor(&pull_request(0, 100)),
    );
    assert_eq!(r.status, StatusCode::OK, "legit pull: {}", r.text());
    started.elapsed()
}

/// Whether the server has closed this connection (end of stream or reset), looking for at
/// most `wait`.
fn closed_by_server(s: &mut TcpStream, wait: Duration) -> bool {
    let _ = s.set_read_timeout(Some(wait));
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue, // an error answer (408); the close follows
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                return false;
            }
            Err(_) => return true,
        }
    }
}

#[test]
fn slow_unauthenticated_clients_cannot_take_the_capacity_sync_needs() {
    let (_dir, server, _admin, coordinator, survey) =
        setup(&["--header-timeout-secs", "3", "--body-timeout-secs", "3"]);
    let addr = server.url.trim_start_matches("http://").to_owned();
    // 300 sign-ins that drip their body and 200 connections that never finish their headers.
    let mut bodies = Vec::new();
    for _ in 0..300 {
        let mut s = TcpStream::connect(&addr).expect("connect");
        write!(
            s,
            "POST /v1/login HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{"
        )
        .expect("write");
        bodies.push(s);
    }
    let mut headers = Vec::new();
    for _ in 0..200 {
        let mut s = TcpStream::connect(&addr).expect("connect");
        write!(s, "POST /v1/login HTTP/1.1\r\nHost: {addr}\r\n").expect("write");
        headers.push(s);
    }
    // Each connection must be closed by the timeouts (3 s) counted from its arrival; the margin
    // is for a loaded machine.
    let deadline = Instant::now() + Duration::from_secs(3 + 5);
    let stop = Arc::new(AtomicBool::new(false));
    let drip = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            // One byte per connection every half second, as a slow attacker would.
            while !stop.load(Ordering::Relaxed) {
                for s in bodies.iter_mut() {
                    let _ = s.write_all(b" ");
                }
                for s in headers.iter_mut() {
                    let _ = s.write_all(b"X");
                }
                std::thread::sleep(Duration::from_millis(500));
            }
            (bodies, headers)
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    let took = legit_sync(&server, &coordinator, survey);
    assert!(
        took < LEGIT_BOUND,
        "a legitimate sync took {took:?} while slow clients held connections"
    );
    // The server closes every slow connection itself: headers past the header timeout, bodies
    // past the body timeout, however long they waited for a slot. Keep dripping past both.
    std::thread::sleep(Duration::from_secs(4).saturating_sub(took));
    stop.store(true, Ordering::Relaxed);
    let (mut bodies, mut headers) = drip.join().expect("drip thread");
    let closed_by_deadline = |s: &mut TcpStream| {
        let left = deadline.saturating_duration_since(Instant::now());
        closed_by_server(s, left.max(Duration::from_millis(10)))
    };
    let closed_bodies = bodies
        .iter_mut()
        .map(closed_by_deadline)
        .filter(|c| *c)
        .count();
    let closed_headers = headers
        .iter_mut()
        .map(closed_by_deadline)
        .filter(|c| *c)
        .count();
    assert_eq!(closed_bodies, 300, "bodies that never finish are cut off");
    assert_eq!(closed_headers, 200, "headers that never finish are cut off");
    let peak = server.peak_rss_kib() / 1024;
    eprintln!("slow clients: server peak RSS {peak} MiB");
    assert!(peak < CEILING_MIB, "server peak RSS {peak} MiB");
}

#[test]
fn exports_that_are_never_read_are_bounded_and_released() {
    let (_dir, server, admin, coordinator, survey) = setup(&[
        "--max-exports",
        "2",
        "--send-timeout-secs",
        "3",
        "--queue-wait-ms",
        "0",
    ]);
    let client = Server::client();
    // About 40 MiB of export: more than the socket buffers of a client that never reads.
    let filler = "x".repeat(16 * 1024);
    for _ in 0..5 {
        let docs: Vec<DocChanges> = (0..500)
            .map(|_| response(survey, 1, &[&[("head_name", text(&filler))]]))
            .collect();
        let r = server.send(
            &client,
            Req::post("/v1/sync/push")
                .token(&coordinator)
                .cbor(&push_request(docs)),
        );
        assert_eq!(r.status, StatusCode::OK, "push: {}", r.text());
    }
    let addr = server.url.trim_start_matches("http://").to_owned();
    let stalled = |n: usize| -> Vec<TcpStream> {
        (0..n)
            .map(|_| {
                let mut s = TcpStream::connect(&addr).expect("connect");
                write!(
                    s,
                    "GET /v1/surveys/{survey}/export?format=csv&status=all HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {admin}\r\n\r\n"
                )
                .expect("write");
                s
            })
            .collect()
    };
    // One export read in full first, so every response is materialised and the stalled ones
    // below take their permits at once.
    let first = server.send(
        &client,
        Req::get(format!("/v1/surveys/{survey}/export?format=csv&status=all")).token(&admin),
    );
    assert_eq!(first.status, StatusCode::OK);
    let held = stalled(2);
    std::thread::sleep(Duration::from_secs(1));
    // While both permits are held by clients that do not read, a third export is refused.
    let refused = wait_for(Duration::from_secs(60), || {
        let r = server.send(
            &client,
            Req::get(format!("/v1/surveys/{survey}/export?format=csv&status=all")).token(&admin),
        );
        (r.status == StatusCode::SERVICE_UNAVAILABLE).then_some(r)
    });
    assert!(refused.error().message.contains("exports"));
    // Past the send timeout the stalled exports are dropped and their permits come back: a
    // client that reads gets the whole export.
    let full = wait_for(Duration::from_secs(60), || {
        let r = server.send(
            &client,
            Req::get(format!("/v1/surveys/{survey}/export?format=csv&status=all")).token(&admin),
        );
        (r.status == StatusCode::OK).then_some(r)
    });
    assert_eq!(
        full.text().lines().count(),
        1 + 2_500,
        "header and every response"
    );
    drop(held);
    // A crowd of stalled exports costs nothing beyond the permitted two.
    let crowd = stalled(100);
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        server.rss_kib() / 1024 < CEILING_MIB,
        "rss {} KiB",
        server.rss_kib()
    );
    drop(crowd);
}

/// A push of one document with `n` one-byte changes, written out directly (building it as a
/// message would take the test's own memory).
fn tiny_change_flood(survey: Uuid, n: u32) -> Vec<u8> {
    let mut doc = response(survey, 1, &[]);
    doc.changes = vec![ByteBuf::from(vec![0u8])];
    let mut bytes = push_request(vec![doc]).to_cbor().expect("encodes");
    // The message ends with the changes array: one element, a one-byte byte string.
    assert_eq!(&bytes[bytes.len() - 3..], &[0x81, 0x41, 0x00]);
    bytes.truncate(bytes.len() - 3);
    bytes.push(0x9a);
    bytes.extend_from_slice(&n.to_be_bytes());
    for _ in 0..n {
        bytes.extend_from_slice(&[0x41, 0x00]);
    }
    bytes
}

#[test]
fn floods_of_tiny_changes_are_refused_before_they_cost_memory() {
    let (_dir, server, admin, coordinator, survey) = setup(&[]);
    // The flood comes from one caller; the legitimate device is another, as in a real attack
    // (one caller's own requests beyond its 16 in progress are refused, which is right).
    let legit = member_http(&server, &Server::client(), &admin, "Legit");
    let body = Arc::new(tiny_change_flood(survey, 4_000_000));
    let refused = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let (body, url, token, refused) = (
                body.clone(),
                server.url.clone(),
                coordinator.clone(),
                refused.clone(),
            );
            std::thread::spawn(move || {
                let client = Server::client();
                for _ in 0..2 {
                    let r = client
                        .post(format!("{url}/v1/sync/push"))
                        .bearer_auth(&token)
                        .header("content-type", "application/cbor")
                        .body(body.to_vec())
                        .send()
                        .expect("send");
                    if r.status().is_client_error() || r.status().as_u16() == 503 {
                        refused.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    let took = legit_sync(&server, &legit, survey);
    for t in threads {
        t.join().expect("flood thread");
    }
    assert_eq!(
        refused.load(Ordering::Relaxed),
        32,
        "every flood push is refused"
    );
    assert!(
        took < LEGIT_BOUND,
        "a legitimate sync took {took:?} during the flood"
    );
    let peak = server.peak_rss_kib() / 1024;
    eprintln!("tiny-change flood: server peak RSS {peak} MiB");
    assert!(
        peak < CEILING_MIB,
        "server peak RSS {peak} MiB during the flood"
    );
}

#[test]
fn a_device_flooding_the_checkers_with_crashing_input_does_not_starve_others() {
    let (_dir, server, admin, coordinator, survey) = setup(&[]);
    let client = Server::client();
    let attacker = member_http(&server, &client, &admin, "Attacker");
    let bomb = std::fs::read(format!(
        "{}/../fixtures/hostile/alloc-bomb-bundle.bin",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("fixture");
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let penalised = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..30)
        .map(|_| {
            let (url, token, bomb, stop, answered, penalised) = (
                server.url.clone(),
                attacker.clone(),
                bomb.clone(),
                stop.clone(),
                answered.clone(),
                penalised.clone(),
            );
            std::thread::spawn(move || {
                let client = Server::client();
                while !stop.load(Ordering::Relaxed) {
                    let mut doc = response(survey, 1, &[]);
                    doc.changes = vec![ByteBuf::from(bomb.clone())];
                    let body = push_request(vec![doc]).to_cbor().expect("encodes");
                    let r = client
                        .post(format!("{url}/v1/sync/push"))
                        .bearer_auth(&token)
                        .header("content-type", "application/cbor")
                        .body(body)
                        .send();
                    if let Ok(r) = r {
                        assert_ne!(r.status().as_u16(), 200, "a crashing input is never stored");
                        answered.fetch_add(1, Ordering::Relaxed);
                        if r.status().as_u16() == 429 {
                            penalised.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    for _ in 0..3 {
        let took = legit_sync(&server, &coordinator, survey);
        assert!(
            took < LEGIT_BOUND,
            "a legitimate sync took {took:?} during the flood"
        );
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().expect("attack thread");
    }
    assert!(answered.load(Ordering::Relaxed) > 0, "the attack ran");
    assert!(
        penalised.load(Ordering::Relaxed) > 0,
        "a caller whose input keeps killing checkers is refused for a while"
    );
    // What the legitimate client stored is all there.
    let docs = pull_all_http(&server, &client, &admin);
    assert_eq!(docs.len(), 3);
    let log = server.stderr();
    assert!(
        log.len() < 2 * 1024 * 1024,
        "the log stays small: {} bytes",
        log.len()
    );
    assert!(
        !contains(&log, b"stack backtrace"),
        "no backtraces from crashed checkers"
    );
}
