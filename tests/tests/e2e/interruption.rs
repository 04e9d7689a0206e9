//! The server is killed in the middle of a large sync and restarted: the next sync completes
//! and every response is on the server exactly once.

use std::time::{Duration, Instant};

use fieldsync_e2e::World;
use fieldsync_e2e::client::int_field;
use fieldsync_e2e::data::{self, HOUSEHOLD_V1_QUESTIONS};
use serde_json::json;

/// Size of the server's WAL, where a push's pages land first.
fn wal_size(w: &World) -> u64 {
    std::fs::metadata(w.server.data_dir().join("fieldsync.sqlite-wal"))
        .map(|m| m.len())
        .unwrap_or(0)
}

/// WAL growth that means the server is in the middle of storing a push (a batch of a
/// thousand 30-answer responses is a few MiB).
const MID_PUSH_BYTES: u64 = 256 * 1024;

#[test]
fn a_sync_cut_by_a_server_crash_resumes_and_stores_everything_once() {
    let mut w = World::start();
    w.publish("household-v1.json");
    let (ops, _) = w.member("ops", "Olu Ops", "ops");
    ops.sync();
    let rows = data::household_v1(0, 4_000);
    let file = w.file("import.csv", &data::to_csv(&HOUSEHOLD_V1_QUESTIONS, &rows));
    let imported = ops.json(&["import", "household_survey", file.to_str().expect("utf-8")]);
    assert_eq!(imported["stored"], 4_000, "{imported}");
    let local_ids = ops.response_ids(&[]);
    assert_eq!(local_ids.len(), 4_000);

    // Start the sync, and kill the server as soon as its database starts taking the push.
    let before = wal_size(&w);
    let mut sync = ops.spawn(&["--json", "sync"]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline && !sync.finished() && wal_size(&w) < before + MID_PUSH_BYTES {
        std::thread::sleep(Duration::from_millis(5));
    }
    w.server.kill();
    let cut = sync.wait(Duration::from_secs(120));
    eprintln!(
        "the interrupted sync ended with {:?}:\n{}",
        cut.code, cut.stderr
    );
    if cut.code != Some(0) {
        assert_eq!(
            cut.code,
            Some(3),
            "a sync cut by the server's death exits 3\n{}",
            cut.describe()
        );
        let status = ops.status();
        eprintln!("after the cut: {status}");
        assert!(int_field(&status, "pending_responses") > 0, "{status}");
    }
    assert_eq!(
        ops.response_ids(&[]),
        local_ids,
        "nothing is lost on the device"
    );

    w.server.restart();
    let report = ops.sync();
    assert_eq!(report["rejected"], json!([]), "{report}");
    let status = ops.status();
    assert_eq!(int_field(&status, "pending_responses"), 0, "{status}");
    assert_eq!(int_field(&status, "pending_changes"), 0, "{status}");
    let again = ops.sync();
    assert_eq!(
        again["pushed_docs"], 0,
        "a second sync has nothing to push: {again}"
    );

    let export = w.out_path("export.jsonl");
    w.admin.ok(&[
        "export",
        "household_survey",
        "--format",
        "jsonl",
        "--out",
        export.to_str().expect("utf-8"),
    ]);
    let exported = data::parse_jsonl(&std::fs::read_to_string(&export).expect("export written"));
    assert_eq!(exported.len(), 4_000, "every response exactly once");
    let mut ids: Vec<String> = exported
        .iter()
        .map(|r| {
            r["response_id"]
                .as_str()
                .unwrap_or_else(|| panic!("{r}"))
                .to_owned()
        })
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(
        ids, local_ids,
        "the server holds exactly the device's responses"
    );
    let by_enumerator = data::by_answer(&exported, "enumerator_name");
    for want in &rows {
        let key = data::cell(want, "enumerator_name");
        let (id, got) = &by_enumerator[&key];
        data::assert_answers(want, got, id);
    }
    let logs = w.server.logs();
    assert!(!logs.contains("panicked"), "the server panicked:\n{logs}");
}
