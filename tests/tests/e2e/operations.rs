//! Running the server as an operator does: what its log says about each request, in text
//! for people and JSON for collectors.

use fieldsync_e2e::World;
use fieldsync_e2e::server::{Server, create_org};

/// The `[request ID]` a client error quotes.
fn quoted_request_id(err: &str) -> String {
    let start = err
        .find("[request ")
        .expect("the error quotes a request id")
        + "[request ".len();
    let end = err[start..].find(']').expect("closing bracket") + start;
    err[start..end].to_owned()
}

/// Every request leaves one line at the default level, with its id, route template, status,
/// latency and kind of caller, and the id a user is shown finds it. Before, thousands of
/// pushes and refused tokens left nothing in the log, and a log written to a file was full of
/// colour codes.
#[test]
fn each_request_is_logged_once_with_the_id_its_caller_is_shown() {
    let w = World::start();
    w.publish("household-v1.json");
    let (device, device_id) = w.enumerator("tablet-1", "Amina Odhiambo", &["household_survey"]);
    device.sync();
    w.admin.ok(&["member", "revoke", &device_id]);
    let err = device.fails(&["sync"], 4);
    let id = quoted_request_id(&err);

    let logs = w.server.logs();
    assert!(
        !logs.contains('\u{1b}'),
        "no colour codes in a log that is not a terminal"
    );
    let line = logs
        .lines()
        .find(|l| l.contains(&format!("request_id={id}")) && l.contains(" request "))
        .unwrap_or_else(|| panic!("no log line for request {id}:\n{}", w.log_tail(20)));
    for part in [
        "route=/v1/sync/",
        "status=401",
        "ms=",
        "caller=none",
        " INFO ",
    ] {
        assert!(line.contains(part), "{part:?} in {line}");
    }
    // A request that succeeded says who made it (the kind of caller, never who).
    assert!(
        logs.lines().any(|l| l.contains("route=/v1/sync/pull")
            && l.contains("status=200")
            && l.contains("caller=enumerator")),
        "{}",
        w.log_tail(20)
    );
    assert!(
        !logs.contains("Amina") && !logs.contains("Household"),
        "no names or answers in the log"
    );
}

/// `--log-format json`: one JSON object per line, the request's fields as keys; an error
/// body and its `x-request-id` header carry the id the line has.
#[test]
fn json_logs_are_one_object_per_line_with_the_request_id() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    create_org(&data, "Acme Health");
    let server = Server::start(&data, &["--log-format", "json"]);
    let http = reqwest::blocking::Client::new();
    let resp = http
        .get(format!("{}/v1/me", server.url()))
        .bearer_auth("not-a-token")
        .send()
        .expect("request");
    assert_eq!(resp.status().as_u16(), 401);
    let header = resp
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("an x-request-id header")
        .to_owned();
    let body: serde_json::Value = resp.json().expect("a JSON error body");
    assert_eq!(body["request_id"], header.as_str(), "{body}");

    let logs = server.logs();
    let lines: Vec<serde_json::Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: not JSON: {l}")))
        .collect();
    let line = lines
        .iter()
        .find(|l| l["request_id"] == header.as_str())
        .unwrap_or_else(|| panic!("no line for {header}:\n{logs}"));
    assert_eq!(line["message"], "request", "{line}");
    assert_eq!(line["route"], "/v1/me", "{line}");
    assert_eq!(line["status"], 401, "{line}");
    assert_eq!(line["level"], "INFO", "{line}");
    assert!(line["ms"].as_f64().is_some(), "{line}");
    assert!(
        !logs.contains("not-a-token"),
        "a token never reaches the log"
    );
}

/// `/readyz` answers 200 only when the server can do its work: the database and its writer
/// commit, a document checker answers, the disk has room. Before, only `/healthz` existed,
/// and it answered 200 whatever was broken. Here the server's program is removed after it
/// starts, so no checker can start: ready is refused, naming the checkers, while live stays.
#[test]
fn readiness_fails_when_no_document_checker_can_start() {
    let w = World::start();
    let http = reqwest::blocking::Client::new();
    let ready = |url: &str| {
        let resp = http.get(format!("{url}/readyz")).send().expect("readyz");
        let status = resp.status().as_u16();
        (
            status,
            resp.json::<serde_json::Value>().expect("a JSON verdict"),
        )
    };
    let (status, body) = ready(&w.server.url());
    assert_eq!(status, 200, "{body}");
    for check in ["database", "workers", "disk"] {
        assert_eq!(body["checks"][check], "ok", "{body}");
    }

    let dir = tempfile::tempdir().expect("temp dir");
    let program = dir.path().join("fieldsync-server");
    std::fs::copy(&fieldsync_e2e::binaries().server, &program).expect("copy the server");
    let data = dir.path().join("data");
    create_org(&data, "Acme Health");
    let server = Server::start_program(&program, &data, &[]);
    std::fs::remove_file(&program).expect("take the program away");
    let (status, body) = ready(&server.url());
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["ready"], false, "{body}");
    assert_eq!(body["checks"]["database"], "ok", "{body}");
    let workers = body["checks"]["workers"].as_str().expect("workers check");
    assert!(
        workers.contains("could not start a document checker"),
        "{workers}"
    );
    let live = http
        .get(format!("{}/healthz", server.url()))
        .send()
        .expect("healthz");
    assert_eq!(live.status().as_u16(), 200, "the process itself is alive");
    assert!(
        server.logs().contains("not ready"),
        "the failing check is logged: {}",
        server.logs()
    );
}
