//! Answers are never at rest in plaintext on the server: a sentinel typed into answers is found
//! nowhere in the data directory (database, WAL, any file) or the server's logs, after
//! materialisation, after an export, after a kill and after a graceful stop.

use std::path::Path;
use std::time::Duration;

use axum::http::StatusCode;
use fieldsync_protocol::api::ResponsePage;

use super::common::*;

/// Every file under `dir` that holds `needle`.
fn files_holding(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read data dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if contains(&read_all(&path), needle) {
                found.push(path.display().to_string());
            }
        }
    }
    found
}

fn assert_nowhere(server: &Server, needle: &[u8], when: &str) {
    let files = files_holding(&server.data, needle);
    assert!(
        files.is_empty(),
        "{when}: the sentinel is in plaintext in {files:?}"
    );
    assert!(
        !contains(&server.stderr(), needle),
        "{when}: the sentinel is in the server's log"
    );
}

#[test]
fn a_sentinel_typed_into_answers_is_never_in_the_data_directory_or_logs() {
    // Debug logging: the most the server ever writes.
    let env = [("FIELDSYNC_LOG", "debug")];
    let Served {
        dir,
        mut server,
        admin,
        coordinator,
        survey,
    } = served(&[], &env);
    let data = dir.path().join("data");
    let client = Server::client();

    let sentinel = format!("SENTINEL{}", uuid::Uuid::new_v4().simple());
    let docs: Vec<_> = (0..20)
        .map(|i| {
            response(
                survey,
                1,
                &[
                    &[("head_name", text(&format!("{sentinel} {i}")))],
                    &[("comments", text(&format!("said {sentinel}")))],
                ],
            )
        })
        .collect();
    // The sentinel is in the pushed bytes as typed: were they stored as they came, the
    // search below would find it.
    assert!(
        docs.iter()
            .all(|d| d.changes.iter().any(|c| contains(c, sentinel.as_bytes())))
    );
    let r = server.send(
        &client,
        Req::post("/v1/sync/push")
            .token(&admin)
            .cbor(&push_request(docs.clone())),
    );
    assert_eq!(r.status, StatusCode::OK);
    // One malformed push too: error paths log, and must not log what they were sent.
    let mut bad = docs[0].clone();
    bad.doc_id = uuid::Uuid::new_v4();
    bad.changes = vec![serde_bytes::ByteBuf::from(
        [sentinel.as_bytes(), b" not automerge"].concat(),
    )];
    let r = server.send(
        &client,
        Req::post("/v1/sync/push")
            .token(&admin)
            .cbor(&push_request(vec![bad])),
    );
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);

    // Materialised: the server can read the answers back...
    let page: ResponsePage = wait_for(Duration::from_secs(60), || {
        let page: ResponsePage = server
            .send(
                &client,
                Req::get(format!("/v1/surveys/{survey}/responses")).token(&coordinator),
            )
            .json();
        (page.pending == 0 && page.items.len() == docs.len()).then_some(page)
    });
    let r = server.send(
        &client,
        Req::get(format!("/v1/responses/{}", page.items[0].id)).token(&coordinator),
    );
    assert!(
        r.text().contains(&sentinel),
        "the server cannot read the answers back: {}",
        r.text()
    );
    // ...and export them.
    for format in ["csv", "jsonl"] {
        let r = server.send(
            &client,
            // Drafts included: the test's responses are drafts, which exports leave out by default.
            Req::get(format!(
                "/v1/surveys/{survey}/export?format={format}&status=all"
            ))
            .token(&coordinator),
        );
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(
            r.text().matches(&sentinel).count(),
            2 * docs.len(),
            "{format} export"
        );
    }
    // And pulled by another session.
    let pulled = pull_all_http(&server, &client, &coordinator);
    assert_eq!(pulled.len(), docs.len());

    assert_nowhere(&server, sentinel.as_bytes(), "while running");
    server.kill();
    assert_nowhere(&server, sentinel.as_bytes(), "after SIGKILL");

    // Restarted (WAL recovered), exported again, then stopped gracefully (WAL checkpointed).
    let mut server = Server::start_env(&data, &[], &env);
    let r = server.send(
        &client,
        Req::get(format!("/v1/surveys/{survey}/export?format=csv&status=all")).token(&coordinator),
    );
    assert!(r.text().contains(&sentinel));
    let status = std::process::Command::new("kill")
        .args(["-TERM", &server.pid().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(status.success());
    let exit = server.child.wait().expect("wait");
    assert!(exit.success(), "graceful stop failed: {exit}");
    assert_nowhere(&server, sentinel.as_bytes(), "after a graceful stop");
}
