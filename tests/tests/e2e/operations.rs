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

/// The value of the series `name{labels}` in a Prometheus scrape (0 when it is absent).
fn series(scrape: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .filter(|(key, _)| {
            let (metric, rest) = key.split_once('{').unwrap_or((key, ""));
            metric == name
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
        })
        .map(|(_, value)| value.parse::<f64>().expect("a number"))
        .sum()
}

/// `--metrics-listen`: a Prometheus scrape after a sync counts what happened, by route and
/// status, with push and pull sizes, writer groups, checker and sign-in figures, and no label
/// names an organisation, a person or a token. Before, there were no metrics at all.
#[test]
fn metrics_after_a_sync_count_what_happened() {
    let w = World::start_with(
        &fieldsync_e2e::databases::Backend::Sqlite,
        &["--metrics-listen", "127.0.0.1:0"],
    );
    w.publish("household-v1.json");
    let (device, _) = w.enumerator("tablet-1", "Amina Odhiambo", &["household_survey"]);
    for head in ["Wanjiru Kamau", "Otieno Ouma"] {
        let (interview, _) = crate::offline::phone_interview("Amina Odhiambo", head);
        device.ok_stdin(&["collect", "household_survey"], Some(&interview));
    }
    device.sync();
    let stranger = fieldsync_e2e::client::Client::new(&w.root().join("stranger"));
    stranger.fails(
        &[
            "login",
            "--server",
            &w.server.url(),
            "--token",
            "guessed-token",
        ],
        4,
    );

    // An export waits for the responses to be validated.
    assert_eq!(w.export_rows("household_survey").len(), 2);

    let logs = w.server.logs();
    let at = logs
        .lines()
        .find_map(|l| l.split("metrics at ").nth(1))
        .unwrap_or_else(|| panic!("the metrics address is logged:\n{logs}"))
        .split_whitespace()
        .next()
        .expect("an address")
        .to_owned();
    let scrape = reqwest::blocking::get(&at)
        .and_then(|r| r.error_for_status())
        .and_then(|r| r.text())
        .unwrap_or_else(|e| panic!("scrape {at}: {e}"));

    let push = [("route", "/v1/sync/push"), ("status", "200")];
    assert_eq!(
        series(&scrape, "fieldsync_http_requests_total", &push),
        1.0,
        "one push of two responses:\n{scrape}"
    );
    assert!(
        series(
            &scrape,
            "fieldsync_http_requests_total",
            &[("route", "/v1/sync/pull"), ("status", "200")]
        ) >= 1.0
    );
    assert_eq!(
        series(
            &scrape,
            "fieldsync_http_requests_total",
            &[("route", "/v1/login"), ("status", "401")]
        ),
        1.0
    );
    assert!(
        series(
            &scrape,
            "fieldsync_http_request_duration_seconds_count",
            &[("route", "/v1/sync/push")]
        ) >= 1.0
    );
    assert_eq!(series(&scrape, "fieldsync_push_documents_count", &[]), 1.0);
    assert_eq!(
        series(&scrape, "fieldsync_push_documents_sum", &[]),
        2.0,
        "{scrape}"
    );
    assert!(series(&scrape, "fieldsync_push_bytes_sum", &[]) > 0.0);
    assert!(series(&scrape, "fieldsync_pull_changes_count", &[]) >= 1.0);
    assert!(series(&scrape, "fieldsync_db_write_group_size_count", &[]) >= 1.0);
    assert!(series(&scrape, "fieldsync_db_commit_duration_seconds_count", &[]) >= 1.0);
    assert_eq!(
        series(
            &scrape,
            "fieldsync_sign_in_refusals_total",
            &[("reason", "bad_credential")]
        ),
        1.0
    );
    // Both responses were validated by a checker, which is idle again.
    assert!(series(&scrape, "fieldsync_materialized_documents_total", &[]) >= 2.0);
    assert_eq!(series(&scrape, "fieldsync_workers_busy", &[]), 0.0);
    assert_eq!(series(&scrape, "fieldsync_exports_open", &[]), 0.0);
    assert!(
        series(
            &scrape,
            "fieldsync_http_requests_total",
            &[("route", "/v1/surveys/{id}/export")]
        ) >= 1.0
    );
    for word in ["Acme", "Amina", "Wanjiru", "guessed-token", &w.org_id] {
        assert!(!scrape.contains(word), "{word:?} in the scrape");
    }
    // The metrics are not on the API's listener.
    let api = reqwest::blocking::get(format!("{}/metrics", w.server.url())).expect("request");
    assert_eq!(api.status().as_u16(), 404);
}

/// A configuration file's values apply, a `FIELDSYNC_*` variable beats the file and a flag
/// beats both; `serve --print-config` says which won, without the database password; a
/// mistyped key stops the server naming the file and the key it probably meant.
#[test]
fn a_config_file_applies_and_flags_and_variables_override_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("fieldsync.toml");
    std::fs::write(
        &config,
        "log-format = \"json\"\nlogin_attempts = 1\nlogin-attempts-per-address = 10\nmax-exports = 3\n",
    )
    .expect("write the config");
    let config_arg = config.to_str().expect("path");

    let out = fieldsync_e2e::server::server_command_env(
        &[
            "serve",
            "--config",
            config_arg,
            "--login-attempts",
            "3",
            "--print-config",
        ],
        &[
            (
                "FIELDSYNC_DATABASE",
                "postgres://fieldsync:hunter2@db.internal/fieldsync",
            ),
            ("FIELDSYNC_MAX_EXPORTS", "5"),
        ],
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    let line = |key: &str| {
        out.stdout
            .lines()
            .find(|l| l.starts_with(&format!("{key} =")))
            .unwrap_or_else(|| panic!("no {key} in\n{}", out.stdout))
            .to_owned()
    };
    assert!(line("login-attempts").contains("= 3") && line("login-attempts").ends_with("# flag"));
    assert!(
        line("max-exports").contains("= 5")
            && line("max-exports").contains("FIELDSYNC_MAX_EXPORTS")
    );
    assert!(
        line("log-format").contains("\"json\"") && line("log-format").contains("fieldsync.toml")
    );
    assert!(line("max-body").ends_with("# default"));
    assert!(
        line("database").contains("fieldsync:***@db.internal"),
        "{}",
        line("database")
    );
    assert!(
        !out.stdout.contains("hunter2"),
        "the password is never printed"
    );

    // The running server takes the file's values and the flag's.
    let data = dir.path().join("data");
    create_org(&data, "Acme Health");
    let server = Server::start(&data, &["--config", config_arg, "--login-attempts", "3"]);
    let http = reqwest::blocking::Client::new();
    let login = |token: &str| {
        http.post(format!("{}/v1/login", server.url()))
            .json(&serde_json::json!({ "token": token }))
            .send()
            .expect("login")
            .status()
            .as_u16()
    };
    // The file's login_attempts = 1 would refuse the second try; the flag's 3 holds.
    for _ in 0..3 {
        assert_eq!(login("fsl_typo"), 401);
    }
    assert_eq!(
        login("fsl_typo"),
        429,
        "the fourth try is over the flag's limit"
    );
    // ...and its log format too.
    let logs = server.logs();
    let first = logs.lines().next().expect("a log line");
    assert!(
        serde_json::from_str::<serde_json::Value>(first).is_ok(),
        "log-format = \"json\" from the file: {first}"
    );
    drop(server);

    std::fs::write(&config, "max-bdy = 5\n").expect("write a typo");
    let out = fieldsync_e2e::server::server_command(&["serve", "--config", config_arg]);
    assert_eq!(out.code, Some(2), "{out:?}");
    for part in ["fieldsync.toml", "max-bdy", "did you mean `max-body`"] {
        assert!(out.stderr.contains(part), "{part:?} in {}", out.stderr);
    }
}
